/* pop3-commands.c — the POP3 command table and the commands that need no store.
 * The maildrop commands (STAT, LIST, RETR, ...) arrive with the store (issue #8). */
#include "pop3d/pop3-session.h"

#include <string.h>
#include <strings.h>

static void cmd_capa(struct pop3_session *s, const char *args)
{
	struct net_conn *c = s->conn;
	pop3_ok(s, "Capability list follows");
	if (s->state == POP3_STATE_AUTHORIZATION && pop3_plaintext_allowed(s)) {
		net_conn_write_str(c, "USER\r\n");
		net_conn_write_str(c, "SASL PLAIN LOGIN\r\n");
	}
	if (s->state == POP3_STATE_AUTHORIZATION && s->listener->tls == CONF_TLS_STARTTLS &&
	    !net_conn_is_tls(c))
		net_conn_write_str(c, "STLS\r\n");
	net_conn_write_str(c, "RESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n"
			   "IMPLEMENTATION Warren\r\n.\r\n");
}

static void cmd_noop(struct pop3_session *s, const char *args)
{
	pop3_ok(s, "%s", "");
}

static void cmd_quit(struct pop3_session *s, const char *args)
{
	pop3_ok(s, "Logging out.");
	pop3_session_close(s);
}

static void cmd_stls(struct pop3_session *s, const char *args)
{
	if (net_conn_is_tls(s->conn)) {
		pop3_err(s, "TLS is already active.");
		return;
	}
	if (s->listener->tls != CONF_TLS_STARTTLS || s->conf->tls_server == NULL) {
		pop3_err(s, "STLS is not available here.");
		return;
	}
	pop3_ok(s, "Begin TLS negotiation now.");
	if (net_conn_start_tls(s->conn, s->conf->tls_server) < 0) {
		pop3_err(s, "[SYS/TEMP] TLS is not available due to a local problem.");
		pop3_session_close(s);
	}
}

static void cmd_not_yet(struct pop3_session *s, const char *args)
{
	pop3_err(s, "[SYS/PERM] Not available yet on this server.");
}

static const struct pop3_command pop3_commands[] = {
	{ "CAPA", cmd_capa, POP3_CMD_AUTHORIZATION | POP3_CMD_TRANSACTION },
	{ "QUIT", cmd_quit, POP3_CMD_AUTHORIZATION | POP3_CMD_TRANSACTION },
	{ "STLS", cmd_stls, POP3_CMD_AUTHORIZATION },
	{ "USER", pop3_cmd_user, POP3_CMD_AUTHORIZATION },
	{ "PASS", pop3_cmd_pass, POP3_CMD_AUTHORIZATION },
	{ "AUTH", pop3_cmd_auth, POP3_CMD_AUTHORIZATION },
	{ "NOOP", cmd_noop, POP3_CMD_TRANSACTION },
	{ "STAT", cmd_not_yet, POP3_CMD_TRANSACTION },
	{ "LIST", cmd_not_yet, POP3_CMD_TRANSACTION },
	{ "RETR", cmd_not_yet, POP3_CMD_TRANSACTION },
	{ "DELE", cmd_not_yet, POP3_CMD_TRANSACTION },
	{ "RSET", cmd_not_yet, POP3_CMD_TRANSACTION },
	{ "TOP", cmd_not_yet, POP3_CMD_TRANSACTION },
	{ "UIDL", cmd_not_yet, POP3_CMD_TRANSACTION },
};

const struct pop3_command *pop3_command_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(pop3_commands) / sizeof(pop3_commands[0]); i++)
		if (strlen(pop3_commands[i].name) == len &&
		    strncasecmp(pop3_commands[i].name, name, len) == 0)
			return &pop3_commands[i];
	return NULL;
}
