/* imap-auth.c — LOGIN and AUTHENTICATE (PLAIN, LOGIN; SASL-IR). */
#include "imapd/imap-commands.h"
#include "common/log.h"

#include <string.h>

static void login_done(enum auth_result result, const struct conf_mailbox *mailbox, void *ctx)
{
	struct imap_session *s = ctx;
	s->login = NULL;
	sasl_clear(&s->sasl);
	switch (result) {
	case AUTH_OK:
		s->user = mailbox;
		imap_enter_state(s, IMAP_STATE_AUTH);
		/* the tagged OK follows once the default folders exist */
		imap_login_setup(s);
		return;
	case AUTH_FAIL:
		imap_tagged(s, "NO", "[AUTHENTICATIONFAILED] Authentication failed.");
		break;
	case AUTH_DENIED:      /* right password, refused by an access rule */
		imap_tagged(s, "NO", "[AUTHORIZATIONFAILED] Access not allowed from this "
			    "address or at this time.");
		break;
	case AUTH_DISABLED:
		imap_tagged(s, "NO", "[CONTACTADMIN] IMAP access is disabled for this account.");
		break;
	default:
		imap_tagged(s, "NO", "[UNAVAILABLE] Temporary authentication failure.");
		break;
	}
	imap_session_resume(s);
}

static void start_login(struct imap_session *s, const char *user, const char *password)
{
	imap_session_wait(s);
	s->login = service_login(s->svc, s->conf, user, password, net_conn_peer_ip(s->conn),
				 "imap", login_done, s);
}

void imap_cmd_login(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	const char *user = n == 2 ? imap_arg_string(&args[0]) : NULL;
	const char *pass = n == 2 ? imap_arg_string(&args[1]) : NULL;
	if (user == NULL || pass == NULL) {
		imap_tagged(s, "BAD", "Syntax: LOGIN user password");
		return;
	}
	if (!imap_plaintext_allowed(s)) {
		imap_tagged(s, "NO", "[PRIVACYREQUIRED] Plaintext authentication disallowed "
			    "on non-secure (SSL/TLS) connections.");
		return;
	}
	if (strlen(user) > SASL_FIELD_MAX || strlen(pass) > SASL_FIELD_MAX) {
		imap_tagged(s, "NO", "[AUTHENTICATIONFAILED] Authentication failed.");
		return;
	}
	start_login(s, user, pass);
}

static void sasl_result(struct imap_session *s, enum sasl_status st, const char *challenge)
{
	switch (st) {
	case SASL_CONTINUE:
		s->mode = IMAP_INPUT_SASL;
		imap_write_str(s, "+ ");
		imap_write_str(s, challenge != NULL ? challenge : "");
		imap_write_str(s, "\r\n");
		return;
	case SASL_DONE:
		start_login(s, s->sasl.authcid, s->sasl.password);
		return;
	case SASL_CANCEL:
		s->mode = IMAP_INPUT_LINE;
		imap_tagged(s, "BAD", "Authentication aborted by client.");
		break;
	case SASL_BAD:
		s->mode = IMAP_INPUT_LINE;
		imap_tagged(s, "BAD", "Invalid base64 data in continued response");
		break;
	}
	sasl_clear(&s->sasl);
}

void imap_cmd_authenticate(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	const char *mech = n >= 1 ? imap_arg_string(&args[0]) : NULL;
	const char *initial = n == 2 ? imap_arg_string(&args[1]) : NULL;
	enum sasl_mech m;
	if (mech == NULL || n > 2 || (n == 2 && args[1].type != IMAP_ARG_ATOM)) {
		imap_tagged(s, "BAD", "Syntax: AUTHENTICATE mechanism [initial-response]");
		return;
	}
	if (sasl_mech_parse(mech, &m) < 0) {
		imap_tagged(s, "NO", "Unsupported authentication mechanism.");
		return;
	}
	if (!imap_plaintext_allowed(s)) {
		imap_tagged(s, "NO", "[PRIVACYREQUIRED] Plaintext authentication disallowed "
			    "on non-secure (SSL/TLS) connections.");
		return;
	}
	const char *challenge = NULL;
	/* sasl_begin sets challenge: call it before reading challenge */
	enum sasl_status st = sasl_begin(&s->sasl, m, initial, &challenge);
	sasl_result(s, st, challenge);
}

void imap_sasl_input(struct imap_session *s, const char *line)
{
	const char *challenge = NULL;
	enum sasl_status st = sasl_step(&s->sasl, line, &challenge);
	sasl_result(s, st, challenge);
}
