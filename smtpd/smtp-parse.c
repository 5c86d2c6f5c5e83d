/* smtp-parse.c — SMTP paths, addresses, xtext and client networks (no I/O, no state;
 * unit-tested and fuzzed on their own). */
#include "smtpd/smtp-session.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool smtp_has_8bit(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

/* RFC 5321 atext, plus 8-bit bytes with SMTPUTF8 (RFC 6531 UTF8-non-ascii). */
static bool atext(unsigned char c, bool utf8)
{
	if (c >= 0x80)
		return utf8;
	return isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool valid_local(const char *s, size_t len, bool utf8)
{
	if (len == 0 || len > SMTP_PATH_MAX)
		return false;
	if (s[0] == '"') {
		/* quoted-string: qtextSMTP or quoted-pairSMTP */
		if (len < 2 || s[len - 1] != '"')
			return false;
		for (size_t i = 1; i < len - 1; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c == '\\') {
				if (++i >= len - 1 || (unsigned char)s[i] < 32 || (unsigned char)s[i] > 126)
					return false;
			} else if (c == '"' || (c < 32) || c == 127 || (c >= 0x80 && !utf8)) {
				return false;
			}
		}
		return true;
	}
	if (s[0] == '.' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return false;
		} else if (!atext((unsigned char)s[i], utf8)) {
			return false;
		}
	}
	return true;
}

static bool valid_domain(const char *s, size_t len, bool utf8)
{
	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return false;
	if (s[0] == '[') {
		/* address literal: [1.2.3.4] or [IPv6:...] */
		char lit[128];
		unsigned char bin[16];
		if (s[len - 1] != ']' || len - 2 >= sizeof(lit))
			return false;
		memcpy(lit, s + 1, len - 2);
		lit[len - 2] = '\0';
		if (strncasecmp(lit, "IPv6:", 5) == 0)
			return inet_pton(AF_INET6, lit + 5, bin) == 1;
		return inet_pton(AF_INET, lit, bin) == 1;
	}
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!(isalnum(c) || c == '-' || (c >= 0x80 && utf8)))
			return false;
		if (label == 0 && c == '-')
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

/* Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF). */
static bool utf8_valid(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		unsigned char c = s[i];
		size_t n;
		unsigned long cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + n >= len)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

bool smtp_address_valid(const char *addr, bool utf8)
{
	size_t len = strlen(addr);
	if (len == 0 || len > SMTP_PATH_MAX)
		return false;
	if (utf8 && !utf8_valid((const unsigned char *)addr, len))
		return false;
	const char *at = strrchr(addr, '@');
	if (at == NULL)
		return false;
	return valid_local(addr, (size_t)(at - addr), utf8) &&
		valid_domain(at + 1, len - (size_t)(at - addr) - 1, utf8);
}

int smtp_parse_path(const char *args, const char *prefix, char *addr, size_t size,
		    const char **params_r)
{
	size_t plen = strlen(prefix);
	if (strncasecmp(args, prefix, plen) != 0)
		return -1;
	const char *p = args + plen;
	while (*p == ' ')
		p++;   /* "MAIL FROM: <a@b>" is common although RFC 5321 has no space */
	if (*p != '<')
		return -1;
	p++;
	/* a source route "@a,@b:" is accepted and ignored (RFC 5321 4.1.2) */
	if (*p == '@') {
		const char *colon = strchr(p, ':');
		if (colon == NULL)
			return -1;
		p = colon + 1;
	}
	const char *start = p;
	bool quoted = false;
	for (; *p != '\0'; p++) {
		if (quoted && *p == '\\' && p[1] != '\0') {
			p++;
			continue;
		}
		if (*p == '"')
			quoted = !quoted;
		else if (!quoted && *p == '>')
			break;
		else if (!quoted && (*p == '<' || *p == ' '))
			return -1;
	}
	if (*p != '>')
		return -1;
	size_t len = (size_t)(p - start);
	if (len >= size || len > SMTP_PATH_MAX)
		return -1;
	memcpy(addr, start, len);
	addr[len] = '\0';
	p++;
	if (*p != '\0' && *p != ' ')
		return -1;
	while (*p == ' ')
		p++;
	*params_r = p;
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int smtp_xtext_decode(const char *in, size_t len, char *out, size_t size)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '+') {
			if (i + 2 >= len)
				return -1;
			int h = hexval((unsigned char)in[i + 1]), l = hexval((unsigned char)in[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = (unsigned char)(h * 16 + l);
			i += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			return -1;
		}
		if (o + 1 >= size)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

static bool net_match_one(const char *ip, const char *net)
{
	char addr[64];
	unsigned char a[16], b[16];
	const char *slash = strchr(net, '/');
	size_t n = slash != NULL ? (size_t)(slash - net) : strlen(net);
	if (n == 0 || n >= sizeof(addr))
		return false;
	memcpy(addr, net, n);
	addr[n] = '\0';
	int af = strchr(addr, ':') != NULL ? AF_INET6 : AF_INET;
	int max = af == AF_INET ? 32 : 128;
	if (inet_pton(af, addr, b) != 1)
		return false;
	/* an IPv4 client seen through an IPv6 socket: ::ffff:a.b.c.d */
	const char *cip = ip;
	if (af == AF_INET && strncasecmp(ip, "::ffff:", 7) == 0)
		cip = ip + 7;
	if (inet_pton(af, cip, a) != 1)
		return false;
	long bits = max;
	if (slash != NULL) {
		char *end;
		bits = strtol(slash + 1, &end, 10);
		if (*end != '\0' || bits < 0 || bits > max)
			return false;
	}
	size_t bytes = (size_t)bits / 8;
	if (memcmp(a, b, bytes) != 0)
		return false;
	if (bits % 8 != 0) {
		unsigned char mask = (unsigned char)(0xff << (8 - bits % 8));
		if ((a[bytes] & mask) != (b[bytes] & mask))
			return false;
	}
	return true;
}

bool smtp_net_match(const char *ip, const char *const *nets, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (net_match_one(ip, nets[i]))
			return true;
	return false;
}
