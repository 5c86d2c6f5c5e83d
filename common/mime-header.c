/* mime-header.c — raw header blocks: fields, unfolding, RFC 2047 encoded words. See mime.h. */
#include "common/mime-private.h"
#include "common/buf.h"
#include "common/pool.h"

#include <string.h>
#include <strings.h>

/* Longest charset label in an encoded word, and longest encoded word: RFC 2047 says 75
 * bytes, real mail has longer ones; the cap keeps decoding linear. */
#define EW_CHARSET_MAX 64
#define EW_MAX 2048

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* ---- fields of a header block ---- */

void mime_header_iter_init(struct mime_header_iter *iter, const void *header, size_t len)
{
	iter->data = header;
	iter->len = len;
	iter->pos = 0;
}

/* End of the line at pos: the index just past its LF, or len. */
static size_t line_end(const char *data, size_t len, size_t pos)
{
	const char *lf = memchr(data + pos, '\n', len - pos);
	return lf == NULL ? len : (size_t)(lf - data) + 1;
}

/* Length of the line [start, end) without its line end. */
static size_t strip_eol(const char *data, size_t start, size_t end)
{
	if (end > start && data[end - 1] == '\n')
		end--;
	if (end > start && data[end - 1] == '\r')
		end--;
	return end - start;
}

bool mime_header_iter_next(struct mime_header_iter *iter, struct mime_field *field_r)
{
	const char *d = iter->data;
	size_t len = iter->len, start = iter->pos;
	if (start >= len)
		return false;
	size_t end = line_end(d, len, start);
	if (strip_eol(d, start, end) == 0) {
		/* the empty line that ends the header */
		iter->pos = len;
		return false;
	}
	/* continuation lines start with a blank */
	while (end < len && is_wsp(d[end]))
		end = line_end(d, len, end);
	iter->pos = end;

	memset(field_r, 0, sizeof(*field_r));
	field_r->offset = start;
	field_r->size = end - start;
	size_t content = start + strip_eol(d, start, end);
	const char *colon = memchr(d + start, ':', content - start);
	field_r->name = d + start;
	if (colon == NULL) {
		field_r->name_len = content - start;
		field_r->value = d + content;
		return true;
	}
	size_t name_len = (size_t)(colon - (d + start));
	while (name_len > 0 && is_wsp(d[start + name_len - 1]))
		name_len--;
	field_r->name_len = name_len;
	field_r->has_colon = true;
	field_r->value = colon + 1;
	field_r->value_len = (size_t)(d + content - (colon + 1));
	return true;
}

bool mime_header_find(const void *header, size_t len, const char *name,
		      struct mime_field *field_r)
{
	struct mime_header_iter iter;
	size_t name_len = strlen(name);
	mime_header_iter_init(&iter, header, len);
	while (mime_header_iter_next(&iter, field_r)) {
		if (field_r->has_colon && field_r->name_len == name_len &&
		    strncasecmp(field_r->name, name, name_len) == 0)
			return true;
	}
	return false;
}

int mime_header_unfold(const char *value, size_t len, struct buf *out)
{
	static const char replacement[] = "\xEF\xBF\xBD";
	size_t start = 0, end = len;
	while (start < end && (is_wsp(value[start]) || value[start] == '\r' ||
			       value[start] == '\n'))
		start++;
	while (end > start && (is_wsp(value[end - 1]) || value[end - 1] == '\r' ||
			       value[end - 1] == '\n'))
		end--;
	size_t old_len = buf_len(out);
	for (size_t i = start; i < end; ) {
		size_t j = i;
		while (j < end && value[j] != '\r' && value[j] != '\n' && value[j] != '\0')
			j++;
		if (buf_append(out, value + i, j - i) < 0)
			goto full;
		if (j < end && value[j] == '\0' && buf_append(out, replacement, 3) < 0)
			goto full;
		i = j + 1;
	}
	return 0;
full:
	out->end = out->start + old_len;
	return -1;
}

/* ---- RFC 2047 ---- */

struct encoded_word {
	char charset[EW_CHARSET_MAX + 1];	/* without an RFC 2231 "*language" */
	char encoding;				/* 'b' or 'q' */
	const char *text;
	size_t text_len;
	size_t size;				/* of the whole "=?...?=" */
};

/* especials of RFC 2047 section 2, plus blanks and controls */
static bool is_ew_token_char(unsigned char c)
{
	return c > ' ' && c < 127 && strchr("()<>@,;:\"/[]?.=", c) == NULL;
}

static bool parse_encoded_word(const char *p, size_t len, struct encoded_word *ew)
{
	if (len < 8 || p[0] != '=' || p[1] != '?')
		return false;
	if (len > EW_MAX)
		len = EW_MAX;
	size_t i = 2, cs_len = 0;
	bool in_lang = false;
	while (i < len && p[i] != '?') {
		if (!is_ew_token_char((unsigned char)p[i]))
			return false;
		if (p[i] == '*')
			in_lang = true;		/* RFC 2231 section 5 */
		else if (!in_lang) {
			if (cs_len == EW_CHARSET_MAX)
				return false;
			ew->charset[cs_len++] = p[i];
		}
		i++;
	}
	if (cs_len == 0 || i + 3 >= len || p[i + 2] != '?')
		return false;
	ew->charset[cs_len] = '\0';
	char enc = mime_lower(p[i + 1]);
	if (enc != 'b' && enc != 'q')
		return false;
	ew->encoding = enc;
	i += 3;
	size_t text = i;
	while (i + 1 < len && !(p[i] == '?' && p[i + 1] == '=')) {
		if ((unsigned char)p[i] <= ' ' || (unsigned char)p[i] == 127)
			return false;
		i++;
	}
	if (i + 1 >= len)
		return false;
	ew->text = p + text;
	ew->text_len = i - text;
	ew->size = i + 2;
	return true;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = mime_lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Lenient base64: characters outside the alphabet are skipped, decoding stops at
 * the first "=", missing padding is fine. */
static int decode_base64(const char *t, size_t n, struct buf *out)
{
	uint32_t acc = 0;
	unsigned int bits = 0;
	for (size_t i = 0; i < n && t[i] != '='; i++) {
		int v = b64_value(t[i]);
		if (v < 0)
			continue;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			char c = (char)((acc >> bits) & 0xFF);
			if (buf_append(out, &c, 1) < 0)
				return -1;
		}
	}
	return 0;
}

/* Body quoted-printable (RFC 2045 6.7): "=XX", soft line breaks "=CRLF" / "=LF". */
static int decode_qp(const char *d, size_t len, struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		int hi, lo;
		char c = d[i];
		if (c == '=' && i + 2 < len && (hi = hex_value(d[i + 1])) >= 0 &&
		    (lo = hex_value(d[i + 2])) >= 0) {
			c = (char)(hi << 4 | lo);
			i += 2;
		} else if (c == '=' && i + 1 < len && d[i + 1] == '\n') {
			i += 1;
			continue;
		} else if (c == '=' && i + 2 < len && d[i + 1] == '\r' && d[i + 2] == '\n') {
			i += 2;
			continue;
		}
		if (buf_append(out, &c, 1) < 0)
			return -1;
	}
	return 0;
}

int mime_decode_transfer(const char *encoding, const void *data, size_t len, struct buf *out)
{
	const char *d = data;
	if (encoding != NULL && strcasecmp(encoding, "base64") == 0)
		return decode_base64(d, len, out);
	if (encoding != NULL && strcasecmp(encoding, "quoted-printable") == 0)
		return decode_qp(d, len, out);
	if (buf_append(out, d, len) < 0)
		return -1;
	return encoding == NULL || strcasecmp(encoding, "7bit") == 0 ||
		strcasecmp(encoding, "8bit") == 0 || strcasecmp(encoding, "binary") == 0 ? 0 : -1;
}

/* Decodes the text of an encoded word into bytes (leniently: junk characters in B are
 * skipped, a missing padding is accepted, a bad "=XX" in Q stays as it is). */
static int decode_ew_text(const struct encoded_word *ew, struct buf *out)
{
	const char *t = ew->text;
	size_t n = ew->text_len;
	if (ew->encoding == 'q') {
		for (size_t i = 0; i < n; i++) {
			char c = t[i];
			int hi, lo;
			if (c == '_')
				c = ' ';
			else if (c == '=' && i + 2 < n && (hi = hex_value(t[i + 1])) >= 0 &&
				 (lo = hex_value(t[i + 2])) >= 0) {
				c = (char)(hi << 4 | lo);
				i += 2;
			}
			if (buf_append(out, &c, 1) < 0)
				return -1;
		}
		return 0;
	}
	return decode_base64(t, n, out);
}

/* Decoded bytes of adjacent encoded words in one charset wait here, so that a character
 * split over two words (common in the wild) converts whole. */
struct ew_pending {
	char charset[EW_CHARSET_MAX + 1];
	struct buf bytes;
};

static int pending_flush(struct ew_pending *pend, struct buf *out)
{
	const char *error;
	if (buf_len(&pend->bytes) == 0)
		return 0;
	int ret = mime_charset_to_utf8(pend->charset, buf_data(&pend->bytes),
				       buf_len(&pend->bytes), out, &error);
	buf_clear(&pend->bytes);
	return ret;
}

/* Plain text between encoded words: unfolded, NULs replaced, raw 8-bit made UTF-8. */
static int plain_append(const char *p, size_t len, struct buf *out)
{
	size_t i = 0;
	while (i < len) {
		size_t j = i;
		while (j < len && p[j] != '\r' && p[j] != '\n')
			j++;
		if (mime_raw_to_utf8(p + i, j - i, out) < 0)
			return -1;
		i = j + 1;
	}
	return 0;
}

static bool all_lwsp(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!is_wsp(p[i]) && p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

int mime_header_decode(const char *value, size_t len, struct buf *out)
{
	struct ew_pending pend;
	struct encoded_word ew;
	size_t old_len = buf_len(out), plain = 0, i = 0;
	bool after_ew = false;
	int ret = 0;

	pend.charset[0] = '\0';
	/* decoded bytes are never longer than their encoded text */
	buf_init(&pend.bytes, len + 1);
	while (i < len && ret == 0) {
		const char *q = memchr(value + i, '=', len - i);
		if (q == NULL)
			break;
		i = (size_t)(q - value);
		if (!parse_encoded_word(value + i, len - i, &ew) ||
		    !mime_charset_is_known(ew.charset)) {
			i++;
			continue;
		}
		/* blanks between two encoded words are dropped (RFC 2047 6.2) */
		if (!(after_ew && all_lwsp(value + plain, i - plain))) {
			ret = pending_flush(&pend, out);
			if (ret == 0)
				ret = plain_append(value + plain, i - plain, out);
		}
		if (ret == 0 && strcasecmp(pend.charset, ew.charset) != 0) {
			ret = pending_flush(&pend, out);
			memcpy(pend.charset, ew.charset, sizeof(pend.charset));
		}
		if (ret == 0)
			ret = decode_ew_text(&ew, &pend.bytes);
		i += ew.size;
		plain = i;
		after_ew = true;
	}
	if (ret == 0)
		ret = pending_flush(&pend, out);
	if (ret == 0)
		ret = plain_append(value + plain, len - plain, out);
	buf_free(&pend.bytes);
	if (ret < 0)
		out->end = out->start + old_len;
	return ret;
}

const char *mime_header_decode_str(struct pool *pool, const char *value, size_t len)
{
	/* a byte becomes at most 3 bytes (U+FFFD, windows-1252); iconv leaves some slack */
	struct buf out = BUF_INIT(8 * len + 16);
	const char *result;
	if (mime_header_decode(value, len, &out) < 0)
		result = pool_strndup(pool, value, len);
	else
		result = pool_strndup(pool, buf_cstr(&out), buf_len(&out));
	buf_free(&out);
	return result;
}
