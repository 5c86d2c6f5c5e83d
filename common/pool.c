#include "common/pool.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_ALIGN 16
#define POOL_DEFAULT_BLOCK 4096

struct pool_block {
	struct pool_block *next;
	size_t size, used;
	_Alignas(POOL_ALIGN) unsigned char data[];
};

struct pool {
	struct pool_block *blocks;
	size_t block_size;
	size_t total;
};

static void oom(void)
{
	static const char msg[] = "fatal: out of memory\n";
	size_t r = fwrite(msg, 1, sizeof(msg) - 1, stderr);
	(void)r;
	abort();
}

void *x_malloc(size_t size)
{
	void *p = malloc(size == 0 ? 1 : size);
	if (p == NULL)
		oom();
	return p;
}

void *x_calloc(size_t n, size_t size)
{
	void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);
	if (p == NULL)
		oom();
	return p;
}

void *x_realloc(void *p, size_t size)
{
	void *q = realloc(p, size == 0 ? 1 : size);
	if (q == NULL)
		oom();
	return q;
}

char *x_strdup(const char *s)
{
	char *p = strdup(s);
	if (p == NULL)
		oom();
	return p;
}

char *x_strndup(const char *s, size_t len)
{
	char *p = x_malloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

struct pool *pool_new(size_t block_size)
{
	struct pool *pool = x_calloc(1, sizeof(*pool));
	pool->block_size = block_size != 0 ? block_size : POOL_DEFAULT_BLOCK;
	return pool;
}

void pool_free(struct pool **poolp)
{
	struct pool *pool = *poolp;
	if (pool == NULL)
		return;
	struct pool_block *b = pool->blocks;
	while (b != NULL) {
		struct pool_block *next = b->next;
		free(b);
		b = next;
	}
	free(pool);
	*poolp = NULL;
}

void *pool_alloc(struct pool *pool, size_t size)
{
	if (size > SIZE_MAX - POOL_ALIGN)
		oom();
	size = (size + POOL_ALIGN - 1) & ~(size_t)(POOL_ALIGN - 1);
	struct pool_block *b = pool->blocks;
	if (b == NULL || b->size - b->used < size) {
		size_t bsize = size > pool->block_size ? size : pool->block_size;
		b = x_malloc(sizeof(*b) + bsize);
		b->size = bsize;
		b->used = 0;
		/* a large one-off block goes behind the current one so that the
		 * remaining room of the current block stays usable */
		if (size > pool->block_size && pool->blocks != NULL) {
			b->next = pool->blocks->next;
			pool->blocks->next = b;
		} else {
			b->next = pool->blocks;
			pool->blocks = b;
		}
	}
	void *p = b->data + b->used;
	b->used += size;
	pool->total += size;
	memset(p, 0, size);
	return p;
}

char *pool_strndup(struct pool *pool, const char *s, size_t len)
{
	char *p = pool_alloc(pool, len + 1);
	if (len > 0)   /* s may be NULL for an empty string */
		memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *pool_strdup(struct pool *pool, const char *s)
{
	return s == NULL ? NULL : pool_strndup(pool, s, strlen(s));
}

char *pool_printf(struct pool *pool, const char *fmt, ...)
{
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	char *p = pool_alloc(pool, (size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	return p;
}

size_t pool_used(const struct pool *pool)
{
	return pool->total;
}
