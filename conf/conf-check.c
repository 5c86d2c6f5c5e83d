/* conf-check.c — checks that need the whole configuration, and locations for them. */
#include "conf/conf-private.h"
#include "common/proxy.h"
#include "common/tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Longest alias chain followed when looking for loops. */
#define ALIAS_DEPTH_MAX 32

struct conf_location {
	struct conf_location *next;
	cfg_t *cfg;
	const char *key;
	char *file;
	int line;
};

struct conf_file_lines {
	struct conf_file_lines *next;
	char *path;
	char *text;
	char **lines;    /* lines[1..n] point into text */
	int n;
	int *confuse_start;  /* [1..n]: libConfuse's line number at the start of each line */
};

/* libConfuse 3.3 (Debian 12) miscounts lines: each '#' or '//' comment adds two
 * lines too many and each block comment one (measured with a probe program). This
 * replays its count over the file, so its line numbers can be turned back into
 * the file's own. */
static void confuse_line_map(struct conf_file_lines *f, size_t len, int lines)
{
	f->confuse_start = x_calloc((size_t)lines + 2, sizeof(int));
	int real = 1, c = 1;
	f->confuse_start[1] = 1;
	enum { NORMAL, DQUOTE, SQUOTE, LINE_COMMENT, BLOCK_COMMENT } st = NORMAL;
	for (size_t i = 0; i < len; i++) {
		char ch = f->text[i], next = i + 1 < len ? f->text[i + 1] : '\0';
		if (ch == '\n') {
			if (st == LINE_COMMENT)
				st = NORMAL;
			real++;
			c++;
			if (real <= lines)
				f->confuse_start[real] = c;
			continue;
		}
		switch (st) {
		case NORMAL:
			if (ch == '"')
				st = DQUOTE;
			else if (ch == '\'')
				st = SQUOTE;
			else if (ch == '#' || (ch == '/' && next == '/')) {
				st = LINE_COMMENT;
				c += 2;
			} else if (ch == '/' && next == '*') {
				st = BLOCK_COMMENT;
				c += 1;
				i++;
			}
			break;
		case DQUOTE:
			if (ch == '\\' && next != '\0' && next != '\n')
				i++;
			else if (ch == '"')
				st = NORMAL;
			break;
		case SQUOTE:
			if (ch == '\'')
				st = NORMAL;
			break;
		case BLOCK_COMMENT:
			if (ch == '*' && next == '/') {
				st = NORMAL;
				i++;
			}
			break;
		case LINE_COMMENT:
			break;
		}
	}
}

static struct conf_file_lines *file_lines(struct conf_load_ctx *ctx, const char *path);

int conf_real_line(struct conf_load_ctx *ctx, const char *path, int confuse_line)
{
	struct conf_file_lines *f = path != NULL ? file_lines(ctx, path) : NULL;
	if (f == NULL || confuse_line <= 0)
		return confuse_line;
	int real = 1;
	for (int l = 1; l <= f->n; l++)
		if (f->confuse_start[l] <= confuse_line)
			real = l;
	return real;
}

/* ---- locations ------------------------------------------------------------- */

void conf_note_location(struct conf_load_ctx *ctx, cfg_t *cfg, const char *key)
{
	struct conf_location *loc = x_calloc(1, sizeof(*loc));
	loc->cfg = cfg;
	loc->key = key;
	loc->file = x_strdup(cfg->filename != NULL ? conf_shown_path(ctx, cfg->filename) : ctx->path);
	loc->line = conf_real_line(ctx, loc->file, cfg->line);
	loc->next = ctx->locations;
	ctx->locations = loc;
}

int conf_key_location(struct conf_load_ctx *ctx, cfg_t *cfg, const char *key,
		      const char **file_r, int *line_r)
{
	for (struct conf_location *loc = ctx->locations; loc != NULL; loc = loc->next) {
		if (loc->cfg == cfg && strcmp(loc->key, key) == 0) {
			*file_r = loc->file;
			*line_r = loc->line;
			return 1;
		}
	}
	return 0;
}

static struct conf_file_lines *file_lines(struct conf_load_ctx *ctx, const char *path)
{
	struct conf_file_lines *f;
	for (f = ctx->files; f != NULL; f = f->next)
		if (strcmp(f->path, path) == 0)
			return f;
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return NULL;
	f = x_calloc(1, sizeof(*f));
	f->path = x_strdup(path);
	size_t cap = 0, len = 0;
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			f->text = x_realloc(f->text, cap);
		}
		memcpy(f->text + len, chunk, n);
		len += n;
	}
	fclose(fp);
	if (f->text == NULL)
		f->text = x_strdup("");
	f->text[len] = '\0';
	int lines = 1;
	for (size_t i = 0; i < len; i++)
		lines += f->text[i] == '\n';
	confuse_line_map(f, len, lines);
	f->lines = x_calloc((size_t)lines + 1, sizeof(*f->lines));
	char *p = f->text;
	for (int l = 1; l <= lines; l++) {
		f->lines[l] = p;
		char *nl = strchr(p, '\n');
		if (nl == NULL)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	f->n = lines;
	f->next = ctx->files;
	ctx->files = f;
	return f;
}

/* Does text hold "keyword" then (optionally quoted) title as separate words? */
static int line_opens(const char *text, const char *keyword, const char *title)
{
	size_t klen = strlen(keyword);
	for (const char *p = strstr(text, keyword); p != NULL; p = strstr(p + 1, keyword)) {
		if (p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
			continue;
		const char *q = p + klen;
		if (*q != ' ' && *q != '\t' && *q != '{' && *q != '\0')
			continue;
		while (*q == ' ' || *q == '\t')
			q++;
		if (title == NULL)
			return *q == '{' || *q == '\0';
		if (*q == '"' || *q == '\'')
			q++;
		if (strncasecmp(q, title, strlen(title)) == 0) {
			char c = q[strlen(title)];
			if (c == '"' || c == '\'' || c == ' ' || c == '\t' || c == '{' || c == '\0')
				return 1;
		}
	}
	return 0;
}

int conf_section_line(struct conf_load_ctx *ctx, cfg_t *sec, const char *keyword)
{
	if (sec->filename == NULL)
		return sec->line;
	struct conf_file_lines *f = file_lines(ctx, sec->filename);
	if (f == NULL)
		return sec->line;
	const char *title = cfg_title(sec);
	int start = conf_real_line(ctx, sec->filename, sec->line);
	for (int l = start < f->n ? start : f->n; l >= 1; l--) {
		if (f->lines[l] != NULL && line_opens(f->lines[l], keyword, title))
			return l;
	}
	return sec->line;
}

void conf_locations_free(struct conf_load_ctx *ctx)
{
	while (ctx->locations != NULL) {
		struct conf_location *next = ctx->locations->next;
		free(ctx->locations->file);
		free(ctx->locations);
		ctx->locations = next;
	}
	for (size_t i = 0; i < ctx->n_included; i++)
		free(ctx->included[i]);
	free(ctx->included);
	ctx->included = NULL;
	ctx->n_included = 0;
	while (ctx->files != NULL) {
		struct conf_file_lines *next = ctx->files->next;
		free(ctx->files->path);
		free(ctx->files->text);
		free(ctx->files->confuse_start);
		free(ctx->files->lines);
		free(ctx->files);
		ctx->files = next;
	}
}

/* ---- braces ------------------------------------------------------------------
 * libConfuse 3.3 accepts a file that ends inside a block; find the unclosed one. */

static void check_braces(struct conf_load_ctx *ctx, const char *path)
{
	struct conf_file_lines *f = file_lines(ctx, path);
	if (f == NULL)
		return;
	int open_lines[CONF_BLOCK_DEPTH_MAX], depth = 0;
	bool in_comment = false;
	for (int l = 1; l <= f->n && f->lines[l] != NULL; l++) {
		char quote = 0;
		for (const char *p = f->lines[l]; *p != '\0'; p++) {
			if (in_comment) {
				if (p[0] == '*' && p[1] == '/') {
					in_comment = false;
					p++;
				}
			} else if (quote != 0) {
				if (*p == '\\' && quote == '"' && p[1] != '\0')
					p++;
				else if (*p == quote)
					quote = 0;
			} else if (*p == '"' || *p == '\'') {
				quote = *p;
			} else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
				break;
			} else if (p[0] == '/' && p[1] == '*') {
				in_comment = true;
				p++;
			} else if (*p == '{') {
				if (depth < CONF_BLOCK_DEPTH_MAX)
					open_lines[depth] = l;
				depth++;
			} else if (*p == '}' && depth > 0) {
				depth--;
			}
		}
	}
	if (depth > 0)
		conf_error_at(ctx, path, open_lines[depth > CONF_BLOCK_DEPTH_MAX ?
						    CONF_BLOCK_DEPTH_MAX - 1 : depth - 1],
			      "this block is not closed: '}' missing before the end of the file");
}

void conf_check_files(struct conf_load_ctx *ctx)
{
	check_braces(ctx, ctx->path);
	for (size_t i = 0; i < ctx->n_included; i++)
		check_braces(ctx, ctx->included[i]);
}

/* ---- listeners --------------------------------------------------------------- */

static int valid_network(const char *s);

static void listener_defaults(struct conf_listener *l)
{
	static const unsigned idle[] = { 300, 300, 1800, 600, 60 };
	static const unsigned line[] = { 16384, 16384, 2 * 1024 * 1024, 8192, 8192 };
	if ((int)l->service < 0)
		return;
	if (l->idle_timeout_s == 0)
		l->idle_timeout_s = idle[l->service];
	if (l->max_line_length == 0)
		l->max_line_length = line[l->service];
	static const unsigned session[] = { 3600, 3600, 86400, 3600, 600 };
	if (l->session_timeout_s == 0)
		l->session_timeout_s = session[l->service];
}

/* PROXY protocol and TLS overrides of a listener (common/proxy.h, common/tls.h). */
static void check_listener_proxy_tls(struct conf_load_ctx *ctx, const struct conf_listener *l)
{
	const char *err = NULL;
	if (l->proxy_protocol && l->n_proxy_trusted == 0)
		conf_error_at(ctx, l->file, l->line,
			      "listener %s: proxy_protocol needs proxy_trusted (the load balancers' "
			      "addresses)", l->name);
	for (size_t k = 0; k < l->n_proxy_trusted; k++)
		if (proxy_net_check(l->proxy_trusted[k], &err) < 0)
			conf_error_at(ctx, l->file, l->line,
				      "listener %s: proxy_trusted: \"%s\": %s", l->name,
				      l->proxy_trusted[k], err);
	if (l->tls_min_protocol == NULL && l->tls_ciphers == NULL && l->tls_ciphersuites == NULL)
		return;
	char *tls_err = NULL;
	if (tls_check_policy(l->tls_min_protocol, l->tls_ciphers, l->tls_ciphersuites,
			     &tls_err) < 0) {
		conf_error_at(ctx, l->file, l->line, "listener %s: %s", l->name, tls_err);
		free(tls_err);
	}
}

static void check_listeners(struct conf_load_ctx *ctx, struct warren_config *conf)
{
	for (size_t i = 0; i < conf->n_listeners; i++) {
		struct conf_listener *l = (struct conf_listener *)&conf->listeners[i];
		unsigned char addr[16];
		if (l->port == 0)
			conf_error_at(ctx, l->file, l->line, "listener %s: port is required", l->name);
		if ((int)l->service < 0)
			conf_error_at(ctx, l->file, l->line,
				      "listener %s: service is required (smtp, submission, imap, pop3, http)",
				      l->name);
		if (inet_pton(AF_INET, l->address, addr) != 1 &&
		    inet_pton(AF_INET6, l->address, addr) != 1)
			conf_error_at(ctx, l->file, l->line,
				      "listener %s: address \"%s\" is not an IPv4 or IPv6 address",
				      l->name, l->address);
		if (l->tls != CONF_TLS_NONE && conf->tls.cert_file == NULL)
			conf_error_at(ctx, l->file, l->line,
				      "listener %s: tls = %s needs a certificate: set cert and key in the tls block",
				      l->name, conf_tls_mode_name(l->tls));
		if (l->tls_required && l->tls != CONF_TLS_STARTTLS)
			conf_error_at(ctx, l->file, l->line,
				      "listener %s: tls_required only applies to tls = starttls", l->name);
		listener_defaults(l);
		check_listener_proxy_tls(ctx, l);
		for (size_t k = 0; k < l->n_allow_networks + l->n_deny_networks; k++) {
			bool allow = k < l->n_allow_networks;
			const char *net = allow ? l->allow_networks[k] :
				l->deny_networks[k - l->n_allow_networks];
			if (!valid_network(net))
				conf_error_at(ctx, l->file, l->line,
					      "listener %s: %s: \"%s\" is not an address or network",
					      l->name, allow ? "allow_networks" : "deny_networks", net);
		}
		for (size_t j = 0; j < i; j++) {
			const struct conf_listener *o = &conf->listeners[j];
			if (o->port == l->port && strcmp(o->address, l->address) == 0)
				conf_error_at(ctx, l->file, l->line,
					      "listener %s: %s port %u is already used by listener %s (%s:%d)",
					      l->name, l->address, l->port, o->name, o->file, o->line);
		}
	}
}

/* ---- domains, mailboxes, aliases ---------------------------------------------- */

static int valid_domain_name(const char *name)
{
	size_t len = strlen(name), label = 0;
	if (len == 0 || len > 253 || name[0] == '.' || name[len - 1] == '.')
		return 0;
	for (const char *p = name; *p != '\0'; p++) {
		if (*p == '.') {
			if (label == 0 || p[-1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-')
			return 0;
		if (label == 0 && *p == '-')
			return 0;
		if (++label > 63)
			return 0;
	}
	return 1;
}

/* RFC 5322 dot-atom local parts (what an admin would create). */
static int valid_local_part(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > 64 || s[0] == '.' || s[len - 1] == '.' || strstr(s, "..") != NULL)
		return 0;
	for (const char *p = s; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && strchr("!#$%&'*+-/=?^_`{|}~.", *p) == NULL)
			return 0;
	return 1;
}

/* Finds where an alias target leads: *domain_r and *local_r, or external (0). */
static int resolve_target(const struct warren_config *conf, const struct conf_domain *d,
			  const char *target, const struct conf_domain **domain_r,
			  const char **local_r, char *localbuf, size_t size)
{
	const char *at = strrchr(target, '@');
	if (at == NULL) {
		*domain_r = d;
		*local_r = target;
		return 1;
	}
	const struct conf_domain *td = conf_find_domain(conf, at + 1);
	if (td == NULL || td->type != CONF_DOMAIN_LOCAL)
		return 0;
	snprintf(localbuf, size, "%.*s", (int)(at - target), target);
	*domain_r = td;
	*local_r = localbuf;
	return 1;
}

static int alias_loops(const struct warren_config *conf, const struct conf_domain *d,
		       const struct conf_alias *start, const struct conf_alias *a, int depth)
{
	if (depth > ALIAS_DEPTH_MAX)
		return 1;
	for (size_t t = 0; t < a->n_targets; t++) {
		const struct conf_domain *td;
		const char *local;
		char buf[256];
		if (!resolve_target(conf, d, a->targets[t], &td, &local, buf, sizeof(buf)))
			continue;
		const struct conf_alias *next = conf_find_alias(td, local);
		if (next == NULL)
			continue;
		if (next == start || alias_loops(conf, td, start, next, depth + 1))
			return 1;
	}
	return 0;
}

static void check_alias(struct conf_load_ctx *ctx, const struct warren_config *conf,
			const struct conf_domain *d, const struct conf_alias *a)
{
	if (!valid_local_part(a->name))
		conf_error_at(ctx, a->file, a->line, "alias %s: not a valid local part", a->name);
	if (conf_find_mailbox(d, a->name) != NULL)
		conf_error_at(ctx, a->file, a->line,
			      "alias %s: %s@%s is already a mailbox", a->name, a->name, d->name);
	if (a->n_targets == 0)
		conf_error_at(ctx, a->file, a->line, "alias %s: \"to\" is required", a->name);
	for (size_t t = 0; t < a->n_targets; t++) {
		const struct conf_domain *td;
		const char *local;
		char buf[256];
		const char *target = a->targets[t];
		const char *at = strrchr(target, '@');
		if (at != NULL && (at == target || !valid_domain_name(at + 1))) {
			conf_error_at(ctx, a->file, a->line, "alias %s: \"%s\" is not an address",
				      a->name, target);
			continue;
		}
		if (!resolve_target(conf, d, target, &td, &local, buf, sizeof(buf)))
			continue;   /* an outside address: forwarded */
		if (conf_find_mailbox(td, local) == NULL && conf_find_alias(td, local) == NULL)
			conf_error_at(ctx, a->file, a->line,
				      "alias %s: target %s@%s is neither a mailbox nor an alias",
				      a->name, local, td->name);
	}
	if (alias_loops(conf, d, a, a, 0))
		conf_error_at(ctx, a->file, a->line,
			      "alias %s: its targets lead back to it (an alias loop)", a->name);
}

/* smtpd's mailbox types: catch_all, multidrop, forward. */
static void check_delivery_keys(struct conf_load_ctx *ctx, const struct warren_config *conf,
				const struct conf_domain *d)
{
	const struct conf_domain *td;
	const char *local;
	char buf[256];
	if (d->catch_all != NULL) {
		const char *at = strrchr(d->catch_all, '@');
		if (at != NULL && (at == d->catch_all || !valid_domain_name(at + 1)))
			conf_error_at(ctx, d->file, d->line, "domain %s: catch_all \"%s\" is not an address",
				      d->name, d->catch_all);
		else if (resolve_target(conf, d, d->catch_all, &td, &local, buf, sizeof(buf)) &&
			 conf_find_mailbox(td, local) == NULL && conf_find_alias(td, local) == NULL)
			conf_error_at(ctx, d->file, d->line,
				      "domain %s: catch_all %s@%s is neither a mailbox nor an alias",
				      d->name, local, td->name);
	}
	if (d->multidrop != NULL && conf_find_mailbox(d, d->multidrop) == NULL)
		conf_error_at(ctx, d->file, d->line, "domain %s: multidrop %s is not a mailbox of the domain",
			      d->name, d->multidrop);
	for (size_t m = 0; m < d->n_mailboxes; m++) {
		const struct conf_mailbox *mb = &d->mailboxes[m];
		for (size_t f = 0; f < mb->n_forward; f++) {
			const char *at = strrchr(mb->forward[f], '@');
			if (at == NULL || at == mb->forward[f] || !valid_domain_name(at + 1))
				conf_error_at(ctx, mb->file, mb->line,
					      "mailbox %s: forward \"%s\" is not an address",
					      mb->name, mb->forward[f]);
		}
		if (mb->forward_keep_copy && mb->n_forward == 0)
			conf_error_at(ctx, mb->file, mb->line,
				      "mailbox %s: forward_keep_copy needs forward", mb->name);
	}
}

/* "192.0.2.0/24", "2001:db8::/32" or a single address. */
static int valid_network(const char *s)
{
	char addr[64];
	unsigned char bin[16];
	const char *slash = strchr(s, '/');
	size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (n == 0 || n >= sizeof(addr))
		return 0;
	memcpy(addr, s, n);
	addr[n] = '\0';
	int max = inet_pton(AF_INET, addr, bin) == 1 ? 32 :
		inet_pton(AF_INET6, addr, bin) == 1 ? 128 : -1;
	if (max < 0)
		return 0;
	if (slash == NULL)
		return 1;
	char *end;
	long bits = strtol(slash + 1, &end, 10);
	return slash[1] != '\0' && *end == '\0' && bits >= 0 && bits <= max;
}

static void check_networks(struct conf_load_ctx *ctx, cfg_t *root, const char *section,
			   const char *key, const char *const *nets, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (valid_network(nets[i]))
			continue;
		const char *file = ctx->path;
		int line = 0;
		cfg_t *sec = cfg_getsec(root, section);
		if (sec != NULL)
			conf_key_location(ctx, sec, key, &file, &line);
		conf_error_at(ctx, file, line, "%s: %s: \"%s\" is not an address or network",
			      section, key, nets[i]);
	}
}

/* Entries "NETWORK" or "NETWORK text of a reply" (lists { client_blacklist }). */
static void check_network_entries(struct conf_load_ctx *ctx, cfg_t *root, const char *section,
				  const char *key, const char *const *nets, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char net[64];
		size_t len = strcspn(nets[i], " \t");
		if (len < sizeof(net)) {
			memcpy(net, nets[i], len);
			net[len] = '\0';
			const char *one[1] = { net };
			check_networks(ctx, root, section, key, one, 1);
		} else {
			check_networks(ctx, root, section, key, &nets[i], 1);
		}
	}
}

static void check_dnsbl_sites(struct conf_load_ctx *ctx, cfg_t *root, const char *key,
			      const char *const *specs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct conf_dnsbl_site site;
		if (conf_dnsbl_site_parse(specs[i], &site))
			continue;
		const char *file = ctx->path;
		int line = 0;
		cfg_t *sec = cfg_getsec(root, "dnsbl");
		if (sec != NULL)
			conf_key_location(ctx, sec, key, &file, &line);
		conf_error_at(ctx, file, line, "dnsbl: %s: \"%s\" is not zone[=codes][*weight]", key,
			      specs[i]);
	}
}

static void check_file(struct conf_load_ctx *ctx, const char *path, const char *what,
		       const char *file, int line)
{
	if (path != NULL && access(path, R_OK) != 0)
		conf_error_at(ctx, file, line, "%s %s: %s", what, path, strerror(errno));
}

static void check_tls_block(struct conf_load_ctx *ctx, const struct conf_tls *tls,
			    const char *file, int line)
{
	if ((tls->cert_file == NULL) != (tls->key_file == NULL)) {
		conf_error_at(ctx, file, line, "tls: cert and key go together");
		return;
	}
	check_file(ctx, tls->cert_file, "tls cert", file, line);
	check_file(ctx, tls->key_file, "tls key", file, line);
}

/* A domain's or mailbox's access { } block (common/access.h). */
static void check_access(struct conf_load_ctx *ctx, const struct access_rules *r,
			 const char *what, const char *file, int line)
{
	for (size_t k = 0; k < r->n_allow_networks + r->n_deny_networks; k++) {
		bool allow = k < r->n_allow_networks;
		const char *net = allow ? r->allow_networks[k] :
			r->deny_networks[k - r->n_allow_networks];
		if (!access_net_valid(net))
			conf_error_at(ctx, file, line, "%s: access: %s: \"%s\" is not an address "
				      "or network", what, allow ? "allow_networks" : "deny_networks",
				      net);
	}
	for (size_t h = 0; h < r->n_hours; h++) {
		const char *err;
		if (access_hours_valid(r->hours[h], &err) < 0)
			conf_error_at(ctx, file, line, "%s: access: hours: \"%s\": %s", what,
				      r->hours[h], err);
	}
	int offset;
	if (r->timezone != NULL && access_tz_offset(r->timezone, 0, &offset) < 0)
		conf_error_at(ctx, file, line, "%s: access: timezone: \"%s\" is not a time zone "
			      "in %s", what, r->timezone, ACCESS_ZONEINFO_DIR);
	if (r->valid_from != NULL && !access_date_valid(r->valid_from))
		conf_error_at(ctx, file, line, "%s: access: valid_from: \"%s\" is not "
			      "YYYY-MM-DD or YYYY-MM-DD HH:MM", what, r->valid_from);
	if (r->valid_until != NULL && !access_date_valid(r->valid_until))
		conf_error_at(ctx, file, line, "%s: access: valid_until: \"%s\" is not "
			      "YYYY-MM-DD or YYYY-MM-DD HH:MM", what, r->valid_until);
}

static void check_domain(struct conf_load_ctx *ctx, const struct warren_config *conf,
			 const struct conf_domain *d, const struct conf_domain *prev)
{
	if (!valid_domain_name(d->name))
		conf_error_at(ctx, d->file, d->line, "domain %s: not a valid domain name", d->name);
	if (prev != NULL && strcmp(prev->name, d->name) == 0)
		conf_error_at(ctx, d->file, d->line, "domain %s: defined twice (also at %s:%d)",
			      d->name, prev->file, prev->line);
	if (d->type == CONF_DOMAIN_REMOTE && d->relay_host == NULL)
		conf_error_at(ctx, d->file, d->line,
			      "domain %s: type = remote needs relay_host", d->name);
	if (d->type == CONF_DOMAIN_LOCAL && d->relay_host != NULL)
		conf_error_at(ctx, d->file, d->line,
			      "domain %s: relay_host is only for type = remote", d->name);
	check_tls_block(ctx, &d->tls, d->tls.file != NULL ? d->tls.file : d->file,
			d->tls.file != NULL ? d->tls.line : d->line);
	for (size_t m = 0; m < d->n_mailboxes; m++) {
		const struct conf_mailbox *mb = &d->mailboxes[m];
		if (!valid_local_part(mb->name))
			conf_error_at(ctx, mb->file, mb->line, "mailbox %s: not a valid local part",
				      mb->name);
		if (m > 0 && strcmp(d->mailboxes[m - 1].name, mb->name) == 0) {
			/* name the later definition, point to the earlier one */
			const struct conf_mailbox *a = &d->mailboxes[m - 1], *b = mb;
			if (strcmp(a->file, b->file) == 0 && a->line > b->line) {
				a = mb;
				b = &d->mailboxes[m - 1];
			}
			conf_error_at(ctx, b->file, b->line,
				      "mailbox %s: defined twice in domain %s (also at %s:%d)",
				      b->name, d->name, a->file, a->line);
		}
	}
	for (size_t a = 0; a < d->n_aliases; a++) {
		if (a > 0 && strcmp(d->aliases[a - 1].name, d->aliases[a].name) == 0)
			conf_error_at(ctx, d->aliases[a].file, d->aliases[a].line,
				      "alias %s: defined twice in domain %s", d->aliases[a].name,
				      d->name);
		check_alias(ctx, conf, d, &d->aliases[a]);
	}
	check_delivery_keys(ctx, conf, d);
	char what[600];
	snprintf(what, sizeof(what), "domain %s", d->name);
	check_access(ctx, &d->access, what, d->file, d->line);
	for (size_t m = 0; m < d->n_mailboxes; m++) {
		const struct conf_mailbox *mb = &d->mailboxes[m];
		snprintf(what, sizeof(what), "mailbox %s", mb->address);
		check_access(ctx, &mb->access, what, mb->file, mb->line);
	}
}

static void locate_tls(struct conf_load_ctx *ctx, cfg_t *parent, struct conf_tls *tls)
{
	cfg_t *sec = cfg_getsec(parent, "tls");
	const char *file;
	int line;
	if (sec == NULL)
		return;
	if (conf_key_location(ctx, sec, "cert", &file, &line) ||
	    conf_key_location(ctx, sec, "key", &file, &line)) {
		tls->file = pool_strdup(ctx->pool, file);
		tls->line = line;
	}
}

/* A domain's policy overrides (spf, greylist, dnsbl, lists, rate inside domain { }):
 * values were checked as they were read, as the global ones are; here what
 * needs more than one value. */
static void check_domain_policy(struct conf_load_ctx *ctx, cfg_t *sec,
				const struct conf_domain *d)
{
	check_network_entries(ctx, sec, "lists", "client_blacklist", d->lists->client_blacklist,
			      d->lists->n_client_blacklist);
	check_network_entries(ctx, sec, "lists", "client_whitelist", d->lists->client_whitelist,
			      d->lists->n_client_whitelist);
	const char *file = d->file;
	int line = d->line;
	cfg_t *g = cfg_getsec(sec, "greylist");
	/* only when the domain sets one of them: the global pair is not checked here */
	if (g != NULL && (conf_key_location(ctx, g, "delay", &file, &line) ||
			  conf_key_location(ctx, g, "retry_window", &file, &line)) &&
	    d->greylist->delay_s >= d->greylist->retry_window_s) {
		conf_error_at(ctx, file, line, "domain %s: greylist: delay (%us) must be shorter "
			      "than retry_window (%us)", d->name, d->greylist->delay_s,
			      d->greylist->retry_window_s);
	}
}

void conf_check(struct conf_load_ctx *ctx, cfg_t *root, struct warren_config *conf)
{
	locate_tls(ctx, root, &conf->tls);
	for (unsigned i = 0; i < cfg_size(root, "domain"); i++) {
		cfg_t *sec = cfg_getnsec(root, "domain", i);
		struct conf_domain *d = (struct conf_domain *)conf_find_domain(conf, cfg_title(sec));
		if (d != NULL) {
			locate_tls(ctx, sec, &d->tls);
			check_domain_policy(ctx, sec, d);
		}
	}
	check_tls_block(ctx, &conf->tls, conf->tls.file != NULL ? conf->tls.file : conf->path,
			conf->tls.line);
	check_listeners(ctx, conf);
	check_networks(ctx, root, "smtp", "trusted_networks", conf->smtp.trusted_networks,
		       conf->smtp.n_trusted_networks);
	check_networks(ctx, root, "smtp", "xclient_networks", conf->smtp.xclient_networks,
		       conf->smtp.n_xclient_networks);
	check_networks(ctx, root, "http", "metrics_allow", conf->http.metrics_allow,
		       conf->http.n_metrics_allow);
	check_networks(ctx, root, "security", "exempt_networks", conf->security.exempt_networks,
		       conf->security.n_exempt_networks);
	check_networks(ctx, root, "lists", "whitehosts", conf->lists.whitehosts,
		       conf->lists.n_whitehosts);
	check_network_entries(ctx, root, "lists", "client_blacklist", conf->lists.client_blacklist,
			      conf->lists.n_client_blacklist);
	check_dnsbl_sites(ctx, root, "sites", conf->dnsbl.sites, conf->dnsbl.n_sites);
	check_dnsbl_sites(ctx, root, "rhsbl_sites", conf->dnsbl.rhsbl_sites,
			  conf->dnsbl.n_rhsbl_sites);
	for (size_t i = 0; i < conf->n_domains; i++)
		check_domain(ctx, conf, &conf->domains[i], i > 0 ? &conf->domains[i - 1] : NULL);
	if (conf->default_domain != NULL && conf_find_domain(conf, conf->default_domain) == NULL)
		conf_error_at(ctx, conf->path, 0, "default_domain %s: no such domain",
			      conf->default_domain);
}

/* ---- TLS ------------------------------------------------------------------------ */

static int tls_wanted(const struct warren_config *conf)
{
	for (size_t i = 0; i < conf->n_listeners; i++)
		if (conf->listeners[i].tls != CONF_TLS_NONE)
			return 1;
	return 0;
}

void conf_build_tls(struct conf_load_ctx *ctx, struct warren_config *conf)
{
	if (!tls_wanted(conf) || conf->tls.cert_file == NULL)
		return;
	struct tls_settings settings = {
		.cert_file = conf->tls.cert_file,
		.key_file = conf->tls.key_file,
		.min_protocol = conf->tls.min_protocol == CONF_TLS_V1_3 ? "TLSv1.3" : "TLSv1.2",
		.ciphers = conf->tls.ciphers,
		.ciphersuites = conf->tls.ciphersuites,
		.ticket_rotation_s = conf->tls.ticket_rotation_s,
	};
	char *err = NULL;
	conf->tls_server = tls_server_new(&settings, &err);
	if (conf->tls_server == NULL) {
		conf_error_at(ctx, conf->tls.file, conf->tls.line, "tls: %s", err);
		free(err);
		return;
	}
	for (size_t i = 0; i < conf->n_domains; i++) {
		const struct conf_domain *d = &conf->domains[i];
		if (d->tls.cert_file == NULL)
			continue;
		const char **names = x_calloc(d->n_hostnames + 1, sizeof(*names));
		names[0] = d->name;
		for (size_t h = 0; h < d->n_hostnames; h++)
			names[h + 1] = d->hostnames[h];
		if (tls_server_add_sni(conf->tls_server, d->tls.cert_file, d->tls.key_file,
				       names, d->n_hostnames + 1, &err) < 0) {
			conf_error_at(ctx, d->tls.file, d->tls.line, "domain %s: tls: %s",
				      d->name, err);
			free(err);
		}
		free(names);
	}
	if (ctx->n_errors > 0)
		tls_server_free(&conf->tls_server);
}
