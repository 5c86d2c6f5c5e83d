/* policy-lists.c — black and white lists (lists { }, docs/policy.md "Black and white
 * lists"): whitehosts, client networks, HELO names, senders and recipients.
 *
 * Where each list is looked at:
 *   whitehosts           CONNECT and EHLO (XCLIENT presents a new client, who must
 *                        say EHLO again): policy_session.whitehost
 *   helo_whitelist       EHLO: policy_session.helo_whitelisted
 *   sender_whitelist     MAIL: policy_session.sender_whitelisted (this transaction)
 *   recipient_whitelist  RCPT: policy_session.rcpt_whitelisted (this recipient)
 *   *_blacklist          RCPT (as Postfix's smtpd_delay_reject: the log line has
 *                        sender and recipient, and a whitelisted recipient such as
 *                        postmaster stays reachable)
 * A whitelist hit makes policy_trusted() true, so the anti-spam checks after it are
 * skipped; relay protection still applies. The blacklists are anti-spam checks
 * themselves: trusted clients skip them.
 *
 * A domain's own lists { } (client_blacklist, client_whitelist, sender_blacklist,
 * sender_whitelist inside domain { }) apply at RCPT to that domain's recipients
 * only, after the global lists: a global blacklist refuses first; then the
 * domain's whitelists mark the recipient as policy_session.rcpt_whitelisted;
 * then its blacklists refuse.
 *
 * An entry is "PATTERN" or "PATTERN text of the reply". Patterns: networks
 * (client lists); names, ".domain" for the names under domain (HELO lists);
 * "user@domain", "domain" or "@domain", ".domain" (sender and recipient lists).
 */
#include "smtpd/policy-checks.h"
#include "common/log.h"
#include "conf/conf.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Longest pattern of an entry looked at; longer ones never match. */
#define LIST_PATTERN_MAX (SMTP_PATH_MAX + 1)

/* Splits an entry into its pattern (copied into pat) and its text (or NULL). */
static bool entry_split(const char *entry, char *pat, size_t size, const char **text_r)
{
	size_t n = strcspn(entry, " \t");
	if (n == 0 || n >= size)
		return false;
	memcpy(pat, entry, n);
	pat[n] = '\0';
	const char *t = entry + n;
	while (*t == ' ' || *t == '\t')
		t++;
	*text_r = *t != '\0' ? t : NULL;
	return true;
}

/* name equals domain, or (domain ".x.test") lies under x.test. */
static bool domain_match(const char *name, const char *domain)
{
	size_t ln = strlen(name), ld = strlen(domain);
	if (ln > 0 && name[ln - 1] == '.')
		ln--;
	if (domain[0] == '.')
		return ln > ld && strncasecmp(name + ln - ld, domain, ld) == 0;
	return ln == ld && strncasecmp(name, domain, ld) == 0;
}

static bool address_match(const char *addr, const char *pat)
{
	const char *at = strrchr(addr, '@');
	if (at == NULL)
		return false;
	if (pat[0] == '@')
		return domain_match(at + 1, pat + 1);
	if (strchr(pat, '@') != NULL)
		return strcasecmp(addr, pat) == 0;
	return domain_match(at + 1, pat);
}

enum list_kind { LIST_NET, LIST_NAME, LIST_ADDR };

/* The first entry of list matching value, or NULL; its text in *text_r. */
static const char *list_find(const char *const *list, size_t n, enum list_kind kind,
			     const char *value, const char **text_r)
{
	char pat[LIST_PATTERN_MAX];
	for (size_t i = 0; i < n; i++) {
		if (!entry_split(list[i], pat, sizeof(pat), text_r))
			continue;
		const char *one[1] = { pat };
		bool hit = kind == LIST_NET ? smtp_net_match(value, one, 1) :
			kind == LIST_NAME ? domain_match(value, pat) : address_match(value, pat);
		if (hit)
			return list[i];
	}
	return NULL;
}

enum policy_action policy_whitehost(struct policy_request *r)
{
	struct smtp_session *s = r->s;
	const struct conf_lists *l = &s->conf->lists;
	const char *text;
	bool was = s->policy != NULL && s->policy->whitehost;
	bool now = l->n_whitehosts > 0 &&
		list_find(l->whitehosts, l->n_whitehosts, LIST_NET, s->client_ip, &text) != NULL;
	if (now != was) {
		policy_session(s)->whitehost = now;
		if (now)
			log_info("%s: whitehost %s[%s]: anti-spam checks skipped", s->id,
				 s->client_name, s->client_ip);
	}
	return POLICY_NEXT;
}

const struct conf_domain *policy_rcpt_domain(const struct policy_request *r)
{
	const char *at = r->rcpt != NULL ? strrchr(r->rcpt, '@') : NULL;
	if (at == NULL || at[1] == '\0' || at[1] == '[')
		return NULL;
	const struct conf_domain *d = conf_find_domain(r->s->conf, at + 1);
	/* every domain the loader made has its policy sections */
	return d != NULL && d->lists != NULL ? d : NULL;
}

static enum policy_action blacklisted(struct policy_request *r, const char *what,
				      const char *value, const char *text)
{
	char pv[SMTP_PATH_MAX + 1], pt[POLICY_REPLY_MAX / 2];
	log_printable(pv, sizeof(pv), value, strlen(value));
	text = text != NULL ? text : r->s->conf->lists.reject_text;
	log_printable(pt, sizeof(pt), text, strlen(text));
	policy_reject(r, 554, "5.7.1 <%s>: %s rejected: %s", pv, what, pt);
	return POLICY_REJECT;
}

/* The recipient domain's own lists (after the global ones). */
static enum policy_action check_rcpt_domain(struct policy_request *r)
{
	struct smtp_session *s = r->s;
	const struct conf_domain *d = policy_rcpt_domain(r);
	const char *text, *from = s->txn != NULL ? s->txn->from : "";
	char pr[SMTP_PATH_MAX + 1];
	if (d == NULL)
		return POLICY_NEXT;
	const struct conf_lists *l = d->lists;
	const char *why = NULL;
	if (list_find(l->client_whitelist, l->n_client_whitelist, LIST_NET, s->client_ip,
		      &text) != NULL)
		why = "client";
	else if (from[0] != '\0' &&
		 list_find(l->sender_whitelist, l->n_sender_whitelist, LIST_ADDR, from,
			   &text) != NULL)
		why = "sender";
	if (why != NULL) {
		policy_session(s)->rcpt_whitelisted = true;
		log_info("%s: %s whitelisted by domain %s for <%s>: anti-spam checks skipped",
			 s->id, why, d->name,
			 log_printable(pr, sizeof(pr), r->rcpt, strlen(r->rcpt)));
		return POLICY_NEXT;
	}
	if (list_find(l->client_blacklist, l->n_client_blacklist, LIST_NET, s->client_ip,
		      &text) != NULL)
		return blacklisted(r, "Client host", s->client_ip, text);
	if (from[0] != '\0' &&
	    list_find(l->sender_blacklist, l->n_sender_blacklist, LIST_ADDR, from, &text) != NULL)
		return blacklisted(r, "Sender address", from, text);
	return POLICY_NEXT;
}

static enum policy_action check_rcpt(struct policy_request *r)
{
	struct smtp_session *s = r->s;
	const struct conf_lists *l = &s->conf->lists;
	const char *text;
	char pr[SMTP_PATH_MAX + 1];
	if (policy_trusted(s))
		return POLICY_NEXT;
	if (r->rcpt != NULL &&
	    list_find(l->recipient_whitelist, l->n_recipient_whitelist, LIST_ADDR, r->rcpt,
		      &text) != NULL) {
		policy_session(s)->rcpt_whitelisted = true;
		log_info("%s: recipient <%s> whitelisted: anti-spam checks skipped", s->id,
			 log_printable(pr, sizeof(pr), r->rcpt, strlen(r->rcpt)));
		return POLICY_NEXT;
	}
	if (list_find(l->client_blacklist, l->n_client_blacklist, LIST_NET, s->client_ip,
		      &text) != NULL)
		return blacklisted(r, "Client host", s->client_ip, text);
	if (s->helo[0] != '\0' &&
	    list_find(l->helo_blacklist, l->n_helo_blacklist, LIST_NAME, s->helo, &text) != NULL)
		return blacklisted(r, "Helo command", s->helo, text);
	if (s->txn != NULL && s->txn->from[0] != '\0' &&
	    list_find(l->sender_blacklist, l->n_sender_blacklist, LIST_ADDR, s->txn->from,
		      &text) != NULL)
		return blacklisted(r, "Sender address", s->txn->from, text);
	if (r->rcpt != NULL &&
	    list_find(l->recipient_blacklist, l->n_recipient_blacklist, LIST_ADDR, r->rcpt,
		      &text) != NULL)
		return blacklisted(r, "Recipient address", r->rcpt, text);
	return check_rcpt_domain(r);
}

enum policy_action policy_lists(struct policy_request *r)
{
	struct smtp_session *s = r->s;
	const struct conf_lists *l = &s->conf->lists;
	const char *text;
	char p[SMTP_PATH_MAX + 1];
	switch (r->stage) {
	case POLICY_HELO: {
		bool wl = s->helo[0] != '\0' &&
			list_find(l->helo_whitelist, l->n_helo_whitelist, LIST_NAME, s->helo,
				  &text) != NULL;
		if (wl || s->policy != NULL) {
			/* a new greeting (after XCLIENT, STARTTLS, RSET) starts afresh */
			policy_session(s)->helo_whitelisted = wl;
			s->policy->sender_whitelisted = false;
			s->policy->rcpt_whitelisted = false;
		}
		if (wl)
			log_info("%s: helo <%s> whitelisted: anti-spam checks skipped", s->id,
				 log_printable(p, sizeof(p), s->helo, strlen(s->helo)));
		return POLICY_NEXT;
	}
	case POLICY_MAIL: {
		const char *from = s->txn != NULL ? s->txn->from : "";
		bool wl = from[0] != '\0' &&
			list_find(l->sender_whitelist, l->n_sender_whitelist, LIST_ADDR, from,
				  &text) != NULL;
		if (wl || s->policy != NULL) {
			policy_session(s)->sender_whitelisted = wl;
			s->policy->rcpt_whitelisted = false;
		}
		if (wl)
			log_info("%s: sender <%s> whitelisted: anti-spam checks skipped", s->id,
				 log_printable(p, sizeof(p), from, strlen(from)));
		return POLICY_NEXT;
	}
	case POLICY_RCPT:
		if (s->policy != NULL)
			s->policy->rcpt_whitelisted = false;
		return check_rcpt(r);
	case POLICY_DATA:
		/* content checks run once per message, not for the last recipient */
		if (s->policy != NULL)
			s->policy->rcpt_whitelisted = false;
		return POLICY_NEXT;
	default:
		return POLICY_NEXT;
	}
}
