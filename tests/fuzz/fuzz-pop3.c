/* fuzz-pop3.c — libFuzzer target for pop3d's response encoder (pop3d/pop3-stuff.c).
 *
 * The first bytes of an input choose RETR or TOP (and TOP's line count) and the
 * chunk size; the rest is a stored message. The encoded response must end in
 * exactly one terminating ".CRLF", hold no LF without its CR, no line beginning
 * with a single "." before the end, and un-stuffing it must give back the message
 * with its line ends made CRLF (for TOP: a prefix of it, cut at a line end).
 *
 *   scripts/fuzz.sh fuzz-pop3
 */
#include "pop3d/pop3-stuff.c"

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

/* The message as the client should see it: every LF preceded by CR, a last
 * line without line end given one. */
static size_t normalize(const char *in, size_t len, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\n' && (o == 0 || out[o - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = in[i];
	}
	if (o > 0 && out[o - 1] != '\n') {
		if (out[o - 1] != '\r')
			out[o++] = '\r';
		out[o++] = '\n';
	}
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	bool top = data[0] & 1;
	uint64_t lines = data[0] >> 1;
	size_t chunk = (size_t)data[1] % 64 + 1;
	const char *msg = (const char *)data + 2;
	size_t len = size - 2;

	struct pop3_stuff st;
	pop3_stuff_init(&st, top, lines);
	char *out = malloc(POP3_STUFF_OUT_MAX(len) + POP3_STUFF_FINISH_MAX);
	size_t o = 0, i = 0;
	while (i < len && !st.done) {
		size_t n = len - i < chunk ? len - i : chunk, used;
		size_t w = pop3_stuff_chunk(&st, msg + i, n, out + o, &used);
		CHECK(w <= POP3_STUFF_OUT_MAX(n));
		CHECK(used == n || st.done);
		CHECK(used > 0 || st.done);
		o += w;
		i += used;
	}
	CHECK(top || i == len);
	o += pop3_stuff_finish(&st, out + o);
	CHECK(o <= POP3_STUFF_OUT_MAX(len) + POP3_STUFF_FINISH_MAX);
	CHECK(o >= 3 && memcmp(out + o - 3, ".\r\n", 3) == 0);
	CHECK(o == 3 || (o >= 5 && out[o - 5] == '\r' && out[o - 4] == '\n'));

	/* un-stuff the body, checking every line on the way */
	char *plain = malloc(o);
	size_t p = 0;
	for (size_t k = 0; k < o - 3;) {
		const char *nl = memchr(out + k, '\n', o - 3 - k);
		CHECK(nl != NULL);
		size_t end = (size_t)(nl - out) + 1;
		CHECK(end - k >= 2 && out[end - 2] == '\r');
		/* no bare LF inside the line */
		CHECK(memchr(out + k, '\n', end - k - 1) == NULL);
		size_t from = k;
		if (out[k] == '.') {
			CHECK(end - k > 3 && out[k + 1] == '.');
			from++;
		}
		memcpy(plain + p, out + from, end - from);
		p += end - from;
		k = end;
	}
	char *want = malloc(2 * len + 2);
	size_t wlen = normalize(msg, len, want);
	if (top)
		CHECK(p <= wlen && memcmp(plain, want, p) == 0);
	else
		CHECK(p == wlen && memcmp(plain, want, p) == 0);
	free(want);
	free(plain);
	free(out);
	return 0;
}
