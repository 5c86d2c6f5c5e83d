/* out-8bit.c — RFC 6152 3: an 8-bit message for a server without 8BITMIME is
 * converted to 7 bit or bounced. A single-part text message (or one without
 * MIME headers) is converted: its body to quoted-printable (RFC 2045 6.7, lines
 * of at most 76 characters with soft breaks), Content-Transfer-Encoding set,
 * MIME-Version and, when missing, Content-Type text/plain; charset=unknown-8bit
 * (RFC 1428) added. Multipart and non-text messages, and 8-bit headers (which
 * would need RFC 2047), are not converted: such mail bounces with 5.6.3. */
#include "smtpd/queue.h"
#include "common/buf.h"
#include "common/pool.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest encoded line (RFC 2045 6.7 rule 5), the "=" of a soft break included. */
#define QP_LINE_MAX 76

static bool field_is(const char *f, size_t len, const char *name)
{
	size_t n = strlen(name);
	return len > n && strncasecmp(f, name, n) == 0 && (f[n] == ':' || f[n] == ' ' ||
							   f[n] == '\t');
}

/* The value of a header field, unfolded, lower-cased, into out. */
static void field_value(const char *f, size_t len, char *out, size_t size)
{
	const char *colon = memchr(f, ':', len);
	size_t o = 0;
	for (const char *p = colon != NULL ? colon + 1 : f + len; p < f + len && o + 1 < size; p++) {
		if (*p == '\r' || *p == '\n')
			continue;
		if ((*p == ' ' || *p == '\t') && o == 0)
			continue;
		out[o++] = (char)tolower((unsigned char)*p);
	}
	out[o] = '\0';
}

static void qp_line(struct buf *b, const char *p, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)p[i];
		char tok[4];
		size_t tl;
		bool last = i + 1 == len;
		if ((ch >= 33 && ch <= 126 && ch != '=') || ((ch == ' ' || ch == '\t') && !last)) {
			tok[0] = (char)ch;
			tl = 1;
		} else {
			tok[0] = '=';
			tok[1] = hex[ch >> 4];
			tok[2] = hex[ch & 15];
			tl = 3;
		}
		/* room for the token and, unless it ends the line, a soft break "=" */
		if (col + tl > QP_LINE_MAX - (last ? 0 : 1)) {
			buf_append(b, "=\r\n", 3);
			col = 0;
		}
		buf_append(b, tok, tl);
		col += tl;
	}
	buf_append(b, "\r\n", 2);
}

char *out_8bit_to_qp(const char *msg, size_t len, size_t *len_r, const char **why_r)
{
	/* the header section */
	size_t hend = len, body = len;
	for (size_t i = 0; i + 3 < len; i++)
		if (memcmp(msg + i, "\r\n\r\n", 4) == 0) {
			hend = i + 2;
			body = i + 4;
			break;
		}
	for (size_t i = 0; i < hend; i++)
		if ((unsigned char)msg[i] & 0x80) {
			*why_r = "8-bit characters in the header";
			return NULL;
		}
	struct buf out = BUF_INIT(SIZE_MAX);
	bool has_ct = false, has_mv = false;
	for (size_t i = 0; i < hend;) {
		size_t start = i;
		do {   /* the field and its continuation lines */
			const char *nl = memchr(msg + i, '\n', hend - i);
			i = nl != NULL ? (size_t)(nl - msg) + 1 : hend;
		} while (i < hend && (msg[i] == ' ' || msg[i] == '\t'));
		const char *f = msg + start;
		size_t flen = i - start;
		if (field_is(f, flen, "Content-Type")) {
			char v[256];
			field_value(f, flen, v, sizeof(v));
			if (strncmp(v, "text/", 5) != 0) {
				*why_r = strncmp(v, "multipart/", 10) == 0 ?
					"a multipart message (conversion of its parts is not supported)" :
					"not a text message";
				buf_free(&out);
				return NULL;
			}
			has_ct = true;
		}
		if (field_is(f, flen, "MIME-Version"))
			has_mv = true;
		if (field_is(f, flen, "Content-Transfer-Encoding"))
			continue;   /* replaced below */
		buf_append(&out, f, flen);
	}
	if (!has_mv)
		buf_append_str(&out, "MIME-Version: 1.0\r\n");
	if (!has_ct)
		buf_append_str(&out, "Content-Type: text/plain; charset=unknown-8bit\r\n");
	buf_append_str(&out, "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	for (size_t i = body; i < len;) {
		const char *nl = memchr(msg + i, '\n', len - i);
		size_t e = nl != NULL ? (size_t)(nl - msg) : len;
		size_t l = e > i && msg[e - 1] == '\r' ? e - 1 - i : e - i;
		qp_line(&out, msg + i, l);
		i = nl != NULL ? e + 1 : len;
	}
	*len_r = buf_len(&out);
	char *res = x_malloc(buf_len(&out) + 1);
	memcpy(res, buf_data(&out), buf_len(&out));
	res[buf_len(&out)] = '\0';
	buf_free(&out);
	return res;
}
