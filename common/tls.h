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
	const char *ciphersuites;  /* TLS 1.3; NULL: TLS_DEFAULT_TLS13_SUITES */
	/* Session tickets: a ticket key is used for this long, then replaced; tickets
	 * made with the previous key are still accepted (and renewed) for another
	 * period, so a ticket lives between one and two periods. 0: no tickets
	 * (TLS 1.3 resumption then uses the server's session cache). */
	unsigned ticket_rotation_s;
};

/* Default ticket key period. */
#define TLS_DEFAULT_TICKET_ROTATION_S 3600

/* Forward secrecy and AEAD only. */
#define TLS_DEFAULT_CIPHERS \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256"
/* All of TLS 1.3's AEAD suites (OpenSSL's default set), strongest first. */
#define TLS_DEFAULT_TLS13_SUITES \
	"TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"

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

/* A listener's own policy on one connection's SSL object (before the
 * handshake); NULL arguments keep the context's. min_protocol "TLSv1.2" or
 * "TLSv1.3". -1 with *error_r (malloc'ed) when OpenSSL refuses a value. */
int tls_ssl_set_policy(SSL *ssl, const char *min_protocol, const char *ciphers,
		       const char *ciphersuites, char **error_r);
/* Checks such a policy without a connection (config validation). */
int tls_check_policy(const char *min_protocol, const char *ciphers,
		     const char *ciphersuites, char **error_r);

/* Checks that a certificate and key load and match (config validation). */
int tls_check_pair(const char *cert_file, const char *key_file, char **error_r);

/* The OpenSSL error queue as one line (malloc'ed); clears the queue. */
char *tls_error_take(const char *prefix);

#endif
