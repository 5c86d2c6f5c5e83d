/* pop3load.c — POP3 retrieval for bench/compare.py.
 *
 *   pop3load -H 127.0.0.1 -p PORT -u 'pop%d@bench.test' -w secret -c 10
 *
 * -c clients at once, each with its own user (1..c): connect, USER, PASS, STAT,
 * RETR 1..N (every message, read to the final "."), QUIT — nothing deleted, so a
 * run can be repeated. Printed: messages and bytes retrieved, the wall time from
 * the first connect to the last QUIT, messages per second, and p50/p99 of RETR.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *opt_host = "127.0.0.1";
static int opt_port = 110;
static const char *opt_user = "pop%d@bench.test";
static const char *opt_pass = "secret";
static int opt_clients = 10;
static int opt_first_user = 1;

/* The user name of number n: the user format with its "%d" replaced. */
static void user_name(char *buf, size_t size, const char *fmt, int n)
{
	const char *d = strstr(fmt, "%d");
	if (!d)
		snprintf(buf, size, "%s", fmt);
	else
		snprintf(buf, size, "%.*s%d%s", (int)(d - fmt), fmt, n, d + 2);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#define RBUF 65536
struct client {
	pthread_t thread;
	int user, fd;
	char rbuf[RBUF];
	size_t rpos, rlen;
	char line[4096];
	unsigned long msgs, bytes;
	uint32_t *lat;
	size_t nlat;
	int failed;
};

static long cl_line(struct client *c)
{
	size_t len = 0;
	for (;;) {
		if (c->rpos == c->rlen) {
			ssize_t n;
			do
				n = read(c->fd, c->rbuf, RBUF);
			while (n < 0 && errno == EINTR);
			if (n <= 0)
				return -1;
			c->rpos = 0;
			c->rlen = (size_t)n;
		}
		char *p = c->rbuf + c->rpos;
		size_t avail = c->rlen - c->rpos;
		char *nl = memchr(p, '\n', avail);
		size_t take = nl ? (size_t)(nl - p) + 1 : avail;
		size_t copy = take;
		if (len + copy > sizeof(c->line) - 1)
			copy = sizeof(c->line) - 1 - len;
		memcpy(c->line + len, p, copy);
		len += copy;
		c->rpos += take;
		if (nl)
			break;
	}
	c->bytes += len;
	while (len && (c->line[len - 1] == '\n' || c->line[len - 1] == '\r'))
		len--;
	c->line[len] = 0;
	return (long)len;
}

static int cl_cmd(struct client *c, const char *cmd)
{
	size_t len = strlen(cmd);
	if (write(c->fd, cmd, len) != (ssize_t)len)
		return -1;
	if (cl_line(c) < 0)
		return -1;
	return strncmp(c->line, "+OK", 3) ? 1 : 0;
}

static void *client_run(void *arg)
{
	struct client *c = arg;
	char cmd[512], name[256];
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opt_port) };
	inet_pton(AF_INET, opt_host, &sa.sin_addr);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || cl_line(c) < 0)
		goto fail;
	user_name(name, sizeof(name), opt_user, c->user);
	snprintf(cmd, sizeof(cmd), "USER %s\r\n", name);
	if (cl_cmd(c, cmd) != 0)
		goto fail;
	snprintf(cmd, sizeof(cmd), "PASS %s\r\n", opt_pass);
	if (cl_cmd(c, cmd) != 0 || cl_cmd(c, "STAT\r\n") != 0)
		goto fail;
	long n = strtol(c->line + 4, NULL, 10);
	c->lat = calloc((size_t)n + 1, sizeof(*c->lat));
	for (long i = 1; i <= n; i++) {
		double t0 = now_s();
		snprintf(cmd, sizeof(cmd), "RETR %ld\r\n", i);
		if (cl_cmd(c, cmd) != 0)
			goto fail;
		for (;;) {
			long len = cl_line(c);
			if (len < 0)
				goto fail;
			if (len == 1 && c->line[0] == '.')
				break;
		}
		c->lat[c->nlat++] = (uint32_t)((now_s() - t0) * 1e6);
		c->msgs++;
	}
	cl_cmd(c, "QUIT\r\n");
	close(c->fd);
	return NULL;
fail:
	fprintf(stderr, "pop3load: user %d failed: %s\n", c->user, c->line);
	c->failed = 1;
	close(c->fd);
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int ch;
	while ((ch = getopt(argc, argv, "H:p:u:w:c:f:")) != -1) {
		switch (ch) {
		case 'H': opt_host = optarg; break;
		case 'p': opt_port = atoi(optarg); break;
		case 'u': opt_user = optarg; break;
		case 'w': opt_pass = optarg; break;
		case 'c': opt_clients = atoi(optarg); break;
		case 'f': opt_first_user = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: pop3load [-H host] [-p port] [-u user-format] "
				"[-w password] [-c clients] [-f first-user]\n");
			return 2;
		}
	}
	if (opt_clients < 1)
		return 2;
	struct client *cls = calloc((size_t)opt_clients, sizeof(*cls));
	double t0 = now_s();
	for (int i = 0; i < opt_clients; i++) {
		cls[i].user = opt_first_user + i;
		pthread_create(&cls[i].thread, NULL, client_run, &cls[i]);
	}
	unsigned long msgs = 0, bytes = 0;
	int failed = 0;
	size_t nlat = 0;
	for (int i = 0; i < opt_clients; i++) {
		pthread_join(cls[i].thread, NULL);
		msgs += cls[i].msgs;
		bytes += cls[i].bytes;
		failed += cls[i].failed;
		nlat += cls[i].nlat;
	}
	double elapsed = now_s() - t0;
	uint32_t *all = calloc(nlat + 1, sizeof(*all));
	size_t k = 0;
	for (int i = 0; i < opt_clients; i++)
		for (size_t j = 0; j < cls[i].nlat; j++)
			all[k++] = cls[i].lat[j];
	qsort(all, nlat, sizeof(*all), cmp_u32);
	double p50 = nlat ? all[(size_t)(0.5 * (double)(nlat - 1) + 0.5)] / 1000.0 : 0;
	double p99 = nlat ? all[(size_t)(0.99 * (double)(nlat - 1) + 0.5)] / 1000.0 : 0;
	printf("RESULT clients=%d msgs=%lu bytes=%lu seconds=%.3f msgs_per_s=%.1f "
	       "p50_ms=%.3f p99_ms=%.3f failed=%d\n", opt_clients, msgs, bytes, elapsed,
	       msgs / elapsed, p50, p99, failed);
	return failed ? 1 : 0;
}
