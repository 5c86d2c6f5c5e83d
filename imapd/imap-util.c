/* imap-util.c — strings on the wire, sequence sets, flags, dates, mailbox names. */
#include "imapd/imap-util.h"
#include "imapd/imap-parser.h"
#include "imapd/imap-session.h"
#include "common/buf.h"
#include "common/pool.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- strings ---- */

static bool is_atom(const char *s, size_t len)
{
	if (len == 0 || (len == 3 && strncasecmp(s, "NIL", 3) == 0))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

static bool quotable(const char *s, size_t len)
{
	if (len > 1024)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' || c == '\n' || c == '\0' || c >= 0x80)
			return false;
	}
	return true;
}

void imap_append_literal(struct buf *out, const void *data, size_t len)
{
	buf_printf(out, "{%zu}\r\n", len);
	buf_append(out, data, len);
}

static void append_quoted(struct buf *out, const char *s, size_t len)
{
	buf_append(out, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			buf_append(out, "\\", 1);
		buf_append(out, &s[i], 1);
	}
	buf_append(out, "\"", 1);
}

void imap_append_nstring_len(struct buf *out, const char *s, size_t len)
{
	if (s == NULL) {
		buf_append_str(out, "NIL");
		return;
	}
	if (quotable(s, len))
		append_quoted(out, s, len);
	else
		imap_append_literal(out, s, len);
}

void imap_append_nstring(struct buf *out, const char *s)
{
	imap_append_nstring_len(out, s, s != NULL ? strlen(s) : 0);
}

void imap_append_astring(struct buf *out, const char *s, size_t len)
{
	if (is_atom(s, len))
		buf_append(out, s, len);
	else
		imap_append_nstring_len(out, s, len);
}

/* ---- sequence sets ---- */

static int parse_number(const char **pp, uint32_t star, uint32_t *n_r)
{
	const char *p = *pp;
	if (*p == '*') {
		*n_r = star;
		*pp = p + 1;
		return 0;
	}
	if (*p < '1' || *p > '9')
		return -1;
	uint64_t n = 0;
	while (isdigit((unsigned char)*p)) {
		n = n * 10 + (uint64_t)(*p - '0');
		if (n > 0xffffffffu)
			return -1;
		p++;
	}
	*n_r = (uint32_t)n;
	*pp = p;
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const struct imap_range *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

int imap_seqset_parse(const char *text, uint32_t star, struct imap_seqset *set)
{
	size_t cap = 8;
	set->ranges = x_malloc(cap * sizeof(*set->ranges));
	set->count = 0;
	const char *p = text;
	for (;;) {
		uint32_t lo, hi;
		if (parse_number(&p, star, &lo) < 0)
			goto bad;
		hi = lo;
		if (*p == ':') {
			p++;
			if (parse_number(&p, star, &hi) < 0)
				goto bad;
		}
		if (lo > hi) {
			uint32_t t = lo;
			lo = hi;
			hi = t;
		}
		if (set->count == cap) {
			if (cap >= IMAP_SEQSET_RANGES_MAX)
				goto bad;
			cap *= 2;
			set->ranges = x_realloc(set->ranges, cap * sizeof(*set->ranges));
		}
		set->ranges[set->count].lo = lo;
		set->ranges[set->count].hi = hi;
		set->count++;
		if (*p == '\0')
			break;
		if (*p != ',')
			goto bad;
		p++;
	}
	qsort(set->ranges, set->count, sizeof(*set->ranges), range_cmp);
	size_t o = 0;
	for (size_t i = 1; i < set->count; i++) {
		if ((uint64_t)set->ranges[i].lo <= (uint64_t)set->ranges[o].hi + 1) {
			if (set->ranges[i].hi > set->ranges[o].hi)
				set->ranges[o].hi = set->ranges[i].hi;
		} else {
			set->ranges[++o] = set->ranges[i];
		}
	}
	set->count = o + 1;
	return 0;
bad:
	imap_seqset_free(set);
	return -1;
}

bool imap_seqset_valid(const char *text)
{
	struct imap_seqset set;
	if (strcmp(text, "$") == 0)
		return true;
	if (imap_seqset_parse(text, 1, &set) < 0)
		return false;
	imap_seqset_free(&set);
	return true;
}

bool imap_seqset_contains(const struct imap_seqset *set, uint32_t v)
{
	size_t lo = 0, hi = set->count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v < set->ranges[mid].lo)
			hi = mid;
		else if (v > set->ranges[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

void imap_seqset_free(struct imap_seqset *set)
{
	x_free(&set->ranges);
	set->count = 0;
}

static int uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

void imap_sort_uids(uint32_t *uids, size_t count)
{
	if (count > 1)   /* uids may be NULL when there are none: qsort's arguments must not */
		qsort(uids, count, sizeof(*uids), uid_cmp);
}

void imap_append_uidset(struct buf *out, const uint32_t *uids, size_t count)
{
	for (size_t i = 0; i < count;) {
		size_t j = i;
		while (j + 1 < count && uids[j + 1] == uids[j] + 1)
			j++;
		if (i > 0)
			buf_append(out, ",", 1);
		if (j > i)
			buf_printf(out, "%u:%u", uids[i], uids[j]);
		else
			buf_printf(out, "%u", uids[i]);
		i = j + 1;
	}
}

long imap_selected_find_uid(const struct imap_selected *sel, uint32_t uid)
{
	size_t lo = 0, hi = sel->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (sel->msgs[mid].uid < uid)
			lo = mid + 1;
		else if (sel->msgs[mid].uid > uid)
			hi = mid;
		else
			return (long)mid;
	}
	return -1;
}

void imap_selected_save(struct imap_selected *sel, const uint32_t *uids, size_t count)
{
	free(sel->saved);
	sel->saved = NULL;
	sel->n_saved = 0;
	if (count == 0)
		return;
	sel->saved = x_malloc(count * sizeof(*sel->saved));
	memcpy(sel->saved, uids, count * sizeof(*sel->saved));
	sel->n_saved = count;
}

/* "$": the saved messages that are still there (an expunged one drops out). */
static size_t saved_select(const struct imap_selected *sel, size_t **idx_r)
{
	size_t *idx = x_malloc((sel->n_saved + 1) * sizeof(*idx));
	size_t n = 0;
	for (size_t i = 0; i < sel->n_saved; i++) {
		long at = imap_selected_find_uid(sel, sel->saved[i]);
		if (at >= 0)
			idx[n++] = (size_t)at;
	}
	*idx_r = idx;
	return n;
}

size_t imap_seqset_select(const struct imap_selected *sel, const char *text, bool uid,
			  size_t **idx_r, int *error_r)
{
	struct imap_seqset set;
	if (strcmp(text, "$") == 0) {
		*error_r = 0;
		return saved_select(sel, idx_r);
	}
	uint32_t star = uid ? (sel->count > 0 ? sel->msgs[sel->count - 1].uid : 0) :
		(uint32_t)sel->count;
	*idx_r = NULL;
	*error_r = 0;
	if (imap_seqset_parse(text, star, &set) < 0) {
		*error_r = -1;
		return 0;
	}
	if (!uid && (sel->count == 0 || set.ranges[set.count - 1].hi > sel->count)) {
		/* a sequence number beyond the mailbox is an error (RFC 9051 6.4.4) */
		imap_seqset_free(&set);
		*error_r = -2;
		return 0;
	}
	size_t *idx = x_malloc((sel->count + 1) * sizeof(*idx));
	size_t n = 0;
	for (size_t i = 0; i < sel->count; i++) {
		uint32_t v = uid ? sel->msgs[i].uid : (uint32_t)(i + 1);
		if (imap_seqset_contains(&set, v))
			idx[n++] = i;
	}
	imap_seqset_free(&set);
	*idx_r = idx;
	return n;
}

/* ---- flags ---- */

static const struct {
	const char *name;
	unsigned flag;
} system_flags[] = {
	{ "\\Seen", STORE_FLAG_SEEN },
	{ "\\Answered", STORE_FLAG_ANSWERED },
	{ "\\Flagged", STORE_FLAG_FLAGGED },
	{ "\\Deleted", STORE_FLAG_DELETED },
	{ "\\Draft", STORE_FLAG_DRAFT },
};

bool imap_keyword_in(const char *keywords, const char *k, size_t klen)
{
	const char *p = keywords;
	while (p != NULL && *p != '\0') {
		const char *sp = strchr(p, ' ');
		size_t len = sp != NULL ? (size_t)(sp - p) : strlen(p);
		if (len == klen && strncasecmp(p, k, klen) == 0)
			return true;
		p = sp != NULL ? sp + 1 : NULL;
	}
	return false;
}

static int add_flag(const char *f, unsigned *flags, char *kw, size_t size,
		    const char **error_r)
{
	for (size_t i = 0; i < sizeof(system_flags) / sizeof(system_flags[0]); i++) {
		if (strcasecmp(f, system_flags[i].name) == 0) {
			*flags |= system_flags[i].flag;
			return 0;
		}
	}
	if (strcasecmp(f, "\\Recent") == 0) {
		*error_r = "\\Recent cannot be changed";
		return -1;
	}
	if (f[0] == '\\') {
		*error_r = "Unknown system flag";
		return -1;
	}
	size_t len = strlen(f);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)f[i];
		if (c <= ' ' || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL) {
			*error_r = "Invalid keyword";
			return -1;
		}
	}
	if (imap_keyword_in(kw, f, len))
		return 0;
	size_t used = strlen(kw);
	if (used + len + 2 > size) {
		*error_r = "Too many keywords";
		return -1;
	}
	if (used > 0)
		kw[used++] = ' ';
	memcpy(kw + used, f, len + 1);
	return 0;
}

int imap_parse_flags(const struct imap_arg *args, size_t n, unsigned *flags_r,
		     char *keywords, size_t size, const char **error_r)
{
	*flags_r = 0;
	keywords[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (args[i].type == IMAP_ARG_LIST) {
			if (imap_parse_flags(args[i].list, args[i].n_list, flags_r, keywords,
					     size, error_r) < 0)
				return -1;
			continue;
		}
		if (args[i].type != IMAP_ARG_ATOM) {
			*error_r = "Flags must be atoms";
			return -1;
		}
		unsigned f = 0;
		if (add_flag(args[i].str, &f, keywords, size, error_r) < 0)
			return -1;
		*flags_r |= f;
	}
	return 0;
}

/* ---- dates ---- */

static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

void imap_format_datetime(int64_t t, char *out, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	snprintf(out, size, "%02d-%s-%04d %02d:%02d:%02d +0000", tm.tm_mday,
		 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int parse_month(const char *m)
{
	for (int i = 0; i < 12; i++)
		if (strncasecmp(m, months[i], 3) == 0)
			return i;
	return -1;
}

int imap_parse_date(const char *text, int64_t *t_r)
{
	int day, year;
	char mon[4];
	int used = 0;
	if (sscanf(text, "%2d-%3[A-Za-z]-%4d%n", &day, mon, &year, &used) != 3 ||
	    text[used] != '\0')
		return -1;
	int m = parse_month(mon);
	if (m < 0 || day < 1 || day > 31 || year < 1900)
		return -1;
	struct tm tm = { .tm_mday = day, .tm_mon = m, .tm_year = year - 1900 };
	*t_r = (int64_t)timegm(&tm);
	return 0;
}

int imap_parse_datetime(const char *text, int64_t *t_r)
{
	int day, year, h, mi, sec, zone;
	char mon[4], sign;
	const char *p = text[0] == ' ' ? text + 1 : text;
	int used = 0;
	if (sscanf(p, "%2d-%3[A-Za-z]-%4d %2d:%2d:%2d %c%4d%n", &day, mon, &year, &h, &mi,
		   &sec, &sign, &zone, &used) != 8 || p[used] != '\0' ||
	    (sign != '+' && sign != '-'))
		return -1;
	int m = parse_month(mon);
	if (m < 0 || day < 1 || day > 31 || h > 23 || mi > 59 || sec > 60 || year < 1900)
		return -1;
	struct tm tm = { .tm_mday = day, .tm_mon = m, .tm_year = year - 1900, .tm_hour = h,
			 .tm_min = mi, .tm_sec = sec };
	int64_t t = (int64_t)timegm(&tm);
	int offset = (zone / 100) * 3600 + (zone % 100) * 60;
	*t_r = sign == '+' ? t - offset : t + offset;
	return 0;
}

/* ---- mailbox names ---- */

int imap_mailbox_from_client(const char *name, bool utf8, char *out, size_t size)
{
	struct buf b = BUF_INIT(size - 1);
	int ret = utf8 ? buf_append_str(&b, name) : imap_utf7_to_utf8(name, &b);
	if (ret < 0 || buf_len(&b) == 0) {
		buf_free(&b);
		return -1;
	}
	size_t len = buf_len(&b);
	memcpy(out, buf_data(&b), len);
	out[len] = '\0';
	buf_free(&b);
	while (len > 1 && out[len - 1] == '/')
		out[--len] = '\0';
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			return -1;
	if (strstr(out, "//") != NULL || out[0] == '/')
		return -1;
	if (strncasecmp(out, "INBOX", 5) == 0 && (out[5] == '\0' || out[5] == '/'))
		memcpy(out, "INBOX", 5);
	return 0;
}

void imap_append_mailbox(struct buf *out, const char *name, bool utf8)
{
	if (utf8) {
		/* UTF8=ACCEPT / IMAP4rev2: 8-bit in quoted strings (RFC 6855 3) */
		size_t len = strlen(name);
		bool eight = false;
		for (size_t i = 0; i < len; i++)
			eight |= (unsigned char)name[i] >= 0x80;
		if (eight && len <= 1024)
			append_quoted(out, name, len);
		else
			imap_append_astring(out, name, len);
		return;
	}
	struct buf b = BUF_INIT(4096);
	if (imap_utf8_to_utf7(name, &b) < 0) {
		buf_clear(&b);
		buf_append_str(&b, name);
	}
	imap_append_astring(out, buf_data(&b), buf_len(&b));
	buf_free(&b);
}
