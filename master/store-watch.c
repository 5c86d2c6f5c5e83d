/* store-watch.c — the master as the store's watcher (DESIGN.md, Berkeley DB's
 * prescription for several processes): it opens the environment first, running
 * recovery if a process died in it; takes checkpoints and removes old logs; runs
 * failchk; and when a dead process left the environment in need of recovery, it
 * stops every daemon, recovers, and starts them again.
 *
 * Store files must belong to the daemons' user, so when the master runs as root it
 * works on the store with that user's effective ids. Everything here runs on the
 * master's loop thread, so switching effective ids does not race with anything.
 */
#include "master/master.h"
#include "common/log.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static uid_t store_uid;
static gid_t store_gid;
static bool switch_ids;

static void become_user(void)
{
	if (switch_ids && (setegid(store_gid) < 0 || seteuid(store_uid) < 0))
		log_fatal("cannot switch to the store's user: %s", strerror(errno));
}

static void become_root(void)
{
	if (switch_ids && (seteuid(0) < 0 || setegid(0) < 0))
		log_fatal("cannot switch back to root: %s", strerror(errno));
}

static int open_store(struct master *m)
{
	struct store_settings settings = {
		.dir = m->conf->state_dir,
		.flags = STORE_OPEN_RECOVER,
	};
	const char *err = "";
	become_user();
	int ret = store_open(&settings, &m->store, &err);
	become_root();
	if (ret != STORE_OK)
		log_error("cannot open the store in %s: %s", m->conf->state_dir, err);
	return ret;
}

static void checkpoint_cb(uv_timer_t *timer)
{
	struct master *m = timer->data;
	if (m->store == NULL || m->recovering)
		return;
	become_user();
	int ret = store_failchk(m->store);
	/* a checkpoint a minute; failchk every second */
	if (ret == STORE_OK && ++m->checkpoint_ticks * MASTER_FAILCHK_MS >= MASTER_CHECKPOINT_MS) {
		m->checkpoint_ticks = 0;
		ret = store_checkpoint(m->store);
	}
	become_root();
	if (ret == STORE_ERECOVER)
		master_store_recover(m, "failchk found a dead process's leftovers");
}

int master_store_start(struct master *m)
{
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam(m->conf->user);
		if (pw == NULL) {
			log_error("user \"%s\" does not exist", m->conf->user);
			return -1;
		}
		store_uid = pw->pw_uid;
		store_gid = pw->pw_gid;
		switch_ids = store_uid != 0;
	}
	if (open_store(m) != STORE_OK)
		return -1;
	uv_timer_init(m->loop, &m->checkpoint_timer);
	m->checkpoint_timer.data = m;
	uv_timer_start(&m->checkpoint_timer, checkpoint_cb, MASTER_FAILCHK_MS, MASTER_FAILCHK_MS);
	log_info("store opened in %s", m->conf->state_dir);
	return 0;
}

void master_store_stop(struct master *m)
{
	uv_timer_stop(&m->checkpoint_timer);
	uv_close((uv_handle_t *)&m->checkpoint_timer, NULL);
	if (m->store != NULL) {
		become_user();
		store_checkpoint(m->store);
		store_close(&m->store);
		become_root();
	}
}

void master_store_recover(struct master *m, const char *why)
{
	if (m->recovering || m->stopping)
		return;
	m->recovering = true;
	log_warn("store needs recovery (%s): stopping the daemons", why);
	master_children_signal(m, SIGTERM);
	uv_timer_start(&m->stop_timer, master_stop_timeout_cb, MASTER_RECOVER_KILL_MS, 0);
	if (!master_children_running(m))
		uv_timer_start(&m->stop_timer, master_recover_timer_cb, 0, 0);
}

void master_recover_timer_cb(uv_timer_t *timer)
{
	master_store_recovered(timer->data);
}

/* Every daemon has exited: recover and start them again. */
void master_store_recovered(struct master *m)
{
	uv_timer_stop(&m->stop_timer);
	become_user();
	store_close(&m->store);
	become_root();
	if (open_store(m) != STORE_OK) {
		log_error("recovery failed; stopping");
		m->recovering = false;
		raise(SIGTERM);
		return;
	}
	log_info("store recovered; starting the daemons again");
	m->recovering = false;
	master_children_start(m);
}
