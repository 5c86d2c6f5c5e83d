/* verify.c — consistency check of the whole store, and hot backups. */
#include "storage/store-private.h"
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

/* ---- a small hash map from byte keys to counters ---- */

struct tally {
	unsigned char key[STORE_USER_MAX + 1];
	size_t klen;
	uint64_t a, b, c;        /* counters (meaning depends on the map) */
	bool used;
	bool seen;               /* matched a record */
};

struct tally_map {
	struct tally *slots;
	size_t cap, count;
};

static uint64_t hash_bytes(const unsigned char *p, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static struct tally *tally_get(struct tally_map *m, const void *key, size_t klen)
{
	if (klen > STORE_USER_MAX)
		klen = STORE_USER_MAX;
	if (m->count * 2 >= m->cap) {
		struct tally_map bigger = { x_calloc(m->cap ? m->cap * 2 : 1024, sizeof(struct tally)),
					    m->cap ? m->cap * 2 : 1024, 0 };
		for (size_t i = 0; i < m->cap; i++)
			if (m->slots[i].used) {
				struct tally *t = tally_get(&bigger, m->slots[i].key, m->slots[i].klen);
				*t = m->slots[i];
			}
		free(m->slots);
		*m = bigger;
	}
	size_t i = hash_bytes(key, klen) & (m->cap - 1);
	while (m->slots[i].used &&
	       (m->slots[i].klen != klen || memcmp(m->slots[i].key, key, klen) != 0))
		i = (i + 1) & (m->cap - 1);
	struct tally *t = &m->slots[i];
	if (!t->used) {
		t->used = true;
		memcpy(t->key, key, klen);
		t->klen = klen;
		m->count++;
	}
	return t;
}

static struct tally *tally_find(struct tally_map *m, const void *key, size_t klen)
{
	if (m->cap == 0)
		return NULL;
	size_t i = hash_bytes(key, klen) & (m->cap - 1);
	while (m->slots[i].used) {
		if (m->slots[i].klen == klen && memcmp(m->slots[i].key, key, klen) == 0)
			return &m->slots[i];
		i = (i + 1) & (m->cap - 1);
	}
	return NULL;
}

/* ---- verify ---- */

struct verify {
	struct store *s;
	DB_TXN *txn;
	FILE *out;
	int faults;
	bool repair;
	struct tally_map mboxes;   /* mailbox id → messages, unseen, size */
	struct tally_map users;    /* user → bytes, messages */
	struct tally_map blobs;    /* blob id → references, size */
};

static void fault(struct verify *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fault(struct verify *v, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (v->out != NULL) {
		vfprintf(v->out, fmt, ap);
		fputc('\n', v->out);
	}
	va_end(ap);
	v->faults++;
}

static void dbt_user(DBT *d, void *buf, size_t size)
{
	memset(d, 0, sizeof(*d));
	d->data = buf;
	d->ulen = (u_int32_t)size;
	d->flags = DB_DBT_USERMEM;
}

/* Walks a database: fn(key, klen, data, dlen). */
static int walk(struct verify *v, enum store_db db,
		int (*fn)(struct verify *v, const unsigned char *k, size_t klen,
			  const unsigned char *d, size_t dlen))
{
	DBC *c;
	int ret = v->s->db[db]->cursor(v->s->db[db], v->txn, &c, 0);
	if (ret != 0)
		return ret;
	DBT key, data;
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.flags = DB_DBT_REALLOC;
	data.flags = DB_DBT_REALLOC;
	while ((ret = c->get(c, &key, &data, DB_NEXT)) == 0)
		if ((ret = fn(v, key.data, key.size, data.data, data.size)) != 0)
			break;
	free(key.data);
	free(data.data);
	c->close(c);
	return ret == DB_NOTFOUND ? 0 : ret;
}

static int check_message(struct verify *v, const unsigned char *k, size_t klen,
			 const unsigned char *d, size_t dlen)
{
	struct store_message m;
	if (klen != 12 || msg_rec_decode(d, dlen, &m) < 0) {
		fault(v, "message record damaged (key length %zu)", klen);
		return 0;
	}
	uint64_t id = get_be64(k);
	uint32_t uid = get_be32(k + 8);
	struct mbox_rec mbox;
	int ret = mbox_get(v->s, v->txn, id, &mbox, 0);
	if (ret == STORE_ENOTFOUND) {
		fault(v, "message %llu/%u: its mailbox does not exist", (unsigned long long)id, uid);
		return 0;
	}
	if (ret != 0)
		return ret;
	if (uid == 0 || uid >= mbox.uidnext)
		fault(v, "message %llu/%u: UID not below UIDNEXT %u of %s", (unsigned long long)id,
		      uid, mbox.uidnext, mbox.name);
	if (m.modseq > mbox.highestmodseq)
		fault(v, "message %llu/%u: modseq above the mailbox's HIGHESTMODSEQ",
		      (unsigned long long)id, uid);
	struct tally *t = tally_get(&v->mboxes, k, 8);
	t->a++;
	t->b += !(m.flags & STORE_FLAG_SEEN);
	t->c += m.size;
	t = tally_get(&v->users, mbox.user, strlen(mbox.user));
	t->a += m.size;
	t->b++;
	t = tally_get(&v->blobs, m.blob, STORE_BLOB_ID_SIZE);
	t->a++;
	t->b = m.size;
	t->c = id;
	return 0;
}

/* A body file is missing: a fault unless its record went meanwhile (the verify
 * runs on a snapshot while the suite may expunge the last copy and unlink). */
static bool blob_still_recorded(struct verify *v, const unsigned char *blob)
{
	DB_TXN *txn;
	if (store_read_txn(v->s, &txn) != 0)
		return true;
	DBT key, data;
	memset(&key, 0, sizeof(key));
	key.data = (void *)blob;
	key.size = STORE_BLOB_ID_SIZE;
	dbt_user(&data, NULL, 0);
	data.flags |= DB_DBT_PARTIAL;
	int ret = v->s->db[DB_BLOBS]->get(v->s->db[DB_BLOBS], txn, &key, &data, 0);
	txn->commit(txn, 0);
	return ret != DB_NOTFOUND;
}

static int check_mailbox(struct verify *v, const unsigned char *k, size_t klen,
			 const unsigned char *d, size_t dlen)
{
	struct mbox_rec r;
	if (klen != 8 || mbox_rec_decode(d, dlen, &r) < 0) {
		fault(v, "mailbox record damaged");
		return 0;
	}
	uint64_t id = get_be64(k), named;
	int ret = mbox_lookup(v->s, v->txn, r.user, r.name, &named, 0);
	if (ret != 0 || named != id)
		fault(v, "mailbox %llu (%s of %s): not found by its name", (unsigned long long)id,
		      r.name, r.user);
	struct tally *t = tally_find(&v->mboxes, k, 8);
	uint64_t messages = t ? t->a : 0, unseen = t ? t->b : 0, size = t ? t->c : 0;
	if (messages != r.messages || unseen != r.unseen || size != r.size)
		fault(v, "mailbox %s of %s: counters say %u messages, %u unseen, %llu bytes; "
		      "found %llu, %llu, %llu", r.name, r.user, r.messages, r.unseen,
		      (unsigned long long)r.size, (unsigned long long)messages,
		      (unsigned long long)unseen, (unsigned long long)size);
	return 0;
}

static int check_name(struct verify *v, const unsigned char *k, size_t klen,
		      const unsigned char *d, size_t dlen)
{
	struct mbox_rec r;
	if (dlen != 8 || mbox_get(v->s, v->txn, get_be64(d), &r, 0) != 0)
		fault(v, "mailbox name %.*s points to no mailbox", (int)klen, (const char *)k);
	return 0;
}

static int check_user(struct verify *v, const unsigned char *k, size_t klen,
		      const unsigned char *d, size_t dlen)
{
	struct user_rec r;
	if (user_rec_decode(d, dlen, &r) < 0) {
		fault(v, "user record %.*s damaged", (int)klen, (const char *)k);
		return 0;
	}
	struct tally *t = tally_find(&v->users, k, klen);
	uint64_t bytes = t ? t->a : 0, messages = t ? t->b : 0;
	if (t != NULL)
		t->seen = true;
	if (bytes != r.bytes || messages != r.messages)
		fault(v, "user %.*s: quota usage says %llu bytes in %llu messages; found %llu in %llu",
		      (int)klen, (const char *)k, (unsigned long long)r.bytes,
		      (unsigned long long)r.messages, (unsigned long long)bytes,
		      (unsigned long long)messages);
	return 0;
}

static int check_blob(struct verify *v, const unsigned char *k, size_t klen,
		      const unsigned char *d, size_t dlen)
{
	struct blob_rec r;
	char hex[2 * STORE_BLOB_ID_SIZE + 1];
	if (klen != STORE_BLOB_ID_SIZE || blob_rec_decode(d, dlen, &r) < 0) {
		fault(v, "body record damaged");
		return 0;
	}
	blob_hex(k, hex);
	struct tally *t = tally_find(&v->blobs, k, klen);
	if (t != NULL)
		t->seen = true;
	if ((t ? t->a : 0) != r.refs)
		fault(v, "body %s: %llu references recorded, %llu found", hex,
		      (unsigned long long)r.refs, (unsigned long long)(t ? t->a : 0));
	char path[4096];
	struct stat st;
	store_blob_path(v->s, k, path, sizeof(path));
	if (stat(path, &st) < 0) {
		if (blob_still_recorded(v, k))
			fault(v, "body %s: file %s missing", hex, path);
	} else if ((uint64_t)st.st_size != r.size) {
		fault(v, "body %s: file is %lld bytes, record says %llu", hex,
		      (long long)st.st_size, (unsigned long long)r.size);
	}
	if (t != NULL && t->b != r.size)
		fault(v, "body %s: a message of mailbox %llu says %llu bytes, record says %llu",
		      hex, (unsigned long long)t->c, (unsigned long long)t->b,
		      (unsigned long long)r.size);
	DBT key, data;
	memset(&key, 0, sizeof(key));
	key.data = (void *)k;
	key.size = (u_int32_t)klen;
	dbt_user(&data, NULL, 0);
	data.flags |= DB_DBT_PARTIAL;
	if (v->s->db[DB_MIME]->get(v->s->db[DB_MIME], v->txn, &key, &data, 0) != 0)
		fault(v, "body %s: no MIME structure cached", hex);
	return 0;
}

static void check_unrecorded(struct verify *v)
{
	for (size_t i = 0; i < v->blobs.cap; i++) {
		struct tally *t = &v->blobs.slots[i];
		if (t->used && !t->seen) {
			char hex[2 * STORE_BLOB_ID_SIZE + 1];
			blob_hex(t->key, hex);
			fault(v, "body %s: referenced by %llu messages but has no record", hex,
			      (unsigned long long)t->a);
		}
	}
	for (size_t i = 0; i < v->users.cap; i++) {
		struct tally *t = &v->users.slots[i];
		if (t->used && !t->seen)
			fault(v, "user %.*s: has messages but no usage record", (int)t->klen,
			      (const char *)t->key);
	}
}

/* Half-written bodies in blobs/tmp: left by a crash before the rename. Nothing
 * else ever removes them. */
static void check_stale_tmp(struct verify *v, time_t now)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/tmp", v->s->blob_dir);
	DIR *dp = opendir(dir);
	struct dirent *de;
	while (dp != NULL && (de = readdir(dp)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char path[4096 + 300];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) < 0 || now - st.st_mtime < STORE_ORPHAN_AGE_S)
			continue;   /* maybe being written */
		if (!v->repair) {
			fault(v, "stale temporary body file %s", path);
		} else if (unlink(path) == 0) {
			if (v->out != NULL)
				fprintf(v->out, "removed stale temporary body file %s\n", path);
		} else {
			fault(v, "stale temporary body file %s: cannot remove: %s", path,
			      strerror(errno));
		}
	}
	if (dp != NULL)
		closedir(dp);
}

/* Body files nobody references: left by a crash between the file and the commit. */
static void check_orphans(struct verify *v)
{
	time_t now = time(NULL);
	for (int d = 0; d < 256; d++) {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/%02x", v->s->blob_dir, d);
		DIR *dp = opendir(dir);
		struct dirent *de;
		while (dp != NULL && (de = readdir(dp)) != NULL) {
			if (strlen(de->d_name) != 2 * STORE_BLOB_ID_SIZE)
				continue;
			unsigned char blob[STORE_BLOB_ID_SIZE];
			bool ok = true;
			for (int i = 0; i < STORE_BLOB_ID_SIZE && ok; i++) {
				unsigned int byte;
				ok = sscanf(de->d_name + 2 * i, "%2x", &byte) == 1;
				blob[i] = (unsigned char)byte;
			}
			if (!ok || tally_find(&v->blobs, blob, STORE_BLOB_ID_SIZE) != NULL)
				continue;
			char path[4096 + 300];
			struct stat st;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			if (stat(path, &st) < 0 || now - st.st_mtime < STORE_ORPHAN_AGE_S)
				continue;   /* maybe a delivery in progress */
			if (v->repair) {
				blob_remove_if_unreferenced(v->s, blob);
				if (access(path, F_OK) == 0)
					fault(v, "orphan body file %s: not removed (it has a record, "
					      "or a backup is running)", path);
				else if (v->out != NULL)
					fprintf(v->out, "removed orphan body %s\n", path);
			} else {
				fault(v, "orphan body file %s (no references)", path);
			}
		}
		if (dp != NULL)
			closedir(dp);
	}
	check_stale_tmp(v, now);
}

int store_verify(struct store *store, void *out_file, bool repair)
{
	struct verify v = { .s = store, .out = out_file, .repair = repair };
	int ret = store_read_txn(store, &v.txn);
	if (ret != 0)
		return ret;
	if ((ret = walk(&v, DB_MESSAGES, check_message)) == 0 &&
	    (ret = walk(&v, DB_MBOXES, check_mailbox)) == 0 &&
	    (ret = walk(&v, DB_NAMES, check_name)) == 0 &&
	    (ret = walk(&v, DB_USERS, check_user)) == 0)
		ret = walk(&v, DB_BLOBS, check_blob);
	v.txn->commit(v.txn, 0);
	if (ret == 0) {
		check_unrecorded(&v);
		check_orphans(&v);
	}
	free(v.mboxes.slots);
	free(v.users.slots);
	free(v.blobs.slots);
	if (ret != 0)
		return store_db_error(store, ret, "verify");
	return v.faults;
}

/* ---- backup ---- */

static int copy_file(const char *from, const char *to)
{
	if (link(from, to) == 0)
		return 0;
	int in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -1;
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (out < 0) {
		close(in);
		return -1;
	}
	char buf[65536];
	ssize_t n;
	int ret = 0;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n) {
			ret = -1;
			break;
		}
	if (n < 0 || fsync(out) < 0)
		ret = -1;
	close(in);
	close(out);
	return ret;
}

static int copy_blobs(struct store *s, const char *dest)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/blobs", dest);
	mkdir(path, 0750);
	snprintf(path, sizeof(path), "%s/blobs/tmp", dest);
	mkdir(path, 0750);
	for (int d = 0; d < 256; d++) {
		char from_dir[4096], to_dir[4096];
		snprintf(from_dir, sizeof(from_dir), "%s/%02x", s->blob_dir, d);
		snprintf(to_dir, sizeof(to_dir), "%s/blobs/%02x", dest, d);
		if (mkdir(to_dir, 0750) < 0 && errno != EEXIST)
			return -1;
		DIR *dp = opendir(from_dir);
		struct dirent *de;
		while (dp != NULL && (de = readdir(dp)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			char from[4096 + 300], to[4096 + 300];
			snprintf(from, sizeof(from), "%s/%s", from_dir, de->d_name);
			snprintf(to, sizeof(to), "%s/%s", to_dir, de->d_name);
			if (access(to, F_OK) != 0 && copy_file(from, to) < 0 && errno != ENOENT) {
				closedir(dp);
				return -1;
			}
		}
		if (dp != NULL)
			closedir(dp);
		fsync_dir(to_dir);
	}
	return 0;
}

/* The outbound queue's bodies (state_dir/queue/ID, storage/queue.c): written and
 * fsynced before their record commits, so every record of the copied database
 * has its body here unless it was delivered (and removed) during the backup. */
static int copy_queue(struct store *s, const char *dest)
{
	char from_dir[4096], to_dir[4096];
	snprintf(from_dir, sizeof(from_dir), "%s/queue", s->dir);
	snprintf(to_dir, sizeof(to_dir), "%s/queue", dest);
	DIR *dp = opendir(from_dir);
	if (dp == NULL)
		return errno == ENOENT ? 0 : -1;
	if (mkdir(to_dir, 0750) < 0 && errno != EEXIST) {
		closedir(dp);
		return -1;
	}
	struct dirent *de;
	while ((de = readdir(dp)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char from[4096 + 300], to[4096 + 300];
		snprintf(from, sizeof(from), "%s/%s", from_dir, de->d_name);
		snprintf(to, sizeof(to), "%s/%s", to_dir, de->d_name);
		struct stat st;
		if (stat(from, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (access(to, F_OK) != 0 && copy_file(from, to) < 0 && errno != ENOENT) {
			closedir(dp);
			return -1;
		}
	}
	closedir(dp);
	fsync_dir(to_dir);
	return 0;
}

bool blob_removal_paused(struct store *s)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/.backup", s->blob_dir);
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return false;
	long pid = 0;
	bool alive = fscanf(fp, "%ld", &pid) == 1 && pid > 0 &&
		(kill((pid_t)pid, 0) == 0 || errno == EPERM);
	fclose(fp);
	return alive;
}

/* The lowest-numbered log file of the environment (0: none). */
static int first_log(struct store *s, const char **error_r)
{
	char **list = NULL;
	int ret = s->env->log_archive(s->env, &list, DB_ARCH_LOG);
	if (ret != 0) {
		*error_r = db_strerror(ret);
		return -1;
	}
	int first = 0;
	for (char **p = list; p != NULL && *p != NULL; p++) {
		int n = atoi(*p + 4);   /* "log.0000000001" */
		if (strncmp(*p, "log.", 4) == 0 && n > 0 && (first == 0 || n < first))
			first = n;
	}
	free(list);
	return first;
}

/* Berkeley DB's hot backup (database files, then logs) into env_dest, checked:
 * every log file that existed before the copy began must be in the copy, or a
 * checkpoint removed logs the copied pages need and the copy is tried again. */
static int backup_env(struct store *s, const char *env_dest, const char **error_r)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		int first = first_log(s, error_r);
		if (first < 0)
			return STORE_EIO;
		int ret = s->env->backup(s->env, env_dest, DB_CREATE | DB_BACKUP_CLEAN);
		if (ret != 0) {
			*error_r = db_strerror(ret);
			return STORE_EIO;
		}
		char path[4096 + 32];
		snprintf(path, sizeof(path), "%s/log.%010d", env_dest, first);
		if (first == 0 || access(path, F_OK) == 0)
			return STORE_OK;
		log_warn("store: backup: log %d was removed during the copy; copying again", first);
	}
	*error_r = "logs kept being removed during the copy (checkpoints)";
	return STORE_EIO;
}

int store_backup(struct store *store, const char *dir, const char **error_r)
{
	char lock[4096], env_dest[4096];
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		*error_r = strerror(errno);
		return STORE_EIO;
	}
	/* bodies are not removed while the backup runs, so every body the copied
	 * database references is still there when the files are copied after it */
	snprintf(lock, sizeof(lock), "%s/.backup", store->blob_dir);
	FILE *fp = fopen(lock, "w");
	if (fp == NULL) {
		*error_r = strerror(errno);
		return STORE_EIO;
	}
	fprintf(fp, "%ld\n", (long)getpid());
	fclose(fp);
	snprintf(env_dest, sizeof(env_dest), "%s/store", dir);
	int ret = backup_env(store, env_dest, error_r);
	if (ret != 0) {
		unlink(lock);
		return ret;
	}
	if (copy_blobs(store, dir) < 0 || copy_queue(store, dir) < 0) {
		*error_r = strerror(errno);
		unlink(lock);
		return STORE_EIO;
	}
	unlink(lock);
	char notify[4096];
	snprintf(notify, sizeof(notify), "%s/notify", dir);
	mkdir(notify, 0750);
	/* make the copy a clean environment: catastrophic recovery over its logs */
	DB_ENV *env;
	if ((ret = db_env_create(&env, 0)) == 0) {
		env->set_cachesize(env, 0, 32 * 1024 * 1024, 1);
		ret = env->open(env, env_dest, DB_CREATE | DB_INIT_LOCK | DB_INIT_LOG |
				DB_INIT_MPOOL | DB_INIT_TXN | DB_RECOVER_FATAL | DB_PRIVATE, 0640);
		env->close(env, 0);
	}
	if (ret != 0) {
		*error_r = db_strerror(ret);
		return STORE_EIO;
	}
	return STORE_OK;
}
