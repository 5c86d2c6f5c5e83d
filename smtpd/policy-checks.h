/* policy-checks.h — the checks of the policy chain (policy.c's table), one
 * module each (smtpd/policy-*.c). See policy.h for the contract. */
#ifndef WARREN_SMTPD_POLICY_CHECKS_H
#define WARREN_SMTPD_POLICY_CHECKS_H

#include "smtpd/policy.h"

/* policy-access.c: the listener's allow_networks / deny_networks (CONNECT). */
enum policy_action policy_listener_access(struct policy_request *r);

/* policy-relay.c: a recipient with sender-specified routing ('%', '!', a quoted
 * '@' in its local part) from a client that may not relay (smtp-rcpt.c). */
bool policy_relay_routed(const struct smtp_session *s, const char *addr);
/* policy-lists.c: whitehosts (CONNECT, EHLO); white and black lists of HELO,
 * sender, recipient, client (EHLO, MAIL, RCPT, DATA). */
enum policy_action policy_whitehost(struct policy_request *r);
enum policy_action policy_lists(struct policy_request *r);
/* The domain of the RCPT's recipient when it is one of ours (its per-domain
 * overrides apply, docs/policy.md "Per-domain overrides"), else NULL. */
const struct conf_domain *policy_rcpt_domain(const struct policy_request *r);
/* policy-helo.c: helo_checks { } (MAIL). */
enum policy_action policy_helo_checks(struct policy_request *r);
/* policy-rbl.c: DNSBL/DNSWL on the client, RHSBL on the sender domain (RCPT;
 * asynchronous); policy_rbl_free frees the session's verdicts. */
enum policy_action policy_rbl(struct policy_request *r);
void policy_rbl_free(struct policy_session *p);

/* policy-spf.c: SPF of MAIL FROM (or HELO for <>), spf { } (MAIL; asynchronous);
 * with a domain's spf { } the action is taken per recipient (RCPT). */
enum policy_action policy_spf(struct policy_request *r);
/* policy-greylist.c: greylisting of (network or SPF domain, sender, recipient),
 * greylist { } (RCPT; asynchronous, in the store). */
enum policy_action policy_greylist(struct policy_request *r);

/* policy-rate.c: connections per client address (CONNECT), transactions and
 * recipients per authenticated user (MAIL, RCPT), rate { }; in the store. */
enum policy_action policy_rate_limit(struct policy_request *r);
/* policy-content.c: filter { } rules on headers, body, attachments (DATA; once
 * per message, asynchronous). */
enum policy_action policy_content_filter(struct policy_request *r);

#endif
