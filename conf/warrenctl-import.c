/* warrenctl-import.c — `warrenctl import USER --maildir DIR | --mbox FILE|DIR
 * [--folder NAME]`: moves mail from Postfix + Dovecot (or mutt, or any maildir
 * or mbox writer) into a user's folders in the store.
 *
 * Maildir: DIR (cur/ and new/) becomes the folder (INBOX unless --folder), its
 * Maildir++ subfolders ".a.b" become "a/b" below it. Flags come from the file
 * names (":2,DFPRST", keywords a-z through the folder's dovecot-keywords) and the
 * internal date from the file's modification time, as Dovecot does.
 * Mbox: FILE becomes one folder (INBOX unless --folder); a DIR is walked for
 * "*.mbox" files, each the folder of its path ("a/b.mbox" is "a/b"). Messages are
 * split at "From " lines after an empty line, ">From " quoting is undone
 * (mboxrd), flags come from Status/X-Status/X-Keywords (removed from the
 * message, as Dovecot does) and the internal date from the "From " line.
 *
 * Every message goes through store_append: durable when the call returns,
 * counted against the quota, refused above the size limit. Lines end in CRLF in
 * the store. A message that cannot be imported is reported and skipped; the exit
 * status is 1 when any was. Malformed input (not a maildir, not an mbox, a bad
 * keywords file) is refused with a message before anything is stored.
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

/* Files of one maildir folder taken at most. */
#define IMPORT_FILES_MAX 1000000
/* Depth of folders below an mbox directory walked at most. */
#define IMPORT_DEPTH_MAX 16
/* Pieces mbox lines are read in (a longer line is several pieces); status
 * headers longer than this are left in the message. */
#define IMPORT_LINE_MAX 8192

struct import {
	struct store *st;
	const struct conf_mailbox *mb;
	uint64_t max_size;         /* bytes of one message */
	const char *folder;        /* --folder, or NULL */
	unsigned long messages, failed, folders;
};

/* Creates the folder when missing (its parents are left alone: a maildir or an
 * mbox tree says nothing about them, and an export carries the ones that
 * exist). */
static int ensure_folder(struct import *im, const char *name)
{
	if (strcasecmp(name, "INBOX") == 0)
		return 0;
	int err = store_mailbox_create(im->st, im->mb->address, name, 0, NULL);
	if (err == STORE_OK)
		im->folders++;
	else if (err != STORE_EEXIST) {
		fprintf(stderr, "warrenctl import: cannot create folder \"%.200s\": %s\n", name,
			store_strerror(err));
		return -1;
	}
	return 0;
}

/* The folder a source folder goes to: --folder as the root. */
static int target_name(const struct import *im, const char *sub, char *out, size_t size)
{
	const char *root = im->folder != NULL ? im->folder : "INBOX";
	int n;
	if (sub == NULL || sub[0] == '\0')
		n = snprintf(out, size, "%s", root);
	else if (im->folder == NULL || strcasecmp(im->folder, "INBOX") == 0)
		n = snprintf(out, size, "%s", sub);
	else
		n = snprintf(out, size, "%s/%s", root, sub);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

static int append(struct import *im, const char *folder, const char *what,
		  const struct mailfmt_buf *msg, unsigned flags, const char *keywords,
		  int64_t date)
{
	struct store_body body = { .data = msg->data, .len = msg->len };
	uint32_t uid, uidvalidity;
	int err = store_append(im->st, im->mb->address, folder, &body, flags, keywords, date,
			       im->mb->quota, &uid, &uidvalidity);
	if (err != STORE_OK) {
		fprintf(stderr, "warrenctl import: %s: not imported: %s%s\n", what,
			store_strerror(err), err == STORE_EQUOTA ? " (stopping: the rest would not "
			"fit either; raise the user's quota)" : "");
		im->failed++;
		/* a full mailbox or a broken store: the next messages would fail too */
		return err == STORE_EIO || err == STORE_ERECOVER || err == STORE_EQUOTA ? -1 : 0;
	}
	im->messages++;
	return 0;
}

/* ---- maildir ---- */

static bool is_maildir(const char *dir)
{
	char path[4096];
	struct stat st;
	snprintf(path, sizeof(path), "%s/cur", dir);
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return false;
	snprintf(path, sizeof(path), "%s/new", dir);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

struct entry {
	char *name;
	bool is_new;
};

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static int list_files(const char *dir, const char *sub, bool is_new, struct entry **list,
		      size_t *n, size_t *cap)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	DIR *d = opendir(path);
	if (d == NULL) {
		fprintf(stderr, "warrenctl import: %s: %s\n", path, strerror(errno));
		return -1;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (*n >= IMPORT_FILES_MAX) {
			fprintf(stderr, "warrenctl import: %s: more than %d files\n", dir,
				IMPORT_FILES_MAX);
			closedir(d);
			return -1;
		}
		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 256;
			struct entry *p = realloc(*list, nc * sizeof(*p));
			if (p == NULL) {
				closedir(d);
				return -1;
			}
			*list = p;
			*cap = nc;
		}
		(*list)[*n].name = strdup(de->d_name);
		(*list)[*n].is_new = is_new;
		if ((*list)[*n].name == NULL) {
			closedir(d);
			return -1;
		}
		(*n)++;
	}
	closedir(d);
	return 0;
}

/* Reads a message file of at most max bytes as CRLF text into msg. */
static int read_message(const char *path, uint64_t max, struct mailfmt_buf *msg,
			int64_t *mtime_r, const char **error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		*error_r = strerror(errno);
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*error_r = "not a regular file";
		close(fd);
		return -1;
	}
	if ((uint64_t)st.st_size > max) {
		*error_r = "larger than the message size limit";
		close(fd);
		return -1;
	}
	*mtime_r = (int64_t)st.st_mtime;
	msg->len = 0;
	msg->max = (size_t)max + (size_t)st.st_size + 2;   /* room for CRs */
	char chunk[65536];
	ssize_t n;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		if (mailfmt_buf_add_crlf(msg, chunk, (size_t)n) < 0) {
			*error_r = "out of memory or larger than the limit";
			close(fd);
			return -1;
		}
	close(fd);
	if (n < 0) {
		*error_r = strerror(errno);
		return -1;
	}
	if (msg->len == 0) {
		*error_r = "empty file";
		return -1;
	}
	return 0;
}

static int import_maildir_folder(struct import *im, const char *dir, const char *folder)
{
	struct mailfmt_keywords kw;
	if (mailfmt_keywords_read(dir, &kw) < 0)
		return -1;
	if (ensure_folder(im, folder) < 0)
		return -1;
	struct entry *list = NULL;
	size_t n = 0, cap = 0;
	int ret = 0;
	if (list_files(dir, "new", true, &list, &n, &cap) < 0 ||
	    list_files(dir, "cur", false, &list, &n, &cap) < 0)
		ret = -1;
	/* file names start with the delivery time: their order is the arrival order */
	if (ret == 0)
		qsort(list, n, sizeof(*list), cmp_entry);
	struct mailfmt_buf msg = { 0 };
	for (size_t i = 0; i < n && ret == 0; i++) {
		char path[4096], keywords[STORE_KEYWORDS_MAX];
		snprintf(path, sizeof(path), "%s/%s/%s", dir, list[i].is_new ? "new" : "cur",
			 list[i].name);
		unsigned flags = list[i].is_new ? 0 :
			mailfmt_maildir_flags(list[i].name, &kw, keywords, sizeof(keywords));
		if (list[i].is_new)
			keywords[0] = '\0';
		int64_t mtime;
		const char *err;
		if (read_message(path, im->max_size, &msg, &mtime, &err) < 0) {
			fprintf(stderr, "warrenctl import: %s: not imported: %s\n", path, err);
			im->failed++;
			continue;
		}
		ret = append(im, folder, path, &msg, flags, keywords, mtime);
	}
	mailfmt_buf_free(&msg);
	for (size_t i = 0; i < n; i++)
		free(list[i].name);
	free(list);
	return ret;
}

/* Dovecot's subscriptions file: version 2 ("V\t2", an empty line, then names
 * with tabs between levels) or the old one (a name per line). */
static int import_subscriptions(struct import *im, const char *dir)
{
	char path[4096], line[1024];
	snprintf(path, sizeof(path), "%s/subscriptions", dir);
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return 0;
	bool v2 = false;
	unsigned long lineno = 0;
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (lineno == 1 && strncmp(line, "V\t", 2) == 0) {
			v2 = true;
			continue;
		}
		if (line[0] == '\0')
			continue;
		if (v2)
			for (char *p = line; *p != '\0'; p++)
				if (*p == '\t')
					*p = '/';
		char target[600];
		const char *sub = strcasecmp(line, "INBOX") == 0 ? NULL : line;
		if (target_name(im, sub, target, sizeof(target)) < 0)
			continue;
		int err = store_subscribe(im->st, im->mb->address, target, true);
		if (err != STORE_OK)
			fprintf(stderr, "warrenctl import: %s:%lu: cannot subscribe to \"%s\": %s\n",
				path, lineno, target, store_strerror(err));
	}
	fclose(fp);
	return 0;
}

static int import_maildir(struct import *im, const char *dir)
{
	if (!is_maildir(dir)) {
		fprintf(stderr, "warrenctl import: %s is not a maildir (it needs cur/ and new/)\n",
			dir);
		return -1;
	}
	char folder[600];
	if (target_name(im, NULL, folder, sizeof(folder)) < 0)
		return -1;
	/* check every subfolder's name before storing anything */
	DIR *d = opendir(dir);
	if (d == NULL) {
		fprintf(stderr, "warrenctl import: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	char **subs = NULL;
	size_t nsub = 0;
	int ret = 0;
	struct dirent *de;
	while (ret == 0 && (de = readdir(d)) != NULL) {
		char path[4096], name[512];
		if (de->d_name[0] != '.' || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (!is_maildir(path))
			continue;      /* .Trash without cur/, dotfiles */
		if (mailfmt_dir_to_folder(de->d_name, name, sizeof(name)) < 0) {
			fprintf(stderr, "warrenctl import: %s: not a Maildir++ folder name\n", path);
			ret = -1;
			break;
		}
		char **p = nsub < IMPORT_FILES_MAX ? realloc(subs, (nsub + 1) * sizeof(*p)) : NULL;
		if (p == NULL || (p[nsub] = strdup(de->d_name)) == NULL) {
			free(p == NULL ? subs : p);
			subs = NULL;
			nsub = 0;
			ret = -1;
			break;
		}
		subs = p;
		nsub++;
	}
	closedir(d);
	if (ret == 0)
		ret = import_maildir_folder(im, dir, folder);
	for (size_t i = 0; i < nsub; i++) {
		char path[4096], name[512], target[600];
		if (ret == 0) {
			snprintf(path, sizeof(path), "%s/%s", dir, subs[i]);
			mailfmt_dir_to_folder(subs[i], name, sizeof(name));
			if (target_name(im, name, target, sizeof(target)) < 0)
				ret = -1;
			else
				ret = import_maildir_folder(im, path, target);
		}
		free(subs[i]);
	}
	free(subs);
	if (ret == 0)
		ret = import_subscriptions(im, dir);
	return ret;
}

/* ---- mbox ---- */

struct mbox_msg {
	struct mailfmt_buf text;   /* CRLF, without Status headers */
	unsigned flags;
	char keywords[STORE_KEYWORDS_MAX];
	int64_t date;
	bool in_headers;
	unsigned long line;        /* of the "From " line, for messages */
};

static bool header_is(const char *line, const char *name)
{
	size_t n = strlen(name);
	return strncasecmp(line, name, n) == 0 && line[n] == ':';
}

/* Status: RO, X-Status: AFTD, X-Keywords: a b c (Dovecot and mutt). */
static bool take_status_header(struct mbox_msg *m, const char *line)
{
	if (header_is(line, "Status")) {
		if (strchr(line + 7, 'R') != NULL)
			m->flags |= STORE_FLAG_SEEN;
		return true;
	}
	if (header_is(line, "X-Status")) {
		const char *v = line + 9;
		if (strchr(v, 'A') != NULL)
			m->flags |= STORE_FLAG_ANSWERED;
		if (strchr(v, 'F') != NULL)
			m->flags |= STORE_FLAG_FLAGGED;
		if (strchr(v, 'T') != NULL)
			m->flags |= STORE_FLAG_DRAFT;
		if (strchr(v, 'D') != NULL)
			m->flags |= STORE_FLAG_DELETED;
		return true;
	}
	if (header_is(line, "X-Keywords")) {
		for (const char *p = line + 11; *p != '\0';) {
			p += strspn(p, " ,\t\r\n");
			size_t n = strcspn(p, " ,\t\r\n");
			if (n > 0 && strcspn(p, "()\"\\%*]{") >= n)
				mailfmt_add_keyword(m->keywords, sizeof(m->keywords), p, n);
			p += n;
		}
		return true;
	}
	return header_is(line, "X-UID") || header_is(line, "X-IMAPbase") ||
		header_is(line, "X-IMAP");
}

/* One piece of a line: the whole line (eol) or IMPORT_LINE_MAX bytes of a longer
 * one; at_start when it begins the line. Status headers are only taken from
 * whole lines, quoting only undone at a line's start. */
static int mbox_piece(struct mbox_msg *m, const char *line, size_t len, bool at_start,
		      bool eol)
{
	if (m->in_headers && at_start) {
		if (line[0] == '\n' || (line[0] == '\r' && len > 1 && line[1] == '\n'))
			m->in_headers = false;
		else if (eol && line[0] != ' ' && line[0] != '\t' && take_status_header(m, line))
			return 0;
	}
	/* mboxrd: ">From ", ">>From " ... lose one '>' */
	if (at_start) {
		size_t q = 0;
		while (q < len && line[q] == '>')
			q++;
		if (q > 0 && len - q >= 5 && memcmp(line + q, "From ", 5) == 0)
			line++, len--;
	}
	return mailfmt_buf_add_crlf(&m->text, line, len);
}

/* Reads up to size bytes, ending after a newline; *eol when it did. -1 at the
 * end of the file. NUL bytes are kept (the length is returned). */
static ssize_t read_piece(FILE *fp, char *buf, size_t size, bool *eol)
{
	size_t n = 0;
	int c = 0;
	*eol = false;
	while (n < size && (c = getc_unlocked(fp)) != EOF) {
		buf[n++] = (char)c;
		if (c == '\n') {
			*eol = true;
			break;
		}
	}
	buf[n] = '\0';
	return n == 0 ? -1 : (ssize_t)n;
}

static int mbox_start(struct mbox_msg *m, const char *from_line, unsigned long lineno,
		      int64_t fallback)
{
	m->text.len = 0;
	m->flags = 0;
	m->keywords[0] = '\0';
	m->in_headers = true;
	m->line = lineno;
	/* "From sender date": the date follows the sender */
	const char *p = from_line + 5;
	p += strcspn(p, " ");
	if (mailfmt_parse_asctime(p, &m->date) < 0)
		m->date = fallback;
	return 0;
}

static int mbox_finish(struct import *im, const char *folder, const char *file,
		       struct mbox_msg *m)
{
	/* the empty line before the next "From " belongs to the separator */
	if (m->text.len >= 4 && memcmp(m->text.data + m->text.len - 4, "\r\n\r\n", 4) == 0)
		m->text.len -= 2;
	char what[4200];
	snprintf(what, sizeof(what), "%s: message at line %lu", file, m->line);
	if (m->text.len == 0) {
		fprintf(stderr, "warrenctl import: %s: not imported: empty message\n", what);
		im->failed++;
		return 0;
	}
	return append(im, folder, what, &m->text, m->flags, m->keywords, m->date);
}

static int import_mbox_file(struct import *im, const char *file, const char *folder)
{
	FILE *fp = fopen(file, "r");
	if (fp == NULL) {
		fprintf(stderr, "warrenctl import: %s: %s\n", file, strerror(errno));
		return -1;
	}
	struct stat st;
	int64_t fallback = fstat(fileno(fp), &st) == 0 ? (int64_t)st.st_mtime : 0;
	char piece[IMPORT_LINE_MAX + 1];
	ssize_t len;
	unsigned long lineno = 0;
	bool have = false, prev_empty = true, too_big = false, at_start = true, eol;
	bool in_from_line = false;
	struct mbox_msg m = { .text = { .max = (size_t)im->max_size * 2 + 2 } };
	int ret = 0;
	/* lines are read in pieces of at most IMPORT_LINE_MAX bytes: memory stays
	 * bounded by the message size limit whatever the file holds */
	while (ret == 0 && (len = read_piece(fp, piece, IMPORT_LINE_MAX, &eol)) > 0) {
		bool start = at_start;
		at_start = eol;
		if (start)
			lineno++;
		else if (in_from_line)
			continue;        /* the rest of an overlong "From " line */
		in_from_line = false;
		if (start && prev_empty && len >= 5 && memcmp(piece, "From ", 5) == 0) {
			if (have && !too_big)
				ret = mbox_finish(im, folder, file, &m);
			mbox_start(&m, piece, lineno, fallback);
			in_from_line = !eol;
			have = true;
			too_big = false;
			prev_empty = false;
			continue;
		}
		if (!have) {
			fprintf(stderr, "warrenctl import: %s is not an mbox file (line %lu is not "
				"a \"From \" line)\n", file, lineno);
			ret = -1;
			break;
		}
		if (start)
			prev_empty = eol && (piece[0] == '\n' || (piece[0] == '\r' && piece[1] == '\n'));
		else
			prev_empty = false;
		if (too_big)
			continue;
		if (mbox_piece(&m, piece, (size_t)len, start, eol) < 0 ||
		    m.text.len > im->max_size) {
			fprintf(stderr, "warrenctl import: %s: message at line %lu: not imported: "
				"larger than the message size limit\n", file, m.line);
			im->failed++;
			too_big = true;
		}
	}
	if (ret == 0 && ferror(fp)) {
		fprintf(stderr, "warrenctl import: %s: %s\n", file, strerror(errno));
		ret = -1;
	}
	if (ret == 0 && !have)
		fprintf(stderr, "warrenctl import: %s: empty (no messages)\n", file);
	if (ret == 0 && have && !too_big)
		ret = mbox_finish(im, folder, file, &m);
	mailfmt_buf_free(&m.text);
	fclose(fp);
	return ret;
}

/* Checks that the file starts like an mbox before anything is stored. */
static bool looks_like_mbox(const char *file)
{
	FILE *fp = fopen(file, "r");
	if (fp == NULL)
		return false;
	char start[6] = "";
	size_t n = fread(start, 1, 5, fp);
	fclose(fp);
	return n == 0 || (n == 5 && memcmp(start, "From ", 5) == 0);
}

struct mbox_file {
	char *path;
	char *folder;
};

static int find_mbox_files(const char *root, const char *rel, int depth,
			   struct mbox_file **files, size_t *n)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s%s%s", root, rel[0] ? "/" : "", rel);
	DIR *d = opendir(path);
	if (d == NULL) {
		fprintf(stderr, "warrenctl import: %s: %s\n", path, strerror(errno));
		return -1;
	}
	int ret = 0;
	struct dirent *de;
	while (ret == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char sub[4096], full[8192];
		snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
		snprintf(full, sizeof(full), "%s/%s", root, sub);
		struct stat st;
		if (lstat(full, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (depth >= IMPORT_DEPTH_MAX) {
				fprintf(stderr, "warrenctl import: %s: folders nested deeper than %d\n",
					full, IMPORT_DEPTH_MAX);
				ret = -1;
			} else {
				ret = find_mbox_files(root, sub, depth + 1, files, n);
			}
			continue;
		}
		size_t len = strlen(sub);
		if (!S_ISREG(st.st_mode) || len <= 5 || strcmp(sub + len - 5, ".mbox") != 0)
			continue;
		if (*n >= IMPORT_FILES_MAX) {
			ret = -1;
			break;
		}
		struct mbox_file *p = realloc(*files, (*n + 1) * sizeof(*p));
		if (p == NULL) {
			ret = -1;
			break;
		}
		*files = p;
		p[*n].path = strdup(full);
		p[*n].folder = strndup(sub, len - 5);
		if (p[*n].path == NULL || p[*n].folder == NULL) {
			free(p[*n].path);
			free(p[*n].folder);
			ret = -1;
			break;
		}
		(*n)++;
	}
	closedir(d);
	return ret;
}

static int cmp_mbox_file(const void *a, const void *b)
{
	return strcmp(((const struct mbox_file *)a)->folder, ((const struct mbox_file *)b)->folder);
}

static int import_mbox(struct import *im, const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		fprintf(stderr, "warrenctl import: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		char folder[600];
		if (!looks_like_mbox(path)) {
			fprintf(stderr, "warrenctl import: %s is not an mbox file (it does not start "
				"with a \"From \" line)\n", path);
			return -1;
		}
		if (target_name(im, NULL, folder, sizeof(folder)) < 0 ||
		    ensure_folder(im, folder) < 0)
			return -1;
		return import_mbox_file(im, path, folder);
	}
	struct mbox_file *files = NULL;
	size_t n = 0;
	int ret = find_mbox_files(path, "", 0, &files, &n);
	if (ret == 0 && n == 0) {
		fprintf(stderr, "warrenctl import: %s holds no *.mbox files\n", path);
		ret = -1;
	}
	for (size_t i = 0; i < n && ret == 0; i++)
		if (!looks_like_mbox(files[i].path)) {
			fprintf(stderr, "warrenctl import: %s is not an mbox file (it does not "
				"start with a \"From \" line)\n", files[i].path);
			ret = -1;
		}
	qsort(files, n, sizeof(*files), cmp_mbox_file);
	for (size_t i = 0; i < n && ret == 0; i++) {
		char target[600];
		const char *sub = strcasecmp(files[i].folder, "INBOX") == 0 ? NULL : files[i].folder;
		if (target_name(im, sub, target, sizeof(target)) < 0 ||
		    ensure_folder(im, target) < 0)
			ret = -1;
		else
			ret = import_mbox_file(im, files[i].path, target);
	}
	for (size_t i = 0; i < n; i++) {
		free(files[i].path);
		free(files[i].folder);
	}
	free(files);
	return ret;
}

/* ---- the command ---- */

int ctl_cmd_import(struct ctl_options *opts, int argc, char **argv)
{
	if (argc != 2 || opts->format == CTL_FORMAT_NONE) {
		fprintf(stderr, "usage: warrenctl import USER --maildir DIR [--folder NAME]\n"
				"       warrenctl import USER --mbox FILE|DIR [--folder NAME]\n");
		return 2;
	}
	struct warren_config *conf;
	if (ctl_load_config(opts, CONF_LOAD_NO_TLS, &conf) < 0) {
		fprintf(stderr, "%s: configuration has errors\n", opts->config);
		return 1;
	}
	struct import im = { .folder = opts->folder };
	int ret = 1;
	im.mb = conf_find_login(conf, argv[0]);
	if (im.mb == NULL) {
		fprintf(stderr, "warrenctl import: no mailbox %s in %s\n", argv[0], conf->path);
		goto out;
	}
	if (im.folder != NULL && (im.folder[0] == '\0' || im.folder[0] == '/' ||
				  strstr(im.folder, "//") != NULL)) {
		fprintf(stderr, "warrenctl import: bad folder name \"%s\"\n", im.folder);
		goto out;
	}
	im.max_size = im.mb->max_message_size ? im.mb->max_message_size :
		im.mb->domain->max_message_size ? im.mb->domain->max_message_size :
		conf->max_message_size;
	int open = ctl_store_open(conf, "import", &im.st);
	if (open == 0)
		fprintf(stderr, "warrenctl import: no store in %s yet: start warren once first\n",
			conf->state_dir);
	if (open <= 0)
		goto out;
	int err = store_user_ensure(im.st, im.mb->address);
	if (err != STORE_OK) {
		fprintf(stderr, "warrenctl import: %s: %s\n", im.mb->address, store_strerror(err));
	} else {
		int r = opts->format == CTL_FORMAT_MAILDIR ? import_maildir(&im, argv[1]) :
			import_mbox(&im, argv[1]);
		ret = r < 0 || im.failed > 0 ? 1 : 0;
		if (opts->json)
			printf("{\"user\":\"%s\",\"messages\":%lu,\"failed\":%lu,\"folders_created\":"
			       "%lu}\n", im.mb->address, im.messages, im.failed, im.folders);
		else if (r == 0 || im.messages > 0)
			printf("%s: imported %lu message%s (%lu folder%s created)%s%s\n",
			       im.mb->address, im.messages, im.messages == 1 ? "" : "s", im.folders,
			       im.folders == 1 ? "" : "s", im.failed ? "; not imported: " : "",
			       im.failed ? (r < 0 ? "see above, stopped" : "see above") : "");
		if (im.failed > 0 && !opts->json)
			fprintf(stderr, "warrenctl import: %lu message%s not imported\n", im.failed,
				im.failed == 1 ? "" : "s");
	}
	store_close(&im.st);
out:
	conf_unref(&conf);
	return ret;
}
