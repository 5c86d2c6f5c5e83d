/* net.h — listeners and connections on the libuv loop, with TLS as a memory-BIO
 * layer between the socket and the protocol.
 *
 * A protocol sees a connection as: plaintext input it reads as lines or as bytes,
 * and an output it writes to. Output is coalesced and flushed once per loop
 * iteration. When more than NET_WRITE_HIGH bytes wait to be sent, reading from
 * the socket pauses (so pipelined input cannot make us buffer without bound and
 * OpenSSL's memory BIOs cannot grow without bound) and the protocol should stop
 * producing; on_drain tells it when the queue is low again.
 *
 * STARTTLS: net_conn_start_tls() discards any plaintext already received after
 * the command (the CVE-2011-0411 class: never execute what was pipelined before
 * the handshake) and from then on everything goes through TLS.
 *
 * Lifetimes: a connection lives until on_close has run; the protocol frees its
 * session there. libuv handles are freed in their close callbacks.
 */
#ifndef WARREN_NET_H
#define WARREN_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>
#include <openssl/ssl.h>

struct tls_server;
struct net_conn;
struct net_listener;

/* Output queued beyond this pauses reading and tells the protocol to wait. */
#define NET_WRITE_HIGH (256 * 1024)
/* on_drain fires when the queue falls below this again. */
#define NET_WRITE_LOW (64 * 1024)
/* Bytes read from the socket per read call (one buffer per process). */
#define NET_READ_CHUNK (64 * 1024)
/* Time allowed for a TLS handshake. */
#define NET_TLS_HANDSHAKE_TIMEOUT_MS 30000
/* Time allowed for a PROXY protocol header when the listener sets none. */
#define NET_PROXY_TIMEOUT_MS 5000

struct net_conn_callbacks {
	/* New plaintext input is buffered. Read it with net_conn_read_line() or
	 * net_conn_input()/net_conn_consume(); what is left stays for the next call. */
	void (*on_input)(struct net_conn *conn, void *ctx);
	/* The TLS handshake finished (after net_conn_start_tls()). Optional. */
	void (*on_tls_ready)(struct net_conn *conn, void *ctx);
	/* The output queue fell below NET_WRITE_LOW after having passed NET_WRITE_HIGH. */
	void (*on_drain)(struct net_conn *conn, void *ctx);
	/* No input for the idle timeout: write a goodbye if the protocol has one;
	 * the connection is closed when this returns. Optional. */
	void (*on_timeout)(struct net_conn *conn, void *ctx);
	/* The connection is gone (peer closed, error, or net_conn_close()); no more
	 * calls follow. Free the session here. */
	void (*on_close)(struct net_conn *conn, void *ctx);
};

struct net_listener_settings {
	unsigned max_connections;          /* 0: no limit */
	unsigned max_connections_per_ip;   /* 0: no limit */
	/* Written, then the connection is closed, when a limit is hit. */
	const char *busy_reply;
	const char *name;                  /* for logs: "smtp", "imaps" */
	/* HAProxy PROXY protocol (v1 or v2): every connection must start with a
	 * header, and only from a peer in proxy_trusted; the header's client address
	 * then replaces the peer's (net_conn_peer_ip). Limits per address count the
	 * real client. The list is copied. */
	bool proxy_protocol;
	const char *const *proxy_trusted;
	size_t n_proxy_trusted;
	unsigned proxy_timeout_ms;         /* time for the header; 0: NET_PROXY_TIMEOUT_MS */
	/* TLS policy of this listener's connections (NULL: the tls_server's):
	 * "TLSv1.2"/"TLSv1.3", an OpenSSL cipher list, TLS 1.3 suites. Copied. */
	const char *tls_min_protocol;
	const char *tls_ciphers;
	const char *tls_ciphersuites;
};

/* Called for each accepted connection (before any TLS). The callee must call
 * net_conn_set_handler() before returning, or net_conn_close(). */
typedef void net_accept_callback(struct net_conn *conn, void *ctx);

/* Listens on an inherited, already bound socket (from the master). */
struct net_listener *net_listener_open_fd(uv_loop_t *loop, int fd,
					  const struct net_listener_settings *settings,
					  net_accept_callback *cb, void *ctx, const char **error_r);
/* Binds and listens itself (daemons run alone, tests). */
struct net_listener *net_listener_open(uv_loop_t *loop, const char *address, unsigned port,
				       const struct net_listener_settings *settings,
				       net_accept_callback *cb, void *ctx, const char **error_r);
/* New limits (on reload); the settings strings are copied. */
void net_listener_update(struct net_listener *listener,
			 const struct net_listener_settings *settings);
/* Stops accepting; connections already accepted go on. */
void net_listener_close(struct net_listener *listener);
unsigned net_listener_connections(const struct net_listener *listener);
/* The port the listener is bound to (useful after binding port 0). */
unsigned net_listener_port(const struct net_listener *listener);

/* Binds a listening socket (the master does this before starting daemons). */
int net_bind_socket(const char *address, unsigned port, int *fd_r, const char **error_r);

void net_conn_set_handler(struct net_conn *conn, const struct net_conn_callbacks *cb,
			  void *ctx);
/* Idle timeout in ms (0: none); restarted by every read. */
void net_conn_set_idle_timeout(struct net_conn *conn, unsigned ms);
/* Input is dropped past this many bytes per line (the line is reported too long). */
void net_conn_set_max_line(struct net_conn *conn, size_t max);
/* Input deadline in ms (0: none): once input waits that the protocol has not
 * consumed (a partial command line), the protocol must be able to consume some
 * of it within ms, or on_timeout runs and the connection closes. Unlike the idle
 * timeout it is not restarted by arriving bytes, so a client trickling one byte
 * per second (slowloris) is closed; paused input does not count. */
void net_conn_set_input_timeout(struct net_conn *conn, unsigned ms);
/* Total session time in ms from now (0: none): then on_timeout, and the
 * connection closes, however busy it is. */
void net_conn_set_session_timeout(struct net_conn *conn, unsigned ms);

/* Client address as text ("192.0.2.1", "2001:db8::1") and port. */
const char *net_conn_peer_ip(const struct net_conn *conn);
unsigned net_conn_peer_port(const struct net_conn *conn);
const struct sockaddr_storage *net_conn_peer_addr(const struct net_conn *conn);
const char *net_conn_local_ip(const struct net_conn *conn);
unsigned net_conn_local_port(const struct net_conn *conn);

/* ---- input ---- */

enum net_line_status {
	NET_LINE_NEED_MORE = 0,
	NET_LINE_OK = 1,
	NET_LINE_TOO_LONG = -1,   /* a line passed the maximum; it has been dropped */
};

struct net_line {
	const char *data;     /* not NUL-terminated; valid until the next read call */
	size_t len;           /* without the line end */
	bool crlf;            /* ended in CRLF (false: a bare LF) */
};

/* The next complete line. A line's bytes are consumed by this call; the data
 * pointer stays valid until the next net_conn_read_line/consume/input call. */
enum net_line_status net_conn_read_line(struct net_conn *conn, struct net_line *line_r);
/* All buffered input, for byte-counted reads (literals, BDAT, DATA). */
size_t net_conn_input(struct net_conn *conn, const char **data_r);
void net_conn_consume(struct net_conn *conn, size_t n);
/* Stop / resume calling on_input (while the protocol waits for auth, the store...).
 * Resuming calls on_input soon if input is already buffered. */
void net_conn_pause_input(struct net_conn *conn);
void net_conn_resume_input(struct net_conn *conn);

/* ---- output ---- */

void net_conn_write(struct net_conn *conn, const void *data, size_t len);
void net_conn_write_str(struct net_conn *conn, const char *s);
void net_conn_printf(struct net_conn *conn, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Bytes queued and not yet handed to the kernel. */
size_t net_conn_output_pending(const struct net_conn *conn);
/* True when the protocol should stop producing until on_drain. */
bool net_conn_output_full(const struct net_conn *conn);

/* ---- TLS ---- */

/* Starts a server-side TLS handshake. Buffered plaintext input is discarded.
 * Output written before this call is sent in plaintext first. */
int net_conn_start_tls(struct net_conn *conn, struct tls_server *tls);
bool net_conn_is_tls(const struct net_conn *conn);
/* "TLSv1.3", "TLS_AES_256_GCM_SHA384", the SNI name the client sent (or NULL). */
const char *net_conn_tls_version(const struct net_conn *conn);
const char *net_conn_tls_cipher(const struct net_conn *conn);
const char *net_conn_tls_sni(const struct net_conn *conn);

/* ---- outgoing connections (smtpd's queue) ---- */

/* conn is NULL and status a libuv error (UV_ETIMEDOUT, UV_ECONNREFUSED...) on
 * failure. On success the callee must call net_conn_set_handler() before
 * returning, or the connection is closed. */
typedef void net_connect_callback(struct net_conn *conn, int status, void *ctx);
/* Connects to addr (from source when not NULL) within timeout_ms (0: none). The
 * callback runs later on the loop; returns a libuv error when it cannot start. */
int net_connect(uv_loop_t *loop, const struct sockaddr *addr, const struct sockaddr *source,
		unsigned timeout_ms, net_connect_callback *cb, void *ctx);
/* Starts a client-side TLS handshake with ssl (taken over: freed with the
 * connection); on_tls_ready follows, or the connection closes on failure. */
int net_conn_start_tls_client(struct net_conn *conn, SSL *ssl);
/* The connection's SSL object (NULL without TLS), to inspect the peer. */
SSL *net_conn_ssl(const struct net_conn *conn);

/* ---- closing ---- */

/* Sends what is queued (with TLS close_notify), then closes. on_close follows. */
void net_conn_close(struct net_conn *conn);
/* Closes at once, dropping queued output. */
void net_conn_abort(struct net_conn *conn);

#endif
