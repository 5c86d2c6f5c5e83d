/* imap-fetch.h — message data for FETCH and SEARCH (private to imapd/). */
#ifndef WARREN_IMAP_FETCH_H
#define WARREN_IMAP_FETCH_H

#include "imapd/imap-commands.h"

#include <stdbool.h>

struct buf;
struct pool;
struct mime_part;
struct mime_envelope;

void imap_append_envelope(struct buf *out, struct pool *pool, const struct mime_envelope *env);
void imap_append_bodystructure(struct buf *out, struct pool *pool, const struct mime_part *p,
			       bool extended);

/* The cached MIME tree of a message (in pool); NULL when missing or damaged. */
struct mime_part *imap_message_mime(struct store *store, struct pool *pool,
				    const struct store_message *m);
/* Appends len bytes at offset of the message body to out, through the session's
 * open body file (job->s->body). */
int imap_message_read(struct imap_job *job, const struct store_message *m, uint64_t offset,
		      uint64_t len, struct buf *out);

#endif
