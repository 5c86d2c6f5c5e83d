/* kv.c — policy records in policy.db: key "space\0key", value a fixed record. */
#include "storage/kv.h"
#include "storage/store-private.h"

#include <stdio.h>
#include <string.h>

/* Record: version, value, first, last, expires (be64 each), text length (be16), text. */
#define KV_REC_VERSION 1
#define KV_REC_FIXED (1 + 4 * 8 + 2)
#define KV_KEYBUF (KV_SPACE_MAX + 1 + KV_KEY_MAX)

static int make_key(const char *space, const char *key, unsigned char *out, size_t *len_r)
{
	size_t sl = strlen(space), kl = strlen(key);
	if (sl == 0 || sl > KV_SPACE_MAX || kl > KV_KEY_MAX)
		return STORE_EINVAL;
	memcpy(out, space, sl);
	out[sl] = '\0';
	memcpy(out + sl + 1, key, kl);
	*len_r = sl + 1 + kl;
	return 0;
}

static size_t rec_encode(const struct kv_rec *r, unsigned char *out)
{
	size_t tl = strnlen(r->text, KV_TEXT_MAX);
	out[0] = KV_REC_VERSION;
	put_be64(out + 1, (uint64_t)r->value);
	put_be64(out + 9, (uint64_t)r->first);
	put_be64(out + 17, (uint64_t)r->last);
	put_be64(out + 25, (uint64_t)r->expires);
	out[33] = (unsigned char)(tl >> 8);
	out[34] = (unsigned char)tl;
	memcpy(out + KV_REC_FIXED, r->text, tl);
	return KV_REC_FIXED + tl;
}

static int rec_decode(const void *data, size_t len, struct kv_rec *r)
{
	const unsigned char *p = data;
	if (len < KV_REC_FIXED || p[0] != KV_REC_VERSION)
		return -1;
	size_t tl = ((size_t)p[33] << 8) | p[34];
	if (tl > KV_TEXT_MAX || len != KV_REC_FIXED + tl)
		return -1;
	r->value = (int64_t)get_be64(p + 1);
	r->first = (int64_t)get_be64(p + 9);
	r->last = (int64_t)get_be64(p + 17);
	r->expires = (int64_t)get_be64(p + 25);
	memcpy(r->text, p + KV_REC_FIXED, tl);
	r->text[tl] = '\0';
	return 0;
}

static bool live(const struct kv_rec *r, int64_t now)
{
	return r->expires == 0 || r->expires > now;
}

/* Reads the record under key in txn (flags: 0 or DB_RMW). 1 found and live, 0 not. */
static int rec_read(struct store *s, DB_TXN *txn, DBT *key, int64_t now, u_int32_t flags,
		    struct kv_rec *r)
{
	unsigned char buf[KV_REC_FIXED + KV_TEXT_MAX];
	DBT val = { .data = buf, .ulen = sizeof(buf), .flags = DB_DBT_USERMEM };
	int ret = s->db[DB_KV]->get(s->db[DB_KV], txn, key, &val, flags);
	if (ret == DB_NOTFOUND)
		return 0;
	if (ret != 0)
		return ret;
	if (rec_decode(val.data, val.size, r) < 0)
		return 0;   /* a malformed record counts as absent and is overwritten */
	return live(r, now) ? 1 : 0;
}

static int rec_write(struct store *s, DB_TXN *txn, DBT *key, const struct kv_rec *r)
{
	unsigned char buf[KV_REC_FIXED + KV_TEXT_MAX];
	DBT val = { .data = buf, .size = (u_int32_t)rec_encode(r, buf) };
	return s->db[DB_KV]->put(s->db[DB_KV], txn, key, &val, 0);
}

int kv_get(struct store *store, const char *space, const char *key, int64_t now,
	   struct kv_rec *rec_r)
{
	unsigned char kb[KV_KEYBUF];
	size_t kl;
	int ret = make_key(space, key, kb, &kl);
	if (ret != 0)
		return ret;
	DB_TXN *txn;
	ret = store_read_txn(store, &txn);
	if (ret != 0)
		return ret;
	DBT k = { .data = kb, .size = (u_int32_t)kl };
	ret = rec_read(store, txn, &k, now, 0, rec_r);
	txn->commit(txn, 0);
	if (ret == 1)
		return STORE_OK;
	if (ret == 0)
		return STORE_ENOTFOUND;
	return store_db_error(store, ret, "kv get");
}

struct write_arg {
	unsigned char kb[KV_KEYBUF];
	DBT key;
	int64_t now, delta, window;
	const struct kv_rec *in;
	struct kv_rec out;
	bool add, del, found;
};

static int write_fn(struct store *s, DB_TXN *txn, void *arg)
{
	struct write_arg *a = arg;
	if (a->del) {
		int ret = s->db[DB_KV]->del(s->db[DB_KV], txn, &a->key, 0);
		a->found = ret == 0;
		return ret == DB_NOTFOUND ? 0 : ret;
	}
	if (!a->add) {
		a->out = *a->in;
		if (a->out.first == 0)
			a->out.first = a->now;
		if (a->out.last == 0)
			a->out.last = a->now;
		return rec_write(s, txn, &a->key, &a->out);
	}
	int ret = rec_read(s, txn, &a->key, a->now, DB_RMW, &a->out);
	if (ret < 0 || ret > 1)
		return ret;
	if (ret == 0) {
		memset(&a->out, 0, sizeof(a->out));
		a->out.first = a->now;
		a->out.expires = a->window > 0 ? a->now + a->window : 0;
	}
	a->out.value += a->delta;
	a->out.last = a->now;
	return rec_write(s, txn, &a->key, &a->out);
}

static int kv_write(struct store *store, const char *space, const char *key,
		    struct write_arg *a)
{
	size_t kl;
	int ret = make_key(space, key, a->kb, &kl);
	if (ret != 0)
		return ret;
	a->key = (DBT){ .data = a->kb, .size = (u_int32_t)kl };
	return store_txn_flags(store, write_fn, a, DB_TXN_WRITE_NOSYNC);
}

int kv_put(struct store *store, const char *space, const char *key, int64_t now,
	   const struct kv_rec *rec)
{
	struct write_arg a = { .now = now, .in = rec };
	return kv_write(store, space, key, &a);
}

int kv_del(struct store *store, const char *space, const char *key)
{
	struct write_arg a = { .del = true };
	int ret = kv_write(store, space, key, &a);
	if (ret == 0 && !a.found)
		return STORE_ENOTFOUND;
	return ret;
}

int kv_add(struct store *store, const char *space, const char *key, int64_t delta,
	   int64_t now, int64_t window, struct kv_rec *rec_r)
{
	struct write_arg a = { .add = true, .now = now, .delta = delta, .window = window };
	int ret = kv_write(store, space, key, &a);
	if (ret == 0 && rec_r != NULL)
		*rec_r = a.out;
	return ret;
}

int kv_list(struct store *store, const char *space, int64_t now,
	    int (*fn)(const char *key, const struct kv_rec *rec, void *ctx), void *ctx)
{
	unsigned char kb[KV_KEYBUF];
	size_t sl;
	int ret = make_key(space, "", kb, &sl);
	if (ret != 0)
		return ret;
	DB_TXN *txn;
	ret = store_read_txn(store, &txn);
	if (ret != 0)
		return ret;
	DBC *c;
	ret = store->db[DB_KV]->cursor(store->db[DB_KV], txn, &c, DB_TXN_SNAPSHOT);
	if (ret != 0) {
		txn->commit(txn, 0);
		return store_db_error(store, ret, "kv list");
	}
	unsigned char keybuf[KV_KEYBUF], valbuf[KV_REC_FIXED + KV_TEXT_MAX];
	memcpy(keybuf, kb, sl);
	DBT k = { .data = keybuf, .size = (u_int32_t)sl, .ulen = sizeof(keybuf),
		  .flags = DB_DBT_USERMEM };
	DBT v = { .data = valbuf, .ulen = sizeof(valbuf), .flags = DB_DBT_USERMEM };
	int stop = 0;
	for (ret = c->get(c, &k, &v, DB_SET_RANGE); ret == 0 && stop == 0;
	     ret = c->get(c, &k, &v, DB_NEXT)) {
		if (k.size < sl || memcmp(k.data, kb, sl) != 0)
			break;
		struct kv_rec r;
		if (rec_decode(v.data, v.size, &r) < 0 || !live(&r, now))
			continue;
		char key[KV_KEY_MAX + 1];
		size_t kl = k.size - sl;
		if (kl > KV_KEY_MAX)
			continue;
		memcpy(key, (char *)k.data + sl, kl);
		key[kl] = '\0';
		stop = fn(key, &r, ctx);
	}
	c->close(c);
	txn->commit(txn, 0);
	if (stop != 0)
		return stop;
	if (ret != 0 && ret != DB_NOTFOUND)
		return store_db_error(store, ret, "kv list");
	return STORE_OK;
}

/* Expiry walks in batches of this many records per transaction. */
#define KV_EXPIRE_BATCH 500

struct expire_arg {
	int64_t now;
	unsigned char from[KV_KEYBUF];
	u_int32_t from_len;
	unsigned removed;
	bool done;
};

static int expire_fn(struct store *s, DB_TXN *txn, void *arg)
{
	struct expire_arg *a = arg;
	DBC *c;
	int ret = s->db[DB_KV]->cursor(s->db[DB_KV], txn, &c, 0);
	if (ret != 0)
		return ret;
	unsigned char keybuf[KV_KEYBUF], valbuf[KV_REC_FIXED + KV_TEXT_MAX];
	memcpy(keybuf, a->from, a->from_len);
	DBT k = { .data = keybuf, .size = a->from_len, .ulen = sizeof(keybuf),
		  .flags = DB_DBT_USERMEM };
	DBT v = { .data = valbuf, .ulen = sizeof(valbuf), .flags = DB_DBT_USERMEM };
	unsigned seen = 0, removed = 0;
	/* the position moves only when the transaction's work stands (a deadlock
	 * retry starts again from the same key) */
	unsigned char from[KV_KEYBUF];
	u_int32_t from_len = a->from_len;
	memcpy(from, a->from, from_len);
	bool done = false;
	ret = c->get(c, &k, &v, from_len > 0 ? DB_SET_RANGE : DB_FIRST);
	while (ret == 0 && seen < KV_EXPIRE_BATCH) {
		struct kv_rec r;
		if (rec_decode(v.data, v.size, &r) < 0 || !live(&r, a->now)) {
			ret = c->del(c, 0);
			if (ret != 0)
				break;
			removed++;
		}
		seen++;
		memcpy(from, k.data, k.size);
		from_len = k.size;
		ret = c->get(c, &k, &v, DB_NEXT);
	}
	c->close(c);
	if (ret == DB_NOTFOUND) {
		done = true;
		ret = 0;
	} else if (ret == 0) {
		/* resume after the last key seen: append a byte that sorts first */
		if (from_len < sizeof(from))
			from[from_len++] = '\0';
		else
			done = true;
	}
	if (ret == 0) {
		memcpy(a->from, from, from_len);
		a->from_len = from_len;
		a->done = done;
		a->removed += removed;
	}
	return ret;
}

int kv_expire(struct store *store, int64_t now, unsigned *removed_r)
{
	struct expire_arg a = { .now = now };
	int ret = 0;
	while (!a.done && ret == 0)
		ret = store_txn_flags(store, expire_fn, &a, DB_TXN_WRITE_NOSYNC);
	if (removed_r != NULL)
		*removed_r = a.removed;
	return ret;
}
