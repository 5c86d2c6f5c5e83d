/* tls.h — server TLS contexts: one default certificate plus per-domain certificates
 * chosen by SNI, all under one protocol and cipher policy.
 *
 * The policy (protocol versions, ciphers, options) lives on the default SSL_CTX:
 * OpenSSL's SSL_set_SSL_CTX() in the SNI callback only swaps certificate, key and
 * session id context, so per-domain contexts carry certificates only.
 * A tls_server is immutable once built and is owned by a config snapshot; SSL
 * objects made from it keep their contexts alive through OpenSSL's refcounts.
 */
#ifndef WARREN_TLS_H
#define WARREN_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

struct tls_server;

struct tls_settings {
	const char *cert_file;     /* PEM chain, leaf first */
	const char *key_file;      /* PEM private key */
	const char *min_protocol;  /* "TLSv1.2" (default) or "TLSv1.3" */
	const char *ciphers;       /* TLS <= 1.2 cipher list; NULL: TLS_DEFAULT_CIPHERS */
	const char *ciphersuites;  /* TLS 1.3; NULL: OpenSSL's default */
};

/* Forward secrecy and AEAD only. */
#define TLS_DEFAULT_CIPHERS \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256"

/* Builds the default context. On error returns NULL and *error_r (malloc'ed). */
struct tls_server *tls_server_new(const struct tls_settings *settings, char **error_r);
/* Adds a certificate chosen when the client's SNI matches one of names or one of
 * the certificate's own DNS names (exact, or "*.domain" wildcards). */
int tls_server_add_sni(struct tls_server *server, const char *cert_file,
		       const char *key_file, const char *const *names, size_t n_names,
		       char **error_r);
void tls_server_free(struct tls_server **server);

/* A new server-side SSL object for one connection. */
SSL *tls_server_ssl_new(struct tls_server *server);

/* Checks that a certificate and key load and match (config validation). */
int tls_check_pair(const char *cert_file, const char *key_file, char **error_r);

/* The OpenSSL error queue as one line (malloc'ed); clears the queue. */
char *tls_error_take(const char *prefix);

#endif
