/* imap-parser.h — IMAP command arguments (RFC 9051 / 3501 grammar).
 *
 * Two parts: the assembler gathers a whole command from the wire — lines and the
 * literals announced at their ends ({N}, {N+}) — into one buffer in wire format;
 * the parser turns that buffer into a tree of arguments whose strings are
 * NUL-terminated copies in a pool.
 */
#ifndef WARREN_IMAP_PARSER_H
#define WARREN_IMAP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pool;

/* Nesting of parenthesised lists accepted. */
#define IMAP_LIST_DEPTH_MAX 32
/* Arguments per command (elements of all lists together). */
#define IMAP_ARGS_MAX 100000

enum imap_arg_type {
	IMAP_ARG_ATOM,
	IMAP_ARG_QUOTED,
	IMAP_ARG_LITERAL,
	IMAP_ARG_NIL,
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_type type;
	const char *str;           /* ATOM/QUOTED/LITERAL: contents, NUL-terminated */
	size_t len;
	struct imap_arg *list;     /* LIST: elements */
	size_t n_list;
	bool literal8;             /* ~{N} (BINARY) */
};

/* Literal found at the end of a line: "{123}", "{123+}", "~{123}". */
struct imap_literal_info {
	uint64_t size;
	bool nonsync;              /* {N+}: the client does not wait for "+" */
};

/* Checks whether a command line (without CRLF) ends with a literal announcement.
 * Returns 1 and fills *info, 0 when not, -1 when the number is malformed or
 * overflows. */
int imap_line_literal(const char *line, size_t len, struct imap_literal_info *info);

/* Parses a complete command (tag, name, arguments) in wire format: lines joined
 * by CRLF with each literal's bytes after its announcement, without the final
 * CRLF. Everything returned lives in pool. Returns 0, or -1 with *error_r. */
int imap_parse_command(struct pool *pool, const char *data, size_t len,
		       const char **tag_r, const char **name_r,
		       struct imap_arg **args_r, size_t *n_args_r, const char **error_r);

/* The string value of an astring argument (atom, quoted or literal); NULL for
 * NIL and lists. */
const char *imap_arg_string(const struct imap_arg *arg);

/* A tag the RFC allows (ASTRING-CHAR except '+'). */
bool imap_valid_tag(const char *tag, size_t len);

#endif
