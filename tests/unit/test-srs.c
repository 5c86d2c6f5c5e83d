/* test-srs.c — smtpd/out-srs.c: SRS0 forward rewriting and its reverse,
 * including forged hashes, old timestamps and addresses that are not ours.
 * out-srs.c is compiled into this test (it belongs to warren-smtpd). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../smtpd/out-srs.c"

static struct conf_domain domain = { .name = "example.test", .type = CONF_DOMAIN_LOCAL };
static struct warren_config conf;

#define DAY 86400
static const int64_t NOW = 20000LL * DAY + 3600;

static int setup(void **state)
{
	memset(&conf, 0, sizeof(conf));
	conf.hostname = "mail.example.test";
	conf.domains = &domain;
	conf.n_domains = 1;
	conf.queue.srs_secret = "s3cret";
	return 0;
}

static void test_forward_and_reverse(void **state)
{
	char srs[400], back[400];
	assert_int_equal(out_srs_forward(&conf, "carol@amx.test", NOW, srs, sizeof(srs)), 0);
	assert_memory_equal(srs, "SRS0=", 5);
	assert_non_null(strstr(srs, "=amx.test=carol@example.test"));
	assert_int_equal(out_srs_reverse(&conf, srs, NOW, back, sizeof(back)), 0);
	assert_string_equal(back, "carol@amx.test");
	/* case changed on the way (some MTAs lower-case addresses) */
	for (char *p = srs; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	assert_int_equal(out_srs_reverse(&conf, srs, NOW + 5 * DAY, back, sizeof(back)), 0);
	assert_string_equal(back, "carol@amx.test");
}

static void test_local_part_with_equals(void **state)
{
	char srs[400], back[400];
	assert_int_equal(out_srs_forward(&conf, "a=b@amx.test", NOW, srs, sizeof(srs)), 0);
	assert_int_equal(out_srs_reverse(&conf, srs, NOW, back, sizeof(back)), 0);
	assert_string_equal(back, "a=b@amx.test");
}

static void test_not_rewritten(void **state)
{
	char srs[400];
	assert_int_equal(out_srs_forward(&conf, "alice@example.test", NOW, srs, sizeof(srs)), -1);
	assert_int_equal(out_srs_forward(&conf, "", NOW, srs, sizeof(srs)), -1);
	assert_int_equal(out_srs_forward(&conf, "SRS0=abcd=AA=x.test=y@z.test", NOW, srs,
					 sizeof(srs)), -1);
	conf.queue.srs_secret = NULL;
	assert_int_equal(out_srs_forward(&conf, "carol@amx.test", NOW, srs, sizeof(srs)), -1);
}

static void test_reverse_refuses(void **state)
{
	char srs[400], back[400];
	assert_int_equal(out_srs_forward(&conf, "carol@amx.test", NOW, srs, sizeof(srs)), 0);
	/* too old */
	assert_int_equal(out_srs_reverse(&conf, srs, NOW + 22 * DAY, back, sizeof(back)), -1);
	/* forged hash */
	char forged[400];
	snprintf(forged, sizeof(forged), "%s", srs);
	forged[5] = forged[5] == 'A' ? 'B' : 'A';
	assert_int_equal(out_srs_reverse(&conf, forged, NOW, back, sizeof(back)), -1);
	/* another domain, another secret, garbage */
	char other[400];
	snprintf(other, sizeof(other), "%.*s@elsewhere.test", (int)(strchr(srs, '@') - srs), srs);
	assert_int_equal(out_srs_reverse(&conf, other, NOW, back, sizeof(back)), -1);
	conf.queue.srs_secret = "other";
	assert_int_equal(out_srs_reverse(&conf, srs, NOW, back, sizeof(back)), -1);
	conf.queue.srs_secret = "s3cret";
	static const char *const junk[] = {
		"SRS0=@example.test", "SRS0==AA=x=y@example.test", "SRS0=abcd=A=x=y@example.test",
		"SRS0=abcd=AA==y@example.test", "SRS0=abcd=AA=x=@example.test", "alice@example.test",
		"SRS0=abcd=!!=x=y@example.test", "SRS0", "",
	};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		assert_int_equal(out_srs_reverse(&conf, junk[i], NOW, back, sizeof(back)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_forward_and_reverse, setup),
		cmocka_unit_test_setup(test_local_part_with_equals, setup),
		cmocka_unit_test_setup(test_not_rewritten, setup),
		cmocka_unit_test_setup(test_reverse_refuses, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
