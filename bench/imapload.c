/* imapload.c — an IMAP load generator for bench/compare.py, modelled on
 * imaptest's default mix (many clients, each logging in, selecting, fetching
 * headers and bodies, searching, storing flags, appending, expunging, idling).
 *
 *   imapload -H 127.0.0.1 -p PORT -u 'imap%d@bench.test' -w secret -c 10 -t 20   load
 *   imapload ... -P 200        populate: APPEND 200 messages to each of the -c users
 *   imapload ... -I 10000      idle: open 10000 sessions (LOGIN, SELECT, IDLE), print
 *                              "ready N", hold them until stdin closes; -T 300 stops
 *                              opening after 300 s, -m 4096 when MemAvailable < 4 GB
 *
 * Load: each of -c threads is one client with its own user (user 1..c), so one
 * client's expunges never race another's fetches. A client runs sessions until
 * the time is up: connect + LOGIN, SELECT INBOX, then -r rounds of
 *   FETCH 10 messages' headers (UID FLAGS RFC822.SIZE INTERNALDATE and 5 header fields),
 *   FETCH one message's body (BODY.PEEK[]),
 *   SEARCH UNSEEN FROM "..." (header search),
 *   STORE +FLAGS / -FLAGS (\Seen) on a message,
 *   APPEND a 4 KB message,
 *   STORE +FLAGS.SILENT (\Deleted) on a message, then EXPUNGE,
 *   IDLE, then DONE as soon as the server said "+ idling",
 * then LOGOUT. Each command is one operation, timed from its first byte sent to
 * its tagged reply (LOGIN includes connect and greeting). Printed: operations
 * per second over all clients, p50/p99 overall and per command, failures.
 * The mailbox size stays stable (one APPEND, one EXPUNGE per round).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "loadclient.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

enum op {
	OP_LOGIN, OP_SELECT, OP_FETCH_HDR, OP_FETCH_BODY, OP_SEARCH, OP_STORE,
	OP_APPEND, OP_EXPUNGE, OP_IDLE, OP_LOGOUT, OP_COUNT,
};
static const char *op_names[OP_COUNT] = {
	"login", "select", "fetch-hdr", "fetch-body", "search", "store",
	"append", "expunge", "idle", "logout",
};

struct samples {
	uint32_t *us;
	size_t n, cap;
};

static void samples_add(struct samples *s, uint32_t us)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->us = realloc(s->us, s->cap * sizeof(*s->us));
		if (!s->us) { perror("realloc"); exit(2); }
	}
	s->us[s->n++] = us;
}

static struct load_options opt = LOAD_OPTIONS_INIT(143, "imap%d@bench.test");
static double opt_seconds = 10;
static int opt_rounds = 5;
static int opt_populate;
static int opt_idle;
static long opt_mem_floor_mb = 2048; /* idle: stop opening when MemAvailable is below */
static double opt_idle_limit_s;      /* idle: stop opening after this long (0: never) */
static unsigned opt_seed = 1;

/* ---- one connection ---- */

struct conn {
	struct load_conn io;
	unsigned tag;
	long exists;
};

/* A literal announced at the end of a line, "{123}": its size, else -1. */
static long line_literal(const char *line, long len)
{
	if (len < 3 || line[len - 1] != '}')
		return -1;
	long i = len - 2;
	while (i >= 0 && line[i] >= '0' && line[i] <= '9')
		i--;
	if (i < 0 || line[i] != '{' || i == len - 2)
		return -1;
	return strtol(line + i + 1, NULL, 10);
}

static void note_untagged(struct conn *c, const char *line)
{
	char *end;
	long n = strtol(line + 2, &end, 10);
	if (end == line + 2)
		return;
	if (!strcmp(end, " EXISTS"))
		c->exists = n;
	else if (!strcmp(end, " EXPUNGE") && c->exists > 0)
		c->exists--;
}

/* Reads responses until the tagged reply to tag; 0 for OK, 1 for NO/BAD,
 * -1 for a lost connection. stop_at_plus: return 2 at a "+" continuation. */
static int conn_wait(struct conn *c, unsigned tag, int stop_at_plus)
{
	char want[16];
	int wl = snprintf(want, sizeof(want), "a%u ", tag);
	for (;;) {
		long len = load_line(&c->io);
		if (len < 0)
			return -1;
		if (c->io.line[0] == '+' && stop_at_plus)
			return 2;
		if (!strncmp(c->io.line, want, (size_t)wl))
			return strncmp(c->io.line + wl, "OK", 2) ? 1 : 0;
		/* an untagged line, possibly with literals inside */
		if (c->io.line[0] == '*')
			note_untagged(c, c->io.line);
		long lit;
		while ((lit = line_literal(c->io.line, len)) >= 0) {
			if (load_skip(&c->io, (size_t)lit) < 0)
				return -1;
			len = load_line(&c->io);   /* the rest of the response */
			if (len < 0)
				return -1;
		}
	}
}

__attribute__((format(printf, 2, 3)))
static int conn_cmd(struct conn *c, const char *fmt, ...)
{
	char buf[1024];
	unsigned tag = ++c->tag;
	int n = snprintf(buf, sizeof(buf), "a%u ", tag);
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 2, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 3)
		n = (int)sizeof(buf) - 3;
	buf[n++] = '\r';
	buf[n++] = '\n';
	if (load_write(&c->io, buf, (size_t)n) < 0)
		return -1;
	return conn_wait(c, tag, 0);
}

static int conn_open(struct conn *c, int source)
{
	memset(c, 0, sizeof(*c));
	if (load_connect(&c->io, &opt, source) < 0)
		return -1;
	if (load_line(&c->io) < 0 || strncmp(c->io.line, "* OK", 4)) {
		load_close(&c->io);
		return -1;
	}
	return 0;
}

static int conn_login(struct conn *c, int user, int source)
{
	if (conn_open(c, source) < 0)
		return -1;
	char name[256];
	load_user_name(name, sizeof(name), opt.user, user);
	return conn_cmd(c, "LOGIN \"%s\" \"%s\"", name, opt.pass);
}

static void conn_close(struct conn *c)
{
	load_close(&c->io);
}

/* ---- messages ---- */

static const char *words[] = {
	"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
	"india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
	"quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey", "yankee",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

/* A message of about size bytes with CRLF lines; returns its length. */
static size_t make_message(char *buf, size_t size, unsigned seq, unsigned *rnd)
{
	size_t n = (size_t)snprintf(buf, size,
		"From: sender%u <sender%u@example.net>\r\n"
		"To: someone@bench.test\r\n"
		"Subject: %s %s message %u\r\n"
		"Date: Tue, 1 Dec 2026 12:%02u:%02u +0000\r\n"
		"Message-ID: <%u.%u@imapload.bench>\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=us-ascii\r\n\r\n",
		seq % 10, seq % 10, words[seq % NWORDS], words[(seq / 7) % NWORDS], seq,
		(seq / 60) % 60, seq % 60, seq, rand_r(rnd));
	size_t col = 0;
	while (n + 16 < size) {
		const char *w = words[(unsigned)rand_r(rnd) % NWORDS];
		size_t wl = strlen(w);
		memcpy(buf + n, w, wl);
		n += wl;
		col += wl + 1;
		if (col > 68) {
			buf[n++] = '\r';
			buf[n++] = '\n';
			col = 0;
		} else {
			buf[n++] = ' ';
		}
	}
	buf[n++] = '\r';
	buf[n++] = '\n';
	return n;
}

static int conn_append(struct conn *c, unsigned seq, unsigned *rnd)
{
	char msg[4200], head[128];
	size_t len = make_message(msg, 4096, seq, rnd);
	unsigned tag = ++c->tag;
	int hn = snprintf(head, sizeof(head), "a%u APPEND INBOX %s{%zu}\r\n",
			  tag, seq % 3 ? "" : "(\\Seen) ", len);
	if (load_write(&c->io, head, (size_t)hn) < 0)
		return -1;
	int r = conn_wait(c, tag, 1);
	if (r != 2)
		return r;
	memcpy(msg + len, "\r\n", 2);
	if (load_write(&c->io, msg, len + 2) < 0)
		return -1;
	return conn_wait(c, tag, 0);
}

static int conn_idle(struct conn *c)
{
	char buf[32];
	unsigned tag = ++c->tag;
	int n = snprintf(buf, sizeof(buf), "a%u IDLE\r\n", tag);
	if (load_write(&c->io, buf, (size_t)n) < 0)
		return -1;
	int r = conn_wait(c, tag, 1);
	if (r != 2)
		return r < 0 ? -1 : 1;
	if (load_write(&c->io, "DONE\r\n", 6) < 0)
		return -1;
	return conn_wait(c, tag, 0);
}

/* ---- load ---- */

struct client {
	pthread_t thread;
	int user;
	unsigned rnd;
	struct samples lat[OP_COUNT];
	unsigned long fails[OP_COUNT];
	unsigned long sessions;
	double deadline;
};

static void timed(struct client *cl, enum op op, double t0, int r)
{
	if (r == 0)
		samples_add(&cl->lat[op], (uint32_t)((load_now() - t0) * 1e6));
	else
		cl->fails[op]++;
}

static void *client_load(void *arg)
{
	struct client *cl = arg;
	struct conn *c = malloc(sizeof(*c));
	unsigned seq = (unsigned)cl->user * 100000u;
	while (load_now() < cl->deadline) {
		double t0 = load_now();
		int r = conn_login(c, cl->user, cl->user);
		timed(cl, OP_LOGIN, t0, r);
		if (r != 0) {
			conn_close(c);
			usleep(100000);
			continue;
		}
		cl->sessions++;
		t0 = load_now();
		r = conn_cmd(c, "SELECT INBOX");
		timed(cl, OP_SELECT, t0, r);
		for (int round = 0; r >= 0 && round < opt_rounds && load_now() < cl->deadline; round++) {
			long ex = c->exists > 0 ? c->exists : 1;
			long m = 1 + (long)((unsigned)rand_r(&cl->rnd) % (unsigned long)ex);
			long m2 = m + 9 > ex ? ex : m + 9;
			t0 = load_now();
			r = conn_cmd(c, "FETCH %ld:%ld (UID FLAGS RFC822.SIZE INTERNALDATE "
				     "BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE MESSAGE-ID)])", m, m2);
			timed(cl, OP_FETCH_HDR, t0, r);
			if (r < 0) break;
			m = 1 + (long)((unsigned)rand_r(&cl->rnd) % (unsigned long)ex);
			t0 = load_now();
			r = conn_cmd(c, "FETCH %ld (UID BODY.PEEK[])", m);
			timed(cl, OP_FETCH_BODY, t0, r);
			if (r < 0) break;
			t0 = load_now();
			r = conn_cmd(c, "SEARCH UNSEEN FROM \"sender%u\"", (unsigned)rand_r(&cl->rnd) % 10);
			timed(cl, OP_SEARCH, t0, r);
			if (r < 0) break;
			m = 1 + (long)((unsigned)rand_r(&cl->rnd) % (unsigned long)ex);
			t0 = load_now();
			r = conn_cmd(c, "STORE %ld %cFLAGS (\\Seen)", m, round % 2 ? '-' : '+');
			timed(cl, OP_STORE, t0, r);
			if (r < 0) break;
			t0 = load_now();
			r = conn_append(c, seq++, &cl->rnd);
			timed(cl, OP_APPEND, t0, r);
			if (r < 0) break;
			ex = c->exists > 0 ? c->exists : 1;
			m = 1 + (long)((unsigned)rand_r(&cl->rnd) % (unsigned long)ex);
			t0 = load_now();
			r = conn_cmd(c, "STORE %ld +FLAGS.SILENT (\\Deleted)", m);
			timed(cl, OP_STORE, t0, r);
			if (r < 0) break;
			t0 = load_now();
			r = conn_cmd(c, "EXPUNGE");
			timed(cl, OP_EXPUNGE, t0, r);
			if (r < 0) break;
			t0 = load_now();
			r = conn_idle(c);
			timed(cl, OP_IDLE, t0, r);
		}
		if (r >= 0) {
			t0 = load_now();
			r = conn_cmd(c, "LOGOUT");
			timed(cl, OP_LOGOUT, t0, r);
		}
		conn_close(c);
	}
	free(c);
	return NULL;
}

static double pct(const struct samples *s, double p)
{
	if (!s->n)
		return 0;
	size_t i = (size_t)(p * (double)(s->n - 1) + 0.5);
	return s->us[i] / 1000.0;
}

static int run_load(void)
{
	struct client *cls = calloc((size_t)opt.clients, sizeof(*cls));
	double t0 = load_now();
	for (int i = 0; i < opt.clients; i++) {
		cls[i].user = opt.first_user + i;
		cls[i].rnd = opt_seed * 7919u + (unsigned)i;
		cls[i].deadline = t0 + opt_seconds;
		pthread_create(&cls[i].thread, NULL, client_load, &cls[i]);
	}
	for (int i = 0; i < opt.clients; i++)
		pthread_join(cls[i].thread, NULL);
	double elapsed = load_now() - t0;
	struct samples all = { 0 }, per[OP_COUNT] = { { 0 } };
	unsigned long fails = 0, sessions = 0;
	for (int i = 0; i < opt.clients; i++) {
		sessions += cls[i].sessions;
		for (int o = 0; o < OP_COUNT; o++) {
			for (size_t k = 0; k < cls[i].lat[o].n; k++) {
				samples_add(&all, cls[i].lat[o].us[k]);
				samples_add(&per[o], cls[i].lat[o].us[k]);
			}
			fails += cls[i].fails[o];
		}
	}
	qsort(all.us, all.n, sizeof(*all.us), load_cmp_u32);
	printf("imapload: clients=%d seconds=%.1f rounds=%d elapsed=%.2f sessions=%lu\n",
	       opt.clients, opt_seconds, opt_rounds, elapsed, sessions);
	printf("%-11s %9s %9s %9s %9s %6s\n", "command", "ops", "ops/s", "p50 ms", "p99 ms", "fails");
	for (int o = 0; o < OP_COUNT; o++) {
		qsort(per[o].us, per[o].n, sizeof(*per[o].us), load_cmp_u32);
		unsigned long f = 0;
		for (int i = 0; i < opt.clients; i++)
			f += cls[i].fails[o];
		printf("%-11s %9zu %9.1f %9.2f %9.2f %6lu\n", op_names[o], per[o].n,
		       per[o].n / elapsed, pct(&per[o], 0.5), pct(&per[o], 0.99), f);
	}
	printf("RESULT ops=%zu ops_per_s=%.1f p50_ms=%.3f p99_ms=%.3f fails=%lu\n",
	       all.n, all.n / elapsed, pct(&all, 0.5), pct(&all, 0.99), fails);
	return fails > all.n / 100 ? 1 : 0;
}

/* ---- populate ---- */

static void *client_populate(void *arg)
{
	struct client *cl = arg;
	struct conn *c = malloc(sizeof(*c));
	if (conn_login(c, cl->user, 0) != 0) {
		fprintf(stderr, "imapload: login of user %d failed: %s\n", cl->user, c->io.line);
		cl->fails[OP_LOGIN]++;
		free(c);
		return NULL;
	}
	for (int i = 0; i < opt_populate; i++)
		if (conn_append(c, (unsigned)(cl->user * 100000 + i), &cl->rnd) != 0) {
			cl->fails[OP_APPEND]++;
			fprintf(stderr, "imapload: APPEND failed: %s\n", c->io.line);
			break;
		}
	conn_cmd(c, "LOGOUT");
	conn_close(c);
	free(c);
	return NULL;
}

static int run_populate(void)
{
	struct client *cls = calloc((size_t)opt.clients, sizeof(*cls));
	double t0 = load_now();
	for (int i = 0; i < opt.clients; i++) {
		cls[i].user = opt.first_user + i;
		cls[i].rnd = opt_seed + (unsigned)i;
		pthread_create(&cls[i].thread, NULL, client_populate, &cls[i]);
	}
	int fails = 0;
	for (int i = 0; i < opt.clients; i++) {
		pthread_join(cls[i].thread, NULL);
		fails += (int)(cls[i].fails[OP_LOGIN] + cls[i].fails[OP_APPEND]);
	}
	printf("imapload: populated %d users with %d messages in %.2f s%s\n", opt.clients,
	       opt_populate, load_now() - t0, fails ? " (with failures)" : "");
	return fails ? 1 : 0;
}

/* ---- idle ---- */

#define IDLE_THREADS 4
struct idler {
	pthread_t thread;
	int first, count, opened, failed;
};
static volatile int idle_stop;
static double idle_deadline;

static long mem_available_mb(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long kb = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb < 0 ? 1L << 30 : kb / 1024;
}

static void *client_idle(void *arg)
{
	struct idler *id = arg;
	for (int i = id->first; i < id->first + id->count && !idle_stop; i++) {
		if (opt_idle_limit_s > 0 && load_now() > idle_deadline) {
			if (!idle_stop)
				fprintf(stderr, "imapload: %.0f s are up: stopping\n", opt_idle_limit_s);
			idle_stop = 1;
			break;
		}
		if (i % 100 == 0 && mem_available_mb() < opt_mem_floor_mb) {
			fprintf(stderr, "imapload: MemAvailable below %ld MB: stopping at %d\n",
				opt_mem_floor_mb, i);
			idle_stop = 1;
			break;
		}
		struct conn *c = malloc(sizeof(*c));
		int user = opt.first_user + i % opt.clients;
		int ok = conn_login(c, user, i) == 0 && conn_cmd(c, "SELECT INBOX") == 0;
		if (ok) {
			char buf[32];
			int n = snprintf(buf, sizeof(buf), "a%u IDLE\r\n", ++c->tag);
			ok = load_write(&c->io, buf, (size_t)n) == 0 && conn_wait(c, c->tag, 1) == 2;
		}
		if (ok) {
			id->opened++;
		} else {
			id->failed++;
			if (id->failed <= 3)
				fprintf(stderr, "imapload: idle session %d failed: %s\n", i, c->io.line);
			conn_close(c);
		}
		free(c);   /* the socket stays open until the process exits */
	}
	return NULL;
}

static int run_idle(void)
{
	struct idler ids[IDLE_THREADS];
	double t0 = load_now();
	idle_deadline = t0 + opt_idle_limit_s;
	int per = (opt_idle + IDLE_THREADS - 1) / IDLE_THREADS;
	for (int t = 0; t < IDLE_THREADS; t++) {
		ids[t] = (struct idler){ .first = t * per, .count = per };
		if (ids[t].first + per > opt_idle)
			ids[t].count = opt_idle - ids[t].first > 0 ? opt_idle - ids[t].first : 0;
		pthread_create(&ids[t].thread, NULL, client_idle, &ids[t]);
	}
	int opened = 0, failed = 0;
	for (int t = 0; t < IDLE_THREADS; t++) {
		pthread_join(ids[t].thread, NULL);
		opened += ids[t].opened;
		failed += ids[t].failed;
	}
	printf("ready %d failed %d seconds %.1f\n", opened, failed, load_now() - t0);
	fflush(stdout);
	char b[64];
	while (read(0, b, sizeof(b)) > 0)
		;
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: imapload [-H host] [-p port] [-u user-format] [-w password] [-c clients]\n"
		"                [-f first-user] [-t seconds] [-r rounds] [-s source-addresses]\n"
		"                [-S seed] [-P messages | -I sessions [-m mem-floor-MB] [-T seconds]]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int ch;
	while ((ch = getopt(argc, argv, LOAD_OPTSTRING "t:r:s:S:P:I:m:T:")) != -1) {
		if (load_option(&opt, ch, optarg))
			continue;
		switch (ch) {
		case 't': opt_seconds = atof(optarg); break;
		case 'r': opt_rounds = atoi(optarg); break;
		case 's': opt.sources = atoi(optarg); break;
		case 'S': opt_seed = (unsigned)atoi(optarg); break;
		case 'P': opt_populate = atoi(optarg); break;
		case 'I': opt_idle = atoi(optarg); break;
		case 'm': opt_mem_floor_mb = atol(optarg); break;
		case 'T': opt_idle_limit_s = atof(optarg); break;
		default: usage();
		}
	}
	if (opt.clients < 1 || opt.port < 1 || opt.sources < 1 || opt.sources > 250)
		usage();
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (opt_populate)
		return run_populate();
	if (opt_idle)
		return run_idle();
	return run_load();
}
