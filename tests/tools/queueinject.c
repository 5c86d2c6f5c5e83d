/* queueinject — puts a message into a running suite's outbound queue, the way
 * smtpd's outbound_submit() does, for tests of the queue runner:
 *
 *   queueinject [-f] [-r FULL|HDRS] [-e ENVID] [-n NOTIFY] [-i ID] STATE_DIR FROM RCPT... < message
 *
 * -f marks the message as forwarded (its sender is SRS-rewritten on the wire).
 *
 * FROM may be "" (the null sender). NOTIFY is "NEVER" or a comma list of
 * SUCCESS, FAILURE, DELAY, applied to every recipient. The message on stdin is
 * taken as it is (CRLF lines expected). Prints the queue id.
 */
#include "storage/queue.h"
#include "common/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned parse_notify(const char *s)
{
	unsigned v = 0;
	char tmp[128];
	snprintf(tmp, sizeof(tmp), "%s", s);
	for (char *save, *t = strtok_r(tmp, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		if (strcasecmp(t, "NEVER") == 0)
			v |= QUEUE_NOTIFY_NEVER;
		else if (strcasecmp(t, "SUCCESS") == 0)
			v |= QUEUE_NOTIFY_SUCCESS;
		else if (strcasecmp(t, "FAILURE") == 0)
			v |= QUEUE_NOTIFY_FAILURE;
		else if (strcasecmp(t, "DELAY") == 0)
			v |= QUEUE_NOTIFY_DELAY;
	}
	return v;
}

int main(int argc, char **argv)
{
	struct queue_msg msg;
	memset(&msg, 0, sizeof(msg));
	unsigned notify = 0;
	int c;
	while ((c = getopt(argc, argv, "r:e:n:i:f")) != -1) {
		switch (c) {
		case 'r': msg.ret = strcasecmp(optarg, "FULL") == 0 ? QUEUE_RET_FULL : QUEUE_RET_HDRS; break;
		case 'e': snprintf(msg.envid, sizeof(msg.envid), "%s", optarg); break;
		case 'n': notify = parse_notify(optarg); break;
		case 'i': snprintf(msg.id, sizeof(msg.id), "%s", optarg); break;
		case 'f': msg.flags |= QUEUE_F_FORWARDED; break;
		default: return 2;
		}
	}
	if (argc - optind < 3) {
		fprintf(stderr, "usage: queueinject [-r FULL|HDRS] [-e ENVID] [-n NOTIFY] STATE_DIR "
			"FROM RCPT... < message\n");
		return 2;
	}
	const char *state_dir = argv[optind];
	snprintf(msg.from, sizeof(msg.from), "%s", argv[optind + 1]);
	snprintf(msg.origin, sizeof(msg.origin), "queueinject");
	msg.n_rcpts = (size_t)(argc - optind - 2);
	msg.rcpts = x_calloc(msg.n_rcpts, sizeof(*msg.rcpts));
	for (size_t i = 0; i < msg.n_rcpts; i++) {
		snprintf(msg.rcpts[i].addr, sizeof(msg.rcpts[i].addr), "%s", argv[optind + 2 + (int)i]);
		msg.rcpts[i].notify = notify;
	}
	size_t cap = 65536, len = 0;
	char *data = x_malloc(cap);
	size_t n;
	while ((n = fread(data + len, 1, cap - len, stdin)) > 0) {
		len += n;
		if (len == cap)
			data = x_realloc(data, cap *= 2);
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)data[i] & 0x80)
			msg.body = QUEUE_BODY_8BITMIME;
	/* work as the owner of the store (the daemons' user), as warrenctl does */
	char path[4096];
	struct stat st;
	snprintf(path, sizeof(path), "%s/store", state_dir);
	if (geteuid() == 0 && stat(path, &st) == 0 && st.st_uid != 0 &&
	    (setgid(st.st_gid) < 0 || setuid(st.st_uid) < 0)) {
		perror("queueinject: switching to the store's owner");
		return 1;
	}
	struct store_settings settings = { .dir = state_dir };
	struct store *store;
	const char *error;
	int ret = store_open(&settings, &store, &error);
	if (ret != STORE_OK) {
		fprintf(stderr, "queueinject: cannot open the store in %s: %s\n", state_dir, error);
		return 1;
	}
	struct store_body body = { data, len, NULL };
	ret = queue_add(store, NULL, &body, &msg);
	store_close(&store);
	if (ret != 0) {
		fprintf(stderr, "queueinject: %s\n", store_strerror(ret));
		return 1;
	}
	printf("%s\n", msg.id);
	queue_msg_free(&msg);
	free(data);
	return 0;
}
