/* autoconfig.c — Thunderbird's autoconfig (clientConfig version 1.1, the ISPDB
 * format): GET /.well-known/autoconfig/mail/config-v1.1.xml or
 * /mail/config-v1.1.xml[?emailaddress=ADDR].
 *
 * With emailaddress the answer is for that address's domain (404 when the
 * domain is not a local domain here). Without it (Thunderbird for Android,
 * Geary) the domain comes from the Host header (DOMAIN, autoconfig.DOMAIN or a
 * domain's host name); when the Host names none, the answer is the generic one
 * for every local domain, never an error. The user name is always
 * %EMAILADDRESS%, which the client fills in: logins are full addresses.
 */
#include "httpd/httpd.h"
#include "httpd/mailconf.h"

#include <string.h>

static const char *socket_type(enum conf_tls_mode tls)
{
	switch (tls) {
	case CONF_TLS_IMPLICIT: return "SSL";
	case CONF_TLS_STARTTLS: return "STARTTLS";
	case CONF_TLS_NONE: return "plain";
	}
	return "plain";
}

static void server(struct buf *out, const char *element, const char *host,
		   const struct mail_endpoint *ep)
{
	buf_printf(out, "    <%s type=\"%s\">\n      <hostname>", element,
		   mail_proto_name(ep->proto));
	xml_escape(out, host);
	buf_printf(out, "</hostname>\n      <port>%u</port>\n"
		   "      <socketType>%s</socketType>\n"
		   "      <authentication>password-cleartext</authentication>\n"
		   "      <username>%%EMAILADDRESS%%</username>\n    </%s>\n",
		   ep->port, socket_type(ep->tls), element);
}

static void servers(struct buf *out, const struct warren_config *conf, const char *host)
{
	struct mail_endpoint eps[MAIL_ENDPOINTS_MAX];
	static const enum mail_proto incoming[] = { MAIL_IMAP, MAIL_POP3 };
	for (size_t p = 0; p < 2; p++) {
		size_t n = mail_endpoints(conf, incoming[p], eps, MAIL_ENDPOINTS_MAX);
		for (size_t i = 0; i < n; i++)
			server(out, "incomingServer", host, &eps[i]);
	}
	size_t n = mail_endpoints(conf, MAIL_SMTP, eps, MAIL_ENDPOINTS_MAX);
	for (size_t i = 0; i < n; i++)
		server(out, "outgoingServer", host, &eps[i]);
}

static void document(struct buf *out, const struct warren_config *conf,
		     const struct conf_domain *domain)
{
	const char *id = domain != NULL ? domain->name : conf->hostname;
	buf_append_str(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		       "<clientConfig version=\"1.1\">\n  <emailProvider id=\"");
	xml_escape(out, id);
	buf_append_str(out, "\">\n");
	for (size_t i = 0; i < conf->n_domains; i++) {
		const struct conf_domain *d = &conf->domains[i];
		if (d->type != CONF_DOMAIN_LOCAL || (domain != NULL && d != domain))
			continue;
		buf_append_str(out, "    <domain>");
		xml_escape(out, d->name);
		buf_append_str(out, "</domain>\n");
	}
	buf_append_str(out, "    <displayName>");
	xml_escape(out, domain != NULL ? domain->name : conf->hostname);
	buf_append_str(out, " mail</displayName>\n    <displayShortName>");
	xml_escape(out, id);
	buf_append_str(out, "</displayShortName>\n");
	servers(out, conf, mail_host(conf, domain));
	buf_append_str(out, "  </emailProvider>\n</clientConfig>\n");
}

void httpd_autoconfig(struct http_request *req, struct http_reply *reply)
{
	const char *address = http_arg(req, "emailaddress");
	const struct conf_domain *domain;
	if (address != NULL && address[0] != '\0') {
		domain = mail_domain_of_address(req->conf, address);
		if (domain == NULL) {
			http_error(reply, 404, "No mail domain here for that address.");
			return;
		}
	} else {
		domain = mail_domain_of_host(req->conf, http_header(req, "Host"));
	}
	reply->content_type = "application/xml; charset=utf-8";
	document(&reply->body, req->conf, domain);
}
