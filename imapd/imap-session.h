/* imap-session.h — an IMAP session of imapd (private to imapd/). */
#ifndef WARREN_IMAP_SESSION_H
#define WARREN_IMAP_SESSION_H

#include "common/buf.h"
#include "common/net.h"
#include "common/sasl.h"
#include "conf/conf.h"
#include "imapd/imap-parser.h"
#include "service/service.h"

#include "storage/store.h"

#include <stdbool.h>
#include <stdint.h>

/* Literal bytes per command, literals per command, BAD replies before the
 * session is closed and commands before login: conf limits { } (conf.h). */
/* Largest non-synchronizing literal with LITERAL- (RFC 7888 section 4). */
#define IMAP_LITERAL_MINUS_MAX 4096
/* Longest tag kept for replies. */
#define IMAP_TAG_MAX 64

enum imap_state {
	IMAP_STATE_NOT_AUTH,
	IMAP_STATE_AUTH,
	IMAP_STATE_SELECTED,
	IMAP_STATE_LOGOUT,
};

enum imap_input_mode {
	IMAP_INPUT_LINE,        /* reading a command line */
	IMAP_INPUT_LITERAL,     /* reading the bytes of a literal */
	IMAP_INPUT_SASL,        /* reading an AUTHENTICATE response line */
	IMAP_INPUT_WAIT,        /* waiting for an asynchronous answer */
	IMAP_INPUT_IDLE,        /* in IDLE: waiting for DONE */
	IMAP_INPUT_DISCARD,     /* skipping the rest of a refused command (literal_left first) */
};

/* One message of the selected mailbox as the session last reported it. */
struct imap_msg {
	uint32_t uid;
	unsigned flags;              /* STORE_FLAG_* */
	uint64_t modseq;
	char *keywords;              /* malloc'ed, space-separated, or NULL */
};

/* The selected mailbox: what the client has been told (sequence numbers map to
 * msgs[seq - 1]). Only touched by the job running for the session, or on the loop
 * thread while no job runs. */
struct imap_selected {
	uint64_t id;
	char name[512];              /* UTF-8, as the store has it */
	bool readonly;
	unsigned special_use;
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	struct imap_msg *msgs;
	size_t count, cap;
	uint32_t *saved;             /* SEARCHRES "$": UIDs, ascending (malloc'ed or NULL) */
	size_t n_saved;
	bool changed;                /* a notification arrived: sync before the next reply */
	bool gone;                   /* deleted (or renamed away) by someone else */
};

struct imap_session;

/* The body file the session's jobs read last, kept open (imap-fetch.c): a FETCH of
 * several sections of one message, SEARCH of its header and then its text, or the
 * next command on the same message open it once. A body file never changes while
 * it has that name, and one that is removed (expunged) stays readable through the
 * descriptor, so the cache needs no invalidation. At most one descriptor per
 * session; IDLE and the end of the session close it. */
struct imap_body_file {
	unsigned char blob[STORE_BLOB_ID_SIZE];
	int fd;                      /* -1: none */
};
void imap_body_file_close(struct imap_body_file *f);

/* A store call run off the loop thread for a session (imap-job.c). */
struct imap_job {
	struct imap_session *s;
	struct store *store;
	int (*work)(struct imap_job *job);              /* on the thread pool */
	void (*done)(struct imap_job *job, int result); /* on the loop: the tagged reply */
	void (*cleanup)(struct imap_job *job);          /* frees what the job holds */
	struct buf out;              /* untagged responses built by work */
	bool sync;                   /* report the selected mailbox's changes after work */
	bool sync_expunge;           /* ... including EXPUNGE (not during FETCH/STORE/SEARCH) */
	bool keep_waiting;           /* done started another job: do not resume input */
};

struct imap_session {
	struct imap_session *prev, *next;
	struct service *svc;
	struct net_conn *conn;
	struct warren_config *conf;
	const struct conf_listener *listener;
	enum imap_state state;
	enum imap_input_mode mode;
	char id[16];

	struct buf cmd;              /* the command being assembled (wire format) */
	uint64_t literal_left;       /* bytes of the current literal still to read */
	uint64_t literal_total;      /* literal bytes in this command so far */
	unsigned literal_count;      /* literals in this command so far */

	char tag[IMAP_TAG_MAX + 1];  /* the tag of the command in progress */
	struct sasl_state sasl;
	struct service_login *login;
	const struct conf_mailbox *user;
	unsigned bad;
	unsigned unauth_commands;    /* commands before login (limits.max_unauth_commands) */

	struct imap_selected *sel;   /* SELECTED state */
	unsigned jobs;               /* store jobs in flight (0 or 1) */
	bool closed;                 /* the connection is gone; free when the job ends */
	bool notify_pending;         /* a notification came while a job ran */
	struct imap_job *pending_job; /* the next FETCH chunk, once output drains */
	bool idling;                 /* in IDLE, waiting for DONE */
	bool enabled_condstore;      /* ENABLE CONDSTORE or SELECT (CONDSTORE) */
	bool enabled_qresync;
	bool enabled_utf8;           /* ENABLE UTF8=ACCEPT */
	bool enabled_rev2;           /* ENABLE IMAP4rev2 */
	bool is_append;              /* the command being assembled is APPEND */
	bool in_input;               /* inside on_input */
	struct imap_compress *compress;  /* COMPRESS=DEFLATE, or NULL */
	struct imap_body_file body;  /* touched like sel: by the running job only */
};

enum {
	IMAP_CMD_NOT_AUTH = 0x1,     /* allowed before login */
	IMAP_CMD_AUTH = 0x2,         /* allowed after login */
	IMAP_CMD_SELECTED = 0x4,     /* allowed with a mailbox selected */
	IMAP_CMD_ANY = 0x7,
};

struct imap_command {
	const char *name;
	void (*handler)(struct imap_session *s, const struct imap_arg *args, size_t n);
	unsigned flags;
};

const struct imap_command *imap_command_find(const char *name);

void imap_session_accept(struct service *svc, struct net_conn *conn,
			 struct warren_config *conf, const struct conf_listener *listener);
void imap_sessions_shutdown(struct service *svc);

/* Tagged reply to the command in progress: "TAG OK text". */
void imap_tagged(struct imap_session *s, const char *status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void imap_untagged(struct imap_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void imap_enter_state(struct imap_session *s, enum imap_state state);
void imap_session_wait(struct imap_session *s);
void imap_session_resume(struct imap_session *s);
void imap_session_logout(struct imap_session *s);

/* The session's store and the limits of its user. */
struct store *imap_store(const struct imap_session *s);
uint64_t imap_quota(const struct imap_session *s);
uint64_t imap_max_message_size(const struct imap_session *s);
void imap_session_free(struct imap_session *s);

/* ---- jobs (imap-job.c) ---- */
/* A zeroed job of size bytes (a struct starting with struct imap_job). */
void *imap_job_new(struct imap_session *s, size_t size,
		   int (*work)(struct imap_job *job),
		   void (*done)(struct imap_job *job, int result));
/* Pauses the session's input and runs the job. */
void imap_job_start(struct imap_job *job);
/* Frees a job that was never started. */
void imap_job_discard(struct imap_job *job);
/* Output fell low: starts s->pending_job. */
void imap_session_drained(struct imap_session *s);
/* Appends "* " fmt "\r\n" to the job's output (on the thread). */
void imap_job_untagged(struct imap_job *job, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A notification from the store arrived for the session's selected mailbox. */
void imap_session_changed(struct imap_session *s);
/* Compares the store's view of the selected mailbox with what the client was told
 * and appends the untagged updates (on the thread). */
int imap_sync_work(struct imap_job *job, bool allow_expunge);
/* A job that only syncs (NOOP, CHECK, IDLE). */
void imap_sync_start(struct imap_session *s, bool tagged_ok, const char *ok_text);

/* ---- the selected mailbox (imap-select.c) ---- */
void imap_selected_free(struct imap_selected **sel);
void imap_msg_set(struct imap_msg *m, const struct store_message *sm);
/* "(\\Seen $Label1)" */
void imap_append_flags(struct buf *out, unsigned flags, const char *keywords);
void imap_cmd_idle(struct imap_session *s, const struct imap_arg *args, size_t n);
void imap_idle_input(struct imap_session *s, const char *line, size_t len);

/* ---- the session's I/O, compressed after COMPRESS DEFLATE (imap-compress.c) ---- */
struct imap_compress;
void imap_write(struct imap_session *s, const void *data, size_t len);
void imap_write_str(struct imap_session *s, const char *text);
enum net_line_status imap_read_line(struct imap_session *s, struct net_line *line);
size_t imap_input(struct imap_session *s, const char **data_r);
void imap_consume(struct imap_session *s, size_t n);
int imap_compress_start(struct imap_session *s);
void imap_compress_free(struct imap_compress **c);
/* Inflated input waits that the net layer does not know about. */
bool imap_compress_pending(const struct imap_session *s);
void imap_cmd_compress(struct imap_session *s, const struct imap_arg *args, size_t n);

/* The CAPABILITY list for the session's current state. */
const char *imap_capabilities(const struct imap_session *s, char *buf, size_t size);

/* LOGIN and AUTHENTICATE (imap-auth.c). */
void imap_cmd_login(struct imap_session *s, const struct imap_arg *args, size_t n);
void imap_cmd_authenticate(struct imap_session *s, const struct imap_arg *args, size_t n);
void imap_sasl_input(struct imap_session *s, const char *line);
bool imap_plaintext_allowed(const struct imap_session *s);

#endif
