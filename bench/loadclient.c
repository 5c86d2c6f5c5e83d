/* loadclient.c — the part bench/imapload and bench/pop3load share (loadclient.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "loadclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int load_option(struct load_options *o, int ch, const char *arg)
{
	switch (ch) {
	case 'H': o->host = arg; return 1;
	case 'p': o->port = atoi(arg); return 1;
	case 'u': o->user = arg; return 1;
	case 'w': o->pass = arg; return 1;
	case 'c': o->clients = atoi(arg); return 1;
	case 'f': o->first_user = atoi(arg); return 1;
	default: return 0;
	}
}

void load_user_name(char *buf, size_t size, const char *fmt, int n)
{
	const char *d = strstr(fmt, "%d");
	if (!d)
		snprintf(buf, size, "%s", fmt);
	else
		snprintf(buf, size, "%.*s%d%s", (int)(d - fmt), fmt, n, d + 2);
}

double load_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int load_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int load_connect(struct load_conn *c, const struct load_options *o, int source)
{
	size_t line_size = c->line_size;
	memset(c, 0, sizeof(*c));
	c->line_size = line_size;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0)
		return -1;
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (o->sources > 1) {
		struct sockaddr_in src = { .sin_family = AF_INET };
		src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(source % o->sources));
		setsockopt(c->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0)
			goto fail;
	}
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)o->port) };
	if (inet_pton(AF_INET, o->host, &sa.sin_addr) != 1)
		goto fail;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto fail;
	return 0;
fail:
	load_close(c);
	return -1;
}

int load_fill(struct load_conn *c)
{
	if (c->rpos == c->rlen)
		c->rpos = c->rlen = 0;
	if (c->rlen == LOAD_RBUF) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
	}
	ssize_t n;
	do
		n = read(c->fd, c->rbuf + c->rlen, LOAD_RBUF - c->rlen);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	c->rlen += (size_t)n;
	return 0;
}

long load_line(struct load_conn *c)
{
	size_t size = c->line_size && c->line_size < LOAD_LINE_MAX ? c->line_size : LOAD_LINE_MAX;
	size_t len = 0;
	for (;;) {
		if (c->rpos == c->rlen && load_fill(c) < 0)
			return -1;
		char *p = c->rbuf + c->rpos;
		size_t avail = c->rlen - c->rpos;
		char *nl = memchr(p, '\n', avail);
		size_t take = nl ? (size_t)(nl - p) + 1 : avail;
		size_t copy = take;
		if (len + copy > size - 1)
			copy = size - 1 - len;
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

int load_skip(struct load_conn *c, size_t n)
{
	while (n) {
		if (c->rpos == c->rlen && load_fill(c) < 0)
			return -1;
		size_t take = c->rlen - c->rpos;
		if (take > n)
			take = n;
		c->rpos += take;
		n -= take;
	}
	return 0;
}

int load_write(struct load_conn *c, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(c->fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

void load_close(struct load_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}
