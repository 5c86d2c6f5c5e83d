/* deliver.c — storing new messages: SMTP delivery to many mailboxes, IMAP APPEND. */
#include "storage/store-private.h"
#include "common/log.h"
#include "common/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Recipients of one delivery (RFC 5321's minimum is 100; the limit is smtpd's). */
#define DELIVER_RECIPIENTS_MAX 10000
/* Times a delivery writes its body again when a concurrent removal of the same
 * content took the file before the delivery's transaction held its lock. */
#define DELIVER_REWRITES_MAX 8

static void dbt_set(DBT *d, const void *data, size_t len)
{
	memset(d, 0, sizeof(*d));
	d->data = (void *)data;
	d->size = (u_int32_t)len;
}

int msg_insert_txn(struct store *s, DB_TXN *txn, uint64_t mailbox_id, struct mbox_rec *mbox,
		   struct store_message *m)
{
	if (mbox->uidnext == UINT32_MAX)
		return STORE_EIO;   /* UIDs exhausted: the mailbox needs a new UIDVALIDITY */
	m->uid = mbox->uidnext++;
	m->modseq = ++mbox->highestmodseq;
	unsigned char k[12];
	msg_key(mailbox_id, m->uid, k);
	struct buf out = BUF_INIT(8192);
	msg_rec_encode(m, &out);
	DBT key, data;
	dbt_set(&key, k, 12);
	dbt_set(&data, buf_data(&out), buf_len(&out));
	int ret = s->db[DB_MESSAGES]->put(s->db[DB_MESSAGES], txn, &key, &data, 0);
	buf_free(&out);
	if (ret != 0)
		return ret;
	mbox->messages++;
	mbox->size += m->size;
	if (!(m->flags & STORE_FLAG_SEEN))
		mbox->unseen++;
	return 0;
}

struct deliver_arg {
	const struct store_body *body;
	const char *env_from;
	int64_t internal_date;
	const char *keywords;
	struct store_recipient *rcpt;
	size_t count;
	size_t *order;              /* recipients sorted by user, then mailbox */
	unsigned char blob[STORE_BLOB_ID_SIZE];
	uint64_t size;
	const struct buf *mime;
	bool create_mailbox;        /* SMTP: create a missing folder; APPEND: refuse */
	bool need_write;
	struct blob_file written;   /* the body file this delivery wrote (ino 0: none) */
	size_t stored;
	uint64_t *ids;
};

/* One recipient; usage is the user's (already read, written by the caller). */
static int deliver_one(struct store *s, DB_TXN *txn, struct deliver_arg *a,
		       struct store_recipient *r, struct user_rec *usage)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	if (mailbox_name_normalize(r->mailbox, name, sizeof(name)) < 0) {
		r->result = STORE_EINVAL;
		return 0;
	}
	if (r->quota != 0 && usage->bytes + a->size > r->quota) {
		r->result = STORE_EQUOTA;
		return 0;
	}
	uint64_t id;
	int ret = mbox_lookup(s, txn, r->user, name, &id, DB_RMW);
	if (ret == STORE_ENOTFOUND && a->create_mailbox)
		ret = mbox_create_txn(s, txn, r->user, name, 0, &id);
	if (ret == STORE_ENOTFOUND) {
		r->result = STORE_ENOTFOUND;
		return 0;
	}
	if (ret != 0)
		return ret;
	struct mbox_rec mbox;
	if ((ret = mbox_get(s, txn, id, &mbox, DB_RMW)) != 0)
		return ret;
	struct store_message m;
	memset(&m, 0, sizeof(m));
	m.flags = r->flags;
	m.internal_date = a->internal_date;
	m.save_date = (int64_t)time(NULL);
	m.size = a->size;
	memcpy(m.blob, a->blob, STORE_BLOB_ID_SIZE);
	snprintf(m.env_from, sizeof(m.env_from), "%s", a->env_from != NULL ? a->env_from : "");
	snprintf(m.env_to, sizeof(m.env_to), "%s", r->env_to != NULL ? r->env_to : "");
	snprintf(m.keywords, sizeof(m.keywords), "%s", a->keywords != NULL ? a->keywords : "");
	if ((ret = msg_insert_txn(s, txn, id, &mbox, &m)) != 0 ||
	    (ret = mbox_put(s, txn, id, &mbox)) != 0)
		return ret;
	usage->bytes += a->size;
	usage->messages++;
	r->result = STORE_OK;
	r->uid = m.uid;
	r->uidvalidity = mbox.uidvalidity;
	r->mailbox_id = id;
	a->stored++;
	return 0;
}

static int deliver_fn(struct store *s, DB_TXN *txn, void *varg)
{
	struct deliver_arg *a = varg;
	a->stored = 0;
	a->need_write = false;
	int ret = 0;
	/* recipients in a fixed order (user, then mailbox) so that concurrent
	 * deliveries take their locks in the same order */
	for (size_t i = 0; i < a->count && ret == 0;) {
		const char *user = a->rcpt[a->order[i]].user;
		struct user_rec usage;
		if ((ret = user_get(s, txn, user, &usage, DB_RMW)) != 0)
			break;
		size_t j = i;
		for (; j < a->count && strcmp(a->rcpt[a->order[j]].user, user) == 0; j++) {
			struct store_recipient *r = &a->rcpt[a->order[j]];
			r->result = STORE_EIO;
			if ((ret = deliver_one(s, txn, a, r, &usage)) != 0)
				break;
		}
		if (ret == 0)
			ret = user_put(s, txn, user, &usage);
		i = j;
	}
	if (ret == 0 && a->stored > 0)
		ret = blob_ref_txn(s, txn, a->blob, a->size, a->stored, a->mime,
				   a->written.ino != 0 ? &a->written : NULL, &a->need_write);
	return ret;
}

static const struct store_recipient *sort_base;

static int cmp_rcpt(const void *x, const void *y)
{
	const struct store_recipient *a = &sort_base[*(const size_t *)x];
	const struct store_recipient *b = &sort_base[*(const size_t *)y];
	int c = strcmp(a->user, b->user);
	return c != 0 ? c : strcmp(a->mailbox, b->mailbox);
}

static pthread_mutex_t sort_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t *sorted_order(const struct store_recipient *r, size_t count)
{
	size_t *order = x_malloc((count + 1) * sizeof(*order));
	for (size_t i = 0; i < count; i++)
		order[i] = i;
	pthread_mutex_lock(&sort_lock);
	sort_base = r;
	qsort(order, count, sizeof(*order), cmp_rcpt);
	pthread_mutex_unlock(&sort_lock);
	return order;
}

static int deliver_common(struct store *s, struct deliver_arg *a)
{
	struct buf mime = BUF_INIT(64 * 1024 * 1024);
	/* Body first, outside any lock: hashed, and written unless it is stored
	 * already (then the transaction only adds references). */
	int ret = blob_hash(a->body, a->blob, &a->size);
	if (ret != 0)
		return ret;
	bool written = false;
	char path[4096];
	store_blob_path(s, a->blob, path, sizeof(path));
	if (access(path, F_OK) != 0) {
		if ((ret = blob_write(s, a->body, a->blob, &a->size, &a->written)) != 0)
			return ret;
		written = true;
	}
	if ((ret = blob_parse_mime(a->body, s->mime_max_depth, &mime)) != 0) {
		buf_free(&mime);
		return ret;
	}
	a->mime = &mime;
	for (int attempt = 0;; attempt++) {
		ret = store_txn(s, deliver_fn, a);
		if (!(ret == STORE_ENOTFOUND && a->need_write))
			break;
		if (attempt == DELIVER_REWRITES_MAX) {
			log_error("store: a body vanished %d times under a delivery; giving up",
				  attempt + 1);
			ret = STORE_EIO;   /* the last word is always the transaction's */
			break;
		}
		/* the file went away between our check and the lock (a concurrent
		 * removal of the last copy of the same content, which may also take
		 * the file we just wrote, as it had no record yet): write it again */
		if ((ret = blob_write(s, a->body, a->blob, &a->size, &a->written)) != 0)
			break;
		written = true;
	}
	buf_free(&mime);
	if (ret == STORE_OK && a->stored == 0 && written)
		blob_remove_if_unreferenced(s, a->blob);   /* nobody took it */
	if (ret == STORE_OK) {
		/* every mailbox that got the message hears of it, however many */
		uint64_t *ids = x_malloc((a->count + 1) * sizeof(*ids));
		size_t n = 0;
		for (size_t i = 0; i < a->count; i++)
			if (a->rcpt[i].result == STORE_OK)
				ids[n++] = a->rcpt[i].mailbox_id;
		store_announce(s, ids, n);
		free(ids);
	}
	return ret;
}

int store_deliver(struct store *store, const struct store_body *body,
		  const char *env_from, int64_t internal_date,
		  struct store_recipient *recipients, size_t count)
{
	if (count == 0 || count > DELIVER_RECIPIENTS_MAX)
		return STORE_EINVAL;
	for (size_t i = 0; i < count; i++)
		if (recipients[i].user == NULL || recipients[i].user[0] == '\0' ||
		    strlen(recipients[i].user) > STORE_USER_MAX || recipients[i].mailbox == NULL)
			return STORE_EINVAL;
	struct deliver_arg a = {
		.body = body,
		.env_from = env_from,
		.internal_date = internal_date,
		.rcpt = recipients,
		.count = count,
		.create_mailbox = true,
	};
	a.order = sorted_order(recipients, count);
	int ret = deliver_common(store, &a);
	free(a.order);
	return ret;
}

int store_append(struct store *store, const char *user, const char *mailbox,
		 const struct store_body *body, unsigned flags, const char *keywords,
		 int64_t internal_date, uint64_t quota, uint32_t *uid_r,
		 uint32_t *uidvalidity_r)
{
	if (user == NULL || strlen(user) > STORE_USER_MAX ||
	    (keywords != NULL && strlen(keywords) >= STORE_KEYWORDS_MAX))
		return STORE_EINVAL;
	struct store_recipient r = {
		.user = user, .mailbox = mailbox, .env_to = "", .quota = quota, .flags = flags,
	};
	size_t order = 0;
	struct deliver_arg a = {
		.body = body,
		.env_from = "",
		.internal_date = internal_date,
		.keywords = keywords,
		.rcpt = &r,
		.count = 1,
		.order = &order,
		.create_mailbox = false,
	};
	int ret = deliver_common(store, &a);
	if (ret != STORE_OK)
		return ret;
	if (r.result != STORE_OK)
		return r.result;
	if (uid_r != NULL)
		*uid_r = r.uid;
	if (uidvalidity_r != NULL)
		*uidvalidity_r = r.uidvalidity;
	return STORE_OK;
}
