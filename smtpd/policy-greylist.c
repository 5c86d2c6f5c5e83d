/* policy-greylist.c — greylisting at RCPT: a triplet (client network, envelope
 * sender, recipient) seen for the first time gets 451 4.7.1 and is remembered in
 * the store (storage/kv.h, space "grey", shared by every smtpd process); a retry
 * between greylist.delay and greylist.retry_window later passes, and the triplet
 * then passes at once for greylist.max_age after its last use.
 *
 * The client network is the /24 (IPv4) or /64 (IPv6) around the client; a sender
 * whose SPF passed in this transaction (policy-spf.c runs at MAIL, before us) is
 * keyed by the SPF-validated domain instead, so a big sender retrying from
 * another address of its pool is not greylisted again. After
 * greylist.auto_whitelist passed retries a client network skips greylisting for
 * greylist.auto_whitelist_time.
 *
 * Records:  "t|NET-OR-spf:DOMAIN|sender|rcpt"  value 0 waiting, 1 passed
 *           "w|NET"                            passed retries; whitelisted at N
 * Expired records are removed by kv_expire every greylist.expire_interval, in a
 * store job of its own that each smtpd process starts beside its next
 * greylisting job (no client waits for the walk).
 *
 * The recipient's domain decides (docs/policy.md "Per-domain overrides"): its
 * greylist { } block may turn greylisting on or off and change delay and
 * retry_window for its recipients; the other keys are the global ones. */
#include "smtpd/policy-checks.h"

#include "common/log.h"
#include "common/pool.h"
#include "conf/conf.h"
#include "storage/kv.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GREY_SPACE "grey"
/* "ffff:ffff:...:ffff/128" */
#define GREY_NET_MAX 64

enum grey_verdict {
	GREY_NEW,           /* first attempt: 451 */
	GREY_EARLY,         /* retried before the delay: 451 */
	GREY_RETRIED,       /* retried in the window: passes now */
	GREY_KNOWN,         /* passed before */
	GREY_WHITELISTED,   /* the client network is whitelisted */
};

struct grey_job {
	struct policy_request *r;
	struct store *store;
	char key[KV_KEY_MAX + 1];
	char white[GREY_NET_MAX + 3];   /* "w|NET" */
	int64_t now;
	unsigned delay, window, max_age, auto_n, auto_time;
	/* outputs */
	enum grey_verdict verdict;
	int64_t wait, waited, passes;
};

/* Loop thread only: when this process last removed expired records. */
static int64_t grey_last_expire;

/* The client's network "a.b.c.0/24" or "2001:db8:1:2::/64"; false if ip is not one. */
static bool client_network(const char *ip, unsigned v4, unsigned v6, char *out, size_t size)
{
	unsigned char a[16];
	int af = strchr(ip, ':') != NULL ? AF_INET6 : AF_INET;
	if (inet_pton(af, ip, a) != 1)
		return false;
	unsigned bits = af == AF_INET ? v4 : v6, bytes = af == AF_INET ? 4 : 16;
	for (unsigned i = 0; i < bytes; i++) {
		unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * i : 0;
		a[i] &= (unsigned char)(0xff00u >> keep);
	}
	char text[INET6_ADDRSTRLEN];
	if (inet_ntop(af, a, text, sizeof(text)) == NULL)
		return false;
	snprintf(out, size, "%s/%u", text, bits);
	return true;
}

/* key = "t|NET|sender|rcpt" in lower case; a longer one than KV_KEY_MAX becomes
 * "h|" and its SHA-256 in hex. */
static void triplet_key(char *key, size_t size, const char *net, const char *from,
			const char *rcpt)
{
	char buf[GREY_NET_MAX + SMTP_DOMAIN_MAX + 2 * SMTP_PATH_MAX + 16];
	int n = snprintf(buf, sizeof(buf), "t|%s|%s|%s", net, from, rcpt);
	for (char *p = buf; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	if (n > 0 && (size_t)n < size && (size_t)n <= KV_KEY_MAX) {
		memcpy(key, buf, (size_t)n + 1);
		return;
	}
	unsigned char md[32];
	unsigned len = 0;
	EVP_Digest(buf, strlen(buf), md, &len, EVP_sha256(), NULL);
	size_t o = (size_t)snprintf(key, size, "h|");
	for (unsigned i = 0; i < len && o + 2 < size; i++)
		o += (size_t)snprintf(key + o, size - o, "%02x", md[i]);
}

struct grey_expire {
	struct store *store;
	int64_t now;
	unsigned removed;
};

static int grey_expire_work(void *arg)
{
	struct grey_expire *x = arg;
	return kv_expire(x->store, x->now, &x->removed);
}

static void grey_expire_done(void *arg, int result)
{
	struct grey_expire *x = arg;
	if (result != STORE_OK)
		log_warn("greylist: removing expired records: %s", store_strerror(result));
	else if (x->removed > 0)
		log_info("greylist: %u expired record%s removed", x->removed,
			 x->removed == 1 ? "" : "s");
	free(x);
}

static int grey_work(void *arg)
{
	struct grey_job *j = arg;
	struct kv_rec rec;
	int ret;
	if (j->auto_n > 0) {
		ret = kv_get(j->store, GREY_SPACE, j->white, j->now, &rec);
		if (ret == STORE_OK && rec.value >= (int64_t)j->auto_n) {
			j->verdict = GREY_WHITELISTED;
			return STORE_OK;
		}
		if (ret != STORE_OK && ret != STORE_ENOTFOUND)
			return ret;
	}
	ret = kv_get(j->store, GREY_SPACE, j->key, j->now, &rec);
	if (ret == STORE_ENOTFOUND) {
		memset(&rec, 0, sizeof(rec));
		rec.expires = j->now + j->window;
		j->verdict = GREY_NEW;
		j->wait = j->delay;
		return kv_put(j->store, GREY_SPACE, j->key, j->now, &rec);
	}
	if (ret != STORE_OK)
		return ret;
	if (rec.value != 0) {
		j->verdict = GREY_KNOWN;
		rec.last = j->now;
		rec.expires = j->now + j->max_age;
		return kv_put(j->store, GREY_SPACE, j->key, j->now, &rec);
	}
	j->waited = j->now - rec.first;
	if (j->waited < (int64_t)j->delay) {
		j->verdict = GREY_EARLY;
		j->wait = (int64_t)j->delay - j->waited;
		return STORE_OK;
	}
	j->verdict = GREY_RETRIED;
	rec.value = 1;
	rec.last = j->now;
	rec.expires = j->now + j->max_age;
	if ((ret = kv_put(j->store, GREY_SPACE, j->key, j->now, &rec)) != STORE_OK)
		return ret;
	if (j->auto_n == 0)
		return STORE_OK;
	struct kv_rec w;
	if ((ret = kv_add(j->store, GREY_SPACE, j->white, 1, j->now, j->auto_time, &w)) != STORE_OK)
		return ret;
	j->passes = w.value;
	if (w.value == (int64_t)j->auto_n) {
		/* whitelisted for auto_whitelist_time from now */
		w.expires = j->now + j->auto_time;
		ret = kv_put(j->store, GREY_SPACE, j->white, j->now, &w);
	}
	return ret;
}

static void grey_done(void *arg, int ret)
{
	struct grey_job *j = arg;
	struct policy_request *r = j->r;
	struct smtp_session *s = r->s;
	enum policy_action verdict = POLICY_NEXT;
	if (s->closed) {
		free(j);
		policy_resume(r, POLICY_NEXT);
		return;
	}
	if (ret != STORE_OK) {
		log_warn("%s: greylist: store error %d; not greylisted", s->id, ret);
	} else if (j->verdict == GREY_NEW || j->verdict == GREY_EARLY) {
		policy_reject(r, 451, "4.7.1 <%s>: Recipient address rejected: Greylisted, try "
			      "again in %lld seconds", r->rcpt, (long long)j->wait);
		verdict = POLICY_REJECT;
	} else if (j->verdict == GREY_RETRIED) {
		log_info("%s: greylist: RCPT from %s[%s]: retry passed after %lld seconds "
			 "(%s)", s->id, s->client_name, s->client_ip, (long long)j->waited, j->key);
		if (j->auto_n > 0 && j->passes == (int64_t)j->auto_n)
			log_info("%s: greylist: client network %s whitelisted for %u seconds after "
				 "%lld passed retries", s->id, j->white + 2, j->auto_time,
				 (long long)j->passes);
	}
	free(j);
	policy_resume(r, verdict);
}

enum policy_action policy_greylist(struct policy_request *r)
{
	struct smtp_session *s = r->s;
	const struct conf_domain *d = policy_rcpt_domain(r);
	const struct conf_greylist *c = d != NULL ? d->greylist : &s->conf->greylist;
	if (!c->enabled || s->txn == NULL || r->rcpt == NULL)
		return POLICY_NEXT;
	char net[GREY_NET_MAX];
	if (!client_network(s->client_ip, c->ipv4_prefix, c->ipv6_prefix, net, sizeof(net)))
		return POLICY_NEXT;
	struct grey_job *j = x_calloc(1, sizeof(*j));
	j->r = r;
	j->store = service_store(s->svc);
	j->now = (int64_t)time(NULL);
	j->delay = c->delay_s;
	j->window = c->retry_window_s;
	j->max_age = c->max_age_s;
	j->auto_n = c->auto_whitelist;
	j->auto_time = c->auto_whitelist_time_s;
	snprintf(j->white, sizeof(j->white), "w|%s", net);
	const struct policy_session *ps = s->policy;
	char spf[SMTP_DOMAIN_MAX + 8];
	const char *who = net;
	if (ps != NULL && ps->spf_mail == s->n_mail && ps->spf_pass && ps->spf_domain[0] != '\0') {
		snprintf(spf, sizeof(spf), "spf:%s", ps->spf_domain);
		who = spf;
	}
	triplet_key(j->key, sizeof(j->key), who, s->txn->from, r->rcpt);
	if (j->now - grey_last_expire >= (int64_t)c->expire_interval_s) {
		/* in a job of its own: no client waits for the walk over policy.db */
		grey_last_expire = j->now;
		struct grey_expire *x = x_calloc(1, sizeof(*x));
		x->store = j->store;
		x->now = j->now;
		if (store_async(service_loop(s->svc), grey_expire_work, grey_expire_done, x) != 0)
			free(x);
	}
	if (store_async(service_loop(s->svc), grey_work, grey_done, j) != STORE_OK) {
		free(j);
		log_warn("%s: greylist: cannot queue the store job; not greylisted", s->id);
		return POLICY_NEXT;
	}
	return POLICY_PENDING;
}
