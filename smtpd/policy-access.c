/* policy-access.c — IP access lists of a listener, checked at connect. */
#include "smtpd/policy-checks.h"

#include "conf/conf.h"

/* allow_networks always let in; deny_networks refused; allow_networks alone is an
 * allow-list (docs/policy.md). */
enum policy_action policy_listener_access(struct policy_request *r)
{
	const struct smtp_session *s = r->s;
	const struct conf_listener *l = s->listener;
	if (l->n_allow_networks == 0 && l->n_deny_networks == 0)
		return POLICY_NEXT;
	if (smtp_net_match(s->client_ip, l->allow_networks, l->n_allow_networks))
		return POLICY_NEXT;
	bool denied = l->n_deny_networks == 0 ||
		smtp_net_match(s->client_ip, l->deny_networks, l->n_deny_networks);
	if (!denied)
		return POLICY_NEXT;
	policy_reject(r, 554, "5.7.1 <%s>: Client host rejected: Access denied", s->client_ip);
	r->disconnect = true;
	if (l->deny_action == CONF_DENY_DROP)
		r->drop = true;
	return POLICY_REJECT;
}
