/* net.c — connections on libuv with an optional TLS memory-BIO layer. */
#include "common/net.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/pool.h"
#include "common/proxy.h"
#include "common/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

/* Buckets of a listener's per-address connection table. */
#define NET_IP_BUCKETS 256
/* Encrypted input held in OpenSSL's read BIO before the socket is paused. */
#define NET_TLS_RBIO_MAX (256 * 1024)
/* Default longest line when the protocol sets none. */
#define NET_DEFAULT_MAX_LINE 8192
/* Input buffers larger than this are given back when they empty. */
#define NET_KEEP_BUFFER 16384

struct net_ip_count {
	struct net_ip_count *next;
	unsigned count;
	char ip[INET6_ADDRSTRLEN];
};

struct net_listener {
	uv_tcp_t tcp;
	uv_loop_t *loop;
	struct net_listener_settings settings;
	char *busy_reply;
	char *name;
	char *tls_min_protocol, *tls_ciphers, *tls_ciphersuites;
	struct proxy_nets *proxy_nets;   /* parsed proxy_trusted */
	net_accept_callback *cb;
	void *ctx;
	unsigned connections;
	unsigned refs;          /* the listener + each connection accepted from it */
	bool closed;
	struct net_ip_count *ips[NET_IP_BUCKETS];
};

enum {
	CONN_CLOSING = 0x01,      /* net_conn_close(): flush, then close */
	CONN_CLOSED = 0x02,       /* uv_close() called */
	CONN_PAUSED = 0x04,       /* the protocol does not want on_input */
	CONN_SKIP_LINE = 0x08,    /* dropping the rest of an overlong line */
	CONN_READING = 0x10,      /* uv_read_start() is in effect */
	CONN_HANDSHAKE = 0x20,    /* TLS handshake in progress */
	CONN_IN_FLUSH = 0x40,     /* on the flush list */
	CONN_IN_KICK = 0x80,      /* on the kick list (on_input wanted) */
	CONN_DRAIN = 0x100,       /* the output passed NET_WRITE_HIGH */
	CONN_EOF = 0x200,         /* the peer closed its side */
	CONN_IN_CALLBACK = 0x400, /* inside on_input */
	CONN_SHUTDOWN = 0x800,    /* TLS close_notify sent */
	CONN_PROXY = 0x1000,      /* waiting for the PROXY protocol header */
};

struct net_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;          /* idle, handshake, PROXY header, closing */
	uv_timer_t input_timer;    /* unconsumed input waits too long */
	uv_timer_t session_timer;  /* total session time */
	int pending_closes;
	unsigned flags;
	struct net_listener *listener;
	const struct net_conn_callbacks *cb;
	void *ctx;

	struct buf in;           /* plaintext input */
	size_t line_consume;     /* bytes of the last returned line, dropped on the next call */
	size_t scan_pos;         /* input already searched for LF */
	size_t max_line;
	struct buf out;          /* plaintext output not yet flushed */
	size_t queued;           /* bytes handed to libuv and not yet written */
	unsigned idle_ms;
	unsigned input_ms, session_ms;

	SSL *ssl;
	BIO *rbio, *wbio;        /* the network side of the TLS layer */

	struct net_conn *flush_next, *kick_next;

	struct sockaddr_storage peer, local;
	char peer_ip[INET6_ADDRSTRLEN];
	char local_ip[INET6_ADDRSTRLEN];
	unsigned peer_port, local_port;
};

struct net_write_req {
	uv_write_t req;
	struct net_conn *conn;
	size_t len;
	char data[];
};

/* The process's network context: one loop per process (DESIGN.md). */
static struct net_loop_ctx {
	uv_loop_t *loop;
	uv_check_t check;
	uv_idle_t idle;
	bool idle_active;
	struct net_conn *flush_list;
	struct net_conn *kick_list;
	char read_buf[NET_READ_CHUNK];
} *net_ctx;

static void conn_flush(struct net_conn *conn);
static void conn_dispatch_input(struct net_conn *conn);
static void conn_close_handles(struct net_conn *conn);
static void conn_update_reading(struct net_conn *conn);

/* ---- the loop context: batched flushes and input kicks ---------------------- */

static void ctx_run_lists(void)
{
	while (net_ctx->kick_list != NULL) {
		struct net_conn *conn = net_ctx->kick_list;
		net_ctx->kick_list = conn->kick_next;
		conn->flags &= ~CONN_IN_KICK;
		conn_dispatch_input(conn);
	}
	while (net_ctx->flush_list != NULL) {
		struct net_conn *conn = net_ctx->flush_list;
		net_ctx->flush_list = conn->flush_next;
		conn->flags &= ~CONN_IN_FLUSH;
		conn_flush(conn);
	}
	if (net_ctx->idle_active && net_ctx->kick_list == NULL && net_ctx->flush_list == NULL) {
		uv_idle_stop(&net_ctx->idle);
		net_ctx->idle_active = false;
	}
}

static void ctx_check_cb(uv_check_t *handle)
{
	(void)handle;
	ctx_run_lists();
}

static void ctx_idle_cb(uv_idle_t *handle)
{
	(void)handle;
	ctx_run_lists();
}

static void ctx_init(uv_loop_t *loop)
{
	if (net_ctx != NULL)
		return;
	net_ctx = x_calloc(1, sizeof(*net_ctx));
	net_ctx->loop = loop;
	uv_check_init(loop, &net_ctx->check);
	uv_check_start(&net_ctx->check, ctx_check_cb);
	uv_unref((uv_handle_t *)&net_ctx->check);
	uv_idle_init(loop, &net_ctx->idle);
}

/* Makes sure the loop does not sleep while work is listed. */
static void ctx_wake(void)
{
	if (!net_ctx->idle_active) {
		uv_idle_start(&net_ctx->idle, ctx_idle_cb);
		net_ctx->idle_active = true;
	}
}

static void conn_schedule_flush(struct net_conn *conn)
{
	if (conn->flags & (CONN_IN_FLUSH | CONN_CLOSED))
		return;
	conn->flags |= CONN_IN_FLUSH;
	conn->flush_next = net_ctx->flush_list;
	net_ctx->flush_list = conn;
	ctx_wake();
}

static void conn_schedule_kick(struct net_conn *conn)
{
	if (conn->flags & (CONN_IN_KICK | CONN_CLOSED))
		return;
	conn->flags |= CONN_IN_KICK;
	conn->kick_next = net_ctx->kick_list;
	net_ctx->kick_list = conn;
	ctx_wake();
}

static void list_remove(struct net_conn **list, struct net_conn *conn, int kick)
{
	for (struct net_conn **p = list; *p != NULL;
	     p = kick ? &(*p)->kick_next : &(*p)->flush_next) {
		if (*p == conn) {
			*p = kick ? conn->kick_next : conn->flush_next;
			return;
		}
	}
}

/* ---- addresses ------------------------------------------------------------------ */

static void addr_to_text(const struct sockaddr_storage *ss, char *ip, size_t size,
			 unsigned *port_r)
{
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		*port_r = ntohs(s6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], ip, (socklen_t)size);
			return;
		}
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, (socklen_t)size);
	} else if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		*port_r = ntohs(s4->sin_port);
		inet_ntop(AF_INET, &s4->sin_addr, ip, (socklen_t)size);
	} else {
		snprintf(ip, size, "unknown");
		*port_r = 0;
	}
}

static unsigned ip_hash(const char *ip)
{
	unsigned h = 5381;
	for (const char *p = ip; *p != '\0'; p++)
		h = h * 33 + (unsigned char)*p;
	return h % NET_IP_BUCKETS;
}

static struct net_ip_count **ip_find(struct net_listener *l, const char *ip)
{
	struct net_ip_count **p = &l->ips[ip_hash(ip)];
	while (*p != NULL && strcmp((*p)->ip, ip) != 0)
		p = &(*p)->next;
	return p;
}

static unsigned ip_count(struct net_listener *l, const char *ip)
{
	struct net_ip_count **p = ip_find(l, ip);
	return *p != NULL ? (*p)->count : 0;
}

static void ip_add(struct net_listener *l, const char *ip, int delta)
{
	struct net_ip_count **p = ip_find(l, ip);
	if (*p == NULL) {
		if (delta < 0)
			return;
		*p = x_calloc(1, sizeof(**p));
		snprintf((*p)->ip, sizeof((*p)->ip), "%s", ip);
	}
	(*p)->count += (unsigned)delta;
	if ((*p)->count == 0) {
		struct net_ip_count *dead = *p;
		*p = dead->next;
		free(dead);
	}
}

/* ---- listeners -------------------------------------------------------------------- */

static void listener_unref(struct net_listener *l);

static void listener_close_cb(uv_handle_t *handle)
{
	listener_unref(handle->data);
}

static void listener_unref(struct net_listener *l)
{
	if (--l->refs > 0)
		return;
	for (size_t i = 0; i < NET_IP_BUCKETS; i++) {
		while (l->ips[i] != NULL) {
			struct net_ip_count *next = l->ips[i]->next;
			free(l->ips[i]);
			l->ips[i] = next;
		}
	}
	free(l->busy_reply);
	free(l->name);
	free(l->tls_min_protocol);
	free(l->tls_ciphers);
	free(l->tls_ciphersuites);
	proxy_nets_free(&l->proxy_nets);
	free(l);
}

static void timer_cb(uv_timer_t *timer);
static void conn_accepted(struct net_conn *conn);
static void proxy_start(struct net_conn *conn);
static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void conn_init_handles(uv_loop_t *loop, struct net_conn *conn)
{
	uv_tcp_init(loop, &conn->tcp);
	uv_timer_init(loop, &conn->timer);
	uv_timer_init(loop, &conn->input_timer);
	uv_timer_init(loop, &conn->session_timer);
	conn->tcp.data = conn;
	conn->timer.data = conn;
	conn->input_timer.data = conn;
	conn->session_timer.data = conn;
}

static struct net_conn *conn_new(struct net_listener *l)
{
	struct net_conn *conn = x_calloc(1, sizeof(*conn));
	conn_init_handles(l->loop, conn);
	conn->listener = l;
	l->refs++;
	conn->max_line = NET_DEFAULT_MAX_LINE;
	buf_init(&conn->in, conn->max_line + 2 * NET_READ_CHUNK);
	buf_init(&conn->out, SIZE_MAX);
	return conn;
}

static void refuse_busy(struct net_conn *conn, const char *why)
{
	struct net_listener *l = conn->listener;
	log_warn("%s: refusing connection from [%s]: %s", l->name, conn->peer_ip, why);
	static const struct net_conn_callbacks none = { 0 };
	net_conn_set_handler(conn, &none, NULL);
	if (l->busy_reply != NULL)
		net_conn_write_str(conn, l->busy_reply);
	net_conn_close(conn);
}

/* The client is known (after the PROXY header, if any): per-address limit,
 * then the protocol. */
static void conn_accepted(struct net_conn *conn)
{
	struct net_listener *l = conn->listener;
	if (l->settings.max_connections_per_ip != 0 &&
	    ip_count(l, conn->peer_ip) > l->settings.max_connections_per_ip) {
		refuse_busy(conn, "too many connections from this address");
		return;
	}
	l->cb(conn, l->ctx);
	if (conn->cb == NULL && !(conn->flags & CONN_CLOSING))
		net_conn_abort(conn);
}

/* ---- PROXY protocol ------------------------------------------------------------ */

static void proxy_refuse(struct net_conn *conn, const char *why)
{
	static const struct net_conn_callbacks none = { 0 };
	log_warn("%s: refusing connection from [%s]: %s", conn->listener->name, conn->peer_ip,
		 why);
	conn->flags &= ~CONN_PROXY;
	net_conn_set_handler(conn, &none, NULL);
	net_conn_abort(conn);
}

static void proxy_start(struct net_conn *conn)
{
	struct net_listener *l = conn->listener;
	if (!proxy_nets_match(l->proxy_nets, &conn->peer)) {
		proxy_refuse(conn, "PROXY protocol listener, address not in proxy_trusted");
		return;
	}
	conn->flags |= CONN_PROXY;
	unsigned ms = l->settings.proxy_timeout_ms != 0 ? l->settings.proxy_timeout_ms :
		NET_PROXY_TIMEOUT_MS;
	uv_timer_start(&conn->timer, timer_cb, ms, 0);
}

static void tls_read(struct net_conn *conn, const char *data, size_t len);

/* Bytes while waiting for the header: 1 when the connection goes on (header
 * done, what followed it handed on), 0 when more is needed, -1 when closed. */
static int proxy_input(struct net_conn *conn, const char *data, size_t len)
{
	struct net_listener *l = conn->listener;
	if (buf_append(&conn->in, data, len) < 0) {
		proxy_refuse(conn, "PROXY protocol header too long");
		return -1;
	}
	struct proxy_header hdr;
	const char *error = NULL;
	enum proxy_status st = proxy_parse(buf_data(&conn->in), buf_len(&conn->in), &hdr, &error);
	if (st == PROXY_NEED_MORE)
		return 0;
	if (st == PROXY_MALFORMED) {
		char why[160];
		snprintf(why, sizeof(why), "bad PROXY protocol header: %s", error);
		proxy_refuse(conn, why);
		return -1;
	}
	conn->flags &= ~CONN_PROXY;
	uv_timer_stop(&conn->timer);
	char proxy_ip[INET6_ADDRSTRLEN];
	snprintf(proxy_ip, sizeof(proxy_ip), "%s", conn->peer_ip);
	if (!hdr.local) {
		ip_add(l, conn->peer_ip, -1);
		conn->peer = hdr.src;
		conn->local = hdr.dst;
		addr_to_text(&conn->peer, conn->peer_ip, sizeof(conn->peer_ip), &conn->peer_port);
		addr_to_text(&conn->local, conn->local_ip, sizeof(conn->local_ip),
			     &conn->local_port);
		ip_add(l, conn->peer_ip, 1);
	}
	log_info("%s: connect from [%s]:%u via PROXY v%d from [%s]%s", l->name, conn->peer_ip,
		 conn->peer_port, hdr.version, proxy_ip, hdr.local ? " (local)" : "");
	/* what came after the header is the protocol's (or TLS's) first input */
	size_t rest = buf_len(&conn->in) - hdr.len;
	char *after = rest > 0 ? x_malloc(rest) : NULL;
	if (rest > 0)
		memcpy(after, buf_data(&conn->in) + hdr.len, rest);
	buf_clear(&conn->in);
	conn_accepted(conn);
	if (rest > 0 && !(conn->flags & (CONN_CLOSED | CONN_CLOSING))) {
		if (conn->ssl != NULL)
			tls_read(conn, after, rest);
		else
			buf_append(&conn->in, after, rest);
	}
	free(after);
	return (conn->flags & CONN_CLOSED) ? -1 : 1;
}

static void connection_cb(uv_stream_t *server, int status)
{
	struct net_listener *l = server->data;
	if (status < 0) {
		log_warn("%s: accept: %s", l->name, uv_strerror(status));
		return;
	}
	struct net_conn *conn = conn_new(l);
	l->connections++;
	if (uv_accept(server, (uv_stream_t *)&conn->tcp) != 0) {
		ip_add(l, conn->peer_ip, 1);
		conn_close_handles(conn);
		return;
	}
	int len = sizeof(conn->peer);
	uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&conn->peer, &len);
	len = sizeof(conn->local);
	uv_tcp_getsockname(&conn->tcp, (struct sockaddr *)&conn->local, &len);
	addr_to_text(&conn->peer, conn->peer_ip, sizeof(conn->peer_ip), &conn->peer_port);
	addr_to_text(&conn->local, conn->local_ip, sizeof(conn->local_ip), &conn->local_port);
	uv_tcp_nodelay(&conn->tcp, 1);

	ip_add(l, conn->peer_ip, 1);
	conn->flags |= CONN_READING;
	uv_read_start((uv_stream_t *)&conn->tcp, alloc_cb, read_cb);

	if (l->settings.max_connections != 0 && l->connections > l->settings.max_connections) {
		refuse_busy(conn, "too many connections");
		return;
	}
	if (l->settings.proxy_protocol) {
		proxy_start(conn);
		return;
	}
	conn_accepted(conn);
}

static char *strdup_or_null(const char *s)
{
	return s != NULL ? x_strdup(s) : NULL;
}

static void listener_apply(struct net_listener *l, const struct net_listener_settings *s)
{
	free(l->busy_reply);
	free(l->name);
	free(l->tls_min_protocol);
	free(l->tls_ciphers);
	free(l->tls_ciphersuites);
	proxy_nets_free(&l->proxy_nets);
	l->settings = *s;
	l->busy_reply = strdup_or_null(s->busy_reply);
	l->name = x_strdup(s->name != NULL ? s->name : "listener");
	l->tls_min_protocol = strdup_or_null(s->tls_min_protocol);
	l->tls_ciphers = strdup_or_null(s->tls_ciphers);
	l->tls_ciphersuites = strdup_or_null(s->tls_ciphersuites);
	if (s->proxy_protocol) {
		const char *error = NULL;
		l->proxy_nets = proxy_nets_new(s->proxy_trusted, s->n_proxy_trusted, &error);
		if (l->proxy_nets == NULL)   /* the config check catches this first */
			log_error("%s: proxy_trusted: %s; no peer is trusted", l->name, error);
	}
	l->settings.busy_reply = l->busy_reply;
	l->settings.name = l->name;
	l->settings.tls_min_protocol = l->tls_min_protocol;
	l->settings.tls_ciphers = l->tls_ciphers;
	l->settings.tls_ciphersuites = l->tls_ciphersuites;
	l->settings.proxy_trusted = NULL;   /* not kept: l->proxy_nets is */
	l->settings.n_proxy_trusted = 0;
}

static struct net_listener *listener_new(uv_loop_t *loop,
					 const struct net_listener_settings *settings,
					 net_accept_callback *cb, void *ctx)
{
	ctx_init(loop);
	struct net_listener *l = x_calloc(1, sizeof(*l));
	l->loop = loop;
	l->cb = cb;
	l->ctx = ctx;
	l->refs = 1;
	listener_apply(l, settings);
	uv_tcp_init(loop, &l->tcp);
	l->tcp.data = l;
	return l;
}

static struct net_listener *listener_start(struct net_listener *l, const char **error_r)
{
	int ret = uv_listen((uv_stream_t *)&l->tcp, 511, connection_cb);
	if (ret < 0) {
		*error_r = uv_strerror(ret);
		l->closed = true;
		uv_close((uv_handle_t *)&l->tcp, listener_close_cb);
		return NULL;
	}
	return l;
}

struct net_listener *net_listener_open_fd(uv_loop_t *loop, int fd,
					  const struct net_listener_settings *settings,
					  net_accept_callback *cb, void *ctx, const char **error_r)
{
	struct net_listener *l = listener_new(loop, settings, cb, ctx);
	int ret = uv_tcp_open(&l->tcp, fd);
	if (ret < 0) {
		*error_r = uv_strerror(ret);
		l->closed = true;
		uv_close((uv_handle_t *)&l->tcp, listener_close_cb);
		return NULL;
	}
	return listener_start(l, error_r);
}

int net_bind_socket(const char *address, unsigned port, int *fd_r, const char **error_r)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	socklen_t len;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, address, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, address, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		len = sizeof(*s6);
	} else {
		*error_r = "not an IP address";
		return -1;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = strerror(errno);
		return -1;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 511) < 0) {
		*error_r = strerror(errno);
		close(fd);
		return -1;
	}
	*fd_r = fd;
	return 0;
}

struct net_listener *net_listener_open(uv_loop_t *loop, const char *address, unsigned port,
				       const struct net_listener_settings *settings,
				       net_accept_callback *cb, void *ctx, const char **error_r)
{
	int fd;
	if (net_bind_socket(address, port, &fd, error_r) < 0)
		return NULL;
	struct net_listener *l = net_listener_open_fd(loop, fd, settings, cb, ctx, error_r);
	if (l == NULL)
		close(fd);
	return l;
}

void net_listener_update(struct net_listener *l, const struct net_listener_settings *settings)
{
	listener_apply(l, settings);
}

void net_listener_close(struct net_listener *l)
{
	if (l == NULL || l->closed)
		return;
	l->closed = true;
	uv_close((uv_handle_t *)&l->tcp, listener_close_cb);
}

unsigned net_listener_connections(const struct net_listener *l)
{
	return l->connections;
}

unsigned net_listener_port(const struct net_listener *l)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	unsigned port = 0;
	char ip[INET6_ADDRSTRLEN];
	if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len) == 0)
		addr_to_text(&ss, ip, sizeof(ip), &port);
	return port;
}

/* ---- connection setup --------------------------------------------------------------- */

void net_conn_set_handler(struct net_conn *conn, const struct net_conn_callbacks *cb, void *ctx)
{
	conn->cb = cb;
	conn->ctx = ctx;
}

void net_conn_set_idle_timeout(struct net_conn *conn, unsigned ms)
{
	conn->idle_ms = ms;
	if (conn->flags & CONN_CLOSED)
		return;
	if (ms == 0)
		uv_timer_stop(&conn->timer);
	else
		uv_timer_start(&conn->timer, timer_cb, ms, 0);
}

static void deadline_cb(uv_timer_t *timer);

void net_conn_set_input_timeout(struct net_conn *conn, unsigned ms)
{
	conn->input_ms = ms;
	if (ms == 0 && !(conn->flags & CONN_CLOSED))
		uv_timer_stop(&conn->input_timer);
}

void net_conn_set_session_timeout(struct net_conn *conn, unsigned ms)
{
	conn->session_ms = ms;
	if (conn->flags & CONN_CLOSED)
		return;
	if (ms == 0)
		uv_timer_stop(&conn->session_timer);
	else
		uv_timer_start(&conn->session_timer, deadline_cb, ms, 0);
}

/* After the protocol looked at its input: the input deadline runs while
 * unconsumed input waits, restarting whenever the protocol consumed some. */
static void input_deadline_update(struct net_conn *conn, bool progress)
{
	if (conn->input_ms == 0 || (conn->flags & CONN_CLOSED))
		return;
	size_t pending = buf_len(&conn->in) - conn->line_consume;
	if (pending == 0 || (conn->flags & (CONN_PAUSED | CONN_DRAIN | CONN_CLOSING)))
		uv_timer_stop(&conn->input_timer);
	else if (progress || !uv_is_active((uv_handle_t *)&conn->input_timer))
		uv_timer_start(&conn->input_timer, deadline_cb, conn->input_ms, 0);
}

static void deadline_cb(uv_timer_t *timer)
{
	struct net_conn *conn = timer->data;
	if (conn->flags & (CONN_CLOSING | CONN_CLOSED))
		return;
	if (timer == &conn->session_timer)
		log_info("%s: session time limit of %u ms reached for [%s]",
			 conn->listener != NULL ? conn->listener->name : "connection",
			 conn->session_ms, conn->peer_ip);
	else
		log_info("%s: command not complete within %u ms from [%s] (slow client)",
			 conn->listener != NULL ? conn->listener->name : "connection",
			 conn->input_ms, conn->peer_ip);
	if (conn->cb != NULL && conn->cb->on_timeout != NULL)
		conn->cb->on_timeout(conn, conn->ctx);
	net_conn_close(conn);
}

void net_conn_set_max_line(struct net_conn *conn, size_t max)
{
	conn->max_line = max;
	/* room for a whole line plus what one read can add */
	conn->in.max = max + 2 * NET_READ_CHUNK;
}

const char *net_conn_peer_ip(const struct net_conn *conn) { return conn->peer_ip; }
unsigned net_conn_peer_port(const struct net_conn *conn) { return conn->peer_port; }
const struct sockaddr_storage *net_conn_peer_addr(const struct net_conn *conn) { return &conn->peer; }
const char *net_conn_local_ip(const struct net_conn *conn) { return conn->local_ip; }
unsigned net_conn_local_port(const struct net_conn *conn) { return conn->local_port; }

/* ---- closing ---------------------------------------------------------------------------- */

static void conn_free(struct net_conn *conn)
{
	struct net_listener *l = conn->listener;
	if (conn->cb != NULL && conn->cb->on_close != NULL)
		conn->cb->on_close(conn, conn->ctx);
	if (l != NULL) {   /* NULL: an outgoing connection (net_connect) */
		l->connections--;
		ip_add(l, conn->peer_ip, -1);
		listener_unref(l);
	}
	if (conn->ssl != NULL)
		SSL_free(conn->ssl);   /* frees the BIOs too */
	buf_free(&conn->in);
	buf_free(&conn->out);
	free(conn);
}

static void conn_handle_closed(uv_handle_t *handle)
{
	struct net_conn *conn = handle->data;
	if (--conn->pending_closes == 0)
		conn_free(conn);
}

static void conn_close_handles(struct net_conn *conn)
{
	if (conn->flags & CONN_CLOSED)
		return;
	conn->flags |= CONN_CLOSED;
	if (conn->flags & CONN_IN_FLUSH)
		list_remove(&net_ctx->flush_list, conn, 0);
	if (conn->flags & CONN_IN_KICK)
		list_remove(&net_ctx->kick_list, conn, 1);
	conn->flags &= ~(CONN_IN_FLUSH | CONN_IN_KICK);
	conn->pending_closes = 4;
	uv_close((uv_handle_t *)&conn->tcp, conn_handle_closed);
	uv_close((uv_handle_t *)&conn->timer, conn_handle_closed);
	uv_close((uv_handle_t *)&conn->input_timer, conn_handle_closed);
	uv_close((uv_handle_t *)&conn->session_timer, conn_handle_closed);
}

void net_conn_abort(struct net_conn *conn)
{
	conn->flags |= CONN_CLOSING;
	conn_close_handles(conn);
}

void net_conn_close(struct net_conn *conn)
{
	if (conn->flags & (CONN_CLOSING | CONN_CLOSED))
		return;
	conn->flags |= CONN_CLOSING;
	if (conn->flags & CONN_READING) {
		uv_read_stop((uv_stream_t *)&conn->tcp);
		conn->flags &= ~CONN_READING;
	}
	/* give the peer a bounded time to take what is queued */
	uv_timer_start(&conn->timer, timer_cb, 10000, 0);
	conn_schedule_flush(conn);
}

/* ---- output ------------------------------------------------------------------------------- */

static void write_cb(uv_write_t *req, int status)
{
	struct net_write_req *wr = (struct net_write_req *)req;
	struct net_conn *conn = wr->conn;
	conn->queued -= wr->len;
	free(wr);
	if (conn->flags & CONN_CLOSED)
		return;
	if (status < 0) {
		log_debug("write to [%s]: %s", conn->peer_ip, uv_strerror(status));
		net_conn_abort(conn);
		return;
	}
	if ((conn->flags & CONN_CLOSING) && conn->queued == 0 && buf_len(&conn->out) == 0) {
		conn_close_handles(conn);
		return;
	}
	if ((conn->flags & CONN_DRAIN) && net_conn_output_pending(conn) < NET_WRITE_LOW) {
		conn->flags &= ~CONN_DRAIN;
		conn_update_reading(conn);
		if (conn->cb != NULL && conn->cb->on_drain != NULL)
			conn->cb->on_drain(conn, conn->ctx);
	}
}

/* Hands bytes to the socket: try at once, queue the rest. */
static void socket_send(struct net_conn *conn, const char *data, size_t len)
{
	if (len == 0)
		return;
	if (conn->queued == 0) {
		uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
		int n = uv_try_write((uv_stream_t *)&conn->tcp, &b, 1);
		if (n > 0) {
			data += n;
			len -= (size_t)n;
		} else if (n < 0 && n != UV_EAGAIN) {
			log_debug("write to [%s]: %s", conn->peer_ip, uv_strerror(n));
			net_conn_abort(conn);
			return;
		}
		if (len == 0)
			return;
	}
	struct net_write_req *wr = x_malloc(sizeof(*wr) + len);
	memcpy(wr->data, data, len);
	wr->conn = conn;
	wr->len = len;
	uv_buf_t b = uv_buf_init(wr->data, (unsigned)len);
	int ret = uv_write(&wr->req, (uv_stream_t *)&conn->tcp, &b, 1, write_cb);
	if (ret < 0) {
		free(wr);
		log_debug("write to [%s]: %s", conn->peer_ip, uv_strerror(ret));
		net_conn_abort(conn);
		return;
	}
	conn->queued += len;
}

/* Moves what OpenSSL produced (records, alerts) to the socket. */
static void tls_send_pending(struct net_conn *conn)
{
	char chunk[16384];
	int n;
	while (!(conn->flags & CONN_CLOSED) && (n = BIO_read(conn->wbio, chunk, sizeof(chunk))) > 0)
		socket_send(conn, chunk, (size_t)n);
}

static void conn_flush(struct net_conn *conn)
{
	if (conn->flags & CONN_CLOSED)
		return;
	if (conn->ssl == NULL) {
		socket_send(conn, buf_data(&conn->out), buf_len(&conn->out));
		buf_clear(&conn->out);
	} else if (!(conn->flags & CONN_HANDSHAKE) && buf_len(&conn->out) > 0 &&
		   !SSL_in_init(conn->ssl)) {
		int n = SSL_write(conn->ssl, buf_data(&conn->out), (int)buf_len(&conn->out));
		if (n > 0)
			buf_consume(&conn->out, (size_t)n);
	}
	if (conn->ssl != NULL && (conn->flags & CONN_CLOSING) && buf_len(&conn->out) == 0 &&
	    !(conn->flags & (CONN_HANDSHAKE | CONN_SHUTDOWN))) {
		/* close_notify after the last of our data */
		SSL_shutdown(conn->ssl);
		conn->flags |= CONN_SHUTDOWN;
	}
	if (conn->ssl != NULL)
		tls_send_pending(conn);
	if (conn->flags & CONN_CLOSED)
		return;
	if (buf_len(&conn->out) == 0 && conn->out.cap > NET_KEEP_BUFFER)
		buf_free(&conn->out);
	if ((conn->flags & CONN_CLOSING) && conn->queued == 0 &&
	    (buf_len(&conn->out) == 0 || conn->ssl == NULL || SSL_in_init(conn->ssl)))
		conn_close_handles(conn);
	else if (net_conn_output_pending(conn) > NET_WRITE_HIGH) {
		conn->flags |= CONN_DRAIN;
		conn_update_reading(conn);
	}
}

void net_conn_write(struct net_conn *conn, const void *data, size_t len)
{
	if (conn->flags & (CONN_CLOSING | CONN_CLOSED))
		return;
	buf_append(&conn->out, data, len);
	conn_schedule_flush(conn);
}

void net_conn_write_str(struct net_conn *conn, const char *s)
{
	net_conn_write(conn, s, strlen(s));
}

void net_conn_printf(struct net_conn *conn, const char *fmt, ...)
{
	if (conn->flags & (CONN_CLOSING | CONN_CLOSED))
		return;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&conn->out, fmt, ap);
	va_end(ap);
	conn_schedule_flush(conn);
}

size_t net_conn_output_pending(const struct net_conn *conn)
{
	return conn->queued + buf_len(&conn->out);
}

bool net_conn_output_full(const struct net_conn *conn)
{
	return net_conn_output_pending(conn) > NET_WRITE_HIGH;
}

/* ---- input ------------------------------------------------------------------------------------ */

/* Reads from the socket only while there is room for the input and the output
 * is not backed up. */
static void conn_update_reading(struct net_conn *conn)
{
	if (conn->flags & (CONN_CLOSING | CONN_CLOSED | CONN_EOF))
		return;
	bool want = buf_room(&conn->in) >= NET_READ_CHUNK && !(conn->flags & CONN_DRAIN);
	if (conn->ssl != NULL && BIO_ctrl_pending(conn->rbio) > NET_TLS_RBIO_MAX)
		want = false;
	if (want && !(conn->flags & CONN_READING)) {
		uv_read_start((uv_stream_t *)&conn->tcp, alloc_cb, read_cb);
		conn->flags |= CONN_READING;
	} else if (!want && (conn->flags & CONN_READING)) {
		uv_read_stop((uv_stream_t *)&conn->tcp);
		conn->flags &= ~CONN_READING;
	}
}

static void tls_read(struct net_conn *conn, const char *data, size_t len);

/* Decrypted or encrypted input may wait inside OpenSSL while the plaintext buffer
 * was full; once the protocol has made room, continue with it. */
static void tls_continue(struct net_conn *conn)
{
	if (conn->ssl == NULL || (conn->flags & (CONN_CLOSED | CONN_CLOSING | CONN_HANDSHAKE)))
		return;
	if (buf_room(&conn->in) == 0 ||
	    (SSL_pending(conn->ssl) == 0 && BIO_ctrl_pending(conn->rbio) == 0))
		return;
	size_t before = buf_len(&conn->in);
	tls_read(conn, NULL, 0);
	if (!(conn->flags & CONN_CLOSED) && buf_len(&conn->in) > before)
		conn_schedule_kick(conn);
}

static void conn_dispatch_input(struct net_conn *conn)
{
	if (conn->flags & (CONN_CLOSING | CONN_CLOSED | CONN_PAUSED | CONN_IN_CALLBACK))
		return;
	if (conn->cb == NULL || conn->cb->on_input == NULL)
		return;
	if (buf_len(&conn->in) - conn->line_consume == 0 && !(conn->flags & CONN_EOF))
		return;
	size_t before = buf_len(&conn->in) - conn->line_consume;
	conn->flags |= CONN_IN_CALLBACK;
	conn->cb->on_input(conn, conn->ctx);
	conn->flags &= ~CONN_IN_CALLBACK;
	if (conn->flags & CONN_CLOSED)
		return;
	input_deadline_update(conn, buf_len(&conn->in) - conn->line_consume < before);
	if (buf_len(&conn->in) == 0 && conn->in.cap > NET_KEEP_BUFFER)
		buf_free(&conn->in);
	tls_continue(conn);
	conn_update_reading(conn);
}

enum net_line_status net_conn_read_line(struct net_conn *conn, struct net_line *line_r)
{
	if (conn->line_consume > 0) {
		buf_consume(&conn->in, conn->line_consume);
		conn->line_consume = 0;
		conn->scan_pos = 0;
	}
	for (;;) {
		const char *data = buf_data(&conn->in);
		size_t len = buf_len(&conn->in);
		const char *nl = conn->scan_pos < len ?
			memchr(data + conn->scan_pos, '\n', len - conn->scan_pos) : NULL;
		if (nl == NULL) {
			conn->scan_pos = len;
			if (len > conn->max_line || (conn->flags & CONN_SKIP_LINE)) {
				/* drop the overlong line as it arrives */
				conn->flags |= CONN_SKIP_LINE;
				buf_clear(&conn->in);
				conn->scan_pos = 0;
			}
			return NET_LINE_NEED_MORE;
		}
		size_t end = (size_t)(nl - data);
		conn->line_consume = end + 1;
		if ((conn->flags & CONN_SKIP_LINE) || end > conn->max_line + 1) {
			conn->flags &= ~CONN_SKIP_LINE;
			return NET_LINE_TOO_LONG;
		}
		line_r->data = data;
		line_r->crlf = end > 0 && data[end - 1] == '\r';
		line_r->len = line_r->crlf ? end - 1 : end;
		if (line_r->len > conn->max_line)
			return NET_LINE_TOO_LONG;
		return NET_LINE_OK;
	}
}

size_t net_conn_input(struct net_conn *conn, const char **data_r)
{
	if (conn->line_consume > 0) {
		buf_consume(&conn->in, conn->line_consume);
		conn->line_consume = 0;
		conn->scan_pos = 0;
	}
	*data_r = buf_data(&conn->in);
	return buf_len(&conn->in);
}

void net_conn_consume(struct net_conn *conn, size_t n)
{
	if (conn->line_consume > 0) {
		buf_consume(&conn->in, conn->line_consume);
		conn->line_consume = 0;
	}
	buf_consume(&conn->in, n);
	conn->scan_pos = 0;
}

void net_conn_pause_input(struct net_conn *conn)
{
	conn->flags |= CONN_PAUSED;
	/* input the server does not read is not the client's delay */
	if (!(conn->flags & CONN_CLOSED))
		uv_timer_stop(&conn->input_timer);
}

void net_conn_resume_input(struct net_conn *conn)
{
	if (!(conn->flags & CONN_PAUSED))
		return;
	conn->flags &= ~CONN_PAUSED;
	conn_schedule_kick(conn);
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	(void)handle;
	(void)suggested;
	*buf = uv_buf_init(net_ctx->read_buf, sizeof(net_ctx->read_buf));
}

static void tls_failed(struct net_conn *conn, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char reason[256] = "";
	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	log_info("TLS %s failed for [%s]: %s", what, conn->peer_ip,
		 reason[0] != '\0' ? reason : "connection closed");
	tls_send_pending(conn);   /* the alert, if any */
	net_conn_close(conn);
}

static int tls_handshake(struct net_conn *conn)
{
	int ret = SSL_do_handshake(conn->ssl);
	if (ret == 1) {
		conn->flags &= ~CONN_HANDSHAKE;
		net_conn_set_idle_timeout(conn, conn->idle_ms);
		log_debug("TLS connection established from [%s]: %s with cipher %s",
			  conn->peer_ip, SSL_get_version(conn->ssl), SSL_get_cipher_name(conn->ssl));
		tls_send_pending(conn);
		if (conn->cb != NULL && conn->cb->on_tls_ready != NULL)
			conn->cb->on_tls_ready(conn, conn->ctx);
		conn_schedule_flush(conn);
		return 0;
	}
	int err = SSL_get_error(conn->ssl, ret);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		tls_send_pending(conn);
		return 1;
	}
	tls_failed(conn, "handshake");
	return -1;
}

/* Feeds len bytes from the socket (may be 0) to OpenSSL and decrypts what it
 * can into the plaintext input, as far as the input buffer has room. */
static void tls_read(struct net_conn *conn, const char *data, size_t len)
{
	if (len > 0 && BIO_write(conn->rbio, data, (int)len) != (int)len) {
		net_conn_abort(conn);
		return;
	}
	if ((conn->flags & CONN_HANDSHAKE) && tls_handshake(conn) != 0)
		return;
	while (!(conn->flags & (CONN_CLOSED | CONN_CLOSING))) {
		size_t room = buf_room(&conn->in);
		if (room == 0)
			break;
		char *p = buf_reserve(&conn->in, room > 16384 ? 16384 : room);
		int n = SSL_read(conn->ssl, p, (int)(room > 16384 ? 16384 : room));
		if (n > 0) {
			buf_commit(&conn->in, (size_t)n);
			continue;
		}
		int err = SSL_get_error(conn->ssl, n);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
			break;
		if (err == SSL_ERROR_ZERO_RETURN) {
			conn->flags |= CONN_EOF;
			break;
		}
		tls_failed(conn, "read");
		return;
	}
	tls_send_pending(conn);
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
	struct net_conn *conn = stream->data;
	if (nread == 0)
		return;
	if (nread < 0) {
		if (nread != UV_EOF)
			log_debug("read from [%s]: %s", conn->peer_ip, uv_strerror((int)nread));
		conn->flags |= CONN_EOF;
		uv_read_stop(stream);
		conn->flags &= ~CONN_READING;
		if (conn->flags & CONN_PROXY) {
			proxy_refuse(conn, "closed before a PROXY protocol header");
			return;
		}
		/* let the protocol see what was buffered, then close */
		conn_dispatch_input(conn);
		if (!(conn->flags & CONN_CLOSED))
			net_conn_abort(conn);
		return;
	}
	if (conn->flags & CONN_CLOSING)
		return;   /* draining output only */
	if (conn->flags & CONN_PROXY) {
		/* the header first; what follows it is handed on by proxy_input */
		if (proxy_input(conn, b->base, (size_t)nread) <= 0)
			return;
	} else {
		if (conn->idle_ms != 0 && !(conn->flags & CONN_HANDSHAKE))
			uv_timer_start(&conn->timer, timer_cb, conn->idle_ms, 0);
		if (conn->ssl != NULL)
			tls_read(conn, b->base, (size_t)nread);
		else if (buf_append(&conn->in, b->base, (size_t)nread) < 0) {
			log_warn("input from [%s] overflows the buffer", conn->peer_ip);
			net_conn_abort(conn);
			return;
		}
	}
	if (conn->flags & CONN_CLOSED)
		return;
	conn_dispatch_input(conn);
	if (!(conn->flags & CONN_CLOSED) && (conn->flags & CONN_EOF))
		net_conn_abort(conn);
	else if (!(conn->flags & CONN_CLOSED))
		conn_update_reading(conn);
}

static void timer_cb(uv_timer_t *timer)
{
	struct net_conn *conn = timer->data;
	if (conn->flags & CONN_CLOSING) {
		conn_close_handles(conn);   /* the peer did not take our last output */
		return;
	}
	if (conn->flags & CONN_HANDSHAKE) {
		log_info("TLS handshake timeout from [%s]", conn->peer_ip);
		net_conn_abort(conn);
		return;
	}
	if (conn->flags & CONN_PROXY) {
		proxy_refuse(conn, "no PROXY protocol header in time");
		return;
	}
	log_debug("idle timeout after %u ms from [%s]", conn->idle_ms, conn->peer_ip);
	if (conn->cb != NULL && conn->cb->on_timeout != NULL)
		conn->cb->on_timeout(conn, conn->ctx);
	net_conn_close(conn);
}

/* ---- TLS -------------------------------------------------------------------------------------- */

int net_conn_start_tls(struct net_conn *conn, struct tls_server *tls)
{
	if (conn->ssl != NULL || tls == NULL)
		return -1;
	/* what we already queued (the "220 Ready") goes out in plaintext */
	conn_flush(conn);
	/* CVE-2011-0411: anything pipelined behind STARTTLS is dropped, not executed */
	buf_clear(&conn->in);
	conn->line_consume = 0;
	conn->scan_pos = 0;
	conn->flags &= ~CONN_SKIP_LINE;

	conn->ssl = tls_server_ssl_new(tls);
	if (conn->ssl == NULL)
		return -1;
	struct net_listener *l = conn->listener;
	if (l != NULL && (l->tls_min_protocol != NULL || l->tls_ciphers != NULL ||
			  l->tls_ciphersuites != NULL)) {
		char *err = NULL;
		if (tls_ssl_set_policy(conn->ssl, l->tls_min_protocol, l->tls_ciphers,
				       l->tls_ciphersuites, &err) < 0) {
			log_error("%s: TLS policy: %s", l->name, err);
			free(err);
			SSL_free(conn->ssl);
			conn->ssl = NULL;
			return -1;
		}
	}
	conn->rbio = BIO_new(BIO_s_mem());
	conn->wbio = BIO_new(BIO_s_mem());
	BIO_set_mem_eof_return(conn->rbio, -1);
	SSL_set_bio(conn->ssl, conn->rbio, conn->wbio);
	SSL_set_accept_state(conn->ssl);
	conn->flags |= CONN_HANDSHAKE;
	uv_timer_start(&conn->timer, timer_cb, NET_TLS_HANDSHAKE_TIMEOUT_MS, 0);
	return 0;
}

/* ---- outgoing connections ----------------------------------------------------------- */

struct net_connect_req {
	uv_connect_t req;
	struct net_conn *conn;
	net_connect_callback *cb;
	void *ctx;
	bool timed_out;
};

static void connect_timer_cb(uv_timer_t *timer)
{
	struct net_conn *conn = timer->data;
	struct net_connect_req *cr = conn->ctx;
	cr->timed_out = true;
	conn_close_handles(conn);   /* connect_cb follows with UV_ECANCELED */
}

static void connect_cb(uv_connect_t *req, int status)
{
	struct net_connect_req *cr = req->data;
	struct net_conn *conn = cr->conn;
	conn->ctx = NULL;
	if (status == 0 && (conn->flags & CONN_CLOSED))
		status = UV_ECANCELED;
	if (status < 0) {
		cr->cb(NULL, cr->timed_out ? UV_ETIMEDOUT : status, cr->ctx);
		conn_close_handles(conn);
		free(cr);
		return;
	}
	uv_timer_stop(&conn->timer);
	int len = sizeof(conn->peer);
	uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&conn->peer, &len);
	len = sizeof(conn->local);
	uv_tcp_getsockname(&conn->tcp, (struct sockaddr *)&conn->local, &len);
	addr_to_text(&conn->peer, conn->peer_ip, sizeof(conn->peer_ip), &conn->peer_port);
	addr_to_text(&conn->local, conn->local_ip, sizeof(conn->local_ip), &conn->local_port);
	uv_tcp_nodelay(&conn->tcp, 1);
	conn->flags |= CONN_READING;
	uv_read_start((uv_stream_t *)&conn->tcp, alloc_cb, read_cb);
	cr->cb(conn, 0, cr->ctx);
	if (conn->cb == NULL && !(conn->flags & CONN_CLOSING))
		net_conn_abort(conn);
	free(cr);
}

int net_connect(uv_loop_t *loop, const struct sockaddr *addr, const struct sockaddr *source,
		unsigned timeout_ms, net_connect_callback *cb, void *ctx)
{
	if (net_ctx == NULL)
		ctx_init(loop);
	struct net_conn *conn = x_calloc(1, sizeof(*conn));
	conn_init_handles(loop, conn);
	conn->max_line = NET_DEFAULT_MAX_LINE;
	buf_init(&conn->in, conn->max_line + 2 * NET_READ_CHUNK);
	buf_init(&conn->out, SIZE_MAX);
	struct net_connect_req *cr = x_calloc(1, sizeof(*cr));
	cr->req.data = cr;
	cr->conn = conn;
	cr->cb = cb;
	cr->ctx = ctx;
	conn->ctx = cr;   /* until connected (the timer finds the request here) */
	int ret = source != NULL ? uv_tcp_bind(&conn->tcp, source, 0) : 0;
	if (ret == 0)
		ret = uv_tcp_connect(&cr->req, &conn->tcp, addr, connect_cb);
	if (ret < 0) {
		free(cr);
		conn->ctx = NULL;
		conn_close_handles(conn);
		return ret;
	}
	if (timeout_ms != 0)
		uv_timer_start(&conn->timer, connect_timer_cb, timeout_ms, 0);
	return 0;
}

int net_conn_start_tls_client(struct net_conn *conn, SSL *ssl)
{
	if (conn->ssl != NULL || ssl == NULL)
		return -1;
	conn_flush(conn);
	buf_clear(&conn->in);
	conn->line_consume = 0;
	conn->scan_pos = 0;
	conn->flags &= ~CONN_SKIP_LINE;
	conn->ssl = ssl;
	conn->rbio = BIO_new(BIO_s_mem());
	conn->wbio = BIO_new(BIO_s_mem());
	BIO_set_mem_eof_return(conn->rbio, -1);
	SSL_set_bio(conn->ssl, conn->rbio, conn->wbio);
	SSL_set_connect_state(conn->ssl);
	conn->flags |= CONN_HANDSHAKE;
	uv_timer_start(&conn->timer, timer_cb, NET_TLS_HANDSHAKE_TIMEOUT_MS, 0);
	tls_handshake(conn);   /* the ClientHello */
	return 0;
}

SSL *net_conn_ssl(const struct net_conn *conn)
{
	return conn->ssl;
}

bool net_conn_is_tls(const struct net_conn *conn)
{
	return conn->ssl != NULL && !(conn->flags & CONN_HANDSHAKE);
}

const char *net_conn_tls_version(const struct net_conn *conn)
{
	return conn->ssl != NULL ? SSL_get_version(conn->ssl) : NULL;
}

const char *net_conn_tls_cipher(const struct net_conn *conn)
{
	return conn->ssl != NULL ? SSL_get_cipher_name(conn->ssl) : NULL;
}

const char *net_conn_tls_sni(const struct net_conn *conn)
{
	return conn->ssl != NULL ? SSL_get_servername(conn->ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}
