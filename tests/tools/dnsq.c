/* dnsq.c — drives common/dns.c from the command line for the integration tests.
 *
 *   dnsq [-t TIMEOUT_MS] [-r TRIES] [-n COUNT] [-C] [-F N] [-v] SERVER TYPE NAME...
 *
 * SERVER is "ADDR:PORT" (IPv6 "[ADDR]:PORT"), a comma-separated list of them,
 * or "-" for /etc/resolv.conf. TYPE is a, aaaa, mx, txt or ptr. Every lookup
 * starts at once; when all are done the output is printed in argument order,
 * one line per answer entry:
 *
 *   NAME A 192.0.2.1 ttl=300
 *   NAME MX 10 mx1.example.test ttl=300
 *   NAME TXT v=spf1 -all ttl=300          (bytes outside printable ASCII and
 *                                          backslashes as \xNN)
 *   NAME NXDOMAIN | NAME NODATA | NAME TEMPFAIL <error> | NAME PERMFAIL <error>
 *
 * -n COUNT  look up COUNT distinct names h0.NAME ... h<COUNT-1>.NAME (first NAME
 *           only) and print "answered X of COUNT" after the answers
 * -C        cancel every second lookup right after starting it; prints
 *           "cancelled X, answered Y of Z"
 * -F N      free the resolver inside the N-th callback (the others must never
 *           be called); prints "freed after N, answered Y of Z"
 * -v        debug logging on stderr
 *
 * The resolver is always freed from inside the last callback, so the deferred
 * free path runs every time. Exits 0; 1 if the resolver cannot be created; 2 on
 * usage errors; 3 if the API broke a promise (a callback inside dns_lookup(),
 * after dns_cancel() or after dns_resolver_free(), or handles left open).
 */
#include "common/dns.h"
#include "common/log.h"
#include "common/pool.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct lookup {
	struct dnsq *dq;
	char *name;
	struct dns_query *query;
	bool cancelled, answered;
	char *out;
	size_t outlen;
};

struct dnsq {
	uv_loop_t loop;
	struct dns_resolver *resolver;
	enum dns_type type;
	struct lookup *lookups;
	size_t count, answered, cancelled, done;
	size_t free_after;        /* -F */
	bool in_lookup;
	bool broken;              /* a promise of the API was broken */
};

static void usage(void)
{
	fprintf(stderr, "usage: dnsq [-t TIMEOUT_MS] [-r TRIES] [-n COUNT] [-C] [-F N] [-v] "
		"SERVER a|aaaa|mx|txt|ptr NAME...\n");
	exit(2);
}

static int parse_type(const char *s, enum dns_type *type_r)
{
	static const struct { const char *name; enum dns_type type; } types[] = {
		{ "a", DNS_TYPE_A }, { "aaaa", DNS_TYPE_AAAA }, { "mx", DNS_TYPE_MX },
		{ "txt", DNS_TYPE_TXT }, { "ptr", DNS_TYPE_PTR },
	};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcasecmp(s, types[i].name) == 0) {
			*type_r = types[i].type;
			return 0;
		}
	}
	return -1;
}

static void print_escaped(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p >= 0x20 && *p < 0x7f && *p != '\\')
			fputc(*p, f);
		else
			fprintf(f, "\\x%02x", *p);
	}
}

static void print_entries(FILE *f, const struct lookup *l, enum dns_type type,
			  const struct dns_result *res)
{
	for (size_t i = 0; i < res->count; i++) {
		fprintf(f, "%s ", l->name);
		switch (type) {
		case DNS_TYPE_A:
			fprintf(f, "A %s", res->u.addrs[i]);
			break;
		case DNS_TYPE_AAAA:
			fprintf(f, "AAAA %s", res->u.addrs[i]);
			break;
		case DNS_TYPE_MX:
			fprintf(f, "MX %u %s", res->u.mx[i].preference, res->u.mx[i].host);
			break;
		case DNS_TYPE_TXT:
			fputs("TXT ", f);
			print_escaped(f, res->u.txt[i]);
			break;
		case DNS_TYPE_PTR:
			fprintf(f, "PTR %s", res->u.names[i]);
			break;
		}
		fprintf(f, " ttl=%u\n", res->ttl);
	}
}

static void record_result(struct lookup *l, enum dns_type type, const struct dns_result *res)
{
	FILE *f = open_memstream(&l->out, &l->outlen);

	if (f == NULL)
		log_fatal("open_memstream failed");
	if (res->status == DNS_OK)
		print_entries(f, l, type, res);
	else if (res->status == DNS_NXDOMAIN || res->status == DNS_NODATA)
		fprintf(f, "%s %s\n", l->name, dns_status_str(res->status));
	else
		fprintf(f, "%s %s %s\n", l->name, dns_status_str(res->status),
			res->error != NULL ? res->error : "(no error text)");
	fclose(f);
}

static void broken(struct dnsq *dq, const char *what, const struct lookup *l)
{
	fprintf(stderr, "dnsq: BUG: %s (%s)\n", what, l->name);
	dq->broken = true;
}

static void on_result(const struct dns_result *res, void *ctx)
{
	struct lookup *l = ctx;
	struct dnsq *dq = l->dq;

	if (dq->in_lookup)
		broken(dq, "callback inside dns_lookup()", l);
	if (l->cancelled)
		broken(dq, "callback after dns_cancel()", l);
	if (l->answered)
		broken(dq, "second callback", l);
	if (dq->resolver == NULL)
		broken(dq, "callback after dns_resolver_free()", l);
	l->answered = true;
	l->query = NULL;
	dq->answered++;
	record_result(l, dq->type, res);
	if (dq->answered == dq->free_after || dq->answered + dq->cancelled == dq->count)
		dns_resolver_free(&dq->resolver);
}

static void start_lookups(struct dnsq *dq, bool cancel_half)
{
	for (size_t i = 0; i < dq->count; i++) {
		struct lookup *l = &dq->lookups[i];
		dq->in_lookup = true;
		l->query = dns_lookup(dq->resolver, dq->type, l->name, on_result, l);
		dq->in_lookup = false;
		if (cancel_half && i % 2 == 1) {
			dns_cancel(l->query);
			l->query = NULL;
			l->cancelled = true;
			dq->cancelled++;
		}
	}
	if (dq->count == dq->cancelled)
		dns_resolver_free(&dq->resolver);
}

static void make_lookups(struct dnsq *dq, char **names, size_t n, size_t flood)
{
	dq->count = flood != 0 ? flood : n;
	dq->lookups = x_calloc(dq->count, sizeof(*dq->lookups));
	for (size_t i = 0; i < dq->count; i++) {
		struct lookup *l = &dq->lookups[i];
		l->dq = dq;
		if (flood != 0) {
			size_t len = strlen(names[0]) + 32;
			l->name = x_malloc(len);
			snprintf(l->name, len, "h%zu.%s", i, names[0]);
		} else {
			l->name = x_strdup(names[i]);
		}
	}
}

static void print_and_free(struct dnsq *dq)
{
	for (size_t i = 0; i < dq->count; i++) {
		struct lookup *l = &dq->lookups[i];
		if (l->out != NULL)
			fwrite(l->out, 1, l->outlen, stdout);
		free(l->out);
		free(l->name);
	}
	free(dq->lookups);
}

static unsigned parse_uint(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v > 1000000)
		usage();
	return (unsigned)v;
}

int main(int argc, char **argv)
{
	struct dnsq dq = { 0 };
	unsigned timeout_ms = 0, tries = 0;
	size_t flood = 0;
	bool cancel_half = false;
	const char *error;
	int c;

	log_init("dnsq", LOG_TARGET_STDERR, LOG_LEVEL_WARN);
	while ((c = getopt(argc, argv, "t:r:n:CF:v")) != -1) {
		switch (c) {
		case 't': timeout_ms = parse_uint(optarg); break;
		case 'r': tries = parse_uint(optarg); break;
		case 'n': flood = parse_uint(optarg); break;
		case 'C': cancel_half = true; break;
		case 'F': dq.free_after = parse_uint(optarg); break;
		case 'v': log_init("dnsq", LOG_TARGET_STDERR, LOG_LEVEL_DEBUG); break;
		default: usage();
		}
	}
	if (argc - optind < 3 || parse_type(argv[optind + 1], &dq.type) < 0)
		usage();
	const char *server = strcmp(argv[optind], "-") == 0 ? NULL : argv[optind];

	uv_loop_init(&dq.loop);
	dq.resolver = dns_resolver_new(&dq.loop, server, timeout_ms, tries, &error);
	if (dq.resolver == NULL) {
		fprintf(stderr, "dnsq: %s: %s\n", argv[optind], error);
		uv_loop_close(&dq.loop);
		return 1;
	}
	make_lookups(&dq, argv + optind + 2, (size_t)(argc - optind - 2), flood);
	start_lookups(&dq, cancel_half);
	uv_run(&dq.loop, UV_RUN_DEFAULT);
	if (dq.resolver != NULL)
		broken(&dq, "loop ended with lookups pending", &dq.lookups[0]);
	dns_resolver_free(&dq.resolver);
	/* the resolver's handles finish closing here */
	uv_run(&dq.loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&dq.loop) != 0)
		broken(&dq, "handles left open", &dq.lookups[0]);

	size_t count = dq.count;
	print_and_free(&dq);
	if (flood != 0)
		printf("answered %zu of %zu\n", dq.answered, count);
	if (cancel_half)
		printf("cancelled %zu, answered %zu of %zu\n", dq.cancelled, dq.answered, count);
	if (dq.free_after != 0)
		printf("freed after %zu, answered %zu of %zu\n", dq.free_after, dq.answered, count);
	return dq.broken ? 3 : 0;
}
