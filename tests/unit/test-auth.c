/* test-auth.c — the crypt(3) primitives and the async auth pool of common/auth.c
 * (threads, cache, failure delay, overflow, cancel, free) on a real libuv loop.
 * PAM is tested by tests/integration/test_pam.py through tests/tools/authcheck.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <crypt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/auth.h"

/* A fast hash for the pool tests, a slow one (the default yescrypt) to keep a
 * thread busy, and the two passwords they hold. */
static char *fast_hash;      /* SHA-512-crypt, rounds=1000, of FAST_PW */
static char *slow_hash;      /* yescrypt of SLOW_PW */
#define FAST_PW "fast password"
#define SLOW_PW "correct horse battery staple"

static uv_loop_t loop;
static uv_timer_t watchdog;
static bool in_verify;       /* inside auth_verify(): callbacks must not run */
static int callback_seq;     /* callbacks seen so far in this test */

/* ---- helpers ---- */

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static char *make_hash(const char *prefix, unsigned long count, const char *password)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	assert_non_null(crypt_gensalt_rn(prefix, count, NULL, 0, salt, sizeof(salt)));
	struct crypt_data *data = calloc(1, sizeof(*data));
	assert_non_null(data);
	const char *out = crypt_rn(password, salt, data, sizeof(*data));
	assert_non_null(out);
	char *hash = strdup(out);
	free(data);
	return hash;
}

struct waiter {
	int calls;
	enum auth_result result;
	uint64_t done_ms;            /* uv_now() when the callback ran */
	int order;                   /* 1 for the first callback of the test, ... */
	struct auth_pool **free_pool;   /* set: the callback frees this pool */
	struct auth_pool *chain_pool;   /* set: the callback starts another check */
	struct waiter *chain_waiter;
};

static void on_result(enum auth_result result, void *ctx)
{
	struct waiter *w = ctx;
	assert_false(in_verify);
	w->calls++;
	w->result = result;
	w->done_ms = uv_now(&loop);
	w->order = ++callback_seq;
	if (w->free_pool != NULL)
		auth_pool_free(w->free_pool);
	if (w->chain_pool != NULL) {
		struct auth_check check = {
			.backend = AUTH_BACKEND_HASH, .login = "chained",
			.password = FAST_PW, .hash = fast_hash,
		};
		in_verify = true;
		auth_verify(w->chain_pool, &check, on_result, w->chain_waiter);
		in_verify = false;
	}
}

static struct auth_job *verify(struct auth_pool *pool, const char *login,
			       const char *password, const char *hash, const char *ip,
			       struct waiter *w)
{
	struct auth_check check = {
		.backend = AUTH_BACKEND_HASH, .login = login, .password = password,
		.hash = hash, .client_ip = ip,
	};
	in_verify = true;
	struct auth_job *job = auth_verify(pool, &check, on_result, w);
	in_verify = false;
	assert_non_null(job);
	return job;
}

static struct auth_pool_settings settings(unsigned threads, unsigned queue_max,
					  unsigned ttl_s, unsigned cache_size,
					  unsigned delay_ms, unsigned delay_max_ms)
{
	struct auth_pool_settings s = {
		.threads = threads, .queue_max = queue_max, .cache_ttl_s = ttl_s,
		.cache_size = cache_size, .failure_delay_ms = delay_ms,
		.failure_delay_max_ms = delay_max_ms,
	};
	return s;
}

static struct auth_pool *pool_new(struct auth_pool_settings s)
{
	struct auth_pool *pool = auth_pool_new(&loop, &s);
	assert_non_null(pool);
	return pool;
}

static void run(void)
{
	uv_run(&loop, UV_RUN_DEFAULT);
}

/* Runs the loop for one check and returns its time in loop milliseconds. */
static uint64_t run_one(struct auth_pool *pool, const char *login, const char *password,
			const char *hash, const char *ip, enum auth_result expect)
{
	struct waiter w = { 0 };
	uv_update_time(&loop);
	uint64_t start = uv_now(&loop);
	verify(pool, login, password, hash, ip, &w);
	run();
	assert_int_equal(w.calls, 1);
	assert_int_equal(w.result, expect);
	return w.done_ms - start;
}

/* Calls fn(arg) after ms milliseconds of loop time. */
struct later {
	uv_timer_t timer;
	void (*fn)(void *arg);
	void *arg;
};

static void free_later(uv_handle_t *handle)
{
	free(handle->data);
}

static void on_later(uv_timer_t *timer)
{
	struct later *l = timer->data;
	l->fn(l->arg);
	uv_close((uv_handle_t *)&l->timer, free_later);
}

static void later(uint64_t ms, void (*fn)(void *arg), void *arg)
{
	struct later *l = calloc(1, sizeof(*l));
	assert_non_null(l);
	l->fn = fn;
	l->arg = arg;
	uv_timer_init(&loop, &l->timer);
	l->timer.data = l;
	uv_timer_start(&l->timer, on_later, ms, 0);
}

static void on_watchdog(uv_timer_t *timer)
{
	fail_msg("the test did not finish in time");
}

static int setup(void **state)
{
	callback_seq = 0;
	assert_int_equal(uv_loop_init(&loop), 0);
	uv_timer_init(&loop, &watchdog);
	uv_timer_start(&watchdog, on_watchdog, 100000, 0);
	uv_unref((uv_handle_t *)&watchdog);
	return 0;
}

static int teardown(void **state)
{
	uv_close((uv_handle_t *)&watchdog, NULL);
	run();
	/* every handle the pool opened has been closed */
	assert_int_equal(uv_loop_close(&loop), 0);
	return 0;
}

static int group_setup(void **state)
{
	fast_hash = make_hash("$6$", 1000, FAST_PW);
	slow_hash = make_hash("$y$", 0, SLOW_PW);
	return 0;
}

static int group_teardown(void **state)
{
	free(fast_hash);
	free(slow_hash);
	return 0;
}

/* ---- blocking primitives ---- */

static void check_right_and_wrong(const char *hash, const char *password)
{
	assert_int_equal(auth_hash_check_format(hash, NULL), 0);
	assert_int_equal(auth_hash_verify(password, hash), 1);
	assert_int_equal(auth_hash_verify("wrong", hash), 0);
	assert_int_equal(auth_hash_verify("", hash), 0);
	char longer[256];
	snprintf(longer, sizeof(longer), "%sx", password);
	assert_int_equal(auth_hash_verify(longer, hash), 0);
	snprintf(longer, sizeof(longer), "%.*s", (int)strlen(password) - 1, password);
	assert_int_equal(auth_hash_verify(longer, hash), 0);
}

static void test_hash_verify_formats(void **state)
{
	static const struct { const char *prefix; unsigned long count; } kinds[] = {
		{ "$y$", 0 }, { "$y$", 3 }, { "$2b$", 5 }, { "$2y$", 4 }, { "$2a$", 4 },
		{ "$6$", 0 }, { "$6$", 1000 },
	};
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		char *hash = make_hash(kinds[i].prefix, kinds[i].count, "Pässword 1");
		assert_memory_equal(hash, kinds[i].prefix, strlen(kinds[i].prefix));
		check_right_and_wrong(hash, "Pässword 1");
		free(hash);
	}
	/* published SHA-512-crypt vector (Drepper's specification) */
	check_right_and_wrong("$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnI"
			      "FNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1", "Hello world!");
	/* bcrypt with an explicit cost, as the brief's example */
	char *bcrypt = make_hash("$2b$", 5, "s3cret");
	assert_memory_equal(bcrypt, "$2b$05$", 7);
	check_right_and_wrong(bcrypt, "s3cret");
	free(bcrypt);
}

static void test_hash_verify_no_hash(void **state)
{
	/* measured against a real yescrypt check */
	double t0 = now_ms();
	assert_int_equal(auth_hash_verify("guess", slow_hash), 0);
	double real = now_ms() - t0;

	t0 = now_ms();
	assert_int_equal(auth_hash_verify("guess", NULL), 0);
	double none = now_ms() - t0;
	print_message("yescrypt check %.1f ms, check without a hash %.1f ms\n", real, none);
	assert_true(none > real / 3);

	/* refused formats fail the same slow way, and never compare plaintext */
	t0 = now_ms();
	assert_int_equal(auth_hash_verify("secret", "secret"), 0);
	assert_true(now_ms() - t0 > real / 3);
	assert_int_equal(auth_hash_verify("secret", "$1$abcdefgh$4nK3B8DC3DOvz0KmUq8bZ."), 0);
	assert_int_equal(auth_hash_verify("", ""), 0);
	assert_int_equal(auth_hash_verify(NULL, slow_hash), 0);
	/* a truncated or extended stored hash never matches */
	char *cut = strdup(slow_hash);
	cut[strlen(cut) - 1] = '\0';
	assert_int_equal(auth_hash_verify(SLOW_PW, cut), 0);
	free(cut);
	char longer[256];
	snprintf(longer, sizeof(longer), "%sA", slow_hash);
	assert_int_equal(auth_hash_verify(SLOW_PW, longer), 0);
	assert_int_equal(auth_hash_verify(SLOW_PW, slow_hash), 1);
	/* the longest password libxcrypt takes works; longer ones fail */
	char pw[CRYPT_MAX_PASSPHRASE_SIZE + 100];
	memset(pw, 'p', sizeof(pw));
	pw[CRYPT_MAX_PASSPHRASE_SIZE - 1] = '\0';
	char *long_hash = make_hash("$6$", 1000, pw);
	assert_int_equal(auth_hash_verify(pw, long_hash), 1);
	free(long_hash);
	pw[CRYPT_MAX_PASSPHRASE_SIZE - 1] = 'p';
	pw[sizeof(pw) - 1] = '\0';
	assert_int_equal(auth_hash_verify(pw, slow_hash), 0);
	assert_null(auth_hash_password(pw));
}

static void refused(const char *hash, const char *word)
{
	const char *error = NULL;
	assert_int_equal(auth_hash_check_format(hash, &error), -1);
	assert_non_null(error);
	if (strstr(error, word) == NULL)
		fail_msg("error for '%s' is '%s', expected '%s' in it", hash ? hash : "NULL",
			 error, word);
	assert_int_equal(auth_hash_check_format(hash, NULL), -1);
}

static void test_hash_check_format(void **state)
{
	const char *error = "unset";
	assert_int_equal(auth_hash_check_format(slow_hash, &error), 0);
	assert_null(error);
	assert_int_equal(auth_hash_check_format(fast_hash, &error), 0);
	assert_int_equal(auth_hash_check_format(
		"$2y$10$jt764yyLUAwWHC46JoYIQuD3ylRnagKfALA20xTvF3iJqTvc5mEP2", NULL), 0);
	assert_int_equal(auth_hash_check_format(
		"$2a$04$aFBTSidn6Sk/9dHirWInuuBGu5r8oZC2RaBD1wB1Obx/0IhRs9m2i", NULL), 0);
	assert_int_equal(auth_hash_check_format(
		"$y$j75$7WWSMj4aBlNdiKK8TroiI1$Q6hAOEiCk1V68naBsSDseRyG1opamIHx7KULXT/hgn.",
		NULL), 0);

	refused(NULL, "empty");
	refused("", "empty");
	refused("$1$abcdefgh$4nK3B8DC3DOvz0KmUq8bZ.", "MD5");
	refused("abJnggxhB/yWI", "DES");
	refused("_J9..CCCCXBrJUJV154M", "DES");
	refused("secret", "plaintext");
	refused("correct horse battery staple", "plaintext");
	refused("$5$rounds=5000$abc$Rk1KH3s9dDwTqsvHwVYXH5Y9r6D2mUJ0x3Hd0BH3S1.", "SHA-256");
	refused("$2x$05$aFBTSidn6Sk/9dHirWInuuBGu5r8oZC2RaBD1wB1Obx/0IhRs9m2i", "old bcrypt");
	refused("$2b$03$aFBTSidn6Sk/9dHirWInuuBGu5r8oZC2RaBD1wB1Obx/0IhRs9m2i", "malformed");
	refused("$2b$05$aFBTSidn6Sk/9dHirWInuuBGu5r8oZC2RaBD1wB1Obx/0IhRs9m2", "malformed");
	refused("$y$j9T$abc", "malformed");
	refused("$y$j9T$90N1ChZ69k57rkbBzbuoc1$o56PYBmNcvg3aJTEaAlsMRyoeauRz.Ftaw1D7zPlTd9x",
		"malformed");
	refused("$6$saltstring$short", "malformed");
	refused("$6$rounds=$salt$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4"
		"OTLiBFdcbYEdFCoEOfaS35inz1", "malformed");
	refused("$7$CU..../....abc$xyz", "unsupported");
	refused("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", "unsupported");
	refused("!$y$j9T$90N1ChZ69k57rkbBzbuoc1$o56PYBmNcvg3aJTEaAlsMRyoeauRz.Ftaw1D7zPlTd9",
		"locked");
	refused("*", "locked");
}

static void test_hash_password(void **state)
{
	char *a = auth_hash_password("n3w password");
	char *b = auth_hash_password("n3w password");
	assert_non_null(a);
	assert_non_null(b);
	assert_memory_equal(a, "$y$", 3);
	assert_string_not_equal(a, b);       /* fresh salt each time */
	assert_int_equal(auth_hash_check_format(a, NULL), 0);
	assert_int_equal(auth_hash_verify("n3w password", a), 1);
	assert_int_equal(auth_hash_verify("n3w password", b), 1);
	assert_int_equal(auth_hash_verify("n3w passwore", a), 0);

	double t0 = now_ms();
	for (int i = 0; i < 5; i++)
		assert_int_equal(auth_hash_verify("n3w password", a), 1);
	print_message("yescrypt (default cost) verify: %.1f ms\n", (now_ms() - t0) / 5);
	free(a);
	free(b);
	char *empty = auth_hash_password("");
	assert_non_null(empty);
	assert_int_equal(auth_hash_verify("", empty), 1);
	free(empty);
}

/* ---- the pool ---- */

static void test_pool_good_and_bad(void **state)
{
	struct auth_pool *pool = pool_new(settings(2, 16, 0, 0, 0, 0));
	struct waiter good = { 0 }, bad = { 0 }, none = { 0 };
	verify(pool, "alice", SLOW_PW, slow_hash, "192.0.2.1", &good);
	verify(pool, "alice", "not it", slow_hash, "192.0.2.2", &bad);
	verify(pool, "nobody", SLOW_PW, NULL, NULL, &none);
	assert_int_equal(good.calls + bad.calls + none.calls, 0);
	run();
	assert_int_equal(good.calls, 1);
	assert_int_equal(good.result, AUTH_OK);
	assert_int_equal(bad.calls, 1);
	assert_int_equal(bad.result, AUTH_FAIL);
	assert_int_equal(none.calls, 1);
	assert_int_equal(none.result, AUTH_FAIL);

	/* a refused stored hash (plaintext) fails, a PAM check without a service
	 * is a temporary failure */
	struct waiter plain = { 0 }, nopam = { 0 };
	verify(pool, "p", "secret", "secret", NULL, &plain);
	struct auth_check check = {
		.backend = AUTH_BACKEND_PAM, .login = "p", .password = "secret",
	};
	auth_verify(pool, &check, on_result, &nopam);
	run();
	assert_int_equal(plain.calls, 1);
	assert_int_equal(plain.result, AUTH_FAIL);
	assert_int_equal(nopam.calls, 1);
	assert_int_equal(nopam.result, AUTH_TEMPFAIL);
	auth_pool_free(&pool);
	assert_null(pool);
}

static void test_pool_many(void **state)
{
	enum { N = 60 };
	struct auth_pool *pool = pool_new(settings(4, N, 0, 0, 0, 0));
	struct waiter w[N];
	memset(w, 0, sizeof(w));
	char ip[32];
	for (int i = 0; i < N; i++) {
		snprintf(ip, sizeof(ip), "198.51.100.%d", i);
		verify(pool, "user", i % 3 == 0 ? "wrong" : FAST_PW, fast_hash, ip, &w[i]);
	}
	run();
	for (int i = 0; i < N; i++) {
		assert_int_equal(w[i].calls, 1);
		assert_int_equal(w[i].result, i % 3 == 0 ? AUTH_FAIL : AUTH_OK);
	}
	assert_int_equal(callback_seq, N);
	auth_pool_free(&pool);
}

static void test_failure_delay(void **state)
{
	struct auth_pool *pool = pool_new(settings(1, 16, 0, 0, 50, 200));
	/* no address: no delay; this is also the time of the check itself */
	uint64_t base = 0;
	for (int i = 0; i < 3; i++) {
		uint64_t t = run_one(pool, "u", "bad", fast_hash, NULL, AUTH_FAIL);
		base = t > base ? t : base;
	}
	assert_true(base < 50);

	static const unsigned expect[] = { 50, 100, 200, 200, 200 };
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		uint64_t t = run_one(pool, "u", "bad", fast_hash, "203.0.113.7", AUTH_FAIL);
		print_message("failure %zu from one address: %llu ms\n", i + 1,
			      (unsigned long long)t);
		assert_true(t >= expect[i]);
		assert_true(t < expect[i] + base + 80);
	}
	/* another address starts at the first step */
	uint64_t t = run_one(pool, "u", "bad", fast_hash, "2001:db8::1", AUTH_FAIL);
	assert_true(t >= 50 && t < 50 + base + 80);
	/* a success is not delayed and clears the address's record */
	t = run_one(pool, "u", FAST_PW, fast_hash, "203.0.113.7", AUTH_OK);
	assert_true(t < base + 40);
	t = run_one(pool, "u", "bad", fast_hash, "203.0.113.7", AUTH_FAIL);
	assert_true(t >= 50 && t < 50 + base + 80);
	/* the other address still remembers */
	t = run_one(pool, "u", "bad", fast_hash, "2001:db8::1", AUTH_FAIL);
	assert_true(t >= 100 && t < 100 + base + 80);

	/* reconfigured: no delay at all */
	struct auth_pool_settings s = settings(1, 16, 0, 0, 0, 0);
	auth_pool_reconfigure(pool, &s);
	t = run_one(pool, "u", "bad", fast_hash, "203.0.113.7", AUTH_FAIL);
	assert_true(t < base + 40);
	auth_pool_free(&pool);
}

/* Starts a slow check on the only thread, then the given one: a check answered by
 * the cache comes back first, one that needs a thread after the slow one. */
static bool served_by_cache(struct auth_pool *pool, const char *login,
			    const char *password, const char *hash,
			    enum auth_result expect)
{
	struct waiter blocker = { 0 }, w = { 0 };
	callback_seq = 0;
	verify(pool, "blocker", "wrong", slow_hash, NULL, &blocker);
	verify(pool, login, password, hash, "192.0.2.9", &w);
	run();
	assert_int_equal(blocker.calls, 1);
	assert_int_equal(blocker.result, AUTH_FAIL);
	assert_int_equal(w.calls, 1);
	assert_int_equal(w.result, expect);
	return w.order < blocker.order;
}

static void test_cache(void **state)
{
	struct auth_pool *pool = pool_new(settings(1, 16, 60, 10, 0, 0));
	/* the first success goes to a thread and is remembered */
	uint64_t t_hash = run_one(pool, "alice", SLOW_PW, slow_hash, NULL, AUTH_OK);
	assert_true(served_by_cache(pool, "alice", SLOW_PW, slow_hash, AUTH_OK));
	uv_update_time(&loop);
	uint64_t t_cached = run_one(pool, "alice", SLOW_PW, slow_hash, NULL, AUTH_OK);
	print_message("yescrypt check %llu ms, cache hit %llu ms\n",
		      (unsigned long long)t_hash, (unsigned long long)t_cached);
	assert_true(t_cached <= t_hash / 2);

	/* anything different goes to a thread: password, stored hash, login */
	assert_false(served_by_cache(pool, "alice", "wrong", slow_hash, AUTH_FAIL));
	char *rehashed = make_hash("$6$", 1000, SLOW_PW);
	assert_false(served_by_cache(pool, "alice", SLOW_PW, rehashed, AUTH_OK));
	free(rehashed);
	assert_false(served_by_cache(pool, "Alice", SLOW_PW, slow_hash, AUTH_OK));
	/* a failure removed nothing */
	assert_true(served_by_cache(pool, "alice", SLOW_PW, slow_hash, AUTH_OK));
	/* disabled on reload */
	struct auth_pool_settings s = settings(1, 16, 0, 10, 0, 0);
	auth_pool_reconfigure(pool, &s);
	assert_false(served_by_cache(pool, "alice", SLOW_PW, slow_hash, AUTH_OK));
	assert_false(served_by_cache(pool, "alice", SLOW_PW, slow_hash, AUTH_OK));
	auth_pool_free(&pool);
}

static void test_cache_size_and_ttl(void **state)
{
	struct auth_pool *pool = pool_new(settings(1, 16, 1, 1, 0, 0));
	run_one(pool, "a", FAST_PW, fast_hash, NULL, AUTH_OK);
	assert_true(served_by_cache(pool, "a", FAST_PW, fast_hash, AUTH_OK));
	run_one(pool, "b", FAST_PW, fast_hash, NULL, AUTH_OK);      /* evicts a */
	assert_true(served_by_cache(pool, "b", FAST_PW, fast_hash, AUTH_OK));
	assert_false(served_by_cache(pool, "a", FAST_PW, fast_hash, AUTH_OK));
	assert_true(served_by_cache(pool, "a", FAST_PW, fast_hash, AUTH_OK));
	/* one second later the entry has expired */
	usleep(1100 * 1000);
	uv_update_time(&loop);
	assert_false(served_by_cache(pool, "a", FAST_PW, fast_hash, AUTH_OK));
	assert_true(served_by_cache(pool, "a", FAST_PW, fast_hash, AUTH_OK));
	auth_pool_free(&pool);
}

static void test_queue_overflow(void **state)
{
	enum { N = 6 };
	double t0 = now_ms();
	assert_int_equal(auth_hash_verify("x", slow_hash), 0);
	double check_ms = now_ms() - t0;

	struct auth_pool *pool = pool_new(settings(1, 1, 0, 0, 0, 0));
	struct waiter w[N];
	memset(w, 0, sizeof(w));
	t0 = now_ms();
	for (int i = 0; i < N; i++)
		verify(pool, "u", SLOW_PW, slow_hash, NULL, &w[i]);
	double burst_ms = now_ms() - t0;
	run();
	int ok = 0, tempfail = 0;
	for (int i = 0; i < N; i++) {
		assert_int_equal(w[i].calls, 1);
		if (w[i].result == AUTH_OK)
			ok++;
		else
			assert_int_equal(w[i].result, AUTH_TEMPFAIL);
		tempfail += w[i].result == AUTH_TEMPFAIL;
	}
	assert_int_equal(ok + tempfail, N);
	assert_true(ok >= 2);
	assert_true(tempfail >= 1);
	/* Exact when the burst was quicker than one check (under valgrind the
	 * thread may run a whole check before the loop thread goes on). */
	if (burst_ms < check_ms / 2) {
		/* one running + queue_max waiting; the refused ones answered first */
		assert_int_equal(ok, 2);
		for (int i = 0; i < N; i++) {
			if (w[i].result == AUTH_OK)
				assert_true(w[i].order > N - 2);
		}
	}
	auth_pool_free(&pool);
}

static void test_cancel_queued_and_running(void **state)
{
	struct auth_pool *pool = pool_new(settings(1, 16, 60, 10, 0, 0));
	struct waiter running = { 0 }, queued = { 0 }, control = { 0 };
	struct auth_job *r = verify(pool, "r", SLOW_PW, slow_hash, NULL, &running);
	usleep(5000);     /* the thread has taken it */
	struct auth_job *q = verify(pool, "q", SLOW_PW, slow_hash, NULL, &queued);
	verify(pool, "c", FAST_PW, fast_hash, NULL, &control);
	auth_cancel(q);
	auth_cancel(r);
	run();
	assert_int_equal(running.calls, 0);
	assert_int_equal(queued.calls, 0);
	assert_int_equal(control.calls, 1);
	assert_int_equal(control.result, AUTH_OK);
	/* a cancelled success is not cached either way: nothing to check */

	/* finished by the thread, not yet delivered by the loop */
	struct waiter done = { 0 };
	struct auth_job *d = verify(pool, "d", FAST_PW, fast_hash, NULL, &done);
	usleep(100 * 1000);
	auth_cancel(d);
	run();
	assert_int_equal(done.calls, 0);

	/* answered by the cache */
	struct waiter cached = { 0 };
	assert_true(served_by_cache(pool, "c", FAST_PW, fast_hash, AUTH_OK));
	auth_cancel(verify(pool, "c", FAST_PW, fast_hash, NULL, &cached));
	run();
	assert_int_equal(cached.calls, 0);
	auth_pool_free(&pool);
}

static void test_cancel_overflow(void **state)
{
	struct auth_pool *pool = pool_new(settings(1, 0, 0, 0, 0, 0));
	struct waiter busy = { 0 }, refused_w = { 0 };
	verify(pool, "b", SLOW_PW, slow_hash, NULL, &busy);
	usleep(5000);
	auth_cancel(verify(pool, "x", SLOW_PW, slow_hash, NULL, &refused_w));
	run();
	assert_int_equal(busy.calls, 1);
	assert_int_equal(busy.result, AUTH_OK);
	assert_int_equal(refused_w.calls, 0);
	auth_pool_free(&pool);
}

static void cancel_job(void *arg)
{
	auth_cancel(arg);
}

static void test_cancel_delayed(void **state)
{
	struct auth_pool *pool = pool_new(settings(1, 16, 0, 0, 2000, 2000));
	struct waiter w = { 0 };
	struct auth_job *job = verify(pool, "u", "bad", fast_hash, "192.0.2.50", &w);
	later(150, cancel_job, job);
	double t0 = now_ms();
	run();
	/* the loop ended with the cancel: the delay timer is gone */
	assert_true(now_ms() - t0 < 1500);
	assert_int_equal(w.calls, 0);
	auth_pool_free(&pool);
}

static void test_free_with_jobs(void **state)
{
	struct auth_pool *pool = pool_new(settings(1, 16, 60, 10, 0, 0));
	struct waiter w[5];
	memset(w, 0, sizeof(w));
	verify(pool, "a", SLOW_PW, slow_hash, NULL, &w[0]);     /* running */
	usleep(5000);
	for (int i = 1; i < 5; i++)                                  /* queued */
		verify(pool, "b", SLOW_PW, slow_hash, NULL, &w[i]);
	auth_pool_free(&pool);
	assert_null(pool);
	run();
	for (int i = 0; i < 5; i++)
		assert_int_equal(w[i].calls, 0);
}

static void free_pool_later(void *arg)
{
	auth_pool_free(arg);
}

static void test_free_with_delayed_and_done(void **state)
{
	struct auth_pool *pool = pool_new(settings(2, 16, 0, 0, 5000, 5000));
	struct waiter delayed = { 0 }, done = { 0 };
	verify(pool, "u", "bad", fast_hash, "192.0.2.60", &delayed);
	later(150, free_pool_later, &pool);
	double t0 = now_ms();
	run();
	assert_true(now_ms() - t0 < 2500);
	assert_int_equal(delayed.calls, 0);
	assert_null(pool);

	/* a finished job that the loop has not delivered yet */
	pool = pool_new(settings(2, 16, 0, 0, 0, 0));
	verify(pool, "u", FAST_PW, fast_hash, NULL, &done);
	usleep(100 * 1000);
	auth_pool_free(&pool);
	run();
	assert_int_equal(done.calls, 0);
}

static void test_free_from_callback(void **state)
{
	struct auth_pool *pool = pool_new(settings(1, 16, 0, 0, 0, 0));
	struct waiter first = { .free_pool = &pool }, rest[3];
	memset(rest, 0, sizeof(rest));
	verify(pool, "a", FAST_PW, fast_hash, NULL, &first);
	for (int i = 0; i < 3; i++)
		verify(pool, "b", FAST_PW, fast_hash, NULL, &rest[i]);
	usleep(50 * 1000);     /* several may be done when the loop looks */
	run();
	assert_int_equal(first.calls, 1);
	assert_null(pool);
	for (int i = 0; i < 3; i++)
		assert_int_equal(rest[i].calls, 0);
}

static void test_callback_starts_check(void **state)
{
	struct auth_pool *pool = pool_new(settings(1, 16, 60, 10, 0, 0));
	struct waiter second = { 0 }, third = { 0 };
	struct waiter first = { .chain_pool = pool, .chain_waiter = &second };
	second.chain_pool = pool;
	second.chain_waiter = &third;
	verify(pool, "chained", FAST_PW, fast_hash, NULL, &first);
	run();
	assert_int_equal(first.calls, 1);
	assert_int_equal(second.calls, 1);
	assert_int_equal(third.calls, 1);
	assert_int_equal(third.result, AUTH_OK);     /* from the cache */
	auth_pool_free(&pool);
}

static void test_pool_idle_loop_ends(void **state)
{
	/* an idle pool does not keep the loop running */
	struct auth_pool *pool = pool_new(settings(3, 16, 60, 10, 50, 200));
	double t0 = now_ms();
	run();
	assert_true(now_ms() - t0 < 100);
	auth_pool_free(&pool);
	auth_pool_free(&pool);      /* NULL is fine */
	auth_cancel(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_verify_formats),
		cmocka_unit_test(test_hash_verify_no_hash),
		cmocka_unit_test(test_hash_check_format),
		cmocka_unit_test(test_hash_password),
		cmocka_unit_test_setup_teardown(test_pool_good_and_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_delay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_size_and_ttl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_queued_and_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_delayed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_with_jobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_with_delayed_and_done, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_from_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_callback_starts_check, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_idle_loop_ends, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
