/* smtp-deliver.c — delivery of a received message: one store transaction for every
 * local copy (store_deliver, on libuv's thread pool), then the outside recipients
 * into the outbound queue (outbound_submit), and "250 2.0.0 Ok: queued as ID" only
 * after both are durable. Logged as Postfix logs a local delivery. */
#include "smtpd/smtp-session.h"
#include "smtpd/outbound.h"
#include "smtpd/policy.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pool.h"

#include <errno.h>
#include <fcntl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/time.h>
#include <time.h>

struct deliver_job {
	struct smtp_session *s;
	struct store *store;
	struct store_body body;
	const char *from;
	struct store_recipient *rcpts;
	size_t n;
	bool *grace;                /* over quota but delivered: the others were accepted */
	int result;
	bool outbound;              /* outside recipients follow */
	/* a mixed message: the queue gets the spool without Return-Path/Delivered-To */
	const char *spool_path, *out_path;
	size_t skip;
	/* delivery reports (NOTIFY=SUCCESS): the transaction's copies */
	struct warren_config *conf;
	const struct smtp_copy *copies;
	const char *queue_id, *envid, *message_path;
	int64_t arrival;
	size_t local_hdr_len;
};

/* After the commit: a "delivered" report for the copies that asked for one. */
static void success_reports(struct deliver_job *j)
{
	struct smtp_dsn_rcpt *r = NULL;
	size_t n = 0;
	for (size_t i = 0; i < j->n; i++) {
		const struct smtp_copy *c = &j->copies[i];
		if (!(c->notify & SMTP_NOTIFY_SUCCESS) || j->rcpts[i].result != STORE_OK)
			continue;
		bool dup = false;   /* one report line per RCPT, not per copy of a list */
		for (size_t k = 0; k < n && !dup; k++)
			dup = strcmp(r[k].addr, c->env_to) == 0;
		if (dup)
			continue;
		if (r == NULL)
			r = x_calloc(j->n, sizeof(*r));
		r[n++] = (struct smtp_dsn_rcpt){ c->env_to, c->orcpt };
	}
	if (n == 0)
		return;
	struct smtp_dsn_request req = {
		.queue_id = j->queue_id, .from = j->from, .envid = j->envid,
		.arrival = j->arrival, .spool_path = j->message_path, .skip = j->local_hdr_len,
		.rcpts = r, .n = n,
	};
	smtp_dsn_delivered(j->store, j->conf, &req);
	free(r);
}

/* Copies the spool from offset skip to out_path (on the thread pool). */
static int copy_for_queue(const struct deliver_job *j)
{
	int in = open(j->spool_path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return STORE_EIO;
	int out = open(j->out_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		close(in);
		return STORE_EIO;
	}
	char buf[65536];
	int ret = STORE_OK;
	if (lseek(in, (off_t)j->skip, SEEK_SET) < 0)
		ret = STORE_EIO;
	for (;;) {
		ssize_t n = ret == STORE_OK ? read(in, buf, sizeof(buf)) : 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ret = STORE_EIO;
		if (n <= 0)
			break;
		if (fd_write_all(out, buf, (size_t)n) < 0) {
			ret = STORE_EIO;
			break;
		}
	}
	close(in);
	if (close(out) < 0)
		ret = STORE_EIO;
	return ret;
}

/* Before the transaction: every copy over quota → the whole message is refused
 * (4.2.2 or 5.2.2); only some → those are delivered anyway (a one-message grace,
 * as the recipients were accepted at RCPT time and no bounce may be lost). */
static int deliver_work(void *arg)
{
	struct deliver_job *j = arg;
	size_t over = 0;
	if (j->out_path != NULL && copy_for_queue(j) != STORE_OK)
		return STORE_EIO;
	if (j->n == 0)
		return STORE_OK;
	for (size_t i = 0; i < j->n; i++) {
		if (j->rcpts[i].quota == 0)
			continue;
		uint64_t bytes = 0, messages = 0;
		if (store_user_usage(j->store, j->rcpts[i].user, &bytes, &messages) != STORE_OK)
			bytes = 0;
		if (bytes + j->body.len > j->rcpts[i].quota) {
			j->grace[i] = true;
			over++;
		}
	}
	if (over == j->n && !j->outbound)
		return STORE_EQUOTA;
	for (size_t i = 0; i < j->n; i++)
		if (j->grace[i])
			j->rcpts[i].quota = 0;
	int ret = store_deliver(j->store, &j->body, j->from, (int64_t)time(NULL), j->rcpts, j->n);
	if (ret == STORE_OK)
		success_reports(j);
	return ret;
}

static double seconds_since(const struct timeval *start)
{
	struct timeval now;
	gettimeofday(&now, NULL);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_usec - start->tv_usec) / 1e6;
}

static void log_deliveries(struct smtp_session *s, struct deliver_job *j, int result)
{
	struct smtp_txn *t = s->txn;
	double delay = seconds_since(&t->start);
	for (size_t i = 0; i < j->n; i++) {
		const struct smtp_copy *c = &t->copies[i];
		char orig[SMTP_PATH_MAX + 32] = "";
		char pe[SMTP_PATH_MAX + 1];
		log_printable(pe, sizeof(pe), c->env_to, strlen(c->env_to));
		if (strcasecmp(c->env_to, c->mailbox->address) != 0)
			snprintf(orig, sizeof(orig), ", orig_to=<%s>", pe);
		int r = result == STORE_OK ? j->rcpts[i].result : result;
		metrics_count_delivery("local", r == STORE_OK ? "sent" :
				       r == STORE_EQUOTA && s->conf->smtp.quota_permanent ?
				       "bounced" : "deferred");
		if (r == STORE_OK)
			log_info_as("local", "%s: to=<%s>%s, relay=local, delay=%.2f, dsn=2.0.0, status=sent "
				 "(delivered to mailbox%s)", t->queue_id, c->mailbox->address, orig,
				 delay, j->grace[i] ? " over quota within grace" : "");
		else
			log_info_as("local", "%s: to=<%s>%s, relay=local, delay=%.2f, dsn=%s, status=%s (%s)",
				 t->queue_id, c->mailbox->address, orig, delay,
				 r == STORE_EQUOTA && s->conf->smtp.quota_permanent ? "5.2.2" :
				 r == STORE_EQUOTA ? "4.2.2" : "4.3.0",
				 r == STORE_EQUOTA && s->conf->smtp.quota_permanent ? "bounced" : "deferred",
				 store_strerror(r));
	}
}

static void txn_done(struct smtp_session *s)
{
	smtp_txn_reset(s);
	smtp_enter_state(s, SMTP_STATE_HELO);
	smtp_session_resume(s);
}

static void queued_done(int result, const char *queue_id, void *ctx)
{
	struct smtp_session *s = ctx;
	if (smtp_session_unbusy(s))
		return;
	struct smtp_txn *t = s->txn;
	if (result == STORE_OK) {
		s->queued++;
		metrics_count(METRIC_SMTP_RECEIVED);
		smtp_reply(s, 250, "2.0.0 Ok: queued as %s", t->queue_id);
	} else {
		if (t->n_copies > 0)
			log_warn("%s: local copies delivered but the outbound part failed: the "
				 "client will send again", t->queue_id);
		smtp_reply(s, 451, "4.3.0 Error: queue file write error, try again later");
	}
	txn_done(s);
}

/* Hands the outside recipients to the queue; the reply follows in queued_done. */
static void submit_outbound(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	struct outbound_rcpt *r = x_calloc(t->n_exts, sizeof(*r));
	for (size_t i = 0; i < t->n_exts; i++)
		r[i] = (struct outbound_rcpt){ t->exts[i].addr, t->exts[i].orcpt,
					       t->exts[i].notify };
	struct outbound_msg m = {
		.from = t->from,
		.spool_path = t->out_path != NULL ? t->out_path : t->spool_path,
		.rcpts = r,
		.n_rcpts = t->n_exts,
		.envid = t->envid,
		.ret = t->ret,
		.body = (int)t->body,
		.smtputf8 = t->smtputf8,
		.queue_id = t->queue_id,
		.forwarded = t->forwarded,
	};
	s->busy++;
	int ret = outbound_submit(s->svc, &m, queued_done, s);
	free(r);
	if (ret < 0) {
		s->busy--;
		log_error("%s: cannot hand the message to the queue", t->queue_id);
		smtp_reply(s, 451, "4.3.0 Error: queue file write error, try again later");
		txn_done(s);
	}
}

static void deliver_done(void *arg, int result)
{
	struct deliver_job *j = arg;
	struct smtp_session *s = j->s;
	if (smtp_session_unbusy(s))
		goto out;
	struct smtp_txn *t = s->txn;
	size_t ok = 0;
	for (size_t i = 0; result == STORE_OK && i < j->n; i++)
		ok += j->rcpts[i].result == STORE_OK;
	if (j->n > 0)
		log_deliveries(s, j, result);
	if (result == STORE_OK && j->outbound && (ok > 0 || j->n == 0)) {
		submit_outbound(s);
		goto out;
	} else if (result == STORE_OK && ok > 0) {
		s->queued++;
		metrics_count(METRIC_SMTP_RECEIVED);
		smtp_reply(s, 250, "2.0.0 Ok: queued as %s", t->queue_id);
		log_info_as("qmgr", "%s: removed", t->queue_id);
	} else if (result == STORE_EQUOTA || (result == STORE_OK && ok == 0)) {
		if (s->conf->smtp.quota_permanent)
			smtp_reply(s, 552, "5.2.2 Error: mailbox full");
		else
			smtp_reply(s, 452, "4.2.2 Error: mailbox full, try again later");
	} else {
		log_error("%s: local delivery failed: %s", t->queue_id, store_strerror(result));
		smtp_reply(s, 451, "4.3.0 Error: local delivery failed, try again later");
	}
	txn_done(s);
out:
	free(j->rcpts);
	free(j->grace);
	free(j);
}

void smtp_deliver(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	if (s->policy != NULL && s->policy->discard) {
		/* a content filter discarded it (logged there): accepted, delivered nowhere */
		s->policy->discard = false;
		s->queued++;
		smtp_reply(s, 250, "2.0.0 Ok: queued as %s", t->queue_id);
		log_info_as("qmgr", "%s: removed", t->queue_id);
		txn_done(s);
		return;
	}
	off_t size = lseek(t->fd, 0, SEEK_END);
	char pm[SMTP_MSGID_LOG_MAX + 1], pf[SMTP_PATH_MAX + 1], pe[SMTP_ENVID_MAX + 1];
	if (t->msgid_len > 0)
		log_info_as("cleanup", "%s: message-id=%s", t->queue_id,
			 log_printable(pm, sizeof(pm), t->msgid, t->msgid_len));
	if (t->n_copies > 0)
		log_info_as("qmgr", "%s: from=<%s>, size=%lld, nrcpt=%u%s%s%s%s", t->queue_id,
		 log_printable(pf, sizeof(pf), t->from, strlen(t->from)), (long long)size,
		 t->rcpt_accepted, t->envid != NULL ? ", envid=" : "",
		 t->envid != NULL ? log_printable(pe, sizeof(pe), t->envid, strlen(t->envid)) : "",
		 t->ret == 1 ? ", ret=FULL" : t->ret == 2 ? ", ret=HDRS" : "",
		 t->smtputf8 ? ", smtputf8" : "");

	struct deliver_job *j = x_calloc(1, sizeof(*j));
	j->s = s;
	j->store = service_store(s->svc);
	j->body.path = t->spool_path;
	j->body.len = size > 0 ? (size_t)size : 0;
	j->from = t->from;
	j->n = t->n_copies;
	j->outbound = t->n_exts > 0;
	if (j->outbound && t->n_copies > 0) {
		t->out_path = pool_printf(t->pool, "%s.out", t->spool_path);
		j->spool_path = t->spool_path;
		j->out_path = t->out_path;
		j->skip = t->local_hdr_len;
	}
	j->conf = s->conf;
	j->copies = t->copies;
	j->queue_id = t->queue_id;
	j->envid = t->envid;
	j->arrival = (int64_t)t->start.tv_sec;
	j->message_path = t->spool_path;
	j->local_hdr_len = t->local_hdr_len;
	j->rcpts = x_calloc(j->n, sizeof(*j->rcpts));
	j->grace = x_calloc(j->n, sizeof(*j->grace));
	for (size_t i = 0; i < j->n; i++) {
		j->rcpts[i].user = t->copies[i].mailbox->address;
		j->rcpts[i].mailbox = "INBOX";
		j->rcpts[i].env_to = t->copies[i].env_to;
		j->rcpts[i].quota = t->copies[i].mailbox->quota;
	}
	smtp_session_wait(s);
	s->busy++;
	if (store_async(service_loop(s->svc), deliver_work, deliver_done, j) != 0) {
		s->busy--;
		free(j->rcpts);
		free(j->grace);
		free(j);
		smtp_reply(s, 451, "4.3.0 Error: local delivery failed, try again later");
		smtp_txn_reset(s);
		smtp_enter_state(s, SMTP_STATE_HELO);
		smtp_session_resume(s);
	}
}
