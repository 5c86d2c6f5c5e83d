/* pop3-session.c — POP3 session lifecycle: greeting, commands, replies. */
#include "pop3d/pop3-session.h"
#include "common/log.h"
#include "common/pool.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pop3_sessions {
	struct pop3_session *head;
	unsigned long next_id;
	bool stopping;            /* shutdown ran: freed with the last session */
};

static void sessions_free_if_done(struct service *svc, struct pop3_sessions *list)
{
	if (list->stopping && list->head == NULL) {
		service_set_data(svc, NULL);
		free(list);
	}
}

static struct pop3_sessions *sessions_of(struct service *svc)
{
	struct pop3_sessions *list = service_data(svc);
	if (list == NULL) {
		list = x_calloc(1, sizeof(*list));
		service_set_data(svc, list);
	}
	return list;
}

void pop3_enter_state(struct pop3_session *s, enum pop3_state state)
{
	static const char *const names[] = {
		"AUTHORIZATION", "SASL", "WAIT", "TRANSACTION", "UPDATE" };
	if (s->state == state)
		return;
	log_debug("%s: state %s -> %s", s->id, names[s->state], names[state]);
	s->state = state;
}

static void reply(struct pop3_session *s, const char *status, const char *fmt, va_list ap)
{
	char text[1024];
	vsnprintf(text, sizeof(text), fmt, ap);
	net_conn_printf(s->conn, "%s%s%s\r\n", status, text[0] != '\0' ? " " : "", text);
}

void pop3_ok(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	reply(s, "+OK", fmt, ap);
	va_end(ap);
}

void pop3_err(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	reply(s, "-ERR", fmt, ap);
	va_end(ap);
	s->errors++;
}

void pop3_session_close(struct pop3_session *s)
{
	pop3_enter_state(s, POP3_STATE_UPDATE);
	net_conn_close(s->conn);
}

bool pop3_session_busy(const struct pop3_session *s)
{
	return s->job != NULL || s->stream.kind != POP3_STREAM_NONE ||
		s->state == POP3_STATE_WAIT || s->state == POP3_STATE_UPDATE;
}

void pop3_session_continue(struct pop3_session *s)
{
	if (!pop3_session_busy(s))
		net_conn_resume_input(s->conn);
}

bool pop3_plaintext_allowed(const struct pop3_session *s)
{
	return net_conn_is_tls(s->conn) || s->listener->auth_plaintext;
}

static void run_command(struct pop3_session *s, const char *line, size_t len)
{
	size_t n = 0;
	while (n < len && line[n] != ' ')
		n++;
	const struct pop3_command *cmd = pop3_command_find(line, n);
	if (cmd == NULL) {
		pop3_err(s, "Unknown command.");
		return;
	}
	unsigned need = s->state == POP3_STATE_TRANSACTION ? POP3_CMD_TRANSACTION :
		POP3_CMD_AUTHORIZATION;
	if (!(cmd->flags & need)) {
		pop3_err(s, "Command not allowed in this state.");
		return;
	}
	const char *args = n < len ? line + n + 1 : line + n;
	/* limits.max_command_args: POP3 commands take two at most */
	if (service_too_many_args(s->conf, s->id, net_conn_peer_ip(s->conn), args)) {
		pop3_err(s, "Too many arguments.");
		return;
	}
	cmd->handler(s, args);
}

static void handle_line(struct pop3_session *s, const char *data, size_t len)
{
	if (memchr(data, '\0', len) != NULL) {
		pop3_err(s, "NUL character in command.");
		return;
	}
	if (s->state == POP3_STATE_AUTHORIZATION &&
	    ++s->unauth_commands > s->conf->limits.max_unauth_commands) {
		log_info("%s: too many commands before login from [%s]", s->id,
			 net_conn_peer_ip(s->conn));
		pop3_err(s, "Too many commands before login, closing.");
		pop3_session_close(s);
		return;
	}
	char *copy = x_strndup(data, len);
	if (s->state == POP3_STATE_SASL)
		pop3_sasl_input(s, copy);
	else
		run_command(s, copy, len);
	explicit_bzero(copy, len);
	free(copy);
}

static void on_input(struct net_conn *conn, void *ctx)
{
	struct pop3_session *s = ctx;
	struct net_line line;
	enum net_line_status st;
	while (!pop3_session_busy(s) && !net_conn_output_full(conn) &&
	       (st = net_conn_read_line(conn, &line)) != NET_LINE_NEED_MORE) {
		if (st == NET_LINE_TOO_LONG) {
			if (s->state == POP3_STATE_SASL) {
				sasl_clear(&s->sasl);
				pop3_enter_state(s, POP3_STATE_AUTHORIZATION);
			}
			pop3_err(s, "Line too long.");
		} else {
			handle_line(s, line.data, line.len);
		}
		if (s->errors >= s->conf->limits.max_errors && s->state != POP3_STATE_UPDATE) {
			log_info("%s: too many errors from [%s]", s->id, net_conn_peer_ip(conn));
			pop3_err(s, "Too many errors, closing.");
			pop3_session_close(s);
		}
	}
}

static void on_drain(struct net_conn *conn, void *ctx)
{
	struct pop3_session *s = ctx;
	if (s->stream.kind != POP3_STREAM_NONE)
		pop3_stream_resume(s);
	else
		on_input(conn, ctx);
}

static void greet(struct pop3_session *s)
{
	pop3_ok(s, "Warren POP3 ready.");
}

static void on_tls_ready(struct net_conn *conn, void *ctx)
{
	struct pop3_session *s = ctx;
	log_info("%s: TLS connection established from [%s]: %s with cipher %s", s->id,
		 net_conn_peer_ip(conn), net_conn_tls_version(conn), net_conn_tls_cipher(conn));
	if (s->listener->tls == CONF_TLS_IMPLICIT)
		greet(s);
}

static void on_timeout(struct net_conn *conn, void *ctx)
{
	struct pop3_session *s = ctx;
	log_info("%s: disconnected for inactivity: rip=%s", s->id, net_conn_peer_ip(conn));
	/* never in the middle of a multi-line response: the client would take the
	 * line for part of the message */
	if (s->stream.kind == POP3_STREAM_NONE)
		pop3_err(s, "Disconnected for inactivity.");
	s->stream.kind = POP3_STREAM_NONE;
	pop3_enter_state(s, POP3_STATE_UPDATE);
}

static void on_close(struct net_conn *conn, void *ctx)
{
	struct pop3_session *s = ctx;
	struct service *svc_of_closed = s->svc;
	struct pop3_sessions *list = sessions_of(s->svc);
	if (s->login != NULL)
		service_login_cancel(s->login);
	sasl_clear(&s->sasl);
	if (s->mailbox != NULL && s->drop.msgs != NULL)
		log_info("%s: disconnected: user=<%s>, rip=%s, top=%u/%llu, retr=%u/%llu, "
			 "del=%u/%zu, size=%llu%s", s->id, s->mailbox->address,
			 net_conn_peer_ip(conn), s->stats.top, (unsigned long long)s->stats.top_bytes,
			 s->stats.retr, (unsigned long long)s->stats.retr_bytes, s->stats.dele,
			 s->drop.count, (unsigned long long)s->drop.size,
			 s->stats.quit ? "" : ", no QUIT: nothing deleted");
	else
		log_info("%s: disconnected: user=<%s>, rip=%s", s->id,
			 s->mailbox != NULL ? s->mailbox->address : "", net_conn_peer_ip(conn));
	pop3_maildrop_session_gone(s);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		list->head = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	conf_unref(&s->conf);
	free(s);
	sessions_free_if_done(svc_of_closed, list);
}

static const struct net_conn_callbacks pop3_conn_callbacks = {
	.on_input = on_input,
	.on_tls_ready = on_tls_ready,
	.on_drain = on_drain,
	.on_timeout = on_timeout,
	.on_close = on_close,
};

void pop3_session_accept(struct service *svc, struct net_conn *conn,
			 struct warren_config *conf, const struct conf_listener *listener)
{
	struct pop3_sessions *list = sessions_of(svc);
	struct pop3_session *s = x_calloc(1, sizeof(*s));
	s->svc = svc;
	s->conn = conn;
	s->conf = conf;
	s->listener = listener;
	s->state = POP3_STATE_AUTHORIZATION;
	s->lock_fd = -1;
	snprintf(s->id, sizeof(s->id), "%lX", ++list->next_id + ((unsigned long)getpid() << 20));
	s->next = list->head;
	if (list->head != NULL)
		list->head->prev = s;
	list->head = s;
	net_conn_set_handler(conn, &pop3_conn_callbacks, s);
	log_info("%s: connect from [%s] to %s", s->id, net_conn_peer_ip(conn), listener->name);
	if (listener->tls == CONF_TLS_IMPLICIT) {
		if (net_conn_start_tls(conn, conf->tls_server) < 0)
			net_conn_abort(conn);
		return;
	}
	greet(s);
}

void pop3_sessions_shutdown(struct service *svc)
{
	struct pop3_sessions *list = sessions_of(svc);
	for (struct pop3_session *s = list->head; s != NULL; s = s->next) {
		if (s->state == POP3_STATE_UPDATE)
			continue;
		if (s->stream.kind == POP3_STREAM_NONE)
			pop3_err(s, "[SYS/TEMP] Server shutting down.");
		s->stream.kind = POP3_STREAM_NONE;
		pop3_session_close(s);
	}
	list->stopping = true;
	sessions_free_if_done(svc, list);
}
