/* mime-param.c — Content-Type / Content-Disposition values and their parameters:
 * RFC 2045 5.1 syntax, RFC 2231 continuations, charsets and languages, and the RFC 2047
 * encoded words that Outlook and Thunderbird put in quoted file names.
 *
 * Lenient like every mail reader: comments are skipped, a missing ";" between parameters
 * is forgiven, an unquoted value with spaces or tspecials runs to the next ";", an
 * unterminated quoted string runs to the end, duplicate parameters keep the first.
 */
#include "common/mime-private.h"
#include "common/buf.h"
#include "common/pool.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Highest RFC 2231 section number accepted (name*999). */
#define MAX_SECTION 999

struct scan {
	const char *p, *end;
};

struct raw_param {
	const char *attr;	/* the attribute as written, e.g. "title*1*" */
	size_t attr_len;
	size_t base_len;	/* length of the name without RFC 2231 suffixes */
	int section;		/* RFC 2231 section number, -1 if none */
	bool extended;		/* ends in "*": charset'language'percent-encoded */
	size_t val_off, val_len; /* the value, unquoted, in the scratch buffer */
	bool used;
};

static void skip_cfws(struct scan *s)
{
	while (s->p < s->end) {
		char c = *s->p;
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			s->p++;
			continue;
		}
		if (c != '(')
			return;
		int depth = 0;
		while (s->p < s->end) {
			c = *s->p++;
			if (c == '\\' && s->p < s->end)
				s->p++;
			else if (c == '(')
				depth++;
			else if (c == ')' && --depth == 0)
				break;
		}
	}
}

/* RFC 2045 token characters; 8-bit bytes are let in as real mail has them. */
static bool is_token_char(unsigned char c)
{
	return c > ' ' && c != 127 && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static size_t scan_token(struct scan *s)
{
	const char *start = s->p;
	while (s->p < s->end && is_token_char((unsigned char)*s->p))
		s->p++;
	return (size_t)(s->p - start);
}

static const char *lower_dup(struct pool *pool, const char *p, size_t len)
{
	char *r = pool_strndup(pool, p, len);
	for (size_t i = 0; i < len; i++)
		r[i] = mime_lower(r[i]);
	return r;
}

/* Moves past the next ';' (or to the end). */
static void skip_to_semicolon(struct scan *s)
{
	const char *semi = memchr(s->p, ';', (size_t)(s->end - s->p));
	s->p = semi != NULL ? semi + 1 : s->end;
}

/* Reads a parameter value into scratch. */
static int scan_value(struct scan *s, struct buf *scratch)
{
	if (s->p < s->end && *s->p == '"') {
		s->p++;
		while (s->p < s->end && *s->p != '"') {
			if (*s->p == '\\' && s->p + 1 < s->end)
				s->p++;
			if (buf_append(scratch, s->p, 1) < 0)
				return -1;
			s->p++;
		}
		if (s->p < s->end)
			s->p++;
		return 0;
	}
	const char *start = s->p;
	size_t len = scan_token(s);
	skip_cfws(s);
	if (s->p < s->end && *s->p != ';') {
		/* junk such as name=My File.pdf: take everything up to the ';' */
		const char *semi = memchr(start, ';', (size_t)(s->end - start));
		const char *stop = semi != NULL ? semi : s->end;
		while (stop > start && (stop[-1] == ' ' || stop[-1] == '\t' ||
					stop[-1] == '\r' || stop[-1] == '\n'))
			stop--;
		len = (size_t)(stop - start);
		s->p = semi != NULL ? semi : s->end;
	}
	return buf_append(scratch, start, len);
}

/* Splits "name*", "name*3" and "name*3*" into their RFC 2231 parts; anything else is a
 * plain name. */
static void split_attr(struct raw_param *rp)
{
	const char *star = memchr(rp->attr, '*', rp->attr_len);
	rp->base_len = rp->attr_len;
	rp->section = -1;
	rp->extended = false;
	if (star == NULL || star == rp->attr)
		return;
	size_t i = (size_t)(star - rp->attr) + 1, n = rp->attr_len;
	int section = -1;
	bool extended;
	if (i == n) {
		extended = true;		/* name* */
	} else {
		if (rp->attr[i] < '0' || rp->attr[i] > '9')
			return;
		section = 0;
		while (i < n && rp->attr[i] >= '0' && rp->attr[i] <= '9') {
			section = section * 10 + (rp->attr[i] - '0');
			if (section > MAX_SECTION)
				return;
			i++;
		}
		extended = i + 1 == n && rp->attr[i] == '*';
		if (i != n && !extended)
			return;
	}
	rp->base_len = (size_t)(star - rp->attr);
	rp->section = section;
	rp->extended = extended;
}

static bool same_base(const struct raw_param *a, const struct raw_param *b)
{
	return a->base_len == b->base_len && strncasecmp(a->attr, b->attr, a->base_len) == 0;
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

/* Appends an RFC 2231 extended value, percent-decoded ("%00" stays as it is). */
static void percent_decode(const char *p, size_t len, struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		char c = p[i];
		int hi, lo;
		if (c == '%' && i + 2 < len && (hi = hex_value(p[i + 1])) >= 0 &&
		    (lo = hex_value(p[i + 2])) >= 0 && (hi | lo) != 0) {
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		(void)buf_append(out, &c, 1);
	}
}

/* Joins the sections of an RFC 2231 parameter (or the single name*= value), decodes
 * the charset, and fills param. */
static void param_extended(struct pool *pool, struct raw_param *raw, unsigned int count,
			   unsigned int first, const char *scratch, struct mime_param *param)
{
	struct raw_param *head = &raw[first];
	struct buf bytes = BUF_INIT((size_t)-1);
	const char *charset = NULL, *language = NULL;
	bool any_extended = false;

	for (int section = head->section < 0 ? -1 : 0; section <= MAX_SECTION; section++) {
		struct raw_param *rp = NULL;
		for (unsigned int i = 0; i < count; i++) {
			if (same_base(&raw[i], head) && raw[i].section == section &&
			    (section >= 0 || raw[i].extended)) {
				rp = &raw[i];
				break;
			}
		}
		if (rp == NULL)
			break;
		const char *v = scratch + rp->val_off;
		size_t vlen = rp->val_len;
		if (rp->extended && section <= 0) {
			/* charset'language'value */
			const char *q1 = memchr(v, '\'', vlen);
			const char *q2 = q1 == NULL ? NULL :
				memchr(q1 + 1, '\'', vlen - (size_t)(q1 + 1 - v));
			if (q2 != NULL) {
				if (q1 > v)
					charset = pool_strndup(pool, v, (size_t)(q1 - v));
				if (q2 > q1 + 1)
					language = pool_strndup(pool, q1 + 1, (size_t)(q2 - q1 - 1));
				vlen -= (size_t)(q2 + 1 - v);
				v = q2 + 1;
			}
		}
		if (rp->extended) {
			any_extended = true;
			percent_decode(v, vlen, &bytes);
		} else {
			(void)buf_append(&bytes, v, vlen);
		}
		if (section < 0)
			break;
	}

	struct buf utf8 = BUF_INIT((size_t)-1);
	const char *error;
	param->charset = charset;
	param->language = language;
	param->flags = MIME_PARAM_EXTENDED;
	if (!any_extended || charset == NULL) {
		(void)mime_raw_to_utf8(buf_cstr(&bytes), buf_len(&bytes), &utf8);
		param->value = pool_strndup(pool, buf_cstr(&utf8), buf_len(&utf8));
	} else if (mime_charset_to_utf8(charset, buf_cstr(&bytes), buf_len(&bytes), &utf8,
					&error) == 0) {
		param->value = pool_strndup(pool, buf_cstr(&utf8), buf_len(&utf8));
	} else {
		param->value = pool_strndup(pool, buf_cstr(&bytes), buf_len(&bytes));
		param->flags |= MIME_PARAM_RAW;
	}
	buf_free(&utf8);
	buf_free(&bytes);
}

static void params_parse(struct pool *pool, struct scan *s, struct mime_param **params_r,
			 unsigned int *count_r)
{
	struct raw_param *raw = NULL;
	unsigned int count = 0;
	struct buf scratch = BUF_INIT((size_t)-1);

	*params_r = NULL;
	*count_r = 0;
	for (;;) {
		skip_cfws(s);
		if (s->p >= s->end)
			break;
		if (*s->p == ';') {
			s->p++;
			continue;
		}
		const char *attr = s->p;
		size_t attr_len = scan_token(s);
		skip_cfws(s);
		if (attr_len == 0 || s->p >= s->end || *s->p != '=') {
			skip_to_semicolon(s);
			continue;
		}
		s->p++;
		skip_cfws(s);
		size_t off = buf_len(&scratch);
		if (scan_value(s, &scratch) < 0)
			break;
		if (count == MIME_MAX_PARAMS)
			continue;
		if (raw == NULL)
			raw = x_calloc(MIME_MAX_PARAMS, sizeof(*raw));
		struct raw_param *rp = &raw[count++];
		rp->attr = attr;
		rp->attr_len = attr_len;
		rp->val_off = off;
		rp->val_len = buf_len(&scratch) - off;
		split_attr(rp);
	}
	if (count == 0) {
		buf_free(&scratch);
		return;
	}

	const char *sc = buf_cstr(&scratch);
	struct mime_param *params = pool_alloc(pool, count * sizeof(*params));
	unsigned int n = 0;
	for (unsigned int i = 0; i < count; i++) {
		if (raw[i].used)
			continue;
		/* precedence: name*0..., then name*=, then the plain name= */
		int best = -1, rank = 0;
		for (unsigned int j = i; j < count; j++) {
			if (!same_base(&raw[j], &raw[i]))
				continue;
			raw[j].used = true;
			int r = raw[j].section == 0 ? 3 : raw[j].section < 0 && raw[j].extended ? 2
				: raw[j].section < 0 ? 1 : 0;
			if (r > rank) {
				rank = r;
				best = (int)j;
			}
		}
		if (best < 0)
			continue;	/* only sections > 0: no start */
		struct mime_param *param = &params[n++];
		param->name = lower_dup(pool, raw[best].attr, raw[best].base_len);
		if (rank >= 2) {
			param_extended(pool, raw, count, (unsigned int)best, sc, param);
		} else if (strcmp(param->name, "boundary") == 0) {
			param->value = pool_strndup(pool, sc + raw[best].val_off, raw[best].val_len);
		} else {
			param->value = mime_header_decode_str(pool, sc + raw[best].val_off,
							      raw[best].val_len);
		}
	}
	free(raw);
	buf_free(&scratch);
	*params_r = params;
	*count_r = n;
}

int mime_content_type_parse(struct pool *pool, const char *value, size_t len,
			    const char **type_r, const char **subtype_r,
			    struct mime_param **params_r, unsigned int *count_r)
{
	struct scan s = { value, value + len };
	skip_cfws(&s);
	const char *type = s.p;
	size_t type_len = scan_token(&s);
	skip_cfws(&s);
	if (type_len == 0 || s.p >= s.end || *s.p != '/')
		return -1;
	s.p++;
	skip_cfws(&s);
	const char *subtype = s.p;
	size_t subtype_len = scan_token(&s);
	if (subtype_len == 0)
		return -1;
	*type_r = lower_dup(pool, type, type_len);
	*subtype_r = lower_dup(pool, subtype, subtype_len);
	params_parse(pool, &s, params_r, count_r);
	return 0;
}

void mime_disposition_parse(struct pool *pool, const char *value, size_t len,
			    const char **token_r, struct mime_param **params_r,
			    unsigned int *count_r)
{
	struct scan s = { value, value + len };
	skip_cfws(&s);
	const char *token = s.p;
	size_t token_len = scan_token(&s);
	*token_r = token_len == 0 ? NULL : lower_dup(pool, token, token_len);
	params_parse(pool, &s, params_r, count_r);
}

const char *mime_token_parse(struct pool *pool, const char *value, size_t len)
{
	struct scan s = { value, value + len };
	skip_cfws(&s);
	const char *token = s.p;
	size_t token_len = scan_token(&s);
	return token_len == 0 ? NULL : lower_dup(pool, token, token_len);
}
