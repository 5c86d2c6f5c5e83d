/* test-imap.c — imapd's parsers and formats: command arguments (literals, quoted
 * strings, lists, errors), modified UTF-7, sequence sets, flags, dates and
 * strings on the wire. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../imapd/imap-parser.c"
#include "../../imapd/imap-utf7.c"
#include "../../imapd/imap-util.c"

#include <stdlib.h>

/* ---- command parser ---- */

static int parse(struct pool *pool, const char *cmd, struct imap_arg **args, size_t *n,
		 const char **name)
{
	const char *tag, *error;
	return imap_parse_command(pool, cmd, strlen(cmd), &tag, name, args, n, &error);
}

static void test_parse_basic(void **state)
{
	struct pool *pool = pool_new(4096);
	struct imap_arg *args;
	size_t n;
	const char *name;
	assert_int_equal(parse(pool, "a1 LOGIN \"al\\\"ice\" {3}\r\nx y", &args, &n, &name), 0);
	assert_string_equal(name, "LOGIN");
	assert_int_equal(n, 2);
	assert_int_equal(args[0].type, IMAP_ARG_QUOTED);
	assert_string_equal(args[0].str, "al\"ice");
	assert_int_equal(args[1].type, IMAP_ARG_LITERAL);
	assert_string_equal(args[1].str, "x y");
	assert_int_equal(parse(pool, "t FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.10>)",
			       &args, &n, &name), 0);
	assert_int_equal(n, 2);
	assert_int_equal(args[1].type, IMAP_ARG_LIST);
	assert_int_equal(args[1].n_list, 2);
	assert_string_equal(args[1].list[1].str, "BODY.PEEK[HEADER.FIELDS (From To)]<0.10>");
	assert_int_equal(parse(pool, "t STORE 1 +FLAGS (\\Seen $Label)", &args, &n, &name), 0);
	assert_string_equal(args[2].list[0].str, "\\Seen");
	assert_int_equal(parse(pool, "t LIST \"\" NIL", &args, &n, &name), 0);
	assert_int_equal(args[1].type, IMAP_ARG_NIL);
	pool_free(&pool);
}

static void test_parse_errors(void **state)
{
	struct pool *pool = pool_new(4096);
	struct imap_arg *args;
	size_t n;
	const char *name;
	const char *bad[] = {
		"t LIST (\"\" \"*\"", "t FETCH 1 (FLAGS))", "t X \"unterminated", "t X {5}\r\nabc",
		"t X {x}\r\n", "t X \"bad\\q\"", "t X  a", "t X a ", "t", "+ X", "t X (a (b)",
		"t X a)", "t X {3}abc",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(pool, bad[i], &args, &n, &name), -1);
	/* nesting is bounded */
	char deep[200];
	strcpy(deep, "t X ");
	for (int i = 0; i < 40; i++)
		strcat(deep, "(");
	assert_int_equal(parse(pool, deep, &args, &n, &name), -1);
	pool_free(&pool);
}

static void test_line_literal(void **state)
{
	struct imap_literal_info info;
	assert_int_equal(imap_line_literal("a APPEND x {12}", 15, &info), 1);
	assert_int_equal(info.size, 12);
	assert_false(info.nonsync);
	assert_int_equal(imap_line_literal("a APPEND x {12+}", 16, &info), 1);
	assert_true(info.nonsync);
	assert_int_equal(imap_line_literal("a X {}", 6, &info), -1);
	assert_int_equal(imap_line_literal("a X {99999999999999999999999}", 29, &info), -1);
	assert_int_equal(imap_line_literal("a NOOP", 6, &info), 0);
}

/* ---- modified UTF-7 ---- */

static void roundtrip(const char *utf8, const char *utf7)
{
	struct buf b = BUF_INIT(1024);
	assert_int_equal(imap_utf8_to_utf7(utf8, &b), 0);
	assert_string_equal(buf_cstr(&b), utf7);
	buf_clear(&b);
	assert_int_equal(imap_utf7_to_utf8(utf7, &b), 0);
	assert_string_equal(buf_cstr(&b), utf8);
	buf_free(&b);
}

static void test_utf7(void **state)
{
	roundtrip("INBOX", "INBOX");
	roundtrip("Entwürfe", "Entw&APw-rfe");
	roundtrip("日本語", "&ZeVnLIqe-");
	roundtrip("Tom & Jerry", "Tom &- Jerry");
	roundtrip("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
	roundtrip("😀", "&2D3eAA-");
	const char *bad[] = { "&Jjo", "&AGE-", "&-&", "\xc3\xbc", "&2D3-", "&ZeV-" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct buf b = BUF_INIT(1024);
		assert_int_equal(imap_utf7_to_utf8(bad[i], &b), -1);
		buf_free(&b);
	}
	struct buf b = BUF_INIT(1024);
	assert_int_equal(imap_utf8_to_utf7("\xff", &b), -1);
	buf_free(&b);
}

/* ---- sequence sets ---- */

static void test_seqset(void **state)
{
	struct imap_seqset set;
	assert_int_equal(imap_seqset_parse("5:3,1,9:*,7", 10, &set), 0);
	assert_int_equal(set.count, 4);
	assert_int_equal(set.ranges[0].lo, 1);
	assert_int_equal(set.ranges[0].hi, 1);
	assert_int_equal(set.ranges[1].lo, 3);
	assert_int_equal(set.ranges[1].hi, 5);
	assert_int_equal(set.ranges[2].lo, 7);
	assert_int_equal(set.ranges[2].hi, 7);
	assert_int_equal(set.ranges[3].lo, 9);
	assert_int_equal(set.ranges[3].hi, 10);
	imap_seqset_free(&set);
	/* adjacent and overlapping ranges merge */
	assert_int_equal(imap_seqset_parse("1:3,4,6:8,2:7", 10, &set), 0);
	assert_int_equal(set.count, 1);
	assert_int_equal(set.ranges[0].hi, 8);
	assert_true(imap_seqset_contains(&set, 4));
	assert_true(imap_seqset_contains(&set, 8));
	assert_false(imap_seqset_contains(&set, 9));
	imap_seqset_free(&set);
	assert_int_equal(imap_seqset_parse("*:4", 2, &set), 0);
	assert_int_equal(set.ranges[0].lo, 2);
	assert_int_equal(set.ranges[0].hi, 4);
	imap_seqset_free(&set);
	const char *bad[] = { "", "0", "1:", ":2", "1,,2", "1:2:3", "a", "4294967296", "1 2" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(imap_seqset_parse(bad[i], 5, &set), -1);
	uint32_t uids[] = { 1, 2, 3, 5, 7, 8 };
	struct buf b = BUF_INIT(100);
	imap_append_uidset(&b, uids, 6);
	assert_string_equal(buf_cstr(&b), "1:3,5,7:8");
	buf_free(&b);
}

static void test_seqset_select(void **state)
{
	struct imap_msg msgs[3] = { { .uid = 4 }, { .uid = 7 }, { .uid = 9 } };
	struct imap_selected sel = { .msgs = msgs, .count = 3 };
	size_t *idx;
	int err;
	assert_int_equal(imap_seqset_select(&sel, "5:*", true, &idx, &err), 2);
	assert_int_equal(idx[0], 1);
	assert_int_equal(idx[1], 2);
	free(idx);
	/* "n:*" with n above every UID still names the last message */
	assert_int_equal(imap_seqset_select(&sel, "100:*", true, &idx, &err), 1);
	assert_int_equal(idx[0], 2);
	free(idx);
	assert_int_equal(imap_seqset_select(&sel, "4", false, &idx, &err), 0);
	assert_int_equal(err, -2);
	assert_int_equal(imap_seqset_select(&sel, "2:3", false, &idx, &err), 2);
	free(idx);
}

/* SEARCHRES: "$" names the saved UIDs still in the mailbox, in order, by UID and by
 * sequence number alike; an empty result names nothing without an error. */
static void test_seqset_saved(void **state)
{
	struct imap_msg msgs[3] = { { .uid = 4 }, { .uid = 7 }, { .uid = 9 } };
	struct imap_selected sel = { .msgs = msgs, .count = 3 };
	size_t *idx;
	int err;
	assert_int_equal(imap_seqset_select(&sel, "$", false, &idx, &err), 0);
	assert_int_equal(err, 0);
	free(idx);
	const uint32_t saved[] = { 2, 4, 8, 9 };     /* 2 and 8: expunged since */
	imap_selected_save(&sel, saved, 4);
	assert_int_equal(sel.n_saved, 4);
	for (int uid = 0; uid < 2; uid++) {
		assert_int_equal(imap_seqset_select(&sel, "$", uid, &idx, &err), 2);
		assert_int_equal(err, 0);
		assert_int_equal(idx[0], 0);
		assert_int_equal(idx[1], 2);
		free(idx);
	}
	assert_int_equal(imap_selected_find_uid(&sel, 7), 1);
	assert_int_equal(imap_selected_find_uid(&sel, 8), -1);
	assert_true(imap_seqset_valid("$"));
	assert_false(imap_seqset_valid("$,1"));
	imap_selected_save(&sel, NULL, 0);
	assert_null(sel.saved);
	assert_int_equal(sel.n_saved, 0);
}

/* ---- flags, dates, strings ---- */

static void test_flags(void **state)
{
	struct pool *pool = pool_new(4096);
	struct imap_arg *args;
	size_t n;
	const char *name, *error;
	unsigned flags;
	char kw[64];
	assert_int_equal(parse(pool, "t S (\\Seen \\flagged $Work $work Junk)", &args, &n, &name), 0);
	assert_int_equal(imap_parse_flags(args, n, &flags, kw, sizeof(kw), &error), 0);
	assert_int_equal(flags, STORE_FLAG_SEEN | STORE_FLAG_FLAGGED);
	assert_string_equal(kw, "$Work Junk");
	assert_int_equal(parse(pool, "t S (\\Recent)", &args, &n, &name), 0);
	assert_int_equal(imap_parse_flags(args, n, &flags, kw, sizeof(kw), &error), -1);
	assert_int_equal(parse(pool, "t S (\\Bogus)", &args, &n, &name), 0);
	assert_int_equal(imap_parse_flags(args, n, &flags, kw, sizeof(kw), &error), -1);
	assert_int_equal(parse(pool, "t S (a b c d e f g h i j k l m n o p q r s t u v w x y z "
			       "aa bb cc dd ee ff gg hh ii jj)", &args, &n, &name), 0);
	assert_int_equal(imap_parse_flags(args, n, &flags, kw, sizeof(kw), &error), -1);
	pool_free(&pool);
}

static void test_dates(void **state)
{
	int64_t t;
	char out[64];
	assert_int_equal(imap_parse_datetime("01-Jan-2024 10:00:00 +0100", &t), 0);
	imap_format_datetime(t, out, sizeof(out));
	assert_string_equal(out, "01-Jan-2024 09:00:00 +0000");
	assert_int_equal(imap_parse_datetime(" 7-Feb-1994 21:52:25 -0800", &t), 0);
	imap_format_datetime(t, out, sizeof(out));
	assert_string_equal(out, "08-Feb-1994 05:52:25 +0000");
	assert_int_equal(imap_parse_datetime("32-Jan-2024 10:00:00 +0000", &t), -1);
	assert_int_equal(imap_parse_datetime("01-Foo-2024 10:00:00 +0000", &t), -1);
	assert_int_equal(imap_parse_datetime("01-Jan-2024 10:00:00", &t), -1);
	assert_int_equal(imap_parse_date("5-Jan-2024", &t), 0);
	assert_int_equal(t, 1704412800);
	assert_int_equal(imap_parse_date("2024-01-05", &t), -1);
}

static void test_strings(void **state)
{
	struct buf b = BUF_INIT(1024);
	imap_append_astring(&b, "INBOX", 5);
	buf_append(&b, " ", 1);
	imap_append_astring(&b, "Sent Items", 10);
	buf_append(&b, " ", 1);
	imap_append_astring(&b, "a\"b", 3);
	buf_append(&b, " ", 1);
	imap_append_nstring(&b, NULL);
	buf_append(&b, " ", 1);
	imap_append_nstring(&b, "line\r\nbreak");
	assert_string_equal(buf_cstr(&b), "INBOX \"Sent Items\" \"a\\\"b\" NIL {11}\r\nline\r\nbreak");
	buf_free(&b);
	char name[512];
	assert_int_equal(imap_mailbox_from_client("inbox/Sub/", false, name, sizeof(name)), 0);
	assert_string_equal(name, "INBOX/Sub");
	assert_int_equal(imap_mailbox_from_client("Entw&APw-rfe", false, name, sizeof(name)), 0);
	assert_string_equal(name, "Entwürfe");
	assert_int_equal(imap_mailbox_from_client("a//b", false, name, sizeof(name)), -1);
	assert_int_equal(imap_mailbox_from_client("", false, name, sizeof(name)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_basic),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_line_literal),
		cmocka_unit_test(test_utf7),
		cmocka_unit_test(test_seqset),
		cmocka_unit_test(test_seqset_select),
		cmocka_unit_test(test_seqset_saved),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_strings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
