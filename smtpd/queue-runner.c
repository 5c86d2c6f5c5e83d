/* queue-runner.c — works off the outbound queue on smtpd's loop.
 *
 * Every scan_interval (and at once after new mail or a finished delivery) the
 * queue is listed on the thread pool; each message with a recipient due and not
 * held is claimed (queue_claim, so several processes never deliver the same
 * message), loaded with its DKIM signature, and split into one job per
 * destination domain. Jobs run at most destination_concurrency at once per
 * domain; the rest wait. When every job of a message is done, queue-result.c
 * decides retries and bounces and writes the record back.
 */
#include "smtpd/queue.h"
#include "common/log.h"
#include "common/pool.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

struct dest_count {
	struct dest_count *next;
	unsigned count;
	char domain[256];
};

static struct qrunner *runner;

struct qrunner *queue_runner(void)
{
	return runner;
}

const char *out_addr_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');
	return at != NULL ? at + 1 : "";
}

void out_status_from_reply(int code, const char *text, char status[16])
{
	int cls = code / 100;
	if (text != NULL && (text[0] == '2' || text[0] == '4' || text[0] == '5') &&
	    text[0] - '0' == cls && text[1] == '.') {
		size_t n = 0;
		while (n < 15 && text[n] != '\0' && (isdigit((unsigned char)text[n]) || text[n] == '.'))
			n++;
		int dots = 0;
		for (size_t i = 0; i < n; i++)
			dots += text[i] == '.';
		if (dots == 2 && text[n - 1] != '.') {
			memcpy(status, text, n);
			status[n] = '\0';
			return;
		}
	}
	snprintf(status, 16, "%d.0.0", cls >= 2 && cls <= 5 ? cls : 4);
}

void queue_rcpt_result(struct qdelivery *d, size_t idx, int code, const char *status,
		       const char *text, const char *remote)
{
	struct queue_rcpt *r = &d->msg.rcpts[idx];
	r->code = code;
	if (status != NULL) {
		snprintf(r->status, sizeof(r->status), "%s", status);
	} else {
		/* text is the reply: "550 5.1.1 ..." */
		const char *t = text != NULL ? text : "";
		if (strlen(t) >= 4 && isdigit((unsigned char)t[0]) && t[3] == ' ')
			t += 4;
		out_status_from_reply(code, t, r->status);
	}
	snprintf(r->reply, sizeof(r->reply), "%s", text != NULL ? text : "");
	snprintf(r->remote, sizeof(r->remote), "%s", remote != NULL ? remote : "");
	/* the status class decides (a 535 to AUTH is our temporary problem, 4.7.0) */
	if (r->status[0] == '2')
		r->state = QUEUE_RCPT_DELIVERED;
	else if (r->status[0] == '5')
		r->state = QUEUE_RCPT_FAILED;
	/* else stays pending: queue-result.c schedules the retry */
	d->touched[idx] = true;
}

/* ---- destination slots -------------------------------------------------------- */

static struct dest_count *dest_find(struct qrunner *r, const char *domain, bool create)
{
	for (struct dest_count *c = r->dests; c != NULL; c = c->next)
		if (strcasecmp(c->domain, domain) == 0)
			return c;
	if (!create)
		return NULL;
	struct dest_count *c = x_calloc(1, sizeof(*c));
	snprintf(c->domain, sizeof(c->domain), "%s", domain);
	c->next = r->dests;
	r->dests = c;
	return c;
}

static void dest_release(struct qrunner *r, const char *domain)
{
	struct dest_count **pp = &r->dests;
	for (; *pp != NULL; pp = &(*pp)->next) {
		struct dest_count *c = *pp;
		if (strcasecmp(c->domain, domain) != 0)
			continue;
		if (--c->count == 0) {
			*pp = c->next;
			free(c);
		}
		return;
	}
}

static void job_run(struct qjob *job)
{
	if (job->local)
		queue_local_start(job);
	else
		out_route_start(job);
}

/* Starts the job now or queues it behind its destination's limit. */
static void job_schedule(struct qrunner *r, struct qjob *job)
{
	if (job->local) {
		job_run(job);
		return;
	}
	struct dest_count *c = dest_find(r, job->domain, true);
	if (c->count >= job->d->conf->queue.destination_concurrency) {
		job->next = NULL;
		*r->waiting_tail = job;
		r->waiting_tail = &job->next;
		return;
	}
	c->count++;
	job->counted = true;
	job_run(job);
}

static void run_waiting(struct qrunner *r)
{
	struct qjob **pp = &r->waiting;
	while (*pp != NULL) {
		struct qjob *job = *pp;
		struct dest_count *c = dest_find(r, job->domain, false);
		unsigned limit = job->d->conf->queue.destination_concurrency;
		if (c != NULL && c->count >= limit) {
			pp = &job->next;
			continue;
		}
		*pp = job->next;
		if (r->waiting_tail == &job->next)
			r->waiting_tail = pp;
		c = dest_find(r, job->domain, true);
		c->count++;
		job->counted = true;
		job_run(job);
		/* job_run may complete synchronously and change the list: start over */
		pp = &r->waiting;
	}
}

void queue_job_done(struct qjob *job)
{
	struct qdelivery *d = job->d;
	struct qrunner *r = d->r;
	job->client = NULL;
	if (job->counted) {
		job->counted = false;
		dest_release(r, job->domain);
	}
	if (--d->jobs_left == 0)
		queue_delivery_finish(d);
	run_waiting(r);
}

/* ---- a delivery: claim and load ------------------------------------------------ */

static void delivery_free(struct qdelivery *d)
{
	for (size_t i = 0; i < d->n_jobs; i++)
		free(d->jobs[i].rcpts);
	free(d->jobs);
	queue_msg_free(&d->msg);
	free(d->body);
	free(d->dkim);
	free(d->touched);
	free(d->dsn_passed);
	conf_unref(&d->conf);
	free(d);
}

static void delivery_unlink(struct qdelivery *d)
{
	struct qrunner *r = d->r;
	if (d->prev != NULL)
		d->prev->next = d->next;
	else
		r->deliveries = d->next;
	if (d->next != NULL)
		d->next->prev = d->prev;
	r->active--;
	delivery_free(d);
}

void queue_delivery_release(struct qdelivery *d)
{
	struct qrunner *r = d->r;
	delivery_unlink(d);
	queue_runner_kick(r);   /* new notifications, free slots */
}

static bool body_has_8bit(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] & 0x80)
			return true;
	return false;
}

/* The DKIM key of the sender's domain (the envelope sender's, else the From
 * header's would need parsing; envelope first keeps it simple and predictable). */
static const struct conf_domain *dkim_domain(const struct qdelivery *d)
{
	if (d->msg.from[0] == '\0')
		return NULL;
	const struct conf_domain *dom = conf_find_domain(d->conf, out_addr_domain(d->msg.from));
	if (dom == NULL || dom->dkim_selector == NULL || dom->dkim_key == NULL)
		return NULL;
	return dom;
}

static int load_work(void *arg)
{
	struct qdelivery *d = arg;
	struct store *store = service_store(d->r->svc);
	int ret = queue_claim(store, d->msg.id, (int32_t)getpid(),
			      (int64_t)time(NULL) + QUEUE_LEASE_S, &d->msg);
	if (ret != 0)
		return ret;
	ret = queue_body_read(store, d->msg.id, QUEUE_BODY_MAX, &d->body, &d->len);
	if (ret != 0) {
		log_error("%s: cannot read the queued message: %s", d->msg.id,
			  store_strerror(ret));
		return ret;
	}
	d->has_8bit = body_has_8bit(d->body, d->len);
	const struct conf_domain *dom = dkim_domain(d);
	if (dom != NULL) {
		const char *err = NULL;
		d->dkim = out_dkim_sign(d->body, d->len, dom->name, dom->dkim_selector,
					dom->dkim_key, (int64_t)time(NULL), &err);
		if (d->dkim == NULL)
			log_warn("%s: DKIM signing for %s failed: %s; sending unsigned",
				 d->msg.id, dom->name, err != NULL ? err : "unknown error");
	}
	return 0;
}

static bool rcpt_due(const struct queue_rcpt *r, int64_t now)
{
	return r->state == QUEUE_RCPT_PENDING && r->next_attempt <= now;
}

static void delivery_split(struct qdelivery *d)
{
	int64_t now = (int64_t)time(NULL);
	size_t n = d->msg.n_rcpts;
	d->touched = x_calloc(n, sizeof(bool));
	d->dsn_passed = x_calloc(n, sizeof(bool));
	d->jobs = x_calloc(n, sizeof(*d->jobs));
	for (size_t i = 0; i < n; i++) {
		struct queue_rcpt *rc = &d->msg.rcpts[i];
		if (!rcpt_due(rc, now))
			continue;
		char orig[QUEUE_ADDR_MAX + 1];
		if (out_srs_reverse(d->conf, rc->addr, now, orig, sizeof(orig)) == 0) {
			/* a bounce to forwarded mail: back to the original sender (kept in
			 * the record when written back) */
			log_info("%s: SRS address <%s> is <%s>", d->msg.id, rc->addr, orig);
			snprintf(rc->addr, sizeof(rc->addr), "%s", orig);
		}
		const char *domain = out_addr_domain(rc->addr);
		struct qjob *job = NULL;
		for (size_t j = 0; j < d->n_jobs; j++)
			if (strcasecmp(d->jobs[j].domain, domain) == 0)
				job = &d->jobs[j];
		if (job == NULL) {
			job = &d->jobs[d->n_jobs++];
			job->d = d;
			snprintf(job->domain, sizeof(job->domain), "%s", domain);
			for (char *p = job->domain; *p != '\0'; p++)
				*p = (char)tolower((unsigned char)*p);
			const struct conf_domain *dom = conf_find_domain(d->conf, domain);
			job->local = dom != NULL && dom->type == CONF_DOMAIN_LOCAL;
			job->rcpts = x_calloc(n, sizeof(size_t));
		}
		job->rcpts[job->n_rcpts++] = i;
	}
}

static void load_done(void *arg, int result)
{
	struct qdelivery *d = arg;
	struct qrunner *r = d->r;
	if (result != 0) {
		if (result != STORE_EEXIST && result != STORE_ECHANGED && result != STORE_ENOTFOUND)
			log_warn("%s: cannot claim the message: %s", d->msg.id,
				 store_strerror(result));
		if (result == STORE_EIO && d->msg.n_rcpts > 0) {
			/* keep it: release the claim so that a later scan tries again */
			bool removed;
			queue_put(service_store(r->svc), &d->msg, &removed);
		}
		delivery_unlink(d);   /* no kick: the next scan looks again */
		return;
	}
	delivery_split(d);
	if (d->n_jobs == 0 || r->stopping) {
		d->jobs_left = 1;
		queue_delivery_finish(d);
		return;
	}
	d->jobs_left = d->n_jobs;
	for (size_t i = 0; i < d->n_jobs; i++)
		job_schedule(r, &d->jobs[i]);
}

static void delivery_start(struct qrunner *r, const char *id)
{
	struct qdelivery *d = x_calloc(1, sizeof(*d));
	d->r = r;
	d->conf = conf_ref(service_conf(r->svc));
	snprintf(d->msg.id, sizeof(d->msg.id), "%s", id);
	d->next = r->deliveries;
	if (d->next != NULL)
		d->next->prev = d;
	r->deliveries = d;
	r->active++;
	if (store_async(r->loop, load_work, load_done, d) != 0)
		delivery_unlink(d);
}

/* ---- scanning ------------------------------------------------------------------- */

struct scan {
	struct qrunner *r;
	struct queue_msg *msgs;
	size_t count;
};

static int scan_work(void *arg)
{
	struct scan *sc = arg;
	return queue_list(service_store(sc->r->svc), &sc->msgs, &sc->count);
}

static bool in_progress(struct qrunner *r, const char *id)
{
	for (struct qdelivery *d = r->deliveries; d != NULL; d = d->next)
		if (strcmp(d->msg.id, id) == 0)
			return true;
	return false;
}

static void scan_done(void *arg, int result)
{
	struct scan *sc = arg;
	struct qrunner *r = sc->r;
	r->scanning = false;
	if (result != 0)
		log_warn("queue: cannot list the queue: %s", store_strerror(result));
	int64_t now = (int64_t)time(NULL);
	unsigned max = service_conf(r->svc)->queue.max_deliveries;
	for (size_t i = 0; result == 0 && i < sc->count && !r->stopping; i++) {
		struct queue_msg *m = &sc->msgs[i];
		if (r->active >= max) {
			r->rescan = true;   /* more is due: look again when a slot frees */
			break;
		}
		if ((m->flags & QUEUE_F_HOLD) || in_progress(r, m->id))
			continue;
		if (m->lease_pid != 0 && m->lease_pid != (int32_t)getpid() && m->lease_until > now &&
		    (kill((pid_t)m->lease_pid, 0) == 0 || errno == EPERM))
			continue;   /* claimed by a live process (a dead one's claim is void) */
		bool due = false;
		for (size_t j = 0; j < m->n_rcpts && !due; j++)
			due = rcpt_due(&m->rcpts[j], now);
		if (due)
			delivery_start(r, m->id);
	}
	queue_msgs_free(sc->msgs, sc->count);
	free(sc);
	if (r->rescan && !r->stopping && r->active < max) {
		r->rescan = false;
		queue_runner_kick(r);
	}
}

static void scan(struct qrunner *r)
{
	if (r->stopping)
		return;
	if (r->scanning) {
		r->rescan = true;
		return;
	}
	struct scan *sc = x_calloc(1, sizeof(*sc));
	sc->r = r;
	r->scanning = true;
	r->rescan = false;
	if (store_async(r->loop, scan_work, scan_done, sc) != 0) {
		r->scanning = false;
		free(sc);
	}
}

/* A resolver for the current configuration's dns { } settings. */
static void resolver_update(struct qrunner *r)
{
	struct warren_config *conf = service_conf(r->svc);
	if (r->dns != NULL && r->dns_generation == conf->generation)
		return;
	if (r->dns != NULL && r->active > 0)
		return;   /* queries in flight: after a reload, swap once idle */
	if (r->dns != NULL)
		dns_resolver_free(&r->dns);
	const char *err = NULL;
	r->dns = dns_resolver_new(r->loop, conf->dns.servers, conf->dns.timeout_ms,
				  conf->dns.tries, &err);
	r->dns_generation = conf->generation;
	if (r->dns == NULL)
		log_error("queue: no DNS resolver: %s", err != NULL ? err : "unknown error");
}

static void timer_cb(uv_timer_t *t)
{
	struct qrunner *r = t->data;
	resolver_update(r);
	scan(r);
	struct warren_config *conf = service_conf(r->svc);
	uv_timer_start(&r->timer, timer_cb, (uint64_t)conf->queue.scan_interval_s * 1000, 0);
}

void queue_runner_kick(struct qrunner *r)
{
	if (r == NULL || r->stopping)
		return;
	if (r->scanning) {
		r->rescan = true;
		return;
	}
	uv_timer_stop(&r->timer);
	uv_timer_start(&r->timer, timer_cb, 10, 0);
}

static int sweep_work(void *arg)
{
	struct qrunner *r = arg;
	size_t removed = 0;
	int ret = queue_sweep(service_store(r->svc), 3600, &removed);
	if (removed > 0)
		log_info("queue: removed %zu orphaned message files", removed);
	return ret;
}

static void sweep_done(void *arg, int result)
{
	(void)arg;
	(void)result;
}

static void on_announce(uint64_t id, void *ctx)
{
	if (id == QUEUE_ANNOUNCE_ID)
		queue_runner_kick(ctx);
}

void outbound_start(struct service *svc)
{
	if (runner != NULL)
		return;
	struct warren_config *conf = service_conf(svc);
	struct qrunner *r = x_calloc(1, sizeof(*r));
	r->svc = svc;
	r->loop = service_loop(svc);
	r->waiting_tail = &r->waiting;
	resolver_update(r);
	r->tls = out_client_tls_ctx();
	uv_timer_init(r->loop, &r->timer);
	r->timer.data = r;
	uv_unref((uv_handle_t *)&r->timer);
	runner = r;
	service_set_notify(svc, on_announce, r);
	store_async(r->loop, sweep_work, sweep_done, r);
	uv_timer_start(&r->timer, timer_cb, 200, 0);
	log_info("queue: runner started (scan every %us, %u deliveries at once)",
		 conf->queue.scan_interval_s, conf->queue.max_deliveries);
}

void outbound_stop(struct service *svc)
{
	struct qrunner *r = runner;
	if (r == NULL || r->stopping)
		return;
	r->stopping = true;
	uv_timer_stop(&r->timer);
	for (struct qdelivery *d = r->deliveries; d != NULL; d = d->next)
		for (size_t i = 0; i < d->n_jobs; i++)
			if (d->jobs[i].client != NULL)
				out_client_abort(d->jobs[i].client);
	out_client_close_idle(r);
	if (r->dns != NULL)
		dns_resolver_free(&r->dns);
	uv_close((uv_handle_t *)&r->timer, NULL);
}
