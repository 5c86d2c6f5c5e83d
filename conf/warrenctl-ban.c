/* warrenctl-ban.c — `warrenctl ban list|add|remove`: the blocks that the login
 * path (service/login.c) writes after too many failed logins (security { }), in
 * the store's "ban" space, shared by every daemon. A key is a client address or
 * a mailbox address.
 */
#include "conf/conf.h"
#include "conf/conf-private.h"
#include "conf/warrenctl.h"
#include "conf/warrenctl-admin.h"
#include "storage/kv.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The kv spaces of service/login.c. */
#define BAN_SPACE "ban"
#define FAIL_SPACE "authfail"

static int ban_usage(void)
{
	fprintf(stderr, "usage: warrenctl ban list\n"
			"       warrenctl ban add IP|ADDRESS [DURATION]\n"
			"       warrenctl ban remove IP|ADDRESS\n");
	return 2;
}

/* A client address in the form the daemons log it (inet_ntop), or a mailbox
 * address as is (lower case). 0, or -1 when it is neither. */
static int ban_key(const struct warren_config *conf, const char *arg, char *key, size_t size)
{
	unsigned char bin[16];
	if (inet_pton(AF_INET, arg, bin) == 1)
		return inet_ntop(AF_INET, bin, key, (socklen_t)size) != NULL ? 0 : -1;
	if (inet_pton(AF_INET6, arg, bin) == 1)
		return inet_ntop(AF_INET6, bin, key, (socklen_t)size) != NULL ? 0 : -1;
	const struct conf_mailbox *mb = strchr(arg, '@') != NULL ? conf_find_login(conf, arg) : NULL;
	if (mb == NULL)
		return -1;
	snprintf(key, size, "%s", mb->address);
	return 0;
}

static void fmt_time(int64_t t, char *out, size_t size)
{
	if (t == 0) {
		snprintf(out, size, "never");
		return;
	}
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, size, "%Y-%m-%d %H:%M:%SZ", &tm);
}

struct list_ctx {
	const struct ctl_options *opts;
	unsigned n;
};

static int list_one(const char *key, const struct kv_rec *rec, void *arg)
{
	struct list_ctx *ctx = arg;
	char since[32], until[32];
	fmt_time(rec->first, since, sizeof(since));
	fmt_time(rec->expires, until, sizeof(until));
	if (ctx->opts->json) {
		printf("%s{\"key\":", ctx->n > 0 ? "," : "");
		ctl_json_str(stdout, key);
		printf(",\"since\":%lld,\"until\":%lld,\"reason\":", (long long)rec->first,
		       (long long)rec->expires);
		ctl_json_str(stdout, rec->text);
		printf("}");
	} else {
		printf("%-40s since %s  until %s  %s\n", key, since, until, rec->text);
	}
	ctx->n++;
	return 0;
}

static int ban_list(const struct ctl_options *opts, struct store *store)
{
	struct list_ctx ctx = { opts, 0 };
	if (opts->json)
		printf("[");
	int ret = kv_list(store, BAN_SPACE, (int64_t)time(NULL), list_one, &ctx);
	if (opts->json)
		printf("]\n");
	if (ret != STORE_OK) {
		fprintf(stderr, "warrenctl ban list: %s\n", store_strerror(ret));
		return 1;
	}
	if (!opts->json && ctx.n == 0)
		printf("no blocks\n");
	return 0;
}

static int ban_add(struct store *store, const char *key, unsigned seconds)
{
	int64_t now = (int64_t)time(NULL);
	struct kv_rec rec = { .expires = now + seconds };
	snprintf(rec.text, sizeof(rec.text), "added by warrenctl");
	int ret = kv_put(store, BAN_SPACE, key, now, &rec);
	if (ret != STORE_OK) {
		fprintf(stderr, "warrenctl ban add: %s\n", store_strerror(ret));
		return 1;
	}
	printf("%s: blocked for %us\n", key, seconds);
	return 0;
}

static int ban_remove(struct store *store, const char *key)
{
	int ret = kv_del(store, BAN_SPACE, key);
	int fret = kv_del(store, FAIL_SPACE, key);   /* and its failures so far */
	if (ret == STORE_ENOTFOUND) {
		fprintf(stderr, "warrenctl ban remove: %s is not blocked\n", key);
		return 1;
	}
	if (ret != STORE_OK || (fret != STORE_OK && fret != STORE_ENOTFOUND)) {
		fprintf(stderr, "warrenctl ban remove: %s\n",
			store_strerror(ret != STORE_OK ? ret : fret));
		return 1;
	}
	printf("%s: block removed\n", key);
	return 0;
}

int ctl_cmd_ban(struct ctl_options *opts, int argc, char **argv)
{
	if (argc < 1)
		return ban_usage();
	const char *what = argv[0];
	bool list = strcmp(what, "list") == 0, add = strcmp(what, "add") == 0,
	     rm = strcmp(what, "remove") == 0;
	if ((list && argc != 1) || (add && (argc < 2 || argc > 3)) || (rm && argc != 2) ||
	    (!list && !add && !rm))
		return ban_usage();
	struct warren_config *conf;
	if (ctl_load_config(opts, CONF_LOAD_NO_TLS, &conf) < 0)
		return 1;
	char key[KV_KEY_MAX + 1];
	long long seconds = conf->security.block_time_s;
	int ret = 1;
	if (!list && ban_key(conf, argv[1], key, sizeof(key)) < 0) {
		fprintf(stderr, "warrenctl ban %s: %s is neither an IP address nor a mailbox\n",
			what, argv[1]);
		goto out;
	}
	if (add && argc == 3 && (conf_parse_duration(argv[2], 0, &seconds) < 0 ||
				 seconds <= 0 || seconds > 365LL * 86400)) {
		fprintf(stderr, "warrenctl ban add: %s is not a duration such as 30m, 2h or 7d\n",
			argv[2]);
		goto out;
	}
	struct store *store;
	int opened = ctl_store_open(conf, "ban", &store);
	if (opened == 0) {
		fprintf(stderr, "warrenctl ban: no store in %s (has warren run?)\n",
			conf->state_dir);
	} else if (opened == 1) {
		if (list)
			ret = ban_list(opts, store);
		else if (add)
			ret = ban_add(store, key, (unsigned)seconds);
		else
			ret = ban_remove(store, key);
		store_close(&store);
	}
out:
	conf_unref(&conf);
	return ret;
}
