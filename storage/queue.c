/* queue.c — the outbound queue: records in queue.db, bodies in state_dir/queue. */
#include "storage/queue.h"
#include "storage/store-private.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/pool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Version byte of the record format. */
#define QUEUE_REC_VERSION 1
/* Bytes copied at a time from a body file. */
#define QUEUE_COPY_CHUNK (128 * 1024)

/* ---- records ---------------------------------------------------------------- */

static void put_u64(struct buf *b, uint64_t v)
{
	unsigned char p[8];
	put_be64(p, v);
	buf_append(b, p, 8);
}

static void put_str(struct buf *b, const char *s)
{
	size_t len = strlen(s);
	unsigned char p[2] = { (unsigned char)(len >> 8), (unsigned char)len };
	buf_append(b, p, 2);
	buf_append(b, s, len);
}

struct reader {
	const unsigned char *p, *end;
	bool bad;
};

static uint64_t get_u64(struct reader *r)
{
	if (r->end - r->p < 8) {
		r->bad = true;
		return 0;
	}
	uint64_t v = get_be64(r->p);
	r->p += 8;
	return v;
}

static void get_str(struct reader *r, char *out, size_t size)
{
	out[0] = '\0';
	if (r->end - r->p < 2) {
		r->bad = true;
		return;
	}
	size_t len = ((size_t)r->p[0] << 8) | r->p[1];
	r->p += 2;
	if ((size_t)(r->end - r->p) < len || len >= size || memchr(r->p, '\0', len) != NULL) {
		r->bad = true;
		return;
	}
	memcpy(out, r->p, len);
	out[len] = '\0';
	r->p += len;
}

static void rec_encode(const struct queue_msg *m, struct buf *b)
{
	unsigned char v = QUEUE_REC_VERSION;
	buf_append(b, &v, 1);
	put_str(b, m->from);
	put_str(b, m->envid);
	put_u64(b, (uint64_t)m->ret);
	put_u64(b, (uint64_t)m->body);
	put_u64(b, m->smtputf8);
	put_u64(b, m->flags);
	put_u64(b, (uint64_t)m->created);
	put_u64(b, m->size);
	put_str(b, m->origin);
	put_u64(b, (uint64_t)(int64_t)m->lease_pid);
	put_u64(b, (uint64_t)m->lease_until);
	put_u64(b, m->n_rcpts);
	for (size_t i = 0; i < m->n_rcpts; i++) {
		const struct queue_rcpt *r = &m->rcpts[i];
		put_str(b, r->addr);
		put_str(b, r->orcpt);
		put_u64(b, r->notify);
		put_u64(b, (uint64_t)r->state);
		put_u64(b, r->attempts);
		put_u64(b, (uint64_t)r->next_attempt);
		put_u64(b, (uint64_t)r->last_attempt);
		put_u64(b, (uint64_t)(int64_t)r->code);
		put_str(b, r->status);
		put_str(b, r->reply);
		put_str(b, r->remote);
		put_u64(b, r->delay_notified);
	}
}

static int rec_decode(const char *id, const void *data, size_t len, struct queue_msg *m)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "%s", id);
	struct reader r = { data, (const unsigned char *)data + len, false };
	if (len < 1 || r.p[0] != QUEUE_REC_VERSION)
		return -1;
	r.p++;
	get_str(&r, m->from, sizeof(m->from));
	get_str(&r, m->envid, sizeof(m->envid));
	m->ret = (enum queue_ret)get_u64(&r);
	m->body = (enum queue_body)get_u64(&r);
	m->smtputf8 = get_u64(&r) != 0;
	m->flags = (unsigned)get_u64(&r);
	m->created = (int64_t)get_u64(&r);
	m->size = get_u64(&r);
	get_str(&r, m->origin, sizeof(m->origin));
	m->lease_pid = (int32_t)(int64_t)get_u64(&r);
	m->lease_until = (int64_t)get_u64(&r);
	uint64_t n = get_u64(&r);
	if (r.bad || n == 0 || n > QUEUE_RCPTS_MAX || m->ret > QUEUE_RET_HDRS ||
	    m->body > QUEUE_BODY_BINARYMIME)
		return -1;
	m->rcpts = x_calloc((size_t)n, sizeof(*m->rcpts));
	m->n_rcpts = (size_t)n;
	for (size_t i = 0; i < m->n_rcpts && !r.bad; i++) {
		struct queue_rcpt *q = &m->rcpts[i];
		get_str(&r, q->addr, sizeof(q->addr));
		get_str(&r, q->orcpt, sizeof(q->orcpt));
		q->notify = (unsigned)get_u64(&r);
		uint64_t state = get_u64(&r);
		q->state = state <= QUEUE_RCPT_FAILED ? (enum queue_rcpt_state)state :
			QUEUE_RCPT_PENDING;
		if (state > QUEUE_RCPT_FAILED)
			r.bad = true;
		q->attempts = (uint32_t)get_u64(&r);
		q->next_attempt = (int64_t)get_u64(&r);
		q->last_attempt = (int64_t)get_u64(&r);
		q->code = (int)(int64_t)get_u64(&r);
		get_str(&r, q->status, sizeof(q->status));
		get_str(&r, q->reply, sizeof(q->reply));
		get_str(&r, q->remote, sizeof(q->remote));
		q->delay_notified = get_u64(&r) != 0;
	}
	if (r.bad || r.p != r.end) {
		queue_msg_free(m);
		return -1;
	}
	return 0;
}

void queue_msg_free(struct queue_msg *msg)
{
	x_free(&msg->rcpts);
	msg->n_rcpts = 0;
}

void queue_msgs_free(struct queue_msg *msgs, size_t count)
{
	for (size_t i = 0; i < count; i++)
		queue_msg_free(&msgs[i]);
	free(msgs);
}

const char *queue_rcpt_state_name(enum queue_rcpt_state state)
{
	switch (state) {
	case QUEUE_RCPT_PENDING: return "pending";
	case QUEUE_RCPT_DELIVERED: return "delivered";
	case QUEUE_RCPT_FAILED: return "failed";
	}
	return "?";
}

size_t queue_msg_count(const struct queue_msg *msg, enum queue_rcpt_state state)
{
	size_t n = 0;
	for (size_t i = 0; i < msg->n_rcpts; i++)
		n += msg->rcpts[i].state == state;
	return n;
}

static bool valid_id(const char *id)
{
	size_t len = strlen(id);
	if (len == 0 || len >= QUEUE_ID_SIZE)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'F')))
			return false;
	return true;
}

static void make_id(char id[QUEUE_ID_SIZE])
{
	static unsigned counter;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	unsigned long long us = (unsigned long long)ts.tv_sec * 1000000ULL +
				(unsigned long long)ts.tv_nsec / 1000;
	unsigned c = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
	unsigned tail = (((unsigned)getpid() << 4) ^ c) & 0xfffff;
	snprintf(id, QUEUE_ID_SIZE, "%011llX%05X", us & 0xfffffffffffULL, tail);
}

/* ---- bodies ------------------------------------------------------------------ */

static void queue_dir(struct store *s, char *path, size_t size)
{
	snprintf(path, size, "%s/queue", s->dir);
}

void queue_body_path(struct store *store, const char *id, char *path, size_t size)
{
	snprintf(path, size, "%s/queue/%s", store->dir, id);
}

/* Writes prepend + body to queue/<id> durably; *size_r the bytes written. */
static int body_write(struct store *s, const char *id, const char *prepend,
		      const struct store_body *body, uint64_t *size_r)
{
	char dir[4096], tmp[4200], path[4200];
	queue_dir(s, dir, sizeof(dir));
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		return STORE_EIO;
	snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", dir, id);
	queue_body_path(s, id, path, sizeof(path));
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		log_error("queue: create %s: %s", tmp, strerror(errno));
		return STORE_EIO;
	}
	uint64_t size = 0;
	int ret = 0;
	if (prepend != NULL) {
		ret = fd_write_all(fd, prepend, strlen(prepend));
		size += strlen(prepend);
	}
	if (ret == 0 && body->data != NULL) {
		ret = fd_write_all(fd, body->data, body->len);
		size += body->len;
	} else if (ret == 0 && body->path != NULL) {
		int in = open(body->path, O_RDONLY | O_CLOEXEC);
		if (in < 0)
			ret = -1;
		char *chunk = in >= 0 ? x_malloc(QUEUE_COPY_CHUNK) : NULL;
		while (in >= 0 && ret == 0) {
			ssize_t n = read(in, chunk, QUEUE_COPY_CHUNK);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				ret = -1;
			if (n <= 0)
				break;
			ret = fd_write_all(fd, chunk, (size_t)n);
			size += (uint64_t)n;
		}
		free(chunk);
		if (in >= 0)
			close(in);
	}
	if (ret == 0 && fsync(fd) < 0)
		ret = -1;
	if (close(fd) < 0)
		ret = -1;
	/* never over another message's body (a caller's id may repeat) */
	if (ret == 0 && renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0) {
		int err = errno;
		unlink(tmp);
		if (err == EEXIST)
			return STORE_EEXIST;
		errno = err;
		ret = -1;
	}
	if (ret == 0 && fsync_dir(dir) < 0)
		ret = -1;
	if (ret != 0) {
		log_error("queue: write %s: %s", path, strerror(errno));
		unlink(tmp);
		return STORE_EIO;
	}
	*size_r = size;
	return 0;
}

int queue_body_read(struct store *store, const char *id, size_t max, char **data_r,
		    size_t *len_r)
{
	char path[4200];
	if (!valid_id(id))
		return STORE_EINVAL;
	queue_body_path(store, id, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? STORE_ENOTFOUND : STORE_EIO;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return STORE_EIO;
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return STORE_ETOOBIG;
	}
	size_t len = (size_t)st.st_size, got = 0;
	char *data = x_malloc(len + 1);
	while (got < len) {
		ssize_t n = read(fd, data + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != len) {
		free(data);
		return STORE_EIO;
	}
	data[len] = '\0';
	*data_r = data;
	*len_r = len;
	return 0;
}

/* ---- transactions -------------------------------------------------------------- */

static int rec_get(struct store *s, DB_TXN *txn, const char *id, struct queue_msg *m,
		   u_int32_t flags)
{
	DBT key = { .data = (void *)id, .size = (u_int32_t)strlen(id) };
	DBT val = { .flags = DB_DBT_MALLOC };
	int ret = s->db[DB_OUTQUEUE]->get(s->db[DB_OUTQUEUE], txn, &key, &val, flags);
	if (ret != 0)
		return ret == DB_NOTFOUND ? STORE_ENOTFOUND : ret;
	ret = rec_decode(id, val.data, val.size, m);
	free(val.data);
	if (ret < 0) {
		log_error("queue: damaged record %s", id);
		return STORE_EIO;
	}
	return 0;
}

static int rec_put(struct store *s, DB_TXN *txn, const struct queue_msg *m, u_int32_t flags)
{
	struct buf b = BUF_INIT(SIZE_MAX);
	rec_encode(m, &b);
	DBT key = { .data = (void *)m->id, .size = (u_int32_t)strlen(m->id) };
	DBT val = { .data = (void *)buf_data(&b), .size = (u_int32_t)buf_len(&b) };
	int ret = s->db[DB_OUTQUEUE]->put(s->db[DB_OUTQUEUE], txn, &key, &val, flags);
	buf_free(&b);
	return ret == DB_KEYEXIST ? STORE_EEXIST : ret;
}

static int rec_del(struct store *s, DB_TXN *txn, const char *id)
{
	DBT key = { .data = (void *)id, .size = (u_int32_t)strlen(id) };
	int ret = s->db[DB_OUTQUEUE]->del(s->db[DB_OUTQUEUE], txn, &key, 0);
	return ret == DB_NOTFOUND ? STORE_ENOTFOUND : ret;
}

static void queue_announce(struct store *s)
{
	uint64_t id = QUEUE_ANNOUNCE_ID;
	store_announce(s, &id, 1);
}

static int add_fn(struct store *s, DB_TXN *txn, void *arg)
{
	return rec_put(s, txn, arg, DB_NOOVERWRITE);
}

int queue_add(struct store *store, const char *prepend, const struct store_body *body,
	      struct queue_msg *msg)
{
	if (msg->n_rcpts == 0 || msg->n_rcpts > QUEUE_RCPTS_MAX)
		return STORE_EINVAL;
	if (msg->id[0] == '\0')
		make_id(msg->id);
	else if (!valid_id(msg->id))
		return STORE_EINVAL;
	if (msg->created == 0)
		msg->created = (int64_t)time(NULL);
	int ret = STORE_EEXIST;
	/* an id in use (a caller's id seen before): take a fresh one */
	for (int attempt = 0; attempt < 5 && ret == STORE_EEXIST; attempt++) {
		if (attempt > 0)
			make_id(msg->id);
		ret = body_write(store, msg->id, prepend, body, &msg->size);
		if (ret != 0)
			continue;
		ret = store_txn(store, add_fn, msg);
		if (ret != 0) {
			char path[4200];
			queue_body_path(store, msg->id, path, sizeof(path));
			unlink(path);
		}
	}
	if (ret == 0)
		queue_announce(store);
	return ret;
}

int queue_get(struct store *store, const char *id, struct queue_msg *msg_r)
{
	if (!valid_id(id))
		return STORE_EINVAL;
	DB_TXN *txn;
	int ret = store_read_txn(store, &txn);
	if (ret != 0)
		return ret;
	ret = rec_get(store, txn, id, msg_r, 0);
	txn->commit(txn, 0);
	return store_db_error(store, ret, "queue get");
}

int queue_list(struct store *store, struct queue_msg **msgs_r, size_t *count_r)
{
	*msgs_r = NULL;
	*count_r = 0;
	DB_TXN *txn;
	int ret = store_read_txn(store, &txn);
	if (ret != 0)
		return ret;
	DBC *cur;
	ret = store->db[DB_OUTQUEUE]->cursor(store->db[DB_OUTQUEUE], txn, &cur, 0);
	if (ret != 0) {
		txn->abort(txn);
		return store_db_error(store, ret, "queue cursor");
	}
	struct queue_msg *msgs = NULL;
	size_t n = 0, cap = 0;
	DBT key = { .flags = DB_DBT_REALLOC }, val = { .flags = DB_DBT_REALLOC };
	while ((ret = cur->get(cur, &key, &val, DB_NEXT)) == 0) {
		char id[QUEUE_ID_SIZE];
		if (key.size == 0 || key.size >= sizeof(id))
			continue;
		memcpy(id, key.data, key.size);
		id[key.size] = '\0';
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			msgs = x_realloc(msgs, cap * sizeof(*msgs));
		}
		if (rec_decode(id, val.data, val.size, &msgs[n]) < 0) {
			log_error("queue: damaged record %s", id);
			continue;
		}
		n++;
	}
	free(key.data);
	free(val.data);
	cur->close(cur);
	txn->commit(txn, 0);
	if (ret != DB_NOTFOUND) {
		queue_msgs_free(msgs, n);
		return store_db_error(store, ret, "queue list");
	}
	*msgs_r = msgs;
	*count_r = n;
	return 0;
}

struct claim_arg {
	const char *id;
	int32_t pid;
	int64_t until;
	struct queue_msg *msg;
};

static bool pid_alive(int32_t pid)
{
	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

static int claim_fn(struct store *s, DB_TXN *txn, void *varg)
{
	struct claim_arg *a = varg;
	queue_msg_free(a->msg);
	int ret = rec_get(s, txn, a->id, a->msg, DB_RMW);
	if (ret != 0)
		return ret;
	int64_t now = (int64_t)time(NULL);
	if (a->msg->lease_pid != a->pid && a->msg->lease_until > now &&
	    pid_alive(a->msg->lease_pid))
		return STORE_EEXIST;
	if (a->msg->flags & QUEUE_F_HOLD)
		return STORE_ECHANGED;
	a->msg->lease_pid = a->pid;
	a->msg->lease_until = a->until;
	return rec_put(s, txn, a->msg, 0);
}

int queue_claim(struct store *store, const char *id, int32_t pid, int64_t until,
		struct queue_msg *msg_r)
{
	if (!valid_id(id))
		return STORE_EINVAL;
	char key[QUEUE_ID_SIZE];   /* id may point into msg_r, which is overwritten */
	snprintf(key, sizeof(key), "%s", id);
	memset(msg_r, 0, sizeof(*msg_r));
	struct claim_arg a = { key, pid, until, msg_r };
	int ret = store_txn(store, claim_fn, &a);
	if (ret != 0)
		queue_msg_free(msg_r);
	return ret;
}

struct put_arg {
	const struct queue_msg *msg;
	bool removed;
};

static int put_fn(struct store *s, DB_TXN *txn, void *varg)
{
	struct put_arg *a = varg;
	struct queue_msg cur;
	int ret = rec_get(s, txn, a->msg->id, &cur, DB_RMW);
	if (ret != 0)
		return ret;   /* deleted meanwhile (warrenctl queue delete): leave it gone */
	unsigned hold = cur.flags & QUEUE_F_HOLD;   /* an admin's hold set while we worked */
	queue_msg_free(&cur);
	a->removed = queue_msg_count(a->msg, QUEUE_RCPT_PENDING) == 0;
	if (a->removed)
		return rec_del(s, txn, a->msg->id);
	struct queue_msg m = *a->msg;
	m.lease_pid = 0;
	m.lease_until = 0;
	m.flags = (m.flags & ~QUEUE_F_HOLD) | hold;
	return rec_put(s, txn, &m, 0);
}

int queue_put(struct store *store, const struct queue_msg *msg, bool *removed_r)
{
	struct put_arg a = { msg, false };
	int ret = store_txn(store, put_fn, &a);
	if (ret == 0 && a.removed) {
		char path[4200];
		queue_body_path(store, msg->id, path, sizeof(path));
		unlink(path);
	}
	if (removed_r != NULL)
		*removed_r = ret == 0 && a.removed;
	return ret;
}

static int delete_fn(struct store *s, DB_TXN *txn, void *arg)
{
	return rec_del(s, txn, arg);
}

int queue_delete(struct store *store, const char *id)
{
	if (!valid_id(id))
		return STORE_EINVAL;
	int ret = store_txn(store, delete_fn, (void *)id);
	if (ret == 0) {
		char path[4200];
		queue_body_path(store, id, path, sizeof(path));
		unlink(path);
	}
	return ret;
}

struct modify_arg {
	const char *id;      /* NULL: all */
	int op;              /* 0 release, 1 hold, 2 flush */
	size_t count;
};

static bool modify_one(struct queue_msg *m, int op)
{
	switch (op) {
	case 0:
		if (!(m->flags & QUEUE_F_HOLD))
			return false;
		m->flags &= ~QUEUE_F_HOLD;
		return true;
	case 1:
		if (m->flags & QUEUE_F_HOLD)
			return false;
		m->flags |= QUEUE_F_HOLD;
		return true;
	default:
		for (size_t i = 0; i < m->n_rcpts; i++)
			if (m->rcpts[i].state == QUEUE_RCPT_PENDING)
				m->rcpts[i].next_attempt = 0;
		return true;
	}
}

static int modify_fn(struct store *s, DB_TXN *txn, void *varg)
{
	struct modify_arg *a = varg;
	a->count = 0;
	if (a->id != NULL) {
		struct queue_msg m;
		int ret = rec_get(s, txn, a->id, &m, DB_RMW);
		if (ret != 0)
			return ret;
		if (modify_one(&m, a->op)) {
			ret = rec_put(s, txn, &m, 0);
			a->count = 1;
		}
		queue_msg_free(&m);
		return ret;
	}
	DBC *cur;
	int ret = s->db[DB_OUTQUEUE]->cursor(s->db[DB_OUTQUEUE], txn, &cur, 0);
	if (ret != 0)
		return ret;
	DBT key = { .flags = DB_DBT_REALLOC }, val = { .flags = DB_DBT_REALLOC };
	while ((ret = cur->get(cur, &key, &val, DB_NEXT | DB_RMW)) == 0) {
		char id[QUEUE_ID_SIZE];
		struct queue_msg m;
		if (key.size == 0 || key.size >= sizeof(id))
			continue;
		memcpy(id, key.data, key.size);
		id[key.size] = '\0';
		if (rec_decode(id, val.data, val.size, &m) < 0)
			continue;
		if (modify_one(&m, a->op)) {
			struct buf b = BUF_INIT(SIZE_MAX);
			rec_encode(&m, &b);
			DBT nv = { .data = (void *)buf_data(&b), .size = (u_int32_t)buf_len(&b) };
			ret = cur->put(cur, &key, &nv, DB_CURRENT);
			buf_free(&b);
			a->count++;
		}
		queue_msg_free(&m);
		if (ret != 0)
			break;
	}
	free(key.data);
	free(val.data);
	cur->close(cur);
	return ret == DB_NOTFOUND ? 0 : ret;
}

int queue_hold(struct store *store, const char *id, bool hold)
{
	if (!valid_id(id))
		return STORE_EINVAL;
	struct modify_arg a = { id, hold ? 1 : 0, 0 };
	int ret = store_txn(store, modify_fn, &a);
	if (ret == 0 && !hold)
		queue_announce(store);
	return ret;
}

int queue_flush(struct store *store, const char *id, size_t *count_r)
{
	if (id != NULL && !valid_id(id))
		return STORE_EINVAL;
	struct modify_arg a = { id, 2, 0 };
	int ret = store_txn(store, modify_fn, &a);
	if (ret == 0)
		queue_announce(store);
	if (count_r != NULL)
		*count_r = a.count;
	return ret;
}

int queue_sweep(struct store *store, unsigned min_age_s, size_t *removed_r)
{
	char dir[4096];
	size_t removed = 0;
	queue_dir(store, dir, sizeof(dir));
	DIR *d = opendir(dir);
	if (d == NULL) {
		if (removed_r != NULL)
			*removed_r = 0;
		return errno == ENOENT ? 0 : STORE_EIO;
	}
	struct dirent *e;
	time_t now = time(NULL);
	while ((e = readdir(d)) != NULL) {
		const char *name = e->d_name;
		bool tmp = strncmp(name, ".tmp-", 5) == 0;
		if (!tmp && !valid_id(name))
			continue;
		char path[4400];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		if (stat(path, &st) < 0 || now - st.st_mtime < (time_t)min_age_s)
			continue;
		if (!tmp) {
			struct queue_msg m;
			int ret = queue_get(store, name, &m);
			if (ret == 0)
				queue_msg_free(&m);
			if (ret != STORE_ENOTFOUND)
				continue;
		}
		if (unlink(path) == 0)
			removed++;
	}
	closedir(d);
	if (removed_r != NULL)
		*removed_r = removed;
	return 0;
}
