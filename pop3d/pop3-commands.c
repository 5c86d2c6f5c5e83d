/* pop3-commands.c — the POP3 command table and the commands of no particular
 * state: CAPA (RFC 2449), NOOP, QUIT, STLS (RFC 2595). */
#include "pop3d/pop3-session.h"

#include <string.h>
#include <strings.h>

static void cmd_capa(struct pop3_session *s, const char *args)
{
	struct net_conn *c = s->conn;
	pop3_ok(s, "Capability list follows");
	net_conn_write_str(c, "TOP\r\nUIDL\r\n");
	/* what AUTHORIZATION offers is announced in both states (RFC 2449 5) */
	if (pop3_plaintext_allowed(s)) {
		net_conn_write_str(c, "USER\r\n");
		net_conn_write_str(c, "SASL PLAIN LOGIN\r\n");
	}
	if (s->state == POP3_STATE_AUTHORIZATION && s->listener->tls == CONF_TLS_STARTTLS &&
	    !net_conn_is_tls(c))
		net_conn_write_str(c, "STLS\r\n");
	net_conn_write_str(c, "RESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
	long expire = pop3_expire_days(s->conf);
	if (expire == -2)
		net_conn_write_str(c, "EXPIRE NEVER\r\n");
	else if (expire >= 0)
		net_conn_printf(c, "EXPIRE %ld\r\n", expire);
	if (s->conf->pop3.login_delay_s > 0)
		net_conn_printf(c, "LOGIN-DELAY %u\r\n", s->conf->pop3.login_delay_s);
	if (s->conf->pop3.sdps)
		net_conn_write_str(c, "SDPS\r\n");
	net_conn_write_str(c, "IMPLEMENTATION Warren\r\n.\r\n");
}

static void cmd_noop(struct pop3_session *s, const char *args)
{
	if (args[0] != '\0') {
		pop3_err(s, "NOOP takes no argument.");
		return;
	}
	pop3_ok(s, "%s", "");
}

static void cmd_quit(struct pop3_session *s, const char *args)
{
	if (s->state == POP3_STATE_TRANSACTION) {
		pop3_maildrop_update(s);
		return;
	}
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

static const struct pop3_command pop3_commands[] = {
	{ "CAPA", cmd_capa, POP3_CMD_AUTHORIZATION | POP3_CMD_TRANSACTION },
	{ "QUIT", cmd_quit, POP3_CMD_AUTHORIZATION | POP3_CMD_TRANSACTION },
	{ "STLS", cmd_stls, POP3_CMD_AUTHORIZATION },
	{ "USER", pop3_cmd_user, POP3_CMD_AUTHORIZATION },
	{ "PASS", pop3_cmd_pass, POP3_CMD_AUTHORIZATION },
	{ "AUTH", pop3_cmd_auth, POP3_CMD_AUTHORIZATION },
	{ "NOOP", cmd_noop, POP3_CMD_TRANSACTION },
	{ "STAT", pop3_cmd_stat, POP3_CMD_TRANSACTION },
	{ "LIST", pop3_cmd_list, POP3_CMD_TRANSACTION },
	{ "RETR", pop3_cmd_retr, POP3_CMD_TRANSACTION },
	{ "DELE", pop3_cmd_dele, POP3_CMD_TRANSACTION },
	{ "RSET", pop3_cmd_rset, POP3_CMD_TRANSACTION },
	{ "TOP", pop3_cmd_top, POP3_CMD_TRANSACTION },
	{ "UIDL", pop3_cmd_uidl, POP3_CMD_TRANSACTION },
	{ "*ENV", pop3_cmd_env, POP3_CMD_TRANSACTION },
};

const struct pop3_command *pop3_command_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(pop3_commands) / sizeof(pop3_commands[0]); i++)
		if (strlen(pop3_commands[i].name) == len &&
		    strncasecmp(pop3_commands[i].name, name, len) == 0)
			return &pop3_commands[i];
	return NULL;
}
