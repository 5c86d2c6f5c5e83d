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
#include "loadclient.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct load_options opt = LOAD_OPTIONS_INIT(110, "pop%d@bench.test");

struct client {
	pthread_t thread;
	int user;
	struct load_conn io;
	unsigned long msgs, bytes;
	uint32_t *lat;
	size_t nlat;
	int failed;
};

static int cl_cmd(struct client *c, const char *cmd)
{
	if (load_write(&c->io, cmd, strlen(cmd)) < 0)
		return -1;
	if (load_line(&c->io) < 0)
		return -1;
	return strncmp(c->io.line, "+OK", 3) ? 1 : 0;
}

static void *client_run(void *arg)
{
	struct client *c = arg;
	char cmd[512], name[256];
	c->io.line_size = 4096;
	if (load_connect(&c->io, &opt, 0) < 0 || load_line(&c->io) < 0)
		goto fail;
	load_user_name(name, sizeof(name), opt.user, c->user);
	snprintf(cmd, sizeof(cmd), "USER %s\r\n", name);
	if (cl_cmd(c, cmd) != 0)
		goto fail;
	snprintf(cmd, sizeof(cmd), "PASS %s\r\n", opt.pass);
	if (cl_cmd(c, cmd) != 0 || cl_cmd(c, "STAT\r\n") != 0)
		goto fail;
	long n = strtol(c->io.line + 4, NULL, 10);
	c->lat = calloc((size_t)n + 1, sizeof(*c->lat));
	for (long i = 1; i <= n; i++) {
		double t0 = load_now();
		snprintf(cmd, sizeof(cmd), "RETR %ld\r\n", i);
		if (cl_cmd(c, cmd) != 0)
			goto fail;
		for (;;) {
			long len = load_line(&c->io);
			if (len < 0)
				goto fail;
			if (len == 1 && c->io.line[0] == '.')
				break;
		}
		c->lat[c->nlat++] = (uint32_t)((load_now() - t0) * 1e6);
		c->msgs++;
	}
	cl_cmd(c, "QUIT\r\n");
	c->bytes = c->io.bytes;
	load_close(&c->io);
	return NULL;
fail:
	fprintf(stderr, "pop3load: user %d failed: %s\n", c->user, c->io.line);
	c->failed = 1;
	c->bytes = c->io.bytes;
	load_close(&c->io);
	return NULL;
}

int main(int argc, char **argv)
{
	int ch;
	while ((ch = getopt(argc, argv, LOAD_OPTSTRING)) != -1) {
		if (!load_option(&opt, ch, optarg)) {
			fprintf(stderr, "usage: pop3load [-H host] [-p port] [-u user-format] "
				"[-w password] [-c clients] [-f first-user]\n");
			return 2;
		}
	}
	if (opt.clients < 1)
		return 2;
	struct client *cls = calloc((size_t)opt.clients, sizeof(*cls));
	double t0 = load_now();
	for (int i = 0; i < opt.clients; i++) {
		cls[i].user = opt.first_user + i;
		pthread_create(&cls[i].thread, NULL, client_run, &cls[i]);
	}
	unsigned long msgs = 0, bytes = 0;
	int failed = 0;
	size_t nlat = 0;
	for (int i = 0; i < opt.clients; i++) {
		pthread_join(cls[i].thread, NULL);
		msgs += cls[i].msgs;
		bytes += cls[i].bytes;
		failed += cls[i].failed;
		nlat += cls[i].nlat;
	}
	double elapsed = load_now() - t0;
	uint32_t *all = calloc(nlat + 1, sizeof(*all));
	size_t k = 0;
	for (int i = 0; i < opt.clients; i++)
		for (size_t j = 0; j < cls[i].nlat; j++)
			all[k++] = cls[i].lat[j];
	qsort(all, nlat, sizeof(*all), load_cmp_u32);
	double p50 = nlat ? all[(size_t)(0.5 * (double)(nlat - 1) + 0.5)] / 1000.0 : 0;
	double p99 = nlat ? all[(size_t)(0.99 * (double)(nlat - 1) + 0.5)] / 1000.0 : 0;
	printf("RESULT clients=%d msgs=%lu bytes=%lu seconds=%.3f msgs_per_s=%.1f "
	       "p50_ms=%.3f p99_ms=%.3f failed=%d\n", opt.clients, msgs, bytes, elapsed,
	       msgs / elapsed, p50, p99, failed);
	return failed ? 1 : 0;
}
