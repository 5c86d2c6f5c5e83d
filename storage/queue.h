/* queue.h — the outbound queue in the store.
 *
 * A queued message is one record in queue.db (its envelope, and per recipient
 * its state, attempts, last reply and next attempt time) plus its body as a file
 * state_dir/queue/<id>, written and fsynced (file and folder) before the record's
 * transaction commits. So once queue_add() returns, the message survives a crash
 * and a restart; smtpd may then answer 250.
 *
 * A message leaves the queue only when every recipient is final (delivered or
 * failed): queue_put() of a record with no pending recipient deletes the record
 * and then the body file. A crash between the two leaves an orphan body file,
 * which queue_sweep() removes.
 *
 * Several processes may work the queue: a worker first claims a message
 * (queue_claim), which records its pid and a lease end in the record; others
 * skip it until the lease ends or the pid is dead.
 *
 * Threads and errors as in store.h: blocking calls, thread-safe, 0 or STORE_E*.
 */
#ifndef WARREN_QUEUE_H
#define WARREN_QUEUE_H

#include "storage/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "4F3A9C0D12E7B5" style ids: 11 hex digits of microseconds + 5 of pid/counter. */
#define QUEUE_ID_SIZE 24
#define QUEUE_ADDR_MAX 320          /* RFC 5321 path, bytes */
#define QUEUE_ORCPT_MAX 500         /* RFC 3461 ORCPT */
#define QUEUE_ENVID_MAX 100         /* RFC 3461 ENVID */
#define QUEUE_REPLY_MAX 512         /* last reply kept per recipient */
#define QUEUE_HOST_MAX 300          /* "host[ip]:port" that gave the reply */
#define QUEUE_RCPTS_MAX 10000       /* recipients per queued message */

/* The "mailbox id" announced through the store's notifications (store.h) when
 * the queue has new work: queue_add, queue_flush, queue_hold(release). smtpd's
 * queue runner looks at the queue at once when it hears it. */
#define QUEUE_ANNOUNCE_ID UINT64_MAX

/* DSN NOTIFY bits (RFC 3461); 0 means the default: FAILURE and DELAY. */
enum {
	QUEUE_NOTIFY_NEVER = 0x1,
	QUEUE_NOTIFY_SUCCESS = 0x2,
	QUEUE_NOTIFY_FAILURE = 0x4,
	QUEUE_NOTIFY_DELAY = 0x8,
};

enum queue_rcpt_state {
	QUEUE_RCPT_PENDING,     /* not yet delivered: next_attempt says when */
	QUEUE_RCPT_DELIVERED,   /* 2xx from the next hop (or stored locally) */
	QUEUE_RCPT_FAILED,      /* 5xx, expired or undeliverable: bounced */
};

enum queue_ret { QUEUE_RET_DEFAULT, QUEUE_RET_FULL, QUEUE_RET_HDRS };
enum queue_body { QUEUE_BODY_7BIT, QUEUE_BODY_8BITMIME, QUEUE_BODY_BINARYMIME };

/* Message flags. */
enum {
	QUEUE_F_HOLD = 0x1,     /* `warrenctl queue hold`: not delivered until released */
	QUEUE_F_BOUNCE = 0x2,   /* a delivery status notification we generated */
	QUEUE_F_FORWARDED = 0x4,/* forwarded mail: the sender is SRS-rewritten on the wire */
};

struct queue_rcpt {
	char addr[QUEUE_ADDR_MAX + 1];
	char orcpt[QUEUE_ORCPT_MAX + 1];    /* "rfc822;addr" as given, or "" */
	unsigned notify;                    /* QUEUE_NOTIFY_* */
	enum queue_rcpt_state state;
	uint32_t attempts;
	int64_t next_attempt;               /* seconds since the epoch */
	int64_t last_attempt;               /* 0: never tried */
	int code;                           /* last SMTP code (0: none, e.g. connection failure) */
	char status[16];                    /* enhanced status "4.4.1" */
	char reply[QUEUE_REPLY_MAX + 1];    /* last reply or failure text */
	char remote[QUEUE_HOST_MAX + 1];    /* who gave it: "mx.example[192.0.2.1]:25" */
	bool delay_notified;                /* a delay DSN went out for this recipient */
};

struct queue_msg {
	char id[QUEUE_ID_SIZE];
	char from[QUEUE_ADDR_MAX + 1];      /* "" for the null sender */
	char envid[QUEUE_ENVID_MAX + 1];
	enum queue_ret ret;
	enum queue_body body;
	bool smtputf8;
	unsigned flags;                     /* QUEUE_F_* */
	int64_t created;                    /* arrival time */
	uint64_t size;                      /* body bytes */
	char origin[64];                    /* who queued it: "smtpd", "queueinject", ... */
	/* the claim (queue_claim) */
	int32_t lease_pid;
	int64_t lease_until;
	size_t n_rcpts;
	struct queue_rcpt *rcpts;           /* malloc'ed (queue_msg_free) */
};

/* Queues a message: body (bytes or a file) after the optional prepend text.
 * Fills msg->id (when empty), created, size; durable on return. */
int queue_add(struct store *store, const char *prepend, const struct store_body *body,
	      struct queue_msg *msg);
/* The record of one message; free with queue_msg_free(). */
int queue_get(struct store *store, const char *id, struct queue_msg *msg_r);
/* Every queued message (recipients included), oldest id first; malloc'ed array,
 * free with queue_msgs_free(). */
int queue_list(struct store *store, struct queue_msg **msgs_r, size_t *count_r);
/* Claims a message for delivery by pid until `until`: STORE_EEXIST when another
 * live process holds it, STORE_ECHANGED when it is on hold. */
int queue_claim(struct store *store, const char *id, int32_t pid, int64_t until,
		struct queue_msg *msg_r);
/* Writes back a message's recipient states and releases the claim; when no
 * recipient is pending any more the message leaves the queue. *removed_r (may be
 * NULL) says whether it did. */
int queue_put(struct store *store, const struct queue_msg *msg, bool *removed_r);
/* Administration: remove a message (STORE_ENOTFOUND when absent), hold/release,
 * make pending recipients due now (id NULL: every message). *count_r (may be
 * NULL): messages changed. */
int queue_delete(struct store *store, const char *id);
int queue_hold(struct store *store, const char *id, bool hold);
int queue_flush(struct store *store, const char *id, size_t *count_r);
/* The body file of a queued message. */
void queue_body_path(struct store *store, const char *id, char *path, size_t size);
/* Reads the whole body (malloc'ed, NUL-terminated) of at most max bytes. */
int queue_body_read(struct store *store, const char *id, size_t max, char **data_r,
		    size_t *len_r);
/* Removes body files without a record that are older than min_age_s. */
int queue_sweep(struct store *store, unsigned min_age_s, size_t *removed_r);

void queue_msg_free(struct queue_msg *msg);
void queue_msgs_free(struct queue_msg *msgs, size_t count);
const char *queue_rcpt_state_name(enum queue_rcpt_state state);
/* Counts of recipients in a state. */
size_t queue_msg_count(const struct queue_msg *msg, enum queue_rcpt_state state);

#endif
