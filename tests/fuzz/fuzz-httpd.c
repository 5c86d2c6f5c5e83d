/* fuzz-httpd.c — libFuzzer target for warren-httpd's request handling without
 * the HTTP layer: the autodiscover POX parser (expat) and its answer, the
 * Autodiscover V2 path, autoconfig chosen by a Host header, mobileconfig for an
 * address, and the metrics_allow matcher. Every XML answer must be well-formed
 * (the escaping holds whatever the request said).
 *
 * The first input byte picks the case; the rest is the request body, Host,
 * path or address.
 *
 *   scripts/fuzz.sh fuzz-httpd
 */
#include "httpd/autoconfig.c"
#include "httpd/autodiscover.c"
#include "httpd/mailconf.c"
#include "httpd/mobileconfig.c"
#include "httpd/net-allow.c"
#include "httpd/xml.c"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
		abort(); \
	} \
} while (0)

/* ---- what route.c and libmicrohttpd would provide ---- */

static const char *fake_arg_name, *fake_arg_value, *fake_host;

const char *http_arg(struct http_request *req, const char *name)
{
	return fake_arg_name != NULL && strcasecmp(name, fake_arg_name) == 0 ? fake_arg_value : NULL;
}

const char *http_header(struct http_request *req, const char *name)
{
	return strcasecmp(name, "Host") == 0 ? fake_host : NULL;
}

void http_error(struct http_reply *reply, unsigned status, const char *text)
{
	reply->status = status;
	buf_clear(&reply->body);
	buf_printf(&reply->body, "%s\n", text);
}

int httpd_sign_profile(const char *cert_file, const char *key_file, const struct buf *in,
		       struct buf *out)
{
	return -1;   /* signing is OpenSSL's; the profile is checked unsigned */
}

static struct warren_config *conf;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/warren-fuzz-httpd-XXXXXX", path[64];
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/warren.conf", dir);
	FILE *fp = fopen(path, "w");
	CHECK(fp != NULL);
	fputs("hostname = \"mail.warren.test\"\nstate_dir = \"state\"\n"
	      "listener imap { port = 143 service = imap auth_plaintext = yes }\n"
	      "listener sub { port = 587 service = submission auth_plaintext = yes }\n"
	      "listener http { port = 80 service = http }\n"
	      "domain \"example.test\" { }\n"
	      "domain \"example.org\" { hostnames = { \"mail.example.org\" } }\n", fp);
	fclose(fp);
	char *errors = NULL;
	if (conf_load(path, CONF_LOAD_NO_TLS, &conf, &errors) < 0) {
		fprintf(stderr, "%s", errors);
		abort();
	}
	unlink(path);
	rmdir(dir);
	log_init("fuzz-httpd", LOG_TARGET_STDERR, LOG_LEVEL_FATAL);
	return 0;
}

static void check_xml(const struct buf *b)
{
	XML_Parser p = XML_ParserCreate(NULL);
	CHECK(p != NULL);
	CHECK(XML_Parse(p, buf_data(b), (int)buf_len(b), 1) == XML_STATUS_OK);
	XML_ParserFree(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	char *text = malloc(size);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	struct http_request req = { .conf = conf, .path = "/", .method = "GET" };
	struct http_reply reply = { .status = 200, .body = BUF_INIT(HTTPD_MAX_REPLY) };
	buf_init(&req.body, HTTPD_MAX_BODY);
	fake_arg_name = fake_arg_value = fake_host = NULL;
	switch (data[0] % 5) {
	case 0:   /* POX autodiscover body */
		buf_append(&req.body, data + 1, size - 1);
		httpd_autodiscover(&req, &reply);
		if (reply.status != 404)
			check_xml(&reply.body);
		break;
	case 1:   /* autoconfig by Host */
		fake_host = text;
		httpd_autoconfig(&req, &reply);
		CHECK(reply.status == 200);
		check_xml(&reply.body);
		break;
	case 2:   /* autoconfig and mobileconfig by address */
		fake_arg_name = "emailaddress";
		fake_arg_value = text;
		httpd_autoconfig(&req, &reply);
		CHECK(reply.status == 200 || reply.status == 404);
		if (reply.status == 200)
			check_xml(&reply.body);
		buf_clear(&reply.body);
		reply.status = 200;
		httpd_mobileconfig(&req, &reply);
		if (reply.status == 200)
			check_xml(&reply.body);
		break;
	case 3:   /* Autodiscover V2 path */
		req.path = text;
		fake_arg_name = "Protocol";
		fake_arg_value = "AutodiscoverV1";
		fake_host = "autodiscover.example.test";
		httpd_autodiscover_json(&req, &reply);
		break;
	case 4: { /* metrics_allow */
		static const char *const nets[] = { "127.0.0.0/8", "::1/128", "192.0.2.0/31" };
		(void)httpd_ip_allowed(text, nets, 3);
		const char *one[] = { text };
		(void)httpd_ip_allowed("127.0.0.1", one, 1);
		break;
	}
	}
	buf_free(&reply.body);
	buf_free(&req.body);
	free(text);
	return 0;
}
