/* route.c — from libmicrohttpd's callbacks to the handlers: the route table,
 * the request body (bounded), the reply, the log line. */
#include "httpd/httpd.h"
#include "common/log.h"
#include "common/pool.h"

#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

static const struct http_route routes[] = {
	/* Thunderbird: the domain's well-known URL, and autoconfig.DOMAIN's */
	{ "/.well-known/autoconfig/mail/config-v1.1.xml", HTTP_GET, ROUTE_AUTOCONFIG,
	  httpd_autoconfig },
	{ "/mail/config-v1.1.xml", HTTP_GET, ROUTE_AUTOCONFIG, httpd_autoconfig },
	/* Outlook (the path is compared case-insensitively: /Autodiscover/Autodiscover.xml) */
	{ "/autodiscover/autodiscover.xml", HTTP_POST, ROUTE_AUTODISCOVER, httpd_autodiscover },
	/* newer Outlook asks first where the POX service is (Autodiscover V2):
	 * /autodiscover/autodiscover.json?Email=…&Protocol=… or …json/v1.0/ADDR?Protocol=… */
	{ "/autodiscover/autodiscover.json", HTTP_GET | HTTP_PREFIX, ROUTE_AUTODISCOVER,
	  httpd_autodiscover_json },
	/* Apple configuration profile */
	{ "/apple/mobileconfig", HTTP_GET, ROUTE_MOBILECONFIG, httpd_mobileconfig },
	{ "/.well-known/mobileconfig", HTTP_GET, ROUTE_MOBILECONFIG, httpd_mobileconfig },
	/* RFC 8461 policy, served on mta-sts.DOMAIN */
	{ "/.well-known/mta-sts.txt", HTTP_GET, ROUTE_MTASTS, httpd_mtasts },
	{ "/metrics", HTTP_GET, ROUTE_METRICS, httpd_metrics },
};

static const char *const route_names[ROUTE_COUNT] = {
	"autoconfig", "autodiscover", "mobileconfig", "mta-sts", "metrics", "other",
};

const char *httpd_route_name(enum httpd_route_id id)
{
	return id < ROUTE_COUNT ? route_names[id] : "other";
}

const struct http_route *httpd_route_find(const char *path)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		size_t n = strlen(routes[i].path);
		if (strcasecmp(routes[i].path, path) == 0 ||
		    ((routes[i].methods & HTTP_PREFIX) && strncasecmp(routes[i].path, path, n) == 0 &&
		     path[n] == '/'))
			return &routes[i];
	}
	return NULL;
}

const char *http_arg(struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_header(struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

void http_error(struct http_reply *reply, unsigned status, const char *text)
{
	reply->status = status;
	reply->content_type = "text/plain; charset=utf-8";
	buf_clear(&reply->body);
	buf_printf(&reply->body, "%s\n", text);
}

static void client_ip(struct MHD_Connection *conn, char *out, size_t size)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	snprintf(out, size, "unknown");
	if (info == NULL || info->client_addr == NULL)
		return;
	socklen_t len = info->client_addr->sa_family == AF_INET6 ?
		sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	if (getnameinfo(info->client_addr, len, out, (socklen_t)size, NULL, 0,
			NI_NUMERICHOST) != 0)
		snprintf(out, size, "unknown");
}

static enum httpd_status_class status_class(unsigned status)
{
	return status < 300 ? STATUS_2XX : status < 400 ? STATUS_3XX :
		status < 500 ? STATUS_4XX : STATUS_5XX;
}

static enum MHD_Result send_reply(struct http_request *req, const struct http_route *route,
				  struct http_reply *reply)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		buf_len(&reply->body), (void *)buf_data(&reply->body), MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, reply->content_type);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	if (reply->disposition != NULL)
		MHD_add_response_header(resp, "Content-Disposition", reply->disposition);
	if (reply->allow != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, reply->allow);
	enum MHD_Result ret = MHD_queue_response(req->conn, reply->status, resp);
	MHD_destroy_response(resp);

	enum httpd_route_id id = route != NULL ? route->id : ROUTE_NOTFOUND;
	__atomic_add_fetch(&req->httpd->requests[id][status_class(reply->status)], 1,
			   __ATOMIC_RELAXED);
	char path[128];
	log_printable(path, sizeof(path), req->path, strlen(req->path));
	log_info("%s: client=%s, method=%s, path=%s, status=%u, size=%zu", req->listener,
		 req->client_ip, req->method, path, reply->status, buf_len(&reply->body));
	return ret;
}

static void run_handler(struct http_request *req, const struct http_route *route,
			struct http_reply *reply)
{
	bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
	bool post = strcmp(req->method, "POST") == 0;
	if (route == NULL) {
		http_error(reply, 404, "Not found.");
	} else if (!((get && (route->methods & HTTP_GET)) ||
		     (post && (route->methods & HTTP_POST)))) {
		http_error(reply, 405, "Method not allowed.");
		reply->allow = (route->methods & HTTP_POST) ? "POST" : "GET, HEAD";
	} else if (req->body_too_big) {
		http_error(reply, 413, "Request body too large.");
	} else {
		route->handle(req, reply);
	}
}

enum MHD_Result httpd_access_cb(void *cls, struct MHD_Connection *conn, const char *url,
				const char *method, const char *version,
				const char *upload_data, size_t *upload_data_size,
				void **req_cls)
{
	struct httpd_listener *hl = cls;
	struct http_request *req = *req_cls;
	if (req == NULL) {
		/* the headers are in: take the configuration for this request */
		req = x_calloc(1, sizeof(*req));
		req->httpd = hl->httpd;
		req->listener = hl->name;
		req->conn = conn;
		req->method = method;
		req->path = url;
		buf_init(&req->body, HTTPD_MAX_BODY);
		client_ip(conn, req->client_ip, sizeof(req->client_ip));
		pthread_mutex_lock(&hl->httpd->lock);
		req->conf = conf_ref(hl->httpd->conf);
		pthread_mutex_unlock(&hl->httpd->lock);
		*req_cls = req;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		/* past the limit the rest is read and dropped, then answered with 413 */
		if (!req->body_too_big &&
		    buf_append(&req->body, upload_data, *upload_data_size) < 0)
			req->body_too_big = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->started)
		return MHD_NO;
	req->started = true;
	const struct http_route *route = httpd_route_find(url);
	struct http_reply reply = { .status = 200, .content_type = "text/plain; charset=utf-8",
				    .body = BUF_INIT(HTTPD_MAX_REPLY) };
	run_handler(req, route, &reply);
	enum MHD_Result ret = send_reply(req, route, &reply);
	buf_free(&reply.body);
	return ret;
}

void httpd_completed_cb(void *cls, struct MHD_Connection *conn, void **req_cls,
			enum MHD_RequestTerminationCode toe)
{
	struct http_request *req = *req_cls;
	if (req == NULL)
		return;
	conf_unref(&req->conf);
	buf_free(&req->body);
	free(req);
	*req_cls = NULL;
}
