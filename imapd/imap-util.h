/* imap-util.h — IMAP data formats: modified UTF-7 mailbox names, strings on the
 * wire, sequence sets, flags and dates (private to imapd/). */
#ifndef WARREN_IMAP_UTIL_H
#define WARREN_IMAP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct buf;
struct imap_arg;
struct imap_selected;

/* ---- modified UTF-7 (RFC 3501 5.1.3) ---- */
/* Decodes a mailbox name from modified UTF-7 to UTF-8. -1 when malformed. */
int imap_utf7_to_utf8(const char *in, struct buf *out);
/* Encodes UTF-8 to modified UTF-7. -1 when in is not valid UTF-8. */
int imap_utf8_to_utf7(const char *in, struct buf *out);

/* ---- strings on the wire ---- */
/* Appends s as an atom when it can be one, else quoted, else a literal. */
void imap_append_astring(struct buf *out, const char *s, size_t len);
/* Quoted string or literal (never an atom); NIL for NULL. */
void imap_append_nstring(struct buf *out, const char *s);
void imap_append_nstring_len(struct buf *out, const char *s, size_t len);
/* A literal of len bytes: "{len}\r\n" data. */
void imap_append_literal(struct buf *out, const void *data, size_t len);

/* ---- sequence sets ---- */
#define IMAP_SEQSET_RANGES_MAX 1000000

struct imap_range {
	uint32_t lo, hi;
};

struct imap_seqset {
	struct imap_range *ranges;   /* malloc'ed, sorted, merged */
	size_t count;
};

/* Parses "1:5,7,9:*" with star as the value of "*". -1 when malformed. */
int imap_seqset_parse(const char *text, uint32_t star, struct imap_seqset *set);
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t value);
void imap_seqset_free(struct imap_seqset *set);
/* Syntax check only (sequence sets and "$"). */
bool imap_seqset_valid(const char *text);
/* Sorts UIDs ascending. */
void imap_sort_uids(uint32_t *uids, size_t count);
/* Sorted ascending UIDs as a compact set "1:3,7". */
void imap_append_uidset(struct buf *out, const uint32_t *uids, size_t count);
/* The 0-based indexes of sel's messages the set names (by UID or by sequence
 * number; "$" names the saved search result, RFC 5182); malloc'ed array. */
size_t imap_seqset_select(const struct imap_selected *sel, const char *text, bool uid,
			  size_t **idx_r, int *error_r);

/* The index of the message with uid in sel, or -1. */
long imap_selected_find_uid(const struct imap_selected *sel, uint32_t uid);
/* Replaces sel's saved search result (SEARCHRES) with count UIDs, ascending. */
void imap_selected_save(struct imap_selected *sel, const uint32_t *uids, size_t count);

/* ---- flags ---- */
/* Parses a flag list or a single flag into system flags and keywords (a
 * space-separated string of at most size bytes). -1 when a flag is invalid. */
int imap_parse_flags(const struct imap_arg *args, size_t n, unsigned *flags_r,
		     char *keywords, size_t size, const char **error_r);
/* Keyword k is in the space-separated list. */
bool imap_keyword_in(const char *keywords, const char *k, size_t klen);

/* ---- dates ---- */
/* "01-Jan-2024 10:00:00 +0000" */
void imap_format_datetime(int64_t t, char *out, size_t size);
int imap_parse_datetime(const char *text, int64_t *t_r);
/* "1-Jan-2024" (SEARCH): the day's start in UTC. */
int imap_parse_date(const char *text, int64_t *t_r);

/* ---- mailbox names ---- */
/* The store's name for a mailbox name from the client: modified UTF-7 decoded
 * (unless utf8), "INBOX" in any case made "INBOX", a trailing "/" cut. -1 when
 * invalid. */
int imap_mailbox_from_client(const char *name, bool utf8, char *out, size_t size);
/* Appends a store name as the client sees it (astring). */
void imap_append_mailbox(struct buf *out, const char *name, bool utf8);

#endif
