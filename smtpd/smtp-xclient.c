/* smtp-xclient.c — Postfix's XCLIENT (ADDR, NAME, HELO, PROTO, LOGIN): a proxy or a
 * test on a configured network presents the real client, whom every later policy
 * check (relay, submission sender) then sees. */
#include "smtpd/smtp-session.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

bool smtp_xclient_allowed(const struct smtp_session *s)
{
	/* the connection's own peer decides, not an address set by XCLIENT before */
	return smtp_net_match(net_conn_peer_ip(s->conn), s->conf->smtp.xclient_networks,
			      s->conf->smtp.n_xclient_networks);
}

struct xclient_values {
	char addr[64];
	char name[256];
	char helo[SMTP_HELO_MAX + 1];
	const struct conf_mailbox *login;
	bool set_addr, set_name, set_helo, set_login, set_proto, proto_smtp;
};

/* NAME and HELO end up in Received headers and log lines: printable, no spaces. */
static bool printable_token(const char *v)
{
	if (v[0] == '\0')
		return false;
	for (; *v != '\0'; v++)
		if ((unsigned char)*v <= ' ' || (unsigned char)*v >= 0x7f)
			return false;
	return true;
}

static bool unavailable(const char *v)
{
	return strcasecmp(v, "[UNAVAILABLE]") == 0 || strcasecmp(v, "[TEMPUNAVAIL]") == 0;
}

/* NULL, or the reply text for a bad attribute. */
static const char *parse_attr(struct smtp_session *s, const char *name, size_t nlen,
			      const char *value, struct xclient_values *x)
{
	unsigned char bin[16];
	if (nlen == 4 && strncasecmp(name, "ADDR", 4) == 0) {
		const char *a = value;
		if (strncasecmp(a, "IPV6:", 5) == 0)
			a += 5;
		if (unavailable(value)) {
			snprintf(x->addr, sizeof(x->addr), "unknown");
		} else if (inet_pton(AF_INET, a, bin) == 1 || inet_pton(AF_INET6, a, bin) == 1) {
			snprintf(x->addr, sizeof(x->addr), "%.63s", a);
		} else {
			return "5.5.4 Bad ADDR syntax";
		}
		x->set_addr = true;
	} else if (nlen == 4 && strncasecmp(name, "NAME", 4) == 0) {
		if (!unavailable(value) && !printable_token(value))
			return "5.5.4 Bad NAME syntax";
		snprintf(x->name, sizeof(x->name), "%.255s", unavailable(value) ? "unknown" : value);
		x->set_name = true;
	} else if (nlen == 4 && strncasecmp(name, "HELO", 4) == 0) {
		if (!unavailable(value) && !printable_token(value))
			return "5.5.4 Bad HELO syntax";
		snprintf(x->helo, sizeof(x->helo), "%.255s", unavailable(value) ? "" : value);
		x->set_helo = true;
	} else if (nlen == 5 && strncasecmp(name, "PROTO", 5) == 0) {
		if (strcasecmp(value, "SMTP") == 0)
			x->proto_smtp = true;
		else if (strcasecmp(value, "ESMTP") == 0)
			x->proto_smtp = false;
		else
			return "5.5.4 Bad PROTO syntax";
		x->set_proto = true;
	} else if (nlen == 5 && strncasecmp(name, "LOGIN", 5) == 0) {
		x->set_login = true;
		if (unavailable(value)) {
			x->login = NULL;
		} else if ((x->login = conf_find_login(s->conf, value)) == NULL) {
			return "5.5.4 Bad LOGIN: no such user";
		}
	} else if ((nlen == 4 && strncasecmp(name, "PORT", 4) == 0) ||
		   (nlen == 8 && strncasecmp(name, "DESTADDR", 8) == 0) ||
		   (nlen == 8 && strncasecmp(name, "DESTPORT", 8) == 0)) {
		/* accepted, not used */
	} else {
		return "5.5.4 Bad XCLIENT attribute name";
	}
	return NULL;
}

void smtp_cmd_xclient(struct smtp_session *s, const char *args)
{
	struct xclient_values x = { 0 };
	char value[512];
	if (!smtp_xclient_allowed(s)) {
		log_warn("%s: XCLIENT from %s[%s] refused: not in xclient_networks", s->id,
			 s->client_name, s->client_ip);
		smtp_reply(s, 550, "5.7.0 Error: insufficient authorization");
		return;
	}
	if (s->txn != NULL) {
		smtp_reply(s, 503, "5.5.1 Error: MAIL transaction in progress");
		return;
	}
	if (args[0] == '\0') {
		smtp_reply(s, 501, "5.5.4 Syntax: XCLIENT attribute=value...");
		return;
	}
	const char *p = args;
	while (*p != '\0') {
		const char *end = strchr(p, ' ');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		const char *err;
		if (eq == NULL || eq == p ||
		    smtp_xtext_decode(eq + 1, len - (size_t)(eq + 1 - p), value, sizeof(value)) < 0) {
			smtp_reply(s, 501, "5.5.4 Bad XCLIENT syntax");
			return;
		}
		if ((err = parse_attr(s, p, (size_t)(eq - p), value, &x)) != NULL) {
			smtp_reply(s, 501, "%s", err);
			return;
		}
		p += len;
		while (*p == ' ')
			p++;
	}
	/* proceed: the session starts again as if the presented client had connected */
	if (x.set_addr)
		snprintf(s->client_ip, sizeof(s->client_ip), "%s", x.addr);
	if (x.set_name)
		snprintf(s->client_name, sizeof(s->client_name), "%s", x.name);
	if (x.set_login)
		s->auth_user = x.login;
	if (x.set_proto)
		s->xclient_proto_smtp = x.proto_smtp;
	if (x.set_helo) {
		snprintf(s->helo, sizeof(s->helo), "%s", x.helo);
	} else {
		s->helo[0] = '\0';
	}
	s->esmtp = false;
	smtp_enter_state(s, SMTP_STATE_CONNECTED);
	log_info("%s: client=%s[%s]%s%s (XCLIENT from %s)", s->id, s->client_name, s->client_ip,
		 s->auth_user != NULL ? ", sasl_username=" : "",
		 s->auth_user != NULL ? s->auth_user->address : "", net_conn_peer_ip(s->conn));
	smtp_reply(s, 220, "%s ESMTP Warren", s->conf->hostname);
}
