/* test-conf-dnsbl.c — dnsbl { sites } zone specifications (conf/conf-dnsbl.c):
 * "zone[=codes][*weight]" with Postfix's octet patterns, and which answers count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../conf/conf-dnsbl.c"

static bool counts(const struct conf_dnsbl_site *s, unsigned a, unsigned b, unsigned c, unsigned d)
{
	const unsigned char addr[4] = { (unsigned char)a, (unsigned char)b, (unsigned char)c,
					(unsigned char)d };
	return conf_dnsbl_site_matches(s, addr);
}

static void test_plain_zone(void **state)
{
	(void)state;
	struct conf_dnsbl_site s;
	assert_true(conf_dnsbl_site_parse("zen.spamhaus.org", &s));
	assert_string_equal(s.zone, "zen.spamhaus.org");
	assert_int_equal(s.weight, 1);
	assert_true(counts(&s, 127, 0, 0, 2));
	assert_true(counts(&s, 127, 0, 1, 9));
	assert_false(counts(&s, 127, 255, 255, 254));   /* an error answer */
	assert_false(counts(&s, 10, 0, 0, 2));
}

static void test_codes_and_weight(void **state)
{
	(void)state;
	struct conf_dnsbl_site s;
	assert_true(conf_dnsbl_site_parse("zen.test=127.0.0.[2..11]*3", &s));
	assert_int_equal(s.weight, 3);
	assert_false(counts(&s, 127, 0, 0, 1));
	assert_true(counts(&s, 127, 0, 0, 2));
	assert_true(counts(&s, 127, 0, 0, 11));
	assert_false(counts(&s, 127, 0, 0, 12));
	assert_false(counts(&s, 127, 0, 1, 2));

	assert_true(conf_dnsbl_site_parse("list.dnswl.test=127.0.[0..255].[1;3;5..6]*-2", &s));
	assert_int_equal(s.weight, -2);
	assert_true(counts(&s, 127, 0, 200, 1));
	assert_false(counts(&s, 127, 0, 200, 2));
	assert_true(counts(&s, 127, 0, 0, 3));
	assert_true(counts(&s, 127, 0, 9, 6));
	assert_false(counts(&s, 127, 0, 9, 7));

	assert_true(conf_dnsbl_site_parse("bl.test=127.0.0.4", &s));
	assert_true(counts(&s, 127, 0, 0, 4));
	assert_false(counts(&s, 127, 0, 0, 5));
	assert_true(conf_dnsbl_site_parse("bl.test*7", &s));
	assert_int_equal(s.weight, 7);
	assert_true(s.any);
}

static void test_malformed(void **state)
{
	(void)state;
	struct conf_dnsbl_site s;
	const char *bad[] = { "", "=127.0.0.2", "zen.test=", "zen.test=127.0.0", "zen.test=127.0.0.2.1",
			      "zen.test=127.0.0.256", "zen.test=127.0.0.[2..]", "zen.test=127.0.0.[5..2]",
			      "zen.test=127.0.0.[2", "zen.test*", "zen.test*x", "zen.test*3x",
			      "zen test", "zen.test=127.0.0.[2;;3]", "zen.test*99999", NULL };
	for (int i = 0; bad[i] != NULL; i++)
		assert_false(conf_dnsbl_site_parse(bad[i], &s));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_zone),
		cmocka_unit_test(test_codes_and_weight),
		cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
