/* imap-fetch.c — FETCH and UID FETCH: FLAGS UID RFC822.SIZE INTERNALDATE ENVELOPE
 * BODY BODYSTRUCTURE BODY[section]<partial> BODY.PEEK RFC822 RFC822.HEADER
 * RFC822.TEXT MODSEQ, CHANGEDSINCE and VANISHED. Large fetches go out in chunks
 * that wait for the client to read. */
#include "imapd/imap-fetch.h"
#include "common/log.h"
#include "common/mime.h"
#include "common/pool.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* A chunk of FETCH output: the job ends after this many bytes or messages. */
#define FETCH_CHUNK_BYTES (4 * 1024 * 1024)
#define FETCH_CHUNK_MESSAGES 500
/* Items in one FETCH. */
#define FETCH_ITEMS_MAX 64
/* A job result: BINARY met an encoding it cannot decode. */
#define IMAP_FETCH_UNKNOWN_CTE (-100)
/* Header field names in one HEADER.FIELDS. */
#define FETCH_FIELDS_MAX 128

enum {
	F_FLAGS = 1 << 0, F_UID = 1 << 1, F_SIZE = 1 << 2, F_INTERNALDATE = 1 << 3,
	F_ENVELOPE = 1 << 4, F_BODYSTRUCTURE = 1 << 5, F_BODY = 1 << 6, F_MODSEQ = 1 << 7,
};

enum section_kind { SEC_ALL, SEC_HEADER, SEC_FIELDS, SEC_FIELDS_NOT, SEC_TEXT, SEC_MIME };

struct fetch_section {
	char *label;                 /* "BODY[HEADER]", "RFC822.TEXT" */
	char part[64];               /* "1.2" or "" */
	enum section_kind kind;
	char **fields;
	size_t n_fields;
	bool peek;
	bool partial;
	uint64_t offset, length;
	bool binary;                 /* BINARY[part]: decoded (RFC 3516) */
	bool binary_size;            /* BINARY.SIZE[part] */
};

struct fetch_job {
	struct imap_job job;
	bool uid;
	unsigned items;
	struct fetch_section sections[FETCH_ITEMS_MAX];
	size_t n_sections;
	bool set_seen;               /* a non-PEEK body section */
	bool need_mime;
	uint64_t changedsince;
	bool vanished;
	char *uidset;                /* for VANISHED */
	size_t *idx;                 /* indexes into the selection */
	size_t n_idx, next;
	bool again;                  /* more chunks follow */
};

static void fetch_cleanup(struct imap_job *job)
{
	struct fetch_job *fj = (struct fetch_job *)job;
	for (size_t i = 0; i < fj->n_sections; i++) {
		free(fj->sections[i].label);
		for (size_t k = 0; k < fj->sections[i].n_fields; k++)
			free(fj->sections[i].fields[k]);
		free(fj->sections[i].fields);
	}
	free(fj->idx);
	free(fj->uidset);
}

/* ---- parsing the items ---- */

static int parse_fields(struct fetch_section *sec, const char *p, const char *end)
{
	/* " (From To)" */
	while (p < end && *p == ' ')
		p++;
	if (p >= end || *p != '(')
		return -1;
	p++;
	sec->fields = x_calloc(FETCH_FIELDS_MAX, sizeof(char *));
	while (p < end && *p != ')') {
		while (p < end && *p == ' ')
			p++;
		const char *start = p;
		if (p < end && *p == '"') {
			start = ++p;
			while (p < end && *p != '"')
				p++;
			if (p >= end)
				return -1;
			if (sec->n_fields < FETCH_FIELDS_MAX)
				sec->fields[sec->n_fields++] = x_strndup(start, (size_t)(p - start));
			p++;
			continue;
		}
		while (p < end && *p != ' ' && *p != ')') {
			unsigned char c = (unsigned char)*p;
			if (c <= ' ' || c >= 0x7f || c == ':' || c == '(')
				return -1;
			p++;
		}
		if (p == start)
			return -1;
		if (sec->n_fields < FETCH_FIELDS_MAX)
			sec->fields[sec->n_fields++] = x_strndup(start, (size_t)(p - start));
	}
	if (p >= end || sec->n_fields == 0)
		return -1;
	p++;
	return p == end ? 0 : -1;
}

/* Parses the section text between the brackets. */
static int parse_section(struct fetch_section *sec, const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	size_t o = 0;
	/* part number: digits and dots, until a keyword */
	while (p < end && (isdigit((unsigned char)*p) || *p == '.')) {
		if (*p == '.' && p + 1 < end && isalpha((unsigned char)p[1]))
			break;
		if (o + 1 >= sizeof(sec->part))
			return -1;
		sec->part[o++] = *p++;
	}
	sec->part[o] = '\0';
	if (o > 0 && (sec->part[0] == '.' || sec->part[o - 1] == '.' || strstr(sec->part, "..")))
		return -1;
	if (p < end && *p == '.') {
		if (o == 0)
			return -1;
		p++;
	}
	size_t rest = (size_t)(end - p);
	if (rest == 0) {
		sec->kind = SEC_ALL;
		return 0;
	}
	if (rest == 6 && strncasecmp(p, "HEADER", 6) == 0) {
		sec->kind = SEC_HEADER;
		return 0;
	}
	if (rest == 4 && strncasecmp(p, "TEXT", 4) == 0) {
		sec->kind = SEC_TEXT;
		return 0;
	}
	if (rest == 4 && strncasecmp(p, "MIME", 4) == 0 && o > 0) {
		sec->kind = SEC_MIME;
		return 0;
	}
	if (rest > 17 && strncasecmp(p, "HEADER.FIELDS.NOT", 17) == 0 &&
	    (p[17] == ' ' || p[17] == '(')) {
		sec->kind = SEC_FIELDS_NOT;
		return parse_fields(sec, p + 17, end);
	}
	if (rest > 13 && strncasecmp(p, "HEADER.FIELDS", 13) == 0 &&
	    (p[13] == ' ' || p[13] == '(')) {
		sec->kind = SEC_FIELDS;
		return parse_fields(sec, p + 13, end);
	}
	return -1;
}

static int parse_partial(struct fetch_section *sec, const char *p)
{
	/* "<0.100>" */
	char *end;
	if (*p == '\0')
		return 0;
	if (*p != '<' || !isdigit((unsigned char)p[1]))
		return -1;
	sec->offset = strtoull(p + 1, &end, 10);
	if (*end != '.' || !isdigit((unsigned char)end[1]))
		return -1;
	sec->length = strtoull(end + 1, &end, 10);
	if (*end != '>' || end[1] != '\0' || sec->length == 0)
		return -1;
	sec->partial = true;
	return 0;
}

static int add_body_item(struct fetch_job *fj, const char *item)
{
	if (fj->n_sections >= FETCH_ITEMS_MAX)
		return -1;
	struct fetch_section *sec = &fj->sections[fj->n_sections];
	memset(sec, 0, sizeof(*sec));
	const char *p;
	const char *kind = "BODY";
	if (strncasecmp(item, "BODY.PEEK[", 10) == 0) {
		sec->peek = true;
		p = item + 10;
	} else if (strncasecmp(item, "BODY[", 5) == 0) {
		p = item + 5;
	} else if (strncasecmp(item, "BINARY.PEEK[", 12) == 0) {
		sec->peek = sec->binary = true;
		p = item + 12;
	} else if (strncasecmp(item, "BINARY.SIZE[", 12) == 0) {
		sec->peek = sec->binary = sec->binary_size = true;
		p = item + 12;
	} else if (strncasecmp(item, "BINARY[", 7) == 0) {
		sec->binary = true;
		p = item + 7;
	} else {
		return -1;
	}
	if (sec->binary)
		kind = sec->binary_size ? "BINARY.SIZE" : "BINARY";
	const char *close = strchr(p, ']');
	if (close == NULL)
		return -1;
	fj->n_sections++;
	if (parse_section(sec, p, (size_t)(close - p)) < 0 || parse_partial(sec, close + 1) < 0)
		return -1;
	/* BINARY takes part numbers only; BINARY.SIZE no partial */
	if (sec->binary && (sec->kind != SEC_ALL || (sec->binary_size && sec->partial)))
		return -1;
	/* the label is BODY[section] (without PEEK, with <origin> only) */
	struct buf l = BUF_INIT(4096);
	buf_printf(&l, "%s[%.*s]", kind, (int)(close - p), p);
	if (sec->partial)
		buf_printf(&l, "<%llu>", (unsigned long long)sec->offset);
	sec->label = x_strndup(buf_data(&l), buf_len(&l));
	buf_free(&l);
	if (!sec->peek)
		fj->set_seen = true;
	if (sec->kind != SEC_ALL || sec->part[0] != '\0')
		fj->need_mime = true;
	return 0;
}


static int add_rfc822(struct fetch_job *fj, const char *label, enum section_kind kind,
		      bool peek)
{
	if (fj->n_sections >= FETCH_ITEMS_MAX)
		return -1;
	struct fetch_section *sec = &fj->sections[fj->n_sections++];
	memset(sec, 0, sizeof(*sec));
	sec->label = x_strdup(label);
	sec->kind = kind;
	sec->peek = peek;
	if (!peek)
		fj->set_seen = true;
	if (kind != SEC_ALL)
		fj->need_mime = true;
	return 0;
}

static int add_item(struct fetch_job *fj, const char *item)
{
	static const struct {
		const char *name;
		unsigned items;
	} simple[] = {
		{ "FLAGS", F_FLAGS }, { "UID", F_UID }, { "RFC822.SIZE", F_SIZE },
		{ "INTERNALDATE", F_INTERNALDATE }, { "ENVELOPE", F_ENVELOPE },
		{ "BODYSTRUCTURE", F_BODYSTRUCTURE }, { "BODY", F_BODY }, { "MODSEQ", F_MODSEQ },
		{ "ALL", F_FLAGS | F_INTERNALDATE | F_SIZE | F_ENVELOPE },
		{ "FAST", F_FLAGS | F_INTERNALDATE | F_SIZE },
		{ "FULL", F_FLAGS | F_INTERNALDATE | F_SIZE | F_ENVELOPE | F_BODY },
	};
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		if (strcasecmp(item, simple[i].name) == 0) {
			fj->items |= simple[i].items;
			if (simple[i].items & (F_ENVELOPE | F_BODYSTRUCTURE | F_BODY))
				fj->need_mime = true;
			return 0;
		}
	}
	if (strcasecmp(item, "RFC822") == 0)
		return add_rfc822(fj, "RFC822", SEC_ALL, false);
	if (strcasecmp(item, "RFC822.HEADER") == 0)
		return add_rfc822(fj, "RFC822.HEADER", SEC_HEADER, true);
	if (strcasecmp(item, "RFC822.TEXT") == 0)
		return add_rfc822(fj, "RFC822.TEXT", SEC_TEXT, false);
	return add_body_item(fj, item);
}

/* ---- producing the data ---- */

struct mime_part *imap_message_mime(struct store *store, struct pool *pool,
				    const struct store_message *m)
{
	void *data;
	size_t len;
	struct mime_part *root;
	const char *error;
	if (store_blob_mime(store, m->blob, &data, &len) != 0)
		return NULL;
	int ret = mime_deserialize(pool, data, len, &root, &error);
	free(data);
	if (ret < 0 || mime_part_size(root) != m->size)
		return NULL;
	return root;
}

void imap_body_file_close(struct imap_body_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

/* The descriptor of m's body file: the session's open one, or a newly opened one
 * that replaces it. */
static int body_file_fd(struct imap_job *job, const struct store_message *m)
{
	struct imap_body_file *f = &job->s->body;
	if (f->fd >= 0 && memcmp(f->blob, m->blob, STORE_BLOB_ID_SIZE) == 0)
		return f->fd;
	imap_body_file_close(f);
	char path[4096];
	store_blob_path(job->store, m->blob, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		log_error("%s: open %s: %s", job->s->id, path, strerror(err));
		return err == ENOENT ? STORE_ENOTFOUND : STORE_EIO;
	}
	memcpy(f->blob, m->blob, STORE_BLOB_ID_SIZE);
	f->fd = fd;
	return fd;
}

int imap_message_read(struct imap_job *job, const struct store_message *m, uint64_t offset,
		      uint64_t len, struct buf *out)
{
	if (offset >= m->size)
		return 0;
	if (len > m->size - offset)
		len = m->size - offset;
	char *dst = buf_reserve(out, (size_t)len);
	if (dst == NULL)
		return STORE_ETOOBIG;
	int fd = body_file_fd(job, m);
	if (fd < 0)
		return fd;
	size_t got = 0;
	while (got < len) {
		ssize_t n = pread(fd, dst + got, (size_t)len - got, (off_t)(offset + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_error("%s: read of a body file: %s", job->s->id, strerror(errno));
			imap_body_file_close(&job->s->body);
			return STORE_EIO;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf_commit(out, got);
	return 0;
}

static bool field_listed(const struct fetch_section *sec, const char *name, size_t len)
{
	for (size_t i = 0; i < sec->n_fields; i++)
		if (strlen(sec->fields[i]) == len && strncasecmp(sec->fields[i], name, len) == 0)
			return true;
	return false;
}

/* The bytes of a section (before <partial>) into data. */
static int section_data(struct fetch_job *fj, const struct store_message *m,
			const struct mime_part *root, const struct fetch_section *sec,
			struct buf *data)
{
	if (sec->kind == SEC_ALL && sec->part[0] == '\0')
		return imap_message_read(&fj->job, m, 0, m->size, data);
	if (root == NULL)
		return 0;    /* no structure cached: an empty section */
	const struct mime_part *part = mime_part_find(root, sec->part);
	if (part == NULL)
		return 0;
	if (sec->kind == SEC_ALL)
		return imap_message_read(&fj->job, m, part->body_offset, part->body_size, data);
	if (sec->kind == SEC_MIME)
		return imap_message_read(&fj->job, m, part->header_offset, part->header_size, data);
	/* HEADER, TEXT, HEADER.FIELDS: of the message the part is or holds */
	const struct mime_part *msg = part;
	if (sec->part[0] != '\0') {
		if ((part->flags & MIME_PART_HAS_MESSAGE) && part->children != NULL)
			msg = part->children;
		else if (!(part->flags & MIME_PART_MESSAGE))
			return 0;
	}
	if (sec->kind == SEC_TEXT)
		return imap_message_read(&fj->job, m, msg->body_offset, msg->body_size, data);
	if (sec->kind == SEC_HEADER)
		return imap_message_read(&fj->job, m, msg->header_offset, msg->header_size, data);
	struct buf hdr = BUF_INIT(MIME_MAX_FIELD_SIZE_LIMIT * 16);
	int ret = imap_message_read(&fj->job, m, msg->header_offset, msg->header_size, &hdr);
	if (ret != 0) {
		buf_free(&hdr);
		return ret;
	}
	struct mime_header_iter it;
	struct mime_field f;
	mime_header_iter_init(&it, buf_data(&hdr), buf_len(&hdr));
	while (mime_header_iter_next(&it, &f)) {
		if (!f.has_colon)
			continue;
		bool listed = field_listed(sec, f.name, f.name_len);
		if (listed == (sec->kind == SEC_FIELDS))
			buf_append(data, buf_data(&hdr) + f.offset, f.size);
	}
	buf_append(data, "\r\n", 2);
	buf_free(&hdr);
	return 0;
}

static int append_section(struct fetch_job *fj, const struct store_message *m,
			  const struct mime_part *root, const struct fetch_section *sec)
{
	struct buf *out = &fj->job.out;
	buf_printf(out, " %s ", sec->label);
	struct buf data = BUF_INIT((size_t)m->size + 1024 * 1024);
	int ret = section_data(fj, m, root, sec, &data);
	if (ret != 0) {
		buf_free(&data);
		return ret;
	}
	if (sec->binary && sec->part[0] != '\0') {
		const struct mime_part *part = root != NULL ? mime_part_find(root, sec->part) : NULL;
		struct buf dec = BUF_INIT((size_t)buf_len(&data) + 16);
		if (part != NULL && mime_decode_transfer(part->encoding, buf_data(&data), buf_len(&data),
						    &dec) < 0) {
			buf_free(&dec);
			buf_free(&data);
			return IMAP_FETCH_UNKNOWN_CTE;
		}
		if (part != NULL) {
			buf_free(&data);
			data = dec;
		} else {
			buf_free(&dec);
		}
	}
	if (sec->binary_size) {
		/* replace the label's trailing space */
		out->end--;
		buf_printf(out, " %zu", buf_len(&data));
		buf_free(&data);
		return 0;
	}
	const char *d = buf_data(&data);
	size_t len = buf_len(&data);
	if (sec->partial) {
		if (sec->offset >= len) {
			len = 0;
		} else {
			d += sec->offset;
			len -= (size_t)sec->offset;
			if (len > sec->length)
				len = (size_t)sec->length;
		}
	}
	if (sec->binary && memchr(d, '\0', len) != NULL) {
		/* NUL bytes need a literal8 */
		buf_printf(out, "~{%zu}\r\n", len);
		buf_append(out, d, len);
	} else {
		imap_append_literal(out, d, len);
	}
	buf_free(&data);
	return 0;
}

static int fetch_one(struct fetch_job *fj, size_t index, const struct store_message *m,
		     bool flags_changed)
{
	struct imap_session *s = fj->job.s;
	struct imap_msg *im = &s->sel->msgs[index];
	struct buf *out = &fj->job.out;
	struct pool *pool = NULL;
	struct mime_part *root = NULL;
	if (fj->need_mime) {
		pool = pool_new(16384);
		root = imap_message_mime(fj->job.store, pool, m);
		if (root == NULL)
			log_warn("%s: message %u: MIME structure missing or damaged", s->id, m->uid);
	}
	size_t line_start = buf_len(out);
	buf_printf(out, "* %zu FETCH (", index + 1);
	size_t start = buf_len(out);
	if (fj->items & F_UID)
		buf_printf(out, "UID %u", m->uid);
	if ((fj->items & F_FLAGS) || flags_changed) {
		buf_printf(out, "%sFLAGS ", buf_len(out) > start ? " " : "");
		imap_append_flags(out, im->flags, im->keywords);
	}
	/* with CONDSTORE on, flags go with their modseq (as Dovecot does) */
	if ((fj->items & F_MODSEQ) ||
	    (s->enabled_condstore && ((fj->items & F_FLAGS) || flags_changed)))
		buf_printf(out, "%sMODSEQ (%llu)", buf_len(out) > start ? " " : "",
			   (unsigned long long)im->modseq);
	if (fj->items & F_SIZE)
		buf_printf(out, "%sRFC822.SIZE %llu", buf_len(out) > start ? " " : "",
			   (unsigned long long)m->size);
	if (fj->items & F_INTERNALDATE) {
		char date[64];
		imap_format_datetime(m->internal_date, date, sizeof(date));
		buf_printf(out, "%sINTERNALDATE \"%s\"", buf_len(out) > start ? " " : "", date);
	}
	if (fj->items & F_ENVELOPE) {
		buf_printf(out, "%sENVELOPE ", buf_len(out) > start ? " " : "");
		imap_append_envelope(out, pool, root != NULL ? root->envelope : NULL);
	}
	if (fj->items & F_BODYSTRUCTURE) {
		buf_printf(out, "%sBODYSTRUCTURE ", buf_len(out) > start ? " " : "");
		if (root != NULL)
			imap_append_bodystructure(out, pool, root, true);
		else
			buf_append_str(out, "(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)");
	}
	if (fj->items & F_BODY) {
		buf_printf(out, "%sBODY ", buf_len(out) > start ? " " : "");
		if (root != NULL)
			imap_append_bodystructure(out, pool, root, false);
		else
			buf_append_str(out, "(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0)");
	}
	int ret = 0;
	for (size_t i = 0; i < fj->n_sections && ret == 0; i++) {
		size_t before = buf_len(out);
		ret = append_section(fj, m, root, &fj->sections[i]);
		/* the space before the first item */
		if (ret == 0 && before == start) {
			char *p = (char *)buf_data(out) + start;
			memmove(p, p + 1, buf_len(out) - start - 1);
			out->end--;
		}
	}
	if (ret != 0)
		out->end = out->start + line_start;   /* no half response */
	else
		buf_append_str(out, ")\r\n");
	pool_free(&pool);
	return ret;
}

static int fetch_work(struct imap_job *job)
{
	struct fetch_job *fj = (struct fetch_job *)job;
	struct imap_selected *sel = job->s->sel;
	if (fj->next == 0 && fj->vanished && fj->uidset != NULL) {
		uint32_t *uids;
		size_t n;
		struct imap_seqset set;
		if (imap_seqset_parse(fj->uidset, 0xffffffffu, &set) == 0) {
			if (store_expunged_since(job->store, sel->id, fj->changedsince, &uids, &n) == 0) {
				size_t o = 0;
				for (size_t i = 0; i < n; i++)
					if (imap_seqset_contains(&set, uids[i]))
						uids[o++] = uids[i];
				imap_sort_uids(uids, o);
		if (o > 0) {
					buf_append_str(&job->out, "* VANISHED (EARLIER) ");
					imap_append_uidset(&job->out, uids, o);
					buf_append_str(&job->out, "\r\n");
				}
				free(uids);
			}
			imap_seqset_free(&set);
		}
	}
	size_t end = fj->next;
	while (end < fj->n_idx && end - fj->next < FETCH_CHUNK_MESSAGES)
		end++;
	if (end == fj->next)
		return 0;
	uint32_t lo = sel->msgs[fj->idx[fj->next]].uid, hi = sel->msgs[fj->idx[end - 1]].uid;
	struct store_message *list;
	size_t n;
	int ret = store_messages(job->store, sel->id, lo, hi, &list, &n);
	if (ret != 0)
		return ret;
	/* \Seen for the body sections fetched without PEEK */
	bool *changed = x_calloc(end - fj->next + 1, sizeof(bool));
	if (fj->set_seen && !sel->readonly) {
		struct store_flag_change *ch = x_calloc(end - fj->next, sizeof(*ch));
		size_t nc = 0;
		for (size_t i = fj->next; i < end; i++)
			if (!(sel->msgs[fj->idx[i]].flags & STORE_FLAG_SEEN))
				ch[nc++].uid = sel->msgs[fj->idx[i]].uid;
		if (nc > 0 && store_flags_update(job->store, sel->id, STORE_FLAGS_ADD,
						 STORE_FLAG_SEEN, "", 0, ch, nc) == 0) {
			size_t k = 0;
			for (size_t i = fj->next; i < end && k < nc; i++) {
				struct imap_msg *im = &sel->msgs[fj->idx[i]];
				if (im->uid != ch[k].uid)
					continue;
				if (ch[k].result == 0) {
					im->flags = ch[k].flags;
					im->modseq = ch[k].modseq;
					changed[i - fj->next] = true;
				}
				k++;
			}
		}
		free(ch);
	}
	size_t j = 0;
	for (size_t i = fj->next; i < end && ret == 0; i++) {
		size_t index = fj->idx[i];
		uint32_t uid = sel->msgs[index].uid;
		while (j < n && list[j].uid < uid)
			j++;
		if (j >= n || list[j].uid != uid)
			continue;   /* expunged meanwhile: nothing to send */
		ret = fetch_one(fj, index, &list[j], changed[i - fj->next]);
		if (buf_len(&job->out) > FETCH_CHUNK_BYTES) {
			end = i + 1;
			break;
		}
	}
	free(changed);
	free(list);
	fj->next = end;
	fj->again = fj->next < fj->n_idx && ret == 0;
	/* report other changes only with the last chunk */
	job->sync = !fj->again;
	return ret;
}

static void fetch_continue(struct imap_session *s, struct fetch_job *prev);

static void fetch_done(struct imap_job *job, int result)
{
	struct fetch_job *fj = (struct fetch_job *)job;
	struct imap_session *s = job->s;
	if (result == IMAP_FETCH_UNKNOWN_CTE) {
		imap_tagged(s, "NO", "[UNKNOWN-CTE] Unknown Content-Transfer-Encoding");
		return;
	}
	if (result != 0) {
		imap_tagged(s, "NO", "[SERVERBUG] Fetch failed: %s", store_strerror(result));
		return;
	}
	if (fj->again) {
		fetch_continue(s, fj);
		job->keep_waiting = true;
		return;
	}
	imap_tagged(s, "OK", "%sFetch completed.", fj->uid ? "UID " : "");
}

static struct fetch_job *fetch_job_new(struct imap_session *s)
{
	struct fetch_job *fj = imap_job_new(s, sizeof(*fj), fetch_work, fetch_done);
	fj->job.cleanup = fetch_cleanup;
	return fj;
}

static void start_when_drained(struct imap_session *s, struct imap_job *job);

/* The next chunk takes over the request; it starts once the client has read. */
static void fetch_continue(struct imap_session *s, struct fetch_job *prev)
{
	struct fetch_job *fj = fetch_job_new(s);
	fj->uid = prev->uid;
	fj->items = prev->items;
	memcpy(fj->sections, prev->sections, sizeof(fj->sections));
	fj->n_sections = prev->n_sections;
	prev->n_sections = 0;
	fj->set_seen = prev->set_seen;
	fj->need_mime = prev->need_mime;
	fj->idx = prev->idx;
	prev->idx = NULL;
	fj->n_idx = prev->n_idx;
	fj->next = prev->next;
	fj->job.sync_expunge = prev->job.sync_expunge;
	start_when_drained(s, &fj->job);
}

static void start_when_drained(struct imap_session *s, struct imap_job *job)
{
	if (net_conn_output_full(s->conn)) {
		s->pending_job = job;
		return;
	}
	imap_job_start(job);
}

void imap_session_drained(struct imap_session *s)
{
	struct imap_job *job = s->pending_job;
	if (job == NULL)
		return;
	s->pending_job = NULL;
	imap_job_start(job);
}

void imap_fetch(struct imap_session *s, const struct imap_arg *args, size_t n, bool uid)
{
	const char *set = n >= 2 ? imap_arg_string(&args[0]) : NULL;
	if (set == NULL || n > 3 || args[0].type != IMAP_ARG_ATOM) {
		imap_tagged(s, "BAD", "Syntax: FETCH sequence-set items [(modifiers)]");
		return;
	}
	struct fetch_job *fj = fetch_job_new(s);
	fj->uid = uid;
	if (uid)
		fj->items |= F_UID;
	const char *error = "Invalid fetch item";
	if (args[1].type == IMAP_ARG_LIST) {
		if (args[1].n_list == 0)
			goto bad;
		for (size_t i = 0; i < args[1].n_list; i++) {
			const char *it = args[1].list[i].type == IMAP_ARG_ATOM ? args[1].list[i].str :
				NULL;
			if (it == NULL || add_item(fj, it) < 0)
				goto bad;
		}
	} else if (args[1].type != IMAP_ARG_ATOM || add_item(fj, args[1].str) < 0) {
		goto bad;
	}
	if (n == 3) {
		const struct imap_arg *mod = &args[2];
		error = "Invalid FETCH modifier";
		if (mod->type != IMAP_ARG_LIST)
			goto bad;
		for (size_t i = 0; i < mod->n_list; i++) {
			const char *m = imap_arg_string(&mod->list[i]);
			if (m != NULL && strcasecmp(m, "CHANGEDSINCE") == 0 && i + 1 < mod->n_list) {
				const char *v = imap_arg_string(&mod->list[++i]);
				char *end;
				if (v == NULL || !isdigit((unsigned char)v[0]))
					goto bad;
				fj->changedsince = strtoull(v, &end, 10);
				if (*end != '\0')
					goto bad;
				fj->items |= F_MODSEQ;
			} else if (m != NULL && strcasecmp(m, "VANISHED") == 0 && uid &&
				   s->enabled_qresync) {
				fj->vanished = true;
			} else {
				goto bad;
			}
		}
		if (fj->vanished && fj->changedsince == 0)
			goto bad;
		if (fj->changedsince != 0)
			s->enabled_condstore = true;
	}
	if (fj->items & F_MODSEQ)
		s->enabled_condstore = true;
	int err;
	fj->n_idx = imap_seqset_select(s->sel, set, uid, &fj->idx, &err);
	if (err != 0) {
		error = err == -2 ? "Invalid sequence number (beyond the mailbox)" :
			"Invalid sequence set";
		goto bad;
	}
	if (fj->changedsince != 0) {
		size_t o = 0;
		for (size_t i = 0; i < fj->n_idx; i++)
			if (s->sel->msgs[fj->idx[i]].modseq > fj->changedsince)
				fj->idx[o++] = fj->idx[i];
		fj->n_idx = o;
	}
	if (fj->vanished && strcmp(set, "$") == 0 && s->sel->n_saved > 0) {
		struct buf b;
		buf_init(&b, (size_t)-1);
		imap_append_uidset(&b, s->sel->saved, s->sel->n_saved);
		fj->uidset = x_strndup(buf_data(&b), buf_len(&b));
		buf_free(&b);
	} else if (fj->vanished && strcmp(set, "$") != 0) {
		fj->uidset = x_strdup(set);
	}
	fj->job.sync = true;
	fj->job.sync_expunge = uid;
	imap_job_start(&fj->job);
	return;
bad:
	fetch_cleanup(&fj->job);
	buf_free(&fj->job.out);
	free(fj);
	imap_tagged(s, "BAD", "%s", error);
}
