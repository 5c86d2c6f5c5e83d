/* test-kv.c — policy records (storage/kv.c) on a real store on disk. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "storage/kv.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[PATH_MAX];
static struct store *st;

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/warren-test-kv-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	struct store_settings settings = { .dir = dir, .flags = STORE_OPEN_RECOVER, .cache_mb = 16 };
	const char *err = NULL;
	return store_open(&settings, &st, &err) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	store_close(&st);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void counts_in_a_window(void **state)
{
	(void)state;
	struct kv_rec r;
	assert_int_equal(kv_get(st, "rate", "192.0.2.1", 1000, &r), STORE_ENOTFOUND);
	assert_int_equal(kv_add(st, "rate", "192.0.2.1", 1, 1000, 60, &r), 0);
	assert_int_equal(r.value, 1);
	assert_int_equal(r.first, 1000);
	assert_int_equal(r.expires, 1060);
	assert_int_equal(kv_add(st, "rate", "192.0.2.1", 2, 1030, 60, &r), 0);
	assert_int_equal(r.value, 3);
	assert_int_equal(r.first, 1000);
	assert_int_equal(r.last, 1030);
	/* another space, same key: separate */
	assert_int_equal(kv_add(st, "authfail", "192.0.2.1", 1, 1030, 60, &r), 0);
	assert_int_equal(r.value, 1);
	/* the window ended: counting starts again */
	assert_int_equal(kv_get(st, "rate", "192.0.2.1", 1060, &r), STORE_ENOTFOUND);
	assert_int_equal(kv_add(st, "rate", "192.0.2.1", 1, 1061, 60, &r), 0);
	assert_int_equal(r.value, 1);
	assert_int_equal(r.first, 1061);
}

static void put_get_del_with_text(void **state)
{
	(void)state;
	struct kv_rec in = { .value = 7, .expires = 0 };
	snprintf(in.text, sizeof(in.text), "banned by admin");
	assert_int_equal(kv_put(st, "ban", "198.51.100.7", 500, &in), 0);
	struct kv_rec r;
	assert_int_equal(kv_get(st, "ban", "198.51.100.7", 1000000, &r), 0);
	assert_int_equal(r.value, 7);
	assert_int_equal(r.first, 500);
	assert_string_equal(r.text, "banned by admin");
	assert_int_equal(kv_del(st, "ban", "198.51.100.7"), 0);
	assert_int_equal(kv_del(st, "ban", "198.51.100.7"), STORE_ENOTFOUND);
	assert_int_equal(kv_get(st, "ban", "198.51.100.7", 1000, &r), STORE_ENOTFOUND);
	/* bad names */
	assert_int_equal(kv_get(st, "", "x", 0, &r), STORE_EINVAL);
	char longkey[KV_KEY_MAX + 2];
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	assert_int_equal(kv_add(st, "rate", longkey, 1, 0, 0, NULL), STORE_EINVAL);
}

struct seen { int n; char keys[8][32]; };

static int collect(const char *key, const struct kv_rec *rec, void *ctx)
{
	(void)rec;
	struct seen *s = ctx;
	if (s->n < 8)
		snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", key);
	s->n++;
	return 0;
}

static void list_and_expire(void **state)
{
	(void)state;
	assert_int_equal(kv_add(st, "grey", "a", 1, 100, 10, NULL), 0);    /* expires 110 */
	assert_int_equal(kv_add(st, "grey", "b", 1, 100, 1000, NULL), 0);  /* expires 1100 */
	assert_int_equal(kv_add(st, "grey", "c", 1, 100, 0, NULL), 0);     /* never */
	assert_int_equal(kv_add(st, "greyx", "d", 1, 100, 0, NULL), 0);    /* other space */
	assert_int_equal(kv_add(st, "gre", "e", 1, 100, 0, NULL), 0);      /* other space */
	struct seen s = { 0 };
	assert_int_equal(kv_list(st, "grey", 200, collect, &s), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.keys[0], "b");
	assert_string_equal(s.keys[1], "c");
	unsigned removed = 0;
	assert_int_equal(kv_expire(st, 200, &removed), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(kv_expire(st, 2000, &removed), 0);
	assert_int_equal(removed, 1);   /* b */
	memset(&s, 0, sizeof(s));
	assert_int_equal(kv_list(st, "grey", 2000, collect, &s), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.keys[0], "c");
}

static void expire_walks_many_batches(void **state)
{
	(void)state;
	char key[32];
	for (int i = 0; i < 1234; i++) {
		snprintf(key, sizeof(key), "k%05d", i);
		assert_int_equal(kv_add(st, "rate", key, 1, 100, i % 2 == 0 ? 10 : 0, NULL), 0);
	}
	unsigned removed = 0;
	assert_int_equal(kv_expire(st, 500, &removed), 0);
	assert_int_equal(removed, 617);
	struct seen s = { 0 };
	assert_int_equal(kv_list(st, "rate", 500, collect, &s), 0);
	assert_int_equal(s.n, 617);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(counts_in_a_window),
		T(put_get_del_with_text),
		T(list_and_expire),
		T(expire_walks_many_batches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
