/* queue-result.c — what happens to each recipient after an attempt.
 *
 * 2xx: delivered (a "delivered"/"relayed" DSN when NOTIFY=SUCCESS and the next
 * hop did not take the request itself). 5xx: failed, bounced. 4xx and
 * connection failures: retried after retry_min, doubling per attempt up to
 * retry_max, until max_lifetime is over (then bounced with 4.4.7); once the
 * message is older than delay_warning, one delay notice per recipient.
 * NOTIFY=NEVER and the null sender get no notice at all, so a bounce is never
 * bounced. The notices are queued first, then the record is written back, so
 * a crash in between can repeat a notice but never lose one.
 */
#include "smtpd/queue.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct finish {
	struct qdelivery *d;
	char *dsn[3];         /* failed, delayed, success */
	size_t dsn_len[3];
	int result;
};

static unsigned retry_delay(const struct warren_config *conf, uint32_t attempts)
{
	uint64_t delay = conf->queue.retry_min_s;
	for (uint32_t i = 1; i < attempts && delay < conf->queue.retry_max_s; i++)
		delay *= 2;
	if (delay > conf->queue.retry_max_s)
		delay = conf->queue.retry_max_s;
	return (unsigned)delay;
}

static bool wants(const struct queue_rcpt *r, unsigned what)
{
	if (r->notify & QUEUE_NOTIFY_NEVER)
		return false;
	if (r->notify == 0)
		return what == QUEUE_NOTIFY_FAILURE || what == QUEUE_NOTIFY_DELAY;
	return (r->notify & what) != 0;
}

static void log_result(const struct qdelivery *d, const struct queue_rcpt *r,
		       const char *status, int64_t now)
{
	metrics_count_delivery(r->remote, status);
	/* as Postfix's smtp (or local, for notices stored here) logs it */
	log_info_as(strcmp(r->remote, "local") == 0 ? "local" : "smtp",
		 "%s: to=<%s>, relay=%s, delay=%lld, dsn=%s, status=%s (%s)", d->msg.id,
		 r->addr, r->remote[0] && r->code != 0 ? r->remote : "none", (long long)(now - d->msg.created),
		 r->status[0] ? r->status : "4.0.0", status, r->reply);
}

static int finish_work(void *arg)
{
	struct finish *f = arg;
	struct store *store = service_store(f->d->r->svc);
	for (int k = 0; k < 3; k++) {
		if (f->dsn[k] == NULL)
			continue;
		struct queue_msg b;
		memset(&b, 0, sizeof(b));
		b.flags = QUEUE_F_BOUNCE;
		snprintf(b.origin, sizeof(b.origin), "bounce %s", f->d->msg.id);
		b.n_rcpts = 1;
		b.rcpts = x_calloc(1, sizeof(*b.rcpts));
		snprintf(b.rcpts[0].addr, sizeof(b.rcpts[0].addr), "%s", f->d->msg.from);
		b.rcpts[0].notify = QUEUE_NOTIFY_NEVER;
		struct store_body body = { f->dsn[k], f->dsn_len[k], NULL };
		int ret = queue_add(store, NULL, &body, &b);
		if (ret == 0) {
			metrics_count(METRIC_NOTICES);
			log_info_as("bounce", "%s: sender %s notification: %s", f->d->msg.id,
				 k == 0 ? "non-delivery" : k == 1 ? "delay" : "delivery", b.id);
			log_info_as("qmgr", "%s: from=<>, size=%zu, nrcpt=1 (queue active)", b.id,
				    f->dsn_len[k]);
		} else
			log_error("%s: cannot queue a notification: %s", f->d->msg.id,
				  store_strerror(ret));
		queue_msg_free(&b);
	}
	bool removed = false;
	int ret = queue_put(store, &f->d->msg, &removed);
	if (ret == 0 && removed)
		log_info_as("qmgr", "%s: removed", f->d->msg.id);
	return ret;
}

static void finish_done(void *arg, int result)
{
	struct finish *f = arg;
	if (result != 0)
		log_error("%s: cannot update the queue: %s", f->d->msg.id, store_strerror(result));
	for (int k = 0; k < 3; k++)
		free(f->dsn[k]);
	struct qdelivery *d = f->d;
	free(f);
	queue_delivery_release(d);
}

void queue_delivery_finish(struct qdelivery *d)
{
	const struct warren_config *conf = d->conf;
	struct queue_msg *m = &d->msg;
	int64_t now = (int64_t)time(NULL);
	size_t n = m->n_rcpts;
	bool *which[3];
	bool any[3] = { false, false, false };
	for (int k = 0; k < 3; k++)
		which[k] = x_calloc(n, sizeof(bool));
	bool notices = m->from[0] != '\0' && !(m->flags & QUEUE_F_BOUNCE);
	for (size_t i = 0; i < n; i++) {
		struct queue_rcpt *r = &m->rcpts[i];
		if (!d->touched[i])
			continue;
		r->attempts++;
		r->last_attempt = now;
		if (r->state == QUEUE_RCPT_DELIVERED) {
			log_result(d, r, "sent", now);
			if (notices && wants(r, QUEUE_NOTIFY_SUCCESS) && !d->dsn_passed[i])
				which[2][i] = any[2] = true;
			continue;
		}
		if (r->state == QUEUE_RCPT_PENDING &&
		    now - m->created >= (int64_t)conf->queue.max_lifetime_s) {
			char reply[QUEUE_REPLY_MAX + 1];
			snprintf(reply, sizeof(reply), "message expired after %lld seconds in the "
				 "queue; last error: %.400s", (long long)(now - m->created), r->reply);
			snprintf(r->reply, sizeof(r->reply), "%s", reply);
			snprintf(r->status, sizeof(r->status), "4.4.7");
			r->state = QUEUE_RCPT_FAILED;
		}
		if (r->state == QUEUE_RCPT_FAILED) {
			log_result(d, r, "bounced", now);
			if (notices && wants(r, QUEUE_NOTIFY_FAILURE))
				which[0][i] = any[0] = true;
			continue;
		}
		r->next_attempt = now + retry_delay(conf, r->attempts);
		log_result(d, r, "deferred", now);
		if (notices && conf->queue.delay_warning_s != 0 && !r->delay_notified &&
		    now - m->created >= (int64_t)conf->queue.delay_warning_s &&
		    wants(r, QUEUE_NOTIFY_DELAY)) {
			which[1][i] = any[1] = true;
			r->delay_notified = true;
		}
	}
	struct finish *f = x_calloc(1, sizeof(*f));
	f->d = d;
	static const char *const actions[3] = { "failed", "delayed", "delivered" };
	for (int k = 0; k < 3; k++) {
		if (any[k])
			f->dsn[k] = out_bounce_build(d, which[k], actions[k], &f->dsn_len[k]);
		free(which[k]);
	}
	if (store_async(d->r->loop, finish_work, finish_done, f) != 0) {
		log_error("%s: cannot update the queue", d->msg.id);
		for (int k = 0; k < 3; k++)
			free(f->dsn[k]);
		free(f);
		queue_delivery_release(d);
	}
}
