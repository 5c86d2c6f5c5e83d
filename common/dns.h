/* dns.h — asynchronous DNS lookups (c-ares driven by the libuv loop).
 *
 * One resolver per process (per loop). Queries run concurrently; at most
 * DNS_MAX_INFLIGHT are handed to c-ares at once, the rest wait in a FIFO.
 * Callbacks always run on the loop thread, never from inside dns_lookup().
 * Answers are returned parsed; MX answers are sorted by preference.
 */
#ifndef WARREN_DNS_H
#define WARREN_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* c-ares misbehaves with very many queries on one channel (DESIGN.md). */
#define DNS_MAX_INFLIGHT 100

struct dns_resolver;
struct dns_query;

enum dns_type {
	DNS_TYPE_A,
	DNS_TYPE_AAAA,
	DNS_TYPE_MX,
	DNS_TYPE_TXT,
	DNS_TYPE_PTR,   /* name is an IPv4 or IPv6 address in text form */
};

enum dns_status {
	DNS_OK,         /* answer records present */
	DNS_NXDOMAIN,   /* the name does not exist */
	DNS_NODATA,     /* the name exists, no records of this type */
	DNS_TEMPFAIL,   /* timeout, SERVFAIL, refused, network error: try again later */
	DNS_PERMFAIL,   /* malformed name or answer */
};

struct dns_mx {
	unsigned preference;
	char *host;
};

struct dns_result {
	enum dns_status status;
	const char *error;      /* human-readable reason when status != DNS_OK */
	uint32_t ttl;           /* smallest TTL of the answer records (0 if unknown) */
	size_t count;           /* number of entries in the array for the type */
	union {
		char **addrs;        /* A / AAAA: addresses in text form */
		struct dns_mx *mx;   /* MX: sorted by preference, ties in answer order */
		char **txt;          /* TXT: each record's strings concatenated (cut at a NUL) */
		char **names;        /* PTR: host names */
	} u;
};

/* The result is only valid during the callback. */
typedef void dns_callback(const struct dns_result *result, void *ctx);

/* servers: comma-separated "ADDR[:PORT]" list (IPv6 as "[ADDR]:PORT"), or NULL/""
 * for the system's /etc/resolv.conf. timeout_ms is the first try's timeout (c-ares
 * doubles it each round); tries in total. 0 keeps c-ares' defaults (5 s, 4 tries:
 * over a minute with one server), so daemons pass their own values. */
struct dns_resolver *dns_resolver_new(uv_loop_t *loop, const char *servers,
				      unsigned timeout_ms, unsigned tries,
				      const char **error_r);
/* Cancels every pending query (their callbacks are not called) and frees the
 * resolver once c-ares and libuv have let go of their handles: the caller must run
 * the loop afterwards before uv_loop_close(). Every query handle is invalid after
 * this. May be called from inside a query callback. */
void dns_resolver_free(struct dns_resolver **resolver);

/* Starts a lookup. The returned handle stays valid until the callback has run
 * or dns_cancel() was called. */
struct dns_query *dns_lookup(struct dns_resolver *resolver, enum dns_type type,
			     const char *name, dns_callback *cb, void *ctx);
/* The callback of this query will not be called. Not from inside that query's own
 * callback. A cancelled query keeps its c-ares slot (counting against
 * DNS_MAX_INFLIGHT) until its answer or timeout arrives. */
void dns_cancel(struct dns_query *query);

const char *dns_status_str(enum dns_status status);

#endif
