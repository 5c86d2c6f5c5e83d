/* warrenctl-queue.c — `warrenctl queue list|show|flush|delete|hold|release` over
 * the outbound queue in the store, and `warrenctl dkim keygen DOMAIN SELECTOR`.
 *
 * Like `warrenctl store`, it attaches to the store as a non-master process and,
 * started as root, works as the owner of the store files. Changes are announced
 * through the store's notifications, so a running smtpd starts a flushed or
 * released message at once.
 */
#include "conf/conf.h"
#include "conf/warrenctl.h"
#include "conf/warrenctl-admin.h"
#include "storage/queue.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

/* Bytes of a queued message's headers `queue show` prints at most. */
#define CTL_SHOW_HEADERS_MAX (64 * 1024)

static int attach(const struct warren_config *conf, struct store **store_r)
{
	int ret = ctl_store_open(conf, "queue", store_r);
	if (ret == 0)
		fprintf(stderr, "warrenctl queue: no store in %s (has warren run?)\n",
			conf->state_dir);
	return ret == 1 ? 0 : -1;
}

static void fmt_time(int64_t t, char *out, size_t size)
{
	if (t == 0) {
		snprintf(out, size, "-");
		return;
	}
	time_t tt = (time_t)t;
	struct tm tm;
	localtime_r(&tt, &tm);
	strftime(out, size, "%a %b %e %H:%M:%S", &tm);
}

static void list_json(const struct queue_msg *msgs, size_t n)
{
	printf("[");
	for (size_t i = 0; i < n; i++) {
		const struct queue_msg *m = &msgs[i];
		printf("%s{\"id\":", i ? "," : "");
		ctl_json_str(stdout, m->id);
		printf(",\"from\":");
		ctl_json_str(stdout, m->from);
		printf(",\"size\":%llu,\"arrival\":%lld,\"hold\":%s,\"bounce\":%s,\"recipients\":[",
		       (unsigned long long)m->size, (long long)m->created,
		       (m->flags & QUEUE_F_HOLD) ? "true" : "false",
		       (m->flags & QUEUE_F_BOUNCE) ? "true" : "false");
		for (size_t k = 0; k < m->n_rcpts; k++) {
			const struct queue_rcpt *r = &m->rcpts[k];
			printf("%s{\"address\":", k ? "," : "");
			ctl_json_str(stdout, r->addr);
			printf(",\"state\":\"%s\",\"attempts\":%u,\"next_attempt\":%lld,\"status\":",
			       queue_rcpt_state_name(r->state), r->attempts,
			       (long long)r->next_attempt);
			ctl_json_str(stdout, r->status);
			printf(",\"reply\":");
			ctl_json_str(stdout, r->reply);
			printf("}");
		}
		printf("]}");
	}
	printf("]\n");
}

/* Postfix's mailq layout: '!' after the id of a held message. */
static int queue_list_cmd(struct ctl_options *opts, struct store *store)
{
	struct queue_msg *msgs;
	size_t n;
	int ret = queue_list(store, &msgs, &n);
	if (ret != 0) {
		fprintf(stderr, "warrenctl queue: %s\n", store_strerror(ret));
		return 1;
	}
	if (opts->json) {
		list_json(msgs, n);
		queue_msgs_free(msgs, n);
		return 0;
	}
	if (n == 0) {
		printf("Mail queue is empty\n");
		return 0;
	}
	printf("%-20s %8s %-20s %s\n", "-Queue ID-", "--Size--", "----Arrival Time----",
	       "-Sender/Recipient-------");
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		const struct queue_msg *m = &msgs[i];
		char when[64], id[QUEUE_ID_SIZE + 2];
		fmt_time(m->created, when, sizeof(when));
		snprintf(id, sizeof(id), "%s%s", m->id, (m->flags & QUEUE_F_HOLD) ? "!" : "");
		printf("%-20s %8llu %-20s %s\n", id, (unsigned long long)m->size, when,
		       m->from[0] ? m->from : "MAILER-DAEMON");
		for (size_t k = 0; k < m->n_rcpts; k++) {
			const struct queue_rcpt *r = &m->rcpts[k];
			if (r->state != QUEUE_RCPT_PENDING)
				continue;
			if (r->reply[0] != '\0')
				printf("%51s(%s)\n", "", r->reply);
			printf("%51s%s\n", "", r->addr);
		}
		printf("\n");
		total += m->size;
	}
	printf("-- %llu Kbytes in %zu Request%s.\n", (unsigned long long)(total + 1023) / 1024,
	       n, n == 1 ? "" : "s");
	queue_msgs_free(msgs, n);
	return 0;
}

static int queue_show_cmd(struct ctl_options *opts, struct store *store, const char *id)
{
	struct queue_msg m;
	int ret = queue_get(store, id, &m);
	if (ret != 0) {
		fprintf(stderr, "warrenctl queue show: %s: %s\n", id,
			ret == STORE_ENOTFOUND || ret == STORE_EINVAL ? "no such message" :
			store_strerror(ret));
		return 1;
	}
	if (opts->json) {
		list_json(&m, 1);
		queue_msg_free(&m);
		return 0;
	}
	char when[64];
	fmt_time(m.created, when, sizeof(when));
	printf("id: %s%s\nfrom: <%s>\nsize: %llu\narrival: %s\norigin: %s\n", m.id,
	       (m.flags & QUEUE_F_HOLD) ? " (on hold)" : "", m.from,
	       (unsigned long long)m.size, when, m.origin);
	if (m.envid[0] != '\0')
		printf("envid: %s\n", m.envid);
	if (m.ret != QUEUE_RET_DEFAULT)
		printf("ret: %s\n", m.ret == QUEUE_RET_FULL ? "FULL" : "HDRS");
	for (size_t k = 0; k < m.n_rcpts; k++) {
		const struct queue_rcpt *r = &m.rcpts[k];
		char next[64], last[64];
		fmt_time(r->next_attempt, next, sizeof(next));
		fmt_time(r->last_attempt, last, sizeof(last));
		printf("to: <%s> %s, attempts %u, last %s, next %s", r->addr,
		       queue_rcpt_state_name(r->state), r->attempts, last,
		       r->state == QUEUE_RCPT_PENDING ? next : "-");
		if (r->reply[0] != '\0')
			printf(", dsn=%s, %s (%s)", r->status, r->remote[0] ? r->remote : "none",
			       r->reply);
		printf("\n");
	}
	char *body;
	size_t len;
	if (queue_body_read(store, m.id, (size_t)1 << 32, &body, &len) == 0) {
		printf("\n");
		size_t end = len;
		for (size_t i = 0; i + 3 < len; i++)
			if (memcmp(body + i, "\r\n\r\n", 4) == 0) {
				end = i + 2;
				break;
			}
		if (end > CTL_SHOW_HEADERS_MAX)
			end = CTL_SHOW_HEADERS_MAX;
		for (size_t i = 0; i < end; i++)
			if (body[i] != '\r')
				putchar(body[i]);
		free(body);
	}
	queue_msg_free(&m);
	return 0;
}

static int queue_change_cmd(const char *what, struct store *store, const char *id)
{
	int ret;
	size_t count = 0;
	if (strcmp(what, "flush") == 0) {
		ret = queue_flush(store, id, &count);
		if (ret == 0) {
			printf(id != NULL ? "%s: flushed\n" : "%s%zu messages flushed\n",
			       id != NULL ? id : "", count);
			return 0;
		}
	} else if (strcmp(what, "delete") == 0) {
		ret = queue_delete(store, id);
	} else {
		ret = queue_hold(store, id, strcmp(what, "hold") == 0);
	}
	if (ret == 0) {
		printf("%s: %s\n", id, strcmp(what, "delete") == 0 ? "removed" :
		       strcmp(what, "hold") == 0 ? "placed on hold" : "released from hold");
		return 0;
	}
	fprintf(stderr, "warrenctl queue %s: %s: %s\n", what, id != NULL ? id : "",
		ret == STORE_ENOTFOUND || ret == STORE_EINVAL ? "no such message" :
		store_strerror(ret));
	return 1;
}

static int queue_usage(void)
{
	fprintf(stderr, "usage: warrenctl queue list | show ID | flush [ID] | delete ID | "
		"hold ID | release ID\n");
	return 2;
}

int ctl_cmd_queue(struct ctl_options *opts, int argc, char **argv)
{
	if (argc < 1)
		return queue_usage();
	const char *what = argv[0];
	bool needs_id = strcmp(what, "show") == 0 || strcmp(what, "delete") == 0 ||
		strcmp(what, "hold") == 0 || strcmp(what, "release") == 0;
	if (!needs_id && strcmp(what, "list") != 0 && strcmp(what, "flush") != 0)
		return queue_usage();
	if ((needs_id && argc != 2) || (strcmp(what, "list") == 0 && argc != 1) ||
	    (strcmp(what, "flush") == 0 && argc > 2))
		return queue_usage();
	struct warren_config *conf;
	if (ctl_load_config(opts, CONF_LOAD_NO_TLS, &conf) < 0)
		return 1;
	struct store *store;
	if (attach(conf, &store) < 0) {
		conf_unref(&conf);
		return 1;
	}
	int ret;
	if (strcmp(what, "list") == 0)
		ret = queue_list_cmd(opts, store);
	else if (strcmp(what, "show") == 0)
		ret = queue_show_cmd(opts, store, argv[1]);
	else
		ret = queue_change_cmd(what, store, argc == 2 ? argv[1] : NULL);
	store_close(&store);
	conf_unref(&conf);
	return ret;
}

/* ---- dkim keygen ---------------------------------------------------------------- */

static bool name_ok(const char *s)
{
	if (*s == '\0' || strlen(s) > 200)
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '.' || *s == '_'))
			return false;
	return true;
}

/* The public key for the TXT record: RSA as DER SubjectPublicKeyInfo, Ed25519
 * as the raw 32 bytes (RFC 8463 4.2), in base64. */
static char *public_b64(EVP_PKEY *key, bool ed25519)
{
	unsigned char raw[4096];
	size_t len = sizeof(raw);
	if (ed25519) {
		if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1)
			return NULL;
	} else {
		unsigned char *p = raw;
		int n = i2d_PUBKEY(key, NULL);
		if (n <= 0 || (size_t)n > sizeof(raw))
			return NULL;
		i2d_PUBKEY(key, &p);
		len = (size_t)n;
	}
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	if (out != NULL)
		EVP_EncodeBlock((unsigned char *)out, raw, (int)len);
	return out;
}

int ctl_cmd_dkim(struct ctl_options *opts, int argc, char **argv)
{
	/* dkim keygen DOMAIN SELECTOR [rsa|ed25519] [FILE] */
	if (argc < 3 || argc > 5 || strcmp(argv[0], "keygen") != 0) {
		fprintf(stderr, "usage: warrenctl dkim keygen DOMAIN SELECTOR [rsa|ed25519] [FILE]\n");
		return 2;
	}
	const char *domain = argv[1], *selector = argv[2];
	const char *type = argc >= 4 ? argv[3] : "rsa";
	bool ed = strcasecmp(type, "ed25519") == 0;
	if (!name_ok(domain) || !name_ok(selector) || (!ed && strcasecmp(type, "rsa") != 0)) {
		fprintf(stderr, "warrenctl dkim keygen: bad domain, selector or key type\n");
		return 2;
	}
	char path[4096];
	if (argc == 5) {
		snprintf(path, sizeof(path), "%s", argv[4]);
	} else {
		struct warren_config *conf;
		if (ctl_load_config(opts, CONF_LOAD_NO_TLS, &conf) < 0)
			return 1;
		char dir[3600];
		snprintf(dir, sizeof(dir), "%.3000s/dkim", conf->state_dir);
		mkdir(conf->state_dir, 0750);
		mkdir(dir, 0750);
		snprintf(path, sizeof(path), "%s/%s.%s.key", dir, domain, selector);
		conf_unref(&conf);
	}
	EVP_PKEY *key = ed ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519") :
		EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	if (key == NULL) {
		fprintf(stderr, "warrenctl dkim keygen: key generation failed\n");
		return 1;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	FILE *fp = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (fp == NULL) {
		fprintf(stderr, "warrenctl dkim keygen: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		EVP_PKEY_free(key);
		return 1;
	}
	int ok = PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL);
	if (fclose(fp) != 0 || !ok) {
		fprintf(stderr, "warrenctl dkim keygen: cannot write %s\n", path);
		EVP_PKEY_free(key);
		return 1;
	}
	char *pub = public_b64(key, ed);
	EVP_PKEY_free(key);
	if (pub == NULL) {
		fprintf(stderr, "warrenctl dkim keygen: cannot encode the public key\n");
		return 1;
	}
	/* a TXT character-string holds 255 bytes: longer keys go in several */
	printf("# key written to %s; in the domain's block:\n"
	       "#   dkim_selector = \"%s\"\n#   dkim_key = \"%s\"\n"
	       "# and in DNS:\n%s._domainkey.%s. IN TXT ( \"v=DKIM1; k=%s; p=\"",
	       path, selector, path, selector, domain, ed ? "ed25519" : "rsa");
	for (size_t i = 0, n = strlen(pub); i < n; i += 250)
		printf(" \"%.250s\"", pub + i);
	printf(" )\n");
	free(pub);
	return 0;
}
