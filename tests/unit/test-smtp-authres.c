/* test-smtp-authres.c — the forged Authentication-Results filter (smtpd/smtp-authres.c),
 * fed whole header sections and one byte at a time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../smtpd/smtp-authres.c"

#include <stdio.h>
#include <stdlib.h>

#define OUT_MAX 8192

struct out {
	char data[OUT_MAX];
	size_t len;
};

static void out_write(void *ctx, const char *data, size_t len)
{
	struct out *o = ctx;
	assert_true(o->len + len <= sizeof(o->data));
	memcpy(o->data + o->len, data, len);
	o->len += len;
}

/* Runs in through a filter in pieces of step bytes (0: all at once); returns the
 * bytes written and sets *removed_r, *dropped_tail_r. */
static char *filter(const char *in, size_t step, unsigned *removed_r, bool *dropped_tail_r)
{
	struct pool *pool = pool_new(0);
	static struct out o;
	o.len = 0;
	struct authres_filter *f = authres_filter_new(pool, "mail.warren.test", "QID",
						      out_write, &o);
	size_t len = strlen(in);
	for (size_t i = 0; i < len;) {
		size_t n = step == 0 ? len : step;
		if (n > len - i)
			n = len - i;
		for (size_t k = 0; k < n; k++)
			if (!authres_byte(f, (unsigned char)in[i + k]))
				out_write(&o, in + i + k, 1);
		i += n;
	}
	bool dropped = authres_end(f);
	if (dropped_tail_r != NULL)
		*dropped_tail_r = dropped;
	if (removed_r != NULL)
		*removed_r = authres_removed(f);
	pool_free(&pool);
	char *r = malloc(o.len + 1);
	memcpy(r, o.data, o.len);
	r[o.len] = '\0';
	return r;
}

static void check(const char *in, const char *want, unsigned removed)
{
	static const size_t steps[] = { 0, 1, 2, 7 };
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		unsigned got_removed = 99;
		char *got = filter(in, steps[i], &got_removed, NULL);
		assert_string_equal(got, want);
		assert_int_equal(got_removed, removed);
		free(got);
	}
}

static void test_ours_removed_others_kept(void **state)
{
	(void)state;
	check("Subject: x\r\n"
	      "Authentication-Results: mail.warren.test; spf=pass smtp.mailfrom=a@b.test\r\n"
	      "Authentication-Results: mx.other.test; spf=fail\r\n"
	      "To: <a@b.test>\r\n",
	      "Subject: x\r\n"
	      "Authentication-Results: mx.other.test; spf=fail\r\n"
	      "To: <a@b.test>\r\n", 1);
}

static void test_case_folding_comments_quotes_dot(void **state)
{
	(void)state;
	check("AUTHENTICATION-results: MAIL.WARREN.TEST; x=y\r\n"
	      "Authentication-Results :\r\n (one (two \\) still) three)\r\n\t mail.warren.test.\r\n"
	      " ; dkim=pass\r\n\tmore=folded\r\n"
	      "Authentication-Results: \"mail.warren\\.test\"; dmarc=pass\r\n"
	      "X-Kept: 1\r\n",
	      "X-Kept: 1\r\n", 3);
}

static void test_lookalikes_kept(void **state)
{
	(void)state;
	const char *in =
		"Authentication-Results: mail.warren.test.evil.test; spf=pass\r\n"
		"Authentication-Results: xmail.warren.test; spf=pass\r\n"
		"Authentication-Results: mail.warren.tes; spf=pass\r\n"
		"Authentication-Results: ; spf=pass\r\n"
		"Authentication-Results:\r\n"
		"Authentication-Results-X: mail.warren.test; spf=pass\r\n"
		"X-Authentication-Results: mail.warren.test; spf=pass\r\n"
		"Authentication-Results: (mail.warren.test) other.test; spf=pass\r\n"
		"A-Very-Long-Header-Name-That-Goes-On-And-On-Beyond-Sixty-Four-Bytes-Of-Name: v\r\n"
		"no colon at all\r\n";
	check(in, in, 0);
}

static void test_padding_past_the_hold_is_dropped(void **state)
{
	(void)state;
	static char in[4096];
	int n = snprintf(in, sizeof(in), "Authentication-Results: (");
	for (int i = 0; i < 1100; i++)
		in[n++] = 'x';
	snprintf(in + n, sizeof(in) - (size_t)n, ") mail.warren.test; spf=pass\r\nTo: a\r\n");
	check(in, "To: a\r\n", 1);
}

static void test_last_field_without_line_end(void **state)
{
	(void)state;
	bool dropped = false;
	char *got = filter("To: a\r\nAuthentication-Results: mail.warren.test; x", 0, NULL,
			   &dropped);
	assert_string_equal(got, "To: a\r\n");
	assert_true(dropped);
	free(got);
	got = filter("To: a\r\nAuthentication-Results: (held", 1, NULL, &dropped);
	assert_string_equal(got, "To: a\r\nAuthentication-Results: (held");
	assert_false(dropped);
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ours_removed_others_kept),
		cmocka_unit_test(test_case_folding_comments_quotes_dot),
		cmocka_unit_test(test_lookalikes_kept),
		cmocka_unit_test(test_padding_past_the_hold_is_dropped),
		cmocka_unit_test(test_last_field_without_line_end),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
