/* codec.c — the on-disk form of store records and keys.
 *
 * Records start with a version byte; integers are big-endian; strings carry a
 * 16-bit length. Decoders check every length against the record size: the data
 * comes from disk and a damaged record must not crash a daemon.
 */
#include "storage/store-private.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#define REC_VERSION 1

struct reader {
	const unsigned char *p, *end;
	int bad;
};

static void put_str(struct buf *out, const char *s)
{
	size_t len = strlen(s);
	unsigned char l[2] = { (unsigned char)(len >> 8), (unsigned char)len };
	buf_append(out, l, 2);
	buf_append(out, s, len);
}

static void put_u32(struct buf *out, uint32_t v)
{
	unsigned char b[4];
	put_be32(b, v);
	buf_append(out, b, 4);
}

static void put_u64(struct buf *out, uint64_t v)
{
	unsigned char b[8];
	put_be64(b, v);
	buf_append(out, b, 8);
}

static const unsigned char *take(struct reader *r, size_t n)
{
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = 1;
		return NULL;
	}
	const unsigned char *p = r->p;
	r->p += n;
	return p;
}

static uint32_t get_u32(struct reader *r)
{
	const unsigned char *p = take(r, 4);
	return p != NULL ? get_be32(p) : 0;
}

static uint64_t get_u64(struct reader *r)
{
	const unsigned char *p = take(r, 8);
	return p != NULL ? get_be64(p) : 0;
}

static void get_str(struct reader *r, char *out, size_t size)
{
	const unsigned char *l = take(r, 2);
	size_t len = l != NULL ? ((size_t)l[0] << 8) | l[1] : 0;
	const unsigned char *p = take(r, len);
	if (p == NULL || len >= size) {
		r->bad = 1;
		out[0] = '\0';
		return;
	}
	memcpy(out, p, len);
	out[len] = '\0';
}

static int finish(struct reader *r)
{
	return r->bad || r->p != r->end ? -1 : 0;
}

static int start(struct reader *r, const void *data, size_t len)
{
	r->p = data;
	r->end = r->p + len;
	r->bad = 0;
	const unsigned char *v = take(r, 1);
	return v != NULL && *v == REC_VERSION ? 0 : -1;
}

void mbox_rec_encode(const struct mbox_rec *m, struct buf *out)
{
	unsigned char v = REC_VERSION;
	buf_clear(out);
	buf_append(out, &v, 1);
	put_u32(out, m->uidvalidity);
	put_u32(out, m->uidnext);
	put_u64(out, m->highestmodseq);
	put_u32(out, m->messages);
	put_u32(out, m->unseen);
	put_u64(out, m->size);
	put_u32(out, m->special_use);
	put_str(out, m->user);
	put_str(out, m->name);
}

int mbox_rec_decode(const void *data, size_t len, struct mbox_rec *m)
{
	struct reader r;
	if (start(&r, data, len) < 0)
		return -1;
	m->uidvalidity = get_u32(&r);
	m->uidnext = get_u32(&r);
	m->highestmodseq = get_u64(&r);
	m->messages = get_u32(&r);
	m->unseen = get_u32(&r);
	m->size = get_u64(&r);
	m->special_use = get_u32(&r);
	get_str(&r, m->user, sizeof(m->user));
	get_str(&r, m->name, sizeof(m->name));
	return finish(&r);
}

void msg_rec_encode(const struct store_message *m, struct buf *out)
{
	unsigned char v = REC_VERSION;
	buf_clear(out);
	buf_append(out, &v, 1);
	put_u32(out, m->flags);
	put_u64(out, m->modseq);
	put_u64(out, (uint64_t)m->internal_date);
	put_u64(out, (uint64_t)m->save_date);
	put_u64(out, m->size);
	buf_append(out, m->blob, STORE_BLOB_ID_SIZE);
	put_str(out, m->env_from);
	put_str(out, m->env_to);
	put_str(out, m->keywords);
}

int msg_rec_decode(const void *data, size_t len, struct store_message *m)
{
	struct reader r;
	if (start(&r, data, len) < 0)
		return -1;
	m->flags = get_u32(&r);
	m->modseq = get_u64(&r);
	m->internal_date = (int64_t)get_u64(&r);
	m->save_date = (int64_t)get_u64(&r);
	m->size = get_u64(&r);
	const unsigned char *blob = take(&r, STORE_BLOB_ID_SIZE);
	if (blob != NULL)
		memcpy(m->blob, blob, STORE_BLOB_ID_SIZE);
	get_str(&r, m->env_from, sizeof(m->env_from));
	get_str(&r, m->env_to, sizeof(m->env_to));
	get_str(&r, m->keywords, sizeof(m->keywords));
	return finish(&r);
}

void blob_rec_encode(const struct blob_rec *b, unsigned char out[16])
{
	put_be64(out, b->refs);
	put_be64(out + 8, b->size);
}

int blob_rec_decode(const void *data, size_t len, struct blob_rec *b)
{
	if (len != 16)
		return -1;
	b->refs = get_be64(data);
	b->size = get_be64((const unsigned char *)data + 8);
	return 0;
}

void user_rec_encode(const struct user_rec *u, unsigned char out[16])
{
	put_be64(out, u->bytes);
	put_be64(out + 8, u->messages);
}

int user_rec_decode(const void *data, size_t len, struct user_rec *u)
{
	if (len != 16)
		return -1;
	u->bytes = get_be64(data);
	u->messages = get_be64((const unsigned char *)data + 8);
	return 0;
}

size_t name_key(const char *user, const char *name, unsigned char *out, size_t size)
{
	size_t ul = strlen(user), nl = strlen(name);
	if (ul + nl + 1 > size)
		return 0;
	memcpy(out, user, ul);
	out[ul] = '\0';
	memcpy(out + ul + 1, name, nl);
	return ul + 1 + nl;
}

void msg_key(uint64_t mailbox_id, uint32_t uid, unsigned char out[12])
{
	put_be64(out, mailbox_id);
	put_be32(out + 8, uid);
}

int mailbox_name_normalize(const char *name, char *out, size_t size)
{
	size_t len = strlen(name);
	while (len > 0 && name[len - 1] == '/')
		len--;
	if (len == 0 || len >= size || len > STORE_MAILBOX_NAME_MAX || name[0] == '/')
		return -1;
	int depth = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f)
			return -1;
		if (c == '/') {
			if (name[i + 1] == '/' || ++depth > STORE_MAILBOX_DEPTH_MAX)
				return -1;
		}
	}
	memcpy(out, name, len);
	out[len] = '\0';
	/* INBOX is case-insensitive, also as a parent: "inbox/x" is "INBOX/x" */
	if (strncasecmp(out, "INBOX", 5) == 0 && (out[5] == '\0' || out[5] == '/'))
		memcpy(out, "INBOX", 5);
	return 0;
}
