/* conf-private.h — shared by the files of conf/ only. */
#ifndef WARREN_CONF_PRIVATE_H
#define WARREN_CONF_PRIVATE_H

#include "conf/conf.h"
#include "common/buf.h"
#include "common/pool.h"

#include <confuse.h>

/* Bytes of error text collected before further errors are dropped. */
#define CONF_ERRORS_MAX (64 * 1024)
/* Nesting of { } blocks followed when checking that every block is closed. */
#define CONF_BLOCK_DEPTH_MAX 64
/* include() calls per load: stops include loops. */
#define CONF_INCLUDES_MAX 10000

struct conf_location;
struct conf_file_lines;

struct conf_load_ctx {
	char *path;                     /* absolute main file */
	unsigned flags;
	struct pool *pool;              /* the snapshot's pool while building */
	struct buf errors;
	unsigned n_errors;
	unsigned includes;
	struct conf_location *locations;      /* where each value was read */
	struct conf_file_lines *files;        /* file texts, for section lines */
	char **included;                      /* every file include() read */
	size_t n_included;
	const char *root;                     /* files are read below root (conf_load_from) */
};

/* A file name as libConfuse saw it, without the copy's root (conf_load_from):
 * what messages show and what relative paths are resolved against. */
const char *conf_shown_path(const struct conf_load_ctx *ctx, const char *filename);

void conf_error_at(struct conf_load_ctx *ctx, const char *file, int line,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

int conf_parse_size(const char *s, long long *value_r);
int conf_parse_duration(const char *s, int unit_ms, long long *value_r);

/* Remembers where key of section cfg was read (called as values are parsed). */
void conf_note_location(struct conf_load_ctx *ctx, cfg_t *cfg, const char *key);
/* The file:line of a key noted above; 0 when it was never written. */
int conf_key_location(struct conf_load_ctx *ctx, cfg_t *cfg, const char *key,
		      const char **file_r, int *line_r);
/* The line where a block starts ("keyword title {"); libConfuse only knows the
 * line where it ends. */
int conf_section_line(struct conf_load_ctx *ctx, cfg_t *sec, const char *keyword);
/* The file's own line number for a line number libConfuse reported in it. */
int conf_real_line(struct conf_load_ctx *ctx, const char *path, int confuse_line);
void conf_locations_free(struct conf_load_ctx *ctx);

/* Checks the files themselves (every block closed). */
void conf_check_files(struct conf_load_ctx *ctx);
/* Checks across values (duplicates, references, required keys) after copying. */
void conf_check(struct conf_load_ctx *ctx, cfg_t *root, struct warren_config *conf);
/* Checks the content filter rules and compiles their patterns into the snapshot's
 * pool (conf-filter.c). */
void conf_filters_check(struct conf_load_ctx *ctx, struct warren_config *conf);
/* Loads the certificates into conf->tls_server. */
void conf_build_tls(struct conf_load_ctx *ctx, struct warren_config *conf);
/* Makes conf a snapshot with one reference, owning pool. */
void conf_snapshot_init(struct warren_config *conf, struct pool *pool);
/* Allocates the snapshot header and config together in pool. */
struct warren_config *conf_snapshot_alloc(struct pool *pool);

#endif
