/* mime-address.c — RFC 5322 3.4 address lists, as IMAP ENVELOPE wants them. See mime.h.
 *
 * A one-token-lookahead parser over RFC 5322 lexical tokens (atoms, quoted strings,
 * domain literals, specials), with comments and folding white space skipped between them,
 * which also accepts the obsolete syntax of RFC 5322 section 4.4 (routes, empty list
 * elements, CFWS around dots) and repairs junk the way mail readers do.
 */
#include "common/mime-private.h"
#include "common/buf.h"
#include "common/pool.h"

#include <string.h>

enum tok_type {
	TOK_END,
	TOK_ATOM,	/* a run of atext (and stray ")", "]", "\") */
	TOK_QUOTED,	/* a quoted string: p/len is the inside, escapes not removed */
	TOK_LITERAL,	/* a domain literal with its brackets */
	TOK_SPECIAL,	/* one of < > : ; @ , . */
};

struct tok {
	enum tok_type type;
	const char *p;
	size_t len;
	char c;		/* the special */
	bool space;	/* white space or a comment came before it */
};

struct addr_parser {
	struct pool *pool;
	const char *p, *end;
	struct tok cur;
	struct buf comment;	/* text of the last comment seen */
	struct buf phrase, local, domain, route;
	bool in_group;
	struct mime_address *head, *tail;
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Skips one comment, keeping its text (unescaped, nested parentheses kept). */
static void skip_comment(struct addr_parser *ap)
{
	int depth = 0;
	buf_clear(&ap->comment);
	while (ap->p < ap->end) {
		char c = *ap->p++;
		if (c == '\\' && ap->p < ap->end) {
			(void)buf_append(&ap->comment, ap->p++, 1);
			continue;
		}
		if (c == '(' && depth++ == 0)
			continue;
		if (c == ')' && --depth == 0)
			return;
		(void)buf_append(&ap->comment, &c, 1);
	}
}

static void advance(struct addr_parser *ap)
{
	struct tok *t = &ap->cur;
	t->space = false;
	for (;;) {
		if (ap->p < ap->end && is_blank(*ap->p)) {
			ap->p++;
			t->space = true;
		} else if (ap->p < ap->end && *ap->p == '(') {
			skip_comment(ap);
			t->space = true;
		} else {
			break;
		}
	}
	if (ap->p >= ap->end) {
		t->type = TOK_END;
		return;
	}
	const char *start = ap->p;
	char c = *ap->p;
	if (c == '"') {
		ap->p++;
		while (ap->p < ap->end && *ap->p != '"') {
			if (*ap->p == '\\' && ap->p + 1 < ap->end)
				ap->p++;
			ap->p++;
		}
		t->type = TOK_QUOTED;
		t->p = start + 1;
		t->len = (size_t)(ap->p - t->p);
		if (ap->p < ap->end)
			ap->p++;
	} else if (c == '[') {
		while (ap->p < ap->end && *ap->p != ']')
			ap->p++;
		if (ap->p < ap->end)
			ap->p++;
		t->type = TOK_LITERAL;
		t->p = start;
		t->len = (size_t)(ap->p - start);
	} else if (strchr("<>:;@,.", c) != NULL && c != '\0') {
		ap->p++;
		t->type = TOK_SPECIAL;
		t->c = c;
		t->p = start;
		t->len = 1;
	} else {
		while (ap->p < ap->end && !is_blank(*ap->p) &&
		       (strchr("(<>[:;@,.\"", *ap->p) == NULL || *ap->p == '\0'))
			ap->p++;
		t->type = TOK_ATOM;
		t->p = start;
		t->len = (size_t)(ap->p - start);
	}
}

static bool at_special(const struct addr_parser *ap, char c)
{
	return ap->cur.type == TOK_SPECIAL && ap->cur.c == c;
}

/* Appends a quoted string's inside with the escapes removed. */
static void append_unescaped(struct buf *out, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\\' && i + 1 < len)
			i++;
		(void)buf_append(out, p + i, 1);
	}
}

/* Adds the current token to the phrase (display name) and to the local-part reading. */
static void phrase_add(struct addr_parser *ap)
{
	const struct tok *t = &ap->cur;
	if (t->space && buf_len(&ap->phrase) > 0)
		(void)buf_append(&ap->phrase, " ", 1);
	if (t->type == TOK_QUOTED) {
		append_unescaped(&ap->phrase, t->p, t->len);
		(void)buf_append(&ap->local, "\"", 1);
		(void)buf_append(&ap->local, t->p, t->len);
		(void)buf_append(&ap->local, "\"", 1);
	} else {
		(void)buf_append(&ap->phrase, t->p, t->len);
		(void)buf_append(&ap->local, t->p, t->len);
	}
}

/* Reads a domain (atoms, dots, literals; CFWS between them dropped) into ap->domain.
 * A second "@" (junk like a@b@c) moves what was read into the local part. */
static bool read_domain(struct addr_parser *ap)
{
	bool invalid = false;
	buf_clear(&ap->domain);
	for (;;) {
		const struct tok *t = &ap->cur;
		if (t->type == TOK_ATOM || t->type == TOK_LITERAL ||
		    (t->type == TOK_SPECIAL && t->c == '.')) {
			(void)buf_append(&ap->domain, t->p, t->len);
		} else if (t->type == TOK_QUOTED) {
			append_unescaped(&ap->domain, t->p, t->len);
			invalid = true;
		} else if (t->type == TOK_SPECIAL && t->c == '@') {
			(void)buf_append(&ap->local, "@", 1);
			(void)buf_append(&ap->local, buf_cstr(&ap->domain), buf_len(&ap->domain));
			buf_clear(&ap->domain);
			invalid = true;
		} else {
			return invalid;
		}
		advance(ap);
	}
}

static const char *dup_or_null(struct addr_parser *ap, struct buf *b)
{
	return buf_len(b) == 0 ? NULL : pool_strndup(ap->pool, buf_cstr(b), buf_len(b));
}

static struct mime_address *emit(struct addr_parser *ap)
{
	struct mime_address *addr = pool_alloc(ap->pool, sizeof(*addr));
	if (ap->tail == NULL)
		ap->head = addr;
	else
		ap->tail->next = addr;
	ap->tail = addr;
	return addr;
}

/* Emits a mailbox from phrase (or the comment), route, local and domain. */
static void emit_mailbox(struct addr_parser *ap, bool invalid)
{
	struct mime_address *addr = emit(ap);
	addr->name = dup_or_null(ap, buf_len(&ap->phrase) > 0 ? &ap->phrase : &ap->comment);
	addr->route = dup_or_null(ap, &ap->route);
	addr->mailbox = dup_or_null(ap, &ap->local);
	addr->host = dup_or_null(ap, &ap->domain);
	if (addr->mailbox == NULL) {
		addr->mailbox = "MISSING_MAILBOX";
		invalid = true;
	}
	if (addr->host == NULL) {
		addr->host = "MISSING_DOMAIN";
		invalid = true;
	}
	addr->flags = invalid ? MIME_ADDRESS_INVALID : 0;
}

/* "<" [route ":"] addr-spec ">", the current token being just past the "<". */
static void parse_angle(struct addr_parser *ap)
{
	bool invalid = false;
	buf_clear(&ap->local);
	buf_clear(&ap->domain);
	if (at_special(ap, '@')) {
		/* obs-route: "@a,@b:" */
		while (at_special(ap, '@') || at_special(ap, ',')) {
			bool at = at_special(ap, '@');
			advance(ap);
			if (!at)
				continue;
			invalid |= read_domain(ap);
			if (buf_len(&ap->route) > 0)
				(void)buf_append(&ap->route, ",", 1);
			(void)buf_append(&ap->route, "@", 1);
			(void)buf_append(&ap->route, buf_cstr(&ap->domain), buf_len(&ap->domain));
		}
		if (at_special(ap, ':')) {
			advance(ap);
		} else {
			/* "<@host>": no route, a domain without local part */
			buf_clear(&ap->route);
			invalid = true;
		}
	}
	if (buf_len(&ap->domain) == 0 || buf_len(&ap->route) > 0) {
		buf_clear(&ap->domain);
		while (ap->cur.type == TOK_ATOM || ap->cur.type == TOK_QUOTED ||
		       ap->cur.type == TOK_LITERAL || at_special(ap, '.') || at_special(ap, ':')) {
			if (ap->cur.type == TOK_QUOTED) {
				(void)buf_append(&ap->local, "\"", 1);
				(void)buf_append(&ap->local, ap->cur.p, ap->cur.len);
				(void)buf_append(&ap->local, "\"", 1);
			} else {
				(void)buf_append(&ap->local, ap->cur.p, ap->cur.len);
			}
			advance(ap);
		}
		if (at_special(ap, '@')) {
			advance(ap);
			invalid |= read_domain(ap);
		}
	}
	if (at_special(ap, '>'))
		advance(ap);
	else
		invalid = true;
	emit_mailbox(ap, invalid);
	/* junk after the address, up to the next list separator */
	while (ap->cur.type != TOK_END && !at_special(ap, ',') && !at_special(ap, ';'))
		advance(ap);
}

/* One element of the list: a mailbox or the start of a group. */
static void parse_element(struct addr_parser *ap)
{
	buf_clear(&ap->comment);
	buf_clear(&ap->phrase);
	buf_clear(&ap->local);
	buf_clear(&ap->domain);
	buf_clear(&ap->route);
	while (ap->cur.type != TOK_END && !at_special(ap, '<') && !at_special(ap, '@') &&
	       !at_special(ap, ',') && !at_special(ap, ';') &&
	       !(at_special(ap, ':') && !ap->in_group)) {
		phrase_add(ap);
		advance(ap);
	}
	if (at_special(ap, ':')) {
		advance(ap);
		struct mime_address *addr = emit(ap);
		addr->name = NULL;
		addr->mailbox = pool_strndup(ap->pool, buf_cstr(&ap->phrase), buf_len(&ap->phrase));
		ap->in_group = true;
	} else if (at_special(ap, '<')) {
		advance(ap);
		parse_angle(ap);
	} else if (at_special(ap, '@')) {
		/* addr-spec: what was read is the local part */
		advance(ap);
		bool invalid = read_domain(ap);
		buf_clear(&ap->phrase);
		emit_mailbox(ap, invalid);
		while (ap->cur.type != TOK_END && !at_special(ap, ',') && !at_special(ap, ';')) {
			invalid = true;
			advance(ap);
		}
		if (invalid)
			ap->tail->flags |= MIME_ADDRESS_INVALID;
	} else if (buf_len(&ap->local) > 0) {
		/* a word without "@": a local part without domain */
		buf_clear(&ap->phrase);
		buf_clear(&ap->comment);
		emit_mailbox(ap, true);
	}
}

struct mime_address *mime_address_parse(struct pool *pool, const char *value, size_t len)
{
	struct addr_parser ap;
	memset(&ap, 0, sizeof(ap));
	ap.pool = pool;
	ap.p = value;
	ap.end = value + len;
	buf_init(&ap.comment, (size_t)-1);
	buf_init(&ap.phrase, (size_t)-1);
	buf_init(&ap.local, (size_t)-1);
	buf_init(&ap.domain, (size_t)-1);
	buf_init(&ap.route, (size_t)-1);
	advance(&ap);
	while (ap.cur.type != TOK_END) {
		if (at_special(&ap, ',')) {
			advance(&ap);
		} else if (at_special(&ap, ';')) {
			advance(&ap);
			if (ap.in_group) {
				emit(&ap);	/* group end: all NULL */
				ap.in_group = false;
			}
		} else {
			const char *before = ap.p;
			enum tok_type type = ap.cur.type;
			parse_element(&ap);
			if (ap.p == before && ap.cur.type == type && ap.cur.type != TOK_END &&
			    !at_special(&ap, ',') && !at_special(&ap, ';'))
				advance(&ap);	/* never stall on junk */
		}
	}
	if (ap.in_group)
		emit(&ap);
	buf_free(&ap.comment);
	buf_free(&ap.phrase);
	buf_free(&ap.local);
	buf_free(&ap.domain);
	buf_free(&ap.route);
	return ap.head;
}
