/* queue-local.c — queued recipients in local domains (notifications to local
 * senders): stored into the mailbox's INBOX on the thread pool.
 *
 * A mailbox, or an alias whose targets are mailboxes of the same domain, is
 * delivered; anything else fails with 5.1.1 (smtpd resolves the full alias
 * rules at RCPT time; a queued local recipient is normally a sender address). */
#include "smtpd/queue.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Copies one recipient may expand to here. */
#define LOCAL_EXPAND_MAX 64

struct local_work {
	struct qjob *job;
	int *results;         /* per job recipient: STORE_* */
	const char **why;
};

static size_t expand(const struct conf_domain *dom, const char *local,
		     const struct conf_mailbox **out, size_t max)
{
	const struct conf_mailbox *mb = conf_find_mailbox(dom, local);
	if (mb != NULL) {
		out[0] = mb;
		return 1;
	}
	const struct conf_alias *al = conf_find_alias(dom, local);
	size_t n = 0;
	for (size_t i = 0; al != NULL && i < al->n_targets && n < max; i++) {
		const char *t = al->targets[i];
		const char *at = strchr(t, '@');
		char lp[QUEUE_ADDR_MAX + 1];
		if (at != NULL) {
			if (strcasecmp(at + 1, dom->name) != 0)
				continue;
			snprintf(lp, sizeof(lp), "%.*s", (int)(at - t), t);
		} else {
			snprintf(lp, sizeof(lp), "%s", t);
		}
		mb = conf_find_mailbox(dom, lp);
		if (mb != NULL)
			out[n++] = mb;
	}
	return n;
}

static int local_work_fn(void *arg)
{
	struct local_work *w = arg;
	struct qjob *job = w->job;
	struct qdelivery *d = job->d;
	struct store *store = service_store(d->r->svc);
	const struct conf_domain *dom = conf_find_domain(d->conf, job->domain);
	/* the envelope sender as the first line, as smtpd's local deliveries have it */
	struct buf msg = BUF_INIT(SIZE_MAX);
	buf_printf(&msg, "Return-Path: <%s>\r\n", d->msg.from);
	buf_append(&msg, d->body, d->len);
	struct store_body body = { buf_data(&msg), buf_len(&msg), NULL };
	for (size_t i = 0; i < job->n_rcpts; i++) {
		const struct queue_rcpt *r = &d->msg.rcpts[job->rcpts[i]];
		char local[QUEUE_ADDR_MAX + 1];
		const char *at = strrchr(r->addr, '@');
		snprintf(local, sizeof(local), "%.*s", (int)(at - r->addr), r->addr);
		for (char *p = local; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p + 32);
		const struct conf_mailbox *mbs[LOCAL_EXPAND_MAX];
		size_t n = dom != NULL ? expand(dom, local, mbs, LOCAL_EXPAND_MAX) : 0;
		if (n == 0) {
			w->results[i] = STORE_ENOTFOUND;
			continue;
		}
		struct store_recipient rs[LOCAL_EXPAND_MAX];
		memset(rs, 0, sizeof(rs));
		for (size_t k = 0; k < n; k++) {
			rs[k].user = mbs[k]->address;
			rs[k].mailbox = "INBOX";
			rs[k].env_to = r->addr;
			rs[k].quota = mbs[k]->quota;
		}
		int ret = store_deliver(store, &body, d->msg.from, (int64_t)time(NULL), rs, n);
		if (ret == 0) {
			for (size_t k = 0; k < n; k++)
				if (rs[k].result != STORE_OK)
					ret = rs[k].result;
		}
		w->results[i] = ret;
	}
	buf_free(&msg);
	return 0;
}

static void local_done(void *arg, int result)
{
	struct local_work *w = arg;
	struct qjob *job = w->job;
	for (size_t i = 0; i < job->n_rcpts; i++) {
		int ret = result != 0 ? result : w->results[i];
		size_t idx = job->rcpts[i];
		if (ret == STORE_OK)
			queue_rcpt_result(job->d, idx, 250, "2.0.0", "250 2.0.0 delivered to mailbox",
					  "local");
		else if (ret == STORE_ENOTFOUND)
			queue_rcpt_result(job->d, idx, 550, "5.1.1",
					  "550 5.1.1 no such mailbox here", "local");
		else if (ret == STORE_EQUOTA)
			queue_rcpt_result(job->d, idx, 452, "4.2.2",
					  "452 4.2.2 mailbox full", "local");
		else
			queue_rcpt_result(job->d, idx, 451, "4.3.0", "451 4.3.0 storage error",
					  "local");
	}
	free(w->results);
	free(w);
	queue_job_done(job);
}

void queue_local_start(struct qjob *job)
{
	struct local_work *w = x_calloc(1, sizeof(*w));
	w->job = job;
	w->results = x_calloc(job->n_rcpts, sizeof(int));
	if (store_async(job->d->r->loop, local_work_fn, local_done, w) != 0)
		local_done(w, STORE_EIO);
}
