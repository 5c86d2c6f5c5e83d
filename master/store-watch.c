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
#include "common/pool.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
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

/* failchk and checkpoints run on a thread of libuv's pool, never on the loop:
 * failchk can wait forever on a mutex a dead process held (seen in the crash
 * test), and the master must then still notice, stop the daemons and recover. */
struct watch_job {
	uv_work_t req;
	struct master *m;
	struct store *store;
	bool checkpoint;
	int result;
	volatile int finished;       /* set by the worker when it is done with store */
};

/* Per-thread credentials (the raw system calls, not glibc's process-wide
 * wrappers), so the loop thread keeps root while this thread works as the
 * store's user. */
static void thread_become(uid_t uid, gid_t gid)
{
	if (!switch_ids)
		return;
	if (syscall(SYS_setresgid, (gid_t)-1, gid, (gid_t)-1) < 0 ||
	    syscall(SYS_setresuid, (uid_t)-1, uid, (uid_t)-1) < 0)
		log_error("cannot switch a thread's ids: %s", strerror(errno));
}

static void watch_work(uv_work_t *req)
{
	struct watch_job *job = req->data;
	thread_become(store_uid, store_gid);
	job->result = store_failchk(job->store);
	if (job->result == STORE_OK && job->checkpoint)
		job->result = store_checkpoint(job->store);
	if (switch_ids && (syscall(SYS_setresuid, (uid_t)-1, (uid_t)0, (uid_t)-1) < 0 ||
			   syscall(SYS_setresgid, (gid_t)-1, (gid_t)0, (gid_t)-1) < 0))
		log_error("cannot switch a thread back to root: %s", strerror(errno));
	__atomic_store_n(&job->finished, 1, __ATOMIC_RELEASE);
}

static void watch_done(uv_work_t *req, int status)
{
	struct watch_job *job = req->data;
	struct master *m = job->m;
	bool current = job->store == m->store && m->watch_job == job;
	if (current)
		m->watch_job = NULL;
	int result = job->result;
	free(job);
	if (current && status == 0 && result == STORE_ERECOVER)
		master_store_recover(m, "failchk found a dead process's leftovers");
}

static void checkpoint_cb(uv_timer_t *timer)
{
	struct master *m = timer->data;
	if (m->store == NULL || m->recovering)
		return;
	if (m->watch_job != NULL) {
		if (uv_now(m->loop) - m->watch_started >= MASTER_FAILCHK_TIMEOUT_MS) {
			/* the job stays stuck on its mutex; its store handle is abandoned */
			m->watch_job = NULL;
			master_store_recover(m, "failchk hangs on a mutex a dead process held");
		}
		return;
	}
	struct watch_job *job = x_calloc(1, sizeof(*job));
	job->m = m;
	job->store = m->store;
	job->req.data = job;
	/* a checkpoint a minute; failchk every second */
	if (++m->checkpoint_ticks * MASTER_FAILCHK_MS >= MASTER_CHECKPOINT_MS) {
		m->checkpoint_ticks = 0;
		job->checkpoint = true;
	}
	m->watch_job = job;
	m->watch_started = uv_now(m->loop);
	if (uv_queue_work(m->loop, &job->req, watch_work, watch_done) < 0) {
		m->watch_job = NULL;
		free(job);
	}
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
	if (m->store == NULL)
		return;
	/* a failchk in flight finishes first (or is stuck: then the store is left as is) */
	struct watch_job *job = m->watch_job;
	for (int i = 0; job != NULL && i < MASTER_FAILCHK_TIMEOUT_MS / 10 &&
	     !__atomic_load_n(&job->finished, __ATOMIC_ACQUIRE); i++)
		usleep(10000);
	become_user();
	if (job != NULL && !__atomic_load_n(&job->finished, __ATOMIC_ACQUIRE)) {
		log_warn("store: failchk still running at shutdown; leaving the store to recovery");
		store_abandon(&m->store);
	} else {
		store_checkpoint(m->store);
		store_close(&m->store);
	}
	become_root();
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

/* Every daemon has exited: recover and start them again. The old environment is
 * not closed: closing frees mutexes, and one may be held by the dead process
 * forever (seen: the master hung in DB->close). store_abandon leaves it open and
 * takes the master out of the registry (Berkeley DB allows a process one
 * DB_REGISTER handle per environment), then the store is opened again with
 * recovery. */
void master_store_recovered(struct master *m)
{
	uv_timer_stop(&m->stop_timer);
	become_user();
	store_abandon(&m->store);
	become_root();
	m->watch_job = NULL;
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
