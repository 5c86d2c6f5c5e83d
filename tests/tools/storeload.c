/* storeload — drives the store for the crash test and the store benchmark.
 *
 *   storeload DIR writer USER COUNT      deliver COUNT messages, one at a time; after
 *                                        each commit print "committed N" (flushed)
 *   storeload DIR reader USER            read every message of USER's INBOX over and
 *                                        over (list, read the body, the MIME cache)
 *   storeload DIR check USER FILE        every N listed as committed in FILE is in the
 *                                        INBOX exactly once; nothing appears twice
 *   storeload DIR verify                 store_verify; exit status 1 on any fault
 *
 * The sequence number travels as the envelope sender "N@load.test". Exit status
 * 75 means the store needs recovery (the master recovers it).
 */
#include "storage/store.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_RECOVER 75

static struct store *open_store(const char *dir)
{
	struct store_settings settings = { .dir = dir };
	struct store *st;
	const char *err = "";
	int ret = store_open(&settings, &st, &err);
	if (ret != STORE_OK) {
		fprintf(stderr, "storeload: open %s: %s\n", dir, err);
		if (ret == STORE_ERECOVER)
			store_request_recovery(dir);
		exit(ret == STORE_ERECOVER ? EXIT_RECOVER : 1);
	}
	return st;
}

static void fail(int ret, const char *what)
{
	fprintf(stderr, "storeload: %s: %s\n", what, store_strerror(ret));
	exit(ret == STORE_ERECOVER ? EXIT_RECOVER : 1);
}

static void on_recover(void *ctx)
{
	_exit(EXIT_RECOVER);
}

static int writer(struct store *st, const char *user, long count)
{
	char body[2048], from[64];
	for (long n = 1; n <= count; n++) {
		int len = snprintf(body, sizeof(body),
				   "From: load@load.test\r\nMessage-ID: <%ld.%ld@load.test>\r\n"
				   "Subject: load %ld\r\n\r\nbody of message %ld\r\n",
				   (long)getpid(), n, n, n);
		snprintf(from, sizeof(from), "%ld.%ld@load.test", (long)getpid(), n);
		struct store_body b = { body, (size_t)len, NULL };
		struct store_recipient r = { .user = user, .mailbox = "INBOX", .env_to = user };
		int ret = store_deliver(st, &b, from, time(NULL), &r, 1);
		if (ret != STORE_OK)
			fail(ret, "deliver");
		if (r.result != STORE_OK)
			fail(r.result, "deliver (recipient)");
		printf("committed %s\n", from);
		fflush(stdout);
	}
	return 0;
}

static int reader(struct store *st, const char *user)
{
	for (;;) {
		struct store_mailbox m;
		int ret = store_mailbox_get(st, user, "INBOX", &m);
		if (ret == STORE_ENOTFOUND) {
			usleep(10000);
			continue;
		}
		if (ret != STORE_OK)
			fail(ret, "mailbox");
		struct store_message *msgs;
		size_t n;
		if ((ret = store_messages(st, m.id, 1, UINT32_MAX, &msgs, &n)) != STORE_OK)
			fail(ret, "messages");
		for (size_t i = 0; i < n; i++) {
			char buf[256];
			size_t got;
			ret = store_blob_read(st, msgs[i].blob, 0, buf, sizeof(buf), &got);
			/* a body removed by a concurrent expunge is fine; a listed one must read */
			if (ret != STORE_OK && ret != STORE_ENOTFOUND)
				fail(ret, "read");
		}
		free(msgs);
	}
	return 0;
}

static int check(struct store *st, const char *user, const char *file)
{
	struct store_mailbox m;
	int ret = store_mailbox_get(st, user, "INBOX", &m);
	if (ret != STORE_OK && ret != STORE_ENOTFOUND)
		fail(ret, "mailbox");
	struct store_message *msgs = NULL;
	size_t n = 0;
	if (ret == STORE_OK && (ret = store_messages(st, m.id, 1, UINT32_MAX, &msgs, &n)) != 0)
		fail(ret, "messages");
	/* duplicates */
	int bad = 0;
	for (size_t i = 1; i < n; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(msgs[i].env_from, msgs[j].env_from) == 0) {
				printf("duplicate %s (uids %u and %u)\n", msgs[i].env_from,
				       msgs[j].uid, msgs[i].uid);
				bad++;
			}
	FILE *fp = fopen(file, "r");
	char line[256];
	long committed = 0;
	while (fp != NULL && fgets(line, sizeof(line), fp) != NULL) {
		char id[128];
		if (sscanf(line, "committed %127s", id) != 1)
			continue;
		committed++;
		bool found = false;
		for (size_t i = 0; i < n && !found; i++)
			found = strcmp(msgs[i].env_from, id) == 0;
		if (!found) {
			printf("lost %s (reported committed)\n", id);
			bad++;
		}
	}
	if (fp != NULL)
		fclose(fp);
	printf("%ld committed, %zu stored, %d faults\n", committed, n, bad);
	free(msgs);
	return bad == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: storeload DIR writer|reader|check|verify ...\n");
		return 2;
	}
	struct store *st = open_store(argv[1]);
	store_watchdog_start(st, 200, on_recover, NULL);
	int ret = 2;
	if (strcmp(argv[2], "writer") == 0 && argc == 5)
		ret = writer(st, argv[3], atol(argv[4]));
	else if (strcmp(argv[2], "reader") == 0 && argc == 4)
		ret = reader(st, argv[3]);
	else if (strcmp(argv[2], "check") == 0 && argc == 5)
		ret = check(st, argv[3], argv[4]);
	else if (strcmp(argv[2], "verify") == 0) {
		int faults = store_verify(st, stdout, false);
		ret = faults == 0 ? 0 : 1;
	}
	store_close(&st);
	return ret;
}
