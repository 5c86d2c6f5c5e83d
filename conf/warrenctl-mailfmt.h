/* warrenctl-mailfmt.h — private to warrenctl's import and export: what maildir
 * and mbox files say about a message (flags, keywords, folder names) and the
 * line-ending conversions between them and the store (which keeps CRLF). */
#ifndef WARREN_WARRENCTL_MAILFMT_H
#define WARREN_WARRENCTL_MAILFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Maildir keeps keywords as the letters a..z, numbered in the folder's
 * dovecot-keywords file ("0 $Forwarded"). */
#define MAILFMT_KEYWORDS_MAX 26
/* Longest keyword name kept. */
#define MAILFMT_KEYWORD_LEN 128

struct mailfmt_keywords {
	char names[MAILFMT_KEYWORDS_MAX][MAILFMT_KEYWORD_LEN];
	size_t count;
};

/* Reads DIR/dovecot-keywords into kw (empty when the file is missing). -1 with a
 * message printed when it is malformed. */
int mailfmt_keywords_read(const char *dir, struct mailfmt_keywords *kw);
/* Writes kw to DIR/dovecot-keywords (nothing when empty). */
int mailfmt_keywords_write(const char *dir, const struct mailfmt_keywords *kw);
/* The letter of a keyword, adding it to kw; 0 when kw is full. */
char mailfmt_keyword_letter(struct mailfmt_keywords *kw, const char *name);

/* Flags (STORE_FLAG_*) and keywords (space-separated, into kwbuf) from a maildir
 * file name's ":2,FLAGS" part; P (passed) becomes the keyword $Forwarded. */
unsigned mailfmt_maildir_flags(const char *filename, const struct mailfmt_keywords *kw,
			       char *kwbuf, size_t kwsize);
/* The ":2,FLAGS" suffix for flags and keywords (letters in ASCII order); keywords
 * that do not fit kw are dropped (*dropped_r counts them). */
void mailfmt_maildir_info(unsigned flags, const char *keywords, struct mailfmt_keywords *kw,
			  char *out, size_t size, unsigned *dropped_r);

/* Maildir++ folder names: the store's "a/b" is the directory ".a.b"; "." and "%"
 * inside a name are written %2E and %25. dir_r gets the directory name below the
 * root (with its leading dot), name_r the folder name. -1 when it does not fit. */
int mailfmt_folder_to_dir(const char *name, char *dir_r, size_t size);
int mailfmt_dir_to_folder(const char *dir, char *name_r, size_t size);

/* Adds a keyword to a space-separated list (no duplicates, bounded by size). */
void mailfmt_add_keyword(char *list, size_t size, const char *word, size_t len);

/* A growable byte buffer with a hard maximum. */
struct mailfmt_buf {
	char *data;
	size_t len, cap, max;
};
/* -1 when the buffer would pass its maximum (or memory runs out). */
int mailfmt_buf_add(struct mailfmt_buf *b, const void *data, size_t len);
void mailfmt_buf_free(struct mailfmt_buf *b);
/* Appends len bytes of LF (or CRLF) text as CRLF text: every bare LF becomes CRLF. */
int mailfmt_buf_add_crlf(struct mailfmt_buf *b, const char *s, size_t len);

/* The mbox "From " line's date (asctime layout, UTC); -1 when it is not one. */
int mailfmt_parse_asctime(const char *s, int64_t *t_r);
void mailfmt_format_asctime(int64_t t, char *out, size_t size);

/* Writes a whole file durably: into a temporary name in the same folder,
 * fsynced, its times set to mtime (when not 0), renamed to path. */
int mailfmt_write_file(const char *tmp, const char *path, const void *data, size_t len,
		       int64_t mtime, const char **error_r);
/* fsyncs a folder (after renames into it). */
int mailfmt_fsync_dir(const char *dir);

#endif
