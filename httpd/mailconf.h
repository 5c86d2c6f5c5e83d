/* mailconf.h — private to httpd/: what a mail client needs to know, derived from
 * the running configuration (listeners, TLS modes, domain host names). Every
 * auto-configuration format (autoconfig.c, autodiscover.c, mobileconfig.c) is a
 * rendering of this. */
#ifndef WARREN_HTTPD_MAILCONF_H
#define WARREN_HTTPD_MAILCONF_H

#include "conf/conf.h"

#include <stdbool.h>
#include <stddef.h>

enum mail_proto { MAIL_IMAP, MAIL_POP3, MAIL_SMTP };

struct mail_endpoint {
	enum mail_proto proto;
	unsigned port;
	enum conf_tls_mode tls;
	const char *listener;
};

/* Most endpoints of one protocol described. */
#define MAIL_ENDPOINTS_MAX 16

/* The endpoints of proto where a user can log in, preferred first: implicit TLS
 * (RFC 8314), then STARTTLS, then plaintext (only with auth_plaintext). SMTP
 * means the submission listeners (never the MX port). Returns the count. */
size_t mail_endpoints(const struct warren_config *conf, enum mail_proto proto,
		      struct mail_endpoint *out, size_t max);

/* The host name clients use for the domain: its first `hostnames` entry, else
 * the global hostname. */
const char *mail_host(const struct warren_config *conf, const struct conf_domain *domain);

/* The local domain of a well-formed address ("alice@example.test"), or NULL when
 * the address is malformed or its domain is not a local domain here. */
const struct conf_domain *mail_domain_of_address(const struct warren_config *conf,
						 const char *address);
/* The local domain a Host header names: the domain itself, "autoconfig.",
 * "autodiscover." or "mta-sts." + the domain, or one of its hostnames. NULL:
 * none. The port is ignored. */
const struct conf_domain *mail_domain_of_host(const struct warren_config *conf,
					      const char *host);
/* "imap", "pop3", "smtp". */
const char *mail_proto_name(enum mail_proto proto);

#endif
