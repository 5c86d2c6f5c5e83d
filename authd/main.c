/* warren-authd — runs PAM checks as root for the unprivileged daemons.
 *
 * The master starts it (only when it runs as root and a domain authenticates
 * through PAM) as:  warren-authd -S SOCKET -u UID -g GID [-l stderr|syslog]
 * It listens on SOCKET (its folder made 0700 and, like the socket, owned by
 * UID:GID, the Warren user), accepts connections only from that uid or root
 * (SO_PEERCRED), and answers one request per connection in the format of
 * common/auth-helper.h. Each check runs on its own thread, at most
 * AUTHD_THREADS at once (more get 'T' at once). It holds no secret beyond the
 * request in flight, which is wiped after the answer.
 */
#include "common/auth.h"
#include "common/auth-helper.h"
#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define AUTHD_THREADS 32
/* A client gets this long to send its request. */
#define AUTHD_READ_TIMEOUT_S 10

static atomic_uint active;
static const char *socket_path;

static void usage(void)
{
	fprintf(stderr, "usage: warren-authd -S SOCKET -u UID -g GID [-l stderr|syslog]\n"
		"Started by the master `warren` when it runs as root; see docs/security.md.\n");
}

static void on_term(int sig)
{
	(void)sig;
	if (socket_path != NULL)
		unlink(socket_path);
	_exit(0);
}

static void answer(int fd, char verdict)
{
	ssize_t n;
	do
		n = send(fd, &verdict, 1, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
}

static void *serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[AUTH_HELPER_REQUEST_MAX + 1];
	size_t len = 0;
	bool too_long = false;
	for (;;) {
		ssize_t n = recv(fd, buf + len, sizeof(buf) - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf)) {
			too_long = true;
			break;
		}
	}
	struct auth_helper_request req;
	if (too_long || auth_helper_decode(buf, len, &req) < 0) {
		log_warn("malformed request (%zu bytes) refused", len);
		answer(fd, 'N');
	} else {
		int v = auth_pam_verify(req.service, req.user, req.password,
					req.rhost[0] != '\0' ? req.rhost : NULL);
		answer(fd, v == 1 ? 'Y' : v == 0 ? 'N' : 'T');
	}
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	atomic_fetch_sub(&active, 1);
	return NULL;
}

static int make_socket(const char *path, uid_t uid, gid_t gid)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_error("socket path %s is too long", path);
		return -1;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			log_error("mkdir %s: %s", dir, strerror(errno));
			return -1;
		}
		if (chown(dir, uid, gid) < 0 || chmod(dir, 0700) < 0) {
			log_error("%s: %s", dir, strerror(errno));
			return -1;
		}
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	unlink(path);
	mode_t old = umask(0177);
	int ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (ret < 0 || chown(path, uid, gid) < 0 || listen(fd, 128) < 0) {
		log_error("%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	const char *path = NULL, *target = "stderr";
	long uid = -1, gid = -1;
	int c;
	while ((c = getopt(argc, argv, "S:u:g:l:h")) != -1) {
		switch (c) {
		case 'S': path = optarg; break;
		case 'u': uid = strtol(optarg, NULL, 10); break;
		case 'g': gid = strtol(optarg, NULL, 10); break;
		case 'l': target = optarg; break;
		default: usage(); return 2;
		}
	}
	if (path == NULL || uid < 0 || gid < 0) {
		usage();
		return 2;
	}
	log_init("warren/authd", strcmp(target, "syslog") == 0 ? LOG_TARGET_SYSLOG :
		 LOG_TARGET_STDERR, LOG_LEVEL_INFO);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	signal(SIGHUP, SIG_IGN);
	prctl(PR_SET_PDEATHSIG, SIGTERM);   /* never outlive the master */
	int lfd = make_socket(path, (uid_t)uid, (gid_t)gid);
	if (lfd < 0)
		return 1;
	socket_path = path;
	log_info("serving PAM checks on %s for uid %ld", path, uid);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			log_error("accept: %s", strerror(errno));
			sleep(1);
			continue;
		}
		struct ucred cred;
		socklen_t cl = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 ||
		    (cred.uid != (uid_t)uid && cred.uid != 0)) {
			log_warn("connection from uid %ld refused",
				 cl == sizeof(cred) ? (long)cred.uid : -1L);
			close(fd);
			continue;
		}
		struct timeval tv = { .tv_sec = AUTHD_READ_TIMEOUT_S };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (atomic_fetch_add(&active, 1) >= AUTHD_THREADS) {
			atomic_fetch_sub(&active, 1);
			log_warn("%d checks running; one more answered 'try later'",
				 AUTHD_THREADS);
			answer(fd, 'T');
			close(fd);
			continue;
		}
		pthread_t t;
		if (pthread_create(&t, &attr, serve, (void *)(intptr_t)fd) != 0) {
			atomic_fetch_sub(&active, 1);
			answer(fd, 'T');
			close(fd);
		}
	}
}
