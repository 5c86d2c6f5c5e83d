#include "common/tls.h"
#include "common/log.h"
#include "common/pool.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

struct tls_sni_entry {
	char *name;          /* lower case; "*.example.org" for wildcards */
	SSL_CTX *ctx;
};

/* A session ticket key: the name travels in the ticket, the keys stay here. */
struct tls_ticket_key {
	unsigned char name[16];
	unsigned char aes[32];        /* AES-256-CBC */
	unsigned char hmac[32];       /* HMAC-SHA256 */
	time_t created;               /* 0: no key yet */
};

struct tls_server {
	SSL_CTX *default_ctx;
	struct tls_sni_entry *sni;
	size_t n_sni, cap_sni;
	int min_version;
	/* [0] issues new tickets, [1] (the one before) still decrypts them. The
	 * only mutable part: touched only on the loop thread during handshakes. */
	struct tls_ticket_key tickets[2];
	unsigned ticket_rotation_s;
};

/* SSL ex_data slot holding the tls_server (the ticket callback runs on the
 * initial context whatever SNI picked, and needs the key ring). */
static int tls_ex_index = -1;

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

static int version_parse(const char *name, int *version_r, char **error_r)
{
	if (name == NULL || strcmp(name, "TLSv1.2") == 0)
		*version_r = TLS1_2_VERSION;
	else if (strcmp(name, "TLSv1.3") == 0)
		*version_r = TLS1_3_VERSION;
	else {
		*error_r = errorf("unsupported min_protocol %s (TLSv1.2 or TLSv1.3)", name);
		return -1;
	}
	return 0;
}

/* ---- session tickets ---------------------------------------------------------- */

static int ticket_key_new(struct tls_ticket_key *k, time_t now)
{
	if (RAND_bytes(k->name, sizeof(k->name)) <= 0 || RAND_bytes(k->aes, sizeof(k->aes)) <= 0 ||
	    RAND_bytes(k->hmac, sizeof(k->hmac)) <= 0)
		return -1;
	k->created = now;
	return 0;
}

static void tickets_rotate(struct tls_server *server)
{
	time_t now = time(NULL);
	struct tls_ticket_key *cur = &server->tickets[0];
	if (cur->created != 0 && now - cur->created < (time_t)server->ticket_rotation_s &&
	    now >= cur->created)
		return;
	server->tickets[1] = *cur;
	if (ticket_key_new(cur, now) < 0) {
		ERR_clear_error();
		log_error("TLS: no random bytes for a new session ticket key; keeping the old one");
		*cur = server->tickets[1];
		return;
	}
	log_debug("TLS: new session ticket key (period %u s)", server->ticket_rotation_s);
}

static int ticket_use_key(const struct tls_ticket_key *k, unsigned char *iv,
			  EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	OSSL_PARAM params[3];
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac,
						      sizeof(k->hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(hctx, params) != 1)
		return -1;
	int ok = enc ? EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) :
		EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv);
	return ok == 1 ? 0 : -1;
}

/* OpenSSL's ticket key callback: 1 (ok), 2 (ok, renew the ticket: it was made
 * with the previous key), 0 (unknown key: full handshake), -1 (error). */
static int ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv,
		     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct tls_server *server = SSL_get_ex_data(ssl, tls_ex_index);
	if (server == NULL)
		return enc ? -1 : 0;
	tickets_rotate(server);
	if (enc) {
		const struct tls_ticket_key *k = &server->tickets[0];
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) <= 0)
			return -1;
		memcpy(key_name, k->name, sizeof(k->name));
		return ticket_use_key(k, iv, cctx, hctx, 1) == 0 ? 1 : -1;
	}
	for (int i = 0; i < 2; i++) {
		const struct tls_ticket_key *k = &server->tickets[i];
		if (k->created == 0 || memcmp(key_name, k->name, sizeof(k->name)) != 0)
			continue;
		if (ticket_use_key(k, iv, cctx, hctx, 0) < 0)
			return -1;
		return i == 0 ? 1 : 2;
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
				 SSL_OP_NO_COMPRESSION | SSL_OP_PRIORITIZE_CHACHA);
	/* DHE with a group of the key's strength (RFC 7919), never a weak one */
	SSL_CTX_set_dh_auto(ctx, 1);
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
	int min_version;
	if (version_parse(settings->min_protocol, &min_version, error_r) < 0)
		return NULL;
	if (tls_ex_index < 0)
		tls_ex_index = SSL_get_ex_new_index(0, (void *)"warren tls_server", NULL, NULL, NULL);
	SSL_CTX *ctx = ctx_new(min_version, error_r);
	if (ctx == NULL)
		return NULL;
	const char *ciphers = settings->ciphers != NULL ? settings->ciphers : TLS_DEFAULT_CIPHERS;
	if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
		*error_r = tls_error_take("bad cipher list");
		SSL_CTX_free(ctx);
		return NULL;
	}
	const char *suites = settings->ciphersuites != NULL ? settings->ciphersuites :
		TLS_DEFAULT_TLS13_SUITES;
	if (SSL_CTX_set_ciphersuites(ctx, suites) != 1) {
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
	server->ticket_rotation_s = settings->ticket_rotation_s;
	if (settings->ticket_rotation_s == 0) {
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	} else {
		/* a session may be resumed as long as its ticket's key is kept */
		SSL_CTX_set_timeout(ctx, 2 * (long)settings->ticket_rotation_s);
		SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
	}
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
	OPENSSL_cleanse(server->tickets, sizeof(server->tickets));
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
		return NULL;
	}
	SSL_set_ex_data(ssl, tls_ex_index, server);
	return ssl;
}

int tls_ssl_set_policy(SSL *ssl, const char *min_protocol, const char *ciphers,
		       const char *ciphersuites, char **error_r)
{
	int version;
	if (min_protocol != NULL) {
		if (version_parse(min_protocol, &version, error_r) < 0)
			return -1;
		SSL_set_min_proto_version(ssl, version);
	}
	if (ciphers != NULL && SSL_set_cipher_list(ssl, ciphers) != 1) {
		*error_r = tls_error_take("bad cipher list");
		return -1;
	}
	if (ciphersuites != NULL && SSL_set_ciphersuites(ssl, ciphersuites) != 1) {
		*error_r = tls_error_take("bad TLS 1.3 ciphersuites");
		return -1;
	}
	return 0;
}

int tls_check_policy(const char *min_protocol, const char *ciphers, const char *ciphersuites,
		     char **error_r)
{
	SSL_CTX *ctx = ctx_new(TLS1_2_VERSION, error_r);
	if (ctx == NULL)
		return -1;
	SSL *ssl = SSL_new(ctx);
	int ret = -1;
	if (ssl == NULL)
		*error_r = tls_error_take("SSL_new");
	else
		ret = tls_ssl_set_policy(ssl, min_protocol, ciphers, ciphersuites, error_r);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return ret;
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
