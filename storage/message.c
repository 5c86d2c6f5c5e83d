/* message.c — reading messages, flags and keywords, expunge, copy and move. */
#include "storage/store-private.h"
#include "common/log.h"
#include "common/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Messages changed or removed in one call (bounds the transaction's locks). */
#define MESSAGE_BATCH_MAX 100000

static void dbt_set(DBT *d, const void *data, size_t len)
{
	memset(d, 0, sizeof(*d));
	d->data = (void *)data;
	d->size = (u_int32_t)len;
}

static void dbt_user(DBT *d, void *buf, size_t size)
{
	memset(d, 0, sizeof(*d));
	d->data = buf;
	d->ulen = (u_int32_t)size;
	d->flags = DB_DBT_USERMEM;
}

static int msg_get(struct store *s, DB_TXN *txn, uint64_t mailbox_id, uint32_t uid,
		   struct store_message *m, uint32_t flags)
{
	unsigned char k[12], v[4096];
	DBT key, data;
	msg_key(mailbox_id, uid, k);
	dbt_set(&key, k, 12);
	dbt_user(&data, v, sizeof(v));
	int ret = s->db[DB_MESSAGES]->get(s->db[DB_MESSAGES], txn, &key, &data, flags);
	if (ret != 0)
		return ret;
	if (msg_rec_decode(v, data.size, m) < 0)
		return STORE_EIO;
	m->uid = uid;
	return 0;
}

static int msg_put(struct store *s, DB_TXN *txn, uint64_t mailbox_id,
		   const struct store_message *m)
{
	unsigned char k[12];
	struct buf out = BUF_INIT(8192);
	msg_key(mailbox_id, m->uid, k);
	msg_rec_encode(m, &out);
	DBT key, data;
	dbt_set(&key, k, 12);
	dbt_set(&data, buf_data(&out), buf_len(&out));
	int ret = s->db[DB_MESSAGES]->put(s->db[DB_MESSAGES], txn, &key, &data, 0);
	buf_free(&out);
	return ret;
}

/* ---- listing ---- */

static int messages_scan(struct store *store, uint64_t mailbox_id, uint32_t uid_first,
			 uint32_t uid_last, uint64_t above_modseq,
			 struct store_message **messages_r, size_t *count_r);

int store_messages(struct store *store, uint64_t mailbox_id, uint32_t uid_first,
		   uint32_t uid_last, struct store_message **messages_r, size_t *count_r)
{
	return messages_scan(store, mailbox_id, uid_first, uid_last, 0, messages_r, count_r);
}

int store_messages_changed(struct store *store, uint64_t mailbox_id, uint64_t modseq,
			   struct store_message **messages_r, size_t *count_r)
{
	return messages_scan(store, mailbox_id, 1, 0xffffffffu, modseq, messages_r, count_r);
}

/* Messages in [uid_first, uid_last] whose modseq is above above_modseq. */
static int messages_scan(struct store *store, uint64_t mailbox_id, uint32_t uid_first,
			 uint32_t uid_last, uint64_t above_modseq,
			 struct store_message **messages_r, size_t *count_r)
{
	*messages_r = NULL;
	*count_r = 0;
	DB_TXN *txn;
	int ret = store_read_txn(store, &txn);
	if (ret != 0)
		return ret;
	DBC *c;
	ret = store->db[DB_MESSAGES]->cursor(store->db[DB_MESSAGES], txn, &c, 0);
	if (ret != 0) {
		txn->abort(txn);
		return store_db_error(store, ret, "messages");
	}
	unsigned char k[12], v[4096];
	DBT key, data;
	msg_key(mailbox_id, uid_first, k);
	dbt_user(&key, k, sizeof(k));
	key.size = 12;
	dbt_user(&data, v, sizeof(v));
	struct store_message *items = NULL;
	size_t n = 0, cap = 0;
	ret = c->get(c, &key, &data, DB_SET_RANGE);
	while (ret == 0 && key.size == 12 && get_be64(k) == mailbox_id) {
		uint32_t uid = get_be32(k + 8);
		if (uid > uid_last)
			break;
		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			items = x_realloc(items, cap * sizeof(*items));
		}
		if (msg_rec_decode(v, data.size, &items[n]) < 0) {
			log_error("store: message %llu/%u: damaged record",
				  (unsigned long long)mailbox_id, uid);
			ret = STORE_EIO;
			break;
		}
		items[n].uid = uid;
		if (items[n].modseq > above_modseq)
			n++;
		dbt_user(&key, k, sizeof(k));
		dbt_user(&data, v, sizeof(v));
		ret = c->get(c, &key, &data, DB_NEXT);
	}
	c->close(c);
	txn->commit(txn, 0);
	if (ret != 0 && ret != DB_NOTFOUND) {
		free(items);
		return store_db_error(store, ret, "messages");
	}
	*messages_r = items;
	*count_r = n;
	return STORE_OK;
}

/* ---- flags and keywords ---- */

/* Keyword sets are space-separated atoms, compared case-insensitively. */
static bool keyword_has(const char *set, const char *kw, size_t len)
{
	for (const char *p = set; *p != '\0';) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n == len && strncasecmp(p, kw, len) == 0)
			return true;
		p += n;
	}
	return false;
}

static int keywords_apply(char *set, size_t size, enum store_flags_mode mode, const char *kws)
{
	char out[STORE_KEYWORDS_MAX];
	size_t o = 0;
	out[0] = '\0';
	const char *src = mode == STORE_FLAGS_REPLACE ? "" : set;
	/* keep the existing ones (minus removals) */
	for (const char *p = src; *p != '\0';) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n > 0 && !(mode == STORE_FLAGS_REMOVE && keyword_has(kws, p, n))) {
			if (o + n + 2 > sizeof(out))
				return -1;
			if (o > 0)
				out[o++] = ' ';
			memcpy(out + o, p, n);
			o += n;
			out[o] = '\0';
		}
		p += n;
	}
	if (mode != STORE_FLAGS_REMOVE) {
		for (const char *p = kws; *p != '\0';) {
			while (*p == ' ')
				p++;
			size_t n = strcspn(p, " ");
			if (n > 0 && !keyword_has(out, p, n)) {
				if (o + n + 2 > sizeof(out))
					return -1;
				if (o > 0)
					out[o++] = ' ';
				memcpy(out + o, p, n);
				o += n;
				out[o] = '\0';
			}
			p += n;
		}
	}
	if (strlen(out) >= size)
		return -1;
	strcpy(set, out);
	return 0;
}

struct flags_arg {
	uint64_t mailbox_id;
	enum store_flags_mode mode;
	unsigned flags;
	const char *keywords;
	uint64_t unchangedsince;
	struct store_flag_change *changes;
	size_t count;
	bool changed;
};

static int flags_one(struct store *s, DB_TXN *txn, struct flags_arg *a, struct mbox_rec *mbox,
		     struct store_flag_change *ch)
{
	struct store_message m;
	int ret = msg_get(s, txn, a->mailbox_id, ch->uid, &m, DB_RMW);
	if (ret == DB_NOTFOUND) {
		ch->result = STORE_ENOTFOUND;
		return 0;
	}
	if (ret != 0)
		return ret;
	if (a->unchangedsince != 0 && m.modseq > a->unchangedsince) {
		ch->result = STORE_ECHANGED;
		ch->flags = m.flags;
		ch->modseq = m.modseq;
		snprintf(ch->keywords, sizeof(ch->keywords), "%s", m.keywords);
		return 0;
	}
	unsigned nf = a->mode == STORE_FLAGS_ADD ? m.flags | a->flags :
		a->mode == STORE_FLAGS_REMOVE ? m.flags & ~a->flags : a->flags;
	char kw[STORE_KEYWORDS_MAX];
	snprintf(kw, sizeof(kw), "%s", m.keywords);
	if (keywords_apply(kw, sizeof(kw), a->mode, a->keywords != NULL ? a->keywords : "") < 0)
		return STORE_EINVAL;
	ch->result = STORE_OK;
	if (nf != m.flags || strcmp(kw, m.keywords) != 0) {
		if ((m.flags & STORE_FLAG_SEEN) && !(nf & STORE_FLAG_SEEN))
			mbox->unseen++;
		else if (!(m.flags & STORE_FLAG_SEEN) && (nf & STORE_FLAG_SEEN) && mbox->unseen > 0)
			mbox->unseen--;
		m.flags = nf;
		snprintf(m.keywords, sizeof(m.keywords), "%s", kw);
		m.modseq = ++mbox->highestmodseq;
		if ((ret = msg_put(s, txn, a->mailbox_id, &m)) != 0)
			return ret;
		a->changed = true;
	}
	ch->flags = m.flags;
	ch->modseq = m.modseq;
	snprintf(ch->keywords, sizeof(ch->keywords), "%s", m.keywords);
	return 0;
}

static int flags_fn(struct store *s, DB_TXN *txn, void *varg)
{
	struct flags_arg *a = varg;
	struct mbox_rec mbox;
	a->changed = false;
	int ret = mbox_get(s, txn, a->mailbox_id, &mbox, DB_RMW);
	for (size_t i = 0; ret == 0 && i < a->count; i++)
		ret = flags_one(s, txn, a, &mbox, &a->changes[i]);
	if (ret == 0 && a->changed)
		ret = mbox_put(s, txn, a->mailbox_id, &mbox);
	return ret;
}

int store_flags_update(struct store *store, uint64_t mailbox_id, enum store_flags_mode mode,
		       unsigned flags, const char *keywords, uint64_t unchangedsince,
		       struct store_flag_change *changes, size_t count)
{
	if (count > MESSAGE_BATCH_MAX ||
	    (keywords != NULL && strlen(keywords) >= STORE_KEYWORDS_MAX))
		return STORE_EINVAL;
	struct flags_arg a = { mailbox_id, mode, flags, keywords, unchangedsince, changes, count,
			       false };
	/* flags are not mail data: written to the log, not fsynced (store.h) */
	int ret = store_txn_flags(store, flags_fn, &a, DB_TXN_WRITE_NOSYNC);
	if (ret == STORE_OK && a.changed)
		store_announce(store, &mailbox_id, 1);
	return ret;
}

/* ---- expunge ---- */

struct expunge_arg {
	uint64_t mailbox_id;
	uint32_t *uids;
	uint32_t *done;        /* copy of uids with 0 for those not found */
	size_t count;
	uint64_t highestmodseq;
	unsigned char (*blobs)[STORE_BLOB_ID_SIZE];
	size_t n_blobs;
};

static int expunge_record(struct store *s, DB_TXN *txn, uint64_t mailbox_id,
			  uint64_t modseq, uint32_t uid)
{
	unsigned char k[20];
	put_be64(k, mailbox_id);
	put_be64(k + 8, modseq);
	put_be32(k + 16, uid);
	DBT key, data;
	dbt_set(&key, k, 20);
	dbt_set(&data, "", 0);
	return s->db[DB_EXPUNGES]->put(s->db[DB_EXPUNGES], txn, &key, &data, 0);
}

static int expunge_fn(struct store *s, DB_TXN *txn, void *varg)
{
	struct expunge_arg *a = varg;
	struct mbox_rec mbox;
	a->n_blobs = 0;
	int ret = mbox_get(s, txn, a->mailbox_id, &mbox, DB_RMW);
	if (ret != 0)
		return ret;
	struct user_rec usage;
	if ((ret = user_get(s, txn, mbox.user, &usage, DB_RMW)) != 0)
		return ret;
	uint64_t modseq = mbox.highestmodseq + 1;
	bool any = false;
	for (size_t i = 0; i < a->count; i++) {
		struct store_message m;
		a->done[i] = 0;
		ret = msg_get(s, txn, a->mailbox_id, a->uids[i], &m, DB_RMW);
		if (ret == DB_NOTFOUND)
			continue;
		if (ret != 0)
			return ret;
		unsigned char k[12];
		msg_key(a->mailbox_id, a->uids[i], k);
		DBT key;
		dbt_set(&key, k, 12);
		if ((ret = s->db[DB_MESSAGES]->del(s->db[DB_MESSAGES], txn, &key, 0)) != 0 ||
		    (ret = expunge_record(s, txn, a->mailbox_id, modseq, a->uids[i])) != 0)
			return ret;
		bool last;
		if ((ret = blob_unref_txn(s, txn, m.blob, 1, &last)) != 0)
			return ret;
		if (last)
			memcpy(a->blobs[a->n_blobs++], m.blob, STORE_BLOB_ID_SIZE);
		mbox.messages--;
		mbox.size = mbox.size >= m.size ? mbox.size - m.size : 0;
		if (!(m.flags & STORE_FLAG_SEEN) && mbox.unseen > 0)
			mbox.unseen--;
		usage.bytes = usage.bytes >= m.size ? usage.bytes - m.size : 0;
		usage.messages = usage.messages > 0 ? usage.messages - 1 : 0;
		a->done[i] = a->uids[i];
		any = true;
	}
	if (any) {
		mbox.highestmodseq = modseq;
		if ((ret = mbox_put(s, txn, a->mailbox_id, &mbox)) != 0 ||
		    (ret = user_put(s, txn, mbox.user, &usage)) != 0)
			return ret;
	}
	a->highestmodseq = mbox.highestmodseq;
	return 0;
}

int store_expunge(struct store *store, uint64_t mailbox_id, uint32_t *uids, size_t count,
		  uint64_t *highestmodseq_r)
{
	if (count > MESSAGE_BATCH_MAX)
		return STORE_EINVAL;
	struct expunge_arg a = { mailbox_id, uids, NULL, count, 0, NULL, 0 };
	a.done = x_calloc(count + 1, sizeof(*a.done));
	a.blobs = x_calloc(count + 1, sizeof(*a.blobs));
	int ret = store_txn(store, expunge_fn, &a);
	if (ret == STORE_OK) {
		memcpy(uids, a.done, count * sizeof(*uids));
		for (size_t i = 0; i < a.n_blobs; i++)
			blob_remove_if_unreferenced(store, a.blobs[i]);
		if (highestmodseq_r != NULL)
			*highestmodseq_r = a.highestmodseq;
		store_announce(store, &mailbox_id, 1);
	}
	free(a.done);
	free(a.blobs);
	return ret;
}

int store_expunged_since(struct store *store, uint64_t mailbox_id, uint64_t modseq,
			 uint32_t **uids_r, size_t *count_r)
{
	*uids_r = NULL;
	*count_r = 0;
	DB_TXN *txn;
	int ret = store_read_txn(store, &txn);
	if (ret != 0)
		return ret;
	DBC *c;
	if ((ret = store->db[DB_EXPUNGES]->cursor(store->db[DB_EXPUNGES], txn, &c, 0)) != 0) {
		txn->abort(txn);
		return store_db_error(store, ret, "expunges");
	}
	unsigned char k[20];
	put_be64(k, mailbox_id);
	put_be64(k + 8, modseq + 1);
	put_be32(k + 16, 0);
	DBT key, data;
	dbt_user(&key, k, sizeof(k));
	key.size = 20;
	dbt_user(&data, NULL, 0);
	data.flags |= DB_DBT_PARTIAL;
	uint32_t *uids = NULL;
	size_t n = 0, cap = 0;
	ret = c->get(c, &key, &data, DB_SET_RANGE);
	while (ret == 0 && key.size == 20 && get_be64(k) == mailbox_id) {
		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			uids = x_realloc(uids, cap * sizeof(*uids));
		}
		uids[n++] = get_be32(k + 16);
		dbt_user(&key, k, sizeof(k));
		ret = c->get(c, &key, &data, DB_NEXT);
	}
	c->close(c);
	txn->commit(txn, 0);
	if (ret != 0 && ret != DB_NOTFOUND) {
		free(uids);
		return store_db_error(store, ret, "expunges");
	}
	*uids_r = uids;
	*count_r = n;
	return STORE_OK;
}

/* ---- copy and move ---- */

struct copy_arg {
	uint64_t src;
	const uint32_t *uids;
	size_t count;
	const char *user;
	const char *dst_name;
	uint64_t quota;
	bool move;
	uint32_t *dst_uids;
	uint32_t uidvalidity;
	uint64_t dst;
};

static int copy_fn(struct store *s, DB_TXN *txn, void *varg)
{
	struct copy_arg *a = varg;
	struct mbox_rec src, dst;
	int ret = mbox_lookup(s, txn, a->user, a->dst_name, &a->dst, DB_RMW);
	if (ret != 0)
		return ret;
	if (a->dst == a->src && a->move)
		return STORE_EINVAL;
	/* lock order: the lower mailbox id first */
	uint64_t first = a->src < a->dst ? a->src : a->dst;
	if ((ret = mbox_get(s, txn, first, first == a->src ? &src : &dst, DB_RMW)) != 0)
		return ret;
	if (a->dst != a->src) {
		uint64_t second = first == a->src ? a->dst : a->src;
		if ((ret = mbox_get(s, txn, second, second == a->src ? &src : &dst, DB_RMW)) != 0)
			return ret;
	}
	if (strcmp(src.user, a->user) != 0)
		return STORE_EINVAL;
	struct user_rec usage;
	if ((ret = user_get(s, txn, a->user, &usage, DB_RMW)) != 0)
		return ret;
	struct mbox_rec *dp = a->dst == a->src ? &src : &dst;
	uint64_t expunge_modseq = src.highestmodseq + 1;
	for (size_t i = 0; i < a->count; i++) {
		struct store_message m;
		a->dst_uids[i] = 0;
		ret = msg_get(s, txn, a->src, a->uids[i], &m, a->move ? DB_RMW : 0);
		if (ret == DB_NOTFOUND)
			continue;
		if (ret != 0)
			return ret;
		if (!a->move) {
			if (a->quota != 0 && usage.bytes + m.size > a->quota)
				return STORE_EQUOTA;
			usage.bytes += m.size;
			usage.messages++;
			bool need_write;
			if ((ret = blob_ref_txn(s, txn, m.blob, m.size, 1, NULL, NULL, &need_write)) != 0)
				return ret;
		} else {
			unsigned char k[12];
			msg_key(a->src, m.uid, k);
			DBT key;
			dbt_set(&key, k, 12);
			if ((ret = s->db[DB_MESSAGES]->del(s->db[DB_MESSAGES], txn, &key, 0)) != 0 ||
			    (ret = expunge_record(s, txn, a->src, expunge_modseq, m.uid)) != 0)
				return ret;
			src.messages--;
			src.size = src.size >= m.size ? src.size - m.size : 0;
			if (!(m.flags & STORE_FLAG_SEEN) && src.unseen > 0)
				src.unseen--;
			src.highestmodseq = expunge_modseq;
		}
		m.save_date = (int64_t)time(NULL);
		if ((ret = msg_insert_txn(s, txn, a->dst, dp, &m)) != 0)
			return ret;
		a->dst_uids[i] = m.uid;
	}
	a->uidvalidity = dp->uidvalidity;
	if (a->dst != a->src && (ret = mbox_put(s, txn, a->src, &src)) != 0)
		return ret;
	if ((ret = mbox_put(s, txn, a->dst, dp)) != 0)
		return ret;
	return user_put(s, txn, a->user, &usage);
}

int store_copy(struct store *store, uint64_t src_mailbox_id, const uint32_t *uids,
	       size_t count, const char *user, const char *dst_mailbox, uint64_t quota,
	       bool move, uint32_t *dst_uids_r, uint32_t *dst_uidvalidity_r)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	if (count > MESSAGE_BATCH_MAX || mailbox_name_normalize(dst_mailbox, name, sizeof(name)) < 0)
		return STORE_EINVAL;
	struct copy_arg a = { src_mailbox_id, uids, count, user, name, quota, move, dst_uids_r,
			      0, 0 };
	int ret = store_txn(store, copy_fn, &a);
	if (ret == STORE_OK) {
		if (dst_uidvalidity_r != NULL)
			*dst_uidvalidity_r = a.uidvalidity;
		uint64_t ids[2] = { a.src, a.dst };
		store_announce(store, ids, a.src == a.dst ? 1 : 2);
	}
	return ret;
}
