/* store-private.h — shared by the files of storage/ only. */
#ifndef WARREN_STORE_PRIVATE_H
#define WARREN_STORE_PRIVATE_H

#include "storage/store.h"
#include "common/buf.h"

#include <db.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

/* Attempts of a transaction that keeps hitting deadlocks before giving up. */
#define STORE_TXN_RETRIES 200
/* Threads (in all processes together) Berkeley DB can track for failchk. */
#define STORE_THREAD_COUNT 4096
/* Longest user name and mailbox name in bytes. */
#define STORE_USER_MAX 320
#define STORE_MAILBOX_NAME_MAX 500
/* Nesting of mailbox names ("a/b/c") accepted. */
#define STORE_MAILBOX_DEPTH_MAX 32
/* Orphan body files younger than this are left alone (a delivery in progress). */
#define STORE_ORPHAN_AGE_S 3600

enum store_db {
	DB_META,        /* counters: next mailbox id, last uidvalidity */
	DB_USERS,       /* user → usage */
	DB_NAMES,       /* user \0 mailbox name → mailbox id */
	DB_MBOXES,      /* mailbox id → mailbox record */
	DB_MESSAGES,    /* mailbox id, uid → message record */
	DB_EXPUNGES,    /* mailbox id, modseq, uid → (empty) */
	DB_BLOBS,       /* blob id → references and size */
	DB_MIME,        /* blob id → serialized MIME structure */
	DB_SUBS,        /* user \0 mailbox name → (empty) */
	DB_OUTQUEUE,       /* queue id → outbound message record (queue.c) */
	DB_KV,          /* space \0 key → counter record (kv.c): greylisting, rates, bans */
	DB_COUNT,
};

struct store {
	DB_ENV *env;
	DB *db[DB_COUNT];
	char *dir;               /* state_dir */
	char *env_dir;           /* state_dir/store */
	char *blob_dir;          /* state_dir/blobs */
	char *notify_dir;        /* state_dir/notify */
	unsigned flags;
	unsigned mime_max_depth;  /* store_settings.mime_max_depth */
	/* failchk watchdog */
	pthread_t watchdog;
	bool watchdog_running;
	bool watchdog_stop;              /* under watchdog_lock */
	pthread_mutex_t watchdog_lock;   /* watchdog_stop and the wake-up below */
	pthread_cond_t watchdog_wake;    /* store_close wakes the thread at once */
	unsigned watchdog_interval_ms;
	void (*on_recover)(void *ctx);
	void *on_recover_ctx;
	/* notifications */
	int notify_fd;           /* our receiving socket, -1 when none */
	char *notify_path;
	uv_poll_t *notify_poll;
	store_notify_callback *notify_cb;
	void *notify_ctx;
	int send_fd;             /* socket changes are announced from */
	pthread_mutex_t send_lock;
};

/* ---- transactions ---- */

/* Runs fn inside a durable write transaction, retrying on deadlock. fn returns
 * 0, a STORE_E* code (the transaction is aborted and the code returned), or a
 * Berkeley DB error. */
int store_txn(struct store *store, int (*fn)(struct store *s, DB_TXN *txn, void *arg),
	      void *arg);
/* A read-only snapshot transaction (MVCC): never blocks writers. */
int store_read_txn(struct store *store, DB_TXN **txn_r);
/* store_txn with the commit's flags (DB_TXN_WRITE_NOSYNC for records whose loss in a
 * crash costs nothing, such as counters). */
int store_txn_flags(struct store *store, int (*fn)(struct store *s, DB_TXN *txn, void *arg),
		    void *arg, unsigned commit_flags);
/* Maps a Berkeley DB error to STORE_E*; logs unexpected ones. */
int store_db_error(struct store *store, int ret, const char *what);

/* ---- records ---- */

static inline void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

static inline uint32_t get_be32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void put_be64(unsigned char *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static inline uint64_t get_be64(const unsigned char *p)
{
	return ((uint64_t)get_be32(p) << 32) | get_be32(p + 4);
}

/* The mailbox record as stored. */
struct mbox_rec {
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	uint32_t messages, unseen;
	uint64_t size;
	uint32_t special_use;
	char user[STORE_USER_MAX + 1];
	char name[STORE_MAILBOX_NAME_MAX + 1];
};

struct blob_rec {
	uint64_t refs;
	uint64_t size;
};

struct user_rec {
	uint64_t bytes;
	uint64_t messages;
};

/* Encoders write into a buf; decoders return -1 on a malformed record. */
void mbox_rec_encode(const struct mbox_rec *r, struct buf *out);
int mbox_rec_decode(const void *data, size_t len, struct mbox_rec *r);
void msg_rec_encode(const struct store_message *m, struct buf *out);
int msg_rec_decode(const void *data, size_t len, struct store_message *m);
void blob_rec_encode(const struct blob_rec *r, unsigned char out[16]);
int blob_rec_decode(const void *data, size_t len, struct blob_rec *r);
void user_rec_encode(const struct user_rec *r, unsigned char out[16]);
int user_rec_decode(const void *data, size_t len, struct user_rec *r);

/* Keys. */
size_t name_key(const char *user, const char *name, unsigned char *out, size_t size);
void msg_key(uint64_t mailbox_id, uint32_t uid, unsigned char out[12]);

/* Normalises a mailbox name ("inbox" → "INBOX", no trailing "/"); -1 when invalid. */
int mailbox_name_normalize(const char *name, char *out, size_t size);

/* ---- records inside a transaction (mailbox.c) ---- */

int mbox_lookup(struct store *s, DB_TXN *txn, const char *user, const char *name,
		uint64_t *id_r, uint32_t flags);
int mbox_get(struct store *s, DB_TXN *txn, uint64_t id, struct mbox_rec *r, uint32_t flags);
int mbox_put(struct store *s, DB_TXN *txn, uint64_t id, const struct mbox_rec *r);
int mbox_create_txn(struct store *s, DB_TXN *txn, const char *user, const char *name,
		    unsigned special_use, uint64_t *id_r);
int user_get(struct store *s, DB_TXN *txn, const char *user, struct user_rec *r, uint32_t flags);
int user_put(struct store *s, DB_TXN *txn, const char *user, const struct user_rec *r);
/* Adds a message record to a mailbox (UID, counters, usage, blob references). */
int msg_insert_txn(struct store *s, DB_TXN *txn, uint64_t mailbox_id, struct mbox_rec *mbox,
		   struct store_message *m);

/* ---- bodies (blob.c) ---- */

/* A body file this thread wrote and made durable (file and folder fsynced). */
struct blob_file {
	dev_t dev;
	ino_t ino;
	struct timespec mtime;
};

/* Writes data durably as the blob named by its SHA-256 (computed here);
 * *written_r (when not NULL) identifies the file written. */
int blob_write(struct store *s, const struct store_body *body,
	       unsigned char blob[STORE_BLOB_ID_SIZE], uint64_t *size_r,
	       struct blob_file *written_r);
/* Hashes a body without writing it. */
int blob_hash(const struct store_body *body, unsigned char blob[STORE_BLOB_ID_SIZE],
	      uint64_t *size_r);
/* Inside a transaction: takes refs more references to blob; when the blob has no
 * record yet, makes sure its file is durable (*need_write_r = true when the file
 * is missing: abort, write it, retry) and stores its MIME cache. The fsyncs are
 * skipped when the file is still the one the caller wrote (written, may be NULL):
 * they would run under the record's lock and serialise concurrent deliveries. */
int blob_ref_txn(struct store *s, DB_TXN *txn, const unsigned char blob[STORE_BLOB_ID_SIZE],
		 uint64_t size, uint64_t refs, const struct buf *mime,
		 const struct blob_file *written, bool *need_write_r);
/* Drops references; *last_r tells whether the last one went. */
int blob_unref_txn(struct store *s, DB_TXN *txn, const unsigned char blob[STORE_BLOB_ID_SIZE],
		   uint64_t refs, bool *last_r);
/* After a commit that dropped the last reference: removes the file unless a new
 * reference appeared meanwhile. */
void blob_remove_if_unreferenced(struct store *s, const unsigned char blob[STORE_BLOB_ID_SIZE]);
/* Parses a body's MIME structure into its serialized form. */
int blob_parse_mime(const struct store_body *body, unsigned max_depth, struct buf *out);
void blob_hex(const unsigned char blob[STORE_BLOB_ID_SIZE], char hex[2 * STORE_BLOB_ID_SIZE + 1]);
/* True while a backup runs: files are not removed then (verify.c). */
bool blob_removal_paused(struct store *s);
int fsync_dir(const char *path);

/* ---- notifications (notify.c) ---- */

void store_announce(struct store *s, const uint64_t *mailbox_ids, size_t count);
void store_notify_close(struct store *s);

#endif
