/* imap-search.h — search keys shared by SEARCH and SORT (private to imapd/). */
#ifndef WARREN_IMAP_SEARCH_H
#define WARREN_IMAP_SEARCH_H

#include "imapd/imap-commands.h"

struct buf;
struct search_job;

/* Appends UTF-8 text case-folded for substring matching. */
void imap_search_fold(const char *text, size_t len, struct buf *out);
/* Parses [RETURN (...)] [CHARSET c] search-keys; NULL when the reply was sent. */
struct search_job *imap_search_parse(struct imap_session *s, const struct imap_arg *args,
				     size_t n, bool uid, bool allow_return);

#endif
