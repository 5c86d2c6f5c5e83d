/* policy-relay.c — relay protection against sender-specified routing (the classic
 * open-relay test battery; docs/policy.md "Relay protection").
 *
 * smtp-rcpt.c's resolve() already refuses other domains (and address literals,
 * which are never ours) for clients that may not relay. What remains are the
 * local parts that route somewhere else once a gateway, a forward or a downstream
 * server rewrites them: "user%other.test@", "other.test!user@" and quoted local
 * parts holding '@' ("\"user@other.test\"@"). warren never rewrites them, but a
 * catch-all, a forward or a remote domain's relay_host might, so from clients
 * that may not relay they are refused as relaying (Postfix's
 * allow_untrusted_routing = no), whatever the domain.
 *
 * Source routes ("@a,@b:user@domain") are removed by smtp_parse_path() (RFC 5321
 * 4.1.2 and Appendix C: ignore them); the address left is judged as any other.
 */
#include "smtpd/policy-checks.h"

#include <string.h>

/* The local part of addr (up to its last '@') carries '%', '!' or '@'. */
static bool routed_local_part(const char *addr)
{
	const char *at = strrchr(addr, '@');
	if (at == NULL)
		return false;
	for (const char *p = addr; p < at; p++)
		if (*p == '%' || *p == '!' || *p == '@')
			return true;
	return false;
}

bool policy_relay_routed(const struct smtp_session *s, const char *addr)
{
	return !smtp_relay_allowed(s) && routed_local_part(addr);
}
