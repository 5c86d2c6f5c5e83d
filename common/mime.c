/* mime.c — the streaming MIME parser and the part tree. See mime.h for the rules.
 *
 * The parser is a line machine that never holds more than the first LINE_PREFIX bytes of
 * a line (enough to recognise a boundary or a header field name) and the current header
 * field (up to max_field_size). Every open part is a frame on a stack: the innermost is
 * in its header or its body, the outer ones are multiparts or message/ parts whose bodies
 * contain it. Offsets and the LF / bare-LF counters are kept for the whole message, and a
 * part's sizes and line counts are differences of them, so a boundary that closes ten
 * nested parts closes them all at one point without touching the data again.
 */
#include "common/mime-private.h"
#include "common/buf.h"
#include "common/pool.h"

#include <string.h>
#include <strings.h>

/* Bytes of a line kept to decide what it is: "--" boundary "--" at most. */
#define LINE_PREFIX (2 + MIME_BOUNDARY_MAX + 2)

enum multipart_state {
	MP_NONE,	/* not a multipart */
	MP_PREAMBLE,
	MP_CHILDREN,
	MP_EPILOGUE,	/* after the closing delimiter: the boundary is no longer active */
};

struct frame {
	struct mime_part *part;
	struct mime_part *last_child;
	uint64_t lines_start, bare_start;	/* counters where the header, then the body, began */
	const char *boundary;
	size_t boundary_len;
	enum multipart_state mp;
	bool in_header;
	bool digest;		/* multipart/digest: children default to message/rfc822 */
};

enum line_mode {
	LINE_START,	/* nothing of the current line read yet */
	LINE_COLLECT,	/* reading the line's first bytes into the prefix */
	LINE_HEADER,	/* the rest of a header line */
	LINE_BODY,	/* the rest of a body line */
	LINE_BOUNDARY,	/* the rest of a delimiter line */
};

/* Header fields the tree keeps. */
enum field_id {
	FIELD_CONTENT_TYPE,
	FIELD_CONTENT_TRANSFER_ENCODING,
	FIELD_CONTENT_ID,
	FIELD_CONTENT_DESCRIPTION,
	FIELD_CONTENT_DISPOSITION,
	FIELD_CONTENT_LANGUAGE,
	FIELD_CONTENT_LOCATION,
	FIELD_CONTENT_MD5,
	FIELD_FIRST_ENVELOPE,
	FIELD_DATE = FIELD_FIRST_ENVELOPE,
	FIELD_SUBJECT,
	FIELD_FROM,
	FIELD_SENDER,
	FIELD_REPLY_TO,
	FIELD_TO,
	FIELD_CC,
	FIELD_BCC,
	FIELD_IN_REPLY_TO,
	FIELD_MESSAGE_ID,
	FIELD_COUNT,
};

static const char *const field_names[FIELD_COUNT] = {
	"content-type", "content-transfer-encoding", "content-id", "content-description",
	"content-disposition", "content-language", "content-location", "content-md5",
	"date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc", "in-reply-to",
	"message-id",
};

struct mime_parser {
	struct pool *pool;
	struct mime_limits limits;
	struct mime_part *root;
	unsigned int part_count;
	struct frame *stack;
	int top;			/* index of the innermost open part, -1 when all closed */

	/* counters over the whole message */
	uint64_t off, lines, bare;	/* bytes, LFs, LFs without CR before them */
	bool prev_cr;
	bool have_eol;			/* the last line end: where it began, counters before it */
	uint64_t eol_start, eol_lines, eol_bare;
	/* the same, frozen at the start of the current line */
	uint64_t line_off, line_lines, line_bare;
	bool line_have_eol;
	uint64_t line_eol_start, line_eol_lines, line_eol_bare;

	enum line_mode mode;
	unsigned char prefix[LINE_PREFIX];
	size_t prefix_len;

	/* the header field being read: its first max_field_size bytes */
	char *field;
	size_t field_len;
	int field_id;			/* enum field_id, -1 when not kept */
	bool field_active, field_truncated, first_line;

	bool new_child;			/* start a child after the delimiter line */
	bool boundaries_off;		/* part limit reached: no more boundaries */
	size_t kept;			/* bytes of header values kept */
};

static void line_dispatch(struct mime_parser *p, bool complete);

/* ---- counters ---- */

/* Counts n consumed bytes that hold at most one LF, at their end. */
static void count_bytes(struct mime_parser *p, const unsigned char *data, size_t n)
{
	if (n == 0)
		return;
	if (data[n - 1] == '\n') {
		bool cr = n >= 2 ? data[n - 2] == '\r' : p->prev_cr;
		p->have_eol = true;
		p->eol_start = p->off + n - 1 - (cr ? 1 : 0);
		p->eol_lines = p->lines;
		p->eol_bare = p->bare;
		p->lines++;
		if (!cr)
			p->bare++;
	}
	p->prev_cr = data[n - 1] == '\r';
	p->off += n;
}

/* Scans bytes of a header or body for 8-bit and NUL. */
static void scan_flags(struct mime_part *part, const unsigned char *data, size_t n, bool header)
{
	unsigned int want = header ? MIME_PART_HEADER_8BIT | MIME_PART_HEADER_NUL
		: MIME_PART_BODY_8BIT | MIME_PART_BODY_NUL;
	if ((part->flags & want) == want)
		return;
	unsigned int f = 0;
	for (size_t i = 0; i < n; i++) {
		if (data[i] >= 0x80)
			f |= header ? MIME_PART_HEADER_8BIT : MIME_PART_BODY_8BIT;
		else if (data[i] == 0)
			f |= header ? MIME_PART_HEADER_NUL : MIME_PART_BODY_NUL;
	}
	part->flags |= f;
}

/* Where a part ends when the current line is a delimiter line: before the line end that
 * precedes it, unless that line end is not inside the part's current region. */
static void delimiter_point(const struct mime_parser *p, uint64_t *end_r, uint64_t *lines_r,
			    uint64_t *bare_r)
{
	const struct frame *f = &p->stack[p->top];
	uint64_t region = f->in_header ? f->part->header_offset : f->part->body_offset;
	if (p->line_have_eol && p->line_eol_start >= region) {
		*end_r = p->line_eol_start;
		*lines_r = p->line_eol_lines;
		*bare_r = p->line_eol_bare;
	} else {
		*end_r = p->line_off;
		*lines_r = p->line_lines;
		*bare_r = p->line_bare;
	}
}

/* ---- parts ---- */

static struct mime_part *push_part(struct mime_parser *p, unsigned int flags, uint64_t offset,
				   uint64_t lines, uint64_t bare)
{
	struct frame *parent = p->top >= 0 ? &p->stack[p->top] : NULL;
	struct mime_part *part = pool_alloc(p->pool, sizeof(*part));
	part->flags = flags;
	part->header_offset = offset;
	part->body_offset = offset;
	if (flags & MIME_PART_MESSAGE)
		part->envelope = pool_alloc(p->pool, sizeof(struct mime_envelope));
	if (parent != NULL) {
		part->parent = parent->part;
		part->depth = parent->part->depth + 1;
		if (parent->last_child == NULL)
			parent->part->children = part;
		else
			parent->last_child->next = part;
		parent->last_child = part;
		parent->part->child_count++;
	}
	p->part_count++;

	struct frame *f = &p->stack[++p->top];
	memset(f, 0, sizeof(*f));
	f->part = part;
	f->in_header = true;
	f->lines_start = lines;
	f->bare_start = bare;
	p->first_line = true;
	return part;
}

static struct mime_param *charset_param(struct mime_parser *p)
{
	struct mime_param *param = pool_alloc(p->pool, sizeof(*param));
	param->name = "charset";
	param->value = "us-ascii";
	return param;
}

static void set_default_type(struct mime_parser *p, struct mime_part *part)
{
	part->type = "text";
	part->subtype = "plain";
	part->params = charset_param(p);
	part->param_count = 1;
}

/* Whether a composite part may get children here. */
static bool can_nest(struct mime_parser *p, struct mime_part *part)
{
	if (part->depth >= p->limits.max_depth) {
		p->root->flags |= MIME_PART_LIMIT_DEPTH;
		return false;
	}
	return p->part_count < p->limits.max_parts && !p->boundaries_off;
}

static void make_opaque(struct mime_part *part)
{
	part->type = "text";
	part->subtype = "plain";
	part->flags |= MIME_PART_OPAQUE;
}

/* Applies the defaults and decides what the part's body is, at the end of its header. */
static void finalize_type(struct mime_parser *p, struct frame *f)
{
	struct mime_part *part = f->part;
	const struct frame *parent = p->top > 0 ? &p->stack[p->top - 1] : NULL;

	if (part->encoding == NULL)
		part->encoding = "7bit";
	if (part->flags & MIME_PART_BAD_TYPE) {
		set_default_type(p, part);
	} else if (part->type == NULL) {
		part->flags |= MIME_PART_DEFAULT_TYPE;
		if (parent != NULL && parent->digest && !(part->flags & MIME_PART_MESSAGE)) {
			part->type = "message";
			part->subtype = "rfc822";
		} else {
			set_default_type(p, part);
		}
	}

	if (strcmp(part->type, "multipart") == 0) {
		const char *boundary = mime_part_param(part, "boundary");
		size_t len = boundary == NULL ? 0 : strlen(boundary);
		if (len == 0 || len > MIME_BOUNDARY_MAX || strpbrk(boundary, "\r\n") != NULL) {
			part->flags |= MIME_PART_BAD_TYPE;
			set_default_type(p, part);
		} else if (!can_nest(p, part)) {
			make_opaque(part);
		} else {
			part->flags |= MIME_PART_MULTIPART;
			f->boundary = boundary;
			f->boundary_len = len;
			f->mp = MP_PREAMBLE;
			f->digest = strcmp(part->subtype, "digest") == 0;
		}
	} else if (strcmp(part->type, "message") == 0 &&
		   (strcmp(part->subtype, "rfc822") == 0 || strcmp(part->subtype, "global") == 0)) {
		/* RFC 2046 5.2.1: only identity encodings; an encoded message is opaque */
		bool identity = strcmp(part->encoding, "7bit") == 0 ||
			strcmp(part->encoding, "8bit") == 0 || strcmp(part->encoding, "binary") == 0;
		if (!identity || !can_nest(p, part))
			make_opaque(part);
		else
			part->flags |= MIME_PART_HAS_MESSAGE;
	}
}

/* The header of the innermost part ends at e (after its empty line, or at a boundary or
 * the end of the data). A message/ part gets its message child here. */
static void header_end(struct mime_parser *p, uint64_t e, uint64_t lines, uint64_t bare)
{
	struct frame *f = &p->stack[p->top];
	struct mime_part *part = f->part;
	part->header_size = e - part->header_offset;
	part->header_vsize = part->header_size + (bare - f->bare_start);
	part->body_offset = e;
	f->in_header = false;
	f->lines_start = lines;
	f->bare_start = bare;
	finalize_type(p, f);
	if (part->flags & MIME_PART_HAS_MESSAGE)
		push_part(p, MIME_PART_MESSAGE, e, lines, bare);
}

/* Closes the innermost part, which is in its body, at e. */
static void close_top(struct mime_parser *p, uint64_t e, uint64_t lines, uint64_t bare)
{
	struct frame *f = &p->stack[p->top];
	struct mime_part *part = f->part;
	part->body_size = e - part->body_offset;
	part->body_lines = lines - f->lines_start;
	part->body_vsize = part->body_size + (bare - f->bare_start);
	if (f->mp == MP_PREAMBLE || f->mp == MP_CHILDREN)
		part->flags |= MIME_PART_NO_CLOSE;
	if (part->parent != NULL) {
		/* the part lies inside its parent's body */
		unsigned int fl = part->flags;
		part->parent->flags |=
			(fl & (MIME_PART_HEADER_8BIT | MIME_PART_BODY_8BIT) ? MIME_PART_BODY_8BIT : 0) |
			(fl & (MIME_PART_HEADER_NUL | MIME_PART_BODY_NUL) ? MIME_PART_BODY_NUL : 0);
	}
	p->top--;
}

static void field_finish(struct mime_parser *p);

/* Closes every part deeper than level (-1: all) at e. */
static void close_to(struct mime_parser *p, int level, uint64_t e, uint64_t lines, uint64_t bare)
{
	while (p->top > level) {
		struct frame *f = &p->stack[p->top];
		if (f->in_header) {
			field_finish(p);
			f->part->flags |= MIME_PART_HEADER_UNTERMINATED;
			header_end(p, e, lines, bare);
		} else {
			close_top(p, e, lines, bare);
		}
	}
}

/* ---- header fields ---- */

static int field_lookup(const char *name, size_t len, bool message)
{
	int n = message ? FIELD_COUNT : FIELD_FIRST_ENVELOPE;
	for (int i = 0; i < n; i++)
		if (strlen(field_names[i]) == len && strncasecmp(field_names[i], name, len) == 0)
			return i;
	return -1;
}

/* Unfolds a field value in place (line breaks removed, outer blanks cut); new length. */
static size_t unfold_in_place(char *v, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++)
		if (v[i] != '\r' && v[i] != '\n')
			v[o++] = v[i];
	size_t start = 0;
	while (start < o && (v[start] == ' ' || v[start] == '\t'))
		start++;
	while (o > start && (v[o - 1] == ' ' || v[o - 1] == '\t'))
		o--;
	memmove(v, v + start, o - start);
	return o - start;
}

/* Keeps a value in the pool, NULs replaced by U+FFFD, cut to what is left of
 * max_kept_size. */
static const char *keep_value(struct mime_parser *p, struct mime_part *part, const char *v,
			      size_t len, size_t *len_r)
{
	size_t room = p->limits.max_kept_size - p->kept, n = 0;
	for (size_t i = 0; i < len; i++)
		n += v[i] == '\0' ? 3 : 1;
	if (n > room) {
		n = room;
		part->flags |= MIME_PART_TRUNCATED;
		p->root->flags |= MIME_PART_LIMIT_KEPT;
	}
	char *r = pool_alloc(p->pool, n + 1);
	size_t o = 0;
	for (size_t i = 0; i < len && o < n; i++) {
		if (v[i] != '\0') {
			r[o++] = v[i];
		} else if (n - o >= 3) {
			memcpy(r + o, "\xEF\xBF\xBD", 3);
			o += 3;
		} else {
			break;
		}
	}
	r[o] = '\0';
	p->kept += o;
	*len_r = o;
	return r;
}

static const char **envelope_slot(struct mime_envelope *env, int id)
{
	switch (id) {
	case FIELD_DATE: return &env->date;
	case FIELD_SUBJECT: return &env->subject;
	case FIELD_FROM: return &env->from;
	case FIELD_SENDER: return &env->sender;
	case FIELD_REPLY_TO: return &env->reply_to;
	case FIELD_TO: return &env->to;
	case FIELD_CC: return &env->cc;
	case FIELD_BCC: return &env->bcc;
	case FIELD_IN_REPLY_TO: return &env->in_reply_to;
	default: return &env->message_id;
	}
}

/* The slot of a kept field that is a plain string, or NULL. */
static const char **string_slot(struct mime_part *part, int id)
{
	switch (id) {
	case FIELD_CONTENT_ID: return &part->id;
	case FIELD_CONTENT_DESCRIPTION: return &part->description;
	case FIELD_CONTENT_LANGUAGE: return &part->language;
	case FIELD_CONTENT_LOCATION: return &part->location;
	case FIELD_CONTENT_MD5: return &part->md5;
	default:
		if (id >= FIELD_FIRST_ENVELOPE && part->envelope != NULL)
			return envelope_slot((struct mime_envelope *)part->envelope, id);
		return NULL;
	}
}

/* Applies a complete kept field to the innermost part. */
static void field_apply(struct mime_parser *p, struct mime_part *part)
{
	char *colon = memchr(p->field, ':', p->field_len);
	if (colon == NULL)
		return;
	int id = p->field_id;
	const char **slot = string_slot(part, id);
	if ((slot != NULL && *slot != NULL) ||
	    (id == FIELD_CONTENT_TYPE && (part->type != NULL || (part->flags & MIME_PART_BAD_TYPE))) ||
	    (id == FIELD_CONTENT_TRANSFER_ENCODING && part->encoding != NULL) ||
	    (id == FIELD_CONTENT_DISPOSITION && part->disposition != NULL))
		return;		/* the first one counts */

	if (p->field_truncated)
		part->flags |= MIME_PART_TRUNCATED;
	size_t len = unfold_in_place(colon + 1, p->field_len - (size_t)(colon + 1 - p->field));
	const char *v = keep_value(p, part, colon + 1, len, &len);
	struct mime_param *params;
	unsigned int count;

	switch (id) {
	case FIELD_CONTENT_TYPE:
		if (mime_content_type_parse(p->pool, v, len, &part->type, &part->subtype,
					    &params, &count) < 0) {
			part->flags |= MIME_PART_BAD_TYPE;
		} else {
			part->params = params;
			part->param_count = count;
		}
		break;
	case FIELD_CONTENT_TRANSFER_ENCODING:
		part->encoding = mime_token_parse(p->pool, v, len);
		break;
	case FIELD_CONTENT_DISPOSITION:
		mime_disposition_parse(p->pool, v, len, &part->disposition, &params, &count);
		part->disposition_params = params;
		part->disposition_param_count = count;
		if (part->disposition == NULL && count > 0)
			part->disposition = "attachment";	/* "; filename=x" */
		break;
	default:
		*slot = v;
		break;
	}
}

static void field_finish(struct mime_parser *p)
{
	if (p->field_active && p->field_id >= 0)
		field_apply(p, p->stack[p->top].part);
	p->field_len = 0;
	p->field_active = false;
	p->field_truncated = false;
	p->field_id = -1;
}

static void field_append(struct mime_parser *p, const void *data, size_t n)
{
	if (p->field_id < 0)
		return;
	size_t room = p->limits.max_field_size - p->field_len;
	if (n > room) {
		n = room;
		p->field_truncated = true;
	}
	memcpy(p->field + p->field_len, data, n);
	p->field_len += n;
}

/* Starts a field whose first line begins with the prefix. */
static void field_begin(struct mime_parser *p)
{
	const unsigned char *l = p->prefix;
	const unsigned char *colon = memchr(l, ':', p->prefix_len);
	p->field_active = true;
	p->field_id = -1;
	if (colon == NULL)
		return;
	size_t name_len = (size_t)(colon - l);
	while (name_len > 0 && (l[name_len - 1] == ' ' || l[name_len - 1] == '\t'))
		name_len--;
	bool message = (p->stack[p->top].part->flags & MIME_PART_MESSAGE) != 0;
	p->field_id = field_lookup((const char *)l, name_len, message);
}

/* RFC 5322 field name (printable ASCII but ':'), optional blanks, ':'. A prefix full of
 * name characters is taken as a (long) field. */
static bool is_field_start(const unsigned char *l, size_t n)
{
	size_t i = 0;
	while (i < n && l[i] > ' ' && l[i] < 127 && l[i] != ':')
		i++;
	if (i == 0)
		return false;
	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	if (i < n)
		return l[i] == ':';
	return n == LINE_PREFIX;
}

/* ---- lines ---- */

static void header_line(struct mime_parser *p, bool complete)
{
	struct frame *f = &p->stack[p->top];
	const unsigned char *l = p->prefix;
	size_t n = p->prefix_len;

	if (complete && (n == 1 || (n == 2 && l[0] == '\r'))) {
		/* the empty line */
		field_finish(p);
		scan_flags(f->part, l, n, true);
		header_end(p, p->off, p->lines, p->bare);
		p->mode = LINE_START;
		return;
	}
	if (p->first_line) {
		p->first_line = false;
		if (!is_field_start(l, n)) {
			/* no header at all: the body starts with this line */
			f->part->flags |= MIME_PART_NO_HEADER;
			header_end(p, p->line_off, p->line_lines, p->line_bare);
			line_dispatch(p, complete);
			return;
		}
	}
	scan_flags(f->part, l, n, true);
	if (l[0] != ' ' && l[0] != '\t') {
		field_finish(p);
		field_begin(p);
	}
	field_append(p, l, n);
	p->mode = complete ? LINE_START : LINE_HEADER;
}

/* A line that is not a delimiter: header or body of the innermost part. */
static void line_dispatch(struct mime_parser *p, bool complete)
{
	struct frame *f = &p->stack[p->top];
	if (f->in_header) {
		header_line(p, complete);
		return;
	}
	scan_flags(f->part, p->prefix, p->prefix_len, false);
	p->mode = complete ? LINE_START : LINE_BODY;
}

/* The frame whose boundary starts the prefix, or -1. Longest boundary wins. */
static int boundary_match(const struct mime_parser *p, bool *closing_r)
{
	const unsigned char *l = p->prefix;
	size_t n = p->prefix_len, best_len = 0;
	int best = -1;
	if (p->boundaries_off || n < 3 || l[0] != '-' || l[1] != '-')
		return -1;
	for (int i = p->top; i >= 0; i--) {
		const struct frame *f = &p->stack[i];
		if ((f->mp == MP_PREAMBLE || f->mp == MP_CHILDREN) && f->boundary_len > best_len &&
		    n >= 2 + f->boundary_len && memcmp(l + 2, f->boundary, f->boundary_len) == 0) {
			best = i;
			best_len = f->boundary_len;
		}
	}
	if (best >= 0)
		*closing_r = n >= best_len + 4 && l[best_len + 2] == '-' && l[best_len + 3] == '-';
	return best;
}

/* After a whole delimiter line: the next part starts here. */
static void delimiter_done(struct mime_parser *p)
{
	p->mode = LINE_START;
	if (p->new_child) {
		p->new_child = false;
		push_part(p, 0, p->off, p->lines, p->bare);
	}
}

static void delimiter_line(struct mime_parser *p, int level, bool closing, bool complete)
{
	uint64_t e, lines, bare;
	if (!closing && p->part_count >= p->limits.max_parts) {
		/* no more parts: the rest of the message stays in the current one */
		p->boundaries_off = true;
		p->root->flags |= MIME_PART_LIMIT_PARTS;
		line_dispatch(p, complete);
		return;
	}
	delimiter_point(p, &e, &lines, &bare);
	close_to(p, level, e, lines, bare);
	struct frame *f = &p->stack[p->top];
	scan_flags(f->part, p->prefix, p->prefix_len, false);
	f->mp = closing ? MP_EPILOGUE : MP_CHILDREN;
	p->new_child = !closing;
	if (complete)
		delimiter_done(p);
	else
		p->mode = LINE_BOUNDARY;
}

/* The prefix of the current line is complete enough to decide what the line is. */
static void line_decide(struct mime_parser *p, bool complete)
{
	bool closing = false;
	int level = boundary_match(p, &closing);
	if (level >= 0)
		delimiter_line(p, level, closing, complete);
	else
		line_dispatch(p, complete);
}

/* ---- feeding ---- */

void mime_parser_feed(struct mime_parser *p, const void *data, size_t len)
{
	const unsigned char *d = data;
	while (len > 0) {
		struct frame *f = &p->stack[p->top];
		const unsigned char *lf;
		size_t n;
		switch (p->mode) {
		case LINE_START:
			p->line_off = p->off;
			p->line_lines = p->lines;
			p->line_bare = p->bare;
			p->line_have_eol = p->have_eol;
			p->line_eol_start = p->eol_start;
			p->line_eol_lines = p->eol_lines;
			p->line_eol_bare = p->eol_bare;
			p->prefix_len = 0;
			p->mode = f->in_header || (d[0] == '-' && !p->boundaries_off)
				? LINE_COLLECT : LINE_BODY;
			continue;
		case LINE_COLLECT:
			n = LINE_PREFIX - p->prefix_len;
			if (n > len)
				n = len;
			lf = memchr(d, '\n', n);
			if (lf != NULL)
				n = (size_t)(lf - d) + 1;
			memcpy(p->prefix + p->prefix_len, d, n);
			p->prefix_len += n;
			count_bytes(p, d, n);
			d += n;
			len -= n;
			if (lf != NULL || p->prefix_len == LINE_PREFIX ||
			    (!f->in_header && p->prefix_len >= 2 && p->prefix[1] != '-'))
				line_decide(p, lf != NULL);
			continue;
		default:
			break;
		}
		lf = memchr(d, '\n', len);
		n = lf != NULL ? (size_t)(lf - d) + 1 : len;
		if (p->mode == LINE_HEADER) {
			scan_flags(f->part, d, n, true);
			field_append(p, d, n);
		} else {
			scan_flags(f->part, d, n, false);
		}
		count_bytes(p, d, n);
		d += n;
		len -= n;
		if (lf != NULL) {
			if (p->mode == LINE_BOUNDARY)
				delimiter_done(p);
			else
				p->mode = LINE_START;
		}
	}
}

struct mime_parser *mime_parser_new_limits(struct pool *pool, const struct mime_limits *limits)
{
	struct mime_parser *p = pool_alloc(pool, sizeof(*p));
	p->pool = pool;
	if (limits != NULL)
		p->limits = *limits;
	if (p->limits.max_depth == 0)
		p->limits.max_depth = MIME_DEFAULT_MAX_DEPTH;
	if (p->limits.max_depth > MIME_MAX_DEPTH_LIMIT)
		p->limits.max_depth = MIME_MAX_DEPTH_LIMIT;
	if (p->limits.max_parts == 0)
		p->limits.max_parts = MIME_DEFAULT_MAX_PARTS;
	if (p->limits.max_parts > MIME_MAX_PARTS_LIMIT)
		p->limits.max_parts = MIME_MAX_PARTS_LIMIT;
	if (p->limits.max_field_size == 0)
		p->limits.max_field_size = MIME_DEFAULT_MAX_FIELD_SIZE;
	if (p->limits.max_field_size > MIME_MAX_FIELD_SIZE_LIMIT)
		p->limits.max_field_size = MIME_MAX_FIELD_SIZE_LIMIT;
	if (p->limits.max_kept_size == 0)
		p->limits.max_kept_size = MIME_DEFAULT_MAX_KEPT_SIZE;
	/* one frame per level, plus the message of a message/ part at the deepest level */
	p->stack = pool_alloc(pool, (p->limits.max_depth + 2) * sizeof(*p->stack));
	p->top = -1;
	p->field = pool_alloc(pool, p->limits.max_field_size);
	p->field_id = -1;
	p->root = push_part(p, MIME_PART_MESSAGE, 0, 0, 0);
	p->mode = LINE_START;
	return p;
}

struct mime_parser *mime_parser_new(struct pool *pool)
{
	return mime_parser_new_limits(pool, NULL);
}

struct mime_part *mime_parser_finish(struct mime_parser *p)
{
	/* the last line had no line end */
	if (p->mode == LINE_COLLECT && p->prefix_len > 0)
		line_decide(p, false);
	if (p->mode == LINE_BOUNDARY)
		delimiter_done(p);
	close_to(p, -1, p->off, p->lines, p->bare);
	return p->root;
}

struct mime_part *mime_parse(struct pool *pool, const void *data, size_t len,
			     const struct mime_limits *limits)
{
	struct mime_parser *p = mime_parser_new_limits(pool, limits);
	mime_parser_feed(p, data, len);
	return mime_parser_finish(p);
}

/* ---- walking the tree ---- */

const char *mime_part_param(const struct mime_part *part, const char *name)
{
	for (unsigned int i = 0; i < part->param_count; i++)
		if (strcmp(part->params[i].name, name) == 0)
			return part->params[i].value;
	return NULL;
}

const struct mime_envelope *mime_part_envelope(const struct mime_part *part)
{
	if ((part->flags & MIME_PART_HAS_MESSAGE) && part->children != NULL)
		return part->children->envelope;
	return part->envelope;
}

const struct mime_part *mime_part_next(const struct mime_part *part)
{
	if (part->children != NULL)
		return part->children;
	while (part != NULL) {
		if (part->next != NULL)
			return part->next;
		part = part->parent;
	}
	return NULL;
}

const struct mime_part *mime_part_find(const struct mime_part *root, const char *section)
{
	/* ctx: the part whose sub-parts the next number counts (a multipart, or a message) */
	const struct mime_part *ctx = root, *sel = root;
	const char *s = section;
	if (*s == '\0')
		return root;
	for (;;) {
		unsigned long n = 0;
		if (*s < '1' || *s > '9')
			return NULL;
		while (*s >= '0' && *s <= '9') {
			n = n * 10 + (unsigned long)(*s++ - '0');
			if (n > MIME_MAX_PARTS_LIMIT)
				return NULL;
		}
		if (ctx->flags & MIME_PART_MULTIPART) {
			sel = ctx->children;
			for (unsigned long i = 1; sel != NULL && i < n; i++)
				sel = sel->next;
			if (sel == NULL)
				return NULL;
		} else if ((ctx->flags & MIME_PART_MESSAGE) && n == 1) {
			sel = ctx;
		} else {
			return NULL;
		}
		if (*s == '\0')
			return sel;
		if (*s++ != '.')
			return NULL;
		if (sel->flags & MIME_PART_MULTIPART)
			ctx = sel;
		else if ((sel->flags & MIME_PART_HAS_MESSAGE) && sel->children != NULL)
			ctx = sel->children;
		else
			return NULL;
	}
}

/* The number that the sub-parts of ctx are counted under ("" for the root). */
static int prefix_number(const struct mime_part *ctx, struct buf *out)
{
	if (ctx->parent == NULL)
		return 0;
	if (ctx->flags & MIME_PART_MESSAGE)
		return mime_part_number(ctx->parent, out);
	return mime_part_number(ctx, out);
}

int mime_part_number(const struct mime_part *part, struct buf *out)
{
	if (part->flags & MIME_PART_MESSAGE) {
		if (part->flags & MIME_PART_MULTIPART)
			return prefix_number(part, out);
		/* a non-multipart message's body is its part 1 */
		if (prefix_number(part, out) < 0)
			return -1;
		return buf_append_str(out, part->parent == NULL ? "1" : ".1");
	}
	const struct mime_part *parent = part->parent;
	unsigned int index = 1;
	for (const struct mime_part *c = parent->children; c != part; c = c->next)
		index++;
	if (prefix_number(parent, out) < 0)
		return -1;
	if (parent->parent == NULL)
		return buf_printf(out, "%u", index);
	return buf_printf(out, ".%u", index);
}
