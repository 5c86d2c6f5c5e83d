/* auth-helper.h — PAM checks through warren-authd, the small root process the
 * master keeps when it runs as root (docs/security.md, "Processes and
 * privileges").
 *
 * The daemons run as the unprivileged user, but some PAM stacks need root
 * (pam_unix reads /etc/shadow). When the master started warren-authd, it names
 * the helper's socket in the daemons' environment (AUTH_HELPER_ENV) and their auth
 * threads send each PAM check there instead of running PAM themselves.
 *
 * One request per connection, on a Unix stream socket in Linux's abstract
 * namespace (no file, so nothing in a folder the Warren user could swap for a
 * symlink), under a random name the master chooses. Each side checks the other
 * with SO_PEERCRED: the helper answers only the Warren user and root, and a
 * daemon sends a password only to a root peer. The helper runs only the PAM
 * services of the configuration's PAM domains and never checks root itself:
 *     request:  "WA1" NUL, then service NUL user NUL password NUL rhost NUL
 *               (AUTH_HELPER_REQUEST_MAX bytes at most, fields without NUL)
 *     answer:   one byte: 'Y' right, 'N' refused, 'T' temporary failure
 * Nothing else is ever read from or run for a client: the fields go only into
 * pam_start/pam_set_item, never a command line or a format string.
 */
#ifndef WARREN_AUTH_HELPER_H
#define WARREN_AUTH_HELPER_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#define AUTH_HELPER_ENV "WARREN_AUTH_SOCKET"
#define AUTH_HELPER_MAGIC "WA1"
#define AUTH_HELPER_REQUEST_MAX 4096
/* A check (a failing pam_unix can take seconds) is given up after this long. */
#define AUTH_HELPER_TIMEOUT_S 30

struct auth_helper_request {
	const char *service, *user, *password, *rhost;   /* rhost may be "" */
};

/* The socket address of the abstract name (without its leading NUL): 0 or -1. */
int auth_helper_address(const char *name, struct sockaddr_un *sa, socklen_t *len_r);
/* Encodes req into out; its length, or -1 when a field has a NUL or it does not fit. */
int auth_helper_encode(const struct auth_helper_request *req, char *out, size_t size);
/* Splits a received request (buf is modified; the fields point into it): 0 or -1. */
int auth_helper_decode(char *buf, size_t len, struct auth_helper_request *req);
/* Blocking: asks the helper at the abstract name socket_path. 1 right, 0 refused, -1 temporary failure. */
int auth_helper_verify(const char *socket_path, const char *service, const char *user,
		       const char *password, const char *rhost);

#endif
