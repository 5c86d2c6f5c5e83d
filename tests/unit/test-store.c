/* test-store.c — the mailbox store on a real Berkeley DB environment on disk. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "storage/store.h"
#include "common/pool.h"

#include <limits.h>
#include <pthread.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[PATH_MAX];
static struct store *st;

static const char MSG1[] =
	"From: Alice <alice@example.test>\r\n"
	"To: Bob <bob@example.test>\r\n"
	"Subject: hello\r\n"
	"Message-ID: <1@example.test>\r\n"
	"\r\n"
	"Hi Bob.\r\n";
static const char MSG2[] =
	"From: carol@example.org\r\n"
	"Subject: =?utf-8?q?caf=C3=A9?=\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=XX\r\n"
	"\r\n"
	"--XX\r\nContent-Type: text/plain\r\n\r\none\r\n"
	"--XX\r\nContent-Type: text/html\r\n\r\n<p>two</p>\r\n"
	"--XX--\r\n";

static struct store_body body(const char *text)
{
	struct store_body b = { text, strlen(text), NULL };
	return b;
}

static int open_store(unsigned flags)
{
	struct store_settings settings = { .dir = dir, .flags = flags, .cache_mb = 16 };
	const char *err = NULL;
	int ret = store_open(&settings, &st, &err);
	if (ret != 0)
		fprintf(stderr, "store_open: %s\n", err);
	return ret;
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/warren-test-store-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	return open_store(STORE_OPEN_RECOVER);
}

static int teardown(void **state)
{
	store_close(&st);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void verify_clean(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);
	int faults = store_verify(st, fp, false);
	fclose(fp);
	if (faults != 0)
		fail_msg("store_verify: %d faults:\n%s", faults, text);
	free(text);
}

static uint64_t mailbox_id(const char *user, const char *name)
{
	struct store_mailbox m;
	assert_int_equal(store_mailbox_get(st, user, name, &m), STORE_OK);
	return m.id;
}

static void test_user_ensure(void **state)
{
	assert_int_equal(store_user_ensure(st, "alice@example.test"), STORE_OK);
	assert_int_equal(store_user_ensure(st, "alice@example.test"), STORE_OK);
	struct store_mailbox *list;
	size_t n;
	assert_int_equal(store_mailbox_list(st, "alice@example.test", &list, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].name, "INBOX");
	assert_int_equal(list[0].uidnext, 1);
	assert_true(list[0].uidvalidity > 0);
	free(list);
	assert_int_equal(store_user_ensure(st, ""), STORE_EINVAL);
	verify_clean();
}

static void test_mailbox_create_delete(void **state)
{
	const char *u = "alice@example.test";
	uint64_t id1, id2;
	assert_int_equal(store_user_ensure(st, u), STORE_OK);
	assert_int_equal(store_mailbox_create(st, u, "Sent", STORE_SPECIAL_SENT, &id1), STORE_OK);
	assert_int_equal(store_mailbox_create(st, u, "Sent", 0, NULL), STORE_EEXIST);
	assert_int_equal(store_mailbox_create(st, u, "inbox", 0, NULL), STORE_EEXIST);
	assert_int_equal(store_mailbox_create(st, u, "Work/Projects/", 0, &id2), STORE_OK);
	assert_int_equal(store_mailbox_create(st, u, "", 0, NULL), STORE_EINVAL);
	assert_int_equal(store_mailbox_create(st, u, "/abs", 0, NULL), STORE_EINVAL);
	assert_int_equal(store_mailbox_create(st, u, "a//b", 0, NULL), STORE_EINVAL);
	assert_int_equal(store_mailbox_create(st, u, "bad\nname", 0, NULL), STORE_EINVAL);
	assert_true(id2 > id1);
	struct store_mailbox m;
	assert_int_equal(store_mailbox_get(st, u, "Sent", &m), STORE_OK);
	assert_int_equal(m.special_use, STORE_SPECIAL_SENT);
	assert_int_equal(m.id, id1);
	assert_int_equal(store_mailbox_get(st, u, "Work/Projects", &m), STORE_OK);
	assert_int_equal(store_mailbox_get(st, u, "Nope", &m), STORE_ENOTFOUND);
	assert_int_equal(store_mailbox_get(st, "bob@example.test", "Sent", &m), STORE_ENOTFOUND);
	char user[400];
	assert_int_equal(store_mailbox_get_by_id(st, id1, user, sizeof(user), &m), STORE_OK);
	assert_string_equal(user, u);
	assert_string_equal(m.name, "Sent");
	assert_int_equal(store_mailbox_set_special_use(st, u, "Sent", STORE_SPECIAL_ARCHIVE),
			 STORE_OK);
	assert_int_equal(store_mailbox_get(st, u, "Sent", &m), STORE_OK);
	assert_int_equal(m.special_use, STORE_SPECIAL_ARCHIVE);

	assert_int_equal(store_mailbox_delete(st, u, "INBOX"), STORE_EINVAL);
	assert_int_equal(store_mailbox_delete(st, u, "Sent"), STORE_OK);
	assert_int_equal(store_mailbox_delete(st, u, "Sent"), STORE_ENOTFOUND);
	assert_int_equal(store_mailbox_get(st, u, "Sent", &m), STORE_ENOTFOUND);
	/* a new mailbox of the same name gets a new UIDVALIDITY */
	struct store_mailbox again;
	assert_int_equal(store_mailbox_create(st, u, "Sent", 0, NULL), STORE_OK);
	assert_int_equal(store_mailbox_get(st, u, "Sent", &again), STORE_OK);
	assert_int_not_equal(again.uidvalidity, m.uidvalidity);
	assert_int_not_equal(again.id, m.id);
	verify_clean();
}

static void test_rename_with_children(void **state)
{
	const char *u = "bob@example.test";
	store_user_ensure(st, u);
	assert_int_equal(store_mailbox_create(st, u, "a", 0, NULL), STORE_OK);
	assert_int_equal(store_mailbox_create(st, u, "a/b", 0, NULL), STORE_OK);
	assert_int_equal(store_mailbox_create(st, u, "a/b/c", 0, NULL), STORE_OK);
	assert_int_equal(store_mailbox_create(st, u, "ab", 0, NULL), STORE_OK);
	uint64_t id_b = mailbox_id(u, "a/b");
	assert_int_equal(store_mailbox_rename(st, u, "a", "x"), STORE_OK);
	struct store_mailbox *list;
	size_t n;
	assert_int_equal(store_mailbox_list(st, u, &list, &n), STORE_OK);
	assert_int_equal(n, 5);
	assert_string_equal(list[0].name, "INBOX");
	assert_string_equal(list[1].name, "ab");           /* not a child of "a" */
	assert_string_equal(list[2].name, "x");
	assert_string_equal(list[3].name, "x/b");
	assert_string_equal(list[4].name, "x/b/c");
	free(list);
	assert_int_equal(mailbox_id(u, "x/b"), id_b);      /* same mailbox, new name */
	assert_int_equal(store_mailbox_rename(st, u, "nothere", "y"), STORE_ENOTFOUND);
	assert_int_equal(store_mailbox_rename(st, u, "x", "ab"), STORE_EEXIST);
	assert_int_equal(store_mailbox_rename(st, u, "x", "x/inside"), STORE_EINVAL);
	assert_int_equal(store_mailbox_rename(st, u, "x", "INBOX"), STORE_EINVAL);
	verify_clean();
}

static void test_rename_inbox(void **state)
{
	const char *u = "carol@example.org";
	store_user_ensure(st, u);
	struct store_recipient r = { .user = u, .mailbox = "INBOX", .env_to = u };
	struct store_body b = body(MSG1);
	assert_int_equal(store_deliver(st, &b, "alice@example.test", 1000, &r, 1), STORE_OK);
	assert_int_equal(store_mailbox_rename(st, u, "INBOX", "Old"), STORE_OK);
	struct store_mailbox inbox, old;
	assert_int_equal(store_mailbox_get(st, u, "INBOX", &inbox), STORE_OK);
	assert_int_equal(store_mailbox_get(st, u, "Old", &old), STORE_OK);
	assert_int_equal(inbox.messages, 0);
	assert_int_equal(old.messages, 1);
	verify_clean();
}

static void test_deliver_many_recipients(void **state)
{
	struct store_recipient r[3] = {
		{ .user = "bob@example.test", .mailbox = "INBOX", .env_to = "info@example.test" },
		{ .user = "alice@example.test", .mailbox = "INBOX", .env_to = "info@example.test" },
		{ .user = "alice@example.test", .mailbox = "Lists/Info", .env_to = "x@example.test" },
	};
	struct store_body b = body(MSG2);
	assert_int_equal(store_deliver(st, &b, "carol@example.org", 1700000000, r, 3), STORE_OK);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(r[i].result, STORE_OK);
		assert_int_equal(r[i].uid, 1);
	}
	assert_int_not_equal(r[1].mailbox_id, r[2].mailbox_id);
	/* one body file for three copies */
	struct store_message *msgs;
	size_t n;
	assert_int_equal(store_messages(st, r[2].mailbox_id, 1, UINT32_MAX, &msgs, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(msgs[0].size, strlen(MSG2));
	assert_int_equal(msgs[0].internal_date, 1700000000);
	assert_string_equal(msgs[0].env_from, "carol@example.org");
	assert_string_equal(msgs[0].env_to, "x@example.test");
	assert_int_equal(msgs[0].flags, 0);
	char path[PATH_MAX];
	store_blob_path(st, msgs[0].blob, path, sizeof(path));
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, strlen(MSG2));
	char buf[64];
	size_t got;
	assert_int_equal(store_blob_read(st, msgs[0].blob, 6, buf, 5, &got), STORE_OK);
	assert_int_equal(got, 5);
	assert_memory_equal(buf, "carol", 5);
	assert_int_equal(store_blob_read(st, msgs[0].blob, 1 << 20, buf, 5, &got), STORE_OK);
	assert_int_equal(got, 0);
	void *mime;
	size_t mlen;
	assert_int_equal(store_blob_mime(st, msgs[0].blob, &mime, &mlen), STORE_OK);
	assert_true(mlen > 0);
	free(mime);
	free(msgs);

	struct store_mailbox m;
	assert_int_equal(store_mailbox_get(st, "alice@example.test", "INBOX", &m), STORE_OK);
	assert_int_equal(m.messages, 1);
	assert_int_equal(m.unseen, 1);
	assert_int_equal(m.uidnext, 2);
	assert_int_equal(m.size, strlen(MSG2));
	uint64_t bytes, count;
	assert_int_equal(store_user_usage(st, "alice@example.test", &bytes, &count), STORE_OK);
	assert_int_equal(bytes, 2 * strlen(MSG2));
	assert_int_equal(count, 2);

	/* the same body again adds references only; UIDs go on */
	assert_int_equal(store_deliver(st, &b, "", 1700000001, r, 1), STORE_OK);
	assert_int_equal(r[0].uid, 2);
	verify_clean();
}

static void test_deliver_from_file_and_errors(void **state)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/incoming.eml", dir);
	FILE *fp = fopen(path, "w");
	fputs(MSG1, fp);
	fclose(fp);
	struct store_body b = { NULL, 0, path };
	struct store_recipient r = { .user = "dave@example.test", .mailbox = "INBOX" };
	assert_int_equal(store_deliver(st, &b, "a@b.test", 5, &r, 1), STORE_OK);
	assert_int_equal(r.result, STORE_OK);
	struct store_body missing = { NULL, 0, "/nonexistent/file" };
	assert_int_equal(store_deliver(st, &missing, "a@b.test", 5, &r, 1), STORE_EIO);
	assert_int_equal(store_deliver(st, &b, "a@b.test", 5, &r, 0), STORE_EINVAL);
	struct store_recipient bad = { .user = "", .mailbox = "INBOX" };
	assert_int_equal(store_deliver(st, &b, "a@b.test", 5, &bad, 1), STORE_EINVAL);
	struct store_recipient badbox = { .user = "dave@example.test", .mailbox = "a//b" };
	assert_int_equal(store_deliver(st, &b, "a@b.test", 5, &badbox, 1), STORE_OK);
	assert_int_equal(badbox.result, STORE_EINVAL);
	verify_clean();
}

static void test_quota(void **state)
{
	const char *u = "erin@example.test";
	struct store_body b = body(MSG1);
	uint64_t quota = 2 * strlen(MSG1) + 1;
	struct store_recipient r = { .user = u, .mailbox = "INBOX", .quota = quota };
	assert_int_equal(store_deliver(st, &b, "x@y.test", 1, &r, 1), STORE_OK);
	assert_int_equal(r.result, STORE_OK);
	assert_int_equal(store_deliver(st, &b, "x@y.test", 1, &r, 1), STORE_OK);
	assert_int_equal(r.result, STORE_OK);
	assert_int_equal(store_deliver(st, &b, "x@y.test", 1, &r, 1), STORE_OK);
	assert_int_equal(r.result, STORE_EQUOTA);
	/* one over quota, another recipient still gets it */
	struct store_recipient two[2] = {
		{ .user = u, .mailbox = "INBOX", .quota = quota },
		{ .user = "frank@example.test", .mailbox = "INBOX" },
	};
	assert_int_equal(store_deliver(st, &b, "x@y.test", 1, two, 2), STORE_OK);
	assert_int_equal(two[0].result, STORE_EQUOTA);
	assert_int_equal(two[1].result, STORE_OK);
	uint32_t uid;
	assert_int_equal(store_append(st, u, "INBOX", &b, 0, NULL, 1, quota, &uid, NULL),
			 STORE_EQUOTA);
	/* expunging frees quota */
	uint64_t id = mailbox_id(u, "INBOX");
	uint32_t uids[1] = { 1 };
	assert_int_equal(store_expunge(st, id, uids, 1, NULL), STORE_OK);
	assert_int_equal(store_append(st, u, "INBOX", &b, 0, NULL, 1, quota, &uid, NULL),
			 STORE_OK);
	verify_clean();
}

static void test_append_flags_keywords(void **state)
{
	const char *u = "alice@example.test";
	store_user_ensure(st, u);
	assert_int_equal(store_mailbox_create(st, u, "Sent", STORE_SPECIAL_SENT, NULL), STORE_OK);
	struct store_body b = body(MSG1);
	uint32_t uid, uidvalidity;
	assert_int_equal(store_append(st, u, "Sent", &b, STORE_FLAG_SEEN, "$Forwarded Work",
				      1234, 0, &uid, &uidvalidity), STORE_OK);
	assert_int_equal(uid, 1);
	assert_int_equal(store_append(st, u, "NoSuchBox", &b, 0, NULL, 1, 0, &uid, NULL),
			 STORE_ENOTFOUND);
	uint64_t id = mailbox_id(u, "Sent");
	struct store_mailbox m;
	assert_int_equal(store_mailbox_get(st, u, "Sent", &m), STORE_OK);
	assert_int_equal(m.uidvalidity, uidvalidity);
	assert_int_equal(m.unseen, 0);
	uint64_t modseq0 = m.highestmodseq;

	struct store_flag_change ch[2] = { { .uid = 1 }, { .uid = 99 } };
	assert_int_equal(store_flags_update(st, id, STORE_FLAGS_REMOVE, STORE_FLAG_SEEN,
					    "work", 0, ch, 2), STORE_OK);
	assert_int_equal(ch[0].result, STORE_OK);
	assert_int_equal(ch[0].flags, 0);
	assert_string_equal(ch[0].keywords, "$Forwarded");
	assert_true(ch[0].modseq > modseq0);
	assert_int_equal(ch[1].result, STORE_ENOTFOUND);
	assert_int_equal(store_mailbox_get(st, u, "Sent", &m), STORE_OK);
	assert_int_equal(m.unseen, 1);
	assert_int_equal(m.highestmodseq, ch[0].modseq);

	/* CONDSTORE: UNCHANGEDSINCE below the message's modseq fails */
	uint64_t seen_modseq = ch[0].modseq;
	ch[0].uid = 1;
	assert_int_equal(store_flags_update(st, id, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED, NULL,
					    seen_modseq - 1, ch, 1), STORE_OK);
	assert_int_equal(ch[0].result, STORE_ECHANGED);
	assert_int_equal(store_flags_update(st, id, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED, "Red",
					    seen_modseq, ch, 1), STORE_OK);
	assert_int_equal(ch[0].result, STORE_OK);
	assert_int_equal(ch[0].flags, STORE_FLAG_FLAGGED);
	assert_string_equal(ch[0].keywords, "$Forwarded Red");
	/* no change: modseq stays */
	uint64_t before = ch[0].modseq;
	assert_int_equal(store_flags_update(st, id, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED, "red",
					    0, ch, 1), STORE_OK);
	assert_int_equal(ch[0].modseq, before);
	assert_int_equal(store_flags_update(st, id, STORE_FLAGS_REPLACE, STORE_FLAG_SEEN, "",
					    0, ch, 1), STORE_OK);
	assert_int_equal(ch[0].flags, STORE_FLAG_SEEN);
	assert_string_equal(ch[0].keywords, "");
	verify_clean();
}

static void test_expunge_and_vanished(void **state)
{
	const char *u = "bob@example.test";
	struct store_body b1 = body(MSG1), b2 = body(MSG2);
	struct store_recipient r = { .user = u, .mailbox = "INBOX" };
	for (int i = 0; i < 4; i++)
		assert_int_equal(store_deliver(st, i % 2 ? &b2 : &b1, "", i, &r, 1), STORE_OK);
	uint64_t id = r.mailbox_id;
	struct store_mailbox m;
	assert_int_equal(store_mailbox_get(st, u, "INBOX", &m), STORE_OK);
	uint64_t modseq = m.highestmodseq;
	uint32_t uids[3] = { 2, 4, 77 };
	uint64_t hms;
	assert_int_equal(store_expunge(st, id, uids, 3, &hms), STORE_OK);
	assert_int_equal(uids[0], 2);
	assert_int_equal(uids[1], 4);
	assert_int_equal(uids[2], 0);
	assert_true(hms > modseq);
	struct store_message *msgs;
	size_t n;
	assert_int_equal(store_messages(st, id, 1, UINT32_MAX, &msgs, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(msgs[0].uid, 1);
	assert_int_equal(msgs[1].uid, 3);
	free(msgs);
	assert_int_equal(store_messages(st, id, 2, 2, &msgs, &n), STORE_OK);
	assert_int_equal(n, 0);
	free(msgs);
	uint32_t *vanished;
	assert_int_equal(store_expunged_since(st, id, modseq, &vanished, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(vanished[0], 2);
	assert_int_equal(vanished[1], 4);
	free(vanished);
	assert_int_equal(store_expunged_since(st, id, hms, &vanished, &n), STORE_OK);
	assert_int_equal(n, 0);
	free(vanished);
	/* UIDs are never reused */
	assert_int_equal(store_deliver(st, &b1, "", 9, &r, 1), STORE_OK);
	assert_int_equal(r.uid, 5);
	verify_clean();
}

static void test_body_removed_with_last_reference(void **state)
{
	const char *u = "gina@example.test";
	struct store_body b = body("Subject: unique\r\n\r\nonly here\r\n");
	struct store_recipient r = { .user = u, .mailbox = "INBOX" };
	assert_int_equal(store_deliver(st, &b, "", 1, &r, 1), STORE_OK);
	struct store_message *msgs;
	size_t n;
	assert_int_equal(store_messages(st, r.mailbox_id, 1, 1, &msgs, &n), STORE_OK);
	char path[PATH_MAX];
	store_blob_path(st, msgs[0].blob, path, sizeof(path));
	free(msgs);
	assert_int_equal(access(path, F_OK), 0);
	/* a copy keeps the body alive */
	assert_int_equal(store_mailbox_create(st, u, "Keep", 0, NULL), STORE_OK);
	uint32_t src[1] = { 1 }, dst[1];
	assert_int_equal(store_copy(st, r.mailbox_id, src, 1, u, "Keep", 0, false, dst, NULL),
			 STORE_OK);
	assert_int_equal(dst[0], 1);
	uint32_t uids[1] = { 1 };
	assert_int_equal(store_expunge(st, r.mailbox_id, uids, 1, NULL), STORE_OK);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(store_mailbox_delete(st, u, "Keep"), STORE_OK);
	assert_int_not_equal(access(path, F_OK), 0);
	verify_clean();
}

static void test_copy_and_move(void **state)
{
	const char *u = "hank@example.test";
	struct store_body b = body(MSG2);
	struct store_recipient r = { .user = u, .mailbox = "INBOX", .flags = STORE_FLAG_SEEN };
	assert_int_equal(store_deliver(st, &b, "", 1, &r, 1), STORE_OK);
	r.flags = 0;
	assert_int_equal(store_deliver(st, &b, "", 2, &r, 1), STORE_OK);
	assert_int_equal(store_mailbox_create(st, u, "Trash", STORE_SPECIAL_TRASH, NULL), STORE_OK);
	uint64_t inbox = r.mailbox_id, trash = mailbox_id(u, "Trash");
	uint32_t src[3] = { 1, 2, 50 }, dst[3];
	uint32_t uidvalidity;
	assert_int_equal(store_copy(st, inbox, src, 3, u, "Trash", 0, false, dst, &uidvalidity),
			 STORE_OK);
	assert_int_equal(dst[0], 1);
	assert_int_equal(dst[1], 2);
	assert_int_equal(dst[2], 0);
	assert_int_equal(store_copy(st, inbox, src, 2, u, "Trash", 0, true, dst, NULL), STORE_OK);
	assert_int_equal(dst[0], 3);
	assert_int_equal(dst[1], 4);
	struct store_mailbox mi, mt;
	assert_int_equal(store_mailbox_get(st, u, "INBOX", &mi), STORE_OK);
	assert_int_equal(store_mailbox_get(st, u, "Trash", &mt), STORE_OK);
	assert_int_equal(mi.messages, 0);
	assert_int_equal(mi.unseen, 0);
	assert_int_equal(mt.messages, 4);
	assert_int_equal(mt.unseen, 2);
	assert_int_equal(mt.uidvalidity, uidvalidity);
	assert_int_equal(store_copy(st, inbox, src, 1, u, "Nowhere", 0, false, dst, NULL),
			 STORE_ENOTFOUND);
	assert_int_equal(store_copy(st, trash, src, 1, u, "Trash", 0, true, dst, NULL),
			 STORE_EINVAL);
	struct store_message *msgs;
	size_t n;
	assert_int_equal(store_messages(st, trash, 3, 3, &msgs, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(msgs[0].flags, STORE_FLAG_SEEN);   /* flags travel with the message */
	free(msgs);
	uint32_t *vanished;
	assert_int_equal(store_expunged_since(st, inbox, 0, &vanished, &n), STORE_OK);
	assert_int_equal(n, 2);
	free(vanished);
	verify_clean();
}

static void test_subscriptions(void **state)
{
	const char *u = "ivy@example.test";
	assert_int_equal(store_subscribe(st, u, "Sent", true), STORE_OK);
	assert_int_equal(store_subscribe(st, u, "Archive/2024", true), STORE_OK);
	assert_int_equal(store_subscribe(st, u, "Gone", true), STORE_OK);
	assert_int_equal(store_subscribe(st, u, "Gone", false), STORE_OK);
	assert_int_equal(store_subscribe(st, u, "Never", false), STORE_OK);
	char **names;
	size_t n;
	assert_int_equal(store_subscriptions(st, u, &names, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "Archive/2024");
	assert_string_equal(names[1], "Sent");
	store_free_names(names, n);
	assert_int_equal(store_mailbox_create(st, u, "Sent", 0, NULL), STORE_OK);
	struct store_mailbox m;
	assert_int_equal(store_mailbox_get(st, u, "Sent", &m), STORE_OK);
	assert_true(m.subscribed);
}

static void test_verify_finds_faults(void **state)
{
	const char *u = "jack@example.test";
	struct store_body b = body("Subject: x\r\n\r\nverify me\r\n");
	struct store_recipient r = { .user = u, .mailbox = "INBOX" };
	assert_int_equal(store_deliver(st, &b, "", 1, &r, 1), STORE_OK);
	verify_clean();
	struct store_message *msgs;
	size_t n;
	assert_int_equal(store_messages(st, r.mailbox_id, 1, 1, &msgs, &n), STORE_OK);
	char path[PATH_MAX];
	store_blob_path(st, msgs[0].blob, path, sizeof(path));
	free(msgs);
	assert_int_equal(unlink(path), 0);
	FILE *null = fopen("/dev/null", "w");
	assert_int_equal(store_verify(st, null, false), 1);
	/* an orphan file (old enough) is found and removed with repair */
	char orphan[PATH_MAX + 100];
	snprintf(orphan, sizeof(orphan), "%s/blobs/ab/%s", dir,
		 "abababababababababababababababababababababababababababababababab");
	FILE *fp = fopen(orphan, "w");
	fputs("orphan", fp);
	fclose(fp);
	char cmd[PATH_MAX + 200];
	snprintf(cmd, sizeof(cmd), "touch -d '2 hours ago' %s", orphan);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(store_verify(st, null, false), 2);
	assert_int_equal(store_verify(st, null, true), 1);
	assert_int_not_equal(access(orphan, F_OK), 0);
	fclose(null);
}

static void test_reopen_keeps_everything(void **state)
{
	const char *u = "kim@example.test";
	struct store_body b = body(MSG1);
	struct store_recipient r = { .user = u, .mailbox = "INBOX", .flags = STORE_FLAG_SEEN };
	assert_int_equal(store_deliver(st, &b, "", 1, &r, 1), STORE_OK);
	assert_int_equal(store_checkpoint(st), STORE_OK);
	store_close(&st);
	assert_int_equal(open_store(STORE_OPEN_RECOVER), STORE_OK);
	struct store_mailbox m;
	assert_int_equal(store_mailbox_get(st, u, "INBOX", &m), STORE_OK);
	assert_int_equal(m.messages, 1);
	assert_int_equal(m.unseen, 0);
	assert_int_equal(store_failchk(st), STORE_OK);
	verify_clean();
}

static int count_log_files(void)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/store", dir);
	DIR *d = opendir(path);
	int n = 0;
	struct dirent *e;
	while (d != NULL && (e = readdir(d)) != NULL)
		n += strncmp(e->d_name, "log.", 4) == 0;
	if (d != NULL)
		closedir(d);
	return n;
}

/* The disk does not grow without bound: with small log files (DB_CONFIG), many
 * deliveries fill several, and checkpoints remove those no longer needed. */
static void test_checkpoints_remove_old_logs(void **state)
{
	/* a new store, so that its first log file is small too */
	store_close(&st);
	char path[2 * PATH_MAX + 64];
	snprintf(path, sizeof(path), "rm -rf '%s'/* && mkdir '%s/store'", dir, dir);
	assert_int_equal(system(path), 0);
	snprintf(path, sizeof(path), "%s/store/DB_CONFIG", dir);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("set_lg_bsize 65536\nset_lg_max 262144\n", fp);
	fclose(fp);
	assert_int_equal(open_store(STORE_OPEN_RECOVER), STORE_OK);
	char msg[4096];
	int most = 0;
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 150; i++) {
			snprintf(msg, sizeof(msg), "Subject: log %d.%d\r\n\r\n%0*d\r\n", round, i,
				 2000, i);
			struct store_body b = body(msg);
			struct store_recipient r = { .user = "logs@example.test", .mailbox = "INBOX" };
			assert_int_equal(store_deliver(st, &b, "", 1, &r, 1), STORE_OK);
		}
		int before = count_log_files();
		if (before > most)
			most = before;
		assert_int_equal(store_checkpoint(st), STORE_OK);
		assert_int_equal(store_checkpoint(st), STORE_OK);
		assert_true(count_log_files() <= 2);
	}
	assert_true(most > 2);     /* the deliveries did fill several log files */
	verify_clean();
}

static void test_backup(void **state)
{
	const char *u = "lee@example.test";
	struct store_body b = body(MSG2);
	struct store_recipient r = { .user = u, .mailbox = "INBOX" };
	assert_int_equal(store_deliver(st, &b, "", 1, &r, 1), STORE_OK);
	char bdir[PATH_MAX + 16];
	snprintf(bdir, sizeof(bdir), "%s/backup", dir);
	const char *err = NULL;
	assert_int_equal(store_backup(st, bdir, &err), STORE_OK);
	/* the copy opens as a store of its own with the same content */
	struct store *copy;
	struct store_settings settings = { .dir = bdir, .flags = STORE_OPEN_RECOVER };
	assert_int_equal(store_open(&settings, &copy, &err), STORE_OK);
	struct store_mailbox m;
	assert_int_equal(store_mailbox_get(copy, u, "INBOX", &m), STORE_OK);
	assert_int_equal(m.messages, 1);
	FILE *null = fopen("/dev/null", "w");
	assert_int_equal(store_verify(copy, null, false), 0);
	fclose(null);
	store_close(&copy);
}

/* A second process attached to the same environment sees committed changes,
 * and a notification reaches the first. */
static void notified(uint64_t id, void *ctx)
{
	*(uint64_t *)ctx = id;
}

static void test_two_processes_and_notify(void **state)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	uint64_t got = 0;
	assert_int_equal(store_notify_start(st, &loop, notified, &got), STORE_OK);
	pid_t pid = fork();
	if (pid == 0) {
		struct store *child;
		struct store_settings settings = { .dir = dir };
		const char *err;
		if (store_open(&settings, &child, &err) != 0)
			_exit(1);
		struct store_body b = body(MSG1);
		struct store_recipient r = { .user = "mo@example.test", .mailbox = "INBOX" };
		int ret = store_deliver(child, &b, "", 1, &r, 1);
		store_close(&child);
		_exit(ret == 0 && r.result == 0 ? 0 : 2);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	for (int i = 0; i < 200 && got == 0; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(5000);
	}
	uint64_t id = mailbox_id("mo@example.test", "INBOX");
	assert_int_equal(got, id);
	store_notify_stop(st);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	verify_clean();
}

static int async_work(void *arg)
{
	return store_user_ensure(st, (const char *)arg);
}

static void async_done(void *arg, int result)
{
	*(int *)((char *)arg + 64) = result + 100;
}

static void test_async(void **state)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	char arg[128] = "async@example.test";
	*(int *)(arg + 64) = 0;
	assert_int_equal(store_async(&loop, async_work, async_done, arg), STORE_OK);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(*(int *)(arg + 64), 100);
	assert_int_equal(uv_loop_close(&loop), 0);
	struct store_mailbox m;
	assert_int_equal(store_mailbox_get(st, "async@example.test", "INBOX", &m), STORE_OK);
}

/* ---- regressions found reviewing storage/ for issue #3 ---- */

/* A delivery to more mailboxes than one notification datagram holds (64) must
 * still announce every one of them (it announced the first 64 only). */
struct seen_ids {
	uint64_t ids[128];
	size_t n;
};

static void collect_id(uint64_t id, void *ctx)
{
	struct seen_ids *s = ctx;
	for (size_t i = 0; i < s->n; i++)
		if (s->ids[i] == id)
			return;
	if (s->n < 128)
		s->ids[s->n++] = id;
}

static void test_notify_reaches_every_recipient_mailbox(void **state)
{
	enum { RCPTS = 70 };
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct seen_ids seen = { .n = 0 };
	assert_int_equal(store_notify_start(st, &loop, collect_id, &seen), STORE_OK);
	char users[RCPTS][64];
	struct store_recipient r[RCPTS];
	memset(r, 0, sizeof(r));
	for (int i = 0; i < RCPTS; i++) {
		snprintf(users[i], sizeof(users[i]), "n%02d@example.test", i);
		r[i].user = users[i];
		r[i].mailbox = "INBOX";
	}
	struct store_body b = body(MSG1);
	assert_int_equal(store_deliver(st, &b, "", 1, r, RCPTS), STORE_OK);
	for (int i = 0; i < 200 && seen.n < RCPTS; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(5000);
	}
	assert_int_equal(seen.n, RCPTS);
	for (int i = 0; i < RCPTS; i++) {
		bool found = false;
		for (size_t j = 0; j < seen.n; j++)
			found |= seen.ids[j] == r[i].mailbox_id;
		assert_true(found);
	}
	store_notify_stop(st);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	verify_clean();
}

/* Two writers deliver and expunge the same content over and over: the removal
 * of the last copy may take the file a delivery has just written (it has no
 * record yet). Every delivery must succeed and its body must be readable (the
 * delivery gave up after one rewrite and could then report success without its
 * transaction). */
#define CHURN_ROUNDS 200

struct churn {
	const char *user;
	int failures;
	int unreadable;
	int rounds;
};

static void *churn_main(void *arg)
{
	struct churn *c = arg;
	static const char text[] = "Subject: same\r\n\r\nthe same body for everyone\r\n";
	struct store_body b = { text, sizeof(text) - 1, NULL };
	for (int i = 0; i < CHURN_ROUNDS; i++) {
		struct store_recipient r = { .user = c->user, .mailbox = "INBOX" };
		if (store_deliver(st, &b, "", 1, &r, 1) != STORE_OK || r.result != STORE_OK) {
			c->failures++;
			continue;
		}
		struct store_message *msgs;
		size_t n;
		if (store_messages(st, r.mailbox_id, r.uid, r.uid, &msgs, &n) != STORE_OK ||
		    n != 1) {
			c->failures++;
			continue;
		}
		char buf[128];
		size_t got = 0;
		if (store_blob_read(st, msgs[0].blob, 0, buf, sizeof(buf), &got) != STORE_OK ||
		    got != sizeof(text) - 1)
			c->unreadable++;
		free(msgs);
		uint32_t uid = r.uid;
		if (store_expunge(st, r.mailbox_id, &uid, 1, NULL) != STORE_OK || uid != r.uid)
			c->failures++;
		c->rounds++;
	}
	return NULL;
}

static void test_same_body_delivered_and_removed_concurrently(void **state)
{
	struct churn c[3] = { { .user = "c1@example.test" }, { .user = "c2@example.test" },
			      { .user = "c3@example.test" } };
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, churn_main, &c[i]), 0);
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(c[i].failures, 0);
		assert_int_equal(c[i].unreadable, 0);
		assert_int_equal(c[i].rounds, CHURN_ROUNDS);
	}
	verify_clean();
}

/* A crash between creating a body in blobs/tmp and renaming it leaves a file
 * nothing removed: verify reports it once it is old, --repair removes it, and a
 * young one (a delivery in progress) is left alone. */
static void test_verify_sweeps_stale_tmp_files(void **state)
{
	char old_tmp[PATH_MAX + 64], new_tmp[PATH_MAX + 64];
	snprintf(old_tmp, sizeof(old_tmp), "%s/blobs/tmp/00112233445566778899aabb", dir);
	snprintf(new_tmp, sizeof(new_tmp), "%s/blobs/tmp/ffeeddccbbaa998877665544", dir);
	FILE *fp = fopen(old_tmp, "w");
	fputs("half a message", fp);
	fclose(fp);
	fp = fopen(new_tmp, "w");
	fputs("a message being written", fp);
	fclose(fp);
	char cmd[PATH_MAX + 200];
	snprintf(cmd, sizeof(cmd), "touch -d '2 hours ago' %s", old_tmp);
	assert_int_equal(system(cmd), 0);
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	assert_int_equal(store_verify(st, mem, false), 1);
	fclose(mem);
	assert_non_null(strstr(text, "stale temporary body file"));
	assert_non_null(strstr(text, old_tmp));
	assert_null(strstr(text, new_tmp));
	free(text);
	FILE *null = fopen("/dev/null", "w");
	assert_int_equal(store_verify(st, null, true), 0);
	fclose(null);
	assert_int_not_equal(access(old_tmp, F_OK), 0);
	assert_int_equal(access(new_tmp, F_OK), 0);
	verify_clean();
}

/* While a backup runs (blobs/.backup names a live process) the checkpoint, which
 * would remove logs the copy still needs, waits; afterwards it runs again. */
static void test_checkpoint_waits_for_a_backup(void **state)
{
	char lock[PATH_MAX + 32];
	snprintf(lock, sizeof(lock), "%s/blobs/.backup", dir);
	FILE *fp = fopen(lock, "w");
	fprintf(fp, "%ld\n", (long)getpid());
	fclose(fp);
	struct store_body b = body(MSG1);
	struct store_recipient r = { .user = "ck@example.test", .mailbox = "INBOX" };
	assert_int_equal(store_deliver(st, &b, "", 1, &r, 1), STORE_OK);
	/* the body of an expunged message stays while the backup copies */
	struct store_message *msgs;
	size_t n;
	assert_int_equal(store_messages(st, r.mailbox_id, 1, 1, &msgs, &n), STORE_OK);
	char path[PATH_MAX];
	store_blob_path(st, msgs[0].blob, path, sizeof(path));
	free(msgs);
	uint32_t uid = r.uid;
	assert_int_equal(store_expunge(st, r.mailbox_id, &uid, 1, NULL), STORE_OK);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(store_checkpoint(st), STORE_OK);
	unlink(lock);
	assert_int_equal(store_checkpoint(st), STORE_OK);
	/* the body left behind is an orphan, swept once old */
	char cmd[PATH_MAX + 200];
	snprintf(cmd, sizeof(cmd), "touch -d '2 hours ago' %s", path);
	assert_int_equal(system(cmd), 0);
	FILE *null = fopen("/dev/null", "w");
	assert_int_equal(store_verify(st, null, false), 1);
	assert_int_equal(store_verify(st, null, true), 0);
	fclose(null);
	assert_int_not_equal(access(path, F_OK), 0);
}

/* Renaming a mailbox with more children than one datagram holds announces every
 * renamed mailbox (the list stopped at 64). */
static void test_rename_announces_every_child(void **state)
{
	enum { CHILDREN = 70 };
	const char *u = "tree@example.test";
	uint64_t ids[CHILDREN + 1];
	assert_int_equal(store_mailbox_create(st, u, "top", 0, &ids[0]), STORE_OK);
	for (int i = 0; i < CHILDREN; i++) {
		char name[32];
		snprintf(name, sizeof(name), "top/c%02d", i);
		assert_int_equal(store_mailbox_create(st, u, name, 0, &ids[i + 1]), STORE_OK);
	}
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct seen_ids seen = { .n = 0 };
	assert_int_equal(store_notify_start(st, &loop, collect_id, &seen), STORE_OK);
	assert_int_equal(store_mailbox_rename(st, u, "top", "moved"), STORE_OK);
	for (int i = 0; i < 200 && seen.n < CHILDREN + 1; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(5000);
	}
	assert_int_equal(seen.n, CHILDREN + 1);
	for (int i = 0; i <= CHILDREN; i++) {
		bool found = false;
		for (size_t j = 0; j < seen.n; j++)
			found |= seen.ids[j] == ids[i];
		assert_true(found);
	}
	store_notify_stop(st);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	assert_int_equal(mailbox_id(u, "moved/c69"), ids[CHILDREN]);
	verify_clean();
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_user_ensure),
		T(test_mailbox_create_delete),
		T(test_rename_with_children),
		T(test_rename_inbox),
		T(test_deliver_many_recipients),
		T(test_deliver_from_file_and_errors),
		T(test_quota),
		T(test_append_flags_keywords),
		T(test_expunge_and_vanished),
		T(test_body_removed_with_last_reference),
		T(test_copy_and_move),
		T(test_subscriptions),
		T(test_verify_finds_faults),
		T(test_reopen_keeps_everything),
		T(test_backup),
		T(test_two_processes_and_notify),
		T(test_async),
		T(test_notify_reaches_every_recipient_mailbox),
		T(test_same_body_delivered_and_removed_concurrently),
		T(test_verify_sweeps_stale_tmp_files),
		T(test_checkpoint_waits_for_a_backup),
		T(test_checkpoints_remove_old_logs),
		T(test_rename_announces_every_child),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
