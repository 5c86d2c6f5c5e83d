/* imap-envelope.c — ENVELOPE, BODY and BODYSTRUCTURE from the cached MIME tree
 * (RFC 9051 7.5.2). */
#include "imapd/imap-fetch.h"
#include "common/buf.h"
#include "common/mime.h"
#include "common/pool.h"

#include <string.h>

static void append_addresses(struct buf *out, struct pool *pool, const char *value)
{
	struct mime_address *a = value != NULL ? mime_address_parse(pool, value, strlen(value)) :
		NULL;
	if (a == NULL) {
		buf_append_str(out, "NIL");
		return;
	}
	buf_append(out, "(", 1);
	for (; a != NULL; a = a->next) {
		buf_append(out, "(", 1);
		imap_append_nstring(out, a->name);
		buf_append(out, " ", 1);
		imap_append_nstring(out, a->route);
		buf_append(out, " ", 1);
		imap_append_nstring(out, a->mailbox);
		buf_append(out, " ", 1);
		imap_append_nstring(out, a->host);
		buf_append(out, ")", 1);
	}
	buf_append(out, ")", 1);
}

void imap_append_envelope(struct buf *out, struct pool *pool, const struct mime_envelope *env)
{
	static const struct mime_envelope empty;
	if (env == NULL)
		env = &empty;
	const char *sender = env->sender != NULL && env->sender[0] != '\0' ? env->sender : env->from;
	const char *reply_to = env->reply_to != NULL && env->reply_to[0] != '\0' ? env->reply_to :
		env->from;
	buf_append(out, "(", 1);
	imap_append_nstring(out, env->date);
	buf_append(out, " ", 1);
	imap_append_nstring(out, env->subject);
	buf_append(out, " ", 1);
	append_addresses(out, pool, env->from);
	buf_append(out, " ", 1);
	append_addresses(out, pool, sender);
	buf_append(out, " ", 1);
	append_addresses(out, pool, reply_to);
	buf_append(out, " ", 1);
	append_addresses(out, pool, env->to);
	buf_append(out, " ", 1);
	append_addresses(out, pool, env->cc);
	buf_append(out, " ", 1);
	append_addresses(out, pool, env->bcc);
	buf_append(out, " ", 1);
	imap_append_nstring(out, env->in_reply_to);
	buf_append(out, " ", 1);
	imap_append_nstring(out, env->message_id);
	buf_append(out, ")", 1);
}

static void append_params(struct buf *out, const struct mime_param *params, unsigned n)
{
	if (n == 0) {
		buf_append_str(out, "NIL");
		return;
	}
	buf_append(out, "(", 1);
	for (unsigned i = 0; i < n; i++) {
		if (i > 0)
			buf_append(out, " ", 1);
		imap_append_nstring(out, params[i].name);
		buf_append(out, " ", 1);
		imap_append_nstring(out, params[i].value != NULL ? params[i].value : "");
	}
	buf_append(out, ")", 1);
}

static void append_disposition(struct buf *out, const struct mime_part *p)
{
	if (p->disposition == NULL) {
		buf_append_str(out, "NIL");
		return;
	}
	buf_append(out, "(", 1);
	imap_append_nstring(out, p->disposition);
	buf_append(out, " ", 1);
	append_params(out, p->disposition_params, p->disposition_param_count);
	buf_append(out, ")", 1);
}

static void append_ext_tail(struct buf *out, const struct mime_part *p)
{
	buf_append(out, " ", 1);
	append_disposition(out, p);
	buf_append(out, " ", 1);
	imap_append_nstring(out, p->language);
	buf_append(out, " ", 1);
	imap_append_nstring(out, p->location);
}

void imap_append_bodystructure(struct buf *out, struct pool *pool, const struct mime_part *p,
			       bool extended)
{
	if (p->flags & MIME_PART_MULTIPART) {
		buf_append(out, "(", 1);
		if (p->children == NULL)
			buf_append_str(out, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
				       "\"7bit\" 0 0)");
		for (const struct mime_part *c = p->children; c != NULL; c = c->next)
			imap_append_bodystructure(out, pool, c, extended);
		buf_append(out, " ", 1);
		imap_append_nstring(out, p->subtype);
		if (extended) {
			buf_append(out, " ", 1);
			append_params(out, p->params, p->param_count);
			append_ext_tail(out, p);
		}
		buf_append(out, ")", 1);
		return;
	}
	buf_append(out, "(", 1);
	imap_append_nstring(out, p->type);
	buf_append(out, " ", 1);
	imap_append_nstring(out, p->subtype);
	buf_append(out, " ", 1);
	append_params(out, p->params, p->param_count);
	buf_append(out, " ", 1);
	imap_append_nstring(out, p->id);
	buf_append(out, " ", 1);
	imap_append_nstring(out, p->description);
	buf_append(out, " ", 1);
	imap_append_nstring(out, p->encoding != NULL ? p->encoding : "7bit");
	buf_printf(out, " %llu", (unsigned long long)p->body_size);
	if ((p->flags & MIME_PART_HAS_MESSAGE) && p->children != NULL) {
		buf_append(out, " ", 1);
		imap_append_envelope(out, pool, p->children->envelope);
		buf_append(out, " ", 1);
		imap_append_bodystructure(out, pool, p->children, extended);
		buf_printf(out, " %llu", (unsigned long long)p->body_lines);
	} else if (strcmp(p->type, "text") == 0) {
		buf_printf(out, " %llu", (unsigned long long)p->body_lines);
	}
	if (extended) {
		buf_append(out, " ", 1);
		imap_append_nstring(out, p->md5);
		append_ext_tail(out, p);
	}
	buf_append(out, ")", 1);
}
