/* imap-session.c — IMAP session lifecycle: greeting, assembling commands with
 * their literals, dispatching them, replies. */
#include "imapd/imap-session.h"
#include "common/log.h"
#include "common/pool.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct imap_sessions {
	struct imap_session *head;
	unsigned long next_id;
	bool stopping;           /* shutdown: freed with the last session */
};

/* Frees the list once the daemon is stopping and no session is left. */
static void sessions_release(struct service *svc, struct imap_sessions *list)
{
	if (!list->stopping || list->head != NULL)
		return;
	service_set_notify(svc, NULL, NULL);
	service_set_data(svc, NULL);
	free(list);
}

static void imap_notify(uint64_t mailbox_id, void *ctx);
static void on_input(struct net_conn *conn, void *ctx);

static struct imap_sessions *sessions_of(struct service *svc)
{
	struct imap_sessions *list = service_data(svc);
	if (list == NULL) {
		list = x_calloc(1, sizeof(*list));
		service_set_data(svc, list);
		service_set_notify(svc, imap_notify, list);
	}
	return list;
}

/* The store changed mailbox_id: tell the sessions that have it selected. */
static void imap_notify(uint64_t mailbox_id, void *ctx)
{
	struct imap_sessions *list = ctx;
	for (struct imap_session *s = list->head, *next; s != NULL; s = next) {
		next = s->next;
		if (s->sel != NULL && s->sel->id == mailbox_id && !s->closed)
			imap_session_changed(s);
	}
}

struct store *imap_store(const struct imap_session *s)
{
	return service_store(s->svc);
}

uint64_t imap_quota(const struct imap_session *s)
{
	return s->user != NULL ? s->user->quota : 0;
}

uint64_t imap_max_message_size(const struct imap_session *s)
{
	if (s->user != NULL && s->user->max_message_size != 0)
		return s->user->max_message_size;
	if (s->user != NULL && s->user->domain != NULL && s->user->domain->max_message_size != 0)
		return s->user->domain->max_message_size;
	return s->conf->max_message_size;
}

static const char *state_name(enum imap_state state)
{
	static const char *const names[] = { "NOT_AUTH", "AUTH", "SELECTED", "LOGOUT" };
	return names[state];
}

void imap_enter_state(struct imap_session *s, enum imap_state state)
{
	if (s->state == state)
		return;
	log_debug("%s: state %s -> %s", s->id, state_name(s->state), state_name(state));
	s->state = state;
}

void imap_tagged(struct imap_session *s, const char *status, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	char line[sizeof(text) + IMAP_TAG_MAX + 32];
	int n = snprintf(line, sizeof(line), "%s %s %s\r\n", s->tag, status, text);
	imap_write(s, line, n > 0 && (size_t)n < sizeof(line) ? (size_t)n : strlen(line));
	if (strcmp(status, "BAD") == 0)
		s->bad++;
}

void imap_untagged(struct imap_session *s, const char *fmt, ...)
{
	char text[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	char line[sizeof(text) + 8];
	int n = snprintf(line, sizeof(line), "* %s\r\n", text);
	imap_write(s, line, n > 0 && (size_t)n < sizeof(line) ? (size_t)n : strlen(line));
}

void imap_session_wait(struct imap_session *s)
{
	s->mode = IMAP_INPUT_WAIT;
	net_conn_pause_input(s->conn);
}

void imap_session_resume(struct imap_session *s)
{
	s->mode = s->idling ? IMAP_INPUT_IDLE : IMAP_INPUT_LINE;
	net_conn_resume_input(s->conn);
	/* inflated input the net layer no longer sees as buffered */
	if (imap_compress_pending(s))
		on_input(s->conn, s);
}

void imap_session_logout(struct imap_session *s)
{
	imap_enter_state(s, IMAP_STATE_LOGOUT);
	net_conn_close(s->conn);
}

bool imap_plaintext_allowed(const struct imap_session *s)
{
	return net_conn_is_tls(s->conn) || s->listener->auth_plaintext;
}

/* Extensions of the authenticated states, each complete and tested. */
#define IMAP_CAPS_AUTHED "ENABLE IDLE NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN " \
	"SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED LIST-STATUS STATUS=SIZE ESEARCH SEARCHRES " \
	"COMPRESS=DEFLATE CONDSTORE QRESYNC WITHIN SORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES QUOTA QUOTA=RES-STORAGE BINARY UTF8=ACCEPT"

const char *imap_capabilities(const struct imap_session *s, char *buf, size_t size)
{
	size_t o = (size_t)snprintf(buf, size, "IMAP4rev1 IMAP4rev2 %s SASL-IR ID",
				    s->conf->imap.literal_minus ? "LITERAL-" : "LITERAL+");
	if (s->state != IMAP_STATE_NOT_AUTH && o < size)
		o += (size_t)snprintf(buf + o, size - o, " " IMAP_CAPS_AUTHED " APPENDLIMIT=%llu",
				      (unsigned long long)imap_max_message_size(s));
	if (s->state == IMAP_STATE_NOT_AUTH) {
		if (s->listener->tls == CONF_TLS_STARTTLS && !net_conn_is_tls(s->conn) && o < size)
			o += (size_t)snprintf(buf + o, size - o, " STARTTLS");
		if (imap_plaintext_allowed(s)) {
			if (o < size)
				snprintf(buf + o, size - o, " AUTH=PLAIN AUTH=LOGIN");
		} else if (o < size) {
			snprintf(buf + o, size - o, " LOGINDISABLED");
		}
	}
	return buf;
}

/* ---- commands ---- */

static bool state_allows(const struct imap_session *s, unsigned flags)
{
	switch (s->state) {
	case IMAP_STATE_NOT_AUTH: return flags & IMAP_CMD_NOT_AUTH;
	case IMAP_STATE_AUTH: return flags & IMAP_CMD_AUTH;
	case IMAP_STATE_SELECTED: return flags & IMAP_CMD_SELECTED;
	default: return false;
	}
}

/* Takes the tag for replies from a command that did not parse. */
static void recover_tag(struct imap_session *s, const char *data, size_t len)
{
	const char *sp = memchr(data, ' ', len);
	size_t tlen = sp != NULL ? (size_t)(sp - data) : len;
	if (imap_valid_tag(data, tlen) && tlen <= IMAP_TAG_MAX) {
		memcpy(s->tag, data, tlen);
		s->tag[tlen] = '\0';
	} else {
		strcpy(s->tag, "*");
	}
}

/* Arguments of a command for limits.max_command_args: every atom, string and
 * NIL, the elements of lists at any depth, and each range of a sequence set
 * ("1:5,7,9:*" is three). */
static size_t count_args(const struct imap_arg *args, size_t n)
{
	size_t count = 0;
	for (size_t i = 0; i < n; i++) {
		if (args[i].type == IMAP_ARG_LIST) {
			count += count_args(args[i].list, args[i].n_list);
			continue;
		}
		count++;
		if (args[i].type == IMAP_ARG_ATOM)
			for (const char *c = args[i].str; (c = strchr(c, ',')) != NULL; c++)
				count++;
	}
	return count;
}

static void run_command(struct imap_session *s)
{
	struct pool *pool = pool_new(4096);
	const char *tag, *name, *error;
	struct imap_arg *args;
	size_t n;
	const char *data = buf_data(&s->cmd);
	size_t len = buf_len(&s->cmd);

	if (imap_parse_command(pool, data, len, &tag, &name, &args, &n, &error) < 0) {
		recover_tag(s, data, len);
		imap_tagged(s, "BAD", "Error in IMAP command: %s", error);
		pool_free(&pool);
		return;
	}
	snprintf(s->tag, sizeof(s->tag), "%s", tag);
	const struct imap_command *cmd = imap_command_find(name);
	size_t n_items = count_args(args, n);
	if (n_items > s->conf->limits.max_command_args) {
		log_info("%s: command with %zu arguments (limit %u) from [%s]", s->id, n_items,
			 s->conf->limits.max_command_args, net_conn_peer_ip(s->conn));
		imap_tagged(s, "BAD", "Too many arguments in command");
	} else if (cmd == NULL) {
		imap_tagged(s, "BAD", "Unknown command");
	} else if (!state_allows(s, cmd->flags)) {
		imap_tagged(s, "BAD", "Command not allowed in this state");
	} else {
		cmd->handler(s, args, n);
	}
	/* passwords given to LOGIN live in the pool and the command buffer */
	explicit_bzero((char *)data, len);
	pool_free(&pool);
}

/* Keeps idle sessions small: a big command's buffer is given back. */
#define IMAP_CMD_BUF_KEEP (64 * 1024)

static void command_reset(struct imap_session *s)
{
	if (buf_len(&s->cmd) > IMAP_CMD_BUF_KEEP) {
		size_t max = s->cmd.max;
		buf_free(&s->cmd);
		buf_init(&s->cmd, max);
	} else {
		buf_clear(&s->cmd);
	}
	s->literal_total = 0;
	s->literal_count = 0;
	s->is_append = false;
}

static void command_done(struct imap_session *s)
{
	if (s->state == IMAP_STATE_NOT_AUTH &&
	    ++s->unauth_commands > s->conf->limits.max_unauth_commands) {
		log_info("%s: too many commands before login from [%s]", s->id,
			 net_conn_peer_ip(s->conn));
		command_reset(s);
		imap_untagged(s, "BYE Too many commands before login.");
		imap_session_logout(s);
		return;
	}
	run_command(s);
	command_reset(s);
}

/* Whether the command starting with line is APPEND (whose literals are messages). */
static bool line_is_append(const char *line, size_t len)
{
	const char *sp = memchr(line, ' ', len);
	if (sp == NULL)
		return false;
	size_t rest = len - (size_t)(sp + 1 - line);
	return rest > 7 && strncasecmp(sp + 1, "APPEND ", 7) == 0;
}

/* Literal bytes the command being assembled may carry in all. */
static uint64_t literal_limit(const struct imap_session *s)
{
	if (s->is_append && s->state != IMAP_STATE_NOT_AUTH)
		return imap_max_message_size(s) + s->conf->limits.imap_max_literal;
	return s->conf->limits.imap_max_literal;
}

/* A complete line of the command being assembled. */
static void command_line(struct imap_session *s, const char *data, size_t len)
{
	struct imap_literal_info lit;
	if (buf_len(&s->cmd) == 0)
		s->is_append = line_is_append(data, len);
	if (buf_append(&s->cmd, data, len) < 0) {
		recover_tag(s, buf_data(&s->cmd), buf_len(&s->cmd));
		imap_tagged(s, "BAD", "Command too long");
		command_reset(s);
		return;
	}
	int ret = imap_line_literal(data, len, &lit);
	if (ret == 0) {
		command_done(s);
		return;
	}
	uint64_t limit = literal_limit(s);
	if (ret > 0 && lit.nonsync && lit.size > IMAP_LITERAL_MINUS_MAX &&
	    lit.size <= limit && s->conf->imap.literal_minus) {
		/* RFC 7888 4: refuse it, and skip the literal the client sends anyway
		 * (one beyond what the command could carry at all ends the session) */
		recover_tag(s, buf_data(&s->cmd), buf_len(&s->cmd));
		command_reset(s);
		log_info("%s: non-synchronizing literal of %llu bytes refused (LITERAL-) from [%s]",
			 s->id, (unsigned long long)lit.size, net_conn_peer_ip(s->conn));
		imap_tagged(s, "BAD", "[TOOBIG] Non-synchronizing literals are limited to %d "
			    "bytes (LITERAL-)", IMAP_LITERAL_MINUS_MAX);
		s->literal_left = lit.size;
		s->mode = IMAP_INPUT_DISCARD;
		return;
	}
	if (ret > 0 && s->literal_count >= s->conf->limits.imap_max_literals) {
		/* limits.imap_max_literals: a command made of endless literals */
		recover_tag(s, buf_data(&s->cmd), buf_len(&s->cmd));
		command_reset(s);
		log_info("%s: more than %u literals in one command from [%s]", s->id,
			 s->conf->limits.imap_max_literals, net_conn_peer_ip(s->conn));
		if (lit.nonsync) {
			imap_untagged(s, "BYE Too many literals");
			imap_session_logout(s);
			return;
		}
		imap_tagged(s, "BAD", "Too many literals in one command");
		s->bad++;
		return;
	}
	if (ret < 0 || lit.size > limit || s->literal_total + lit.size > limit) {
		recover_tag(s, buf_data(&s->cmd), buf_len(&s->cmd));
		command_reset(s);
		if (ret > 0 && lit.nonsync) {
			/* the client is sending it anyway: we cannot find the next command */
			imap_untagged(s, "BYE [TOOBIG] Literal too large");
			imap_session_logout(s);
			return;
		}
		imap_tagged(s, ret < 0 ? "BAD" : "NO", ret < 0 ? "Invalid literal size" :
			    "[TOOBIG] Literal too large");
		return;
	}
	buf_append(&s->cmd, "\r\n", 2);
	s->literal_left = lit.size;
	s->literal_total += lit.size;
	s->literal_count++;
	s->mode = IMAP_INPUT_LITERAL;
	if (!lit.nonsync)
		imap_write_str(s, "+ OK\r\n");
}

static void read_literal(struct imap_session *s)
{
	const char *data;
	size_t avail = imap_input(s, &data);
	size_t take = avail < s->literal_left ? avail : (size_t)s->literal_left;
	buf_append(&s->cmd, data, take);
	imap_consume(s, take);
	s->literal_left -= take;
	if (s->literal_left == 0)
		s->mode = IMAP_INPUT_LINE;
}

/* Skips the bytes of a refused literal. */
static void discard_literal(struct imap_session *s)
{
	const char *data;
	size_t avail = imap_input(s, &data);
	size_t take = avail < s->literal_left ? avail : (size_t)s->literal_left;
	imap_consume(s, take);
	s->literal_left -= take;
}

/* A line of a refused command: it ends the command unless another
 * non-synchronizing literal follows (a synchronizing one is never asked for). */
static void discard_line(struct imap_session *s, const char *data, size_t len)
{
	struct imap_literal_info lit;
	if (imap_line_literal(data, len, &lit) == 1 && lit.nonsync) {
		s->literal_left = lit.size;
		return;
	}
	s->mode = IMAP_INPUT_LINE;
}

static void handle_line(struct imap_session *s, const struct net_line *line)
{
	if (s->mode == IMAP_INPUT_DISCARD) {
		discard_line(s, line->data, line->len);
		return;
	}
	if (s->mode == IMAP_INPUT_SASL) {
		char *copy = x_strndup(line->data, line->len);
		imap_sasl_input(s, copy);
		explicit_bzero(copy, line->len);
		free(copy);
		return;
	}
	if (s->mode == IMAP_INPUT_IDLE) {
		imap_idle_input(s, line->data, line->len);
		return;
	}
	command_line(s, line->data, line->len);
}

static void on_input(struct net_conn *conn, void *ctx)
{
	struct imap_session *s = ctx;
	if (s->in_input)
		return;   /* a resume from inside a command: the loop below goes on */
	s->in_input = true;
	while (s->state != IMAP_STATE_LOGOUT && s->mode != IMAP_INPUT_WAIT &&
	       !net_conn_output_full(conn)) {
		if (s->mode == IMAP_INPUT_LITERAL) {
			const char *data;
			if (imap_input(s, &data) == 0)
				break;
			read_literal(s);
			continue;
		}
		if (s->mode == IMAP_INPUT_DISCARD && s->literal_left > 0) {
			const char *data;
			if (imap_input(s, &data) == 0)
				break;
			discard_literal(s);
			continue;
		}
		struct net_line line;
		enum net_line_status st = imap_read_line(s, &line);
		if (st == NET_LINE_NEED_MORE)
			break;
		if (st == NET_LINE_TOO_LONG) {
			command_reset(s);
			strcpy(s->tag, "*");
			imap_tagged(s, "BAD", "Command line too long");
			s->mode = IMAP_INPUT_LINE;
		} else {
			handle_line(s, &line);
		}
		if (s->bad >= s->conf->limits.max_errors && s->state != IMAP_STATE_LOGOUT) {
			log_info("%s: too many invalid commands from [%s]", s->id,
				 net_conn_peer_ip(conn));
			imap_untagged(s, "BYE Too many invalid IMAP commands.");
			imap_session_logout(s);
		}
	}
	s->in_input = false;
}

static void on_drain(struct net_conn *conn, void *ctx)
{
	struct imap_session *s = ctx;
	if (s->pending_job != NULL) {
		imap_session_drained(s);
		return;
	}
	on_input(conn, ctx);
}

static void greet(struct imap_session *s)
{
	char caps[512];
	imap_untagged(s, "OK [CAPABILITY %s] Warren ready.",
		      imap_capabilities(s, caps, sizeof(caps)));
}

static void on_tls_ready(struct net_conn *conn, void *ctx)
{
	struct imap_session *s = ctx;
	log_info("%s: TLS connection established from [%s]: %s with cipher %s", s->id,
		 net_conn_peer_ip(conn), net_conn_tls_version(conn), net_conn_tls_cipher(conn));
	if (s->listener->tls == CONF_TLS_IMPLICIT)
		greet(s);
}

static void on_timeout(struct net_conn *conn, void *ctx)
{
	struct imap_session *s = ctx;
	log_info("%s: disconnected for inactivity: rip=%s", s->id, net_conn_peer_ip(conn));
	imap_untagged(s, "BYE Disconnected for inactivity.");
}

void imap_session_free(struct imap_session *s)
{
	imap_compress_free(&s->compress);
	imap_body_file_close(&s->body);
	imap_selected_free(&s->sel);
	buf_free(&s->cmd);
	conf_unref(&s->conf);
	free(s);
}

static void on_close(struct net_conn *conn, void *ctx)
{
	struct imap_session *s = ctx;
	struct imap_sessions *list = sessions_of(s->svc);
	if (s->login != NULL)
		service_login_cancel(s->login);
	sasl_clear(&s->sasl);
	log_info("%s: disconnected: user=<%s>, rip=%s", s->id,
		 s->user != NULL ? s->user->address : "", net_conn_peer_ip(conn));
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		list->head = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	sessions_release(s->svc, list);
	s->conn = NULL;
	s->closed = true;
	if (s->pending_job != NULL) {
		imap_job_discard(s->pending_job);
		s->pending_job = NULL;
	}
	if (s->jobs == 0)
		imap_session_free(s);
}

static const struct net_conn_callbacks imap_conn_callbacks = {
	.on_input = on_input,
	.on_tls_ready = on_tls_ready,
	.on_drain = on_drain,
	.on_timeout = on_timeout,
	.on_close = on_close,
};

void imap_session_accept(struct service *svc, struct net_conn *conn,
			 struct warren_config *conf, const struct conf_listener *listener)
{
	struct imap_sessions *list = sessions_of(svc);
	struct imap_session *s = x_calloc(1, sizeof(*s));
	s->body.fd = -1;
	s->svc = svc;
	s->conn = conn;
	s->conf = conf;
	s->listener = listener;
	s->state = IMAP_STATE_NOT_AUTH;
	s->mode = IMAP_INPUT_LINE;
	strcpy(s->tag, "*");
	buf_init(&s->cmd, (size_t)listener->max_line_length + 2 * conf->limits.imap_max_literal +
		 (size_t)conf->max_message_size + 64);
	snprintf(s->id, sizeof(s->id), "%lX", ++list->next_id + ((unsigned long)getpid() << 20));
	s->next = list->head;
	if (list->head != NULL)
		list->head->prev = s;
	list->head = s;
	net_conn_set_handler(conn, &imap_conn_callbacks, s);
	log_info("%s: connect from [%s] to %s", s->id, net_conn_peer_ip(conn), listener->name);
	if (listener->tls == CONF_TLS_IMPLICIT) {
		if (net_conn_start_tls(conn, conf->tls_server) < 0)
			net_conn_abort(conn);
		return;
	}
	greet(s);
}

void imap_sessions_shutdown(struct service *svc)
{
	struct imap_sessions *list = sessions_of(svc);
	list->stopping = true;
	for (struct imap_session *s = list->head; s != NULL; s = s->next) {
		if (s->state == IMAP_STATE_LOGOUT)
			continue;
		imap_untagged(s, "BYE Server shutting down.");
		imap_session_logout(s);
	}
	sessions_release(svc, list);
}
