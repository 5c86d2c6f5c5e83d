/* imap-store.c — STORE (with UNCHANGEDSINCE), COPY, MOVE (with COPYUID) and APPEND
 * (with APPENDUID). */
#include "imapd/imap-commands.h"
#include "common/log.h"
#include "common/pool.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- STORE ---- */

struct store_job {
	struct imap_job job;
	bool uid, silent;
	enum store_flags_mode mode;
	unsigned flags;
	char keywords[STORE_KEYWORDS_MAX];
	uint64_t unchangedsince;
	size_t *idx;
	size_t n_idx;
	uint32_t *modified;          /* UIDs that failed UNCHANGEDSINCE */
	size_t n_modified;
};

static void store_cleanup(struct imap_job *job)
{
	struct store_job *sj = (struct store_job *)job;
	free(sj->idx);
	free(sj->modified);
}

static int store_work(struct imap_job *job)
{
	struct store_job *sj = (struct store_job *)job;
	struct imap_session *s = job->s;
	struct imap_selected *sel = s->sel;
	if (sj->n_idx == 0)
		return 0;
	struct store_flag_change *ch = x_calloc(sj->n_idx, sizeof(*ch));
	for (size_t i = 0; i < sj->n_idx; i++)
		ch[i].uid = sel->msgs[sj->idx[i]].uid;
	int ret = store_flags_update(job->store, sel->id, sj->mode, sj->flags, sj->keywords,
				     sj->unchangedsince, ch, sj->n_idx);
	if (ret != 0) {
		free(ch);
		return ret;
	}
	sj->modified = x_malloc((sj->n_idx + 1) * sizeof(uint32_t));
	for (size_t i = 0; i < sj->n_idx; i++) {
		struct imap_msg *m = &sel->msgs[sj->idx[i]];
		if (ch[i].result == STORE_ECHANGED) {
			sj->modified[sj->n_modified++] = m->uid;
			continue;
		}
		if (ch[i].result != 0)
			continue;
		bool same = m->flags == ch[i].flags &&
			strcmp(m->keywords != NULL ? m->keywords : "", ch[i].keywords) == 0;
		m->flags = ch[i].flags;
		m->modseq = ch[i].modseq;
		if (!same) {
			free(m->keywords);
			m->keywords = ch[i].keywords[0] != '\0' ? x_strdup(ch[i].keywords) : NULL;
		}
		/* with .SILENT only a changed modseq is reported (RFC 7162 3.1.3) */
		if (sj->silent && !(s->enabled_condstore && sj->unchangedsince != 0))
			continue;
		buf_printf(&job->out, "* %zu FETCH (", sj->idx[i] + 1);
		if (sj->uid)
			buf_printf(&job->out, "UID %u ", m->uid);
		buf_append_str(&job->out, "FLAGS ");
		imap_append_flags(&job->out, m->flags, m->keywords);
		if (s->enabled_condstore)
			buf_printf(&job->out, " MODSEQ (%llu)", (unsigned long long)m->modseq);
		buf_append_str(&job->out, ")\r\n");
	}
	free(ch);
	return 0;
}

static void store_done(struct imap_job *job, int result)
{
	struct store_job *sj = (struct store_job *)job;
	struct imap_session *s = job->s;
	if (result != 0) {
		imap_tagged(s, "NO", "[SERVERBUG] Store failed: %s", store_strerror(result));
		return;
	}
	if (sj->n_modified > 0) {
		struct buf b = BUF_INIT(1024 * 1024);
		if (sj->uid) {
			imap_append_uidset(&b, sj->modified, sj->n_modified);
		} else {
			/* sequence numbers of the UIDs, ascending */
			uint32_t *seqs = x_malloc(sj->n_modified * sizeof(*seqs));
			size_t k = 0;
			for (size_t i = 0; i < s->sel->count && k < sj->n_modified; i++)
				if (s->sel->msgs[i].uid == sj->modified[k])
					seqs[k++] = (uint32_t)(i + 1);
			imap_append_uidset(&b, seqs, k);
			free(seqs);
		}
		imap_tagged(s, "OK", "[MODIFIED %.*s] Conditional store failed.",
			    (int)(buf_len(&b) > 900 ? 900 : buf_len(&b)), buf_data(&b));
		buf_free(&b);
		return;
	}
	imap_tagged(s, "OK", "Store completed.");
}

void imap_store_cmd(struct imap_session *s, const struct imap_arg *args, size_t n, bool uid)
{
	const char *set = n >= 3 ? imap_arg_string(&args[0]) : NULL;
	const char *error = "Syntax: STORE sequence-set [(UNCHANGEDSINCE n)] "
		"[+|-]FLAGS[.SILENT] (flags)";
	if (set == NULL || args[0].type != IMAP_ARG_ATOM) {
		imap_tagged(s, "BAD", "%s", error);
		return;
	}
	struct store_job *sj = imap_job_new(s, sizeof(*sj), store_work, store_done);
	sj->job.cleanup = store_cleanup;
	sj->uid = uid;
	size_t a = 1;
	if (args[1].type == IMAP_ARG_LIST) {
		const struct imap_arg *m = &args[1];
		const char *k = m->n_list == 2 ? imap_arg_string(&m->list[0]) : NULL;
		const char *v = m->n_list == 2 ? imap_arg_string(&m->list[1]) : NULL;
		char *end;
		if (k == NULL || v == NULL || strcasecmp(k, "UNCHANGEDSINCE") != 0 ||
		    !isdigit((unsigned char)v[0]))
			goto bad;
		sj->unchangedsince = strtoull(v, &end, 10);
		if (*end != '\0')
			goto bad;
		/* 0 would mean "no condition" to the store: nothing has modseq 0 */
		if (sj->unchangedsince == 0)
			sj->unchangedsince = 1;
		s->enabled_condstore = true;
		a = 2;
	}
	if (n < a + 2)
		goto bad;
	const char *op = imap_arg_string(&args[a]);
	if (op == NULL || args[a].type != IMAP_ARG_ATOM)
		goto bad;
	if (*op == '+') {
		sj->mode = STORE_FLAGS_ADD;
		op++;
	} else if (*op == '-') {
		sj->mode = STORE_FLAGS_REMOVE;
		op++;
	} else {
		sj->mode = STORE_FLAGS_REPLACE;
	}
	if (strcasecmp(op, "FLAGS.SILENT") == 0)
		sj->silent = true;
	else if (strcasecmp(op, "FLAGS") != 0)
		goto bad;
	const char *ferr;
	if (imap_parse_flags(&args[a + 1], n - a - 1, &sj->flags, sj->keywords,
			     sizeof(sj->keywords), &ferr) < 0) {
		error = ferr;
		goto bad;
	}
	if (s->sel->readonly) {
		store_cleanup(&sj->job);
		buf_free(&sj->job.out);
		free(sj);
		imap_tagged(s, "NO", "[READ-ONLY] Mailbox is read-only.");
		return;
	}
	int err;
	sj->n_idx = imap_seqset_select(s->sel, set, uid, &sj->idx, &err);
	if (err != 0) {
		error = err == -2 ? "Invalid sequence number (beyond the mailbox)" :
			"Invalid sequence set";
		goto bad;
	}
	sj->job.sync = true;
	sj->job.sync_expunge = uid;
	imap_job_start(&sj->job);
	return;
bad:
	store_cleanup(&sj->job);
	buf_free(&sj->job.out);
	free(sj);
	imap_tagged(s, "BAD", "%s", error);
}

/* ---- COPY / MOVE ---- */

struct copy_job {
	struct imap_job job;
	bool uid, move;
	char dst[512];
	uint32_t *uids;
	size_t n_uids;
	uint32_t *dst_uids;
	uint32_t dst_uidvalidity;
	uint64_t quota;
};

static void copy_cleanup(struct imap_job *job)
{
	struct copy_job *cj = (struct copy_job *)job;
	free(cj->uids);
	free(cj->dst_uids);
}

static void append_copyuid(struct buf *b, const struct copy_job *cj)
{
	/* only the messages that were copied, in the same order */
	uint32_t *src = x_malloc((cj->n_uids + 1) * sizeof(*src));
	uint32_t *dst = x_malloc((cj->n_uids + 1) * sizeof(*dst));
	size_t k = 0;
	for (size_t i = 0; i < cj->n_uids; i++) {
		if (cj->dst_uids[i] == 0)
			continue;
		src[k] = cj->uids[i];
		dst[k++] = cj->dst_uids[i];
	}
	buf_printf(b, "COPYUID %u ", cj->dst_uidvalidity);
	imap_append_uidset(b, src, k);
	buf_append(b, " ", 1);
	/* destination UIDs ascend with the source ones, so the compact form is right */
	imap_append_uidset(b, dst, k);
	free(src);
	free(dst);
}

static int copy_work(struct imap_job *job)
{
	struct copy_job *cj = (struct copy_job *)job;
	struct imap_session *s = job->s;
	if (cj->n_uids == 0)
		return 0;
	cj->dst_uids = x_calloc(cj->n_uids, sizeof(uint32_t));
	int ret = store_copy(job->store, s->sel->id, cj->uids, cj->n_uids, s->user->address,
			     cj->dst, cj->quota, cj->move, cj->dst_uids, &cj->dst_uidvalidity);
	if (ret != 0)
		return ret;
	if (cj->move) {
		struct buf b = BUF_INIT(4 * 1024 * 1024);
		append_copyuid(&b, cj);
		imap_job_untagged(job, "OK [%.*s] Moved", (int)buf_len(&b), buf_data(&b));
		buf_free(&b);
		/* the EXPUNGEs of the moved messages */
		imap_sync_work(job, true);
	}
	return 0;
}

static void copy_done(struct imap_job *job, int result)
{
	struct copy_job *cj = (struct copy_job *)job;
	struct imap_session *s = job->s;
	const char *what = cj->move ? "Move" : "Copy";
	switch (result) {
	case 0:
		break;
	case STORE_ENOTFOUND:
		imap_tagged(s, "NO", "[TRYCREATE] Mailbox doesn't exist: %.100s", cj->dst);
		return;
	case STORE_EQUOTA:
		imap_tagged(s, "NO", "[OVERQUOTA] Quota exceeded");
		return;
	case STORE_EINVAL:
		imap_tagged(s, "NO", "[CANNOT] %s not possible", what);
		return;
	default:
		imap_tagged(s, "NO", "[SERVERBUG] %s failed: %s", what, store_strerror(result));
		return;
	}
	if (cj->n_uids == 0 || cj->move) {
		imap_tagged(s, "OK", "%s completed.", what);
		return;
	}
	struct buf b = BUF_INIT(4 * 1024 * 1024);
	append_copyuid(&b, cj);
	/* the tagged line is bounded: a huge COPYUID goes without it */
	if (buf_len(&b) < 900)
		imap_tagged(s, "OK", "[%.*s] %s completed.", (int)buf_len(&b), buf_data(&b), what);
	else
		imap_tagged(s, "OK", "%s completed.", what);
	buf_free(&b);
}

void imap_copy(struct imap_session *s, const struct imap_arg *args, size_t n, bool uid,
	       bool move)
{
	const char *set = n == 2 ? imap_arg_string(&args[0]) : NULL;
	const char *name = n == 2 ? imap_arg_string(&args[1]) : NULL;
	if (set == NULL || name == NULL || args[0].type != IMAP_ARG_ATOM) {
		imap_tagged(s, "BAD", "Syntax: %s sequence-set mailbox", move ? "MOVE" : "COPY");
		return;
	}
	if (move && s->sel->readonly) {
		imap_tagged(s, "NO", "[READ-ONLY] Mailbox is read-only.");
		return;
	}
	struct copy_job *cj = imap_job_new(s, sizeof(*cj), copy_work, copy_done);
	cj->job.cleanup = copy_cleanup;
	cj->uid = uid;
	cj->move = move;
	cj->quota = imap_quota(s);
	if (imap_mailbox_from_client(name, s->enabled_utf8, cj->dst, sizeof(cj->dst)) < 0) {
		copy_cleanup(&cj->job);
		buf_free(&cj->job.out);
		free(cj);
		imap_tagged(s, "NO", "[CANNOT] Invalid mailbox name");
		return;
	}
	size_t *idx;
	int err;
	size_t count = imap_seqset_select(s->sel, set, uid, &idx, &err);
	if (err != 0) {
		copy_cleanup(&cj->job);
		buf_free(&cj->job.out);
		free(cj);
		imap_tagged(s, "BAD", "%s", err == -2 ? "Invalid sequence number" :
			    "Invalid sequence set");
		return;
	}
	cj->uids = x_malloc((count + 1) * sizeof(uint32_t));
	for (size_t i = 0; i < count; i++)
		cj->uids[i] = s->sel->msgs[idx[i]].uid;
	cj->n_uids = count;
	free(idx);
	cj->job.sync = !move;
	cj->job.sync_expunge = true;
	imap_job_start(&cj->job);
}

/* ---- APPEND ---- */

#define APPEND_MESSAGES_MAX 1000
/* msgs[] starts at this many entries and doubles as messages arrive (each entry
 * carries STORE_KEYWORDS_MAX bytes: a full table zeroed per APPEND was 0.5 MB) */
#define APPEND_MESSAGES_FIRST 4

struct append_msg {
	const char *data;            /* into the job's copy of the command */
	size_t len;
	unsigned flags;
	char keywords[STORE_KEYWORDS_MAX];
	int64_t date;
	uint32_t uid;
};

struct append_job {
	struct imap_job job;
	char mailbox[512];
	char *copy;                  /* the literals */
	struct append_msg *msgs;
	size_t n_msgs, cap_msgs;
	uint32_t uidvalidity;
	uint64_t quota;
};

static void append_cleanup(struct imap_job *job)
{
	struct append_job *aj = (struct append_job *)job;
	free(aj->copy);
	free(aj->msgs);
}

/* The next entry of msgs[], zeroed; NULL at APPEND_MESSAGES_MAX. */
static struct append_msg *append_next(struct append_job *aj)
{
	if (aj->n_msgs == APPEND_MESSAGES_MAX)
		return NULL;
	if (aj->n_msgs == aj->cap_msgs) {
		size_t cap = aj->cap_msgs == 0 ? APPEND_MESSAGES_FIRST : aj->cap_msgs * 2;
		if (cap > APPEND_MESSAGES_MAX)
			cap = APPEND_MESSAGES_MAX;
		aj->msgs = x_realloc(aj->msgs, cap * sizeof(*aj->msgs));
		aj->cap_msgs = cap;
	}
	struct append_msg *m = &aj->msgs[aj->n_msgs];
	memset(m, 0, sizeof(*m));
	return m;
}

static int append_work(struct imap_job *job)
{
	struct append_job *aj = (struct append_job *)job;
	struct imap_session *s = job->s;
	for (size_t i = 0; i < aj->n_msgs; i++) {
		struct store_body body = { .data = aj->msgs[i].data, .len = aj->msgs[i].len };
		int ret = store_append(job->store, s->user->address, aj->mailbox, &body,
				       aj->msgs[i].flags, aj->msgs[i].keywords, aj->msgs[i].date,
				       aj->quota, &aj->msgs[i].uid, &aj->uidvalidity);
		if (ret != 0)
			return ret;
	}
	return 0;
}

static void append_done(struct imap_job *job, int result)
{
	struct append_job *aj = (struct append_job *)job;
	struct imap_session *s = job->s;
	switch (result) {
	case 0:
		break;
	case STORE_ENOTFOUND:
		imap_tagged(s, "NO", "[TRYCREATE] Mailbox doesn't exist: %.100s", aj->mailbox);
		return;
	case STORE_EQUOTA:
		imap_tagged(s, "NO", "[OVERQUOTA] Quota exceeded");
		return;
	case STORE_ETOOBIG:
		imap_tagged(s, "NO", "[TOOBIG] Message too large");
		return;
	case STORE_EINVAL:
		imap_tagged(s, "NO", "[CANNOT] Append not possible");
		return;
	default:
		imap_tagged(s, "NO", "[SERVERBUG] Append failed: %s", store_strerror(result));
		return;
	}
	log_info("%s: appended %zu message(s) to %s for %s", s->id, aj->n_msgs, aj->mailbox,
		 s->user->address);
	struct buf b = BUF_INIT(900);
	uint32_t *uids = x_malloc(aj->n_msgs * sizeof(*uids));
	for (size_t i = 0; i < aj->n_msgs; i++)
		uids[i] = aj->msgs[i].uid;
	imap_append_uidset(&b, uids, aj->n_msgs);
	free(uids);
	imap_tagged(s, "OK", "[APPENDUID %u %.*s] Append completed.", aj->uidvalidity,
		    (int)buf_len(&b), buf_data(&b));
	buf_free(&b);
}

void imap_cmd_append(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	const char *name = n >= 2 ? imap_arg_string(&args[0]) : NULL;
	const char *syntax = "Syntax: APPEND mailbox [(flags)] [date-time] literal";
	if (name == NULL) {
		imap_tagged(s, "BAD", "%s", syntax);
		return;
	}
	struct append_job *aj = imap_job_new(s, sizeof(*aj), append_work, append_done);
	aj->job.cleanup = append_cleanup;
	aj->quota = imap_quota(s);
	size_t total = 0;
	for (size_t i = 1; i < n; i++) {
		if (args[i].type == IMAP_ARG_LITERAL)
			total += args[i].len;
		else if (args[i].type == IMAP_ARG_LIST && args[i].n_list == 1 &&
			 args[i].list[0].type == IMAP_ARG_LITERAL)
			total += args[i].list[0].len;
	}
	aj->copy = x_malloc(total + 1);
	size_t used = 0;
	const char *error = syntax;
	bool toobig = false;
	/* MULTIAPPEND-style: [flags] [date] literal, repeated */
	for (size_t i = 1; i < n;) {
		struct append_msg *m = append_next(aj);
		if (m == NULL)
			goto bad;
		m->date = (int64_t)time(NULL);
		if (args[i].type == IMAP_ARG_LIST) {
			const char *ferr;
			if (imap_parse_flags(args[i].list, args[i].n_list, &m->flags, m->keywords,
					     sizeof(m->keywords), &ferr) < 0) {
				error = ferr;
				goto bad;
			}
			i++;
		}
		if (i < n && args[i].type == IMAP_ARG_QUOTED) {
			if (imap_parse_datetime(args[i].str, &m->date) < 0) {
				error = "Invalid date-time";
				goto bad;
			}
			i++;
		}
		/* UTF8 (~{n}...) after ENABLE UTF8=ACCEPT (RFC 6855 4) */
		if (i + 1 < n && args[i].type == IMAP_ARG_ATOM && strcasecmp(args[i].str, "UTF8") == 0 &&
		    args[i + 1].type == IMAP_ARG_LIST && args[i + 1].n_list == 1 &&
		    args[i + 1].list[0].type == IMAP_ARG_LITERAL && s->enabled_utf8) {
			const struct imap_arg *lit = &args[i + 1].list[0];
			if (lit->len > imap_max_message_size(s))
				toobig = true;
			memcpy(aj->copy + used, lit->str, lit->len);
			m->data = aj->copy + used;
			m->len = lit->len;
			used += lit->len;
			aj->n_msgs++;
			i += 2;
			continue;
		}
		if (i >= n || args[i].type != IMAP_ARG_LITERAL)
			goto bad;
		if (args[i].len > imap_max_message_size(s))
			toobig = true;
		memcpy(aj->copy + used, args[i].str, args[i].len);
		m->data = aj->copy + used;
		m->len = args[i].len;
		used += args[i].len;
		aj->n_msgs++;
		i++;
	}
	if (aj->n_msgs == 0)
		goto bad;
	if (toobig) {
		append_cleanup(&aj->job);
		buf_free(&aj->job.out);
		free(aj);
		imap_tagged(s, "NO", "[TOOBIG] Message too large");
		return;
	}
	if (imap_mailbox_from_client(name, s->enabled_utf8, aj->mailbox,
				     sizeof(aj->mailbox)) < 0) {
		append_cleanup(&aj->job);
		buf_free(&aj->job.out);
		free(aj);
		imap_tagged(s, "NO", "[CANNOT] Invalid mailbox name");
		return;
	}
	aj->job.sync = s->sel != NULL;
	aj->job.sync_expunge = true;
	imap_job_start(&aj->job);
	return;
bad:
	append_cleanup(&aj->job);
	buf_free(&aj->job.out);
	free(aj);
	imap_tagged(s, "BAD", "%s", error);
}
