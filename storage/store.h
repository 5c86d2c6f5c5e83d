/* store.h — the mailbox store: one Berkeley DB transactional environment shared
 * by every Warren process, and a content-addressed folder of message bodies.
 *
 * Durability: every call that changes something returns only after its change is
 * durable — the body file fsynced, renamed into place and its folder fsynced, and
 * the transaction committed with a synchronous log flush. Concurrent commits share
 * log flushes (Berkeley DB's group commit), so many sessions pay for one fsync.
 *
 * Threads: every call is blocking and thread-safe; protocol code runs them off the
 * loop thread with store_async() (libuv's thread pool). Readers use MVCC snapshots,
 * so they never wait for writers; writers retry on deadlock.
 *
 * Errors: calls return 0 or a negative STORE_E* code and, where given, a message in
 * *error_r (static text or a string valid until the next call on the same thread).
 *
 * Names: users are addresses ("alice@example.test", lower case); mailbox names are
 * UTF-8 with "/" as the hierarchy separator; "INBOX" is case-insensitive.
 */
#ifndef WARREN_STORE_H
#define WARREN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

struct store;
struct pool;

enum store_error {
	STORE_OK = 0,
	STORE_ENOTFOUND = -1,   /* no such user, mailbox or message */
	STORE_EEXIST = -2,      /* mailbox already exists */
	STORE_EQUOTA = -3,      /* the change would pass the user's quota */
	STORE_EINVAL = -4,      /* bad name or argument */
	STORE_EIO = -5,         /* disk or database error */
	STORE_ERECOVER = -6,    /* the environment needs recovery: exit, the master recovers */
	STORE_ECHANGED = -7,    /* UNCHANGEDSINCE failed (CONDSTORE) */
	STORE_ETOOBIG = -8,     /* message larger than allowed */
};

const char *store_strerror(int err);

/* ---- opening -------------------------------------------------------------- */

enum {
	STORE_OPEN_RECOVER = 0x1,   /* the master: run recovery if needed, create the files */
	STORE_OPEN_NOTIFY = 0x2,    /* receive change notifications (store_notify_*) */
};

struct store_settings {
	const char *dir;            /* state_dir: the store lives in dir/store, dir/blobs */
	unsigned flags;             /* STORE_OPEN_* */
	unsigned cache_mb;          /* Berkeley DB cache; 0: 64 MiB */
	unsigned mime_max_depth;    /* MIME nesting parsed at delivery (limits.max_mime_depth);
	                               deeper parts are leaves; 0: MIME_DEFAULT_MAX_DEPTH */
};

int store_open(const struct store_settings *settings, struct store **store_r,
	       const char **error_r);
void store_close(struct store **store);
/* For an environment that needs recovery: drops the handle without closing the
 * databases (which could wait forever on a mutex a dead process holds) and
 * takes this process out of the registry, so it may open the store again. */
void store_abandon(struct store **store);

/* Checks whether any dead process left the environment in need of recovery
 * (Berkeley DB failchk). 0: fine; STORE_ERECOVER: every process must close the
 * store and the master must reopen it with STORE_OPEN_RECOVER. Only ONE process
 * may run this (the master): concurrent failchk calls in several processes were
 * seen spinning forever on each other's region mutexes. */
int store_failchk(struct store *store);
/* Cheap check whether the environment has been marked as needing recovery (by
 * the master's failchk or by any process that hit a fatal error). */
int store_panic_check(struct store *store);
/* Asks the running master of the store in state_dir to recover it (after
 * store_open returned STORE_ERECOVER in a process that is not the master). */
int store_request_recovery(const char *state_dir);
/* Starts a thread that runs store_panic_check() every interval_ms and calls
 * on_recover (from that thread) once recovery is needed. */
int store_watchdog_start(struct store *store, unsigned interval_ms,
			 void (*on_recover)(void *ctx), void *ctx);
/* Checkpoint and removal of log files no longer needed (the master, periodically). */
int store_checkpoint(struct store *store);

/* ---- asynchronous use from a libuv loop -------------------------------------- */

/* Runs work(arg) on libuv's thread pool, then done(arg, result) on the loop thread.
 * work returns a STORE_* code. */
int store_async(uv_loop_t *loop, int (*work)(void *arg),
		void (*done)(void *arg, int result), void *arg);

/* ---- users and mailboxes --------------------------------------------------- */

/* Special-use attributes (RFC 6154). */
enum {
	STORE_SPECIAL_NONE = 0,
	STORE_SPECIAL_ALL = 0x01,
	STORE_SPECIAL_ARCHIVE = 0x02,
	STORE_SPECIAL_DRAFTS = 0x04,
	STORE_SPECIAL_FLAGGED = 0x08,
	STORE_SPECIAL_JUNK = 0x10,
	STORE_SPECIAL_SENT = 0x20,
	STORE_SPECIAL_TRASH = 0x40,
};

struct store_mailbox {
	uint64_t id;               /* never reused */
	char name[512];
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t messages;
	uint32_t unseen;
	uint32_t recent;           /* not tracked: always 0 (IMAP4rev2 dropped \Recent) */
	uint64_t size;             /* bytes of all messages */
	unsigned special_use;
	bool subscribed;
};

/* Creates the user's INBOX (and nothing else) if the user has no mailboxes yet. */
int store_user_ensure(struct store *store, const char *user);
/* Usage counted against the quota. */
int store_user_usage(struct store *store, const char *user, uint64_t *bytes_r,
		     uint64_t *messages_r);

int store_mailbox_create(struct store *store, const char *user, const char *name,
			 unsigned special_use, uint64_t *id_r);
/* Deletes a mailbox and its messages (not its children). INBOX cannot be deleted. */
int store_mailbox_delete(struct store *store, const char *user, const char *name);
/* Renames a mailbox and every mailbox below it ("a" → "b" moves "a/x" to "b/x").
 * Renaming INBOX moves its messages into a new mailbox and leaves INBOX empty. */
int store_mailbox_rename(struct store *store, const char *user, const char *from,
			 const char *to);
int store_mailbox_get(struct store *store, const char *user, const char *name,
		      struct store_mailbox *mailbox_r);
int store_mailbox_get_by_id(struct store *store, uint64_t id, char *user, size_t user_size,
			    struct store_mailbox *mailbox_r);
int store_mailbox_set_special_use(struct store *store, const char *user, const char *name,
				  unsigned special_use);
/* Every mailbox of the user, sorted by name; the array is malloc'ed. */
int store_mailbox_list(struct store *store, const char *user,
		       struct store_mailbox **mailboxes_r, size_t *count_r);
int store_subscribe(struct store *store, const char *user, const char *name, bool subscribe);
/* Subscribed names (which need not exist), sorted; malloc'ed array of malloc'ed strings. */
int store_subscriptions(struct store *store, const char *user, char ***names_r,
			size_t *count_r);
void store_free_names(char **names, size_t count);

/* ---- messages ---------------------------------------------------------------- */

/* System flags (RFC 9051 2.3.2). */
enum {
	STORE_FLAG_SEEN = 0x01,
	STORE_FLAG_ANSWERED = 0x02,
	STORE_FLAG_FLAGGED = 0x04,
	STORE_FLAG_DELETED = 0x08,
	STORE_FLAG_DRAFT = 0x10,
};

#define STORE_BLOB_ID_SIZE 32       /* SHA-256 of the body */
#define STORE_KEYWORDS_MAX 512      /* bytes of space-separated keywords per message */

struct store_message {
	uint32_t uid;
	unsigned flags;                 /* STORE_FLAG_* */
	char keywords[STORE_KEYWORDS_MAX];  /* space-separated */
	uint64_t modseq;
	int64_t internal_date;          /* seconds since the epoch */
	int64_t save_date;
	uint64_t size;
	unsigned char blob[STORE_BLOB_ID_SIZE];
	char env_from[320];             /* envelope sender ("" for the null sender) */
	char env_to[320];               /* envelope recipient as it came in RCPT TO */
};

/* A message body to store: its bytes in memory or in a file already written. */
struct store_body {
	const char *data;               /* the whole message, or NULL with path */
	size_t len;
	const char *path;               /* a file holding it (read, not moved) */
};

struct store_recipient {
	const char *user;               /* the mailbox owner */
	const char *mailbox;            /* "INBOX" or a folder (created if missing) */
	const char *env_to;             /* the envelope recipient to keep (SDPS, tracking) */
	uint64_t quota;                 /* bytes; 0: unlimited */
	unsigned flags;                 /* initial flags */
	/* results */
	int result;                     /* STORE_OK, STORE_EQUOTA, STORE_EINVAL, ... */
	uint32_t uid;
	uint32_t uidvalidity;
	uint64_t mailbox_id;
};

/* Stores one body for every recipient in one transaction: the body is written
 * once and counted once per copy. Each recipient gets its own UID; a recipient
 * over quota gets STORE_EQUOTA in its result and the others are still delivered.
 * Returns STORE_OK when at least the transaction succeeded (check each result). */
int store_deliver(struct store *store, const struct store_body *body,
		  const char *env_from, int64_t internal_date,
		  struct store_recipient *recipients, size_t count);

/* IMAP APPEND: one message into one existing mailbox with flags and keywords. */
int store_append(struct store *store, const char *user, const char *mailbox,
		 const struct store_body *body, unsigned flags, const char *keywords,
		 int64_t internal_date, uint64_t quota, uint32_t *uid_r,
		 uint32_t *uidvalidity_r);

/* Messages of a mailbox with uid in [uid_first, uid_last] (0xffffffff for "*"),
 * in UID order; malloc'ed array. */
int store_messages(struct store *store, uint64_t mailbox_id, uint32_t uid_first,
		   uint32_t uid_last, struct store_message **messages_r, size_t *count_r);

/* Messages whose modseq is above modseq (what changed or arrived since), in UID
 * order; malloc'ed array. Walks the mailbox but keeps only those. */
int store_messages_changed(struct store *store, uint64_t mailbox_id, uint64_t modseq,
			   struct store_message **messages_r, size_t *count_r);

enum store_flags_mode {
	STORE_FLAGS_ADD,
	STORE_FLAGS_REMOVE,
	STORE_FLAGS_REPLACE,
};

struct store_flag_change {
	uint32_t uid;
	/* results */
	int result;                     /* STORE_OK, STORE_ENOTFOUND, STORE_ECHANGED */
	unsigned flags;                 /* flags after the change */
	uint64_t modseq;                /* the message's modseq after the change */
	char keywords[STORE_KEYWORDS_MAX];
};

/* Changes flags and keywords of the given UIDs in one transaction. Messages whose
 * modseq is above unchangedsince (when not 0) are left alone with STORE_ECHANGED.
 * The one exception to the durability above: the commit writes its log record
 * (DB_TXN_WRITE_NOSYNC) without waiting for its fsync. A killed process loses
 * nothing (the record is in the kernel); a machine crash can lose the last flag
 * changes, never a message, and the next synchronous commit (delivery, append,
 * expunge) flushes them along (docs/storage.md, "Flag changes"). */
int store_flags_update(struct store *store, uint64_t mailbox_id, enum store_flags_mode mode,
		       unsigned flags, const char *keywords, uint64_t unchangedsince,
		       struct store_flag_change *changes, size_t count);

/* Removes messages; uids[i] set to 0 when not found. *highestmodseq_r the new value. */
int store_expunge(struct store *store, uint64_t mailbox_id, uint32_t *uids, size_t count,
		  uint64_t *highestmodseq_r);

/* Copies (or, with move, moves) messages to another mailbox of the same user
 * without copying bodies; dst_uids_r[i] receives the new UID (0: not found). */
int store_copy(struct store *store, uint64_t src_mailbox_id, const uint32_t *uids,
	       size_t count, const char *user, const char *dst_mailbox, uint64_t quota,
	       bool move, uint32_t *dst_uids_r, uint32_t *dst_uidvalidity_r);

/* Expunges made after modseq (for QRESYNC's VANISHED); malloc'ed UID array. */
int store_expunged_since(struct store *store, uint64_t mailbox_id, uint64_t modseq,
			 uint32_t **uids_r, size_t *count_r);

/* ---- bodies ------------------------------------------------------------------- */

/* The path of a body file (read-only; never modified while referenced). */
void store_blob_path(struct store *store, const unsigned char blob[STORE_BLOB_ID_SIZE],
		     char *path, size_t size);
/* Reads len bytes at offset of a body into buf; *read_r the bytes read. */
int store_blob_read(struct store *store, const unsigned char blob[STORE_BLOB_ID_SIZE],
		    uint64_t offset, void *buf, size_t len, size_t *read_r);
/* The parsed MIME structure cached at delivery (serialized by common/mime); the
 * data is malloc'ed. */
int store_blob_mime(struct store *store, const unsigned char blob[STORE_BLOB_ID_SIZE],
		    void **data_r, size_t *len_r);

/* ---- change notification -------------------------------------------------------- */

/* Each process that opened the store with STORE_OPEN_NOTIFY has a socket; every
 * change (delivery, flags, expunge, mailbox created/deleted/renamed) is announced
 * to all of them after its commit. Receive them on a loop: */
typedef void store_notify_callback(uint64_t mailbox_id, void *ctx);
int store_notify_start(struct store *store, uv_loop_t *loop, store_notify_callback *cb,
		       void *ctx);
void store_notify_stop(struct store *store);

/* ---- maintenance ----------------------------------------------------------------- */

/* Checks reference counts, that every referenced body exists, UIDNEXT above every
 * UID, counters and quota sums, MIME caches. Writes one line per fault to out;
 * returns the number of faults (0: consistent) or a negative error. With repair,
 * unreferenced (orphan) body files older than an hour are removed. */
int store_verify(struct store *store, void *out_file, bool repair);
/* A consistent hot backup (environment and bodies) into dir, which `warren` can
 * start from as its state_dir. */
int store_backup(struct store *store, const char *dir, const char **error_r);

#endif
