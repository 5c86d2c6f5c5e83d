/* test-access.c — the access rules of domains and mailboxes (common/access.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/access.h"

#include <string.h>
#include <time.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int64_t utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
			 .tm_min = mi };
	return (int64_t)timegm(&tm);
}

/* An empty block (every switch unset). */
static struct access_rules none(void)
{
	struct access_rules r = { .submission = ACCESS_INHERIT, .imap = ACCESS_INHERIT,
				  .pop3 = ACCESS_INHERIT };
	return r;
}

static void networks(void **state)
{
	(void)state;
	static const char *const nets[] = { "192.0.2.0/24", "10.0.0.1", "2001:db8::/32",
					    "198.51.100.128/25" };
	assert_true(access_net_match("192.0.2.77", nets, N(nets)));
	assert_true(access_net_match("10.0.0.1", nets, N(nets)));
	assert_false(access_net_match("10.0.0.2", nets, N(nets)));
	assert_true(access_net_match("2001:db8:1::5", nets, N(nets)));
	assert_false(access_net_match("2001:db9::5", nets, N(nets)));
	assert_true(access_net_match("198.51.100.200", nets, N(nets)));
	assert_false(access_net_match("198.51.100.127", nets, N(nets)));
	/* an IPv4-mapped client address (a listener on "::") matches IPv4 nets */
	assert_true(access_net_match("::ffff:192.0.2.1", nets, N(nets)));
	assert_false(access_net_match("not an address", nets, N(nets)));
	assert_false(access_net_match(NULL, nets, N(nets)));
	static const char *const all[] = { "0.0.0.0/0", "::/0" };
	assert_true(access_net_match("127.0.0.2", all, N(all)));
	assert_true(access_net_match("::1", all, N(all)));

	assert_true(access_net_valid("127.0.0.1"));
	assert_true(access_net_valid("::1/128"));
	assert_true(access_net_valid("0.0.0.0/0"));
	assert_false(access_net_valid("1.2.3.4/33"));
	assert_false(access_net_valid("::/129"));
	assert_false(access_net_valid("1.2.3.4/"));
	assert_false(access_net_valid("1.2.3.4/-1"));
	assert_false(access_net_valid("1.2.3/24"));
	assert_false(access_net_valid("example.org"));
	assert_false(access_net_valid(""));
}

static void hours(void **state)
{
	(void)state;
	const char *err;
	/* Wednesday = 3 */
	assert_true(access_hours_match("Mon-Fri 07:00-19:00", 3, 12 * 60));
	assert_true(access_hours_match("Mon-Fri 07:00-19:00", 3, 7 * 60));
	assert_false(access_hours_match("Mon-Fri 07:00-19:00", 3, 19 * 60));   /* end: out */
	assert_false(access_hours_match("Mon-Fri 07:00-19:00", 3, 6 * 60 + 59));
	assert_false(access_hours_match("Mon-Fri 07:00-19:00", 6, 12 * 60));   /* Saturday */
	assert_false(access_hours_match("Mon-Fri 07:00-19:00", 0, 12 * 60));   /* Sunday */
	/* no days: every day; 24:00 ends the day */
	assert_true(access_hours_match("00:00-24:00", 0, 23 * 60 + 59));
	assert_true(access_hours_match("12:00-24:00", 6, 23 * 60 + 59));
	/* lists and ranges over the week's end */
	assert_true(access_hours_match("Mon,Wed,Sat-Sun 08:00-09:00", 0, 8 * 60 + 30));
	assert_true(access_hours_match("Sat-Mon 08:00-09:00", 1, 8 * 60));
	assert_false(access_hours_match("Sat-Mon 08:00-09:00", 2, 8 * 60));
	assert_false(access_hours_match("Mon,Wed 08:00-09:00", 2, 8 * 60));
	assert_true(access_hours_match("mon-fri 08:00-09:00", 5, 8 * 60));   /* any case */
	/* past midnight: the evening of Friday and the early hours of Saturday */
	assert_true(access_hours_match("Fri 22:00-02:00", 5, 23 * 60));
	assert_true(access_hours_match("Fri 22:00-02:00", 6, 1 * 60));
	assert_false(access_hours_match("Fri 22:00-02:00", 6, 2 * 60));
	assert_false(access_hours_match("Fri 22:00-02:00", 5, 1 * 60));
	assert_false(access_hours_match("Fri 22:00-02:00", 6, 23 * 60));

	assert_int_equal(access_hours_valid("Mon-Fri 07:00-19:00", &err), 0);
	assert_int_equal(access_hours_valid("  Sat 09:00-12:00 ", &err), 0);
	static const char *const bad[] = {
		"Mon-Fox 07:00-19:00", "Mon-Fri", "Mon-Fri 7:00-19:00", "Mon-Fri 07:00-25:00",
		"Mon-Fri 07:60-19:00", "Mon-Fri 24:00-01:00", "Mon-Fri 07:00-07:00",
		"Mon-Fri07:00-19:00", "Mon-Fri 07:00-19:00 extra", "Monday 07:00-19:00",
		"Mon, 07:00-19:00", "", "07:00", "07:00-",
	};
	for (size_t i = 0; i < N(bad); i++) {
		err = NULL;
		assert_int_equal(access_hours_valid(bad[i], &err), -1);
		assert_non_null(err);
		assert_false(access_hours_match(bad[i], 3, 12 * 60));
	}
}

static void dates(void **state)
{
	(void)state;
	assert_true(access_date_valid("2026-12-31"));
	assert_true(access_date_valid("2026-12-31 23:59"));
	assert_false(access_date_valid("2026-13-01"));
	assert_false(access_date_valid("2026-12-31 24:00"));
	assert_false(access_date_valid("2026-12-31T10:00"));
	assert_false(access_date_valid("31.12.2026"));
	assert_false(access_date_valid("2026-12-31 10:00 extra"));
	assert_false(access_date_valid(""));
}

static void time_zones(void **state)
{
	(void)state;
	int off = 12345;
	assert_int_equal(access_tz_offset("Europe/Berlin", utc(2026, 1, 15, 12, 0), &off), 0);
	assert_int_equal(off, 3600);
	assert_int_equal(access_tz_offset("Europe/Berlin", utc(2026, 7, 15, 12, 0), &off), 0);
	assert_int_equal(off, 7200);
	/* the switch to summer time: 2026-03-29 01:00 UTC */
	assert_int_equal(access_tz_offset("Europe/Berlin", utc(2026, 3, 29, 0, 59), &off), 0);
	assert_int_equal(off, 3600);
	assert_int_equal(access_tz_offset("Europe/Berlin", utc(2026, 3, 29, 1, 0), &off), 0);
	assert_int_equal(off, 7200);
	assert_int_equal(access_tz_offset("America/New_York", utc(2026, 1, 15, 12, 0), &off), 0);
	assert_int_equal(off, -5 * 3600);
	assert_int_equal(access_tz_offset("Asia/Kolkata", utc(2026, 1, 15, 12, 0), &off), 0);
	assert_int_equal(off, 5 * 3600 + 1800);
	assert_int_equal(access_tz_offset("UTC", utc(2026, 1, 15, 12, 0), &off), 0);
	assert_int_equal(off, 0);
	assert_int_equal(access_tz_offset(NULL, utc(2026, 1, 15, 12, 0), &off), 0);
	assert_int_equal(access_tz_offset("Mars/Base", 0, &off), -1);
	assert_int_equal(access_tz_offset("../../etc/passwd", 0, &off), -1);
	assert_int_equal(access_tz_offset("/etc/localtime", 0, &off), -1);
	assert_int_equal(access_tz_offset("", 0, &off), -1);
	assert_int_equal(access_tz_offset("Europe", 0, &off), -1);   /* a folder */
}

static enum access_verdict check(const struct access_rules *d, const struct access_rules *m,
				 const char *ip, enum access_service svc, int64_t now,
				 char *rule)
{
	return access_check(d, "example.test", m, "alice@example.test", ip, svc, now, rule,
			    ACCESS_RULE_MAX);
}

static void services(void **state)
{
	(void)state;
	char rule[ACCESS_RULE_MAX];
	int64_t now = utc(2026, 1, 14, 12, 0);
	struct access_rules d = none(), m = none();
	assert_true(access_rules_empty(&d));
	assert_true(access_rules_empty(NULL));
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_IMAP, now, rule), ACCESS_ALLOW);
	assert_int_equal(check(NULL, NULL, "127.0.0.1", ACCESS_POP3, now, rule), ACCESS_ALLOW);

	m.pop3 = ACCESS_OFF;
	assert_false(access_rules_empty(&m));
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_POP3, now, rule), ACCESS_SERVICE_OFF);
	assert_string_equal(rule, "mailbox alice@example.test pop3");
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_IMAP, now, rule), ACCESS_ALLOW);

	/* the domain switches IMAP off; the mailbox's own word wins */
	d.imap = ACCESS_OFF;
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_IMAP, now, rule), ACCESS_SERVICE_OFF);
	assert_string_equal(rule, "domain example.test imap");
	m.imap = ACCESS_ON;
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_IMAP, now, rule), ACCESS_ALLOW);
	d.submission = ACCESS_OFF;
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_SUBMISSION, now, rule),
			 ACCESS_SERVICE_OFF);
	assert_string_equal(rule, "domain example.test submission");
}

static void network_rules(void **state)
{
	(void)state;
	char rule[ACCESS_RULE_MAX];
	int64_t now = utc(2026, 1, 14, 12, 0);
	struct access_rules d = none(), m = none();
	static const char *const lo1[] = { "127.0.0.1/32" };
	static const char *const lo2[] = { "127.0.0.2" };
	static const char *const all[] = { "0.0.0.0/0", "::/0" };
	static const char *const lo8[] = { "127.0.0.0/8" };

	/* an allow list alone is an allow-list */
	d.allow_networks = lo1;
	d.n_allow_networks = 1;
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_IMAP, now, rule), ACCESS_ALLOW);
	assert_int_equal(check(&d, &m, "127.0.0.2", ACCESS_IMAP, now, rule), ACCESS_DENY);
	assert_string_equal(rule, "domain example.test allow_networks");
	/* the mailbox's allow list replaces the domain's */
	m.allow_networks = lo2;
	m.n_allow_networks = 1;
	assert_int_equal(check(&d, &m, "127.0.0.2", ACCESS_IMAP, now, rule), ACCESS_ALLOW);
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_IMAP, now, rule), ACCESS_DENY);
	assert_string_equal(rule, "mailbox alice@example.test allow_networks");

	/* deny lists of both levels apply */
	d = none();
	m = none();
	d.deny_networks = lo2;
	d.n_deny_networks = 1;
	assert_int_equal(check(&d, &m, "127.0.0.2", ACCESS_POP3, now, rule), ACCESS_DENY);
	assert_string_equal(rule, "domain example.test deny_networks");
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_POP3, now, rule), ACCESS_ALLOW);
	m.deny_networks = lo1;
	m.n_deny_networks = 1;
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_POP3, now, rule), ACCESS_DENY);
	assert_string_equal(rule, "mailbox alice@example.test deny_networks");
	assert_int_equal(check(&d, &m, "127.0.0.3", ACCESS_POP3, now, rule), ACCESS_ALLOW);

	/* allow lets in past deny: "everyone but the office is refused" */
	d = none();
	m = none();
	d.deny_networks = all;
	d.n_deny_networks = 2;
	m.allow_networks = lo1;
	m.n_allow_networks = 1;
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_IMAP, now, rule), ACCESS_ALLOW);
	assert_int_equal(check(&d, &m, "127.0.0.2", ACCESS_IMAP, now, rule), ACCESS_DENY);
	assert_string_equal(rule, "mailbox alice@example.test allow_networks");
	assert_int_equal(check(&d, &m, "::1", ACCESS_IMAP, now, rule), ACCESS_DENY);
	/* without its own allow list the domain's deny list refuses */
	m = none();
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_IMAP, now, rule), ACCESS_DENY);
	assert_string_equal(rule, "domain example.test deny_networks");

	/* each level decides: the domain's allow-list and the mailbox's deny list */
	d = none();
	m = none();
	d.allow_networks = lo8;
	d.n_allow_networks = 1;
	m.deny_networks = lo2;
	m.n_deny_networks = 1;
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_IMAP, now, rule), ACCESS_ALLOW);
	assert_int_equal(check(&d, &m, "192.0.2.1", ACCESS_IMAP, now, rule), ACCESS_DENY);
	assert_string_equal(rule, "domain example.test allow_networks");
	assert_int_equal(check(&d, &m, "127.0.0.2", ACCESS_IMAP, now, rule), ACCESS_DENY);
	assert_string_equal(rule, "mailbox alice@example.test deny_networks");
	/* a level's allow list lets in past its own deny list */
	d = none();
	m = none();
	d.allow_networks = lo2;
	d.n_allow_networks = 1;
	d.deny_networks = lo8;
	d.n_deny_networks = 1;
	assert_int_equal(check(&d, &m, "127.0.0.2", ACCESS_IMAP, now, rule), ACCESS_ALLOW);
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_IMAP, now, rule), ACCESS_DENY);
	assert_int_equal(check(&d, &m, "192.0.2.1", ACCESS_IMAP, now, rule), ACCESS_ALLOW);
}

static void time_rules(void **state)
{
	(void)state;
	char rule[ACCESS_RULE_MAX];
	struct access_rules d = none(), m = none();
	static const char *const office[] = { "Mon-Fri 07:00-19:00" };
	static const char *const weekend[] = { "Sat-Sun 00:00-24:00" };
	d.hours = office;
	d.n_hours = 1;
	d.timezone = "Europe/Berlin";
	/* Wednesday 2026-01-14: 17:30 UTC is 18:30 in Berlin, 18:30 UTC is 19:30 */
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_IMAP, utc(2026, 1, 14, 17, 30), rule),
			 ACCESS_ALLOW);
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_IMAP, utc(2026, 1, 14, 18, 30), rule),
			 ACCESS_DENY);
	assert_string_equal(rule, "domain example.test hours");
	/* 06:30 UTC = 07:30 in Berlin, but before 07:00 in New York's zone */
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_IMAP, utc(2026, 1, 14, 6, 30), rule),
			 ACCESS_ALLOW);
	m.timezone = "America/New_York";
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_IMAP, utc(2026, 1, 14, 6, 30), rule),
			 ACCESS_DENY);
	/* the mailbox's hours replace the domain's */
	m.timezone = NULL;
	m.hours = weekend;
	m.n_hours = 1;
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_IMAP, utc(2026, 1, 14, 12, 0), rule),
			 ACCESS_DENY);
	assert_string_equal(rule, "mailbox alice@example.test hours");
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_IMAP, utc(2026, 1, 17, 12, 0), rule),
			 ACCESS_ALLOW);

	/* dates, in the zone: valid_until a date alone runs through that day */
	d = none();
	m = none();
	d.timezone = "Europe/Berlin";
	d.valid_until = "2026-06-30";
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_POP3, utc(2026, 6, 30, 21, 59), rule),
			 ACCESS_ALLOW);
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_POP3, utc(2026, 6, 30, 22, 0), rule),
			 ACCESS_DENY);   /* midnight in Berlin */
	assert_string_equal(rule, "domain example.test valid_until");
	m.valid_until = "2026-07-01 12:00";
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_POP3, utc(2026, 7, 1, 9, 59), rule),
			 ACCESS_ALLOW);
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_POP3, utc(2026, 7, 1, 10, 0), rule),
			 ACCESS_DENY);
	assert_string_equal(rule, "mailbox alice@example.test valid_until");
	m.valid_from = "2026-05-01";
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_POP3, utc(2026, 4, 30, 21, 59), rule),
			 ACCESS_DENY);
	assert_string_equal(rule, "mailbox alice@example.test valid_from");
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_POP3, utc(2026, 4, 30, 22, 0), rule),
			 ACCESS_ALLOW);

	/* a zone that cannot be read refuses */
	d = none();
	m = none();
	d.hours = office;
	d.n_hours = 1;
	d.timezone = "Mars/Base";
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_IMAP, utc(2026, 1, 14, 12, 0), rule),
			 ACCESS_DENY);
	assert_string_equal(rule, "domain example.test timezone (cannot be read)");
	/* the service check comes first */
	d.imap = ACCESS_OFF;
	assert_int_equal(check(&d, &m, "127.0.0.1", ACCESS_IMAP, utc(2026, 1, 14, 12, 0), rule),
			 ACCESS_SERVICE_OFF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(networks),
		cmocka_unit_test(hours),
		cmocka_unit_test(dates),
		cmocka_unit_test(time_zones),
		cmocka_unit_test(services),
		cmocka_unit_test(network_rules),
		cmocka_unit_test(time_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
