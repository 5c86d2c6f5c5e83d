/* fuzz-mime.c — libFuzzer target for common/mime*.c.
 *
 * Each input is parsed as a message (whole, in chunks chosen by the input, and with tiny
 * limits), every tree is checked against the message, serialized, deserialized and
 * re-serialized (which must give the same bytes), and the input is also thrown at the
 * header utilities, the address parser and — wrapped in a valid frame and checksum —
 * straight at the deserializer.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz-mime.c \
 *       common/mime*.c common/buf.c common/pool.c common/log.c -o /tmp/fuzz-mime
 *   /tmp/fuzz-mime -max_total_time=60 tests/unit/data/mime
 */
#include "common/buf.h"
#include "common/mime.h"
#include "common/pool.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
		abort(); \
	} \
} while (0)

static uint32_t crc32_ref(const unsigned char *p, size_t n)
{
	uint32_t crc = 0xFFFFFFFF;
	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320 & (0u - (crc & 1)));
	}
	return ~crc;
}

/* Structural facts every tree must have. */
static void check_tree(const struct mime_part *root, size_t size)
{
	CHECK(root->parent == NULL && root->header_offset == 0);
	CHECK(mime_part_size(root) == size);
	for (const struct mime_part *p = root; p != NULL; p = mime_part_next(p)) {
		uint64_t end = p->body_offset + p->body_size;
		CHECK(p->body_offset == p->header_offset + p->header_size);
		CHECK(end <= size);
		CHECK(p->header_vsize >= p->header_size && p->body_vsize >= p->body_size);
		CHECK(p->body_lines <= p->body_size);
		CHECK(p->type != NULL && p->subtype != NULL && p->encoding != NULL);
		CHECK(p->depth <= MIME_DEFAULT_MAX_DEPTH);
		if (p->parent != NULL) {
			CHECK(p->header_offset >= p->parent->body_offset);
			CHECK(end <= p->parent->body_offset + p->parent->body_size);
		}
		if (p->flags & MIME_PART_HAS_MESSAGE)
			CHECK(p->child_count == 1 && p->children->header_offset == p->body_offset);
		else if (!(p->flags & MIME_PART_MULTIPART))
			CHECK(p->children == NULL);
		struct buf num = BUF_INIT(1 << 20);
		CHECK(mime_part_number(p, &num) == 0);
		const struct mime_part *found = mime_part_find(root, buf_cstr(&num));
		CHECK(found != NULL);
		buf_free(&num);
	}
}

static void serialize(const struct mime_part *root, struct buf *out)
{
	buf_init(out, (size_t)1 << 30);
	CHECK(mime_serialize(root, out) == 0);
}

static void round_trip(struct pool *pool, const struct mime_part *root, struct buf *a)
{
	struct mime_part *copy;
	const char *error;
	struct buf b;
	serialize(root, a);
	CHECK(mime_deserialize(pool, buf_data(a), buf_len(a), &copy, &error) == 0);
	serialize(copy, &b);
	CHECK(buf_len(a) == buf_len(&b) && memcmp(buf_data(a), buf_data(&b), buf_len(a)) == 0);
	buf_free(&b);
}

static void fuzz_parser(struct pool *pool, const uint8_t *data, size_t size)
{
	struct buf a, b;
	struct mime_part *root = mime_parse(pool, data, size, NULL);
	check_tree(root, size);
	round_trip(pool, root, &a);

	/* chunk sizes from the input itself */
	struct mime_parser *p = mime_parser_new(pool);
	for (size_t off = 0, i = 0; off < size; i++) {
		size_t n = (size_t)(data[i % size] % 17) + 1;
		if (n > size - off)
			n = size - off;
		mime_parser_feed(p, data + off, n);
		off += n;
	}
	serialize(mime_parser_finish(p), &b);
	CHECK(buf_len(&a) == buf_len(&b) && memcmp(buf_data(&a), buf_data(&b), buf_len(&a)) == 0);
	buf_free(&a);
	buf_free(&b);

	/* tiny limits reach the limit paths */
	struct mime_limits limits = { .max_depth = 3, .max_parts = 6, .max_field_size = 40,
				      .max_kept_size = 120 };
	root = mime_parse(pool, data, size, &limits);
	CHECK(mime_part_size(root) == size);
	round_trip(pool, root, &a);
	buf_free(&a);
}

static void fuzz_header(struct pool *pool, const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct buf out = BUF_INIT(1 << 20);
	struct mime_header_iter iter;
	struct mime_field field;

	(void)mime_header_decode_str(pool, s, size);
	(void)mime_header_unfold(s, size, &out);
	for (const struct mime_address *a = mime_address_parse(pool, s, size); a != NULL;
	     a = a->next)
		CHECK(a->mailbox != NULL || a->host == NULL);
	mime_header_iter_init(&iter, s, size);
	while (mime_header_iter_next(&iter, &field))
		CHECK(field.offset + field.size <= size);
	(void)mime_header_find(s, size, "subject", &field);
	if (size > 0) {
		char charset[32];
		size_t n = (size_t)(data[0] % 16);
		if (n >= size)
			n = size - 1;
		memcpy(charset, data + 1, n);
		charset[n] = '\0';
		const char *error;
		buf_clear(&out);
		(void)mime_charset_to_utf8(charset, data + 1 + n, size - 1 - n, &out, &error);
	}
	buf_free(&out);
}

/* The input as the body of a serialized tree with a valid frame: whatever the
 * deserializer accepts must serialize back to the same bytes. */
static void fuzz_deserializer(struct pool *pool, const uint8_t *data, size_t size)
{
	struct buf in = BUF_INIT((size_t)1 << 30);
	buf_append(&in, "WMIM\x01", 5);
	buf_append(&in, data, size);
	uint32_t crc = crc32_ref((const unsigned char *)buf_data(&in), buf_len(&in));
	unsigned char c[4] = { (unsigned char)crc, (unsigned char)(crc >> 8),
			       (unsigned char)(crc >> 16), (unsigned char)(crc >> 24) };
	buf_append(&in, c, 4);
	struct mime_part *root;
	const char *error;
	if (mime_deserialize(pool, buf_data(&in), buf_len(&in), &root, &error) == 0) {
		struct buf b;
		serialize(root, &b);
		CHECK(buf_len(&b) == buf_len(&in) &&
		      memcmp(buf_data(&b), buf_data(&in), buf_len(&in)) == 0);
		buf_free(&b);
		for (const struct mime_part *p = root; p != NULL; p = mime_part_next(p))
			(void)mime_part_envelope(p);
	}
	/* and raw, without the frame */
	(void)mime_deserialize(pool, data, size, &root, &error);
	buf_free(&in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pool *pool = pool_new(0);
	fuzz_parser(pool, data, size);
	fuzz_header(pool, data, size);
	fuzz_deserializer(pool, data, size);
	pool_free(&pool);
	return 0;
}
