/* warrenctl-track.c — `warrenctl track [--log FILE] QUEUEID|MESSAGE-ID|ADDRESS`:
 * follows messages through the suite's log (Postfix's line formats, see
 * docs/troubleshooting.md) and prints every hop: the connection, received from,
 * the policy verdicts, queued as, each delivery (sent, deferred, bounced) and
 * the notices it caused, with times, then one summary line per message.
 *
 * --since/--until keep only the lines in that time range (every pass).
 *
 * Three passes over the file: the first finds the queue ids the query names
 * (directly, by message-id=, or by from=/to=/orig_to=) and the notices they
 * caused ("sender non-delivery notification: ID"), the second the sessions
 * they came in on (client=..., session=ID), the third prints every line of
 * those ids and every NOQUEUE reject naming the address. Memory is bounded by
 * TRACK_IDS_MAX ids; lines longer than TRACK_LINE_MAX are skipped.
 *
 * The log is the file syslog writes (Debian: /var/log/mail.log, the default)
 * or the master's stderr captured to a file; both timestamp forms ("Dec  1
 * 21:23:13" and RFC 3339) are read.
 */
#include "conf/warrenctl.h"
#include "conf/warrenctl-admin.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define TRACK_DEFAULT_LOG "/var/log/mail.log"
/* Queue and session ids followed at most. */
#define TRACK_IDS_MAX 4096
/* Longest log line examined (longer ones are skipped). */
#define TRACK_LINE_MAX 8192
/* Recipients remembered per message for the summary. */
#define TRACK_RCPTS_MAX 32
#define TRACK_ID_LEN 40
#define TRACK_ADDR_LEN 320

struct track_rcpt {
	char to[TRACK_ADDR_LEN];
	char status[16];
};

struct track_id {
	char id[TRACK_ID_LEN];
	bool is_session;
	bool seen;                   /* printed a line of it (summary order) */
	char from[TRACK_ADDR_LEN];
	char client[160];
	char first[40], last[40];    /* times */
	struct track_rcpt *rcpts;    /* malloc'ed on the first to= line */
	size_t n_rcpts;
};

struct track {
	const char *query;           /* without <> */
	struct track_id *ids;
	size_t n_ids;
	bool full;                   /* TRACK_IDS_MAX reached */
	time_t since, until;         /* --since/--until; 0: open */
	time_t now;
	bool json;
	unsigned long events;
};

/* One parsed log line: "TIME HOST warren/PROGRAM[PID]: ID: TEXT". */
struct line {
	char time[40];
	char program[32];
	char id[TRACK_ID_LEN];
	const char *text;            /* after "ID: " */
};

static int parse_line(char *s, struct line *l)
{
	const char *p = s;
	size_t n;
	if (s[0] >= '0' && s[0] <= '9') {
		/* RFC 3339: 2026-12-01T21:23:13.123456+00:00 */
		n = strcspn(p, " ");
		if (n >= sizeof(l->time) || n < 19)
			return -1;
		memcpy(l->time, p, 19);
		l->time[10] = ' ';
		l->time[19] = '\0';
		p += n;
	} else {
		/* "Dec  1 21:23:13" */
		if (strlen(p) < 16 || p[3] != ' ' || p[15] != ' ')
			return -1;
		memcpy(l->time, p, 15);
		l->time[15] = '\0';
		p += 15;
	}
	p += strspn(p, " ");
	p += strcspn(p, " ");           /* the host */
	p += strspn(p, " ");
	if (strncmp(p, "warren/", 7) != 0)
		return -1;
	p += 7;
	n = strcspn(p, "[:");
	if (n == 0 || n >= sizeof(l->program))
		return -1;
	memcpy(l->program, p, n);
	l->program[n] = '\0';
	p = strstr(p, ": ");
	if (p == NULL)
		return -1;
	p += 2;
	n = strcspn(p, ": ");
	if (n == 0 || n >= sizeof(l->id) || strncmp(p + n, ": ", 2) != 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'A' && p[i] <= 'Z') ||
		      (p[i] >= 'a' && p[i] <= 'z')))
			return -1;
	memcpy(l->id, p, n);
	l->id[n] = '\0';
	l->text = p + n + 2;
	return 0;
}

/* A log line's time as a local time: "Dec  1 21:23:13" (the year is this one,
 * or the last one for a date ahead of now) or "2026-12-01 21:23:13". */
static time_t line_time(const struct track *t, const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	tm.tm_isdst = -1;
	if (s[0] >= '0' && s[0] <= '9') {
		if (strptime(s, "%Y-%m-%d %H:%M:%S", &tm) == NULL)
			return 0;
		return mktime(&tm);
	}
	if (strptime(s, "%b %e %H:%M:%S", &tm) == NULL)
		return 0;
	struct tm now;
	localtime_r(&t->now, &now);
	tm.tm_year = now.tm_year;
	time_t v = mktime(&tm);
	if (v > t->now + 86400) {
		tm.tm_year--;
		tm.tm_isdst = -1;
		v = mktime(&tm);
	}
	return v;
}

/* --since/--until: "YYYY-MM-DD HH:MM[:SS]", "YYYY-MM-DD" or "HH:MM[:SS]" (today). */
static int parse_when(const char *s, time_t now, time_t *t_r)
{
	static const char *const layouts[] = {
		"%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d",
		"%H:%M:%S", "%H:%M",
	};
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
		struct tm tm;
		memset(&tm, 0, sizeof(tm));
		if (layouts[i][1] == 'H')
			localtime_r(&now, &tm);     /* today */
		const char *end = strptime(s, layouts[i], &tm);
		if (end == NULL || *end != '\0')
			continue;
		tm.tm_isdst = -1;
		*t_r = mktime(&tm);
		return *t_r == (time_t)-1 ? -1 : 0;
	}
	return -1;
}

static bool in_range(const struct track *t, const struct line *l)
{
	if (t->since == 0 && t->until == 0)
		return true;
	time_t v = line_time(t, l->time);
	return v != 0 && (t->since == 0 || v >= t->since) && (t->until == 0 || v <= t->until);
}

static struct track_id *find_id(struct track *t, const char *id)
{
	for (size_t i = 0; i < t->n_ids; i++)
		if (strcmp(t->ids[i].id, id) == 0)
			return &t->ids[i];
	return NULL;
}

static struct track_id *add_id(struct track *t, const char *id, bool is_session)
{
	struct track_id *f = find_id(t, id);
	if (f != NULL || strlen(id) >= TRACK_ID_LEN || strcmp(id, "NOQUEUE") == 0)
		return f;
	if (t->n_ids >= TRACK_IDS_MAX) {
		t->full = true;
		return NULL;
	}
	if (t->n_ids % 64 == 0) {
		struct track_id *p = realloc(t->ids, (t->n_ids + 64) * sizeof(*p));
		if (p == NULL) {
			t->full = true;
			return NULL;
		}
		t->ids = p;
	}
	f = &t->ids[t->n_ids++];
	memset(f, 0, sizeof(*f));
	snprintf(f->id, sizeof(f->id), "%s", id);
	f->is_session = is_session;
	return f;
}

/* The value of "key=<...>" in text, into out; false when absent. */
static bool field_addr(const char *text, const char *key, char *out, size_t size)
{
	const char *p = strstr(text, key);
	while (p != NULL && p != text && p[-1] != ' ' && p[-1] != ',')
		p = strstr(p + 1, key);
	if (p == NULL)
		return false;
	p += strlen(key);
	size_t n = strcspn(p, ">");
	if (p[n] != '>' || n >= size)
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

/* "key=VALUE" up to a comma or the end. */
static bool field_word(const char *text, const char *key, char *out, size_t size)
{
	const char *p = strstr(text, key);
	while (p != NULL && p != text && p[-1] != ' ' && p[-1] != ',')
		p = strstr(p + 1, key);
	if (p == NULL)
		return false;
	p += strlen(key);
	size_t n = strcspn(p, ", \r\n");
	if (n >= size)
		n = size - 1;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

/* Does the line name the query: its id, a message-id, or an address? */
static bool names_query(const struct track *t, const struct line *l)
{
	char v[TRACK_ADDR_LEN];
	if (strcasecmp(l->id, t->query) == 0)
		return true;
	if (strncmp(l->text, "message-id=<", 12) == 0 &&
	    field_addr(l->text, "message-id=<", v, sizeof(v)) && strcmp(v, t->query) == 0)
		return true;
	static const char *const keys[] = { "from=<", "to=<", "orig_to=<" };
	for (size_t i = 0; i < 3; i++)
		if (field_addr(l->text, keys[i], v, sizeof(v)) && v[0] != '\0' &&
		    strcasecmp(v, t->query) == 0)
			return true;
	return false;
}

static void pass1_line(struct track *t, const struct line *l)
{
	struct track_id *f = find_id(t, l->id);
	if (f == NULL && strcmp(l->id, "NOQUEUE") != 0 && names_query(t, l))
		f = add_id(t, l->id, false);
	if (f == NULL || f->is_session)
		return;
	char v[TRACK_ID_LEN];
	/* the notices it caused (always logged after their cause) */
	const char *n = strstr(l->text, " notification: ");
	if (strncmp(l->text, "sender ", 7) == 0 && n != NULL) {
		snprintf(v, sizeof(v), "%.*s", (int)strcspn(n + 15, " \r\n"), n + 15);
		add_id(t, v, false);
	}
}

/* The sessions the messages came in on ("client=..., session=ID", which comes
 * before the lines that named the query). */
static void pass_sessions_line(struct track *t, const struct line *l)
{
	struct track_id *f = find_id(t, l->id);
	char v[TRACK_ID_LEN];
	if (f != NULL && !f->is_session && strncmp(l->text, "client=", 7) == 0 &&
	    field_word(l->text, "session=", v, sizeof(v)))
		add_id(t, v, true);
}

static const char *event_kind(const struct line *l, const struct track_id *f)
{
	const char *s = l->text;
	if (f == NULL)
		return "rejected";            /* a NOQUEUE line */
	if (strncmp(s, "connect from ", 13) == 0)
		return "connect";
	if (strncmp(s, "disconnect from ", 16) == 0)
		return "disconnect";
	if (strncmp(s, "client=", 7) == 0)
		return "received";
	if (strncmp(s, "message-id=", 11) == 0)
		return "message-id";
	if (strncmp(s, "from=<", 6) == 0)
		return "queued";
	if (strncmp(s, "to=<", 4) == 0) {
		if (strstr(s, ", status=sent") != NULL)
			return "delivered";
		if (strstr(s, ", status=deferred") != NULL)
			return "deferred";
		if (strstr(s, ", status=bounced") != NULL)
			return "bounced";
		return "delivery";
	}
	if (strncmp(s, "reject: ", 8) == 0)
		return "rejected";
	if (strncmp(s, "hold: ", 6) == 0 || strncmp(s, "discard: ", 9) == 0)
		return "policy";
	if (strncmp(s, "sender ", 7) == 0 && strstr(s, " notification: ") != NULL)
		return "notice";
	if (strncmp(s, "removed", 7) == 0 && (s[7] == '\0' || s[7] == '\n' || s[7] == '\r'))
		return "removed";
	return "info";
}

static void remember(struct track_id *f, const struct line *l, const char *kind)
{
	if (f->first[0] == '\0')
		snprintf(f->first, sizeof(f->first), "%s", l->time);
	snprintf(f->last, sizeof(f->last), "%s", l->time);
	if (strcmp(kind, "received") == 0)
		snprintf(f->client, sizeof(f->client), "%.*s", (int)strcspn(l->text + 7, ","),
			 l->text + 7);
	else if (strcmp(kind, "queued") == 0)
		field_addr(l->text, "from=<", f->from, sizeof(f->from));
	if (strncmp(l->text, "to=<", 4) != 0)
		return;
	char to[TRACK_ADDR_LEN], status[16];
	if (!field_addr(l->text, "to=<", to, sizeof(to)) ||
	    !field_word(l->text, "status=", status, sizeof(status)))
		return;
	for (size_t i = 0; i < f->n_rcpts; i++)
		if (strcmp(f->rcpts[i].to, to) == 0) {
			snprintf(f->rcpts[i].status, sizeof(f->rcpts[i].status), "%s", status);
			return;
		}
	if (f->rcpts == NULL)
		f->rcpts = calloc(TRACK_RCPTS_MAX, sizeof(*f->rcpts));
	if (f->rcpts == NULL || f->n_rcpts >= TRACK_RCPTS_MAX)
		return;
	snprintf(f->rcpts[f->n_rcpts].to, TRACK_ADDR_LEN, "%s", to);
	snprintf(f->rcpts[f->n_rcpts].status, sizeof(f->rcpts[0].status), "%s", status);
	f->n_rcpts++;
}

static void pass2_line(struct track *t, const struct line *l)
{
	struct track_id *f = find_id(t, l->id);
	if (f == NULL && !(strcmp(l->id, "NOQUEUE") == 0 && names_query(t, l)))
		return;
	const char *kind = event_kind(l, f);
	if (f != NULL) {
		remember(f, l, kind);
		f->seen = true;
	}
	size_t len = strcspn(l->text, "\r\n");
	if (t->json) {
		printf("%s{\"time\":", t->events ? "," : "");
		ctl_json_str(stdout, l->time);
		printf(",\"id\":");
		ctl_json_str(stdout, l->id);
		printf(",\"program\":");
		ctl_json_str(stdout, l->program);
		printf(",\"event\":\"%s\",\"text\":", kind);
		ctl_json_strn(stdout, l->text, len);
		printf("}");
	} else {
		printf("%-15s  %-16s %-10s %-7s %.*s\n", l->time, l->id, kind, l->program, (int)len,
		       l->text);
	}
	t->events++;
}

static int each_line(FILE *fp, struct track *t, void (*fn)(struct track *t, const struct line *l))
{
	char buf[TRACK_LINE_MAX];
	bool skipping = false;
	while (fgets(buf, sizeof(buf), fp) != NULL) {
		size_t n = strlen(buf);
		bool whole = (n > 0 && buf[n - 1] == '\n') || feof(fp);
		if (skipping || !whole) {
			skipping = !whole;   /* an overlong line, up to its end */
			continue;
		}
		struct line l;
		if (parse_line(buf, &l) == 0 && in_range(t, &l))
			fn(t, &l);
	}
	return ferror(fp) ? -1 : 0;
}

static void summary(const struct track *t)
{
	if (t->json)
		printf("],\"messages\":[");
	else
		printf("\n");
	size_t k = 0;
	for (size_t i = 0; i < t->n_ids; i++) {
		const struct track_id *f = &t->ids[i];
		if (f->is_session || !f->seen)
			continue;
		if (t->json) {
			printf("%s{\"id\":", k++ ? "," : "");
			ctl_json_str(stdout, f->id);
			printf(",\"from\":");
			ctl_json_str(stdout, f->from);
			printf(",\"client\":");
			ctl_json_str(stdout, f->client[0] ? f->client : NULL);
			printf(",\"first\":");
			ctl_json_str(stdout, f->first);
			printf(",\"last\":");
			ctl_json_str(stdout, f->last);
			printf(",\"recipients\":[");
			for (size_t r = 0; r < f->n_rcpts; r++) {
				printf("%s{\"to\":", r ? "," : "");
				ctl_json_str(stdout, f->rcpts[r].to);
				printf(",\"status\":");
				ctl_json_str(stdout, f->rcpts[r].status);
				printf("}");
			}
			printf("]}");
			continue;
		}
		printf("%s: from <%s>%s%s%s, %s - %s:", f->id, f->from, f->client[0] ? " (received from " : "",
		       f->client, f->client[0] ? ")" : "", f->first, f->last);
		for (size_t r = 0; r < f->n_rcpts; r++)
			printf("%s <%s> %s", r ? "," : "", f->rcpts[r].to, f->rcpts[r].status);
		printf("%s\n", f->n_rcpts == 0 ? " no delivery logged" : "");
	}
	if (t->json)
		printf("]}\n");
}

int ctl_cmd_track(struct ctl_options *opts, int argc, char **argv)
{
	if (argc != 1 || argv[0][0] == '\0') {
		fprintf(stderr, "usage: warrenctl track [--log FILE] [--since TIME] [--until TIME] "
			"QUEUEID|MESSAGE-ID|ADDRESS\n");
		return 2;
	}
	char query[TRACK_ADDR_LEN];
	const char *q = argv[0];
	size_t len = strlen(q);
	if (q[0] == '<' && len >= 2 && q[len - 1] == '>')
		q++, len -= 2;
	if (len == 0 || len >= sizeof(query)) {
		fprintf(stderr, "warrenctl track: \"%s\" is empty or too long\n", argv[0]);
		return 2;
	}
	memcpy(query, q, len);
	query[len] = '\0';
	struct track t = { .query = query, .json = opts->json, .now = time(NULL) };
	if ((opts->since != NULL && parse_when(opts->since, t.now, &t.since) < 0) ||
	    (opts->until != NULL && parse_when(opts->until, t.now, &t.until) < 0)) {
		fprintf(stderr, "warrenctl track: a time is \"YYYY-MM-DD[ HH:MM[:SS]]\" or "
			"\"HH:MM[:SS]\" (today)\n");
		return 2;
	}
	const char *path = opts->log_file != NULL ? opts->log_file : TRACK_DEFAULT_LOG;
	FILE *fp = fopen(path, "r");
	if (fp == NULL) {
		fprintf(stderr, "warrenctl track: %s: %s (give the log with --log FILE)\n", path,
			strerror(errno));
		return 1;
	}
	int ret = each_line(fp, &t, pass1_line);
	if (ret == 0) {
		rewind(fp);
		ret = each_line(fp, &t, pass_sessions_line);
	}
	if (ret == 0) {
		rewind(fp);
		if (t.json) {
			printf("{\"query\":");
			ctl_json_str(stdout, query);
			printf(",\"log\":");
			ctl_json_str(stdout, path);
			printf(",\"events\":[");
		}
		ret = each_line(fp, &t, pass2_line);
	}
	if (ret < 0)
		fprintf(stderr, "warrenctl track: %s: %s\n", path, strerror(errno));
	fclose(fp);
	if (ret == 0 && (t.json || t.events > 0))
		summary(&t);
	if (t.full)
		fprintf(stderr, "warrenctl track: more than %d messages match; the rest were left "
			"out (narrow the query)\n", TRACK_IDS_MAX);
	for (size_t i = 0; i < t.n_ids; i++)
		free(t.ids[i].rcpts);
	free(t.ids);
	if (ret < 0)
		return 1;
	if (t.events == 0) {
		fprintf(stderr, "warrenctl track: nothing about %s in %s\n", query, path);
		return 1;
	}
	return 0;
}
