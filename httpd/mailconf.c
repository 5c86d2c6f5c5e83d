/* mailconf.c — the mail endpoints and host names clients are told about. */
#include "httpd/mailconf.h"
#include "httpd/httpd.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

const char *mail_proto_name(enum mail_proto proto)
{
	switch (proto) {
	case MAIL_IMAP: return "imap";
	case MAIL_POP3: return "pop3";
	case MAIL_SMTP: return "smtp";
	}
	return "?";
}

static bool serves(const struct conf_listener *l, enum mail_proto proto)
{
	switch (proto) {
	case MAIL_IMAP: return l->service == CONF_SERVICE_IMAP;
	case MAIL_POP3: return l->service == CONF_SERVICE_POP3;
	case MAIL_SMTP: return l->service == CONF_SERVICE_SUBMISSION;
	}
	return false;
}

/* Lower rank: told first. Plaintext only where passwords are allowed without TLS. */
static int rank(const struct conf_listener *l)
{
	switch (l->tls) {
	case CONF_TLS_IMPLICIT: return 0;
	case CONF_TLS_STARTTLS: return 1;
	case CONF_TLS_NONE: return l->auth_plaintext ? 2 : -1;
	}
	return -1;
}

size_t mail_endpoints(const struct warren_config *conf, enum mail_proto proto,
		      struct mail_endpoint *out, size_t max)
{
	size_t n = 0;
	for (int r = 0; r <= 2; r++)
		for (size_t i = 0; i < conf->n_listeners && n < max; i++) {
			const struct conf_listener *l = &conf->listeners[i];
			if (!serves(l, proto) || rank(l) != r)
				continue;
			out[n++] = (struct mail_endpoint){ proto, l->port, l->tls, l->name };
		}
	return n;
}

const char *mail_host(const struct warren_config *conf, const struct conf_domain *domain)
{
	if (domain != NULL && domain->n_hostnames > 0)
		return domain->hostnames[0];
	return conf->hostname;
}

static const struct conf_domain *local_domain(const struct warren_config *conf,
					      const char *name)
{
	const struct conf_domain *d = conf_find_domain(conf, name);
	return d != NULL && d->type == CONF_DOMAIN_LOCAL ? d : NULL;
}

const struct conf_domain *mail_domain_of_address(const struct warren_config *conf,
						 const char *address)
{
	size_t len = strlen(address);
	const char *at = strrchr(address, '@');
	if (len == 0 || len > 320 || at == NULL || at == address || at[1] == '\0')
		return NULL;
	for (const char *p = address; *p != '\0';) {
		unsigned char c = (unsigned char)*p;
		if (c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == '"' || c == '\\' ||
		    c == '(' || c == ')' || c == ',' || c == ';')
			return NULL;
		size_t n = xml_char_len(p);   /* SMTPUTF8 addresses: valid UTF-8 only */
		if (n == 0)
			return NULL;
		p += n;
	}
	return local_domain(conf, at + 1);
}

const struct conf_domain *mail_domain_of_host(const struct warren_config *conf,
					      const char *host)
{
	if (host == NULL)
		return NULL;
	char name[256];
	size_t n = 0;
	if (host[0] == '[')
		return NULL;   /* an IPv6 literal names no domain */
	while (host[n] != '\0' && host[n] != ':' && n < sizeof(name) - 1) {
		name[n] = (char)tolower((unsigned char)host[n]);
		n++;
	}
	if (host[n] != '\0' && host[n] != ':')
		return NULL;   /* longer than any host name: never cut into a known one */
	name[n] = '\0';
	while (n > 0 && name[n - 1] == '.')
		name[--n] = '\0';
	static const char *const prefixes[] = { "", "autoconfig.", "autodiscover.", "mta-sts." };
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t pl = strlen(prefixes[i]);
		if (strncmp(name, prefixes[i], pl) == 0 && name[pl] != '\0') {
			const struct conf_domain *d = local_domain(conf, name + pl);
			if (d != NULL)
				return d;
		}
	}
	for (size_t i = 0; i < conf->n_domains; i++) {
		const struct conf_domain *d = &conf->domains[i];
		for (size_t h = 0; h < d->n_hostnames; h++)
			if (d->type == CONF_DOMAIN_LOCAL && strcasecmp(d->hostnames[h], name) == 0)
				return d;
	}
	return NULL;
}
