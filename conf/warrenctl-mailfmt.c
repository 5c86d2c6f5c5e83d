/* warrenctl-mailfmt.c — maildir flags and keywords, Maildir++ folder names, mbox
 * dates, CRLF conversion and durable file writes for `warrenctl import|export`. */
#include "conf/warrenctl-mailfmt.h"
#include "storage/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Longest line of a dovecot-keywords file. */
#define KEYWORDS_LINE_MAX 512

int mailfmt_keywords_read(const char *dir, struct mailfmt_keywords *kw)
{
	char path[4096], line[KEYWORDS_LINE_MAX];
	memset(kw, 0, sizeof(*kw));
	snprintf(path, sizeof(path), "%s/dovecot-keywords", dir);
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return errno == ENOENT ? 0 : (fprintf(stderr, "%s: %s\n", path, strerror(errno)), -1);
	int lineno = 0, ret = 0;
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0')
			continue;
		char *end;
		long idx = strtol(line, &end, 10);
		if (end == line || *end != ' ' || idx < 0 || idx >= MAILFMT_KEYWORDS_MAX ||
		    strlen(end + 1) == 0 || strlen(end + 1) >= MAILFMT_KEYWORD_LEN ||
		    strpbrk(end + 1, " ()\"\\%*]") != NULL) {
			fprintf(stderr, "%s:%d: not a keyword line (\"N name\", N 0-25)\n", path,
				lineno);
			ret = -1;
			break;
		}
		snprintf(kw->names[idx], MAILFMT_KEYWORD_LEN, "%s", end + 1);
		if ((size_t)idx + 1 > kw->count)
			kw->count = (size_t)idx + 1;
	}
	fclose(fp);
	return ret;
}

int mailfmt_keywords_write(const char *dir, const struct mailfmt_keywords *kw)
{
	if (kw->count == 0)
		return 0;
	char path[4096], tmp[4096], text[MAILFMT_KEYWORDS_MAX * (MAILFMT_KEYWORD_LEN + 8)];
	size_t o = 0;
	for (size_t i = 0; i < kw->count; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o, "%zu %s\n", i, kw->names[i]);
	snprintf(path, sizeof(path), "%s/dovecot-keywords", dir);
	snprintf(tmp, sizeof(tmp), "%s/tmp/dovecot-keywords.tmp", dir);
	const char *err;
	if (mailfmt_write_file(tmp, path, text, o, 0, &err) < 0) {
		fprintf(stderr, "%s: %s\n", path, err);
		return -1;
	}
	return 0;
}

char mailfmt_keyword_letter(struct mailfmt_keywords *kw, const char *name)
{
	for (size_t i = 0; i < kw->count; i++)
		if (strcmp(kw->names[i], name) == 0)
			return (char)('a' + i);
	if (kw->count >= MAILFMT_KEYWORDS_MAX || strlen(name) >= MAILFMT_KEYWORD_LEN)
		return 0;
	snprintf(kw->names[kw->count], MAILFMT_KEYWORD_LEN, "%s", name);
	return (char)('a' + kw->count++);
}

void mailfmt_add_keyword(char *list, size_t size, const char *word, size_t len)
{
	if (len == 0)
		return;
	size_t have = strlen(list);
	for (const char *p = list; *p != '\0';) {
		size_t n = strcspn(p, " ");
		if (n == len && strncmp(p, word, len) == 0)
			return;
		p += n;
		p += *p == ' ';
	}
	if (have + (have ? 1 : 0) + len + 1 > size)
		return;
	if (have)
		list[have++] = ' ';
	memcpy(list + have, word, len);
	list[have + len] = '\0';
}

static const struct {
	char letter;
	unsigned flag;
} maildir_flags[] = {
	/* in ASCII order, as maildir wants them */
	{ 'D', STORE_FLAG_DRAFT },
	{ 'F', STORE_FLAG_FLAGGED },
	{ 'P', 0 },              /* passed: the keyword $Forwarded */
	{ 'R', STORE_FLAG_ANSWERED },
	{ 'S', STORE_FLAG_SEEN },
	{ 'T', STORE_FLAG_DELETED },
};

#define FORWARDED "$Forwarded"

unsigned mailfmt_maildir_flags(const char *filename, const struct mailfmt_keywords *kw,
			       char *kwbuf, size_t kwsize)
{
	kwbuf[0] = '\0';
	const char *info = strstr(filename, ":2,");
	if (info == NULL)
		return 0;
	unsigned flags = 0;
	for (const char *p = info + 3; *p != '\0'; p++) {
		if (*p >= 'a' && *p <= 'z') {
			size_t i = (size_t)(*p - 'a');
			if (i < kw->count && kw->names[i][0] != '\0')
				mailfmt_add_keyword(kwbuf, kwsize, kw->names[i], strlen(kw->names[i]));
			continue;
		}
		for (size_t i = 0; i < sizeof(maildir_flags) / sizeof(maildir_flags[0]); i++)
			if (maildir_flags[i].letter == *p) {
				flags |= maildir_flags[i].flag;
				if (maildir_flags[i].flag == 0)
					mailfmt_add_keyword(kwbuf, kwsize, FORWARDED,
							    strlen(FORWARDED));
			}
	}
	return flags;
}

void mailfmt_maildir_info(unsigned flags, const char *keywords, struct mailfmt_keywords *kw,
			  char *out, size_t size, unsigned *dropped_r)
{
	char letters[MAILFMT_KEYWORDS_MAX + 1] = "";
	size_t nl = 0;
	bool forwarded = false;
	for (const char *p = keywords; *p != '\0';) {
		size_t n = strcspn(p, " ");
		char word[MAILFMT_KEYWORD_LEN];
		if (n > 0 && n < sizeof(word)) {
			memcpy(word, p, n);
			word[n] = '\0';
			if (strcasecmp(word, FORWARDED) == 0) {
				forwarded = true;
			} else {
				char c = mailfmt_keyword_letter(kw, word);
				if (c == 0)
					(*dropped_r)++;
				else if (strchr(letters, c) == NULL && nl < MAILFMT_KEYWORDS_MAX)
					letters[nl++] = c, letters[nl] = '\0';
			}
		} else if (n > 0) {
			(*dropped_r)++;
		}
		p += n;
		p += *p == ' ';
	}
	/* keyword letters sorted */
	for (size_t i = 1; i < nl; i++)
		for (size_t j = i; j > 0 && letters[j - 1] > letters[j]; j--) {
			char t = letters[j];
			letters[j] = letters[j - 1];
			letters[j - 1] = t;
		}
	size_t o = (size_t)snprintf(out, size, ":2,");
	for (size_t i = 0; i < sizeof(maildir_flags) / sizeof(maildir_flags[0]) && o + 1 < size; i++)
		if ((maildir_flags[i].flag != 0 && (flags & maildir_flags[i].flag)) ||
		    (maildir_flags[i].flag == 0 && forwarded))
			out[o++] = maildir_flags[i].letter;
	for (size_t i = 0; i < nl && o + 1 < size; i++)
		out[o++] = letters[i];
	out[o] = '\0';
}

int mailfmt_folder_to_dir(const char *name, char *dir_r, size_t size)
{
	size_t o = 0;
	if (size < 2)
		return -1;
	dir_r[o++] = '.';
	for (const char *p = name; *p != '\0'; p++) {
		const char *piece;
		char one[2] = { *p, '\0' };
		piece = *p == '/' ? "." : *p == '.' ? "%2E" : *p == '%' ? "%25" : one;
		size_t n = strlen(piece);
		if (o + n + 1 > size)
			return -1;
		memcpy(dir_r + o, piece, n);
		o += n;
	}
	dir_r[o] = '\0';
	return 0;
}

int mailfmt_dir_to_folder(const char *dir, char *name_r, size_t size)
{
	size_t o = 0;
	const char *p = dir[0] == '.' ? dir + 1 : dir;
	if (*p == '\0')
		return -1;
	for (; *p != '\0'; p++) {
		char c = *p;
		if (c == '.') {
			c = '/';
		} else if (c == '%' && strncasecmp(p, "%2E", 3) == 0) {
			c = '.';
			p += 2;
		} else if (c == '%' && strncmp(p, "%25", 3) == 0) {
			c = '%';
			p += 2;
		}
		if (o + 2 > size)
			return -1;
		name_r[o++] = c;
	}
	name_r[o] = '\0';
	/* no empty levels ("a..b", a trailing dot) */
	if (name_r[0] == '/' || name_r[o - 1] == '/' || strstr(name_r, "//") != NULL)
		return -1;
	return 0;
}

int mailfmt_buf_add(struct mailfmt_buf *b, const void *data, size_t len)
{
	if (len > b->max || b->len > b->max - len)
		return -1;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 8192;
		while (cap < b->len + len)
			cap *= 2;
		char *p = realloc(b->data, cap);
		if (p == NULL)
			return -1;
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

void mailfmt_buf_free(struct mailfmt_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int mailfmt_buf_add_crlf(struct mailfmt_buf *b, const char *s, size_t len)
{
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '\n' || (i > 0 && s[i - 1] == '\r') ||
		    (i == 0 && b->len > 0 && b->data[b->len - 1] == '\r'))
			continue;
		if (mailfmt_buf_add(b, s + start, i - start) < 0 || mailfmt_buf_add(b, "\r\n", 2) < 0)
			return -1;
		start = i + 1;
	}
	return mailfmt_buf_add(b, s + start, len - start);
}

int mailfmt_parse_asctime(const char *s, int64_t *t_r)
{
	/* asctime, as Postfix, mutt and Dovecot write it; some writers add a zone */
	static const char *const layouts[] = {
		"%a %b %e %H:%M:%S %Y", "%a %b %e %H:%M:%S %z %Y", "%a %b %e %H:%M:%S %Z %Y",
		"%a %b %e %H:%M %Y",
	};
	while (*s == ' ')
		s++;
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
		struct tm tm;
		memset(&tm, 0, sizeof(tm));
		const char *end = strptime(s, layouts[i], &tm);
		if (end == NULL)
			continue;
		while (*end == ' ' || *end == '\r' || *end == '\n')
			end++;
		if (*end != '\0')
			continue;
		long off = tm.tm_gmtoff;
		time_t t = timegm(&tm);
		if (t == (time_t)-1)
			return -1;
		*t_r = (int64_t)t - off;
		return 0;
	}
	return -1;
}

void mailfmt_format_asctime(int64_t t, char *out, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, size, "%a %b %e %H:%M:%S %Y", &tm);
}

int mailfmt_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -1;
	int ret = fsync(fd);
	close(fd);
	return ret;
}

int mailfmt_write_file(const char *tmp, const char *path, const void *data, size_t len,
		       int64_t mtime, const char **error_r)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		*error_r = strerror(errno);
		return -1;
	}
	const char *p = data;
	size_t left = len;
	while (left > 0) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*error_r = n < 0 ? strerror(errno) : "short write";
			close(fd);
			unlink(tmp);
			return -1;
		}
		p += n;
		left -= (size_t)n;
	}
	if (mtime != 0) {
		struct timespec ts[2] = { { .tv_sec = (time_t)mtime }, { .tv_sec = (time_t)mtime } };
		futimens(fd, ts);
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		*error_r = strerror(errno);
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, path) < 0) {
		*error_r = strerror(errno);
		unlink(tmp);
		return -1;
	}
	return 0;
}
