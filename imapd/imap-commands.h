/* imap-commands.h — the command handlers of imapd, one file per command group
 * (private to imapd/). */
#ifndef WARREN_IMAP_COMMANDS_H
#define WARREN_IMAP_COMMANDS_H

#include "imapd/imap-session.h"
#include "imapd/imap-util.h"

#define IMAP_HANDLER(name) \
	void name(struct imap_session *s, const struct imap_arg *args, size_t n)

/* imap-mailbox.c: the authenticated state */
IMAP_HANDLER(imap_cmd_list);
IMAP_HANDLER(imap_cmd_lsub);
IMAP_HANDLER(imap_cmd_create);
IMAP_HANDLER(imap_cmd_delete);
IMAP_HANDLER(imap_cmd_rename);
IMAP_HANDLER(imap_cmd_subscribe);
IMAP_HANDLER(imap_cmd_unsubscribe);
IMAP_HANDLER(imap_cmd_status);
IMAP_HANDLER(imap_cmd_namespace);
IMAP_HANDLER(imap_cmd_enable);
/* After a successful login: creates the default folders on the first one, then
 * sends the tagged OK. */
void imap_login_setup(struct imap_session *s);
/* The special-use folder names of the session's user. */
const char *imap_folder_name(const struct imap_session *s, unsigned special_use);
/* The same for any configured mailbox: its own imap { } name, else its domain's,
 * else the default; NULL when "" says none. */
const char *imap_user_folder_name(const struct conf_mailbox *user, unsigned special_use);
/* The trashcan folder (MISSION I3) when expunged messages keep a copy, or NULL. */
const char *imap_trash_name(const struct imap_session *s);

/* imap-select.c */
IMAP_HANDLER(imap_cmd_select);
IMAP_HANDLER(imap_cmd_examine);
IMAP_HANDLER(imap_cmd_expunge);
IMAP_HANDLER(imap_cmd_uid_expunge);
IMAP_HANDLER(imap_cmd_close);
IMAP_HANDLER(imap_cmd_unselect);
IMAP_HANDLER(imap_cmd_noop);
IMAP_HANDLER(imap_cmd_check);

/* imap-qresync.c */
int imap_parse_qresync(const struct imap_arg *arg, uint32_t *uidvalidity_r,
		       uint64_t *modseq_r, char **known_r);
void imap_qresync_work(struct imap_job *job, struct imap_selected *sel, uint64_t modseq,
		       const char *known);

/* imap-fetch.c */
void imap_fetch(struct imap_session *s, const struct imap_arg *args, size_t n, bool uid);

/* imap-store.c */
void imap_store_cmd(struct imap_session *s, const struct imap_arg *args, size_t n, bool uid);
void imap_copy(struct imap_session *s, const struct imap_arg *args, size_t n, bool uid,
	       bool move);
IMAP_HANDLER(imap_cmd_append);

/* imap-quota.c */
IMAP_HANDLER(imap_cmd_getquotaroot);
IMAP_HANDLER(imap_cmd_getquota);
IMAP_HANDLER(imap_cmd_setquota);

/* imap-search.c */
void imap_search(struct imap_session *s, const struct imap_arg *args, size_t n, bool uid);

#endif
