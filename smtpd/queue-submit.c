/* queue-submit.c — outbound_submit(): queue a message durably, then call back. */
#include "smtpd/queue.h"
#include "common/log.h"
#include "common/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct submit {
	struct service *svc;
	struct queue_msg msg;
	char *spool_path;
	char *data;
	size_t len;
	outbound_callback *cb;
	void *ctx;
};

static int submit_work(void *arg)
{
	struct submit *s = arg;
	struct store_body body = { s->data, s->len, s->spool_path };
	return queue_add(service_store(s->svc), NULL, &body, &s->msg);
}

static void submit_done(void *arg, int result)
{
	struct submit *s = arg;
	if (result == 0) {
		log_info_as("qmgr", "%s: from=<%s>, size=%llu, nrcpt=%zu (queue active)", s->msg.id,
			 s->msg.from, (unsigned long long)s->msg.size, s->msg.n_rcpts);
		queue_runner_kick(queue_runner());
	} else {
		log_error("%s: cannot queue the message: %s", s->msg.id[0] ? s->msg.id : "NOQUEUE",
			  store_strerror(result));
	}
	if (s->cb != NULL)
		s->cb(result, s->msg.id, s->ctx);
	queue_msg_free(&s->msg);
	free(s->spool_path);
	free(s->data);
	free(s);
}

static bool id_usable(const char *id)
{
	if (id == NULL || id[0] == '\0' || strlen(id) >= QUEUE_ID_SIZE)
		return false;
	for (const char *p = id; *p != '\0'; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'F')))
			return false;
	return true;
}

int outbound_submit(struct service *svc, const struct outbound_msg *m,
		    outbound_callback *cb, void *ctx)
{
	if (m->n_rcpts == 0 || m->n_rcpts > QUEUE_RCPTS_MAX || m->from == NULL ||
	    (m->spool_path == NULL && m->data == NULL) || strlen(m->from) > QUEUE_ADDR_MAX)
		return -1;
	struct submit *s = x_calloc(1, sizeof(*s));
	s->svc = svc;
	s->cb = cb;
	s->ctx = ctx;
	if (id_usable(m->queue_id))
		snprintf(s->msg.id, sizeof(s->msg.id), "%s", m->queue_id);
	snprintf(s->msg.from, sizeof(s->msg.from), "%s", m->from);
	if (m->envid != NULL)
		snprintf(s->msg.envid, sizeof(s->msg.envid), "%s", m->envid);
	s->msg.ret = m->ret == 1 ? QUEUE_RET_FULL : m->ret == 2 ? QUEUE_RET_HDRS :
		QUEUE_RET_DEFAULT;
	s->msg.body = m->body == 1 ? QUEUE_BODY_8BITMIME : m->body == 2 ?
		QUEUE_BODY_BINARYMIME : QUEUE_BODY_7BIT;
	s->msg.smtputf8 = m->smtputf8;
	snprintf(s->msg.origin, sizeof(s->msg.origin), "smtpd");
	if (m->forwarded)
		s->msg.flags |= QUEUE_F_FORWARDED;
	s->msg.rcpts = x_calloc(m->n_rcpts, sizeof(*s->msg.rcpts));
	s->msg.n_rcpts = m->n_rcpts;
	for (size_t i = 0; i < m->n_rcpts; i++) {
		struct queue_rcpt *r = &s->msg.rcpts[i];
		if (strlen(m->rcpts[i].addr) > QUEUE_ADDR_MAX) {
			queue_msg_free(&s->msg);
			free(s);
			return -1;
		}
		snprintf(r->addr, sizeof(r->addr), "%s", m->rcpts[i].addr);
		if (m->rcpts[i].orcpt != NULL)
			snprintf(r->orcpt, sizeof(r->orcpt), "%s", m->rcpts[i].orcpt);
		r->notify = m->rcpts[i].notify;
		r->state = QUEUE_RCPT_PENDING;
	}
	if (m->spool_path != NULL)
		s->spool_path = x_strdup(m->spool_path);
	else {
		s->data = x_malloc(m->len + 1);
		memcpy(s->data, m->data, m->len);
		s->len = m->len;
	}
	if (store_async(service_loop(svc), submit_work, submit_done, s) != 0) {
		queue_msg_free(&s->msg);
		free(s->spool_path);
		free(s->data);
		free(s);
		return -1;
	}
	return 0;
}

bool outbound_srs_reverse(const struct warren_config *conf, const char *addr, char *out,
			  size_t size)
{
	return out_srs_reverse(conf, addr, (int64_t)time(NULL), out, size) == 0;
}
