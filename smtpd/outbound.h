/* outbound.h — what smtpd's session code calls to send mail to other servers.
 *
 * outbound_submit() queues a message for recipients that are not delivered into
 * the local store (authenticated submissions to other domains, forwards, alias
 * targets outside, remote domains relayed to their internal host). It returns at
 * once; the callback runs later on the loop thread with STORE_OK only once the
 * message is durable (its body file fsynced and its queue record committed), so
 * the session answers 250 in the callback and 451 4.3.0 on any error:
 *
 *     struct outbound_rcpt r[] = { { "bob@example.org", NULL, 0 } };
 *     struct outbound_msg m = { .from = t->from, .spool_path = t->spool_path,
 *                               .rcpts = r, .n_rcpts = 1, .queue_id = t->queue_id };
 *     outbound_submit(s->svc, &m, on_queued, s);   // on_queued(result, id, s)
 *
 * Everything m points to is copied before outbound_submit() returns, except the
 * spool file, which must stay until the callback has run (it is copied into the
 * queue, never moved). The queue runner then delivers (MX, smart host or a
 * remote domain's relay_host), retries with back-off, and sends delay notices
 * and bounces (RFC 3464) to the envelope sender; see docs/outbound.md.
 */
#ifndef WARREN_OUTBOUND_H
#define WARREN_OUTBOUND_H

#include "service/service.h"

#include <stdbool.h>
#include <stddef.h>

struct outbound_rcpt {
	const char *addr;          /* the envelope recipient to deliver to */
	const char *orcpt;         /* DSN ORCPT ("rfc822;addr", xtext decoded) or NULL */
	unsigned notify;           /* DSN NOTIFY bits (SMTP_NOTIFY_* = QUEUE_NOTIFY_*); 0: default */
};

struct outbound_msg {
	const char *from;          /* envelope sender; "" for the null sender */
	const char *spool_path;    /* the message (CRLF lines, not dot-stuffed) ... */
	const char *data;          /* ... or its bytes in memory (spool_path NULL) */
	size_t len;
	const struct outbound_rcpt *rcpts;
	size_t n_rcpts;
	const char *envid;         /* DSN ENVID (decoded) or NULL */
	int ret;                   /* DSN RET: 0 unset, 1 FULL, 2 HDRS */
	int body;                  /* 0 7BIT, 1 8BITMIME, 2 BINARYMIME */
	bool smtputf8;
	const char *queue_id;      /* keep this id ("" or NULL: a new one) when valid */
	bool forwarded;            /* forward/alias expansion: SRS-rewrite the sender */
};

/* result: STORE_OK or a STORE_E* code; queue_id valid during the call. */
typedef void outbound_callback(int result, const char *queue_id, void *ctx);

/* 0, or -1 when the request could not even be started (the callback is then
 * not called). */
int outbound_submit(struct service *svc, const struct outbound_msg *msg,
		    outbound_callback *cb, void *ctx);

/* The original address behind one of our SRS0 addresses (a bounce coming back
 * to forwarded mail): true and the address in out. smtpd accepts such a
 * recipient and queues it with outbound_submit(); the runner reverses it too. */
bool outbound_srs_reverse(const struct warren_config *conf, const char *addr, char *out,
			  size_t size);

/* Starts the queue runner on the daemon's loop (service_def.start). */
void outbound_start(struct service *svc);
/* Stops starting deliveries (daemon shutdown); deliveries in flight are dropped
 * with the process and retried by the next one (their claims expire). */
void outbound_stop(struct service *svc);

#endif
