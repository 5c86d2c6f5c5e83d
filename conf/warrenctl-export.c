/* warrenctl-export.c — `warrenctl export USER DIR --maildir | --mbox`: writes
 * every folder of a user out of the store, in the layouts `warrenctl import`
 * (and Dovecot, mutt) read back.
 *
 * Maildir: DIR is INBOX (cur/ new/ tmp/), "a/b" is DIR/.a.b (Maildir++); each
 * message is cur/TIME.WUID.HOST,S=SIZE:2,FLAGS with its internal date as the
 * file's modification time, keywords as letters through the folder's
 * dovecot-keywords (26 at most per folder; more are dropped with a warning).
 * Mbox: one file per folder, DIR/NAME.mbox ("a/b" is DIR/a/b.mbox), mboxrd
 * quoting, "From SENDER DATE" with the internal date, flags as Status, X-Status
 * and X-Keywords headers.
 *
 * Lines end in LF (the store keeps CRLF). Every file is fsynced and renamed into
 * place; DIR must be new or empty, so an export never mixes with older files.
 * The store is read in blocks of EXPORT_BLOCK UIDs (bounded memory).
 */
#include "conf/conf.h"
#include "conf/warrenctl.h"
#include "conf/warrenctl-admin.h"
#include "conf/warrenctl-mailfmt.h"
#include "storage/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Messages read from the store at once. */
#define EXPORT_BLOCK 4096

struct export {
	struct store *st;
	const char *user;
	const char *root;
	char host[64];
	unsigned long messages, folders, failed;
	unsigned dropped_keywords;
};

/* The whole body of a message as LF text. */
static int read_body(struct export *ex, const struct store_message *m, struct mailfmt_buf *out)
{
	out->len = 0;
	out->max = (size_t)m->size + 1;
	char chunk[65536];
	uint64_t off = 0;
	while (off < m->size) {
		size_t n = 0;
		size_t want = m->size - off < sizeof(chunk) ? (size_t)(m->size - off) : sizeof(chunk);
		int err = store_blob_read(ex->st, m->blob, off, chunk, want, &n);
		if (err != STORE_OK || n == 0)
			return -1;
		/* CRLF to LF; a CR at the end of a chunk is decided with the next one */
		size_t start = 0;
		for (size_t i = 0; i < n; i++) {
			if (chunk[i] != '\n')
				continue;
			size_t end = i;
			if (i > 0 && chunk[i - 1] == '\r')
				end = i - 1;
			else if (i == 0 && out->len > 0 && out->data[out->len - 1] == '\r' &&
				 start == 0)
				out->len--;
			if (mailfmt_buf_add(out, chunk + start, end - start) < 0 ||
			    mailfmt_buf_add(out, "\n", 1) < 0)
				return -1;
			start = i + 1;
		}
		if (mailfmt_buf_add(out, chunk + start, n - start) < 0)
			return -1;
		off += n;
	}
	return 0;
}

static int make_dir(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "warrenctl export: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Calls fn for each message of the mailbox, in UID order, EXPORT_BLOCK at a time. */
static int each_message(struct export *ex, const struct store_mailbox *box,
			int (*fn)(struct export *ex, const struct store_message *m, void *ctx),
			void *ctx)
{
	uint32_t first = 1;
	while (first < box->uidnext && first != 0) {
		uint32_t last = box->uidnext - first > EXPORT_BLOCK ? first + EXPORT_BLOCK - 1 :
			box->uidnext - 1;
		struct store_message *msgs = NULL;
		size_t n = 0;
		int err = store_messages(ex->st, box->id, first, last, &msgs, &n);
		if (err != STORE_OK) {
			fprintf(stderr, "warrenctl export: %s: %s\n", box->name, store_strerror(err));
			return -1;
		}
		int ret = 0;
		for (size_t i = 0; i < n && ret == 0; i++)
			ret = fn(ex, &msgs[i], ctx);
		free(msgs);
		if (ret < 0)
			return -1;
		first = last + 1;
	}
	return 0;
}

/* ---- maildir ---- */

struct maildir_ctx {
	char dir[4096];
	struct mailfmt_keywords kw;
	struct mailfmt_buf body;
};

static int maildir_message(struct export *ex, const struct store_message *m, void *arg)
{
	struct maildir_ctx *c = arg;
	if (read_body(ex, m, &c->body) < 0) {
		fprintf(stderr, "warrenctl export: %s UID %u: cannot read the body\n", c->dir, m->uid);
		ex->failed++;
		return 0;
	}
	char info[64], tmp[4400], path[4400];
	mailfmt_maildir_info(m->flags, m->keywords, &c->kw, info, sizeof(info),
			     &ex->dropped_keywords);
	snprintf(tmp, sizeof(tmp), "%s/tmp/%lld.W%u.%s", c->dir, (long long)m->internal_date,
		 m->uid, ex->host);
	snprintf(path, sizeof(path), "%s/cur/%lld.W%u.%s,S=%zu%s", c->dir,
		 (long long)m->internal_date, m->uid, ex->host, c->body.len, info);
	const char *err;
	if (mailfmt_write_file(tmp, path, c->body.data, c->body.len, m->internal_date, &err) < 0) {
		fprintf(stderr, "warrenctl export: %s: %s\n", path, err);
		return -1;
	}
	ex->messages++;
	return 0;
}

static int export_maildir_folder(struct export *ex, const struct store_mailbox *box)
{
	struct maildir_ctx c = { .body = { 0 } };
	if (strcasecmp(box->name, "INBOX") == 0) {
		snprintf(c.dir, sizeof(c.dir), "%s", ex->root);
	} else {
		char sub[2048];
		if (mailfmt_folder_to_dir(box->name, sub, sizeof(sub)) < 0) {
			fprintf(stderr, "warrenctl export: folder name too long: %.80s\n", box->name);
			return -1;
		}
		snprintf(c.dir, sizeof(c.dir), "%s/%s", ex->root, sub);
	}
	char p[4200];
	if (make_dir(c.dir) < 0)
		return -1;
	static const char *const subs[] = { "cur", "new", "tmp" };
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", c.dir, subs[i]);
		if (make_dir(p) < 0)
			return -1;
	}
	int ret = each_message(ex, box, maildir_message, &c);
	mailfmt_buf_free(&c.body);
	if (ret == 0)
		ret = mailfmt_keywords_write(c.dir, &c.kw);
	snprintf(p, sizeof(p), "%s/cur", c.dir);
	if (ret == 0 && (mailfmt_fsync_dir(p) < 0 || mailfmt_fsync_dir(c.dir) < 0)) {
		fprintf(stderr, "warrenctl export: %s: fsync: %s\n", c.dir, strerror(errno));
		ret = -1;
	}
	ex->folders++;
	return ret;
}

/* Dovecot's subscriptions file (version 2: names with tabs between levels). */
static int write_subscriptions(struct export *ex, const struct store_mailbox *boxes, size_t n)
{
	struct mailfmt_buf b = { .max = 16 * 1024 * 1024 };
	int ret = mailfmt_buf_add(&b, "V\t2\n\n", 5);
	for (size_t i = 0; i < n && ret == 0; i++) {
		if (!boxes[i].subscribed)
			continue;
		for (const char *p = boxes[i].name; *p != '\0' && ret == 0; p++)
			ret = mailfmt_buf_add(&b, *p == '/' ? "\t" : p, 1);
		if (ret == 0)
			ret = mailfmt_buf_add(&b, "\n", 1);
	}
	char tmp[4200], path[4200];
	const char *err = "out of memory";
	snprintf(tmp, sizeof(tmp), "%s/tmp/subscriptions.tmp", ex->root);
	snprintf(path, sizeof(path), "%s/subscriptions", ex->root);
	if (ret == 0)
		ret = mailfmt_write_file(tmp, path, b.data, b.len, 0, &err);
	if (ret < 0)
		fprintf(stderr, "warrenctl export: %s: %s\n", path, err);
	mailfmt_buf_free(&b);
	return ret;
}

/* ---- mbox ---- */

struct mbox_ctx {
	FILE *fp;
	const char *path;
	struct mailfmt_buf body;
};

static int mbox_message(struct export *ex, const struct store_message *m, void *arg)
{
	struct mbox_ctx *c = arg;
	if (read_body(ex, m, &c->body) < 0) {
		fprintf(stderr, "warrenctl export: %s UID %u: cannot read the body\n", c->path, m->uid);
		ex->failed++;
		return 0;
	}
	char date[64];
	mailfmt_format_asctime(m->internal_date, date, sizeof(date));
	fprintf(c->fp, "From %s %s\n", m->env_from[0] != '\0' && strchr(m->env_from, ' ') == NULL ?
		m->env_from : "MAILER-DAEMON", date);
	bool headers = true;
	const char *p = c->body.data, *end = c->body.data + c->body.len;
	while (p < end || headers) {
		const char *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
		size_t len = nl != NULL ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		if (headers && (len == 0 || (len == 1 && *p == '\n'))) {
			/* the end of the header: the flags go here */
			fprintf(c->fp, "Status: %sO\n", m->flags & STORE_FLAG_SEEN ? "R" : "");
			if (m->flags & (STORE_FLAG_ANSWERED | STORE_FLAG_FLAGGED | STORE_FLAG_DRAFT |
					STORE_FLAG_DELETED))
				fprintf(c->fp, "X-Status: %s%s%s%s\n",
					m->flags & STORE_FLAG_ANSWERED ? "A" : "",
					m->flags & STORE_FLAG_FLAGGED ? "F" : "",
					m->flags & STORE_FLAG_DRAFT ? "T" : "",
					m->flags & STORE_FLAG_DELETED ? "D" : "");
			if (m->keywords[0] != '\0')
				fprintf(c->fp, "X-Keywords: %s\n", m->keywords);
			headers = false;
			if (len == 0)
				break;     /* a message of headers only */
		}
		size_t q = strspn(p, ">");
		if (q < len && len - q >= 5 && strncmp(p + q, "From ", 5) == 0)
			fputc('>', c->fp);
		fwrite(p, 1, len, c->fp);
		p += len;
	}
	if (c->body.len > 0 && c->body.data[c->body.len - 1] != '\n')
		fputc('\n', c->fp);
	fputc('\n', c->fp);
	if (ferror(c->fp)) {
		fprintf(stderr, "warrenctl export: %s: %s\n", c->path, strerror(errno));
		return -1;
	}
	ex->messages++;
	return 0;
}

static int export_mbox_folder(struct export *ex, const struct store_mailbox *box)
{
	char path[4096], tmp[4200];
	if (snprintf(path, sizeof(path), "%s/%s.mbox", ex->root, box->name) >= (int)sizeof(path))
		return -1;
	/* the parent folders as directories */
	for (char *s = path + strlen(ex->root) + 1; (s = strchr(s, '/')) != NULL; s++) {
		*s = '\0';
		int r = make_dir(path);
		*s = '/';
		if (r < 0)
			return -1;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	struct mbox_ctx c = { .path = path };
	c.fp = fopen(tmp, "wx");
	if (c.fp == NULL) {
		fprintf(stderr, "warrenctl export: %s: %s\n", tmp, strerror(errno));
		return -1;
	}
	int ret = each_message(ex, box, mbox_message, &c);
	mailfmt_buf_free(&c.body);
	if (fflush(c.fp) != 0 || fsync(fileno(c.fp)) < 0) {
		fprintf(stderr, "warrenctl export: %s: %s\n", tmp, strerror(errno));
		ret = -1;
	}
	fclose(c.fp);
	if (ret == 0 && rename(tmp, path) < 0) {
		fprintf(stderr, "warrenctl export: %s: %s\n", path, strerror(errno));
		ret = -1;
	}
	if (ret < 0)
		unlink(tmp);
	ex->folders++;
	return ret;
}

/* ---- the command ---- */

static int check_target(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		if (errno != ENOENT) {
			fprintf(stderr, "warrenctl export: %s: %s\n", dir, strerror(errno));
			return -1;
		}
		return make_dir(dir);
	}
	struct dirent *de;
	int ret = 0;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			fprintf(stderr, "warrenctl export: %s is not empty (an export goes into a new "
				"or empty folder)\n", dir);
			ret = -1;
			break;
		}
	closedir(d);
	return ret;
}

int ctl_cmd_export(struct ctl_options *opts, int argc, char **argv)
{
	if (argc != 2 || opts->format == CTL_FORMAT_NONE) {
		fprintf(stderr, "usage: warrenctl export USER DIR --maildir|--mbox\n");
		return 2;
	}
	struct warren_config *conf;
	if (ctl_load_config(opts, CONF_LOAD_NO_TLS, &conf) < 0) {
		fprintf(stderr, "%s: configuration has errors\n", opts->config);
		return 1;
	}
	struct export ex = { .root = argv[1] };
	int ret = 1;
	const struct conf_mailbox *mb = conf_find_login(conf, argv[0]);
	if (mb == NULL) {
		fprintf(stderr, "warrenctl export: no mailbox %s in %s\n", argv[0], conf->path);
		goto out;
	}
	ex.user = mb->address;
	if (gethostname(ex.host, sizeof(ex.host)) != 0 || ex.host[0] == '\0')
		snprintf(ex.host, sizeof(ex.host), "localhost");
	ex.host[strcspn(ex.host, "./:")] = '\0';
	int open = ctl_store_open(conf, "export", &ex.st);
	if (open == 0)
		fprintf(stderr, "warrenctl export: no store in %s: nothing to export\n",
			conf->state_dir);
	if (open <= 0)
		goto out;
	struct store_mailbox *boxes = NULL;
	size_t n = 0;
	int err = store_mailbox_list(ex.st, ex.user, &boxes, &n);
	if (err == STORE_ENOTFOUND) {
		n = 0;
		err = STORE_OK;
	}
	if (err != STORE_OK) {
		fprintf(stderr, "warrenctl export: %s: %s\n", ex.user, store_strerror(err));
	} else if (check_target(ex.root) == 0) {
		int r = 0;
		if (opts->format == CTL_FORMAT_MAILDIR) {
			/* INBOX first: it makes the root's cur/new/tmp */
			for (size_t i = 0; i < n && r == 0; i++)
				if (strcasecmp(boxes[i].name, "INBOX") == 0)
					r = export_maildir_folder(&ex, &boxes[i]);
			if (r == 0 && ex.folders == 0) {
				struct store_mailbox empty = { .name = "INBOX" };
				r = export_maildir_folder(&ex, &empty);
				ex.folders = 0;
			}
			for (size_t i = 0; i < n && r == 0; i++)
				if (strcasecmp(boxes[i].name, "INBOX") != 0)
					r = export_maildir_folder(&ex, &boxes[i]);
			if (r == 0)
				r = write_subscriptions(&ex, boxes, n);
		} else {
			for (size_t i = 0; i < n && r == 0; i++)
				r = export_mbox_folder(&ex, &boxes[i]);
		}
		if (r == 0 && mailfmt_fsync_dir(ex.root) < 0)
			r = -1;
		ret = r < 0 || ex.failed > 0 ? 1 : 0;
		if (ex.dropped_keywords > 0)
			fprintf(stderr, "warrenctl export: warning: %u keyword%s dropped (maildir keeps "
				"%d per folder)\n", ex.dropped_keywords,
				ex.dropped_keywords == 1 ? "" : "s", MAILFMT_KEYWORDS_MAX);
		if (opts->json)
			printf("{\"user\":\"%s\",\"messages\":%lu,\"folders\":%lu,\"failed\":%lu}\n",
			       ex.user, ex.messages, ex.folders, ex.failed);
		else
			printf("%s: exported %lu message%s in %lu folder%s to %s%s\n", ex.user,
			       ex.messages, ex.messages == 1 ? "" : "s", ex.folders,
			       ex.folders == 1 ? "" : "s", ex.root, r < 0 ? " (stopped on an error)" : "");
	}
	free(boxes);
	store_close(&ex.st);
out:
	conf_unref(&conf);
	return ret;
}
