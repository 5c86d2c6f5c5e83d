/* smtp-authres.h — removes forged Authentication-Results header fields from incoming
 * mail (RFC 8601 section 5): a field whose authserv-id is ours (the one smtpd writes
 * in its own header: the configured hostname) did not come from us and goes, so a
 * sender cannot forge our verdicts; fields of other authserv-ids stay.
 *
 * A streaming filter over the client's header section, fed one byte at a time
 * (smtp-data.c). The start of each field is held back until its name is known; an
 * Authentication-Results field is held until its authserv-id (after CFWS: folding,
 * nested comments) has been read, then written or dropped with the rest of the field
 * (folded lines included). Names compare case-insensitively. Bounded: a field whose
 * authserv-id is not found within AUTHRES_HOLD_MAX bytes is dropped as forged.
 */
#ifndef WARREN_SMTPD_AUTHRES_H
#define WARREN_SMTPD_AUTHRES_H

#include <stdbool.h>
#include <stddef.h>

struct pool;
struct authres_filter;

/* write(ctx, data, len) receives held bytes the filter lets through. qid is the
 * queue id for log lines (kept by pointer). */
typedef void authres_write_fn(void *ctx, const char *data, size_t len);
struct authres_filter *authres_filter_new(struct pool *pool, const char *authserv_id,
					  const char *qid, authres_write_fn *write, void *ctx);

/* One byte of the header section (not the empty line that ends it). Returns true
 * when the filter took the byte (held or dropped), false when the caller writes it
 * (after everything the filter wrote so far). */
bool authres_byte(struct authres_filter *f, unsigned char c);
/* The header section ended: held bytes are written. Returns true when the last
 * field was being dropped (its line end went with it). */
bool authres_end(struct authres_filter *f);
/* Fields removed so far. */
unsigned authres_removed(const struct authres_filter *f);

#endif
