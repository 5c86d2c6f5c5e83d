/* conf-snapshot.c — reference counting and lookups on a loaded configuration. */
#include "conf/conf-private.h"
#include "common/tls.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct conf_snapshot {
	struct warren_config conf;   /* first: the public view */
	int refs;
	struct pool *pool;
};

struct warren_config *conf_snapshot_alloc(struct pool *pool)
{
	struct conf_snapshot *snap = pool_alloc(pool, sizeof(*snap));
	return &snap->conf;
}

static struct conf_snapshot *snapshot_of(struct warren_config *conf)
{
	return (struct conf_snapshot *)((char *)conf - offsetof(struct conf_snapshot, conf));
}

void conf_snapshot_init(struct warren_config *conf, struct pool *pool)
{
	struct conf_snapshot *snap = snapshot_of(conf);
	snap->refs = 1;
	snap->pool = pool;
}

struct warren_config *conf_ref(struct warren_config *conf)
{
	__atomic_add_fetch(&snapshot_of(conf)->refs, 1, __ATOMIC_RELAXED);
	return conf;
}

void conf_unref(struct warren_config **confp)
{
	struct warren_config *conf = *confp;
	if (conf == NULL)
		return;
	*confp = NULL;
	struct conf_snapshot *snap = snapshot_of(conf);
	if (__atomic_sub_fetch(&snap->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	tls_server_free(&conf->tls_server);
	struct pool *pool = snap->pool;
	pool_free(&pool);
}

/* Case-insensitive compare of a key with a stored lower-case name. */
static int cmp_name(const char *key, const char *name)
{
	return strcasecmp(key, name);
}

#define BSEARCH_NAME(array, n, key, result) do {                          \
	size_t lo_ = 0, hi_ = (n);                                        \
	(result) = NULL;                                                  \
	while (lo_ < hi_) {                                               \
		size_t mid_ = lo_ + (hi_ - lo_) / 2;                      \
		int c_ = cmp_name((key), (array)[mid_].name);             \
		if (c_ == 0) { (result) = &(array)[mid_]; break; }        \
		if (c_ < 0) hi_ = mid_; else lo_ = mid_ + 1;              \
	}                                                                 \
} while (0)

const struct conf_domain *conf_find_domain(const struct warren_config *conf, const char *name)
{
	const struct conf_domain *d;
	BSEARCH_NAME(conf->domains, conf->n_domains, name, d);
	return d;
}

const struct conf_mailbox *conf_find_mailbox(const struct conf_domain *domain, const char *local)
{
	const struct conf_mailbox *m;
	BSEARCH_NAME(domain->mailboxes, domain->n_mailboxes, local, m);
	return m;
}

const struct conf_alias *conf_find_alias(const struct conf_domain *domain, const char *local)
{
	const struct conf_alias *a;
	BSEARCH_NAME(domain->aliases, domain->n_aliases, local, a);
	return a;
}

const struct conf_mailbox *conf_find_login(const struct warren_config *conf, const char *login)
{
	const char *at = strrchr(login, '@');
	const struct conf_domain *d;
	char local[256];
	if (at == NULL) {
		if (conf->default_domain == NULL)
			return NULL;
		d = conf_find_domain(conf, conf->default_domain);
		snprintf(local, sizeof(local), "%s", login);
	} else {
		if ((size_t)(at - login) >= sizeof(local))
			return NULL;
		d = conf_find_domain(conf, at + 1);
		memcpy(local, login, (size_t)(at - login));
		local[at - login] = '\0';
	}
	if (d == NULL || d->type != CONF_DOMAIN_LOCAL)
		return NULL;
	return conf_find_mailbox(d, local);
}
