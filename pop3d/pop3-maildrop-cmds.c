/* pop3-maildrop-cmds.c — the TRANSACTION commands of RFC 1939 and SDPS *ENV.
 * Each checks its arguments and replies -ERR before touching anything. */
#include "pop3d/pop3-session.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest number accepted as a message number or TOP line count. */
#define POP3_NUMBER_MAX_DIGITS 19

/* A decimal number of 1..POP3_NUMBER_MAX_DIGITS digits ending at a space or NUL;
 * *end_r is after it. */
static bool parse_number(const char *p, uint64_t *value_r, const char **end_r)
{
	uint64_t v = 0;
	size_t n = 0;
	while (p[n] >= '0' && p[n] <= '9') {
		if (n == POP3_NUMBER_MAX_DIGITS)
			return false;
		v = v * 10 + (uint64_t)(p[n] - '0');
		n++;
	}
	if (n == 0 || (p[n] != '\0' && p[n] != ' '))
		return false;
	*value_r = v;
	*end_r = p + n;
	return true;
}

/* A message number of the maildrop; replies -ERR and returns false if bad. */
static bool find_message(struct pop3_session *s, const char *arg, size_t *index_r,
			 const char **rest_r)
{
	uint64_t n;
	const char *end;
	if (!parse_number(arg, &n, &end)) {
		pop3_err(s, "Invalid message number.");
		return false;
	}
	if (n == 0 || n > s->drop.count) {
		pop3_err(s, "There's no message %" PRIu64 ".", n);
		return false;
	}
	if (s->drop.msgs[n - 1].deleted) {
		pop3_err(s, "Message is deleted.");
		return false;
	}
	*index_r = (size_t)(n - 1);
	if (rest_r != NULL)
		*rest_r = *end == ' ' ? end + 1 : end;
	else if (*end != '\0') {
		pop3_err(s, "Too many arguments.");
		return false;
	}
	return true;
}

void pop3_cmd_stat(struct pop3_session *s, const char *args)
{
	if (args[0] != '\0') {
		pop3_err(s, "STAT takes no argument.");
		return;
	}
	pop3_ok(s, "%zu %" PRIu64, s->drop.count - s->drop.deleted,
		s->drop.size - s->drop.deleted_size);
}

void pop3_cmd_list(struct pop3_session *s, const char *args)
{
	size_t i;
	if (args[0] == '\0') {
		pop3_stream_list(s, POP3_STREAM_LIST);
		return;
	}
	if (find_message(s, args, &i, NULL))
		pop3_ok(s, "%zu %" PRIu64, i + 1, s->drop.msgs[i].size);
}

void pop3_cmd_uidl(struct pop3_session *s, const char *args)
{
	size_t i;
	if (args[0] == '\0') {
		pop3_stream_list(s, POP3_STREAM_UIDL);
		return;
	}
	if (find_message(s, args, &i, NULL)) {
		char uidl[32];
		pop3_uidl(&s->drop, &s->drop.msgs[i], uidl, sizeof(uidl));
		pop3_ok(s, "%zu %s", i + 1, uidl);
	}
}

void pop3_cmd_retr(struct pop3_session *s, const char *args)
{
	size_t i;
	if (find_message(s, args, &i, NULL))
		pop3_stream_message(s, i, false, 0);
}

void pop3_cmd_top(struct pop3_session *s, const char *args)
{
	size_t i;
	const char *rest;
	uint64_t lines;
	const char *end;
	if (!find_message(s, args, &i, &rest))
		return;
	if (!parse_number(rest, &lines, &end) || *end != '\0') {
		pop3_err(s, "Syntax: TOP msg lines");
		return;
	}
	pop3_stream_message(s, i, true, lines);
}

void pop3_cmd_dele(struct pop3_session *s, const char *args)
{
	size_t i;
	if (!find_message(s, args, &i, NULL))
		return;
	struct pop3_message *m = &s->drop.msgs[i];
	m->deleted = true;
	s->drop.deleted++;
	s->drop.deleted_size += m->size;
	s->stats.dele++;
	pop3_ok(s, "Marked to be deleted.");
}

void pop3_cmd_rset(struct pop3_session *s, const char *args)
{
	if (args[0] != '\0') {
		pop3_err(s, "RSET takes no argument.");
		return;
	}
	for (size_t i = 0; i < s->drop.count; i++)
		s->drop.msgs[i].deleted = false;
	s->drop.deleted = 0;
	s->drop.deleted_size = 0;
	pop3_ok(s, "%zu messages (%" PRIu64 " octets)", s->drop.count, s->drop.size);
}

/* One line of a multi-line response: no line end or NUL inside, dot-stuffed. */
static void env_line(struct pop3_session *s, const char *text)
{
	char line[400];
	size_t o = 0;
	if (text[0] == '.')
		line[o++] = '.';
	for (const char *p = text; *p != '\0' && o < sizeof(line) - 3; p++)
		line[o++] = (*p == '\r' || *p == '\n') ? '?' : *p;
	line[o++] = '\r';
	line[o++] = '\n';
	net_conn_write(s->conn, line, o);
}

/* Demon Internet's SDPS: "*ENV n" answers the envelope of message n in the
 * layout fetchmail --sdps reads: counting the +OK line as the first, the
 * envelope sender is the 4th line and the envelope recipient the 5th. */
void pop3_cmd_env(struct pop3_session *s, const char *args)
{
	size_t i;
	if (!s->conf->pop3.sdps) {
		pop3_err(s, "Unknown command.");
		return;
	}
	if (!find_message(s, args, &i, NULL))
		return;
	const struct pop3_message *m = &s->drop.msgs[i];
	char uidl[32];
	pop3_uidl(&s->drop, m, uidl, sizeof(uidl));
	pop3_ok(s, "%s", "");
	env_line(s, s->mailbox->address);     /* 2: the account */
	env_line(s, uidl);                    /* 3: the message's unique id */
	env_line(s, m->env_from);             /* 4: envelope sender ("" for <>) */
	env_line(s, m->env_to);               /* 5: envelope recipient */
	net_conn_write_str(s->conn, ".\r\n");
}
