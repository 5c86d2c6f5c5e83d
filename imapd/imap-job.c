/* imap-job.c — store calls off the loop thread, and reporting the selected
 * mailbox's changes (EXISTS, EXPUNGE, FETCH FLAGS) to the client.
 *
 * A session runs at most one job at a time and reads no input meanwhile, so the
 * job may read and update the session's selected-mailbox view on the thread; the
 * loop thread only sets sel->changed when a notification arrives. */
#include "imapd/imap-session.h"
#include "imapd/imap-util.h"
#include "common/log.h"
#include "common/pool.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* Bytes of responses one job may build (a whole 20 MB message fits). */
#define IMAP_JOB_OUTPUT_MAX ((size_t)512 * 1024 * 1024)

struct sync_job {
	struct imap_job job;
	bool tagged;
	char ok_text[64];
};

static void idle_sync_if_needed(struct imap_session *s);

void *imap_job_new(struct imap_session *s, size_t size,
		   int (*work)(struct imap_job *job),
		   void (*done)(struct imap_job *job, int result))
{
	struct imap_job *job = x_calloc(1, size);
	job->s = s;
	job->store = imap_store(s);
	job->work = work;
	job->done = done;
	buf_init(&job->out, IMAP_JOB_OUTPUT_MAX);
	return job;
}

void imap_job_untagged(struct imap_job *job, const char *fmt, ...)
{
	va_list ap;
	buf_append(&job->out, "* ", 2);
	va_start(ap, fmt);
	buf_vprintf(&job->out, fmt, ap);
	va_end(ap);
	buf_append(&job->out, "\r\n", 2);
}

static int job_work(void *arg)
{
	struct imap_job *job = arg;
	int ret = job->work != NULL ? job->work(job) : 0;
	if (job->sync && job->s->sel != NULL && ret != STORE_ERECOVER)
		imap_sync_work(job, job->sync_expunge);
	return ret;
}

static void job_free(struct imap_job *job)
{
	if (job->cleanup != NULL)
		job->cleanup(job);
	buf_free(&job->out);
	free(job);
}

void imap_job_discard(struct imap_job *job)
{
	job_free(job);
}

static void job_done(void *arg, int result)
{
	struct imap_job *job = arg;
	struct imap_session *s = job->s;
	s->jobs--;
	if (s->notify_pending && s->sel != NULL) {
		s->sel->changed = true;
		s->notify_pending = false;
	}
	if (s->closed) {
		job_free(job);
		if (s->jobs == 0)
			imap_session_free(s);
		return;
	}
	if (result == STORE_ERECOVER) {
		log_error("%s: the store needs recovery", s->id);
		store_request_recovery(s->conf->state_dir);
	}
	if (buf_len(&job->out) > 0)
		imap_write(s, buf_data(&job->out), buf_len(&job->out));
	if (job->done != NULL)
		job->done(job, result);
	bool keep = job->keep_waiting;
	job_free(job);
	if (s->sel != NULL && s->sel->gone && !keep && s->state != IMAP_STATE_LOGOUT) {
		/* as Dovecot does: the client reconnects and finds the folder list changed */
		log_info("%s: selected mailbox %s was deleted", s->id, s->sel->name);
		imap_untagged(s, "BYE Mailbox was deleted.");
		imap_session_logout(s);
		return;
	}
	if (!keep && s->jobs == 0 && s->state != IMAP_STATE_LOGOUT) {
		imap_session_resume(s);
		idle_sync_if_needed(s);
	}
}

void imap_job_start(struct imap_job *job)
{
	struct imap_session *s = job->s;
	imap_session_wait(s);
	s->jobs++;
	if (store_async(service_loop(s->svc), job_work, job_done, job) < 0) {
		s->jobs--;
		imap_tagged(s, "NO", "[UNAVAILABLE] Internal error");
		job_free(job);
		imap_session_resume(s);
	}
}

/* ---- sync ---- */

static bool same_keywords(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

static void report_fetch(struct imap_job *job, size_t seq, const struct imap_msg *m)
{
	struct imap_session *s = job->s;
	buf_printf(&job->out, "* %zu FETCH (", seq);
	if (s->enabled_qresync || s->enabled_condstore)
		buf_printf(&job->out, "UID %u ", m->uid);
	buf_append_str(&job->out, "FLAGS ");
	imap_append_flags(&job->out, m->flags, m->keywords);
	if (s->enabled_condstore)
		buf_printf(&job->out, " MODSEQ (%llu)", (unsigned long long)m->modseq);
	buf_append_str(&job->out, ")\r\n");
}

static bool uid_listed(const uint32_t *uids, size_t n, uint32_t uid)
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

/* The index of uid in the selection, or -1. */
static ssize_t find_uid(const struct imap_selected *sel, uint32_t uid)
{
	size_t lo = 0, hi = sel->count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (sel->msgs[mid].uid < uid)
			lo = mid + 1;
		else if (sel->msgs[mid].uid > uid)
			hi = mid;
		else
			return (ssize_t)mid;
	}
	return -1;
}

/* Expunges since the client's modseq, from the highest sequence number down so
 * the numbers stay right (RFC 3501 7.4.1); VANISHED once QRESYNC is on. */
static bool sync_expunges(struct imap_job *job, bool allow_expunge)
{
	struct imap_session *s = job->s;
	struct imap_selected *sel = s->sel;
	uint32_t *uids;
	size_t n;
	if (sel->count == 0 ||
	    store_expunged_since(job->store, sel->id, sel->highestmodseq, &uids, &n) != 0)
		return false;
	imap_sort_uids(uids, n);
	bool kept = false;
	uint32_t *gone = x_malloc((n + 1) * sizeof(*gone));
	size_t n_gone = 0;
	for (size_t i = sel->count; i-- > 0 && n > 0;) {
		if (!uid_listed(uids, n, sel->msgs[i].uid))
			continue;
		if (!allow_expunge) {
			kept = true;
			continue;
		}
		if (s->enabled_qresync)
			gone[n_gone++] = sel->msgs[i].uid;
		else
			buf_printf(&job->out, "* %zu EXPUNGE\r\n", i + 1);
		free(sel->msgs[i].keywords);
		memmove(&sel->msgs[i], &sel->msgs[i + 1], (sel->count - i - 1) * sizeof(sel->msgs[0]));
		sel->count--;
	}
	if (n_gone > 0) {
		imap_sort_uids(gone, n_gone);
		buf_append_str(&job->out, "* VANISHED ");
		imap_append_uidset(&job->out, gone, n_gone);
		buf_append_str(&job->out, "\r\n");
	}
	free(gone);
	free(uids);
	return kept;
}

int imap_sync_work(struct imap_job *job, bool allow_expunge)
{
	struct imap_session *s = job->s;
	struct imap_selected *sel = s->sel;
	struct store_mailbox mb;
	char user[320];
	sel->changed = false;
	int ret = store_mailbox_get_by_id(job->store, sel->id, user, sizeof(user), &mb);
	if (ret == STORE_ENOTFOUND)
		sel->gone = true;    /* the session ends after this reply */
	if (ret != 0)
		return ret;
	if (mb.highestmodseq == sel->highestmodseq && mb.uidnext == sel->uidnext &&
	    mb.messages == sel->count)
		return 0;
	bool kept_expunged = sync_expunges(job, allow_expunge);
	/* what changed or arrived since: only those records are read */
	struct store_message *list;
	size_t n;
	ret = store_messages_changed(job->store, sel->id, sel->highestmodseq, &list, &n);
	if (ret != 0)
		return ret;
	uint32_t last = sel->count > 0 ? sel->msgs[sel->count - 1].uid : 0;
	size_t before = sel->count;
	for (size_t k = 0; k < n; k++) {
		if (list[k].uid <= last) {
			ssize_t i = find_uid(sel, list[k].uid);
			if (i < 0)
				continue;
			struct imap_msg *m = &sel->msgs[i];
			if (list[k].flags != m->flags || !same_keywords(list[k].keywords, m->keywords) ||
			    (s->enabled_condstore && list[k].modseq != m->modseq)) {
				imap_msg_set(m, &list[k]);
				report_fetch(job, (size_t)i + 1, m);
			} else {
				m->modseq = list[k].modseq;
			}
			continue;
		}
		if (sel->count == sel->cap) {
			sel->cap = sel->cap == 0 ? 64 : sel->cap * 2;
			sel->msgs = x_realloc(sel->msgs, sel->cap * sizeof(*sel->msgs));
		}
		memset(&sel->msgs[sel->count], 0, sizeof(sel->msgs[0]));
		imap_msg_set(&sel->msgs[sel->count], &list[k]);
		sel->count++;
	}
	free(list);
	if (sel->count != before)
		buf_printf(&job->out, "* %zu EXISTS\r\n", sel->count);
	if (!kept_expunged)
		sel->highestmodseq = mb.highestmodseq;
	else
		sel->changed = true;
	sel->uidnext = mb.uidnext;
	return 0;
}

static void sync_done(struct imap_job *job, int result)
{
	struct sync_job *sj = (struct sync_job *)job;
	if (sj->tagged)
		imap_tagged(job->s, "OK", "%s", sj->ok_text);
}

void imap_sync_start(struct imap_session *s, bool tagged_ok, const char *ok_text)
{
	struct sync_job *sj = imap_job_new(s, sizeof(*sj), NULL, sync_done);
	sj->tagged = tagged_ok;
	snprintf(sj->ok_text, sizeof(sj->ok_text), "%s", ok_text != NULL ? ok_text : "");
	sj->job.sync = s->sel != NULL;
	sj->job.sync_expunge = true;
	imap_job_start(&sj->job);
}

static void idle_sync_if_needed(struct imap_session *s)
{
	if (s->idling && s->sel != NULL && s->sel->changed && s->jobs == 0 && !s->closed)
		imap_sync_start(s, false, NULL);
}

/* A notification for the session's selected mailbox (from imap_notify). */
void imap_session_changed(struct imap_session *s)
{
	if (s->jobs == 0)
		s->sel->changed = true;
	else
		s->notify_pending = true;   /* the job may be syncing right now */
	idle_sync_if_needed(s);
}
