#include "common/tls.h"
#include "common/log.h"
#include "common/pool.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

struct tls_sni_entry {
	char *name;          /* lower case; "*.example.org" for wildcards */
	SSL_CTX *ctx;
};

struct tls_server {
	SSL_CTX *default_ctx;
	struct tls_sni_entry *sni;
	size_t n_sni, cap_sni;
	int min_version;
};

/* Session id context: ties cached sessions to Warren's servers. */
static const unsigned char tls_sid_ctx[] = "warren";

char *tls_error_take(const char *prefix)
{
	char line[256], out[1024];
	size_t o = (size_t)snprintf(out, sizeof(out), "%s", prefix);
	unsigned long e;
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, line, sizeof(line));
		if (o < sizeof(out))
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s",
					      o > 0 ? ": " : "", line);
	}
	return x_strdup(out);
}

static char *errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *errorf(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return x_strdup(buf);
}

static int load_pair(SSL_CTX *ctx, const char *cert_file, const char *key_file, char **error_r)
{
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		char prefix[512];
		snprintf(prefix, sizeof(prefix), "cannot load certificate %s", cert_file);
		*error_r = tls_error_take(prefix);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		char prefix[512];
		snprintf(prefix, sizeof(prefix), "cannot load private key %s", key_file);
		*error_r = tls_error_take(prefix);
		return -1;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		*error_r = errorf("private key %s does not match certificate %s", key_file, cert_file);
		return -1;
	}
	return 0;
}

static SSL_CTX *ctx_new(int min_version, char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		*error_r = tls_error_take("SSL_CTX_new");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, min_version);
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
				 SSL_OP_NO_COMPRESSION);
	/* idle connections give their read/write buffers back */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_id_context(ctx, tls_sid_ctx, sizeof(tls_sid_ctx) - 1);
	return ctx;
}

static int lookup_sni(struct tls_server *server, const char *name, SSL_CTX **ctx_r)
{
	for (size_t i = 0; i < server->n_sni; i++) {
		if (strcasecmp(server->sni[i].name, name) == 0) {
			*ctx_r = server->sni[i].ctx;
			return 0;
		}
	}
	const char *dot = strchr(name, '.');
	if (dot == NULL)
		return -1;
	for (size_t i = 0; i < server->n_sni; i++) {
		const char *n = server->sni[i].name;
		if (n[0] == '*' && n[1] == '.' && strcasecmp(n + 1, dot) == 0) {
			*ctx_r = server->sni[i].ctx;
			return 0;
		}
	}
	return -1;
}

static int servername_cb(SSL *ssl, int *alert, void *arg)
{
	struct tls_server *server = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	SSL_CTX *ctx;
	(void)alert;
	if (name == NULL || lookup_sni(server, name, &ctx) < 0)
		return SSL_TLSEXT_ERR_OK;   /* the default certificate */
	if (SSL_set_SSL_CTX(ssl, ctx) == NULL)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	return SSL_TLSEXT_ERR_OK;
}

struct tls_server *tls_server_new(const struct tls_settings *settings, char **error_r)
{
	int min_version = TLS1_2_VERSION;
	if (settings->min_protocol != NULL && strcmp(settings->min_protocol, "TLSv1.3") == 0)
		min_version = TLS1_3_VERSION;
	else if (settings->min_protocol != NULL && strcmp(settings->min_protocol, "TLSv1.2") != 0) {
		*error_r = errorf("unsupported min_protocol %s (TLSv1.2 or TLSv1.3)",
				  settings->min_protocol);
		return NULL;
	}
	SSL_CTX *ctx = ctx_new(min_version, error_r);
	if (ctx == NULL)
		return NULL;
	const char *ciphers = settings->ciphers != NULL ? settings->ciphers : TLS_DEFAULT_CIPHERS;
	if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
		*error_r = tls_error_take("bad cipher list");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (settings->ciphersuites != NULL &&
	    SSL_CTX_set_ciphersuites(ctx, settings->ciphersuites) != 1) {
		*error_r = tls_error_take("bad TLS 1.3 ciphersuites");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (load_pair(ctx, settings->cert_file, settings->key_file, error_r) < 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	struct tls_server *server = x_calloc(1, sizeof(*server));
	server->default_ctx = ctx;
	server->min_version = min_version;
	SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
	SSL_CTX_set_tlsext_servername_arg(ctx, server);
	return server;
}

static void sni_add(struct tls_server *server, const char *name, SSL_CTX *ctx)
{
	SSL_CTX *existing;
	if (name == NULL || name[0] == '\0' || lookup_sni(server, name, &existing) == 0)
		return;
	if (server->n_sni == server->cap_sni) {
		server->cap_sni = server->cap_sni == 0 ? 8 : server->cap_sni * 2;
		server->sni = x_realloc(server->sni, server->cap_sni * sizeof(*server->sni));
	}
	char *lower = x_strdup(name);
	for (char *p = lower; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	SSL_CTX_up_ref(ctx);
	server->sni[server->n_sni].name = lower;
	server->sni[server->n_sni].ctx = ctx;
	server->n_sni++;
}

static void sni_add_cert_names(struct tls_server *server, SSL_CTX *ctx)
{
	X509 *cert = SSL_CTX_get0_certificate(ctx);
	if (cert == NULL)
		return;
	GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		if (gn->type != GEN_DNS)
			continue;
		const unsigned char *data = ASN1_STRING_get0_data(gn->d.dNSName);
		int len = ASN1_STRING_length(gn->d.dNSName);
		if (len <= 0 || len > 253 || memchr(data, '\0', (size_t)len) != NULL)
			continue;
		char name[256];
		memcpy(name, data, (size_t)len);
		name[len] = '\0';
		sni_add(server, name, ctx);
	}
	GENERAL_NAMES_free(sans);
}

int tls_server_add_sni(struct tls_server *server, const char *cert_file,
		       const char *key_file, const char *const *names, size_t n_names,
		       char **error_r)
{
	SSL_CTX *ctx = ctx_new(server->min_version, error_r);
	if (ctx == NULL)
		return -1;
	if (load_pair(ctx, cert_file, key_file, error_r) < 0) {
		SSL_CTX_free(ctx);
		return -1;
	}
	for (size_t i = 0; i < n_names; i++)
		sni_add(server, names[i], ctx);
	sni_add_cert_names(server, ctx);
	SSL_CTX_free(ctx);   /* the SNI entries hold their references */
	return 0;
}

void tls_server_free(struct tls_server **serverp)
{
	struct tls_server *server = *serverp;
	if (server == NULL)
		return;
	for (size_t i = 0; i < server->n_sni; i++) {
		SSL_CTX_free(server->sni[i].ctx);
		free(server->sni[i].name);
	}
	free(server->sni);
	SSL_CTX_free(server->default_ctx);
	free(server);
	*serverp = NULL;
}

SSL *tls_server_ssl_new(struct tls_server *server)
{
	SSL *ssl = SSL_new(server->default_ctx);
	if (ssl == NULL) {
		char *err = tls_error_take("SSL_new");
		log_error("%s", err);
		free(err);
	}
	return ssl;
}

int tls_check_pair(const char *cert_file, const char *key_file, char **error_r)
{
	SSL_CTX *ctx = ctx_new(TLS1_2_VERSION, error_r);
	if (ctx == NULL)
		return -1;
	int ret = load_pair(ctx, cert_file, key_file, error_r);
	SSL_CTX_free(ctx);
	return ret;
}
