/* net-allow.c — client address against a list of networks (metrics_allow). */
#include "httpd/httpd.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

/* Parses "ADDR" or "ADDR/BITS" into family, 16 address bytes and prefix bits. */
static bool parse_net(const char *s, int *family_r, unsigned char addr[16], int *bits_r)
{
	char host[64];
	const char *slash = strchr(s, '/');
	size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (n == 0 || n >= sizeof(host))
		return false;
	memcpy(host, s, n);
	host[n] = '\0';
	memset(addr, 0, 16);
	int max;
	if (inet_pton(AF_INET, host, addr) == 1) {
		*family_r = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, addr) == 1) {
		*family_r = AF_INET6;
		max = 128;
	} else {
		return false;
	}
	*bits_r = max;
	if (slash != NULL) {
		char *end;
		long b = strtol(slash + 1, &end, 10);
		if (slash[1] == '\0' || *end != '\0' || b < 0 || b > max)
			return false;
		*bits_r = (int)b;
	}
	return true;
}

static bool prefix_equal(const unsigned char *a, const unsigned char *b, int bits)
{
	int bytes = bits / 8, rest = bits % 8;
	if (memcmp(a, b, (size_t)bytes) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

bool httpd_ip_allowed(const char *ip, const char *const *nets, size_t n)
{
	int family, bits;
	unsigned char addr[16];
	if (!parse_net(ip, &family, addr, &bits))
		return false;
	/* an IPv4 client on an IPv6 socket: ::ffff:a.b.c.d */
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (family == AF_INET6 && memcmp(addr, mapped, 12) == 0) {
		memmove(addr, addr + 12, 4);
		memset(addr + 4, 0, 12);
		family = AF_INET;
	}
	for (size_t i = 0; i < n; i++) {
		int nf, nb;
		unsigned char net[16];
		if (parse_net(nets[i], &nf, net, &nb) && nf == family && prefix_equal(addr, net, nb))
			return true;
	}
	return false;
}
