/* warren-authd — runs PAM checks as root for the unprivileged daemons.
 *
 * The master starts it (only when it runs as root and a domain authenticates
 * through PAM) as:
 *     warren-authd -S NAME -u UID [-s SERVICE]... [-l stderr|syslog]
 * It listens on NAME in the abstract Unix socket namespace (no file anywhere),
 * accepts connections only from UID (the Warren user) or root (SO_PEERCRED), and
 * answers one request per connection in the format of common/auth-helper.h.
 * It runs only the PAM services named with -s (those of the configuration's PAM
 * domains) and never checks a password of uid 0, so a compromised daemon cannot
 * use it to ask "su" or "sudo" stacks about root. Each check runs on its own
 * thread, at most AUTHD_THREADS at once (more get 'T' at once); a refusal is held
 * back AUTHD_FAIL_DELAY_MS, so the helper is no fast password oracle. It holds no
 * secret beyond the request in flight, which is wiped after the answer.
 */
#include "common/auth.h"
#include "common/auth-helper.h"
#include "common/log.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define AUTHD_THREADS 32
/* A client gets this long in all to send its request. */
#define AUTHD_READ_TIMEOUT_MS 10000
#define AUTHD_FAIL_DELAY_MS 500
#define AUTHD_SERVICES_MAX 64

static atomic_uint active;
static const char *services[AUTHD_SERVICES_MAX];
static size_t n_services;

static void usage(void)
{
	fprintf(stderr, "usage: warren-authd -S NAME -u UID [-s PAM-SERVICE]... [-l stderr|syslog]\n"
		"Started by the master `warren` when it runs as root; see docs/privileges.md.\n");
}

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

static void answer(int fd, char verdict)
{
	ssize_t n;
	do
		n = send(fd, &verdict, 1, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads the whole request (until the client's shutdown) within the deadline.
 * Its length, or -1 (too long, too slow, error). */
static ssize_t read_request(int fd, char *buf, size_t size)
{
	int64_t deadline = now_ms() + AUTHD_READ_TIMEOUT_MS;
	size_t len = 0;
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return -1;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int pr = poll(&p, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			return -1;
		ssize_t n = recv(fd, buf + len, size - len, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return (ssize_t)len;
		len += (size_t)n;
		if (len == size)
			return -1;
	}
}

static bool service_allowed(const char *name)
{
	for (size_t i = 0; i < n_services; i++)
		if (strcmp(services[i], name) == 0)
			return true;
	return false;
}

static bool is_root_account(const char *user)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	return getpwnam_r(user, &pw, buf, sizeof(buf), &res) == 0 && res != NULL &&
	       res->pw_uid == 0;
}

static void *serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[AUTH_HELPER_REQUEST_MAX + 1];
	ssize_t len = read_request(fd, buf, sizeof(buf));
	struct auth_helper_request req;
	char verdict = 'N';
	if (len < 0 || auth_helper_decode(buf, (size_t)len, &req) < 0) {
		log_warn("malformed, overlong or slow request refused");
	} else if (!service_allowed(req.service)) {
		char name[64];
		log_warn("PAM service %s is not one of the configuration's: refused",
			 log_printable(name, sizeof(name), req.service, strlen(req.service)));
	} else if (is_root_account(req.user)) {
		log_warn("a check of a uid 0 account refused");
	} else {
		int v = auth_pam_verify(req.service, req.user, req.password,
					req.rhost[0] != '\0' ? req.rhost : NULL);
		verdict = v == 1 ? 'Y' : v == 0 ? 'N' : 'T';
	}
	explicit_bzero(buf, sizeof(buf));
	if (verdict == 'N')
		usleep(AUTHD_FAIL_DELAY_MS * 1000);
	answer(fd, verdict);
	close(fd);
	atomic_fetch_sub(&active, 1);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *name = NULL, *target = "stderr";
	long uid = -1;
	int c;
	while ((c = getopt(argc, argv, "S:u:g:s:l:h")) != -1) {
		switch (c) {
		case 'S': name = optarg; break;
		case 'u': uid = strtol(optarg, NULL, 10); break;
		case 'g': break;   /* accepted for compatibility; not needed */
		case 's':
			if (n_services < AUTHD_SERVICES_MAX)
				services[n_services++] = optarg;
			break;
		case 'l': target = optarg; break;
		default: usage(); return 2;
		}
	}
	if (name == NULL || uid < 0) {
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
	struct sockaddr_un sa;
	socklen_t sa_len;
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (auth_helper_address(name, &sa, &sa_len) < 0 || lfd < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sa_len) < 0 || listen(lfd, 128) < 0) {
		log_error("cannot listen on @%s: %s", name, strerror(errno));
		return 1;
	}
	log_info("serving PAM checks on @%s for uid %ld (%zu PAM service%s)", name, uid,
		 n_services, n_services == 1 ? "" : "s");
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
		if (atomic_fetch_add(&active, 1) >= AUTHD_THREADS) {
			atomic_fetch_sub(&active, 1);
			log_warn("%d checks running; one more answered 'try later'", AUTHD_THREADS);
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
