/* test-smtp-parse.c — smtpd's parsers: paths, addresses, xtext, networks and the
 * DATA byte parser (dot-unstuffing, end of data, bare CR/LF, smuggling), the
 * latter also fed one byte at a time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../smtpd/smtp-parse.c"
#include "../../smtpd/smtp-dot.c"

#include <stdlib.h>

/* ---- paths and addresses ---- */

static void test_parse_path(void **state)
{
	char addr[SMTP_PATH_MAX + 1];
	const char *params;
	assert_int_equal(smtp_parse_path("FROM:<a@b.test>", "FROM:", addr, sizeof(addr), &params), 0);
	assert_string_equal(addr, "a@b.test");
	assert_string_equal(params, "");
	assert_int_equal(smtp_parse_path("from: <a@b.test> SIZE=10 BODY=8BITMIME", "FROM:", addr,
					 sizeof(addr), &params), 0);
	assert_string_equal(addr, "a@b.test");
	assert_string_equal(params, "SIZE=10 BODY=8BITMIME");
	assert_int_equal(smtp_parse_path("FROM:<>", "FROM:", addr, sizeof(addr), &params), 0);
	assert_string_equal(addr, "");
	assert_int_equal(smtp_parse_path("TO:<@relay.test,@x.test:bob@b.test>", "TO:", addr,
					 sizeof(addr), &params), 0);
	assert_string_equal(addr, "bob@b.test");
	assert_int_equal(smtp_parse_path("TO:<\"a >b\"@b.test>", "TO:", addr, sizeof(addr),
					 &params), 0);
	assert_string_equal(addr, "\"a >b\"@b.test");
	/* bad */
	assert_int_equal(smtp_parse_path("FROM:a@b.test", "FROM:", addr, sizeof(addr), &params), -1);
	assert_int_equal(smtp_parse_path("FROM:<a@b.test", "FROM:", addr, sizeof(addr), &params), -1);
	assert_int_equal(smtp_parse_path("FROM:<a@b.test>x", "FROM:", addr, sizeof(addr), &params), -1);
	assert_int_equal(smtp_parse_path("TO:<a@b.test>", "FROM:", addr, sizeof(addr), &params), -1);
	assert_int_equal(smtp_parse_path("FROM:<a b@c.test>", "FROM:", addr, sizeof(addr), &params), -1);
	char longpath[400];
	memset(longpath, 'a', sizeof(longpath));
	memcpy(longpath, "FROM:<", 6);
	strcpy(longpath + 380, "@b.test>");
	assert_int_equal(smtp_parse_path(longpath, "FROM:", addr, sizeof(addr), &params), -1);
}

static void test_address_valid(void **state)
{
	assert_true(smtp_address_valid("alice@example.test", false));
	assert_true(smtp_address_valid("a.b+c@example.test", false));
	assert_true(smtp_address_valid("\"a b\"@example.test", false));
	assert_true(smtp_address_valid("x@[192.0.2.1]", false));
	assert_true(smtp_address_valid("x@[IPv6:2001:db8::1]", false));
	assert_false(smtp_address_valid("alice", false));
	assert_false(smtp_address_valid("@example.test", false));
	assert_false(smtp_address_valid("a..b@example.test", false));
	assert_false(smtp_address_valid(".a@example.test", false));
	assert_false(smtp_address_valid("a@-x.test", false));
	assert_false(smtp_address_valid("a@x..test", false));
	assert_false(smtp_address_valid("a@[300.1.1.1]", false));
	assert_false(smtp_address_valid("j\xc3\xb6rg@example.test", false));
	assert_true(smtp_address_valid("j\xc3\xb6rg@example.test", true));
	assert_true(smtp_address_valid("x@b\xc3\xbc" "cher.test", true));
	/* SMTPUTF8 addresses must be well-formed UTF-8 */
	assert_false(smtp_address_valid("j\xf6rg@example.test", true));          /* Latin-1 */
	assert_false(smtp_address_valid("j\xc3@example.test", true));            /* cut short */
	assert_false(smtp_address_valid("j\xc0\xafrg@example.test", true));      /* overlong */
	assert_false(smtp_address_valid("j\xed\xa0\x80@example.test", true));    /* surrogate */
	assert_true(smtp_address_valid("\xf0\x9f\x98\x80@example.test", true)); /* U+1F600 */
	/* local parts past 64 are accepted (SRS), paths past 256 are not */
	char local[300];
	memset(local, 'a', 100);
	strcpy(local + 100, "@x.test");
	assert_true(smtp_address_valid(local, false));
	memset(local, 'a', 250);
	strcpy(local + 250, "@x.test");
	assert_false(smtp_address_valid(local, false));
}

static void test_xtext(void **state)
{
	char out[32];
	assert_int_equal(smtp_xtext_decode("abc+2Bd", 7, out, sizeof(out)), 0);
	assert_string_equal(out, "abc+d");
	assert_int_equal(smtp_xtext_decode("a+2", 3, out, sizeof(out)), -1);
	assert_int_equal(smtp_xtext_decode("a+zz", 4, out, sizeof(out)), -1);
	assert_int_equal(smtp_xtext_decode("a=b", 3, out, sizeof(out)), -1);
	assert_int_equal(smtp_xtext_decode("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 36, out,
					   sizeof(out)), -1);
}

static void test_net_match(void **state)
{
	const char *nets[] = { "192.0.2.0/24", "10.1.2.3", "2001:db8::/32", "172.16.0.0/12" };
	assert_true(smtp_net_match("192.0.2.77", nets, 4));
	assert_true(smtp_net_match("::ffff:192.0.2.77", nets, 4));
	assert_true(smtp_net_match("10.1.2.3", nets, 4));
	assert_false(smtp_net_match("10.1.2.4", nets, 4));
	assert_true(smtp_net_match("2001:db8:1::5", nets, 4));
	assert_false(smtp_net_match("2001:db9::5", nets, 4));
	assert_true(smtp_net_match("172.31.255.1", nets, 4));
	assert_false(smtp_net_match("172.32.0.1", nets, 4));
	assert_false(smtp_net_match("127.0.0.1", nets, 0));
	const char *all[] = { "0.0.0.0/0" };
	assert_true(smtp_net_match("127.0.0.1", all, 1));
}

/* ---- the DATA parser ---- */

struct sink {
	char data[4096];
	size_t len;
};

static void sink_emit(void *ctx, const char *data, size_t len)
{
	struct sink *k = ctx;
	assert_true(k->len + len <= sizeof(k->data));
	memcpy(k->data + k->len, data, len);
	k->len += len;
}

/* Feeds in whole, then byte by byte; both ways must agree. Returns bytes used. */
static size_t run_dot(const char *in, bool normalize, size_t max_line, struct sink *out,
		      struct smtp_dot *d_r)
{
	struct smtp_dot d;
	struct sink whole = { .len = 0 };
	size_t len = strlen(in);
	smtp_dot_init(&d, normalize, max_line);
	size_t used = smtp_dot_feed(&d, in, len, sink_emit, &whole);
	struct smtp_dot d2;
	smtp_dot_init(&d2, normalize, max_line);
	out->len = 0;
	size_t used2 = 0;
	for (size_t i = 0; i < len && d2.state != SMTP_DOT_DONE; i++)
		used2 += smtp_dot_feed(&d2, in + i, 1, sink_emit, out);
	assert_int_equal(used, used2);
	assert_int_equal(whole.len, out->len);
	assert_memory_equal(whole.data, out->data, out->len);
	assert_int_equal(d.state, d2.state);
	assert_int_equal(d.bare, d2.bare);
	assert_int_equal(d.line_too_long, d2.line_too_long);
	*d_r = d;
	return used;
}

static void test_dot_basic(void **state)
{
	struct sink out;
	struct smtp_dot d;
	const char *in = "Subject: x\r\n\r\n..leading dot\r\nbody\r\n.\r\nNOOP\r\n";
	size_t used = run_dot(in, false, 1000, &out, &d);
	assert_int_equal(d.state, SMTP_DOT_DONE);
	assert_int_equal(used, strlen(in) - strlen("NOOP\r\n"));
	out.data[out.len] = '\0';
	assert_string_equal(out.data, "Subject: x\r\n\r\n.leading dot\r\nbody\r\n");
	assert_false(d.bare);
	/* an empty message */
	used = run_dot(".\r\n", false, 1000, &out, &d);
	assert_int_equal(d.state, SMTP_DOT_DONE);
	assert_int_equal(out.len, 0);
	/* not finished yet */
	run_dot("abc\r\n.\r", false, 1000, &out, &d);
	assert_int_equal(d.state, SMTP_DOT_DOT_CR);
}

static void test_dot_smuggling(void **state)
{
	struct sink out;
	struct smtp_dot d;
	/* none of these end the data */
	const char *attempts[] = {
		"a\n.\nMAIL FROM:<x@y>\r\n",
		"a\n.\r\nMAIL FROM:<x@y>\r\n",
		"a\r.\rMAIL FROM:<x@y>\r\n",
		"a\r\n.\nMAIL FROM:<x@y>\r\n",
		"a\r\n.\rMAIL FROM:<x@y>\r\n",
	};
	for (size_t i = 0; i < sizeof(attempts) / sizeof(attempts[0]); i++) {
		for (int norm = 0; norm < 2; norm++) {
			size_t used = run_dot(attempts[i], norm, 1000, &out, &d);
			assert_int_equal(used, strlen(attempts[i]));
			assert_int_not_equal(d.state, SMTP_DOT_DONE);
			assert_true(d.bare);
		}
	}
	/* normalized: the bare LF becomes CRLF, the dot stays (no new SMTP line) */
	run_dot("a\n.\nb\r\n.\r\n", true, 1000, &out, &d);
	assert_int_equal(d.state, SMTP_DOT_DONE);
	out.data[out.len] = '\0';
	assert_string_equal(out.data, "a\r\n.\r\nb\r\n");
}

static void test_dot_long_lines(void **state)
{
	static char in[3000];
	struct sink out;
	struct smtp_dot d;
	memset(in, 'x', 2000);
	strcpy(in + 2000, "\r\n.\r\n");
	run_dot(in, false, 2000, &out, &d);
	assert_int_equal(d.state, SMTP_DOT_DONE);
	assert_false(d.line_too_long);
	assert_int_equal(out.len, 2002);
	run_dot(in, false, 1999, &out, &d);
	assert_true(d.line_too_long);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_path),
		cmocka_unit_test(test_address_valid),
		cmocka_unit_test(test_xtext),
		cmocka_unit_test(test_net_match),
		cmocka_unit_test(test_dot_basic),
		cmocka_unit_test(test_dot_smuggling),
		cmocka_unit_test(test_dot_long_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
