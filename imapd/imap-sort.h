/* imap-sort.h — SORT and THREAD over search results (private to imapd/). */
#ifndef WARREN_IMAP_SORT_H
#define WARREN_IMAP_SORT_H

#include "imapd/imap-commands.h"

struct buf;
struct mime_part;
struct imap_sort;

/* SORT's (criteria); NULL with *error_r when invalid. */
struct imap_sort *imap_sort_new(const struct imap_arg *criteria, const char **error_r);
/* THREAD's algorithm; NULL when not supported. */
struct imap_sort *imap_thread_new(const char *algorithm);
/* A message the search found (on the job's thread); root may be NULL. */
void imap_sort_add(struct imap_sort *so, uint32_t id, size_t seq,
		   const struct store_message *m, const struct mime_part *root,
		   const char *header, size_t header_len);
/* Whether imap_sort_add needs the message's header block. */
bool imap_sort_needs_header(const struct imap_sort *so);
/* "* SORT ..." or "* THREAD ..." */
void imap_sort_output(struct imap_sort *so, struct buf *out);
void imap_sort_free(struct imap_sort **so);

/* SORT / UID SORT and THREAD / UID THREAD (imap-search.c). */
void imap_sort_cmd(struct imap_session *s, const struct imap_arg *args, size_t n, bool uid);
void imap_thread_cmd(struct imap_session *s, const struct imap_arg *args, size_t n, bool uid);

#endif
