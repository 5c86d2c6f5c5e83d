/* auth.c — the auth thread pool with its success cache and failure delay, and the
 * blocking hash and PAM primitives the threads run. See auth.h.
 *
 * Life of a job (struct auth_job), and who owns it at each step:
 *   QUEUED   on pool->queue (mutex); a thread takes it          -> RUNNING
 *   RUNNING  owned by one auth thread; when the check ends it goes
 *            on pool->done (mutex) and wakes the loop             -> DONE
 *            (cancelled while running: the thread frees it instead)
 *   DONE     on pool->done, waiting for the loop thread's uv_async_t; cache hits
 *            and queue overflows start here too, so a callback is never called
 *            from inside auth_verify()
 *   DELAYED  on pool->delayed (loop thread only): a failure waiting out the
 *            per-address delay on its own uv_timer_t
 * The loop thread then updates the cache / failure records, frees the job (wiping
 * the password) and calls the callback.
 *
 * Capacity: a job is accepted while the jobs in the queue number fewer than
 * queue_max plus the threads not running a check, so a burst gets threads +
 * queue_max jobs through and the rest AUTH_TEMPFAIL.
 *
 * The async handle holds the loop alive only while jobs are in flight, so a
 * daemon's loop can end with the pool still allocated.
 */
#include "common/auth.h"
#include "common/auth-helper.h"
#include "common/log.h"
#include "common/pool.h"

#include <crypt.h>
#include <pthread.h>
#include <security/pam_appl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

/* Most auth threads a pool runs. */
#define AUTH_THREADS_MAX 64
/* Size of the HMAC key and of a cache key (HMAC-SHA256 output). */
#define AUTH_KEY_SIZE 32
/* A failure record older than this is forgotten. */
#define AUTH_FAIL_RECORD_TTL_MS (15 * 60 * 1000)
/* Most client addresses with failure records; the oldest goes first. */
#define AUTH_FAIL_RECORDS_MAX 10000
/* Longest client address kept as a key (longer ones are cut: never real). */
#define AUTH_IP_KEY_MAX 64
/* Longest password checked: libxcrypt's own limit (longer ones fail, after a
 * dummy check). */
#define AUTH_PASSWORD_MAX (CRYPT_MAX_PASSPHRASE_SIZE - 1)
/* The "queue full" warning is logged at most once per this interval. */
#define AUTH_OVERFLOW_LOG_MS 10000
/* Bounds of a hash table's bucket count. */
#define AUTH_BUCKETS_MIN 16
#define AUTH_BUCKETS_MAX 65536

/* Checked when there is no (usable) stored hash, so that "no such user" costs as
 * much as a wrong password. A yescrypt hash with the default cost of a random,
 * forgotten password. */
static const char auth_dummy_hash[] =
	"$y$j9T$90N1ChZ69k57rkbBzbuoc1$o56PYBmNcvg3aJTEaAlsMRyoeauRz.Ftaw1D7zPlTd9";

/* ---- a hash table that also keeps its entries in age order ---- */

struct aged_entry {
	struct aged_entry *chain;          /* next in the bucket */
	struct aged_entry *older, *newer;  /* age order */
	uint64_t hash;
	uint64_t time_ms;                  /* cache: stored; failures: last failure */
	unsigned failures;
	size_t keylen;
	unsigned char key[];
};

struct aged_table {
	struct aged_entry **buckets;
	size_t nbuckets;                   /* a power of two */
	size_t count;
	struct aged_entry *oldest, *newest;
};

static void aged_init(struct aged_table *t, size_t max_entries)
{
	size_t n = AUTH_BUCKETS_MIN;
	while (n < max_entries && n < AUTH_BUCKETS_MAX)
		n *= 2;
	t->buckets = x_calloc(n, sizeof(*t->buckets));
	t->nbuckets = n;
	t->count = 0;
	t->oldest = t->newest = NULL;
}

static struct aged_entry *aged_find(const struct aged_table *t, uint64_t hash,
				    const void *key, size_t keylen)
{
	struct aged_entry *e = t->buckets[hash & (t->nbuckets - 1)];
	for (; e != NULL; e = e->chain) {
		if (e->hash == hash && e->keylen == keylen &&
		    CRYPTO_memcmp(e->key, key, keylen) == 0)
			return e;
	}
	return NULL;
}

static void aged_link_newest(struct aged_table *t, struct aged_entry *e)
{
	e->newer = NULL;
	e->older = t->newest;
	if (t->newest != NULL)
		t->newest->newer = e;
	else
		t->oldest = e;
	t->newest = e;
}

static void aged_unlink_age(struct aged_table *t, struct aged_entry *e)
{
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		t->oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		t->newest = e->older;
}

static struct aged_entry *aged_add(struct aged_table *t, uint64_t hash,
				   const void *key, size_t keylen, uint64_t now)
{
	struct aged_entry *e = x_calloc(1, sizeof(*e) + keylen);
	struct aged_entry **bucket = &t->buckets[hash & (t->nbuckets - 1)];
	e->hash = hash;
	e->time_ms = now;
	e->keylen = keylen;
	memcpy(e->key, key, keylen);
	e->chain = *bucket;
	*bucket = e;
	aged_link_newest(t, e);
	t->count++;
	return e;
}

/* Marks e as the newest entry, at time now. */
static void aged_touch(struct aged_table *t, struct aged_entry *e, uint64_t now)
{
	aged_unlink_age(t, e);
	aged_link_newest(t, e);
	e->time_ms = now;
}

static void aged_remove(struct aged_table *t, struct aged_entry *e)
{
	struct aged_entry **pp = &t->buckets[e->hash & (t->nbuckets - 1)];
	while (*pp != e)
		pp = &(*pp)->chain;
	*pp = e->chain;
	aged_unlink_age(t, e);
	t->count--;
	OPENSSL_cleanse(e, sizeof(*e) + e->keylen);
	free(e);
}

/* Removes the oldest entries while they are older than ttl_ms or while the
 * table holds more than max entries. */
static void aged_prune(struct aged_table *t, uint64_t now, uint64_t ttl_ms, size_t max)
{
	while (t->oldest != NULL &&
	       (t->count > max || now - t->oldest->time_ms >= ttl_ms))
		aged_remove(t, t->oldest);
}

static void aged_free(struct aged_table *t)
{
	if (t->buckets == NULL)
		return;
	while (t->oldest != NULL)
		aged_remove(t, t->oldest);
	x_free(&t->buckets);
}

/* ---- jobs and the pool ---- */

enum job_state {
	JOB_QUEUED,
	JOB_RUNNING,
	JOB_DONE,
	JOB_DELAYED,
};

struct auth_job {
	struct auth_pool *pool;
	struct auth_job *prev, *next;    /* in the list of its state */
	enum job_state state;            /* mutex while QUEUED/RUNNING/DONE */
	bool cancelled;                  /* RUNNING job cancelled: its thread frees it */
	bool cached;                     /* the result came from the cache */
	bool cacheable;                  /* cache_key is set */
	enum auth_result result;
	enum auth_backend backend;
	char *login, *password, *hash, *pam_service, *pam_user, *client_ip;
	unsigned char cache_key[AUTH_KEY_SIZE];
	uv_timer_t *timer;               /* DELAYED */
	auth_callback *cb;
	void *ctx;
};

struct job_list {
	struct auth_job *head, *tail;
	size_t count;
};

struct auth_pool {
	uv_async_t async;                /* freed with the pool in its close callback */
	uv_loop_t *loop;
	struct auth_pool_settings settings;

	pthread_mutex_t mutex;
	pthread_cond_t cond;
	struct job_list queue;           /* mutex */
	struct job_list done;            /* mutex */
	unsigned busy;                   /* mutex: threads running a check */
	bool stopping;                   /* mutex */
	pthread_t *threads;
	unsigned nthreads;

	/* The rest belongs to the loop thread. */
	struct job_list delayed;
	unsigned inflight;               /* jobs that will come back through async */
	bool closing;                    /* auth_pool_free() was called */
	uint64_t overflow_logged_ms;
	unsigned long overflows;         /* refused without a warning logged */
	EVP_MAC_CTX *mac;                /* HMAC-SHA256 keyed with a random key */
	struct aged_table cache;         /* successes, key = cache key */
	struct aged_table failures;      /* per client address */
	/* AUTH_HELPER_ENV when the pool was created (NULL: PAM in this process);
	 * read-only for the threads */
	char *helper_socket;
};

static void list_push(struct job_list *l, struct auth_job *job)
{
	job->next = NULL;
	job->prev = l->tail;
	if (l->tail != NULL)
		l->tail->next = job;
	else
		l->head = job;
	l->tail = job;
	l->count++;
}

static void list_remove(struct job_list *l, struct auth_job *job)
{
	if (job->prev != NULL)
		job->prev->next = job->next;
	else
		l->head = job->next;
	if (job->next != NULL)
		job->next->prev = job->prev;
	else
		l->tail = job->prev;
	job->prev = job->next = NULL;
	l->count--;
}

static struct auth_job *list_shift(struct job_list *l)
{
	struct auth_job *job = l->head;
	if (job != NULL)
		list_remove(l, job);
	return job;
}

static char *strdup_or_null(const char *s)
{
	return s != NULL ? x_strdup(s) : NULL;
}

static void free_secret(char **s)
{
	if (*s != NULL)
		OPENSSL_cleanse(*s, strlen(*s));
	x_free(s);
}

static void job_free(struct auth_job *job)
{
	free_secret(&job->password);
	x_free(&job->login);
	x_free(&job->hash);
	x_free(&job->pam_service);
	x_free(&job->pam_user);
	x_free(&job->client_ip);
	OPENSSL_cleanse(job, sizeof(*job));
	free(job);
}

static void free_handle(uv_handle_t *handle)
{
	free(handle);
}

static void job_close_timer(struct auth_job *job)
{
	uv_timer_stop(job->timer);
	uv_close((uv_handle_t *)job->timer, free_handle);
	job->timer = NULL;
}

/* Frees the job, then calls its callback (so the callback may start new jobs). */
static void job_deliver(struct auth_job *job)
{
	auth_callback *cb = job->cb;
	void *ctx = job->ctx;
	enum auth_result result = job->result;
	job_free(job);
	cb(result, ctx);
}

/* Keeps the loop alive exactly while jobs will come back through the async handle. */
static void pool_update_ref(struct auth_pool *pool)
{
	if (pool->inflight > 0)
		uv_ref((uv_handle_t *)&pool->async);
	else
		uv_unref((uv_handle_t *)&pool->async);
}

/* ---- keyed hashing: cache keys and table buckets ---- */

struct mac_part {
	const void *data;
	size_t len;
};

static int pool_mac(struct auth_pool *pool, const struct mac_part *parts, size_t n,
		    unsigned char out[AUTH_KEY_SIZE])
{
	if (pool->mac == NULL)
		return -1;
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(pool->mac);
	if (ctx == NULL)
		return -1;
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0; i++) {
		if (parts[i].len > 0 && EVP_MAC_update(ctx, parts[i].data, parts[i].len) != 1)
			ret = -1;
	}
	size_t outlen = 0;
	if (ret == 0 && (EVP_MAC_final(ctx, out, &outlen, AUTH_KEY_SIZE) != 1 ||
			 outlen != AUTH_KEY_SIZE))
		ret = -1;
	EVP_MAC_CTX_free(ctx);
	return ret;
}

static int pool_mac_init(struct auth_pool *pool)
{
	unsigned char key[AUTH_KEY_SIZE];
	if (RAND_bytes(key, sizeof(key)) != 1)
		return -1;
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (mac == NULL) {
		OPENSSL_cleanse(key, sizeof(key));
		return -1;
	}
	pool->mac = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	int ret = 0;
	if (pool->mac == NULL || EVP_MAC_init(pool->mac, key, sizeof(key), params) != 1) {
		EVP_MAC_CTX_free(pool->mac);
		pool->mac = NULL;
		ret = -1;
	}
	OPENSSL_cleanse(key, sizeof(key));
	return ret;
}

static uint64_t key_bucket_hash(const unsigned char key[AUTH_KEY_SIZE])
{
	uint64_t h;
	memcpy(&h, key, sizeof(h));
	return h;
}

/* Bucket hash of a client address, keyed so that clients cannot aim at one
 * bucket (FNV-1a only if the MAC failed, which it does not in practice). */
static uint64_t ip_bucket_hash(struct auth_pool *pool, const char *ip, size_t len)
{
	unsigned char out[AUTH_KEY_SIZE];
	struct mac_part parts[] = { { "i", 1 }, { ip, len } };
	if (pool_mac(pool, parts, 2, out) == 0)
		return key_bucket_hash(out);
	uint64_t h = 14695981039346656037ULL;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)ip[i]) * 1099511628211ULL;
	return h;
}

/* HMAC(backend || login || 0 || password || 0 || hash-or-service || 0 || pam_user). */
static void job_make_cache_key(struct auth_pool *pool, struct auth_job *job)
{
	const char *secret_ref = job->backend == AUTH_BACKEND_HASH ? job->hash
								   : job->pam_service;
	if (secret_ref == NULL || job->login == NULL)
		return;
	unsigned char backend = job->backend == AUTH_BACKEND_HASH ? 'h' : 'p';
	const char *pam_user = job->backend == AUTH_BACKEND_PAM && job->pam_user != NULL ?
			       job->pam_user : "";
	struct mac_part parts[] = {
		{ "c", 1 },
		{ &backend, 1 },
		{ job->login, strlen(job->login) + 1 },
		{ job->password, strlen(job->password) + 1 },
		{ secret_ref, strlen(secret_ref) + 1 },
		{ pam_user, strlen(pam_user) },
	};
	job->cacheable = pool_mac(pool, parts, sizeof(parts) / sizeof(parts[0]),
				  job->cache_key) == 0;
}

/* ---- cache of successes (loop thread) ---- */

static bool cache_enabled(const struct auth_pool *pool)
{
	return pool->settings.cache_ttl_s > 0 && pool->settings.cache_size > 0;
}

static uint64_t cache_ttl_ms(const struct auth_pool *pool)
{
	return (uint64_t)pool->settings.cache_ttl_s * 1000;
}

static bool cache_lookup(struct auth_pool *pool, const struct auth_job *job)
{
	if (!job->cacheable || !cache_enabled(pool))
		return false;
	uint64_t now = uv_now(pool->loop);
	aged_prune(&pool->cache, now, cache_ttl_ms(pool), pool->settings.cache_size);
	return aged_find(&pool->cache, key_bucket_hash(job->cache_key), job->cache_key,
			 AUTH_KEY_SIZE) != NULL;
}

static void cache_store(struct auth_pool *pool, const struct auth_job *job)
{
	if (!job->cacheable || !cache_enabled(pool))
		return;
	uint64_t now = uv_now(pool->loop);
	uint64_t hash = key_bucket_hash(job->cache_key);
	aged_prune(&pool->cache, now, cache_ttl_ms(pool), pool->settings.cache_size);
	struct aged_entry *e = aged_find(&pool->cache, hash, job->cache_key, AUTH_KEY_SIZE);
	if (e != NULL) {
		aged_touch(&pool->cache, e, now);
		return;
	}
	/* make room for one more */
	aged_prune(&pool->cache, now, cache_ttl_ms(pool), pool->settings.cache_size - 1);
	aged_add(&pool->cache, hash, job->cache_key, AUTH_KEY_SIZE, now);
}

/* ---- failure delay per client address (loop thread) ---- */

static struct aged_entry *failure_find(struct auth_pool *pool, const char *ip,
				       uint64_t *hash_r, size_t *len_r)
{
	*len_r = strnlen(ip, AUTH_IP_KEY_MAX);
	*hash_r = ip_bucket_hash(pool, ip, *len_r);
	return aged_find(&pool->failures, *hash_r, ip, *len_r);
}

static void failure_clear(struct auth_pool *pool, const char *ip)
{
	if (ip == NULL || pool->failures.count == 0)
		return;
	uint64_t hash;
	size_t len;
	struct aged_entry *e = failure_find(pool, ip, &hash, &len);
	if (e != NULL)
		aged_remove(&pool->failures, e);
}

/* Records a failure from ip and returns how long to hold its reply back:
 * failure_delay_ms * 2^(failures - 1), at most failure_delay_max_ms (a cap
 * below failure_delay_ms counts as failure_delay_ms; 0 turns the delay off). */
static uint64_t failure_record(struct auth_pool *pool, const char *ip)
{
	uint64_t now = uv_now(pool->loop), hash;
	size_t len;
	aged_prune(&pool->failures, now, AUTH_FAIL_RECORD_TTL_MS, AUTH_FAIL_RECORDS_MAX);
	struct aged_entry *e = failure_find(pool, ip, &hash, &len);
	if (e == NULL) {
		aged_prune(&pool->failures, now, AUTH_FAIL_RECORD_TTL_MS,
			   AUTH_FAIL_RECORDS_MAX - 1);
		e = aged_add(&pool->failures, hash, ip, len, now);
	}
	if (e->failures < 64)
		e->failures++;
	aged_touch(&pool->failures, e, now);

	uint64_t delay = pool->settings.failure_delay_ms;
	uint64_t max = pool->settings.failure_delay_max_ms;
	if (max < delay)
		max = delay;     /* the cap is never below the first step */
	for (unsigned i = 1; i < e->failures && delay < max; i++)
		delay *= 2;
	return delay < max ? delay : max;
}

/* ---- the loop thread's side ---- */

static void on_delay_timer(uv_timer_t *timer)
{
	struct auth_job *job = timer->data;
	list_remove(&job->pool->delayed, job);
	job_close_timer(job);
	job_deliver(job);
}

/* A job came back from a thread (or the cache, or overflow): book-keeping, then the
 * callback, now or after the failure delay. */
static void job_finish(struct auth_pool *pool, struct auth_job *job)
{
	if (job->result == AUTH_OK) {
		if (job->cached) {
			if (log_debug_enabled()) {
				char login[128];
				log_debug("auth: cache hit for %s", log_printable(login,
					  sizeof(login), job->login, strlen(job->login)));
			}
		} else {
			cache_store(pool, job);
		}
		failure_clear(pool, job->client_ip);
	} else if (job->result == AUTH_FAIL && job->client_ip != NULL) {
		uint64_t delay = failure_record(pool, job->client_ip);
		if (delay > 0) {
			if (log_debug_enabled()) {
				char ip[AUTH_IP_KEY_MAX];
				log_debug("auth: failure from %s held back %llu ms",
					  log_printable(ip, sizeof(ip), job->client_ip,
							strlen(job->client_ip)),
					  (unsigned long long)delay);
			}
			job->timer = x_malloc(sizeof(*job->timer));
			uv_timer_init(pool->loop, job->timer);
			job->timer->data = job;
			uv_timer_start(job->timer, on_delay_timer, delay, 0);
			job->state = JOB_DELAYED;
			list_push(&pool->delayed, job);
			return;
		}
	}
	job_deliver(job);
}

static void on_async(uv_async_t *async)
{
	struct auth_pool *pool = async->data;
	/* Only the jobs done now: jobs that callbacks add wait for the next round. */
	pthread_mutex_lock(&pool->mutex);
	size_t n = pool->done.count;
	pthread_mutex_unlock(&pool->mutex);

	for (; n > 0 && !pool->closing; n--) {
		pthread_mutex_lock(&pool->mutex);
		struct auth_job *job = list_shift(&pool->done);
		pthread_mutex_unlock(&pool->mutex);
		if (job == NULL)
			break;      /* cancelled meanwhile */
		pool->inflight--;
		job_finish(pool, job);
	}
	/* A callback may have freed the pool: then only its memory is still there. */
	if (!pool->closing)
		pool_update_ref(pool);
}

/* Hands a job to the loop thread without a worker (cache hit, overflow). */
static void job_post_done(struct auth_pool *pool, struct auth_job *job,
			  enum auth_result result)
{
	job->result = result;
	pthread_mutex_lock(&pool->mutex);
	job->state = JOB_DONE;
	list_push(&pool->done, job);
	pthread_mutex_unlock(&pool->mutex);
	pool->inflight++;
	pool_update_ref(pool);
	uv_async_send(&pool->async);
}

static void pool_log_overflow(struct auth_pool *pool)
{
	uint64_t now = uv_now(pool->loop);
	if (pool->overflow_logged_ms != 0 &&
	    now - pool->overflow_logged_ms < AUTH_OVERFLOW_LOG_MS) {
		pool->overflows++;
		return;
	}
	log_warn("auth: queue full (%u threads, queue_max %u): check refused with a "
		 "temporary failure (%lu more since the last warning)", pool->nthreads,
		 pool->settings.queue_max, pool->overflows);
	pool->overflow_logged_ms = now != 0 ? now : 1;
	pool->overflows = 0;
}

struct auth_job *auth_verify(struct auth_pool *pool, const struct auth_check *check,
			     auth_callback *cb, void *ctx)
{
	struct auth_job *job = x_calloc(1, sizeof(*job));
	job->pool = pool;
	job->cb = cb;
	job->ctx = ctx;
	job->backend = check->backend;
	job->login = x_strdup(check->login != NULL ? check->login : "");
	job->password = x_strdup(check->password != NULL ? check->password : "");
	job->hash = strdup_or_null(check->hash);
	job->pam_service = strdup_or_null(check->pam_service);
	job->pam_user = x_strdup(check->pam_user != NULL ? check->pam_user : job->login);
	job->client_ip = strdup_or_null(check->client_ip);

	if (cache_enabled(pool))
		job_make_cache_key(pool, job);
	if (cache_lookup(pool, job)) {
		job->cached = true;
		job_post_done(pool, job, AUTH_OK);
		return job;
	}

	pthread_mutex_lock(&pool->mutex);
	size_t free_threads = pool->nthreads - pool->busy;
	if (pool->queue.count >= (size_t)pool->settings.queue_max + free_threads) {
		pthread_mutex_unlock(&pool->mutex);
		pool_log_overflow(pool);
		job_post_done(pool, job, AUTH_TEMPFAIL);
		return job;
	}
	job->state = JOB_QUEUED;
	list_push(&pool->queue, job);
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->mutex);
	pool->inflight++;
	pool_update_ref(pool);
	return job;
}

void auth_cancel(struct auth_job *job)
{
	if (job == NULL)
		return;
	struct auth_pool *pool = job->pool;
	pthread_mutex_lock(&pool->mutex);
	switch (job->state) {
	case JOB_RUNNING:
		/* its thread frees it when the check returns */
		job->cancelled = true;
		pthread_mutex_unlock(&pool->mutex);
		pool->inflight--;
		pool_update_ref(pool);
		return;
	case JOB_QUEUED:
	case JOB_DONE:
		list_remove(job->state == JOB_QUEUED ? &pool->queue : &pool->done, job);
		pthread_mutex_unlock(&pool->mutex);
		pool->inflight--;
		pool_update_ref(pool);
		break;
	case JOB_DELAYED:
		pthread_mutex_unlock(&pool->mutex);
		list_remove(&pool->delayed, job);
		job_close_timer(job);
		break;
	}
	job_free(job);
}

/* ---- the auth threads ---- */

static int hash_verify_with(struct crypt_data *data, const char *password,
			    const char *hash);

static enum auth_result job_run(const struct auth_job *job, struct crypt_data *data)
{
	const char *error;
	if (job->backend == AUTH_BACKEND_HASH) {
		if (job->hash != NULL && auth_hash_check_format(job->hash, &error) < 0) {
			char login[128];
			log_warn("auth: %s: stored password hash refused: %s",
				 log_printable(login, sizeof(login), job->login,
					       strlen(job->login)), error);
		}
		return hash_verify_with(data, job->password, job->hash) == 1 ?
		       AUTH_OK : AUTH_FAIL;
	}
	if (job->pam_service == NULL) {
		log_warn("auth: PAM check without a PAM service");
		return AUTH_TEMPFAIL;
	}
	/* under a root master, warren-authd runs PAM as root for us (auth-helper.h) */
	const char *helper = job->pool->helper_socket;
	int verdict = helper != NULL ?
		auth_helper_verify(helper, job->pam_service, job->pam_user, job->password,
				   job->client_ip) :
		auth_pam_verify(job->pam_service, job->pam_user, job->password, job->client_ip);
	switch (verdict) {
	case 1: return AUTH_OK;
	case 0: return AUTH_FAIL;
	default: return AUTH_TEMPFAIL;
	}
}

static void *auth_thread(void *arg)
{
	struct auth_pool *pool = arg;
	/* 32 KiB: one per thread, on the heap */
	struct crypt_data *data = x_calloc(1, sizeof(*data));

	pthread_mutex_lock(&pool->mutex);
	for (;;) {
		while (!pool->stopping && pool->queue.head == NULL)
			pthread_cond_wait(&pool->cond, &pool->mutex);
		if (pool->stopping)
			break;
		struct auth_job *job = list_shift(&pool->queue);
		job->state = JOB_RUNNING;
		pool->busy++;
		pthread_mutex_unlock(&pool->mutex);

		enum auth_result result = job_run(job, data);

		pthread_mutex_lock(&pool->mutex);
		pool->busy--;
		if (job->cancelled) {
			pthread_mutex_unlock(&pool->mutex);
			job_free(job);
		} else {
			job->result = result;
			job->state = JOB_DONE;
			list_push(&pool->done, job);
			pthread_mutex_unlock(&pool->mutex);
			/* the handle lives until auth_pool_free() has joined us */
			uv_async_send(&pool->async);
		}
		pthread_mutex_lock(&pool->mutex);
	}
	pthread_mutex_unlock(&pool->mutex);
	OPENSSL_cleanse(data, sizeof(*data));
	free(data);
	return NULL;
}

/* ---- the pool ---- */

static void settings_copy(struct auth_pool_settings *dst,
			  const struct auth_pool_settings *src)
{
	*dst = *src;
	if (dst->threads < 1)
		dst->threads = 1;
	if (dst->threads > AUTH_THREADS_MAX)
		dst->threads = AUTH_THREADS_MAX;
}

static void on_pool_closed(uv_handle_t *handle)
{
	free(handle->data);
}

/* NULL when no auth thread could be started (logged; run the loop once to free
 * what was set up). */
struct auth_pool *auth_pool_new(uv_loop_t *loop, const struct auth_pool_settings *settings)
{
	struct auth_pool *pool = x_calloc(1, sizeof(*pool));
	pool->loop = loop;
	settings_copy(&pool->settings, settings);
	/* the master sets it before it starts the daemon: read once, not per check */
	const char *helper = getenv(AUTH_HELPER_ENV);
	pool->helper_socket = helper != NULL && helper[0] != '\0' ? x_strdup(helper) : NULL;
	if (pool_mac_init(pool) != 0)
		log_warn("auth: no HMAC key (OpenSSL failed): the auth cache is off");
	aged_init(&pool->cache, pool->settings.cache_size);
	aged_init(&pool->failures, AUTH_FAIL_RECORDS_MAX);
	pthread_mutex_init(&pool->mutex, NULL);
	pthread_cond_init(&pool->cond, NULL);
	uv_async_init(loop, &pool->async, on_async);
	pool->async.data = pool;
	pool_update_ref(pool);

	/* The threads take no signals: the loop thread handles them. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pool->threads = x_calloc(pool->settings.threads, sizeof(*pool->threads));
	for (unsigned i = 0; i < pool->settings.threads; i++) {
		int err = pthread_create(&pool->threads[pool->nthreads], NULL, auth_thread, pool);
		if (err != 0) {
			log_warn("auth: cannot start auth thread %u: %s", i + 1, strerror(err));
			break;
		}
		pool->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pool->nthreads == 0) {
		log_error("auth: no auth thread could be started");
		auth_pool_free(&pool);
		return NULL;
	}
	return pool;
}

void auth_pool_reconfigure(struct auth_pool *pool, const struct auth_pool_settings *settings)
{
	unsigned threads = pool->settings.threads;
	unsigned old_size = pool->settings.cache_size;
	settings_copy(&pool->settings, settings);
	pool->settings.threads = threads;

	uint64_t now = uv_now(pool->loop);
	if (!cache_enabled(pool)) {
		aged_free(&pool->cache);
		aged_init(&pool->cache, pool->settings.cache_size);
	} else if (pool->settings.cache_size > old_size &&
		   pool->settings.cache_size > 2 * pool->cache.nbuckets) {
		/* grown a lot: a bigger table, starting empty (it is only a cache) */
		aged_free(&pool->cache);
		aged_init(&pool->cache, pool->settings.cache_size);
	} else {
		aged_prune(&pool->cache, now, cache_ttl_ms(pool), pool->settings.cache_size);
	}
}

/* Stops the threads (a running check is waited for), drops every job without
 * calling its callback and closes the uv handles. The pool's memory is freed by
 * the close callbacks: the caller must run the loop once more (uv_run) afterwards.
 * May be called from inside an auth callback. */
void auth_pool_free(struct auth_pool **poolp)
{
	struct auth_pool *pool = *poolp;
	if (pool == NULL)
		return;
	*poolp = NULL;

	struct auth_job *job;
	pthread_mutex_lock(&pool->mutex);
	pool->stopping = true;
	while ((job = list_shift(&pool->queue)) != NULL)
		job_free(job);
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->mutex);
	for (unsigned i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	x_free(&pool->threads);

	while ((job = list_shift(&pool->done)) != NULL)
		job_free(job);
	while ((job = list_shift(&pool->delayed)) != NULL) {
		job_close_timer(job);
		job_free(job);
	}
	aged_free(&pool->cache);
	aged_free(&pool->failures);
	EVP_MAC_CTX_free(pool->mac);
	pool->mac = NULL;
	x_free(&pool->helper_socket);
	pthread_cond_destroy(&pool->cond);
	pthread_mutex_destroy(&pool->mutex);
	pool->inflight = 0;
	pool->closing = true;
	uv_close((uv_handle_t *)&pool->async, on_pool_closed);
}

/* ---- crypt(3) hashes ---- */

static bool is_crypt64(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '/';
}

static size_t span_crypt64(const char *s)
{
	size_t n = 0;
	while (is_crypt64(s[n]))
		n++;
	return n;
}

/* "$y$" params "$" salt "$" 43 characters */
static bool yescrypt_ok(const char *p)
{
	size_t n = span_crypt64(p);
	if (n == 0 || p[n] != '$')
		return false;
	p += n + 1;
	n = span_crypt64(p);
	if (n == 0 || p[n] != '$')
		return false;
	p += n + 1;
	return span_crypt64(p) == 43 && p[43] == '\0';
}

/* "$2b$" 2-digit cost (04..31) "$" 22 characters of salt + 31 of hash */
static bool bcrypt_ok(const char *p)
{
	if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9' || p[2] != '$')
		return false;
	int cost = (p[0] - '0') * 10 + (p[1] - '0');
	if (cost < 4 || cost > 31)
		return false;
	p += 3;
	return span_crypt64(p) == 53 && p[53] == '\0';
}

/* "$6$" ["rounds=" N "$"] salt (at most 16) "$" 86 characters */
static bool sha512crypt_ok(const char *p)
{
	if (strncmp(p, "rounds=", 7) == 0) {
		p += 7;
		size_t n = strspn(p, "0123456789");
		if (n == 0 || n > 9 || p[n] != '$')
			return false;
		p += n + 1;
	}
	size_t n = strcspn(p, "$:\n");
	if (n > 16 || p[n] != '$')
		return false;
	p += n + 1;
	return span_crypt64(p) == 86 && p[86] == '\0';
}

int auth_hash_check_format(const char *hash, const char **error_r)
{
	const char *error = NULL;
	if (hash == NULL || hash[0] == '\0')
		error = "empty password hash";
	else if (strncmp(hash, "$y$", 3) == 0)
		error = yescrypt_ok(hash + 3) ? NULL : "malformed yescrypt ($y$) hash";
	else if (strncmp(hash, "$2b$", 4) == 0 || strncmp(hash, "$2y$", 4) == 0 ||
		 strncmp(hash, "$2a$", 4) == 0)
		error = bcrypt_ok(hash + 4) ? NULL : "malformed bcrypt ($2b$) hash";
	else if (strncmp(hash, "$6$", 3) == 0)
		error = sha512crypt_ok(hash + 3) ? NULL : "malformed SHA-512-crypt ($6$) hash";
	else if (strncmp(hash, "$1$", 3) == 0)
		error = "MD5-crypt ($1$) hashes are too weak and not accepted; "
			"set a new password with 'warrenctl passwd' (yescrypt)";
	else if (strncmp(hash, "$5$", 3) == 0)
		error = "SHA-256-crypt ($5$) hashes are not accepted (only yescrypt $y$, "
			"bcrypt $2b$ and SHA-512-crypt $6$); set a new password with "
			"'warrenctl passwd'";
	else if (strncmp(hash, "$2x$", 4) == 0 || strncmp(hash, "$2$", 3) == 0)
		error = "old bcrypt variants ($2$, $2x$) are not accepted; set a new "
			"password with 'warrenctl passwd' (yescrypt)";
	else if (hash[0] == '!' || hash[0] == '*')
		error = "a locked or disabled hash ('!' or '*') is not a password hash";
	else if ((strlen(hash) == 13 && span_crypt64(hash) == 13) ||
		 (hash[0] == '_' && strlen(hash) == 20 && span_crypt64(hash + 1) == 19))
		error = "traditional DES crypt hashes are too weak and not accepted; set a "
			"new password with 'warrenctl passwd' (yescrypt)";
	else if (hash[0] == '$')
		error = "unsupported hash scheme (accepted: yescrypt $y$, bcrypt $2b$, "
			"SHA-512-crypt $6$)";
	else
		error = "not a crypt(3) password hash (a plaintext password?); make one "
			"with 'warrenctl passwd' (yescrypt)";
	if (error_r != NULL)
		*error_r = error;
	return error == NULL ? 0 : -1;
}

/* Compares a computed hash with the stored one in time that depends on neither. */
static bool hash_equal(const char *computed, const char *stored)
{
	unsigned char a[CRYPT_OUTPUT_SIZE] = { 0 }, b[CRYPT_OUTPUT_SIZE] = { 0 };
	size_t la = strnlen(computed, sizeof(a)), lb = strnlen(stored, sizeof(b));
	if (la >= sizeof(a) || lb >= sizeof(b))
		return false;
	memcpy(a, computed, la);
	memcpy(b, stored, lb);
	bool same = CRYPTO_memcmp(a, b, sizeof(a)) == 0;
	OPENSSL_cleanse(a, sizeof(a));
	return same && la == lb;
}

static int hash_verify_with(struct crypt_data *data, const char *password,
			    const char *hash)
{
	bool usable = hash != NULL && auth_hash_check_format(hash, NULL) == 0;
	if (password == NULL || strlen(password) > AUTH_PASSWORD_MAX) {
		password = "";
		usable = false;
	}
	/* Without a usable hash, spend the time of a real check all the same. */
	const char *setting = usable ? hash : auth_dummy_hash;
	const char *out = crypt_rn(password, setting, data, sizeof(*data));
	bool match = usable && out != NULL && hash_equal(out, hash);
	OPENSSL_cleanse(data, sizeof(*data));
	return match ? 1 : 0;
}

int auth_hash_verify(const char *password, const char *hash)
{
	struct crypt_data *data = x_calloc(1, sizeof(*data));
	int ret = hash_verify_with(data, password, hash);
	free(data);
	return ret;
}

char *auth_hash_password(const char *password)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	if (password == NULL || strlen(password) > AUTH_PASSWORD_MAX)
		return NULL;
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL)
		return NULL;
	struct crypt_data *data = x_calloc(1, sizeof(*data));
	const char *out = crypt_rn(password, salt, data, sizeof(*data));
	char *hash = out != NULL && out[0] != '*' ? x_strdup(out) : NULL;
	OPENSSL_cleanse(data, sizeof(*data));
	free(data);
	return hash;
}

/* ---- PAM ---- */

/* Answers every prompt with the password (PAM frees the answers). */
static int pam_conv_password(int num_msg, const struct pam_message **msg,
			     struct pam_response **resp_r, void *appdata)
{
	const char *password = appdata;
	if (num_msg <= 0 || num_msg > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	struct pam_response *resp = calloc((size_t)num_msg, sizeof(*resp));
	if (resp == NULL)
		return PAM_BUF_ERR;
	int ret = PAM_SUCCESS;
	for (int i = 0; i < num_msg && ret == PAM_SUCCESS; i++) {
		switch (msg[i]->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
		case PAM_PROMPT_ECHO_ON:
			resp[i].resp = strdup(password);
			if (resp[i].resp == NULL)
				ret = PAM_BUF_ERR;
			break;
		case PAM_ERROR_MSG:
		case PAM_TEXT_INFO:
			break;
		default:
			ret = PAM_CONV_ERR;
			break;
		}
	}
	if (ret != PAM_SUCCESS) {
		for (int i = 0; i < num_msg; i++) {
			if (resp[i].resp != NULL) {
				OPENSSL_cleanse(resp[i].resp, strlen(resp[i].resp));
				free(resp[i].resp);
			}
		}
		free(resp);
		return ret;
	}
	*resp_r = resp;
	return PAM_SUCCESS;
}

/* Replaces PAM's failure delay (pam_unix sleeps ~2 s in the auth thread): the
 * pool applies its own delay without holding a thread. */
static void pam_no_delay(int retval, unsigned usec_delay, void *appdata)
{
}

/* 0 for a refusal, -1 for an error that deserves a temporary failure. */
static int pam_status_refused(int status)
{
	switch (status) {
	case PAM_AUTH_ERR:
	case PAM_USER_UNKNOWN:
	case PAM_MAXTRIES:
	case PAM_CRED_INSUFFICIENT:
	case PAM_PERM_DENIED:
	case PAM_ACCT_EXPIRED:
	case PAM_NEW_AUTHTOK_REQD:
	case PAM_AUTHTOK_EXPIRED:
		return 0;
	default:
		return -1;
	}
}

int auth_pam_verify(const char *service, const char *user, const char *password,
		    const char *rhost)
{
	if (service == NULL || user == NULL || user[0] == '\0')
		return -1;
	if (password == NULL)
		password = "";
	struct pam_conv conv = { pam_conv_password, (void *)password };
	pam_handle_t *pamh = NULL;
	char name[128];
	int status = pam_start(service, user, &conv, &pamh);
	if (status != PAM_SUCCESS) {
		log_warn("auth: pam_start(%s): %s", service,
			 pamh != NULL ? pam_strerror(pamh, status) : "failed");
		if (pamh != NULL)
			pam_end(pamh, status);
		return -1;
	}
	const char *step = "pam_set_item";
	status = pam_set_item(pamh, PAM_FAIL_DELAY, (const void *)pam_no_delay);
	if (status == PAM_SUCCESS && rhost != NULL)
		status = pam_set_item(pamh, PAM_RHOST, rhost);
	if (status == PAM_SUCCESS) {
		step = "pam_authenticate";
		status = pam_authenticate(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
	}
	if (status == PAM_SUCCESS) {
		step = "pam_acct_mgmt";
		status = pam_acct_mgmt(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
	}
	int ret = status == PAM_SUCCESS ? 1 : pam_status_refused(status);
	if (ret < 0) {
		log_warn("auth: pam(%s,%s): %s: %s", service,
			 log_printable(name, sizeof(name), user, strlen(user)), step,
			 pam_strerror(pamh, status));
	} else if (ret == 0 && log_debug_enabled()) {
		log_debug("auth: pam(%s,%s): %s: %s", service,
			  log_printable(name, sizeof(name), user, strlen(user)), step,
			  pam_strerror(pamh, status));
	}
	pam_end(pamh, status);
	return ret;
}
