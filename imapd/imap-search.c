/* imap-search.c — SEARCH and UID SEARCH (RFC 9051 6.4.4) with the whole key grammar,
 * CHARSET UTF-8/US-ASCII, ESEARCH result options (RFC 4731), MODSEQ (RFC 7162) and
 * YOUNGER/OLDER (RFC 5032). Header keys match case-insensitively on decoded header
 * values; BODY and TEXT on the decoded text parts (transfer encoding and charset). */
#include "imapd/imap-fetch.h"
#include "imapd/imap-search.h"
#include "imapd/imap-sort.h"
#include "common/log.h"
#include "common/mime.h"
#include "common/pool.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Messages whose store records are read at once. */
#define SEARCH_BLOCK 4096
/* Nesting of NOT/OR/parentheses accepted. */
#define SEARCH_DEPTH_MAX 32

enum skey_type {
	SK_ALL, SK_AND, SK_OR, SK_NOT, SK_FLAG, SK_UNFLAG, SK_KEYWORD, SK_UNKEYWORD,
	SK_NONE, SK_SEQSET, SK_UIDSET, SK_LARGER, SK_SMALLER, SK_BEFORE, SK_ON, SK_SINCE,
	SK_SENTBEFORE, SK_SENTON, SK_SENTSINCE, SK_HEADER, SK_BODY, SK_TEXT, SK_MODSEQ,
	SK_YOUNGER, SK_OLDER,
};

struct skey {
	enum skey_type type;
	struct skey **kids;
	size_t n_kids;
	unsigned flag;
	const char *str;        /* folded UTF-8 needle, keyword */
	const char *header;     /* HEADER field name (FROM, TO, ... map to it) */
	uint64_t num;
	int64_t day;            /* days since the epoch */
	struct imap_range *ranges;
	size_t n_ranges;
};

struct search_parser {
	struct imap_session *s;
	struct pool *pool;
	const struct imap_arg *args;
	size_t n, i;
	bool uid;
	bool has_modseq;
	const char *error;
	bool badcharset;
};

/* ---- case folding of UTF-8 (Latin, Greek, Cyrillic: what mail clients search) ---- */

static uint32_t fold_cp(uint32_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c + 32;
	if (c < 0x80)
		return c;
	if ((c >= 0xc0 && c <= 0xde && c != 0xd7))
		return c + 32;
	if (c >= 0x100 && c <= 0x17f && c != 0x130 && c != 0x131 && c != 0x138 &&
	    !(c >= 0x139 && c <= 0x148) && !(c >= 0x179 && c <= 0x17e))
		return c | 1;
	if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e))
		return (c & 1) ? c + 1 : c;
	if (c >= 0x391 && c <= 0x3a9)
		return c + 32;
	if (c >= 0x410 && c <= 0x42f)
		return c + 32;
	if (c >= 0x400 && c <= 0x40f)
		return c + 80;
	return c;
}

static void put_cp(struct buf *out, uint32_t c)
{
	char u[4];
	size_t n;
	if (c < 0x80) {
		u[0] = (char)c;
		n = 1;
	} else if (c < 0x800) {
		u[0] = (char)(0xc0 | (c >> 6));
		u[1] = (char)(0x80 | (c & 0x3f));
		n = 2;
	} else if (c < 0x10000) {
		u[0] = (char)(0xe0 | (c >> 12));
		u[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		u[2] = (char)(0x80 | (c & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (c >> 18));
		u[1] = (char)(0x80 | ((c >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((c >> 6) & 0x3f));
		u[3] = (char)(0x80 | (c & 0x3f));
		n = 4;
	}
	buf_append(out, u, n);
}

/* Appends text case-folded; invalid bytes are copied as they are. */
void imap_search_fold(const char *text, size_t len, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)text, *end = p + len;
	while (p < end) {
		uint32_t c = *p;
		if (c < 0x80) {
			char ch = (char)fold_cp(c);
			buf_append(out, &ch, 1);
			p++;
			continue;
		}
		int extra = c >= 0xf8 ? -1 : c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : -1;
		bool ok = extra > 0 && (size_t)(end - p) > (size_t)extra;
		uint32_t v = ok ? (c & (0x3fu >> extra)) : 0;
		for (int k = 1; ok && k <= extra; k++) {
			if ((p[k] & 0xc0) != 0x80)
				ok = false;
			else
				v = (v << 6) | (p[k] & 0x3f);
		}
		if (!ok) {
			buf_append(out, p, 1);
			p++;
			continue;
		}
		put_cp(out, fold_cp(v));
		p += extra + 1;
	}
}

static const char *fold_str(struct pool *pool, const char *s)
{
	struct buf b = BUF_INIT(1024 * 1024);
	imap_search_fold(s, strlen(s), &b);
	char *r = pool_strndup(pool, buf_data(&b), buf_len(&b));
	buf_free(&b);
	return r;
}

/* ---- parsing ---- */

static struct skey *new_key(struct search_parser *ps, enum skey_type type)
{
	struct skey *k = pool_alloc(ps->pool, sizeof(*k));
	memset(k, 0, sizeof(*k));
	k->type = type;
	return k;
}

static const char *next_string(struct search_parser *ps)
{
	if (ps->i >= ps->n) {
		ps->error = "Missing search argument";
		return NULL;
	}
	const char *v = imap_arg_string(&ps->args[ps->i]);
	if (v == NULL) {
		ps->error = "Invalid search argument";
		return NULL;
	}
	ps->i++;
	return v;
}

static int next_number(struct search_parser *ps, uint64_t *n)
{
	const char *v = next_string(ps);
	char *end;
	if (v == NULL)
		return -1;
	if (!isdigit((unsigned char)v[0]) || (*n = strtoull(v, &end, 10), *end != '\0')) {
		ps->error = "Invalid number";
		return -1;
	}
	return 0;
}

static int next_date(struct search_parser *ps, int64_t *day)
{
	const char *v = next_string(ps);
	int64_t t;
	if (v == NULL)
		return -1;
	if (imap_parse_date(v, &t) < 0) {
		ps->error = "Invalid date";
		return -1;
	}
	*day = t / 86400;
	return 0;
}

static int set_key(struct search_parser *ps, struct skey *k, const char *text, bool uid)
{
	struct imap_selected *sel = ps->s->sel;
	uint32_t star = uid ? (sel->count > 0 ? sel->msgs[sel->count - 1].uid : 0) :
		(uint32_t)sel->count;
	struct imap_seqset set;
	if (strcmp(text, "$") == 0) {
		/* SEARCHRES: the saved result, by UID whatever the command */
		k->type = SK_UIDSET;
		k->ranges = pool_alloc(ps->pool, (sel->n_saved + 1) * sizeof(*k->ranges));
		k->n_ranges = 0;
		for (size_t i = 0; i < sel->n_saved; i++) {
			if (k->n_ranges > 0 && k->ranges[k->n_ranges - 1].hi + 1 == sel->saved[i]) {
				k->ranges[k->n_ranges - 1].hi = sel->saved[i];
				continue;
			}
			k->ranges[k->n_ranges].lo = k->ranges[k->n_ranges].hi = sel->saved[i];
			k->n_ranges++;
		}
		return 0;
	}
	if (imap_seqset_parse(text, star, &set) < 0) {
		ps->error = "Invalid sequence set";
		return -1;
	}
	k->type = uid ? SK_UIDSET : SK_SEQSET;
	k->ranges = pool_alloc(ps->pool, set.count * sizeof(*k->ranges));
	memcpy(k->ranges, set.ranges, set.count * sizeof(*k->ranges));
	k->n_ranges = set.count;
	imap_seqset_free(&set);
	return 0;
}

static struct skey *parse_key(struct search_parser *ps, int depth);

static struct skey *parse_list(struct search_parser *ps, const struct imap_arg *args,
			       size_t n, int depth)
{
	const struct imap_arg *save_args = ps->args;
	size_t save_n = ps->n, save_i = ps->i;
	ps->args = args;
	ps->n = n;
	ps->i = 0;
	struct skey *and = new_key(ps, SK_AND);
	and->kids = pool_alloc(ps->pool, (n + 1) * sizeof(struct skey *));
	while (ps->i < ps->n) {
		struct skey *k = parse_key(ps, depth + 1);
		if (k == NULL)
			return NULL;
		and->kids[and->n_kids++] = k;
	}
	ps->args = save_args;
	ps->n = save_n;
	ps->i = save_i;
	if (and->n_kids == 0) {
		ps->error = "Empty search list";
		return NULL;
	}
	return and;
}

static const struct {
	const char *name;
	enum skey_type type;
	unsigned flag;
} flag_keys[] = {
	{ "ANSWERED", SK_FLAG, STORE_FLAG_ANSWERED }, { "DELETED", SK_FLAG, STORE_FLAG_DELETED },
	{ "DRAFT", SK_FLAG, STORE_FLAG_DRAFT }, { "FLAGGED", SK_FLAG, STORE_FLAG_FLAGGED },
	{ "SEEN", SK_FLAG, STORE_FLAG_SEEN }, { "UNANSWERED", SK_UNFLAG, STORE_FLAG_ANSWERED },
	{ "UNDELETED", SK_UNFLAG, STORE_FLAG_DELETED }, { "UNDRAFT", SK_UNFLAG, STORE_FLAG_DRAFT },
	{ "UNFLAGGED", SK_UNFLAG, STORE_FLAG_FLAGGED }, { "UNSEEN", SK_UNFLAG, STORE_FLAG_SEEN },
	/* \Recent is not kept (IMAP4rev2): no message is recent, every one is old */
	{ "RECENT", SK_NONE, 0 }, { "NEW", SK_NONE, 0 }, { "OLD", SK_ALL, 0 },
	{ "ALL", SK_ALL, 0 },
};

static const struct {
	const char *name;
	enum skey_type type;
} date_keys[] = {
	{ "BEFORE", SK_BEFORE }, { "ON", SK_ON }, { "SINCE", SK_SINCE },
	{ "SENTBEFORE", SK_SENTBEFORE }, { "SENTON", SK_SENTON }, { "SENTSINCE", SK_SENTSINCE },
};

static const char *const header_keys[] = { "FROM", "TO", "CC", "BCC", "SUBJECT" };

static struct skey *parse_key(struct search_parser *ps, int depth)
{
	if (depth > SEARCH_DEPTH_MAX) {
		ps->error = "Search nested too deeply";
		return NULL;
	}
	if (ps->i >= ps->n) {
		ps->error = "Missing search key";
		return NULL;
	}
	const struct imap_arg *a = &ps->args[ps->i];
	if (a->type == IMAP_ARG_LIST) {
		ps->i++;
		return parse_list(ps, a->list, a->n_list, depth);
	}
	if (a->type != IMAP_ARG_ATOM) {
		ps->error = "Invalid search key";
		return NULL;
	}
	const char *name = a->str;
	ps->i++;
	for (size_t k = 0; k < sizeof(flag_keys) / sizeof(flag_keys[0]); k++) {
		if (strcasecmp(name, flag_keys[k].name) == 0) {
			struct skey *key = new_key(ps, flag_keys[k].type);
			key->flag = flag_keys[k].flag;
			return key;
		}
	}
	for (size_t k = 0; k < sizeof(date_keys) / sizeof(date_keys[0]); k++) {
		if (strcasecmp(name, date_keys[k].name) == 0) {
			struct skey *key = new_key(ps, date_keys[k].type);
			return next_date(ps, &key->day) < 0 ? NULL : key;
		}
	}
	for (size_t k = 0; k < sizeof(header_keys) / sizeof(header_keys[0]); k++) {
		if (strcasecmp(name, header_keys[k]) == 0) {
			struct skey *key = new_key(ps, SK_HEADER);
			const char *v = next_string(ps);
			if (v == NULL)
				return NULL;
			key->header = header_keys[k];
			key->str = fold_str(ps->pool, v);
			return key;
		}
	}
	if (strcasecmp(name, "HEADER") == 0) {
		struct skey *key = new_key(ps, SK_HEADER);
		const char *h = next_string(ps);
		const char *v = h != NULL ? next_string(ps) : NULL;
		if (v == NULL)
			return NULL;
		key->header = pool_strdup(ps->pool, h);
		key->str = fold_str(ps->pool, v);
		return key;
	}
	if (strcasecmp(name, "BODY") == 0 || strcasecmp(name, "TEXT") == 0) {
		struct skey *key = new_key(ps, toupper((unsigned char)name[0]) == 'B' ? SK_BODY :
					   SK_TEXT);
		const char *v = next_string(ps);
		if (v == NULL)
			return NULL;
		key->str = fold_str(ps->pool, v);
		return key;
	}
	if (strcasecmp(name, "KEYWORD") == 0 || strcasecmp(name, "UNKEYWORD") == 0) {
		struct skey *key = new_key(ps, toupper((unsigned char)name[0]) == 'K' ? SK_KEYWORD :
					   SK_UNKEYWORD);
		const char *v = next_string(ps);
		if (v == NULL)
			return NULL;
		/* system flags given as keywords */
		static const char *const sys[] = { "\\Seen", "\\Answered", "\\Flagged",
						   "\\Deleted", "\\Draft" };
		for (unsigned f = 0; f < 5; f++) {
			if (strcasecmp(v, sys[f]) == 0) {
				key->type = key->type == SK_KEYWORD ? SK_FLAG : SK_UNFLAG;
				key->flag = 1u << f;
			}
		}
		key->str = pool_strdup(ps->pool, v);
		return key;
	}
	if (strcasecmp(name, "LARGER") == 0 || strcasecmp(name, "SMALLER") == 0 ||
	    strcasecmp(name, "YOUNGER") == 0 || strcasecmp(name, "OLDER") == 0) {
		enum skey_type t = strcasecmp(name, "LARGER") == 0 ? SK_LARGER :
			strcasecmp(name, "SMALLER") == 0 ? SK_SMALLER :
			strcasecmp(name, "YOUNGER") == 0 ? SK_YOUNGER : SK_OLDER;
		struct skey *key = new_key(ps, t);
		return next_number(ps, &key->num) < 0 ? NULL : key;
	}
	if (strcasecmp(name, "NOT") == 0) {
		struct skey *key = new_key(ps, SK_NOT);
		key->kids = pool_alloc(ps->pool, sizeof(struct skey *));
		key->kids[0] = parse_key(ps, depth + 1);
		key->n_kids = 1;
		return key->kids[0] == NULL ? NULL : key;
	}
	if (strcasecmp(name, "OR") == 0) {
		struct skey *key = new_key(ps, SK_OR);
		key->kids = pool_alloc(ps->pool, 2 * sizeof(struct skey *));
		key->kids[0] = parse_key(ps, depth + 1);
		if (key->kids[0] == NULL)
			return NULL;
		key->kids[1] = parse_key(ps, depth + 1);
		key->n_kids = 2;
		return key->kids[1] == NULL ? NULL : key;
	}
	if (strcasecmp(name, "UID") == 0) {
		struct skey *key = new_key(ps, SK_UIDSET);
		const char *v = next_string(ps);
		return v == NULL || set_key(ps, key, v, true) < 0 ? NULL : key;
	}
	if (strcasecmp(name, "MODSEQ") == 0) {
		struct skey *key = new_key(ps, SK_MODSEQ);
		/* MODSEQ ["/flags/\\Seen" all|priv|shared] n */
		if (ps->i < ps->n && ps->args[ps->i].type == IMAP_ARG_QUOTED) {
			ps->i++;
			const char *t = next_string(ps);
			if (t == NULL || (strcasecmp(t, "all") != 0 && strcasecmp(t, "priv") != 0 &&
					  strcasecmp(t, "shared") != 0)) {
				ps->error = "Invalid MODSEQ entry type";
				return NULL;
			}
		}
		ps->has_modseq = true;
		return next_number(ps, &key->num) < 0 ? NULL : key;
	}
	if (isdigit((unsigned char)name[0]) || name[0] == '*' || strcmp(name, "$") == 0) {
		struct skey *key = new_key(ps, SK_SEQSET);
		return set_key(ps, key, name, false) < 0 ? NULL : key;
	}
	ps->error = "Unknown search key";
	return NULL;
}

/* ---- evaluation ---- */

struct search_msg {
	struct search_job *job;
	size_t index;
	const struct imap_msg *im;
	const struct store_message *m;
	struct pool *pool;
	bool mime_loaded;
	struct mime_part *root;
	bool header_loaded;
	struct buf header;           /* the top header block */
	bool body_loaded;
	struct buf body;             /* folded text of the text parts */
};

enum result_opts { R_MIN = 1, R_MAX = 2, R_COUNT = 4, R_ALL = 8, R_SAVE = 16 };

struct search_job {
	struct imap_job job;
	struct pool *pool;
	struct skey *root;
	bool uid;
	bool esearch;
	unsigned ret;
	bool has_modseq;
	char tag[IMAP_TAG_MAX + 1];
	struct imap_sort *sort;      /* SORT or THREAD: order the hits */
};

static bool in_ranges(const struct skey *k, uint32_t v)
{
	size_t lo = 0, hi = k->n_ranges;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v < k->ranges[mid].lo)
			hi = mid;
		else if (v > k->ranges[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

static struct mime_part *msg_mime(struct search_msg *sm)
{
	if (!sm->mime_loaded) {
		sm->mime_loaded = true;
		sm->root = imap_message_mime(sm->job->job.store, sm->pool, sm->m);
	}
	return sm->root;
}

static const struct buf *msg_header(struct search_msg *sm)
{
	if (!sm->header_loaded) {
		sm->header_loaded = true;
		struct mime_part *root = msg_mime(sm);
		uint64_t len = root != NULL ? root->header_size : (sm->m->size < 65536 ? sm->m->size :
								       65536);
		imap_message_read(&sm->job->job, sm->m, 0, len, &sm->header);
	}
	return &sm->header;
}

static const struct buf *msg_body(struct search_msg *sm)
{
	if (sm->body_loaded)
		return &sm->body;
	sm->body_loaded = true;
	struct mime_part *root = msg_mime(sm);
	struct buf raw = BUF_INIT((size_t)sm->m->size + 1);
	struct buf dec = BUF_INIT((size_t)sm->m->size + 1);
	struct buf utf8 = BUF_INIT((size_t)sm->m->size * 4 + 16);
	if (root == NULL) {
		imap_message_read(&sm->job->job, sm->m, 0, sm->m->size, &raw);
		imap_search_fold(buf_data(&raw), buf_len(&raw), &sm->body);
	}
	for (const struct mime_part *p = root; p != NULL; p = mime_part_next(p)) {
		if (p->flags & (MIME_PART_MULTIPART | MIME_PART_HAS_MESSAGE))
			continue;
		if (strcmp(p->type, "text") != 0)
			continue;
		buf_clear(&raw);
		buf_clear(&dec);
		buf_clear(&utf8);
		if (imap_message_read(&sm->job->job, sm->m, p->body_offset, p->body_size, &raw) != 0)
			continue;
		mime_decode_transfer(p->encoding, buf_data(&raw), buf_len(&raw), &dec);
		const char *error;
		const char *cs = mime_part_param(p, "charset");
		if (mime_charset_to_utf8(cs, buf_data(&dec), buf_len(&dec), &utf8, &error) < 0)
			mime_charset_to_utf8(NULL, buf_data(&dec), buf_len(&dec), &utf8, &error);
		imap_search_fold(buf_data(&utf8), buf_len(&utf8), &sm->body);
		buf_append(&sm->body, "\n", 1);
	}
	buf_free(&raw);
	buf_free(&dec);
	buf_free(&utf8);
	return &sm->body;
}

static bool contains(const char *hay, size_t len, const char *needle)
{
	size_t nl = strlen(needle);
	if (nl == 0)
		return true;
	if (nl > len)
		return false;
	return memmem(hay, len, needle, nl) != NULL;
}

static bool match_header(struct search_msg *sm, const struct skey *k)
{
	const struct buf *h = msg_header(sm);
	struct mime_header_iter it;
	struct mime_field f;
	mime_header_iter_init(&it, buf_data(h), buf_len(h));
	struct buf dec = BUF_INIT(MIME_MAX_FIELD_SIZE_LIMIT * 2);
	struct buf folded = BUF_INIT(MIME_MAX_FIELD_SIZE_LIMIT * 4);
	bool found = false;
	while (!found && mime_header_iter_next(&it, &f)) {
		if (!f.has_colon || f.name_len != strlen(k->header) ||
		    strncasecmp(f.name, k->header, f.name_len) != 0)
			continue;
		buf_clear(&dec);
		buf_clear(&folded);
		mime_header_decode(f.value, f.value_len, &dec);
		imap_search_fold(buf_data(&dec), buf_len(&dec), &folded);
		found = contains(buf_data(&folded), buf_len(&folded), k->str);
	}
	buf_free(&dec);
	buf_free(&folded);
	return found;
}

static const int64_t no_day = INT64_MIN;

/* The day of the Date: header (RFC 5322 3.3), in its own zone as the RFC says. */
static int64_t sent_day(struct search_msg *sm)
{
	struct mime_part *root = msg_mime(sm);
	const char *date = root != NULL && root->envelope != NULL ? root->envelope->date : NULL;
	if (date == NULL)
		return no_day;
	const char *p = strchr(date, ',');
	p = p != NULL ? p + 1 : date;
	int day, year;
	char mon[4];
	if (sscanf(p, " %d %3s %d", &day, mon, &year) != 3)
		return no_day;
	char text[32];
	snprintf(text, sizeof(text), "%d-%s-%d", day, mon, year < 100 ? year + 1900 : year);
	int64_t t;
	if (imap_parse_date(text, &t) < 0)
		return no_day;
	return t / 86400;
}

static bool eval(struct search_msg *sm, const struct skey *k)
{
	const struct imap_msg *im = sm->im;
	switch (k->type) {
	case SK_ALL:
		return true;
	case SK_NONE:
		return false;
	case SK_AND:
		for (size_t i = 0; i < k->n_kids; i++)
			if (!eval(sm, k->kids[i]))
				return false;
		return true;
	case SK_OR:
		return eval(sm, k->kids[0]) || eval(sm, k->kids[1]);
	case SK_NOT:
		return !eval(sm, k->kids[0]);
	case SK_FLAG:
		return (im->flags & k->flag) != 0;
	case SK_UNFLAG:
		return (im->flags & k->flag) == 0;
	case SK_KEYWORD:
		return imap_keyword_in(im->keywords, k->str, strlen(k->str));
	case SK_UNKEYWORD:
		return !imap_keyword_in(im->keywords, k->str, strlen(k->str));
	case SK_SEQSET:
		return in_ranges(k, (uint32_t)(sm->index + 1));
	case SK_UIDSET:
		return in_ranges(k, im->uid);
	case SK_LARGER:
		return sm->m->size > k->num;
	case SK_SMALLER:
		return sm->m->size < k->num;
	case SK_BEFORE:
		return sm->m->internal_date / 86400 < k->day;
	case SK_ON:
		return sm->m->internal_date / 86400 == k->day;
	case SK_SINCE:
		return sm->m->internal_date / 86400 >= k->day;
	case SK_YOUNGER:
		return (int64_t)time(NULL) - sm->m->internal_date <= (int64_t)k->num;
	case SK_OLDER:
		return (int64_t)time(NULL) - sm->m->internal_date > (int64_t)k->num;
	case SK_SENTBEFORE: {
		int64_t d = sent_day(sm);
		return d != no_day && d < k->day;
	}
	case SK_SENTON:
		return sent_day(sm) == k->day;
	case SK_SENTSINCE: {
		int64_t d = sent_day(sm);
		return d != no_day && d >= k->day;
	}
	case SK_HEADER:
		return match_header(sm, k);
	case SK_BODY: {
		const struct buf *b = msg_body(sm);
		return contains(buf_data(b), buf_len(b), k->str);
	}
	case SK_TEXT: {
		const struct buf *h = msg_header(sm);
		struct buf dec = BUF_INIT((size_t)buf_len(h) * 4 + 16);
		struct buf folded = BUF_INIT((size_t)buf_len(h) * 8 + 16);
		mime_header_decode(buf_data(h), buf_len(h), &dec);
		imap_search_fold(buf_data(&dec), buf_len(&dec), &folded);
		bool found = contains(buf_data(&folded), buf_len(&folded), k->str);
		buf_free(&dec);
		buf_free(&folded);
		if (found)
			return true;
		const struct buf *b = msg_body(sm);
		return contains(buf_data(b), buf_len(b), k->str);
	}
	case SK_MODSEQ:
		return im->modseq >= k->num;
	}
	return false;
}

static void search_cleanup(struct imap_job *job)
{
	struct search_job *sj = (struct search_job *)job;
	pool_free(&sj->pool);
	imap_sort_free(&sj->sort);
}

/* Evaluates the messages [base, end) of the selection, appending hits. */
static int search_block(struct search_job *sj, size_t base, size_t end, uint32_t *hits,
			size_t *n_hits, uint64_t *max_modseq)
{
	struct imap_selected *sel = sj->job.s->sel;
	struct store_message *list = NULL;
	size_t n = 0, j = 0;
	int ret = store_messages(sj->job.store, sel->id, sel->msgs[base].uid,
				 sel->msgs[end - 1].uid, &list, &n);
	if (ret != 0)
		return ret;
	for (size_t i = base; i < end; i++) {
		const struct imap_msg *im = &sel->msgs[i];
		while (j < n && list[j].uid < im->uid)
			j++;
		if (j >= n || list[j].uid != im->uid)
			continue;
		struct search_msg sm = { .job = sj, .index = i, .im = im, .m = &list[j] };
		sm.pool = pool_new(8192);
		buf_init(&sm.header, (size_t)list[j].size + 1);
		buf_init(&sm.body, (size_t)list[j].size * 4 + 16);
		if (eval(&sm, sj->root)) {
			hits[(*n_hits)++] = sj->uid ? im->uid : (uint32_t)(i + 1);
			if (sj->sort != NULL) {
				const struct buf *h = imap_sort_needs_header(sj->sort) ?
					msg_header(&sm) : NULL;
				imap_sort_add(sj->sort, hits[*n_hits - 1], i + 1, &list[j],
					      msg_mime(&sm), h != NULL ? buf_data(h) : NULL,
					      h != NULL ? buf_len(h) : 0);
			}
			if (im->modseq > *max_modseq)
				*max_modseq = im->modseq;
		}
		buf_free(&sm.header);
		buf_free(&sm.body);
		pool_free(&sm.pool);
	}
	free(list);
	return 0;
}

/* SEARCHRES: the hits become "$" (as UIDs); with MIN and/or MAX but neither ALL
 * nor COUNT only those (RFC 5182 2.4). On the thread, which owns the selection. */
static void save_result(struct search_job *sj, const uint32_t *hits, size_t n_hits)
{
	struct imap_selected *sel = sj->job.s->sel;
	uint32_t *uids = x_malloc((n_hits + 1) * sizeof(*uids));
	size_t n = 0;
	bool only_min_max = (sj->ret & (R_MIN | R_MAX)) && !(sj->ret & (R_ALL | R_COUNT));
	for (size_t i = 0; i < n_hits; i++) {
		if (only_min_max && !((i == 0 && (sj->ret & R_MIN)) ||
				      (i == n_hits - 1 && (sj->ret & R_MAX))))
			continue;
		uids[n++] = sj->uid ? hits[i] : sel->msgs[hits[i] - 1].uid;
	}
	imap_selected_save(sel, uids, n);
	free(uids);
}

static int search_work(struct imap_job *job)
{
	struct search_job *sj = (struct search_job *)job;
	struct imap_selected *sel = job->s->sel;
	uint32_t *hits = x_malloc((sel->count + 1) * sizeof(*hits));
	size_t n_hits = 0;
	uint64_t max_modseq = 0;
	/* the store's records are read a block of messages at a time */
	for (size_t base = 0; base < sel->count; base += SEARCH_BLOCK) {
		size_t end = base + SEARCH_BLOCK < sel->count ? base + SEARCH_BLOCK : sel->count;
		int ret = search_block(sj, base, end, hits, &n_hits, &max_modseq);
		if (ret != 0) {
			free(hits);
			return ret;
		}
	}
	if (sj->ret & R_SAVE)
		save_result(sj, hits, n_hits);
	struct buf *o = &job->out;
	if (sj->sort != NULL) {
		imap_sort_output(sj->sort, o);
	} else if (sj->ret == R_SAVE) {
		/* RETURN (SAVE) alone: no ESEARCH response (RFC 5182 2.4) */
	} else if (sj->esearch) {
		buf_printf(o, "* ESEARCH (TAG \"%s\")%s", sj->tag, sj->uid ? " UID" : "");
		if (n_hits > 0) {
			if (sj->ret & R_MIN)
				buf_printf(o, " MIN %u", hits[0]);
			if (sj->ret & R_MAX)
				buf_printf(o, " MAX %u", hits[n_hits - 1]);
		}
		if (sj->ret & R_COUNT)
			buf_printf(o, " COUNT %zu", n_hits);
		if ((sj->ret & R_ALL) && n_hits > 0) {
			buf_append_str(o, " ALL ");
			imap_append_uidset(o, hits, n_hits);
		}
		if (sj->has_modseq && n_hits > 0)
			buf_printf(o, " MODSEQ %llu", (unsigned long long)max_modseq);
		buf_append_str(o, "\r\n");
	} else {
		buf_append_str(o, "* SEARCH");
		for (size_t i = 0; i < n_hits; i++)
			buf_printf(o, " %u", hits[i]);
		if (sj->has_modseq && n_hits > 0)
			buf_printf(o, " (MODSEQ %llu)", (unsigned long long)max_modseq);
		buf_append_str(o, "\r\n");
	}
	free(hits);
	return 0;
}

static void search_done(struct imap_job *job, int result)
{
	struct search_job *sj = (struct search_job *)job;
	if (result != 0) {
		/* a SEARCH ... SAVE answered NO leaves "$" empty (RFC 5182 2.1) */
		if ((sj->ret & R_SAVE) && job->s->sel != NULL)
			imap_selected_save(job->s->sel, NULL, 0);
		imap_tagged(job->s, "NO", "[SERVERBUG] Search failed: %s", store_strerror(result));
		return;
	}
	imap_tagged(job->s, "OK", "%s%s completed.", sj->uid ? "UID " : "",
		    sj->sort == NULL ? "Search" : "Sort");
}

/* Parses [RETURN (...)] [CHARSET x] keys into a job; NULL with the reply sent. */
struct search_job *imap_search_parse(struct imap_session *s, const struct imap_arg *args,
				     size_t n, bool uid, bool allow_return)
{
	struct search_job *sj = imap_job_new(s, sizeof(*sj), search_work, search_done);
	sj->job.cleanup = search_cleanup;
	sj->pool = pool_new(4096);
	sj->uid = uid;
	snprintf(sj->tag, sizeof(sj->tag), "%s", s->tag);
	struct search_parser ps = { .s = s, .pool = sj->pool, .args = args, .n = n, .uid = uid };
	if (allow_return && ps.i + 1 < n && args[0].type == IMAP_ARG_ATOM &&
	    strcasecmp(args[0].str, "RETURN") == 0) {
		if (args[1].type != IMAP_ARG_LIST) {
			ps.error = "Invalid RETURN options";
			goto bad;
		}
		sj->esearch = true;
		for (size_t i = 0; i < args[1].n_list; i++) {
			const char *o = imap_arg_string(&args[1].list[i]);
			if (o == NULL) {
				ps.error = "Invalid RETURN option";
				goto bad;
			}
			if (strcasecmp(o, "MIN") == 0)
				sj->ret |= R_MIN;
			else if (strcasecmp(o, "MAX") == 0)
				sj->ret |= R_MAX;
			else if (strcasecmp(o, "COUNT") == 0)
				sj->ret |= R_COUNT;
			else if (strcasecmp(o, "ALL") == 0)
				sj->ret |= R_ALL;
			else if (strcasecmp(o, "SAVE") == 0)
				sj->ret |= R_SAVE;
			else {
				ps.error = "Unknown RETURN option";
				goto bad;
			}
		}
		if (sj->ret == 0)
			sj->ret = R_ALL;
		ps.i = 2;
	}
	if (ps.i + 1 < n && args[ps.i].type == IMAP_ARG_ATOM &&
	    strcasecmp(args[ps.i].str, "CHARSET") == 0) {
		const char *cs = imap_arg_string(&args[ps.i + 1]);
		if (cs == NULL) {
			ps.error = "Invalid CHARSET";
			goto bad;
		}
		if (strcasecmp(cs, "UTF-8") != 0 && strcasecmp(cs, "US-ASCII") != 0) {
			search_cleanup(&sj->job);
			buf_free(&sj->job.out);
			free(sj);
			imap_tagged(s, "NO", "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
			return NULL;
		}
		ps.i += 2;
	}
	if (ps.i >= n) {
		ps.error = "Missing search keys";
		goto bad;
	}
	struct skey *and = new_key(&ps, SK_AND);
	and->kids = pool_alloc(ps.pool, (n - ps.i + 1) * sizeof(struct skey *));
	while (ps.i < ps.n) {
		struct skey *k = parse_key(&ps, 0);
		if (k == NULL)
			goto bad;
		and->kids[and->n_kids++] = k;
	}
	sj->root = and;
	sj->has_modseq = ps.has_modseq;
	if (s->enabled_rev2 && !sj->esearch) {
		/* IMAP4rev2: SEARCH always answers with ESEARCH (RFC 9051 6.4.4) */
		sj->esearch = true;
		sj->ret = R_ALL;
	}
	if (ps.has_modseq)
		s->enabled_condstore = true;
	return sj;
bad:
	search_cleanup(&sj->job);
	buf_free(&sj->job.out);
	free(sj);
	imap_tagged(s, "BAD", "Error in SEARCH: %s", ps.error != NULL ? ps.error : "syntax");
	return NULL;
}

void imap_search(struct imap_session *s, const struct imap_arg *args, size_t n, bool uid)
{
	struct search_job *sj = imap_search_parse(s, args, n, uid, true);
	if (sj == NULL)
		return;
	sj->job.sync = true;
	sj->job.sync_expunge = uid;
	imap_job_start(&sj->job);
}

/* SORT (criteria) charset keys; THREAD algorithm charset keys (RFC 5256). */
static void sorted_search(struct imap_session *s, const struct imap_arg *args, size_t n,
			  bool uid, struct imap_sort *so, const char *what)
{
	const char *cs = n >= 3 ? imap_arg_string(&args[1]) : NULL;
	if (cs == NULL) {
		imap_sort_free(&so);
		imap_tagged(s, "BAD", "Syntax: %s", what);
		return;
	}
	if (strcasecmp(cs, "UTF-8") != 0 && strcasecmp(cs, "US-ASCII") != 0) {
		imap_sort_free(&so);
		imap_tagged(s, "NO", "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
		return;
	}
	struct search_job *sj = imap_search_parse(s, args + 2, n - 2, uid, false);
	if (sj == NULL) {
		imap_sort_free(&so);
		return;
	}
	sj->sort = so;
	sj->job.sync = true;
	sj->job.sync_expunge = uid;
	imap_job_start(&sj->job);
}

void imap_sort_cmd(struct imap_session *s, const struct imap_arg *args, size_t n, bool uid)
{
	const char *error;
	struct imap_sort *so = n >= 1 ? imap_sort_new(&args[0], &error) : NULL;
	if (so == NULL) {
		imap_tagged(s, "BAD", "%s", n >= 1 ? error : "Syntax: SORT (criteria) charset keys");
		return;
	}
	sorted_search(s, args, n, uid, so, "SORT (criteria) charset keys");
}

void imap_thread_cmd(struct imap_session *s, const struct imap_arg *args, size_t n, bool uid)
{
	const char *alg = n >= 1 && args[0].type == IMAP_ARG_ATOM ? args[0].str : NULL;
	struct imap_sort *so = alg != NULL ? imap_thread_new(alg) : NULL;
	if (so == NULL) {
		imap_tagged(s, "BAD", "Unsupported THREAD algorithm");
		return;
	}
	sorted_search(s, args, n, uid, so, "THREAD algorithm charset keys");
}
