/* smtp-session.h — an SMTP session of smtpd (private to smtpd/). */
#ifndef WARREN_SMTP_SESSION_H
#define WARREN_SMTP_SESSION_H

#include "common/net.h"
#include "common/sasl.h"
#include "conf/conf.h"
#include "service/service.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>

/* Errors (5xx/4xx to commands) before the session is closed, as Postfix's
 * smtpd_hard_error_limit: conf limits { max_errors }. */
/* Command lines up to this are copied on the stack; longer ones (AUTH data) on the heap. */
#define SMTP_LINE_COPY_MAX 1024
/* Longest HELO/EHLO argument kept. */
#define SMTP_HELO_MAX 255
/* RFC 5321 4.5.3.1: local part 64, domain 255, path 256 octets. Paths longer
 * than 256 are refused; local parts up to the path limit are accepted from the
 * wire (SRS addresses pass 64), but configured ones have at most 64. */
#define SMTP_PATH_MAX 256
#define SMTP_LOCAL_MAX 64
#define SMTP_DOMAIN_MAX 255
/* ENVID and ORCPT (RFC 3461: 100 and 500 octets, xtext-encoded). */
#define SMTP_ENVID_MAX 100
#define SMTP_ORCPT_MAX 500
/* Alias nesting followed before a recipient is refused as a loop. */
#define SMTP_ALIAS_DEPTH_MAX 16
/* Mailbox copies one recipient may expand to (distribution lists). */
#define SMTP_EXPAND_MAX 1000
/* Bytes buffered before the spool file is written. */
#define SMTP_SPOOL_BUF (64 * 1024)
/* Received headers a message may carry before it is refused as looping (RFC 5321
 * 6.3 suggests at least 100; Postfix's hopcount_limit is 50). */
#define SMTP_HOPS_MAX 100
/* Message-ID kept for the log line. */
#define SMTP_MSGID_LOG_MAX 200

enum smtp_state {
	SMTP_STATE_CONNECTED,   /* greeted, no HELO/EHLO yet */
	SMTP_STATE_HELO,        /* after HELO/EHLO: ready for a transaction */
	SMTP_STATE_AUTH,        /* inside an AUTH exchange */
	SMTP_STATE_WAIT,        /* waiting for an asynchronous answer (auth, store) */
	SMTP_STATE_QUIT,        /* closing */
	SMTP_STATE_DATA,        /* reading the message after DATA's 354 */
	SMTP_STATE_BDAT,        /* reading a BDAT chunk */
};

enum smtp_body_type { SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };

/* DSN NOTIFY bits (RFC 3461). */
enum {
	SMTP_NOTIFY_NEVER = 0x1,
	SMTP_NOTIFY_SUCCESS = 0x2,
	SMTP_NOTIFY_FAILURE = 0x4,
	SMTP_NOTIFY_DELAY = 0x8,
};

/* One copy into a mailbox. */
struct smtp_copy {
	const struct conf_mailbox *mailbox;
	const char *env_to;          /* the envelope recipient as given in RCPT TO */
	const char *orcpt;           /* ORCPT or NULL */
	unsigned notify;
};

/* A recipient handed to the outbound queue (forwards, outside alias targets,
 * remote domains, relaying for authenticated or trusted clients). */
struct smtp_ext {
	const char *addr;
	const char *orcpt;
	unsigned notify;
};

/* The DATA/BDAT byte parser: dot-unstuffing, end of data, bare CR/LF, line length. */
enum smtp_dot_state { SMTP_DOT_BOL, SMTP_DOT_DOT, SMTP_DOT_DOT_CR, SMTP_DOT_TEXT,
		      SMTP_DOT_CR, SMTP_DOT_DONE };

typedef void smtp_dot_emit(void *ctx, const char *data, size_t len);

struct smtp_dot {
	enum smtp_dot_state state;
	bool normalize;              /* bare CR/LF become CRLF instead of being flagged */
	bool bare;                   /* a bare CR or LF was seen */
	bool line_too_long;
	size_t line_len, max_line;
};

void smtp_dot_init(struct smtp_dot *d, bool normalize, size_t max_line);
/* Feeds raw DATA bytes; returns how many were used (all, or up to and including the
 * final <CRLF>.<CRLF>, after which d->state is SMTP_DOT_DONE). */
size_t smtp_dot_feed(struct smtp_dot *d, const char *in, size_t len, smtp_dot_emit *emit,
		     void *ctx);

/* Address and parameter parsing (smtp-parse.c). */
/* Parses "FROM:<addr> params" (prefix "FROM:") into addr (without <>); *params_r
 * points after the path. -1 on bad syntax. Allows the null path "<>". */
int smtp_parse_path(const char *args, const char *prefix, char *addr, size_t size,
		    const char **params_r);
/* Checks an address's syntax (RFC 5321 Mailbox, RFC 6531 with utf8). */
bool smtp_address_valid(const char *addr, bool utf8);
bool smtp_has_8bit(const char *s);
/* Decodes xtext (RFC 3461) into out; -1 when malformed or too long. */
int smtp_xtext_decode(const char *in, size_t len, char *out, size_t size);
/* Does ip fall in one of the networks ("a.b.c.d/n", "v6/n", plain address)? */
bool smtp_net_match(const char *ip, const char *const *nets, size_t n);

struct smtp_txn {
	struct pool *pool;                  /* everything of this transaction */
	char queue_id[20];                  /* "" until the first accepted RCPT */
	const char *from;                   /* "" for the null sender */
	uint64_t size_param;                /* MAIL ... SIZE=, 0 if absent */
	enum smtp_body_type body;
	bool smtputf8;
	int ret;                            /* DSN RET: 0 unset, 1 FULL, 2 HDRS */
	const char *envid;
	unsigned rcpt_accepted, rcpt_tried;
	struct smtp_copy *copies;
	size_t n_copies, cap_copies;
	struct smtp_ext *exts;
	size_t n_exts, cap_exts;
	bool forwarded;                     /* some external recipient came from a forward/alias */
	const char *first_rcpt;             /* for "Received: ... for <>" with one recipient */
	size_t local_hdr_len;               /* Return-Path + Delivered-To bytes at the spool's start */
	char *out_path;                     /* the spool without them, for the queue (mixed messages) */
	uint64_t max_size;                  /* the smallest limit of the recipients */
	struct timeval start;
	/* the message being received */
	bool data_started;                  /* spool open */
	bool chunking;                      /* BDAT used */
	int fd;
	char *spool_path;
	struct smtp_dot dot;
	uint64_t size;                      /* bytes of the client's message */
	bool too_big, io_error;
	bool header_too_big;                /* over limits.max_header_size */
	bool bdat_last;
	char *wbuf;
	size_t wlen;
	/* header scan (Message-ID, Date) */
	bool in_headers, hdr_bol, hdr_naming, hdr_in_msgid;
	char hdr_name[16];
	size_t hdr_name_len;
	bool has_msgid, has_date;
	unsigned hops;                      /* Received headers seen */
	char msgid[SMTP_MSGID_LOG_MAX + 1];
	size_t msgid_len;
	struct policy_header *policy_headers;   /* added by the policy chain (policy.h) */
	struct authres_filter *authres;     /* forged Authentication-Results removal (smtp-authres.h) */
};

struct smtp_session {
	struct smtp_session *prev, *next;   /* the daemon's session list */
	struct service *svc;
	struct net_conn *conn;
	struct warren_config *conf;         /* the session's own reference */
	const struct conf_listener *listener;
	enum smtp_state state;
	char id[16];                        /* session id for log lines */
	char helo[SMTP_HELO_MAX + 1];
	bool esmtp;
	const struct conf_mailbox *auth_user;   /* after a successful AUTH (or XCLIENT LOGIN) */
	char client_ip[64];                 /* the peer, or what XCLIENT said */
	char client_name[256];              /* "unknown" unless XCLIENT NAME */
	bool xclient_proto_smtp;            /* XCLIENT PROTO=SMTP */
	struct smtp_txn *txn;               /* after MAIL */
	uint64_t bdat_left;                 /* bytes of the current BDAT chunk still to read */
	bool bdat_discard;                  /* ... into nowhere (no transaction) */
	unsigned busy;                      /* store jobs in flight (keep the session) */
	bool closed;                        /* the connection is gone; free when not busy */
	unsigned n_ehlo, n_mail, n_rcpt, n_data, n_bdat, n_rset, n_quit, n_auth, n_starttls;
	unsigned queued;
	struct sasl_state sasl;
	struct service_login *login;        /* auth check in flight */
	unsigned errors;
	unsigned commands, bad_commands;
	struct policy_session *policy;      /* state of the policy checks (policy.h) */
};

/* Command flags. */
enum {
	SMTP_CMD_BEFORE_TLS = 0x1,   /* allowed before STARTTLS on a tls_required listener */
	SMTP_CMD_NEEDS_HELO = 0x2,   /* refused before HELO/EHLO */
};

struct smtp_command {
	const char *name;
	void (*handler)(struct smtp_session *s, const char *args);
	unsigned flags;
};

const struct smtp_command *smtp_command_find(const char *name, size_t len);

void smtp_session_accept(struct service *svc, struct net_conn *conn,
			 struct warren_config *conf, const struct conf_listener *listener);
void smtp_sessions_shutdown(struct service *svc);

/* A reply line; code decides whether it counts as an error. */
void smtp_reply(struct smtp_session *s, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void smtp_enter_state(struct smtp_session *s, enum smtp_state state);
/* The session stops reading until smtp_session_resume(). */
void smtp_session_wait(struct smtp_session *s);
void smtp_session_resume(struct smtp_session *s);
/* Says 221 and closes. */
void smtp_session_quit(struct smtp_session *s);

/* Transactions (smtp-txn.c, smtp-rcpt.c, smtp-data.c, smtp-deliver.c). */
void smtp_cmd_mail(struct smtp_session *s, const char *args);
void smtp_cmd_rcpt(struct smtp_session *s, const char *args);
void smtp_cmd_data(struct smtp_session *s, const char *args);
void smtp_cmd_bdat(struct smtp_session *s, const char *args);
void smtp_cmd_xclient(struct smtp_session *s, const char *args);
bool smtp_xclient_allowed(const struct smtp_session *s);
void smtp_txn_reset(struct smtp_session *s);
/* Gives the transaction its queue id (at the first accepted RCPT) and logs client=. */
void smtp_txn_assign_queue_id(struct smtp_session *s);
/* Recipients accepted so far (local copies and outbound). */
static inline size_t smtp_txn_rcpts(const struct smtp_txn *t)
{
	return t->n_copies + t->n_exts;
}
/* Reads message bytes in DATA/BDAT state; false when more input is needed. */
bool smtp_data_input(struct smtp_session *s);
/* The message is complete: deliver it (asynchronously) and reply. */
void smtp_deliver(struct smtp_session *s);
/* A store job finished: free the session if the connection closed meanwhile.
 * Returns true when the session is gone. */
bool smtp_session_unbusy(struct smtp_session *s);
bool smtp_relay_allowed(const struct smtp_session *s);
/* VRFY with smtp.vrfy: 1 a local recipient, -1 unknown in a local domain, 0 not local. */
int smtp_vrfy_lookup(struct smtp_session *s, const char *addr);
/* "ESMTPSA" etc. (RFC 3848) */
const char *smtp_proto_name(const struct smtp_session *s);

/* "delivered" reports for local copies with NOTIFY=SUCCESS (smtp-dsn.c). */
struct smtp_dsn_rcpt {
	const char *addr;            /* the envelope recipient as given in RCPT TO */
	const char *orcpt;           /* ORCPT or NULL */
};

struct smtp_dsn_request {
	const char *queue_id, *from, *envid;
	int64_t arrival;
	const char *spool_path;      /* the message, read from offset skip */
	size_t skip;
	const struct smtp_dsn_rcpt *rcpts;
	size_t n;
};

struct store;
/* Builds and queues the report to req->from (blocking: on the thread pool). Failures
 * are logged; the copies stay delivered. */
void smtp_dsn_delivered(struct store *store, struct warren_config *conf,
			const struct smtp_dsn_request *req);

/* AUTH (smtp-auth.c). */
void smtp_cmd_auth(struct smtp_session *s, const char *args);
void smtp_auth_input(struct smtp_session *s, const char *line);
bool smtp_auth_offered(const struct smtp_session *s);
void smtp_auth_abort(struct smtp_session *s);

#endif
