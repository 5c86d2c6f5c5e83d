/* test-httpd.c — warren-httpd's pure parts: the metrics_allow address matcher
 * (httpd/net-allow.c) and the mapping from addresses, Host headers and
 * listeners to what clients are told (httpd/mailconf.c). The daemon itself is
 * tested end to end in tests/integration/test_http*.py. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

/* httpd/ is a program, not a library: its two files are compiled in here */
#include "httpd/net-allow.c"
#include "httpd/mailconf.c"
#include "httpd/xml.c"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *const loopback[] = { "127.0.0.0/8", "::1/128" };

static void test_allow_loopback(void **state)
{
	assert_true(httpd_ip_allowed("127.0.0.1", loopback, 2));
	assert_true(httpd_ip_allowed("127.255.0.9", loopback, 2));
	assert_true(httpd_ip_allowed("::1", loopback, 2));
	assert_true(httpd_ip_allowed("::ffff:127.0.0.1", loopback, 2));   /* v4-mapped */
	assert_false(httpd_ip_allowed("128.0.0.1", loopback, 2));
	assert_false(httpd_ip_allowed("::2", loopback, 2));
	assert_false(httpd_ip_allowed("192.0.2.1", loopback, 0));
}

static void test_allow_prefixes(void **state)
{
	static const char *const nets[] = { "192.0.2.0/25", "2001:db8:a::/48", "198.51.100.7",
					    "10.0.0.0/0x", "garbage", "203.0.113.0/33" };
	assert_true(httpd_ip_allowed("192.0.2.127", nets, 6));
	assert_false(httpd_ip_allowed("192.0.2.128", nets, 6));
	assert_true(httpd_ip_allowed("2001:db8:a:ffff::1", nets, 6));
	assert_false(httpd_ip_allowed("2001:db8:b::1", nets, 6));
	assert_true(httpd_ip_allowed("198.51.100.7", nets, 6));
	assert_false(httpd_ip_allowed("198.51.100.8", nets, 6));
	/* malformed entries match nothing */
	assert_false(httpd_ip_allowed("10.1.2.3", nets, 6));
	assert_false(httpd_ip_allowed("203.0.113.1", nets, 6));
	static const char *const all[] = { "0.0.0.0/0" };
	assert_true(httpd_ip_allowed("203.0.113.1", all, 1));
	assert_false(httpd_ip_allowed("::1", all, 1));
	assert_false(httpd_ip_allowed("unknown", all, 1));
	assert_false(httpd_ip_allowed("", all, 1));
}

/* ---- mailconf ---- */

static char dir[PATH_MAX];
static struct warren_config *conf;

#define HASH "$y$j9T$KZcm/P0w5ErqCyNNmLYhX/$zQiryOTt2Yq.tIXMrhCF5NrmBiwqImVnWONvkn/W/o8"

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/warren-test-httpd-XXXXXX");
	assert_non_null(mkdtemp(dir));
	char path[PATH_MAX + 32], cmd[3 * PATH_MAX];
	snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
		 "-nodes -keyout '%s/key.pem' -out '%s/cert.pem' -subj /CN=mail.warren.test -days 2 "
		 ">/dev/null 2>&1", dir, dir);
	assert_int_equal(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/warren.conf", dir);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp,
		"hostname = \"mail.warren.test\"\nstate_dir = \"state\"\n"
		"tls { cert = \"cert.pem\" key = \"key.pem\" }\n"
		"listener smtp { port = 25 service = smtp tls = starttls }\n"
		"listener sub { port = 587 service = submission tls = starttls }\n"
		"listener subs { port = 465 service = submission tls = implicit }\n"
		"listener imap { port = 143 service = imap tls = starttls }\n"
		"listener imap2 { port = 1143 service = imap tls = none auth_plaintext = yes }\n"
		"listener imaps { port = 993 service = imap tls = implicit }\n"
		"listener pop3 { port = 110 service = pop3 tls = none }\n"
		"domain \"example.test\" { mailbox alice { password = \"%s\" } }\n"
		"domain \"Example.ORG\" { hostnames = { \"mail.example.org\", \"imap.example.org\" } }\n"
		"domain \"relay.test\" { type = remote relay_host = \"192.0.2.1\" }\n", HASH);
	fclose(fp);
	char *errors = NULL;
	if (conf_load(path, CONF_LOAD_NO_TLS, &conf, &errors) < 0)
		fail_msg("%s", errors);
	return 0;
}

static int teardown(void **state)
{
	conf_unref(&conf);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_endpoints_order(void **state)
{
	struct mail_endpoint ep[MAIL_ENDPOINTS_MAX];
	size_t n = mail_endpoints(conf, MAIL_IMAP, ep, MAIL_ENDPOINTS_MAX);
	assert_int_equal(n, 3);
	assert_int_equal(ep[0].port, 993);            /* implicit TLS first */
	assert_int_equal(ep[1].port, 143);
	assert_int_equal(ep[2].port, 1143);           /* plaintext only with auth_plaintext */
	assert_int_equal(mail_endpoints(conf, MAIL_POP3, ep, MAIL_ENDPOINTS_MAX), 0);
	n = mail_endpoints(conf, MAIL_SMTP, ep, MAIL_ENDPOINTS_MAX);
	assert_int_equal(n, 2);                       /* submission only, never the MX port */
	assert_int_equal(ep[0].port, 465);
	assert_int_equal(ep[1].port, 587);
	assert_int_equal(mail_endpoints(conf, MAIL_IMAP, ep, 1), 1);
	assert_int_equal(ep[0].port, 993);
}

static void test_domain_of_address(void **state)
{
	const struct conf_domain *d = mail_domain_of_address(conf, "alice@example.test");
	assert_non_null(d);
	assert_string_equal(d->name, "example.test");
	assert_non_null(mail_domain_of_address(conf, "anyone@EXAMPLE.org"));
	assert_null(mail_domain_of_address(conf, "x@relay.test"));     /* remote */
	assert_null(mail_domain_of_address(conf, "x@unknown.test"));
	assert_null(mail_domain_of_address(conf, "example.test"));
	assert_null(mail_domain_of_address(conf, "@example.test"));
	assert_null(mail_domain_of_address(conf, "alice@"));
	assert_null(mail_domain_of_address(conf, "a b@example.test"));
	assert_null(mail_domain_of_address(conf, "<a>@example.test"));
	assert_null(mail_domain_of_address(conf, "a\n@example.test"));
	/* SMTPUTF8 addresses are UTF-8; anything else is refused */
	assert_non_null(mail_domain_of_address(conf, "j\xc3\xb6rg@example.test"));
	assert_null(mail_domain_of_address(conf, "j\xf6rg@example.test"));
	assert_null(mail_domain_of_address(conf, "a\xc0\xaf" "b@example.test"));   /* overlong */
	assert_null(mail_domain_of_address(conf, "a\xed\xa0\x80@example.test")); /* surrogate */
	char long_addr[400];
	memset(long_addr, 'a', sizeof(long_addr));
	strcpy(long_addr + sizeof(long_addr) - 14, "@example.test");
	assert_null(mail_domain_of_address(conf, long_addr));
}

static void test_domain_of_host(void **state)
{
	const char *cases[][2] = {
		{ "example.test", "example.test" },
		{ "EXAMPLE.TEST:8080", "example.test" },
		{ "autoconfig.example.test", "example.test" },
		{ "autodiscover.example.org.", "example.org" },
		{ "mta-sts.example.org", "example.org" },
		{ "imap.example.org", "example.org" },
		{ "mail.example.org:443", "example.org" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct conf_domain *d = mail_domain_of_host(conf, cases[i][0]);
		assert_non_null(d);
		assert_string_equal(d->name, cases[i][1]);
	}
	assert_null(mail_domain_of_host(conf, NULL));
	assert_null(mail_domain_of_host(conf, ""));
	assert_null(mail_domain_of_host(conf, "autoconfig."));
	assert_null(mail_domain_of_host(conf, "relay.test"));
	assert_null(mail_domain_of_host(conf, "www.example.test"));
	assert_null(mail_domain_of_host(conf, "[::1]:80"));
	assert_null(mail_domain_of_host(conf, "127.0.0.1:2080"));
	char huge[1000];
	memset(huge, 'x', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	assert_null(mail_domain_of_host(conf, huge));
}

static void test_xml_escape(void **state)
{
	struct buf b = BUF_INIT(1024);
	xml_escape(&b, "<a&b>\"'\x01 j\xc3\xb6rg \xff\xf0\x9f\x98\x80 \xef\xbf\xbe.");
	assert_string_equal(buf_cstr(&b), "&lt;a&amp;b&gt;&quot;&apos;? j\xc3\xb6rg ?"
			    "\xf0\x9f\x98\x80 ?.");
	buf_free(&b);
}

static void test_host(void **state)
{
	assert_string_equal(mail_host(conf, conf_find_domain(conf, "example.org")),
			    "mail.example.org");
	assert_string_equal(mail_host(conf, conf_find_domain(conf, "example.test")),
			    "mail.warren.test");
	assert_string_equal(mail_host(conf, NULL), "mail.warren.test");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allow_loopback),
		cmocka_unit_test(test_allow_prefixes),
		cmocka_unit_test(test_endpoints_order),
		cmocka_unit_test(test_domain_of_address),
		cmocka_unit_test(test_domain_of_host),
		cmocka_unit_test(test_xml_escape),
		cmocka_unit_test(test_host),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
