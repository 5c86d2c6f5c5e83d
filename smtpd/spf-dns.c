/* spf-dns.c — libspf2's DNS layer on res_nquery() with a private res_state aimed
 * at the configured resolvers (dns { servers }). libspf2's own resolv layer uses
 * the process-wide /etc/resolv.conf and cannot be pointed elsewhere.
 *
 * Answers are turned into SPF_dns_rr_t as libspf2's resolv layer does: only the
 * answer records of the asked type; TXT character-strings of one record joined;
 * MX and PTR as names. Failures keep glibc's h_errno (HOST_NOT_FOUND for NXDOMAIN,
 * NO_DATA for an empty answer, TRY_AGAIN for SERVFAIL or a timeout, NO_RECOVERY
 * for REFUSED and the like), which libspf2 maps to none / temperror.
 *
 * IPv4 resolvers go into nsaddr_list; IPv6 ones, as res_ninit() itself stores
 * them, into _u._ext.nsaddrs with the nsaddr_list entry's family 0 (glibc copies
 * the IPv4 entries there at the first query since _u._ext.nscount is 0). */
#include "smtpd/spf-dns.h"
#include "common/log.h"
#include "common/pool.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The largest DNS message (TCP); allocated per lookup on the worker's heap. */
#define SPF_DNS_ANSWER_MAX 65535
/* Longest "ADDR:PORT" item of the servers list. */
#define SPF_DNS_ITEM_MAX 80

struct spf_dns {
	SPF_dns_server_t layer;      /* first: libspf2 gets &layer, hook points back */
	struct __res_state res;
};

static SPF_dns_rr_t *failure(SPF_dns_server_t *d, const char *domain, ns_type type, int herrno)
{
	return SPF_dns_rr_new_init(d, domain, type, 0, herrno);
}

/* One answer record into rr->rr[n]; false when it is not usable. */
static bool add_rr(SPF_dns_rr_t *rr, int n, ns_msg *msg, ns_rr *r, ns_type type)
{
	const unsigned char *data = ns_rr_rdata(*r);
	size_t len = ns_rr_rdlen(*r);
	char name[NS_MAXDNAME];
	switch (type) {
	case ns_t_a:
		if (len != 4 || SPF_dns_rr_buf_realloc(rr, n, sizeof(struct in_addr)) != SPF_E_SUCCESS)
			return false;
		memcpy(&rr->rr[n]->a, data, 4);
		return true;
	case ns_t_aaaa:
		if (len != 16 || SPF_dns_rr_buf_realloc(rr, n, sizeof(struct in6_addr)) != SPF_E_SUCCESS)
			return false;
		memcpy(&rr->rr[n]->aaaa, data, 16);
		return true;
	case ns_t_mx:
	case ns_t_ptr:
		if (type == ns_t_mx) {
			if (len < NS_INT16SZ)
				return false;
			data += NS_INT16SZ;
		}
		if (ns_name_uncompress(ns_msg_base(*msg), ns_msg_end(*msg), data, name,
				       sizeof(name)) < 0)
			return false;
		if (SPF_dns_rr_buf_realloc(rr, n, strlen(name) + 1) != SPF_E_SUCCESS)
			return false;
		strcpy(type == ns_t_mx ? rr->rr[n]->mx : rr->rr[n]->ptr, name);
		return true;
	case ns_t_txt:
	case ns_t_spf: {
		if (SPF_dns_rr_buf_realloc(rr, n, len + 1) != SPF_E_SUCCESS)
			return false;
		char *out = rr->rr[n]->txt;
		size_t o = 0;
		for (size_t i = 0; i < len;) {
			size_t l = data[i++];
			if (l > len - i)
				return false;
			memcpy(out + o, data + i, l);
			o += l;
			i += l;
		}
		out[o] = '\0';
		return true;
	}
	default:
		return false;
	}
}

static SPF_dns_rr_t *lookup(SPF_dns_server_t *d, const char *domain, ns_type type,
			    int should_cache)
{
	(void)should_cache;
	struct spf_dns *sd = d->hook;
	unsigned char *buf = malloc(SPF_DNS_ANSWER_MAX);
	if (buf == NULL)
		return failure(d, domain, type, TRY_AGAIN);
	int len = res_nquery(&sd->res, domain, ns_c_in, type, buf, SPF_DNS_ANSWER_MAX);
	if (len < 0) {
		int h = sd->res.res_h_errno;
		free(buf);
		if (h != HOST_NOT_FOUND && h != NO_DATA && h != NO_RECOVERY)
			h = TRY_AGAIN;
		return failure(d, domain, type, h);
	}
	if (len > SPF_DNS_ANSWER_MAX)
		len = SPF_DNS_ANSWER_MAX;
	ns_msg msg;
	if (ns_initparse(buf, len, &msg) < 0) {
		free(buf);
		return failure(d, domain, type, NO_RECOVERY);
	}
	SPF_dns_rr_t *rr = SPF_dns_rr_new_init(d, domain, type, 0, NETDB_SUCCESS);
	if (rr == NULL) {
		free(buf);
		return NULL;
	}
	int n = 0, count = ns_msg_count(msg, ns_s_an);
	long ttl = -1;
	for (int i = 0; i < count; i++) {
		ns_rr r;
		if (ns_parserr(&msg, ns_s_an, i, &r) < 0 || ns_rr_type(r) != type)
			continue;
		if (!add_rr(rr, n, &msg, &r, type))
			continue;
		if (ttl < 0 || (long)ns_rr_ttl(r) < ttl)
			ttl = (long)ns_rr_ttl(r);
		n++;
	}
	free(buf);
	rr->num_rr = n;
	rr->ttl = ttl < 0 ? 0 : ttl;
	if (n == 0)
		rr->herrno = NO_DATA;
	return rr;
}

/* "1.2.3.4", "1.2.3.4:53", "[::1]:53", "::1" into sin (1) or sin6 (0); -1 bad. */
static int parse_server(const char *item, struct sockaddr_in *sin, struct sockaddr_in6 *sin6)
{
	char host[SPF_DNS_ITEM_MAX];
	const char *port = NULL;
	size_t len = strlen(item);
	if (len == 0 || len >= sizeof(host))
		return -1;
	if (item[0] == '[') {
		const char *end = strchr(item, ']');
		if (end == NULL)
			return -1;
		memcpy(host, item + 1, (size_t)(end - item - 1));
		host[end - item - 1] = '\0';
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			return -1;
	} else if (strchr(item, ':') != NULL && strchr(item, ':') == strrchr(item, ':')) {
		const char *colon = strchr(item, ':');
		memcpy(host, item, (size_t)(colon - item));
		host[colon - item] = '\0';
		port = colon + 1;
	} else {
		memcpy(host, item, len + 1);
	}
	long p = 53;
	if (port != NULL) {
		char *end;
		p = strtol(port, &end, 10);
		if (*port == '\0' || *end != '\0' || p < 1 || p > 65535)
			return -1;
	}
	memset(sin6, 0, sizeof(*sin6));
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		return 0;
	}
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)p);
	return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 1 : -1;
}

static int set_servers(struct __res_state *res, const char *servers, const char **error_r)
{
	int n = 0;
	struct sockaddr_in v4[MAXNS];
	struct sockaddr_in6 v6[MAXNS];
	bool is_v6[MAXNS];
	const char *p = servers;
	while (*p != '\0') {
		while (*p == ',' || *p == ' ')
			p++;
		size_t len = strcspn(p, ", ");
		if (len == 0)
			break;
		char item[SPF_DNS_ITEM_MAX];
		if (len >= sizeof(item)) {
			*error_r = "resolver address too long";
			return -1;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		p += len;
		if (n >= MAXNS)
			continue;   /* as resolv.conf: the first MAXNS */
		int kind = parse_server(item, &v4[n], &v6[n]);
		if (kind < 0) {
			*error_r = "bad resolver address in dns.servers";
			return -1;
		}
		is_v6[n++] = kind == 0;
	}
	if (n == 0) {
		*error_r = "no resolver in dns.servers";
		return -1;
	}
	/* drop what res_ninit read from resolv.conf, IPv6 entries included */
	for (int i = 0; i < MAXNS; i++) {
		free(res->_u._ext.nsaddrs[i]);
		res->_u._ext.nsaddrs[i] = NULL;
	}
	for (int i = 0; i < n; i++) {
		if (!is_v6[i]) {
			res->nsaddr_list[i] = v4[i];
			continue;
		}
		struct sockaddr_in6 *a = malloc(sizeof(*a));
		if (a == NULL) {
			*error_r = "out of memory";
			return -1;
		}
		*a = v6[i];
		memset(&res->nsaddr_list[i], 0, sizeof(res->nsaddr_list[i]));
		res->_u._ext.nsaddrs[i] = a;
	}
	res->nscount = n;
	res->_u._ext.nscount = 0;
	return 0;
}

SPF_dns_server_t *spf_dns_new(const char *servers, unsigned timeout_ms, unsigned tries,
			      const char **error_r)
{
	struct spf_dns *sd = x_calloc(1, sizeof(*sd));
	if (res_ninit(&sd->res) != 0) {
		free(sd);
		*error_r = "res_ninit failed";
		return NULL;
	}
	sd->res.options &= ~(unsigned long)(RES_DNSRCH | RES_DEFNAMES);
	sd->res.retrans = timeout_ms < 1000 ? 1 : (int)((timeout_ms + 999) / 1000);
	sd->res.retry = tries < 1 ? 1 : (int)tries;
	if (servers != NULL && servers[0] != '\0' && set_servers(&sd->res, servers, error_r) < 0) {
		res_nclose(&sd->res);
		free(sd);
		return NULL;
	}
	sd->layer.destroy = NULL;    /* freed by spf_dns_free, not by libspf2 */
	sd->layer.lookup = lookup;
	sd->layer.name = "warren";
	sd->layer.hook = sd;
	return &sd->layer;
}

void spf_dns_free(SPF_dns_server_t **dns)
{
	if (*dns == NULL)
		return;
	struct spf_dns *sd = (*dns)->hook;
	res_nclose(&sd->res);
	free(sd);
	*dns = NULL;
}
