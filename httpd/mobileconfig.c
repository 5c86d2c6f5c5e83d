/* mobileconfig.c — an Apple configuration profile for one address:
 * GET /apple/mobileconfig?emailaddress=ADDR (also /.well-known/mobileconfig),
 * Content-Type application/x-apple-aspen-config, a property list with one
 * com.apple.mail.managed payload (Apple's Configuration Profile Reference).
 *
 * iOS, iPadOS and macOS take one incoming server (IMAP preferred, else POP3)
 * and one outgoing server: the preferred listener of each (implicit TLS first).
 * UseSSL is true for implicit TLS and STARTTLS alike (Apple Mail then negotiates
 * STARTTLS on a STARTTLS port). The UUIDs are derived from the address, so a
 * profile downloaded again replaces the installed one instead of adding a
 * second account. The profile is signed (CMS) with the domain's certificate, or
 * the default one; without a readable certificate it goes out unsigned.
 */
#include "httpd/httpd.h"
#include "httpd/mailconf.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

/* A UUID (version 5 layout) from SHA-256 of "warren-mobileconfig:" what ":" address. */
static void make_uuid(const char *address, const char *what, char out[37])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char input[HTTPD_MAX_ADDRESS + 64];
	int n = snprintf(input, sizeof(input), "warren-mobileconfig:%s:%s", what, address);
	SHA256((const unsigned char *)input, (size_t)n, md);
	md[6] = (unsigned char)((md[6] & 0x0f) | 0x50);
	md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-"
		 "%02X%02X%02X%02X%02X%02X", md[0], md[1], md[2], md[3], md[4], md[5], md[6],
		 md[7], md[8], md[9], md[10], md[11], md[12], md[13], md[14], md[15]);
}

/* Reverse-DNS identifier: "test.example.warren.mail" for example.test. */
static void identifier(const char *domain, char *out, size_t size)
{
	size_t o = 0;
	const char *end = domain + strlen(domain);
	while (end > domain && o + 1 < size) {
		const char *dot = end;
		while (dot > domain && dot[-1] != '.')
			dot--;
		o += (size_t)snprintf(out + o, size - o, "%.*s.", (int)(end - dot), dot);
		if (o >= size)
			o = size - 1;
		end = dot > domain ? dot - 1 : domain;
	}
	snprintf(out + o, size - o, "warren.mail");
}

static void server_keys(struct buf *out, const char *prefix, const char *host,
			const char *address, const struct mail_endpoint *ep)
{
	const char *in = "      ";
	char key[64];
	snprintf(key, sizeof(key), "%sMailServerAuthentication", prefix);
	plist_string(out, in, key, "EmailAuthPassword");
	snprintf(key, sizeof(key), "%sMailServerHostName", prefix);
	plist_string(out, in, key, host);
	buf_printf(out, "%s<key>%sMailServerPortNumber</key>\n%s<integer>%u</integer>\n",
		   in, prefix, in, ep->port);
	buf_printf(out, "%s<key>%sMailServerUseSSL</key>\n%s<%s/>\n", in, prefix, in,
		   ep->tls != CONF_TLS_NONE ? "true" : "false");
	snprintf(key, sizeof(key), "%sMailServerUsername", prefix);
	plist_string(out, in, key, address);
}

static void profile(struct buf *out, const struct warren_config *conf,
		    const struct conf_domain *domain, const char *address,
		    const struct mail_endpoint *in, const struct mail_endpoint *smtp)
{
	char uuid_profile[37], uuid_account[37], ident[300];
	make_uuid(address, "profile", uuid_profile);
	make_uuid(address, "account", uuid_account);
	identifier(domain->name, ident, sizeof(ident));
	const char *host = mail_host(conf, domain);
	const char *i2 = "      ", *i1 = "  ";

	buf_append_str(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		       "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
		       "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
		       "<plist version=\"1.0\">\n<dict>\n"
		       "  <key>PayloadContent</key>\n  <array>\n    <dict>\n");
	plist_string(out, i2, "EmailAccountDescription", address);
	plist_string(out, i2, "EmailAccountName", address);
	plist_string(out, i2, "EmailAccountType",
		     in->proto == MAIL_IMAP ? "EmailTypeIMAP" : "EmailTypePOP");
	plist_string(out, i2, "EmailAddress", address);
	server_keys(out, "Incoming", host, address, in);
	server_keys(out, "Outgoing", host, address, smtp);
	buf_printf(out, "%s<key>OutgoingPasswordSameAsIncomingPassword</key>\n%s<true/>\n", i2, i2);
	plist_string(out, i2, "PayloadDescription", "Mail account settings");
	plist_string(out, i2, "PayloadDisplayName", address);
	buf_printf(out, "%s<key>PayloadIdentifier</key>\n%s<string>", i2, i2);
	xml_escape(out, ident);
	buf_printf(out, ".%s.account</string>\n", uuid_account);
	plist_string(out, i2, "PayloadType", "com.apple.mail.managed");
	plist_string(out, i2, "PayloadUUID", uuid_account);
	buf_printf(out, "%s<key>PayloadVersion</key>\n%s<integer>1</integer>\n", i2, i2);
	buf_printf(out, "%s<key>PreventAppSheet</key>\n%s<false/>\n", i2, i2);
	buf_printf(out, "%s<key>PreventMove</key>\n%s<false/>\n", i2, i2);
	buf_printf(out, "%s<key>SMIMEEnabled</key>\n%s<false/>\n", i2, i2);
	buf_append_str(out, "    </dict>\n  </array>\n");
	plist_string(out, i1, "PayloadDescription", "Sets up your mail account.");
	buf_printf(out, "%s<key>PayloadDisplayName</key>\n%s<string>", i1, i1);
	xml_escape(out, domain->name);
	buf_append_str(out, " mail</string>\n");
	buf_printf(out, "%s<key>PayloadIdentifier</key>\n%s<string>", i1, i1);
	xml_escape(out, ident);
	buf_printf(out, ".%s</string>\n", uuid_profile);
	plist_string(out, i1, "PayloadOrganization", domain->name);
	buf_printf(out, "%s<key>PayloadRemovalDisallowed</key>\n%s<false/>\n", i1, i1);
	plist_string(out, i1, "PayloadType", "Configuration");
	plist_string(out, i1, "PayloadUUID", uuid_profile);
	buf_printf(out, "%s<key>PayloadVersion</key>\n%s<integer>1</integer>\n", i1, i1);
	buf_append_str(out, "</dict>\n</plist>\n");
}

void httpd_mobileconfig(struct http_request *req, struct http_reply *reply)
{
	const char *address = http_arg(req, "emailaddress");
	if (address == NULL || address[0] == '\0') {
		http_error(reply, 400, "A profile is made for one address: "
			   "add ?emailaddress=you@your.domain to the URL.");
		return;
	}
	const struct conf_domain *domain = mail_domain_of_address(req->conf, address);
	if (domain == NULL) {
		http_error(reply, 404, "No mail domain here for that address.");
		return;
	}
	struct mail_endpoint in, smtp;
	if ((mail_endpoints(req->conf, MAIL_IMAP, &in, 1) != 1 &&
	     mail_endpoints(req->conf, MAIL_POP3, &in, 1) != 1) ||
	    mail_endpoints(req->conf, MAIL_SMTP, &smtp, 1) != 1) {
		http_error(reply, 404, "This server has no IMAP/POP3 and submission listeners "
			   "that clients can log in on.");
		return;
	}
	static __thread char disposition[300];
	snprintf(disposition, sizeof(disposition), "attachment; filename=\"%s.mobileconfig\"",
		 domain->name);
	reply->content_type = "application/x-apple-aspen-config";
	reply->disposition = disposition;
	struct buf plist = BUF_INIT(HTTPD_MAX_REPLY);
	profile(&plist, req->conf, domain, address, &in, &smtp);
	const struct conf_tls *tls = domain->tls.cert_file != NULL ? &domain->tls : &req->conf->tls;
	if (tls->cert_file == NULL || tls->key_file == NULL ||
	    httpd_sign_profile(tls->cert_file, tls->key_file, &plist, &reply->body) < 0) {
		buf_clear(&reply->body);
		buf_append(&reply->body, buf_data(&plist), buf_len(&plist));
	}
	buf_free(&plist);
}
