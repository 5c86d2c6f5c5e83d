/* policy-rate.c — rate limits (issue #5 item 9), counted in the store (storage/kv.h,
 * space "rate") so that every smtpd process, and an smtpd restarted, sees the same
 * counts:
 *   connections per client address per rate.connection_window (CONNECT: the
 *     greeting is 421 4.7.0, then the connection closes);
 *   transactions per authenticated user per rate.user_window (MAIL: 451 4.7.1);
 *   recipients per authenticated user per rate.user_window (RCPT: 452 4.5.3).
 * Each count is a kv_add() in a fixed window from the first event; the store
 * call blocks, so it runs with store_async() and the chain resumes in its done
 * callback. Refused attempts count too (a client hammering stays refused until
 * the window ends). Clients in rate.exempt_networks are never counted.
 * An authenticated user's domain may set its own messages_per_user,
 * recipients_per_user and user_window (rate { } inside domain { }); its users
 * are counted against those (docs/policy.md "Per-domain overrides").
 * Logins that fail (AUTH) are counted by service/login.c (security { }), and
 * concurrent connections per address by the listener (max_connections_per_ip):
 * see docs/policy.md.
 */
#include "smtpd/policy-checks.h"
#include "common/log.h"
#include "common/pool.h"
#include "storage/kv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RATE_SPACE "rate"

enum rate_kind { RATE_CONN, RATE_MSG, RATE_RCPT };

struct rate_job {
	struct policy_request *r;
	struct store *store;
	enum rate_kind kind;
	char key[KV_KEY_MAX + 1];
	unsigned limit;
	unsigned window;
	struct kv_rec rec;
};

static int rate_work(void *arg)
{
	struct rate_job *j = arg;
	return kv_add(j->store, RATE_SPACE, j->key, 1, (int64_t)time(NULL), j->window, &j->rec);
}

static void rate_done(void *arg, int result)
{
	struct rate_job *j = arg;
	struct policy_request *r = j->r;
	struct smtp_session *s = r->s;
	if (s->closed || result != STORE_OK || j->rec.value <= (int64_t)j->limit) {
		/* a store problem lets the client in: a limit is no reason to lose mail */
		if (result != STORE_OK && !s->closed)
			log_warn("%s: rate limit %s not counted: %s", s->id, j->key,
				 store_strerror(result));
		free(j);
		policy_resume(r, POLICY_NEXT);
		return;
	}
	const char *user = s->auth_user != NULL ? s->auth_user->address : "";
	switch (j->kind) {
	case RATE_CONN:
		policy_reject(r, 421, "4.7.0 %s Error: too many connections from %s",
			      s->conf->hostname, s->client_ip);
		r->disconnect = true;
		break;
	case RATE_MSG:
		policy_reject(r, 451, "4.7.1 Error: too much mail from %s, try again later", user);
		break;
	case RATE_RCPT:
		policy_reject(r, 452, "4.5.3 Error: too many recipients from %s, try again later",
			      user);
		break;
	}
	free(j);
	policy_resume(r, POLICY_REJECT);
}

static enum policy_action count(struct policy_request *r, enum rate_kind kind, const char *what,
				unsigned limit, unsigned window)
{
	struct smtp_session *s = r->s;
	struct rate_job *j = x_calloc(1, sizeof(*j));
	j->r = r;
	j->store = service_store(s->svc);
	j->kind = kind;
	j->limit = limit;
	j->window = window;
	snprintf(j->key, sizeof(j->key), "%s/%s",
		 kind == RATE_CONN ? "conn" : kind == RATE_MSG ? "msg" : "rcpt", what);
	if (store_async(service_loop(s->svc), rate_work, rate_done, j) != 0) {
		free(j);
		return POLICY_NEXT;
	}
	return POLICY_PENDING;
}

static bool exempt(const struct smtp_session *s)
{
	const struct conf_rate *rt = &s->conf->rate;
	return smtp_net_match(s->client_ip, rt->exempt_networks, rt->n_exempt_networks);
}

enum policy_action policy_rate_limit(struct policy_request *r)
{
	struct smtp_session *s = r->s;
	const struct conf_rate *rt = &s->conf->rate;
	/* the authenticated user's domain decides the per-user limits */
	const struct conf_rate *ur = s->auth_user != NULL && s->auth_user->domain != NULL &&
		s->auth_user->domain->rate != NULL ? s->auth_user->domain->rate : rt;
	switch (r->stage) {
	case POLICY_CONNECT:
		if (rt->connections_per_ip == 0 || exempt(s))
			return POLICY_NEXT;
		return count(r, RATE_CONN, s->client_ip, rt->connections_per_ip,
			     rt->connection_window_s);
	case POLICY_MAIL:
		if (s->auth_user == NULL || ur->messages_per_user == 0 || exempt(s))
			return POLICY_NEXT;
		return count(r, RATE_MSG, s->auth_user->address, ur->messages_per_user,
			     ur->user_window_s);
	case POLICY_RCPT:
		if (s->auth_user == NULL || ur->recipients_per_user == 0 || exempt(s))
			return POLICY_NEXT;
		return count(r, RATE_RCPT, s->auth_user->address, ur->recipients_per_user,
			     ur->user_window_s);
	default:
		return POLICY_NEXT;
	}
}
