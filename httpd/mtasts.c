/* mtasts.c — the RFC 8461 MTA-STS policy, GET /.well-known/mta-sts.txt on
 * mta-sts.DOMAIN (which must be served over HTTPS with a valid certificate: put
 * the http listener behind a TLS proxy). Mode "testing" until the admin has
 * checked the TLS reports; `warrenctl dns DOMAIN` prints the DNS side. */
#include "httpd/httpd.h"
#include "httpd/mailconf.h"

/* Policy lifetime announced (RFC 8461 suggests weeks once in enforce mode). */
#define MTASTS_MAX_AGE_S 86400

void httpd_mtasts(struct http_request *req, struct http_reply *reply)
{
	const struct conf_domain *domain = mail_domain_of_host(req->conf,
							       http_header(req, "Host"));
	if (domain == NULL) {
		http_error(reply, 404, "No mail domain here for that host.");
		return;
	}
	buf_printf(&reply->body, "version: STSv1\r\nmode: testing\r\nmx: %s\r\nmax_age: %d\r\n",
		   mail_host(req->conf, domain), MTASTS_MAX_AGE_S);
}
