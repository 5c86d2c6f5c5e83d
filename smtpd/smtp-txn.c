/* smtp-txn.c — MAIL FROM and the transaction's lifetime (RFC 5321 3.3, 4.1.1.2). */
#include "smtpd/smtp-session.h"
#include "smtpd/policy.h"
#include "common/log.h"
#include "common/pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

void smtp_txn_reset(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	if (t == NULL)
		return;
	if (t->fd >= 0)
		close(t->fd);
	if (t->spool_path != NULL)
		unlink(t->spool_path);
	if (t->out_path != NULL)
		unlink(t->out_path);
	free(t->copies);
	free(t->exts);
	free(t->wbuf);
	pool_free(&t->pool);
	free(t);
	s->txn = NULL;
}

bool smtp_relay_allowed(const struct smtp_session *s)
{
	if (s->auth_user != NULL)
		return true;
	return smtp_net_match(s->client_ip, s->conf->smtp.trusted_networks,
			      s->conf->smtp.n_trusted_networks);
}

const char *smtp_proto_name(const struct smtp_session *s)
{
	static const char *const names[2][4] = {
		{ "ESMTP", "ESMTPA", "ESMTPS", "ESMTPSA" },
		{ "UTF8SMTP", "UTF8SMTPA", "UTF8SMTPS", "UTF8SMTPSA" },
	};
	if (!s->esmtp)
		return "SMTP";
	int i = (s->auth_user != NULL ? 1 : 0) + (net_conn_is_tls(s->conn) ? 2 : 0);
	return names[s->txn != NULL && s->txn->smtputf8][i];
}

/* ---- MAIL parameters (RFC 1870, 6152, 6531, 3461, 4954) ---- */

struct mail_params {
	uint64_t size;
	enum smtp_body_type body;
	bool smtputf8;
	int ret;
	char envid[SMTP_ENVID_MAX + 1];
	bool has_envid;
};

/* Returns NULL or the reply text for a bad parameter. */
static const char *parse_mail_params(const char *p, struct mail_params *mp, int *code_r)
{
	*code_r = 555;
	while (*p != '\0') {
		const char *end = strchr(p, ' ');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t klen = eq != NULL ? (size_t)(eq - p) : len;
		const char *val = eq != NULL ? eq + 1 : NULL;
		size_t vlen = eq != NULL ? len - klen - 1 : 0;
		if (klen == 4 && strncasecmp(p, "SIZE", 4) == 0 && val != NULL) {
			if (vlen == 0 || vlen > 20)
				return "5.5.4 Bad SIZE parameter";
			uint64_t v = 0;
			for (size_t i = 0; i < vlen; i++) {
				if (val[i] < '0' || val[i] > '9' || v > (UINT64_MAX - 9) / 10)
					return "5.5.4 Bad SIZE parameter";
				v = v * 10 + (uint64_t)(val[i] - '0');
			}
			mp->size = v;
		} else if (klen == 4 && strncasecmp(p, "BODY", 4) == 0 && val != NULL) {
			if (vlen == 4 && strncasecmp(val, "7BIT", 4) == 0)
				mp->body = SMTP_BODY_7BIT;
			else if (vlen == 8 && strncasecmp(val, "8BITMIME", 8) == 0)
				mp->body = SMTP_BODY_8BITMIME;
			else if (vlen == 10 && strncasecmp(val, "BINARYMIME", 10) == 0)
				mp->body = SMTP_BODY_BINARYMIME;
			else
				return "5.5.4 Unsupported BODY parameter";
		} else if (klen == 8 && strncasecmp(p, "SMTPUTF8", 8) == 0 && val == NULL) {
			mp->smtputf8 = true;
		} else if (klen == 3 && strncasecmp(p, "RET", 3) == 0 && val != NULL) {
			if (vlen == 4 && strncasecmp(val, "FULL", 4) == 0)
				mp->ret = 1;
			else if (vlen == 4 && strncasecmp(val, "HDRS", 4) == 0)
				mp->ret = 2;
			else
				return "5.5.4 Bad RET parameter";
		} else if (klen == 5 && strncasecmp(p, "ENVID", 5) == 0 && val != NULL) {
			if (smtp_xtext_decode(val, vlen, mp->envid, sizeof(mp->envid)) < 0)
				return "5.5.4 Bad ENVID parameter";
			mp->has_envid = true;
		} else if (klen == 4 && strncasecmp(p, "AUTH", 4) == 0 && val != NULL) {
			/* RFC 4954 5: accepted; we do not relay the identity further */
		} else {
			return "5.5.4 Unsupported option";
		}
		p += len;
		while (*p == ' ')
			p++;
	}
	return NULL;
}

/* Does the authenticated user own addr (its own address or an alias leading to it)? */
static bool sender_owned(const struct smtp_session *s, const char *addr)
{
	const struct conf_mailbox *mb = s->auth_user;
	if (strcasecmp(addr, mb->address) == 0)
		return true;
	const char *at = strrchr(addr, '@');
	if (at == NULL)
		return false;
	const struct conf_domain *d = conf_find_domain(s->conf, at + 1);
	if (d == NULL)
		return false;
	char local[SMTP_LOCAL_MAX + 1];
	size_t n = (size_t)(at - addr);
	if (n > SMTP_LOCAL_MAX)
		return false;
	memcpy(local, addr, n);
	local[n] = '\0';
	const struct conf_alias *a = conf_find_alias(d, local);
	if (a == NULL)
		return false;
	for (size_t i = 0; i < a->n_targets; i++) {
		const char *t = a->targets[i];
		if (strcasecmp(t, mb->address) == 0)
			return true;
		if (strchr(t, '@') == NULL && d == mb->domain && strcasecmp(t, mb->name) == 0)
			return true;
	}
	return false;
}

static void new_queue_id(char *id, size_t size)
{
	static unsigned counter;
	struct timeval tv;
	gettimeofday(&tv, NULL);
	snprintf(id, size, "%06lX%05lX%04X", (unsigned long)tv.tv_sec & 0xffffff,
		 (unsigned long)tv.tv_usec & 0xfffff,
		 (unsigned)((getpid() * 16u + ++counter) & 0xffff));
}

void smtp_txn_assign_queue_id(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	if (t->queue_id[0] != '\0')
		return;
	new_queue_id(t->queue_id, sizeof(t->queue_id));
	if (s->auth_user != NULL)
		log_info("%s: client=%s[%s], sasl_method=%s, sasl_username=%s, session=%s",
			 t->queue_id, s->client_name, s->client_ip,
			 s->sasl.mech == SASL_MECH_LOGIN ? "LOGIN" : "PLAIN", s->auth_user->address,
			 s->id);
	else
		log_info("%s: client=%s[%s], session=%s", t->queue_id, s->client_name,
			 s->client_ip, s->id);
}

/* After the MAIL stage of the policy chain. */
static void mail_done(struct smtp_session *s, struct policy_request *r)
{
	if (s == NULL)
		return;
	if (r->code == 0) {
		smtp_reply(s, 250, "2.1.0 Ok");
		return;
	}
	smtp_txn_reset(s);
	smtp_reply(s, r->code, "%s", r->reply);
	if (r->disconnect) {
		smtp_enter_state(s, SMTP_STATE_QUIT);
		net_conn_close(s->conn);
	}
}

void smtp_cmd_mail(struct smtp_session *s, const char *args)
{
	char addr[SMTP_PATH_MAX + 1];
	const char *params;
	struct mail_params mp = { 0 };
	int code;
	const char *err;

	if (s->listener->service == CONF_SERVICE_SUBMISSION && s->auth_user == NULL) {
		smtp_reply(s, 530, "5.7.0 Authentication required");
		return;
	}
	if (s->txn != NULL) {
		smtp_reply(s, 503, "5.5.1 Error: nested MAIL command");
		return;
	}
	if (smtp_parse_path(args, "FROM:", addr, sizeof(addr), &params) < 0) {
		smtp_reply(s, 501, "5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	if ((err = parse_mail_params(params, &mp, &code)) != NULL) {
		smtp_reply(s, code, "%s", err);
		return;
	}
	if (!s->esmtp && (mp.size != 0 || mp.smtputf8 || mp.has_envid || mp.ret != 0)) {
		smtp_reply(s, 555, "5.5.4 Error: parameters need EHLO");
		return;
	}
	if (smtp_has_8bit(addr) && !mp.smtputf8) {
		smtp_reply(s, 553, "5.6.7 Error: non-ASCII address needs SMTPUTF8");
		return;
	}
	if (addr[0] != '\0' && !smtp_address_valid(addr, mp.smtputf8)) {
		smtp_reply(s, 501, "5.1.7 Bad sender address syntax");
		return;
	}
	if (mp.size > s->conf->max_message_size) {
		smtp_reply(s, 552, "5.3.4 Message size exceeds fixed limit");
		return;
	}
	if (s->listener->service == CONF_SERVICE_SUBMISSION && s->conf->smtp.sender_login_check &&
	    !sender_owned(s, addr)) {
		char printable[SMTP_PATH_MAX + 1];
		log_info("NOQUEUE: reject: MAIL from %s[%s]: 553 5.7.1 <%s>: Sender address rejected: "
			 "not owned by user %s; proto=%s helo=<%s>", s->client_name, s->client_ip,
			 log_printable(printable, sizeof(printable), addr, strlen(addr)),
			 s->auth_user->address, smtp_proto_name(s), s->helo);
		smtp_reply(s, 553, "5.7.1 <%s>: Sender address rejected: not owned by user %s",
			   printable, s->auth_user->address);
		return;
	}
	/* proceed */
	struct smtp_txn *t = x_calloc(1, sizeof(*t));
	t->pool = pool_new(4096);
	t->fd = -1;
	t->from = pool_strdup(t->pool, addr);
	t->size_param = mp.size;
	t->body = mp.body;
	t->smtputf8 = mp.smtputf8;
	t->ret = mp.ret;
	t->envid = mp.has_envid ? pool_strdup(t->pool, mp.envid) : NULL;
	t->max_size = s->conf->max_message_size;
	gettimeofday(&t->start, NULL);
	s->txn = t;
	s->n_mail++;
	policy_run(s, POLICY_MAIL, NULL, false, NULL, mail_done);
}
