/* out-client.c — the SMTP client that hands a message to the next hop.
 *
 * One session per job and address: greeting, EHLO (HELO when EHLO is refused),
 * STARTTLS when offered (required when the route says so), EHLO again, AUTH
 * PLAIN for the smart host, then MAIL, every RCPT and DATA — sent in one go
 * when the server offers PIPELINING (RFC 2920), one by one otherwise — the
 * dot-stuffed body, and QUIT. SIZE, 8BITMIME, SMTPUTF8 and DSN parameters are
 * sent when the server offers them. Timeouts are those of RFC 5321 4.5.3.2.
 *
 * Failures before MAIL (connection, greeting, EHLO, TLS, AUTH) make the route
 * try the next address or host; from MAIL on, every reply is the result of the
 * recipients it concerns.
 */
#include "smtpd/queue.h"
#include "common/log.h"
#include "common/pool.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

enum out_state {
	OUT_CONNECTING,
	OUT_GREETING,
	OUT_EHLO,
	OUT_HELO,
	OUT_STARTTLS,
	OUT_TLS,
	OUT_AUTH,
	OUT_TXN,        /* MAIL / RCPT / DATA replies */
	OUT_BODY,       /* sending the message; then its final reply */
	OUT_QUIT,
	OUT_IDLE,       /* transaction done, kept for the next message (OUT_IDLE_MS) */
	OUT_DONE,
};

static const char *const state_names[] = {
	"connecting", "receiving the initial server greeting", "sending EHLO",
	"sending HELO", "sending STARTTLS", "performing the TLS handshake",
	"sending AUTH", "sending MAIL/RCPT/DATA", "sending message body", "sending QUIT",
	"idle", "done",
};

enum { EXT_PIPELINING = 0x1, EXT_STARTTLS = 0x2, EXT_8BITMIME = 0x4, EXT_SIZE = 0x8,
       EXT_SMTPUTF8 = 0x10, EXT_DSN = 0x20, EXT_AUTH_PLAIN = 0x40, EXT_ENHANCED = 0x80 };

enum cmd_kind { CMD_MAIL, CMD_RCPT, CMD_DATA };

struct out_client {
	struct qjob *job;
	struct net_conn *conn;
	enum out_state state;
	char addr[64];
	struct out_hop hop;
	char remote[QUEUE_HOST_MAX + 1];   /* "host[addr]:port" */
	unsigned ext;
	uint64_t max_size;
	bool tls;
	bool aborted;
	/* the reply being read */
	int code;
	struct buf reply;
	/* the transaction */
	size_t next_cmd, n_cmds;      /* commands: MAIL, each RCPT, DATA */
	size_t replies_done;
	bool mail_ok;
	size_t accepted;
	bool *rcpt_ok;                /* per job recipient */
	bool data_done;
	/* the body */
	size_t body_pos;              /* in the combined dkim + body */
	bool body_bol;
	bool body_sent;
	/* the message converted for a server without 8BITMIME (NULL: as queued) */
	char *conv;
	size_t conv_len;
	char *conv_dkim;
	/* kept for reuse */
	struct out_client *idle_next;
	char key[320];
	unsigned transactions;
};

static void client_write(struct out_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void start_txn(struct out_client *c);

static void client_write(struct out_client *c, const char *fmt, ...)
{
	va_list ap;
	char line[2048];
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		n = (int)sizeof(line) - 3;
	memcpy(line + n, "\r\n", 2);
	net_conn_write(c->conn, line, (size_t)n + 2);
}

static void set_state(struct out_client *c, enum out_state state, unsigned timeout_ms)
{
	log_debug("%s: %s: %s -> %s", c->job != NULL ? c->job->d->msg.id : "-", c->remote,
		  state_names[c->state], state_names[state]);
	c->state = state;
	if (c->conn != NULL && timeout_ms != 0)
		net_conn_set_idle_timeout(c->conn, timeout_ms);
}

/* ---- ending ---------------------------------------------------------------------- */

static void conv_free(struct out_client *c)
{
	x_free(&c->conv);
	x_free(&c->conv_dkim);
	c->conv_len = 0;
}

static void client_free(struct out_client *c)
{
	conv_free(c);
	buf_free(&c->reply);
	free(c->rcpt_ok);
	free(c);
}

/* The session ends without a transaction: remember why, try the next address. */
static void fail_session(struct out_client *c, int code, const char *status, const char *text)
{
	struct qjob *job = c->job;
	job->err_code = code;
	snprintf(job->err_status, sizeof(job->err_status), "%s", status);
	snprintf(job->err_text, sizeof(job->err_text), "%s", text);
	snprintf(job->err_remote, sizeof(job->err_remote), "%s", c->remote);
	job->err_permanent = false;
	log_info_as("smtp", "%s: %s: %s", job->d->msg.id, c->remote, text);
}

/* Called exactly once per session: hands the job on. */
static void session_over(struct out_client *c, bool transaction)
{
	struct qjob *job = c->job;
	c->state = OUT_DONE;
	job->client = NULL;
	if (transaction || c->aborted)
		queue_job_done(job);
	else
		out_route_next(job);
}

/* Every recipient without an answer in this session gets this result. */
static void fail_pending_rcpts(struct out_client *c, int code, const char *status,
			       const char *text)
{
	struct qjob *job = c->job;
	for (size_t i = 0; i < job->n_rcpts; i++)
		if (!job->d->touched[job->rcpts[i]] || c->rcpt_ok[i])
			queue_rcpt_result(job->d, job->rcpts[i], code, status, text, c->remote);
}

static struct qrunner *idle_runner;   /* the runner whose cache holds idle clients */

static void idle_unlink(struct out_client *c)
{
	struct qrunner *r = idle_runner;
	for (struct out_client **pp = r != NULL ? &r->idle : NULL; pp != NULL && *pp != NULL;
	     pp = &(*pp)->idle_next) {
		if (*pp == c) {
			*pp = c->idle_next;
			r->n_idle--;
			return;
		}
	}
}

static void on_close(struct net_conn *conn, void *ctx)
{
	struct out_client *c = ctx;
	c->conn = NULL;
	if (c->state == OUT_IDLE) {
		idle_unlink(c);
		client_free(c);
		return;
	}
	if (c->state != OUT_DONE) {
		char text[QUEUE_REPLY_MAX];
		snprintf(text, sizeof(text), "lost connection with %s while %s", c->remote,
			 state_names[c->state]);
		if (c->state >= OUT_TXN && c->state != OUT_QUIT) {
			fail_pending_rcpts(c, 0, "4.4.2", text);
			log_info_as("smtp", "%s: %s", c->job->d->msg.id, text);
			session_over(c, true);
		} else if (c->state == OUT_QUIT) {
			session_over(c, true);
		} else if (c->state == OUT_TLS && !c->job->tls_required && !c->job->tls_broken &&
			   !c->aborted) {
			/* opportunistic TLS that does not work: the same host in plaintext,
			 * as Postfix does, rather than never delivering */
			struct qjob *job = c->job;
			log_info_as("smtp", "%s: TLS with %s failed; trying again without TLS", job->d->msg.id,
				 c->remote);
			job->tls_broken = true;
			job->client = NULL;
			c->state = OUT_DONE;
			out_client_start(job, c->addr, &c->hop);
		} else {
			fail_session(c, 0, c->state == OUT_TLS ? "4.7.5" : "4.4.2", text);
			session_over(c, false);
		}
	}
	client_free(c);
}

static void on_timeout(struct net_conn *conn, void *ctx)
{
	struct out_client *c = ctx;
	if (c->state == OUT_IDLE) {
		/* nobody needed it: QUIT (the connection closes after this) */
		idle_unlink(c);
		c->state = OUT_DONE;
		client_write(c, "QUIT");
		return;
	}
	char text[QUEUE_REPLY_MAX];
	snprintf(text, sizeof(text), "conversation with %s timed out while %s", c->remote,
		 state_names[c->state]);
	if (c->state >= OUT_TXN && c->state != OUT_QUIT) {
		fail_pending_rcpts(c, 0, "4.4.2", text);
		log_info_as("smtp", "%s: %s", c->job->d->msg.id, text);
		session_over(c, true);
	} else if (c->state == OUT_QUIT) {
		session_over(c, true);
	} else {
		fail_session(c, 0, "4.4.2", text);
		session_over(c, false);
	}
}

static void quit(struct out_client *c, bool transaction)
{
	if (c->conn != NULL) {
		client_write(c, "QUIT");
		net_conn_close(c->conn);
	}
	session_over(c, transaction);
}

/* After a transaction: keep the connection for the next message to the same
 * destination, or say QUIT. */
static void txn_over(struct out_client *c)
{
	struct qjob *job = c->job;
	struct qrunner *r = job->d->r;
	c->transactions++;
	if (r->stopping || c->conn == NULL || r->n_idle >= OUT_IDLE_MAX ||
	    job->route_key[0] == '\0') {
		quit(c, true);
		return;
	}
	snprintf(c->key, sizeof(c->key), "%s", job->route_key);
	set_state(c, OUT_IDLE, OUT_IDLE_MS);
	c->job = NULL;
	c->idle_next = r->idle;
	r->idle = c;
	r->n_idle++;
	idle_runner = r;
	job->client = NULL;
	queue_job_done(job);
}

bool out_client_reuse(struct qjob *job)
{
	struct qrunner *r = job->d->r;
	struct out_client *c = NULL;
	for (struct out_client **pp = &r->idle; *pp != NULL; pp = &(*pp)->idle_next) {
		if (strcmp((*pp)->key, job->route_key) == 0 && (*pp)->conn != NULL) {
			c = *pp;
			*pp = c->idle_next;
			r->n_idle--;
			break;
		}
	}
	if (c == NULL)
		return false;
	c->job = job;
	job->client = c;
	free(c->rcpt_ok);
	c->rcpt_ok = x_calloc(job->n_rcpts + 1, sizeof(bool));
	c->replies_done = 0;
	c->mail_ok = false;
	c->accepted = 0;
	c->data_done = false;
	c->body_pos = 0;
	c->body_sent = false;
	buf_clear(&c->reply);
	log_info_as("smtp", "%s: reusing the connection to %s (transaction %u)", job->d->msg.id,
		 c->remote, c->transactions + 1);
	c->state = OUT_TXN;
	start_txn(c);
	return true;
}

void out_client_close_idle(struct qrunner *r)
{
	while (r->idle != NULL) {
		struct out_client *c = r->idle;
		r->idle = c->idle_next;
		r->n_idle--;
		c->state = OUT_DONE;   /* on_close frees it */
		if (c->conn != NULL) {
			client_write(c, "QUIT");
			net_conn_close(c->conn);
		}
	}
}

void out_client_abort(struct out_client *c)
{
	c->aborted = true;
	if (c->conn != NULL)
		net_conn_abort(c->conn);
}

/* ---- TLS --------------------------------------------------------------------------- */

SSL_CTX *out_client_tls_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_default_verify_paths(ctx);
	/* opportunistic TLS (RFC 7435): encrypt even when the certificate does not
	 * verify; the log says whether it did */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

static void send_ehlo(struct out_client *c);

static void on_tls_ready(struct net_conn *conn, void *ctx)
{
	struct out_client *c = ctx;
	SSL *ssl = net_conn_ssl(conn);
	int bits = 0, alg_bits = 0;
	bits = SSL_get_cipher_bits(ssl, &alg_bits);
	bool trusted = SSL_get_verify_result(ssl) == X509_V_OK &&
		SSL_get0_peer_certificate(ssl) != NULL;
	log_info_as("smtp", "%s: %s TLS connection established to %s: %s with cipher %s (%d/%d bits)",
		 c->job->d->msg.id, trusted ? "Trusted" : "Untrusted", c->remote,
		 SSL_get_version(ssl), SSL_get_cipher_name(ssl), bits, alg_bits);
	c->tls = true;
	c->ext = 0;
	send_ehlo(c);
}

static void start_tls(struct out_client *c)
{
	SSL *ssl = c->job->d->r->tls != NULL ? SSL_new(c->job->d->r->tls) : NULL;
	if (ssl == NULL) {
		fail_session(c, 0, "4.7.5", "cannot set up TLS");
		quit(c, false);
		return;
	}
	if (!c->hop.is_ip) {
		SSL_set_tlsext_host_name(ssl, c->hop.host);
		SSL_set1_host(ssl, c->hop.host);
	}
	set_state(c, OUT_TLS, NET_TLS_HANDSHAKE_TIMEOUT_MS);
	if (net_conn_start_tls_client(c->conn, ssl) < 0) {
		SSL_free(ssl);
		fail_session(c, 0, "4.7.5", "cannot start TLS");
		quit(c, false);
	}
}

/* ---- parameters ---------------------------------------------------------------------- */

/* xtext (RFC 3461 4) of s into out. */
static void xtext(const char *s, char *out, size_t size)
{
	size_t o = 0;
	for (; *s != '\0' && o + 4 < size; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch < 33 || ch > 126 || ch == '+' || ch == '=')
			o += (size_t)snprintf(out + o, size - o, "+%02X", ch);
		else
			out[o++] = (char)ch;
	}
	out[o] = '\0';
}

static bool has_8bit_str(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s & 0x80)
			return true;
	return false;
}

static bool needs_smtputf8(const struct qjob *job)
{
	const struct queue_msg *m = &job->d->msg;
	if (has_8bit_str(m->from))
		return true;
	for (size_t i = 0; i < job->n_rcpts; i++)
		if (has_8bit_str(m->rcpts[job->rcpts[i]].addr))
			return true;
	return false;
}

/* What goes after DATA: the DKIM header and the message, or their conversions. */
static void message_parts(const struct out_client *c, const char **dkim_r, const char **body_r,
			  size_t *len_r)
{
	const struct qdelivery *d = c->job->d;
	*dkim_r = c->conv != NULL ? c->conv_dkim : d->dkim;
	*body_r = c->conv != NULL ? c->conv : d->body;
	*len_r = c->conv != NULL ? c->conv_len : d->len;
}

static size_t message_size(const struct out_client *c)
{
	const char *dkim, *body;
	size_t len;
	message_parts(c, &dkim, &body, &len);
	return len + (dkim != NULL ? strlen(dkim) : 0);
}

static void send_cmd(struct out_client *c, size_t i)
{
	struct qjob *job = c->job;
	const struct queue_msg *m = &job->d->msg;
	if (i == 0) {
		char params[512] = "";
		size_t o = 0;
		if (c->ext & EXT_SIZE)
			o += (size_t)snprintf(params + o, sizeof(params) - o, " SIZE=%zu",
					      message_size(c));
		if ((c->ext & EXT_8BITMIME) && (job->d->has_8bit || m->body != QUEUE_BODY_7BIT))
			o += (size_t)snprintf(params + o, sizeof(params) - o, " BODY=8BITMIME");
		if ((c->ext & EXT_SMTPUTF8) && (m->smtputf8 || needs_smtputf8(job)))
			o += (size_t)snprintf(params + o, sizeof(params) - o, " SMTPUTF8");
		if (c->ext & EXT_DSN) {
			if (m->ret != QUEUE_RET_DEFAULT)
				o += (size_t)snprintf(params + o, sizeof(params) - o, " RET=%s",
						      m->ret == QUEUE_RET_FULL ? "FULL" : "HDRS");
			if (m->envid[0] != '\0') {
				char x[3 * QUEUE_ENVID_MAX + 1];
				xtext(m->envid, x, sizeof(x));
				snprintf(params + o, sizeof(params) - o, " ENVID=%s", x);
			}
		}
		char srs[QUEUE_ADDR_MAX + 1];
		const char *from = m->from;
		if ((m->flags & QUEUE_F_FORWARDED) && m->from[0] != '\0' &&
		    out_srs_forward(job->d->conf, m->from, (int64_t)time(NULL), srs,
				    sizeof(srs)) == 0)
			from = srs;
		client_write(c, "MAIL FROM:<%s>%s", from, params);
		return;
	}
	if (i <= job->n_rcpts) {
		size_t idx = job->rcpts[i - 1];
		const struct queue_rcpt *r = &m->rcpts[idx];
		char params[1700] = "";
		if ((c->ext & EXT_DSN) && r->notify != 0) {
			size_t o = (size_t)snprintf(params, sizeof(params), " NOTIFY=");
			if (r->notify & QUEUE_NOTIFY_NEVER)
				o += (size_t)snprintf(params + o, sizeof(params) - o, "NEVER");
			else {
				const char *sep = "";
				if (r->notify & QUEUE_NOTIFY_SUCCESS) {
					o += (size_t)snprintf(params + o, sizeof(params) - o, "SUCCESS");
					sep = ",";
				}
				if (r->notify & QUEUE_NOTIFY_FAILURE) {
					o += (size_t)snprintf(params + o, sizeof(params) - o, "%sFAILURE", sep);
					sep = ",";
				}
				if (r->notify & QUEUE_NOTIFY_DELAY)
					o += (size_t)snprintf(params + o, sizeof(params) - o, "%sDELAY", sep);
			}
			if (r->orcpt[0] != '\0') {
				const char *semi = strchr(r->orcpt, ';');
				char x[3 * QUEUE_ORCPT_MAX + 1];
				xtext(semi != NULL ? semi + 1 : r->orcpt, x, sizeof(x));
				snprintf(params + o, sizeof(params) - o, " ORCPT=rfc822;%s", x);
			}
			job->d->dsn_passed[idx] = (r->notify & QUEUE_NOTIFY_SUCCESS) != 0;
		}
		client_write(c, "RCPT TO:<%s>%s", r->addr, params);
		return;
	}
	client_write(c, "DATA");
}

/* Before MAIL: refuse what the server cannot take (RFC 1870, 6152, 6531). */
static bool check_extensions(struct out_client *c)
{
	struct qjob *job = c->job;
	char text[QUEUE_REPLY_MAX];
	conv_free(c);
	if (job->d->has_8bit && !(c->ext & EXT_8BITMIME)) {
		/* RFC 6152 3: convert (single-part text) or bounce */
		const char *why = NULL;
		c->conv = out_8bit_to_qp(job->d->body, job->d->len, &c->conv_len, &why);
		if (c->conv == NULL) {
			snprintf(text, sizeof(text), "8-bit message and %.200s does not support "
				 "8BITMIME; it cannot be converted to 7 bit: %.200s", c->remote, why);
			fail_pending_rcpts(c, 554, "5.6.3", text);
			return false;
		}
		log_info_as("smtp", "%s: converted to quoted-printable for %s (no 8BITMIME)",
			 job->d->msg.id, c->remote);
		const struct conf_domain *dom = job->d->dkim != NULL ?
			conf_find_domain(job->d->conf, out_addr_domain(job->d->msg.from)) : NULL;
		if (dom != NULL && dom->dkim_selector != NULL && dom->dkim_key != NULL) {
			/* the signature covered the 8-bit body: sign what is sent */
			const char *err = NULL;
			c->conv_dkim = out_dkim_sign(c->conv, c->conv_len, dom->name,
						     dom->dkim_selector, dom->dkim_key,
						     (int64_t)time(NULL), &err);
		}
	}
	if ((c->ext & EXT_SIZE) && c->max_size != 0 && message_size(c) > c->max_size) {
		snprintf(text, sizeof(text), "message size %zu exceeds size limit %llu of server %s",
			 message_size(c), (unsigned long long)c->max_size, c->remote);
		fail_pending_rcpts(c, 552, "5.3.4", text);
		return false;
	}
	if (needs_smtputf8(job) && !(c->ext & EXT_SMTPUTF8)) {
		snprintf(text, sizeof(text), "SMTPUTF8 is required, but was not offered by host %s",
			 c->remote);
		fail_pending_rcpts(c, 553, "5.6.7", text);
		return false;
	}
	return true;
}

static void start_txn(struct out_client *c)
{
	if (!check_extensions(c)) {
		quit(c, true);
		return;
	}
	c->n_cmds = c->job->n_rcpts + 2;
	c->next_cmd = 0;
	c->replies_done = 0;
	set_state(c, OUT_TXN, OUT_TIMEOUT_MAIL_MS);
	if (c->ext & EXT_PIPELINING) {
		for (size_t i = 0; i < c->n_cmds; i++)
			send_cmd(c, i);
		c->next_cmd = c->n_cmds;
	} else {
		send_cmd(c, 0);
		c->next_cmd = 1;
	}
}

static void send_ehlo(struct out_client *c)
{
	set_state(c, OUT_EHLO, OUT_TIMEOUT_CMD_MS);
	client_write(c, "EHLO %s", c->job->d->conf->hostname);
}

static void after_ehlo(struct out_client *c)
{
	struct qjob *job = c->job;
	if (!c->tls && (c->ext & EXT_STARTTLS) && job->d->r->tls != NULL && !job->tls_broken) {
		set_state(c, OUT_STARTTLS, OUT_TIMEOUT_CMD_MS);
		client_write(c, "STARTTLS");
		return;
	}
	if (!c->tls && job->tls_required) {
		char text[QUEUE_REPLY_MAX];
		snprintf(text, sizeof(text), "TLS is required, but was not offered by host %s",
			 c->remote);
		fail_session(c, 0, "4.7.4", text);
		quit(c, false);
		return;
	}
	if (job->auth_user != NULL && job->auth_user[0] != '\0') {
		if (!(c->ext & EXT_AUTH_PLAIN)) {
			char text[QUEUE_REPLY_MAX];
			snprintf(text, sizeof(text), "SASL authentication is required, but %s offers "
				 "no AUTH PLAIN", c->remote);
			fail_session(c, 0, "4.7.0", text);
			quit(c, false);
			return;
		}
		/* "\0user\0password" in base64 */
		const char *u = job->auth_user, *p = job->auth_password ? job->auth_password : "";
		size_t ul = strlen(u), pl = strlen(p);
		if (ul + pl > 1000) {
			fail_session(c, 0, "4.7.0", "relayhost credentials too long");
			quit(c, false);
			return;
		}
		unsigned char raw[1024];
		char b64[1400];
		raw[0] = '\0';
		memcpy(raw + 1, u, ul);
		raw[1 + ul] = '\0';
		memcpy(raw + 2 + ul, p, pl);
		EVP_EncodeBlock((unsigned char *)b64, raw, (int)(ul + pl + 2));
		set_state(c, OUT_AUTH, OUT_TIMEOUT_CMD_MS);
		client_write(c, "AUTH PLAIN %s", b64);
		return;
	}
	start_txn(c);
}

static void parse_ehlo_line(struct out_client *c, const char *kw)
{
	if (strcasecmp(kw, "PIPELINING") == 0)
		c->ext |= EXT_PIPELINING;
	else if (strcasecmp(kw, "STARTTLS") == 0)
		c->ext |= EXT_STARTTLS;
	else if (strcasecmp(kw, "8BITMIME") == 0)
		c->ext |= EXT_8BITMIME;
	else if (strcasecmp(kw, "SMTPUTF8") == 0)
		c->ext |= EXT_SMTPUTF8;
	else if (strcasecmp(kw, "DSN") == 0)
		c->ext |= EXT_DSN;
	else if (strcasecmp(kw, "ENHANCEDSTATUSCODES") == 0)
		c->ext |= EXT_ENHANCED;
	else if (strncasecmp(kw, "SIZE", 4) == 0 && (kw[4] == '\0' || kw[4] == ' ')) {
		c->ext |= EXT_SIZE;
		c->max_size = kw[4] == ' ' ? strtoull(kw + 5, NULL, 10) : 0;
	} else if (strncasecmp(kw, "AUTH", 4) == 0 && (kw[4] == ' ' || kw[4] == '=')) {
		char up[256];
		snprintf(up, sizeof(up), " %.250s ", kw + 5);
		for (char *p = up; *p != '\0'; p++)
			*p = (char)toupper((unsigned char)*p);
		if (strstr(up, " PLAIN ") != NULL)
			c->ext |= EXT_AUTH_PLAIN;
	}
}

/* ---- the body ------------------------------------------------------------------------- */

/* Sends dot-stuffed message bytes until the output is full (RFC 5321 4.5.2). */
static void pump_body(struct out_client *c)
{
	const char *dkim, *body;
	size_t body_len;
	message_parts(c, &dkim, &body, &body_len);
	size_t dkim_len = dkim != NULL ? strlen(dkim) : 0;
	size_t total = dkim_len + body_len;
	while (c->body_pos < total && !net_conn_output_full(c->conn)) {
		const char *src;
		size_t avail;
		if (c->body_pos < dkim_len) {
			src = dkim + c->body_pos;
			avail = dkim_len - c->body_pos;
		} else {
			src = body + (c->body_pos - dkim_len);
			avail = total - c->body_pos;
		}
		if (avail > OUT_BODY_CHUNK)
			avail = OUT_BODY_CHUNK;
		size_t start = 0;
		for (size_t i = 0; i < avail; i++) {
			if (c->body_bol && src[i] == '.') {
				net_conn_write(c->conn, src + start, i - start);
				net_conn_write(c->conn, ".", 1);
				start = i;
			}
			c->body_bol = src[i] == '\n';
		}
		net_conn_write(c->conn, src + start, avail - start);
		c->body_pos += avail;
	}
	if (c->body_pos < total)
		return;   /* on_drain continues */
	if (total > 0 && !c->body_bol)
		net_conn_write(c->conn, "\r\n", 2);
	net_conn_write(c->conn, ".\r\n", 3);
	c->body_sent = true;
	net_conn_set_idle_timeout(c->conn, OUT_TIMEOUT_DOT_MS);
}

static void on_drain(struct net_conn *conn, void *ctx)
{
	struct out_client *c = ctx;
	if (c->state == OUT_BODY && !c->body_sent)
		pump_body(c);
}

/* ---- replies --------------------------------------------------------------------------- */

static void txn_reply(struct out_client *c, int code, const char *text)
{
	struct qjob *job = c->job;
	size_t i = c->replies_done++;
	if (i == 0) {
		c->mail_ok = code >= 200 && code < 300;
		if (!c->mail_ok) {
			/* every recipient gets MAIL's answer (5xx bounces, 4xx retries) */
			for (size_t k = 0; k < job->n_rcpts; k++)
				queue_rcpt_result(job->d, job->rcpts[k], code, NULL, text, c->remote);
		}
	} else if (i <= job->n_rcpts) {
		if (c->mail_ok) {
			bool ok = code >= 200 && code < 300;
			c->rcpt_ok[i - 1] = ok;
			if (ok)
				c->accepted++;
			else {
				queue_rcpt_result(job->d, job->rcpts[i - 1], code, NULL, text, c->remote);
			}
		}
	} else {
		/* DATA */
		if (code == 354 && c->mail_ok && c->accepted > 0) {
			set_state(c, OUT_BODY, OUT_TIMEOUT_BLOCK_MS);
			c->body_pos = 0;
			c->body_bol = true;
			pump_body(c);
			return;
		}
		if (code == 354) {
			/* no recipient was taken, but the server wants data (RFC 2920 3.1):
			 * end it at once with an empty message */
			net_conn_write(c->conn, ".\r\n", 3);
			c->data_done = true;
			set_state(c, OUT_QUIT, OUT_TIMEOUT_CMD_MS);
			quit(c, true);
			return;
		}
		if (c->mail_ok && c->accepted > 0)
			for (size_t k = 0; k < job->n_rcpts; k++)
				if (c->rcpt_ok[k])
					queue_rcpt_result(job->d, job->rcpts[k], code, NULL, text,
							  c->remote);
		quit(c, true);
		return;
	}
	/* without pipelining, send the next command now */
	if (!(c->ext & EXT_PIPELINING) && c->next_cmd < c->n_cmds) {
		if (i == 0 && !c->mail_ok) {
			quit(c, true);
			return;
		}
		if (c->next_cmd == c->n_cmds - 1 && c->accepted == 0) {
			quit(c, true);   /* no recipient: no DATA */
			return;
		}
		send_cmd(c, c->next_cmd++);
		set_state(c, OUT_TXN, c->next_cmd == c->n_cmds ? OUT_TIMEOUT_DATA_MS :
			  OUT_TIMEOUT_RCPT_MS);
	}
}

static void body_reply(struct out_client *c, int code, const char *text)
{
	struct qjob *job = c->job;
	for (size_t k = 0; k < job->n_rcpts; k++)
		if (c->rcpt_ok[k])
			queue_rcpt_result(job->d, job->rcpts[k], code, NULL, text, c->remote);
	if (code / 100 == 4 && code != 450 && code != 451 && code != 452) {
		quit(c, true);   /* 421 and the like: the server wants us gone */
		return;
	}
	txn_over(c);
}

static void handle_reply(struct out_client *c, int code, const char *text)
{
	char err[QUEUE_REPLY_MAX];
	switch (c->state) {
	case OUT_GREETING:
		if (code != 220) {
			snprintf(err, sizeof(err), "host %.200s refused to talk to me: %.250s", c->remote,
				 text);
			fail_session(c, code, code >= 500 ? "5.0.0" : "4.0.0", err);
			quit(c, false);
			return;
		}
		send_ehlo(c);
		return;
	case OUT_EHLO:
		if (code / 100 != 2) {
			set_state(c, OUT_HELO, OUT_TIMEOUT_CMD_MS);
			client_write(c, "HELO %s", c->job->d->conf->hostname);
			return;
		}
		after_ehlo(c);
		return;
	case OUT_HELO:
		if (code / 100 != 2) {
			snprintf(err, sizeof(err), "host %.200s refused HELO: %.250s", c->remote, text);
			fail_session(c, code, code >= 500 ? "5.0.0" : "4.0.0", err);
			quit(c, false);
			return;
		}
		c->ext = 0;
		after_ehlo(c);
		return;
	case OUT_STARTTLS:
		if (code != 220) {
			if (c->job->tls_required) {
				snprintf(err, sizeof(err), "host %.200s refused STARTTLS: %.250s",
					 c->remote, text);
				fail_session(c, code, "4.7.4", err);
				quit(c, false);
				return;
			}
			log_info_as("smtp", "%s: %s refused STARTTLS (%s); going on in plaintext",
				 c->job->d->msg.id, c->remote, text);
			c->ext &= ~EXT_STARTTLS;
			after_ehlo(c);
			return;
		}
		start_tls(c);
		return;
	case OUT_AUTH:
		if (code != 235) {
			snprintf(err, sizeof(err), "SASL authentication failed; server %.200s said: %.250s",
				 c->remote, text);
			fail_session(c, code, "4.7.0", err);
			quit(c, false);
			return;
		}
		log_info_as("smtp", "%s: authenticated to %s as %s", c->job->d->msg.id, c->remote,
			 c->job->auth_user);
		start_txn(c);
		return;
	case OUT_TXN:
		txn_reply(c, code, text);
		return;
	case OUT_BODY:
		if (!c->body_sent)
			return;   /* a server may not answer before the end of data */
		body_reply(c, code, text);
		return;
	default:
		return;
	}
}

static void on_input(struct net_conn *conn, void *ctx)
{
	struct out_client *c = ctx;
	struct net_line line;
	enum net_line_status st;
	while (c->state != OUT_DONE && c->conn != NULL &&
	       (st = net_conn_read_line(conn, &line)) != NET_LINE_NEED_MORE) {
		if (c->state == OUT_IDLE) {
			/* a kept connection speaks (421 at the server's timeout): let it go */
			idle_unlink(c);
			c->state = OUT_DONE;
			net_conn_close(conn);
			return;
		}
		if (st == NET_LINE_TOO_LONG || line.len < 3 || !isdigit((unsigned char)line.data[0]) ||
		    !isdigit((unsigned char)line.data[1]) || !isdigit((unsigned char)line.data[2]) ||
		    (line.len > 3 && line.data[3] != ' ' && line.data[3] != '-')) {
			char text[QUEUE_REPLY_MAX];
			char printable[200];
			snprintf(text, sizeof(text), "malformed reply from %s: %s", c->remote,
				 st == NET_LINE_TOO_LONG ? "line too long" :
				 log_printable(printable, sizeof(printable), line.data, line.len));
			if (c->state >= OUT_TXN) {
				fail_pending_rcpts(c, 0, "4.4.2", text);
				log_info_as("smtp", "%s: %s", c->job->d->msg.id, text);
				session_over(c, true);
			} else {
				fail_session(c, 0, "4.4.2", text);
				session_over(c, false);
			}
			net_conn_abort(conn);
			return;
		}
		int code = (line.data[0] - '0') * 100 + (line.data[1] - '0') * 10 +
			(line.data[2] - '0');
		bool more = line.len > 3 && line.data[3] == '-';
		const char *text = line.len > 4 ? line.data + 4 : "";
		size_t tlen = line.len > 4 ? line.len - 4 : 0;
		if (c->state == OUT_EHLO && code == 250 && buf_len(&c->reply) > 0) {
			/* EHLO keywords are on the lines after the first */
			char kw[512];
			snprintf(kw, sizeof(kw), "%.*s", (int)(tlen < 511 ? tlen : 511), text);
			parse_ehlo_line(c, kw);
		}
		if (buf_len(&c->reply) > 0)
			buf_append(&c->reply, " ", 1);
		buf_append(&c->reply, text, tlen < QUEUE_REPLY_MAX ? tlen : QUEUE_REPLY_MAX);
		if (more) {
			c->code = code;
			if (buf_len(&c->reply) > OUT_REPLY_LINE_MAX * 4)
				buf_clear(&c->reply);
			continue;
		}
		char full[QUEUE_REPLY_MAX + 1];
		char printable[QUEUE_REPLY_MAX + 1];
		snprintf(full, sizeof(full), "%d %.*s", code, (int)buf_len(&c->reply),
			 buf_data(&c->reply));
		log_printable(printable, sizeof(printable), full, strlen(full));
		buf_clear(&c->reply);
		handle_reply(c, code, printable);
	}
}

static const struct net_conn_callbacks client_callbacks = {
	.on_input = on_input,
	.on_tls_ready = on_tls_ready,
	.on_drain = on_drain,
	.on_timeout = on_timeout,
	.on_close = on_close,
};

static void connect_cb(struct net_conn *conn, int status, void *ctx)
{
	struct out_client *c = ctx;
	if (conn == NULL) {
		char text[QUEUE_REPLY_MAX];
		snprintf(text, sizeof(text), "connect to %s: %s", c->remote,
			 status == UV_ETIMEDOUT ? "Connection timed out" : uv_strerror(status));
		char *e = strstr(text, ": ") + 2;   /* "Connection refused", as Postfix says */
		*e = (char)toupper((unsigned char)*e);
		fail_session(c, 0, "4.4.1", text);
		session_over(c, false);
		client_free(c);
		return;
	}
	c->conn = conn;
	net_conn_set_handler(conn, &client_callbacks, c);
	net_conn_set_max_line(conn, OUT_REPLY_LINE_MAX);
	set_state(c, OUT_GREETING, OUT_TIMEOUT_GREETING_MS);
}

void out_client_start(struct qjob *job, const char *addr, const struct out_hop *hop)
{
	struct out_client *c = x_calloc(1, sizeof(*c));
	c->job = job;
	c->hop = *hop;
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	buf_init(&c->reply, QUEUE_REPLY_MAX * 8);
	c->rcpt_ok = x_calloc(job->n_rcpts + 1, sizeof(bool));
	bool v6 = strchr(addr, ':') != NULL;
	snprintf(c->remote, sizeof(c->remote), "%s[%s]:%u", hop->host, addr, hop->port);
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	int ret = v6 ? uv_ip6_addr(addr, (int)hop->port, (struct sockaddr_in6 *)&ss) :
		uv_ip4_addr(addr, (int)hop->port, (struct sockaddr_in *)&ss);
	job->client = c;
	if (ret == 0)
		ret = net_connect(job->d->r->loop, (const struct sockaddr *)&ss, NULL,
				  job->d->conf->queue.connect_timeout_s * 1000, connect_cb, c);
	if (ret != 0) {
		char text[QUEUE_REPLY_MAX];
		snprintf(text, sizeof(text), "connect to %s: %s", c->remote, uv_strerror(ret));
		fail_session(c, 0, "4.4.1", text);
		session_over(c, false);
		client_free(c);
	}
}
