/* pop3-maildrop.c — the maildrop of a session: one lock per user across every
 * pop3d process (an flock'ed file under state_dir), the message list read once
 * at login, and the UPDATE state that applies the deletions at QUIT. */
#include "pop3d/pop3-job.h"
#include "common/log.h"
#include "common/pool.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void pop3_uidl(const struct pop3_maildrop *drop, const struct pop3_message *m, char *out,
	       size_t size)
{
	/* Dovecot's default pop3_uidl_format (%08Xu%08Xv): mail moved over from a
	 * Dovecot store with the same UIDs keeps its UIDLs, and clients do not
	 * download everything again. UIDs are never reused within a UIDVALIDITY. */
	snprintf(out, size, "%08X%08X", m->uid, drop->uidvalidity);
}

long pop3_expire_days(const struct warren_config *conf)
{
	const char *e = conf->pop3.expire;
	if (e == NULL || e[0] == '\0')
		return -1;
	if (strcasecmp(e, "never") == 0)
		return -2;
	char *end;
	errno = 0;
	long days = strtol(e, &end, 10);
	if (errno != 0 || *end != '\0' || days < 0 || days > 100000 || !isdigit((unsigned char)e[0]))
		return -1;
	return days;
}

void pop3_maildrop_free(struct pop3_maildrop *drop)
{
	for (size_t i = 0; i < drop->count; i++) {
		free(drop->msgs[i].env_from);
		free(drop->msgs[i].env_to);
		free(drop->msgs[i].prefix);
	}
	free(drop->msgs);
	*drop = (struct pop3_maildrop){ 0 };
}

/* ---- lock ------------------------------------------------------------------ */

/* The lock file name of a user: the address with anything but [a-z0-9@._+-]
 * written as %XX, so no name can leave the folder. */
static void lock_path(const char *state_dir, const char *user, char *out, size_t size)
{
	int n = snprintf(out, size, "%s/%s/", state_dir, POP3_LOCK_DIR);
	size_t o = n > 0 && (size_t)n < size ? (size_t)n : size;
	for (const unsigned char *p = (const unsigned char *)user; *p != '\0' && o + 4 < size; p++) {
		if (isalnum(*p) || strchr("@._+-", *p) != NULL) {
			if (p == (const unsigned char *)user && *p == '.')
				o += (size_t)snprintf(out + o, size - o, "%%%02X", *p);
			else
				out[o++] = (char)*p;
		} else {
			o += (size_t)snprintf(out + o, size - o, "%%%02X", *p);
		}
	}
	if (o < size)
		out[o] = '\0';
	else
		out[size - 1] = '\0';
	if (o + 5 < size)
		memcpy(out + o, ".lock", 6);
}

/* Takes the user's lock; with a login delay, checks and records the login time
 * (kept in the lock file, so it holds across processes and restarts). */
static int take_lock(struct pop3_job *job)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(job->lock_path, '/');
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - job->lock_path), job->lock_path);
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		return -1;
	int fd = open(job->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;
		close(fd);
		if (err == EWOULDBLOCK) {
			job->error = POP3_JOB_IN_USE;
			return 0;
		}
		errno = err;
		return -1;
	}
	job->lock_fd = fd;
	if (job->login_delay_s > 0) {
		char buf[32];
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		long long last = 0;
		if (n > 0) {
			buf[n] = '\0';
			last = atoll(buf);
		}
		long long now = (long long)time(NULL);
		if (last > 0 && now >= last && now - last < (long long)job->login_delay_s) {
			job->error = POP3_JOB_LOGIN_DELAY;
			return 0;
		}
	}
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%lld\n", (long long)time(NULL));
	if (pwrite(fd, buf, (size_t)len, 0) == len)
		(void)ftruncate(fd, len);
	return 0;
}

/* ---- open: lock and load ----------------------------------------------------- */

static int open_work(struct pop3_job *job)
{
	if (take_lock(job) < 0) {
		job->error = POP3_JOB_LOCK_FAILED;
		return STORE_EIO;
	}
	if (job->error != POP3_JOB_OK)
		return STORE_OK;
	int ret = store_user_ensure(job->store, job->user);
	if (ret != STORE_OK)
		return ret;
	ret = store_mailbox_get(job->store, job->user, job->mailbox, &job->mbox);
	if (ret == STORE_ENOTFOUND) {
		job->error = POP3_JOB_NO_MAILBOX;
		return STORE_OK;
	}
	if (ret != STORE_OK)
		return ret;
	return store_messages(job->store, job->mbox.id, 1, UINT32_MAX, &job->msgs, &job->count);
}

/* The Delivered-To line for a copy whose envelope recipient is not the mailbox
 * itself (multi-drop, aliases), or NULL. Only printable ASCII is kept. */
static char *delivered_to(const struct pop3_session *s, const char *env_to)
{
	if (!s->conf->pop3.delivered_to || env_to[0] == '\0' ||
	    strcasecmp(env_to, s->mailbox->address) == 0)
		return NULL;
	char clean[320];
	size_t n = 0;
	for (const char *p = env_to; *p != '\0' && n < sizeof(clean) - 1; p++)
		clean[n++] = (*p > ' ' && *p < 0x7f) ? *p : '?';
	clean[n] = '\0';
	char line[360];
	snprintf(line, sizeof(line), "Delivered-To: %s\r\n", clean);
	return x_strdup(line);
}

static void take_messages(struct pop3_session *s, struct pop3_job *job)
{
	struct pop3_maildrop *d = &s->drop;
	d->mailbox_id = job->mbox.id;
	d->uidvalidity = job->mbox.uidvalidity;
	d->count = job->count;
	d->msgs = x_calloc(job->count > 0 ? job->count : 1, sizeof(*d->msgs));
	for (size_t i = 0; i < job->count; i++) {
		const struct store_message *sm = &job->msgs[i];
		struct pop3_message *m = &d->msgs[i];
		m->uid = sm->uid;
		m->flags = sm->flags;
		m->size = sm->size;
		m->internal_date = sm->internal_date;
		memcpy(m->blob, sm->blob, sizeof(m->blob));
		m->env_from = x_strdup(sm->env_from);
		m->env_to = x_strdup(sm->env_to);
		m->prefix = delivered_to(s, sm->env_to);
		if (m->prefix != NULL)
			m->size += strlen(m->prefix);
		d->size += m->size;
	}
}

static void open_done(struct pop3_job *job, int result)
{
	struct pop3_session *s = job->s;
	const char *user = s->mailbox->address;
	if (result != STORE_OK || job->error == POP3_JOB_LOCK_FAILED) {
		log_error("%s: cannot open the maildrop of %s: %s", s->id, user,
			  job->error == POP3_JOB_LOCK_FAILED ? "lock file failed" :
			  store_strerror(result));
		s->mailbox = NULL;
		pop3_enter_state(s, POP3_STATE_AUTHORIZATION);
		pop3_err(s, "[SYS/TEMP] Cannot open the mailbox, try again later.");
		return;
	}
	switch (job->error) {
	case POP3_JOB_IN_USE:
		log_info("%s: mailbox in use: user=<%s>, rip=%s", s->id, user,
			 net_conn_peer_ip(s->conn));
		pop3_err(s, "[IN-USE] Mailbox is locked by another POP3 session.");
		break;
	case POP3_JOB_LOGIN_DELAY:
		log_info("%s: login too soon after the last one: user=<%s>, rip=%s", s->id, user,
			 net_conn_peer_ip(s->conn));
		pop3_err(s, "[LOGIN-DELAY] Wait %u seconds between logins.", job->login_delay_s);
		break;
	case POP3_JOB_NO_MAILBOX:
		log_warn("%s: user %s has no mailbox \"%.100s\" for POP3", s->id, user,
			 job->mailbox);
		pop3_err(s, "[SYS/PERM] The mailbox is not available.");
		break;
	default:
		take_messages(s, job);
		s->lock_fd = job->lock_fd;
		job->lock_fd = -1;
		pop3_enter_state(s, POP3_STATE_TRANSACTION);
		log_info("%s: maildrop: user=<%s>, mailbox=%.100s, messages=%zu, size=%llu",
			 s->id, user, job->mailbox, s->drop.count, (unsigned long long)s->drop.size);
		pop3_ok(s, "Logged in.");
		return;
	}
	s->mailbox = NULL;
	pop3_enter_state(s, POP3_STATE_AUTHORIZATION);
}

void pop3_maildrop_open(struct pop3_session *s)
{
	struct pop3_job *job = pop3_job_new(s, open_work, open_done);
	snprintf(job->user, sizeof(job->user), "%s", s->mailbox->address);
	snprintf(job->mailbox, sizeof(job->mailbox), "%s",
		 s->conf->pop3.mailbox != NULL ? s->conf->pop3.mailbox : "INBOX");
	lock_path(s->conf->state_dir, job->user, job->lock_path, sizeof(job->lock_path));
	job->login_delay_s = s->conf->pop3.login_delay_s;
	if (pop3_job_start(job) < 0) {
		s->mailbox = NULL;
		pop3_enter_state(s, POP3_STATE_AUTHORIZATION);
		pop3_err(s, "[SYS/TEMP] Cannot open the mailbox, try again later.");
	}
}

/* ---- update: QUIT in TRANSACTION -------------------------------------------------- */

static int update_work(struct pop3_job *job)
{
	int ret = STORE_OK;
	if (job->n_seen > 0)
		ret = store_flags_update(job->store, job->mailbox_id, STORE_FLAGS_ADD,
					 STORE_FLAG_SEEN, NULL, 0, job->seen, job->n_seen);
	if (ret != STORE_OK)
		return ret;
	if (job->n_expunge > 0) {
		uint64_t modseq;
		ret = store_expunge(job->store, job->mailbox_id, job->expunge, job->n_expunge,
				    &modseq);
		for (size_t i = 0; ret == STORE_OK && i < job->n_expunge; i++)
			if (job->expunge[i] != 0)
				job->expunged++;
	}
	return ret;
}

static void update_done(struct pop3_job *job, int result)
{
	struct pop3_session *s = job->s;
	if (result != STORE_OK) {
		log_error("%s: UPDATE of %s failed: %s", s->id, s->mailbox->address,
			  store_strerror(result));
		pop3_err(s, "[SYS/TEMP] Some deleted messages were not removed.");
	} else if (job->n_expunge > 0) {
		pop3_ok(s, "Logging out, %zu message%s deleted.", job->n_expunge,
			job->n_expunge == 1 ? "" : "s");
	} else {
		pop3_ok(s, "Logging out.");
	}
	pop3_session_close(s);
}

/* Retrieved messages that the EXPIRE policy removes at QUIT. */
static bool expires(const struct pop3_message *m, long days, time_t now)
{
	if (days < 0 || !(m->retrieved || (m->flags & STORE_FLAG_SEEN)))
		return false;
	if (days == 0)
		return m->retrieved;
	return m->internal_date + (int64_t)days * 86400 <= (int64_t)now;
}

void pop3_maildrop_update(struct pop3_session *s)
{
	struct pop3_maildrop *d = &s->drop;
	struct pop3_job *job = pop3_job_new(s, update_work, update_done);
	long days = pop3_expire_days(s->conf);
	time_t now = time(NULL);
	job->mailbox_id = d->mailbox_id;
	job->expunge = x_calloc(d->count + 1, sizeof(*job->expunge));
	job->seen = x_calloc(d->count + 1, sizeof(*job->seen));
	for (size_t i = 0; i < d->count; i++) {
		const struct pop3_message *m = &d->msgs[i];
		if (m->deleted || expires(m, days, now))
			job->expunge[job->n_expunge++] = m->uid;
		else if (m->retrieved && !(m->flags & STORE_FLAG_SEEN))
			job->seen[job->n_seen++].uid = m->uid;
	}
	pop3_enter_state(s, POP3_STATE_UPDATE);
	s->stats.quit = true;
	if (job->n_expunge == 0 && job->n_seen == 0) {
		free(job->expunge);
		free(job->seen);
		free(job);
		/* released before the reply goes out: the client may log in again at once */
		if (s->lock_fd >= 0) {
			close(s->lock_fd);
			s->lock_fd = -1;
		}
		pop3_ok(s, "Logging out.");
		pop3_session_close(s);
		return;
	}
	/* the lock stays held until the deletions are done, even if the client goes */
	job->lock_fd = s->lock_fd;
	s->lock_fd = -1;
	if (pop3_job_start(job) < 0) {
		pop3_err(s, "[SYS/TEMP] Some deleted messages were not removed.");
		pop3_session_close(s);
	}
}

void pop3_maildrop_session_gone(struct pop3_session *s)
{
	if (s->job != NULL) {
		s->job->s = NULL;
		s->job = NULL;
	}
	if (s->lock_fd >= 0) {
		close(s->lock_fd);
		s->lock_fd = -1;
	}
	pop3_maildrop_free(&s->drop);
}
