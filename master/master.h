/* master.h — the master process `warren` (private to master/). */
#ifndef WARREN_MASTER_H
#define WARREN_MASTER_H

#include "conf/conf.h"
#include "storage/store.h"

#include <stdbool.h>
#include <uv.h>

/* Restart back-off for a daemon that keeps dying: doubles from MIN up to MAX,
 * back to MIN once a daemon has run for MASTER_STABLE_MS. */
#define MASTER_RESTART_MIN_MS 500
#define MASTER_RESTART_MAX_MS 60000
#define MASTER_STABLE_MS 30000
/* How long daemons get to stop before they are killed. */
#define MASTER_STOP_TIMEOUT_MS 10000
/* Before recovery, daemons get this long (one may hang on a dead process's mutex). */
#define MASTER_RECOVER_KILL_MS 3000
/* failchk and checkpoints of the store. */
#define MASTER_FAILCHK_MS 1000
#define MASTER_CHECKPOINT_MS 60000
/* A failchk still running after this long waits on a dead process's mutex. */
#define MASTER_FAILCHK_TIMEOUT_MS 5000

struct master_listener {
	char *name;
	enum conf_service service;
	char *address;
	unsigned port;
	int fd;
};

/* smtpd, imapd, pop3d, httpd, and authd (the root PAM helper) */
#define MASTER_N_CHILDREN 5

struct master_child {
	const char *name;            /* "smtpd" → program warren-smtpd */
	unsigned services;           /* 1 << enum conf_service it serves */
	bool uses_store;             /* attached to the store: an abnormal end means recovery */
	struct master *master;
	uv_process_t proc;
	bool running;
	bool wanted;                 /* has listeners: keep it running */
	uint64_t started_at;
	unsigned backoff_ms;
	bool crashed;                /* died abnormally: restart after recovery, delayed */
	unsigned restart_delay_ms;
	uv_timer_t restart_timer;
};

struct master {
	uv_loop_t *loop;
	char *config_path;
	char *exe_dir;
	char *pid_file;
	struct warren_config *conf;
	struct master_listener *listeners;
	size_t n_listeners;
	struct master_child children[MASTER_N_CHILDREN];
	uv_signal_t sighup, sigterm, sigint, sigusr2;
	uv_timer_t stop_timer;
	bool stopping;
	struct store *store;
	uv_timer_t checkpoint_timer;
	unsigned checkpoint_ticks;
	struct watch_job *watch_job; /* failchk/checkpoint running on the pool, or NULL */
	uint64_t watch_started;
	bool recovering;             /* daemons stopped for a store recovery */
	unsigned long conf_copy_prev;  /* generation of the previous saved copy */
	char *auth_socket;           /* warren-authd's socket, NULL when it is not used */
	long auth_uid, auth_gid;     /* the Warren user, who may talk to it */
};

/* children.c */
void master_children_init(struct master *m);
void master_children_start(struct master *m);
void master_children_signal(struct master *m, int signum);
bool master_children_running(const struct master *m);
void master_children_stopped(struct master *m);   /* called when the last one exits */

/* main.c */
void master_stop_timeout_cb(uv_timer_t *timer);

/* conf-copy.c: saves the running configuration for the daemons to read */
int master_conf_save(struct master *m);

/* store-watch.c */
int master_store_start(struct master *m);
void master_store_stop(struct master *m);
void master_store_recover(struct master *m, const char *why);
void master_store_recovered(struct master *m);
void master_recover_timer_cb(uv_timer_t *timer);

#endif
