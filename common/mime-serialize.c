/* mime-serialize.c — the binary form of a part tree cached in the store. See mime.h.
 *
 * Format, version 1 (all integers are LEB128 varints, at most 10 bytes, no overlong
 * encodings; a string is a varint of length + 1, 0 meaning NULL, then the bytes, no NUL):
 *
 *   "WMIM" version(1 byte) size root-part ... crc32(4 bytes, little-endian)
 *
 *   part = flags child_count header_offset_delta header_size header_bare body_size
 *          body_bare body_lines type subtype params id description encoding disposition
 *          params language location md5 [10 envelope strings if MIME_PART_MESSAGE]
 *          child ...                                         (children follow, pre-order)
 *   params = count (name value charset language flags) ...
 *
 * header_offset_delta counts from the end of the previous sibling, or from the parent's
 * body for a first child (0 for the root and for the message inside a message/ part);
 * *_bare is vsize - size. The CRC-32 (IEEE) covers everything before it.
 */
#include "common/mime-private.h"
#include "common/buf.h"
#include "common/pool.h"

#include <string.h>

#define SERIAL_MAGIC "WMIM"
#define SERIAL_MAGIC_LEN 4
#define SERIAL_VERSION 1
#define SERIAL_CRC_LEN 4

/* CRC-32 (IEEE 802.3, reflected 0xEDB88320), four bits at a time. */
static uint32_t crc32_ieee(const unsigned char *p, size_t n)
{
	static const uint32_t table[16] = {
		0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC,
		0x76DC4190, 0x6B6B51F4, 0x4DB26158, 0x5005713C,
		0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
		0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C,
	};
	uint32_t crc = 0xFFFFFFFF;
	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		crc = (crc >> 4) ^ table[crc & 15];
		crc = (crc >> 4) ^ table[crc & 15];
	}
	return ~crc;
}

/* ---- writing ---- */

static int put_varint(struct buf *out, uint64_t v)
{
	unsigned char b[10];
	size_t n = 0;
	do {
		b[n] = (unsigned char)(v & 0x7F);
		v >>= 7;
		if (v != 0)
			b[n] |= 0x80;
		n++;
	} while (v != 0);
	return buf_append(out, b, n);
}

static int put_str(struct buf *out, const char *s)
{
	if (s == NULL)
		return put_varint(out, 0);
	size_t len = strlen(s);
	if (put_varint(out, (uint64_t)len + 1) < 0)
		return -1;
	return buf_append(out, s, len);
}

static int put_params(struct buf *out, const struct mime_param *params, unsigned int count)
{
	if (put_varint(out, count) < 0)
		return -1;
	for (unsigned int i = 0; i < count; i++) {
		const struct mime_param *pm = &params[i];
		if (put_str(out, pm->name) < 0 || put_str(out, pm->value) < 0 ||
		    put_str(out, pm->charset) < 0 || put_str(out, pm->language) < 0 ||
		    put_varint(out, pm->flags) < 0)
			return -1;
	}
	return 0;
}

static int put_envelope(struct buf *out, const struct mime_envelope *env)
{
	const char *fields[] = {
		env->date, env->subject, env->from, env->sender, env->reply_to, env->to,
		env->cc, env->bcc, env->in_reply_to, env->message_id,
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (put_str(out, fields[i]) < 0)
			return -1;
	return 0;
}

static int put_part(struct buf *out, const struct mime_part *part, uint64_t cursor)
{
	if (put_varint(out, part->flags) < 0 || put_varint(out, part->child_count) < 0 ||
	    put_varint(out, part->header_offset - cursor) < 0 ||
	    put_varint(out, part->header_size) < 0 ||
	    put_varint(out, part->header_vsize - part->header_size) < 0 ||
	    put_varint(out, part->body_size) < 0 ||
	    put_varint(out, part->body_vsize - part->body_size) < 0 ||
	    put_varint(out, part->body_lines) < 0 ||
	    put_str(out, part->type) < 0 || put_str(out, part->subtype) < 0 ||
	    put_params(out, part->params, part->param_count) < 0 ||
	    put_str(out, part->id) < 0 || put_str(out, part->description) < 0 ||
	    put_str(out, part->encoding) < 0 || put_str(out, part->disposition) < 0 ||
	    put_params(out, part->disposition_params, part->disposition_param_count) < 0 ||
	    put_str(out, part->language) < 0 || put_str(out, part->location) < 0 ||
	    put_str(out, part->md5) < 0)
		return -1;
	if ((part->flags & MIME_PART_MESSAGE) && put_envelope(out, part->envelope) < 0)
		return -1;
	uint64_t child_cursor = part->body_offset;
	for (const struct mime_part *c = part->children; c != NULL; c = c->next) {
		if (put_part(out, c, child_cursor) < 0)
			return -1;
		child_cursor = c->body_offset + c->body_size;
	}
	return 0;
}

int mime_serialize(const struct mime_part *root, struct buf *out)
{
	size_t start = buf_len(out);
	unsigned char version = SERIAL_VERSION;
	if (buf_append(out, SERIAL_MAGIC, SERIAL_MAGIC_LEN) < 0 ||
	    buf_append(out, &version, 1) < 0 || put_varint(out, mime_part_size(root)) < 0 ||
	    put_part(out, root, 0) < 0)
		goto fail;
	uint32_t crc = crc32_ieee((const unsigned char *)buf_data(out) + start,
				  buf_len(out) - start);
	unsigned char c[SERIAL_CRC_LEN] = {
		(unsigned char)crc, (unsigned char)(crc >> 8),
		(unsigned char)(crc >> 16), (unsigned char)(crc >> 24),
	};
	if (buf_append(out, c, sizeof(c)) < 0)
		goto fail;
	return 0;
fail:
	out->end = out->start + start;
	return -1;
}

/* ---- reading ---- */

struct reader {
	struct pool *pool;
	const unsigned char *p, *end;
	unsigned int parts;
	const char *error;
};

static bool fail(struct reader *r, const char *error)
{
	if (r->error == NULL)
		r->error = error;
	return false;
}

static bool get_varint(struct reader *r, uint64_t *v_r)
{
	uint64_t v = 0;
	for (unsigned int shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end)
			return fail(r, "truncated");
		unsigned char b = *r->p++;
		if (shift == 63 && b > 1)
			return fail(r, "integer overflow");
		v |= (uint64_t)(b & 0x7F) << shift;
		if ((b & 0x80) == 0) {
			if (b == 0 && shift > 0)
				return fail(r, "overlong integer");
			*v_r = v;
			return true;
		}
	}
	return fail(r, "integer overflow");
}

static bool get_uint(struct reader *r, unsigned int max, unsigned int *v_r)
{
	uint64_t v;
	if (!get_varint(r, &v))
		return false;
	if (v > max)
		return fail(r, "value out of range");
	*v_r = (unsigned int)v;
	return true;
}

static bool get_str(struct reader *r, const char **s_r)
{
	uint64_t v;
	if (!get_varint(r, &v))
		return false;
	if (v == 0) {
		*s_r = NULL;
		return true;
	}
	uint64_t len = v - 1;
	if (len > (uint64_t)(r->end - r->p))
		return fail(r, "string past the end");
	if (memchr(r->p, '\0', (size_t)len) != NULL)
		return fail(r, "NUL in a string");
	*s_r = pool_strndup(r->pool, (const char *)r->p, (size_t)len);
	r->p += len;
	return true;
}

static bool get_params(struct reader *r, const struct mime_param **params_r,
		       unsigned int *count_r)
{
	unsigned int count;
	if (!get_uint(r, MIME_MAX_PARAMS, &count))
		return false;
	/* each parameter takes at least 5 bytes */
	if ((uint64_t)count * 5 > (uint64_t)(r->end - r->p))
		return fail(r, "parameters past the end");
	struct mime_param *params = count == 0 ? NULL : pool_alloc(r->pool, count * sizeof(*params));
	for (unsigned int i = 0; i < count; i++) {
		struct mime_param *pm = &params[i];
		if (!get_str(r, &pm->name) || !get_str(r, &pm->value) ||
		    !get_str(r, &pm->charset) || !get_str(r, &pm->language) ||
		    !get_uint(r, MIME_PARAM_ALL_FLAGS, &pm->flags))
			return false;
		if (pm->name == NULL || pm->value == NULL)
			return fail(r, "parameter without name or value");
	}
	*params_r = params;
	*count_r = count;
	return true;
}

static bool get_envelope(struct reader *r, struct mime_envelope *env)
{
	const char **fields[] = {
		&env->date, &env->subject, &env->from, &env->sender, &env->reply_to, &env->to,
		&env->cc, &env->bcc, &env->in_reply_to, &env->message_id,
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (!get_str(r, fields[i]))
			return false;
	return true;
}

/* a + b into *sum_r unless it overflows */
static bool add_ok(uint64_t a, uint64_t b, uint64_t *sum_r)
{
	*sum_r = a + b;
	return *sum_r >= a;
}

static bool get_sizes(struct reader *r, struct mime_part *part, uint64_t cursor, uint64_t limit)
{
	uint64_t delta, hbare, bbare, end;
	if (!get_varint(r, &delta) || !get_varint(r, &part->header_size) ||
	    !get_varint(r, &hbare) || !get_varint(r, &part->body_size) ||
	    !get_varint(r, &bbare) || !get_varint(r, &part->body_lines))
		return false;
	if (!add_ok(cursor, delta, &part->header_offset) ||
	    !add_ok(part->header_offset, part->header_size, &part->body_offset) ||
	    !add_ok(part->body_offset, part->body_size, &end) || end > limit)
		return fail(r, "part outside its parent");
	/* the message of a message/ part fills its body exactly */
	if ((part->flags & MIME_PART_MESSAGE) && (delta != 0 || end != limit))
		return fail(r, "message does not fill its container");
	if (hbare > part->header_size || part->body_lines > part->body_size ||
	    bbare > part->body_lines)
		return fail(r, "bad line counts");
	part->header_vsize = part->header_size + hbare;
	part->body_vsize = part->body_size + bbare;
	return true;
}

static bool check_kind(struct reader *r, const struct mime_part *part)
{
	unsigned int f = part->flags;
	bool message_parent = part->parent == NULL || (part->parent->flags & MIME_PART_HAS_MESSAGE);
	if (((f & MIME_PART_MESSAGE) != 0) != message_parent)
		return fail(r, "misplaced message part");
	if ((f & MIME_PART_MULTIPART) && (f & MIME_PART_HAS_MESSAGE))
		return fail(r, "part is both multipart and message");
	if (part->parent != NULL && (f & (MIME_PART_LIMIT_PARTS | MIME_PART_LIMIT_KEPT |
					  MIME_PART_LIMIT_DEPTH)))
		return fail(r, "limit flags below the root");
	if (!(f & MIME_PART_MULTIPART) &&
	    part->child_count != ((f & MIME_PART_HAS_MESSAGE) ? 1u : 0u))
		return fail(r, "wrong number of children");
	if (part->type == NULL || part->subtype == NULL || part->type[0] == '\0' ||
	    part->subtype[0] == '\0' || part->encoding == NULL)
		return fail(r, "missing content type");
	if (((f & MIME_PART_MULTIPART) && strcmp(part->type, "multipart") != 0) ||
	    ((f & MIME_PART_HAS_MESSAGE) && strcmp(part->type, "message") != 0))
		return fail(r, "flags do not match the type");
	return true;
}

static bool get_part(struct reader *r, struct mime_part *parent, uint64_t cursor,
		     uint64_t limit, struct mime_part **part_r)
{
	struct mime_part *part = pool_alloc(r->pool, sizeof(*part));
	if (++r->parts > MIME_MAX_PARTS_LIMIT)
		return fail(r, "too many parts");
	part->parent = parent;
	part->depth = parent == NULL ? 0 : parent->depth + 1;
	if (part->depth > MIME_MAX_DEPTH_LIMIT)
		return fail(r, "too deep");
	if (!get_uint(r, MIME_PART_ALL_FLAGS, &part->flags) ||
	    !get_uint(r, MIME_MAX_PARTS_LIMIT, &part->child_count) ||
	    !get_sizes(r, part, cursor, limit) ||
	    !get_str(r, &part->type) || !get_str(r, &part->subtype) ||
	    !get_params(r, &part->params, &part->param_count) ||
	    !get_str(r, &part->id) || !get_str(r, &part->description) ||
	    !get_str(r, &part->encoding) || !get_str(r, &part->disposition) ||
	    !get_params(r, &part->disposition_params, &part->disposition_param_count) ||
	    !get_str(r, &part->language) || !get_str(r, &part->location) ||
	    !get_str(r, &part->md5) || !check_kind(r, part))
		return false;
	if (part->flags & MIME_PART_MESSAGE) {
		struct mime_envelope *env = pool_alloc(r->pool, sizeof(*env));
		if (!get_envelope(r, env))
			return false;
		part->envelope = env;
	}
	/* every part takes more than 16 bytes: a count beyond that is corrupt */
	if ((uint64_t)part->child_count * 16 > (uint64_t)(r->end - r->p))
		return fail(r, "children past the end");
	uint64_t child_cursor = part->body_offset;
	uint64_t child_limit = part->body_offset + part->body_size;
	struct mime_part **link = &part->children;
	for (unsigned int i = 0; i < part->child_count; i++) {
		struct mime_part *child;
		if (!get_part(r, part, child_cursor, child_limit, &child))
			return false;
		*link = child;
		link = &child->next;
		child_cursor = child->body_offset + child->body_size;
	}
	*part_r = part;
	return true;
}

int mime_deserialize(struct pool *pool, const void *data, size_t len,
		     struct mime_part **root_r, const char **error_r)
{
	const unsigned char *d = data;
	struct reader r = { pool, d, d + len, 0, NULL };
	*root_r = NULL;
	if (len < SERIAL_MAGIC_LEN + 1 + SERIAL_CRC_LEN ||
	    memcmp(d, SERIAL_MAGIC, SERIAL_MAGIC_LEN) != 0) {
		*error_r = "not a serialized MIME tree";
		return -1;
	}
	if (d[SERIAL_MAGIC_LEN] != SERIAL_VERSION) {
		*error_r = "unsupported version";
		return -1;
	}
	const unsigned char *c = d + len - SERIAL_CRC_LEN;
	uint32_t crc = (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 |
		(uint32_t)c[3] << 24;
	if (crc32_ieee(d, len - SERIAL_CRC_LEN) != crc) {
		*error_r = "checksum mismatch";
		return -1;
	}
	r.p = d + SERIAL_MAGIC_LEN + 1;
	r.end = c;

	uint64_t size;
	struct mime_part *root;
	if (!get_varint(&r, &size) || !get_part(&r, NULL, 0, size, &root)) {
		*error_r = r.error;
		return -1;
	}
	if (r.p != r.end) {
		*error_r = "trailing bytes";
		return -1;
	}
	*root_r = root;
	return 0;
}
