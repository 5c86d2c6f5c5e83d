/* mime-charset.c — text in a MIME charset to UTF-8. See mime.h.
 *
 * The charsets nearly all mail uses are converted here without iconv: us-ascii, utf-8,
 * iso-8859-1, iso-8859-15 and windows-1252. Like browsers (WHATWG Encoding), iso-8859-1
 * and us-ascii with 8-bit bytes are read as windows-1252, its superset in practice. Other
 * charsets go through glibc's iconv(3); a charset iconv does not know is "unknown".
 */
#include "common/mime-private.h"
#include "common/buf.h"

#include <errno.h>
#include <iconv.h>
#include <string.h>
#include <strings.h>

enum charset_kind {
	CHARSET_UNKNOWN,
	CHARSET_RAW,		/* unlabelled text: UTF-8 when valid, else windows-1252 */
	CHARSET_UTF8,
	CHARSET_CP1252,
	CHARSET_LATIN9,
	CHARSET_ICONV,
};

/* Longest charset name passed to iconv. */
#define CHARSET_NAME_MAX 64

static const struct {
	const char *name;
	enum charset_kind kind;
} charset_aliases[] = {
	{ "utf-8", CHARSET_UTF8 }, { "utf8", CHARSET_UTF8 },
	{ "us-ascii", CHARSET_RAW }, { "ascii", CHARSET_RAW }, { "us", CHARSET_RAW },
	{ "ansi_x3.4-1968", CHARSET_RAW }, { "iso646-us", CHARSET_RAW },
	{ "iso-8859-1", CHARSET_CP1252 }, { "iso8859-1", CHARSET_CP1252 },
	{ "iso_8859-1", CHARSET_CP1252 }, { "latin1", CHARSET_CP1252 },
	{ "l1", CHARSET_CP1252 }, { "cp819", CHARSET_CP1252 },
	{ "iso-ir-100", CHARSET_CP1252 }, { "windows-1252", CHARSET_CP1252 },
	{ "cp1252", CHARSET_CP1252 }, { "x-cp1252", CHARSET_CP1252 },
	{ "iso-8859-15", CHARSET_LATIN9 }, { "iso8859-15", CHARSET_LATIN9 },
	{ "iso_8859-15", CHARSET_LATIN9 }, { "latin-9", CHARSET_LATIN9 },
	{ "latin9", CHARSET_LATIN9 },
};

/* windows-1252 0x80..0x9F (WHATWG: the five holes map to the C1 controls). */
static const uint16_t cp1252_high[32] = {
	0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
	0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

int mime_utf8_put(struct buf *out, uint32_t cp)
{
	unsigned char s[4];
	size_t n;
	if (cp < 0x80) {
		s[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		s[0] = (unsigned char)(0xC0 | (cp >> 6));
		s[1] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		s[0] = (unsigned char)(0xE0 | (cp >> 12));
		s[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		s[2] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		s[0] = (unsigned char)(0xF0 | (cp >> 18));
		s[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
		s[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		s[3] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	return buf_append(out, s, n);
}

size_t mime_utf8_seq_len(const unsigned char *p, size_t len)
{
	unsigned char c = p[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xBF;	/* allowed range of the second byte */
	if (c < 0x80)
		return 1;
	if (c < 0xC2)
		return 0;
	if (c < 0xE0) {
		n = 2;
	} else if (c < 0xF0) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0;	/* overlong */
		else if (c == 0xED)
			hi = 0x9F;	/* surrogates */
	} else if (c < 0xF5) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90;	/* overlong */
		else if (c == 0xF4)
			hi = 0x8F;	/* above U+10FFFF */
	} else {
		return 0;
	}
	if (len < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	return n;
}

static int cp1252_put(struct buf *out, unsigned char c)
{
	if (c >= 0x80 && c < 0xA0)
		return mime_utf8_put(out, cp1252_high[c - 0x80]);
	return mime_utf8_put(out, c);
}

/* UTF-8 with invalid bytes replaced (by U+FFFD, or read as windows-1252 when raw). */
static int utf8_convert(const unsigned char *p, size_t len, struct buf *out, bool raw)
{
	size_t i = 0;
	while (i < len) {
		size_t start = i;
		while (i < len && p[i] < 0x80 && p[i] != 0)
			i++;
		if (buf_append(out, p + start, i - start) < 0)
			return -1;
		if (i == len)
			break;
		size_t n = p[i] == 0 ? 0 : mime_utf8_seq_len(p + i, len - i);
		int ret;
		if (n > 0)
			ret = buf_append(out, p + i, n);
		else if (p[i] == 0)
			ret = mime_utf8_put(out, 0xFFFD);
		else
			ret = raw ? cp1252_put(out, p[i]) : mime_utf8_put(out, 0xFFFD);
		if (ret < 0)
			return -1;
		i += n > 0 ? n : 1;
	}
	return 0;
}

int mime_raw_to_utf8(const void *data, size_t len, struct buf *out)
{
	return utf8_convert(data, len, out, true);
}

static int latin_convert(const unsigned char *p, size_t len, struct buf *out, bool latin9)
{
	for (size_t i = 0; i < len; i++) {
		uint32_t cp = p[i];
		if (latin9) {
			switch (cp) {
			case 0xA4: cp = 0x20AC; break;
			case 0xA6: cp = 0x0160; break;
			case 0xA8: cp = 0x0161; break;
			case 0xB4: cp = 0x017D; break;
			case 0xB8: cp = 0x017E; break;
			case 0xBC: cp = 0x0152; break;
			case 0xBD: cp = 0x0153; break;
			case 0xBE: cp = 0x0178; break;
			}
		}
		int ret = cp == 0 ? mime_utf8_put(out, 0xFFFD)
			: cp >= 0x80 && cp < 0xA0 ? cp1252_put(out, (unsigned char)cp)
			: mime_utf8_put(out, cp);
		if (ret < 0)
			return -1;
	}
	return 0;
}

static bool charset_name_ok(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > CHARSET_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("-_.:+()", c) != NULL))
			return false;
	}
	return true;
}

static enum charset_kind charset_lookup(const char *name)
{
	if (name == NULL || name[0] == '\0')
		return CHARSET_RAW;
	for (size_t i = 0; i < sizeof(charset_aliases) / sizeof(charset_aliases[0]); i++)
		if (strcasecmp(name, charset_aliases[i].name) == 0)
			return charset_aliases[i].kind;
	if (!charset_name_ok(name))
		return CHARSET_UNKNOWN;
	return CHARSET_ICONV;
}

static iconv_t iconv_open_utf8(const char *name)
{
	return iconv_open("UTF-8", name);
}

bool mime_charset_is_known(const char *charset)
{
	enum charset_kind kind = charset_lookup(charset);
	if (kind != CHARSET_ICONV)
		return kind != CHARSET_UNKNOWN;
	iconv_t cd = iconv_open_utf8(charset);
	if (cd == (iconv_t)-1)
		return false;
	iconv_close(cd);
	return true;
}

/* glibc's iconv; its UTF-8 output is then checked like any other input. */
static int iconv_convert(iconv_t cd, const unsigned char *p, size_t len, struct buf *out)
{
	char tmp[1024];
	char *in = (char *)p;
	size_t inleft = len;
	bool flush = false;
	for (;;) {
		char *o = tmp;
		size_t oleft = sizeof(tmp);
		size_t r = flush ? iconv(cd, NULL, NULL, &o, &oleft)
			: iconv(cd, &in, &inleft, &o, &oleft);
		int err = r == (size_t)-1 ? errno : 0;
		if (utf8_convert((unsigned char *)tmp, sizeof(tmp) - oleft, out, false) < 0)
			return -1;
		if (err == E2BIG)
			continue;
		if (flush)
			return 0;
		if (err == EILSEQ && inleft > 0) {
			/* skip one bad byte and go on */
			if (mime_utf8_put(out, 0xFFFD) < 0)
				return -1;
			in++;
			inleft--;
			continue;
		}
		if (err == EINVAL && inleft > 0) {
			/* incomplete sequence at the end */
			if (mime_utf8_put(out, 0xFFFD) < 0)
				return -1;
			inleft = 0;
		}
		if (inleft == 0 || err != 0)
			flush = true;
	}
}

int mime_charset_to_utf8(const char *charset, const void *data, size_t len, struct buf *out,
			 const char **error_r)
{
	const unsigned char *p = data;
	size_t old_len = buf_len(out);
	int ret;
	switch (charset_lookup(charset)) {
	case CHARSET_RAW:
		ret = utf8_convert(p, len, out, true);
		break;
	case CHARSET_UTF8:
		ret = utf8_convert(p, len, out, false);
		break;
	case CHARSET_CP1252:
		ret = latin_convert(p, len, out, false);
		break;
	case CHARSET_LATIN9:
		ret = latin_convert(p, len, out, true);
		break;
	case CHARSET_ICONV: {
		iconv_t cd = iconv_open_utf8(charset);
		if (cd == (iconv_t)-1) {
			*error_r = "unknown charset";
			return -1;
		}
		ret = iconv_convert(cd, p, len, out);
		iconv_close(cd);
		break;
	}
	default:
		*error_r = "unknown charset";
		return -1;
	}
	if (ret < 0) {
		/* keep out unchanged on overflow, as buf_append does */
		out->end = out->start + old_len;
		*error_r = "output too long";
		return -1;
	}
	return 0;
}
