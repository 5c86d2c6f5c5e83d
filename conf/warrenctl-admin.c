/* warrenctl-admin.c — the administrator's view of domains, users and their
 * mailboxes: `domain list`, `user list [DOMAIN]`, `user show ADDRESS`,
 * `mailbox list USER`, each with --json.
 *
 * Domains and users come from the configuration; usage and mailboxes from the
 * store, opened beside the running suite as any daemon does (no recovery).
 */
#include "storage/kv.h"
#include "conf/conf.h"
#include "conf/warrenctl.h"
#include "conf/warrenctl-admin.h"
#include "storage/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *domain_type(const struct conf_domain *d)
{
	return d->type == CONF_DOMAIN_LOCAL ? "local" : "remote";
}

static const char *auth_name(const struct conf_domain *d)
{
	return d->auth == CONF_AUTH_PAM ? "pam" : "local";
}

static void json_strlist(FILE *out, const char *const *items, size_t n)
{
	fputc('[', out);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			fputc(',', out);
		ctl_json_str(out, items[i]);
	}
	fputc(']', out);
}

/* ---- domain list ---- */

static int domain_list(struct ctl_options *opts, const struct warren_config *conf,
		       int argc, char **argv)
{
	if (argc != 1) {
		fprintf(stderr, "usage: warrenctl domain list\n");
		return 2;
	}
	if (opts->json) {
		printf("{\"domains\":[");
		for (size_t i = 0; i < conf->n_domains; i++) {
			const struct conf_domain *d = &conf->domains[i];
			printf("%s{\"name\":", i ? "," : "");
			ctl_json_str(stdout, d->name);
			printf(",\"type\":\"%s\",\"auth\":\"%s\",\"mailboxes\":%zu,\"aliases\":%zu,"
			       "\"hostnames\":", domain_type(d), auth_name(d), d->n_mailboxes,
			       d->n_aliases);
			json_strlist(stdout, d->hostnames, d->n_hostnames);
			printf(",\"relay_host\":");
			ctl_json_str(stdout, d->relay_host);
			printf(",\"catch_all\":");
			ctl_json_str(stdout, d->catch_all);
			printf(",\"file\":");
			ctl_json_str(stdout, d->file);
			printf(",\"line\":%d}", d->line);
		}
		printf("]}\n");
		return 0;
	}
	printf("%-32s %-6s %-5s %9s %7s  %s\n", "DOMAIN", "TYPE", "AUTH", "MAILBOXES",
	       "ALIASES", "HOST NAMES / RELAY");
	for (size_t i = 0; i < conf->n_domains; i++) {
		const struct conf_domain *d = &conf->domains[i];
		printf("%-32s %-6s %-5s %9zu %7zu  ", d->name, domain_type(d), auth_name(d),
		       d->n_mailboxes, d->n_aliases);
		if (d->type == CONF_DOMAIN_REMOTE)
			printf("relay to %s", d->relay_host != NULL ? d->relay_host : "?");
		for (size_t h = 0; h < d->n_hostnames; h++)
			printf("%s%s", h ? ", " : "", d->hostnames[h]);
		if (d->type == CONF_DOMAIN_LOCAL && d->n_hostnames == 0)
			printf("(%s)", conf->hostname);
		putchar('\n');
	}
	return 0;
}

/* ---- user list ---- */

static int user_list(struct ctl_options *opts, const struct warren_config *conf,
		     int argc, char **argv)
{
	if (argc > 2) {
		fprintf(stderr, "usage: warrenctl user list [DOMAIN]\n");
		return 2;
	}
	const struct conf_domain *only = NULL;
	if (argc == 2 && (only = conf_find_domain(conf, argv[1])) == NULL) {
		fprintf(stderr, "warrenctl user list: no domain %s in %s\n", argv[1], conf->path);
		return 1;
	}
	bool first = true;
	if (opts->json)
		printf("{\"users\":[");
	else
		printf("%-40s %-12s %-5s %s\n", "ADDRESS", "QUOTA", "AUTH", "FORWARD");
	for (size_t i = 0; i < conf->n_domains; i++) {
		const struct conf_domain *d = &conf->domains[i];
		if (only != NULL && d != only)
			continue;
		for (size_t m = 0; m < d->n_mailboxes; m++) {
			const struct conf_mailbox *mb = &d->mailboxes[m];
			if (opts->json) {
				printf("%s{\"address\":", first ? "" : ",");
				ctl_json_str(stdout, mb->address);
				printf(",\"domain\":");
				ctl_json_str(stdout, d->name);
				printf(",\"quota\":%llu,\"auth\":\"%s\",\"forward\":",
				       (unsigned long long)mb->quota, auth_name(d));
				json_strlist(stdout, mb->forward, mb->n_forward);
				putchar('}');
			} else {
				char q[32];
				printf("%-40s %-12s %-5s", mb->address,
				       ctl_human_size(mb->quota, "unlimited", q, sizeof(q)), auth_name(d));
				for (size_t f = 0; f < mb->n_forward; f++)
					printf("%s%s", f ? ", " : " ", mb->forward[f]);
				putchar('\n');
			}
			first = false;
		}
	}
	if (opts->json)
		printf("]}\n");
	return 0;
}

/* ---- user show ---- */

/* Does alias a (of domain d) deliver straight to mailbox mb? */
static bool alias_targets(const struct conf_domain *d, const struct conf_alias *a,
			  const struct conf_mailbox *mb)
{
	for (size_t t = 0; t < a->n_targets; t++) {
		const char *target = a->targets[t];
		if (strchr(target, '@') != NULL ? strcasecmp(target, mb->address) == 0 :
		    (mb->domain == d && strcasecmp(target, mb->name) == 0))
			return true;
	}
	return false;
}

struct usage {
	bool have_store;
	uint64_t bytes, messages;
	size_t mailboxes;
	int64_t last_login;          /* 0: none recorded */
	char last_login_how[KV_TEXT_MAX + 1];   /* "imap 192.0.2.7" */
};

static int read_usage(const struct warren_config *conf, const char *user, struct usage *u)
{
	struct store *st;
	int ret = ctl_store_open(conf, "user show", &st);
	if (ret <= 0)
		return ret;
	u->have_store = true;
	/* written by service/login.c at each successful login */
	struct kv_rec last;
	if (kv_get(st, "lastlogin", user, 0, &last) == STORE_OK) {
		u->last_login = last.value;
		snprintf(u->last_login_how, sizeof(u->last_login_how), "%s", last.text);
	}
	int err = store_user_usage(st, user, &u->bytes, &u->messages);
	struct store_mailbox *boxes = NULL;
	size_t n = 0;
	if (err == STORE_OK || err == STORE_ENOTFOUND)
		err = store_mailbox_list(st, user, &boxes, &n);
	free(boxes);
	store_close(&st);
	if (err == STORE_ENOTFOUND) {
		u->bytes = u->messages = 0;   /* nothing delivered to the user yet */
		n = 0;
	} else if (err != STORE_OK) {
		fprintf(stderr, "warrenctl user show: %s: %s\n", user, store_strerror(err));
		return -1;
	}
	u->mailboxes = n;
	return 0;
}

static void show_text(const struct warren_config *conf, const struct conf_mailbox *mb,
		      const struct usage *u)
{
	const struct conf_domain *d = mb->domain;
	char a[32], b[32];
	printf("address:           %s\n", mb->address);
	printf("domain:            %s (%s, passwords: %s)\n", d->name, domain_type(d), auth_name(d));
	printf("quota:             %s\n", ctl_human_size(mb->quota, "unlimited", a, sizeof(a)));
	if (!u->have_store)
		printf("used:              nothing yet (no store in %s)\n", conf->state_dir);
	else if (mb->quota > 0)
		printf("used:              %s in %llu message%s (%.1f%% of the quota)\n",
		       ctl_human_size(u->bytes, NULL, b, sizeof(b)), (unsigned long long)u->messages,
		       u->messages == 1 ? "" : "s", 100.0 * (double)u->bytes / (double)mb->quota);
	else
		printf("used:              %s in %llu message%s\n",
		       ctl_human_size(u->bytes, NULL, b, sizeof(b)), (unsigned long long)u->messages,
		       u->messages == 1 ? "" : "s");
	printf("mailboxes:         %zu\n", u->mailboxes);
	uint64_t max = mb->max_message_size ? mb->max_message_size :
		d->max_message_size ? d->max_message_size : conf->max_message_size;
	printf("max message size:  %s\n", ctl_human_size(max, NULL, a, sizeof(a)));
	printf("aliases:          ");
	size_t n = 0;
	for (size_t i = 0; i < conf->n_domains; i++)
		for (size_t k = 0; k < conf->domains[i].n_aliases; k++)
			if (alias_targets(&conf->domains[i], &conf->domains[i].aliases[k], mb))
				printf("%s %s@%s", n++ ? "," : "", conf->domains[i].aliases[k].name,
				       conf->domains[i].name);
	printf("%s\n", n ? "" : " -");
	printf("forward:          ");
	for (size_t f = 0; f < mb->n_forward; f++)
		printf("%s %s", f ? "," : "", mb->forward[f]);
	printf("%s\n", mb->n_forward == 0 ? " -" : mb->forward_keep_copy ? " (keeping a copy)" : "");
	if (u->last_login != 0) {
		char when[64];
		time_t t = (time_t)u->last_login;
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z", &tm);
		const char *sp = strchr(u->last_login_how, ' ');
		printf("last login:        %s (%.*s from %s)\n", when,
		       sp != NULL ? (int)(sp - u->last_login_how) : (int)strlen(u->last_login_how),
		       u->last_login_how, sp != NULL ? sp + 1 : "?");
	} else {
		printf("last login:        %s\n", u->have_store ? "never" : "unknown (no store)");
	}
	printf("defined at:        %s:%d\n", mb->file, mb->line);
}

static void show_json(const struct warren_config *conf, const struct conf_mailbox *mb,
		      const struct usage *u)
{
	const struct conf_domain *d = mb->domain;
	printf("{\"address\":");
	ctl_json_str(stdout, mb->address);
	printf(",\"domain\":");
	ctl_json_str(stdout, d->name);
	printf(",\"auth\":\"%s\",\"quota\":%llu,\"store\":%s,\"bytes_used\":%llu,"
	       "\"messages\":%llu,\"mailboxes\":%zu,\"max_message_size\":%llu,\"aliases\":[",
	       auth_name(d), (unsigned long long)mb->quota, u->have_store ? "true" : "false",
	       (unsigned long long)u->bytes, (unsigned long long)u->messages, u->mailboxes,
	       (unsigned long long)(mb->max_message_size ? mb->max_message_size :
				    d->max_message_size ? d->max_message_size :
				    conf->max_message_size));
	size_t n = 0;
	for (size_t i = 0; i < conf->n_domains; i++)
		for (size_t k = 0; k < conf->domains[i].n_aliases; k++)
			if (alias_targets(&conf->domains[i], &conf->domains[i].aliases[k], mb))
				printf("%s\"%s@%s\"", n++ ? "," : "", conf->domains[i].aliases[k].name,
				       conf->domains[i].name);
	printf("],\"forward\":");
	json_strlist(stdout, mb->forward, mb->n_forward);
	if (u->last_login != 0) {
		printf(",\"last_login\":%lld,\"last_login_from\":", (long long)u->last_login);
		ctl_json_str(stdout, u->last_login_how);
	} else {
		printf(",\"last_login\":null");
	}
	printf(",\"file\":");
	ctl_json_str(stdout, mb->file);
	printf(",\"line\":%d}\n", mb->line);
}

/* The mailbox of ADDRESS, or NULL with a message (aliases are named as such). */
static const struct conf_mailbox *find_user(const struct warren_config *conf, const char *cmd,
					    const char *address)
{
	const struct conf_mailbox *mb = conf_find_login(conf, address);
	if (mb != NULL)
		return mb;
	const char *at = strrchr(address, '@');
	const struct conf_domain *d = at != NULL ? conf_find_domain(conf, at + 1) : NULL;
	char local[256];
	if (d != NULL && (size_t)(at - address) < sizeof(local)) {
		memcpy(local, address, (size_t)(at - address));
		local[at - address] = '\0';
		if (conf_find_alias(d, local) != NULL) {
			fprintf(stderr, "warrenctl %s: %s is an alias, not a mailbox\n", cmd, address);
			return NULL;
		}
	}
	fprintf(stderr, "warrenctl %s: no mailbox %s in %s\n", cmd, address, conf->path);
	return NULL;
}

static int user_show(struct ctl_options *opts, const struct warren_config *conf,
		     int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: warrenctl user show ADDRESS\n");
		return 2;
	}
	const struct conf_mailbox *mb = find_user(conf, "user show", argv[1]);
	if (mb == NULL)
		return 1;
	struct usage u = { 0 };
	if (read_usage(conf, mb->address, &u) < 0)
		return 1;
	if (opts->json)
		show_json(conf, mb, &u);
	else
		show_text(conf, mb, &u);
	return 0;
}

/* ---- mailbox list ---- */

static void special_names(unsigned special, char *buf, size_t size)
{
	static const struct { unsigned bit; const char *name; } names[] = {
		{ STORE_SPECIAL_ALL, "\\All" }, { STORE_SPECIAL_ARCHIVE, "\\Archive" },
		{ STORE_SPECIAL_DRAFTS, "\\Drafts" }, { STORE_SPECIAL_FLAGGED, "\\Flagged" },
		{ STORE_SPECIAL_JUNK, "\\Junk" }, { STORE_SPECIAL_SENT, "\\Sent" },
		{ STORE_SPECIAL_TRASH, "\\Trash" },
	};
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && o < size; i++)
		if (special & names[i].bit)
			o += (size_t)snprintf(buf + o, size - o, "%s%s", o ? " " : "", names[i].name);
}

static int mailbox_list(struct ctl_options *opts, const struct warren_config *conf,
			int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: warrenctl mailbox list USER\n");
		return 2;
	}
	const struct conf_mailbox *mb = find_user(conf, "mailbox list", argv[1]);
	if (mb == NULL)
		return 1;
	struct store *st;
	struct store_mailbox *boxes = NULL;
	size_t n = 0;
	int ret = ctl_store_open(conf, "mailbox list", &st);
	if (ret < 0)
		return 1;
	if (ret > 0) {
		int err = store_mailbox_list(st, mb->address, &boxes, &n);
		store_close(&st);
		if (err != STORE_OK && err != STORE_ENOTFOUND) {
			fprintf(stderr, "warrenctl mailbox list: %s: %s\n", mb->address,
				store_strerror(err));
			return 1;
		}
	}
	char special[128], size[32];
	if (opts->json) {
		printf("{\"user\":");
		ctl_json_str(stdout, mb->address);
		printf(",\"mailboxes\":[");
	} else {
		printf("%-32s %8s %8s %10s %-5s %-16s %s\n", "MAILBOX", "MESSAGES", "UNSEEN", "SIZE",
		       "SUBS", "SPECIAL-USE", "UIDVALIDITY/UIDNEXT");
	}
	for (size_t i = 0; i < n; i++) {
		const struct store_mailbox *b = &boxes[i];
		special_names(b->special_use, special, sizeof(special));
		if (opts->json) {
			printf("%s{\"name\":", i ? "," : "");
			ctl_json_str(stdout, b->name);
			printf(",\"messages\":%u,\"unseen\":%u,\"bytes\":%llu,\"subscribed\":%s,"
			       "\"special_use\":", b->messages, b->unseen,
			       (unsigned long long)b->size, b->subscribed ? "true" : "false");
			ctl_json_str(stdout, special);
			printf(",\"uidvalidity\":%u,\"uidnext\":%u,\"highestmodseq\":%llu}",
			       b->uidvalidity, b->uidnext, (unsigned long long)b->highestmodseq);
		} else {
			printf("%-32s %8u %8u %10s %-5s %-16s %u/%u\n", b->name, b->messages,
			       b->unseen, ctl_human_size(b->size, NULL, size, sizeof(size)),
			       b->subscribed ? "yes" : "no", special[0] ? special : "-",
			       b->uidvalidity, b->uidnext);
		}
	}
	if (opts->json)
		printf("]}\n");
	else if (n == 0)
		printf("(no mailboxes yet: %s has received no mail)\n", mb->address);
	free(boxes);
	return 0;
}

/* ---- dispatch ---- */

struct admin_command {
	const char *group;
	const char *name;
	int (*run)(struct ctl_options *opts, const struct warren_config *conf, int argc,
		   char **argv);
};

static const struct admin_command admin_commands[] = {
	{ "domain", "list", domain_list },
	{ "user", "list", user_list },
	{ "user", "show", user_show },
	{ "mailbox", "list", mailbox_list },
};

static int dispatch(const char *group, struct ctl_options *opts, int argc, char **argv)
{
	const char *sub = argc >= 1 ? argv[0] : "";
	for (size_t i = 0; i < sizeof(admin_commands) / sizeof(admin_commands[0]); i++) {
		const struct admin_command *c = &admin_commands[i];
		if (strcmp(c->group, group) != 0 || strcmp(c->name, sub) != 0)
			continue;
		struct warren_config *conf;
		if (ctl_load_config(opts, CONF_LOAD_NO_TLS, &conf) < 0) {
			fprintf(stderr, "%s: configuration has errors\n", opts->config);
			return 1;
		}
		int ret = c->run(opts, conf, argc, argv);
		conf_unref(&conf);
		return ret;
	}
	fprintf(stderr, "warrenctl %s: unknown command \"%s\" (", group, sub);
	bool first = true;
	for (size_t i = 0; i < sizeof(admin_commands) / sizeof(admin_commands[0]); i++)
		if (strcmp(admin_commands[i].group, group) == 0) {
			fprintf(stderr, "%s%s", first ? "" : ", ", admin_commands[i].name);
			first = false;
		}
	fprintf(stderr, ")\n");
	return 2;
}

int ctl_cmd_domain(struct ctl_options *opts, int argc, char **argv)
{
	return dispatch("domain", opts, argc, argv);
}

int ctl_cmd_user(struct ctl_options *opts, int argc, char **argv)
{
	return dispatch("user", opts, argc, argv);
}

int ctl_cmd_mailbox(struct ctl_options *opts, int argc, char **argv)
{
	return dispatch("mailbox", opts, argc, argv);
}
