/* metrics.c — the shared counter file (metrics.h). */
#include "common/metrics.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Slots in the file: room for counters added later without changing its size
 * (new counters are appended to enum metric_counter, never inserted). */
#define METRICS_SLOTS 256
#define METRICS_MAGIC "WARRENM1"

struct metrics_file {
	char magic[8];
	uint64_t values[METRICS_SLOTS];
};

_Static_assert(METRIC_COUNT <= METRICS_SLOTS, "metrics file too small");

/* The process's counting context: the writable mapping (daemons) and the
 * read-only one (httpd), each set once. */
static struct {
	struct metrics_file *rw;
	pthread_mutex_t lock;      /* the read-only mapping, made on first use */
	const struct metrics_file *ro;
	char ro_path[4096];
} metrics_ctx = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void metrics_path(const char *state_dir, char *path, size_t size)
{
	snprintf(path, size, "%s/metrics", state_dir);
}

int metrics_open(const char *state_dir)
{
	if (metrics_ctx.rw != NULL)
		return 0;
	char path[4096];
	metrics_path(state_dir, path, sizeof(path));
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		log_warn("metrics: cannot open %s: %s (not counting)", path, strerror(errno));
		return -1;
	}
	struct stat st;
	/* a new (or short) file grows to its size; concurrent opens agree on it */
	if (fstat(fd, &st) < 0 || (st.st_size < (off_t)sizeof(struct metrics_file) &&
				   ftruncate(fd, sizeof(struct metrics_file)) < 0)) {
		log_warn("metrics: cannot size %s: %s (not counting)", path, strerror(errno));
		close(fd);
		return -1;
	}
	void *p = mmap(NULL, sizeof(struct metrics_file), PROT_READ | PROT_WRITE, MAP_SHARED,
		       fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		log_warn("metrics: cannot map %s: %s (not counting)", path, strerror(errno));
		return -1;
	}
	struct metrics_file *m = p;
	if (memcmp(m->magic, METRICS_MAGIC, sizeof(m->magic)) != 0) {
		/* new, or not ours: start from zero (a zero-filled file is new) */
		bool zero = true;
		for (size_t i = 0; i < sizeof(m->magic); i++)
			zero = zero && m->magic[i] == '\0';
		if (!zero) {
			log_warn("metrics: %s is not a counter file; counting from zero", path);
			memset(m->values, 0, sizeof(m->values));
		}
		memcpy(m->magic, METRICS_MAGIC, sizeof(m->magic));
	}
	metrics_ctx.rw = m;
	return 0;
}

void metrics_count(enum metric_counter counter)
{
	if (metrics_ctx.rw == NULL || (unsigned)counter >= METRIC_COUNT)
		return;
	__atomic_fetch_add(&metrics_ctx.rw->values[counter], 1, __ATOMIC_RELAXED);
}

void metrics_count_delivery(const char *relay, const char *status)
{
	bool local = strcmp(relay, "local") == 0;
	if (strcmp(status, "sent") == 0)
		metrics_count(local ? METRIC_DELIVERY_LOCAL_SENT : METRIC_DELIVERY_SMTP_SENT);
	else if (strcmp(status, "deferred") == 0)
		metrics_count(local ? METRIC_DELIVERY_LOCAL_DEFERRED : METRIC_DELIVERY_SMTP_DEFERRED);
	else if (strcmp(status, "bounced") == 0)
		metrics_count(local ? METRIC_DELIVERY_LOCAL_BOUNCED : METRIC_DELIVERY_SMTP_BOUNCED);
}

void metrics_count_auth(const char *protocol, int result)
{
	enum metric_counter base;
	if (strcmp(protocol, "smtp") == 0)
		base = METRIC_AUTH_SMTP_SUCCESS;
	else if (strcmp(protocol, "imap") == 0)
		base = METRIC_AUTH_IMAP_SUCCESS;
	else if (strcmp(protocol, "pop3") == 0)
		base = METRIC_AUTH_POP3_SUCCESS;
	else
		return;
	if (result < 0 || result > 3)
		return;
	metrics_count((enum metric_counter)(base + result));
}

const char *const metrics_reject_reasons[] = {
	"unknown_user", "relay", "alias_loop", "size", "quota", "listener_access", "rate",
	"lists", "helo", "rbl", "spf", "greylist", "content_filter", "other", NULL,
};
_Static_assert(sizeof(metrics_reject_reasons) / sizeof(metrics_reject_reasons[0]) - 1 <=
	       METRIC_REJECT_LAST - METRIC_REJECT_FIRST + 1, "too many reject reasons");

void metrics_count_reject(const char *reason)
{
	size_t other = 0, i;
	for (i = 0; metrics_reject_reasons[i] != NULL; i++) {
		if (strcmp(metrics_reject_reasons[i], "other") == 0)
			other = i;
		if (reason != NULL && strcmp(metrics_reject_reasons[i], reason) == 0)
			break;
	}
	if (metrics_reject_reasons[i] == NULL)
		i = other;
	metrics_count((enum metric_counter)(METRIC_REJECT_FIRST + i));
}

int metrics_read(const char *state_dir, struct metrics_snapshot *snap_r)
{
	char path[4096];
	metrics_path(state_dir, path, sizeof(path));
	pthread_mutex_lock(&metrics_ctx.lock);
	if (metrics_ctx.ro == NULL || strcmp(metrics_ctx.ro_path, path) != 0) {
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		struct stat st;
		void *p = MAP_FAILED;
		if (fd >= 0 && fstat(fd, &st) == 0 &&
		    st.st_size >= (off_t)sizeof(struct metrics_file))
			p = mmap(NULL, sizeof(struct metrics_file), PROT_READ, MAP_SHARED, fd, 0);
		if (fd >= 0)
			close(fd);
		if (p != MAP_FAILED) {
			/* an old mapping stays: another thread may still read it */
			metrics_ctx.ro = p;
			snprintf(metrics_ctx.ro_path, sizeof(metrics_ctx.ro_path), "%s", path);
		}
	}
	const struct metrics_file *m = metrics_ctx.ro != NULL &&
		strcmp(metrics_ctx.ro_path, path) == 0 ? metrics_ctx.ro : NULL;
	pthread_mutex_unlock(&metrics_ctx.lock);
	if (m == NULL || memcmp(m->magic, METRICS_MAGIC, sizeof(m->magic)) != 0)
		return -1;
	for (size_t i = 0; i < METRIC_COUNT; i++)
		snap_r->values[i] = __atomic_load_n(&m->values[i], __ATOMIC_RELAXED);
	return 0;
}
