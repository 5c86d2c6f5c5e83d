/* conf.c — loading a configuration into a validated, immutable snapshot.
 *
 * libConfuse parses; the schema table (conf-schema.c) drives the option arrays, the
 * validation of each value where it is read (so errors carry file:line), and the
 * copy into the snapshot's structs, which live in one pool freed with the snapshot.
 */
#include "conf/conf.h"
#include "conf/conf-private.h"
#include "conf/conf-schema.h"
#include "common/auth.h"
#include "common/log.h"
#include "common/pool.h"
#include "common/tls.h"

#include <confuse.h>
#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* The load in progress. libConfuse's callbacks carry no user pointer, so the
 * callbacks reach the load through this; loads only happen on the main thread. */
static struct conf_load_ctx *current_load;

static unsigned long conf_generation;

/* ---- errors ---------------------------------------------------------------- */

void conf_error_at(struct conf_load_ctx *ctx, const char *file, int line,
		   const char *fmt, ...)
{
	va_list ap;
	if (buf_len(&ctx->errors) > CONF_ERRORS_MAX)
		return;
	if (file != NULL)
		buf_printf(&ctx->errors, "%s:%d: ", file, line);
	va_start(ap, fmt);
	buf_vprintf(&ctx->errors, fmt, ap);
	va_end(ap);
	buf_append(&ctx->errors, "\n", 1);
	ctx->n_errors++;
}

/* For libConfuse's "found duplicate title 'X'": where the first block titled X
 * in the section being parsed starts, so the admin is told of both. */
static int duplicate_first(struct conf_load_ctx *ctx, cfg_t *cfg, const char *msg,
			   const char **file_r, int *line_r)
{
	char title[256];
	if (sscanf(msg, "found duplicate title '%255[^']'", title) != 1 || cfg->opts == NULL)
		return 0;
	for (cfg_opt_t *opt = cfg->opts; opt->type != CFGT_NONE; opt++) {
		if (opt->type != CFGT_SEC || !(opt->flags & CFGF_TITLE))
			continue;
		cfg_t *first = cfg_gettsec(cfg, opt->name, title);
		if (first == NULL || first->filename == NULL)
			continue;
		*file_r = conf_shown_path(ctx, first->filename);
		*line_r = conf_section_line(ctx, first, opt->name);
		return 1;
	}
	return 0;
}

/* libConfuse's own messages: fmt is its printf format */
__attribute__((format(printf, 2, 0)))
static void confuse_errfunc(cfg_t *cfg, const char *fmt, va_list ap)
{
	struct conf_load_ctx *ctx = current_load;
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	const char *file = cfg != NULL && cfg->filename != NULL ?
		conf_shown_path(ctx, cfg->filename) : ctx->path;
	int line = cfg != NULL ? conf_real_line(ctx, file, cfg->line) : 0;
	const char *first_file = NULL;
	int first_line = 0;
	if (cfg != NULL && duplicate_first(ctx, cfg, msg, &first_file, &first_line))
		conf_error_at(ctx, file, line, "%s (also at %s:%d)", msg, first_file, first_line);
	else
		conf_error_at(ctx, file, line, "%s", msg);
}

/* ---- value parsing --------------------------------------------------------- */

/* "50M" → bytes. Suffixes k, M, G, T (powers of 1024), optional "B"/"iB". */
int conf_parse_size(const char *s, long long *value_r)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || v < 0)
		return -1;
	long long mult = 1;
	switch (tolower((unsigned char)*end)) {
	case '\0': break;
	case 'k': mult = 1024LL; end++; break;
	case 'm': mult = 1024LL * 1024; end++; break;
	case 'g': mult = 1024LL * 1024 * 1024; end++; break;
	case 't': mult = 1024LL * 1024 * 1024 * 1024; end++; break;
	case 'b': break;
	default: return -1;
	}
	if (strcasecmp(end, "") != 0 && strcasecmp(end, "b") != 0 && strcasecmp(end, "ib") != 0)
		return -1;
	if (v > LLONG_MAX / mult)
		return -1;
	*value_r = v * mult;
	return 0;
}

/* "5m" → 300 (unit_ms = 0) or 300000 (unit_ms = 1). */
int conf_parse_duration(const char *s, int unit_ms, long long *value_r)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || v < 0)
		return -1;
	long long ms;
	if (strcmp(end, "") == 0)
		ms = unit_ms ? v : v * 1000;
	else if (strcmp(end, "ms") == 0)
		ms = v;
	else if (strcmp(end, "s") == 0)
		ms = v * 1000;
	else if (strcmp(end, "m") == 0)
		ms = v * 60 * 1000;
	else if (strcmp(end, "h") == 0)
		ms = v * 3600 * 1000;
	else if (strcmp(end, "d") == 0)
		ms = v * 86400 * 1000;
	else
		return -1;
	if (v > LLONG_MAX / (86400LL * 1000))
		return -1;
	if (!unit_ms && ms % 1000 != 0)
		return -1;
	*value_r = unit_ms ? ms : ms / 1000;
	return 0;
}

static int enum_index(const char *const *choices, const char *s)
{
	for (int i = 0; choices[i] != NULL; i++)
		if (strcasecmp(choices[i], s) == 0)
			return i;
	return -1;
}

static void choices_text(const char *const *choices, char *out, size_t size)
{
	size_t o = 0;
	out[0] = '\0';
	for (int i = 0; choices[i] != NULL && o < size; i++)
		o += (size_t)snprintf(out + o, size - o, "%s%s", i == 0 ? "" : ", ", choices[i]);
}

/* ---- schema lookups ---------------------------------------------------------- */

static const struct conf_key_def *find_key(const struct conf_section_def *sec,
					   const char *section_name, const char *key)
{
	/* libConfuse names the top level "root" */
	if (sec == &conf_root_section && strcmp(section_name, "root") == 0)
		section_name = conf_root_section.name;
	for (const struct conf_key_def *k = sec->keys; k->name != NULL; k++) {
		if (k->section == NULL && strcmp(sec->name, section_name) == 0 &&
		    strcmp(k->name, key) == 0)
			return k;
	}
	for (const struct conf_key_def *k = sec->keys; k->name != NULL; k++) {
		if (k->section == NULL)
			continue;
		const struct conf_key_def *found = find_key(k->section, section_name, key);
		if (found != NULL)
			return found;
	}
	return NULL;
}

/* ---- per-value validation, called by libConfuse as each value is read ------- */

static int validate_number(cfg_t *cfg, const struct conf_key_def *key, const char *value)
{
	long long v;
	const char *what;
	int ret;
	switch (key->type) {
	case KEY_SIZE:
		ret = conf_parse_size(value, &v);
		what = "a size such as 512k, 50M or 2G";
		break;
	case KEY_DURATION:
		ret = conf_parse_duration(value, 0, &v);
		what = "a duration in whole seconds such as 30s, 5m, 4h or 5d";
		break;
	default:
		ret = conf_parse_duration(value, 1, &v);
		what = "a duration such as 500ms, 5s or 1m";
		break;
	}
	if (ret < 0) {
		cfg_error(cfg, "%s: \"%s\" is not %s", key->name, value, what);
		return -1;
	}
	if (v < key->min || v > key->max) {
		cfg_error(cfg, "%s: \"%s\" is out of range", key->name, value);
		return -1;
	}
	return 0;
}

static int validate_path(cfg_t *cfg, cfg_opt_t *opt, const char *value)
{
	if (value[0] == '\0') {
		cfg_error(cfg, "%s: empty file name", opt->name);
		return -1;
	}
	if (value[0] == '/')
		return 0;
	/* relative to the folder of the file this value is written in */
	const char *file = cfg->filename != NULL ?
		conf_shown_path(current_load, cfg->filename) : current_load->path;
	const char *slash = strrchr(file, '/');
	char abs[PATH_MAX];
	int n = snprintf(abs, sizeof(abs), "%.*s/%s", slash != NULL ? (int)(slash - file) : 1,
			 slash != NULL ? file : ".", value);
	if (n < 0 || (size_t)n >= sizeof(abs)) {
		cfg_error(cfg, "%s: file name too long", opt->name);
		return -1;
	}
	cfg_opt_setnstr(opt, abs, 0);
	return 0;
}

static int validate_key(cfg_t *cfg, cfg_opt_t *opt)
{
	const struct conf_key_def *key = find_key(&conf_root_section, cfg->name, opt->name);
	if (key == NULL || cfg_opt_size(opt) == 0)
		return 0;
	const char *value = key->type == KEY_INT || key->type == KEY_BOOL ?
		NULL : cfg_opt_getnstr(opt, 0);
	const char *err;
	char text[256];

	/* every value's location, for errors found after parsing */
	conf_note_location(current_load, cfg, opt->name);

	switch (key->type) {
	case KEY_INT: {
		long v = cfg_opt_getnint(opt, 0);
		if (v < key->min || v > key->max) {
			cfg_error(cfg, "%s: %ld is out of range (%lld..%lld)", key->name, v,
				  key->min, key->max);
			return -1;
		}
		return 0;
	}
	case KEY_SIZE:
	case KEY_DURATION:
	case KEY_DURATION_MS:
		return validate_number(cfg, key, value);
	case KEY_ENUM:
		if (enum_index(key->choices, value) < 0) {
			choices_text(key->choices, text, sizeof(text));
			cfg_error(cfg, "%s: \"%s\" is not one of %s", key->name, value, text);
			return -1;
		}
		return 0;
	case KEY_PATH:
		return validate_path(cfg, opt, value);
	case KEY_HASH:
		if (auth_hash_check_format(value, &err) < 0) {
			cfg_error(cfg, "%s: %s", key->name, err);
			return -1;
		}
		return 0;
	default:
		return 0;
	}
}

/* ---- include("FILE") with patterns, relative to the including file ---------- */

/* Records an included file; -1 when it was read before (an include loop, or the
 * same definitions twice). Refusing early also keeps libConfuse from recursing
 * until its own depth limit, whose error path leaks its lexer buffers. */
static int ctx_note_included(struct conf_load_ctx *ctx, const char *path)
{
	if (strcmp(ctx->path, path) == 0)
		return -1;
	for (size_t i = 0; i < ctx->n_included; i++)
		if (strcmp(ctx->included[i], path) == 0)
			return -1;
	ctx->included = x_realloc(ctx->included, (ctx->n_included + 1) * sizeof(char *));
	ctx->included[ctx->n_included++] = x_strdup(path);
	return 0;
}

static int conf_include(cfg_t *cfg, cfg_opt_t *opt, int argc, const char **argv)
{
	if (argc != 1) {
		cfg_error(cfg, "include() takes one file name");
		return 1;
	}
	char pattern[PATH_MAX];
	const char *file = cfg->filename != NULL ? cfg->filename : current_load->path;
	const char *slash = strrchr(file, '/');
	if (argv[0][0] == '/')
		snprintf(pattern, sizeof(pattern), "%s", argv[0]);
	else
		snprintf(pattern, sizeof(pattern), "%.*s/%s", (int)(slash - file), file, argv[0]);

	if (++current_load->includes > CONF_INCLUDES_MAX) {
		cfg_error(cfg, "include(\"%s\"): too many includes (a loop?)", argv[0]);
		return 1;
	}
	glob_t g;
	int ret = glob(pattern, 0, NULL, &g);
	if (ret == GLOB_NOMATCH) {
		if (strpbrk(argv[0], "*?[") != NULL)
			return 0;   /* an empty pattern is fine: no domains yet */
		cfg_error(cfg, "include(\"%s\"): %s: no such file", argv[0], pattern);
		return 1;
	}
	if (ret != 0) {
		cfg_error(cfg, "include(\"%s\"): cannot read %s", argv[0], pattern);
		return 1;
	}
	/* libConfuse stacks includes: push in reverse so they are read in order */
	for (size_t i = g.gl_pathc; i > 0; i--) {
		const char *path = g.gl_pathv[i - 1];
		if (access(path, R_OK) != 0) {
			cfg_error(cfg, "include(\"%s\"): %s: %s", argv[0], path, strerror(errno));
			globfree(&g);
			return 1;
		}
		/* a folder, a device or a FIFO would hang or confuse the lexer */
		struct stat st;
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
			cfg_error(cfg, "include(\"%s\"): %s is not a regular file", argv[0], path);
			globfree(&g);
			return 1;
		}
		if (ctx_note_included(current_load, path) < 0) {
			cfg_error(cfg, "include(\"%s\"): %s is read more than once (an include loop?)",
				  argv[0], path);
			globfree(&g);
			return 1;
		}
		const char *args[1] = { path };
		if (cfg_include(cfg, opt, 1, args) != 0) {
			globfree(&g);
			return 1;
		}
	}
	globfree(&g);
	return 0;
}

/* ---- building libConfuse's option arrays from the schema --------------------- */

static cfg_opt_t *build_opts(const struct conf_section_def *sec, int with_include)
{
	size_t n = 0;
	while (sec->keys[n].name != NULL)
		n++;
	cfg_opt_t *opts = x_calloc(n + 2, sizeof(*opts));
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		const struct conf_key_def *k = &sec->keys[i];
		if (k->section != NULL) {
			cfg_flag_t flags = (k->section->flags & SECTION_MULTI) ?
				CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES : CFGF_NONE;
			opts[o] = (cfg_opt_t)CFG_SEC(k->name, build_opts(k->section, 0), flags);
		} else if (k->type == KEY_INT) {
			long def = k->def != NULL ? strtol(k->def, NULL, 10) : 0;
			opts[o] = (cfg_opt_t)CFG_INT(k->name, def, CFGF_NONE);
		} else if (k->type == KEY_BOOL) {
			cfg_bool_t def = k->def != NULL && strcmp(k->def, "true") == 0 ?
				cfg_true : cfg_false;
			opts[o] = (cfg_opt_t)CFG_BOOL(k->name, def, CFGF_NONE);
		} else if (k->type == KEY_STRLIST) {
			opts[o] = (cfg_opt_t)CFG_STR_LIST(k->name, (char *)k->def, CFGF_NONE);
		} else {
			opts[o] = (cfg_opt_t)CFG_STR(k->name, (char *)k->def, CFGF_NONE);
		}
		opts[o].validcb = validate_key;
		o++;
	}
	if (with_include)
		opts[o++] = (cfg_opt_t)CFG_FUNC("include", conf_include);
	opts[o] = (cfg_opt_t)CFG_END();
	return opts;
}

static void free_opts(cfg_opt_t *opts)
{
	for (cfg_opt_t *o = opts; o->name != NULL; o++)
		if (o->type == CFGT_SEC)
			free_opts(o->subopts);
	free(opts);
}

/* ---- copying values into the snapshot ----------------------------------------- */

static void copy_keys(struct conf_load_ctx *ctx, cfg_t *cfg,
		      const struct conf_section_def *sec, char *base);

static void copy_strlist(struct conf_load_ctx *ctx, cfg_t *cfg, const char *name, char *field)
{
	unsigned n = cfg_size(cfg, name);
	const char **items = pool_alloc(ctx->pool, (n + 1) * sizeof(*items));
	for (unsigned i = 0; i < n; i++)
		items[i] = pool_strdup(ctx->pool, cfg_getnstr(cfg, name, i));
	*(const char ***)field = items;
	*(size_t *)(field + sizeof(void *)) = n;
}

static void copy_value(struct conf_load_ctx *ctx, cfg_t *cfg,
		       const struct conf_key_def *k, char *field)
{
	const char *s;
	long long v = 0;
	switch (k->type) {
	case KEY_INT:
		*(unsigned *)field = (unsigned)cfg_getint(cfg, k->name);
		break;
	case KEY_BOOL:
		*(bool *)field = cfg_getbool(cfg, k->name) == cfg_true;
		break;
	case KEY_SIZE:
		s = cfg_getstr(cfg, k->name);
		if (s != NULL)
			conf_parse_size(s, &v);
		*(uint64_t *)field = (uint64_t)v;
		break;
	case KEY_DURATION:
	case KEY_DURATION_MS:
		s = cfg_getstr(cfg, k->name);
		if (s != NULL)
			conf_parse_duration(s, k->type == KEY_DURATION_MS, &v);
		*(unsigned *)field = (unsigned)v;
		break;
	case KEY_ENUM:
		s = cfg_getstr(cfg, k->name);
		*(int *)field = s != NULL ? enum_index(k->choices, s) : -1;
		break;
	case KEY_STRLIST:
		copy_strlist(ctx, cfg, k->name, field);
		break;
	default:
		s = cfg_getstr(cfg, k->name);
		*(const char **)field = s != NULL ? pool_strdup(ctx->pool, s) : NULL;
		break;
	}
}

static void copy_keys(struct conf_load_ctx *ctx, cfg_t *cfg,
		      const struct conf_section_def *sec, char *base)
{
	for (const struct conf_key_def *k = sec->keys; k->name != NULL; k++) {
		if (k->section == NULL) {
			copy_value(ctx, cfg, k, base + k->offset);
		} else if (!(k->section->flags & (SECTION_MULTI | SECTION_OVERRIDE))) {
			cfg_t *sub = cfg_getsec(cfg, k->name);
			if (sub != NULL)
				copy_keys(ctx, sub, k->section, base + k->offset);
		}
	}
}

static const struct conf_section_def *sub_section(const struct conf_section_def *sec,
						  const char *name)
{
	for (const struct conf_key_def *k = sec->keys; k->name != NULL; k++)
		if (k->section != NULL && strcmp(k->name, name) == 0)
			return k->section;
	return NULL;
}

static char *lower_dup(struct pool *pool, const char *s)
{
	char *p = pool_strdup(pool, s);
	for (char *q = p; *q != '\0'; q++)
		*q = (char)tolower((unsigned char)*q);
	return p;
}

static void copy_listeners(struct conf_load_ctx *ctx, cfg_t *root, struct warren_config *conf)
{
	const struct conf_section_def *def = sub_section(&conf_root_section, "listener");
	unsigned n = cfg_size(root, "listener");
	struct conf_listener *ls = pool_alloc(ctx->pool, (n + 1) * sizeof(*ls));
	for (unsigned i = 0; i < n; i++) {
		cfg_t *sec = cfg_getnsec(root, "listener", i);
		copy_keys(ctx, sec, def, (char *)&ls[i]);
		ls[i].name = pool_strdup(ctx->pool, cfg_title(sec));
		ls[i].file = pool_strdup(ctx->pool, conf_shown_path(ctx, sec->filename));
		ls[i].line = conf_section_line(ctx, sec, "listener");
	}
	conf->listeners = ls;
	conf->n_listeners = n;
}

static int cmp_mailbox(const void *a, const void *b)
{
	return strcmp(((const struct conf_mailbox *)a)->name, ((const struct conf_mailbox *)b)->name);
}

static int cmp_alias(const void *a, const void *b)
{
	return strcmp(((const struct conf_alias *)a)->name, ((const struct conf_alias *)b)->name);
}

static int cmp_domain(const void *a, const void *b)
{
	return strcmp(((const struct conf_domain *)a)->name, ((const struct conf_domain *)b)->name);
}

/* filter NAME { } blocks of the top level or of a domain, in file order. */
static void copy_filters(struct conf_load_ctx *ctx, cfg_t *sec, const struct conf_filter **filters_r,
			 size_t *n_r)
{
	const struct conf_section_def *def = sub_section(&conf_root_section, "filter");
	unsigned n = cfg_size(sec, "filter");
	struct conf_filter *fs = pool_alloc(ctx->pool, (n + 1) * sizeof(*fs));
	for (unsigned i = 0; i < n; i++) {
		cfg_t *f = cfg_getnsec(sec, "filter", i);
		copy_keys(ctx, f, def, (char *)&fs[i]);
		fs[i].name = pool_strdup(ctx->pool, cfg_title(f));
		fs[i].file = pool_strdup(ctx->pool, conf_shown_path(ctx, f->filename));
		fs[i].line = conf_section_line(ctx, f, "filter");
	}
	*filters_r = fs;
	*n_r = n;
}

static void copy_domain(struct conf_load_ctx *ctx, cfg_t *sec, struct conf_domain *d)
{
	const struct conf_section_def *def = sub_section(&conf_root_section, "domain");
	const struct conf_section_def *mdef = sub_section(def, "mailbox");
	const struct conf_section_def *adef = sub_section(def, "alias");
	copy_keys(ctx, sec, def, (char *)d);
	d->name = lower_dup(ctx->pool, cfg_title(sec));
	d->file = pool_strdup(ctx->pool, conf_shown_path(ctx, sec->filename));
	d->line = conf_section_line(ctx, sec, "domain");

	unsigned n = cfg_size(sec, "mailbox");
	struct conf_mailbox *mb = pool_alloc(ctx->pool, (n + 1) * sizeof(*mb));
	for (unsigned i = 0; i < n; i++) {
		cfg_t *m = cfg_getnsec(sec, "mailbox", i);
		copy_keys(ctx, m, mdef, (char *)&mb[i]);
		mb[i].name = lower_dup(ctx->pool, cfg_title(m));
		mb[i].address = pool_printf(ctx->pool, "%s@%s", mb[i].name, d->name);
		mb[i].file = pool_strdup(ctx->pool, conf_shown_path(ctx, m->filename));
		mb[i].line = conf_section_line(ctx, m, "mailbox");
	}
	qsort(mb, n, sizeof(*mb), cmp_mailbox);
	d->mailboxes = mb;
	d->n_mailboxes = n;

	n = cfg_size(sec, "alias");
	struct conf_alias *al = pool_alloc(ctx->pool, (n + 1) * sizeof(*al));
	for (unsigned i = 0; i < n; i++) {
		cfg_t *a = cfg_getnsec(sec, "alias", i);
		copy_keys(ctx, a, adef, (char *)&al[i]);
		al[i].name = lower_dup(ctx->pool, cfg_title(a));
		al[i].file = pool_strdup(ctx->pool, conf_shown_path(ctx, a->filename));
		al[i].line = conf_section_line(ctx, a, "alias");
		for (size_t t = 0; t < al[i].n_targets; t++)
			((const char **)al[i].targets)[t] = lower_dup(ctx->pool, al[i].targets[t]);
	}
	qsort(al, n, sizeof(*al), cmp_alias);
	d->aliases = al;
	d->n_aliases = n;
	copy_filters(ctx, sec, &d->filters, &d->n_filters);
}

/* A domain's block name { } over a global section (SECTION_OVERRIDE): a copy of
 * global (size bytes; NULL: zeroes) with each key the block writes copied over
 * it. *any_r: whether the block writes one. */
static const void *copy_override(struct conf_load_ctx *ctx, cfg_t *dom, const char *name,
				 const void *global, size_t size, bool *any_r)
{
	const struct conf_section_def *def =
		sub_section(sub_section(&conf_root_section, "domain"), name);
	char *copy = pool_alloc(ctx->pool, size);
	if (global != NULL)
		memcpy(copy, global, size);
	else
		memset(copy, 0, size);
	*any_r = false;
	cfg_t *sub = cfg_getsec(dom, name);
	for (const struct conf_key_def *k = def->keys; sub != NULL && k->name != NULL; k++) {
		cfg_opt_t *opt = cfg_getopt(sub, k->name);
		if (opt == NULL || !(opt->flags & CFGF_MODIFIED))
			continue;   /* not written: the global value */
		copy_value(ctx, sub, k, copy + k->offset);
		*any_r = true;
	}
	return copy;
}

static void copy_domain_policy(struct conf_load_ctx *ctx, cfg_t *sec,
			       const struct warren_config *conf, struct conf_domain *d)
{
	bool any;
	d->spf = copy_override(ctx, sec, "spf", &conf->spf, sizeof(conf->spf), &d->spf_override);
	d->greylist = copy_override(ctx, sec, "greylist", &conf->greylist,
				    sizeof(conf->greylist), &any);
	d->dnsbl = copy_override(ctx, sec, "dnsbl", &conf->dnsbl, sizeof(conf->dnsbl), &any);
	d->rate = copy_override(ctx, sec, "rate", &conf->rate, sizeof(conf->rate), &any);
	struct conf_lists *l = (struct conf_lists *)copy_override(ctx, sec, "lists", NULL,
								   sizeof(conf->lists), &any);
	l->reject_text = conf->lists.reject_text;
	d->lists = l;
}

static void copy_domains(struct conf_load_ctx *ctx, cfg_t *root, struct warren_config *conf)
{
	unsigned n = cfg_size(root, "domain");
	struct conf_domain *ds = pool_alloc(ctx->pool, (n + 1) * sizeof(*ds));
	for (unsigned i = 0; i < n; i++) {
		copy_domain(ctx, cfg_getnsec(root, "domain", i), &ds[i]);
		copy_domain_policy(ctx, cfg_getnsec(root, "domain", i), conf, &ds[i]);
	}
	qsort(ds, n, sizeof(*ds), cmp_domain);
	/* back pointers after sorting, when the addresses are final */
	for (unsigned i = 0; i < n; i++)
		for (size_t m = 0; m < ds[i].n_mailboxes; m++)
			((struct conf_mailbox *)ds[i].mailboxes)[m].domain = &ds[i];
	conf->domains = ds;
	conf->n_domains = n;
}

static void copy_config(struct conf_load_ctx *ctx, cfg_t *root, struct warren_config *conf)
{
	copy_keys(ctx, root, &conf_root_section, (char *)conf);
	copy_listeners(ctx, root, conf);
	copy_domains(ctx, root, conf);
	copy_filters(ctx, root, &conf->filters, &conf->n_filters);
	conf_filters_check(ctx, conf);
	if (conf->hostname == NULL) {
		char host[256];
		if (gethostname(host, sizeof(host)) != 0)
			strcpy(host, "localhost");
		host[sizeof(host) - 1] = '\0';
		conf->hostname = pool_strdup(ctx->pool, host);
	}
	if (conf->default_domain != NULL)
		conf->default_domain = lower_dup(ctx->pool, conf->default_domain);
}

/* ---- public API ---------------------------------------------------------------- */

static char *absolute_path(const char *path)
{
	if (path[0] == '/')
		return x_strdup(path);
	char cwd[PATH_MAX];
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return x_strdup(path);
	size_t len = strlen(cwd) + strlen(path) + 2;
	char *abs = x_malloc(len);
	snprintf(abs, len, "%s/%s", cwd, path);
	return abs;
}

static void load_ctx_free(struct conf_load_ctx *ctx)
{
	conf_locations_free(ctx);
	buf_free(&ctx->errors);
	free(ctx->path);
}

const char *conf_shown_path(const struct conf_load_ctx *ctx, const char *filename)
{
	size_t n = ctx->root != NULL ? strlen(ctx->root) : 0;
	if (filename != NULL && n > 0 && strncmp(filename, ctx->root, n) == 0 &&
	    filename[n] == '/')
		return filename + n;
	return filename;
}

/* The files a snapshot was read from (the main file first), as real paths. */
static void record_files(struct conf_load_ctx *ctx, struct warren_config *conf)
{
	const char **files = pool_alloc(ctx->pool, (ctx->n_included + 1) * sizeof(*files));
	files[0] = conf->path;
	for (size_t i = 0; i < ctx->n_included; i++)
		files[i + 1] = pool_strdup(ctx->pool, conf_shown_path(ctx, ctx->included[i]));
	conf->files = files;
	conf->n_files = ctx->n_included + 1;
}

int conf_load(const char *path, unsigned flags, struct warren_config **conf_r, char **errors_r)
{
	return conf_load_from(path, NULL, flags, conf_r, errors_r);
}

int conf_load_from(const char *path, const char *root, unsigned flags,
		   struct warren_config **conf_r, char **errors_r)
{
	struct conf_load_ctx ctx;
	memset(&ctx, 0, sizeof(ctx));
	buf_init(&ctx.errors, CONF_ERRORS_MAX + 4096);
	ctx.path = absolute_path(path);
	ctx.flags = flags;
	ctx.root = root != NULL && root[0] != '\0' ? root : NULL;
	*conf_r = NULL;
	*errors_r = NULL;
	/* the file libConfuse opens: below root when reading a saved copy */
	char *open_path = ctx.path;
	if (ctx.root != NULL) {
		size_t len = strlen(ctx.root) + strlen(ctx.path) + 1;
		open_path = x_malloc(len);
		snprintf(open_path, len, "%s%s", ctx.root, ctx.path);
	}

	/* before cfg_init: it validates the defaults, which calls back into us */
	current_load = &ctx;
	cfg_opt_t *opts = build_opts(&conf_root_section, 1);
	cfg_t *cfg = cfg_init(opts, CFGF_NONE);
	cfg_set_error_function(cfg, confuse_errfunc);

	if (access(open_path, R_OK) != 0) {
		conf_error_at(&ctx, NULL, 0, "%s: %s", open_path, strerror(errno));
	} else if (cfg_parse(cfg, open_path) == CFG_SUCCESS && ctx.n_errors == 0 &&
		   (conf_check_files(&ctx), ctx.n_errors == 0)) {
		ctx.pool = pool_new(16384);
		struct warren_config *conf = conf_snapshot_alloc(ctx.pool);
		conf->path = pool_strdup(ctx.pool, ctx.path);
		record_files(&ctx, conf);
		copy_config(&ctx, cfg, conf);
		conf_check(&ctx, cfg, conf);
		if (ctx.n_errors == 0 && !(flags & CONF_LOAD_NO_TLS))
			conf_build_tls(&ctx, conf);
		if (ctx.n_errors == 0) {
			conf->generation = ++conf_generation;
			conf_snapshot_init(conf, ctx.pool);
			ctx.pool = NULL;
			*conf_r = conf;
		}
	} else if (ctx.n_errors == 0) {
		conf_error_at(&ctx, ctx.path, 0, "cannot parse the file");
	}
	current_load = NULL;
	cfg_free(cfg);
	free_opts(opts);
	if (ctx.pool != NULL) {
		pool_free(&ctx.pool);
	}
	if (*conf_r == NULL)
		*errors_r = x_strdup(buf_cstr(&ctx.errors));
	if (open_path != ctx.path)
		free(open_path);
	load_ctx_free(&ctx);
	return *conf_r != NULL ? 0 : -1;
}

const char *conf_service_name(enum conf_service service)
{
	static const char *const names[] = { "smtp", "submission", "imap", "pop3", "http" };
	return (unsigned)service < sizeof(names) / sizeof(names[0]) ? names[service] : "?";
}

const char *conf_tls_mode_name(enum conf_tls_mode mode)
{
	static const char *const names[] = { "none", "starttls", "implicit" };
	return (unsigned)mode < sizeof(names) / sizeof(names[0]) ? names[mode] : "?";
}
