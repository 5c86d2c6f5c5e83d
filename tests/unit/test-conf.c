/* test-conf.c — the config parser: good files, bad files with their file:line. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "conf/conf.h"
#include "conf/conf-private.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HASH "$y$j9T$KZcm/P0w5ErqCyNNmLYhX/$zQiryOTt2Yq.tIXMrhCF5NrmBiwqImVnWONvkn/W/o8"

static char tmpdir[PATH_MAX];

static void write_file(const char *name, const char *text)
{
	char path[PATH_MAX * 2];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	mkdir(path, 0755);
	*slash = '/';
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/warren-test-conf-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Loads tmpdir/warren.conf; returns the errors (malloc'ed) or NULL on success. */
static char *load(struct warren_config **conf_r)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/warren.conf", tmpdir);
	char *errors = NULL;
	struct warren_config *conf = NULL;
	int ret = conf_load(path, CONF_LOAD_NO_TLS, &conf, &errors);
	if (conf_r != NULL)
		*conf_r = conf;
	else
		conf_unref(&conf);
	if (ret == 0) {
		assert_null(errors);
		return NULL;
	}
	assert_non_null(errors);
	return errors;
}

/* Expects exactly one error mentioning file:line and text. */
static void expect_error(const char *file, int line, const char *text)
{
	char *errors = load(NULL);
	assert_non_null(errors);
	char where[PATH_MAX + 64];
	snprintf(where, sizeof(where), "%s/%s:%d: ", tmpdir, file, line);
	if (strstr(errors, where) == NULL || strstr(errors, text) == NULL)
		fail_msg("expected \"%s...%s\" in:\n%s", where, text, errors);
	free(errors);
}

static void test_good_config(void **state)
{
	write_file("warren.conf",
		   "hostname = \"mail.example.test\"\n"
		   "state_dir = \"state\"\n"
		   "max_message_size = 10M\n"
		   "default_domain = \"Example.TEST\"\n"
		   "log { level = debug }\n"
		   "dns { servers = \"127.0.0.1:5353\" timeout = 500ms tries = 3 }\n"
		   "listener smtp { address = \"127.0.0.1\" port = 2525 service = smtp }\n"
		   "listener imaps { address = \"::1\" port = 2993 service = imap "
		   "idle_timeout = 10m }\n"
		   "include(\"domains/*.conf\")\n");
	write_file("domains/a.conf",
		   "domain \"example.test\" {\n"
		   "  mailbox Bob { password = \"" HASH "\" quota = 1G }\n"
		   "  mailbox alice { password = '" HASH "' }\n"
		   "  alias info { to = { \"alice\", \"bob\", \"x@elsewhere.test\" } }\n"
		   "  alias team { to = { \"info\", \"carol@example.org\" } }\n"
		   "}\n");
	write_file("domains/b.conf",
		   "domain \"example.org\" {\n"
		   "  auth = pam\n  pam_service = \"mail\"\n  pam_user = address\n"
		   "  mailbox carol { }\n"
		   "}\n");
	struct warren_config *conf;
	char *errors = load(&conf);
	if (errors != NULL)
		fail_msg("%s", errors);
	assert_string_equal(conf->hostname, "mail.example.test");
	char state_path[PATH_MAX + 16];
	snprintf(state_path, sizeof(state_path), "%s/state", tmpdir);
	assert_string_equal(conf->state_dir, state_path);
	assert_int_equal(conf->max_message_size, 10 * 1024 * 1024);
	assert_int_equal(conf->log.level, 0);
	assert_string_equal(conf->dns.servers, "127.0.0.1:5353");
	assert_int_equal(conf->dns.timeout_ms, 500);
	assert_int_equal(conf->dns.tries, 3);
	assert_int_equal(conf->auth.cache_ttl_s, 60);
	assert_int_equal(conf->n_listeners, 2);
	assert_string_equal(conf->listeners[0].name, "smtp");
	assert_int_equal(conf->listeners[0].port, 2525);
	assert_int_equal(conf->listeners[0].service, CONF_SERVICE_SMTP);
	assert_int_equal(conf->listeners[0].idle_timeout_s, 300);       /* SMTP default */
	assert_int_equal(conf->listeners[1].idle_timeout_s, 600);
	assert_int_equal(conf->listeners[1].max_line_length, 2 * 1024 * 1024);
	assert_int_equal(conf->n_domains, 2);

	const struct conf_domain *d = conf_find_domain(conf, "EXAMPLE.test");
	assert_non_null(d);
	assert_int_equal(d->n_mailboxes, 2);
	const struct conf_mailbox *bob = conf_find_mailbox(d, "BOB");
	assert_non_null(bob);
	assert_string_equal(bob->address, "bob@example.test");
	assert_int_equal(bob->quota, 1024ULL * 1024 * 1024);
	assert_ptr_equal(bob->domain, d);
	assert_string_equal(bob->password, HASH);
	const struct conf_alias *info = conf_find_alias(d, "info");
	assert_non_null(info);
	assert_int_equal(info->n_targets, 3);
	assert_string_equal(info->targets[2], "x@elsewhere.test");
	assert_null(conf_find_mailbox(d, "nobody"));

	const struct conf_domain *org = conf_find_domain(conf, "example.org");
	assert_int_equal(org->auth, CONF_AUTH_PAM);
	assert_string_equal(org->pam_service, "mail");
	assert_int_equal(org->pam_user, CONF_PAM_ADDRESS);
	assert_null(org->mailboxes[0].password);

	/* logins with and without the default domain */
	assert_ptr_equal(conf_find_login(conf, "Alice@Example.Test"), conf_find_mailbox(d, "alice"));
	assert_ptr_equal(conf_find_login(conf, "alice"), conf_find_mailbox(d, "alice"));
	assert_null(conf_find_login(conf, "alice@nowhere.test"));

	/* snapshots are reference counted */
	struct warren_config *ref = conf_ref(conf);
	conf_unref(&conf);
	assert_null(conf);
	assert_string_equal(ref->hostname, "mail.example.test");
	conf_unref(&ref);
}

static void test_defaults(void **state)
{
	write_file("warren.conf", "# nothing but defaults\n");
	struct warren_config *conf;
	char *errors = load(&conf);
	assert_null(errors);
	assert_string_equal(conf->state_dir, "/var/lib/warren");
	assert_string_equal(conf->user, "warren");
	assert_int_equal(conf->max_message_size, 50 * 1024 * 1024);
	assert_int_equal(conf->auth.threads, 4);
	assert_int_equal(conf->auth.failure_delay_ms, 1000);
	assert_int_equal(conf->tls.min_protocol, CONF_TLS_V1_2);
	assert_int_equal(conf->n_listeners, 0);
	assert_null(conf->tls_server);
	conf_unref(&conf);
}

static void test_unknown_key(void **state)
{
	write_file("warren.conf", "hostname = \"x\"\n\nfrobnicate = 1\n");
	expect_error("warren.conf", 3, "frobnicate");
}

static void test_unknown_key_in_included_mailbox(void **state)
{
	write_file("warren.conf", "state_dir = \"s\"\ninclude(\"d/x.conf\")\n");
	write_file("d/x.conf", "domain \"x.test\" {\n  mailbox a {\n    colour = \"red\"\n  }\n}\n");
	expect_error("d/x.conf", 3, "colour");
}

static void test_bad_types_and_ranges(void **state)
{
	write_file("warren.conf", "listener a {\n  port = \"abc\"\n  service = smtp\n}\n");
	expect_error("warren.conf", 2, "port");
	write_file("warren.conf", "listener a {\n  service = smtp\n  port = 70000\n}\n");
	expect_error("warren.conf", 3, "out of range");
	write_file("warren.conf", "max_message_size = 12Q\n");
	expect_error("warren.conf", 1, "is not a size");
	write_file("warren.conf", "auth {\n cache_ttl = 1500ms\n}\n");
	expect_error("warren.conf", 2, "whole seconds");
	write_file("warren.conf", "listener a {\n  port = 25\n  service = gopher\n}\n");
	expect_error("warren.conf", 3, "not one of smtp, submission, imap, pop3, http");
	write_file("warren.conf", "log {\n  level = loud\n}\n");
	expect_error("warren.conf", 2, "level");
}

static void test_required_keys(void **state)
{
	write_file("warren.conf", "\nlistener a {\n  service = smtp\n}\n");
	expect_error("warren.conf", 2, "port is required");
	write_file("warren.conf", "listener b {\n  port = 25\n}\n");
	expect_error("warren.conf", 1, "service is required");
	write_file("warren.conf", "domain \"r.test\" {\n type = remote\n}\n");
	expect_error("warren.conf", 1, "needs relay_host");
}

static void test_duplicates(void **state)
{
	write_file("warren.conf",
		   "domain \"a.test\" {\n"
		   "  mailbox x { }\n"
		   "  mailbox y { }\n"
		   "  mailbox x { }\n"
		   "}\n");
	expect_error("warren.conf", 4, "duplicate");
	/* the same name in another case is the same mailbox */
	write_file("warren.conf",
		   "domain \"a.test\" {\n  mailbox x { }\n  mailbox X { }\n}\n");
	expect_error("warren.conf", 3, "defined twice");
	write_file("warren.conf",
		   "domain \"a.test\" {\n  mailbox x { }\n  alias x { to = { \"x\" } }\n}\n");
	expect_error("warren.conf", 3, "already a mailbox");
	write_file("warren.conf",
		   "listener a { port = 25 service = smtp }\n"
		   "listener b {\n port = 25\n service = smtp\n}\n");
	expect_error("warren.conf", 2, "already used by listener a");
	write_file("warren.conf", "domain \"a.test\" { }\ndomain \"A.test\" { }\n");
	expect_error("warren.conf", 2, "defined twice");
}

static void test_alias_checks(void **state)
{
	write_file("warren.conf",
		   "domain \"a.test\" {\n  mailbox x { }\n"
		   "  alias info {\n    to = { \"x\", \"ghost\" }\n  }\n}\n");
	expect_error("warren.conf", 3, "ghost@a.test is neither a mailbox nor an alias");
	write_file("warren.conf",
		   "domain \"a.test\" {\n"
		   "  alias one { to = { \"two\" } }\n"
		   "  alias two { to = { \"three@a.test\" } }\n"
		   "  alias three { to = { \"one\" } }\n"
		   "}\n");
	expect_error("warren.conf", 2, "alias loop");
	write_file("warren.conf", "domain \"a.test\" {\n  alias empty { }\n}\n");
	expect_error("warren.conf", 2, "\"to\" is required");
	write_file("warren.conf",
		   "domain \"a.test\" {\n  alias bad { to = { \"x@\" } }\n}\n");
	expect_error("warren.conf", 2, "is not an address");
}

static void test_names(void **state)
{
	write_file("warren.conf", "domain \"bad_domain!\" { }\n");
	expect_error("warren.conf", 1, "not a valid domain name");
	write_file("warren.conf", "domain \"a.test\" {\n  mailbox \"a b\" { }\n}\n");
	expect_error("warren.conf", 2, "not a valid local part");
	write_file("warren.conf", "listener a {\n port = 25\n service = smtp\n address = \"localhost\"\n}\n");
	expect_error("warren.conf", 1, "not an IPv4 or IPv6 address");
	write_file("warren.conf", "default_domain = \"none.test\"\n");
	expect_error("warren.conf", 0, "no such domain");
}

static void test_password_hashes(void **state)
{
	write_file("warren.conf",
		   "domain \"a.test\" {\n  mailbox x {\n    password = \"$1$abc$def\"\n  }\n}\n");
	expect_error("warren.conf", 3, "password");
	write_file("warren.conf",
		   "domain \"a.test\" {\n  mailbox x {\n    password = \"secret\"\n  }\n}\n");
	expect_error("warren.conf", 3, "password");
	write_file("warren.conf",
		   "domain \"a.test\" {\n  mailbox x {\n"
		   "    password = \"$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/\"\n"
		   "  }\n}\n");
	assert_null(load(NULL));
}

static void test_tls_files(void **state)
{
	write_file("warren.conf",
		   "tls {\n  cert = \"missing.pem\"\n  key = \"missing.key\"\n}\n");
	expect_error("warren.conf", 2, "missing.pem");
	write_file("warren.conf", "tls {\n  cert = \"c.pem\"\n}\n");
	expect_error("warren.conf", 2, "cert and key go together");
	write_file("warren.conf",
		   "listener s {\n port = 465\n service = submission\n tls = implicit\n}\n");
	expect_error("warren.conf", 1, "needs a certificate");
}

static void test_includes(void **state)
{
	write_file("warren.conf", "hostname = \"h\"\ninclude(\"nothere.conf\")\n");
	expect_error("warren.conf", 2, "nothere.conf");
	/* a pattern that matches nothing is fine: no domains yet */
	write_file("warren.conf", "include(\"empty/*.conf\")\n");
	assert_null(load(NULL));
	/* an include loop is stopped */
	write_file("warren.conf", "include(\"loop.conf\")\n");
	write_file("loop.conf", "include(\"loop.conf\")\n");
	char *errors = load(NULL);
	assert_non_null(errors);
	assert_non_null(strstr(errors, "loop.conf:1: include(\"loop.conf\")"));
	assert_non_null(strstr(errors, "more than once"));
	free(errors);
}

static void test_syntax_error(void **state)
{
	/* libConfuse accepts a missing '}' at the end of a file; we do not */
	write_file("warren.conf", "hostname = \"h}\" # {\ndomain \"a.test\" {\n"
		   "  mailbox x { }\n  mailbox y {\n}\n");
	expect_error("warren.conf", 2, "not closed");
	write_file("warren.conf", "domain \"a.test\" {\n  mailbox x { }\n}\n}\n");
	char *errors = load(NULL);
	assert_non_null(errors);
	free(errors);
	write_file("warren.conf", "hostname = \"unterminated\n");
	errors = load(NULL);
	assert_non_null(errors);
	free(errors);
}

static void test_missing_file(void **state)
{
	char *errors = NULL;
	struct warren_config *conf = NULL;
	assert_int_equal(conf_load("/nonexistent/warren.conf", 0, &conf, &errors), -1);
	assert_null(conf);
	assert_non_null(strstr(errors, "/nonexistent/warren.conf"));
	free(errors);
}

static void test_value_parsers(void **state)
{
	long long v;
	assert_int_equal(conf_parse_size("512", &v), 0);
	assert_int_equal(v, 512);
	assert_int_equal(conf_parse_size("2k", &v), 0);
	assert_int_equal(v, 2048);
	assert_int_equal(conf_parse_size("1GiB", &v), 0);
	assert_int_equal(v, 1024LL * 1024 * 1024);
	assert_int_equal(conf_parse_size("-1", &v), -1);
	assert_int_equal(conf_parse_size("99999999999999999T", &v), -1);
	assert_int_equal(conf_parse_size("", &v), -1);
	assert_int_equal(conf_parse_duration("90", 0, &v), 0);
	assert_int_equal(v, 90);
	assert_int_equal(conf_parse_duration("5m", 0, &v), 0);
	assert_int_equal(v, 300);
	assert_int_equal(conf_parse_duration("2d", 0, &v), 0);
	assert_int_equal(v, 172800);
	assert_int_equal(conf_parse_duration("250ms", 1, &v), 0);
	assert_int_equal(v, 250);
	assert_int_equal(conf_parse_duration("2s", 1, &v), 0);
	assert_int_equal(v, 2000);
	assert_int_equal(conf_parse_duration("5x", 0, &v), -1);
	assert_int_equal(conf_parse_duration("100ms", 0, &v), -1);
}

static void test_reference_lists_every_key(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);
	conf_write_reference(fp);
	fclose(fp);
	static const char *const keys[] = {
		"`hostname`", "`state_dir`", "`max_message_size`", "`failure_delay`",
		"`min_protocol`", "`max_connections_per_ip`", "`pam_service`", "`quota`",
		"`to`", "listener TITLE { }", "domain TITLE { }",
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strstr(text, keys[i]) == NULL)
			fail_msg("%s missing from the reference", keys[i]);
	free(text);
}

/* smtpd's mailbox types and networks (issue #4). */
static void test_smtp_delivery_keys(void **state)
{
	struct warren_config *conf;
	write_file("warren.conf",
		   "smtp {\n  trusted_networks = { \"192.0.2.0/24\", \"2001:db8::/32\", \"10.0.0.1\" }\n"
		   "  bare_lf = normalize\n  max_recipients = 500\n}\n"
		   "domain \"a.test\" {\n  catch_all = \"x\"\n  mailbox x { }\n"
		   "  mailbox f {\n    forward = { \"y@b.test\" }\n    forward_keep_copy = true\n  }\n}\n"
		   "domain \"d.test\" {\n  multidrop = \"drop\"\n  mailbox drop { }\n}\n");
	assert_null(load(&conf));
	assert_int_equal(conf->smtp.n_trusted_networks, 3);
	assert_int_equal(conf->smtp.bare_lf, CONF_BARE_LF_NORMALIZE);
	assert_int_equal(conf->smtp.max_recipients, 500);
	assert_true(conf->smtp.sender_login_check);
	const struct conf_domain *d = conf_find_domain(conf, "a.test");
	assert_string_equal(d->catch_all, "x");
	const struct conf_mailbox *f = conf_find_mailbox(d, "f");
	assert_int_equal(f->n_forward, 1);
	assert_true(f->forward_keep_copy);
	assert_string_equal(conf_find_domain(conf, "d.test")->multidrop, "drop");
	conf_unref(&conf);

	write_file("warren.conf", "domain \"a.test\" {\n  catch_all = \"ghost\"\n}\n");
	expect_error("warren.conf", 1, "catch_all ghost@a.test is neither a mailbox nor an alias");
	write_file("warren.conf", "domain \"a.test\" {\n  multidrop = \"ghost\"\n  mailbox x { }\n}\n");
	expect_error("warren.conf", 1, "multidrop ghost is not a mailbox");
	write_file("warren.conf",
		   "domain \"a.test\" {\n  mailbox x { }\n  mailbox f {\n    forward = { \"nowhere\" }\n  }\n}\n");
	expect_error("warren.conf", 3, "forward \"nowhere\" is not an address");
	write_file("warren.conf",
		   "domain \"a.test\" {\n  mailbox f {\n    forward_keep_copy = true\n  }\n}\n");
	expect_error("warren.conf", 2, "forward_keep_copy needs forward");
}

static void test_smtp_networks(void **state)
{
	write_file("warren.conf", "smtp {\n  xclient_networks = { \"127.0.0.1\", \"300.1.1.1/8\" }\n}\n");
	expect_error("warren.conf", 2, "\"300.1.1.1/8\" is not an address or network");
	write_file("warren.conf", "smtp {\n\n  trusted_networks = { \"192.0.2.0/33\" }\n}\n");
	expect_error("warren.conf", 3, "\"192.0.2.0/33\" is not an address or network");
	write_file("warren.conf", "smtp {\n  bare_lf = maybe\n}\n");
	expect_error("warren.conf", 2, "is not one of reject, normalize");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_key_in_included_mailbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_types_and_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_required_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alias_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_password_hashes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_includes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syntax_error, setup, teardown),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_value_parsers),
		cmocka_unit_test(test_reference_lists_every_key),
		cmocka_unit_test_setup_teardown(test_smtp_delivery_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_smtp_networks, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
