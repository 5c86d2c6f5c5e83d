/* imap-commands.c — the IMAP command table and the commands of any state.
 * Mailbox commands arrive with the store (issue #7). */
#include "imapd/imap-session.h"
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

static void cmd_noop(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_tagged(s, "OK", "NOOP completed.");
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

/* Matches an IMAP LIST pattern: "*" matches anything, "%" anything but "/". */
static bool list_match(const char *pattern, const char *name)
{
	if (*pattern == '\0')
		return *name == '\0';
	if (*pattern == '*' || *pattern == '%') {
		for (const char *p = name;; p++) {
			if (list_match(pattern + 1, p))
				return true;
			if (*p == '\0' || (*pattern == '%' && *p == '/'))
				return false;
		}
	}
	if (*name == '\0')
		return false;
	if (strncasecmp(pattern, name, 1) != 0)
		return false;
	return list_match(pattern + 1, name + 1);
}

/* LIST until the store arrives: every user has an INBOX and nothing else yet. */
static void cmd_list(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	const char *ref = n == 2 ? imap_arg_string(&args[0]) : NULL;
	const char *pattern = n == 2 ? imap_arg_string(&args[1]) : NULL;
	if (ref == NULL || pattern == NULL) {
		imap_tagged(s, "BAD", "Syntax: LIST reference pattern");
		return;
	}
	if (pattern[0] == '\0') {
		imap_untagged(s, "LIST (\\Noselect) \"/\" \"\"");
	} else {
		char full[1024];
		snprintf(full, sizeof(full), "%s%s", ref, pattern);
		if (list_match(full, "INBOX"))
			imap_untagged(s, "LIST (\\HasNoChildren) \"/\" INBOX");
	}
	imap_tagged(s, "OK", "List completed.");
}

static void cmd_not_yet(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_tagged(s, "NO", "[CANNOT] Not available yet on this server.");
}

static const struct imap_command imap_commands[] = {
	{ "CAPABILITY", cmd_capability, IMAP_CMD_ANY },
	{ "NOOP", cmd_noop, IMAP_CMD_ANY },
	{ "LOGOUT", cmd_logout, IMAP_CMD_ANY },
	{ "ID", cmd_id, IMAP_CMD_ANY },
	{ "STARTTLS", cmd_starttls, IMAP_CMD_NOT_AUTH },
	{ "LOGIN", imap_cmd_login, IMAP_CMD_NOT_AUTH },
	{ "AUTHENTICATE", imap_cmd_authenticate, IMAP_CMD_NOT_AUTH },
	{ "LIST", cmd_list, IMAP_CMD_AUTH | IMAP_CMD_SELECTED },
	{ "SELECT", cmd_not_yet, IMAP_CMD_AUTH | IMAP_CMD_SELECTED },
	{ "EXAMINE", cmd_not_yet, IMAP_CMD_AUTH | IMAP_CMD_SELECTED },
	{ "CREATE", cmd_not_yet, IMAP_CMD_AUTH | IMAP_CMD_SELECTED },
	{ "DELETE", cmd_not_yet, IMAP_CMD_AUTH | IMAP_CMD_SELECTED },
	{ "RENAME", cmd_not_yet, IMAP_CMD_AUTH | IMAP_CMD_SELECTED },
	{ "SUBSCRIBE", cmd_not_yet, IMAP_CMD_AUTH | IMAP_CMD_SELECTED },
	{ "UNSUBSCRIBE", cmd_not_yet, IMAP_CMD_AUTH | IMAP_CMD_SELECTED },
	{ "LSUB", cmd_not_yet, IMAP_CMD_AUTH | IMAP_CMD_SELECTED },
	{ "STATUS", cmd_not_yet, IMAP_CMD_AUTH | IMAP_CMD_SELECTED },
	{ "APPEND", cmd_not_yet, IMAP_CMD_AUTH | IMAP_CMD_SELECTED },
	{ "NAMESPACE", cmd_not_yet, IMAP_CMD_AUTH | IMAP_CMD_SELECTED },
	{ "ENABLE", cmd_not_yet, IMAP_CMD_AUTH | IMAP_CMD_SELECTED },
	{ "IDLE", cmd_not_yet, IMAP_CMD_AUTH | IMAP_CMD_SELECTED },
	{ "CHECK", cmd_not_yet, IMAP_CMD_SELECTED },
	{ "CLOSE", cmd_not_yet, IMAP_CMD_SELECTED },
	{ "UNSELECT", cmd_not_yet, IMAP_CMD_SELECTED },
	{ "EXPUNGE", cmd_not_yet, IMAP_CMD_SELECTED },
	{ "SEARCH", cmd_not_yet, IMAP_CMD_SELECTED },
	{ "FETCH", cmd_not_yet, IMAP_CMD_SELECTED },
	{ "STORE", cmd_not_yet, IMAP_CMD_SELECTED },
	{ "COPY", cmd_not_yet, IMAP_CMD_SELECTED },
	{ "MOVE", cmd_not_yet, IMAP_CMD_SELECTED },
	{ "UID", cmd_not_yet, IMAP_CMD_SELECTED },
};

const struct imap_command *imap_command_find(const char *name)
{
	for (size_t i = 0; i < sizeof(imap_commands) / sizeof(imap_commands[0]); i++)
		if (strcasecmp(imap_commands[i].name, name) == 0)
			return &imap_commands[i];
	return NULL;
}
