#include "common/buf.h"
#include "common/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->start = b->end = b->cap = 0;
}

char *buf_reserve(struct buf *b, size_t len)
{
	if (len > buf_room(b))
		return NULL;
	if (b->cap - b->end >= len + 1)
		return b->data + b->end;
	size_t used = buf_len(b);
	if (b->start > 0) {
		/* drop the consumed front before growing */
		memmove(b->data, b->data + b->start, used);
		b->start = 0;
		b->end = used;
		if (b->cap - b->end >= len + 1)
			return b->data + b->end;
	}
	size_t need = used + len + 1, cap = b->cap != 0 ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->data = x_realloc(b->data, cap);
	b->cap = cap;
	return b->data + b->end;
}

void buf_commit(struct buf *b, size_t len)
{
	b->end += len;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	char *p = buf_reserve(b, len);
	if (p == NULL)
		return -1;
	memcpy(p, data, len);
	b->end += len;
	return 0;
}

int buf_append_str(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return -1;
	char *p = buf_reserve(b, (size_t)n);
	if (p == NULL)
		return -1;
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	b->end += (size_t)n;
	return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int ret = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return ret;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= buf_len(b)) {
		b->start = b->end = 0;
		return;
	}
	b->start += n;
}

void buf_clear(struct buf *b)
{
	b->start = b->end = 0;
}

const char *buf_cstr(struct buf *b)
{
	/* buf_reserve() always keeps one spare byte after the end for this NUL */
	if (b->data == NULL)
		return "";
	b->data[b->end] = '\0';
	return b->data + b->start;
}
