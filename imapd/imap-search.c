/* imap-search.c — SEARCH (arrives next). */
#include "imapd/imap-commands.h"

void imap_search(struct imap_session *s, const struct imap_arg *args, size_t n, bool uid)
{
	imap_tagged(s, "NO", "[CANNOT] SEARCH is not available yet.");
}
