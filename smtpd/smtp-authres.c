/* smtp-authres.c — the forged Authentication-Results filter (smtp-authres.h). */
#include "smtpd/smtp-authres.h"
#include "common/log.h"
#include "common/pool.h"

#include <string.h>
#include <strings.h>

/* Bytes of a field held while its authserv-id is looked for; past this the field is
 * dropped as forged (padding with comments must not hide our id). */
#define AUTHRES_HOLD_MAX 1024
/* Bytes of a field name held; longer names are not Authentication-Results. */
#define AUTHRES_NAME_MAX 64
/* The longest authserv-id compared (a host name). */
#define AUTHRES_ID_MAX 255

enum authres_state {
	AR_OFF,       /* in a field that is written as it comes */
	AR_NAME,      /* holding a field's name */
	AR_CFWS,      /* Authentication-Results: before the authserv-id */
	AR_COMMENT,   /* ... in a comment (depth) */
	AR_TOKEN,     /* ... in the authserv-id token */
	AR_QUOTED,    /* ... in a quoted-string authserv-id */
	AR_DROP,      /* in a forged field: dropped up to the next field */
};

struct authres_filter {
	const char *id;
	size_t id_len;
	const char *qid;
	authres_write_fn *write;
	void *ctx;
	enum authres_state state;
	bool bol, esc, tok_over;
	unsigned depth;
	unsigned removed;
	size_t hold_len, tok_len;
	char hold[AUTHRES_HOLD_MAX];
	char tok[AUTHRES_ID_MAX + 1];
};

struct authres_filter *authres_filter_new(struct pool *pool, const char *authserv_id,
					  const char *qid, authres_write_fn *write, void *ctx)
{
	struct authres_filter *f = pool_alloc(pool, sizeof(*f));
	f->id = authserv_id;
	f->id_len = strlen(authserv_id);
	if (f->id_len > 0 && authserv_id[f->id_len - 1] == '.')
		f->id_len--;
	f->qid = qid;
	f->write = write;
	f->ctx = ctx;
	f->state = AR_OFF;
	f->bol = true;
	return f;
}

static void flush(struct authres_filter *f)
{
	if (f->hold_len > 0)
		f->write(f->ctx, f->hold, f->hold_len);
	f->hold_len = 0;
	f->state = AR_OFF;
}

static void drop(struct authres_filter *f, const char *why)
{
	log_info("%s: removed forged Authentication-Results (%s %.*s)", f->qid, why,
		 (int)f->id_len, f->id);
	f->removed++;
	f->hold_len = 0;
	f->state = AR_DROP;
}

/* The authserv-id has been read: ours (case-insensitive, a final dot ignored) is
 * dropped, any other written. */
static void decide(struct authres_filter *f)
{
	size_t n = f->tok_len;
	if (n > 0 && f->tok[n - 1] == '.')
		n--;
	if (!f->tok_over && n > 0 && n == f->id_len && strncasecmp(f->tok, f->id, n) == 0)
		drop(f, "authserv-id");
	else
		flush(f);
}

static bool is_name(const char *hold, size_t len)
{
	static const char name[] = "authentication-results";
	/* len includes the colon; obsolete syntax allows blanks before it */
	len--;
	while (len > 0 && (hold[len - 1] == ' ' || hold[len - 1] == '\t'))
		len--;
	return len == sizeof(name) - 1 && strncasecmp(hold, name, len) == 0;
}

static bool tspecial(unsigned char c)
{
	return c <= ' ' || c == 0x7f || strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

static void tok_add(struct authres_filter *f, unsigned char c)
{
	if (f->tok_len < AUTHRES_ID_MAX)
		f->tok[f->tok_len++] = (char)c;
	else
		f->tok_over = true;
}

/* A field ended (a new one starts): a held one is written. */
static void field_end(struct authres_filter *f)
{
	if (f->state == AR_TOKEN || f->state == AR_QUOTED)
		decide(f);
	else if (f->state != AR_DROP)
		flush(f);
	f->state = AR_OFF;
}

static void id_byte(struct authres_filter *f, unsigned char c)
{
	switch (f->state) {
	case AR_CFWS:
		if (c == '(') {
			f->state = AR_COMMENT;
			f->depth = 1;
			f->esc = false;
		} else if (c == '"') {
			f->state = AR_QUOTED;
			f->esc = false;
		} else if (c == ';') {
			flush(f);   /* no authserv-id: not one of ours */
		} else if (!tspecial(c)) {
			f->state = AR_TOKEN;
			tok_add(f, c);
		}
		break;
	case AR_COMMENT:
		if (f->esc)
			f->esc = false;
		else if (c == '\\')
			f->esc = true;
		else if (c == '(')
			f->depth++;
		else if (c == ')' && --f->depth == 0)
			f->state = AR_CFWS;
		break;
	case AR_TOKEN:
		if (tspecial(c))
			decide(f);
		else
			tok_add(f, c);
		break;
	case AR_QUOTED:
		if (f->esc) {
			f->esc = false;
			tok_add(f, c);
		} else if (c == '\\') {
			f->esc = true;
		} else if (c == '"') {
			decide(f);
		} else if (c != '\r' && c != '\n') {
			tok_add(f, c);
		}
		break;
	default:
		break;
	}
}

bool authres_byte(struct authres_filter *f, unsigned char c)
{
	if (f->bol && c != ' ' && c != '\t') {
		field_end(f);
		f->state = AR_NAME;
	}
	f->bol = c == '\n';
	if (f->state == AR_OFF)
		return false;
	if (f->state == AR_DROP)
		return true;
	if (f->hold_len == sizeof(f->hold)) {
		drop(f, "no authserv-id within the first 1024 bytes; ours is");
		return true;
	}
	f->hold[f->hold_len++] = (char)c;
	if (f->state == AR_NAME) {
		if (c == ':' && is_name(f->hold, f->hold_len)) {
			f->state = AR_CFWS;
			f->tok_len = 0;
			f->tok_over = false;
		} else if (c == ':' || c == '\n' || f->hold_len >= AUTHRES_NAME_MAX) {
			flush(f);
		}
		return true;
	}
	id_byte(f, c);
	return true;
}

bool authres_end(struct authres_filter *f)
{
	bool dropped = f->state == AR_DROP;
	field_end(f);
	f->bol = true;
	return dropped;
}

unsigned authres_removed(const struct authres_filter *f)
{
	return f->removed;
}
