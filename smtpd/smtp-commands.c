/* smtp-commands.c — the SMTP command table and the session-level commands.
 * Mail transactions are in smtp-txn.c, smtp-rcpt.c, smtp-data.c, smtp-deliver.c. */
#include "smtpd/smtp-session.h"
#include "smtpd/policy.h"
#include "common/log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool valid_helo(const char *args)
{
	if (args[0] == '\0')
		return false;
	for (const char *p = args; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return false;
	return true;
}

static void set_helo(struct smtp_session *s, const char *args, bool esmtp)
{
	snprintf(s->helo, sizeof(s->helo), "%s", args);
	s->esmtp = esmtp && !s->xclient_proto_smtp;
	smtp_txn_reset(s);   /* RFC 5321 4.1.4: EHLO/HELO reset the transaction */
	s->n_ehlo++;
	smtp_enter_state(s, SMTP_STATE_HELO);
}

static void ehlo_reply(struct smtp_session *s);

/* After the HELO stage of the policy chain: the greeting reply, or the refusal
 * (the session is back where it was before HELO). */
static void helo_done(struct smtp_session *s, struct policy_request *r)
{
	if (s == NULL)
		return;
	if (r->code != 0) {
		s->helo[0] = '\0';
		s->esmtp = false;
		smtp_enter_state(s, SMTP_STATE_CONNECTED);
		smtp_reply(s, r->code, "%s", r->reply);
		if (r->disconnect) {
			smtp_enter_state(s, SMTP_STATE_QUIT);
			net_conn_close(s->conn);
		}
		return;
	}
	if (r->ctx != NULL)   /* EHLO */
		ehlo_reply(s);
	else
		smtp_reply(s, 250, "%s", s->conf->hostname);
}

static void cmd_helo(struct smtp_session *s, const char *args)
{
	if (!valid_helo(args)) {
		smtp_reply(s, 501, "5.5.4 Syntax: HELO hostname");
		return;
	}
	set_helo(s, args, false);
	policy_run(s, POLICY_HELO, NULL, false, NULL, helo_done);
}

static void cmd_ehlo(struct smtp_session *s, const char *args)
{
	if (!valid_helo(args)) {
		smtp_reply(s, 501, "5.5.4 Syntax: EHLO hostname");
		return;
	}
	set_helo(s, args, true);
	static char ehlo_mark;
	policy_run(s, POLICY_HELO, NULL, false, &ehlo_mark, helo_done);
}

static void ehlo_reply(struct smtp_session *s)
{
	struct net_conn *c = s->conn;
	net_conn_printf(c, "250-%s\r\n", s->conf->hostname);
	net_conn_write_str(c, "250-PIPELINING\r\n");
	net_conn_printf(c, "250-SIZE %llu\r\n", (unsigned long long)s->conf->max_message_size);
	if (s->listener->tls == CONF_TLS_STARTTLS && !net_conn_is_tls(c))
		net_conn_write_str(c, "250-STARTTLS\r\n");
	if (smtp_auth_offered(s))
		net_conn_write_str(c, "250-AUTH PLAIN LOGIN\r\n");
	if (smtp_xclient_allowed(s))
		net_conn_write_str(c, "250-XCLIENT ADDR NAME HELO PROTO LOGIN\r\n");
	net_conn_write_str(c, "250-ENHANCEDSTATUSCODES\r\n");
	net_conn_write_str(c, "250-8BITMIME\r\n");
	net_conn_write_str(c, "250-BINARYMIME\r\n");
	net_conn_write_str(c, "250-DSN\r\n");
	net_conn_write_str(c, "250-SMTPUTF8\r\n");
	net_conn_write_str(c, "250 CHUNKING\r\n");
}

static void cmd_starttls(struct smtp_session *s, const char *args)
{
	if (net_conn_is_tls(s->conn)) {
		smtp_reply(s, 554, "5.5.1 Error: TLS already active");
		return;
	}
	if (s->listener->tls != CONF_TLS_STARTTLS || s->conf->tls_server == NULL) {
		smtp_reply(s, 502, "5.5.1 Error: command not implemented");
		return;
	}
	if (args[0] != '\0') {
		smtp_reply(s, 501, "5.5.4 Syntax: STARTTLS");
		return;
	}
	smtp_txn_reset(s);
	s->n_starttls++;
	smtp_reply(s, 220, "2.0.0 Ready to start TLS");
	if (net_conn_start_tls(s->conn, s->conf->tls_server) < 0) {
		smtp_reply(s, 454, "4.7.0 TLS not available due to local problem");
		return;
	}
	/* RFC 3207 4.2: forget everything learnt before TLS */
	s->helo[0] = '\0';
	s->esmtp = false;
	smtp_enter_state(s, SMTP_STATE_CONNECTED);
}

static void cmd_noop(struct smtp_session *s, const char *args)
{
	smtp_reply(s, 250, "2.0.0 Ok");
}

static void cmd_rset(struct smtp_session *s, const char *args)
{
	if (args[0] != '\0') {
		smtp_reply(s, 501, "5.5.4 Syntax: RSET");
		return;
	}
	smtp_txn_reset(s);
	s->n_rset++;
	smtp_reply(s, 250, "2.0.0 Ok");
}

static void cmd_quit(struct smtp_session *s, const char *args)
{
	s->n_quit++;
	smtp_session_quit(s);
}

static void cmd_vrfy(struct smtp_session *s, const char *args)
{
	if (args[0] == '\0') {
		smtp_reply(s, 501, "5.5.4 Syntax: VRFY address");
		return;
	}
	if (s->conf->smtp.vrfy) {
		char addr[SMTP_PATH_MAX + 1];
		size_t n = strlen(args);
		const char *a = args;
		if (n >= 2 && args[0] == '<' && args[n - 1] == '>') {
			a++;
			n -= 2;
		}
		if (n < sizeof(addr)) {
			memcpy(addr, a, n);
			addr[n] = '\0';
			int r = smtp_address_valid(addr, true) ? smtp_vrfy_lookup(s, addr) : 0;
			if (r > 0) {
				smtp_reply(s, 250, "2.0.0 <%s>", addr);
				return;
			}
			if (r < 0) {
				smtp_reply(s, 550, "5.1.1 <%s>: Recipient address rejected: User unknown "
					   "in local recipient table", addr);
				return;
			}
		}
	}
	/* RFC 5321 3.5.3: neither confirm nor deny */
	smtp_reply(s, 252, "2.0.0 Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_help(struct smtp_session *s, const char *args)
{
	smtp_reply(s, 214, "2.0.0 Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA BDAT NOOP RSET "
		   "VRFY HELP QUIT");
}

/* ETRN, EXPN. */
static void cmd_not_implemented(struct smtp_session *s, const char *args)
{
	if (s->listener->service == CONF_SERVICE_SUBMISSION && s->auth_user == NULL) {
		smtp_reply(s, 530, "5.7.0 Authentication required");
		return;
	}
	smtp_reply(s, 502, "5.5.1 Error: command not implemented");
}

static const struct smtp_command smtp_commands[] = {
	{ "EHLO", cmd_ehlo, SMTP_CMD_BEFORE_TLS },
	{ "HELO", cmd_helo, SMTP_CMD_BEFORE_TLS },
	{ "STARTTLS", cmd_starttls, SMTP_CMD_BEFORE_TLS },
	{ "AUTH", smtp_cmd_auth, SMTP_CMD_NEEDS_HELO },
	{ "MAIL", smtp_cmd_mail, SMTP_CMD_NEEDS_HELO },
	{ "RCPT", smtp_cmd_rcpt, SMTP_CMD_NEEDS_HELO },
	{ "DATA", smtp_cmd_data, SMTP_CMD_NEEDS_HELO },
	{ "BDAT", smtp_cmd_bdat, SMTP_CMD_NEEDS_HELO },
	{ "XCLIENT", smtp_cmd_xclient, 0 },
	{ "RSET", cmd_rset, SMTP_CMD_BEFORE_TLS },
	{ "NOOP", cmd_noop, SMTP_CMD_BEFORE_TLS },
	{ "QUIT", cmd_quit, SMTP_CMD_BEFORE_TLS },
	{ "VRFY", cmd_vrfy, 0 },
	{ "HELP", cmd_help, SMTP_CMD_BEFORE_TLS },
	{ "EXPN", cmd_not_implemented, 0 },
	{ "ETRN", cmd_not_implemented, 0 },
};

const struct smtp_command *smtp_command_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(smtp_commands) / sizeof(smtp_commands[0]); i++) {
		if (strlen(smtp_commands[i].name) == len &&
		    strncasecmp(smtp_commands[i].name, name, len) == 0)
			return &smtp_commands[i];
	}
	return NULL;
}
