/* smtp-session.h — an SMTP session of smtpd (private to smtpd/). */
#ifndef WARREN_SMTP_SESSION_H
#define WARREN_SMTP_SESSION_H

#include "common/net.h"
#include "common/sasl.h"
#include "conf/conf.h"
#include "service/service.h"

#include <stdbool.h>

/* Errors (5xx/4xx to commands) before the session is closed, as Postfix's
 * smtpd_hard_error_limit. */
#define SMTP_ERRORS_MAX 20
/* Command lines up to this are copied on the stack; longer ones (AUTH data) on the heap. */
#define SMTP_LINE_COPY_MAX 1024
/* Longest HELO/EHLO argument kept. */
#define SMTP_HELO_MAX 255

enum smtp_state {
	SMTP_STATE_CONNECTED,   /* greeted, no HELO/EHLO yet */
	SMTP_STATE_HELO,        /* after HELO/EHLO: ready for a transaction */
	SMTP_STATE_AUTH,        /* inside an AUTH exchange */
	SMTP_STATE_WAIT,        /* waiting for an asynchronous answer (auth check) */
	SMTP_STATE_QUIT,        /* closing */
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
	const struct conf_mailbox *auth_user;   /* after a successful AUTH */
	struct sasl_state sasl;
	struct service_login *login;        /* auth check in flight */
	unsigned errors;
	unsigned commands, bad_commands;
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

/* AUTH (smtp-auth.c). */
void smtp_cmd_auth(struct smtp_session *s, const char *args);
void smtp_auth_input(struct smtp_session *s, const char *line);
bool smtp_auth_offered(const struct smtp_session *s);
void smtp_auth_abort(struct smtp_session *s);

#endif
