/* imap-thread.h — THREAD=REFERENCES (private to imapd/). */
#ifndef WARREN_IMAP_THREAD_H
#define WARREN_IMAP_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

struct thread_msg {
	uint32_t id;                 /* as answered: sequence number or UID */
	size_t seq;
	int64_t date;                /* sent date (or internal date) */
	const char *subject;         /* base subject, folded */
	bool is_reply;               /* the subject had Re:/Fwd: */
	const char *message_id, *references, *in_reply_to;  /* raw, or NULL */
};

/* Appends "* THREAD ..." for msgs. */
void imap_thread_references(const struct thread_msg *msgs, size_t n, struct buf *out);

#endif
