/* store-bench.c — durable deliveries per second into the store, beside the raw
 * fsync rate of the same disk (the physical ceiling of one synchronous commit).
 *
 *   bench/store [-s SECONDS] [-d DIR]
 *
 * Each case runs SECONDS (default 4) against a fresh store in a new temporary
 * folder under DIR (default $TMPDIR, else /var/tmp: a real disk, not tmpfs):
 * 1 and 16 writer threads, 4 KB and 100 KB messages, 1 and 10 recipients. Every
 * message is new content (a new body file) delivered to recipients picked from
 * BENCH_USERS users, as SMTP deliveries would be. A delivery counts once
 * store_deliver returned, i.e. once it is durable (body fsynced, transaction
 * committed with a synchronous log flush).
 *
 * The fsync ceiling is measured first in the same folder: append 4 KB and fsync,
 * in a loop, for SECONDS; and again for SECONDS/4 right before each case (a shared
 * machine's load moves it). "x fsync" is deliveries/s divided by the rate measured
 * before the case: above 1 means group commit shares one log flush among several
 * deliveries.
 */
#include "storage/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

/* Users the recipients are picked from. */
#define BENCH_USERS 1000
/* Latency samples kept per case (the rest are counted, not kept). */
#define BENCH_SAMPLES_MAX (1 << 20)
/* Most writer threads of any case. */
#define BENCH_THREADS_MAX 16

struct bench_case {
	int writers;
	size_t size;
	int recipients;
};

static const struct bench_case cases[] = {
	{ 1, 4096, 1 }, { 1, 4096, 10 }, { 1, 102400, 1 }, { 1, 102400, 10 },
	{ 16, 4096, 1 }, { 16, 4096, 10 }, { 16, 102400, 1 }, { 16, 102400, 10 },
};

struct run {
	struct store *store;
	const struct bench_case *c;
	double seconds;
	atomic_bool stop;
	atomic_long deliveries;
	atomic_long failures;
	atomic_long n_samples;
	double *samples;           /* milliseconds */
};

struct worker {
	struct run *run;
	int id;
	pthread_t thread;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A message of exactly size bytes whose first line makes it unique. */
static char *make_message(size_t size, int writer, long n, size_t *len_r)
{
	char *m = malloc(size + 1);
	if (m == NULL)
		return NULL;
	int h = snprintf(m, size, "Message-ID: <%d.%ld.%ld@bench.test>\r\n"
			 "From: bench@bench.test\r\nTo: users@bench.test\r\n"
			 "Subject: benchmark message %ld\r\n\r\n", writer, n, (long)getpid(), n);
	size_t off = (size_t)h;
	static const char line[] = "The quick brown fox jumps over the lazy dog, again "
				   "and again, for the benchmark.\r\n";
	while (off < size) {
		size_t k = sizeof(line) - 1 < size - off ? sizeof(line) - 1 : size - off;
		memcpy(m + off, line, k);
		off += k;
	}
	*len_r = size;
	return m;
}

static void *writer_main(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->run;
	unsigned seed = (unsigned)(w->id * 7919 + 17);
	char users[10][64];
	struct store_recipient rcpt[10];
	for (long n = 0; !atomic_load(&r->stop); n++) {
		size_t len;
		char *msg = make_message(r->c->size, w->id, n, &len);
		if (msg == NULL)
			break;
		int first = rand_r(&seed) % BENCH_USERS;
		for (int i = 0; i < r->c->recipients; i++) {
			/* distinct users, spread over the whole population */
			snprintf(users[i], sizeof(users[i]), "user%d@bench.test",
				 (first + i * (BENCH_USERS / 10)) % BENCH_USERS);
			memset(&rcpt[i], 0, sizeof(rcpt[i]));
			rcpt[i].user = users[i];
			rcpt[i].mailbox = "INBOX";
			rcpt[i].env_to = users[i];
		}
		struct store_body body = { msg, len, NULL };
		double t0 = now_s();
		int ret = store_deliver(r->store, &body, "bench@bench.test", time(NULL), rcpt,
					(size_t)r->c->recipients);
		double t1 = now_s();
		free(msg);
		if (ret != STORE_OK || rcpt[0].result != STORE_OK) {
			atomic_fetch_add(&r->failures, 1);
			continue;
		}
		atomic_fetch_add(&r->deliveries, 1);
		long i = atomic_fetch_add(&r->n_samples, 1);
		if (i < BENCH_SAMPLES_MAX)
			r->samples[i] = (t1 - t0) * 1000.0;
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int remove_tree(const char *dir)
{
	char cmd[PATH_MAX + 64];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

/* write+fsync of 4 KB appended to a file in dir, for seconds: the disk's rate of
 * synchronous writes, the ceiling of one commit after another. */
static double fsync_rate(const char *dir, double seconds)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/fsync-probe", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "store-bench: %s: %s\n", path, strerror(errno));
		return 0;
	}
	char block[4096];
	memset(block, 'x', sizeof(block));
	long n = 0;
	double t0 = now_s(), t1 = t0;
	while (t1 - t0 < seconds) {
		if (write(fd, block, sizeof(block)) != (ssize_t)sizeof(block) || fsync(fd) < 0) {
			fprintf(stderr, "store-bench: fsync probe: %s\n", strerror(errno));
			break;
		}
		n++;
		t1 = now_s();
	}
	close(fd);
	unlink(path);
	return n / (t1 - t0);
}

static int run_case(const char *base, const struct bench_case *c, double seconds,
		    double *samples)
{
	/* the disk's rate right before the case: other load on the machine moves it */
	double fsyncs = fsync_rate(base, seconds / 4 > 0.5 ? seconds / 4 : 0.5);
	char dir[PATH_MAX + 32];
	snprintf(dir, sizeof(dir), "%s/case-XXXXXX", base);
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "store-bench: mkdtemp %s: %s\n", dir, strerror(errno));
		return -1;
	}
	struct store_settings settings = { .dir = dir, .flags = STORE_OPEN_RECOVER };
	struct run r = { .c = c, .seconds = seconds, .samples = samples };
	const char *err = "";
	if (store_open(&settings, &r.store, &err) != STORE_OK) {
		fprintf(stderr, "store-bench: store_open %s: %s\n", dir, err);
		return -1;
	}
	struct worker w[BENCH_THREADS_MAX];
	double t0 = now_s();
	for (int i = 0; i < c->writers; i++) {
		w[i].run = &r;
		w[i].id = i;
		pthread_create(&w[i].thread, NULL, writer_main, &w[i]);
	}
	struct timespec ts = { (time_t)seconds, (long)((seconds - (long)seconds) * 1e9) };
	nanosleep(&ts, NULL);
	atomic_store(&r.stop, true);
	for (int i = 0; i < c->writers; i++)
		pthread_join(w[i].thread, NULL);
	double elapsed = now_s() - t0;
	store_checkpoint(r.store);
	store_close(&r.store);
	remove_tree(dir);

	long n = atomic_load(&r.deliveries);
	long kept = n < BENCH_SAMPLES_MAX ? n : BENCH_SAMPLES_MAX;
	qsort(samples, (size_t)kept, sizeof(*samples), cmp_double);
	double rate = n / elapsed;
	double p50 = kept > 0 ? samples[kept / 2] : 0;
	double p99 = kept > 0 ? samples[(kept * 99) / 100] : 0;
	printf("%7d  %6zu KB  %5d  %12.0f  %9.0f  %8.0f  %7.2fx  %7.1f  %7.1f  %5ld\n",
	       c->writers, c->size / 1024, c->recipients, rate, rate * c->recipients, fsyncs,
	       fsyncs > 0 ? rate / fsyncs : 0, p50, p99, atomic_load(&r.failures));
	fflush(stdout);
	return 0;
}

/* "ext4 on /dev/vda" for the folder, from /proc/mounts. */
static void describe_disk(const char *dir, char *out, size_t size)
{
	snprintf(out, size, "unknown filesystem");
	char real[PATH_MAX];
	if (realpath(dir, real) == NULL)
		return;
	FILE *fp = fopen("/proc/mounts", "r");
	char dev[256], mnt[PATH_MAX], type[64];
	size_t best = 0;
	while (fp != NULL && fscanf(fp, "%255s %4095s %63s %*[^\n]", dev, mnt, type) == 3) {
		size_t len = strlen(mnt);
		bool under = strncmp(real, mnt, len) == 0 &&
			(real[len] == '/' || real[len] == '\0' || len == 1);
		if (under && len >= best) {
			best = len;
			snprintf(out, size, "%s on %s (mounted at %s)", type, dev, mnt);
		}
	}
	if (fp != NULL)
		fclose(fp);
}

int main(int argc, char **argv)
{
	double seconds = 4;
	const char *parent = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/var/tmp";
	int opt;
	while ((opt = getopt(argc, argv, "s:d:h")) != -1) {
		switch (opt) {
		case 's': seconds = atof(optarg); break;
		case 'd': parent = optarg; break;
		default:
			fprintf(stderr, "usage: store [-s SECONDS_PER_CASE] [-d PARENT_DIR]\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	if (seconds <= 0 || seconds > 600) {
		fprintf(stderr, "store-bench: -s must be in (0, 600]\n");
		return 2;
	}
	char base[PATH_MAX];
	snprintf(base, sizeof(base), "%s/warren-bench-XXXXXX", parent);
	if (mkdtemp(base) == NULL) {
		fprintf(stderr, "store-bench: mkdtemp %s: %s\n", base, strerror(errno));
		return 1;
	}
	double *samples = malloc(BENCH_SAMPLES_MAX * sizeof(*samples));
	if (samples == NULL)
		return 1;
	char disk[PATH_MAX + 400];
	describe_disk(base, disk, sizeof(disk));
	printf("Warren store benchmark: %.0f s per case, %ld CPUs, store in %s\n", seconds,
	       sysconf(_SC_NPROCESSORS_ONLN), base);
	printf("disk: %s\n", disk);
	double fsyncs = fsync_rate(base, seconds);
	printf("fsync ceiling: write+fsync of 4 KB appended: %.0f/s (%.2f ms each)\n\n", fsyncs,
	       fsyncs > 0 ? 1000.0 / fsyncs : 0);
	printf("writers     size  rcpts  deliveries/s   copies/s   fsync/s  x fsync   p50 ms   p99 ms  fails\n");
	int ret = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (run_case(base, &cases[i], seconds, samples) < 0)
			ret = 1;
	printf("\ndeliveries/s: store_deliver calls that returned durable; copies/s: "
	       "deliveries x recipients;\nfsync/s: the ceiling again, measured right before "
	       "the case; x fsync: deliveries/s over it\n(above 1: group commit shares log "
	       "flushes).\n");
	free(samples);
	remove_tree(base);
	return ret;
}
