/* kv.h — small shared records of the policy checks, kept in the store (policy.db)
 * so that every process sees the same ones: greylisting triplets, rate counters,
 * brute-force counters and bans.
 *
 * A record lives in a space ("grey", "rate", "authfail", "ban", ...) under a key
 * of the caller's choosing (any bytes but \0, at most KV_KEY_MAX) and holds a
 * counter, the times of its first and last update, an expiry time and an optional
 * short text (a reason, a note). A record whose expiry has passed is treated as
 * absent by every call and removed by kv_expire().
 *
 * Writes commit without a synchronous log flush (DB_TXN_WRITE_NOSYNC): a crash may
 * lose the last second of counting, never the store's consistency, and counting
 * stays off the durable path that delivery pays for.
 *
 * Threads and errors as in store.h: blocking, thread-safe, 0 or STORE_E*.
 */
#ifndef WARREN_KV_H
#define WARREN_KV_H

#include "storage/store.h"

#include <stdint.h>

#define KV_SPACE_MAX 32
#define KV_KEY_MAX 400
#define KV_TEXT_MAX 200

struct kv_rec {
	int64_t value;
	int64_t first, last;     /* unix seconds */
	int64_t expires;         /* unix seconds; 0: never */
	char text[KV_TEXT_MAX + 1];
};

/* The record, or STORE_ENOTFOUND (also when it has expired). */
int kv_get(struct store *store, const char *space, const char *key, int64_t now,
	   struct kv_rec *rec_r);
/* Writes the record as given (rec->first/last 0 become now). */
int kv_put(struct store *store, const char *space, const char *key, int64_t now,
	   const struct kv_rec *rec);
/* STORE_ENOTFOUND when there was none. */
int kv_del(struct store *store, const char *space, const char *key);
/* Counts in a fixed window: adds delta to the record, or, when it is absent or
 * expired, starts it at delta with first = now and expires = now + window (window
 * 0: never expires). The record after the change goes to *rec_r (may be NULL). */
int kv_add(struct store *store, const char *space, const char *key, int64_t delta,
	   int64_t now, int64_t window, struct kv_rec *rec_r);
/* Calls fn for each live record of space in key order; fn returning non-zero stops
 * the walk (that value is returned). */
int kv_list(struct store *store, const char *space, int64_t now,
	    int (*fn)(const char *key, const struct kv_rec *rec, void *ctx), void *ctx);
/* Removes every expired record (all spaces); how many goes to *removed_r. */
int kv_expire(struct store *store, int64_t now, unsigned *removed_r);

#endif
