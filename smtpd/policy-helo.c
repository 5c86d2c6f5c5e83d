/* policy-helo.c — checks of the HELO/EHLO name (helo_checks { }, docs/policy.md).
 *
 * Run at MAIL, not at HELO, as Postfix's smtpd_delay_reject does: by then a client
 * has had its chance to authenticate (submission clients greet with whatever
 * their laptop is called), and the refusal is logged with the sender. The check is
 * anti-spam: authenticated, trusted and whitelisted clients skip it. Whether a
 * HELO is needed at all (helo_checks.require) is decided by the command dispatcher
 * (smtp-session.c).
 */
#include "smtpd/policy-checks.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

enum helo_kind { HELO_INVALID, HELO_LITERAL, HELO_SHORT, HELO_FQDN };

/* "[192.0.2.1]" or "[IPv6:2001:db8::1]": the address in text form into ip. */
static bool address_literal(const char *name, char *ip, size_t size)
{
	size_t len = strlen(name);
	unsigned char bin[16];
	if (len < 3 || name[0] != '[' || name[len - 1] != ']' || len - 2 >= size)
		return false;
	memcpy(ip, name + 1, len - 2);
	ip[len - 2] = '\0';
	if (strncasecmp(ip, "IPv6:", 5) == 0) {
		memmove(ip, ip + 5, strlen(ip + 5) + 1);
		return inet_pton(AF_INET6, ip, bin) == 1;
	}
	return inet_pton(AF_INET, ip, bin) == 1;
}

static enum helo_kind classify(const char *name)
{
	char ip[64];
	if (name[0] == '[')
		return address_literal(name, ip, sizeof(ip)) ? HELO_LITERAL : HELO_INVALID;
	size_t len = strlen(name), label = 0, labels = 0;
	if (len > 0 && name[len - 1] == '.')
		len--;   /* a trailing dot: an absolute name */
	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return HELO_INVALID;
	bool all_numeric = true;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '.') {
			if (label == 0 || name[i - 1] == '-')
				return HELO_INVALID;
			label = 0;
			labels++;
			continue;
		}
		if (!(isalnum(c) || c == '-') || (label == 0 && c == '-') || ++label > 63)
			return HELO_INVALID;
		if (!isdigit(c))
			all_numeric = false;
	}
	if (name[len - 1] == '-')
		return HELO_INVALID;
	/* a bare address ("192.0.2.1") is neither a name nor a literal (RFC 5321 4.1.3) */
	if (all_numeric)
		return HELO_INVALID;
	return labels == 0 ? HELO_SHORT : HELO_FQDN;
}

static bool same_name(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && la > 0 && strncasecmp(a, b, la) == 0;
}

/* Our host name, one of our domains, or the address the client connected to. */
static bool our_name(const struct smtp_session *s, const char *name)
{
	const struct warren_config *conf = s->conf;
	char ip[64];
	if (address_literal(name, ip, sizeof(ip))) {
		unsigned char a[16], b[16];
		const char *local = net_conn_local_ip(s->conn);
		if (local == NULL)
			return false;
		if (strncasecmp(local, "::ffff:", 7) == 0)
			local += 7;
		int af = strchr(ip, ':') != NULL ? AF_INET6 : AF_INET;
		bool local_v4 = strchr(local, ':') == NULL;
		return local_v4 == (af == AF_INET) &&
			inet_pton(af, ip, a) == 1 && inet_pton(af, local, b) == 1 &&
			memcmp(a, b, af == AF_INET ? 4 : 16) == 0;
	}
	if (conf->hostname != NULL && same_name(name, conf->hostname))
		return true;
	for (size_t i = 0; i < conf->n_domains; i++)
		if (same_name(name, conf->domains[i].name))
			return true;
	return false;
}

enum policy_action policy_helo_checks(struct policy_request *r)
{
	const struct smtp_session *s = r->s;
	const struct conf_helo_checks *hc = &s->conf->helo_checks;
	const char *helo = s->helo;
	char printable[SMTP_HELO_MAX + 1];
	if (helo[0] == '\0' || (!hc->reject_invalid && !hc->reject_our_name))
		return POLICY_NEXT;
	log_printable(printable, sizeof(printable), helo, strlen(helo));
	if (hc->reject_invalid) {
		enum helo_kind k = classify(helo);
		if (k == HELO_INVALID) {
			policy_reject(r, 501, "5.5.2 <%s>: Helo command rejected: Invalid name",
				      printable);
			return POLICY_REJECT;
		}
		if (k == HELO_SHORT) {
			policy_reject(r, 504, "5.5.2 <%s>: Helo command rejected: need "
				      "fully-qualified hostname", printable);
			return POLICY_REJECT;
		}
	}
	if (hc->reject_our_name && our_name(s, helo)) {
		policy_reject(r, 554, "5.7.1 <%s>: Helo command rejected: You are not me",
			      printable);
		return POLICY_REJECT;
	}
	return POLICY_NEXT;
}
