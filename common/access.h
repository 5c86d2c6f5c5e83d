/* access.h — who may log in, from where, to what, and when.
 *
 * An access block sits in a domain and in a mailbox (conf: `access { }`); both
 * are struct access_rules. access_check() decides one login against the
 * domain's block and the mailbox's block:
 *
 *   - networks: each level's allow_networks/deny_networks read as a listener's
 *     (allow always lets in, deny refuses, an allow list without a deny list is
 *     an allow-list), the mailbox's first; an address the mailbox's
 *     allow_networks holds passes the domain's lists too.
 *   - submission / imap / pop3 (on|off): the mailbox's setting, when written,
 *     wins over the domain's; neither written: on.
 *   - hours, valid_from, valid_until, timezone: each, when written in the
 *     mailbox, replaces the domain's. Times are read in timezone (an IANA name
 *     such as "Europe/Berlin"; neither written: the system's /etc/localtime).
 *
 * Checks run in this order, the first that refuses names the rule: service,
 * valid_from, valid_until, the networks, hours.
 *
 * No dependency on conf/: conf.h embeds struct access_rules in its domain and
 * mailbox structs. access_check() reads time zone files: call it off the loop
 * thread. Everything here is thread-safe (no TZ environment games).
 */
#ifndef WARREN_ACCESS_H
#define WARREN_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest text access_check() writes as the refusing rule's name. */
#define ACCESS_RULE_MAX 300
/* Largest time zone file read (TZif files are a few KiB). */
#define ACCESS_TZFILE_MAX (256 * 1024)
/* Where IANA time zone files live. */
#define ACCESS_ZONEINFO_DIR "/usr/share/zoneinfo"

enum access_service {
	ACCESS_SUBMISSION,   /* SMTP AUTH (submission listeners) */
	ACCESS_IMAP,
	ACCESS_POP3,
};

enum access_switch {      /* the values of the config's off | on | inherit */
	ACCESS_OFF = 0,
	ACCESS_ON = 1,
	ACCESS_INHERIT = 2,  /* the default: the domain's, else on */
};

struct access_rules {
	const char *const *allow_networks;  /* "192.0.2.0/24", "2001:db8::/32", "::1" */
	size_t n_allow_networks;
	const char *const *deny_networks;
	size_t n_deny_networks;
	int submission, imap, pop3;         /* enum access_switch */
	const char *const *hours;           /* "Mon-Fri 07:00-19:00", "Sat 09:00-12:00" */
	size_t n_hours;
	const char *timezone;               /* NULL: not written */
	const char *valid_from;             /* "YYYY-MM-DD" or "YYYY-MM-DD HH:MM"; NULL */
	const char *valid_until;            /* a date alone: through the end of that day */
};

enum access_verdict {
	ACCESS_ALLOW,
	ACCESS_DENY,          /* address, hours or dates */
	ACCESS_SERVICE_OFF,   /* the protocol is switched off for the mailbox */
};

/* True when the block holds no rule at all. NULL counts as empty. */
bool access_rules_empty(const struct access_rules *rules);

/* Decides a login of mailbox_name (in domain_name) from ip to service at unix
 * time now. Either block may be NULL. On a refusal the rule is named in
 * rule_r, e.g. "domain example.test hours" or "mailbox a@example.test pop3". An
 * unreadable time zone refuses (fail closed) and says so in rule_r. */
enum access_verdict access_check(const struct access_rules *domain, const char *domain_name,
				 const struct access_rules *mailbox, const char *mailbox_name,
				 const char *ip, enum access_service service, int64_t now,
				 char *rule_r, size_t rule_size);

/* ---- the parts, for the config checker and the tests ---- */

/* "ADDR" or "ADDR/BITS", IPv4 or IPv6. */
bool access_net_valid(const char *net);
/* Whether ip is in one of nets (IPv4-mapped IPv6 addresses match IPv4 nets). */
bool access_net_match(const char *ip, const char *const *nets, size_t n);
/* "[DAYS ]HH:MM-HH:MM", DAYS as "Mon", "Mon-Fri" or "Mon,Wed,Sat-Sun"; 24:00 may
 * end a window; an end before the start runs past midnight. 0 or -1 with
 * *error_r (static text). */
int access_hours_valid(const char *window, const char **error_r);
/* Whether the window holds the local time (wday 0 = Sunday, minute of the day). */
bool access_hours_match(const char *window, int wday, int minute);
/* "YYYY-MM-DD" or "YYYY-MM-DD HH:MM". */
bool access_date_valid(const char *date);
/* The zone's offset from UTC (seconds east) at unix time t; zone NULL: the
 * system's. 0, or -1 when the zone cannot be read. */
int access_tz_offset(const char *zone, int64_t t, int *offset_r);

#endif
