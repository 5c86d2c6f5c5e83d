/* pop3-auth.c — USER/PASS (RFC 1939) and AUTH (RFC 5034) with PLAIN and LOGIN. */
#include "pop3d/pop3-session.h"

#include <stdio.h>
#include <string.h>

static void login_done(enum auth_result result, const struct conf_mailbox *mailbox, void *ctx)
{
	struct pop3_session *s = ctx;
	s->login = NULL;
	sasl_clear(&s->sasl);
	explicit_bzero(s->user, sizeof(s->user));
	switch (result) {
	case AUTH_OK:
		/* the password is right; the lock and the message list decide */
		s->mailbox = mailbox;
		pop3_maildrop_open(s);
		break;
	case AUTH_FAIL:
		pop3_enter_state(s, POP3_STATE_AUTHORIZATION);
		pop3_err(s, "[AUTH] Authentication failed.");
		break;
	case AUTH_DENIED:      /* right password, refused by an access rule */
		pop3_enter_state(s, POP3_STATE_AUTHORIZATION);
		pop3_err(s, "[AUTH] Access not allowed from this address or at this time.");
		break;
	case AUTH_DISABLED:
		pop3_enter_state(s, POP3_STATE_AUTHORIZATION);
		pop3_err(s, "[AUTH] POP3 access is disabled for this account.");
		break;
	default:
		pop3_enter_state(s, POP3_STATE_AUTHORIZATION);
		pop3_err(s, "[SYS/TEMP] Temporary authentication failure.");
		break;
	}
	pop3_session_continue(s);
}

static void start_login(struct pop3_session *s, const char *user, const char *password)
{
	pop3_enter_state(s, POP3_STATE_WAIT);
	net_conn_pause_input(s->conn);
	s->login = service_login(s->svc, s->conf, user, password, net_conn_peer_ip(s->conn),
				 "pop3", login_done, s);
}

void pop3_cmd_user(struct pop3_session *s, const char *args)
{
	if (!pop3_plaintext_allowed(s)) {
		pop3_err(s, "[AUTH] Plaintext authentication disallowed on non-secure connections.");
		return;
	}
	if (args[0] == '\0' || strlen(args) > POP3_USER_MAX) {
		pop3_err(s, "Syntax: USER name");
		return;
	}
	snprintf(s->user, sizeof(s->user), "%s", args);
	pop3_ok(s, "%s", "");
}

void pop3_cmd_pass(struct pop3_session *s, const char *args)
{
	if (s->user[0] == '\0') {
		pop3_err(s, "No USER given.");
		return;
	}
	if (strlen(args) > SASL_FIELD_MAX) {
		pop3_err(s, "[AUTH] Authentication failed.");
		return;
	}
	start_login(s, s->user, args);
}

static void sasl_result(struct pop3_session *s, enum sasl_status st, const char *challenge)
{
	switch (st) {
	case SASL_CONTINUE:
		pop3_enter_state(s, POP3_STATE_SASL);
		net_conn_printf(s->conn, "+ %s\r\n", challenge != NULL ? challenge : "");
		return;
	case SASL_DONE:
		start_login(s, s->sasl.authcid, s->sasl.password);
		return;
	case SASL_CANCEL:
		pop3_enter_state(s, POP3_STATE_AUTHORIZATION);
		pop3_err(s, "Authentication aborted.");
		break;
	case SASL_BAD:
		pop3_enter_state(s, POP3_STATE_AUTHORIZATION);
		pop3_err(s, "Invalid base64 data.");
		break;
	}
	sasl_clear(&s->sasl);
}

void pop3_cmd_auth(struct pop3_session *s, const char *args)
{
	if (args[0] == '\0') {
		/* RFC 1734 / common practice: list the mechanisms */
		pop3_ok(s, "%s", "");
		if (pop3_plaintext_allowed(s))
			net_conn_write_str(s->conn, "PLAIN\r\nLOGIN\r\n");
		net_conn_write_str(s->conn, ".\r\n");
		return;
	}
	char mech[32];
	size_t n = strcspn(args, " ");
	if (n >= sizeof(mech)) {
		pop3_err(s, "Unsupported authentication mechanism.");
		return;
	}
	memcpy(mech, args, n);
	mech[n] = '\0';
	const char *initial = args + n;
	while (*initial == ' ')
		initial++;
	enum sasl_mech m;
	if (sasl_mech_parse(mech, &m) < 0) {
		pop3_err(s, "Unsupported authentication mechanism.");
		return;
	}
	if (!pop3_plaintext_allowed(s)) {
		pop3_err(s, "[AUTH] Plaintext authentication disallowed on non-secure connections.");
		return;
	}
	const char *challenge = NULL;
	/* sasl_begin sets challenge: call it before reading challenge */
	enum sasl_status st = sasl_begin(&s->sasl, m, initial[0] != '\0' ? initial : NULL,
					 &challenge);
	sasl_result(s, st, challenge);
}

void pop3_sasl_input(struct pop3_session *s, const char *line)
{
	const char *challenge = NULL;
	enum sasl_status st = sasl_step(&s->sasl, line, &challenge);
	sasl_result(s, st, challenge);
}
