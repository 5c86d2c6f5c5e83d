/* fuzz-imap.c — libFuzzer target for imapd's command parser, sequence sets and
 * modified UTF-7 (imapd/imap-parser.c, imap-util.c, imap-utf7.c).
 *
 * The input is a command in wire format; it must parse or fail cleanly, and every
 * string argument must be NUL-terminated at its length. The same bytes are used
 * as a sequence set and a mailbox name: a UTF-7 name that decodes must encode
 * to a name that decodes to the same UTF-8.
 *
 *   scripts/fuzz.sh fuzz-imap
 */
#include "imapd/imap-parser.c"
#include "imapd/imap-utf7.c"
#include "imapd/imap-util.c"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
		abort(); \
	} \
} while (0)

static void check_args(const struct imap_arg *args, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (args[i].type == IMAP_ARG_LIST)
			check_args(args[i].list, args[i].n_list);
		else if (args[i].type != IMAP_ARG_NIL)
			CHECK(args[i].str != NULL && args[i].str[args[i].len] == '\0');
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pool *pool = pool_new(4096);
	const char *tag, *name, *error;
	struct imap_arg *args;
	size_t n;
	if (imap_parse_command(pool, (const char *)data, size, &tag, &name, &args, &n,
			       &error) == 0)
		check_args(args, n);
	pool_free(&pool);

	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	struct imap_seqset set;
	if (imap_seqset_parse(text, 1000, &set) == 0) {
		for (size_t i = 1; i < set.count; i++)
			CHECK(set.ranges[i - 1].hi + 1 < set.ranges[i].lo);
		imap_seqset_free(&set);
	}
	struct buf utf8 = BUF_INIT(1024 * 1024), utf7 = BUF_INIT(1024 * 1024);
	if (strlen(text) == size && imap_utf7_to_utf8(text, &utf8) == 0) {
		CHECK(imap_utf8_to_utf7(buf_cstr(&utf8), &utf7) == 0);
		struct buf again = BUF_INIT(1024 * 1024);
		CHECK(imap_utf7_to_utf8(buf_cstr(&utf7), &again) == 0);
		CHECK(strcmp(buf_cstr(&again), buf_cstr(&utf8)) == 0);
		buf_free(&again);
	}
	buf_free(&utf8);
	buf_free(&utf7);
	free(text);
	return 0;
}
