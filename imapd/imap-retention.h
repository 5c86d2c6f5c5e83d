/* imap-retention.h — the trash and junk retention of imapd (private to imapd/). */
#ifndef WARREN_IMAP_RETENTION_H
#define WARREN_IMAP_RETENTION_H

#include "conf/conf.h"
#include "service/service.h"
#include "storage/store.h"

#include <stddef.h>
#include <stdint.h>

/* Removes from user's trash and junk folders what has been there longer than the
 * domain's trash_retention / junk_retention (at most RETENTION_REMOVE_MAX messages
 * per folder; the rest goes next time). Blocking: on the thread pool. Adds the
 * messages removed to *removed_r; returns 0 or a STORE_* code. */
int imap_retention_user(struct store *store, const struct conf_mailbox *user,
			const char *log_id, int64_t now, size_t *removed_r);

/* The periodic run (imap.retention_interval): started with the loop, stopped at
 * shutdown. */
void imap_retention_start(struct service *svc);
void imap_retention_stop(struct service *svc);

#endif
