/* pop3-session.h — a POP3 session of pop3d (private to pop3d/). */
#ifndef WARREN_POP3_SESSION_H
#define WARREN_POP3_SESSION_H

#include "common/net.h"
#include "common/sasl.h"
#include "conf/conf.h"
#include "service/service.h"

#include <stdbool.h>

/* -ERR replies before the session is closed. */
#define POP3_ERRORS_MAX 20
/* Longest USER name kept. */
#define POP3_USER_MAX 255

enum pop3_state {
	POP3_STATE_AUTHORIZATION,
	POP3_STATE_SASL,          /* inside an AUTH exchange */
	POP3_STATE_WAIT,          /* waiting for the password check */
	POP3_STATE_TRANSACTION,
	POP3_STATE_UPDATE,        /* QUIT received: closing */
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

/* USER, PASS, AUTH (pop3-auth.c). */
void pop3_cmd_user(struct pop3_session *s, const char *args);
void pop3_cmd_pass(struct pop3_session *s, const char *args);
void pop3_cmd_auth(struct pop3_session *s, const char *args);
void pop3_sasl_input(struct pop3_session *s, const char *line);

#endif
