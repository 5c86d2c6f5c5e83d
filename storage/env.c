/* env.c — the Berkeley DB environment: opening, transactions, failchk, checkpoints. */
#include "storage/store-private.h"
#include "common/log.h"
#include "common/pool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const struct {
	const char *file;
	u_int32_t pagesize;    /* see docs/storage.md for why these sizes */
} store_dbs[DB_COUNT] = {
	[DB_META] = { "meta.db", 4096 },
	[DB_USERS] = { "users.db", 4096 },
	[DB_NAMES] = { "names.db", 16384 },
	[DB_MBOXES] = { "mailboxes.db", 4096 },
	[DB_MESSAGES] = { "messages.db", 65536 },
	[DB_EXPUNGES] = { "expunges.db", 65536 },
	[DB_BLOBS] = { "blobs.db", 65536 },
	[DB_MIME] = { "mime.db", 65536 },
	[DB_SUBS] = { "subscriptions.db", 16384 },
	[DB_OUTQUEUE] = { "queue.db", 16384 },
	[DB_KV] = { "policy.db", 4096 },
};

const char *store_strerror(int err)
{
	switch (err) {
	case STORE_OK: return "ok";
	case STORE_ENOTFOUND: return "not found";
	case STORE_EEXIST: return "already exists";
	case STORE_EQUOTA: return "quota exceeded";
	case STORE_EINVAL: return "invalid name or argument";
	case STORE_EIO: return "storage error";
	case STORE_ERECOVER: return "storage needs recovery";
	case STORE_ECHANGED: return "changed since";
	case STORE_ETOOBIG: return "message too big";
	default: return "unknown error";
	}
}

int store_db_error(struct store *store, int ret, const char *what)
{
	if (ret == 0)
		return STORE_OK;
	if (ret < 0 && ret > -100)
		return ret;   /* already a STORE_E* code */
	if (ret == DB_RUNRECOVERY) {
		log_error("store: %s: %s: the environment needs recovery", what, db_strerror(ret));
		return STORE_ERECOVER;
	}
	if (ret == DB_NOTFOUND)
		return STORE_ENOTFOUND;
	log_error("store: %s: %s", what, db_strerror(ret));
	return STORE_EIO;
}

static void errcall(const DB_ENV *env, const char *prefix, const char *msg)
{
	log_error("store: %s", msg);
}

/* Berkeley DB asks whether a thread of a process is still alive (failchk). */
static int is_alive(DB_ENV *env, pid_t pid, db_threadid_t tid, u_int32_t flags)
{
	if (pid == getpid())
		return 1;
	return kill(pid, 0) == 0 || errno == EPERM;
}

static char *path_join(const char *a, const char *b)
{
	size_t len = strlen(a) + strlen(b) + 2;
	char *p = x_malloc(len);
	snprintf(p, len, "%s/%s", a, b);
	return p;
}

static int make_dir(const char *path)
{
	if (mkdir(path, 0750) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* blobs/00 .. blobs/ff, created once by the master. */
static int make_blob_dirs(const char *blob_dir)
{
	char path[4096];
	if (make_dir(blob_dir) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/tmp", blob_dir);
	if (make_dir(path) < 0)
		return -1;
	for (int i = 0; i < 256; i++) {
		snprintf(path, sizeof(path), "%s/%02x", blob_dir, i);
		if (make_dir(path) < 0)
			return -1;
	}
	/* the folders' own entries must be durable too, or a crash right after the
	 * first delivery could lose the folder a fsynced body was renamed into */
	snprintf(path, sizeof(path), "%s/..", blob_dir);
	if (fsync_dir(path) < 0)
		return -1;
	return fsync_dir(blob_dir);
}

static int env_open(struct store *s, unsigned cache_mb, const char **error_r)
{
	int ret = db_env_create(&s->env, 0);
	if (ret != 0) {
		*error_r = db_strerror(ret);
		return -1;
	}
	DB_ENV *env = s->env;
	env->set_errcall(env, errcall);
	env->set_cachesize(env, 0, (cache_mb != 0 ? cache_mb : 64) * 1024 * 1024, 1);
	env->set_lg_bsize(env, 1024 * 1024);
	env->set_lk_detect(env, DB_LOCK_DEFAULT);
	env->set_lk_max_lockers(env, 20000);
	env->set_lk_max_locks(env, 200000);
	env->set_lk_max_objects(env, 200000);
	env->set_tx_max(env, 2000);
	env->set_thread_count(env, STORE_THREAD_COUNT);
	env->set_isalive(env, is_alive);
	env->log_set_config(env, DB_LOG_AUTO_REMOVE, 1);

	/* Only the master runs failchk (here and in store_failchk). In another process,
	 * DB_FAILCHK made the open clean up after a dead process while holding the
	 * registry lock, and that cleanup can wait forever on a mutex the dead process
	 * held (seen in the crash test: pthread_cond_destroy in __txn_failchk), which
	 * in turn blocks the master's recovery. Without it such an open returns
	 * DB_RUNRECOVERY at once and the process asks the master to recover. */
	u_int32_t flags = DB_CREATE | DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL | DB_INIT_TXN |
			  DB_THREAD | DB_REGISTER;
	if (s->flags & STORE_OPEN_RECOVER)
		flags |= DB_RECOVER | DB_FAILCHK;
	ret = env->open(env, s->env_dir, flags, 0640);
	if (ret != 0) {
		*error_r = ret == DB_RUNRECOVERY ? "the store needs recovery (start the master)" :
			db_strerror(ret);
		env->close(env, 0);
		s->env = NULL;
		return ret == DB_RUNRECOVERY ? STORE_ERECOVER : -1;
	}
	return 0;
}

static int dbs_open(struct store *s, const char **error_r)
{
	for (int i = 0; i < DB_COUNT; i++) {
		DB *db;
		int ret = db_create(&db, s->env, 0);
		if (ret != 0) {
			*error_r = db_strerror(ret);
			return -1;
		}
		db->set_pagesize(db, store_dbs[i].pagesize);
		u_int32_t flags = DB_THREAD | DB_MULTIVERSION | DB_AUTO_COMMIT | DB_CREATE;
		ret = db->open(db, NULL, store_dbs[i].file, NULL, DB_BTREE, flags, 0640);
		if (ret != 0) {
			log_error("store: open %s: %s", store_dbs[i].file, db_strerror(ret));
			*error_r = db_strerror(ret);
			db->close(db, 0);
			return ret == DB_RUNRECOVERY ? STORE_ERECOVER : -1;
		}
		s->db[i] = db;
	}
	return 0;
}

/* Berkeley DB 5.3's DB_REGISTER file holds one 25-byte slot per attached
 * process: its pid ("%24lu\n") or, once it closed the environment, PID_EMPTY.
 * A process whose pid is still in a slot may not open the environment again
 * ("BDB1528 DB_REGISTER limits processes to one open DB_ENV handle"), so a
 * handle abandoned unclosed must clear its slot the way a close would. */
#define REGISTRY_SLOT 25
#define REGISTRY_EMPTY "X                      0\n"

/* Calls fn for every slot of env_dir's registry that holds a pid (open with
 * flags; fd and offset let fn rewrite the slot). Nothing when there is none. */
static void registry_each(const char *env_dir, int flags,
			  void (*fn)(int fd, off_t off, unsigned long pid, void *ctx), void *ctx)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/__db.register", env_dir) >= (int)sizeof(path))
		return;
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		return;
	char slot[REGISTRY_SLOT + 1];
	for (off_t off = 0; pread(fd, slot, REGISTRY_SLOT, off) == REGISTRY_SLOT;
	     off += REGISTRY_SLOT) {
		slot[REGISTRY_SLOT] = '\0';
		char *end;
		unsigned long pid = strtoul(slot, &end, 10);
		if (end != slot && *end == '\n' && pid != 0)
			fn(fd, off, pid, ctx);
	}
	close(fd);
}

static void note_other_alive(int fd, off_t off, unsigned long pid, void *ctx)
{
	if (pid != (unsigned long)getpid() && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
		*(bool *)ctx = true;
}

/* True when no other live process is in the registry (so removing the regions
 * hurts nobody) and region files exist. */
static bool regions_wedged(const char *env_dir)
{
	bool others = false;
	registry_each(env_dir, O_RDONLY, note_other_alive, &others);
	if (others)
		return false;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/__db.001", env_dir);
	return access(path, F_OK) == 0;
}

static void remove_regions(const char *env_dir)
{
	for (int i = 1; i < 100; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/__db.%03d", env_dir, i);
		if (unlink(path) < 0 && errno == ENOENT && i > 10)
			break;
	}
}

int store_open(const struct store_settings *settings, struct store **store_r,
	       const char **error_r)
{
	struct store *s = x_calloc(1, sizeof(*s));
	s->dir = x_strdup(settings->dir);
	s->env_dir = path_join(settings->dir, "store");
	s->blob_dir = path_join(settings->dir, "blobs");
	s->notify_dir = path_join(settings->dir, "notify");
	s->flags = settings->flags;
	s->mime_max_depth = settings->mime_max_depth;
	s->notify_fd = -1;
	s->send_fd = -1;
	pthread_mutex_init(&s->send_lock, NULL);
	*store_r = NULL;

	if (make_dir(settings->dir) < 0 || make_dir(s->env_dir) < 0 ||
	    make_dir(s->notify_dir) < 0 ||
	    ((settings->flags & STORE_OPEN_RECOVER) && make_blob_dirs(s->blob_dir) < 0)) {
		*error_r = strerror(errno);
		store_close(&s);
		return STORE_EIO;
	}
	int ret = env_open(s, settings->cache_mb, error_r);
	if (ret != 0 && (settings->flags & STORE_OPEN_RECOVER) && regions_wedged(s->env_dir)) {
		/* Recovery could not tear down the old regions: a dead process left one of
		 * their mutexes locked (pthread_mutex_destroy says EBUSY). Nobody else is
		 * attached, so the region files can go; recovery rebuilds everything from
		 * the log. */
		log_warn("store: the environment's regions hold mutexes of dead processes; "
			 "removing them and recovering from the log");
		remove_regions(s->env_dir);
		ret = env_open(s, settings->cache_mb, error_r);
	}
	if (ret == 0)
		ret = dbs_open(s, error_r);
	if (ret != 0) {
		store_close(&s);
		return ret == STORE_ERECOVER ? STORE_ERECOVER : STORE_EIO;
	}
	*store_r = s;
	return STORE_OK;
}

static void watchdog_stop(struct store *s);

#define STORE_ABANDONED_MAX 64
static struct store *abandoned[STORE_ABANDONED_MAX];   /* see store_abandon */
static size_t n_abandoned;

void store_close(struct store **storep)
{
	struct store *s = *storep;
	if (s == NULL)
		return;
	/* a panicked environment (a process died in it; the master recovers it) is
	 * left as store_abandon leaves it: closing its handles could wait on a dead
	 * process's mutex, and Berkeley DB does not free a panicked handle's memory */
	if (s->env != NULL && store_panic_check(s) == STORE_ERECOVER) {
		store_abandon(storep);
		return;
	}
	*storep = NULL;
	watchdog_stop(s);
	store_notify_close(s);
	for (int i = DB_COUNT - 1; i >= 0; i--)
		if (s->db[i] != NULL)
			s->db[i]->close(s->db[i], 0);
	if (s->env != NULL)
		s->env->close(s->env, 0);
	pthread_mutex_destroy(&s->send_lock);
	free(s->dir);
	free(s->env_dir);
	free(s->blob_dir);
	free(s->notify_dir);
	free(s);
}


static void clear_own_slot(int fd, off_t off, unsigned long pid, void *ctx)
{
	if (pid == (unsigned long)getpid() &&
	    pwrite(fd, REGISTRY_EMPTY, REGISTRY_SLOT, off) != REGISTRY_SLOT)
		log_error("store: cannot clear this process's slot in %s/__db.register",
			  (const char *)ctx);
}

static void registry_forget_self(const char *env_dir)
{
	registry_each(env_dir, O_RDWR, clear_own_slot, (void *)env_dir);
}

void store_abandon(struct store **storep)
{
	struct store *s = *storep;
	if (s == NULL)
		return;
	*storep = NULL;
	watchdog_stop(s);
	store_notify_close(s);
	/* Closing the handles frees mutexes, and one of them may be held by the dead
	 * process forever (seen: the master hung in DB->close after failchk); so the
	 * handles go unclosed and this process leaves the registry the way a close
	 * would. Not even DB_PANIC_ENVIRONMENT is set: it takes a region mutex too
	 * (seen hanging). The recovery that follows (DB_REGISTER | DB_RECOVER) marks
	 * the old environment panicked and waits for every attached process to go. */
	registry_forget_self(s->env_dir);
	/* s itself stays allocated too: a thread stuck on such a mutex (the master's
	 * failchk) may still hold it. It is kept in abandoned[] so that the process
	 * still points at it (LeakSanitizer reports what nothing points at) — a master
	 * lives through many recoveries: after STORE_ABANDONED_MAX it is just left. */
	if (n_abandoned < STORE_ABANDONED_MAX)
		abandoned[n_abandoned++] = s;
}

/* ---- transactions ---- */

static void backoff(int attempt)
{
	struct timespec ts = { 0, (long)(1000 + (rand() % 1000) * (attempt < 10 ? attempt : 10)) * 1000 };
	nanosleep(&ts, NULL);
}

int store_txn(struct store *store, int (*fn)(struct store *s, DB_TXN *txn, void *arg),
	      void *arg)
{
	return store_txn_flags(store, fn, arg, 0);
}

int store_txn_flags(struct store *store, int (*fn)(struct store *s, DB_TXN *txn, void *arg),
		    void *arg, unsigned commit_flags)
{
	for (int attempt = 0; attempt < STORE_TXN_RETRIES; attempt++) {
		DB_TXN *txn;
		int ret = store->env->txn_begin(store->env, NULL, &txn, 0);
		if (ret != 0)
			return store_db_error(store, ret, "txn_begin");
		ret = fn(store, txn, arg);
		if (ret == 0) {
			ret = txn->commit(txn, commit_flags);
			if (ret == 0)
				return STORE_OK;
			return store_db_error(store, ret, "commit");
		}
		txn->abort(txn);
		if (ret != DB_LOCK_DEADLOCK && ret != DB_LOCK_NOTGRANTED)
			return store_db_error(store, ret, "transaction");
		backoff(attempt);
	}
	log_error("store: a transaction deadlocked %d times; giving up", STORE_TXN_RETRIES);
	return STORE_EIO;
}

int store_read_txn(struct store *store, DB_TXN **txn_r)
{
	int ret = store->env->txn_begin(store->env, NULL, txn_r, DB_TXN_SNAPSHOT);
	return store_db_error(store, ret, "txn_begin (snapshot)");
}

/* ---- failchk and checkpoints ---- */

int store_failchk(struct store *store)
{
	int ret = store->env->failchk(store->env, 0);
	if (ret == 0)
		return STORE_OK;
	return store_db_error(store, ret, "failchk");
}

int store_request_recovery(const char *state_dir)
{
	char path[4096];
	long pid = 0;
	snprintf(path, sizeof(path), "%s/warren.pid", state_dir);
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return STORE_ENOTFOUND;
	int ok = fscanf(fp, "%ld", &pid) == 1 && pid > 1;
	fclose(fp);
	if (!ok || kill((pid_t)pid, SIGUSR2) < 0)
		return STORE_ENOTFOUND;
	return STORE_OK;
}

int store_panic_check(struct store *store)
{
	u_int32_t id;
	int ret = store->env->lock_id(store->env, &id);
	if (ret == 0)
		ret = store->env->lock_id_free(store->env, id);
	return ret == DB_RUNRECOVERY ? STORE_ERECOVER : STORE_OK;
}

static void *watchdog_main(void *arg)
{
	struct store *s = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&s->watchdog_lock);
	while (!s->watchdog_stop) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += s->watchdog_interval_ms / 1000;
		until.tv_nsec += (long)(s->watchdog_interval_ms % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		int ret = 0;
		while (!s->watchdog_stop && ret != ETIMEDOUT)
			ret = pthread_cond_timedwait(&s->watchdog_wake, &s->watchdog_lock, &until);
		if (s->watchdog_stop)
			break;
		pthread_mutex_unlock(&s->watchdog_lock);
		bool recover = store_panic_check(s) == STORE_ERECOVER;
		if (recover)
			s->on_recover(s->on_recover_ctx);
		pthread_mutex_lock(&s->watchdog_lock);
		if (recover)
			break;
	}
	pthread_mutex_unlock(&s->watchdog_lock);
	return NULL;
}

/* Stops the watchdog thread without waiting out its interval (a daemon's stop
 * used to take up to a second here). */
static void watchdog_stop(struct store *s)
{
	if (!s->watchdog_running)
		return;
	pthread_mutex_lock(&s->watchdog_lock);
	s->watchdog_stop = true;
	pthread_cond_signal(&s->watchdog_wake);
	pthread_mutex_unlock(&s->watchdog_lock);
	pthread_join(s->watchdog, NULL);
	pthread_cond_destroy(&s->watchdog_wake);
	pthread_mutex_destroy(&s->watchdog_lock);
	s->watchdog_running = false;
}

int store_watchdog_start(struct store *store, unsigned interval_ms,
			 void (*on_recover)(void *ctx), void *ctx)
{
	store->watchdog_interval_ms = interval_ms;
	store->on_recover = on_recover;
	store->on_recover_ctx = ctx;
	store->watchdog_stop = false;
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_mutex_init(&store->watchdog_lock, NULL);
	pthread_cond_init(&store->watchdog_wake, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&store->watchdog, NULL, watchdog_main, store) != 0) {
		pthread_cond_destroy(&store->watchdog_wake);
		pthread_mutex_destroy(&store->watchdog_lock);
		return STORE_EIO;
	}
	store->watchdog_running = true;
	return STORE_OK;
}

int store_checkpoint(struct store *store)
{
	/* A hot backup copies the database files first and the logs after them;
	 * a checkpoint in between would remove (DB_LOG_AUTO_REMOVE) logs the copied
	 * pages still need. Berkeley DB's backup does not hold removal off, so the
	 * checkpoint waits for the backup to finish (store_backup also checks that
	 * no log went missing meanwhile). */
	if (blob_removal_paused(store))
		return STORE_OK;
	int ret = store->env->txn_checkpoint(store->env, 0, 0, 0);
	if (ret != 0)
		return store_db_error(store, ret, "checkpoint");
	/* with DB_LOG_AUTO_REMOVE, logs not needed any more go at the checkpoint;
	 * log_archive(DB_ARCH_REMOVE) covers a checkpoint that found nothing to do */
	char **list = NULL;
	ret = store->env->log_archive(store->env, &list, DB_ARCH_REMOVE);
	free(list);
	return store_db_error(store, ret, "log_archive");
}

/* ---- asynchronous use ---- */

struct async_req {
	uv_work_t work;
	int (*fn)(void *arg);
	void (*done)(void *arg, int result);
	void *arg;
	int result;
};

static void async_work(uv_work_t *w)
{
	struct async_req *req = w->data;
	req->result = req->fn(req->arg);
}

static void async_after(uv_work_t *w, int status)
{
	struct async_req *req = w->data;
	int result = status == UV_ECANCELED ? STORE_EIO : req->result;
	void (*done)(void *, int) = req->done;
	void *arg = req->arg;
	free(req);
	done(arg, result);
}

int store_async(uv_loop_t *loop, int (*work)(void *arg),
		void (*done)(void *arg, int result), void *arg)
{
	struct async_req *req = x_calloc(1, sizeof(*req));
	req->work.data = req;
	req->fn = work;
	req->done = done;
	req->arg = arg;
	int ret = uv_queue_work(loop, &req->work, async_work, async_after);
	if (ret < 0) {
		free(req);
		return STORE_EIO;
	}
	return STORE_OK;
}
