/* main.c — warren-httpd: client auto-configuration and metrics over HTTP.
 *
 * Started by the master with its http listeners (WARREN_LISTEN_FDS), or alone
 * (for debugging), when it binds them itself. The sockets are taken as root,
 * then the daemon drops to the config's user and hands each socket to its own
 * libmicrohttpd daemon with an internal polling thread. The main thread waits
 * for signals: SIGHUP loads the configuration into a new snapshot (requests in
 * flight keep theirs), SIGTERM/SIGINT stop. docs/httpd.md has the reasons.
 *
 * It never opens the mail store: a crash here costs HTTP only (the master
 * restarts it without stopping the mail daemons).
 */
#include "httpd/httpd.h"
#include "common/log.h"
#include "common/privs.h"
#include "common/pool.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/warren/warren.conf"
#define LISTEN_BACKLOG 128
/* The same names service/service.h gives (warren-httpd does not use service_main:
 * that runtime accepts connections itself, and libmicrohttpd must own them). */
#define LISTEN_FDS_ENV "WARREN_LISTEN_FDS"
#define CONF_ROOT_ENV "WARREN_CONF_ROOT"

static bool under_master(void)
{
	return getenv(LISTEN_FDS_ENV) != NULL;
}

static int load_config(const char *path, struct warren_config **conf_r)
{
	char *errors = NULL;
	const char *root = under_master() ? getenv(CONF_ROOT_ENV) : NULL;
	if (conf_load_from(path, root, CONF_LOAD_NO_TLS, conf_r, &errors) < 0) {
		log_error("%s has errors:\n%s", path, errors);
		free(errors);
		return -1;
	}
	return 0;
}

static void apply_logging(const struct warren_config *conf)
{
	log_init("warren/httpd", conf->log.target == CONF_LOG_SYSLOG ? LOG_TARGET_SYSLOG :
		 LOG_TARGET_STDERR, (enum log_level)conf->log.level);
}

static const struct conf_listener *find_listener(const struct warren_config *conf,
						 const char *name)
{
	for (size_t i = 0; i < conf->n_listeners; i++)
		if (strcmp(conf->listeners[i].name, name) == 0 &&
		    conf->listeners[i].service == CONF_SERVICE_HTTP)
			return &conf->listeners[i];
	return NULL;
}

/* ---- sockets ---- */

static int bind_listener(const struct conf_listener *cl)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_PASSIVE,
				  .ai_socktype = SOCK_STREAM }, *ai;
	char port[16];
	snprintf(port, sizeof(port), "%u", cl->port);
	int ret = getaddrinfo(cl->address, port, &hints, &ai);
	if (ret != 0) {
		log_error("listener %s: address %s: %s", cl->name, cl->address, gai_strerror(ret));
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	}
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
		log_error("listener %s: cannot listen on %s port %u: %s", cl->name, cl->address,
			  cl->port, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* Fills fds[i] / names[i] for every http listener; returns the count or -1. */
static int open_sockets(const struct warren_config *conf, int *fds, const char **names,
			size_t max)
{
	size_t n = 0;
	const char *spec = getenv(LISTEN_FDS_ENV);
	if (spec == NULL) {
		for (size_t i = 0; i < conf->n_listeners && n < max; i++) {
			const struct conf_listener *cl = &conf->listeners[i];
			if (cl->service != CONF_SERVICE_HTTP)
				continue;
			if ((fds[n] = bind_listener(cl)) < 0)
				return -1;
			names[n++] = cl->name;
		}
		return (int)n;
	}
	char *copy = x_strdup(spec), *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok != NULL && n < max;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (eq == NULL)
			continue;
		*eq = '\0';
		int fd = atoi(eq + 1);
		const struct conf_listener *cl = find_listener(conf, tok);
		if (cl == NULL) {
			log_warn("listener %s from the master is not an http listener of the "
				 "configuration", tok);
			close(fd);
			continue;
		}
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		fds[n] = fd;
		names[n++] = cl->name;
	}
	free(copy);
	return (int)n;
}

/* ---- libmicrohttpd ---- */

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t len = strlen(line);
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		line[--len] = '\0';
	log_warn("libmicrohttpd: %s", line);
}

static int start_daemon(struct httpd *h, struct httpd_listener *hl, int fd,
			const struct conf_listener *cl)
{
	unsigned timeout = cl->idle_timeout_s != 0 ? cl->idle_timeout_s : HTTPD_DEFAULT_TIMEOUT_S;
	hl->daemon = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG,
		0, NULL, NULL, httpd_access_cb, hl,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, hl,
		MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_CONNECTION_LIMIT, cl->max_connections != 0 ? cl->max_connections : 100000u,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, cl->max_connections_per_ip,
		MHD_OPTION_CONNECTION_TIMEOUT, timeout,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTPD_CONN_MEMORY,
		MHD_OPTION_NOTIFY_COMPLETED, httpd_completed_cb, hl,
		MHD_OPTION_END);
	if (hl->daemon == NULL) {
		log_error("listener %s: libmicrohttpd could not start", cl->name);
		return -1;
	}
	return 0;
}

/* ---- signals ---- */

static void reload(struct httpd *h)
{
	struct warren_config *conf;
	if (load_config(h->config_path, &conf) < 0) {
		log_error("reload: keeping the running configuration");
		return;
	}
	pthread_mutex_lock(&h->lock);
	struct warren_config *old = h->conf;
	/* request threads log all the time: re-initialise only on a change */
	if (old->log.target != conf->log.target || old->log.level != conf->log.level)
		apply_logging(conf);
	h->conf = conf;
	h->reloaded = time(NULL);
	h->reloads++;
	pthread_mutex_unlock(&h->lock);
	for (size_t i = 0; i < h->n_listeners; i++) {
		const struct conf_listener *cl = find_listener(conf, h->listeners[i].name);
		const struct conf_listener *ol = find_listener(old, h->listeners[i].name);
		if (cl == NULL)
			log_warn("reload: listener %s was removed; it stops at the next restart",
				 h->listeners[i].name);
		else if (ol != NULL && (strcmp(ol->address, cl->address) != 0 || ol->port != cl->port))
			log_warn("reload: listener %s moved to %s port %u; that takes a restart",
				 cl->name, cl->address, cl->port);
	}
	conf_unref(&old);
	log_info("reloaded configuration %s (generation %lu)", conf->path, conf->generation);
}

static void usage(void)
{
	fprintf(stderr, "usage: warren-httpd [-c FILE]\n"
		"Runs under the master `warren`; alone (for debugging) it binds its listeners "
		"itself.\nThe configuration is -c FILE, else $WARREN_CONF, else %s.\n",
		DEFAULT_CONFIG);
}

int main(int argc, char **argv)
{
	struct httpd h = { .started = time(NULL) };
	const char *path = getenv("WARREN_CONF");
	int c;
	log_init("warren/httpd", LOG_TARGET_STDERR, LOG_LEVEL_INFO);
	while ((c = getopt(argc, argv, "c:h")) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		default: usage(); return 2;
		}
	}
	h.config_path = x_strdup(path != NULL ? path : DEFAULT_CONFIG);
	pthread_mutex_init(&h.lock, NULL);
	h.reloaded = h.started;
	if (load_config(h.config_path, &h.conf) < 0)
		return 1;
	apply_logging(h.conf);
	signal(SIGPIPE, SIG_IGN);

	/* libmicrohttpd's threads inherit this mask: only the main thread takes signals */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	size_t max = h.conf->n_listeners;
	int *fds = x_calloc(max + 1, sizeof(*fds));
	const char **names = x_calloc(max + 1, sizeof(*names));
	int n = open_sockets(h.conf, fds, names, max);
	if (n < 0)
		return 1;
	if (privs_drop(h.conf->user, h.conf->path) < 0)
		return 1;
	if (under_master())
		prctl(PR_SET_PDEATHSIG, SIGTERM);
	h.listeners = x_calloc((size_t)n + 1, sizeof(*h.listeners));
	for (int i = 0; i < n; i++) {
		struct httpd_listener *hl = &h.listeners[h.n_listeners];
		hl->httpd = &h;
		hl->name = x_strdup(names[i]);
		if (start_daemon(&h, hl, fds[i], find_listener(h.conf, names[i])) < 0)
			return 1;
		h.n_listeners++;
	}
	free(fds);
	free(names);
	log_info("started (%zu listeners, configuration generation %lu)", h.n_listeners,
		 h.conf->generation);

	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reload(&h);
			continue;
		}
		break;
	}
	log_info("stopping");
	for (size_t i = 0; i < h.n_listeners; i++) {
		MHD_stop_daemon(h.listeners[i].daemon);
		free((char *)h.listeners[i].name);
	}
	free(h.listeners);
	conf_unref(&h.conf);
	free(h.config_path);
	log_info("stopped");
	return 0;
}
