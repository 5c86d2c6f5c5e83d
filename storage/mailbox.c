/* mailbox.c — users, mailboxes and subscriptions. */
#include "storage/store-private.h"
#include "common/log.h"
#include "common/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define META_NEXT_MAILBOX "next_mailbox_id"
#define META_UIDVALIDITY "last_uidvalidity"

static void dbt_init(DBT *d, const void *data, size_t len)
{
	memset(d, 0, sizeof(*d));
	d->data = (void *)data;
	d->size = (u_int32_t)len;
}

static void dbt_out(DBT *d, void *buf, size_t size)
{
	memset(d, 0, sizeof(*d));
	d->data = buf;
	d->ulen = (u_int32_t)size;
	d->flags = DB_DBT_USERMEM;
}

static int valid_user(const char *user)
{
	size_t len = strlen(user);
	return len > 0 && len <= STORE_USER_MAX && strchr(user, '\0') == user + len;
}

/* ---- counters ---- */

static int meta_next(struct store *s, DB_TXN *txn, const char *name, uint64_t floor,
		     uint64_t *value_r)
{
	DBT key, data;
	unsigned char buf[8];
	dbt_init(&key, name, strlen(name));
	dbt_out(&data, buf, sizeof(buf));
	int ret = s->db[DB_META]->get(s->db[DB_META], txn, &key, &data, DB_RMW);
	uint64_t v = 0;
	if (ret == 0 && data.size == 8)
		v = get_be64(buf);
	else if (ret != 0 && ret != DB_NOTFOUND)
		return ret;
	v = v + 1 > floor ? v + 1 : floor;
	put_be64(buf, v);
	dbt_init(&data, buf, 8);
	ret = s->db[DB_META]->put(s->db[DB_META], txn, &key, &data, 0);
	*value_r = v;
	return ret;
}

/* ---- records ---- */

int user_get(struct store *s, DB_TXN *txn, const char *user, struct user_rec *r,
	     uint32_t flags)
{
	DBT key, data;
	unsigned char buf[16];
	dbt_init(&key, user, strlen(user));
	dbt_out(&data, buf, sizeof(buf));
	memset(r, 0, sizeof(*r));
	int ret = s->db[DB_USERS]->get(s->db[DB_USERS], txn, &key, &data, flags);
	if (ret == DB_NOTFOUND)
		return 0;
	if (ret != 0)
		return ret;
	return user_rec_decode(buf, data.size, r) < 0 ? STORE_EIO : 0;
}

int user_put(struct store *s, DB_TXN *txn, const char *user, const struct user_rec *r)
{
	DBT key, data;
	unsigned char buf[16];
	user_rec_encode(r, buf);
	dbt_init(&key, user, strlen(user));
	dbt_init(&data, buf, sizeof(buf));
	return s->db[DB_USERS]->put(s->db[DB_USERS], txn, &key, &data, 0);
}

int mbox_lookup(struct store *s, DB_TXN *txn, const char *user, const char *name,
		uint64_t *id_r, uint32_t flags)
{
	unsigned char k[STORE_USER_MAX + STORE_MAILBOX_NAME_MAX + 2], buf[8];
	size_t klen = name_key(user, name, k, sizeof(k));
	if (klen == 0)
		return STORE_EINVAL;
	DBT key, data;
	dbt_init(&key, k, klen);
	dbt_out(&data, buf, sizeof(buf));
	int ret = s->db[DB_NAMES]->get(s->db[DB_NAMES], txn, &key, &data, flags);
	if (ret == DB_NOTFOUND)
		return STORE_ENOTFOUND;
	if (ret != 0)
		return ret;
	if (data.size != 8)
		return STORE_EIO;
	*id_r = get_be64(buf);
	return 0;
}

int mbox_get(struct store *s, DB_TXN *txn, uint64_t id, struct mbox_rec *r, uint32_t flags)
{
	unsigned char k[8], buf[2048];
	put_be64(k, id);
	DBT key, data;
	dbt_init(&key, k, 8);
	dbt_out(&data, buf, sizeof(buf));
	int ret = s->db[DB_MBOXES]->get(s->db[DB_MBOXES], txn, &key, &data, flags);
	if (ret == DB_NOTFOUND)
		return STORE_ENOTFOUND;
	if (ret != 0)
		return ret;
	if (mbox_rec_decode(buf, data.size, r) < 0) {
		log_error("store: mailbox %llu: damaged record", (unsigned long long)id);
		return STORE_EIO;
	}
	return 0;
}

int mbox_put(struct store *s, DB_TXN *txn, uint64_t id, const struct mbox_rec *r)
{
	unsigned char k[8];
	struct buf out = BUF_INIT(4096);
	put_be64(k, id);
	mbox_rec_encode(r, &out);
	DBT key, data;
	dbt_init(&key, k, 8);
	dbt_init(&data, buf_data(&out), buf_len(&out));
	int ret = s->db[DB_MBOXES]->put(s->db[DB_MBOXES], txn, &key, &data, 0);
	buf_free(&out);
	return ret;
}

static int name_put(struct store *s, DB_TXN *txn, const char *user, const char *name,
		    uint64_t id)
{
	unsigned char k[STORE_USER_MAX + STORE_MAILBOX_NAME_MAX + 2], v[8];
	size_t klen = name_key(user, name, k, sizeof(k));
	put_be64(v, id);
	DBT key, data;
	dbt_init(&key, k, klen);
	dbt_init(&data, v, 8);
	return s->db[DB_NAMES]->put(s->db[DB_NAMES], txn, &key, &data, DB_NOOVERWRITE);
}

static int name_del(struct store *s, DB_TXN *txn, const char *user, const char *name)
{
	unsigned char k[STORE_USER_MAX + STORE_MAILBOX_NAME_MAX + 2];
	size_t klen = name_key(user, name, k, sizeof(k));
	DBT key;
	dbt_init(&key, k, klen);
	return s->db[DB_NAMES]->del(s->db[DB_NAMES], txn, &key, 0);
}

int mbox_create_txn(struct store *s, DB_TXN *txn, const char *user, const char *name,
		    unsigned special_use, uint64_t *id_r)
{
	uint64_t existing, id, uidvalidity;
	int ret = mbox_lookup(s, txn, user, name, &existing, DB_RMW);
	if (ret == 0)
		return STORE_EEXIST;
	if (ret != STORE_ENOTFOUND)
		return ret;
	if ((ret = meta_next(s, txn, META_NEXT_MAILBOX, 1, &id)) != 0)
		return ret;
	/* UIDVALIDITY: the time, but never the same twice for one store */
	if ((ret = meta_next(s, txn, META_UIDVALIDITY, (uint64_t)time(NULL), &uidvalidity)) != 0)
		return ret;
	struct mbox_rec r;
	memset(&r, 0, sizeof(r));
	r.uidvalidity = (uint32_t)uidvalidity;
	if (r.uidvalidity == 0)
		r.uidvalidity = 1;
	r.uidnext = 1;
	r.highestmodseq = 1;
	r.special_use = special_use;
	snprintf(r.user, sizeof(r.user), "%s", user);
	snprintf(r.name, sizeof(r.name), "%s", name);
	if ((ret = mbox_put(s, txn, id, &r)) != 0)
		return ret;
	if ((ret = name_put(s, txn, user, name, id)) != 0)
		return ret == DB_KEYEXIST ? STORE_EEXIST : ret;
	*id_r = id;
	return 0;
}

/* ---- public: users ---- */

struct create_arg {
	const char *user;
	const char *name;
	unsigned special_use;
	uint64_t id;
	bool only_if_first;    /* store_user_ensure */
};

static int create_fn(struct store *s, DB_TXN *txn, void *varg)
{
	struct create_arg *a = varg;
	if (a->only_if_first) {
		uint64_t id;
		int ret = mbox_lookup(s, txn, a->user, "INBOX", &id, DB_RMW);
		if (ret == 0) {
			a->id = id;
			return 0;
		}
		if (ret != STORE_ENOTFOUND)
			return ret;
	}
	return mbox_create_txn(s, txn, a->user, a->name, a->special_use, &a->id);
}

int store_user_ensure(struct store *store, const char *user)
{
	if (!valid_user(user))
		return STORE_EINVAL;
	struct create_arg a = { .user = user, .name = "INBOX", .only_if_first = true };
	int ret = store_txn(store, create_fn, &a);
	if (ret == STORE_OK)
		store_announce(store, &a.id, 1);
	return ret;
}

int store_user_usage(struct store *store, const char *user, uint64_t *bytes_r,
		     uint64_t *messages_r)
{
	DB_TXN *txn;
	int ret = store_read_txn(store, &txn);
	if (ret != 0)
		return ret;
	struct user_rec r;
	ret = user_get(store, txn, user, &r, 0);
	txn->commit(txn, 0);
	*bytes_r = r.bytes;
	*messages_r = r.messages;
	return store_db_error(store, ret, "user usage");
}

/* ---- public: mailboxes ---- */

int store_mailbox_create(struct store *store, const char *user, const char *name,
			 unsigned special_use, uint64_t *id_r)
{
	char norm[STORE_MAILBOX_NAME_MAX + 1];
	if (!valid_user(user) || mailbox_name_normalize(name, norm, sizeof(norm)) < 0)
		return STORE_EINVAL;
	struct create_arg a = { .user = user, .name = norm, .special_use = special_use };
	int ret = store_txn(store, create_fn, &a);
	if (ret == STORE_OK) {
		if (id_r != NULL)
			*id_r = a.id;
		store_announce(store, &a.id, 1);
	}
	return ret;
}

static void mailbox_public(uint64_t id, const struct mbox_rec *r, struct store_mailbox *m)
{
	memset(m, 0, sizeof(*m));
	m->id = id;
	snprintf(m->name, sizeof(m->name), "%s", r->name);
	m->uidvalidity = r->uidvalidity;
	m->uidnext = r->uidnext;
	m->highestmodseq = r->highestmodseq;
	m->messages = r->messages;
	m->unseen = r->unseen;
	m->size = r->size;
	m->special_use = r->special_use;
}

static bool is_subscribed(struct store *s, DB_TXN *txn, const char *user, const char *name)
{
	unsigned char k[STORE_USER_MAX + STORE_MAILBOX_NAME_MAX + 2];
	size_t klen = name_key(user, name, k, sizeof(k));
	DBT key, data;
	dbt_init(&key, k, klen);
	dbt_out(&data, NULL, 0);
	data.flags = DB_DBT_USERMEM | DB_DBT_PARTIAL;
	return s->db[DB_SUBS]->get(s->db[DB_SUBS], txn, &key, &data, 0) == 0;
}

int store_mailbox_get(struct store *store, const char *user, const char *name,
		      struct store_mailbox *mailbox_r)
{
	char norm[STORE_MAILBOX_NAME_MAX + 1];
	if (!valid_user(user) || mailbox_name_normalize(name, norm, sizeof(norm)) < 0)
		return STORE_EINVAL;
	DB_TXN *txn;
	int ret = store_read_txn(store, &txn);
	if (ret != 0)
		return ret;
	uint64_t id;
	struct mbox_rec r;
	ret = mbox_lookup(store, txn, user, norm, &id, 0);
	if (ret == 0)
		ret = mbox_get(store, txn, id, &r, 0);
	if (ret == 0) {
		mailbox_public(id, &r, mailbox_r);
		mailbox_r->subscribed = is_subscribed(store, txn, user, norm);
	}
	txn->commit(txn, 0);
	return store_db_error(store, ret, "mailbox get");
}

int store_mailbox_get_by_id(struct store *store, uint64_t id, char *user, size_t user_size,
			    struct store_mailbox *mailbox_r)
{
	DB_TXN *txn;
	int ret = store_read_txn(store, &txn);
	if (ret != 0)
		return ret;
	struct mbox_rec r;
	ret = mbox_get(store, txn, id, &r, 0);
	if (ret == 0) {
		mailbox_public(id, &r, mailbox_r);
		mailbox_r->subscribed = is_subscribed(store, txn, r.user, r.name);
		if (user != NULL)
			snprintf(user, user_size, "%s", r.user);
	}
	txn->commit(txn, 0);
	return store_db_error(store, ret, "mailbox get");
}

struct special_arg {
	const char *user, *name;
	unsigned special_use;
	uint64_t id;
};

static int special_fn(struct store *s, DB_TXN *txn, void *varg)
{
	struct special_arg *a = varg;
	struct mbox_rec r;
	int ret = mbox_lookup(s, txn, a->user, a->name, &a->id, DB_RMW);
	if (ret == 0)
		ret = mbox_get(s, txn, a->id, &r, DB_RMW);
	if (ret != 0)
		return ret;
	r.special_use = a->special_use;
	return mbox_put(s, txn, a->id, &r);
}

int store_mailbox_set_special_use(struct store *store, const char *user, const char *name,
				  unsigned special_use)
{
	char norm[STORE_MAILBOX_NAME_MAX + 1];
	if (!valid_user(user) || mailbox_name_normalize(name, norm, sizeof(norm)) < 0)
		return STORE_EINVAL;
	struct special_arg a = { user, norm, special_use, 0 };
	return store_txn(store, special_fn, &a);
}

/* Calls fn for each name key of user (in name order). */
static int each_name(struct store *s, DB_TXN *txn, const char *user, uint32_t cflags,
		     int (*fn)(struct store *s, DB_TXN *txn, const char *name, uint64_t id,
			       DBC *cursor, void *arg), void *arg)
{
	DBC *c;
	int ret = s->db[DB_NAMES]->cursor(s->db[DB_NAMES], txn, &c, 0);
	if (ret != 0)
		return ret;
	unsigned char k[STORE_USER_MAX + STORE_MAILBOX_NAME_MAX + 2], v[8];
	size_t ulen = strlen(user);
	memcpy(k, user, ulen);
	k[ulen] = '\0';
	DBT key, data;
	dbt_out(&key, k, sizeof(k));
	key.size = (u_int32_t)(ulen + 1);
	dbt_out(&data, v, sizeof(v));
	ret = c->get(c, &key, &data, DB_SET_RANGE | cflags);
	while (ret == 0) {
		if (key.size <= ulen || memcmp(k, user, ulen + 1) != 0)
			break;
		char name[STORE_MAILBOX_NAME_MAX + 1];
		size_t nlen = key.size - ulen - 1;
		if (nlen >= sizeof(name) || data.size != 8) {
			ret = STORE_EIO;
			break;
		}
		memcpy(name, k + ulen + 1, nlen);
		name[nlen] = '\0';
		ret = fn(s, txn, name, get_be64(v), c, arg);
		if (ret != 0)
			break;
		dbt_out(&key, k, sizeof(k));
		dbt_out(&data, v, sizeof(v));
		ret = c->get(c, &key, &data, DB_NEXT | cflags);
	}
	c->close(c);
	return ret == DB_NOTFOUND ? 0 : ret;
}

struct list_arg {
	const char *user;
	struct store_mailbox *items;
	size_t count, cap;
};

static int list_one(struct store *s, DB_TXN *txn, const char *name, uint64_t id, DBC *c,
		    void *varg)
{
	struct list_arg *a = varg;
	struct mbox_rec r;
	int ret = mbox_get(s, txn, id, &r, 0);
	if (ret != 0)
		return ret;
	if (a->count == a->cap) {
		a->cap = a->cap == 0 ? 16 : a->cap * 2;
		a->items = x_realloc(a->items, a->cap * sizeof(*a->items));
	}
	mailbox_public(id, &r, &a->items[a->count]);
	a->items[a->count].subscribed = is_subscribed(s, txn, a->user, name);
	a->count++;
	return 0;
}

int store_mailbox_list(struct store *store, const char *user,
		       struct store_mailbox **mailboxes_r, size_t *count_r)
{
	*mailboxes_r = NULL;
	*count_r = 0;
	if (!valid_user(user))
		return STORE_EINVAL;
	DB_TXN *txn;
	int ret = store_read_txn(store, &txn);
	if (ret != 0)
		return ret;
	struct list_arg a = { .user = user };
	ret = each_name(store, txn, user, 0, list_one, &a);
	txn->commit(txn, 0);
	if (ret != 0) {
		free(a.items);
		return store_db_error(store, ret, "mailbox list");
	}
	*mailboxes_r = a.items;
	*count_r = a.count;
	return STORE_OK;
}

/* ---- delete ---- */

struct delete_arg {
	const char *user, *name;
	uint64_t id;
	unsigned char (*blobs)[STORE_BLOB_ID_SIZE];   /* bodies whose last reference went */
	size_t n_blobs, cap_blobs;
};

static void note_blob(struct delete_arg *a, const unsigned char *blob)
{
	if (a->n_blobs == a->cap_blobs) {
		a->cap_blobs = a->cap_blobs == 0 ? 16 : a->cap_blobs * 2;
		a->blobs = x_realloc(a->blobs, a->cap_blobs * sizeof(*a->blobs));
	}
	memcpy(a->blobs[a->n_blobs++], blob, STORE_BLOB_ID_SIZE);
}

/* Removes every message of a mailbox (inside a transaction). */
static int purge_messages(struct store *s, DB_TXN *txn, uint64_t id, const char *user,
			  struct delete_arg *a)
{
	DBC *c;
	int ret = s->db[DB_MESSAGES]->cursor(s->db[DB_MESSAGES], txn, &c, 0);
	if (ret != 0)
		return ret;
	unsigned char k[12];
	struct buf vbuf = BUF_INIT(1 << 20);
	char *v = buf_reserve(&vbuf, 4096);
	DBT key, data;
	msg_key(id, 0, k);
	dbt_out(&key, k, sizeof(k));
	key.size = 12;
	dbt_out(&data, v, 4096);
	struct user_rec usage;
	ret = user_get(s, txn, user, &usage, DB_RMW);
	if (ret == 0)
		ret = c->get(c, &key, &data, DB_SET_RANGE | DB_RMW);
	while (ret == 0 && key.size == 12 && get_be64(k) == id) {
		struct store_message m;
		if (msg_rec_decode(v, data.size, &m) < 0) {
			ret = STORE_EIO;
			break;
		}
		bool last;
		if ((ret = blob_unref_txn(s, txn, m.blob, 1, &last)) != 0)
			break;
		if (last)
			note_blob(a, m.blob);
		usage.bytes = usage.bytes >= m.size ? usage.bytes - m.size : 0;
		usage.messages = usage.messages > 0 ? usage.messages - 1 : 0;
		if ((ret = c->del(c, 0)) != 0)
			break;
		dbt_out(&key, k, sizeof(k));
		dbt_out(&data, v, 4096);
		ret = c->get(c, &key, &data, DB_NEXT | DB_RMW);
	}
	c->close(c);
	buf_free(&vbuf);
	if (ret != 0 && ret != DB_NOTFOUND)
		return ret;
	return user_put(s, txn, user, &usage);
}

static int delete_expunges(struct store *s, DB_TXN *txn, uint64_t id)
{
	DBC *c;
	int ret = s->db[DB_EXPUNGES]->cursor(s->db[DB_EXPUNGES], txn, &c, 0);
	if (ret != 0)
		return ret;
	unsigned char k[20];
	DBT key, data;
	put_be64(k, id);
	dbt_out(&key, k, sizeof(k));
	key.size = 8;
	dbt_out(&data, NULL, 0);
	data.flags = DB_DBT_USERMEM | DB_DBT_PARTIAL;
	ret = c->get(c, &key, &data, DB_SET_RANGE | DB_RMW);
	while (ret == 0 && key.size >= 8 && get_be64(k) == id) {
		if ((ret = c->del(c, 0)) != 0)
			break;
		ret = c->get(c, &key, &data, DB_NEXT | DB_RMW);
	}
	c->close(c);
	return ret == DB_NOTFOUND ? 0 : ret;
}

static int delete_fn(struct store *s, DB_TXN *txn, void *varg)
{
	struct delete_arg *a = varg;
	a->n_blobs = 0;
	int ret = mbox_lookup(s, txn, a->user, a->name, &a->id, DB_RMW);
	if (ret != 0)
		return ret;
	unsigned char k[8];
	put_be64(k, a->id);
	DBT key;
	dbt_init(&key, k, 8);
	if ((ret = purge_messages(s, txn, a->id, a->user, a)) != 0 ||
	    (ret = delete_expunges(s, txn, a->id)) != 0 ||
	    (ret = s->db[DB_MBOXES]->del(s->db[DB_MBOXES], txn, &key, 0)) != 0)
		return ret;
	return name_del(s, txn, a->user, a->name);
}

int store_mailbox_delete(struct store *store, const char *user, const char *name)
{
	char norm[STORE_MAILBOX_NAME_MAX + 1];
	if (!valid_user(user) || mailbox_name_normalize(name, norm, sizeof(norm)) < 0 ||
	    strcmp(norm, "INBOX") == 0)
		return STORE_EINVAL;
	struct delete_arg a = { .user = user, .name = norm };
	int ret = store_txn(store, delete_fn, &a);
	if (ret == STORE_OK) {
		for (size_t i = 0; i < a.n_blobs; i++)
			blob_remove_if_unreferenced(store, a.blobs[i]);
		store_announce(store, &a.id, 1);
	}
	free(a.blobs);
	return ret;
}

/* ---- rename ---- */

struct rename_arg {
	const char *user, *from, *to;
	uint64_t *ids;          /* every mailbox renamed, announced after the commit */
	size_t n_ids, cap_ids;
	size_t moved_inbox;     /* messages moved out of INBOX */
};

struct rename_item {
	char name[STORE_MAILBOX_NAME_MAX + 1];
	uint64_t id;
};

struct collect_arg {
	const char *prefix;         /* "from/" */
	size_t prefix_len;
	const char *exact;
	struct rename_item *items;
	size_t count, cap;
};

static int collect_one(struct store *s, DB_TXN *txn, const char *name, uint64_t id, DBC *c,
		       void *varg)
{
	struct collect_arg *a = varg;
	if (strcmp(name, a->exact) != 0 && strncmp(name, a->prefix, a->prefix_len) != 0)
		return 0;
	if (a->count == a->cap) {
		a->cap = a->cap == 0 ? 8 : a->cap * 2;
		a->items = x_realloc(a->items, a->cap * sizeof(*a->items));
	}
	snprintf(a->items[a->count].name, sizeof(a->items[0].name), "%s", name);
	a->items[a->count].id = id;
	a->count++;
	return 0;
}

static void note_renamed(struct rename_arg *a, uint64_t id)
{
	if (a->n_ids == a->cap_ids) {
		a->cap_ids = a->cap_ids == 0 ? 16 : a->cap_ids * 2;
		a->ids = x_realloc(a->ids, a->cap_ids * sizeof(*a->ids));
	}
	a->ids[a->n_ids++] = id;
}

static int rename_one(struct store *s, DB_TXN *txn, struct rename_arg *a,
		      const struct rename_item *it)
{
	char newname[STORE_MAILBOX_NAME_MAX + 1];
	size_t flen = strlen(a->from);
	int n = snprintf(newname, sizeof(newname), "%s%s", a->to, it->name + flen);
	if (n < 0 || (size_t)n >= sizeof(newname) || n > STORE_MAILBOX_NAME_MAX)
		return STORE_EINVAL;
	uint64_t other;
	int ret = mbox_lookup(s, txn, a->user, newname, &other, DB_RMW);
	if (ret == 0)
		return STORE_EEXIST;
	if (ret != STORE_ENOTFOUND)
		return ret;
	struct mbox_rec r;
	if ((ret = mbox_get(s, txn, it->id, &r, DB_RMW)) != 0)
		return ret;
	snprintf(r.name, sizeof(r.name), "%s", newname);
	if ((ret = mbox_put(s, txn, it->id, &r)) != 0 ||
	    (ret = name_del(s, txn, a->user, it->name)) != 0 ||
	    (ret = name_put(s, txn, a->user, newname, it->id)) != 0)
		return ret;
	note_renamed(a, it->id);
	return 0;
}

/* RFC 9051 6.3.6: renaming INBOX moves its messages to a new mailbox. */
static int rename_inbox(struct store *s, DB_TXN *txn, struct rename_arg *a)
{
	uint64_t inbox, dst;
	int ret = mbox_lookup(s, txn, a->user, "INBOX", &inbox, DB_RMW);
	if (ret != 0)
		return ret;
	if ((ret = mbox_create_txn(s, txn, a->user, a->to, 0, &dst)) != 0)
		return ret;
	struct mbox_rec src, dr;
	if ((ret = mbox_get(s, txn, inbox, &src, DB_RMW)) != 0 ||
	    (ret = mbox_get(s, txn, dst, &dr, DB_RMW)) != 0)
		return ret;
	DBC *c;
	if ((ret = s->db[DB_MESSAGES]->cursor(s->db[DB_MESSAGES], txn, &c, 0)) != 0)
		return ret;
	unsigned char k[12], v[4096];
	DBT key, data;
	msg_key(inbox, 0, k);
	dbt_out(&key, k, sizeof(k));
	key.size = 12;
	dbt_out(&data, v, sizeof(v));
	ret = c->get(c, &key, &data, DB_SET_RANGE | DB_RMW);
	while (ret == 0 && key.size == 12 && get_be64(k) == inbox) {
		struct store_message m;
		if (msg_rec_decode(v, data.size, &m) < 0) {
			ret = STORE_EIO;
			break;
		}
		m.uid = dr.uidnext++;
		m.modseq = ++dr.highestmodseq;
		unsigned char nk[12];
		msg_key(dst, m.uid, nk);
		struct buf out = BUF_INIT(8192);
		msg_rec_encode(&m, &out);
		DBT nkey, ndata;
		dbt_init(&nkey, nk, 12);
		dbt_init(&ndata, buf_data(&out), buf_len(&out));
		ret = s->db[DB_MESSAGES]->put(s->db[DB_MESSAGES], txn, &nkey, &ndata, 0);
		buf_free(&out);
		if (ret == 0)
			ret = c->del(c, 0);
		if (ret != 0)
			break;
		dr.messages++;
		dr.size += m.size;
		if (!(m.flags & STORE_FLAG_SEEN))
			dr.unseen++;
		a->moved_inbox++;
		dbt_out(&key, k, sizeof(k));
		dbt_out(&data, v, sizeof(v));
		ret = c->get(c, &key, &data, DB_NEXT | DB_RMW);
	}
	c->close(c);
	if (ret != 0 && ret != DB_NOTFOUND)
		return ret;
	src.messages = 0;
	src.unseen = 0;
	src.size = 0;
	src.highestmodseq++;
	if ((ret = mbox_put(s, txn, inbox, &src)) != 0 || (ret = mbox_put(s, txn, dst, &dr)) != 0)
		return ret;
	note_renamed(a, inbox);
	note_renamed(a, dst);
	return 0;
}

static int rename_fn(struct store *s, DB_TXN *txn, void *varg)
{
	struct rename_arg *a = varg;
	a->n_ids = 0;
	a->moved_inbox = 0;
	if (strcmp(a->from, "INBOX") == 0)
		return rename_inbox(s, txn, a);
	char prefix[STORE_MAILBOX_NAME_MAX + 2];
	snprintf(prefix, sizeof(prefix), "%s/", a->from);
	struct collect_arg c = { .prefix = prefix, .prefix_len = strlen(prefix), .exact = a->from };
	int ret = each_name(s, txn, a->user, DB_RMW, collect_one, &c);
	if (ret == 0 && c.count == 0)
		ret = STORE_ENOTFOUND;
	for (size_t i = 0; ret == 0 && i < c.count; i++)
		ret = rename_one(s, txn, a, &c.items[i]);
	free(c.items);
	return ret;
}

int store_mailbox_rename(struct store *store, const char *user, const char *from,
			 const char *to)
{
	char nf[STORE_MAILBOX_NAME_MAX + 1], nt[STORE_MAILBOX_NAME_MAX + 1];
	if (!valid_user(user) || mailbox_name_normalize(from, nf, sizeof(nf)) < 0 ||
	    mailbox_name_normalize(to, nt, sizeof(nt)) < 0 || strcmp(nt, "INBOX") == 0)
		return STORE_EINVAL;
	size_t flen = strlen(nf);
	/* a mailbox cannot move below itself */
	if (strcmp(nf, nt) == 0 || (strncmp(nt, nf, flen) == 0 && nt[flen] == '/'))
		return STORE_EINVAL;
	struct rename_arg a = { .user = user, .from = nf, .to = nt };
	int ret = store_txn(store, rename_fn, &a);
	if (ret == STORE_OK)
		store_announce(store, a.ids, a.n_ids);
	free(a.ids);
	return ret;
}

/* ---- subscriptions ---- */

struct sub_arg {
	const char *user, *name;
	bool on;
};

static int sub_fn(struct store *s, DB_TXN *txn, void *varg)
{
	struct sub_arg *a = varg;
	unsigned char k[STORE_USER_MAX + STORE_MAILBOX_NAME_MAX + 2];
	size_t klen = name_key(a->user, a->name, k, sizeof(k));
	DBT key, data;
	dbt_init(&key, k, klen);
	dbt_init(&data, "", 0);
	int ret = a->on ? s->db[DB_SUBS]->put(s->db[DB_SUBS], txn, &key, &data, 0) :
		s->db[DB_SUBS]->del(s->db[DB_SUBS], txn, &key, 0);
	return ret == DB_NOTFOUND ? 0 : ret;
}

int store_subscribe(struct store *store, const char *user, const char *name, bool subscribe)
{
	char norm[STORE_MAILBOX_NAME_MAX + 1];
	if (!valid_user(user) || mailbox_name_normalize(name, norm, sizeof(norm)) < 0)
		return STORE_EINVAL;
	struct sub_arg a = { user, norm, subscribe };
	return store_txn(store, sub_fn, &a);
}

int store_subscriptions(struct store *store, const char *user, char ***names_r,
			size_t *count_r)
{
	*names_r = NULL;
	*count_r = 0;
	if (!valid_user(user))
		return STORE_EINVAL;
	DB_TXN *txn;
	int ret = store_read_txn(store, &txn);
	if (ret != 0)
		return ret;
	DBC *c;
	ret = store->db[DB_SUBS]->cursor(store->db[DB_SUBS], txn, &c, 0);
	if (ret != 0) {
		txn->abort(txn);
		return store_db_error(store, ret, "subscriptions");
	}
	unsigned char k[STORE_USER_MAX + STORE_MAILBOX_NAME_MAX + 2];
	size_t ulen = strlen(user), n = 0, cap = 0;
	char **names = NULL;
	memcpy(k, user, ulen);
	k[ulen] = '\0';
	DBT key, data;
	dbt_out(&key, k, sizeof(k));
	key.size = (u_int32_t)(ulen + 1);
	dbt_out(&data, NULL, 0);
	data.flags = DB_DBT_USERMEM | DB_DBT_PARTIAL;
	ret = c->get(c, &key, &data, DB_SET_RANGE);
	while (ret == 0 && key.size > ulen && memcmp(k, user, ulen + 1) == 0) {
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			names = x_realloc(names, cap * sizeof(*names));
		}
		names[n++] = x_strndup((const char *)k + ulen + 1, key.size - ulen - 1);
		dbt_out(&key, k, sizeof(k));
		ret = c->get(c, &key, &data, DB_NEXT);
	}
	c->close(c);
	txn->commit(txn, 0);
	if (ret != 0 && ret != DB_NOTFOUND) {
		store_free_names(names, n);
		return store_db_error(store, ret, "subscriptions");
	}
	*names_r = names;
	*count_r = n;
	return STORE_OK;
}

void store_free_names(char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}
