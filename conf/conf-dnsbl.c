/* conf-dnsbl.c — the zone specifications of dnsbl { sites, rhsbl_sites }, in
 * Postfix's postscreen_dnsbl_sites form "zone[=codes][*weight]": parsed when the
 * config is checked (file:line errors) and by smtpd's policy-rbl.c. */
#include "conf/conf.h"

#include <stdlib.h>
#include <string.h>

static void bit_set_range(uint8_t bits[32], long lo, long hi)
{
	for (long v = lo; v <= hi; v++)
		bits[v / 8] |= (uint8_t)(1u << (v % 8));
}

static bool parse_number(const char **p, const char *end, long *v)
{
	const char *q = *p;
	long n = 0;
	if (q >= end || *q < '0' || *q > '9')
		return false;
	while (q < end && *q >= '0' && *q <= '9') {
		n = n * 10 + (*q++ - '0');
		if (n > 255)
			return false;
	}
	*v = n;
	*p = q;
	return true;
}

/* One octet: "2", or "[2..11]", "[1;3;5..7]". */
static bool parse_octet(const char *p, const char *end, uint8_t bits[32])
{
	long lo, hi;
	if (p < end && *p == '[') {
		if (end[-1] != ']')
			return false;
		p++;
		end--;
		while (p < end) {
			if (!parse_number(&p, end, &lo))
				return false;
			hi = lo;
			if (end - p >= 2 && p[0] == '.' && p[1] == '.') {
				p += 2;
				if (!parse_number(&p, end, &hi) || hi < lo)
					return false;
			}
			bit_set_range(bits, lo, hi);
			if (p < end && *p++ != ';')
				return false;
		}
		return true;
	}
	if (!parse_number(&p, end, &lo) || p != end)
		return false;
	bit_set_range(bits, lo, lo);
	return true;
}

static bool parse_codes(const char *p, const char *end, struct conf_dnsbl_site *site)
{
	for (int i = 0; i < 4; i++) {
		const char *tok_end;
		if (p < end && *p == '[') {
			tok_end = memchr(p, ']', (size_t)(end - p));
			if (tok_end == NULL)
				return false;
			tok_end++;
		} else {
			tok_end = p;
			while (tok_end < end && *tok_end != '.')
				tok_end++;
		}
		if (!parse_octet(p, tok_end, site->octet[i]))
			return false;
		if (i < 3) {
			if (tok_end >= end || *tok_end != '.')
				return false;
			p = tok_end + 1;
		} else if (tok_end != end) {
			return false;
		}
	}
	return true;
}

bool conf_dnsbl_site_parse(const char *spec, struct conf_dnsbl_site *site)
{
	memset(site, 0, sizeof(*site));
	site->weight = 1;
	site->any = true;
	size_t zlen = strcspn(spec, "=*");
	if (zlen == 0 || zlen > CONF_DNSBL_ZONE_MAX)
		return false;
	memcpy(site->zone, spec, zlen);
	site->zone[zlen] = '\0';
	for (size_t i = 0; i < zlen; i++)
		if (!(spec[i] == '.' || spec[i] == '-' || spec[i] == '_' ||
		      (spec[i] >= '0' && spec[i] <= '9') || ((spec[i] | 0x20) >= 'a' &&
							     (spec[i] | 0x20) <= 'z')))
			return false;
	const char *p = spec + zlen;
	if (*p == '=') {
		const char *end = strchr(p, '*');
		if (end == NULL)
			end = p + strlen(p);
		if (!parse_codes(p + 1, end, site))
			return false;
		site->any = false;
		p = end;
	}
	if (*p == '*') {
		char *end;
		long w = strtol(p + 1, &end, 10);
		if (end == p + 1 || *end != '\0' || w < -1000 || w > 1000)
			return false;
		site->weight = (int)w;
		p = end;
	}
	return *p == '\0';
}

bool conf_dnsbl_site_matches(const struct conf_dnsbl_site *site, const unsigned char a[4])
{
	if (site->any)
		return a[0] == 127 && !(a[1] == 255 && a[2] == 255);
	for (int i = 0; i < 4; i++)
		if (!(site->octet[i][a[i] / 8] & (1u << (a[i] % 8))))
			return false;
	return true;
}

