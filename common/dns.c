/* dns.c — asynchronous DNS lookups: c-ares 1.18 driven by the libuv loop.
 *
 * How the pieces fit:
 * - c-ares announces the sockets it wants watched through its sock_state_cb.
 *   Each socket gets a uv_poll_t (struct dns_sock). When c-ares is about to
 *   close a socket the callback only stops the poll handle (the descriptor is
 *   still open, so libuv removes the right epoll entry) and marks it dead.
 *   uv_close() happens after the c-ares call that closed the socket has
 *   returned (socks_reap() in resolver_leave()), never inside sock_state_cb,
 *   and no later: closing a uv_poll_t does EPOLL_CTL_DEL on its fd number,
 *   which would unregister another handle if the number had been reused.
 *   If c-ares reuses the descriptor number within the same call, the dead
 *   handle is revived instead of a second handle being created for the fd.
 * - One uv_timer_t is armed at ares_timeout() after every call into c-ares;
 *   when it fires, ares_process_fd(BAD, BAD) lets c-ares retry and time out.
 * - Lookups wait in a FIFO; a uv_idle_t hands them to c-ares while fewer than
 *   DNS_MAX_INFLIGHT are in flight. So no callback ever runs inside
 *   dns_lookup(), not even for a malformed name.
 * - Every entry into c-ares and every user callback is bracketed by
 *   resolver_enter()/resolver_leave(), so that dns_resolver_free() called
 *   from a callback (inside ares_process_fd()) only marks the resolver and the
 *   outermost resolver_leave() calls ares_destroy().
 * - ares_query() is used (never ares_search()), with ARES_FLAG_NOSEARCH as
 *   well, so no search domain from resolv.conf is ever appended.
 *
 * TTL: A/AAAA take the smallest TTL c-ares reports in its addrttls (c-ares
 * already caps it by the TTL of any CNAME on the way). MX/TXT/PTR walk the
 * answer section with ares_expand_name() and take the smallest TTL of all
 * answer records (CNAMEs included). TTLs with the top bit set count as 0
 * (RFC 2181 section 8).
 *
 * Timeouts (measured with c-ares 1.18.1): c-ares doubles the timeout after
 * each round over all servers, so one server with timeout_ms=200 and tries=3
 * gives up after 200+400+800 ms. timeout_ms or tries 0 keeps c-ares' value
 * (resolv.conf "options timeout:/attempts:", else 5 s and 4 tries: 75 s with
 * one server), so daemons should pass their own.
 *
 * A cancelled query keeps its c-ares slot (1.18 cannot drop a single query)
 * until its answer or timeout arrives; it counts against DNS_MAX_INFLIGHT.
 *
 * TXT strings are handed out as C strings: a record containing a NUL byte is
 * cut at it.
 *
 * dns_resolver_free() only starts the teardown: the uv handles close in the
 * loop, so the caller must run the loop afterwards (uv_run() until it returns)
 * before uv_loop_close(); the memory is freed in the last close callback.
 */
#include "common/dns.h"
#include "common/log.h"
#include "common/pool.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <ares.h>

/* EDNS0 UDP payload size advertised (the DNS flag day 2020 value): large
 * TXT answers (SPF, DKIM) fit without falling back to TCP. */
#define DNS_EDNS_PAYLOAD 1232
/* Longest name in text form, without the trailing dot (RFC 1035 2.3.4). */
#define DNS_MAX_NAME 253
#define DNS_MAX_LABEL 63
/* "f.f.(32 nibbles).ip6.arpa" plus NUL. */
#define DNS_REVERSE_MAX 80
/* Bytes of a name logged. */
#define DNS_LOG_NAME 256
/* Smallest possible A/AAAA record in an answer: a 1-byte name, 10 bytes of
 * type/class/ttl/rdlength, 4 bytes of address. Bounds the addrttl array. */
#define DNS_MIN_ADDR_RR 15

struct dns_sock {
	uv_poll_t poll;
	struct dns_resolver *resolver;
	struct dns_sock *next;
	ares_socket_t fd;
	bool dead;              /* c-ares closed the fd; uv_close() pending */
};

struct dns_resolver {
	uv_loop_t *loop;
	ares_channel channel;
	uv_timer_t timer;
	uv_idle_t idle;
	struct dns_sock *socks;
	struct dns_query *wait_head, *wait_tail;  /* FIFO not yet given to c-ares */
	unsigned inflight;      /* queries c-ares holds (cancelled ones included) */
	unsigned depth;         /* nesting of resolver_enter() */
	unsigned handles;       /* uv handles not yet closed */
	bool freeing;           /* dns_resolver_free() was called */
};

enum dns_query_state {
	DNS_Q_WAITING,          /* in the FIFO */
	DNS_Q_SENT,             /* handed to c-ares */
};

struct dns_query {
	struct dns_resolver *resolver;
	struct dns_query *prev, *next;  /* FIFO links */
	enum dns_query_state state;
	enum dns_type type;
	bool cancelled;
	const char *bad_name;   /* reason to fail with DNS_PERMFAIL unasked */
	dns_callback *cb;
	void *ctx;
	int family;             /* PTR: the address */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} addr;
	char *name;             /* as the caller gave it */
	char qname[];           /* as sent (the reverse name for PTR) */
};

static void resolver_destroy(struct dns_resolver *r);
static void on_idle(uv_idle_t *idle);

/* ---- small helpers --------------------------------------------------------- */

static const char *type_str(enum dns_type type)
{
	switch (type) {
	case DNS_TYPE_A: return "A";
	case DNS_TYPE_AAAA: return "AAAA";
	case DNS_TYPE_MX: return "MX";
	case DNS_TYPE_TXT: return "TXT";
	case DNS_TYPE_PTR: return "PTR";
	}
	return "?";
}

static int type_rr(enum dns_type type)
{
	switch (type) {
	case DNS_TYPE_A: return ns_t_a;
	case DNS_TYPE_AAAA: return ns_t_aaaa;
	case DNS_TYPE_MX: return ns_t_mx;
	case DNS_TYPE_TXT: return ns_t_txt;
	case DNS_TYPE_PTR: return ns_t_ptr;
	}
	return ns_t_a;
}

const char *dns_status_str(enum dns_status status)
{
	switch (status) {
	case DNS_OK: return "OK";
	case DNS_NXDOMAIN: return "NXDOMAIN";
	case DNS_NODATA: return "NODATA";
	case DNS_TEMPFAIL: return "TEMPFAIL";
	case DNS_PERMFAIL: return "PERMFAIL";
	}
	return "UNKNOWN";
}

/* Every c-ares status of ares.h. Only the name (or our query) being wrong is
 * permanent; anything about servers, network or resources is temporary, and so
 * is any code we do not know. ARES_EDESTRUCTION/ECANCELLED never get here. */
static enum dns_status map_status(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return DNS_OK;
	case ARES_ENOTFOUND:            /* NXDOMAIN */
		return DNS_NXDOMAIN;
	case ARES_ENODATA:              /* NOERROR without answer records */
		return DNS_NODATA;
	case ARES_EFORMERR:             /* the server could not parse the query */
	case ARES_EBADQUERY:            /* the query could not be built */
	case ARES_EBADNAME:
	case ARES_EBADFAMILY:
	case ARES_EBADRESP:             /* malformed answer */
	case ARES_EBADSTR:
	case ARES_EBADFLAGS:
	case ARES_ENONAME:
	case ARES_EBADHINTS:
		return DNS_PERMFAIL;
	case ARES_ESERVFAIL:
	case ARES_ENOTIMP:              /* this server: another one may answer */
	case ARES_EREFUSED:
	case ARES_ECONNREFUSED:
	case ARES_ETIMEOUT:
	case ARES_EOF:
	case ARES_EFILE:
	case ARES_ENOMEM:
	case ARES_ENOTINITIALIZED:
	default:
		return DNS_TEMPFAIL;
	}
}

static uint32_t ttl_clamp(int64_t ttl)
{
	return ttl < 0 || ttl > INT32_MAX ? 0 : (uint32_t)ttl;
}

static const char *printable_name(char *buf, size_t size, const char *name)
{
	return log_printable(buf, size, name, strlen(name));
}

/* ---- names ----------------------------------------------------------------- */

/* NULL when name is a plausible host name, or the reason it is not. Bytes
 * outside printable ASCII and backslashes (c-ares escapes) are refused. */
static const char *check_name(const char *name)
{
	size_t len = strlen(name), label = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0)
		return "empty name";
	if (len > DNS_MAX_NAME)
		return "name too long";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '.') {
			if (label == 0)
				return "empty label in name";
			label = 0;
			continue;
		}
		if (c <= 0x20 || c >= 0x7f || c == '\\')
			return "invalid character in name";
		if (++label > DNS_MAX_LABEL)
			return "label too long in name";
	}
	return NULL;
}

static void reverse_v4(const struct in_addr *a, char *out, size_t size)
{
	const unsigned char *b = (const unsigned char *)&a->s_addr;

	snprintf(out, size, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
}

static void reverse_v6(const struct in6_addr *a, char *out)
{
	static const char hex[] = "0123456789abcdef";
	char *p = out;

	for (int i = 15; i >= 0; i--) {
		*p++ = hex[a->s6_addr[i] & 0x0f];
		*p++ = '.';
		*p++ = hex[a->s6_addr[i] >> 4];
		*p++ = '.';
	}
	strcpy(p, "ip6.arpa");
}

/* Fills q->qname with the reverse name of the address in q->name. */
static int query_set_reverse(struct dns_query *q)
{
	if (inet_pton(AF_INET, q->name, &q->addr.v4) == 1) {
		q->family = AF_INET;
		reverse_v4(&q->addr.v4, q->qname, DNS_REVERSE_MAX);
		return 0;
	}
	if (inet_pton(AF_INET6, q->name, &q->addr.v6) == 1) {
		q->family = AF_INET6;
		reverse_v6(&q->addr.v6, q->qname);
		return 0;
	}
	return -1;
}

/* ---- queries and the FIFO -------------------------------------------------- */

static struct dns_query *query_new(struct dns_resolver *r, enum dns_type type,
				   const char *name, dns_callback *cb, void *ctx)
{
	size_t len = strlen(name);
	size_t qlen = type == DNS_TYPE_PTR ? DNS_REVERSE_MAX : len + 1;
	struct dns_query *q = x_calloc(1, sizeof(*q) + qlen);

	q->resolver = r;
	q->type = type;
	q->cb = cb;
	q->ctx = ctx;
	q->name = x_strdup(name);
	if (type != DNS_TYPE_PTR) {
		memcpy(q->qname, name, len + 1);
		q->bad_name = check_name(name);
	} else if (query_set_reverse(q) < 0) {
		q->bad_name = "not an IP address";
	}
	return q;
}

static void query_free(struct dns_query *q)
{
	free(q->name);
	free(q);
}

static void fifo_push(struct dns_resolver *r, struct dns_query *q)
{
	q->prev = r->wait_tail;
	q->next = NULL;
	if (r->wait_tail != NULL)
		r->wait_tail->next = q;
	else
		r->wait_head = q;
	r->wait_tail = q;
}

static void fifo_remove(struct dns_resolver *r, struct dns_query *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		r->wait_head = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	else
		r->wait_tail = q->prev;
	q->prev = q->next = NULL;
}

static void fifo_clear(struct dns_resolver *r)
{
	while (r->wait_head != NULL) {
		struct dns_query *q = r->wait_head;
		fifo_remove(r, q);
		query_free(q);
	}
}

/* ---- uv handles for c-ares sockets ------------------------------------------ */

/* The resolver is freed when its last handle has closed. */
static void resolver_unref(struct dns_resolver *r)
{
	if (--r->handles == 0 && r->freeing)
		free(r);
}

static void on_handle_closed(uv_handle_t *handle)
{
	resolver_unref(handle->data);
}

static void on_sock_closed(uv_handle_t *handle)
{
	struct dns_sock *s = handle->data;
	struct dns_resolver *r = s->resolver;

	free(s);
	resolver_unref(r);
}

static void sock_close(struct dns_sock *s)
{
	uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static struct dns_sock *sock_find(struct dns_resolver *r, ares_socket_t fd)
{
	for (struct dns_sock *s = r->socks; s != NULL; s = s->next) {
		if (s->fd == fd)
			return s;
	}
	return NULL;
}

static void on_poll(uv_poll_t *poll, int status, int events);

static struct dns_sock *sock_new(struct dns_resolver *r, ares_socket_t fd)
{
	struct dns_sock *s = x_calloc(1, sizeof(*s));
	int ret = uv_poll_init_socket(r->loop, &s->poll, fd);

	if (ret < 0) {
		log_error("dns: cannot watch socket %d: %s", fd, uv_strerror(ret));
		free(s);
		return NULL;
	}
	s->poll.data = s;
	s->resolver = r;
	s->fd = fd;
	s->next = r->socks;
	r->socks = s;
	r->handles++;
	return s;
}

/* c-ares' sock_state_cb. Must not close or free a handle (see the top). */
static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns_resolver *r = data;
	struct dns_sock *s = sock_find(r, fd);
	int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);

	if (events == 0) {
		if (s != NULL && !s->dead) {
			uv_poll_stop(&s->poll);
			s->dead = true;
		}
		return;
	}
	if (r->freeing)
		return;
	if (s == NULL && (s = sock_new(r, fd)) == NULL)
		return;
	s->dead = false;
	uv_poll_start(&s->poll, events, on_poll);
}

/* Closes the handles of sockets c-ares has closed. */
static void socks_reap(struct dns_resolver *r)
{
	struct dns_sock **sp = &r->socks;

	while (*sp != NULL) {
		struct dns_sock *s = *sp;
		if (s->dead) {
			*sp = s->next;
			sock_close(s);
		} else {
			sp = &s->next;
		}
	}
}

/* ---- calls into c-ares ---------------------------------------------------- */

static void on_timer(uv_timer_t *timer);

static void timer_update(struct dns_resolver *r)
{
	struct timeval tv, *tvp = ares_timeout(r->channel, NULL, &tv);

	if (tvp == NULL) {
		uv_timer_stop(&r->timer);
		return;
	}
	/* round up: firing early would spin until c-ares' deadline */
	uint64_t ms = (uint64_t)tvp->tv_sec * 1000 + ((uint64_t)tvp->tv_usec + 999) / 1000;
	uv_timer_start(&r->timer, on_timer, ms, 0);
}

static void resolver_enter(struct dns_resolver *r)
{
	r->depth++;
}

/* Completes what callbacks inside c-ares left to do: a deferred
 * dns_resolver_free(), closing dead socket handles, re-arming the timer. */
static void resolver_leave(struct dns_resolver *r)
{
	if (--r->depth > 0)
		return;
	if (r->freeing) {
		resolver_destroy(r);
		return;
	}
	socks_reap(r);
	timer_update(r);
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
	struct dns_sock *s = poll->data;
	struct dns_resolver *r = s->resolver;
	ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;

	/* on an error let c-ares read and write: it sees the error and closes */
	if (status < 0 || (events & (UV_READABLE | UV_DISCONNECT)) != 0)
		rfd = s->fd;
	if (status < 0 || (events & UV_WRITABLE) != 0)
		wfd = s->fd;
	resolver_enter(r);
	ares_process_fd(r->channel, rfd, wfd);
	resolver_leave(r);
}

static void on_timer(uv_timer_t *timer)
{
	struct dns_resolver *r = timer->data;

	resolver_enter(r);
	ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	resolver_leave(r);
}

/* ---- parsing answers ------------------------------------------------------- */

/* The end of the (possibly compressed) name at p, or NULL. */
static const unsigned char *skip_name(const unsigned char *p,
				      const unsigned char *abuf, int alen)
{
	char *name;
	long enclen;

	if (ares_expand_name(p, abuf, alen, &name, &enclen) != ARES_SUCCESS)
		return NULL;
	ares_free_string(name);
	return p + enclen;
}

static uint32_t get32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Smallest TTL of the answer section of abuf (0 if it cannot be read). */
static uint32_t answer_min_ttl(const unsigned char *abuf, int alen)
{
	const unsigned char *p = abuf + NS_HFIXEDSZ, *end = abuf + alen;
	uint32_t min = UINT32_MAX;

	if (alen < NS_HFIXEDSZ)
		return 0;
	unsigned qdcount = ((unsigned)abuf[4] << 8) | abuf[5];
	unsigned ancount = ((unsigned)abuf[6] << 8) | abuf[7];
	for (unsigned i = 0; i < qdcount; i++) {
		if ((p = skip_name(p, abuf, alen)) == NULL || end - p < NS_QFIXEDSZ)
			return 0;
		p += NS_QFIXEDSZ;
	}
	for (unsigned i = 0; i < ancount; i++) {
		if ((p = skip_name(p, abuf, alen)) == NULL || end - p < NS_RRFIXEDSZ)
			return 0;
		uint32_t ttl = ttl_clamp(get32(p + 4));
		size_t rdlen = ((size_t)p[8] << 8) | p[9];
		p += NS_RRFIXEDSZ;
		if ((size_t)(end - p) < rdlen)
			return 0;
		p += rdlen;
		if (ttl < min)
			min = ttl;
	}
	return min == UINT32_MAX ? 0 : min;
}

static void add_addr(struct pool *pool, struct dns_result *res, int family,
		     const void *addr, int ttl)
{
	size_t size = family == AF_INET ? INET_ADDRSTRLEN : INET6_ADDRSTRLEN;
	char *s = pool_alloc(pool, size);

	inet_ntop(family, addr, s, (socklen_t)size);
	res->u.addrs[res->count++] = s;
	if (res->count == 1 || ttl_clamp(ttl) < res->ttl)
		res->ttl = ttl_clamp(ttl);
}

static int parse_a(struct pool *pool, const unsigned char *abuf, int alen,
		   struct dns_result *res)
{
	int n = alen / DNS_MIN_ADDR_RR + 1;
	struct ares_addrttl *at = pool_alloc(pool, (size_t)n * sizeof(*at));
	int ret = ares_parse_a_reply(abuf, alen, NULL, at, &n);

	if (ret != ARES_SUCCESS)
		return ret;
	if (n <= 0)
		return ARES_ENODATA;
	res->u.addrs = pool_alloc(pool, (size_t)n * sizeof(char *));
	for (int i = 0; i < n; i++)
		add_addr(pool, res, AF_INET, &at[i].ipaddr, at[i].ttl);
	return ARES_SUCCESS;
}

static int parse_aaaa(struct pool *pool, const unsigned char *abuf, int alen,
		      struct dns_result *res)
{
	int n = alen / DNS_MIN_ADDR_RR + 1;
	struct ares_addr6ttl *at = pool_alloc(pool, (size_t)n * sizeof(*at));
	int ret = ares_parse_aaaa_reply(abuf, alen, NULL, at, &n);

	if (ret != ARES_SUCCESS)
		return ret;
	if (n <= 0)
		return ARES_ENODATA;
	res->u.addrs = pool_alloc(pool, (size_t)n * sizeof(char *));
	for (int i = 0; i < n; i++)
		add_addr(pool, res, AF_INET6, &at[i].ip6addr, at[i].ttl);
	return ARES_SUCCESS;
}

struct mx_sort {
	unsigned preference;
	size_t order;
	char *host;
};

static int mx_compare(const void *a, const void *b)
{
	const struct mx_sort *x = a, *y = b;

	if (x->preference != y->preference)
		return x->preference < y->preference ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int parse_mx(struct pool *pool, const unsigned char *abuf, int alen,
		    struct dns_result *res)
{
	struct ares_mx_reply *list, *mx;
	int ret = ares_parse_mx_reply(abuf, alen, &list);
	size_t n = 0;

	if (ret != ARES_SUCCESS)
		return ret;
	for (mx = list; mx != NULL; mx = mx->next)
		n++;
	struct mx_sort *tmp = pool_alloc(pool, (n + 1) * sizeof(*tmp));
	n = 0;
	for (mx = list; mx != NULL; mx = mx->next, n++) {
		tmp[n].preference = mx->priority;
		tmp[n].order = n;
		tmp[n].host = pool_strdup(pool, mx->host);
	}
	ares_free_data(list);
	if (n == 0)
		return ARES_ENODATA;
	qsort(tmp, n, sizeof(*tmp), mx_compare);
	res->u.mx = pool_alloc(pool, n * sizeof(struct dns_mx));
	for (size_t i = 0; i < n; i++) {
		res->u.mx[i].preference = tmp[i].preference;
		res->u.mx[i].host = tmp[i].host;
	}
	res->count = n;
	res->ttl = answer_min_ttl(abuf, alen);
	return ARES_SUCCESS;
}

/* Joins the strings of the record starting at *txt into one C string and
 * advances *txt to the next record. */
static char *txt_join(struct pool *pool, struct ares_txt_ext **txt)
{
	struct ares_txt_ext *t = *txt, *end = t->next;
	size_t len = t->length;

	for (; end != NULL && !end->record_start; end = end->next)
		len += end->length;
	char *s = pool_alloc(pool, len + 1), *p = s;
	for (; t != end; t = t->next) {
		memcpy(p, t->txt, t->length);
		p += t->length;
	}
	*txt = end;
	return s;
}

static int parse_txt(struct pool *pool, const unsigned char *abuf, int alen,
		     struct dns_result *res)
{
	struct ares_txt_ext *list, *t;
	int ret = ares_parse_txt_reply_ext(abuf, alen, &list);
	size_t n = 0;

	if (ret != ARES_SUCCESS)
		return ret;
	for (t = list; t != NULL; t = t->next) {
		if (t->record_start || t == list)
			n++;
	}
	res->u.txt = pool_alloc(pool, (n + 1) * sizeof(char *));
	for (t = list; t != NULL; )
		res->u.txt[res->count++] = txt_join(pool, &t);
	ares_free_data(list);
	if (n == 0)
		return ARES_ENODATA;
	res->ttl = answer_min_ttl(abuf, alen);
	return ARES_SUCCESS;
}

static int parse_ptr(struct pool *pool, const struct dns_query *q,
		     const unsigned char *abuf, int alen, struct dns_result *res)
{
	struct hostent *host;
	int addrlen = q->family == AF_INET ? (int)sizeof(q->addr.v4) : (int)sizeof(q->addr.v6);
	int ret = ares_parse_ptr_reply(abuf, alen, &q->addr, addrlen, q->family, &host);
	size_t n = 0;

	if (ret != ARES_SUCCESS)
		return ret;
	/* c-ares puts every PTR target in h_aliases, the last one in h_name too */
	while (host->h_aliases != NULL && host->h_aliases[n] != NULL)
		n++;
	res->u.names = pool_alloc(pool, (n + 1) * sizeof(char *));
	for (size_t i = 0; i < n; i++)
		res->u.names[i] = pool_strdup(pool, host->h_aliases[i]);
	if (n == 0 && host->h_name != NULL)
		res->u.names[n++] = pool_strdup(pool, host->h_name);
	ares_free_hostent(host);
	if (n == 0)
		return ARES_ENODATA;
	res->count = n;
	res->ttl = answer_min_ttl(abuf, alen);
	return ARES_SUCCESS;
}

static int parse_answer(struct pool *pool, const struct dns_query *q,
			const unsigned char *abuf, int alen, struct dns_result *res)
{
	switch (q->type) {
	case DNS_TYPE_A: return parse_a(pool, abuf, alen, res);
	case DNS_TYPE_AAAA: return parse_aaaa(pool, abuf, alen, res);
	case DNS_TYPE_MX: return parse_mx(pool, abuf, alen, res);
	case DNS_TYPE_TXT: return parse_txt(pool, abuf, alen, res);
	case DNS_TYPE_PTR: return parse_ptr(pool, q, abuf, alen, res);
	}
	return ARES_EBADQUERY;
}

/* ---- delivering results ---------------------------------------------------- */

static void log_result(const struct dns_query *q, const struct dns_result *res)
{
	char name[DNS_LOG_NAME];

	if (!log_debug_enabled())
		return;
	printable_name(name, sizeof(name), q->name);
	if (res->status == DNS_OK)
		log_debug("dns: %s %s: OK, %zu record%s, ttl=%u", type_str(q->type),
			  name, res->count, res->count == 1 ? "" : "s", res->ttl);
	else
		log_debug("dns: %s %s: %s (%s)", type_str(q->type), name,
			  dns_status_str(res->status), res->error);
}

static void query_deliver(const struct dns_query *q, const struct dns_result *res)
{
	log_result(q, res);
	q->cb(res, q->ctx);
}

static void query_fail(const struct dns_query *q, enum dns_status status,
		       const char *error)
{
	struct dns_result res = { .status = status, .error = error };

	query_deliver(q, &res);
}

static void query_answer(const struct dns_query *q, int status,
			 const unsigned char *abuf, int alen)
{
	struct pool *pool = pool_new(0);
	struct dns_result res = { .status = DNS_OK };

	if (status == ARES_SUCCESS && abuf != NULL)
		status = parse_answer(pool, q, abuf, alen, &res);
	else if (status == ARES_SUCCESS)
		status = ARES_EBADRESP;
	if (status == ARES_SUCCESS)
		query_deliver(q, &res);
	else
		query_fail(q, map_status(status), ares_strerror(status));
	pool_free(&pool);
}

/* ares_callback of every query. */
static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;
	struct dns_resolver *r = q->resolver;

	r->inflight--;
	if (r->freeing || status == ARES_EDESTRUCTION) {
		query_free(q);
		return;
	}
	if (r->wait_head != NULL)
		uv_idle_start(&r->idle, on_idle);   /* a slot is free */
	if (!q->cancelled && status != ARES_ECANCELLED)
		query_answer(q, status, abuf, alen);
	query_free(q);
}

static void query_start(struct dns_resolver *r, struct dns_query *q)
{
	char name[DNS_LOG_NAME];

	if (q->bad_name != NULL) {
		query_fail(q, DNS_PERMFAIL, q->bad_name);
		query_free(q);
		return;
	}
	if (log_debug_enabled())
		log_debug("dns: query %s %s", type_str(q->type),
			  printable_name(name, sizeof(name), q->qname));
	q->state = DNS_Q_SENT;
	r->inflight++;
	ares_query(r->channel, q->qname, ns_c_in, type_rr(q->type), on_answer, q);
}

/* Hands waiting queries to c-ares while there is room. */
static void on_idle(uv_idle_t *idle)
{
	struct dns_resolver *r = idle->data;

	resolver_enter(r);
	while (!r->freeing && r->wait_head != NULL && r->inflight < DNS_MAX_INFLIGHT) {
		struct dns_query *q = r->wait_head;
		fifo_remove(r, q);
		query_start(r, q);
	}
	if (r->wait_head == NULL || r->inflight >= DNS_MAX_INFLIGHT)
		uv_idle_stop(idle);
	resolver_leave(r);
}

/* ---- public API -------------------------------------------------------------- */

struct dns_query *dns_lookup(struct dns_resolver *resolver, enum dns_type type,
			     const char *name, dns_callback *cb, void *ctx)
{
	struct dns_query *q = query_new(resolver, type, name != NULL ? name : "", cb, ctx);

	fifo_push(resolver, q);
	uv_idle_start(&resolver->idle, on_idle);
	return q;
}

void dns_cancel(struct dns_query *query)
{
	if (query == NULL)
		return;
	if (query->state == DNS_Q_WAITING) {
		fifo_remove(query->resolver, query);
		query_free(query);
	} else {
		/* c-ares 1.18 cannot drop one query: on_answer() frees it */
		query->cancelled = true;
	}
}

static int channel_init(struct dns_resolver *r, const char *servers,
			unsigned timeout_ms, unsigned tries, const char **error_r)
{
	struct ares_options opts;
	int mask = ARES_OPT_FLAGS | ARES_OPT_SOCK_STATE_CB | ARES_OPT_EDNSPSZ;
	int ret;

	memset(&opts, 0, sizeof(opts));
	opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_EDNS;
	opts.sock_state_cb = on_sock_state;
	opts.sock_state_cb_data = r;
	opts.ednspsz = DNS_EDNS_PAYLOAD;
	if (timeout_ms != 0) {
		mask |= ARES_OPT_TIMEOUTMS;
		opts.timeout = timeout_ms > INT_MAX ? INT_MAX : (int)timeout_ms;
	}
	if (tries != 0) {
		mask |= ARES_OPT_TRIES;
		opts.tries = tries > INT_MAX ? INT_MAX : (int)tries;
	}
	if ((ret = ares_init_options(&r->channel, &opts, mask)) != ARES_SUCCESS) {
		*error_r = ares_strerror(ret);
		return -1;
	}
	/* right after init: it has read /etc/resolv.conf */
	if (servers != NULL && servers[0] != '\0' &&
	    (ret = ares_set_servers_ports_csv(r->channel, servers)) != ARES_SUCCESS) {
		*error_r = ret == ARES_EBADSTR || ret == ARES_ENODATA ?
			   "invalid DNS server list" : ares_strerror(ret);
		ares_destroy(r->channel);
		return -1;
	}
	return 0;
}

struct dns_resolver *dns_resolver_new(uv_loop_t *loop, const char *servers,
				      unsigned timeout_ms, unsigned tries,
				      const char **error_r)
{
	struct dns_resolver *r = x_calloc(1, sizeof(*r));
	int ret = ares_library_init(ARES_LIB_INIT_ALL);

	if (ret != ARES_SUCCESS) {
		*error_r = ares_strerror(ret);
		free(r);
		return NULL;
	}
	r->loop = loop;
	if (channel_init(r, servers, timeout_ms, tries, error_r) < 0) {
		ares_library_cleanup();
		free(r);
		return NULL;
	}
	uv_timer_init(loop, &r->timer);
	uv_idle_init(loop, &r->idle);
	r->timer.data = r;
	r->idle.data = r;
	r->handles = 2;
	return r;
}

/* Runs with no c-ares call on the stack. */
static void resolver_destroy(struct dns_resolver *r)
{
	fifo_clear(r);
	/* calls on_answer(ARES_EDESTRUCTION) for every query in flight and
	 * on_sock_state(fd, 0, 0) for every open socket */
	ares_destroy(r->channel);
	ares_library_cleanup();
	while (r->socks != NULL) {
		struct dns_sock *s = r->socks;
		r->socks = s->next;
		sock_close(s);
	}
	uv_close((uv_handle_t *)&r->timer, on_handle_closed);
	uv_close((uv_handle_t *)&r->idle, on_handle_closed);
}

void dns_resolver_free(struct dns_resolver **resolver)
{
	struct dns_resolver *r = *resolver;

	if (r == NULL)
		return;
	*resolver = NULL;
	r->freeing = true;
	fifo_clear(r);
	if (r->depth == 0)
		resolver_destroy(r);
}
