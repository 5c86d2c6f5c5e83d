/* login.c — the one login path of smtpd, imapd and pop3d.
 *
 * A login goes through these steps, each off the loop thread:
 *   1. LOGIN_BAN_CHECK: is the client address (or the mailbox) blocked after too
 *      many failures (security { }, records in the store's "ban" space)? A blocked
 *      login is answered as a wrong password, whatever the password: the check
 *      runs against no hash, so it costs and is delayed like any failure and
 *      tells a guesser nothing.
 *   2. LOGIN_VERIFY: the password, against the domain's backend (local hash or
 *      PAM) on the auth pool, which also holds failures back (auth.failure_delay).
 *   3. LOGIN_COUNT (after a failure): the failure is counted per address and per
 *      mailbox in the store ("authfail" space, a window of
 *      security.failure_window), shared by every daemon; reaching
 *      max_ip_failures / max_user_failures writes a block for block_time.
 *      LOGIN_DELAY: the reply waits until auth.failure_delay doubled per failure
 *      of the address in the store (all daemons), up to auth.failure_delay_max,
 *      has passed since the password check began (the auth pool's own delay
 *      counts the failures this daemon saw).
 *   4. LOGIN_ACCESS (after a right password): the domain's and mailbox's access
 *      rules (common/access.h). They are checked only once the password is
 *      right, as Dovecot checks allow_nets after the passdb lookup: a client
 *      without the password gets the answer of a wrong password, so the rules
 *      reveal nothing to it; one with the password gets a refusal it can act on
 *      (AUTH_DENIED / AUTH_DISABLED).
 * The callback runs on the loop thread with the outcome; every refusal is logged
 * naming the rule.
 */
#include "service/service.h"
#include "common/access.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pool.h"
#include "storage/kv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* kv spaces shared with `warrenctl ban` (conf/warrenctl-ban.c). */
#define LOGIN_BAN_SPACE "ban"
#define LOGIN_FAIL_SPACE "authfail"
/* ... and with `warrenctl user show` (conf/warrenctl-admin.c). */
#define LOGIN_LAST_SPACE "lastlogin"
/* How often a daemon removes expired policy records (kv_expire), at most. */
#define LOGIN_EXPIRE_INTERVAL_S 600

enum login_state {
	LOGIN_BAN_CHECK,
	LOGIN_VERIFY,
	LOGIN_COUNT,
	LOGIN_ACCESS,
	LOGIN_DELAY,          /* the timer runs */
	LOGIN_DELAY_CLOSING,  /* the timer is being closed */
};

/* Loop thread only: when this process last ran kv_expire. */
static int64_t login_last_expire;

struct service_login {
	struct service *svc;
	struct warren_config *conf;          /* a reference: store jobs read it */
	struct auth_job *job;
	const struct conf_mailbox *mailbox;
	service_login_callback *cb;
	void *ctx;
	enum login_state state;
	bool cancelled;                      /* while a store job runs: its end frees */
	bool guarded;                        /* brute-force counting applies */
	bool expire;                         /* LOGIN_COUNT: also run kv_expire */
	bool logged;                         /* the failure's line is written */
	uint64_t verify_started_ms;          /* uv_now when the password check began */
	uv_timer_t timer;                    /* LOGIN_DELAY */
	char *password;                      /* until the verification has a copy */
	/* the store jobs' inputs and outputs */
	int64_t now;
	int64_t ban_left;                    /* LOGIN_BAN_CHECK: seconds, 0: none */
	const char *ban_what;                /* "address" or "mailbox" */
	int64_t ip_failures, user_failures;  /* LOGIN_COUNT: counts after this one */
	bool ip_blocked, user_blocked;       /* LOGIN_COUNT: this failure blocked them */
	enum access_verdict verdict;
	char rule[ACCESS_RULE_MAX];
	char login[256];
	char client_ip[64];
	char protocol[16];
};

static void fail(struct service_login *login);

static void login_free(struct service_login *login)
{
	if (login->password != NULL) {
		explicit_bzero(login->password, strlen(login->password));
		free(login->password);
	}
	conf_unref(&login->conf);
	free(login);
}

static const char *printable_login(const struct service_login *login, char *buf, size_t size)
{
	return log_printable(buf, size, login->login, strlen(login->login));
}

/* The last successful login of a mailbox (kv space LOGIN_LAST_SPACE: the time,
 * and "protocol client-address"), for `warrenctl user show`. Written without a
 * synchronous flush and without waiting for it: it is information, not state. */
struct last_login_job {
	struct store *store;
	int64_t now;
	char address[320];
	char text[KV_TEXT_MAX + 1];
};

static int last_login_work(void *arg)
{
	struct last_login_job *j = arg;
	struct kv_rec rec = { .value = j->now, .first = j->now, .last = j->now };
	snprintf(rec.text, sizeof(rec.text), "%s", j->text);
	return kv_put(j->store, LOGIN_LAST_SPACE, j->address, j->now, &rec);
}

static void last_login_done(void *arg, int result)
{
	struct last_login_job *j = arg;
	if (result != STORE_OK)
		log_debug("last login of %s not recorded: %s", j->address, store_strerror(result));
	free(j);
}

static void record_last_login(struct service_login *login, const struct conf_mailbox *mb)
{
	struct store *store = service_store(login->svc);
	if (store == NULL)
		return;
	struct last_login_job *j = x_calloc(1, sizeof(*j));
	j->store = store;
	j->now = (int64_t)time(NULL);
	snprintf(j->address, sizeof(j->address), "%s", mb->address);
	snprintf(j->text, sizeof(j->text), "%s %s", login->protocol, login->client_ip);
	if (store_async(service_loop(login->svc), last_login_work, last_login_done, j) != 0)
		free(j);
}

/* The outcome: logged, the memory gone, then the callback. */
static void finish(struct service_login *login, enum auth_result result)
{
	const struct conf_mailbox *mailbox = result == AUTH_OK ? login->mailbox : NULL;
	if (result == AUTH_OK && mailbox == NULL)
		result = AUTH_FAIL;
	char printable[300];
	printable_login(login, printable, sizeof(printable));
	metrics_count_auth(login->protocol, result == AUTH_OK ? 0 : result == AUTH_FAIL ? 1 :
			   result == AUTH_TEMPFAIL ? 3 : 2);
	switch (result) {
	case AUTH_OK:
		log_info("%s login: user=<%s>, rip=%s", login->protocol, mailbox->address,
			 login->client_ip);
		record_last_login(login, mailbox);
		break;
	case AUTH_FAIL:
		if (login->ban_left == 0 && !login->logged)
			log_warn("%s authentication failed: user=<%s>, rip=%s", login->protocol,
				 printable, login->client_ip);
		break;
	case AUTH_DENIED:
	case AUTH_DISABLED:
		log_warn("%s login refused: user=<%s>, rip=%s, rule=%s", login->protocol,
			 login->mailbox->address, login->client_ip, login->rule);
		break;
	default:
		log_warn("%s authentication temporarily unavailable: user=<%s>, rip=%s",
			 login->protocol, printable, login->client_ip);
		break;
	}
	service_login_callback *cb = login->cb;
	void *cb_ctx = login->ctx;
	login_free(login);
	cb(result, mailbox, cb_ctx);
}

static enum access_service access_service_of(const char *protocol)
{
	if (strcmp(protocol, "imap") == 0)
		return ACCESS_IMAP;
	if (strcmp(protocol, "pop3") == 0)
		return ACCESS_POP3;
	return ACCESS_SUBMISSION;
}

/* ---- 4. access rules ---- */

static int access_work(void *arg)
{
	struct service_login *login = arg;
	const struct conf_mailbox *mb = login->mailbox;
	login->verdict = access_check(&mb->domain->access, mb->domain->name, &mb->access,
				      mb->address, login->client_ip,
				      access_service_of(login->protocol), login->now,
				      login->rule, sizeof(login->rule));
	return STORE_OK;
}

static void access_done(void *arg, int result)
{
	(void)result;
	struct service_login *login = arg;
	if (login->cancelled) {
		login_free(login);
		return;
	}
	if (login->verdict != ACCESS_ALLOW && login->conf->security.hide_refusals) {
		/* as a wrong password: the same reply, delay and counting */
		log_warn("%s login refused: user=<%s>, rip=%s, rule=%s (answered as a wrong "
			 "password)", login->protocol, login->mailbox->address, login->client_ip,
			 login->rule);
		login->logged = true;
		fail(login);
		return;
	}
	switch (login->verdict) {
	case ACCESS_ALLOW:
		finish(login, AUTH_OK);
		break;
	case ACCESS_SERVICE_OFF:
		finish(login, AUTH_DISABLED);
		break;
	default:
		finish(login, AUTH_DENIED);
		break;
	}
}

/* ---- 3. counting failures ---- */

static int block(struct store *store, const char *key, int64_t now, unsigned seconds,
		 int64_t failures)
{
	struct kv_rec rec = { .value = failures, .expires = now + seconds };
	snprintf(rec.text, sizeof(rec.text), "%lld failed logins", (long long)failures);
	int ret = kv_put(store, LOGIN_BAN_SPACE, key, now, &rec);
	if (ret == STORE_OK)
		kv_del(store, LOGIN_FAIL_SPACE, key);   /* counting starts afresh after it */
	return ret;
}

static int count_work(void *arg)
{
	struct service_login *login = arg;
	const struct conf_security *sec = &login->conf->security;
	struct store *store = service_store(login->svc);
	struct kv_rec rec;
	int ret = STORE_OK;
	if (sec->max_ip_failures > 0) {
		ret = kv_add(store, LOGIN_FAIL_SPACE, login->client_ip, 1, login->now,
			     sec->failure_window_s, &rec);
		if (ret != STORE_OK)
			return ret;
		login->ip_failures = rec.value;
		if (rec.value >= sec->max_ip_failures) {
			ret = block(store, login->client_ip, login->now, sec->block_time_s, rec.value);
			login->ip_blocked = ret == STORE_OK;
		}
	}
	if (login->expire) {
		unsigned removed = 0;
		kv_expire(store, login->now, &removed);
	}
	if (sec->max_user_failures > 0 && login->mailbox != NULL) {
		const char *address = login->mailbox->address;
		ret = kv_add(store, LOGIN_FAIL_SPACE, address, 1, login->now,
			     sec->failure_window_s, &rec);
		if (ret != STORE_OK)
			return ret;
		login->user_failures = rec.value;
		if (rec.value >= sec->max_user_failures) {
			ret = block(store, address, login->now, sec->block_time_s, rec.value);
			login->user_blocked = ret == STORE_OK;
		}
	}
	return ret;
}

static void delay_closed(uv_handle_t *handle)
{
	struct service_login *login = handle->data;
	if (login->cancelled)
		login_free(login);
	else
		finish(login, AUTH_FAIL);
}

static void delay_over(uv_timer_t *timer)
{
	struct service_login *login = timer->data;
	login->state = LOGIN_DELAY_CLOSING;
	uv_close((uv_handle_t *)timer, delay_closed);
}

/* auth.failure_delay * 2^(failures - 1), at most failure_delay_max (never below
 * the first step), as the auth pool computes it for one daemon. */
static uint64_t shared_delay_ms(const struct warren_config *conf, int64_t failures)
{
	uint64_t delay = conf->auth.failure_delay_ms, max = conf->auth.failure_delay_max_ms;
	if (max < delay)
		max = delay;
	for (int64_t i = 1; i < failures && delay < max; i++)
		delay *= 2;
	return delay < max ? delay : max;
}

/* The failure's reply, once the delay the address's failures in all daemons
 * call for has passed. */
static void hold_failure(struct service_login *login)
{
	uv_loop_t *loop = service_loop(login->svc);
	/* at least one failure's delay: a refusal answered as a failure got none
	 * from the auth pool (its password was right) */
	uint64_t target = shared_delay_ms(login->conf, login->ip_failures > 1 ?
					  login->ip_failures : 1);
	uint64_t elapsed = uv_now(loop) - login->verify_started_ms;
	if (target <= elapsed) {
		finish(login, AUTH_FAIL);
		return;
	}
	login->state = LOGIN_DELAY;
	uv_timer_init(loop, &login->timer);
	login->timer.data = login;
	uv_timer_start(&login->timer, delay_over, target - elapsed, 0);
}

static void count_done(void *arg, int result)
{
	struct service_login *login = arg;
	const struct conf_security *sec = &login->conf->security;
	/* logged now: the client may leave while the reply is held back */
	char printable[300];
	if (!login->logged)
		log_warn("%s authentication failed: user=<%s>, rip=%s", login->protocol,
			 printable_login(login, printable, sizeof(printable)), login->client_ip);
	login->logged = true;
	if (result != STORE_OK)
		log_warn("%s: cannot count a failed login of rip=%s: %s", login->protocol,
			 login->client_ip, store_strerror(result));
	if (login->ip_blocked)
		log_warn("%s: client %s blocked for %us after %lld failed logins "
			 "(security.max_ip_failures)", login->protocol, login->client_ip,
			 sec->block_time_s, (long long)login->ip_failures);
	if (login->user_blocked)
		log_warn("%s: logins of %s blocked for %us after %lld failed logins "
			 "(security.max_user_failures)", login->protocol, login->mailbox->address,
			 sec->block_time_s, (long long)login->user_failures);
	if (login->cancelled) {
		login_free(login);
		return;
	}
	hold_failure(login);
}

/* ---- 2. the password ---- */

static void run_store_job(struct service_login *login, enum login_state state,
			  int (*work)(void *arg), void (*done)(void *arg, int result))
{
	login->state = state;
	login->now = (int64_t)time(NULL);
	if (store_async(service_loop(login->svc), work, done, login) != 0)
		done(login, STORE_EIO);
}

/* A failure (or a refusal answered as one): counted when guarded, then held. */
static void fail(struct service_login *login)
{
	if (!login->guarded) {
		hold_failure(login);
		return;
	}
	int64_t now = (int64_t)time(NULL);
	if (now - login_last_expire >= LOGIN_EXPIRE_INTERVAL_S) {
		login_last_expire = now;
		login->expire = true;
	}
	run_store_job(login, LOGIN_COUNT, count_work, count_done);
}

static void verify_done(enum auth_result result, void *ctx)
{
	struct service_login *login = ctx;
	login->job = NULL;
	if (result == AUTH_OK && login->mailbox != NULL && login->ban_left == 0) {
		const struct conf_mailbox *mb = login->mailbox;
		if (access_rules_empty(&mb->access) && access_rules_empty(&mb->domain->access)) {
			finish(login, AUTH_OK);
			return;
		}
		run_store_job(login, LOGIN_ACCESS, access_work, access_done);
		return;
	}
	if (result == AUTH_FAIL && login->guarded && login->ban_left == 0) {
		fail(login);
		return;
	}
	finish(login, result == AUTH_OK ? AUTH_FAIL : result);
}

static void start_verify(struct service_login *login)
{
	login->state = LOGIN_VERIFY;
	login->verify_started_ms = uv_now(service_loop(login->svc));
	struct auth_check check = {
		.backend = AUTH_BACKEND_HASH,
		.login = login->login,
		.password = login->password,
		.hash = NULL,        /* unknown user or blocked: still costs a hash */
		.client_ip = login->client_ip,
	};
	char pam_user[512];
	const struct conf_mailbox *mb = login->mailbox;
	if (login->ban_left > 0) {
		/* blocked: answered as a failure, after the same cost and delay */
	} else if (mb != NULL && mb->domain->auth == CONF_AUTH_PAM) {
		check.backend = AUTH_BACKEND_PAM;
		check.pam_service = mb->domain->pam_service;
		snprintf(pam_user, sizeof(pam_user), "%s",
			 mb->domain->pam_user == CONF_PAM_ADDRESS ? mb->address : mb->name);
		check.pam_user = pam_user;
	} else if (mb != NULL) {
		check.hash = mb->password;
	}
	login->job = auth_verify(service_auth(login->svc), &check, verify_done, login);
	explicit_bzero(login->password, strlen(login->password));
	free(login->password);
	login->password = NULL;
}

/* ---- 1. blocks ---- */

static int ban_work(void *arg)
{
	struct service_login *login = arg;
	struct store *store = service_store(login->svc);
	struct kv_rec rec;
	int ret = kv_get(store, LOGIN_BAN_SPACE, login->client_ip, login->now, &rec);
	if (ret == STORE_OK) {
		login->ban_what = "address";
	} else if (ret == STORE_ENOTFOUND && login->mailbox != NULL) {
		ret = kv_get(store, LOGIN_BAN_SPACE, login->mailbox->address, login->now, &rec);
		if (ret == STORE_OK)
			login->ban_what = "mailbox";
	}
	if (ret == STORE_OK) {
		int64_t left = rec.expires == 0 ? INT64_MAX : rec.expires - login->now;
		login->ban_left = left > 0 ? left : 1;
	}
	return ret == STORE_ENOTFOUND ? STORE_OK : ret;
}

static void ban_done(void *arg, int result)
{
	struct service_login *login = arg;
	if (login->cancelled) {
		login_free(login);
		return;
	}
	if (result != STORE_OK)    /* the store cannot tell: let the password decide */
		log_warn("%s: cannot look up blocks of rip=%s: %s", login->protocol,
			 login->client_ip, store_strerror(result));
	if (login->ban_left > 0) {
		char printable[300];
		printable_login(login, printable, sizeof(printable));
		if (login->ban_left == INT64_MAX)
			log_warn("%s login refused: user=<%s>, rip=%s, rule=blocked %s (until "
				 "removed)", login->protocol, printable, login->client_ip,
				 login->ban_what);
		else
			log_warn("%s login refused: user=<%s>, rip=%s, rule=blocked %s (for "
				 "another %llds)", login->protocol, printable, login->client_ip,
				 login->ban_what, (long long)login->ban_left);
	}
	start_verify(login);
}

struct service_login *service_login(struct service *svc, const struct warren_config *conf,
				    const char *name, const char *password,
				    const char *client_ip, const char *protocol,
				    service_login_callback *cb, void *ctx)
{
	struct service_login *login = x_calloc(1, sizeof(*login));
	login->svc = svc;
	login->conf = conf_ref((struct warren_config *)conf);
	snprintf(login->login, sizeof(login->login), "%s", name);
	snprintf(login->client_ip, sizeof(login->client_ip), "%s", client_ip);
	snprintf(login->protocol, sizeof(login->protocol), "%s", protocol);
	login->password = x_strdup(password);
	login->cb = cb;
	login->ctx = ctx;
	login->mailbox = conf_find_login(conf, name);

	const struct conf_security *sec = &conf->security;
	login->guarded = (sec->max_ip_failures > 0 || sec->max_user_failures > 0) &&
		!access_net_match(client_ip, sec->exempt_networks, sec->n_exempt_networks);
	if (login->guarded)
		run_store_job(login, LOGIN_BAN_CHECK, ban_work, ban_done);
	else
		start_verify(login);
	return login;
}

void service_login_cancel(struct service_login *login)
{
	if (login == NULL)
		return;
	if (login->state == LOGIN_DELAY) {
		log_debug("%s: the client left while its failed login was held back (rip=%s)",
			  login->protocol, login->client_ip);
		uv_timer_stop(&login->timer);
		login->state = LOGIN_DELAY_CLOSING;
		login->cancelled = true;     /* delay_closed frees */
		uv_close((uv_handle_t *)&login->timer, delay_closed);
		return;
	}
	if (login->state != LOGIN_VERIFY) {
		login->cancelled = true;     /* a store job or the timer's close: its end frees */
		return;
	}
	auth_cancel(login->job);
	login_free(login);
}
