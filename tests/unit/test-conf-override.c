/* test-conf-override.c — per-domain overrides of the policy sections (conf.c
 * copy_override): a domain without a block has the global values, a key the
 * block leaves out keeps the global value (also when the global one is not the
 * schema's default), a key it writes wins (also when it writes the schema's
 * default), lists are the domain's own; bad values are refused with file:line. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "conf/conf.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[PATH_MAX];

static void write_conf(const char *text)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/warren.conf", tmpdir);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp, "state_dir = \"%s\"\n%s", tmpdir, text);
	fclose(fp);
}

static int load(struct warren_config **conf_r, char **errors_r)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/warren.conf", tmpdir);
	*errors_r = NULL;
	*conf_r = NULL;
	return conf_load(path, CONF_LOAD_NO_TLS, conf_r, errors_r);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/warren-test-override-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_inheritance(void **state)
{
	(void)state;
	write_conf("spf { enabled = true  fail = tempfail  softfail = reject }\n"
		   "greylist { enabled = true  delay = 1m  retry_window = 2h }\n"
		   "dnsbl { sites = { \"zen.test\" }  threshold = 4  action = tag }\n"
		   "rate { messages_per_user = 7  recipients_per_user = 9 }\n"
		   "lists { sender_blacklist = { \"a@b.test\" } }\n"
		   "domain \"plain.test\" { }\n"
		   "domain \"over.test\" {\n"
		   "  spf { fail = tag  pass = accept }\n"
		   "  greylist { enabled = false  delay = 5m }\n"
		   "  dnsbl { threshold = 1 }\n"
		   "  rate { recipients_per_user = 0 }\n"
		   "  lists { client_whitelist = { \"192.0.2.0/24\" } }\n"
		   "}\n");
	struct warren_config *conf;
	char *errors;
	if (load(&conf, &errors) != 0)
		fail_msg("%s", errors);
	const struct conf_domain *p = conf_find_domain(conf, "plain.test");
	const struct conf_domain *o = conf_find_domain(conf, "over.test");
	assert_non_null(p);
	assert_non_null(o);
	/* no block: the global values */
	assert_false(p->spf_override);
	assert_int_equal(p->spf->fail, CONF_SPF_TEMPFAIL);
	assert_true(p->greylist->enabled);
	assert_int_equal(p->greylist->delay_s, 60);
	assert_int_equal(p->dnsbl->threshold, 4);
	assert_int_equal(p->rate->messages_per_user, 7);
	assert_int_equal(p->lists->n_sender_blacklist, 0);   /* lists: only its own */
	/* keys written win, even the schema's default (pass = accept) */
	assert_true(o->spf_override);
	assert_true(o->spf->enabled);
	assert_int_equal(o->spf->fail, CONF_SPF_TAG);
	assert_int_equal(o->spf->pass, CONF_SPF_ACCEPT);
	/* keys left out keep the global value, not the schema's default */
	assert_int_equal(o->spf->softfail, CONF_SPF_REJECT);
	assert_false(o->greylist->enabled);
	assert_int_equal(o->greylist->delay_s, 300);
	assert_int_equal(o->greylist->retry_window_s, 7200);
	assert_int_equal(o->dnsbl->threshold, 1);
	assert_int_equal(o->dnsbl->action, CONF_DNSBL_TAG);
	assert_int_equal(o->dnsbl->n_sites, 1);
	assert_true(o->dnsbl->enabled);
	assert_int_equal(o->rate->recipients_per_user, 0);
	assert_int_equal(o->rate->messages_per_user, 7);
	assert_int_equal(o->lists->n_client_whitelist, 1);
	assert_string_equal(o->lists->client_whitelist[0], "192.0.2.0/24");
	assert_string_equal(o->lists->reject_text, conf->lists.reject_text);
	/* the global sections are untouched */
	assert_int_equal(conf->spf.fail, CONF_SPF_TEMPFAIL);
	assert_true(conf->greylist.enabled);
	conf_unref(&conf);
}

static void expect_error(const char *domain_body, int line, const char *text)
{
	char buf[1024];
	snprintf(buf, sizeof(buf), "domain \"bad.test\" {\n%s\n}\n", domain_body);
	write_conf(buf);
	struct warren_config *conf;
	char *errors;
	assert_int_not_equal(load(&conf, &errors), 0);
	assert_non_null(errors);
	char where[PATH_MAX + 64];
	/* line 1 is state_dir, 2 the domain */
	snprintf(where, sizeof(where), "%s/warren.conf:%d: ", tmpdir, line);
	if (strstr(errors, where) == NULL || strstr(errors, text) == NULL)
		fail_msg("expected \"%s...%s\" in:\n%s", where, text, errors);
	free(errors);
}

static void test_bad_overrides(void **state)
{
	(void)state;
	expect_error("  spf { none = maybe }", 3, "none: \"maybe\" is not one of");
	expect_error("  greylist {\n    retry_window = 10s\n  }", 4,
		     "greylist: delay (300s) must be shorter than retry_window (10s)");
	expect_error("  dnsbl { threshold = 5000 }", 3, "threshold: 5000 is out of range");
	expect_error("  dnsbl { action = drop }", 3, "action: \"drop\" is not one of reject, tag");
	expect_error("  rate { user_window = 0 }", 3, "user_window: \"0\" is out of range");
	expect_error("  lists { client_whitelist = { \"300.1.2.3\" } }", 3,
		     "client_whitelist: \"300.1.2.3\" is not an address or network");
	expect_error("  spf { tag_header = \"X\" }", 3, "tag_header");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_inheritance, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_overrides, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
