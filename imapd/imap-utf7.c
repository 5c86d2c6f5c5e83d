/* imap-utf7.c — modified UTF-7 mailbox names (RFC 3501 5.1.3). */
#include "imapd/imap-util.h"
#include "common/buf.h"

#include <string.h>

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64val(unsigned char c)
{
	const char *p = c != '\0' ? strchr(b64chars, c) : NULL;
	return p != NULL ? (int)(p - b64chars) : -1;
}

static int put_utf8(struct buf *out, uint32_t cp)
{
	char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return buf_append(out, u, n);
}

/* Decodes the base64 run between '&' and '-' (UTF-16BE). */
static int decode_run(const char *p, size_t len, struct buf *out)
{
	uint32_t bits = 0, high = 0;
	int nbits = 0;
	size_t units = 0;
	for (size_t i = 0; i < len; i++) {
		int v = b64val((unsigned char)p[i]);
		if (v < 0)
			return -1;
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits >= 16) {
			nbits -= 16;
			uint32_t u = (bits >> nbits) & 0xffff;
			units++;
			if (high != 0) {
				if (u < 0xdc00 || u > 0xdfff)
					return -1;
				if (put_utf8(out, 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00)) < 0)
					return -1;
				high = 0;
			} else if (u >= 0xd800 && u <= 0xdbff) {
				high = u;
			} else if (u >= 0xdc00 && u <= 0xdfff) {
				return -1;
			} else {
				/* printable ASCII must not be encoded */
				if (u >= 0x20 && u < 0x7f)
					return -1;
				if (put_utf8(out, u) < 0)
					return -1;
			}
		}
	}
	/* leftover bits must be zero and fewer than 6 */
	if (high != 0 || units == 0 || nbits >= 6 || (bits & ((1u << nbits) - 1)) != 0)
		return -1;
	return 0;
}

int imap_utf7_to_utf8(const char *in, struct buf *out)
{
	for (const char *p = in; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 0x80 || c < 0x20)
			return -1;
		if (c != '&') {
			if (buf_append(out, p, 1) < 0)
				return -1;
			continue;
		}
		const char *end = strchr(p + 1, '-');
		if (end == NULL)
			return -1;
		if (end == p + 1) {
			if (buf_append(out, "&", 1) < 0)
				return -1;
		} else if (decode_run(p + 1, (size_t)(end - p - 1), out) < 0) {
			return -1;
		}
		p = end;
	}
	return 0;
}

/* Next code point of UTF-8 text; -1 when invalid. */
static int next_cp(const unsigned char **pp, uint32_t *cp)
{
	const unsigned char *p = *pp;
	uint32_t c = p[0];
	int n;
	if (c < 0x80) {
		*cp = c;
		*pp = p + 1;
		return 0;
	}
	if ((c & 0xe0) == 0xc0) {
		c &= 0x1f;
		n = 1;
	} else if ((c & 0xf0) == 0xe0) {
		c &= 0x0f;
		n = 2;
	} else if ((c & 0xf8) == 0xf0) {
		c &= 0x07;
		n = 3;
	} else {
		return -1;
	}
	for (int i = 1; i <= n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if ((n == 1 && c < 0x80) || (n == 2 && c < 0x800) || (n == 3 && c < 0x10000) ||
	    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return -1;
	*cp = c;
	*pp = p + n + 1;
	return 0;
}

int imap_utf8_to_utf7(const char *in, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)in;
	while (*p != '\0') {
		if (*p >= 0x20 && *p < 0x7f) {
			if (buf_append(out, *p == '&' ? "&-" : (const char *)p, *p == '&' ? 2 : 1) < 0)
				return -1;
			p++;
			continue;
		}
		/* a run of characters outside printable ASCII */
		if (buf_append(out, "&", 1) < 0)
			return -1;
		uint32_t bits = 0;
		int nbits = 0;
		while (*p != '\0' && !(*p >= 0x20 && *p < 0x7f)) {
			uint32_t cp;
			if (next_cp(&p, &cp) < 0)
				return -1;
			uint16_t units[2];
			int nu = 1;
			if (cp >= 0x10000) {
				units[0] = (uint16_t)(0xd800 + ((cp - 0x10000) >> 10));
				units[1] = (uint16_t)(0xdc00 + ((cp - 0x10000) & 0x3ff));
				nu = 2;
			} else {
				units[0] = (uint16_t)cp;
			}
			for (int u = 0; u < nu; u++) {
				bits = (bits << 16) | units[u];
				nbits += 16;
				while (nbits >= 6) {
					nbits -= 6;
					if (buf_append(out, &b64chars[(bits >> nbits) & 0x3f], 1) < 0)
						return -1;
				}
			}
		}
		if (nbits > 0 &&
		    buf_append(out, &b64chars[(bits << (6 - nbits)) & 0x3f], 1) < 0)
			return -1;
		if (buf_append(out, "-", 1) < 0)
			return -1;
	}
	return 0;
}
