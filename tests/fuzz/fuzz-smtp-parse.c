/* fuzz-smtp-parse.c — libFuzzer target for smtpd's parsers (smtpd/smtp-parse.c,
 * smtpd/smtp-dot.c).
 *
 * The input is thrown at the path parser (as MAIL and RCPT arguments), the address
 * checker, xtext and the network matcher, and fed to the DATA parser whole and in
 * chunks chosen by the input's first byte; both feeds must agree byte for byte, the
 * output never holds a bare CR or LF in reject mode, and the end of data is found
 * only after a CRLF "." CRLF.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz-smtp-parse.c \
 *       -o /tmp/fuzz-smtp-parse
 *   /tmp/fuzz-smtp-parse -max_total_time=60
 */
#include "../../smtpd/smtp-parse.c"
#include "../../smtpd/smtp-dot.c"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
		abort(); \
	} \
} while (0)

struct sink {
	char *data;
	size_t len, cap;
};

static void sink_emit(void *ctx, const char *d, size_t len)
{
	struct sink *k = ctx;
	if (k->len + len > k->cap) {
		k->cap = (k->len + len) * 2 + 64;
		k->data = realloc(k->data, k->cap);
		CHECK(k->data != NULL);
	}
	memcpy(k->data + k->len, d, len);
	k->len += len;
}

static void fuzz_dot(const uint8_t *data, size_t size, bool normalize)
{
	struct smtp_dot a, b;
	struct sink whole = { 0 }, parts = { 0 };
	size_t chunk = size > 0 ? (data[0] % 7) + 1 : 1;
	smtp_dot_init(&a, normalize, 100);
	smtp_dot_init(&b, normalize, 100);
	size_t used = smtp_dot_feed(&a, (const char *)data, size, sink_emit, &whole);
	size_t used2 = 0;
	for (size_t off = 0; off < size && b.state != SMTP_DOT_DONE; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;
		size_t u = smtp_dot_feed(&b, (const char *)data + off, n, sink_emit, &parts);
		used2 += u;
		if (u < n)
			break;
	}
	CHECK(used == used2);
	CHECK(a.state == b.state && a.bare == b.bare && a.line_too_long == b.line_too_long);
	CHECK(whole.len == parts.len && memcmp(whole.data, parts.data, whole.len) == 0);
	CHECK(used <= size);
	if (a.state == SMTP_DOT_DONE) {
		CHECK(used >= 3);
		CHECK(memcmp(data + used - 3, ".\r\n", 3) == 0);
		CHECK(used == 3 || data[used - 4] == '\n');
	} else {
		CHECK(used == size);
	}
	/* without bare CR/LF every output line ends in CRLF */
	if (!a.bare)
		for (size_t i = 0; i < whole.len; i++)
			if (whole.data[i] == '\n')
				CHECK(i > 0 && whole.data[i - 1] == '\r');
	free(whole.data);
	free(parts.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	CHECK(s != NULL);
	memcpy(s, data, size);
	s[size] = '\0';
	char addr[SMTP_PATH_MAX + 1], out[256];
	const char *params;
	if (smtp_parse_path(s, "FROM:", addr, sizeof(addr), &params) == 0) {
		CHECK(strlen(addr) <= SMTP_PATH_MAX);
		CHECK(params >= s && params <= s + strlen(s));
		(void)smtp_address_valid(addr, false);
		(void)smtp_address_valid(addr, true);
	}
	(void)smtp_parse_path(s, "TO:", addr, sizeof(addr), &params);
	(void)smtp_address_valid(s, true);
	if (smtp_xtext_decode(s, strlen(s), out, sizeof(out)) == 0)
		CHECK(strlen(out) < sizeof(out));
	const char *nets[] = { s, "192.0.2.0/24", "2001:db8::/32" };
	(void)smtp_net_match("192.0.2.1", nets, 3);
	(void)smtp_net_match(s, nets, 3);
	free(s);
	fuzz_dot(data, size, false);
	fuzz_dot(data, size, true);
	return 0;
}
