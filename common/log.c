#include "common/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* The process's logging context: set once at start and on reload. */
static struct {
	char ident[64];
	char host[64];
	enum log_target target;
	enum log_level level;
} log_ctx = { "warren", "", LOG_TARGET_STDERR, LOG_LEVEL_INFO };

/* Longest line written; longer text is cut (callers bound untrusted text first). */
#define LOG_LINE_MAX 4096

void log_init(const char *ident, enum log_target target, enum log_level level)
{
	snprintf(log_ctx.ident, sizeof(log_ctx.ident), "%s", ident);
	if (gethostname(log_ctx.host, sizeof(log_ctx.host)) != 0)
		snprintf(log_ctx.host, sizeof(log_ctx.host), "localhost");
	log_ctx.host[sizeof(log_ctx.host) - 1] = '\0';
	char *dot = strchr(log_ctx.host, '.');
	if (dot != NULL)
		*dot = '\0';
	if (log_ctx.target == LOG_TARGET_SYSLOG)
		closelog();
	log_ctx.target = target;
	log_ctx.level = level;
	if (target == LOG_TARGET_SYSLOG)
		openlog(log_ctx.ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

int log_level_parse(const char *name, enum log_level *level_r)
{
	static const struct { const char *name; enum log_level level; } levels[] = {
		{ "debug", LOG_LEVEL_DEBUG }, { "info", LOG_LEVEL_INFO },
		{ "warning", LOG_LEVEL_WARN }, { "error", LOG_LEVEL_ERROR },
	};
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		if (strcmp(name, levels[i].name) == 0) {
			*level_r = levels[i].level;
			return 0;
		}
	}
	return -1;
}

int log_debug_enabled(void)
{
	return log_ctx.level <= LOG_LEVEL_DEBUG;
}

static const char *level_prefix(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_WARN: return "warning: ";
	case LOG_LEVEL_ERROR: return "error: ";
	case LOG_LEVEL_FATAL: return "fatal: ";
	default: return "";
	}
}

static int syslog_priority(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_DEBUG: return LOG_DEBUG;
	case LOG_LEVEL_INFO: return LOG_INFO;
	case LOG_LEVEL_WARN: return LOG_WARNING;
	case LOG_LEVEL_ERROR: return LOG_ERR;
	default: return LOG_CRIT;
	}
}

/* Serializes syslog lines written under another ident (openlog changes it for
 * the whole process). */
static pthread_mutex_t log_syslog_mutex = PTHREAD_MUTEX_INITIALIZER;

/* One line under ident (NULL: the process's own). */
static __attribute__((format(printf, 3, 0))) void
log_write(enum log_level level, const char *ident, const char *fmt, va_list ap)
{
	if (level < log_ctx.level)
		return;
	char text[LOG_LINE_MAX];
	vsnprintf(text, sizeof(text), fmt, ap);

	if (log_ctx.target == LOG_TARGET_SYSLOG) {
		pthread_mutex_lock(&log_syslog_mutex);
		if (ident != NULL)
			openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
		syslog(syslog_priority(level), "%s%s", level_prefix(level), text);
		if (ident != NULL)
			openlog(log_ctx.ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
		pthread_mutex_unlock(&log_syslog_mutex);
		return;
	}
	if (ident == NULL)
		ident = log_ctx.ident;
	char line[LOG_LINE_MAX + 256];
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
	int n = snprintf(line, sizeof(line), "%s %s %s[%ld]: %s%s\n", stamp,
			 log_ctx.host[0] != '\0' ? log_ctx.host : "localhost",
			 ident, (long)getpid(), level_prefix(level), text);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	ssize_t ret = write(STDERR_FILENO, line, (size_t)n);
	(void)ret;
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	log_write(level, NULL, fmt, ap);
}

void log_msg_as(enum log_level level, const char *program, const char *fmt, ...)
{
	/* "warren/smtpd" as "local": "warren/local" */
	char ident[sizeof(log_ctx.ident) + 32];
	const char *slash = strchr(log_ctx.ident, '/');
	int base = slash != NULL ? (int)(slash - log_ctx.ident) : (int)strlen(log_ctx.ident);
	snprintf(ident, sizeof(ident), "%.*s/%s", base, log_ctx.ident, program);
	va_list ap;
	va_start(ap, fmt);
	log_write(level, ident, fmt, ap);
	va_end(ap);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_FATAL, fmt, ap);
	va_end(ap);
	exit(1);
}

const char *log_printable(char *buf, size_t bufsize, const char *s, size_t len)
{
	if (bufsize == 0)
		return buf;
	size_t room = bufsize - 1, i, o = 0;
	int cut = 0;
	for (i = 0; i < len; i++) {
		if (o >= room) {
			cut = 1;
			break;
		}
		unsigned char c = (unsigned char)s[i];
		buf[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (cut && room >= 3)
		memcpy(buf + room - 3, "...", 3), o = room;
	buf[o] = '\0';
	return buf;
}
