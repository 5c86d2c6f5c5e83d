/* autodiscover.c — Outlook's POX autodiscover: POST /autodiscover/autodiscover.xml
 * with <Autodiscover><Request><EMailAddress>ADDR</EMailAddress>
 * <AcceptableResponseSchema>…/outlook/responseschema/2006a</…></Request>, answered
 * with the "outlook" response schema: one Protocol per type (IMAP, POP3, SMTP),
 * the preferred listener of each.
 *
 * The client trap: Outlook takes <Encryption>TLS</Encryption> as STARTTLS, so an
 * implicit-TLS port gets <SSL>on</SSL> only, a STARTTLS port gets
 * <Encryption>TLS</Encryption>, a plaintext one <SSL>off</SSL>.
 *
 * The request is parsed with expat (namespaces resolved, no external entities,
 * expat's amplification limits); it is at most HTTPD_MAX_BODY bytes.
 */
#include "httpd/httpd.h"
#include "httpd/mailconf.h"
#include "common/log.h"

#include <expat.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define NS_RESPONSE "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
#define NS_OUTLOOK "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
/* Deepest element nesting read in a request. */
#define AD_MAX_DEPTH 16

struct ad_parse {
	int depth;
	char path[AD_MAX_DEPTH][32];      /* local names from the root */
	struct buf *text;                 /* collecting an element's text, or NULL */
	struct buf address;
	struct buf schema;
	bool overflow;                    /* a value passed its bound: the request is invalid */
};

static const char *local_name(const char *name)
{
	const char *sp = strrchr(name, ' ');   /* "namespace localname" */
	return sp != NULL ? sp + 1 : name;
}

static void XMLCALL start_cb(void *data, const XML_Char *name, const XML_Char **attrs)
{
	struct ad_parse *p = data;
	p->text = NULL;
	if (p->depth < AD_MAX_DEPTH)
		snprintf(p->path[p->depth], sizeof(p->path[0]), "%s", local_name(name));
	p->depth++;
	if (p->depth == 3 && strcasecmp(p->path[0], "Autodiscover") == 0 &&
	    strcasecmp(p->path[1], "Request") == 0) {
		if (strcasecmp(p->path[2], "EMailAddress") == 0)
			p->text = &p->address;
		else if (strcasecmp(p->path[2], "AcceptableResponseSchema") == 0)
			p->text = &p->schema;
		if (p->text != NULL)
			buf_clear(p->text);
	}
}

static void XMLCALL end_cb(void *data, const XML_Char *name)
{
	struct ad_parse *p = data;
	p->text = NULL;
	p->depth--;
}

static void XMLCALL text_cb(void *data, const XML_Char *s, int len)
{
	struct ad_parse *p = data;
	if (p->text != NULL && buf_append(p->text, s, (size_t)len) < 0)
		p->overflow = true;
}

static void trim(struct buf *b)
{
	const char *s = buf_cstr(b);
	size_t len = strlen(s), start = 0;
	while (start < len && strchr(" \t\r\n", s[start]) != NULL)
		start++;
	while (len > start && strchr(" \t\r\n", s[len - 1]) != NULL)
		len--;
	char tmp[HTTPD_MAX_ADDRESS + 1];
	size_t n = len - start < HTTPD_MAX_ADDRESS ? len - start : HTTPD_MAX_ADDRESS;
	memcpy(tmp, s + start, n);
	tmp[n] = '\0';
	buf_clear(b);
	buf_append_str(b, tmp);
}

static int parse(const struct buf *body, struct ad_parse *p)
{
	XML_Parser parser = XML_ParserCreateNS(NULL, ' ');
	if (parser == NULL)
		return -1;
	XML_SetUserData(parser, p);
	XML_SetElementHandler(parser, start_cb, end_cb);
	XML_SetCharacterDataHandler(parser, text_cb);
	int ok = XML_Parse(parser, buf_data(body), (int)buf_len(body), 1) == XML_STATUS_OK;
	XML_ParserFree(parser);
	if (!ok)
		return -1;
	trim(&p->address);
	trim(&p->schema);
	return 0;
}

static void error_doc(struct http_reply *reply, unsigned status, int code, const char *msg)
{
	char when[16];
	time_t now = time(NULL);
	struct tm tm;
	strftime(when, sizeof(when), "%H:%M:%S", gmtime_r(&now, &tm));
	reply->status = status;
	reply->content_type = "application/xml; charset=utf-8";
	buf_clear(&reply->body);
	buf_printf(&reply->body, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
		   "<Autodiscover xmlns=\"" NS_RESPONSE "\">\n  <Response>\n"
		   "    <Error Time=\"%s\" Id=\"%ld\">\n      <ErrorCode>%d</ErrorCode>\n"
		   "      <Message>%s</Message>\n      <DebugData />\n    </Error>\n"
		   "  </Response>\n</Autodiscover>\n", when, (long)(now % 1000000000), code, msg);
}

static const char *type_name(enum mail_proto proto)
{
	return proto == MAIL_IMAP ? "IMAP" : proto == MAIL_POP3 ? "POP3" : "SMTP";
}

static void protocol(struct buf *out, const char *host, const char *address,
		     const struct mail_endpoint *ep)
{
	buf_printf(out, "      <Protocol>\n        <Type>%s</Type>\n        <Server>",
		   type_name(ep->proto));
	xml_escape(out, host);
	buf_printf(out, "</Server>\n        <Port>%u</Port>\n"
		   "        <DomainRequired>off</DomainRequired>\n        <LoginName>", ep->port);
	xml_escape(out, address);
	buf_append_str(out, "</LoginName>\n        <SPA>off</SPA>\n");
	switch (ep->tls) {
	case CONF_TLS_IMPLICIT:
		buf_append_str(out, "        <SSL>on</SSL>\n");
		break;
	case CONF_TLS_STARTTLS:
		buf_append_str(out, "        <Encryption>TLS</Encryption>\n");
		break;
	case CONF_TLS_NONE:
		buf_append_str(out, "        <SSL>off</SSL>\n");
		break;
	}
	buf_append_str(out, "        <AuthRequired>on</AuthRequired>\n");
	if (ep->proto == MAIL_SMTP)
		buf_append_str(out, "        <UsePOPAuth>on</UsePOPAuth>\n"
			       "        <SMTPLast>off</SMTPLast>\n");
	buf_append_str(out, "      </Protocol>\n");
}

static void settings_doc(struct buf *out, const struct warren_config *conf,
			 const struct conf_domain *domain, const char *address)
{
	buf_append_str(out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
		       "<Autodiscover xmlns=\"" NS_RESPONSE "\">\n"
		       "  <Response xmlns=\"" NS_OUTLOOK "\">\n    <User>\n      <DisplayName>");
	xml_escape(out, address);
	buf_append_str(out, "</DisplayName>\n    </User>\n    <Account>\n"
		       "      <AccountType>email</AccountType>\n      <Action>settings</Action>\n");
	static const enum mail_proto order[] = { MAIL_IMAP, MAIL_POP3, MAIL_SMTP };
	for (size_t i = 0; i < 3; i++) {
		struct mail_endpoint ep;
		if (mail_endpoints(conf, order[i], &ep, 1) == 1)
			protocol(out, mail_host(conf, domain), address, &ep);
	}
	buf_append_str(out, "    </Account>\n  </Response>\n</Autodiscover>\n");
}

void httpd_autodiscover(struct http_request *req, struct http_reply *reply)
{
	struct ad_parse p = { .address = BUF_INIT(HTTPD_MAX_ADDRESS + 64),
			      .schema = BUF_INIT(1024) };
	if (parse(&req->body, &p) < 0) {
		error_doc(reply, 400, 600, "Invalid Request");
	} else if (buf_len(&p.address) == 0 || p.overflow) {
		error_doc(reply, 200, 600, "Invalid Request");
	} else if (buf_len(&p.schema) > 0 && strcmp(buf_cstr(&p.schema), NS_OUTLOOK) != 0) {
		/* ActiveSync (mobilesync) and others: not served here */
		error_doc(reply, 200, 601, "Provider is not available");
	} else {
		const char *address = buf_cstr(&p.address);
		const struct conf_domain *domain = mail_domain_of_address(req->conf, address);
		if (domain == NULL) {
			http_error(reply, 404, "No mail domain here for that address.");
		} else {
			reply->content_type = "application/xml; charset=utf-8";
			settings_doc(&reply->body, req->conf, domain, address);
		}
	}
	buf_free(&p.address);
	buf_free(&p.schema);
}

/* ---- Autodiscover V2 (JSON): where the POX service is --------------------------------- */

/* The e-mail address of a V2 request: ?Email= or the path's …/v1.0/ADDR. */
static const char *v2_address(struct http_request *req)
{
	const char *email = http_arg(req, "Email");
	if (email != NULL)
		return email;
	const char *v = strstr(req->path, "/v1.0/");
	return v != NULL && v[6] != '\0' ? v + 6 : NULL;
}

/* The host for the URL: the Host header when it names one of our domains (the
 * client reached us under that name), else the domain's mail host. */
static void v2_host(struct http_request *req, const struct conf_domain *domain, char *out,
		    size_t size)
{
	const char *host = http_header(req, "Host");
	if (host != NULL && mail_domain_of_host(req->conf, host) != NULL) {
		size_t n = strcspn(host, ":");
		snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), host);
		for (char *p = out; *p != '\0'; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
				*p = '-';
		return;
	}
	snprintf(out, size, "%s", mail_host(req->conf, domain));
}

void httpd_autodiscover_json(struct http_request *req, struct http_reply *reply)
{
	const char *protocol = http_arg(req, "Protocol");
	const char *address = v2_address(req);
	const struct conf_domain *domain = NULL;
	if (address != NULL && (domain = mail_domain_of_address(req->conf, address)) == NULL) {
		http_error(reply, 404, "No mail domain here for that address.");
		return;
	}
	reply->content_type = "application/json; charset=utf-8";
	if (protocol == NULL || strcasecmp(protocol, "AutodiscoverV1") != 0) {
		/* ActiveSync, EWS, REST: not spoken here */
		reply->status = 400;
		buf_append_str(&reply->body, "{\"ErrorCode\":\"InvalidProtocol\",\"ErrorMessage\":"
			       "\"The given protocol value is invalid. Supported values are "
			       "'AutodiscoverV1'\"}\n");
		return;
	}
	char host[256];
	v2_host(req, domain, host, sizeof(host));
	buf_printf(&reply->body, "{\"Protocol\":\"AutodiscoverV1\",\"Url\":"
		   "\"https://%s/Autodiscover/Autodiscover.xml\"}\n", host);
}
