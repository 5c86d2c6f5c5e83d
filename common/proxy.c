/* proxy.c — PROXY protocol v1/v2 header parser and trusted network lists. */
#include "common/proxy.h"
#include "common/pool.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char v2_sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};
static const char v1_sig[] = "PROXY ";

/* ---- v1 ------------------------------------------------------------------------- */

/* Next space-separated field of [*p, end): no empty fields, single spaces. */
static int v1_field(const char **p, const char *end, char *out, size_t size)
{
	const char *s = *p;
	const char *sp = memchr(s, ' ', (size_t)(end - s));
	const char *e = sp != NULL ? sp : end;
	size_t n = (size_t)(e - s);
	if (n == 0 || n >= size)
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	*p = sp != NULL ? sp + 1 : end;
	return 0;
}

static int v1_port(const char *s, uint16_t *port_r)
{
	size_t n = strlen(s);
	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port_r = (uint16_t)v;
	return 0;
}

static int v1_addr(int family, const char *ip, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		if (inet_pton(AF_INET, ip, &s4->sin_addr) != 1)
			return -1;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET6, ip, &s6->sin6_addr) != 1)
			return -1;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
	}
	return 0;
}

static enum proxy_status parse_v1(const char *data, size_t len, struct proxy_header *hdr,
				  const char **error_r)
{
	size_t look = len < PROXY_V1_MAX ? len : PROXY_V1_MAX;
	const char *nl = memchr(data, '\n', look);
	if (nl == NULL) {
		if (len >= PROXY_V1_MAX) {
			*error_r = "v1 header longer than 107 bytes";
			return PROXY_MALFORMED;
		}
		return PROXY_NEED_MORE;
	}
	if (nl == data || nl[-1] != '\r') {
		*error_r = "v1 header does not end in CRLF";
		return PROXY_MALFORMED;
	}
	const char *p = data + sizeof(v1_sig) - 1, *end = nl - 1;
	if (memchr(p, '\0', (size_t)(end - p)) != NULL || memchr(p, '\r', (size_t)(end - p))) {
		*error_r = "v1 header has stray bytes";
		return PROXY_MALFORMED;
	}
	memset(hdr, 0, sizeof(*hdr));
	hdr->version = 1;
	hdr->len = (size_t)(nl - data) + 1;
	char proto[8], src[64], dst[64], sport[8], dport[8];
	if (v1_field(&p, end, proto, sizeof(proto)) < 0) {
		*error_r = "v1 header without protocol";
		return PROXY_MALFORMED;
	}
	if (strcmp(proto, "UNKNOWN") == 0) {
		hdr->local = true;   /* the rest of the line is to be ignored */
		return PROXY_DONE;
	}
	int family = strcmp(proto, "TCP4") == 0 ? AF_INET :
		strcmp(proto, "TCP6") == 0 ? AF_INET6 : AF_UNSPEC;
	if (family == AF_UNSPEC) {
		*error_r = "v1 header with an unknown protocol";
		return PROXY_MALFORMED;
	}
	uint16_t sp, dp;
	if (v1_field(&p, end, src, sizeof(src)) < 0 || v1_field(&p, end, dst, sizeof(dst)) < 0 ||
	    v1_field(&p, end, sport, sizeof(sport)) < 0 ||
	    v1_field(&p, end, dport, sizeof(dport)) < 0 || p != end) {
		*error_r = "v1 header does not have four address fields";
		return PROXY_MALFORMED;
	}
	if (v1_port(sport, &sp) < 0 || v1_port(dport, &dp) < 0) {
		*error_r = "v1 header with a bad port";
		return PROXY_MALFORMED;
	}
	if (v1_addr(family, src, sp, &hdr->src) < 0 || v1_addr(family, dst, dp, &hdr->dst) < 0) {
		*error_r = "v1 header with a bad address";
		return PROXY_MALFORMED;
	}
	return PROXY_DONE;
}

/* ---- v2 ------------------------------------------------------------------------- */

static enum proxy_status parse_v2(const unsigned char *d, size_t len, struct proxy_header *hdr,
				  const char **error_r)
{
	if (len < 16)
		return PROXY_NEED_MORE;
	unsigned ver = d[12] >> 4, cmd = d[12] & 0x0F;
	unsigned fam = d[13] >> 4, proto = d[13] & 0x0F;
	size_t body = ((size_t)d[14] << 8) | d[15];
	if (ver != 2) {
		*error_r = "v2 header with an unknown version";
		return PROXY_MALFORMED;
	}
	if (cmd > 1) {
		*error_r = "v2 header with an unknown command";
		return PROXY_MALFORMED;
	}
	if (16 + body > PROXY_V2_MAX) {
		*error_r = "v2 header too long";
		return PROXY_MALFORMED;
	}
	if (len < 16 + body)
		return PROXY_NEED_MORE;
	memset(hdr, 0, sizeof(*hdr));
	hdr->version = 2;
	hdr->len = 16 + body;
	if (cmd == 0) {   /* LOCAL: the proxy's own connection (health checks) */
		hdr->local = true;
		return PROXY_DONE;
	}
	if (fam == 0 || fam == 3) {   /* UNSPEC, UNIX: nothing to carry over */
		hdr->local = true;
		return PROXY_DONE;
	}
	if (proto != 1) {
		*error_r = "v2 header for a protocol other than TCP";
		return PROXY_MALFORMED;
	}
	const unsigned char *a = d + 16;
	if (fam == 1) {
		if (body < 12) {
			*error_r = "v2 header too short for TCP4 addresses";
			return PROXY_MALFORMED;
		}
		struct sockaddr_in *s = (struct sockaddr_in *)&hdr->src;
		struct sockaddr_in *t = (struct sockaddr_in *)&hdr->dst;
		s->sin_family = t->sin_family = AF_INET;
		memcpy(&s->sin_addr, a, 4);
		memcpy(&t->sin_addr, a + 4, 4);
		memcpy(&s->sin_port, a + 8, 2);
		memcpy(&t->sin_port, a + 10, 2);
		return PROXY_DONE;
	}
	if (fam == 2) {
		if (body < 36) {
			*error_r = "v2 header too short for TCP6 addresses";
			return PROXY_MALFORMED;
		}
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&hdr->src;
		struct sockaddr_in6 *t = (struct sockaddr_in6 *)&hdr->dst;
		s->sin6_family = t->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, a, 16);
		memcpy(&t->sin6_addr, a + 16, 16);
		memcpy(&s->sin6_port, a + 32, 2);
		memcpy(&t->sin6_port, a + 34, 2);
		return PROXY_DONE;
	}
	*error_r = "v2 header with an unknown address family";
	return PROXY_MALFORMED;
}

enum proxy_status proxy_parse(const void *data, size_t len, struct proxy_header *hdr_r,
			      const char **error_r)
{
	const unsigned char *d = data;
	size_t n2 = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
	size_t n1 = len < sizeof(v1_sig) - 1 ? len : sizeof(v1_sig) - 1;
	if (len == 0)
		return PROXY_NEED_MORE;
	if (memcmp(d, v2_sig, n2) == 0)
		return n2 < sizeof(v2_sig) ? PROXY_NEED_MORE : parse_v2(d, len, hdr_r, error_r);
	if (memcmp(d, v1_sig, n1) == 0)
		return n1 < sizeof(v1_sig) - 1 ? PROXY_NEED_MORE :
			parse_v1(data, len, hdr_r, error_r);
	*error_r = "no PROXY protocol header";
	return PROXY_MALFORMED;
}

/* ---- networks ------------------------------------------------------------------- */

struct proxy_net {
	int family;               /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned prefix;          /* bits */
};

struct proxy_nets {
	size_t n;
	struct proxy_net net[];
};

static int net_parse(const char *text, struct proxy_net *net, const char **error_r)
{
	char buf[64];
	const char *slash = strchr(text, '/');
	size_t alen = slash != NULL ? (size_t)(slash - text) : strlen(text);
	if (alen == 0 || alen >= sizeof(buf)) {
		*error_r = "not an address or network";
		return -1;
	}
	memcpy(buf, text, alen);
	buf[alen] = '\0';
	memset(net, 0, sizeof(*net));
	unsigned max;
	if (inet_pton(AF_INET, buf, net->addr) == 1) {
		net->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, net->addr) == 1) {
		net->family = AF_INET6;
		max = 128;
	} else {
		*error_r = "not an IP address";
		return -1;
	}
	net->prefix = max;
	if (slash != NULL) {
		char *end;
		long v = strtol(slash + 1, &end, 10);
		if (slash[1] == '\0' || *end != '\0' || v < 0 || v > (long)max) {
			*error_r = "bad prefix length";
			return -1;
		}
		net->prefix = (unsigned)v;
	}
	return 0;
}

int proxy_net_check(const char *text, const char **error_r)
{
	struct proxy_net net;
	return net_parse(text, &net, error_r);
}

struct proxy_nets *proxy_nets_new(const char *const *texts, size_t n, const char **error_r)
{
	struct proxy_nets *nets = x_calloc(1, sizeof(*nets) + n * sizeof(nets->net[0]));
	for (size_t i = 0; i < n; i++) {
		if (net_parse(texts[i], &nets->net[i], error_r) < 0) {
			free(nets);
			return NULL;
		}
	}
	nets->n = n;
	return nets;
}

void proxy_nets_free(struct proxy_nets **nets)
{
	free(*nets);
	*nets = NULL;
}

static bool prefix_equal(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned bytes = bits / 8, rest = bits % 8;
	if (memcmp(a, b, bytes) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xFF << (8 - rest));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

bool proxy_nets_match(const struct proxy_nets *nets, const struct sockaddr_storage *ss)
{
	unsigned char addr[16];
	int family;
	if (nets == NULL)
		return false;
	if (ss->ss_family == AF_INET) {
		memcpy(addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
		family = AF_INET;
	} else if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(addr, &a6->s6_addr[12], 4);
			family = AF_INET;
		} else {
			memcpy(addr, a6, 16);
			family = AF_INET6;
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < nets->n; i++)
		if (nets->net[i].family == family &&
		    prefix_equal(addr, nets->net[i].addr, nets->net[i].prefix))
			return true;
	return false;
}
