/* auth-helper.c — the request format of warren-authd and its client side. */
#include "common/auth-helper.h"
#include "common/fdio.h"
#include "common/log.h"

#include <errno.h>
#include <stddef.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int auth_helper_address(const char *name, struct sockaddr_un *sa, socklen_t *len_r)
{
	size_t len = strlen(name);
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (len == 0 || len + 1 > sizeof(sa->sun_path))
		return -1;
	memcpy(sa->sun_path + 1, name, len);   /* sun_path[0] = 0: abstract */
	*len_r = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
	return 0;
}

int auth_helper_encode(const struct auth_helper_request *req, char *out, size_t size)
{
	const char *fields[] = { AUTH_HELPER_MAGIC, req->service, req->user, req->password,
				 req->rhost != NULL ? req->rhost : "" };
	size_t o = 0;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (fields[i] == NULL)
			return -1;
		size_t len = strlen(fields[i]);
		if (o + len + 1 > size || o + len + 1 > AUTH_HELPER_REQUEST_MAX)
			return -1;
		memcpy(out + o, fields[i], len + 1);
		o += len + 1;
	}
	return (int)o;
}

int auth_helper_decode(char *buf, size_t len, struct auth_helper_request *req)
{
	const char *fields[5];
	size_t n = 0, start = 0;
	if (len == 0 || len > AUTH_HELPER_REQUEST_MAX || buf[len - 1] != '\0')
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '\0')
			continue;
		if (n == 5)
			return -1;
		fields[n++] = buf + start;
		start = i + 1;
	}
	if (n != 5 || strcmp(fields[0], AUTH_HELPER_MAGIC) != 0 || fields[1][0] == '\0' ||
	    fields[2][0] == '\0')
		return -1;
	req->service = fields[1];
	req->user = fields[2];
	req->password = fields[3];
	req->rhost = fields[4];
	return 0;
}

int auth_helper_verify(const char *socket_path, const char *service, const char *user,
		       const char *password, const char *rhost)
{
	char req[AUTH_HELPER_REQUEST_MAX];
	struct auth_helper_request r = { service, user, password, rhost };
	int len = auth_helper_encode(&r, req, sizeof(req));
	if (len < 0) {
		log_warn("auth: PAM request too long or malformed; refused");
		return 0;
	}
	struct sockaddr_un sa;
	socklen_t sa_len;
	if (auth_helper_address(socket_path, &sa, &sa_len) < 0)
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int ret = -1;
	if (connect(fd, (struct sockaddr *)&sa, sa_len) < 0) {
		log_warn("auth: cannot reach warren-authd at @%s: %s", socket_path, strerror(errno));
		goto out;
	}
	/* a name in the abstract namespace can be taken by anyone: the password goes
	 * only to a root process */
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || cred.uid != 0) {
		log_error("auth: @%s is not served by root (uid %ld): password not sent", socket_path,
			  cl == sizeof(cred) ? (long)cred.uid : -1L);
		goto out;
	}
	if (fd_send_all(fd, req, (size_t)len) < 0 || shutdown(fd, SHUT_WR) < 0)
		goto out;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int pr;
	do
		pr = poll(&p, 1, AUTH_HELPER_TIMEOUT_S * 1000);
	while (pr < 0 && errno == EINTR);
	if (pr <= 0) {
		log_warn("auth: warren-authd did not answer within %d s", AUTH_HELPER_TIMEOUT_S);
		goto out;
	}
	char answer;
	ssize_t n;
	do
		n = recv(fd, &answer, 1, 0);
	while (n < 0 && errno == EINTR);
	if (n == 1)
		ret = answer == 'Y' ? 1 : answer == 'N' ? 0 : -1;
	else
		log_warn("auth: warren-authd closed without an answer");
out:
	explicit_bzero(req, sizeof(req));
	close(fd);
	return ret;
}
