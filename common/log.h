/* log.h — Postfix-style logging for every Warren process.
 *
 * Lines look like Postfix's: "Nov 22 21:39:28 host warren/smtpd[1234]: text" on stderr,
 * or go to syslog (facility mail) under the same ident. Warnings, errors and fatal
 * errors carry Postfix's "warning: ", "error: ", "fatal: " prefixes.
 * Safe to call from any thread: a line is written with one write(2).
 */
#ifndef WARREN_LOG_H
#define WARREN_LOG_H

#include <stddef.h>
#include <stdarg.h>

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
	LOG_LEVEL_FATAL,
};

enum log_target {
	LOG_TARGET_STDERR,
	LOG_TARGET_SYSLOG,
};

/* Sets the ident ("warren/smtpd"), the target and the lowest level written.
 * May be called again (on reload); until called, logs go to stderr at INFO. */
void log_init(const char *ident, enum log_target target, enum log_level level);

/* Parses "debug", "info", "warning", "error"; returns -1 on an unknown name. */
int log_level_parse(const char *name, enum log_level *level_r);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* Logs under another program name of the suite: "warren/smtpd" logging as
 * "local" writes "warren/local[pid]", the way Postfix's local, smtp, qmgr,
 * cleanup and bounce log their parts of a delivery (pflogsumm counts
 * deliveries only from those). */
void log_msg_as(enum log_level level, const char *program, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define log_info_as(program, ...) log_msg_as(LOG_LEVEL_INFO, program, __VA_ARGS__)

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
/* Logs and exits the process with status 1. */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* True when a debug line would be written (to skip building expensive ones). */
int log_debug_enabled(void);

/* Makes untrusted text safe to log: copies at most max bytes of s (len bytes)
 * into buf (size bufsize), replacing control and non-ASCII bytes with '?', and
 * marks truncation with "...". Returns buf. */
const char *log_printable(char *buf, size_t bufsize, const char *s, size_t len);

#endif
