/* policy-rbl.c — DNSBL, DNSWL and RHSBL scoring (dnsbl { }, docs/policy.md).
 *
 * At the first RCPT of a client (and again when XCLIENT presents another one) every
 * zone of dnsbl.sites is asked about the client address (d.c.b.a.ZONE; IPv6 in
 * reverse nibble form), and every zone of dnsbl.rhsbl_sites about the sender's
 * domain (DOMAIN.ZONE), all at once through c-ares (common/dns.h); the check
 * waits (POLICY_PENDING) until the last answer or the resolver's timeout. An A
 * record among the zone's codes adds the zone's weight to the score (negative
 * for a DNSWL). At dnsbl.threshold: 554 5.7.1, or an X-Warren-DNSBL header.
 * Answers are kept per process for their TTL (negative ones without a TTL for
 * RBL_NEGATIVE_TTL_S), verdicts per session. When the zone a reply names (the
 * first with a positive weight) lists the key, the TXT record of the same name is
 * asked too (cached with the A answer) and its text, made printable and cut to
 * RBL_TXT_MAX, ends the 554 reply as Postfix's does ("...blocked using ZONE; TEXT").
 */
#include "smtpd/policy-checks.h"
#include "common/dns.h"
#include "common/log.h"
#include "common/pool.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Zones looked at per list; more are ignored (with a warning). */
#define RBL_SITES_MAX 32
/* How long an NXDOMAIN/NODATA without a TTL is remembered. */
#define RBL_NEGATIVE_TTL_S 60
/* Addresses of one answer kept. */
#define RBL_ADDRS_MAX 8
/* The zones named in a verdict (log, header). */
#define RBL_LISTED_MAX 512
/* A query name: reversed IPv6 (64) + zone (255) + dot. */
#define RBL_NAME_MAX 330
/* The zone's TXT reason in a reply, at most (bytes, printable ASCII). */
#define RBL_TXT_MAX 200


/* ---- the answer cache (per process) and the resolver ---- */

struct cache_entry {
	struct cache_entry *hnext, *fnext;   /* hash chain; insertion order (eviction) */
	char *name;
	time_t expires;
	size_t n;                            /* A records (0: not listed) */
	unsigned char addrs[RBL_ADDRS_MAX][4];
	char *txt;                           /* the TXT reason, once asked and found */
	bool txt_asked;                      /* the TXT lookup was answered */
};

#define CACHE_BUCKETS 4096

/* The process's DNSBL context: resolver and answer cache. */
static struct {
	uv_loop_t *loop;
	struct dns_resolver *dns;
	char *servers;
	unsigned timeout_ms, tries;
	unsigned inflight;
	struct cache_entry *buckets[CACHE_BUCKETS];
	struct cache_entry *oldest, *newest;
	size_t count;
} rbl;

static time_t now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static unsigned hash_name(const char *name)
{
	unsigned h = 5381;
	for (; *name != '\0'; name++)
		h = h * 33 + (unsigned char)(*name | 0x20);
	return h % CACHE_BUCKETS;
}

static void cache_unlink(struct cache_entry *e)
{
	struct cache_entry **pp = &rbl.buckets[hash_name(e->name)];
	while (*pp != NULL && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp == e)
		*pp = e->hnext;
}

static void cache_evict_oldest(void)
{
	struct cache_entry *e = rbl.oldest;
	if (e == NULL)
		return;
	rbl.oldest = e->fnext;
	if (rbl.oldest == NULL)
		rbl.newest = NULL;
	cache_unlink(e);
	free(e->name);
	free(e->txt);
	free(e);
	rbl.count--;
}

static const struct cache_entry *cache_get(const char *name)
{
	time_t now = now_s();
	for (struct cache_entry *e = rbl.buckets[hash_name(name)]; e != NULL; e = e->hnext)
		if (strcasecmp(e->name, name) == 0)
			return e->expires > now ? e : NULL;
	return NULL;
}

static void cache_put(const char *name, uint32_t ttl, const struct dns_result *res,
		      size_t max)
{
	if (ttl == 0)
		return;
	/* an older answer for the name (expired) goes; then room is made */
	for (struct cache_entry *e = rbl.buckets[hash_name(name)]; e != NULL; e = e->hnext)
		if (strcasecmp(e->name, name) == 0) {
			e->expires = 0;
			break;
		}
	while (rbl.count >= max && rbl.oldest != NULL)
		cache_evict_oldest();
	struct cache_entry *e = x_calloc(1, sizeof(*e));
	e->name = x_strdup(name);
	e->expires = now_s() + (time_t)ttl;
	if (res->status == DNS_OK)
		for (size_t i = 0; i < res->count && e->n < RBL_ADDRS_MAX; i++)
			if (inet_pton(AF_INET, res->u.addrs[i], e->addrs[e->n]) == 1)
				e->n++;
	unsigned h = hash_name(name);
	e->hnext = rbl.buckets[h];
	rbl.buckets[h] = e;
	if (rbl.newest != NULL)
		rbl.newest->fnext = e;
	else
		rbl.oldest = e;
	rbl.newest = e;
	rbl.count++;
}

static struct dns_resolver *resolver(struct smtp_session *s)
{
	const struct warren_config *conf = s->conf;
	const char *servers = conf->dns.servers != NULL ? conf->dns.servers : "";
	bool changed = rbl.dns == NULL || rbl.servers == NULL ||
		strcmp(rbl.servers, servers) != 0 || rbl.timeout_ms != conf->dns.timeout_ms ||
		rbl.tries != conf->dns.tries;
	/* after a reload, a new resolver once no query of the old one is in flight */
	if (rbl.dns != NULL && (!changed || rbl.inflight > 0))
		return rbl.dns;
	if (rbl.dns != NULL)
		dns_resolver_free(&rbl.dns);
	const char *error = NULL;
	rbl.loop = service_loop(s->svc);
	rbl.dns = dns_resolver_new(rbl.loop, servers, conf->dns.timeout_ms, conf->dns.tries,
				   &error);
	if (rbl.dns == NULL) {
		log_warn("%s: dnsbl: no resolver: %s", s->id, error != NULL ? error : "?");
		return NULL;
	}
	free(rbl.servers);
	rbl.servers = x_strdup(servers);
	rbl.timeout_ms = conf->dns.timeout_ms;
	rbl.tries = conf->dns.tries;
	return rbl.dns;
}

/* ---- per-session verdicts ---- */

struct rbl_verdict {
	bool done;
	char key[SMTP_DOMAIN_MAX + 1];   /* the client address or sender domain asked about */
	int score;
	char zone[SMTP_DOMAIN_MAX + 1];  /* the first zone with a positive weight that listed */
	char listed[RBL_LISTED_MAX];     /* "zone(weight) zone(weight)" */
	char txt[RBL_TXT_MAX + 1];       /* zone's TXT reason (printable), "" if none */
};

struct policy_rbl_state {
	struct rbl_verdict client, sender;
	unsigned tagged_mail;            /* s->n_mail of the last transaction tagged */
};

void policy_rbl_free(struct policy_session *p)
{
	free(p->rbl);
	p->rbl = NULL;
}

static void verdict_reset(struct rbl_verdict *v, const char *key)
{
	memset(v, 0, sizeof(*v));
	snprintf(v->key, sizeof(v->key), "%s", key);
}

static void verdict_add(struct rbl_verdict *v, const struct conf_dnsbl_site *site)
{
	v->score += site->weight;
	if (site->weight > 0 && v->zone[0] == '\0')
		snprintf(v->zone, sizeof(v->zone), "%s", site->zone);
	size_t len = strlen(v->listed);
	snprintf(v->listed + len, sizeof(v->listed) - len, "%s%s(%d)", len > 0 ? " " : "",
		 site->zone, site->weight);
}

/* The name to ask: the client address reversed, or the domain, then the zone. */
static bool query_name(const char *key, bool domain, const char *zone, char *out, size_t size)
{
	int n;
	if (domain) {
		n = snprintf(out, size, "%s.%s", key, zone);
	} else {
		unsigned char a[16];
		const char *ip = key;
		if (strncasecmp(ip, "::ffff:", 7) == 0 && strchr(ip + 7, '.') != NULL)
			ip += 7;
		if (inet_pton(AF_INET, ip, a) == 1) {
			n = snprintf(out, size, "%u.%u.%u.%u.%s", a[3], a[2], a[1], a[0], zone);
		} else if (inet_pton(AF_INET6, ip, a) == 1) {
			static const char hex[] = "0123456789abcdef";
			size_t o = 0;
			for (int i = 15; i >= 0; i--) {
				out[o++] = hex[a[i] & 0xf];
				out[o++] = '.';
				out[o++] = hex[a[i] >> 4];
				out[o++] = '.';
			}
			n = snprintf(out + o, size - o, "%s", zone);
			n = n < 0 ? n : n + (int)o;
		} else {
			return false;
		}
	}
	return n > 0 && (size_t)n < size && (size_t)n <= SMTP_DOMAIN_MAX;
}

struct rbl_lookup {
	struct rbl_job *job;
	struct conf_dnsbl_site site;
	bool sender;                     /* an RHSBL query */
	char name[RBL_NAME_MAX];
};

struct rbl_job {
	struct policy_request *r;
	unsigned pending;
	size_t n;
	struct rbl_lookup *lookups;
};

/* Returns true when the answer lists the key in site. */
static bool apply_answer(struct smtp_session *s, struct rbl_verdict *v,
			 const struct conf_dnsbl_site *site, const char *name, size_t n,
			 const unsigned char (*addrs)[4])
{
	for (size_t i = 0; i < n; i++) {
		if (conf_dnsbl_site_matches(site, addrs[i])) {
			log_info("%s: dnsbl: %s listed in %s (%u.%u.%u.%u), weight %d", s->id, name,
				 site->zone, addrs[i][0], addrs[i][1], addrs[i][2], addrs[i][3],
				 site->weight);
			verdict_add(v, site);
			return true;
		}
	}
	return false;
}

/* ---- the zone's TXT reason (for the zone a reply names) ---- */

/* in made printable for a reply: control characters removed, bytes outside ASCII
 * as '?', cut to size - 1, blanks at the ends trimmed. */
static void txt_clean(char *out, size_t size, const char *in)
{
	size_t o = 0;
	for (; *in != '\0' && o + 1 < size; in++) {
		unsigned char c = (unsigned char)*in;
		if (c < 0x20 || c == 0x7f || (c == ' ' && o == 0))
			continue;
		out[o++] = c < 0x80 ? (char)c : '?';
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

static void cache_set_txt(const char *name, const char *txt)
{
	for (struct cache_entry *e = rbl.buckets[hash_name(name)]; e != NULL; e = e->hnext)
		if (strcasecmp(e->name, name) == 0) {
			if (e->txt == NULL && txt[0] != '\0')
				e->txt = x_strdup(txt);
			e->txt_asked = true;
			return;
		}
}

/* The zone the reply names (the first that listed with a positive weight). */
static bool names_zone(const struct rbl_verdict *v, const struct conf_dnsbl_site *site)
{
	return site->weight > 0 && strcasecmp(v->zone, site->zone) == 0;
}

static void verdict_txt(struct rbl_verdict *v, const struct conf_dnsbl_site *site,
			const char *txt)
{
	if (txt != NULL && txt[0] != '\0' && v->txt[0] == '\0' && names_zone(v, site))
		snprintf(v->txt, sizeof(v->txt), "%s", txt);
}

static enum policy_action verdict(struct policy_request *r);
static void job_step(struct rbl_job *job);

static void txt_done(const struct dns_result *res, void *ctx)
{
	struct rbl_lookup *lk = ctx;
	struct smtp_session *s = lk->job->r->s;
	rbl.inflight--;
	char txt[RBL_TXT_MAX + 1] = "";
	if (res->status == DNS_OK)
		for (size_t i = 0; i < res->count && txt[0] == '\0'; i++)
			txt_clean(txt, sizeof(txt), res->u.txt[i]);
	/* an answer, even without TXT, is kept with the A answer; a failure is not */
	if (res->status == DNS_OK || res->status == DNS_NXDOMAIN || res->status == DNS_NODATA)
		cache_set_txt(lk->name, txt);
	struct policy_rbl_state *st = s->policy->rbl;
	verdict_txt(lk->sender ? &st->sender : &st->client, &lk->site, txt);
	job_step(lk->job);
}

/* The A answer listed the key in the zone the reply names: its TXT is asked too,
 * in the same job. */
static bool ask_txt(struct smtp_session *s, struct rbl_lookup *lk)
{
	if (rbl.dns == NULL || dns_lookup(rbl.dns, DNS_TYPE_TXT, lk->name, txt_done, lk) == NULL) {
		log_warn("%s: dnsbl: %s: TXT lookup not started", s->id, lk->name);
		return false;
	}
	rbl.inflight++;
	lk->job->pending++;
	return true;
}

static void lookup_done(const struct dns_result *res, void *ctx)
{
	struct rbl_lookup *lk = ctx;
	struct rbl_job *job = lk->job;
	struct policy_request *r = job->r;
	struct smtp_session *s = r->s;
	rbl.inflight--;
	unsigned char addrs[RBL_ADDRS_MAX][4];
	size_t n = 0;
	if (res->status == DNS_OK) {
		for (size_t i = 0; i < res->count && n < RBL_ADDRS_MAX; i++)
			if (inet_pton(AF_INET, res->u.addrs[i], addrs[n]) == 1)
				n++;
		cache_put(lk->name, res->ttl, res, s->conf->dnsbl.cache_size);
	} else if (res->status == DNS_NXDOMAIN || res->status == DNS_NODATA) {
		cache_put(lk->name, res->ttl != 0 ? res->ttl : RBL_NEGATIVE_TTL_S, res,
			  s->conf->dnsbl.cache_size);
	} else {
		log_warn("%s: dnsbl: %s: %s (counted as not listed)", s->id, lk->name,
			 res->error != NULL ? res->error : dns_status_str(res->status));
	}
	struct policy_rbl_state *st = s->policy->rbl;
	struct rbl_verdict *v = lk->sender ? &st->sender : &st->client;
	if (apply_answer(s, v, &lk->site, lk->name, n, (const unsigned char (*)[4])addrs) &&
	    names_zone(v, &lk->site) && !s->closed)
		ask_txt(s, lk);
	job_step(job);
}

/* One lookup of the job answered: the verdict once the last one has. */
static void job_step(struct rbl_job *job)
{
	struct policy_request *r = job->r;
	struct smtp_session *s = r->s;
	struct policy_rbl_state *st = s->policy->rbl;
	if (--job->pending > 0)
		return;
	free(job->lookups);
	free(job);
	st->client.done = true;
	st->sender.done = true;
	/* a client that went away gets no verdict; policy_resume() frees r */
	policy_resume(r, s->closed ? POLICY_NEXT : verdict(r));
}

/* Starts the queries of one list for key (or answers them from the cache);
 * adds the lookups started to job. */
static void ask(struct smtp_session *s, struct rbl_job *job, struct rbl_verdict *v,
		const char *const *specs, size_t n_specs, bool sender)
{
	for (size_t i = 0; i < n_specs && i < RBL_SITES_MAX; i++) {
		struct rbl_lookup *lk = &job->lookups[job->n];
		if (!conf_dnsbl_site_parse(specs[i], &lk->site)) {
			log_warn("%s: dnsbl: bad zone specification \"%.100s\" ignored", s->id,
				 specs[i]);
			continue;
		}
		if (!query_name(v->key, sender, lk->site.zone, lk->name, sizeof(lk->name)))
			continue;
		const struct cache_entry *e = cache_get(lk->name);
		if (e != NULL) {
			log_debug("%s: dnsbl: %s from the cache (%zu records)", s->id, lk->name, e->n);
			if (!apply_answer(s, v, &lk->site, lk->name, e->n,
					  (const unsigned char (*)[4])e->addrs))
				continue;
			verdict_txt(v, &lk->site, e->txt);
			/* listed before, while another zone was the one named: its TXT now */
			if (e->txt == NULL && !e->txt_asked && names_zone(v, &lk->site) &&
			    resolver(s) != NULL) {
				lk->job = job;
				lk->sender = sender;
				if (ask_txt(s, lk))
					job->n++;
			}
			continue;
		}
		struct dns_resolver *dns = resolver(s);
		if (dns == NULL)
			continue;
		lk->job = job;
		lk->sender = sender;
		if (dns_lookup(dns, DNS_TYPE_A, lk->name, lookup_done, lk) == NULL) {
			log_warn("%s: dnsbl: %s: lookup not started", s->id, lk->name);
			continue;
		}
		rbl.inflight++;
		job->n++;
		job->pending++;
	}
	if (n_specs > RBL_SITES_MAX)
		log_warn("%s: dnsbl: only the first %d zones of a list are asked", s->id,
			 RBL_SITES_MAX);
}

/* dnsbl { } for the RCPT's recipient: its domain's, else the global one. The
 * recipient's domain may set enabled, threshold and action (docs/policy.md
 * "Per-domain overrides"); the zones are global and asked once per session, so
 * only the counting differs per domain. */
static const struct conf_dnsbl *rbl_conf(const struct policy_request *r)
{
	const struct conf_domain *d = policy_rcpt_domain(r);
	return d != NULL ? d->dnsbl : &r->s->conf->dnsbl;
}

static enum policy_action verdict(struct policy_request *r)
{
	struct smtp_session *s = r->s;
	const struct conf_dnsbl *c = rbl_conf(r);
	struct policy_rbl_state *st = s->policy->rbl;
	bool with_sender = st->sender.key[0] != '\0';
	int score = st->client.score + (with_sender ? st->sender.score : 0);
	if (st->client.listed[0] == '\0' && (!with_sender || st->sender.listed[0] == '\0'))
		return POLICY_NEXT;
	if (score < c->threshold) {
		log_info("%s: dnsbl: client [%s] score %d below %d: %s%s%s", s->id, s->client_ip,
			 score, c->threshold, st->client.listed, with_sender ? " " : "",
			 with_sender ? st->sender.listed : "");
		return POLICY_NEXT;
	}
	if (c->action == CONF_DNSBL_REJECT) {
		if (st->client.score > 0 && st->client.zone[0] != '\0') {
			policy_reject(r, 554, "5.7.1 Service unavailable; client [%s] blocked using "
				      "%s%s%s", s->client_ip, st->client.zone,
				      st->client.txt[0] != '\0' ? "; " : "", st->client.txt);
		} else {
			char from[SMTP_PATH_MAX + 1];
			log_printable(from, sizeof(from), s->txn->from, strlen(s->txn->from));
			const struct rbl_verdict *by = st->sender.zone[0] != '\0' ? &st->sender :
				&st->client;
			policy_reject(r, 554, "5.7.1 <%s>: Sender address rejected: Service "
				      "unavailable; sender domain %s blocked using %s%s%s", from,
				      st->sender.key, by->zone, by->txt[0] != '\0' ? "; " : "",
				      by->txt);
		}
		return POLICY_REJECT;
	}
	if (st->tagged_mail != s->n_mail) {
		st->tagged_mail = s->n_mail;
		policy_add_header(s, "X-Warren-DNSBL: score=%d threshold=%d client=[%s] listed=%s%s%s",
				  score, c->threshold, s->client_ip, st->client.listed,
				  with_sender && st->sender.listed[0] != '\0' ? " " : "",
				  with_sender ? st->sender.listed : "");
		log_info("%s: dnsbl: client [%s] tagged, score %d: %s%s%s", s->id, s->client_ip,
			 score, st->client.listed, with_sender ? " " : "",
			 with_sender ? st->sender.listed : "");
	}
	return POLICY_NEXT;
}

enum policy_action policy_rbl(struct policy_request *r)
{
	struct smtp_session *s = r->s;
	const struct conf_dnsbl *c = rbl_conf(r);
	if (!c->enabled || (c->n_sites == 0 && c->n_rhsbl_sites == 0))
		return POLICY_NEXT;
	struct policy_session *p = policy_session(s);
	if (p->rbl == NULL)
		p->rbl = x_calloc(1, sizeof(*p->rbl));
	struct policy_rbl_state *st = p->rbl;
	/* the client of this session (XCLIENT may have changed it) */
	if (strcmp(st->client.key, s->client_ip) != 0)
		verdict_reset(&st->client, s->client_ip);
	const char *from = s->txn != NULL ? s->txn->from : "";
	const char *at = strrchr(from, '@');
	const char *domain = c->n_rhsbl_sites > 0 && at != NULL && at[1] != '[' ? at + 1 : "";
	if (strcasecmp(st->sender.key, domain) != 0)
		verdict_reset(&st->sender, domain);
	bool need_client = c->n_sites > 0 && !st->client.done;
	bool need_sender = domain[0] != '\0' && !st->sender.done;
	if (!need_client && !need_sender)
		return verdict(r);
	struct rbl_job *job = x_calloc(1, sizeof(*job));
	job->r = r;
	job->lookups = x_calloc(2 * RBL_SITES_MAX, sizeof(*job->lookups));
	if (need_client)
		ask(s, job, &st->client, c->sites, c->n_sites, false);
	if (need_sender)
		ask(s, job, &st->sender, c->rhsbl_sites, c->n_rhsbl_sites, true);
	if (job->pending > 0)
		return POLICY_PENDING;
	free(job->lookups);
	free(job);
	st->client.done = true;
	st->sender.done = true;
	return verdict(r);
}
