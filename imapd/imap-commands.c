/* imap-commands.c — the IMAP command table and the commands of any state.
 * Mailbox commands arrive with the store (issue #7). */
#include "imapd/imap-commands.h"
#include "imapd/imap-sort.h"
#include "common/log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static void cmd_capability(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	char caps[512];
	if (n != 0) {
		imap_tagged(s, "BAD", "CAPABILITY takes no arguments");
		return;
	}
	imap_untagged(s, "CAPABILITY %s", imap_capabilities(s, caps, sizeof(caps)));
	imap_tagged(s, "OK", "Capability completed.");
}

static void cmd_logout(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_untagged(s, "BYE Logging out");
	imap_tagged(s, "OK", "Logout completed.");
	imap_session_logout(s);
}

static void cmd_starttls(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	if (net_conn_is_tls(s->conn)) {
		imap_tagged(s, "BAD", "TLS is already active.");
		return;
	}
	if (s->listener->tls != CONF_TLS_STARTTLS || s->conf->tls_server == NULL) {
		imap_tagged(s, "BAD", "STARTTLS is not available here.");
		return;
	}
	imap_tagged(s, "OK", "Begin TLS negotiation now.");
	if (net_conn_start_tls(s->conn, s->conf->tls_server) < 0) {
		imap_untagged(s, "BYE TLS is not available due to a local problem.");
		imap_session_logout(s);
	}
}

/* ID (RFC 2971): log what the client says it is, say what we are. */
static void cmd_id(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	if (n != 1 || (args[0].type != IMAP_ARG_LIST && args[0].type != IMAP_ARG_NIL)) {
		imap_tagged(s, "BAD", "Syntax: ID (\"name\" \"value\" ...) or ID NIL");
		return;
	}
	if (args[0].type == IMAP_ARG_LIST && args[0].n_list % 2 == 0) {
		char text[512], part[160];
		size_t o = 0;
		text[0] = '\0';
		for (size_t i = 0; i + 1 < args[0].n_list && i < 20; i += 2) {
			const char *k = imap_arg_string(&args[0].list[i]);
			const char *v = imap_arg_string(&args[0].list[i + 1]);
			if (k == NULL || v == NULL)
				continue;
			char pk[40], pv[100];
			snprintf(part, sizeof(part), "%s%s=%s", o ? ", " : "",
				 log_printable(pk, sizeof(pk), k, strlen(k)),
				 log_printable(pv, sizeof(pv), v, strlen(v)));
			if (o + strlen(part) < sizeof(text))
				o += (size_t)snprintf(text + o, sizeof(text) - o, "%s", part);
		}
		log_info("%s: client ID: %s", s->id, text);
	}
	imap_untagged(s, "ID (\"name\" \"Warren\" \"vendor\" \"Warren\")");
	imap_tagged(s, "OK", "ID completed.");
}

/* UID FETCH / STORE / COPY / MOVE / SEARCH / EXPUNGE */
static void cmd_uid(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	const char *sub = n >= 1 && args[0].type == IMAP_ARG_ATOM ? args[0].str : NULL;
	if (sub == NULL) {
		imap_tagged(s, "BAD", "Syntax: UID FETCH|STORE|COPY|MOVE|SEARCH|EXPUNGE ...");
		return;
	}
	if (strcasecmp(sub, "FETCH") == 0)
		imap_fetch(s, args + 1, n - 1, true);
	else if (strcasecmp(sub, "STORE") == 0)
		imap_store_cmd(s, args + 1, n - 1, true);
	else if (strcasecmp(sub, "COPY") == 0)
		imap_copy(s, args + 1, n - 1, true, false);
	else if (strcasecmp(sub, "MOVE") == 0)
		imap_copy(s, args + 1, n - 1, true, true);
	else if (strcasecmp(sub, "SEARCH") == 0)
		imap_search(s, args + 1, n - 1, true);
	else if (strcasecmp(sub, "EXPUNGE") == 0)
		imap_cmd_uid_expunge(s, args + 1, n - 1);
	else if (strcasecmp(sub, "SORT") == 0)
		imap_sort_cmd(s, args + 1, n - 1, true);
	else if (strcasecmp(sub, "THREAD") == 0)
		imap_thread_cmd(s, args + 1, n - 1, true);
	else
		imap_tagged(s, "BAD", "Unknown UID command");
}

static void cmd_fetch(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_fetch(s, args, n, false);
}

static void cmd_store(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_store_cmd(s, args, n, false);
}

static void cmd_copy(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_copy(s, args, n, false, false);
}

static void cmd_move(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_copy(s, args, n, false, true);
}

static void cmd_search(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_search(s, args, n, false);
}

static void cmd_sort(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_sort_cmd(s, args, n, false);
}

static void cmd_thread(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_thread_cmd(s, args, n, false);
}

#define AUTHED (IMAP_CMD_AUTH | IMAP_CMD_SELECTED)

static const struct imap_command imap_commands[] = {
	{ "CAPABILITY", cmd_capability, IMAP_CMD_ANY },
	{ "NOOP", imap_cmd_noop, IMAP_CMD_ANY },
	{ "LOGOUT", cmd_logout, IMAP_CMD_ANY },
	{ "ID", cmd_id, IMAP_CMD_ANY },
	{ "STARTTLS", cmd_starttls, IMAP_CMD_NOT_AUTH },
	{ "LOGIN", imap_cmd_login, IMAP_CMD_NOT_AUTH },
	{ "AUTHENTICATE", imap_cmd_authenticate, IMAP_CMD_NOT_AUTH },
	{ "LIST", imap_cmd_list, AUTHED },
	{ "LSUB", imap_cmd_lsub, AUTHED },
	{ "SELECT", imap_cmd_select, AUTHED },
	{ "EXAMINE", imap_cmd_examine, AUTHED },
	{ "CREATE", imap_cmd_create, AUTHED },
	{ "DELETE", imap_cmd_delete, AUTHED },
	{ "RENAME", imap_cmd_rename, AUTHED },
	{ "SUBSCRIBE", imap_cmd_subscribe, AUTHED },
	{ "UNSUBSCRIBE", imap_cmd_unsubscribe, AUTHED },
	{ "STATUS", imap_cmd_status, AUTHED },
	{ "APPEND", imap_cmd_append, AUTHED },
	{ "NAMESPACE", imap_cmd_namespace, AUTHED },
	{ "ENABLE", imap_cmd_enable, AUTHED },
	{ "IDLE", imap_cmd_idle, AUTHED },
	{ "COMPRESS", imap_cmd_compress, AUTHED },
	{ "GETQUOTAROOT", imap_cmd_getquotaroot, AUTHED },
	{ "GETQUOTA", imap_cmd_getquota, AUTHED },
	{ "SETQUOTA", imap_cmd_setquota, AUTHED },
	{ "CHECK", imap_cmd_check, IMAP_CMD_SELECTED },
	{ "CLOSE", imap_cmd_close, IMAP_CMD_SELECTED },
	{ "UNSELECT", imap_cmd_unselect, IMAP_CMD_SELECTED },
	{ "EXPUNGE", imap_cmd_expunge, IMAP_CMD_SELECTED },
	{ "SEARCH", cmd_search, IMAP_CMD_SELECTED },
	{ "SORT", cmd_sort, IMAP_CMD_SELECTED },
	{ "THREAD", cmd_thread, IMAP_CMD_SELECTED },
	{ "FETCH", cmd_fetch, IMAP_CMD_SELECTED },
	{ "STORE", cmd_store, IMAP_CMD_SELECTED },
	{ "COPY", cmd_copy, IMAP_CMD_SELECTED },
	{ "MOVE", cmd_move, IMAP_CMD_SELECTED },
	{ "UID", cmd_uid, IMAP_CMD_SELECTED },
};

const struct imap_command *imap_command_find(const char *name)
{
	for (size_t i = 0; i < sizeof(imap_commands) / sizeof(imap_commands[0]); i++)
		if (strcasecmp(imap_commands[i].name, name) == 0)
			return &imap_commands[i];
	return NULL;
}
