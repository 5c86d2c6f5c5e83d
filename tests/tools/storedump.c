/* storedump — lists a user's messages for the SMTP tests.
 *
 *   storedump STATE_DIR USER [-n]
 *
 * For every message of every mailbox of USER prints one header line
 *   "MSG <mailbox>\t<uid>\t<env_from>\t<env_to>\t<size>\n"
 * followed by exactly <size> bytes of the body and a "\n" (with -n: no body, no "\n"). Exit status 0, or 1 on
 * errors (a user without mailboxes prints nothing).
 */
#include "storage/store.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	bool bodies = !(argc == 4 && strcmp(argv[3], "-n") == 0);
	if (argc != 3 && bodies) {
		fprintf(stderr, "usage: storedump STATE_DIR USER [-n]\n");
		return 2;
	}
	struct store_settings settings = { .dir = argv[1] };
	struct store *st;
	const char *err = "";
	if (store_open(&settings, &st, &err) != STORE_OK) {
		fprintf(stderr, "storedump: open %s: %s\n", argv[1], err);
		return 1;
	}
	struct store_mailbox *boxes = NULL;
	size_t n_boxes = 0;
	int ret = store_mailbox_list(st, argv[2], &boxes, &n_boxes);
	if (ret != STORE_OK && ret != STORE_ENOTFOUND) {
		fprintf(stderr, "storedump: list: %s\n", store_strerror(ret));
		store_close(&st);
		return 1;
	}
	for (size_t b = 0; b < n_boxes; b++) {
		struct store_message *msgs = NULL;
		size_t n = 0;
		if (store_messages(st, boxes[b].id, 1, 0xffffffff, &msgs, &n) != STORE_OK)
			continue;
		for (size_t i = 0; i < n; i++) {
			printf("MSG %s\t%u\t%s\t%s\t%llu\n", boxes[b].name, msgs[i].uid, msgs[i].env_from,
			       msgs[i].env_to, (unsigned long long)msgs[i].size);
			if (!bodies)
				continue;
			char *buf = malloc(msgs[i].size + 1);
			size_t got = 0;
			if (buf != NULL &&
			    store_blob_read(st, msgs[i].blob, 0, buf, msgs[i].size, &got) == STORE_OK)
				fwrite(buf, 1, got, stdout);
			for (; got < msgs[i].size; got++)
				putchar('?');
			putchar('\n');
			free(buf);
		}
		free(msgs);
	}
	free(boxes);
	store_close(&st);
	return 0;
}
