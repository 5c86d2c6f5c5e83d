/* metrics.h — event counters shared by every process of the suite, for
 * warren-httpd's /metrics.
 *
 * The counters live in one small file, state_dir/metrics, that each daemon maps
 * (MAP_SHARED) and increments with atomic adds: no lock, no system call, no
 * store transaction per event, and httpd maps the same file read-only (it never
 * opens the store). The file outlives the processes, so the counters are
 * monotonic across daemon restarts (and restarts of the suite), as Prometheus
 * counters should be; deleting the file while the suite is stopped resets them.
 * docs/admin.md says why this and not the store's kv counters or the master.
 *
 * Until metrics_open() succeeds (or when it failed), every count is a no-op:
 * counting never fails a session.
 */
#ifndef WARREN_METRICS_H
#define WARREN_METRICS_H

#include <stdbool.h>
#include <stdint.h>

enum metric_counter {
	METRIC_SMTP_RECEIVED,          /* messages accepted by smtpd (250 after DATA) */
	/* deliveries, by the daemon that made them: relay local or smtp, by result */
	METRIC_DELIVERY_LOCAL_SENT,
	METRIC_DELIVERY_LOCAL_DEFERRED,
	METRIC_DELIVERY_LOCAL_BOUNCED,
	METRIC_DELIVERY_SMTP_SENT,
	METRIC_DELIVERY_SMTP_DEFERRED,
	METRIC_DELIVERY_SMTP_BOUNCED,
	METRIC_NOTICES,                /* bounce, delay and success notices queued */
	/* logins through service/login.c, by protocol and result */
	METRIC_AUTH_SMTP_SUCCESS,
	METRIC_AUTH_SMTP_FAILURE,
	METRIC_AUTH_SMTP_REFUSED,      /* right password, an access rule refused */
	METRIC_AUTH_SMTP_TEMPFAIL,
	METRIC_AUTH_IMAP_SUCCESS,
	METRIC_AUTH_IMAP_FAILURE,
	METRIC_AUTH_IMAP_REFUSED,
	METRIC_AUTH_IMAP_TEMPFAIL,
	METRIC_AUTH_POP3_SUCCESS,
	METRIC_AUTH_POP3_FAILURE,
	METRIC_AUTH_POP3_REFUSED,
	METRIC_AUTH_POP3_TEMPFAIL,
	/* smtpd's refusals (a command answered 4xx/5xx by a check), by reason, in
	 * the order of metrics_reject_reasons[] */
	METRIC_REJECT_FIRST,
	METRIC_REJECT_LAST = METRIC_REJECT_FIRST + 15,
	METRIC_COUNT
};

/* The reasons smtpd's refusals are counted under: the policy chain's check
 * names (smtpd/policy.c) and the recipient checks of smtp-rcpt.c; a name not in
 * the list counts as "other". NULL-terminated, at most 16. */
extern const char *const metrics_reject_reasons[];

/* Maps (creating it when missing) state_dir/metrics for counting. */
int metrics_open(const char *state_dir);
/* Adds one to a counter. */
void metrics_count(enum metric_counter counter);
/* A delivery: relay "local" or anything else (smtp); status "sent",
 * "deferred" or "bounced" (other statuses are not counted). */
void metrics_count_delivery(const char *relay, const char *status);
/* A login's outcome: protocol "smtp"/"imap"/"pop3", result 0 success, 1 wrong
 * password or unknown user, 2 refused by an access rule, 3 temporary failure. */
void metrics_count_auth(const char *protocol, int result);

/* A refusal by reason (see metrics_reject_reasons). */
void metrics_count_reject(const char *reason);

/* ---- reading (warren-httpd) ---- */

struct metrics_snapshot {
	uint64_t values[METRIC_COUNT];
};
/* Reads every counter of state_dir/metrics (mapped read-only on the first call
 * that finds the file). -1 when there is no file yet (nothing counted). */
int metrics_read(const char *state_dir, struct metrics_snapshot *snap_r);

#endif
