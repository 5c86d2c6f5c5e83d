/* test-pop3-stuff.c — pop3d/pop3-stuff.c: byte-stuffing, line ends and TOP's
 * line limit, whole and fed one byte at a time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* pop3d is a program, not a library: its one pure module is compiled in here */
#include "pop3d/pop3-stuff.c"

/* Encodes in whole (chunk 0) or in chunks of chunk bytes; returns a malloc'ed,
 * NUL-terminated response body including the terminating ".CRLF". */
static char *encode(const char *in, size_t len, size_t chunk, bool top, uint64_t lines)
{
	struct pop3_stuff st;
	pop3_stuff_init(&st, top, lines);
	char *out = malloc(POP3_STUFF_OUT_MAX(len) + POP3_STUFF_FINISH_MAX + 1);
	size_t o = 0, i = 0;
	if (chunk == 0)
		chunk = len > 0 ? len : 1;
	while (i < len && !st.done) {
		size_t n = len - i < chunk ? len - i : chunk, used;
		o += pop3_stuff_chunk(&st, in + i, n, out + o, &used);
		assert_true(used == n || st.done);
		i += used;
	}
	o += pop3_stuff_finish(&st, out + o);
	out[o] = '\0';
	return out;
}

static void check(const char *in, bool top, uint64_t lines, const char *want)
{
	for (size_t chunk = 0; chunk <= 3; chunk++) {
		char *got = encode(in, strlen(in), chunk, top, lines);
		assert_string_equal(got, want);
		free(got);
	}
}

static void test_plain_message(void **state)
{
	check("Subject: x\r\n\r\nbody\r\n", false, 0, "Subject: x\r\n\r\nbody\r\n.\r\n");
}

static void test_dots_are_stuffed(void **state)
{
	check(".\r\n..\r\n.x\r\na.b\r\n", false, 0, "..\r\n...\r\n..x\r\na.b\r\n.\r\n");
	/* only at the start of a line, also after a bare LF */
	check("a\n.\n", false, 0, "a\r\n..\r\n.\r\n");
}

static void test_line_ends(void **state)
{
	check("a\nb\r\nc", false, 0, "a\r\nb\r\nc\r\n.\r\n");
	check("last\r", false, 0, "last\r\n.\r\n");
	check("", false, 0, ".\r\n");
	check("bare\rcr\r\n", false, 0, "bare\rcr\r\n.\r\n");
}

static void test_top(void **state)
{
	const char *msg = "H: 1\r\nH: 2\r\n\r\nl1\r\nl2\r\nl3\r\n";
	check(msg, true, 0, "H: 1\r\nH: 2\r\n\r\n.\r\n");
	check(msg, true, 2, "H: 1\r\nH: 2\r\n\r\nl1\r\nl2\r\n.\r\n");
	check(msg, true, 3, "H: 1\r\nH: 2\r\n\r\nl1\r\nl2\r\nl3\r\n.\r\n");
	check(msg, true, 99, "H: 1\r\nH: 2\r\n\r\nl1\r\nl2\r\nl3\r\n.\r\n");
	/* a bare-LF message counts its lines the same way */
	check("H: 1\n\n.l1\nl2\n", true, 1, "H: 1\r\n\r\n..l1\r\n.\r\n");
	/* no empty line: no body, everything is header */
	check("H: 1\r\nH: 2", true, 0, "H: 1\r\nH: 2\r\n.\r\n");
}

static void test_worst_case_fits(void **state)
{
	/* every byte a dot at the start of a line or a bare LF: the output doubles */
	const char *in = "\n.\n.\n.\n";
	char *got = encode(in, strlen(in), 0, false, 0);
	assert_string_equal(got, "\r\n..\r\n..\r\n..\r\n.\r\n");
	assert_true(strlen(got) <= POP3_STUFF_OUT_MAX(strlen(in)) + POP3_STUFF_FINISH_MAX);
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_message),
		cmocka_unit_test(test_dots_are_stuffed),
		cmocka_unit_test(test_line_ends),
		cmocka_unit_test(test_top),
		cmocka_unit_test(test_worst_case_fits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
