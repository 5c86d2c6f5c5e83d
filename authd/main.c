/* warren-authd — runs PAM checks as root for the unprivileged daemons.
 *
 * The master starts it (only when it runs as root and a domain authenticates
 * through PAM) as:
 *     warren-authd -S NAME -u UID [-t MS] [-s SERVICE]... [-l stderr|syslog]
 * It listens on NAME in the abstract Unix socket namespace (no file anywhere),
 * accepts connections only from UID (the Warren user) or root (SO_PEERCRED), and
 * answers one request per connection in the format of common/auth-helper.h.
 * It runs only the PAM services named with -s (those of the configuration's PAM
 * domains) and never checks a password of uid 0, so a compromised daemon cannot
 * use it to ask "su" or "sudo" stacks about root. Each check runs on its own
 * thread, at most AUTHD_THREADS at once (more get 'T' at once); a refusal is held
 * back AUTHD_FAIL_DELAY_MS, so the helper is no fast password oracle. It holds no
 * secret beyond the request in flight, which is wiped after the answer.
 *
 * PAM runs in a child process per check (fork, then pam_start..pam_end in the
 * child, whose verdict comes back over a pipe): a module that never returns (a
 * hung LDAP or AD server, a pam_exec script that sleeps) is killed with its
 * process group after -t MS (auth.helper_timeout, default 10 s) and the daemon
 * gets 'T' (temporary failure), logged; the thread and its slot are free again.
 */
#include "common/auth.h"
#include "common/auth-helper.h"
#include "common/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AUTHD_THREADS 32
/* A client gets this long in all to send its request. */
#define AUTHD_READ_TIMEOUT_MS 10000
#define AUTHD_FAIL_DELAY_MS 500
#define AUTHD_SERVICES_MAX 64
/* A PAM check is abandoned after this (-t; auth.helper_timeout); the daemons wait
 * AUTH_HELPER_TIMEOUT_S, longer than the configuration allows. */
#define AUTHD_PAM_TIMEOUT_MS 10000

static atomic_uint active;
static const char *services[AUTHD_SERVICES_MAX];
static size_t n_services;
static unsigned pam_timeout_ms = AUTHD_PAM_TIMEOUT_MS;

static void usage(void)
{
	fprintf(stderr, "usage: warren-authd -S NAME -u UID [-t MS] [-s PAM-SERVICE]... "
		"[-l stderr|syslog]\n"
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

/* Kills pid and every process descended from it. Process groups are not enough:
 * pam_exec starts its program in a session of its own (setsid). The tree is read
 * from /proc (ppid links) twice, to catch a fork between scan and kill. */
static void kill_tree(pid_t root)
{
	for (int round = 0; round < 2; round++) {
		size_t n = 0, cap = 256;
		pid_t (*procs)[2] = malloc(cap * sizeof(*procs));
		DIR *d = opendir("/proc");
		struct dirent *e;
		while (procs != NULL && d != NULL && (e = readdir(d)) != NULL) {
			char path[64], stat[512];
			long pid = strtol(e->d_name, NULL, 10);
			if (pid <= 0)
				continue;
			snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
			FILE *f = fopen(path, "re");
			if (f == NULL)
				continue;
			size_t len = fread(stat, 1, sizeof(stat) - 1, f);
			fclose(f);
			stat[len] = '\0';
			const char *rp = strrchr(stat, ')');   /* the name may hold anything */
			char state;
			long ppid;
			if (rp == NULL || sscanf(rp + 1, " %c %ld", &state, &ppid) != 2)
				continue;
			if (n == cap) {
				void *bigger = realloc(procs, 2 * cap * sizeof(*procs));
				if (bigger == NULL)
					break;
				procs = bigger;
				cap *= 2;
			}
			procs[n][0] = (pid_t)pid;
			procs[n][1] = (pid_t)ppid;
			n++;
		}
		if (d != NULL)
			closedir(d);
		/* mark the descendants of root */
		bool *in = procs != NULL ? calloc(n + 1, sizeof(bool)) : NULL;
		for (bool grew = in != NULL; grew;) {
			grew = false;
			for (size_t i = 0; i < n; i++) {
				if (in[i])
					continue;
				bool parent_in = procs[i][1] == root;
				for (size_t k = 0; k < n && !parent_in; k++)
					parent_in = in[k] && procs[k][0] == procs[i][1];
				if (parent_in) {
					in[i] = true;
					grew = true;
				}
			}
		}
		for (size_t i = 0; in != NULL && i < n; i++)
			if (in[i])
				kill(procs[i][0], SIGKILL);
		free(in);
		free(procs);
	}
	kill(-root, SIGKILL);
	kill(root, SIGKILL);
}

/* Runs the PAM check in a child process (its own process group, so helpers a
 * module started go with it) and waits for its verdict at most pam_timeout_ms:
 * 1 yes, 0 no, -1 temporary failure (also when the child was killed). */
static int pam_in_child(const struct auth_helper_request *req)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		log_error("pipe: %s", strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		setpgid(0, 0);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		close(p[0]);
		int v = auth_pam_verify(req->service, req->user, req->password,
					req->rhost[0] != '\0' ? req->rhost : NULL);
		char c = v == 1 ? 'Y' : v == 0 ? 'N' : 'T';
		ssize_t n;
		do
			n = write(p[1], &c, 1);
		while (n < 0 && errno == EINTR);
		_exit(0);
	}
	setpgid(pid, pid);   /* also here: no race with the child's own call */
	close(p[1]);
	int64_t deadline = now_ms() + pam_timeout_ms;
	char c = 0;
	ssize_t n = -1;
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			break;
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		int pr = poll(&pf, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr > 0) {
			do
				n = read(p[0], &c, 1);
			while (n < 0 && errno == EINTR);
		}
		break;
	}
	close(p[0]);
	bool timed_out = n < 0 && now_ms() >= deadline;
	if (n != 1)
		kill_tree(pid);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (n == 1)
		return c == 'Y' ? 1 : c == 'N' ? 0 : -1;
	char name[64];
	if (timed_out)
		log_warn("PAM service %s did not answer within %u ms: check abandoned (pid %ld "
			 "killed), temporary failure",
			 log_printable(name, sizeof(name), req->service, strlen(req->service)),
			 pam_timeout_ms, (long)pid);
	else
		log_warn("PAM service %s: the check's process ended without a verdict: "
			 "temporary failure",
			 log_printable(name, sizeof(name), req->service, strlen(req->service)));
	return -1;
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
		int v = pam_in_child(&req);
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
	while ((c = getopt(argc, argv, "S:u:g:t:s:l:h")) != -1) {
		switch (c) {
		case 'S': name = optarg; break;
		case 'u': uid = strtol(optarg, NULL, 10); break;
		case 'g': break;   /* accepted for compatibility; not needed */
		case 't': {
			long t = strtol(optarg, NULL, 10);
			if (t > 0 && t <= (long)AUTH_HELPER_TIMEOUT_S * 1000 - 1000)
				pam_timeout_ms = (unsigned)t;
			break;
		}
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
	log_info("serving PAM checks on @%s for uid %ld (%zu PAM service%s, %u ms each)", name,
		 uid, n_services, n_services == 1 ? "" : "s", pam_timeout_ms);
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
