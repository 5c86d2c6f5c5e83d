/* mime.h — RFC 5322 / MIME message structure, parsed once when a message is delivered.
 *
 * The streaming parser (mime_parser_*) takes a message in chunks of any size and builds a
 * tree of parts with exact byte offsets, sizes and line counts, the MIME header fields IMAP
 * needs for BODYSTRUCTURE, and the raw envelope fields of every message (the top one and
 * each message/rfc822 or message/global part). The tree is serialized (mime_serialize) into
 * the store beside the message, so FETCH BODYSTRUCTURE / ENVELOPE / BODY[section]<partial> /
 * BINARY and SEARCH never reparse: they slice the message blob with the offsets.
 *
 * Decisions (RFC 2045/2046/5322 and what Dovecot and Cyrus do where the RFCs are silent):
 * - Memory is bounded by struct mime_limits, never by the message: bodies are never
 *   buffered, a header field keeps at most max_field_size bytes in the parsed view (the
 *   offsets stay exact), the kept header text of the whole tree is capped, and so are the
 *   number of parts and the nesting depth.
 * - Lines end at LF; a CR right before the LF belongs to the line end. Bare-LF messages get
 *   the same structure; the *_vsize fields give sizes as if every line ended in CRLF.
 * - A header block ends at the first empty line. When the first line of a header block is
 *   not a header field at all (no "name:"), the part has no header (MIME_PART_NO_HEADER)
 *   and its body starts at that line. Later junk lines stay in the header and are ignored.
 * - Multipart boundaries (RFC 2046 5.1.1): a line that starts with "--" boundary is a
 *   delimiter line, whatever follows (the RFC's "prefix" rule); "--" boundary "--" closes.
 *   When several open multiparts match, the longest boundary wins (the innermost on a tie).
 *   The line end before a delimiter line belongs to the delimiter. An outer boundary closes
 *   every part nested inside it. Preamble and epilogue belong to the multipart's body but
 *   to none of its children. A missing closing delimiter ends the parts at the end of the
 *   data (MIME_PART_NO_CLOSE). A multipart whose boundary never occurs has no children
 *   (IMAP writes a 0-length text/plain for it, as Dovecot does).
 * - A missing Content-Type means text/plain; charset=us-ascii (message/rfc822 inside
 *   multipart/digest). A syntactically invalid one, or a multipart without a usable
 *   boundary, means text/plain; charset=us-ascii (RFC 2045 5.2), flagged MIME_PART_BAD_TYPE.
 * - A multipart, message/rfc822 or message/global part that cannot get children — deeper
 *   than max_depth, beyond max_parts, or a message/ part with a Content-Transfer-Encoding
 *   other than 7bit/8bit/binary — is an opaque text/plain body (MIME_PART_OPAQUE) with its
 *   own parameters kept. So a "multipart" part always has MIME_PART_MULTIPART and a
 *   "message/rfc822|global" part always has exactly one child.
 * - Duplicate fields: the first one counts. NUL bytes in kept header values become U+FFFD.
 *
 * Part numbers are IMAP's (RFC 3501 6.4.5): the body of a non-multipart message is part 1;
 * the children of a multipart are numbered from 1 under it; a message/rfc822 part's
 * encapsulated message takes the place of its body, so "2.1" is the first child of the
 * multipart message inside part 2, or that message's body when it is not multipart.
 */
#ifndef WARREN_MIME_H
#define WARREN_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct pool;

/* ---- limits ---- */

/* Nesting levels (the top message is level 0); RFC 2046 sets none, Dovecot uses 100. */
#define MIME_DEFAULT_MAX_DEPTH 100
/* Parts in one message, counting every message and multipart (Dovecot: 10000). */
#define MIME_DEFAULT_MAX_PARTS 10000
/* Bytes of one header field (name, colon, value, folds) kept for parsing. */
#define MIME_DEFAULT_MAX_FIELD_SIZE (64 * 1024)
/* Bytes of unfolded header values kept over the whole tree. */
#define MIME_DEFAULT_MAX_KEPT_SIZE (1024 * 1024)
/* Hard caps: limits above them are lowered to them; the deserializer enforces them. */
#define MIME_MAX_DEPTH_LIMIT 1000
#define MIME_MAX_PARTS_LIMIT 1000000
#define MIME_MAX_FIELD_SIZE_LIMIT (1024 * 1024)
/* Longest boundary recognised; RFC 2046 allows 70, real mail sometimes has more. */
#define MIME_BOUNDARY_MAX 200

struct mime_limits {
	unsigned int max_depth;		/* 0: MIME_DEFAULT_MAX_DEPTH */
	unsigned int max_parts;		/* 0: MIME_DEFAULT_MAX_PARTS */
	size_t max_field_size;		/* 0: MIME_DEFAULT_MAX_FIELD_SIZE */
	size_t max_kept_size;		/* 0: MIME_DEFAULT_MAX_KEPT_SIZE */
};

/* ---- the parse tree (read-only for users) ---- */

enum mime_part_flags {
	MIME_PART_MESSAGE	= 1 << 0,  /* a message: the root, or the child of a message/ part;
					      has an envelope */
	MIME_PART_MULTIPART	= 1 << 1,  /* children are the multipart's body parts */
	MIME_PART_HAS_MESSAGE	= 1 << 2,  /* message/rfc822|global: one child, the message */
	MIME_PART_DEFAULT_TYPE	= 1 << 3,  /* no Content-Type: the type is the default */
	MIME_PART_BAD_TYPE	= 1 << 4,  /* invalid Content-Type, replaced by text/plain */
	MIME_PART_OPAQUE	= 1 << 5,  /* composite type not parsed (see above), text/plain */
	MIME_PART_NO_HEADER	= 1 << 6,  /* first line was no header field: empty header */
	MIME_PART_HEADER_UNTERMINATED = 1 << 7, /* header ended by a boundary or the end of data */
	MIME_PART_NO_CLOSE	= 1 << 8,  /* multipart without closing delimiter */
	MIME_PART_TRUNCATED	= 1 << 9,  /* a kept header value was cut at a limit */
	MIME_PART_HEADER_8BIT	= 1 << 10, /* bytes >= 0x80 in the header */
	MIME_PART_HEADER_NUL	= 1 << 11, /* NUL bytes in the header */
	MIME_PART_BODY_8BIT	= 1 << 12, /* bytes >= 0x80 in the body */
	MIME_PART_BODY_NUL	= 1 << 13, /* NUL bytes in the body (BINARY needs literal8) */
	/* set on the root only: a limit was reached somewhere in the message */
	MIME_PART_LIMIT_PARTS	= 1 << 14, /* max_parts: the rest stayed in one part */
	MIME_PART_LIMIT_KEPT	= 1 << 15, /* max_kept_size: header values were cut */
	MIME_PART_LIMIT_DEPTH	= 1 << 16, /* max_depth: some parts are opaque */
};
#define MIME_PART_ALL_FLAGS ((1u << 17) - 1)

enum mime_param_flags {
	MIME_PARAM_EXTENDED	= 1 << 0,  /* came in RFC 2231 syntax (name*=, name*0*=) */
	MIME_PARAM_RAW		= 1 << 1,  /* charset unknown: value holds the undecoded bytes */
};
#define MIME_PARAM_ALL_FLAGS 3u

struct mime_param {
	const char *name;	/* lower-case, without RFC 2231 "*" suffixes */
	const char *value;	/* UTF-8: continuations joined, RFC 2231 charset and RFC 2047
				   encoded words decoded; "boundary" is kept byte for byte */
	const char *charset;	/* RFC 2231 charset as written, or NULL */
	const char *language;	/* RFC 2231 language, or NULL */
	unsigned int flags;	/* enum mime_param_flags */
};

/* Raw envelope fields of a message: unfolded, trimmed, not decoded; NULL when absent. */
struct mime_envelope {
	const char *date;
	const char *subject;
	const char *from;
	const char *sender;
	const char *reply_to;
	const char *to;
	const char *cc;
	const char *bcc;
	const char *in_reply_to;
	const char *message_id;
};

struct mime_part {
	struct mime_part *parent;
	struct mime_part *children;	/* first child */
	struct mime_part *next;		/* next sibling */
	unsigned int child_count;
	unsigned int depth;		/* 0 for the root */
	unsigned int flags;		/* enum mime_part_flags */

	/* Byte offsets in the whole message; body_offset = header_offset + header_size.
	   The header includes the empty line that ends it. *_vsize: the size with every
	   bare LF counted as CRLF. body_lines: LF characters in the body. */
	uint64_t header_offset, header_size, header_vsize;
	uint64_t body_offset, body_size, body_vsize, body_lines;

	const char *type, *subtype;	/* lower-case, never NULL */
	const struct mime_param *params;
	unsigned int param_count;
	const char *id;			/* Content-ID, raw */
	const char *description;	/* Content-Description, raw */
	const char *encoding;		/* Content-Transfer-Encoding, lower-case; "7bit" default */
	const char *disposition;	/* Content-Disposition type, lower-case, or NULL */
	const struct mime_param *disposition_params;
	unsigned int disposition_param_count;
	const char *language;		/* Content-Language, raw */
	const char *location;		/* Content-Location, raw */
	const char *md5;		/* Content-MD5, raw */

	const struct mime_envelope *envelope;	/* for MIME_PART_MESSAGE parts, else NULL */
};

/* Size of a part in the message (header and body), as stored and CRLF-normalised. */
static inline uint64_t mime_part_size(const struct mime_part *part)
{
	return part->header_size + part->body_size;
}
static inline uint64_t mime_part_vsize(const struct mime_part *part)
{
	return part->header_vsize + part->body_vsize;
}

/* ---- streaming parser ---- */

/* The whole message is the root part (MIME_PART_MESSAGE, no parent, depth 0); its size
 * is mime_part_size(root). */
struct mime_parser;

/* Starts a parse with the default limits, or with limits (NULL or 0 fields: defaults).
 * The parser and the tree live in pool: nothing else to free, even when a parse is
 * abandoned half-way. The parser takes about max_field_size bytes of it up front. */
struct mime_parser *mime_parser_new(struct pool *pool);
struct mime_parser *mime_parser_new_limits(struct pool *pool, const struct mime_limits *limits);
/* Feeds the next len bytes of the message. Any chunking gives the same tree. */
void mime_parser_feed(struct mime_parser *parser, const void *data, size_t len);
/* Ends the message, closes every open part and returns the root. Never fails: every byte
 * sequence is a message. The parser must not be used afterwards. */
struct mime_part *mime_parser_finish(struct mime_parser *parser);
/* One-shot: parses a message held in memory (limits may be NULL). */
struct mime_part *mime_parse(struct pool *pool, const void *data, size_t len,
			     const struct mime_limits *limits);

/* ---- walking the tree ---- */

/* The part for an IMAP section number ("1", "1.2", "2.1.3"); "" is the root (the whole
 * message). NULL when there is no such part or the string is not dots and numbers. */
const struct mime_part *mime_part_find(const struct mime_part *root, const char *section);
/* Appends the IMAP section number of part to out ("" for a multipart root, the number of
 * the enclosing message/rfc822 part for a multipart message inside one). -1 when out is
 * full. mime_part_find() of the result gives part back, except in those two cases. */
int mime_part_number(const struct mime_part *part, struct buf *out);
/* The next part in depth-first order (children first), NULL after the last. */
const struct mime_part *mime_part_next(const struct mime_part *part);
/* The envelope that BODYSTRUCTURE shows for part: that of the message inside a message/
 * part, else a message part's own, else NULL. (FETCH ENVELOPE is root->envelope.) */
const struct mime_envelope *mime_part_envelope(const struct mime_part *part);
/* The value of a Content-Type parameter (name in lower case), or NULL. */
const char *mime_part_param(const struct mime_part *part, const char *name);

/* ---- serialization (the form cached in the store) ---- */

/* Appends the tree's compact binary form to out; -1 when out's maximum is reached. */
int mime_serialize(const struct mime_part *root, struct buf *out);
/* Rebuilds a tree from mime_serialize() output that came from disk: checks the format
 * version, the checksum, every length, offset (within the message), count and depth, and
 * fails with *error_r on anything wrong. The tree and any partial allocations live in
 * pool. Callers should also compare mime_part_size(root) with the message blob's size. */
int mime_deserialize(struct pool *pool, const void *data, size_t len,
		     struct mime_part **root_r, const char **error_r);

/* ---- header utilities ---- */

/* One field of a raw header block. */
struct mime_field {
	const char *name;	/* the field name (not NUL-terminated), trailing blanks cut */
	size_t name_len;
	const char *value;	/* raw value after the colon: folded, up to the final line end */
	size_t value_len;
	size_t offset;		/* the field's first byte in the header block */
	size_t size;		/* the whole field with its final line end */
	bool has_colon;		/* false for a junk line: then name is the line, value empty */
};

struct mime_header_iter {
	const char *data;
	size_t len, pos;
};

/* Walks the fields of a header block (header_size bytes at header_offset); stops at the
 * empty line that ends it or at len. */
void mime_header_iter_init(struct mime_header_iter *iter, const void *header, size_t len);
bool mime_header_iter_next(struct mime_header_iter *iter, struct mime_field *field_r);
/* The first field named name (case-insensitive) of a header block. */
bool mime_header_find(const void *header, size_t len, const char *name,
		      struct mime_field *field_r);
/* Appends value unfolded: line breaks removed (RFC 5322 2.2.3), leading and trailing blanks
 * cut, NUL bytes replaced by U+FFFD. -1 when out is full. */
int mime_header_unfold(const char *value, size_t len, struct buf *out);
/* Appends value decoded to UTF-8 for display and SEARCH: unfolded, RFC 2047 encoded words
 * (B and Q) decoded, blanks between adjacent encoded words dropped, encoded words with an
 * unknown charset left as they are; raw 8-bit text kept when it is UTF-8, else read as
 * windows-1252. The result is always valid UTF-8. -1 when out is full. */
int mime_header_decode(const char *value, size_t len, struct buf *out);
/* Undoes a part's Content-Transfer-Encoding ("base64", "quoted-printable"; NULL,
 * 7bit, 8bit and binary are copied) leniently, as readers do: junk characters in
 * base64 are skipped, a bad "=XX" stays as it is. Returns -1 (data copied as it
 * is) for an encoding it does not know or when out is full. */
int mime_decode_transfer(const char *encoding, const void *data, size_t len, struct buf *out);
/* The same, into a NUL-terminated string from pool. */
const char *mime_header_decode_str(struct pool *pool, const char *value, size_t len);

/* Appends data in charset converted to UTF-8, invalid input replaced by U+FFFD. Built in:
 * us-ascii, utf-8, iso-8859-1, iso-8859-15, windows-1252 and their aliases (iso-8859-1 and
 * 8-bit us-ascii are read as windows-1252, as browsers do); others through iconv(3). A
 * NULL or empty charset means raw text (UTF-8 when valid, else windows-1252). Returns -1
 * with *error_r when the charset is unknown (nothing appended) or out is full. */
int mime_charset_to_utf8(const char *charset, const void *data, size_t len, struct buf *out,
			 const char **error_r);
bool mime_charset_is_known(const char *charset);

/* ---- addresses (RFC 5322 3.4, as IMAP ENVELOPE wants them) ---- */

enum mime_address_flags {
	MIME_ADDRESS_INVALID = 1 << 0,	/* (output) the address was repaired from junk */
};

/* One address: a mailbox (mailbox and host set), a group start (mailbox is the group
 * name, host NULL) or a group end (mailbox and host NULL). Strings are raw: quoted strings
 * unquoted, comments dropped, encoded words not decoded (use mime_header_decode). */
struct mime_address {
	struct mime_address *next;
	const char *name;	/* display name, or the comment of "addr (Name)"; or NULL */
	const char *route;	/* obsolete source route "@a,@b", or NULL */
	const char *mailbox;	/* local part (quoted if it needs quotes) */
	const char *host;	/* domain */
	unsigned int flags;	/* enum mime_address_flags */
};

/* Parses an address-list (From, To, Cc, ...) leniently: never fails, junk becomes the
 * closest address, a mailbox without a domain gets host "MISSING_DOMAIN" and one without a
 * local part "MISSING_MAILBOX" (as Dovecot does, since a NIL host would mean a group),
 * an unclosed group is closed. NULL for an empty list. */
struct mime_address *mime_address_parse(struct pool *pool, const char *value, size_t len);

#endif
