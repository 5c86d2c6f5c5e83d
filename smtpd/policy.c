/* policy.c — the policy chain: the check table, running it stage by stage, verdicts. */
#include "smtpd/policy.h"
#include "smtpd/policy-checks.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pool.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STAGE(x) (1u << (x))

/* The chain, in order. Relay protection and access lists first; then the
 * anti-spam checks, cheapest first. */
static const struct policy_check checks[] = {
	{ "listener_access", STAGE(POLICY_CONNECT), 0, policy_listener_access },
	{ "rate", STAGE(POLICY_CONNECT) | STAGE(POLICY_MAIL) | STAGE(POLICY_RCPT), 0,
	  policy_rate_limit },   /* early: counted before the costly checks */
	{ "whitehost", STAGE(POLICY_CONNECT) | STAGE(POLICY_HELO), 0, policy_whitehost },
	{ "lists", STAGE(POLICY_HELO) | STAGE(POLICY_MAIL) | STAGE(POLICY_RCPT) | STAGE(POLICY_DATA),
	  0, policy_lists },   /* whitelists set trust; blacklists check it themselves */
	{ "helo", STAGE(POLICY_MAIL), POLICY_ANTISPAM, policy_helo_checks },
	{ "rbl", STAGE(POLICY_RCPT), POLICY_ANTISPAM, policy_rbl },   /* before greylist */
	{ "spf", STAGE(POLICY_MAIL) | STAGE(POLICY_RCPT), POLICY_ANTISPAM, policy_spf },   /* before greylist */
	{ "greylist", STAGE(POLICY_RCPT), POLICY_ANTISPAM, policy_greylist },
	{ "content_filter", STAGE(POLICY_DATA), POLICY_ANTISPAM, policy_content_filter },
};

static const char *const stage_names[POLICY_STAGE_COUNT] = {
	[POLICY_CONNECT] = "CONNECT", [POLICY_HELO] = "EHLO", [POLICY_MAIL] = "MAIL",
	[POLICY_RCPT] = "RCPT", [POLICY_DATA] = "END-OF-MESSAGE",
};

struct policy_session *policy_session(struct smtp_session *s)
{
	if (s->policy == NULL)
		s->policy = x_calloc(1, sizeof(*s->policy));
	return s->policy;
}

void policy_session_free(struct smtp_session *s)
{
	if (s->policy != NULL)
		policy_rbl_free(s->policy);
	free(s->policy);
	s->policy = NULL;
}

bool policy_trusted(const struct smtp_session *s)
{
	const struct policy_session *p = s->policy;
	return smtp_relay_allowed(s) || (p != NULL && (p->whitehost || p->helo_whitelisted ||
						       p->sender_whitelisted || p->rcpt_whitelisted));
}

void policy_reject(struct policy_request *r, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->reply, sizeof(r->reply), fmt, ap);
	va_end(ap);
	r->code = code;
}

void policy_add_header(struct smtp_session *s, const char *fmt, ...)
{
	struct smtp_txn *t = s->txn;
	if (t == NULL)
		return;
	char text[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(text)) {
		log_warn("%s: policy header too long, not added", s->id);
		return;
	}
	struct policy_header *h = pool_alloc(t->pool, sizeof(*h));
	h->text = pool_strdup(t->pool, text);
	h->next = NULL;
	struct policy_header **tail = &t->policy_headers;
	while (*tail != NULL)
		tail = &(*tail)->next;
	*tail = h;
}

void policy_log_reject(struct smtp_session *s, const struct policy_request *r)
{
	char from[SMTP_PATH_MAX + 1] = "", to[SMTP_PATH_MAX + 1] = "", reply[POLICY_REPLY_MAX];
	const struct smtp_txn *t = s->txn;
	if (t != NULL)
		log_printable(from, sizeof(from), t->from, strlen(t->from));
	/* END-OF-MESSAGE names the first recipient, as Postfix's cleanup rejects do */
	const char *rcpt = r->rcpt != NULL ? r->rcpt :
		r->stage == POLICY_DATA && t != NULL ? t->first_rcpt : NULL;
	if (rcpt != NULL)
		log_printable(to, sizeof(to), rcpt, strlen(rcpt));
	log_printable(reply, sizeof(reply), r->reply, strlen(r->reply));
	const char *qid = t != NULL && t->queue_id[0] != '\0' ? t->queue_id : "NOQUEUE";
	char helo[SMTP_HELO_MAX + 1];
	log_printable(helo, sizeof(helo), s->helo, strlen(s->helo));
	if (r->stage == POLICY_CONNECT)
		log_info("%s: reject: %s from %s[%s]: %d %s; proto=SMTP (policy=%s)", qid,
			 stage_names[r->stage], s->client_name, s->client_ip, r->code, reply,
			 r->check);
	else
		log_info("%s: reject: %s from %s[%s]: %d %s;%s%s%s%s%s%s proto=%s helo=<%s> "
			 "(policy=%s)", qid, stage_names[r->stage], s->client_name, s->client_ip,
			 r->code, reply, t != NULL ? " from=<" : "", t != NULL ? from : "",
			 t != NULL ? ">" : "", rcpt != NULL ? " to=<" : "",
			 rcpt != NULL ? to : "", rcpt != NULL ? ">" : "", smtp_proto_name(s),
			 helo, r->check);
}

static void finish(struct policy_request *r)
{
	struct smtp_session *s = r->s;
	if (r->waited && s->state == SMTP_STATE_QUIT) {
		/* timed out or shut down while the check ran: the client was told 421
		 * and the connection is closing; nothing more may be said or done */
		r->done(NULL, r);
		free(r);
		return;
	}
	if (r->code != 0) {
		policy_log_reject(s, r);
		metrics_count_reject(r->check);
	}
	if (r->waited)
		smtp_enter_state(s, r->saved_state);
	r->done(s, r);
	/* resume reading unless done() started another wait */
	if (r->waited && s->state != SMTP_STATE_WAIT && s->conn != NULL)
		smtp_session_resume(s);
	free(r);
}

static void run_chain(struct policy_request *r)
{
	struct smtp_session *s = r->s;
	size_t n = sizeof(checks) / sizeof(checks[0]);
	bool trusted = policy_trusted(s);
	while (r->next < n) {
		const struct policy_check *c = &checks[r->next++];
		if (!(c->stages & STAGE(r->stage)) || ((c->flags & POLICY_ANTISPAM) && trusted))
			continue;
		r->check = c->name;
		enum policy_action a = c->run(r);
		if (a == POLICY_PENDING) {
			if (!r->waited) {
				r->waited = true;
				r->saved_state = s->state;
				smtp_session_wait(s);
			}
			s->busy++;
			return;
		}
		if (a == POLICY_REJECT) {
			if (r->code == 0)
				policy_reject(r, 451, "4.3.0 Error: policy check %s failed", c->name);
			break;
		}
		if (a == POLICY_PASS)
			break;
		r->check = NULL;
		trusted = policy_trusted(s);   /* a whitehost check may have changed it */
	}
	if (r->code == 0)
		r->check = r->check != NULL ? r->check : "none";
	finish(r);
}

void policy_run(struct smtp_session *s, enum policy_stage stage, const char *rcpt,
		bool rcpt_local, void *ctx, policy_done_fn *done)
{
	struct policy_request *r = x_calloc(1, sizeof(*r));
	r->s = s;
	r->stage = stage;
	r->rcpt = rcpt;
	r->rcpt_local = rcpt_local;
	r->ctx = ctx;
	r->done = done;
	run_chain(r);
}

void policy_resume(struct policy_request *r, enum policy_action action)
{
	struct smtp_session *s = r->s;
	if (smtp_session_unbusy(s)) {
		/* the client went away; the session is freed (or will be) */
		r->done(NULL, r);
		free(r);
		return;
	}
	if (action == POLICY_REJECT) {
		if (r->code == 0)
			policy_reject(r, 451, "4.3.0 Error: policy check %s failed", r->check);
		finish(r);
		return;
	}
	if (action == POLICY_PASS) {
		finish(r);
		return;
	}
	r->check = NULL;
	run_chain(r);
}
