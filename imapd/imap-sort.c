/* imap-sort.c — SORT (RFC 5256: ARRIVAL CC DATE FROM REVERSE SIZE SUBJECT TO) and
 * THREAD=ORDEREDSUBJECT over the messages a search found. */
#include "imapd/imap-sort.h"
#include "imapd/imap-search.h"
#include "imapd/imap-thread.h"
#include "common/buf.h"
#include "common/mime.h"
#include "common/pool.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SORT_KEYS_MAX 16

enum sort_key { SO_ARRIVAL, SO_CC, SO_DATE, SO_FROM, SO_SIZE, SO_SUBJECT, SO_TO };

struct sort_rec {
	uint32_t id;                 /* sequence number or UID, as answered */
	size_t seq;
	int64_t arrival, date;
	uint64_t size;
	char *subject, *from, *to, *cc;
	bool is_reply;
	char *message_id, *references, *in_reply_to;   /* THREAD=REFERENCES */
};

struct imap_sort {
	bool thread;
	bool references;             /* THREAD=REFERENCES (else ORDEREDSUBJECT) */
	enum sort_key keys[SORT_KEYS_MAX];
	bool reverse[SORT_KEYS_MAX];
	size_t n_keys;
	struct sort_rec *recs;
	size_t n, cap;
};

struct imap_sort *imap_sort_new(const struct imap_arg *criteria, const char **error_r)
{
	static const struct {
		const char *name;
		enum sort_key key;
	} names[] = {
		{ "ARRIVAL", SO_ARRIVAL }, { "CC", SO_CC }, { "DATE", SO_DATE }, { "FROM", SO_FROM },
		{ "SIZE", SO_SIZE }, { "SUBJECT", SO_SUBJECT }, { "TO", SO_TO },
	};
	if (criteria->type != IMAP_ARG_LIST || criteria->n_list == 0) {
		*error_r = "Sort criteria must be a list";
		return NULL;
	}
	struct imap_sort *so = x_calloc(1, sizeof(*so));
	bool reverse = false;
	for (size_t i = 0; i < criteria->n_list; i++) {
		const char *c = criteria->list[i].type == IMAP_ARG_ATOM ? criteria->list[i].str : NULL;
		if (c != NULL && strcasecmp(c, "REVERSE") == 0 && !reverse) {
			reverse = true;
			continue;
		}
		size_t k;
		for (k = 0; c != NULL && k < sizeof(names) / sizeof(names[0]); k++)
			if (strcasecmp(c, names[k].name) == 0)
				break;
		if (c == NULL || k == sizeof(names) / sizeof(names[0]) || so->n_keys == SORT_KEYS_MAX) {
			*error_r = "Unknown sort criterion";
			free(so);
			return NULL;
		}
		so->keys[so->n_keys] = names[k].key;
		so->reverse[so->n_keys++] = reverse;
		reverse = false;
	}
	if (reverse || so->n_keys == 0) {
		*error_r = "REVERSE must precede a criterion";
		free(so);
		return NULL;
	}
	return so;
}

struct imap_sort *imap_thread_new(const char *algorithm)
{
	bool refs = strcasecmp(algorithm, "REFERENCES") == 0;
	if (!refs && strcasecmp(algorithm, "ORDEREDSUBJECT") != 0)
		return NULL;
	struct imap_sort *so = x_calloc(1, sizeof(*so));
	so->thread = true;
	so->references = refs;
	return so;
}

bool imap_sort_needs_header(const struct imap_sort *so)
{
	return so->references;
}

void imap_sort_free(struct imap_sort **sop)
{
	struct imap_sort *so = *sop;
	if (so == NULL)
		return;
	for (size_t i = 0; i < so->n; i++) {
		free(so->recs[i].subject);
		free(so->recs[i].from);
		free(so->recs[i].to);
		free(so->recs[i].cc);
		free(so->recs[i].message_id);
		free(so->recs[i].references);
		free(so->recs[i].in_reply_to);
	}
	free(so->recs);
	free(so);
	*sop = NULL;
}

/* ---- keys ---- */

static char *folded(const char *s, size_t len)
{
	struct buf b = BUF_INIT(1024 * 1024);
	imap_search_fold(s, len, &b);
	char *r = x_strndup(buf_data(&b), buf_len(&b));
	buf_free(&b);
	return r;
}

/* RFC 5256 2.1: the subject without "Re:", "Fwd:", "[list]" prefixes and "(fwd)". */
static char *base_subject(const char *raw, bool *is_reply)
{
	*is_reply = false;
	struct buf dec = BUF_INIT(1024 * 1024);
	if (raw != NULL)
		mime_header_decode(raw, strlen(raw), &dec);
	char *s = folded(buf_data(&dec), buf_len(&dec));
	buf_free(&dec);
	/* blanks collapsed to one space */
	size_t o = 0;
	for (size_t i = 0; s[i] != '\0'; i++) {
		if (s[i] == '\t' || s[i] == ' ') {
			if (o > 0 && s[o - 1] != ' ')
				s[o++] = ' ';
		} else {
			s[o++] = s[i];
		}
	}
	s[o] = '\0';
	bool changed = true;
	while (changed) {
		changed = false;
		size_t len = strlen(s);
		/* trailing "(fwd)" and blanks */
		while (len > 0 && s[len - 1] == ' ')
			s[--len] = '\0';
		if (len >= 5 && strcmp(s + len - 5, "(fwd)") == 0) {
			s[len - 5] = '\0';
			changed = true;
			continue;
		}
		/* leading "re:", "fw:", "fwd:", optionally with "[blob]" before the colon */
		char *p = s;
		while (*p == ' ')
			p++;
		char *q = NULL;
		if (strncmp(p, "re", 2) == 0)
			q = p + 2;
		else if (strncmp(p, "fwd", 3) == 0)
			q = p + 3;
		else if (strncmp(p, "fw", 2) == 0)
			q = p + 2;
		if (q != NULL) {
			while (*q == ' ')
				q++;
			if (*q == '[') {
				char *close = strchr(q, ']');
				q = close != NULL ? close + 1 : q;
				while (*q == ' ')
					q++;
			}
			if (*q == ':') {
				memmove(s, q + 1, strlen(q + 1) + 1);
				changed = true;
				*is_reply = true;
				continue;
			}
		}
		/* a leading "[blob]" when something follows it */
		if (*p == '[') {
			char *close = strchr(p, ']');
			if (close != NULL) {
				char *rest = close + 1;
				while (*rest == ' ')
					rest++;
				if (*rest != '\0') {
					memmove(s, rest, strlen(rest) + 1);
					changed = true;
					continue;
				}
			}
		}
		/* "[fwd: ... ]" */
		if (strncmp(p, "[fwd:", 5) == 0 && len > 0 && s[len - 1] == ']') {
			s[len - 1] = '\0';
			memmove(s, p + 5, strlen(p + 5) + 1);
			changed = true;
			*is_reply = true;
		}
	}
	char *p = s;
	while (*p == ' ')
		p++;
	if (p != s)
		memmove(s, p, strlen(p) + 1);
	return s;
}

/* The local part of the first address of a header (RFC 5256 "addr-mailbox"). */
static char *first_mailbox(const char *value)
{
	if (value == NULL)
		return x_strdup("");
	struct pool *pool = pool_new(4096);
	struct mime_address *a = mime_address_parse(pool, value, strlen(value));
	while (a != NULL && a->host == NULL)
		a = a->next;   /* skip group markers */
	char *r = a != NULL && a->mailbox != NULL ? folded(a->mailbox, strlen(a->mailbox)) :
		x_strdup("");
	pool_free(&pool);
	return r;
}

static int zone_offset(const char *z)
{
	if ((z[0] == '+' || z[0] == '-') && isdigit((unsigned char)z[1])) {
		int v = atoi(z + 1);
		int off = (v / 100) * 3600 + (v % 100) * 60;
		return z[0] == '-' ? -off : off;
	}
	static const struct {
		const char *name;
		int hours;
	} zones[] = { { "EST", -5 }, { "EDT", -4 }, { "CST", -6 }, { "CDT", -5 }, { "MST", -7 },
		      { "MDT", -6 }, { "PST", -8 }, { "PDT", -7 } };
	for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++)
		if (strncasecmp(z, zones[i].name, 3) == 0)
			return zones[i].hours * 3600;
	return 0;
}

/* An RFC 5322 date as seconds since the epoch; -1 when it does not parse. */
static int64_t parse_sent_date(const char *date)
{
	if (date == NULL)
		return -1;
	const char *p = strchr(date, ',');
	p = p != NULL ? p + 1 : date;
	int day, year, h = 0, mi = 0, sec = 0, used = 0;
	char mon[4];
	if (sscanf(p, " %d %3s %d %d:%d%n", &day, mon, &year, &h, &mi, &used) != 5)
		return -1;
	p += used;
	if (*p == ':') {
		int u2 = 0;
		if (sscanf(p, ":%d%n", &sec, &u2) == 1)
			p += u2;
	}
	while (*p == ' ')
		p++;
	char text[32];
	snprintf(text, sizeof(text), "%d-%s-%d", day, mon, year < 50 ? year + 2000 :
		 year < 1000 ? year + 1900 : year);
	int64_t t;
	if (imap_parse_date(text, &t) < 0)
		return -1;
	return t + h * 3600 + mi * 60 + sec - zone_offset(p);
}

static char *header_value(const char *header, size_t len, const char *name)
{
	struct mime_field f;
	if (header == NULL || !mime_header_find(header, len, name, &f))
		return NULL;
	struct buf b = BUF_INIT(1024 * 1024);
	mime_header_unfold(f.value, f.value_len, &b);
	char *r = x_strndup(buf_data(&b), buf_len(&b));
	buf_free(&b);
	return r;
}

void imap_sort_add(struct imap_sort *so, uint32_t id, size_t seq,
		   const struct store_message *m, const struct mime_part *root,
		   const char *header, size_t header_len)
{
	if (so->n == so->cap) {
		so->cap = so->cap == 0 ? 64 : so->cap * 2;
		so->recs = x_realloc(so->recs, so->cap * sizeof(*so->recs));
	}
	struct sort_rec *r = &so->recs[so->n++];
	memset(r, 0, sizeof(*r));
	const struct mime_envelope *env = root != NULL ? root->envelope : NULL;
	r->id = id;
	r->seq = seq;
	r->arrival = m->internal_date;
	r->size = m->size;
	r->date = parse_sent_date(env != NULL ? env->date : NULL);
	if (r->date < 0)
		r->date = m->internal_date;   /* RFC 5256: the internal date instead */
	r->subject = base_subject(env != NULL ? env->subject : NULL, &r->is_reply);
	if (so->references) {
		r->message_id = env != NULL && env->message_id != NULL ? x_strdup(env->message_id) :
			NULL;
		r->in_reply_to = env != NULL && env->in_reply_to != NULL ?
			x_strdup(env->in_reply_to) : NULL;
		r->references = header_value(header, header_len, "References");
	}
	r->from = first_mailbox(env != NULL ? env->from : NULL);
	r->to = first_mailbox(env != NULL ? env->to : NULL);
	r->cc = first_mailbox(env != NULL ? env->cc : NULL);
}

/* ---- sorting and output ---- */

static int cmp_i64(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

/* qsort_r: the jobs of several sessions sort at once on the thread pool */
static int rec_cmp(const void *pa, const void *pb, void *ctx)
{
	const struct sort_rec *a = pa, *b = pb;
	const struct imap_sort *so = ctx;
	for (size_t i = 0; i < so->n_keys; i++) {
		int c = 0;
		switch (so->keys[i]) {
		case SO_ARRIVAL: c = cmp_i64(a->arrival, b->arrival); break;
		case SO_DATE: c = cmp_i64(a->date, b->date); break;
		case SO_SIZE: c = a->size < b->size ? -1 : a->size > b->size; break;
		case SO_SUBJECT: c = strcmp(a->subject, b->subject); break;
		case SO_FROM: c = strcmp(a->from, b->from); break;
		case SO_TO: c = strcmp(a->to, b->to); break;
		case SO_CC: c = strcmp(a->cc, b->cc); break;
		}
		if (c != 0)
			return so->reverse[i] ? -c : c;
	}
	/* ties: by sequence number */
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int thread_cmp(const void *pa, const void *pb)
{
	const struct sort_rec *a = pa, *b = pb;
	int c = strcmp(a->subject, b->subject);
	if (c == 0)
		c = cmp_i64(a->date, b->date);
	return c != 0 ? c : (a->seq < b->seq ? -1 : a->seq > b->seq);
}

struct thread_group {
	size_t first, count;
};

static int group_cmp(const void *pa, const void *pb, void *ctx)
{
	const struct thread_group *a = pa, *b = pb;
	const struct imap_sort *so = ctx;
	const struct sort_rec *ra = &so->recs[a->first], *rb = &so->recs[b->first];
	int c = cmp_i64(ra->date, rb->date);
	return c != 0 ? c : (ra->seq < rb->seq ? -1 : ra->seq > rb->seq);
}

void imap_sort_output(struct imap_sort *so, struct buf *out)
{
	if (!so->thread) {
		qsort_r(so->recs, so->n, sizeof(*so->recs), rec_cmp, so);
		buf_append_str(out, "* SORT");
		for (size_t i = 0; i < so->n; i++)
			buf_printf(out, " %u", so->recs[i].id);
		buf_append_str(out, "\r\n");
		return;
	}
	if (so->references) {
		struct thread_msg *tm = x_calloc(so->n + 1, sizeof(*tm));
		for (size_t i = 0; i < so->n; i++) {
			const struct sort_rec *r = &so->recs[i];
			tm[i] = (struct thread_msg){ .id = r->id, .seq = r->seq, .date = r->date,
				.subject = r->subject, .is_reply = r->is_reply,
				.message_id = r->message_id, .references = r->references,
				.in_reply_to = r->in_reply_to };
		}
		imap_thread_references(tm, so->n, out);
		free(tm);
		return;
	}
	/* ORDEREDSUBJECT: by base subject, then sent date; one thread per subject,
	   threads ordered by their first message's date */
	qsort(so->recs, so->n, sizeof(*so->recs), thread_cmp);
	struct thread_group *groups = x_malloc((so->n + 1) * sizeof(*groups));
	size_t ng = 0;
	for (size_t i = 0; i < so->n; i++) {
		if (i > 0 && strcmp(so->recs[i].subject, so->recs[i - 1].subject) == 0) {
			groups[ng - 1].count++;
			continue;
		}
		groups[ng].first = i;
		groups[ng++].count = 1;
	}
	qsort_r(groups, ng, sizeof(*groups), group_cmp, so);
	buf_append_str(out, "* THREAD");
	for (size_t g = 0; g < ng; g++) {
		const struct sort_rec *r = &so->recs[groups[g].first];
		buf_printf(out, "%s(%u", g == 0 ? " " : "", r[0].id);
		if (groups[g].count == 2) {
			buf_printf(out, " %u", r[1].id);
		} else if (groups[g].count > 2) {
			buf_append(out, " ", 1);
			for (size_t k = 1; k < groups[g].count; k++)
				buf_printf(out, "(%u)", r[k].id);
		}
		buf_append(out, ")", 1);
	}
	buf_append_str(out, "\r\n");
	free(groups);
}
