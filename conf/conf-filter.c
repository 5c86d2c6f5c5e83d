/* conf-filter.c — content filter rules (filter NAME { }): checked, and their PCRE2
 * patterns compiled once per snapshot, into the snapshot's pool (a PCRE2 general
 * context whose allocator is the pool), so they live and die with it and smtpd
 * never compiles a pattern per message. */
#include "conf/conf-private.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <string.h>
#include <strings.h>

/* Longest reject text: it goes into a reply line with a code and an address. */
#define CONF_FILTER_TEXT_MAX 400

static void *pool_malloc(PCRE2_SIZE size, void *data)
{
	return pool_alloc(data, size);
}

static void pool_nofree(void *p, void *data)
{
	/* freed with the snapshot's pool */
	(void)p;
	(void)data;
}

static bool one_line(const char *s)
{
	return s == NULL || strpbrk(s, "\r\n") == NULL;
}

/* "Name: value" with a field name of printable ASCII without ':' or blanks. */
static bool header_line_valid(const char *s)
{
	const char *colon = strchr(s, ':');
	if (colon == NULL || colon == s || !one_line(s))
		return false;
	for (const char *p = s; p < colon; p++)
		if (*p <= ' ' || *p >= 127)
			return false;
	return true;
}

static void check_one(struct conf_load_ctx *ctx, struct warren_config *conf,
		      struct conf_filter *f, pcre2_compile_context *cc)
{
	const char *file = f->file;
	int line = f->line;
	if (f->on < 0)
		f->on = CONF_FILTER_HEADER;
	if (f->on == CONF_FILTER_HEADER && (f->header == NULL || f->header[0] == '\0'))
		conf_error_at(ctx, file, line, "filter %s: on = header needs header (a field name)",
			      f->name);
	if (f->on != CONF_FILTER_HEADER && f->header != NULL)
		conf_error_at(ctx, file, line, "filter %s: header is only for on = header", f->name);
	if (f->header != NULL && (strchr(f->header, ':') != NULL || strpbrk(f->header, " \t\r\n")))
		conf_error_at(ctx, file, line, "filter %s: header: a field name without ':' or blanks",
			      f->name);
	if (f->action < 0)
		conf_error_at(ctx, file, line, "filter %s: action is required", f->name);
	if (f->text != NULL && (!one_line(f->text) || strlen(f->text) > CONF_FILTER_TEXT_MAX))
		conf_error_at(ctx, file, line, "filter %s: text must be one line of at most %d bytes",
			      f->name, CONF_FILTER_TEXT_MAX);
	if (f->action == CONF_FILTER_TAG && f->tag_header == NULL && f->subject_prefix == NULL)
		conf_error_at(ctx, file, line, "filter %s: action = tag needs tag_header or "
			      "subject_prefix", f->name);
	if (f->tag_header != NULL && !header_line_valid(f->tag_header))
		conf_error_at(ctx, file, line, "filter %s: tag_header must be one \"Name: value\" line",
			      f->name);
	if (!one_line(f->subject_prefix))
		conf_error_at(ctx, file, line, "filter %s: subject_prefix must be one line", f->name);
	if (f->action == CONF_FILTER_REDIRECT) {
		const char *at = f->redirect != NULL ? strrchr(f->redirect, '@') : NULL;
		if (at == NULL || at == f->redirect || at[1] == '\0' || !one_line(f->redirect) ||
		    strpbrk(f->redirect, " \t<>") != NULL) {
			conf_error_at(ctx, file, line, "filter %s: action = redirect needs redirect "
				      "(an address)", f->name);
		} else {
			const struct conf_domain *d = conf_find_domain(conf, at + 1);
			char local[256];
			size_t n = (size_t)(at - f->redirect);
			if (d != NULL && d->type == CONF_DOMAIN_LOCAL) {
				bool found = false;
				if (n < sizeof(local)) {
					memcpy(local, f->redirect, n);
					local[n] = '\0';
					found = conf_find_mailbox(d, local) != NULL;
				}
				if (!found)
					conf_error_at(ctx, file, line, "filter %s: redirect: %s is not a "
						      "mailbox of %s", f->name, f->redirect, d->name);
			}
		}
	}
	if (f->match == NULL) {
		conf_error_at(ctx, file, line, "filter %s: match is required", f->name);
		return;
	}
	uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (f->caseless ? PCRE2_CASELESS : 0);
	int err;
	PCRE2_SIZE off;
	pcre2_code *code = pcre2_compile((PCRE2_SPTR)f->match, PCRE2_ZERO_TERMINATED, opts, &err,
					 &off, cc);
	if (code == NULL) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(err, msg, sizeof(msg));
		conf_error_at(ctx, file, line, "filter %s: match: %s at offset %zu", f->name,
			      (const char *)msg, (size_t)off);
		return;
	}
	f->code = code;
}

void conf_filters_check(struct conf_load_ctx *ctx, struct warren_config *conf)
{
	pcre2_general_context *gc = pcre2_general_context_create(pool_malloc, pool_nofree,
								 ctx->pool);
	pcre2_compile_context *cc = pcre2_compile_context_create(gc);
	for (size_t i = 0; i < conf->n_filters; i++)
		check_one(ctx, conf, (struct conf_filter *)&conf->filters[i], cc);
	for (size_t d = 0; d < conf->n_domains; d++) {
		const struct conf_domain *dom = &conf->domains[d];
		for (size_t i = 0; i < dom->n_filters; i++)
			check_one(ctx, conf, (struct conf_filter *)&dom->filters[i], cc);
		if (dom->quarantine_mailbox != NULL &&
		    conf_find_mailbox(dom, dom->quarantine_mailbox) == NULL)
			conf_error_at(ctx, dom->file, dom->line, "domain %s: quarantine_mailbox %s is "
				      "not a mailbox of the domain", dom->name, dom->quarantine_mailbox);
	}
	/* the contexts came from the pool too: nothing to free */
}
