/* smtp-session.c — SMTP session lifecycle: greeting, reading commands, replies. */
#include "smtpd/smtp-session.h"
#include "smtpd/policy.h"
#include "common/log.h"
#include "common/pool.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The daemon's sessions, for shutdown. */
struct smtp_sessions {
	struct smtp_session *head;
	unsigned long next_id;
	bool stopping;          /* freed with the last session after shutdown */
	bool in_shutdown;       /* inside smtp_sessions_shutdown's loop */
};

static struct smtp_sessions *sessions_of(struct service *svc)
{
	struct smtp_sessions *list = service_data(svc);
	if (list == NULL) {
		list = x_calloc(1, sizeof(*list));
		service_set_data(svc, list);
	}
	return list;
}

static const char *state_name(enum smtp_state state)
{
	static const char *const names[] = { "CONNECTED", "HELO", "AUTH", "WAIT", "QUIT", "DATA",
					     "BDAT" };
	return names[state];
}

void smtp_enter_state(struct smtp_session *s, enum smtp_state state)
{
	if (s->state == state)
		return;
	log_debug("%s: state %s -> %s", s->id, state_name(s->state), state_name(state));
	s->state = state;
}

void smtp_reply(struct smtp_session *s, int code, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	net_conn_printf(s->conn, "%d %s\r\n", code, text);
	if (code >= 400)
		s->errors++;
}

void smtp_session_wait(struct smtp_session *s)
{
	smtp_enter_state(s, SMTP_STATE_WAIT);
	net_conn_pause_input(s->conn);
}

void smtp_session_resume(struct smtp_session *s)
{
	net_conn_resume_input(s->conn);
}

void smtp_session_quit(struct smtp_session *s)
{
	smtp_reply(s, 221, "2.0.0 Bye");
	smtp_enter_state(s, SMTP_STATE_QUIT);
	net_conn_close(s->conn);
}

/* ---- commands ---- */

static bool tls_missing(const struct smtp_session *s)
{
	return s->listener->tls_required && !net_conn_is_tls(s->conn);
}

static void run_command(struct smtp_session *s, const char *line, size_t len)
{
	size_t n = 0;
	while (n < len && line[n] != ' ')
		n++;
	const struct smtp_command *cmd = smtp_command_find(line, n);
	s->commands++;
	/* submission listeners want AUTH: every command before it counts
	 * (limits.max_unauth_commands); MX listeners never authenticate */
	if (s->listener->service == CONF_SERVICE_SUBMISSION && s->auth_user == NULL &&
	    s->commands > s->conf->limits.max_unauth_commands) {
		log_info("%s: too many commands before authentication from [%s]", s->id,
			 net_conn_peer_ip(s->conn));
		smtp_reply(s, 421, "4.7.0 Too many commands before authentication");
		smtp_enter_state(s, SMTP_STATE_QUIT);
		net_conn_close(s->conn);
		return;
	}
	if (cmd == NULL) {
		char printable[64];
		log_info("%s: unknown command from [%s]: %s", s->id, net_conn_peer_ip(s->conn),
			 log_printable(printable, sizeof(printable), line, n));
		s->bad_commands++;
		smtp_reply(s, 500, "5.5.2 Error: command not recognized");
		return;
	}
	const char *args = line + n;
	while (*args == ' ')
		args++;
	/* limits.max_command_args: the path and the ESMTP parameters of MAIL/RCPT, ... */
	if (service_too_many_args(s->conf, s->id, net_conn_peer_ip(s->conn), args)) {
		s->bad_commands++;
		smtp_reply(s, 501, "5.5.4 Error: too many arguments");
		return;
	}
	if (tls_missing(s) && !(cmd->flags & SMTP_CMD_BEFORE_TLS)) {
		s->bad_commands++;
		smtp_reply(s, 530, "5.7.0 Must issue a STARTTLS command first");
		return;
	}
	/* helo_checks { require = false }: a client that never said HELO may go on */
	if ((cmd->flags & SMTP_CMD_NEEDS_HELO) && s->state == SMTP_STATE_CONNECTED &&
	    !s->conf->helo_checks.require && s->n_ehlo == 0)
		smtp_enter_state(s, SMTP_STATE_HELO);
	if ((cmd->flags & SMTP_CMD_NEEDS_HELO) && s->state == SMTP_STATE_CONNECTED) {
		s->bad_commands++;
		smtp_reply(s, 503, "5.5.1 Error: send HELO/EHLO first");
		return;
	}
	cmd->handler(s, args);
}

static void handle_line(struct smtp_session *s, const char *data, size_t len)
{
	char line[SMTP_LINE_COPY_MAX];
	if (memchr(data, '\0', len) != NULL) {
		s->commands++;
		s->bad_commands++;
		smtp_reply(s, 500, "5.5.2 Error: NUL character in command");
		return;
	}
	/* commands are short; AUTH responses may be long, so copy what fits and let
	 * the line reader's limit (max_line_length) bound the rest */
	char *copy = len < sizeof(line) ? line : x_malloc(len + 1);
	memcpy(copy, data, len);
	copy[len] = '\0';
	if (s->state == SMTP_STATE_AUTH)
		smtp_auth_input(s, copy);
	else
		run_command(s, copy, len);
	if (copy != line) {
		explicit_bzero(copy, len);
		free(copy);
	} else {
		explicit_bzero(line, len);
	}
}

static void on_input(struct net_conn *conn, void *ctx)
{
	struct smtp_session *s = ctx;
	struct net_line line;
	enum net_line_status st;
	for (;;) {
		if (s->state == SMTP_STATE_WAIT || s->state == SMTP_STATE_QUIT ||
		    net_conn_output_full(conn))
			break;
		if (s->state == SMTP_STATE_DATA || s->state == SMTP_STATE_BDAT) {
			if (!smtp_data_input(s))
				break;
			continue;
		}
		if ((st = net_conn_read_line(conn, &line)) == NET_LINE_NEED_MORE)
			break;
		if (st == NET_LINE_TOO_LONG) {
			s->commands++;
			s->bad_commands++;
			if (s->state == SMTP_STATE_AUTH)
				smtp_auth_abort(s);
			smtp_reply(s, 500, "5.5.2 Error: line too long");
		} else {
			handle_line(s, line.data, line.len);
		}
		if (s->errors >= s->conf->limits.max_errors && s->state != SMTP_STATE_QUIT) {
			log_info("%s: too many errors from [%s]", s->id, net_conn_peer_ip(conn));
			smtp_reply(s, 421, "4.7.0 %s Error: too many errors", s->conf->hostname);
			smtp_enter_state(s, SMTP_STATE_QUIT);
			net_conn_close(conn);
		}
	}
}

static void on_drain(struct net_conn *conn, void *ctx)
{
	on_input(conn, ctx);
}

static void greet(struct smtp_session *s)
{
	smtp_reply(s, 220, "%s ESMTP Warren", s->conf->hostname);
}

static void connect_done(struct smtp_session *s, struct policy_request *r)
{
	if (s == NULL)
		return;
	if (r->code == 0) {
		greet(s);
		return;
	}
	smtp_enter_state(s, SMTP_STATE_QUIT);
	if (r->drop) {
		net_conn_abort(s->conn);
		return;
	}
	/* RFC 5321 3.1: a 554 greeting, then only QUIT would be answered; we close */
	smtp_reply(s, r->code, "%s", r->reply);
	net_conn_close(s->conn);
}

/* The connect stage of the policy chain, then the greeting. */
static void welcome(struct smtp_session *s)
{
	policy_run(s, POLICY_CONNECT, NULL, false, NULL, connect_done);
}

static void on_tls_ready(struct net_conn *conn, void *ctx)
{
	struct smtp_session *s = ctx;
	log_info("%s: TLS connection established from [%s]: %s with cipher %s", s->id,
		 net_conn_peer_ip(conn), net_conn_tls_version(conn), net_conn_tls_cipher(conn));
	if (s->listener->tls == CONF_TLS_IMPLICIT && s->commands == 0 &&
	    s->state == SMTP_STATE_CONNECTED && s->helo[0] == '\0')
		welcome(s);
}

static void on_timeout(struct net_conn *conn, void *ctx)
{
	struct smtp_session *s = ctx;
	const char *after = s->state == SMTP_STATE_CONNECTED ? "CONNECT" :
		s->state == SMTP_STATE_DATA ? "DATA" : s->state == SMTP_STATE_BDAT ? "BDAT" :
		s->txn != NULL ? (smtp_txn_rcpts(s->txn) > 0 ? "RCPT" : "MAIL") : "command";
	if (s->txn != NULL && s->txn->data_started)
		log_info("%s: timeout after %s (%llu bytes) from %s[%s]",
			 s->txn->queue_id, after, (unsigned long long)s->txn->size, s->client_name,
			 s->client_ip);
	else
		log_info("%s: timeout after %s from %s[%s]", s->id, after, s->client_name,
			 s->client_ip);
	smtp_reply(s, 421, "4.4.2 %s Error: timeout exceeded", s->conf->hostname);
	/* the connection closes now; a check or store job still running must not
	 * answer or deliver after this 421 (policy.c, finish) */
	smtp_enter_state(s, SMTP_STATE_QUIT);
}

static void session_free(struct smtp_session *s)
{
	struct smtp_sessions *list = sessions_of(s->svc);
	smtp_txn_reset(s);
	policy_session_free(s);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		list->head = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	conf_unref(&s->conf);
	if (list->stopping && !list->in_shutdown && list->head == NULL) {
		service_set_data(s->svc, NULL);
		free(list);
	}
	free(s);
}

bool smtp_session_unbusy(struct smtp_session *s)
{
	s->busy--;
	if (!s->closed)
		return false;
	if (s->busy == 0)
		session_free(s);
	return true;
}

static void on_close(struct net_conn *conn, void *ctx)
{
	struct smtp_session *s = ctx;
	if (s->login != NULL)
		service_login_cancel(s->login);
	s->login = NULL;
	sasl_clear(&s->sasl);
	if (s->state == SMTP_STATE_DATA || s->state == SMTP_STATE_BDAT)
		log_info("%s: lost connection after %s (%llu bytes) from %s[%s]",
			 s->txn != NULL && s->txn->queue_id[0] != '\0' ? s->txn->queue_id : s->id,
			 s->state == SMTP_STATE_DATA ? "DATA" : "BDAT",
			 s->txn != NULL ? (unsigned long long)s->txn->size : 0ULL, s->client_name,
			 s->client_ip);
	/* Postfix's form: only the commands that were used */
	const struct { const char *name; unsigned n; } counts[] = {
		{ "ehlo", s->n_ehlo }, { "starttls", s->n_starttls }, { "auth", s->n_auth },
		{ "mail", s->n_mail }, { "rcpt", s->n_rcpt }, { "data", s->n_data },
		{ "bdat", s->n_bdat }, { "rset", s->n_rset }, { "quit", s->n_quit },
	};
	char text[256];
	size_t o = 0;
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		if (counts[i].n > 0 && o < sizeof(text))
			o += (size_t)snprintf(text + o, sizeof(text) - o, " %s=%u", counts[i].name,
					      counts[i].n);
	if (o >= sizeof(text))
		o = sizeof(text) - 1;
	text[o] = '\0';
	log_info("%s: disconnect from %s[%s]%s commands=%u/%u queued=%u", s->id, s->client_name,
		 s->client_ip, text, s->commands - s->bad_commands, s->commands, s->queued);
	s->closed = true;
	s->conn = NULL;
	if (s->busy == 0)
		session_free(s);
}

static const struct net_conn_callbacks smtp_conn_callbacks = {
	.on_input = on_input,
	.on_tls_ready = on_tls_ready,
	.on_drain = on_drain,
	.on_timeout = on_timeout,
	.on_close = on_close,
};

void smtp_session_accept(struct service *svc, struct net_conn *conn,
			 struct warren_config *conf, const struct conf_listener *listener)
{
	struct smtp_sessions *list = sessions_of(svc);
	struct smtp_session *s = x_calloc(1, sizeof(*s));
	s->svc = svc;
	s->conn = conn;
	s->conf = conf;
	s->listener = listener;
	s->state = SMTP_STATE_CONNECTED;
	snprintf(s->client_ip, sizeof(s->client_ip), "%s", net_conn_peer_ip(conn));
	snprintf(s->client_name, sizeof(s->client_name), "unknown");
	snprintf(s->id, sizeof(s->id), "%lX", ++list->next_id + ((unsigned long)getpid() << 20));
	s->next = list->head;
	if (list->head != NULL)
		list->head->prev = s;
	list->head = s;
	net_conn_set_handler(conn, &smtp_conn_callbacks, s);
	log_info("%s: connect from unknown[%s] to %s", s->id, net_conn_peer_ip(conn),
		 listener->name);
	if (listener->tls == CONF_TLS_IMPLICIT) {
		if (net_conn_start_tls(conn, conf->tls_server) < 0) {
			log_error("%s: cannot start TLS", s->id);
			net_conn_abort(conn);
		}
		return;   /* greeted once the handshake is done */
	}
	welcome(s);
}

void smtp_sessions_shutdown(struct service *svc)
{
	struct smtp_sessions *list = sessions_of(svc);
	list->stopping = true;
	list->in_shutdown = true;
	for (struct smtp_session *s = list->head, *next; s != NULL; s = next) {
		next = s->next;
		if (s->state == SMTP_STATE_QUIT || s->closed)
			continue;
		smtp_reply(s, 421, "4.3.2 %s Service shutting down", s->conf->hostname);
		smtp_enter_state(s, SMTP_STATE_QUIT);
		net_conn_close(s->conn);
	}
	list->in_shutdown = false;
	if (list->head == NULL) {
		service_set_data(svc, NULL);
		free(list);
	}
}
