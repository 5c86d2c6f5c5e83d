/* policy-spf.c — SPF (RFC 7208) of MAIL FROM, or of the HELO name for the null
 * sender, with libspf2 on a worker thread (store_async's thread pool: libspf2
 * blocks) and our own DNS layer (spf-dns.c) on the configured resolvers.
 *
 * The result picks an action from spf { }: accept and tag add a Received-SPF
 * (RFC 7208 9.1) and an Authentication-Results (RFC 8601) header, tag also
 * spf.tag_header; reject answers 550 5.7.23, tempfail 451 4.7.24 (RFC 7372).
 * A pass leaves the validated domain in the policy session for greylisting.
 * libspf2 passes every 127.0.0.0/8 client whatever the record says.
 *
 * Per-domain overrides (spf { } inside domain { }, docs/policy.md "Per-domain
 * overrides"): when any domain has one, the lookup is still made once at MAIL
 * (when the global spf or any domain's is enabled), but MAIL is answered 250 and
 * the verdict is kept (struct policy_spf_verdict, in the transaction's pool);
 * at each RCPT the recipient's domain picks the action for the result: reject
 * and tempfail refuse that RCPT only; the first accepted recipient whose domain
 * has SPF enabled adds Received-SPF and Authentication-Results, the first whose
 * action is tag adds spf.tag_header. Without any domain override the verdict is
 * taken at MAIL as before. */
#include "smtpd/policy-checks.h"
#include "smtpd/spf-dns.h"

#include "common/log.h"
#include "common/pool.h"
#include "conf/conf.h"
#include "storage/store.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for a reason text (from libspf2's error string). */
#define SPF_REASON_MAX 160

struct spf_job {
	struct policy_request *r;
	/* inputs: the worker reads only these */
	char ip[64];
	char helo[SMTP_HELO_MAX + 1];
	char from[SMTP_PATH_MAX + 1];       /* "" for the null sender */
	char hostname[256];
	char *servers;
	unsigned timeout_ms, tries;
	bool helo_identity;                 /* the HELO name is checked */
	char domain[SMTP_DOMAIN_MAX + 1];   /* the identity's domain */
	bool per_domain;                    /* the verdict waits for RCPT */
	/* outputs */
	SPF_result_t result;
	char reason[SPF_REASON_MAX];
};

/* The result of a transaction's lookup, applied per recipient domain at RCPT. */
struct policy_spf_verdict {
	unsigned mail;                      /* s->n_mail of the transaction */
	struct spf_job job;                 /* the inputs and the result */
	char who[SMTP_PATH_MAX + 1];
	char why[SMTP_PATH_MAX + SPF_REASON_MAX + 120];
	bool headers, tagged;               /* added to the message already */
};

static const char *const result_names[] = {
	[SPF_RESULT_INVALID] = "invalid", [SPF_RESULT_NEUTRAL] = "neutral",
	[SPF_RESULT_PASS] = "pass", [SPF_RESULT_FAIL] = "fail",
	[SPF_RESULT_SOFTFAIL] = "softfail", [SPF_RESULT_NONE] = "none",
	[SPF_RESULT_TEMPERROR] = "temperror", [SPF_RESULT_PERMERROR] = "permerror",
};

static const char *const action_names[] = {
	[CONF_SPF_ACCEPT] = "accept", [CONF_SPF_TAG] = "tag",
	[CONF_SPF_REJECT] = "reject", [CONF_SPF_TEMPFAIL] = "tempfail",
};

/* libspf2's warnings and notes go to our log at debug level, not to stderr. */
static void spf_log_quiet(const char *file, int line, const char *msg)
{
	(void)file;
	(void)line;
	log_debug("libspf2: %.200s", msg);
}

static int action_of(const struct conf_spf *c, SPF_result_t result)
{
	switch (result) {
	case SPF_RESULT_PASS: return c->pass;
	case SPF_RESULT_FAIL: return c->fail;
	case SPF_RESULT_SOFTFAIL: return c->softfail;
	case SPF_RESULT_NEUTRAL: return c->neutral;
	case SPF_RESULT_NONE: return c->none;
	case SPF_RESULT_TEMPERROR: return c->temperror;
	default: return c->permerror;
	}
}

/* libspf2's answer in RFC 7208's terms: INVALID (its "should never happen") and
 * NONE after an error are temperror when DNS failed, permerror otherwise. */
static SPF_result_t map_result(SPF_response_t *resp, char *reason, size_t size)
{
	SPF_result_t result = SPF_response_result(resp);
	SPF_errcode_t err = SPF_response_errcode(resp);
	bool dns_error = err == SPF_E_DNS_ERROR;
	const char *first = NULL;
	for (int i = 0; i < SPF_response_messages(resp); i++) {
		SPF_error_t *e = SPF_response_message(resp, i);
		dns_error |= SPF_error_code(e) == SPF_E_DNS_ERROR;
		if (first == NULL)
			first = SPF_error_message(e);
	}
	if (first != NULL)
		snprintf(reason, size, "%s", first);
	else if (err != SPF_E_SUCCESS)
		snprintf(reason, size, "%s", SPF_strerror(err));
	if (result == SPF_RESULT_INVALID || result > SPF_RESULT_PERMERROR ||
	    (result == SPF_RESULT_NONE && err != SPF_E_SUCCESS && err != SPF_E_NOT_SPF))
		return dns_error ? SPF_RESULT_TEMPERROR : SPF_RESULT_PERMERROR;
	if (result == SPF_RESULT_NONE)
		reason[0] = '\0';   /* "no SPF records": the result says it */
	return result;
}

static int spf_work(void *arg)
{
	struct spf_job *j = arg;
	const char *error = NULL;
	/* nothing to check: no domain, or an address literal */
	if (j->domain[0] == '\0' || j->domain[0] == '[') {
		j->result = SPF_RESULT_NONE;
		return STORE_OK;
	}
	SPF_dns_server_t *dns = spf_dns_new(j->servers, j->timeout_ms, j->tries, &error);
	if (dns == NULL) {
		j->result = SPF_RESULT_TEMPERROR;
		snprintf(j->reason, sizeof(j->reason), "resolver: %s", error);
		return STORE_OK;
	}
	SPF_server_t *server = SPF_server_new_dns(dns, 0);
	if (server == NULL) {
		spf_dns_free(&dns);
		j->result = SPF_RESULT_TEMPERROR;
		snprintf(j->reason, sizeof(j->reason), "out of memory");
		return STORE_OK;
	}
	SPF_server_set_rec_dom(server, j->hostname);
	SPF_request_t *req = SPF_request_new(server);
	SPF_errcode_t err = strchr(j->ip, ':') != NULL ? SPF_request_set_ipv6_str(req, j->ip)
		: SPF_request_set_ipv4_str(req, j->ip);
	if (err == SPF_E_SUCCESS && j->helo[0] != '\0')
		err = SPF_request_set_helo_dom(req, j->helo);
	if (err == SPF_E_SUCCESS) {
		char from[SMTP_PATH_MAX + 20];
		if (j->helo_identity)
			snprintf(from, sizeof(from), "postmaster@%s", j->domain);
		else
			snprintf(from, sizeof(from), "%s", j->from);
		if (SPF_request_set_env_from(req, from) != 0)
			err = SPF_E_INVALID_CHAR;
	}
	if (err != SPF_E_SUCCESS) {
		j->result = SPF_RESULT_NONE;
		snprintf(j->reason, sizeof(j->reason), "%s", SPF_strerror(err));
	} else {
		SPF_response_t *resp = NULL;
		SPF_request_query_mailfrom(req, &resp);
		if (resp == NULL) {
			j->result = SPF_RESULT_TEMPERROR;
			snprintf(j->reason, sizeof(j->reason), "no answer from libspf2");
		} else {
			j->result = map_result(resp, j->reason, sizeof(j->reason));
			SPF_response_free(resp);
		}
	}
	SPF_request_free(req);
	SPF_server_free(server);
	spf_dns_free(&dns);
	return STORE_OK;
}

/* Text for a header comment: printable ASCII without ( ) \ . */
static const char *comment_text(char *out, size_t size, const char *in)
{
	size_t o = 0;
	for (; *in != '\0' && o + 1 < size; in++) {
		unsigned char c = (unsigned char)*in;
		out[o++] = c < 0x20 || c > 0x7e || c == '(' || c == ')' || c == '\\' ? '?' : (char)c;
	}
	out[o] = '\0';
	return out;
}

static bool is_atext_dot(const char *p, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (!isalnum(c) && strchr("!#$%&'*+-/=?^_`{|}~.", c) == NULL)
			return false;
	}
	return true;
}

/* A key=value value (RFC 7208 9.1): the dot-atom itself, else a quoted-string. */
static const char *kv_value(char *out, size_t size, const char *in)
{
	if (is_atext_dot(in, strlen(in))) {
		snprintf(out, size, "%s", in);
		return out;
	}
	size_t o = 0;
	out[o++] = '"';
	for (; *in != '\0' && o + 3 < size; in++) {
		unsigned char c = (unsigned char)*in;
		if (c == '"' || c == '\\')
			out[o++] = '\\';
		out[o++] = c < 0x20 || c > 0x7e ? '?' : (char)c;
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

static const char *explain(char *out, size_t size, const struct spf_job *j, const char *who)
{
	switch (j->result) {
	case SPF_RESULT_PASS:
		snprintf(out, size, "domain of %s designates %s as permitted sender", who, j->ip);
		break;
	case SPF_RESULT_FAIL:
		snprintf(out, size, "domain of %s does not designate %s as permitted sender", who,
			 j->ip);
		break;
	case SPF_RESULT_SOFTFAIL:
		snprintf(out, size, "domain of transitioning %s does not designate %s as permitted "
			 "sender", who, j->ip);
		break;
	case SPF_RESULT_NEUTRAL:
		snprintf(out, size, "%s is neither permitted nor denied by domain of %s", j->ip, who);
		break;
	case SPF_RESULT_NONE:
		snprintf(out, size, "domain of %s does not provide an SPF record", who);
		break;
	case SPF_RESULT_TEMPERROR:
		snprintf(out, size, "temporary error looking up the SPF record of %s%s%s", who,
			 j->reason[0] != '\0' ? ": " : "", j->reason);
		break;
	default:
		snprintf(out, size, "permanent error in the SPF record of %s%s%s", who,
			 j->reason[0] != '\0' ? ": " : "", j->reason);
		break;
	}
	return out;
}

static void add_result_headers(struct smtp_session *s, const struct spf_job *j,
			       const char *why)
{
	const char *host = s->conf->hostname;
	const char *name = result_names[j->result];
	char from[SMTP_PATH_MAX + 8], helo[SMTP_HELO_MAX + 8];
	kv_value(helo, sizeof(helo), j->helo[0] != '\0' ? j->helo : "unknown");
	if (j->helo_identity)
		policy_add_header(s, "Received-SPF: %s (%s: %s)\r\n\tclient-ip=%s; helo=%s; "
				  "receiver=%s; identity=helo", name, host, why, j->ip, helo, host);
	else
		policy_add_header(s, "Received-SPF: %s (%s: %s)\r\n\tclient-ip=%s; "
				  "envelope-from=%s; helo=%s;\r\n\treceiver=%s; identity=mailfrom",
				  name, host, why, j->ip, kv_value(from, sizeof(from), j->from), helo,
				  host);
	/* RFC 8601 pvalue: the address when its local part is a dot-atom, else the domain */
	const char *prop = j->helo_identity ? "smtp.helo" : "smtp.mailfrom";
	const char *value = j->domain;
	if (!j->helo_identity) {
		const char *at = strrchr(j->from, '@');
		if (at != NULL && is_atext_dot(j->from, (size_t)(at - j->from)))
			value = j->from;
	}
	policy_add_header(s, "Authentication-Results: %s;\r\n\tspf=%s %s=%s", host, name, prop,
			  value);
}

/* Received-SPF and Authentication-Results (result_headers), spf.tag_header (tag). */
static void add_headers(struct smtp_session *s, const struct spf_job *j, const char *why,
			bool result_headers, bool tag)
{
	if (result_headers)
		add_result_headers(s, j, why);
	if (tag)
		policy_add_header(s, "%s: %s", s->conf->spf.tag_header, result_names[j->result]);
}

/* Does any domain have its own spf { } (per_domain), is SPF on anywhere? */
static bool spf_domains(const struct warren_config *conf, bool *enabled_r)
{
	bool any = false;
	*enabled_r = conf->spf.enabled;
	for (size_t i = 0; i < conf->n_domains; i++) {
		const struct conf_domain *d = &conf->domains[i];
		if (d->spf_override && d->spf != NULL) {
			any = true;
			*enabled_r |= d->spf->enabled;
		}
	}
	return any;
}

/* Keeps the verdict of the transaction for its recipients (per_domain). */
static void keep_verdict(struct smtp_session *s, const struct spf_job *j, const char *who,
			 const char *why)
{
	struct policy_spf_verdict *v = pool_alloc(s->txn->pool, sizeof(*v));
	v->mail = s->n_mail;
	v->job = *j;
	v->job.servers = NULL;
	v->job.r = NULL;
	snprintf(v->who, sizeof(v->who), "%s", who);
	snprintf(v->why, sizeof(v->why), "%s", why);
	policy_session(s)->spf_verdict = v;
}

static enum policy_action refuse(struct policy_request *r, int action, SPF_result_t result,
				 const char *who, const char *why)
{
	if (action == CONF_SPF_REJECT) {
		policy_reject(r, 550, "5.7.23 <%s>: Sender address rejected: SPF %s (%s)", who,
			      result_names[result], why);
		return POLICY_REJECT;
	}
	policy_reject(r, 451, "4.7.24 <%s>: Sender address rejected: SPF %s (%s), try "
		      "again later", who, result_names[result], why);
	return POLICY_REJECT;
}

/* RCPT: the kept verdict with the action of the recipient's domain. */
static enum policy_action spf_rcpt(struct policy_request *r)
{
	struct smtp_session *s = r->s;
	struct policy_session *ps = s->policy;
	struct policy_spf_verdict *v = ps != NULL ? ps->spf_verdict : NULL;
	if (v == NULL || s->txn == NULL || ps->spf_mail != s->n_mail || v->mail != s->n_mail)
		return POLICY_NEXT;
	const struct conf_domain *d = policy_rcpt_domain(r);
	const struct conf_spf *c = d != NULL ? d->spf : &s->conf->spf;
	if (!c->enabled)
		return POLICY_NEXT;
	int action = action_of(c, v->job.result);
	char to[SMTP_PATH_MAX + 1];
	log_info("%s: spf: RCPT from %s[%s]: %s domain=%s to=<%s> action=%s", s->id,
		 s->client_name, s->client_ip, result_names[v->job.result], v->job.domain,
		 log_printable(to, sizeof(to), r->rcpt, strlen(r->rcpt)), action_names[action]);
	if (action == CONF_SPF_REJECT || action == CONF_SPF_TEMPFAIL)
		return refuse(r, action, v->job.result, v->who, v->why);
	add_headers(s, &v->job, v->why, !v->headers, action == CONF_SPF_TAG && !v->tagged);
	v->headers = true;
	v->tagged |= action == CONF_SPF_TAG;
	return POLICY_NEXT;
}

static void spf_done(void *arg, int ret)
{
	struct spf_job *j = arg;
	struct policy_request *r = j->r;
	struct smtp_session *s = r->s;
	if (s->closed || s->txn == NULL) {
		free(j->servers);
		free(j);
		policy_resume(r, POLICY_NEXT);
		return;
	}
	if (ret != STORE_OK) {
		j->result = SPF_RESULT_TEMPERROR;
		snprintf(j->reason, sizeof(j->reason), "worker failed");
	}
	const struct conf_spf *c = &s->conf->spf;
	int action = action_of(c, j->result);
	struct policy_session *ps = policy_session(s);
	ps->spf_mail = s->n_mail;
	ps->spf_pass = j->result == SPF_RESULT_PASS;
	snprintf(ps->spf_domain, sizeof(ps->spf_domain), "%s", j->domain);

	char who[SMTP_PATH_MAX + 1], why[SMTP_PATH_MAX + SPF_REASON_MAX + 120];
	comment_text(who, sizeof(who), j->helo_identity ? j->domain : j->from);
	explain(why, sizeof(why), j, who);
	char reason[SPF_REASON_MAX];
	log_info("%s: spf: %s from %s[%s]: %s identity=%s domain=%s action=%s%s%s", s->id,
		 j->helo_identity ? "HELO" : "MAIL", s->client_name, s->client_ip,
		 result_names[j->result], j->helo_identity ? "helo" : "mailfrom", j->domain,
		 j->per_domain ? "per-recipient" : action_names[action],
		 j->reason[0] != '\0' ? " reason=" : "",
		 comment_text(reason, sizeof(reason), j->reason));
	enum policy_action verdict = POLICY_NEXT;
	ps->spf_verdict = NULL;   /* an older one was in an earlier transaction's pool */
	if (j->per_domain)
		keep_verdict(s, j, who, why);
	else if (action == CONF_SPF_REJECT || action == CONF_SPF_TEMPFAIL)
		verdict = refuse(r, action, j->result, who, why);
	else
		add_headers(s, j, why, true, action == CONF_SPF_TAG);
	free(j->servers);
	free(j);
	policy_resume(r, verdict);
}

enum policy_action policy_spf(struct policy_request *r)
{
	static bool handlers_set;
	struct smtp_session *s = r->s;
	const struct warren_config *conf = s->conf;
	if (r->stage == POLICY_RCPT)
		return spf_rcpt(r);
	if (s->policy != NULL)
		s->policy->spf_verdict = NULL;
	bool enabled, per_domain = spf_domains(conf, &enabled);
	if (!enabled || s->txn == NULL)
		return POLICY_NEXT;
	if (!handlers_set) {
		SPF_warning_handler = spf_log_quiet;
		SPF_info_handler = spf_log_quiet;
		SPF_debug_handler = spf_log_quiet;
		handlers_set = true;
	}
	struct spf_job *j = x_calloc(1, sizeof(*j));
	j->r = r;
	j->per_domain = per_domain;
	snprintf(j->ip, sizeof(j->ip), "%s", s->client_ip);
	snprintf(j->helo, sizeof(j->helo), "%s", s->helo);
	snprintf(j->from, sizeof(j->from), "%s", s->txn->from);
	snprintf(j->hostname, sizeof(j->hostname), "%s", conf->hostname);
	j->servers = x_strdup(conf->dns.servers != NULL ? conf->dns.servers : "");
	j->timeout_ms = conf->dns.timeout_ms;
	j->tries = conf->dns.tries;
	const char *at = strrchr(j->from, '@');
	j->helo_identity = at == NULL;
	snprintf(j->domain, sizeof(j->domain), "%s", at != NULL ? at + 1 : j->helo);
	for (char *p = j->domain; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	if (store_async(service_loop(s->svc), spf_work, spf_done, j) != STORE_OK) {
		free(j->servers);
		free(j);
		policy_reject(r, 451, "4.7.24 Error: SPF check unavailable, try again later");
		return POLICY_REJECT;
	}
	return POLICY_PENDING;
}
