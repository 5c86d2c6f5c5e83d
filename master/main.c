/* warren — the master: reads the configuration, binds the listeners, starts the
 * protocol daemons with their sockets, restarts a daemon that dies, reloads on
 * SIGHUP and stops everything on SIGTERM/SIGINT. */
#include "master/master.h"
#include "common/log.h"
#include "common/net.h"
#include "common/pool.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/warren/warren.conf"

static void usage(FILE *out)
{
	fprintf(out, "usage: warren [-c FILE] [-t]\n"
		"  -c FILE  configuration (default: $WARREN_CONF, else %s)\n"
		"  -t       check the configuration and exit (0: valid, 1: errors)\n"
		"Runs in the foreground; SIGHUP reloads the configuration, SIGTERM or\n"
		"Ctrl-C stops the suite.\n", DEFAULT_CONFIG);
}

static void apply_logging(const struct warren_config *conf)
{
	log_init("warren/master",
		 conf->log.target == CONF_LOG_SYSLOG ? LOG_TARGET_SYSLOG : LOG_TARGET_STDERR,
		 (enum log_level)conf->log.level);
}

static char *exe_dir(const char *argv0)
{
	char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n <= 0) {
		snprintf(path, sizeof(path), "%s", argv0);
		n = (ssize_t)strlen(path);
	}
	path[n] = '\0';
	return x_strdup(dirname(path));
}

static int mkdir_p(const char *dir, mode_t mode)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, mode) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* The state folder, owned by the daemons' user when we run as root. */
static int prepare_state_dir(const struct warren_config *conf)
{
	if (mkdir_p(conf->state_dir, 0750) < 0) {
		log_error("cannot create state_dir %s: %s", conf->state_dir, strerror(errno));
		return -1;
	}
	if (geteuid() != 0)
		return 0;
	struct passwd *pw = getpwnam(conf->user);
	if (pw == NULL) {
		log_error("user \"%s\" does not exist: create it (useradd --system %s) or set "
			  "\"user\" in %s", conf->user, conf->user, conf->path);
		return -1;
	}
	if (chown(conf->state_dir, pw->pw_uid, pw->pw_gid) < 0) {
		log_error("cannot give %s to user %s: %s", conf->state_dir, conf->user,
			  strerror(errno));
		return -1;
	}
	return 0;
}

static int write_pid_file(struct master *m)
{
	size_t len = strlen(m->conf->state_dir) + sizeof("/warren.pid");
	m->pid_file = x_malloc(len);
	snprintf(m->pid_file, len, "%s/warren.pid", m->conf->state_dir);
	FILE *fp = fopen(m->pid_file, "w");
	if (fp == NULL) {
		log_error("cannot write %s: %s", m->pid_file, strerror(errno));
		return -1;
	}
	fprintf(fp, "%ld\n", (long)getpid());
	fclose(fp);
	return 0;
}

static int bind_listeners(struct master *m)
{
	const struct warren_config *conf = m->conf;
	m->listeners = x_calloc(conf->n_listeners + 1, sizeof(*m->listeners));
	for (size_t i = 0; i < conf->n_listeners; i++) {
		const struct conf_listener *cl = &conf->listeners[i];
		struct master_listener *ml = &m->listeners[m->n_listeners];
		const char *err;
		if (net_bind_socket(cl->address, cl->port, &ml->fd, &err) < 0) {
			log_error("listener %s: cannot listen on %s port %u: %s (%s:%d)", cl->name,
				  cl->address, cl->port, err, cl->file, cl->line);
			return -1;
		}
		ml->name = x_strdup(cl->name);
		ml->service = cl->service;
		ml->address = x_strdup(cl->address);
		ml->port = cl->port;
		m->n_listeners++;
		log_info("listening on %s port %u (%s, %s, tls %s)", cl->address, cl->port,
			 cl->name, conf_service_name(cl->service), conf_tls_mode_name(cl->tls));
	}
	return 0;
}

static void close_listeners(struct master *m)
{
	for (size_t i = 0; i < m->n_listeners; i++) {
		close(m->listeners[i].fd);
		free(m->listeners[i].name);
		free(m->listeners[i].address);
	}
	free(m->listeners);
	m->listeners = NULL;
	m->n_listeners = 0;
}

/* ---- signals ---- */

static bool listeners_changed(const struct master *m, const struct warren_config *conf)
{
	size_t wanted = 0;
	for (size_t i = 0; i < conf->n_listeners; i++) {
		const struct conf_listener *cl = &conf->listeners[i];
		if (cl->service == CONF_SERVICE_HTTP)
			continue;
		wanted++;
		bool found = false;
		for (size_t j = 0; j < m->n_listeners; j++) {
			const struct master_listener *ml = &m->listeners[j];
			if (strcmp(ml->name, cl->name) == 0 && ml->port == cl->port &&
			    ml->service == cl->service && strcmp(ml->address, cl->address) == 0)
				found = true;
		}
		if (!found)
			return true;
	}
	return wanted != m->n_listeners;
}

static void sighup_cb(uv_signal_t *handle, int signum)
{
	struct master *m = handle->data;
	struct warren_config *conf;
	char *errors;
	log_info("reloading %s", m->config_path);
	if (conf_load(m->config_path, 0, &conf, &errors) < 0) {
		log_error("reload refused, %s has errors; the running configuration stays:\n%s",
			  m->config_path, errors);
		free(errors);
		return;
	}
	if (listeners_changed(m, conf))
		log_warn("reload: listeners were added, removed or moved; that takes a restart "
			 "of warren");
	conf_unref(&m->conf);
	m->conf = conf;
	apply_logging(conf);
	if (master_conf_save(m) < 0)
		log_warn("the daemons keep reading the configuration saved before");
	master_children_signal(m, SIGHUP);
	log_info("configuration generation %lu sent to the daemons", conf->generation);
}

static void close_noop(uv_handle_t *handle)
{
	(void)handle;
}

void master_children_stopped(struct master *m)
{
	uv_timer_stop(&m->stop_timer);
	uv_close((uv_handle_t *)&m->stop_timer, close_noop);
	for (size_t i = 0; i < MASTER_N_CHILDREN; i++)
		uv_close((uv_handle_t *)&m->children[i].restart_timer, close_noop);
	close_listeners(m);
	master_store_stop(m);
	if (m->pid_file != NULL)
		unlink(m->pid_file);
	log_info("stopped");
}

void master_stop_timeout_cb(uv_timer_t *timer)
{
	struct master *m = timer->data;
	log_warn("daemons did not stop in time; killing them");
	master_children_signal(m, SIGKILL);
}

static void sigterm_cb(uv_signal_t *handle, int signum)
{
	struct master *m = handle->data;
	if (m->stopping)
		return;
	m->stopping = true;
	log_info("stopping (signal %d)", signum);
	uv_close((uv_handle_t *)&m->sighup, close_noop);
	uv_close((uv_handle_t *)&m->sigterm, close_noop);
	uv_close((uv_handle_t *)&m->sigint, close_noop);
	uv_close((uv_handle_t *)&m->sigusr2, close_noop);
	master_children_signal(m, SIGTERM);
	if (!master_children_running(m)) {
		master_children_stopped(m);
		return;
	}
	uv_timer_start(&m->stop_timer, master_stop_timeout_cb, MASTER_STOP_TIMEOUT_MS, 0);
}

/* SIGUSR2: a process (warrenctl, a tool) found the store in need of recovery. */
static void sigusr2_cb(uv_signal_t *handle, int signum)
{
	master_store_recover(handle->data, "requested by a process that could not open it");
}

/* ---- main ---- */

static int check_only(const char *path)
{
	struct warren_config *conf;
	char *errors;
	if (conf_load(path, 0, &conf, &errors) < 0) {
		fputs(errors, stderr);
		fprintf(stderr, "%s: configuration has errors\n", path);
		free(errors);
		return 1;
	}
	printf("%s: configuration ok\n", conf->path);
	conf_unref(&conf);
	return 0;
}

int main(int argc, char **argv)
{
	/* Until the loop's handlers are in place, a reload (SIGHUP) or a recovery
	 * request (SIGUSR2, which any process that finds the store in need of
	 * recovery sends) must not kill the master. */
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	const char *path = getenv("WARREN_CONF");
	bool test = false;
	int c;
	while ((c = getopt(argc, argv, "c:th")) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 't': test = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (path == NULL)
		path = DEFAULT_CONFIG;
	log_init("warren/master", LOG_TARGET_STDERR, LOG_LEVEL_INFO);
	if (test)
		return check_only(path);

	struct master m;
	memset(&m, 0, sizeof(m));
	char *errors;
	if (conf_load(path, 0, &m.conf, &errors) < 0) {
		fputs(errors, stderr);
		log_error("%s has errors; not starting", path);
		free(errors);
		return 1;
	}
	m.config_path = x_strdup(m.conf->path);
	m.exe_dir = exe_dir(argv[0]);
	apply_logging(m.conf);
	signal(SIGPIPE, SIG_IGN);
	m.loop = uv_default_loop();

	if (prepare_state_dir(m.conf) < 0 || bind_listeners(&m) < 0 || write_pid_file(&m) < 0 ||
	    master_conf_save(&m) < 0 || master_store_start(&m) < 0)
		return 1;

	uv_signal_init(m.loop, &m.sighup);
	uv_signal_init(m.loop, &m.sigterm);
	uv_signal_init(m.loop, &m.sigint);
	uv_signal_init(m.loop, &m.sigusr2);
	m.sighup.data = m.sigterm.data = m.sigint.data = m.sigusr2.data = &m;
	uv_signal_start(&m.sigusr2, sigusr2_cb, SIGUSR2);
	uv_signal_start(&m.sighup, sighup_cb, SIGHUP);
	uv_signal_start(&m.sigterm, sigterm_cb, SIGTERM);
	uv_signal_start(&m.sigint, sigterm_cb, SIGINT);
	uv_timer_init(m.loop, &m.stop_timer);
	m.stop_timer.data = &m;

	master_children_init(&m);
	log_info("starting Warren with %s (configuration generation %lu)", m.config_path,
		 m.conf->generation);
	master_children_start(&m);
	uv_run(m.loop, UV_RUN_DEFAULT);

	conf_unref(&m.conf);
	free(m.config_path);
	free(m.exe_dir);
	free(m.pid_file);
	free(m.auth_socket);
	return 0;
}
