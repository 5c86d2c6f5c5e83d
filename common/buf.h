/* buf.h — the one growable byte buffer, with a hard maximum.
 *
 * Used instead of char[N] for anything whose size comes from input. Appends that
 * would pass the maximum fail with -1 and leave the buffer unchanged. Consumed
 * bytes at the front are dropped lazily (an offset), so reading a buffer line by
 * line costs no memmove per line.
 */
#ifndef WARREN_BUF_H
#define WARREN_BUF_H

#include <stddef.h>
#include <stdarg.h>

struct buf {
	char *data;    /* allocation; valid bytes are data[start .. end) */
	size_t start;
	size_t end;
	size_t cap;
	size_t max;    /* hard limit on the valid bytes (end - start) */
};

#define BUF_INIT(max_) { NULL, 0, 0, 0, (max_) }

void buf_init(struct buf *b, size_t max);
/* Frees the memory; the buffer stays usable (empty). */
void buf_free(struct buf *b);

static inline size_t buf_len(const struct buf *b) { return b->end - b->start; }
static inline const char *buf_data(const struct buf *b) { return b->data + b->start; }
static inline size_t buf_room(const struct buf *b) { return b->max - buf_len(b); }

int buf_append(struct buf *b, const void *data, size_t len);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Drops n bytes from the front. */
void buf_consume(struct buf *b, size_t n);
void buf_clear(struct buf *b);
/* Returns a NUL-terminated view of the contents (the NUL is not counted). */
const char *buf_cstr(struct buf *b);
/* Makes room for len more bytes and returns where to write them; buf_commit
 * then counts them. NULL when len passes the maximum. */
char *buf_reserve(struct buf *b, size_t len);
void buf_commit(struct buf *b, size_t len);

#endif
