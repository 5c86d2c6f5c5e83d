/* test-mailfmt.c — what warrenctl import/export read and write about a message
 * (conf/warrenctl-mailfmt.c: maildir flags and keywords, Maildir++ folder names,
 * mbox dates, CRLF conversion) and the shared counter file behind /metrics
 * (common/metrics.c), counted by several processes at once. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

/* warrenctl is a program, not a library: its helper file is compiled in here */
#include "conf/warrenctl-mailfmt.c"
#include "common/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

static void test_maildir_flags(void **state)
{
	struct mailfmt_keywords kw = { .count = 2 };
	snprintf(kw.names[0], sizeof(kw.names[0]), "Work");
	snprintf(kw.names[1], sizeof(kw.names[1]), "$Label2");
	char keywords[STORE_KEYWORDS_MAX];
	assert_int_equal(mailfmt_maildir_flags("1700.M1.host,S=40:2,FRS", &kw, keywords,
					       sizeof(keywords)),
			 STORE_FLAG_FLAGGED | STORE_FLAG_ANSWERED | STORE_FLAG_SEEN);
	assert_string_equal(keywords, "");
	assert_int_equal(mailfmt_maildir_flags("x:2,DTPab", &kw, keywords, sizeof(keywords)),
			 STORE_FLAG_DRAFT | STORE_FLAG_DELETED);
	assert_string_equal(keywords, "$Forwarded Work $Label2");
	/* no info, an unknown letter, a keyword letter without a name */
	assert_int_equal(mailfmt_maildir_flags("1700.M1.host", &kw, keywords, sizeof(keywords)), 0);
	assert_int_equal(mailfmt_maildir_flags("x:2,Xz", &kw, keywords, sizeof(keywords)), 0);
	assert_string_equal(keywords, "");
}

static void test_maildir_info_round_trip(void **state)
{
	struct mailfmt_keywords kw = { 0 };
	char info[64];
	unsigned dropped = 0;
	mailfmt_maildir_info(STORE_FLAG_SEEN | STORE_FLAG_DRAFT, "Zeta $Forwarded Alpha", &kw,
			     info, sizeof(info), &dropped);
	/* flags in ASCII order, then the keywords' letters in order */
	assert_string_equal(info, ":2,DPSab");
	assert_int_equal(kw.count, 2);
	assert_string_equal(kw.names[0], "Zeta");
	char keywords[STORE_KEYWORDS_MAX];
	char name[80];
	snprintf(name, sizeof(name), "1.W1.h%s", info);
	assert_int_equal(mailfmt_maildir_flags(name, &kw, keywords, sizeof(keywords)),
			 STORE_FLAG_SEEN | STORE_FLAG_DRAFT);
	assert_string_equal(keywords, "$Forwarded Zeta Alpha");
	/* the 27th keyword of a folder does not fit */
	for (int i = 0; i < 30; i++) {
		char word[16];
		snprintf(word, sizeof(word), "k%d", i);
		mailfmt_maildir_info(0, word, &kw, info, sizeof(info), &dropped);
	}
	assert_int_equal(kw.count, MAILFMT_KEYWORDS_MAX);
	assert_int_equal(dropped, 30 + 2 - MAILFMT_KEYWORDS_MAX);
}

static void test_folder_names(void **state)
{
	char dir[256], name[256];
	assert_int_equal(mailfmt_folder_to_dir("Archive/2024", dir, sizeof(dir)), 0);
	assert_string_equal(dir, ".Archive.2024");
	assert_int_equal(mailfmt_folder_to_dir("v1.2/50%", dir, sizeof(dir)), 0);
	assert_string_equal(dir, ".v1%2E2.50%25");
	assert_int_equal(mailfmt_dir_to_folder(dir, name, sizeof(name)), 0);
	assert_string_equal(name, "v1.2/50%");
	assert_int_equal(mailfmt_dir_to_folder(".Lists.debian", name, sizeof(name)), 0);
	assert_string_equal(name, "Lists/debian");
	/* empty levels are refused */
	assert_int_equal(mailfmt_dir_to_folder(".", name, sizeof(name)), -1);
	assert_int_equal(mailfmt_dir_to_folder(".a..b", name, sizeof(name)), -1);
	assert_int_equal(mailfmt_dir_to_folder(".a.", name, sizeof(name)), -1);
	/* too long for the buffer */
	assert_int_equal(mailfmt_folder_to_dir("abcdefgh", dir, 5), -1);
}

static void test_asctime(void **state)
{
	int64_t t;
	assert_int_equal(mailfmt_parse_asctime(" Mon Nov 13 10:00:00 2023", &t), 0);
	assert_int_equal(t, 1699869600);
	assert_int_equal(mailfmt_parse_asctime("Mon Nov 13 11:00:00 +0100 2023\n", &t), 0);
	assert_int_equal(t, 1699869600);
	assert_int_equal(mailfmt_parse_asctime("not a date", &t), -1);
	assert_int_equal(mailfmt_parse_asctime("Mon Nov 13 10:00:00 2023 trailing", &t), -1);
	char out[64];
	mailfmt_format_asctime(1614834367, out, sizeof(out));
	assert_string_equal(out, "Thu Mar  4 05:06:07 2021");
}

static void test_crlf(void **state)
{
	struct mailfmt_buf b = { .max = 64 };
	assert_int_equal(mailfmt_buf_add_crlf(&b, "a\nb\r\nc", 6), 0);
	/* a CRLF split between two calls stays one line end */
	assert_int_equal(mailfmt_buf_add_crlf(&b, "\r", 1), 0);
	assert_int_equal(mailfmt_buf_add_crlf(&b, "\nd\n", 3), 0);
	assert_int_equal(b.len, 12);
	assert_memory_equal(b.data, "a\r\nb\r\nc\r\nd\r\n", 12);
	/* the maximum holds */
	char big[100];
	memset(big, 'x', sizeof(big));
	assert_int_equal(mailfmt_buf_add_crlf(&b, big, sizeof(big)), -1);
	mailfmt_buf_free(&b);
}

static void test_keyword_list(void **state)
{
	char list[16] = "";
	mailfmt_add_keyword(list, sizeof(list), "one", 3);
	mailfmt_add_keyword(list, sizeof(list), "one", 3);
	mailfmt_add_keyword(list, sizeof(list), "two", 3);
	mailfmt_add_keyword(list, sizeof(list), "toolongtofit", 12);
	assert_string_equal(list, "one two");
}

static void test_metrics_shared_by_processes(void **state)
{
	char dir[] = "/tmp/warren-metrics-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct metrics_snapshot snap;
	assert_int_equal(metrics_read(dir, &snap), -1);   /* nothing counted yet */
	enum { CHILDREN = 4, EACH = 20000 };
	for (int c = 0; c < CHILDREN; c++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			if (metrics_open(dir) < 0)
				_exit(1);
			for (int i = 0; i < EACH; i++) {
				metrics_count(METRIC_SMTP_RECEIVED);
				metrics_count_delivery("local", "sent");
				metrics_count_auth("imap", i % 2);
			}
			metrics_count_delivery("mx.example[192.0.2.1]:25", "bounced");
			metrics_count_delivery("local", "expired");   /* not a status: ignored */
			metrics_count_auth("nntp", 0);                /* not a protocol: ignored */
			_exit(0);
		}
	}
	for (int c = 0; c < CHILDREN; c++) {
		int status;
		assert_true(wait(&status) > 0);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	assert_int_equal(metrics_read(dir, &snap), 0);
	assert_int_equal(snap.values[METRIC_SMTP_RECEIVED], CHILDREN * EACH);
	assert_int_equal(snap.values[METRIC_DELIVERY_LOCAL_SENT], CHILDREN * EACH);
	assert_int_equal(snap.values[METRIC_AUTH_IMAP_SUCCESS], CHILDREN * EACH / 2);
	assert_int_equal(snap.values[METRIC_AUTH_IMAP_FAILURE], CHILDREN * EACH / 2);
	assert_int_equal(snap.values[METRIC_DELIVERY_SMTP_BOUNCED], CHILDREN);
	assert_int_equal(snap.values[METRIC_DELIVERY_LOCAL_BOUNCED], 0);
	assert_int_equal(snap.values[METRIC_AUTH_SMTP_SUCCESS], 0);
	/* a later process goes on from there */
	pid_t pid = fork();
	if (pid == 0) {
		metrics_open(dir);
		metrics_count(METRIC_SMTP_RECEIVED);
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	assert_int_equal(metrics_read(dir, &snap), 0);
	assert_int_equal(snap.values[METRIC_SMTP_RECEIVED], CHILDREN * EACH + 1);
	char path[300];
	snprintf(path, sizeof(path), "%s/metrics", dir);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_maildir_flags),
		cmocka_unit_test(test_maildir_info_round_trip),
		cmocka_unit_test(test_folder_names),
		cmocka_unit_test(test_asctime),
		cmocka_unit_test(test_crlf),
		cmocka_unit_test(test_keyword_list),
		cmocka_unit_test(test_metrics_shared_by_processes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
