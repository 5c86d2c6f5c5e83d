/* loadclient.h — what the load generators bench/imapload and bench/pop3load share:
 * the common options, user names, the clock, and a blocking line-buffered client
 * connection. */
#ifndef WARREN_BENCH_LOADCLIENT_H
#define WARREN_BENCH_LOADCLIENT_H

#include <stddef.h>
#include <stdint.h>

/* -H host -p port -u user-format -w password -c clients -f first-user */
struct load_options {
	const char *host;
	int port;
	const char *user;            /* "imap%d@bench.test": %d is the user's number */
	const char *pass;
	int clients;
	int first_user;
	int sources;                 /* source addresses 127.0.0.1 .. 127.0.0.N */
};
#define LOAD_OPTSTRING "H:p:u:w:c:f:"
#define LOAD_OPTIONS_INIT(port_, user_) \
	{ "127.0.0.1", (port_), (user_), "secret", 10, 1, 1 }

/* Takes one of LOAD_OPTSTRING's options: 1 if ch was one, else 0. */
int load_option(struct load_options *o, int ch, const char *arg);

/* The user name of number n: the user format with its "%d" replaced. */
void load_user_name(char *buf, size_t size, const char *fmt, int n);
/* Seconds on the monotonic clock. */
double load_now(void);
/* qsort comparison of uint32_t. */
int load_cmp_u32(const void *a, const void *b);

#define LOAD_RBUF 65536
#define LOAD_LINE_MAX 8192
struct load_conn {
	int fd;
	char rbuf[LOAD_RBUF];
	size_t rpos, rlen;
	char line[LOAD_LINE_MAX];
	size_t line_size;            /* lines are cut at line_size - 1 (0: LOAD_LINE_MAX) */
	unsigned long bytes;         /* bytes of the lines read (as cut, with CRLF) */
};

/* A TCP connection (TCP_NODELAY) to o->host:o->port, from 127.0.0.(1 + source %
 * o->sources) when o->sources > 1; c is cleared first. -1 on failure (fd -1). */
int load_connect(struct load_conn *c, const struct load_options *o, int source);
/* More input into rbuf; -1 at the end of the connection. */
int load_fill(struct load_conn *c);
/* One line without CRLF into c->line (cut at its size; the rest is consumed).
 * Returns its length or -1. */
long load_line(struct load_conn *c);
/* Skips n bytes of input. */
int load_skip(struct load_conn *c, size_t n);
int load_write(struct load_conn *c, const char *buf, size_t len);
void load_close(struct load_conn *c);

#endif
