/* fuzz-proxy.c — libFuzzer target for the PROXY protocol header parser
 * (common/proxy.c). The input is a connection's first bytes. Checks: a parse
 * never claims more bytes than it was given or than the bounds allow; every
 * prefix of a complete header needs more; the answer for a longer input agrees
 * with the answer for the header alone; TCP addresses come out in a TCP family.
 *
 *   scripts/fuzz.sh fuzz-proxy
 */
#include "common/proxy.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_header h, h2;
	const char *err = NULL;
	enum proxy_status st = proxy_parse(data, size, &h, &err);
	if (st == PROXY_MALFORMED) {
		CHECK(err != NULL);
		return 0;
	}
	if (st == PROXY_NEED_MORE) {
		CHECK(size < PROXY_HEADER_MAX);
		return 0;
	}
	CHECK(h.len > 0 && h.len <= size && h.len <= PROXY_HEADER_MAX);
	CHECK(h.version == 1 || h.version == 2);
	CHECK(h.version != 1 || h.len <= PROXY_V1_MAX);
	if (!h.local) {
		CHECK(h.src.ss_family == AF_INET || h.src.ss_family == AF_INET6);
		CHECK(h.dst.ss_family == h.src.ss_family);
	}
	/* the header alone gives the same answer */
	CHECK(proxy_parse(data, h.len, &h2, &err) == PROXY_DONE);
	CHECK(h2.len == h.len && h2.local == h.local &&
	      memcmp(&h2.src, &h.src, sizeof(h.src)) == 0);
	/* a prefix is never complete (a few lengths, to keep runs fast) */
	size_t cuts[] = { 0, 1, h.len / 2, h.len - 1 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
		CHECK(proxy_parse(data, cuts[i], &h2, &err) != PROXY_DONE);
	return 0;
}
