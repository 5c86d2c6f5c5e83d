/* smtp-auth.c — SMTP AUTH (RFC 4954) with PLAIN and LOGIN. */
#include "smtpd/smtp-session.h"
#include "common/log.h"

#include <string.h>

bool smtp_auth_offered(const struct smtp_session *s)
{
	if (s->listener->service != CONF_SERVICE_SUBMISSION)
		return false;
	return net_conn_is_tls(s->conn) || s->listener->auth_plaintext;
}

static void auth_done(enum auth_result result, const struct conf_mailbox *mailbox, void *ctx)
{
	struct smtp_session *s = ctx;
	s->login = NULL;
	smtp_enter_state(s, SMTP_STATE_HELO);
	switch (result) {
	case AUTH_OK:
		s->auth_user = mailbox;
		log_info("%s: client=unknown[%s], sasl_method=%s, sasl_username=%s", s->id,
			 net_conn_peer_ip(s->conn), s->sasl.mech == SASL_MECH_PLAIN ? "PLAIN" : "LOGIN",
			 mailbox->address);
		smtp_reply(s, 235, "2.7.0 Authentication successful");
		break;
	case AUTH_FAIL:
		log_warn("%s: unknown[%s]: SASL %s authentication failed", s->id,
			 net_conn_peer_ip(s->conn), s->sasl.mech == SASL_MECH_PLAIN ? "PLAIN" : "LOGIN");
		smtp_reply(s, 535, "5.7.8 Error: authentication failed");
		break;
	case AUTH_DENIED:      /* right password, refused by an access rule */
		smtp_reply(s, 535, "5.7.8 Error: authentication failed: access not allowed "
			   "from this address or at this time");
		break;
	case AUTH_DISABLED:
		smtp_reply(s, 550, "5.7.1 Error: sending mail is disabled for this account");
		break;
	default:
		smtp_reply(s, 454, "4.7.0 Temporary authentication failure");
		break;
	}
	sasl_clear(&s->sasl);
	smtp_session_resume(s);
}

static void auth_step_result(struct smtp_session *s, enum sasl_status st, const char *challenge)
{
	switch (st) {
	case SASL_CONTINUE:
		smtp_enter_state(s, SMTP_STATE_AUTH);
		net_conn_printf(s->conn, "334 %s\r\n", challenge != NULL ? challenge : "");
		return;
	case SASL_DONE:
		smtp_session_wait(s);
		s->login = service_login(s->svc, s->conf, s->sasl.authcid, s->sasl.password,
					 net_conn_peer_ip(s->conn), "smtp", auth_done, s);
		return;
	case SASL_CANCEL:
		smtp_enter_state(s, SMTP_STATE_HELO);
		smtp_reply(s, 501, "5.7.0 Authentication aborted");
		break;
	case SASL_BAD:
		smtp_enter_state(s, SMTP_STATE_HELO);
		smtp_reply(s, 501, "5.5.2 Cannot decode response");
		break;
	}
	sasl_clear(&s->sasl);
}

void smtp_cmd_auth(struct smtp_session *s, const char *args)
{
	if (!smtp_auth_offered(s)) {
		if (s->listener->service == CONF_SERVICE_SUBMISSION)
			smtp_reply(s, 538, "5.7.11 Encryption required for requested authentication mechanism");
		else
			smtp_reply(s, 503, "5.5.1 Error: authentication not enabled");
		return;
	}
	if (s->auth_user != NULL) {
		smtp_reply(s, 503, "5.5.1 Error: already authenticated");
		return;
	}
	if (s->txn != NULL) {
		smtp_reply(s, 503, "5.5.1 Error: MAIL transaction in progress");
		return;
	}
	s->n_auth++;
	char mech[32];
	size_t n = strcspn(args, " ");
	if (n == 0 || n >= sizeof(mech)) {
		smtp_reply(s, 501, "5.5.4 Syntax: AUTH mechanism");
		return;
	}
	memcpy(mech, args, n);
	mech[n] = '\0';
	const char *initial = args + n;
	while (*initial == ' ')
		initial++;     /* Windows Mail sends two spaces */
	enum sasl_mech m;
	if (sasl_mech_parse(mech, &m) < 0) {
		smtp_reply(s, 504, "5.5.4 Unrecognized authentication type");
		return;
	}
	const char *challenge = NULL;
	enum sasl_status st = sasl_begin(&s->sasl, m, initial[0] != '\0' ? initial : NULL,
					 &challenge);
	auth_step_result(s, st, challenge);
}

void smtp_auth_input(struct smtp_session *s, const char *line)
{
	const char *challenge = NULL;
	enum sasl_status st = sasl_step(&s->sasl, line, &challenge);
	auth_step_result(s, st, challenge);
}

void smtp_auth_abort(struct smtp_session *s)
{
	sasl_clear(&s->sasl);
	smtp_enter_state(s, SMTP_STATE_HELO);
}
