/* queue.h — smtpd's queue runner and outbound delivery (private to smtpd/).
 *
 *   queue-runner.c  scans the queue, claims due messages, splits them into one
 *                   job per destination domain, limits concurrency
 *   queue-submit.c  outbound_submit(): durably queues a message
 *   queue-result.c  per-recipient outcome: retry back-off, expiry, delay notices,
 *                   bounces; writes the record back
 *   queue-local.c   recipients in local domains (bounces to local senders)
 *   out-route.c     next hops: relay_host, relayhost, MX (null MX), A/AAAA
 *   out-client.c    the SMTP client on libuv (EHLO, STARTTLS, AUTH, PIPELINING,
 *                   SIZE, 8BITMIME, SMTPUTF8, DSN, several recipients)
 *   out-bounce.c    RFC 3464 delivery status notifications
 *   out-dkim.c      DKIM signing (rsa-sha256, ed25519-sha256, relaxed/relaxed)
 */
#ifndef WARREN_SMTPD_QUEUE_H
#define WARREN_SMTPD_QUEUE_H

#include "smtpd/outbound.h"
#include "common/buf.h"
#include "common/dns.h"
#include "common/net.h"
#include "storage/queue.h"

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

/* RFC 5321 4.5.3.2 client timeouts. */
#define OUT_TIMEOUT_GREETING_MS (5 * 60 * 1000)
#define OUT_TIMEOUT_MAIL_MS (5 * 60 * 1000)
#define OUT_TIMEOUT_RCPT_MS (5 * 60 * 1000)
#define OUT_TIMEOUT_DATA_MS (2 * 60 * 1000)
#define OUT_TIMEOUT_BLOCK_MS (3 * 60 * 1000)
#define OUT_TIMEOUT_DOT_MS (10 * 60 * 1000)
/* EHLO, STARTTLS, AUTH, QUIT: the same as MAIL (RFC 5321 gives none). */
#define OUT_TIMEOUT_CMD_MS (5 * 60 * 1000)
/* Longest reply line accepted from a server; multi-line replies kept up to this. */
#define OUT_REPLY_LINE_MAX 4096
/* Next hops (MX hosts) and addresses tried per destination per attempt. */
#define OUT_HOSTS_MAX 10
#define OUT_ADDRS_MAX 20
/* A claim on a message lasts this long (a crashed process's claim expires). */
#define QUEUE_LEASE_S 3600
/* Largest message the runner loads for delivery. */
#define QUEUE_BODY_MAX ((size_t)4 << 30)
/* A connection whose transaction is done is kept this long for the next message
 * to the same destination (Postfix's smtp_connection_cache_time_limit), and at
 * most this many per process. */
#define OUT_IDLE_MS 3000
#define OUT_IDLE_MAX 20
/* Body bytes queued on the connection per write while sending DATA. */
#define OUT_BODY_CHUNK (64 * 1024)
/* Header part of the original message returned in a bounce without RET=FULL. */
#define OUT_BOUNCE_HEADERS_MAX (64 * 1024)
/* Original message returned with RET=FULL at most (larger: headers only). */
#define OUT_BOUNCE_FULL_MAX (10 * 1024 * 1024)

struct qrunner;
struct qdelivery;
struct out_client;

struct out_hop {
	char host[256];
	unsigned port;
	bool is_ip;               /* host is an address literal */
};

/* One destination (domain) of a message being delivered. */
struct qjob {
	struct qjob *next;        /* runner's waiting list */
	struct qdelivery *d;
	char domain[256];
	size_t *rcpts;            /* indexes into d->msg.rcpts */
	size_t n_rcpts;
	bool local;               /* a local domain: into the store */
	/* route */
	char route_key[320];      /* destination of cached connections: "mx:domain", "relay:host" */
	bool relay;               /* smart host or relay_host: no MX lookup */
	bool tls_required;
	bool tls_broken;          /* the handshake failed: this attempt goes on in plaintext */
	const char *auth_user, *auth_password;
	struct out_hop hops[OUT_HOSTS_MAX];
	size_t n_hops, hop_i;
	char addrs[OUT_ADDRS_MAX][64];
	size_t n_addrs, addr_i;
	int addr_stage;           /* 0: AAAA asked, 1: A asked */
	struct dns_query *query;
	struct out_client *client;
	bool counted;             /* holds a destination slot */
	/* the last error when no session got as far as a transaction */
	int err_code;             /* 4xx/5xx, 0 for network errors */
	char err_status[16];
	char err_text[QUEUE_REPLY_MAX + 1];
	char err_remote[QUEUE_HOST_MAX + 1];
	bool err_permanent;
};

/* One message being worked on. */
struct qdelivery {
	struct qdelivery *prev, *next;
	struct qrunner *r;
	struct warren_config *conf;   /* reference for the whole delivery */
	struct queue_msg msg;
	char *body;                   /* the message as queued */
	size_t len;
	char *dkim;                   /* DKIM-Signature header to prepend, or NULL */
	bool has_8bit;
	bool *touched;                /* per recipient: tried in this round */
	bool *dsn_passed;             /* per recipient: the next hop took NOTIFY itself */
	struct qjob *jobs;
	size_t n_jobs, jobs_left;
	int load_result;
};

struct qrunner {
	struct service *svc;
	uv_loop_t *loop;
	uv_timer_t timer;
	struct dns_resolver *dns;
	unsigned long dns_generation; /* configuration the resolver was made from */
	SSL_CTX *tls;
	struct qdelivery *deliveries;
	unsigned active;              /* deliveries in progress */
	struct qjob *waiting, **waiting_tail;
	struct dest_count *dests;     /* connections per destination domain */
	struct out_client *idle;      /* connections kept for reuse (out-client.c) */
	unsigned n_idle;
	bool scanning, rescan, stopping;
};

struct qrunner *queue_runner(void);
/* Looks at the queue soon (new mail, a finished delivery, warrenctl flush). */
void queue_runner_kick(struct qrunner *r);

/* queue-runner.c: a job has its results (in d->msg.rcpts); frees its slot. */
void queue_job_done(struct qjob *job);
/* Writes a recipient's outcome. code 0: connection-level failure. */
void queue_rcpt_result(struct qdelivery *d, size_t idx, int code, const char *status,
		       const char *text, const char *remote);

/* queue-result.c: every job of d is done; decide retries and bounces, write back. */
void queue_delivery_finish(struct qdelivery *d);
/* queue-runner.c: the delivery is over (record written back): free it. */
void queue_delivery_release(struct qdelivery *d);

/* queue-local.c */
void queue_local_start(struct qjob *job);

/* out-route.c: fills the job's hops (asynchronously), then starts the client. */
void out_route_start(struct qjob *job);
/* The current session ended without a transaction: try the next address/host. */
void out_route_next(struct qjob *job);

/* out-client.c */
void out_client_start(struct qjob *job, const char *addr, const struct out_hop *hop);
void out_client_abort(struct out_client *c);
/* Takes a kept connection to the job's route_key, if any, and starts the job's
 * transaction on it. */
bool out_client_reuse(struct qjob *job);
/* Closes every kept connection (shutdown). */
void out_client_close_idle(struct qrunner *r);
SSL_CTX *out_client_tls_ctx(void);

/* out-bounce.c: a DSN about the recipients whose flag is set in which[] (action:
 * "failed", "delayed", "delivered", "relayed"). Returns the message (malloc'ed). */
char *out_bounce_build(const struct qdelivery *d, const bool *which, const char *action,
		       size_t *len_r);

/* out-dkim.c: a DKIM-Signature header (with CRLF) for the message, or NULL with
 * *error_r when it cannot be signed. */
char *out_dkim_sign(const char *msg, size_t len, const char *domain, const char *selector,
		    const char *key_file, int64_t now, const char **error_r);

/* out-8bit.c: the message converted to 7 bit (quoted-printable), malloc'ed, or
 * NULL with the reason it cannot be (RFC 6152 3). */
char *out_8bit_to_qp(const char *msg, size_t len, size_t *len_r, const char **why_r);

/* out-srs.c: 0 and the SRS0 address for a forwarded message's sender (-1: no
 * rewriting: SRS off, null sender, one of our domains, already SRS); the
 * original address of an SRS0 address of ours (-1: not one, forged or too old). */
int out_srs_forward(const struct warren_config *conf, const char *from, int64_t now,
		    char *out, size_t size);
int out_srs_reverse(const struct warren_config *conf, const char *addr, int64_t now,
		    char *out, size_t size);
const char *out_srs_domain(const struct warren_config *conf);

/* Helpers (queue-runner.c). */
const char *out_addr_domain(const char *addr);
/* Enhanced status from a reply text "5.1.1 ..." or derived from the code. */
void out_status_from_reply(int code, const char *text, char status[16]);

#endif
