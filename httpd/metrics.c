/* metrics.c — GET /metrics in the Prometheus text format (version 0.0.4), for
 * clients in http.metrics_allow (default loopback); others get 403.
 *
 * What is here is what httpd can learn without the mail daemons' help: the
 * configuration, the daemons the master runs (from /proc), connections open on
 * each listener (the kernel's TCP table: ESTABLISHED sockets on the listener's
 * port), the store's size on disk, and httpd's own requests. The daemons'
 * event counters (messages, deliveries, logins) come from the shared counter
 * file state_dir/metrics (common/metrics.h), mapped read-only: httpd never
 * opens the store.
 */
#include "httpd/httpd.h"
#include "common/log.h"
#include "common/metrics.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How long a measured store size is reused (walking a big blob tree costs). */
#define METRICS_STORE_CACHE_S 30
/* Queue files looked at per scrape at most (the count says "at least" beyond). */
#define METRICS_QUEUE_SCAN_MAX 100000

static void help(struct buf *out, const char *name, const char *type, const char *text)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* ---- connections per listener, from /proc/net/tcp{,6} ---- */

struct tcp_count {
	const struct conf_listener *l;
	unsigned long n;
};

static bool wildcard(const char *address)
{
	return strcmp(address, "0.0.0.0") == 0 || strcmp(address, "::") == 0;
}

static void scan_tcp(const char *file, int family, struct tcp_count *counts, size_t n)
{
	FILE *fp = fopen(file, "r");
	if (fp == NULL)
		return;
	char line[512];
	if (fgets(line, sizeof(line), fp) == NULL) {   /* header */
		fclose(fp);
		return;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		char local[64];
		unsigned port, state;
		if (sscanf(line, " %*u: %63[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x", local, &port,
			   &state) != 3 || state != 0x01)   /* TCP_ESTABLISHED */
			continue;
		unsigned char addr[16];
		size_t words = family == AF_INET ? 1 : 4;
		if (strlen(local) != words * 8)
			continue;
		for (size_t w = 0; w < words; w++) {
			char hex[9];
			memcpy(hex, local + w * 8, 8);
			hex[8] = '\0';
			uint32_t v = (uint32_t)strtoul(hex, NULL, 16);
			memcpy(addr + w * 4, &v, 4);   /* the kernel printed the raw word */
		}
		char text[INET6_ADDRSTRLEN];
		if (inet_ntop(family, addr, text, sizeof(text)) == NULL)
			continue;
		for (size_t i = 0; i < n; i++) {
			const struct conf_listener *l = counts[i].l;
			bool v6 = strchr(l->address, ':') != NULL;
			if (l->port != port || v6 != (family == AF_INET6))
				continue;
			if (wildcard(l->address) || strcmp(l->address, text) == 0)
				counts[i].n++;
		}
	}
	fclose(fp);
}

static void connections(struct buf *out, const struct warren_config *conf)
{
	struct tcp_count *counts = calloc(conf->n_listeners + 1, sizeof(*counts));
	if (counts == NULL)
		return;
	for (size_t i = 0; i < conf->n_listeners; i++)
		counts[i].l = &conf->listeners[i];
	scan_tcp("/proc/net/tcp", AF_INET, counts, conf->n_listeners);
	scan_tcp("/proc/net/tcp6", AF_INET6, counts, conf->n_listeners);
	help(out, "warren_connections", "gauge",
	     "Established TCP connections on each listener (all daemons, all processes).");
	for (size_t i = 0; i < conf->n_listeners; i++)
		buf_printf(out, "warren_connections{listener=\"%s\",service=\"%s\"} %lu\n",
			   counts[i].l->name, conf_service_name(counts[i].l->service), counts[i].n);
	free(counts);
}

/* ---- daemons the master runs ---- */

static long boot_time(void)
{
	FILE *fp = fopen("/proc/stat", "r");
	char line[256];
	long btime = 0;
	while (fp != NULL && fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "btime %ld", &btime) == 1)
			break;
	if (fp != NULL)
		fclose(fp);
	return btime;
}

static void daemons(struct buf *out)
{
	if (getenv("WARREN_LISTEN_FDS") == NULL)
		return;   /* alone: there is no master whose children to show */
	pid_t master = getppid();
	DIR *dir = opendir("/proc");
	if (dir == NULL)
		return;
	long btime = boot_time(), hz = sysconf(_SC_CLK_TCK);
	help(out, "warren_daemon_start_time_seconds", "gauge",
	     "Start time of each daemon the master runs, in seconds since the epoch.");
	struct dirent *de;
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		char path[300], stat[1024];
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		FILE *fp = fopen(path, "r");
		if (fp == NULL)
			continue;
		size_t len = fread(stat, 1, sizeof(stat) - 1, fp);
		fclose(fp);
		stat[len] = '\0';
		char *open = strchr(stat, '('), *close = strrchr(stat, ')');
		if (open == NULL || close == NULL || close < open)
			continue;
		*close = '\0';
		const char *comm = open + 1;
		int ppid;
		unsigned long long start;
		/* after ") ": state ppid ... field 22 is starttime */
		if (sscanf(close + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
			   "%*d %*d %*d %*d %llu", &ppid, &start) != 2)
			continue;
		if (ppid != master || strncmp(comm, "warren-", 7) != 0)
			continue;
		buf_printf(out, "warren_daemon_start_time_seconds{daemon=\"%s\",pid=\"%s\"} %lld\n",
			   comm + 7, de->d_name, (long long)(btime + (long)(start / (unsigned long long)hz)));
	}
	closedir(dir);
}

/* ---- store size ---- */

static pthread_mutex_t du_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t du_bytes, du_files;   /* nftw has no context pointer: under du_lock */

static int du_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	if (type == FTW_F) {
		du_bytes += (uint64_t)st->st_blocks * 512;
		du_files++;
	}
	return 0;
}

static struct {
	char dir[4096];
	time_t at;
	uint64_t bytes[2], files[2];
	bool ok[2];
} du_cache;

static void store_size(struct buf *out, const struct warren_config *conf)
{
	static const char *const parts[2] = { "store", "blobs" };
	pthread_mutex_lock(&du_lock);
	time_t now = time(NULL);
	if (strcmp(du_cache.dir, conf->state_dir) != 0 ||
	    now - du_cache.at >= METRICS_STORE_CACHE_S) {
		snprintf(du_cache.dir, sizeof(du_cache.dir), "%s", conf->state_dir);
		for (int i = 0; i < 2; i++) {
			char path[4200];
			snprintf(path, sizeof(path), "%s/%s", conf->state_dir, parts[i]);
			du_bytes = du_files = 0;
			du_cache.ok[i] = nftw(path, du_cb, 16, FTW_PHYS) == 0;
			du_cache.bytes[i] = du_bytes;
			du_cache.files[i] = du_files;
		}
		du_cache.at = now;
	}
	help(out, "warren_store_disk_bytes", "gauge",
	     "Disk space of the store: the Berkeley DB environment (store) and message bodies (blobs).");
	for (int i = 0; i < 2; i++)
		if (du_cache.ok[i])
			buf_printf(out, "warren_store_disk_bytes{part=\"%s\"} %llu\n", parts[i],
				   (unsigned long long)du_cache.bytes[i]);
	help(out, "warren_store_files", "gauge", "Files in the store's folders.");
	for (int i = 0; i < 2; i++)
		if (du_cache.ok[i])
			buf_printf(out, "warren_store_files{part=\"%s\"} %llu\n", parts[i],
				   (unsigned long long)du_cache.files[i]);
	pthread_mutex_unlock(&du_lock);
}

/* ---- the outbound queue, from its body files (state_dir/queue/ID) ---- */

static void queue_stats(struct buf *out, const struct warren_config *conf)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/queue", conf->state_dir);
	DIR *dir = opendir(path);
	unsigned long n = 0;
	time_t oldest = 0, now = time(NULL);
	if (dir != NULL) {
		struct dirent *de;
		while (n < METRICS_QUEUE_SCAN_MAX && (de = readdir(dir)) != NULL) {
			struct stat st;
			/* ".tmp-ID": a body being written, not queued yet */
			if (de->d_name[0] == '.' ||
			    fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(st.st_mode))
				continue;
			n++;
			if (oldest == 0 || st.st_mtime < oldest)
				oldest = st.st_mtime;
		}
		closedir(dir);
	}
	help(out, "warren_queue_messages", "gauge",
	     "Messages in the outbound queue (held ones included), from its body files.");
	buf_printf(out, "warren_queue_messages %lu\n", n);
	help(out, "warren_queue_oldest_message_age_seconds", "gauge",
	     "Age of the oldest message in the outbound queue; 0 when it is empty.");
	buf_printf(out, "warren_queue_oldest_message_age_seconds %lld\n",
		   n > 0 && now > oldest ? (long long)(now - oldest) : 0LL);
}

/* ---- the daemons' event counters (common/metrics.h) ---- */

static void counters(struct buf *out, const struct warren_config *conf)
{
	struct metrics_snapshot m;
	if (metrics_read(conf->state_dir, &m) < 0)
		memset(&m, 0, sizeof(m));   /* no daemon has counted yet */
	const uint64_t *v = m.values;
	help(out, "warren_messages_received_total", "counter",
	     "Messages smtpd accepted (250 after DATA), all smtpd processes.");
	buf_printf(out, "warren_messages_received_total %llu\n",
		   (unsigned long long)v[METRIC_SMTP_RECEIVED]);
	static const struct {
		const char *name, *help;
		enum metric_counter local, smtp;
	} totals[] = {
		{ "warren_messages_delivered_total", "Recipients delivered (local mailboxes and "
		  "outbound SMTP), as pflogsumm counts them.", METRIC_DELIVERY_LOCAL_SENT,
		  METRIC_DELIVERY_SMTP_SENT },
		{ "warren_messages_deferred_total", "Delivery attempts deferred (each retry counts).",
		  METRIC_DELIVERY_LOCAL_DEFERRED, METRIC_DELIVERY_SMTP_DEFERRED },
		{ "warren_messages_bounced_total", "Recipients bounced (failed for good).",
		  METRIC_DELIVERY_LOCAL_BOUNCED, METRIC_DELIVERY_SMTP_BOUNCED },
	};
	for (size_t i = 0; i < sizeof(totals) / sizeof(totals[0]); i++) {
		help(out, totals[i].name, "counter", totals[i].help);
		buf_printf(out, "%s %llu\n", totals[i].name,
			   (unsigned long long)(v[totals[i].local] + v[totals[i].smtp]));
	}
	static const struct {
		const char *relay, *status;
		enum metric_counter c;
	} deliveries[] = {
		{ "local", "sent", METRIC_DELIVERY_LOCAL_SENT },
		{ "local", "deferred", METRIC_DELIVERY_LOCAL_DEFERRED },
		{ "local", "bounced", METRIC_DELIVERY_LOCAL_BOUNCED },
		{ "smtp", "sent", METRIC_DELIVERY_SMTP_SENT },
		{ "smtp", "deferred", METRIC_DELIVERY_SMTP_DEFERRED },
		{ "smtp", "bounced", METRIC_DELIVERY_SMTP_BOUNCED },
	};
	help(out, "warren_deliveries_total", "counter",
	     "Delivery results by the daemon that made them and relay (local mailbox, outbound smtp).");
	for (size_t i = 0; i < sizeof(deliveries) / sizeof(deliveries[0]); i++)
		buf_printf(out, "warren_deliveries_total{daemon=\"smtpd\",relay=\"%s\",status=\"%s\"} "
			   "%llu\n", deliveries[i].relay, deliveries[i].status,
			   (unsigned long long)v[deliveries[i].c]);
	help(out, "warren_notices_total", "counter",
	     "Bounce, delay and success notices the queue sent back to senders.");
	buf_printf(out, "warren_notices_total %llu\n", (unsigned long long)v[METRIC_NOTICES]);
	static const char *const protocols[] = { "smtp", "imap", "pop3" };
	static const enum metric_counter bases[] = { METRIC_AUTH_SMTP_SUCCESS,
		METRIC_AUTH_IMAP_SUCCESS, METRIC_AUTH_POP3_SUCCESS };
	static const char *const results[] = { "success", "failure", "refused", "tempfail" };
	help(out, "warren_auth_total", "counter",
	     "Logins by protocol and result (failure: wrong password or unknown user; refused: "
	     "an access rule; tempfail: backend unavailable).");
	for (size_t p = 0; p < 3; p++)
		for (size_t r = 0; r < 4; r++)
			buf_printf(out, "warren_auth_total{protocol=\"%s\",result=\"%s\"} %llu\n",
				   protocols[p], results[r], (unsigned long long)v[bases[p] + r]);
	help(out, "warren_smtp_rejects_total", "counter",
	     "SMTP commands smtpd refused (4xx/5xx) by reason: the recipient checks "
	     "(unknown_user, relay, alias_loop, size, quota) and the policy chain's checks.");
	for (size_t i = 0; metrics_reject_reasons[i] != NULL; i++)
		buf_printf(out, "warren_smtp_rejects_total{reason=\"%s\"} %llu\n",
			   metrics_reject_reasons[i],
			   (unsigned long long)v[METRIC_REJECT_FIRST + i]);
}

/* ---- configuration and httpd itself ---- */

static void config(struct buf *out, struct httpd *h, const struct warren_config *conf)
{
	size_t mailboxes = 0, aliases = 0;
	for (size_t i = 0; i < conf->n_domains; i++) {
		mailboxes += conf->domains[i].n_mailboxes;
		aliases += conf->domains[i].n_aliases;
	}
	pthread_mutex_lock(&h->lock);
	long long reloaded = (long long)h->reloaded;
	unsigned long reloads = h->reloads;
	pthread_mutex_unlock(&h->lock);
	help(out, "warren_up", "gauge", "1 while warren-httpd answers.");
	buf_append_str(out, "warren_up 1\n");
	help(out, "warren_httpd_start_time_seconds", "gauge", "When warren-httpd started.");
	buf_printf(out, "warren_httpd_start_time_seconds %lld\n", (long long)h->started);
	help(out, "warren_config_generation", "gauge", "Generation of the running configuration.");
	buf_printf(out, "warren_config_generation %lu\n", conf->generation);
	help(out, "warren_config_reloads_total", "counter", "Configurations loaded by SIGHUP.");
	buf_printf(out, "warren_config_reloads_total %lu\n", reloads);
	help(out, "warren_config_last_reload_timestamp_seconds", "gauge",
	     "When the running configuration was loaded.");
	buf_printf(out, "warren_config_last_reload_timestamp_seconds %lld\n", reloaded);
	help(out, "warren_domains", "gauge", "Domains in the configuration.");
	buf_printf(out, "warren_domains %zu\n", conf->n_domains);
	help(out, "warren_mailboxes", "gauge", "Mailboxes in the configuration.");
	buf_printf(out, "warren_mailboxes %zu\n", mailboxes);
	help(out, "warren_aliases", "gauge", "Aliases in the configuration.");
	buf_printf(out, "warren_aliases %zu\n", aliases);
	help(out, "warren_listener_info", "gauge", "Each listener with its service, port and TLS mode.");
	for (size_t i = 0; i < conf->n_listeners; i++) {
		const struct conf_listener *l = &conf->listeners[i];
		buf_printf(out, "warren_listener_info{listener=\"%s\",service=\"%s\",port=\"%u\","
			   "tls=\"%s\"} 1\n", l->name, conf_service_name(l->service), l->port,
			   conf_tls_mode_name(l->tls));
	}
}

static void requests(struct buf *out, struct httpd *h)
{
	static const char *const classes[STATUS_COUNT] = { "2xx", "3xx", "4xx", "5xx" };
	help(out, "warren_http_requests_total", "counter",
	     "Requests warren-httpd answered, by endpoint and status class.");
	for (int r = 0; r < ROUTE_COUNT; r++)
		for (int c = 0; c < STATUS_COUNT; c++) {
			unsigned long n = __atomic_load_n(&h->requests[r][c], __ATOMIC_RELAXED);
			if (n > 0 || c == STATUS_2XX)
				buf_printf(out, "warren_http_requests_total{endpoint=\"%s\","
					   "code=\"%s\"} %lu\n", httpd_route_name((enum httpd_route_id)r),
					   classes[c], n);
		}
}

void httpd_metrics(struct http_request *req, struct http_reply *reply)
{
	const struct warren_config *conf = req->conf;
	if (!httpd_ip_allowed(req->client_ip, conf->http.metrics_allow, conf->http.n_metrics_allow)) {
		log_warn("%s: client=%s: /metrics refused (not in http.metrics_allow)",
			 req->listener, req->client_ip);
		http_error(reply, 403, "Forbidden.");
		return;
	}
	reply->content_type = "text/plain; version=0.0.4; charset=utf-8";
	config(&reply->body, req->httpd, conf);
	daemons(&reply->body);
	connections(&reply->body, conf);
	store_size(&reply->body, conf);
	counters(&reply->body, conf);
	queue_stats(&reply->body, conf);
	requests(&reply->body, req->httpd);
}
