/* auth.h — password verification off the loop thread, for every daemon.
 *
 * Checks run on a dedicated, bounded pool of auth threads (never the libuv pool,
 * which store work uses): a yescrypt check costs ~20 ms and 16 MiB, a failed
 * pam_unix login can take seconds. In front of the pool:
 *   - a short-lived cache of successful verifications (keyed by an HMAC over the
 *     login, the password and the stored hash / PAM service, with a per-process
 *     random key; the password itself is never kept),
 *   - a growing delay before a failure is reported, per client address
 *     (failure_delay_ms doubled per recent failure up to failure_delay_max_ms).
 * Callbacks run on the loop thread.
 */
#ifndef WARREN_AUTH_H
#define WARREN_AUTH_H

#include <stddef.h>
#include <uv.h>

struct auth_pool;
struct auth_job;

struct auth_pool_settings {
	unsigned threads;             /* auth threads (1..64) */
	unsigned queue_max;           /* jobs waiting beyond this get AUTH_TEMPFAIL */
	unsigned cache_ttl_s;         /* 0 disables the cache */
	unsigned cache_size;          /* entries kept at most */
	unsigned failure_delay_ms;    /* delay after the first failure from an address */
	unsigned failure_delay_max_ms;/* cap of the growing delay */
};

enum auth_backend {
	AUTH_BACKEND_HASH,   /* crypt(3) hash: yescrypt, bcrypt, SHA-512-crypt */
	AUTH_BACKEND_PAM,    /* PAM service stack (pam_unix, pam_sss, pam_winbind, ...) */
};

enum auth_result {
	AUTH_OK,
	AUTH_FAIL,       /* wrong password / unknown user */
	AUTH_TEMPFAIL,   /* backend error or overload: try again later */
	/* Only from service_login, after a right password (common/access.h): */
	AUTH_DENIED,     /* an access rule refuses (client address, hours, dates) */
	AUTH_DISABLED,   /* the protocol is switched off for the mailbox */
};

struct auth_check {
	enum auth_backend backend;
	const char *login;        /* the name the client gave (for logs and the cache) */
	const char *password;
	const char *hash;         /* HASH: the stored hash; NULL means "no such user" */
	const char *pam_service;  /* PAM: service name */
	const char *pam_user;     /* PAM: user name handed to PAM (NULL: login) */
	const char *client_ip;    /* for the failure delay and PAM_RHOST; may be NULL */
};

typedef void auth_callback(enum auth_result result, void *ctx);

/* NULL when no auth thread could be started. */
struct auth_pool *auth_pool_new(uv_loop_t *loop, const struct auth_pool_settings *settings);
/* Changes cache and delay settings (on reload); thread count stays. */
void auth_pool_reconfigure(struct auth_pool *pool, const struct auth_pool_settings *settings);
/* Waits for running checks, drops queued ones (their callbacks are not called).
 * The memory goes in a close callback: run the loop once more afterwards. May be
 * called from inside an auth callback. */
void auth_pool_free(struct auth_pool **pool);

/* Starts a check; strings are copied. The callback runs once, later, on the loop
 * thread, unless auth_cancel() is called first. */
struct auth_job *auth_verify(struct auth_pool *pool, const struct auth_check *check,
			     auth_callback *cb, void *ctx);
/* The session went away: the callback will not be called. The handle is invalid
 * once the callback has run; do not cancel it then. */
void auth_cancel(struct auth_job *job);

/* Blocking primitives (used by the auth threads, warrenctl and tests). */

/* Verifies password against a crypt(3) hash in constant time. 1 match, 0 not. */
int auth_hash_verify(const char *password, const char *hash);
/* Accepts yescrypt ($y$), bcrypt ($2b$/$2y$/$2a$) and SHA-512-crypt ($6$); 0 or -1. */
int auth_hash_check_format(const char *hash, const char **error_r);
/* A new yescrypt hash of password (malloc'ed) or NULL. */
char *auth_hash_password(const char *password);
/* PAM authentication + account check. 1 ok, 0 refused, -1 error. */
int auth_pam_verify(const char *service, const char *user, const char *password,
		    const char *rhost);

#endif
