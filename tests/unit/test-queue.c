/* test-queue.c — the outbound queue (storage/queue.c) on a real store on disk. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "storage/queue.h"
#include "common/pool.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[PATH_MAX];
static struct store *st;

static const char MSG[] = "From: alice@example.test\r\nSubject: queued\r\n\r\nBody.\r\n";

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/warren-test-queue-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	struct store_settings settings = { .dir = dir, .flags = STORE_OPEN_RECOVER, .cache_mb = 16 };
	const char *err = NULL;
	return store_open(&settings, &st, &err) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	store_close(&st);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void make_msg(struct queue_msg *m, size_t n)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->from, sizeof(m->from), "alice@example.test");
	snprintf(m->envid, sizeof(m->envid), "env-1");
	m->ret = QUEUE_RET_HDRS;
	m->n_rcpts = n;
	m->rcpts = x_calloc(n, sizeof(*m->rcpts));
	for (size_t i = 0; i < n; i++) {
		snprintf(m->rcpts[i].addr, sizeof(m->rcpts[i].addr), "r%zu@dest.test", i);
		m->rcpts[i].notify = QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY;
	}
}

static int add(struct queue_msg *m)
{
	struct store_body b = { MSG, strlen(MSG), NULL };
	return queue_add(st, NULL, &b, m);
}

static bool body_exists(const char *id)
{
	char path[PATH_MAX];
	struct stat s;
	queue_body_path(st, id, path, sizeof(path));
	return stat(path, &s) == 0;
}

static void test_add_get_roundtrip(void **state)
{
	struct queue_msg m, g;
	make_msg(&m, 2);
	snprintf(m.rcpts[1].orcpt, sizeof(m.rcpts[1].orcpt), "rfc822;orig@dest.test");
	assert_int_equal(add(&m), 0);
	assert_true(strlen(m.id) >= 12);
	assert_int_equal(m.size, strlen(MSG));
	assert_true(body_exists(m.id));
	assert_int_equal(queue_get(st, m.id, &g), 0);
	assert_string_equal(g.from, "alice@example.test");
	assert_string_equal(g.envid, "env-1");
	assert_int_equal(g.ret, QUEUE_RET_HDRS);
	assert_int_equal(g.n_rcpts, 2);
	assert_string_equal(g.rcpts[1].addr, "r1@dest.test");
	assert_string_equal(g.rcpts[1].orcpt, "rfc822;orig@dest.test");
	assert_int_equal(g.rcpts[0].state, QUEUE_RCPT_PENDING);
	assert_int_equal(g.rcpts[0].notify, QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY);
	char *data;
	size_t len;
	assert_int_equal(queue_body_read(st, m.id, 1 << 20, &data, &len), 0);
	assert_int_equal(len, strlen(MSG));
	assert_memory_equal(data, MSG, len);
	free(data);
	assert_int_equal(queue_body_read(st, m.id, 10, &data, &len), STORE_ETOOBIG);
	queue_msg_free(&g);
	queue_msg_free(&m);
}

static void test_bad_ids(void **state)
{
	struct queue_msg g;
	assert_int_equal(queue_get(st, "../etc/passwd", &g), STORE_EINVAL);
	assert_int_equal(queue_get(st, "ABC", &g), STORE_ENOTFOUND);
	assert_int_equal(queue_delete(st, "nothex"), STORE_EINVAL);
	struct queue_msg m;
	make_msg(&m, 1);
	m.n_rcpts = 0;   /* no recipient: refused */
	assert_int_equal(add(&m), STORE_EINVAL);
	m.n_rcpts = 1;
	queue_msg_free(&m);
}

static void test_duplicate_id_gets_a_new_one(void **state)
{
	struct queue_msg a, b;
	make_msg(&a, 1);
	snprintf(a.id, sizeof(a.id), "ABCDEF0123");
	assert_int_equal(add(&a), 0);
	assert_string_equal(a.id, "ABCDEF0123");
	make_msg(&b, 1);
	snprintf(b.id, sizeof(b.id), "ABCDEF0123");
	struct store_body other = { "other\r\n", 7, NULL };
	assert_int_equal(queue_add(st, "X-Prepended: 1\r\n", &other, &b), 0);
	assert_string_not_equal(b.id, "ABCDEF0123");
	char *data;
	size_t len;
	assert_int_equal(queue_body_read(st, "ABCDEF0123", 1 << 20, &data, &len), 0);
	assert_memory_equal(data, MSG, strlen(MSG));   /* the first body is untouched */
	free(data);
	assert_int_equal(queue_body_read(st, b.id, 1 << 20, &data, &len), 0);
	assert_string_equal(data, "X-Prepended: 1\r\nother\r\n");
	free(data);
	queue_msg_free(&a);
	queue_msg_free(&b);
}

static void test_claim_put_remove(void **state)
{
	struct queue_msg m, c;
	make_msg(&m, 2);
	assert_int_equal(add(&m), 0);
	assert_int_equal(queue_claim(st, m.id, getpid(), time(NULL) + 60, &c), 0);
	assert_int_equal(c.lease_pid, getpid());
	/* a live other process cannot claim it (the parent is alive) */
	struct queue_msg o;
	assert_int_equal(queue_claim(st, m.id, getppid(), time(NULL) + 60, &o), STORE_EEXIST);
	/* one recipient done: the message stays, the claim goes */
	c.rcpts[0].state = QUEUE_RCPT_DELIVERED;
	c.rcpts[1].attempts = 1;
	c.rcpts[1].next_attempt = time(NULL) + 300;
	snprintf(c.rcpts[1].reply, sizeof(c.rcpts[1].reply), "451 4.3.0 later");
	bool removed = true;
	assert_int_equal(queue_put(st, &c, &removed), 0);
	assert_false(removed);
	struct queue_msg g;
	assert_int_equal(queue_get(st, m.id, &g), 0);
	assert_int_equal(g.lease_pid, 0);
	assert_int_equal(g.rcpts[0].state, QUEUE_RCPT_DELIVERED);
	assert_string_equal(g.rcpts[1].reply, "451 4.3.0 later");
	assert_int_equal(queue_msg_count(&g, QUEUE_RCPT_PENDING), 1);
	queue_msg_free(&g);
	/* flush makes it due now */
	size_t n = 0;
	assert_int_equal(queue_flush(st, NULL, &n), 0);
	assert_true(n >= 1);
	assert_int_equal(queue_get(st, m.id, &g), 0);
	assert_int_equal(g.rcpts[1].next_attempt, 0);
	queue_msg_free(&g);
	/* every recipient final: gone, body file too */
	queue_msg_free(&c);
	assert_int_equal(queue_claim(st, m.id, getpid(), time(NULL) + 60, &c), 0);
	c.rcpts[1].state = QUEUE_RCPT_FAILED;
	assert_int_equal(queue_put(st, &c, &removed), 0);
	assert_true(removed);
	assert_int_equal(queue_get(st, m.id, &g), STORE_ENOTFOUND);
	assert_false(body_exists(m.id));
	queue_msg_free(&c);
	queue_msg_free(&m);
}

static void test_hold_release_delete_list(void **state)
{
	struct queue_msg m1, m2, c;
	make_msg(&m1, 1);
	make_msg(&m2, 3);
	assert_int_equal(add(&m1), 0);
	assert_int_equal(add(&m2), 0);
	assert_int_equal(queue_hold(st, m1.id, true), 0);
	assert_int_equal(queue_claim(st, m1.id, getpid(), time(NULL) + 60, &c), STORE_ECHANGED);
	/* a hold set while a delivery works survives its write-back */
	assert_int_equal(queue_claim(st, m2.id, getpid(), time(NULL) + 60, &c), 0);
	assert_int_equal(queue_hold(st, m2.id, true), 0);
	assert_int_equal(queue_put(st, &c, NULL), 0);
	struct queue_msg *list;
	size_t n;
	assert_int_equal(queue_list(st, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_true(list[0].flags & QUEUE_F_HOLD);
	assert_true(list[1].flags & QUEUE_F_HOLD);
	assert_int_equal(list[0].n_rcpts + list[1].n_rcpts, 4);
	queue_msgs_free(list, n);
	queue_msg_free(&c);
	assert_int_equal(queue_hold(st, m1.id, false), 0);
	assert_int_equal(queue_claim(st, m1.id, getpid(), time(NULL) + 60, &c), 0);
	queue_msg_free(&c);
	assert_int_equal(queue_delete(st, m2.id), 0);
	assert_false(body_exists(m2.id));
	assert_int_equal(queue_delete(st, m2.id), STORE_ENOTFOUND);
	assert_int_equal(queue_list(st, &list, &n), 0);
	assert_int_equal(n, 1);
	queue_msgs_free(list, n);
	queue_msg_free(&m1);
	queue_msg_free(&m2);
}

static void test_sweep_orphans(void **state)
{
	struct queue_msg m;
	make_msg(&m, 1);
	assert_int_equal(add(&m), 0);
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/queue/00000000000FFFFF", dir);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("orphan", fp);
	fclose(fp);
	size_t removed = 0;
	assert_int_equal(queue_sweep(st, 3600, &removed), 0);
	assert_int_equal(removed, 0);   /* too young */
	assert_int_equal(queue_sweep(st, 0, &removed), 0);
	assert_int_equal(removed, 1);
	assert_true(body_exists(m.id));   /* a queued message's file stays */
	queue_msg_free(&m);
}

/* Survives closing and reopening (what a restart or a crash does). */
static void test_survives_reopen(void **state)
{
	struct queue_msg m, g;
	make_msg(&m, 1);
	assert_int_equal(add(&m), 0);
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);   /* nothing; just a dead pid for the claim below */
	int status;
	waitpid(pid, &status, 0);
	struct queue_msg c;
	assert_int_equal(queue_claim(st, m.id, pid, time(NULL) + 3600, &c), 0);
	queue_msg_free(&c);
	store_close(&st);
	struct store_settings settings = { .dir = dir, .flags = STORE_OPEN_RECOVER, .cache_mb = 16 };
	const char *err;
	assert_int_equal(store_open(&settings, &st, &err), 0);
	assert_int_equal(queue_get(st, m.id, &g), 0);
	assert_string_equal(g.rcpts[0].addr, "r0@dest.test");
	queue_msg_free(&g);
	/* the dead process's claim does not block a new one */
	assert_int_equal(queue_claim(st, m.id, getpid(), time(NULL) + 60, &c), 0);
	queue_msg_free(&c);
	queue_msg_free(&m);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_add_get_roundtrip),
		T(test_bad_ids),
		T(test_duplicate_id_gets_a_new_one),
		T(test_claim_put_remove),
		T(test_hold_release_delete_list),
		T(test_sweep_orphans),
		T(test_survives_reopen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
