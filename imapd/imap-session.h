/* imap-session.h — an IMAP session of imapd (private to imapd/). */
#ifndef WARREN_IMAP_SESSION_H
#define WARREN_IMAP_SESSION_H

#include "common/buf.h"
#include "common/net.h"
#include "common/sasl.h"
#include "conf/conf.h"
#include "imapd/imap-parser.h"
#include "service/service.h"

#include <stdbool.h>

/* Literal bytes one command may carry (APPEND streams its message separately). */
#define IMAP_COMMAND_LITERAL_MAX (1024 * 1024)
/* BAD replies before the session is closed. */
#define IMAP_BAD_MAX 20
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

	char tag[IMAP_TAG_MAX + 1];  /* the tag of the command in progress */
	struct sasl_state sasl;
	struct service_login *login;
	const struct conf_mailbox *user;
	unsigned bad;
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

/* The CAPABILITY list for the session's current state. */
const char *imap_capabilities(const struct imap_session *s, char *buf, size_t size);

/* LOGIN and AUTHENTICATE (imap-auth.c). */
void imap_cmd_login(struct imap_session *s, const struct imap_arg *args, size_t n);
void imap_cmd_authenticate(struct imap_session *s, const struct imap_arg *args, size_t n);
void imap_sasl_input(struct imap_session *s, const char *line);
bool imap_plaintext_allowed(const struct imap_session *s);

#endif
