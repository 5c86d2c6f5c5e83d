/* imap-select.c — SELECT, EXAMINE, CLOSE, UNSELECT, EXPUNGE, CHECK, NOOP, IDLE. */
#include "imapd/imap-commands.h"
#include "common/log.h"
#include "common/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void imap_selected_free(struct imap_selected **selp)
{
	struct imap_selected *sel = *selp;
	if (sel == NULL)
		return;
	for (size_t i = 0; i < sel->count; i++)
		free(sel->msgs[i].keywords);
	free(sel->msgs);
	free(sel->saved);
	free(sel);
	*selp = NULL;
}

void imap_msg_set(struct imap_msg *m, const struct store_message *sm)
{
	m->uid = sm->uid;
	m->flags = sm->flags;
	m->modseq = sm->modseq;
	if (m->keywords == NULL || strcmp(m->keywords, sm->keywords) != 0) {
		free(m->keywords);
		m->keywords = sm->keywords[0] != '\0' ? x_strdup(sm->keywords) : NULL;
	}
}

void imap_append_flags(struct buf *out, unsigned flags, const char *keywords)
{
	static const char *const names[] = { "\\Seen", "\\Answered", "\\Flagged",
					     "\\Deleted", "\\Draft" };
	bool first = true;
	buf_append(out, "(", 1);
	for (unsigned i = 0; i < 5; i++) {
		if (flags & (1u << i)) {
			buf_printf(out, "%s%s", first ? "" : " ", names[i]);
			first = false;
		}
	}
	if (keywords != NULL && keywords[0] != '\0')
		buf_printf(out, "%s%s", first ? "" : " ", keywords);
	buf_append(out, ")", 1);
}

/* ---- SELECT / EXAMINE ---- */

/* UIDs read per store call while selecting. */
#define SELECT_UID_CHUNK 4096

struct select_job {
	struct imap_job job;
	char name[512];
	bool readonly;
	bool condstore;
	bool qresync;
	uint32_t q_uidvalidity;
	uint64_t q_modseq;
	char *q_known;                  /* known UIDs of QRESYNC, or NULL */
	struct imap_selected *sel;      /* the new selection */
	bool had_selection;
	const char *error;
};

static void select_cleanup(struct imap_job *job)
{
	struct select_job *sj = (struct select_job *)job;
	imap_selected_free(&sj->sel);
	free(sj->q_known);
}

/* Keywords in use in the mailbox, for the FLAGS response. */
static void collect_keywords(const struct imap_selected *sel, struct buf *out)
{
	for (size_t i = 0; i < sel->count; i++) {
		const char *p = sel->msgs[i].keywords;
		while (p != NULL && *p != '\0') {
			const char *sp = strchr(p, ' ');
			size_t len = sp != NULL ? (size_t)(sp - p) : strlen(p);
			if (!imap_keyword_in(buf_cstr(out), p, len)) {
				if (buf_len(out) > 0)
					buf_append(out, " ", 1);
				buf_append(out, p, len);
			}
			p = sp != NULL ? sp + 1 : NULL;
		}
		if (buf_len(out) > 4096)
			break;
	}
}

static int select_work(struct imap_job *job)
{
	struct select_job *sj = (struct select_job *)job;
	struct imap_session *s = job->s;
	struct store_mailbox mb;
	int ret = store_mailbox_get(job->store, s->user->address, sj->name, &mb);
	if (ret != 0)
		return ret;
	struct imap_selected *sel = x_calloc(1, sizeof(*sel));
	sel->id = mb.id;
	snprintf(sel->name, sizeof(sel->name), "%s", mb.name);
	sel->readonly = sj->readonly;
	sel->special_use = mb.special_use;
	sel->uidvalidity = mb.uidvalidity;
	sel->uidnext = mb.uidnext;
	sel->highestmodseq = mb.highestmodseq;
	sel->cap = mb.messages > 0 ? mb.messages : 16;
	sel->msgs = x_calloc(sel->cap, sizeof(*sel->msgs));
	sj->sel = sel;
	size_t first_unseen = 0;
	/* read in UID ranges: a store record is large, the session's copy small */
	for (uint64_t lo = 1; lo < mb.uidnext; lo += SELECT_UID_CHUNK) {
		uint64_t hi = lo + SELECT_UID_CHUNK - 1;
		struct store_message *list;
		size_t n;
		ret = store_messages(job->store, mb.id, (uint32_t)lo,
				     hi >= mb.uidnext ? 0xffffffffu : (uint32_t)hi, &list, &n);
		if (ret != 0)
			return ret;
		for (size_t i = 0; i < n; i++) {
			if (sel->count == sel->cap) {
				sel->cap *= 2;
				sel->msgs = x_realloc(sel->msgs, sel->cap * sizeof(*sel->msgs));
			}
			memset(&sel->msgs[sel->count], 0, sizeof(sel->msgs[0]));
			imap_msg_set(&sel->msgs[sel->count], &list[i]);
			if (first_unseen == 0 && !(list[i].flags & STORE_FLAG_SEEN))
				first_unseen = sel->count + 1;
			sel->count++;
		}
		free(list);
	}
	size_t n = sel->count;

	struct buf kw = BUF_INIT(8192);
	collect_keywords(sel, &kw);
	const char *k = buf_cstr(&kw);
	imap_job_untagged(job, "FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft%s%s)",
			  k[0] != '\0' ? " " : "", k);
	if (sj->readonly)
		imap_job_untagged(job, "OK [PERMANENTFLAGS ()] Read-only mailbox.");
	else
		imap_job_untagged(job, "OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted "
				  "\\Seen \\Draft%s%s \\*)] Flags permitted.",
				  k[0] != '\0' ? " " : "", k);
	buf_free(&kw);
	imap_job_untagged(job, "%zu EXISTS", n);
	if (s->enabled_rev2) {
		/* IMAP4rev2 dropped RECENT and UNSEEN; it wants the mailbox's LIST line */
		buf_append_str(&job->out, "* LIST () \"/\" ");
		imap_append_mailbox(&job->out, sel->name, s->enabled_utf8);
		buf_append_str(&job->out, "\r\n");
	} else {
		imap_job_untagged(job, "0 RECENT");
		if (first_unseen != 0)
			imap_job_untagged(job, "OK [UNSEEN %zu] First unseen.", first_unseen);
	}
	imap_job_untagged(job, "OK [UIDVALIDITY %u] UIDs valid", sel->uidvalidity);
	imap_job_untagged(job, "OK [UIDNEXT %u] Predicted next UID", sel->uidnext);
	imap_job_untagged(job, "OK [HIGHESTMODSEQ %llu] Highest",
			  (unsigned long long)sel->highestmodseq);
	if (sj->qresync && sj->q_uidvalidity == sel->uidvalidity)
		imap_qresync_work(job, sel, sj->q_modseq, sj->q_known);
	return 0;
}

static void select_done(struct imap_job *job, int result)
{
	struct select_job *sj = (struct select_job *)job;
	struct imap_session *s = job->s;
	if (result == STORE_ENOTFOUND || result == STORE_EINVAL) {
		imap_tagged(s, "NO", "[NONEXISTENT] Mailbox doesn't exist: %.100s", sj->name);
		return;
	}
	if (result != 0) {
		imap_tagged(s, "NO", "[SERVERBUG] Internal error: %s", store_strerror(result));
		return;
	}
	s->sel = sj->sel;
	sj->sel = NULL;
	if (sj->condstore)
		s->enabled_condstore = true;
	imap_enter_state(s, IMAP_STATE_SELECTED);
	imap_tagged(s, "OK", "[%s] %s completed.", s->sel->readonly ? "READ-ONLY" : "READ-WRITE",
		    sj->readonly ? "Examine" : "Select");
}

static void select_common(struct imap_session *s, const struct imap_arg *args, size_t n,
			  bool readonly)
{
	const char *name = n >= 1 ? imap_arg_string(&args[0]) : NULL;
	if (name == NULL || n > 2 || (n == 2 && args[1].type != IMAP_ARG_LIST)) {
		imap_tagged(s, "BAD", "Syntax: SELECT mailbox [(CONDSTORE | QRESYNC (...))]");
		return;
	}
	struct select_job *sj = imap_job_new(s, sizeof(*sj), select_work, select_done);
	sj->job.cleanup = select_cleanup;
	sj->readonly = readonly;
	if (n == 2) {
		const struct imap_arg *p = args[1].list;
		for (size_t i = 0; i < args[1].n_list; i++) {
			const char *opt = imap_arg_string(&p[i]);
			if (opt != NULL && strcasecmp(opt, "CONDSTORE") == 0) {
				sj->condstore = true;
			} else if (opt != NULL && strcasecmp(opt, "QRESYNC") == 0 &&
				   s->enabled_qresync && i + 1 < args[1].n_list &&
				   imap_parse_qresync(&p[i + 1], &sj->q_uidvalidity, &sj->q_modseq,
						      &sj->q_known) == 0) {
				sj->qresync = true;
				sj->condstore = true;
				i++;
			} else {
				free(sj->q_known);
				buf_free(&sj->job.out);
				free(sj);
				imap_tagged(s, "BAD", "Unknown SELECT parameter");
				return;
			}
		}
	}
	if (imap_mailbox_from_client(name, s->enabled_utf8, sj->name, sizeof(sj->name)) < 0) {
		free(sj->q_known);
		buf_free(&sj->job.out);
		free(sj);
		imap_tagged(s, "NO", "[CANNOT] Invalid mailbox name");
		return;
	}
	/* a failed SELECT leaves no mailbox selected (RFC 9051 6.3.2) */
	if (s->sel != NULL) {
		imap_selected_free(&s->sel);
		imap_enter_state(s, IMAP_STATE_AUTH);
		imap_untagged(s, "OK [CLOSED] Previous mailbox closed.");
	}
	imap_job_start(&sj->job);
}

void imap_cmd_select(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	select_common(s, args, n, false);
}

void imap_cmd_examine(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	select_common(s, args, n, true);
}

/* ---- EXPUNGE, CLOSE, UNSELECT ---- */

struct expunge_job {
	struct imap_job job;
	bool close;                  /* CLOSE: silent, then unselect */
	uint32_t *uids;              /* UID EXPUNGE: the set, or NULL */
	size_t n_uids;
	bool trash;                  /* keep a copy in Trash */
	char trash_name[512];
};

static void expunge_cleanup(struct imap_job *job)
{
	struct expunge_job *ej = (struct expunge_job *)job;
	free(ej->uids);
}

static bool uid_in(const uint32_t *uids, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (uids[mid] < uid)
			lo = mid + 1;
		else if (uids[mid] > uid)
			hi = mid;
		else
			return true;
	}
	return false;
}

static int expunge_work(struct imap_job *job)
{
	struct expunge_job *ej = (struct expunge_job *)job;
	struct imap_selected *sel = job->s->sel;
	/* the flags as they are now, not as the client last heard; in UID ranges */
	struct store_mailbox mb;
	char user[320];
	int ret = store_mailbox_get_by_id(job->store, sel->id, user, sizeof(user), &mb);
	if (ret != 0)
		return ret;
	uint32_t *uids = NULL;
	size_t count = 0, cap = 0;
	for (uint64_t lo = 1; lo < mb.uidnext; lo += SELECT_UID_CHUNK) {
		uint64_t hi = lo + SELECT_UID_CHUNK - 1;
		struct store_message *list;
		size_t n;
		ret = store_messages(job->store, sel->id, (uint32_t)lo,
				     hi >= mb.uidnext ? 0xffffffffu : (uint32_t)hi, &list, &n);
		if (ret != 0) {
			free(uids);
			return ret;
		}
		for (size_t i = 0; i < n; i++) {
			if (!(list[i].flags & STORE_FLAG_DELETED))
				continue;
			if (ej->uids != NULL && !uid_in(ej->uids, ej->n_uids, list[i].uid))
				continue;
			if (count == cap) {
				cap = cap == 0 ? 256 : cap * 2;
				uids = x_realloc(uids, cap * sizeof(*uids));
			}
			uids[count++] = list[i].uid;
		}
		free(list);
	}
	if (count > 0 && ej->trash) {
		uint32_t *dst = x_malloc(count * sizeof(*dst));
		uint32_t uidv;
		/* the trashcan keeps a copy; without a Trash folder the expunge still happens */
		ret = store_copy(job->store, sel->id, uids, count, job->s->user->address,
				 ej->trash_name, 0, false, dst, &uidv);
		if (ret != 0 && ret != STORE_ENOTFOUND)
			log_warn("%s: trashcan copy to %s failed: %s", job->s->id, ej->trash_name,
				 store_strerror(ret));
		free(dst);
	}
	uint64_t hms;
	ret = count > 0 ? store_expunge(job->store, sel->id, uids, count, &hms) : 0;
	free(uids);
	if (ret != 0)
		return ret;
	if (!ej->close)
		imap_sync_work(job, true);
	return 0;
}

static void expunge_done(struct imap_job *job, int result)
{
	struct expunge_job *ej = (struct expunge_job *)job;
	struct imap_session *s = job->s;
	if (result != 0) {
		imap_tagged(s, "NO", "[SERVERBUG] Expunge failed: %s", store_strerror(result));
		return;
	}
	if (ej->close) {
		imap_selected_free(&s->sel);
		imap_enter_state(s, IMAP_STATE_AUTH);
		imap_tagged(s, "OK", "Close completed.");
		return;
	}
	imap_tagged(s, "OK", "Expunge completed.");
}

static void start_expunge(struct imap_session *s, bool close, uint32_t *uids, size_t n_uids)
{
	struct expunge_job *ej = imap_job_new(s, sizeof(*ej), expunge_work, expunge_done);
	ej->job.cleanup = expunge_cleanup;
	ej->close = close;
	ej->uids = uids;
	ej->n_uids = n_uids;
	const char *trash = imap_trash_name(s);
	if (trash != NULL && strcmp(trash, s->sel->name) != 0) {
		ej->trash = true;
		snprintf(ej->trash_name, sizeof(ej->trash_name), "%s", trash);
	}
	imap_job_start(&ej->job);
}

void imap_cmd_expunge(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	if (n != 0) {
		imap_tagged(s, "BAD", "EXPUNGE takes no arguments");
		return;
	}
	if (s->sel->readonly) {
		imap_tagged(s, "NO", "[READ-ONLY] Mailbox is read-only.");
		return;
	}
	start_expunge(s, false, NULL, 0);
}

void imap_cmd_uid_expunge(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	const char *set = n == 1 ? imap_arg_string(&args[0]) : NULL;
	if (set == NULL || args[0].type != IMAP_ARG_ATOM || !imap_seqset_valid(set)) {
		imap_tagged(s, "BAD", "Syntax: UID EXPUNGE uid-set");
		return;
	}
	if (s->sel->readonly) {
		imap_tagged(s, "NO", "[READ-ONLY] Mailbox is read-only.");
		return;
	}
	size_t *idx;
	int err;
	size_t count = imap_seqset_select(s->sel, set, true, &idx, &err);
	uint32_t *uids = x_malloc((count + 1) * sizeof(*uids));
	for (size_t i = 0; i < count; i++)
		uids[i] = s->sel->msgs[idx[i]].uid;
	free(idx);
	start_expunge(s, false, uids, count);
}

void imap_cmd_close(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	if (n != 0) {
		imap_tagged(s, "BAD", "CLOSE takes no arguments");
		return;
	}
	if (s->sel->readonly) {
		imap_selected_free(&s->sel);
		imap_enter_state(s, IMAP_STATE_AUTH);
		imap_tagged(s, "OK", "Close completed.");
		return;
	}
	start_expunge(s, true, NULL, 0);
}

void imap_cmd_unselect(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	if (n != 0) {
		imap_tagged(s, "BAD", "UNSELECT takes no arguments");
		return;
	}
	imap_selected_free(&s->sel);
	imap_enter_state(s, IMAP_STATE_AUTH);
	imap_tagged(s, "OK", "Unselect completed.");
}

/* ---- NOOP, CHECK, IDLE ---- */

void imap_cmd_noop(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	if (s->sel == NULL) {
		imap_tagged(s, "OK", "NOOP completed.");
		return;
	}
	imap_sync_start(s, true, "NOOP completed.");
}

void imap_cmd_check(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_sync_start(s, true, "Check completed.");
}

void imap_cmd_idle(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	if (n != 0) {
		imap_tagged(s, "BAD", "IDLE takes no arguments");
		return;
	}
	s->idling = true;
	imap_body_file_close(&s->body);   /* an idle session holds no body file */
	imap_write_str(s, "+ idling\r\n");
	if (s->sel != NULL) {
		/* what changed since the last command is reported at once */
		imap_sync_start(s, false, NULL);
	} else {
		imap_session_resume(s);
	}
}

void imap_idle_input(struct imap_session *s, const char *line, size_t len)
{
	s->idling = false;
	s->mode = IMAP_INPUT_LINE;
	if (len == 4 && strncasecmp(line, "DONE", 4) == 0) {
		imap_tagged(s, "OK", "Idle completed.");
		return;
	}
	imap_tagged(s, "BAD", "Expected DONE");
}
