/* httpd.h — private to httpd/: the HTTP daemon warren-httpd.
 *
 * libmicrohttpd owns the sockets and runs one internal polling thread per
 * listener (docs/httpd.md says why); the main thread only waits for signals
 * (SIGHUP reload, SIGTERM stop). Handlers run on those threads: they take a
 * reference to the current configuration snapshot under the lock and keep it
 * for the request, so a reload never changes settings under a request.
 *
 * A request is routed by path (route.c) to a handler that fills a reply; every
 * handler derives what it says from the running configuration (mailconf.c).
 */
#ifndef WARREN_HTTPD_H
#define WARREN_HTTPD_H

#include "common/buf.h"
#include "conf/conf.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

/* Largest request body read (an autodiscover POST is ~400 bytes); more: 413. */
#define HTTPD_MAX_BODY (64 * 1024)
/* Largest reply built (a mobileconfig or /metrics of a big config). */
#define HTTPD_MAX_REPLY (4 * 1024 * 1024)
/* Longest e-mail address accepted in a request (RFC 5321: 64 + 1 + 255). */
#define HTTPD_MAX_ADDRESS 320
/* Memory libmicrohttpd may use per connection (headers, URL). */
#define HTTPD_CONN_MEMORY (32 * 1024)
/* Idle timeout when the listener does not set one. */
#define HTTPD_DEFAULT_TIMEOUT_S 30

enum httpd_route_id {
	ROUTE_AUTOCONFIG,
	ROUTE_AUTODISCOVER,
	ROUTE_MOBILECONFIG,
	ROUTE_MTASTS,
	ROUTE_METRICS,
	ROUTE_NOTFOUND,
	ROUTE_COUNT,
};

/* Status classes counted per route for /metrics. */
enum httpd_status_class { STATUS_2XX, STATUS_3XX, STATUS_4XX, STATUS_5XX, STATUS_COUNT };

struct httpd {
	char *config_path;
	pthread_mutex_t lock;
	struct warren_config *conf;        /* current snapshot, under lock */
	struct httpd_listener *listeners;
	size_t n_listeners;
	time_t started;
	time_t reloaded;
	unsigned long reloads;
	unsigned long requests[ROUTE_COUNT][STATUS_COUNT];   /* atomic */
};

/* The context of one libmicrohttpd daemon: one per listener. */
struct httpd_listener {
	struct httpd *httpd;
	const char *name;
	struct MHD_Daemon *daemon;
};

struct http_request {
	struct httpd *httpd;
	struct warren_config *conf;        /* reference held for the request */
	struct MHD_Connection *conn;
	const char *method;                /* "GET", "HEAD", "POST", ... */
	const char *path;
	const char *listener;              /* listener name the request came in on */
	char client_ip[64];
	struct buf body;                   /* request body, at most HTTPD_MAX_BODY */
	bool body_too_big;
	bool started;                      /* the handler ran once the body was in */
};

struct http_reply {
	unsigned status;
	const char *content_type;
	const char *disposition;           /* Content-Disposition, or NULL */
	const char *allow;                 /* Allow (405), or NULL */
	struct buf body;
};

struct http_route {
	const char *path;                  /* compared case-insensitively */
	unsigned methods;                  /* HTTP_GET | HTTP_POST | HTTP_PREFIX */
	enum httpd_route_id id;
	void (*handle)(struct http_request *req, struct http_reply *reply);
};

enum {
	HTTP_GET = 0x1,
	HTTP_POST = 0x2,
	HTTP_PREFIX = 0x4,     /* path is a prefix: "PATH" or "PATH/..." */
};

/* route.c: libmicrohttpd's access and completion callbacks. */
const struct http_route *httpd_route_find(const char *path);
const char *httpd_route_name(enum httpd_route_id id);
enum MHD_Result httpd_access_cb(void *cls, struct MHD_Connection *conn, const char *url,
				const char *method, const char *version,
				const char *upload_data, size_t *upload_data_size,
				void **req_cls);
void httpd_completed_cb(void *cls, struct MHD_Connection *conn, void **req_cls,
			enum MHD_RequestTerminationCode toe);
/* Query argument or header of the request (NULL when absent). */
const char *http_arg(struct http_request *req, const char *name);
const char *http_header(struct http_request *req, const char *name);
/* Sets a plain-text error reply. */
void http_error(struct http_reply *reply, unsigned status, const char *text);

/* The handlers. */
void httpd_autoconfig(struct http_request *req, struct http_reply *reply);
void httpd_autodiscover(struct http_request *req, struct http_reply *reply);
void httpd_autodiscover_json(struct http_request *req, struct http_reply *reply);
void httpd_mobileconfig(struct http_request *req, struct http_reply *reply);
void httpd_mtasts(struct http_request *req, struct http_reply *reply);
void httpd_metrics(struct http_request *req, struct http_reply *reply);

/* xml.c: text escaped for XML content and attributes (also valid in plists);
 * bytes that are not valid UTF-8 or not allowed in XML 1.0 become '?'. */
void xml_escape(struct buf *out, const char *s);
/* Length of the valid UTF-8 sequence of an XML character at s, 0 if none. */
size_t xml_char_len(const char *s);
/* A "key" element with a string value, for plists. */
void plist_string(struct buf *out, const char *indent, const char *key, const char *value);

/* sign.c: appends the DER CMS signed-data of in (signed with the certificate
 * chain and key in the PEM files) to out. -1 (logged) when it cannot. */
int httpd_sign_profile(const char *cert_file, const char *key_file, const struct buf *in,
		       struct buf *out);

/* net-allow.c: is ip inside one of the networks ("192.0.2.0/24", "::1")? */
bool httpd_ip_allowed(const char *ip, const char *const *nets, size_t n);

#endif
