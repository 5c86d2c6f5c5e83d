/* test-proxy.c — the PROXY protocol header parser (common/proxy.c): v1 and v2,
 * every header also fed one byte at a time, malformed headers, the bounds, and
 * the trusted network lists. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static const unsigned char sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};

static const char *src_ip(const struct proxy_header *h, char *buf, size_t size)
{
	if (h->src.ss_family == AF_INET)
		return inet_ntop(AF_INET, &((const struct sockaddr_in *)&h->src)->sin_addr, buf,
				 (socklen_t)size);
	return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&h->src)->sin6_addr, buf,
			 (socklen_t)size);
}

static unsigned src_port(const struct proxy_header *h)
{
	if (h->src.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&h->src)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)&h->src)->sin6_port);
}

/* Parses data whole and as every prefix: each shorter prefix needs more. */
static enum proxy_status parse_all_ways(const void *data, size_t len, struct proxy_header *h)
{
	const char *err = NULL;
	enum proxy_status st = proxy_parse(data, len, h, &err);
	if (st != PROXY_DONE)
		return st;
	for (size_t i = 0; i < h->len; i++) {
		struct proxy_header tmp;
		assert_int_equal(proxy_parse(data, i, &tmp, &err), PROXY_NEED_MORE);
	}
	return st;
}

static void test_v1_tcp4(void **state)
{
	(void)state;
	const char *in = "PROXY TCP4 192.0.2.1 198.51.100.2 51234 25\r\nEHLO x\r\n";
	struct proxy_header h;
	char ip[64];
	assert_int_equal(parse_all_ways(in, strlen(in), &h), PROXY_DONE);
	assert_int_equal(h.version, 1);
	assert_false(h.local);
	assert_int_equal(h.len, strlen("PROXY TCP4 192.0.2.1 198.51.100.2 51234 25\r\n"));
	assert_string_equal(src_ip(&h, ip, sizeof(ip)), "192.0.2.1");
	assert_int_equal(src_port(&h), 51234);
	assert_int_equal(ntohs(((struct sockaddr_in *)&h.dst)->sin_port), 25);
}

static void test_v1_tcp6_and_unknown(void **state)
{
	(void)state;
	const char *in = "PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n";
	struct proxy_header h;
	char ip[64];
	assert_int_equal(parse_all_ways(in, strlen(in), &h), PROXY_DONE);
	assert_string_equal(src_ip(&h, ip, sizeof(ip)), "2001:db8::1");
	assert_int_equal(src_port(&h), 65535);
	const char *unk = "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
	assert_int_equal(parse_all_ways(unk, strlen(unk), &h), PROXY_DONE);
	assert_true(h.local);
	assert_int_equal(h.len, strlen(unk));
	assert_int_equal(parse_all_ways("PROXY UNKNOWN\r\n", 15, &h), PROXY_DONE);
	assert_true(h.local);
}

static void test_v1_malformed(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"PROXY TCP4 192.0.2.1 198.51.100.2 51234 25\n",        /* bare LF */
		"PROXY TCP4 192.0.2.1 198.51.100.2 51234\r\n",         /* a field missing */
		"PROXY TCP4 192.0.2.1 198.51.100.2 51234 25 9\r\n",    /* one too many */
		"PROXY TCP4  192.0.2.1 198.51.100.2 51234 25\r\n",     /* double space */
		"PROXY TCP4 192.0.2.1 198.51.100.2 65536 25\r\n",      /* port range */
		"PROXY TCP4 192.0.2.1 198.51.100.2 012 25\r\n",        /* leading zero */
		"PROXY TCP4 192.0.2.1 198.51.100.2 -1 25\r\n",
		"PROXY TCP4 2001:db8::1 198.51.100.2 1 25\r\n",        /* family mismatch */
		"PROXY TCP6 192.0.2.1 2001:db8::2 1 25\r\n",
		"PROXY UDP4 192.0.2.1 198.51.100.2 1 25\r\n",
		"PROXY \r\n",
		"PROXY TCP4 192.0.2.1\r198.51.100.2 1 25\r\n",
		"proxy TCP4 192.0.2.1 198.51.100.2 1 25\r\n",          /* case */
		"GET / HTTP/1.0\r\n",
		"EHLO example.test\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct proxy_header h;
		const char *err = NULL;
		assert_int_equal(proxy_parse(bad[i], strlen(bad[i]), &h, &err), PROXY_MALFORMED);
		assert_non_null(err);
	}
	/* a NUL inside */
	const char nul[] = "PROXY TCP4 192.0.2.1\0198.51.100.2 1 25\r\n";
	struct proxy_header h;
	const char *err;
	assert_int_equal(proxy_parse(nul, sizeof(nul) - 1, &h, &err), PROXY_MALFORMED);
}

static void test_v1_bounded(void **state)
{
	(void)state;
	char line[300];
	memset(line, 'A', sizeof(line));
	memcpy(line, "PROXY ", 6);
	struct proxy_header h;
	const char *err;
	assert_int_equal(proxy_parse(line, PROXY_V1_MAX - 1, &h, &err), PROXY_NEED_MORE);
	assert_int_equal(proxy_parse(line, PROXY_V1_MAX, &h, &err), PROXY_MALFORMED);
	assert_int_equal(proxy_parse(line, sizeof(line), &h, &err), PROXY_MALFORMED);
}

static size_t v2_make(unsigned char *out, unsigned char ver_cmd, unsigned char fam,
		      const void *body, size_t body_len)
{
	memcpy(out, sig, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (unsigned char)(body_len >> 8);
	out[15] = (unsigned char)body_len;
	if (body_len > 0)
		memcpy(out + 16, body, body_len);
	return 16 + body_len;
}

static void test_v2_tcp4_tcp6_tlv(void **state)
{
	(void)state;
	unsigned char buf[256], body[64];
	struct proxy_header h;
	char ip[64];
	/* TCP4 plus a TLV (PP2_TYPE_AUTHORITY) that is skipped */
	memcpy(body, "\xc0\x00\x02\x2a" "\x7f\x00\x00\x01" "\x9c\x40" "\x00\x19"
		     "\x02\x00\x04" "host", 19);
	size_t n = v2_make(buf, 0x21, 0x11, body, 19);
	buf[n] = 'X';   /* the protocol's first byte after the header */
	assert_int_equal(parse_all_ways(buf, n + 1, &h), PROXY_DONE);
	assert_int_equal(h.version, 2);
	assert_int_equal(h.len, n);
	assert_false(h.local);
	assert_string_equal(src_ip(&h, ip, sizeof(ip)), "192.0.2.42");
	assert_int_equal(src_port(&h), 40000);
	/* TCP6 */
	struct in6_addr a6, b6;
	inet_pton(AF_INET6, "2001:db8::42", &a6);
	inet_pton(AF_INET6, "2001:db8::1", &b6);
	memcpy(body, &a6, 16);
	memcpy(body + 16, &b6, 16);
	memcpy(body + 32, "\x00\x50\x01\xbb", 4);
	n = v2_make(buf, 0x21, 0x21, body, 36);
	assert_int_equal(parse_all_ways(buf, n, &h), PROXY_DONE);
	assert_string_equal(src_ip(&h, ip, sizeof(ip)), "2001:db8::42");
	assert_int_equal(src_port(&h), 80);
}

static void test_v2_local_unspec_unix(void **state)
{
	(void)state;
	unsigned char buf[512], body[216];
	struct proxy_header h;
	size_t n = v2_make(buf, 0x20, 0x00, NULL, 0);
	assert_int_equal(parse_all_ways(buf, n, &h), PROXY_DONE);
	assert_true(h.local);
	/* LOCAL with addresses: ignored, still local */
	memset(body, 1, 12);
	n = v2_make(buf, 0x20, 0x11, body, 12);
	assert_int_equal(parse_all_ways(buf, n, &h), PROXY_DONE);
	assert_true(h.local);
	n = v2_make(buf, 0x21, 0x00, NULL, 0);
	assert_int_equal(parse_all_ways(buf, n, &h), PROXY_DONE);
	assert_true(h.local);
	memset(body, 0, sizeof(body));
	n = v2_make(buf, 0x21, 0x31, body, 216);
	assert_int_equal(parse_all_ways(buf, n, &h), PROXY_DONE);
	assert_true(h.local);
}

static void test_v2_malformed(void **state)
{
	(void)state;
	unsigned char buf[64], body[36] = { 0 };
	struct proxy_header h;
	const char *err;
	size_t n = v2_make(buf, 0x11, 0x11, body, 12);          /* version 1 */
	assert_int_equal(proxy_parse(buf, n, &h, &err), PROXY_MALFORMED);
	n = v2_make(buf, 0x22, 0x11, body, 12);                 /* command 2 */
	assert_int_equal(proxy_parse(buf, n, &h, &err), PROXY_MALFORMED);
	n = v2_make(buf, 0x21, 0x11, body, 11);                 /* short TCP4 */
	assert_int_equal(proxy_parse(buf, n, &h, &err), PROXY_MALFORMED);
	n = v2_make(buf, 0x21, 0x21, body, 35);                 /* short TCP6 */
	assert_int_equal(proxy_parse(buf, n, &h, &err), PROXY_MALFORMED);
	n = v2_make(buf, 0x21, 0x12, body, 12);                 /* UDP */
	assert_int_equal(proxy_parse(buf, n, &h, &err), PROXY_MALFORMED);
	n = v2_make(buf, 0x21, 0x41, body, 12);                 /* family 4 */
	assert_int_equal(proxy_parse(buf, n, &h, &err), PROXY_MALFORMED);
	/* a length past the bound is refused from the 16 bytes alone */
	v2_make(buf, 0x21, 0x11, body, 0);
	buf[14] = 0xFF;
	buf[15] = 0xFF;
	assert_int_equal(proxy_parse(buf, 16, &h, &err), PROXY_MALFORMED);
	/* a signature that goes wrong in its middle */
	memcpy(buf, sig, 12);
	buf[7] = 'q';
	assert_int_equal(proxy_parse(buf, 12, &h, &err), PROXY_MALFORMED);
	assert_int_equal(proxy_parse(buf, 0, &h, &err), PROXY_NEED_MORE);
}

static void set4(struct sockaddr_storage *ss, const char *ip)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *s = (struct sockaddr_in *)ss;
	s->sin_family = AF_INET;
	inet_pton(AF_INET, ip, &s->sin_addr);
}

static void set6(struct sockaddr_storage *ss, const char *ip)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
	s->sin6_family = AF_INET6;
	inet_pton(AF_INET6, ip, &s->sin6_addr);
}

static void test_networks(void **state)
{
	(void)state;
	const char *list[] = { "127.0.0.1", "10.0.0.0/8", "172.16.0.0/12", "2001:db8::/33" };
	const char *err = NULL;
	struct proxy_nets *nets = proxy_nets_new(list, 4, &err);
	assert_non_null(nets);
	struct sockaddr_storage ss;
	set4(&ss, "127.0.0.1");
	assert_true(proxy_nets_match(nets, &ss));
	set4(&ss, "127.0.0.2");
	assert_false(proxy_nets_match(nets, &ss));
	set4(&ss, "10.255.1.1");
	assert_true(proxy_nets_match(nets, &ss));
	set4(&ss, "172.31.255.255");
	assert_true(proxy_nets_match(nets, &ss));
	set4(&ss, "172.32.0.0");
	assert_false(proxy_nets_match(nets, &ss));
	set6(&ss, "::ffff:10.1.2.3");
	assert_true(proxy_nets_match(nets, &ss));
	set6(&ss, "2001:db8:7fff::1");
	assert_true(proxy_nets_match(nets, &ss));
	set6(&ss, "2001:db8:8000::1");
	assert_false(proxy_nets_match(nets, &ss));
	proxy_nets_free(&nets);
	assert_null(nets);
	assert_false(proxy_nets_match(NULL, &ss));

	static const char *const bad[] = { "", "/8", "10.0.0.0/33", "::/129", "10.0.0.0/",
					   "10.0.0.0/8x", "example.org", "10.0.0.0/-1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(proxy_net_check(bad[i], &err), -1);
		assert_null(proxy_nets_new(&bad[i], 1, &err));
	}
	assert_int_equal(proxy_net_check("::1/128", &err), 0);
	assert_int_equal(proxy_net_check("0.0.0.0/0", &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_tcp4),
		cmocka_unit_test(test_v1_tcp6_and_unknown),
		cmocka_unit_test(test_v1_malformed),
		cmocka_unit_test(test_v1_bounded),
		cmocka_unit_test(test_v2_tcp4_tcp6_tlv),
		cmocka_unit_test(test_v2_local_unspec_unix),
		cmocka_unit_test(test_v2_malformed),
		cmocka_unit_test(test_networks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
