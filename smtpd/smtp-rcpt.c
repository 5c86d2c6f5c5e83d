/* smtp-rcpt.c — RCPT TO: recipient checks at RCPT time (no backscatter).
 *
 * A recipient resolves to mailbox copies and outside addresses: a user's mailbox,
 * an alias or distribution list (nested, with a depth bound against loops), a
 * forward (its outside addresses go to the outbound queue, with or without a local
 * copy), a domain's catch-all, or the domain's multi-drop mailbox. Other domains
 * are relayed (through the queue) only for authenticated or trusted clients.
 * Quota is checked against the store (off the loop thread) before 250 is said.
 */
#include "smtpd/smtp-session.h"
#include "smtpd/policy.h"
#include "smtpd/policy-checks.h"
#include "smtpd/outbound.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pool.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


enum resolve_result {
	RESOLVE_OK,
	RESOLVE_UNKNOWN,      /* 550 5.1.1 */
	RESOLVE_RELAY,        /* 554 5.7.1 */
	RESOLVE_LOOP,         /* 550 5.4.6 */
};

struct expansion {
	const struct warren_config *conf;
	const struct conf_mailbox *found[SMTP_EXPAND_MAX];
	size_t n;
	const char *ext[SMTP_EXPAND_MAX];   /* outside addresses (pointing into conf or addr) */
	size_t n_ext;
	bool forwarded;                     /* an outside address came from a forward/alias */
	bool loop;
};

static void add_external(struct expansion *e, const char *addr, bool forwarded)
{
	for (size_t i = 0; i < e->n_ext; i++)
		if (strcasecmp(e->ext[i], addr) == 0)
			return;
	if (e->n_ext < SMTP_EXPAND_MAX)
		e->ext[e->n_ext++] = addr;
	else
		e->loop = true;
	e->forwarded |= forwarded;
}

static void add_mailbox(struct expansion *e, const struct conf_mailbox *mb)
{
	for (size_t i = 0; i < e->n; i++)
		if (e->found[i] == mb)
			return;
	if (e->n < SMTP_EXPAND_MAX)
		e->found[e->n++] = mb;
	else
		e->loop = true;
}

static bool expand(struct expansion *e, const struct conf_domain *d, const char *local, int depth);

/* A target written in an alias or catch_all: "local" of domain d, or an address. */
static bool expand_target(struct expansion *e, const struct conf_domain *d, const char *target,
			  int depth)
{
	const char *at = strrchr(target, '@');
	if (at == NULL)
		return expand(e, d, target, depth);
	const struct conf_domain *td = conf_find_domain(e->conf, at + 1);
	if (td == NULL || td->type != CONF_DOMAIN_LOCAL) {
		add_external(e, target, true);
		return true;
	}
	char local[SMTP_LOCAL_MAX + 1];
	size_t n = (size_t)(at - target);
	if (n > SMTP_LOCAL_MAX)
		return false;
	memcpy(local, target, n);
	local[n] = '\0';
	return expand(e, td, local, depth);
}

static bool expand(struct expansion *e, const struct conf_domain *d, const char *local, int depth)
{
	if (depth > SMTP_ALIAS_DEPTH_MAX) {
		e->loop = true;
		return true;
	}
	const struct conf_mailbox *mb = conf_find_mailbox(d, local);
	if (mb != NULL) {
		if (mb->n_forward > 0) {
			for (size_t i = 0; i < mb->n_forward; i++)
				add_external(e, mb->forward[i], true);
			if (mb->forward_keep_copy)
				add_mailbox(e, mb);
		} else {
			add_mailbox(e, mb);
		}
		return true;
	}
	const struct conf_alias *a = conf_find_alias(d, local);
	if (a == NULL)
		return false;
	for (size_t i = 0; i < a->n_targets; i++)
		if (!expand_target(e, d, a->targets[i], depth + 1))
			return false;
	return true;
}

static enum resolve_result resolve(struct smtp_session *s, const char *addr,
				   struct expansion *e, bool *multidrop_r)
{
	*multidrop_r = false;
	const char *at = strrchr(addr, '@');
	const struct conf_domain *d = conf_find_domain(s->conf, at + 1);
	if (d == NULL) {
		if (!smtp_relay_allowed(s))
			return RESOLVE_RELAY;
		add_external(e, addr, false);
		return RESOLVE_OK;
	}
	if (d->type != CONF_DOMAIN_LOCAL) {
		add_external(e, addr, false);   /* the queue relays it to relay_host */
		return RESOLVE_OK;
	}
	/* a bounce to one of our SRS addresses (forwarded mail): the queue reverses it */
	char orig[SMTP_PATH_MAX + 1];
	if (s->conf->queue.srs_secret != NULL &&
	    (strncasecmp(addr, "SRS0=", 5) == 0 || strncasecmp(addr, "SRS0+", 5) == 0) &&
	    outbound_srs_reverse(s->conf, addr, orig, sizeof(orig))) {
		add_external(e, addr, false);
		return RESOLVE_OK;
	}
	if (d->multidrop != NULL) {
		const struct conf_mailbox *mb = conf_find_mailbox(d, d->multidrop);
		if (mb == NULL)
			return RESOLVE_UNKNOWN;
		add_mailbox(e, mb);
		*multidrop_r = true;
		return RESOLVE_OK;
	}
	/* configured local parts have at most 64 bytes (conf-check); longer ones
	 * (accepted from the wire, RFC 5321 4.5.3.1) can only meet the catch-all */
	char local[SMTP_LOCAL_MAX + 1];
	size_t n = (size_t)(at - addr);
	bool known = false;
	if (n <= SMTP_LOCAL_MAX) {
		for (size_t i = 0; i < n; i++)
			local[i] = (char)tolower((unsigned char)addr[i]);
		local[n] = '\0';
		known = expand(e, d, local, 0);
	}
	if (!known && d->catch_all != NULL) {
		e->n = 0;
		e->n_ext = 0;
		e->forwarded = false;
		known = expand_target(e, d, d->catch_all, 1);
	}
	if (!known)
		return RESOLVE_UNKNOWN;
	if (e->loop)
		return RESOLVE_LOOP;
	return e->n + e->n_ext > 0 ? RESOLVE_OK : RESOLVE_UNKNOWN;
}

int smtp_vrfy_lookup(struct smtp_session *s, const char *addr)
{
	const char *at = strrchr(addr, '@');
	const struct conf_domain *d = at != NULL ? conf_find_domain(s->conf, at + 1) : NULL;
	if (d == NULL || d->type != CONF_DOMAIN_LOCAL)
		return 0;
	struct expansion *e = x_calloc(1, sizeof(*e));
	e->conf = s->conf;
	bool multidrop;
	enum resolve_result r = resolve(s, addr, e, &multidrop);
	free(e);
	return r == RESOLVE_OK ? 1 : -1;
}

/* RFC 5321 4.5.1: <postmaster> without a domain must be accepted. */
static void postmaster_address(const struct smtp_session *s, char *addr, size_t size)
{
	const char *dom = s->conf->default_domain;
	for (size_t i = 0; dom == NULL && i < s->conf->n_domains; i++)
		if (s->conf->domains[i].type == CONF_DOMAIN_LOCAL)
			dom = s->conf->domains[i].name;
	snprintf(addr, size, "postmaster@%s", dom != NULL ? dom : "localhost");
}

static uint64_t mailbox_max_size(const struct warren_config *conf, const struct conf_mailbox *mb)
{
	uint64_t max = conf->max_message_size;
	if (mb->domain->max_message_size != 0 && mb->domain->max_message_size < max)
		max = mb->domain->max_message_size;
	if (mb->max_message_size != 0 && mb->max_message_size < max)
		max = mb->max_message_size;
	return max;
}

static void reject(struct smtp_session *s, const char *addr, int code, const char *text)
{
	struct smtp_txn *t = s->txn;
	char pa[SMTP_PATH_MAX + 1], pf[SMTP_PATH_MAX + 1];
	/* text is "X.Y.Z what": the enhanced code, then the words */
	const char *sp = strchr(text, ' ');
	int elen = sp != NULL ? (int)(sp - text) : (int)strlen(text);
	const char *words = sp != NULL ? sp + 1 : "";
	log_printable(pa, sizeof(pa), addr, strlen(addr));
	log_info("%s: reject: RCPT from %s[%s]: %d %.*s <%s>: %s; from=<%s> to=<%s> proto=%s helo=<%s>",
		 t->queue_id[0] != '\0' ? t->queue_id : "NOQUEUE", s->client_name, s->client_ip,
		 code, elen, text, pa, words,
		 log_printable(pf, sizeof(pf), t->from, strlen(t->from)), pa, smtp_proto_name(s),
		 s->helo);
	smtp_reply(s, code, "%.*s <%s>: %s", elen, text, pa, words);
	static const struct { const char *status, *reason; } reasons[] = {
		{ "5.1.1", "unknown_user" }, { "5.7.1", "relay" }, { "5.4.6", "alias_loop" },
		{ "5.3.4", "size" }, { "4.2.2", "quota" }, { "5.2.2", "quota" },
	};
	const char *reason = "other";
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if ((int)strlen(reasons[i].status) == elen &&
		    strncmp(text, reasons[i].status, (size_t)elen) == 0)
			reason = reasons[i].reason;
	metrics_count_reject(reason);
}

/* ---- RCPT parameters (RFC 3461) ---- */

static int parse_rcpt_params(struct smtp_session *s, const char *p, unsigned *notify_r,
			     char *orcpt, size_t orcpt_size, bool *has_orcpt_r)
{
	*notify_r = 0;
	*has_orcpt_r = false;
	while (*p != '\0') {
		const char *end = strchr(p, ' ');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len > 7 && strncasecmp(p, "NOTIFY=", 7) == 0) {
			const char *v = p + 7, *vend = p + len;
			while (v < vend) {
				const char *comma = memchr(v, ',', (size_t)(vend - v));
				size_t n = comma != NULL ? (size_t)(comma - v) : (size_t)(vend - v);
				if (n == 5 && strncasecmp(v, "NEVER", 5) == 0)
					*notify_r |= SMTP_NOTIFY_NEVER;
				else if (n == 7 && strncasecmp(v, "SUCCESS", 7) == 0)
					*notify_r |= SMTP_NOTIFY_SUCCESS;
				else if (n == 7 && strncasecmp(v, "FAILURE", 7) == 0)
					*notify_r |= SMTP_NOTIFY_FAILURE;
				else if (n == 5 && strncasecmp(v, "DELAY", 5) == 0)
					*notify_r |= SMTP_NOTIFY_DELAY;
				else
					return -1;
				v += n + (comma != NULL ? 1 : 0);
			}
			if ((*notify_r & SMTP_NOTIFY_NEVER) && *notify_r != SMTP_NOTIFY_NEVER)
				return -1;
		} else if (len > 6 && strncasecmp(p, "ORCPT=", 6) == 0) {
			/* kept as "addr-type;decoded address" (RFC 3461 4.2) */
			const char *semi = memchr(p, ';', len);
			size_t tlen = semi != NULL ? (size_t)(semi - (p + 6)) : 0;
			if (semi == NULL || tlen == 0 || tlen + 2 >= orcpt_size)
				return -1;
			memcpy(orcpt, p + 6, tlen + 1);
			if (smtp_xtext_decode(semi + 1, len - (size_t)(semi + 1 - p), orcpt + tlen + 1,
					      orcpt_size - tlen - 1) < 0)
				return -1;
			*has_orcpt_r = true;
		} else {
			return -1;
		}
		p += len;
		while (*p == ' ')
			p++;
	}
	(void)s;
	return 0;
}

/* ---- the quota check, off the loop thread ---- */

struct quota_job {
	struct smtp_session *s;
	char *addr;
	char *orcpt;
	unsigned notify;
	bool multidrop;
	size_t n;
	const struct conf_mailbox **mailboxes;
	size_t n_ext;
	char **ext;
	bool forwarded;
	bool over;
	uint64_t size;
};

static int quota_work(void *arg)
{
	struct quota_job *j = arg;
	struct store *st = service_store(j->s->svc);
	for (size_t i = 0; i < j->n; i++) {
		const struct conf_mailbox *mb = j->mailboxes[i];
		if (mb->quota == 0)
			continue;
		uint64_t bytes = 0, messages = 0;
		if (store_user_usage(st, mb->address, &bytes, &messages) != STORE_OK)
			bytes = 0;   /* no usage recorded yet */
		if (bytes >= mb->quota || bytes + j->size > mb->quota) {
			j->over = true;
			return STORE_EQUOTA;
		}
	}
	return STORE_OK;
}

static void accept_copies(struct smtp_session *s, struct quota_job *j)
{
	struct smtp_txn *t = s->txn;
	const char *env_to = pool_strdup(t->pool, j->addr);
	const char *orcpt = j->orcpt != NULL ? pool_strdup(t->pool, j->orcpt) : NULL;
	for (size_t i = 0; i < j->n; i++) {
		const struct conf_mailbox *mb = j->mailboxes[i];
		bool dup = false;
		for (size_t c = 0; c < t->n_copies && !dup; c++)
			dup = t->copies[c].mailbox == mb &&
				(!j->multidrop || strcasecmp(t->copies[c].env_to, env_to) == 0);
		if (dup)
			continue;
		if (t->n_copies == t->cap_copies) {
			t->cap_copies = t->cap_copies == 0 ? 8 : t->cap_copies * 2;
			t->copies = x_realloc(t->copies, t->cap_copies * sizeof(*t->copies));
		}
		t->copies[t->n_copies++] = (struct smtp_copy){ mb, env_to, orcpt, j->notify };
		uint64_t max = mailbox_max_size(s->conf, mb);
		if (max < t->max_size)
			t->max_size = max;
	}
	for (size_t i = 0; i < j->n_ext; i++) {
		bool dup = false;
		for (size_t c = 0; c < t->n_exts && !dup; c++)
			dup = strcasecmp(t->exts[c].addr, j->ext[i]) == 0;
		if (dup)
			continue;
		if (t->n_exts == t->cap_exts) {
			t->cap_exts = t->cap_exts == 0 ? 8 : t->cap_exts * 2;
			t->exts = x_realloc(t->exts, t->cap_exts * sizeof(*t->exts));
		}
		t->exts[t->n_exts++] = (struct smtp_ext){ pool_strdup(t->pool, j->ext[i]),
							  orcpt, j->notify };
	}
	t->forwarded |= j->forwarded;
	if (t->rcpt_accepted++ == 0)
		t->first_rcpt = env_to;
	smtp_txn_assign_queue_id(s);
	smtp_reply(s, 250, "2.1.5 Ok");
}

static void quota_job_free(struct quota_job *j)
{
	free(j->addr);
	free(j->orcpt);
	free(j->mailboxes);
	for (size_t i = 0; i < j->n_ext; i++)
		free(j->ext[i]);
	free(j->ext);
	free(j);
}

static void quota_done(void *arg, int result)
{
	struct quota_job *j = arg;
	struct smtp_session *s = j->s;
	if (smtp_session_unbusy(s)) {
		quota_job_free(j);
		return;
	}
	smtp_enter_state(s, SMTP_STATE_HELO);
	if (s->txn == NULL) {
		/* cannot happen: input was paused */
	} else if (result == STORE_EQUOTA) {
		if (s->conf->smtp.quota_permanent)
			reject(s, j->addr, 552, "5.2.2 Recipient address rejected: mailbox full");
		else
			reject(s, j->addr, 452, "4.2.2 Recipient address rejected: mailbox full");
	} else {
		accept_copies(s, j);
	}
	quota_job_free(j);
	smtp_session_resume(s);
}

static void rcpt_policy_done(struct smtp_session *s, struct policy_request *r);

void smtp_cmd_rcpt(struct smtp_session *s, const char *args)
{
	struct smtp_txn *t = s->txn;
	char addr[SMTP_PATH_MAX + 1], orcpt[SMTP_ORCPT_MAX + 1];
	const char *params;
	unsigned notify;
	bool has_orcpt, multidrop;

	if (t == NULL) {
		smtp_reply(s, 503, "5.5.1 Error: need MAIL command");
		return;
	}
	if (t->data_started) {
		smtp_reply(s, 503, "5.5.1 Error: RCPT after BDAT");
		return;
	}
	if (smtp_parse_path(args, "TO:", addr, sizeof(addr), &params) < 0) {
		smtp_reply(s, 501, "5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	t->rcpt_tried++;
	s->n_rcpt++;
	if (t->rcpt_accepted >= s->conf->smtp.max_recipients) {
		smtp_reply(s, 452, "4.5.3 Error: too many recipients");
		return;
	}
	if (parse_rcpt_params(s, params, &notify, orcpt, sizeof(orcpt), &has_orcpt) < 0) {
		smtp_reply(s, 555, "5.5.4 Unsupported option or bad DSN parameter");
		return;
	}
	if (strcasecmp(addr, "postmaster") == 0)
		postmaster_address(s, addr, sizeof(addr));
	if (smtp_has_8bit(addr) && !t->smtputf8) {
		smtp_reply(s, 553, "5.6.7 Error: non-ASCII address needs SMTPUTF8");
		return;
	}
	if (!smtp_address_valid(addr, t->smtputf8)) {
		smtp_reply(s, 501, "5.1.3 Bad recipient address syntax");
		return;
	}
	/* user%other@, other!user@, "user@other"@ (policy-relay.c) */
	if (policy_relay_routed(s, addr)) {
		reject(s, addr, 554, "5.7.1 Relay access denied");
		return;
	}
	struct expansion *e = x_calloc(1, sizeof(*e));
	e->conf = s->conf;
	enum resolve_result r = resolve(s, addr, e, &multidrop);
	switch (r) {
	case RESOLVE_OK:
		break;
	case RESOLVE_UNKNOWN:
		reject(s, addr, 550, "5.1.1 Recipient address rejected: User unknown in local recipient table");
		free(e);
		return;
	case RESOLVE_RELAY:
		reject(s, addr, 554, "5.7.1 Relay access denied");
		free(e);
		return;
	case RESOLVE_LOOP:
		reject(s, addr, 550, "5.4.6 Recipient address rejected: alias loop or too many copies");
		free(e);
		return;
	}
	/* SIZE announced beyond a recipient's own limit */
	for (size_t i = 0; i < e->n; i++) {
		if (t->size_param > mailbox_max_size(s->conf, e->found[i])) {
			reject(s, addr, 552, "5.3.4 Recipient address rejected: message too big for recipient");
			free(e);
			return;
		}
	}
	struct quota_job *j = x_calloc(1, sizeof(*j));
	j->s = s;
	j->addr = x_strdup(addr);
	j->orcpt = has_orcpt ? x_strdup(orcpt) : NULL;
	j->notify = notify;
	j->multidrop = multidrop;
	j->n = e->n;
	j->size = t->size_param;
	j->mailboxes = x_calloc(e->n + 1, sizeof(*j->mailboxes));
	memcpy(j->mailboxes, e->found, e->n * sizeof(*j->mailboxes));
	j->n_ext = e->n_ext;
	j->ext = x_calloc(e->n_ext + 1, sizeof(*j->ext));
	for (size_t i = 0; i < e->n_ext; i++)
		j->ext[i] = x_strdup(e->ext[i]);
	j->forwarded = e->forwarded;
	free(e);
	const char *at = strrchr(j->addr, '@');
	bool ours = at != NULL && conf_find_domain(s->conf, at + 1) != NULL;
	policy_run(s, POLICY_RCPT, j->addr, ours, j, rcpt_policy_done);
}

/* After the RCPT stage of the policy chain: the quota check, then 250. */
static void rcpt_policy_done(struct smtp_session *s, struct policy_request *r)
{
	struct quota_job *j = r->ctx;
	if (s == NULL) {
		quota_job_free(j);
		return;
	}
	if (r->code != 0) {
		/* logged by the chain */
		smtp_reply(s, r->code, "%s", r->reply);
		quota_job_free(j);
		if (r->disconnect) {
			smtp_enter_state(s, SMTP_STATE_QUIT);
			net_conn_close(s->conn);
		}
		return;
	}
	const char *addr = j->addr;
	bool any_quota = false;
	for (size_t i = 0; i < j->n; i++)
		any_quota |= j->mailboxes[i]->quota != 0;
	if (!any_quota) {
		accept_copies(s, j);
		quota_job_free(j);
		return;
	}
	smtp_session_wait(s);
	s->busy++;
	if (store_async(service_loop(s->svc), quota_work, quota_done, j) != 0) {
		s->busy--;
		smtp_enter_state(s, SMTP_STATE_HELO);
		smtp_session_resume(s);
		reject(s, addr, 451, "4.3.0 Recipient address rejected: temporary store problem");
		quota_job_free(j);
	}
}
