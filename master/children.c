/* children.c — starting, watching and restarting the protocol daemons. */
#include "master/master.h"
#include "common/log.h"
#include "common/pool.h"
#include "service/service.h"

#include "common/auth-helper.h"

#include <pwd.h>
#include <sys/random.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static void child_spawn(struct master_child *c);

/* PAM services handed to warren-authd at most. */
#define AUTHD_SERVICES_MAX 64

/* warren-authd runs when we are root, auth.helper is on and a domain uses PAM. */
static void auth_helper_prepare(struct master *m)
{
	const struct warren_config *conf = m->conf;
	bool pam = false;
	for (size_t i = 0; i < conf->n_domains; i++)
		pam |= conf->domains[i].auth == CONF_AUTH_PAM;
	if (geteuid() != 0 || !conf->auth.helper || !pam)
		return;
	struct passwd *pw = getpwnam(conf->user);
	if (pw == NULL) {
		log_warn("user %s not found: PAM checks run in the daemons", conf->user);
		return;
	}
	m->auth_uid = (long)pw->pw_uid;
	m->auth_gid = (long)pw->pw_gid;
	/* a random name in the abstract namespace: no file to swap, nothing to guess */
	unsigned char rnd[8];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		log_warn("getrandom failed: PAM checks run in the daemons");
		return;
	}
	m->auth_socket = x_malloc(sizeof("warren-authd-") + 2 * sizeof(rnd));
	int o = sprintf(m->auth_socket, "warren-authd-");
	for (size_t i = 0; i < sizeof(rnd); i++)
		o += sprintf(m->auth_socket + o, "%02x", rnd[i]);
}

void master_children_init(struct master *m)
{
	static const struct {
		const char *name;
		unsigned services;
		bool uses_store;
	} defs[MASTER_N_CHILDREN] = {
		/* PAM as root for the others (common/auth-helper.h); no listener.
		 * First, so that it is up before the daemons' first logins. */
		{ "authd", 0, false },
		{ "smtpd", (1u << CONF_SERVICE_SMTP) | (1u << CONF_SERVICE_SUBMISSION), true },
		{ "imapd", 1u << CONF_SERVICE_IMAP, true },
		{ "pop3d", 1u << CONF_SERVICE_POP3, true },
		/* HTTP (auto-configuration, metrics) never opens the store */
		{ "httpd", 1u << CONF_SERVICE_HTTP, false },
	};
	auth_helper_prepare(m);
	for (size_t i = 0; i < MASTER_N_CHILDREN; i++) {
		struct master_child *c = &m->children[i];
		c->name = defs[i].name;
		c->services = defs[i].services;
		c->uses_store = defs[i].uses_store;
		c->master = m;
		c->backoff_ms = MASTER_RESTART_MIN_MS;
		uv_timer_init(m->loop, &c->restart_timer);
		c->restart_timer.data = c;
		for (size_t l = 0; l < m->n_listeners; l++)
			if (c->services & (1u << m->listeners[l].service))
				c->wanted = true;
		if (c->services == 0)
			c->wanted = m->auth_socket != NULL;
	}
}

static void restart_cb(uv_timer_t *timer)
{
	struct master_child *c = timer->data;
	if (!c->master->stopping)
		child_spawn(c);
}

static void proc_close_cb(uv_handle_t *handle)
{
	(void)handle;
}

/* A failed uv_spawn leaves the handle initialised: it is closed, and only once
 * the close has completed may the handle be spawned again. (Restarting from a
 * timer that fires before the close completes puts the handle on libuv's
 * closing list twice, an assertion failure: the loop's cached time can make a
 * 500 ms timer fire in the very next iteration after a slow start-up.) */
static void spawn_failed_close_cb(uv_handle_t *handle)
{
	struct master_child *c = handle->data;
	if (!c->master->stopping)
		uv_timer_start(&c->restart_timer, restart_cb, c->backoff_ms, 0);
	c->backoff_ms = c->backoff_ms * 2 > MASTER_RESTART_MAX_MS ?
		MASTER_RESTART_MAX_MS : c->backoff_ms * 2;
}

static void exit_cb(uv_process_t *proc, int64_t status, int term_signal)
{
	struct master_child *c = proc->data;
	struct master *m = c->master;
	c->running = false;
	uv_close((uv_handle_t *)proc, proc_close_cb);
	if (m->stopping) {
		log_info("warren-%s stopped", c->name);
		if (!master_children_running(m))
			master_children_stopped(m);
		return;
	}
	if (m->recovering) {
		log_info("warren-%s stopped for the store's recovery", c->name);
		/* recover on the next loop turn, once the process handles are closed */
		if (!master_children_running(m))
			uv_timer_start(&m->stop_timer, master_recover_timer_cb, 0, 0);
		return;
	}
	if (term_signal != 0)
		log_warn("warren-%s (pid %d) killed by signal %d", c->name, proc->pid, term_signal);
	else
		log_warn("warren-%s (pid %d) exited with status %lld", c->name, proc->pid,
			 (long long)status);
	uint64_t ran = uv_now(m->loop) - c->started_at;
	if (ran >= MASTER_STABLE_MS)
		c->backoff_ms = MASTER_RESTART_MIN_MS;
	unsigned delay = c->backoff_ms;
	c->backoff_ms = c->backoff_ms * 2 > MASTER_RESTART_MAX_MS ?
		MASTER_RESTART_MAX_MS : c->backoff_ms * 2;
	/* A daemon that died abnormally was attached to the store: Berkeley DB's
	 * DB_REGISTER then requires recovery before anyone opens the store again
	 * (DESIGN.md: stop them all, recover, start them again). The daemon that died
	 * keeps its back-off, so one that crashes at once does not recover in a loop.
	 * httpd never attaches to the store: it is only restarted. */
	if ((term_signal != 0 || status != 0) && c->uses_store) {
		log_info("restarting warren-%s in %u ms, after the store's recovery", c->name, delay);
		c->restart_delay_ms = delay;
		c->crashed = true;
		master_store_recover(m, "a daemon ended abnormally");
		return;
	}
	log_info("restarting warren-%s in %u ms", c->name, delay);
	uv_timer_start(&c->restart_timer, restart_cb, delay, 0);
}

static bool env_is(const char *entry, const char *name)
{
	size_t len = strlen(name);
	return strncmp(entry, name, len) == 0 && entry[len] == '=';
}

/* The environment of a daemon: ours, with its listening sockets named and, when
 * warren-authd runs, its socket. The added entries are malloc'ed (env_free). */
static char **child_env(const char *fds_spec, const char *auth_socket)
{
	size_t n = 0;
	while (environ[n] != NULL)
		n++;
	char **env = x_calloc(n + 3, sizeof(*env));
	size_t o = 0;
	for (size_t i = 0; i < n; i++)
		if (!env_is(environ[i], SERVICE_LISTEN_FDS_ENV) &&
		    !env_is(environ[i], AUTH_HELPER_ENV))
			env[o++] = environ[i];
	size_t len = strlen(SERVICE_LISTEN_FDS_ENV) + strlen(fds_spec) + 2;
	env[o] = x_malloc(len);
	snprintf(env[o++], len, "%s=%s", SERVICE_LISTEN_FDS_ENV, fds_spec);
	if (auth_socket != NULL) {
		len = strlen(AUTH_HELPER_ENV) + strlen(auth_socket) + 2;
		env[o] = x_malloc(len);
		snprintf(env[o++], len, "%s=%s", AUTH_HELPER_ENV, auth_socket);
	}
	return env;
}

static void env_free(char **env)
{
	for (size_t i = 0; env[i] != NULL; i++)
		if (env_is(env[i], SERVICE_LISTEN_FDS_ENV) || env_is(env[i], AUTH_HELPER_ENV))
			free(env[i]);
	free(env);
}

static void child_spawn(struct master_child *c)
{
	struct master *m = c->master;
	uv_stdio_container_t stdio[3 + 64];
	char spec[4096] = "";
	size_t so = 0;
	int count = 3;
	for (int i = 0; i < 3; i++) {
		stdio[i].flags = UV_INHERIT_FD;
		stdio[i].data.fd = i;
	}
	for (size_t l = 0; l < m->n_listeners && count < (int)(sizeof(stdio) / sizeof(stdio[0])); l++) {
		struct master_listener *ml = &m->listeners[l];
		if (!(c->services & (1u << ml->service)) || ml->fd < 0)
			continue;
		stdio[count].flags = UV_INHERIT_FD;
		stdio[count].data.fd = ml->fd;
		int n = snprintf(spec + so, sizeof(spec) - so, "%s%s=%d", so ? "," : "",
				 ml->name, count);
		if (n < 0 || (size_t)n >= sizeof(spec) - so) {
			log_error("warren-%s: too many or too long listener names; listener %s "
				  "not handed over", c->name, ml->name);
			spec[so] = '\0';
			break;
		}
		so += (size_t)n;
		count++;
	}
	char program[4096];
	snprintf(program, sizeof(program), "%s/warren-%s", m->exe_dir, c->name);
	char *args[] = { program, "-c", m->config_path, NULL };
	/* authd: its name, the user it serves and the PAM services it may run */
	char uid[32], pam_ms[32];
	char *authd_args[10 + 2 * AUTHD_SERVICES_MAX];
	size_t na = 0;
	if (c->services == 0) {
		snprintf(uid, sizeof(uid), "%ld", m->auth_uid);
		authd_args[na++] = program;
		authd_args[na++] = "-S";
		authd_args[na++] = m->auth_socket;
		authd_args[na++] = "-u";
		authd_args[na++] = uid;
		snprintf(pam_ms, sizeof(pam_ms), "%u", m->conf->auth.helper_timeout_ms);
		authd_args[na++] = "-t";
		authd_args[na++] = pam_ms;
		authd_args[na++] = "-l";
		authd_args[na++] = m->conf->log.target == CONF_LOG_SYSLOG ? "syslog" : "stderr";
		const struct warren_config *conf = m->conf;
		for (size_t i = 0; i < conf->n_domains && na + 3 < sizeof(authd_args) / sizeof(char *); i++) {
			const struct conf_domain *d = &conf->domains[i];
			bool seen = false;
			for (size_t k = 0; k < i && !seen; k++)
				seen = conf->domains[k].auth == CONF_AUTH_PAM &&
					strcmp(conf->domains[k].pam_service, d->pam_service) == 0;
			if (d->auth != CONF_AUTH_PAM || seen)
				continue;
			authd_args[na++] = "-s";
			authd_args[na++] = (char *)d->pam_service;
		}
		authd_args[na] = NULL;
	}
	char **env = child_env(spec, c->services == 0 ? NULL : m->auth_socket);
	uv_process_options_t opts = {
		.exit_cb = exit_cb,
		.file = program,
		.args = c->services == 0 ? authd_args : args,
		.env = env,
		.stdio_count = count,
		.stdio = stdio,
	};
	c->proc.data = c;
	int ret = uv_spawn(m->loop, &c->proc, &opts);
	env_free(env);
	if (ret < 0) {
		log_error("cannot start %s: %s", program, uv_strerror(ret));
		uv_close((uv_handle_t *)&c->proc, spawn_failed_close_cb);
		return;
	}
	c->running = true;
	c->started_at = uv_now(m->loop);
	log_info("started warren-%s (pid %d)", c->name, c->proc.pid);
}

void master_children_start(struct master *m)
{
	for (size_t i = 0; i < MASTER_N_CHILDREN; i++) {
		struct master_child *c = &m->children[i];
		if (!c->wanted)
			continue;
		if (c->crashed) {
			c->crashed = false;
			uv_timer_start(&c->restart_timer, restart_cb, c->restart_delay_ms, 0);
		} else {
			child_spawn(c);
		}
	}
}

void master_children_signal(struct master *m, int signum)
{
	for (size_t i = 0; i < MASTER_N_CHILDREN; i++) {
		struct master_child *c = &m->children[i];
		if (c->running)
			uv_process_kill(&c->proc, signum);
		if (signum == SIGTERM || signum == SIGKILL)
			uv_timer_stop(&c->restart_timer);
	}
}

bool master_children_running(const struct master *m)
{
	for (size_t i = 0; i < MASTER_N_CHILDREN; i++)
		if (m->children[i].running)
			return true;
	return false;
}
