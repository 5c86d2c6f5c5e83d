/* pool.h — arenas tied to a lifetime (a config snapshot, a connection, a command).
 *
 * Everything allocated from a pool is freed at once by pool_free(). Allocations are
 * zeroed and aligned for any type. Allocation failure aborts the process (like
 * Dovecot's pools): out-of-memory is not a recoverable condition for a mail daemon.
 */
#ifndef WARREN_POOL_H
#define WARREN_POOL_H

#include <stddef.h>

struct pool;

/* A new pool whose blocks are at least block_size bytes (0: a default of 4 KiB). */
struct pool *pool_new(size_t block_size);
/* Frees the pool and everything in it; clears *pool. NULL is allowed. */
void pool_free(struct pool **pool);

void *pool_alloc(struct pool *pool, size_t size);
char *pool_strdup(struct pool *pool, const char *s);
char *pool_strndup(struct pool *pool, const char *s, size_t len);
char *pool_printf(struct pool *pool, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Bytes handed out so far (for memory accounting in tests and benchmarks). */
size_t pool_used(const struct pool *pool);

/* malloc/calloc/realloc/strdup that abort on failure. */
void *x_malloc(size_t size);
void *x_calloc(size_t n, size_t size);
void *x_realloc(void *p, size_t size);
char *x_strdup(const char *s);
char *x_strndup(const char *s, size_t len);
/* free(*p) and clear the caller's pointer. */
#define x_free(pp) do { free(*(pp)); *(pp) = NULL; } while (0)

#endif
