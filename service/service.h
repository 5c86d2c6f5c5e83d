/* service.h — the runtime every protocol daemon shares.
 *
 * service_main() does what smtpd, imapd and pop3d have in common: parse the
 * command line, load the config, set up logging, take the listening sockets the
 * master passed (WARREN_LISTEN_FDS) or bind them itself when run alone, switch to
 * the unprivileged user, reload on SIGHUP (sessions in flight keep the snapshot
 * they started with), stop on SIGTERM, and run the loop. The daemon supplies a
 * service_def with its accept callback.
 */
#ifndef WARREN_SERVICE_H
#define WARREN_SERVICE_H

#include "common/auth.h"
#include "conf/conf.h"
#include "storage/store.h"

#include <uv.h>

struct service;
struct net_conn;
struct service_login;

struct service_def {
	const char *name;                 /* "smtpd": log ident warren/smtpd */
	unsigned services;                /* bit set of 1 << enum conf_service served */
	/* The reply written when a listener's connection limits are hit. */
	const char *(*busy_reply)(enum conf_service service);
	/* A new connection on listener. conf is a reference owned by the callee
	 * (drop it with conf_unref when the session ends). */
	void (*accept)(struct service *svc, struct net_conn *conn,
		       struct warren_config *conf, const struct conf_listener *listener);
	/* The daemon is stopping: say goodbye to sessions and close them. */
	void (*shutdown)(struct service *svc);
	/* Optional: called once on the loop thread, with the store open, right
	 * before the loop runs (smtpd starts its queue runner here). */
	void (*start)(struct service *svc);
};

/* Runs the daemon; returns the process exit status. */
int service_main(int argc, char **argv, const struct service_def *def);

uv_loop_t *service_loop(struct service *svc);
struct auth_pool *service_auth(struct service *svc);
/* The mailbox store (opened after the privilege drop). */
struct store *service_store(struct service *svc);
/* Called on the loop thread for every mailbox another session or process changed. */
void service_set_notify(struct service *svc, store_notify_callback *cb, void *ctx);
/* The current snapshot (borrowed: take a reference to keep it). */
struct warren_config *service_conf(struct service *svc);
const char *service_name(struct service *svc);
/* Opaque per-daemon data for the protocol code. */
void service_set_data(struct service *svc, void *data);
void *service_data(struct service *svc);

/* ---- logins ---- */

/* mailbox is NULL unless result is AUTH_OK; it points into the snapshot passed
 * to service_login (keep a reference to it). */
typedef void service_login_callback(enum auth_result result,
				    const struct conf_mailbox *mailbox, void *ctx);

/* Verifies login/password against the mailbox's domain backend (local hash or
 * PAM). The callback runs later on the loop thread, unless cancelled. */
struct service_login *service_login(struct service *svc, const struct warren_config *conf,
				    const char *login, const char *password,
				    const char *client_ip, const char *protocol,
				    service_login_callback *cb, void *ctx);
void service_login_cancel(struct service_login *login);

/* limits.max_command_args of the line protocols (smtpd, pop3d): true, with a log
 * line naming session id and peer, when args (the command's arguments, words
 * separated by spaces) has more words than conf allows. */
bool service_too_many_args(const struct warren_config *conf, const char *id,
			   const char *peer, const char *args);

/* Environment variable through which the master hands listening sockets:
 * "name=fd,name=fd". */
#define SERVICE_LISTEN_FDS_ENV "WARREN_LISTEN_FDS"
/* Environment variable naming the master's copy of the configuration it runs
 * (conf_load_from's root); daemons started by the master read that copy. */
#define SERVICE_CONF_ROOT_ENV "WARREN_CONF_ROOT"
/* Exit status of a daemon that found the store in need of recovery. */
#define SERVICE_EXIT_RECOVER 75
/* How often a daemon's watchdog runs Berkeley DB's failchk. */
#define SERVICE_FAILCHK_MS 1000

#endif
