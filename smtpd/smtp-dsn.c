/* smtp-dsn.c — "delivered" DSNs (RFC 3461 5.2.2) for local copies whose RCPT asked
 * NOTIFY=SUCCESS. The copy is final once store_deliver has committed, so the report
 * is built right then (on the thread pool) and queued to the envelope sender before
 * smtpd answers 250: the client's acknowledgement covers the report too. ENVID and
 * ORCPT come back in it, as RFC 3461 4.4 and 4.2 ask. */
#include "smtpd/smtp-session.h"
#include "smtpd/queue.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads up to OUT_BOUNCE_HEADERS_MAX bytes of the message (after skip). */
static char *read_head(const char *path, size_t skip, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	char *buf = x_malloc(OUT_BOUNCE_HEADERS_MAX + 1);
	size_t len = 0;
	while (len < OUT_BOUNCE_HEADERS_MAX) {
		ssize_t n = pread(fd, buf + len, OUT_BOUNCE_HEADERS_MAX - len, (off_t)(skip + len));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*len_r = len;
	return buf;
}

void smtp_dsn_delivered(struct store *store, struct warren_config *conf,
			const struct smtp_dsn_request *req)
{
	if (req->from[0] == '\0' || req->n == 0)
		return;   /* the null sender gets no report (RFC 3461 6.2) */
	struct qdelivery d;
	memset(&d, 0, sizeof(d));
	d.conf = conf;
	struct queue_msg *m = &d.msg;
	snprintf(m->id, sizeof(m->id), "%s", req->queue_id);
	snprintf(m->from, sizeof(m->from), "%s", req->from);
	if (req->envid != NULL)
		snprintf(m->envid, sizeof(m->envid), "%s", req->envid);
	m->created = req->arrival;
	m->ret = QUEUE_RET_HDRS;    /* RFC 3461 4.3: success reports carry headers only */
	m->n_rcpts = req->n;
	m->rcpts = x_calloc(req->n, sizeof(*m->rcpts));
	bool *which = x_calloc(req->n, sizeof(bool));
	int64_t now = (int64_t)time(NULL);
	for (size_t i = 0; i < req->n; i++) {
		struct queue_rcpt *r = &m->rcpts[i];
		snprintf(r->addr, sizeof(r->addr), "%s", req->rcpts[i].addr);
		if (req->rcpts[i].orcpt != NULL)
			snprintf(r->orcpt, sizeof(r->orcpt), "%s", req->rcpts[i].orcpt);
		snprintf(r->status, sizeof(r->status), "2.0.0");
		snprintf(r->reply, sizeof(r->reply), "delivered to mailbox");
		snprintf(r->remote, sizeof(r->remote), "local");
		r->state = QUEUE_RCPT_DELIVERED;
		r->last_attempt = now;
		which[i] = true;
	}
	d.body = read_head(req->spool_path, req->skip, &d.len);
	if (d.body == NULL) {
		log_error("%s: cannot read the message for its delivery report: %s", req->queue_id,
			  strerror(errno));
		goto out;
	}
	size_t len;
	char *report = out_bounce_build(&d, which, "delivered", &len);
	struct queue_msg b;
	memset(&b, 0, sizeof(b));
	b.flags = QUEUE_F_BOUNCE;
	snprintf(b.origin, sizeof(b.origin), "bounce %s", req->queue_id);
	b.n_rcpts = 1;
	b.rcpts = x_calloc(1, sizeof(*b.rcpts));
	snprintf(b.rcpts[0].addr, sizeof(b.rcpts[0].addr), "%s", req->from);
	b.rcpts[0].notify = QUEUE_NOTIFY_NEVER;
	struct store_body body = { report, len, NULL };
	int ret = queue_add(store, NULL, &body, &b);
	if (ret == 0) {
		metrics_count(METRIC_NOTICES);
		log_info_as("bounce", "%s: sender delivery status notification: %s", req->queue_id,
			    b.id);
		log_info_as("qmgr", "%s: from=<>, size=%zu, nrcpt=1 (queue active)", b.id, len);
	} else {
		log_error("%s: cannot queue a delivery report: %s", req->queue_id,
			  store_strerror(ret));
	}
	queue_msg_free(&b);
	free(report);
out:
	free(d.body);
	free(which);
	free(m->rcpts);
}
