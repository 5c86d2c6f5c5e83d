/* out-route.c — the next hops of a destination and their addresses.
 *
 * Order of precedence: a remote domain's relay_host, then queue.relayhost (the
 * smart host), then the domain's MX records (RFC 5321 5.1): sorted by
 * preference with equal preferences shuffled; no MX records at all: the domain
 * itself (implicit MX); a null MX (RFC 7505, one MX "." ): bounced at once with
 * 556 5.1.10; NXDOMAIN: bounced with 5.1.2; DNS trouble: retried later. Each
 * host's addresses are asked as AAAA, then A, and tried in that order.
 */
#include "smtpd/queue.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void job_fail(struct qjob *job, int code, const char *status, const char *text,
		     bool permanent)
{
	job->err_code = code;
	snprintf(job->err_status, sizeof(job->err_status), "%s", status);
	snprintf(job->err_text, sizeof(job->err_text), "%s", text);
	job->err_permanent = permanent;
}

/* No more hops: every recipient of the job gets the last error. */
static void job_give_up(struct qjob *job)
{
	if (job->err_text[0] == '\0')
		job_fail(job, 0, "4.4.1", "no next hop could be reached", false);
	const char *status = job->err_status;
	char perm_status[16];
	if (job->err_permanent && status[0] != '5') {
		snprintf(perm_status, sizeof(perm_status), "5%s", status + 1);
		status = perm_status;
	}
	for (size_t i = 0; i < job->n_rcpts; i++)
		queue_rcpt_result(job->d, job->rcpts[i], job->err_code, status, job->err_text,
				  job->err_remote);
	queue_job_done(job);
}

/* "host", "host:port", "[host]:port", "[v6addr]:port". */
static int parse_hop(const char *spec, unsigned default_port, struct out_hop *hop)
{
	memset(hop, 0, sizeof(*hop));
	hop->port = default_port;
	const char *host = spec, *end, *port = NULL;
	if (spec[0] == '[') {
		host = spec + 1;
		end = strchr(host, ']');
		if (end == NULL)
			return -1;
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			return -1;
	} else {
		end = strrchr(spec, ':');
		if (end != NULL && strchr(spec, ':') == end)
			port = end + 1;
		else
			end = spec + strlen(spec);
	}
	size_t len = (size_t)(end - host);
	if (len == 0 || len >= sizeof(hop->host))
		return -1;
	memcpy(hop->host, host, len);
	hop->host[len] = '\0';
	if (port != NULL) {
		char *e;
		long p = strtol(port, &e, 10);
		if (*e != '\0' || p < 1 || p > 65535)
			return -1;
		hop->port = (unsigned)p;
	}
	unsigned char tmp[16];
	hop->is_ip = inet_pton(AF_INET, hop->host, tmp) == 1 ||
		inet_pton(AF_INET6, hop->host, tmp) == 1;
	return 0;
}

static void resolve_hop(struct qjob *job);

void out_route_next(struct qjob *job)
{
	if (job->d->r->stopping) {
		job_give_up(job);
		return;
	}
	job->addr_i++;
	if (job->addr_i < job->n_addrs) {
		out_client_start(job, job->addrs[job->addr_i], &job->hops[job->hop_i]);
		return;
	}
	job->hop_i++;
	resolve_hop(job);
}

static void addrs_ready(struct qjob *job)
{
	if (job->n_addrs == 0) {
		out_route_next(job);   /* next host */
		return;
	}
	job->addr_i = 0;
	out_client_start(job, job->addrs[0], &job->hops[job->hop_i]);
}

static void addr_cb(const struct dns_result *res, void *ctx)
{
	struct qjob *job = ctx;
	job->query = NULL;
	const struct out_hop *hop = &job->hops[job->hop_i];
	if (res->status == DNS_OK) {
		for (size_t i = 0; i < res->count && job->n_addrs < OUT_ADDRS_MAX; i++)
			snprintf(job->addrs[job->n_addrs++], sizeof(job->addrs[0]), "%s",
				 res->u.addrs[i]);
	} else if (job->addr_stage == 1 && job->n_addrs == 0) {
		char text[QUEUE_REPLY_MAX];
		snprintf(text, sizeof(text), "Host or domain name not found. Name service error "
			 "for name=%s type=A: %s", hop->host, res->error != NULL ? res->error :
			 dns_status_str(res->status));
		/* a host that does not exist is a hard error only for a configured hop */
		job_fail(job, 0, res->status == DNS_TEMPFAIL ? "4.4.3" : "4.4.4", text, false);
	}
	if (job->addr_stage == 0) {
		job->addr_stage = 1;
		job->query = dns_lookup(job->d->r->dns, DNS_TYPE_A, hop->host, addr_cb, job);
		if (job->query == NULL)
			addrs_ready(job);
		return;
	}
	addrs_ready(job);
}

static void resolve_hop(struct qjob *job)
{
	if (job->hop_i >= job->n_hops) {
		job_give_up(job);
		return;
	}
	const struct out_hop *hop = &job->hops[job->hop_i];
	job->n_addrs = 0;
	job->addr_i = 0;
	if (hop->is_ip) {
		snprintf(job->addrs[0], sizeof(job->addrs[0]), "%s", hop->host);
		job->n_addrs = 1;
		addrs_ready(job);
		return;
	}
	if (job->d->r->dns == NULL) {
		job_fail(job, 0, "4.4.3", "no DNS resolver", false);
		job_give_up(job);
		return;
	}
	job->addr_stage = 0;
	job->query = dns_lookup(job->d->r->dns, DNS_TYPE_AAAA, hop->host, addr_cb, job);
	if (job->query == NULL) {
		job_fail(job, 0, "4.4.3", "DNS lookup could not be started", false);
		job_give_up(job);
	}
}

static void shuffle_equal(struct dns_mx *mx, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && mx[j].preference == mx[i].preference)
			j++;
		for (size_t k = j - 1; k > i; k--) {
			size_t o = i + (size_t)rand() % (k - i + 1);
			struct dns_mx t = mx[k];
			mx[k] = mx[o];
			mx[o] = t;
		}
		i = j;
	}
}

static void mx_cb(const struct dns_result *res, void *ctx)
{
	struct qjob *job = ctx;
	job->query = NULL;
	char text[QUEUE_REPLY_MAX];
	unsigned port = job->d->conf->queue.smtp_port;
	switch (res->status) {
	case DNS_OK:
		break;
	case DNS_NODATA:
		/* RFC 5321 5.1: no MX: the domain itself is the host */
		parse_hop(job->domain, port, &job->hops[0]);
		job->n_hops = 1;
		resolve_hop(job);
		return;
	case DNS_NXDOMAIN:
		snprintf(text, sizeof(text), "Host or domain name not found. Name service error "
			 "for name=%s type=MX: Host not found", job->domain);
		job_fail(job, 550, "5.1.2", text, true);
		job_give_up(job);
		return;
	default:
		snprintf(text, sizeof(text), "Host or domain name not found. Name service error "
			 "for name=%s type=MX: %s", job->domain,
			 res->error != NULL ? res->error : dns_status_str(res->status));
		job_fail(job, 0, "4.4.3", text, false);
		job_give_up(job);
		return;
	}
	/* RFC 7505: a single MX with the root as host says "no mail here" */
	if (res->count == 1 && (res->u.mx[0].host[0] == '\0' ||
				strcmp(res->u.mx[0].host, ".") == 0)) {
		snprintf(text, sizeof(text), "Domain %s does not accept mail (null MX)",
			 job->domain);
		job_fail(job, 556, "5.1.10", text, true);
		job_give_up(job);
		return;
	}
	struct dns_mx mx[OUT_HOSTS_MAX];
	size_t n = 0;
	for (size_t i = 0; i < res->count && n < OUT_HOSTS_MAX; i++) {
		if (res->u.mx[i].host[0] == '\0' || strcmp(res->u.mx[i].host, ".") == 0)
			continue;
		mx[n++] = res->u.mx[i];
	}
	shuffle_equal(mx, n);
	job->n_hops = 0;
	for (size_t i = 0; i < n; i++)
		if (parse_hop(mx[i].host, port, &job->hops[job->n_hops]) == 0) {
			job->hops[job->n_hops].is_ip = false;   /* an MX names a host */
			job->n_hops++;
		}
	if (job->n_hops == 0) {
		job_fail(job, 0, "4.4.4", "no usable MX host", false);
		job_give_up(job);
		return;
	}
	job->hop_i = 0;
	resolve_hop(job);
}

static bool tls_required_for(const struct warren_config *conf, const char *domain)
{
	for (size_t i = 0; i < conf->queue.n_tls_required_domains; i++)
		if (strcasecmp(conf->queue.tls_required_domains[i], domain) == 0)
			return true;
	return false;
}

void out_route_start(struct qjob *job)
{
	const struct warren_config *conf = job->d->conf;
	const struct conf_domain *dom = conf_find_domain(conf, job->domain);
	const char *relay = NULL;
	job->tls_required = tls_required_for(conf, job->domain);
	if (dom != NULL && dom->type == CONF_DOMAIN_REMOTE && dom->relay_host != NULL) {
		relay = dom->relay_host;
	} else if (conf->queue.relayhost != NULL && conf->queue.relayhost[0] != '\0') {
		relay = conf->queue.relayhost;
		job->tls_required = job->tls_required || conf->queue.relayhost_tls_required;
		job->auth_user = conf->queue.relayhost_user;
		job->auth_password = conf->queue.relayhost_password;
	}
	if (relay != NULL) {
		snprintf(job->route_key, sizeof(job->route_key), "relay:%.200s:%.80s:%d", relay,
			 job->auth_user != NULL ? job->auth_user : "", job->tls_required);
		if (out_client_reuse(job))
			return;
		job->relay = true;
		if (parse_hop(relay, 25, &job->hops[0]) < 0) {
			char text[QUEUE_REPLY_MAX];
			snprintf(text, sizeof(text), "bad next hop \"%.200s\" in the configuration",
				 relay);
			job_fail(job, 0, "4.3.5", text, false);
			job_give_up(job);
			return;
		}
		job->n_hops = 1;
		job->hop_i = 0;
		resolve_hop(job);
		return;
	}
	snprintf(job->route_key, sizeof(job->route_key), "mx:%.256s:%d", job->domain,
		 job->tls_required);
	if (out_client_reuse(job))
		return;
	if (job->d->r->dns == NULL) {
		job_fail(job, 0, "4.4.3", "no DNS resolver", false);
		job_give_up(job);
		return;
	}
	job->query = dns_lookup(job->d->r->dns, DNS_TYPE_MX, job->domain, mx_cb, job);
	if (job->query == NULL) {
		job_fail(job, 0, "4.4.3", "DNS lookup could not be started", false);
		job_give_up(job);
	}
}
