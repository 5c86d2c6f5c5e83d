/* pop3-session.h — a POP3 session of pop3d (private to pop3d/). */
#ifndef WARREN_POP3_SESSION_H
#define WARREN_POP3_SESSION_H

#include "common/net.h"
#include "common/sasl.h"
#include "conf/conf.h"
#include "service/service.h"
#include "pop3d/pop3-stuff.h"

#include <stdbool.h>
#include <stdint.h>

/* -ERR replies before the session is closed, and commands before login:
 * conf limits { max_errors, max_unauth_commands }. */
/* Longest USER name kept. */
#define POP3_USER_MAX 255
/* Bytes of a message read from the store per step of RETR/TOP. */
#define POP3_READ_CHUNK (64 * 1024)
/* Folder below state_dir holding one lock file per user (IN-USE, LOGIN-DELAY). */
#define POP3_LOCK_DIR "pop3-locks"

enum pop3_state {
	POP3_STATE_AUTHORIZATION,
	POP3_STATE_SASL,          /* inside an AUTH exchange */
	POP3_STATE_WAIT,          /* waiting for the password check and the maildrop */
	POP3_STATE_TRANSACTION,
	POP3_STATE_UPDATE,        /* QUIT received: deleting, then closing */
};

/* One message of the maildrop as it was when the session started. */
struct pop3_message {
	uint32_t uid;
	unsigned flags;             /* STORE_FLAG_* at login */
	uint64_t size;              /* as RETR sends it: the stored size + prefix */
	int64_t internal_date;
	unsigned char blob[STORE_BLOB_ID_SIZE];
	char *prefix;               /* "Delivered-To: ...\r\n" sent before the body, or NULL */
	char *env_from;             /* envelope kept at delivery (SDPS) */
	char *env_to;
	bool deleted;               /* DELE'd in this session */
	bool retrieved;             /* RETR'd in this session */
};

struct pop3_maildrop {
	uint64_t mailbox_id;
	uint32_t uidvalidity;
	struct pop3_message *msgs;
	size_t count;
	size_t deleted;             /* messages marked deleted */
	uint64_t deleted_size;
	uint64_t size;              /* all messages */
};

/* What a long response is doing between steps (output full, store read). */
enum pop3_stream_kind {
	POP3_STREAM_NONE,
	POP3_STREAM_LIST,         /* LIST / UIDL without argument */
	POP3_STREAM_UIDL,
	POP3_STREAM_MESSAGE,      /* RETR / TOP */
};

struct pop3_stream {
	enum pop3_stream_kind kind;
	size_t next;              /* LIST/UIDL: next message index */
	size_t msg;               /* RETR/TOP: message index */
	bool top;
	bool started;             /* the +OK line was sent */
	uint64_t offset;          /* RETR/TOP: next byte of the body to read */
	size_t sent_prefix;       /* bytes of the message's prefix line sent */
	struct pop3_stuff stuff;
};

struct pop3_job;

struct pop3_stats {
	unsigned retr, top, dele;
	uint64_t retr_bytes, top_bytes;
	bool quit;                /* QUIT in TRANSACTION: the UPDATE state ran */
};

struct pop3_session {
	struct pop3_session *prev, *next;
	struct service *svc;
	struct net_conn *conn;
	struct warren_config *conf;
	const struct conf_listener *listener;
	enum pop3_state state;
	char id[16];
	char user[POP3_USER_MAX + 1];     /* from USER, for PASS */
	struct sasl_state sasl;
	struct service_login *login;
	const struct conf_mailbox *mailbox;
	unsigned errors;
	unsigned unauth_commands;    /* commands before login (limits.max_unauth_commands) */

	struct pop3_maildrop drop;
	int lock_fd;                      /* flock'ed lock file of the user, -1: none */
	struct pop3_job *job;             /* store work in flight (at most one) */
	struct pop3_stream stream;
	struct pop3_stats stats;
};

enum {
	POP3_CMD_AUTHORIZATION = 0x1,
	POP3_CMD_TRANSACTION = 0x2,
};

struct pop3_command {
	const char *name;
	void (*handler)(struct pop3_session *s, const char *args);
	unsigned flags;
};

const struct pop3_command *pop3_command_find(const char *name, size_t len);

void pop3_session_accept(struct service *svc, struct net_conn *conn,
			 struct warren_config *conf, const struct conf_listener *listener);
void pop3_sessions_shutdown(struct service *svc);

void pop3_ok(struct pop3_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pop3_err(struct pop3_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pop3_enter_state(struct pop3_session *s, enum pop3_state state);
void pop3_session_close(struct pop3_session *s);
bool pop3_plaintext_allowed(const struct pop3_session *s);
/* The session waits (store work, a long response): no command is read meanwhile. */
bool pop3_session_busy(const struct pop3_session *s);
/* A wait ended: read the next pipelined command. */
void pop3_session_continue(struct pop3_session *s);

/* USER, PASS, AUTH (pop3-auth.c). */
void pop3_cmd_user(struct pop3_session *s, const char *args);
void pop3_cmd_pass(struct pop3_session *s, const char *args);
void pop3_cmd_auth(struct pop3_session *s, const char *args);
void pop3_sasl_input(struct pop3_session *s, const char *line);

/* Maildrop: lock, load, update (pop3-maildrop.c). */
void pop3_maildrop_open(struct pop3_session *s);
void pop3_maildrop_update(struct pop3_session *s);
void pop3_maildrop_free(struct pop3_maildrop *drop);
/* The session is gone: orphan its job, release the lock. */
void pop3_maildrop_session_gone(struct pop3_session *s);
/* UIDL of a message: stable, unique in the mailbox ("%08X%08X" of UID, UIDVALIDITY). */
void pop3_uidl(const struct pop3_maildrop *drop, const struct pop3_message *m, char *out,
	       size_t size);
/* The EXPIRE policy configured: -2 never, -1 none (or invalid), else days. */
long pop3_expire_days(const struct warren_config *conf);

/* RETR, TOP, LIST, UIDL streams (pop3-retr.c). */
void pop3_stream_message(struct pop3_session *s, size_t index, bool top, uint64_t lines);
void pop3_stream_list(struct pop3_session *s, enum pop3_stream_kind kind);
/* Output drained or a chunk arrived: go on. */
void pop3_stream_resume(struct pop3_session *s);

/* Maildrop commands (pop3-maildrop-cmds.c). */
void pop3_cmd_stat(struct pop3_session *s, const char *args);
void pop3_cmd_list(struct pop3_session *s, const char *args);
void pop3_cmd_uidl(struct pop3_session *s, const char *args);
void pop3_cmd_retr(struct pop3_session *s, const char *args);
void pop3_cmd_top(struct pop3_session *s, const char *args);
void pop3_cmd_dele(struct pop3_session *s, const char *args);
void pop3_cmd_rset(struct pop3_session *s, const char *args);
void pop3_cmd_env(struct pop3_session *s, const char *args);

#endif
