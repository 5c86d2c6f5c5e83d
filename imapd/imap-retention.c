/* imap-retention.c — the trashcan's retention (MISSION I3): messages that have
 * been in a user's trash (or junk) folder longer than the user's or else the
 * domain's trash_retention (junk_retention) are removed, at each login of the user and, every
 * imap.retention_interval, for the next imap.retention_batch configured mailboxes.
 * The store work runs on libuv's thread pool; one periodic run at a time. */
#include "imapd/imap-retention.h"
#include "imapd/imap-commands.h"
#include "common/log.h"
#include "common/pool.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* UIDs whose records are read at once. */
#define RETENTION_UID_CHUNK 4096
/* Messages removed in one transaction. */
#define RETENTION_EXPUNGE_MAX 1000
/* Messages removed from one folder in one run; the rest goes in the next one. */
#define RETENTION_REMOVE_MAX 20000
/* Longest wait between two looks at the configuration (a reload may shorten the
 * interval or turn the retention on). */
#define RETENTION_TICK_MAX_MS (60 * 1000)

/* ---- one user ---- */

static int expunge_batch(struct store *store, uint64_t mailbox_id, uint32_t *uids,
			 size_t count, size_t *removed_r)
{
	uint64_t hms;
	if (count == 0)
		return 0;
	int ret = store_expunge(store, mailbox_id, uids, count, &hms);
	if (ret != 0)
		return ret;
	for (size_t i = 0; i < count; i++)
		if (uids[i] != 0)
			(*removed_r)++;
	return 0;
}

/* Removes the messages of mb saved before limit. */
static int folder_expire(struct store *store, const struct store_mailbox *mb, int64_t limit,
			 size_t *removed_r)
{
	uint32_t uids[RETENTION_EXPUNGE_MAX];
	size_t count = 0;
	int ret = 0;
	for (uint64_t lo = 1; lo < mb->uidnext && ret == 0 &&
	     *removed_r + count < RETENTION_REMOVE_MAX; lo += RETENTION_UID_CHUNK) {
		uint64_t hi = lo + RETENTION_UID_CHUNK - 1;
		struct store_message *list;
		size_t n;
		ret = store_messages(store, mb->id, (uint32_t)lo,
				     hi > 0xffffffffu ? 0xffffffffu : (uint32_t)hi, &list, &n);
		if (ret != 0)
			break;
		for (size_t i = 0; i < n && ret == 0; i++) {
			int64_t when = list[i].save_date != 0 ? list[i].save_date :
				list[i].internal_date;
			if (when >= limit)
				continue;
			uids[count++] = list[i].uid;
			if (count == RETENTION_EXPUNGE_MAX) {
				ret = expunge_batch(store, mb->id, uids, count, removed_r);
				count = 0;
				if (*removed_r >= RETENTION_REMOVE_MAX)
					break;
			}
		}
		free(list);
	}
	if (ret == 0)
		ret = expunge_batch(store, mb->id, uids, count, removed_r);
	return ret;
}

/* The user's folder for special_use: the configured name, else the folder that has
 * the attribute (created under an older name). NULL when there is none. */
static const struct store_mailbox *find_folder(const struct store_mailbox *list, size_t n,
					       const char *name, unsigned special_use)
{
	for (size_t i = 0; name != NULL && i < n; i++)
		if (strcmp(list[i].name, name) == 0)
			return &list[i];
	for (size_t i = 0; i < n; i++)
		if (list[i].special_use & special_use)
			return &list[i];
	return NULL;
}

/* The user's retention of the folder (its own, else the domain's); 0: none. */
static unsigned retention_of(const struct conf_mailbox *user, unsigned special)
{
	const struct conf_domain *d = user->domain;
	unsigned own = special == STORE_SPECIAL_TRASH ? user->imap.trash_retention_s :
		user->imap.junk_retention_s;
	if (own != 0 || d == NULL)
		return own;
	return special == STORE_SPECIAL_TRASH ? d->imap.trash_retention_s :
		d->imap.junk_retention_s;
}

static bool has_retention(const struct conf_mailbox *user)
{
	return retention_of(user, STORE_SPECIAL_TRASH) != 0 ||
		retention_of(user, STORE_SPECIAL_JUNK) != 0;
}

int imap_retention_user(struct store *store, const struct conf_mailbox *user,
			const char *log_id, int64_t now, size_t *removed_r)
{
	if (!has_retention(user))
		return 0;
	const struct { unsigned special; unsigned retention_s; } folders[] = {
		{ STORE_SPECIAL_TRASH, retention_of(user, STORE_SPECIAL_TRASH) },
		{ STORE_SPECIAL_JUNK, retention_of(user, STORE_SPECIAL_JUNK) },
	};
	struct store_mailbox *list;
	size_t n;
	int ret = store_mailbox_list(store, user->address, &list, &n);
	if (ret != 0)
		return ret == STORE_ENOTFOUND ? 0 : ret;
	for (size_t f = 0; f < sizeof(folders) / sizeof(folders[0]) && ret == 0; f++) {
		if (folders[f].retention_s == 0)
			continue;
		const struct store_mailbox *mb = find_folder(list, n,
			imap_user_folder_name(user, folders[f].special), folders[f].special);
		if (mb == NULL || mb->messages == 0)
			continue;
		size_t removed = 0;
		ret = folder_expire(store, mb, now - (int64_t)folders[f].retention_s, &removed);
		if (removed > 0)
			log_info("%s: removed %zu message(s) older than the retention from %s of %s",
				 log_id, removed, mb->name, user->address);
		*removed_r += removed;
	}
	free(list);
	return ret;
}

/* ---- the periodic run ---- */

struct imap_retention {
	struct service *svc;
	uv_timer_t timer;
	bool started, stopping, running;
	int64_t last_run;
	size_t domain, mailbox;          /* where the next run starts */
};

/* The daemon's one retention runner (it lives as long as the loop). */
static struct imap_retention retention;

struct retention_job {
	struct imap_retention *r;
	struct warren_config *conf;
	struct store *store;
	int64_t now;
	size_t domain, mailbox;          /* cursor, moved along by the work */
	size_t looked, removed;
};

static int retention_work(void *arg)
{
	struct retention_job *j = arg;
	const struct warren_config *conf = j->conf;
	size_t total = 0;
	for (size_t i = 0; i < conf->n_domains; i++)
		total += conf->domains[i].n_mailboxes;
	if (j->domain >= conf->n_domains)
		j->domain = j->mailbox = 0;
	/* each configured mailbox at most once per run */
	for (size_t visited = 0; visited < total && j->looked < conf->imap.retention_batch; ) {
		const struct conf_domain *d = &conf->domains[j->domain];
		if (j->mailbox >= d->n_mailboxes) {
			j->mailbox = 0;
			j->domain = (j->domain + 1) % conf->n_domains;
			continue;
		}
		const struct conf_mailbox *m = &d->mailboxes[j->mailbox++];
		visited++;
		if (!has_retention(m))
			continue;
		j->looked++;
		int ret = imap_retention_user(j->store, m, "retention", j->now, &j->removed);
		if (ret == STORE_ERECOVER)
			return ret;
		if (ret != 0)
			log_warn("retention: %s: %s", m->address, store_strerror(ret));
	}
	return 0;
}

static void schedule(struct imap_retention *r, uint64_t ms);

static void retention_done(void *arg, int result)
{
	struct retention_job *j = arg;
	struct imap_retention *r = j->r;
	r->running = false;
	r->domain = j->domain;
	r->mailbox = j->mailbox;
	if (result == STORE_ERECOVER) {
		log_error("retention: the store needs recovery");
		store_request_recovery(j->conf->state_dir);
	}
	if (j->removed > 0)
		log_info("retention: looked at %zu mailbox(es), removed %zu message(s)",
			 j->looked, j->removed);
	else
		log_debug("retention: looked at %zu mailbox(es), nothing to remove", j->looked);
	unsigned interval = j->conf->imap.retention_interval_s;
	conf_unref(&j->conf);
	free(j);
	if (!r->stopping)
		schedule(r, interval != 0 ? (uint64_t)interval * 1000 : RETENTION_TICK_MAX_MS);
}

static void tick(uv_timer_t *timer)
{
	struct imap_retention *r = timer->data;
	if (r->stopping || r->running)
		return;
	struct warren_config *conf = service_conf(r->svc);
	unsigned interval = conf->imap.retention_interval_s;
	int64_t now = (int64_t)time(NULL);
	if (interval == 0) {
		schedule(r, RETENTION_TICK_MAX_MS);
		return;
	}
	if (now - r->last_run < (int64_t)interval) {
		schedule(r, (uint64_t)(interval - (now - r->last_run)) * 1000);
		return;
	}
	struct retention_job *j = x_calloc(1, sizeof(*j));
	j->r = r;
	j->conf = conf_ref(conf);
	j->store = service_store(r->svc);
	j->now = now;
	j->domain = r->domain;
	j->mailbox = r->mailbox;
	r->last_run = now;
	r->running = true;
	if (store_async(service_loop(r->svc), retention_work, retention_done, j) < 0) {
		r->running = false;
		conf_unref(&j->conf);
		free(j);
		schedule(r, (uint64_t)interval * 1000);
	}
}

static void schedule(struct imap_retention *r, uint64_t ms)
{
	uv_timer_start(&r->timer, tick, ms < RETENTION_TICK_MAX_MS ? ms : RETENTION_TICK_MAX_MS, 0);
}

void imap_retention_start(struct service *svc)
{
	struct imap_retention *r = &retention;
	r->svc = svc;
	r->last_run = (int64_t)time(NULL);
	uv_timer_init(service_loop(svc), &r->timer);
	r->timer.data = r;
	r->started = true;
	unsigned interval = service_conf(svc)->imap.retention_interval_s;
	schedule(r, interval != 0 ? (uint64_t)interval * 1000 : RETENTION_TICK_MAX_MS);
}

static void timer_closed(uv_handle_t *handle)
{
	(void)handle;
}

void imap_retention_stop(struct service *svc)
{
	struct imap_retention *r = &retention;
	(void)svc;
	if (!r->started || r->stopping)
		return;
	r->stopping = true;
	uv_close((uv_handle_t *)&r->timer, timer_closed);
}
