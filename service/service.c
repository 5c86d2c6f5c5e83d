/* service.c — start-up, listeners, reload and shutdown shared by the daemons. */
#include "service/service.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/privs.h"
#include "common/net.h"
#include "common/pool.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/warren/warren.conf"
/* How long sessions get to finish when the daemon stops. */
#define SERVICE_SHUTDOWN_GRACE_MS 5000

struct service_listener {
	char *name;
	enum conf_service service;
	struct net_listener *net;
	struct service *svc;
};

struct service {
	const struct service_def *def;
	uv_loop_t *loop;
	char *config_path;
	struct warren_config *conf;
	struct auth_pool *auth;
	struct service_listener *listeners;
	size_t n_listeners;
	uv_signal_t sighup, sigterm, sigint;
	uv_timer_t shutdown_timer;
	bool stopping;
	void *data;
	struct store *store;
	store_notify_callback *notify_cb;
	void *notify_ctx;
};

uv_loop_t *service_loop(struct service *svc) { return svc->loop; }
struct auth_pool *service_auth(struct service *svc) { return svc->auth; }
struct warren_config *service_conf(struct service *svc) { return svc->conf; }
struct store *service_store(struct service *svc) { return svc->store; }

void service_set_notify(struct service *svc, store_notify_callback *cb, void *ctx)
{
	svc->notify_cb = cb;
	svc->notify_ctx = ctx;
}

static void notify_cb(uint64_t mailbox_id, void *ctx)
{
	struct service *svc = ctx;
	if (svc->notify_cb != NULL)
		svc->notify_cb(mailbox_id, svc->notify_ctx);
}

/* From the watchdog thread: a dead process left the store in need of recovery.
 * Exit at once so that the master can recover (we may otherwise hang on a mutex
 * the dead process held). */
static void store_needs_recovery(void *ctx)
{
	log_error("the store needs recovery; exiting so that the master can recover it");
	_exit(SERVICE_EXIT_RECOVER);
}

static int open_store(struct service *svc)
{
	struct store_settings settings = {
		.dir = svc->conf->state_dir,
		.mime_max_depth = svc->conf->limits.max_mime_depth,
		.flags = STORE_OPEN_NOTIFY |
			 (getenv(SERVICE_LISTEN_FDS_ENV) == NULL ? STORE_OPEN_RECOVER : 0),
	};
	const char *err = "";
	int ret = store_open(&settings, &svc->store, &err);
	if (ret != STORE_OK) {
		log_error("cannot open the store in %s: %s", svc->conf->state_dir, err);
		return ret == STORE_ERECOVER ? SERVICE_EXIT_RECOVER : 1;
	}
	if (store_notify_start(svc->store, svc->loop, notify_cb, svc) != STORE_OK ||
	    store_watchdog_start(svc->store, SERVICE_FAILCHK_MS, store_needs_recovery, svc) != STORE_OK) {
		log_error("cannot start the store's notifications and watchdog");
		return 1;
	}
	return 0;
}
const char *service_name(struct service *svc) { return svc->def->name; }
void service_set_data(struct service *svc, void *data) { svc->data = data; }
void *service_data(struct service *svc) { return svc->data; }

static void auth_settings(const struct warren_config *conf, struct auth_pool_settings *s)
{
	s->threads = conf->auth.threads;
	s->queue_max = conf->auth.queue_max;
	s->cache_ttl_s = conf->auth.cache_ttl_s;
	s->cache_size = conf->auth.cache_size;
	s->failure_delay_ms = conf->auth.failure_delay_ms;
	s->failure_delay_max_ms = conf->auth.failure_delay_max_ms;
}

static void apply_logging(const struct service *svc, const struct warren_config *conf)
{
	char ident[64];
	snprintf(ident, sizeof(ident), "warren/%s", svc->def->name);
	log_init(ident, conf->log.target == CONF_LOG_SYSLOG ? LOG_TARGET_SYSLOG : LOG_TARGET_STDERR,
		 (enum log_level)conf->log.level);
}

static const struct conf_listener *find_listener(const struct warren_config *conf,
						 const char *name)
{
	for (size_t i = 0; i < conf->n_listeners; i++)
		if (strcmp(conf->listeners[i].name, name) == 0)
			return &conf->listeners[i];
	return NULL;
}

static void net_settings(const struct service *svc, const struct conf_listener *cl,
			 struct net_listener_settings *s)
{
	s->max_connections = cl->max_connections;
	s->max_connections_per_ip = cl->max_connections_per_ip;
	s->busy_reply = svc->def->busy_reply != NULL ? svc->def->busy_reply(cl->service) : NULL;
	s->name = cl->name;
	s->proxy_protocol = cl->proxy_protocol;
	s->proxy_trusted = cl->proxy_trusted;
	s->n_proxy_trusted = cl->n_proxy_trusted;
	s->proxy_timeout_ms = cl->proxy_timeout_ms;
	s->tls_min_protocol = cl->tls_min_protocol;
	s->tls_ciphers = cl->tls_ciphers;
	s->tls_ciphersuites = cl->tls_ciphersuites;
}

/* ---- accepting ---- */

static void accept_cb(struct net_conn *conn, void *ctx)
{
	struct service_listener *sl = ctx;
	struct service *svc = sl->svc;
	const struct conf_listener *cl = find_listener(svc->conf, sl->name);
	if (cl == NULL || svc->stopping) {
		net_conn_abort(conn);
		return;
	}
	net_conn_set_max_line(conn, cl->max_line_length);
	net_conn_set_idle_timeout(conn, cl->idle_timeout_s * 1000);
	net_conn_set_input_timeout(conn, cl->command_timeout_s * 1000);
	net_conn_set_session_timeout(conn, cl->session_timeout_s * 1000);
	svc->def->accept(svc, conn, conf_ref(svc->conf), cl);
}

/* Adds a listener in the next slot of svc->listeners, which open_listeners()
 * sized for every listener of the config: the slot's address is the net
 * listener's context and must not move. */
static int add_listener(struct service *svc, const struct conf_listener *cl, int fd)
{
	struct net_listener_settings settings;
	const char *err = NULL;
	if (svc->n_listeners >= svc->conf->n_listeners)
		return -1;
	net_settings(svc, cl, &settings);
	struct service_listener *sl = &svc->listeners[svc->n_listeners];
	sl->name = x_strdup(cl->name);
	sl->service = cl->service;
	sl->svc = svc;
	if (fd >= 0)
		sl->net = net_listener_open_fd(svc->loop, fd, &settings, accept_cb, sl, &err);
	else
		sl->net = net_listener_open(svc->loop, cl->address, cl->port, &settings,
					    accept_cb, sl, &err);
	if (sl->net == NULL) {
		log_error("listener %s: cannot listen on %s port %u: %s", cl->name, cl->address,
			  cl->port, err);
		x_free(&sl->name);
		return -1;
	}
	svc->n_listeners++;
	return 0;
}

/* Listening sockets handed over by the master: "name=fd,name=fd". */
static int open_inherited(struct service *svc, const char *spec)
{
	char *copy = x_strdup(spec), *save = NULL;
	int ret = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (eq == NULL)
			continue;
		*eq = '\0';
		int fd = atoi(eq + 1);
		const struct conf_listener *cl = find_listener(svc->conf, tok);
		if (cl == NULL || !(svc->def->services & (1u << cl->service))) {
			log_warn("listener %s from the master is not in the configuration", tok);
			close(fd);
			continue;
		}
		if (add_listener(svc, cl, fd) < 0)
			ret = -1;
	}
	free(copy);
	return ret;
}

static int open_listeners(struct service *svc)
{
	/* the listener contexts must not move once handed to net: size them first */
	svc->listeners = x_calloc(svc->conf->n_listeners + 1, sizeof(*svc->listeners));
	const char *spec = getenv(SERVICE_LISTEN_FDS_ENV);
	if (spec != NULL)
		return open_inherited(svc, spec);
	for (size_t i = 0; i < svc->conf->n_listeners; i++) {
		const struct conf_listener *cl = &svc->conf->listeners[i];
		if ((svc->def->services & (1u << cl->service)) && add_listener(svc, cl, -1) < 0)
			return -1;
	}
	return 0;
}

/* Under the master, the copy of the configuration the master accepted last
 * (SERVICE_CONF_ROOT_ENV); alone, the file itself. */
static int load_config(struct service *svc, struct warren_config **conf_r, char **errors_r)
{
	const char *root = getenv(SERVICE_LISTEN_FDS_ENV) != NULL ?
		getenv(SERVICE_CONF_ROOT_ENV) : NULL;
	return conf_load_from(svc->config_path, root, 0, conf_r, errors_r);
}

/* ---- signals ---- */

static void reload(struct service *svc)
{
	struct warren_config *conf;
	char *errors;
	if (load_config(svc, &conf, &errors) < 0) {
		log_error("reload: %s has errors; keeping the running configuration:\n%s",
			  svc->config_path, errors);
		free(errors);
		return;
	}
	for (size_t i = 0; i < svc->n_listeners; i++) {
		struct service_listener *sl = &svc->listeners[i];
		const struct conf_listener *cl = find_listener(conf, sl->name);
		const struct conf_listener *old = find_listener(svc->conf, sl->name);
		if (cl == NULL) {
			log_warn("reload: listener %s was removed; it stops at the next restart",
				 sl->name);
			continue;
		}
		if (old != NULL && (strcmp(old->address, cl->address) != 0 || old->port != cl->port))
			log_warn("reload: listener %s moved to %s port %u; that takes a restart",
				 sl->name, cl->address, cl->port);
		struct net_listener_settings settings;
		net_settings(svc, cl, &settings);
		net_listener_update(sl->net, &settings);
	}
	struct auth_pool_settings as;
	auth_settings(conf, &as);
	auth_pool_reconfigure(svc->auth, &as);
	apply_logging(svc, conf);
	conf_unref(&svc->conf);
	svc->conf = conf;
	log_info("reloaded configuration %s (generation %lu)", conf->path, conf->generation);
}

static void sighup_cb(uv_signal_t *handle, int signum)
{
	reload(handle->data);
}

static void close_cb_noop(uv_handle_t *handle)
{
	(void)handle;
}

static void shutdown_timer_cb(uv_timer_t *timer)
{
	log_info("stopping with sessions still open");
	exit(0);
}

static void sigterm_cb(uv_signal_t *handle, int signum)
{
	struct service *svc = handle->data;
	if (svc->stopping)
		return;
	svc->stopping = true;
	log_info("stopping");
	for (size_t i = 0; i < svc->n_listeners; i++)
		net_listener_close(svc->listeners[i].net);
	uv_close((uv_handle_t *)&svc->sighup, close_cb_noop);
	uv_close((uv_handle_t *)&svc->sigterm, close_cb_noop);
	uv_close((uv_handle_t *)&svc->sigint, close_cb_noop);
	if (svc->def->shutdown != NULL)
		svc->def->shutdown(svc);
	auth_pool_free(&svc->auth);
	store_notify_stop(svc->store);
	uv_timer_start(&svc->shutdown_timer, shutdown_timer_cb, SERVICE_SHUTDOWN_GRACE_MS, 0);
	uv_unref((uv_handle_t *)&svc->shutdown_timer);
}

/* ---- main ---- */

#define SERVICE_THREADPOOL_SIZE "16"

static void usage(const char *name)
{
	fprintf(stderr, "usage: warren-%s [-c FILE]\n"
		"Runs under the master `warren`; alone (for debugging) it binds its listeners "
		"itself.\nThe configuration is -c FILE, else $WARREN_CONF, else %s.\n",
		name, DEFAULT_CONFIG);
}

static int parse_args(struct service *svc, int argc, char **argv)
{
	const char *path = getenv("WARREN_CONF");
	int c;
	while ((c = getopt(argc, argv, "c:h")) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		default: usage(svc->def->name); return -1;
		}
	}
	svc->config_path = x_strdup(path != NULL ? path : DEFAULT_CONFIG);
	return 0;
}

int service_main(int argc, char **argv, const struct service_def *def)
{
	struct service svc_storage, *svc = &svc_storage;
	memset(svc, 0, sizeof(*svc));
	svc->def = def;
	char ident[64];
	snprintf(ident, sizeof(ident), "warren/%s", def->name);
	log_init(ident, LOG_TARGET_STDERR, LOG_LEVEL_INFO);
	/* a reload (the master's SIGHUP) that comes while we are still starting must not
	 * kill us (SIGHUP's default action), which the master would take for a crash in
	 * the store and answer with a recovery; sighup_cb takes over once the loop runs */
	signal(SIGHUP, SIG_IGN);
	if (parse_args(svc, argc, argv) < 0)
		return 2;

	char *errors;
	if (load_config(svc, &svc->conf, &errors) < 0) {
		log_error("%s has errors:\n%s", svc->config_path, errors);
		free(errors);
		return 1;
	}
	apply_logging(svc, svc->conf);
	signal(SIGPIPE, SIG_IGN);
	/* libuv's pool runs the store calls and smtpd's SPF checks (libspf2 blocks on
	 * DNS): with its default 4 threads, a few SPF lookups of domains whose servers
	 * never answer would hold up every delivery of the process. An admin's own
	 * UV_THREADPOOL_SIZE wins. */
	setenv("UV_THREADPOOL_SIZE", SERVICE_THREADPOOL_SIZE, 0);
	svc->loop = uv_default_loop();
	if (open_listeners(svc) < 0)
		return 1;
	if (privs_drop(svc->conf->user, svc->conf->path) < 0)
		return 1;
	metrics_open(svc->conf->state_dir);    /* counters for httpd's /metrics */
	/* under the master: do not outlive it (it would not be there to recover) */
	if (getenv(SERVICE_LISTEN_FDS_ENV) != NULL)
		prctl(PR_SET_PDEATHSIG, SIGTERM);
	int ret = open_store(svc);
	if (ret != 0)
		return ret;

	struct auth_pool_settings as;
	auth_settings(svc->conf, &as);
	svc->auth = auth_pool_new(svc->loop, &as);
	if (svc->auth == NULL) {
		log_error("cannot start the authentication threads");
		return 1;
	}

	uv_signal_init(svc->loop, &svc->sighup);
	uv_signal_init(svc->loop, &svc->sigterm);
	uv_signal_init(svc->loop, &svc->sigint);
	svc->sighup.data = svc->sigterm.data = svc->sigint.data = svc;
	uv_signal_start(&svc->sighup, sighup_cb, SIGHUP);
	uv_signal_start(&svc->sigterm, sigterm_cb, SIGTERM);
	uv_signal_start(&svc->sigint, sigterm_cb, SIGINT);
	uv_timer_init(svc->loop, &svc->shutdown_timer);

	log_info("started (%zu listeners, configuration generation %lu)", svc->n_listeners,
		 svc->conf->generation);
	if (def->start != NULL)
		def->start(svc);
	uv_run(svc->loop, UV_RUN_DEFAULT);
	log_info("stopped");

	store_close(&svc->store);
	conf_unref(&svc->conf);
	for (size_t i = 0; i < svc->n_listeners; i++)
		free(svc->listeners[i].name);
	free(svc->listeners);
	free(svc->config_path);
	return 0;
}

bool service_too_many_args(const struct warren_config *conf, const char *id,
			   const char *peer, const char *args)
{
	unsigned words = 0;
	for (const char *p = args; *p != '\0'; p++)
		if (*p != ' ' && (p == args || p[-1] == ' '))
			words++;
	if (words <= conf->limits.max_command_args)
		return false;
	log_info("%s: command with %u arguments (limit %u) from [%s]", id, words,
		 conf->limits.max_command_args, peer);
	return true;
}
