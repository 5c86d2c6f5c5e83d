/* test-mime.c — common/mime*.c: the streaming parser, the tree, serialization, header
 * decoding and address lists, over the corpus in data/mime/ and the RFCs' own examples. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>

#include "common/buf.h"
#include "common/mime.h"
#include "common/pool.h"

/* ---- helpers ---- */

struct corpus_file {
	char name[256];
	char *data;
	size_t len;
};

static struct corpus_file corpus[64];
static size_t corpus_count;

static const char *corpus_dir(void)
{
	/* ctest runs unit tests in tests/unit; allow the source root too */
	static const char *const dirs[] = { "data/mime", "tests/unit/data/mime" };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		DIR *d = opendir(dirs[i]);
		if (d != NULL) {
			closedir(d);
			return dirs[i];
		}
	}
	return NULL;
}

static char *read_file(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	long n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	char *data = malloc((size_t)n + 1);
	assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
	data[n] = '\0';
	fclose(f);
	*len_r = (size_t)n;
	return data;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(((const struct corpus_file *)a)->name, ((const struct corpus_file *)b)->name);
}

static int corpus_load(void **state)
{
	const char *dir = corpus_dir();
	if (dir == NULL) {
		fprintf(stderr, "data/mime not found\n");
		return -1;
	}
	DIR *d = opendir(dir);
	struct dirent *de;
	while ((de = readdir(d)) != NULL && corpus_count < sizeof(corpus) / sizeof(corpus[0])) {
		size_t n = strlen(de->d_name);
		if (n < 5 || strcmp(de->d_name + n - 4, ".eml") != 0)
			continue;
		struct corpus_file *cf = &corpus[corpus_count++];
		char path[600];
		snprintf(cf->name, sizeof(cf->name), "%s", de->d_name);
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		cf->data = read_file(path, &cf->len);
	}
	closedir(d);
	qsort(corpus, corpus_count, sizeof(corpus[0]), cmp_names);
	return corpus_count >= 15 ? 0 : -1;
}

static int corpus_free(void **state)
{
	for (size_t i = 0; i < corpus_count; i++)
		free(corpus[i].data);
	corpus_count = 0;
	return 0;
}

static const struct corpus_file *corpus_get(const char *name)
{
	for (size_t i = 0; i < corpus_count; i++)
		if (strcmp(corpus[i].name, name) == 0)
			return &corpus[i];
	fail_msg("corpus file %s missing", name);
	return NULL;
}

static struct mime_part *parse_str(struct pool *pool, const char *msg)
{
	return mime_parse(pool, msg, strlen(msg), NULL);
}

static const char *decode(struct pool *pool, const char *s)
{
	return mime_header_decode_str(pool, s, strlen(s));
}

/* "type/subtype[child,child]" of the whole tree */
static void structure_append(const struct mime_part *part, struct buf *out)
{
	buf_printf(out, "%s/%s", part->type, part->subtype);
	if (part->children == NULL)
		return;
	buf_append_str(out, "[");
	for (const struct mime_part *c = part->children; c != NULL; c = c->next) {
		structure_append(c, out);
		if (c->next != NULL)
			buf_append_str(out, ",");
	}
	buf_append_str(out, "]");
}

static void assert_structure(const struct mime_part *root, const char *expected)
{
	struct buf out = BUF_INIT(1 << 20);
	structure_append(root, &out);
	assert_string_equal(buf_cstr(&out), expected);
	buf_free(&out);
}

static const struct mime_part *find(const struct mime_part *root, const char *section)
{
	const struct mime_part *part = mime_part_find(root, section);
	if (part == NULL)
		fail_msg("no part %s", section);
	return part;
}

/* Checks that the body of a part is exactly text. */
static void assert_body(const char *msg, const struct mime_part *part, const char *text)
{
	assert_int_equal(part->body_size, strlen(text));
	assert_memory_equal(msg + part->body_offset, text, strlen(text));
}

static void assert_header(const char *msg, const struct mime_part *part, const char *text)
{
	assert_int_equal(part->header_size, strlen(text));
	assert_memory_equal(msg + part->header_offset, text, strlen(text));
}

static void serialize(const struct mime_part *root, struct buf *out)
{
	buf_init(out, (size_t)1 << 30);
	assert_int_equal(mime_serialize(root, out), 0);
}

static size_t count_parts(const struct mime_part *root)
{
	size_t n = 0;
	for (const struct mime_part *p = root; p != NULL; p = mime_part_next(p))
		n++;
	return n;
}

static unsigned int max_depth(const struct mime_part *root)
{
	unsigned int d = 0;
	for (const struct mime_part *p = root; p != NULL; p = mime_part_next(p))
		if (p->depth > d)
			d = p->depth;
	return d;
}

/* ---- invariants every tree must satisfy ---- */

static void count_region(const char *msg, uint64_t off, uint64_t len, uint64_t *lines_r,
			 uint64_t *bare_r, unsigned int *flags_r)
{
	uint64_t lines = 0, bare = 0;
	unsigned int fl = 0;
	for (uint64_t i = off; i < off + len; i++) {
		unsigned char c = (unsigned char)msg[i];
		if (c == '\n') {
			lines++;
			if (i == 0 || msg[i - 1] != '\r')
				bare++;
		}
		if (c >= 0x80)
			fl |= 1;
		if (c == 0)
			fl |= 2;
	}
	*lines_r = lines;
	*bare_r = bare;
	*flags_r = fl;
}

/* The line that ends just before offset (or contains it) starts with "--" boundary. */
static void assert_delimiter_before(const char *msg, uint64_t offset, const char *boundary)
{
	uint64_t start = offset;
	if (start > 0 && msg[start - 1] == '\n')
		start--;
	while (start > 0 && msg[start - 1] != '\n')
		start--;
	assert_true(strncmp(msg + start, "--", 2) == 0);
	assert_true(strncmp(msg + start + 2, boundary, strlen(boundary)) == 0);
}

static void check_part(const char *msg, size_t len, const struct mime_part *part)
{
	uint64_t lines, bare;
	unsigned int fl;
	uint64_t end = part->body_offset + part->body_size;
	assert_int_equal(part->body_offset, part->header_offset + part->header_size);
	assert_true(end <= len);
	assert_non_null(part->type);
	assert_non_null(part->subtype);
	assert_non_null(part->encoding);

	count_region(msg, part->header_offset, part->header_size, &lines, &bare, &fl);
	assert_int_equal(part->header_vsize, part->header_size + bare);
	assert_int_equal((fl & 1) != 0, (part->flags & MIME_PART_HEADER_8BIT) != 0);
	assert_int_equal((fl & 2) != 0, (part->flags & MIME_PART_HEADER_NUL) != 0);
	if (part->header_size > 0 && !(part->flags & MIME_PART_HEADER_UNTERMINATED)) {
		/* a terminated header ends with its empty line */
		const char *h = msg + part->header_offset;
		uint64_t n = part->header_size;
		assert_true((n >= 2 && memcmp(h + n - 2, "\n\n", 2) == 0) ||
			    (n >= 3 && memcmp(h + n - 3, "\n\r\n", 3) == 0) ||
			    (n == 1 && h[0] == '\n') || (n == 2 && memcmp(h, "\r\n", 2) == 0));
	}
	if (part->flags & MIME_PART_NO_HEADER)
		assert_int_equal(part->header_size, 0);

	count_region(msg, part->body_offset, part->body_size, &lines, &bare, &fl);
	assert_int_equal(part->body_lines, lines);
	assert_int_equal(part->body_vsize, part->body_size + bare);
	if (part->children == NULL) {
		assert_int_equal((fl & 1) != 0, (part->flags & MIME_PART_BODY_8BIT) != 0);
		assert_int_equal((fl & 2) != 0, (part->flags & MIME_PART_BODY_NUL) != 0);
	}

	/* kinds */
	if (part->parent == NULL || (part->parent->flags & MIME_PART_HAS_MESSAGE))
		assert_true(part->flags & MIME_PART_MESSAGE);
	else
		assert_false(part->flags & MIME_PART_MESSAGE);
	assert_int_equal(part->envelope != NULL, (part->flags & MIME_PART_MESSAGE) != 0);
	if (strcmp(part->type, "multipart") == 0)
		assert_true(part->flags & MIME_PART_MULTIPART);
	if (strcmp(part->type, "message") == 0 &&
	    (strcmp(part->subtype, "rfc822") == 0 || strcmp(part->subtype, "global") == 0)) {
		assert_true(part->flags & MIME_PART_HAS_MESSAGE);
		assert_int_equal(part->child_count, 1);
		const struct mime_part *m = part->children;
		assert_int_equal(m->header_offset, part->body_offset);
		assert_int_equal(m->body_offset + m->body_size, end);
	}
	if (!(part->flags & (MIME_PART_MULTIPART | MIME_PART_HAS_MESSAGE)))
		assert_null(part->children);

	/* multipart children: delimiter lines around them, preamble and epilogue outside */
	if (part->flags & MIME_PART_MULTIPART) {
		const char *boundary = mime_part_param(part, "boundary");
		uint64_t cursor = part->body_offset;
		unsigned int n = 0;
		for (const struct mime_part *c = part->children; c != NULL; c = c->next) {
			uint64_t cend = c->body_offset + c->body_size;
			assert_true(c->header_offset > cursor || (n == 0 && c->header_offset >= cursor));
			assert_true(cend <= end);
			assert_delimiter_before(msg, c->header_offset, boundary);
			if (cend < len) {
				/* the line end before a delimiter belongs to the delimiter */
				const char *t = msg + cend;
				assert_true(strncmp(t, "--", 2) == 0 || strncmp(t, "\n--", 3) == 0 ||
					    strncmp(t, "\r\n--", 4) == 0);
			}
			assert_ptr_equal(c->parent, part);
			assert_int_equal(c->depth, part->depth + 1);
			cursor = cend;
			n++;
		}
		assert_int_equal(n, part->child_count);
	}

	/* numbering round trip */
	struct buf num = BUF_INIT(4096);
	assert_int_equal(mime_part_number(part, &num), 0);
	const struct mime_part *root = part;
	while (root->parent != NULL)
		root = root->parent;
	const struct mime_part *found = mime_part_find(root, buf_cstr(&num));
	if ((part->flags & MIME_PART_MESSAGE) && (part->flags & MIME_PART_MULTIPART))
		assert_ptr_equal(found, part->parent == NULL ? part : part->parent);
	else
		assert_ptr_equal(found, part);
	buf_free(&num);
}

static void check_tree(const char *msg, size_t len, const struct mime_part *root)
{
	assert_null(root->parent);
	assert_int_equal(root->header_offset, 0);
	assert_int_equal(mime_part_size(root), len);
	for (const struct mime_part *p = root; p != NULL; p = mime_part_next(p))
		check_part(msg, len, p);
}

/* ---- the corpus, structure by structure ---- */

/* Content-Transfer-Encoding, as IMAP BINARY and SEARCH read a part. */
static void test_decode_transfer(void **state)
{
	struct buf out;
	buf_init(&out, 4096);
	/* base64 across lines, junk skipped, stops at padding */
	const char b64[] = "aGVs\r\nbG8g*d29y\r\nbGQ=\r\nignored";
	assert_int_equal(mime_decode_transfer("base64", b64, strlen(b64), &out), 0);
	assert_int_equal(buf_len(&out), 11);
	assert_memory_equal(buf_data(&out), "hello world", 11);
	buf_clear(&out);
	/* quoted-printable: =XX, soft line breaks (CRLF and LF), a bad escape kept */
	const char qp[] = "caf=C3=A9 =\r\nau =\nlait =ZZ=4";
	assert_int_equal(mime_decode_transfer("Quoted-Printable", qp, strlen(qp), &out), 0);
	const char want[] = "caf\xc3\xa9 au lait =ZZ=4";
	assert_int_equal(buf_len(&out), strlen(want));
	assert_memory_equal(buf_data(&out), want, strlen(want));
	buf_clear(&out);
	/* identity encodings are copied; an unknown one is copied and reported */
	assert_int_equal(mime_decode_transfer("8bit", "x=41", 4, &out), 0);
	assert_int_equal(mime_decode_transfer(NULL, "y", 1, &out), 0);
	assert_int_equal(mime_decode_transfer("x-uuencode", "z", 1, &out), -1);
	assert_int_equal(buf_len(&out), 6);
	assert_memory_equal(buf_data(&out), "x=41yz", 6);
	buf_free(&out);
}

static void test_plain(void **state)
{
	const struct corpus_file *cf = corpus_get("plain.eml");
	struct pool *pool = pool_new(0);
	struct mime_part *root = mime_parse(pool, cf->data, cf->len, NULL);
	check_tree(cf->data, cf->len, root);
	assert_structure(root, "text/plain");
	assert_ptr_equal(find(root, "1"), root);
	assert_ptr_equal(find(root, ""), root);
	assert_null(mime_part_find(root, "2"));
	assert_null(mime_part_find(root, "1.1"));
	assert_string_equal(mime_part_param(root, "charset"), "utf-8");
	assert_string_equal(root->encoding, "8bit");
	assert_true(root->flags & MIME_PART_BODY_8BIT);
	assert_false(root->flags & MIME_PART_DEFAULT_TYPE);
	assert_body(cf->data, root, "Hi Bob,\r\n\r\nshall we try the new caf\xc3\xa9 near the "
		    "station on Friday?\r\n\r\nAlice\r\n");
	assert_int_equal(root->body_lines, 5);
	const struct mime_envelope *env = mime_part_envelope(root);
	assert_string_equal(env->date, "Tue, 14 Nov 2023 09:11:58 +0100");
	assert_string_equal(env->subject, "Lunch on Friday?");
	assert_string_equal(env->from, "Alice Example <alice@example.org>");
	assert_string_equal(env->to, "Bob <bob@example.net>");
	assert_string_equal(env->message_id, "<20231114081158.GA1234@example.org>");
	assert_null(env->cc);
	assert_null(env->sender);
	assert_null(env->in_reply_to);
	pool_free(&pool);
}

static void test_thunderbird(void **state)
{
	const struct corpus_file *cf = corpus_get("thunderbird-alternative.eml");
	struct pool *pool = pool_new(0);
	struct mime_part *root = mime_parse(pool, cf->data, cf->len, NULL);
	check_tree(cf->data, cf->len, root);
	assert_structure(root, "multipart/alternative[text/plain,multipart/related[text/html,image/png]]");
	assert_string_equal(root->language, "en-US");
	const struct mime_part *text = find(root, "1");
	assert_string_equal(mime_part_param(text, "format"), "flowed");
	assert_string_equal(mime_part_param(text, "charset"), "UTF-8");
	assert_header(cf->data, text, "Content-Type: text/plain; charset=UTF-8; format=flowed\r\n"
		      "Content-Transfer-Encoding: 8bit\r\n\r\n");
	assert_body(cf->data, text, "Hi Bob,\r\n\r\nhere is the photo from the \xc3\xa9t\xc3\xa9 "
		    "trip.\r\n\r\nAlice\r\n");
	const struct mime_part *img = find(root, "2.2");
	assert_string_equal(img->id, "<part1.Xb3kLm9Q.Tr7Yw2Za@example.org>");
	assert_string_equal(img->disposition, "inline");
	assert_int_equal(img->disposition_param_count, 1);
	assert_string_equal(img->disposition_params[0].name, "filename");
	assert_string_equal(img->disposition_params[0].value, "beach.png");
	assert_string_equal(img->encoding, "base64");
	assert_int_equal(img->body_lines, 9);
	assert_true(strncmp(cf->data + img->body_offset, "AAECAwQF", 8) == 0);
	assert_true(strncmp(cf->data + img->body_offset + img->body_size - 5, "v8=\r\n", 5) == 0);
	const struct mime_part *html = find(root, "2.1");
	assert_true(strncmp(cf->data + html->body_offset + html->body_size - 7, "</html>", 7) == 0);
	assert_false(root->flags & MIME_PART_NO_CLOSE);
	/* the preamble is not a part */
	assert_true(strncmp(cf->data + root->body_offset, "This is a multi-part", 20) == 0);
	assert_true(text->header_offset > root->body_offset + 45);
	pool_free(&pool);
}

static void test_outlook(void **state)
{
	const struct corpus_file *cf = corpus_get("outlook-related.eml");
	struct pool *pool = pool_new(0);
	struct mime_part *root = mime_parse(pool, cf->data, cf->len, NULL);
	check_tree(cf->data, cf->len, root);
	assert_structure(root, "multipart/mixed[multipart/related[multipart/alternative[text/plain,"
			 "text/html],image/png],application/vnd.openxmlformats-officedocument."
			 "wordprocessingml.document,application/ms-tnef]");
	assert_string_equal(root->language, "de-DE");
	assert_string_equal(mime_part_param(find(root, "1"), "type"), "multipart/alternative");
	assert_string_equal(find(root, "1.1.1")->encoding, "quoted-printable");
	assert_string_equal(mime_part_param(find(root, "1.1.2"), "charset"), "iso-8859-1");
	const struct mime_part *img = find(root, "1.2");
	assert_string_equal(img->id, "<image001.png@01DA1869.ABCDEF00>");
	assert_string_equal(img->description, "image001.png");
	assert_int_equal(img->disposition_param_count, 4);
	assert_string_equal(img->disposition_params[2].name, "creation-date");
	assert_string_equal(img->disposition_params[2].value, "Thu, 16 Nov 2023 10:01:00 GMT");
	/* RFC 2047 in a quoted name (Outlook), RFC 2231 continuations with a charset */
	const struct mime_part *doc = find(root, "2");
	assert_string_equal(mime_part_param(doc, "name"), "Bericht f\xc3\xbcr Q3.docx");
	assert_string_equal(doc->disposition, "attachment");
	assert_string_equal(doc->disposition_params[0].name, "filename");
	assert_string_equal(doc->disposition_params[0].value, "Bericht f\xc3\xbcr Q3.docx");
	assert_string_equal(doc->disposition_params[0].charset, "iso-8859-1");
	assert_null(doc->disposition_params[0].language);
	assert_int_equal(doc->disposition_params[0].flags, MIME_PARAM_EXTENDED);
	assert_string_equal(doc->disposition_params[1].value, "1024");
	const struct mime_part *tnef = find(root, "3");
	assert_string_equal(tnef->subtype, "ms-tnef");
	assert_string_equal(mime_part_param(tnef, "name"), "winmail.dat");
	const struct mime_envelope *env = root->envelope;
	assert_string_equal(env->from, "\"M\xc3\xbcller, Hans\" <hans.mueller@corp.example.com>");
	assert_string_equal(env->cc, "<team@corp.example.com>");
	assert_string_equal(mime_header_decode_str(pool, env->subject, strlen(env->subject)),
			    "Quartalsbericht f\xc3\xbcr Q3");
	pool_free(&pool);
}

static void test_forward(void **state)
{
	const struct corpus_file *cf = corpus_get("forward-rfc822.eml");
	struct pool *pool = pool_new(0);
	struct mime_part *root = mime_parse(pool, cf->data, cf->len, NULL);
	check_tree(cf->data, cf->len, root);
	assert_structure(root, "multipart/mixed[text/plain,message/rfc822[multipart/alternative"
			 "[text/plain,text/html]]]");
	const struct mime_part *fwd = find(root, "2");
	assert_true(fwd->flags & MIME_PART_HAS_MESSAGE);
	assert_string_equal(fwd->disposition, "inline");
	const struct mime_envelope *env = mime_part_envelope(fwd);
	assert_non_null(env);
	assert_string_equal(env->subject, "Lunch on Friday?");
	assert_string_equal(env->cc, "Dave <dave@example.org>, \"Eve E.\" <eve@example.org>");
	assert_string_equal(env->in_reply_to, "<prev@example.org>");
	/* the encapsulated message fills the body of part 2 */
	const struct mime_part *msg = fwd->children;
	assert_true(strncmp(cf->data + msg->header_offset, "Date: Tue", 9) == 0);
	assert_body(cf->data, find(root, "2.1"), "Shall we?");
	assert_body(cf->data, find(root, "2.2"), "<p>Shall we?</p>");
	assert_int_equal(find(root, "2.1")->body_lines, 0);
	assert_null(mime_part_find(root, "2.3"));
	assert_null(mime_part_find(root, "3"));
	assert_null(mime_part_envelope(find(root, "1")));
	pool_free(&pool);
}

static void test_digest(void **state)
{
	const struct corpus_file *cf = corpus_get("digest.eml");
	struct pool *pool = pool_new(0);
	struct mime_part *root = mime_parse(pool, cf->data, cf->len, NULL);
	check_tree(cf->data, cf->len, root);
	assert_structure(root, "multipart/mixed[text/plain,multipart/digest[message/rfc822"
			 "[text/plain],message/rfc822[text/plain],text/plain]]");
	/* RFC 2046 5.1.5: in a digest the default is message/rfc822 */
	const struct mime_part *m1 = find(root, "2.1");
	assert_true(m1->flags & MIME_PART_DEFAULT_TYPE);
	assert_int_equal(m1->param_count, 0);
	assert_header(cf->data, m1, "\r\n");
	assert_string_equal(mime_part_envelope(m1)->subject, "First post");
	assert_string_equal(mime_part_envelope(find(root, "2.2"))->in_reply_to, "<p1@example.org>");
	/* the message inside is text/plain by default again */
	const struct mime_part *body = find(root, "2.1.1");
	assert_ptr_equal(body, m1->children);
	assert_true(body->flags & MIME_PART_DEFAULT_TYPE);
	assert_string_equal(mime_part_param(body, "charset"), "us-ascii");
	assert_body(cf->data, body, "Hello list.\r\n");
	const struct mime_part *own = find(root, "2.3");
	assert_false(own->flags & MIME_PART_DEFAULT_TYPE);
	assert_string_equal(own->type, "text");
	assert_string_equal(find(root, "1")->description, "Today's Topics (2 messages)");
	pool_free(&pool);
}

static void test_dsn(void **state)
{
	const struct corpus_file *cf = corpus_get("dsn-report.eml");
	struct pool *pool = pool_new(0);
	struct mime_part *root = mime_parse(pool, cf->data, cf->len, NULL);
	check_tree(cf->data, cf->len, root);
	assert_structure(root, "multipart/report[text/plain,message/delivery-status,"
			 "message/rfc822[text/plain]]");
	assert_string_equal(mime_part_param(root, "report-type"), "delivery-status");
	assert_string_equal(mime_part_param(root, "boundary"),
			    "5A1B2C3D4E.1700292600/mx.example.net");
	const struct mime_part *status = find(root, "2");
	assert_null(status->children);
	assert_true(strncmp(cf->data + status->body_offset, "Reporting-MTA: dns;", 19) == 0);
	assert_string_equal(mime_part_envelope(find(root, "3"))->subject, "Hello");
	assert_body(cf->data, find(root, "3.1"), "Hello?\r\n");
	assert_string_equal(root->envelope->date, "Sat, 18 Nov 2023 07:30:00 +0000 (UTC)");
	assert_string_equal(root->envelope->message_id,
			    "<20231118073000.5A1B2C3D4E@mx.example.net>");
	pool_free(&pool);
}

static void test_8bit_headers(void **state)
{
	const struct corpus_file *cf = corpus_get("8bit-headers.eml");
	struct pool *pool = pool_new(0);
	struct mime_part *root = mime_parse(pool, cf->data, cf->len, NULL);
	check_tree(cf->data, cf->len, root);
	assert_true(root->flags & MIME_PART_HEADER_8BIT);
	const struct mime_envelope *env = root->envelope;
	/* raw values keep the bytes; decoding makes UTF-8 (latin-1 read as windows-1252) */
	assert_string_equal(env->subject, "Gr\xfc\xdf" "e aus K\xf6ln");
	assert_string_equal(mime_header_decode_str(pool, env->subject, strlen(env->subject)),
			    "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln");
	assert_string_equal(mime_header_decode_str(pool, env->from, strlen(env->from)),
			    "Jos\xc3\xa9 P\xc3\xa9rez <jose@example.es>");
	assert_string_equal(mime_header_decode_str(pool, env->to, strlen(env->to)),
			    "Keld J\xc3\xb8rn Simonsen <keld@dkuug.dk>, Bj\xc3\xb6rn <bjorn@example.se>");
	/* RFC 2231 name*= with a charset */
	assert_string_equal(root->params[1].name, "name");
	assert_string_equal(root->params[1].value, "\xe2\x82\xac rates.txt");
	assert_string_equal(root->params[1].charset, "utf-8");
	assert_int_equal(root->params[1].flags, MIME_PARAM_EXTENDED);
	assert_string_equal(root->disposition_params[0].value, "Pr\xc3\xa9sentation.txt");
	pool_free(&pool);
}

static void test_global_nested(void **state)
{
	const struct corpus_file *cf = corpus_get("global-nested.eml");
	struct pool *pool = pool_new(0);
	struct mime_part *root = mime_parse(pool, cf->data, cf->len, NULL);
	check_tree(cf->data, cf->len, root);
	assert_structure(root, "multipart/mixed[message/global[message/rfc822[text/plain]]]");
	const struct mime_part *global = find(root, "1");
	const struct mime_part *inner = find(root, "1.1");
	assert_ptr_equal(inner, global->children);
	assert_string_equal(inner->type, "message");
	const struct mime_envelope *env = mime_part_envelope(global);
	assert_string_equal(env->subject, "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");
	assert_string_equal(mime_header_decode_str(pool, env->from, strlen(env->from)),
			    "\xd0\x98\xd0\xb2\xd0\xb0\xd0\xbd <ivan@example.ru>");
	const struct mime_part *innermost = find(root, "1.1.1");
	assert_string_equal(mime_part_envelope(inner)->subject, "innermost");
	assert_ptr_equal(innermost, inner->children);
	assert_body(cf->data, innermost, "innermost body");
	assert_int_equal(innermost->depth, 3);
	assert_null(mime_part_find(root, "1.1.1.1"));
	pool_free(&pool);
}

/* ---- malformed messages ---- */

static void test_missing_close(void **state)
{
	const struct corpus_file *cf = corpus_get("malformed-missing-close.eml");
	struct pool *pool = pool_new(0);
	struct mime_part *root = mime_parse(pool, cf->data, cf->len, NULL);
	check_tree(cf->data, cf->len, root);
	assert_structure(root, "multipart/mixed[text/plain,text/plain]");
	assert_true(root->flags & MIME_PART_NO_CLOSE);
	assert_body(cf->data, find(root, "1"), "one");
	/* the last part runs to the end of the data */
	assert_body(cf->data, find(root, "2"), "two, and the message just ends\r\n");
	pool_free(&pool);
}

static void test_no_boundary(void **state)
{
	struct pool *pool = pool_new(0);
	const struct corpus_file *cf = corpus_get("malformed-no-boundary.eml");
	struct mime_part *root = mime_parse(pool, cf->data, cf->len, NULL);
	check_tree(cf->data, cf->len, root);
	/* RFC 2045 5.2: an invalid Content-Type means text/plain; charset=us-ascii */
	assert_structure(root, "text/plain");
	assert_true(root->flags & MIME_PART_BAD_TYPE);
	assert_string_equal(mime_part_param(root, "charset"), "us-ascii");

	cf = corpus_get("malformed-boundary-absent.eml");
	root = mime_parse(pool, cf->data, cf->len, NULL);
	check_tree(cf->data, cf->len, root);
	assert_structure(root, "multipart/mixed");
	assert_int_equal(root->child_count, 0);
	assert_true(root->flags & MIME_PART_NO_CLOSE);
	assert_null(mime_part_find(root, "1"));

	/* other invalid Content-Types */
	static const char *const bad[] = { "text", "/plain", "text/", "", "; charset=x", "tex t/plain" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char msg[200];
		snprintf(msg, sizeof(msg), "Content-Type: %s\r\n\r\nbody\r\n", bad[i]);
		root = parse_str(pool, msg);
		assert_string_equal(root->type, "text");
		assert_string_equal(root->subtype, "plain");
		assert_true(root->flags & MIME_PART_BAD_TYPE);
		assert_body(msg, root, "body\r\n");
	}
	pool_free(&pool);
}

static void test_bad_encodings(void **state)
{
	const struct corpus_file *cf = corpus_get("malformed-encodings.eml");
	struct pool *pool = pool_new(0);
	struct mime_part *root = mime_parse(pool, cf->data, cf->len, NULL);
	check_tree(cf->data, cf->len, root);
	assert_structure(root, "multipart/mixed[text/plain,application/octet-stream,text/plain,"
			 "text/plain]");
	assert_string_equal(find(root, "1")->encoding, "base65");
	assert_string_equal(mime_part_param(find(root, "1"), "charset"), "unknown-8bit");
	/* RFC 2046 5.2.1: an encoded message/rfc822 cannot be parsed: opaque */
	const struct mime_part *enc = find(root, "3");
	assert_true(enc->flags & MIME_PART_OPAQUE);
	assert_null(enc->children);
	assert_string_equal(enc->encoding, "base64");
	assert_string_equal(mime_part_param(find(root, "4"), "charset"), "=?utf-8?q?broken");
	pool_free(&pool);
}

static void test_header_only_and_no_header(void **state)
{
	struct pool *pool = pool_new(0);
	const struct corpus_file *cf = corpus_get("malformed-header-only.eml");
	struct mime_part *root = mime_parse(pool, cf->data, cf->len, NULL);
	check_tree(cf->data, cf->len, root);
	assert_true(root->flags & MIME_PART_HEADER_UNTERMINATED);
	assert_int_equal(root->header_size, cf->len);
	assert_int_equal(root->body_size, 0);
	assert_string_equal(root->envelope->subject, "a header and no body at all");

	cf = corpus_get("malformed-no-header.eml");
	root = mime_parse(pool, cf->data, cf->len, NULL);
	check_tree(cf->data, cf->len, root);
	assert_true(root->flags & MIME_PART_NO_HEADER);
	assert_int_equal(root->header_size, 0);
	assert_int_equal(root->body_size, cf->len);
	assert_int_equal(root->body_lines, 2);
	assert_null(root->envelope->subject);

	/* an empty header: the message starts with the empty line */
	root = parse_str(pool, "\r\nbody\r\n");
	assert_int_equal(root->header_size, 2);
	assert_false(root->flags & MIME_PART_NO_HEADER);
	assert_true(root->flags & MIME_PART_DEFAULT_TYPE);

	cf = corpus_get("empty.eml");
	root = mime_parse(pool, cf->data, cf->len, NULL);
	check_tree(cf->data, cf->len, root);
	assert_int_equal(mime_part_size(root), 0);
	assert_structure(root, "text/plain");
	assert_ptr_equal(find(root, "1"), root);
	pool_free(&pool);
}

static void test_nul_and_8bit(void **state)
{
	const struct corpus_file *cf = corpus_get("malformed-nul.eml");
	struct pool *pool = pool_new(0);
	struct mime_part *root = mime_parse(pool, cf->data, cf->len, NULL);
	check_tree(cf->data, cf->len, root);
	assert_true(root->flags & MIME_PART_HEADER_NUL);
	assert_true(root->flags & MIME_PART_BODY_NUL);
	assert_true(root->flags & MIME_PART_BODY_8BIT);
	assert_string_equal(root->envelope->subject, "has a \xef\xbf\xbd NUL");
	assert_string_equal(root->envelope->from, "nul\xef\xbf\xbdsender@example.org");
	pool_free(&pool);
}

static void test_prefix_boundaries(void **state)
{
	const struct corpus_file *cf = corpus_get("malformed-prefix-boundaries.eml");
	struct pool *pool = pool_new(0);
	struct mime_part *root = mime_parse(pool, cf->data, cf->len, NULL);
	check_tree(cf->data, cf->len, root);
	assert_structure(root, "multipart/mixed[multipart/alternative[text/plain,text/plain],"
			 "multipart/mixed[text/plain]]");
	/* "--outer-inner" is the inner boundary, "--outer" closes the inner multipart */
	assert_true(find(root, "1")->flags & MIME_PART_NO_CLOSE);
	assert_body(cf->data, find(root, "1.2"), "inner two, closed by the outer boundary");
	/* "--outer--" matches both "out" and "outer": the longer one wins */
	assert_true(find(root, "2")->flags & MIME_PART_NO_CLOSE);
	assert_false(root->flags & MIME_PART_NO_CLOSE);
	const char *epilogue = strstr(cf->data, "--outer--\r\n") + 11;
	const struct mime_part *last = find(root, "2.1");
	assert_true(last->body_offset + last->body_size < (uint64_t)(epilogue - cf->data));
	assert_int_equal(mime_part_size(root), cf->len);

	/* the innermost boundary wins a tie; a boundary line may carry junk after it */
	const char *msg = "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		"--b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
		"--b junk\r\n\r\ninner\r\n--b--\r\n\r\n--b--\r\n";
	root = parse_str(pool, msg);
	check_tree(msg, strlen(msg), root);
	assert_structure(root, "multipart/mixed[multipart/mixed[text/plain]]");
	assert_body(msg, find(root, "1.1"), "inner");
	assert_false(find(root, "1")->flags & MIME_PART_NO_CLOSE);
	pool_free(&pool);
}

static void test_junk_header(void **state)
{
	const struct corpus_file *cf = corpus_get("malformed-junk-header.eml");
	struct pool *pool = pool_new(0);
	struct mime_part *root = mime_parse(pool, cf->data, cf->len, NULL);
	check_tree(cf->data, cf->len, root);
	/* junk lines stay in the header; unfolding keeps the blanks; the first field counts */
	assert_false(root->flags & MIME_PART_NO_HEADER);
	assert_string_equal(root->envelope->subject, "still found folded\tand folded again");
	assert_string_equal(root->subtype, "plain");
	assert_string_equal(mime_part_param(root, "charset"), "iso-8859-1");
	assert_body(cf->data, root, "body\r\n");
	pool_free(&pool);
}

static void test_empty_parts(void **state)
{
	const struct corpus_file *cf = corpus_get("malformed-empty-parts.eml");
	struct pool *pool = pool_new(0);
	struct mime_part *root = mime_parse(pool, cf->data, cf->len, NULL);
	check_tree(cf->data, cf->len, root);
	assert_structure(root, "multipart/mixed[text/plain,text/plain,text/plain,text/plain]");
	const struct mime_part *p1 = find(root, "1"), *p2 = find(root, "2"), *p3 = find(root, "3");
	assert_int_equal(mime_part_size(p1), 0);
	assert_header(cf->data, p2, "\r\n");
	assert_int_equal(p2->body_size, 0);
	assert_header(cf->data, p3, "Content-Type: text/plain");
	assert_true(p3->flags & MIME_PART_HEADER_UNTERMINATED);
	/* a closing delimiter without a line end at the very end */
	assert_body(cf->data, find(root, "4"), "x");
	assert_false(root->flags & MIME_PART_NO_CLOSE);
	pool_free(&pool);
}

static void test_bare_lf(void **state)
{
	const struct corpus_file *cf = corpus_get("bare-lf.eml");
	struct pool *pool = pool_new(0);
	struct mime_part *root = mime_parse(pool, cf->data, cf->len, NULL);
	check_tree(cf->data, cf->len, root);
	assert_structure(root, "multipart/alternative[text/plain,text/html]");
	const struct mime_part *text = find(root, "1");
	assert_body(cf->data, text, "plain\ntwo lines");
	assert_int_equal(text->body_vsize, text->body_size + 1);
	assert_int_equal(text->header_vsize, text->header_size + 2);
	assert_int_equal(root->header_vsize, root->header_size + 5);

	/* the same message with CRLF has the same structure and the CRLF sizes */
	struct buf crlf = BUF_INIT(1 << 20);
	for (size_t i = 0; i < cf->len; i++) {
		if (cf->data[i] == '\n')
			buf_append_str(&crlf, "\r");
		buf_append(&crlf, cf->data + i, 1);
	}
	struct mime_part *root2 = mime_parse(pool, buf_data(&crlf), buf_len(&crlf), NULL);
	check_tree(buf_cstr(&crlf), buf_len(&crlf), root2);
	for (const struct mime_part *a = root, *b = root2; a != NULL;
	     a = mime_part_next(a), b = mime_part_next(b)) {
		assert_non_null(b);
		assert_int_equal(a->header_vsize, b->header_size);
		assert_int_equal(a->body_vsize, b->body_size);
		assert_int_equal(a->body_lines, b->body_lines);
		assert_string_equal(a->subtype, b->subtype);
	}
	buf_free(&crlf);
	pool_free(&pool);
}

/* A header field longer than the limit is cut in the parsed view; offsets stay exact, and
 * the parser's memory does not grow with the message. */
static void test_huge_header(void **state)
{
	struct pool *pool = pool_new(0);
	struct buf msg = BUF_INIT((size_t)64 << 20);
	buf_append_str(&msg, "From: a@example.org\r\nSubject: start");
	for (int i = 0; i < 20000; i++)
		buf_append_str(&msg, "\r\n folded word");
	buf_append_str(&msg, "\r\n");
	for (int i = 0; i < 20000; i++)
		buf_printf(&msg, "X-Junk-%d: %0200d\r\n", i, i);
	buf_append_str(&msg, "To: late@example.org\r\nContent-Type: text/html\r\n\r\nbody\r\n");
	const char *m = buf_cstr(&msg);
	size_t before = pool_used(pool);
	struct mime_part *root = mime_parse(pool, m, buf_len(&msg), NULL);
	size_t used = pool_used(pool) - before;
	check_tree(m, buf_len(&msg), root);
	assert_true(root->flags & MIME_PART_TRUNCATED);
	/* the value is the first max_field_size bytes of the field, unfolded */
	const char *field = strstr(m, "Subject:");
	struct buf expect = BUF_INIT(1 << 20);
	assert_int_equal(mime_header_unfold(field + 8, MIME_DEFAULT_MAX_FIELD_SIZE - 8, &expect), 0);
	assert_string_equal(root->envelope->subject, buf_cstr(&expect));
	assert_true(buf_len(&expect) > 50000);
	buf_free(&expect);
	assert_string_equal(root->envelope->to, "late@example.org");
	assert_string_equal(root->subtype, "html");
	assert_body(m, root, "body\r\n");
	/* about max_field_size for the parser, plus the kept values */
	assert_true(used < 3 * MIME_DEFAULT_MAX_FIELD_SIZE);

	/* small limits: the field limit and the kept-bytes limit */
	struct mime_limits limits = { .max_field_size = 64, .max_kept_size = 50 };
	root = mime_parse(pool, m, buf_len(&msg), &limits);
	check_tree(m, buf_len(&msg), root);
	assert_int_equal(strlen(root->envelope->from), strlen("a@example.org"));
	assert_true(strlen(root->envelope->subject) <= 64);
	assert_true(root->flags & MIME_PART_LIMIT_KEPT);
	buf_free(&msg);
	pool_free(&pool);
}

/* Lines of 1 MB in the header and in bodies, also at a boundary. */
static void test_long_lines(void **state)
{
	struct pool *pool = pool_new(0);
	struct buf msg = BUF_INIT((size_t)64 << 20);
	size_t mb = 1 << 20;
	buf_append_str(&msg, "X-Long: ");
	for (size_t i = 0; i < mb; i++)
		buf_append(&msg, "x", 1);
	buf_append_str(&msg, "\r\nContent-Type: multipart/mixed; boundary=\"lb\"\r\n\r\n--lb\r\n\r\n");
	for (size_t i = 0; i < mb; i++)
		buf_append(&msg, i % 2 ? "-" : "a", 1);
	buf_append_str(&msg, "\r\n--lb");
	for (size_t i = 0; i < mb; i++)
		buf_append(&msg, " ", 1);
	buf_append_str(&msg, "\r\n\r\n--");
	for (size_t i = 0; i < mb; i++)
		buf_append(&msg, "-", 1);
	buf_append_str(&msg, "\r\n--lb--");
	const char *m = buf_cstr(&msg);
	size_t len = buf_len(&msg);

	size_t before = pool_used(pool);
	struct mime_part *root = mime_parse(pool, m, len, NULL);
	assert_true(pool_used(pool) - before < 2 * MIME_DEFAULT_MAX_FIELD_SIZE);
	check_tree(m, len, root);
	assert_structure(root, "multipart/mixed[text/plain,text/plain]");
	assert_int_equal(find(root, "1")->body_size, mb);
	assert_int_equal(find(root, "2")->body_size, mb + 2);
	assert_false(root->flags & MIME_PART_NO_CLOSE);

	/* fed in odd chunks it is the same */
	struct buf a, b;
	serialize(root, &a);
	struct mime_parser *p = mime_parser_new(pool);
	for (size_t off = 0, step = 1; off < len; off += step, step = step * 7 % 65521 + 1)
		mime_parser_feed(p, m + off, off + step > len ? len - off : step);
	serialize(mime_parser_finish(p), &b);
	assert_int_equal(buf_len(&a), buf_len(&b));
	assert_memory_equal(buf_data(&a), buf_data(&b), buf_len(&a));
	buf_free(&a);
	buf_free(&b);
	buf_free(&msg);
	pool_free(&pool);
}

/* ---- limits ---- */

static void nested_multiparts(struct buf *msg, int levels)
{
	for (int i = 0; i < levels; i++)
		buf_printf(msg, "Content-Type: multipart/mixed; boundary=\"level%03d\"\r\n\r\n"
			   "--level%03d\r\n", i, i);
	buf_append_str(msg, "Content-Type: text/plain\r\n\r\ndeep\r\n");
	for (int i = levels - 1; i >= 0; i--)
		buf_printf(msg, "--level%03d--\r\n", i);
}

static void test_depth_limit(void **state)
{
	struct pool *pool = pool_new(0);
	struct buf msg = BUF_INIT(1 << 20);
	nested_multiparts(&msg, 150);
	const char *m = buf_cstr(&msg);
	struct mime_part *root = mime_parse(pool, m, buf_len(&msg), NULL);
	check_tree(m, buf_len(&msg), root);
	assert_int_equal(max_depth(root), MIME_DEFAULT_MAX_DEPTH);
	assert_true(root->flags & MIME_PART_LIMIT_DEPTH);
	const struct mime_part *deepest = root;
	while (deepest->children != NULL)
		deepest = deepest->children;
	assert_int_equal(deepest->depth, MIME_DEFAULT_MAX_DEPTH);
	assert_true(deepest->flags & MIME_PART_OPAQUE);
	assert_string_equal(deepest->type, "text");
	assert_string_equal(mime_part_param(deepest, "boundary"), "level100");
	/* the outer boundaries still close the opaque part */
	assert_true(strncmp(m + deepest->body_offset + deepest->body_size, "\r\n--level099--", 14) == 0);

	/* a configured limit, and nested message/rfc822 parts */
	struct mime_limits limits = { .max_depth = 5 };
	buf_clear(&msg);
	for (int i = 0; i < 10; i++)
		buf_printf(&msg, "Subject: level %d\r\nContent-Type: message/rfc822\r\n\r\n", i);
	buf_append_str(&msg, "Subject: last\r\n\r\nbody\r\n");
	m = buf_cstr(&msg);
	root = mime_parse(pool, m, buf_len(&msg), &limits);
	check_tree(m, buf_len(&msg), root);
	assert_int_equal(max_depth(root), 5);
	assert_structure(root, "message/rfc822[message/rfc822[message/rfc822[message/rfc822["
			 "message/rfc822[text/plain]]]]]");
	/* the root's body is its part 1, a message/rfc822 whose message's body is 1.1 ... */
	assert_ptr_equal(find(root, "1"), root);
	assert_ptr_equal(find(root, "1.1"), root->children);
	assert_ptr_equal(find(root, "1.1.1"), root->children->children);
	assert_string_equal(root->envelope->subject, "level 0");
	assert_string_equal(mime_part_envelope(root)->subject, "level 1");
	assert_string_equal(mime_part_envelope(find(root, "1.1"))->subject, "level 2");
	const struct mime_part *last = find(root, "1.1.1.1.1.1");
	assert_int_equal(last->depth, 5);
	assert_true(last->flags & MIME_PART_OPAQUE);
	assert_true(root->flags & MIME_PART_LIMIT_DEPTH);
	assert_string_equal(last->envelope->subject, "level 5");
	assert_true(strncmp(m + last->body_offset, "Subject: level 6\r\n", 18) == 0);
	buf_free(&msg);
	pool_free(&pool);
}

static void test_part_limit(void **state)
{
	struct pool *pool = pool_new(0);
	struct buf msg = BUF_INIT(1 << 20);
	buf_append_str(&msg, "Content-Type: multipart/mixed; boundary=p\r\n\r\n");
	for (int i = 0; i < 50; i++)
		buf_printf(&msg, "--p\r\nContent-Type: text/plain\r\n\r\npart %d\r\n", i);
	buf_append_str(&msg, "--p--\r\n");
	const char *m = buf_cstr(&msg);
	struct mime_limits limits = { .max_parts = 10 };
	struct mime_part *root = mime_parse(pool, m, buf_len(&msg), &limits);
	check_tree(m, buf_len(&msg), root);
	assert_int_equal(count_parts(root), 10);
	assert_true(root->flags & MIME_PART_LIMIT_PARTS);
	/* the rest of the message stayed in the last part */
	const struct mime_part *last = find(root, "9");
	assert_int_equal(last->body_offset + last->body_size, buf_len(&msg));
	root = mime_parse(pool, m, buf_len(&msg), NULL);
	assert_int_equal(count_parts(root), 51);
	assert_false(root->flags & MIME_PART_LIMIT_PARTS);
	buf_free(&msg);
	pool_free(&pool);
}

/* Every envelope field, every Content-* field, folded and with comments. */
static void test_all_fields(void **state)
{
	struct pool *pool = pool_new(0);
	const char *msg =
		"date: Mon, 20 Nov 2023 08:00:00 +0000\r\n"
		"SUBJECT:  folded\r\n   subject \r\n"
		"From: a@example.org\r\nSender: s@example.org\r\nReply-To: r@example.org\r\n"
		"To: t@example.org\r\nCc: c@example.org\r\nBcc: b@example.org\r\n"
		"In-Reply-To: <irt@example.org>\r\nMessage-ID: <id@example.org>\r\n"
		"Subject: second subject is ignored\r\n"
		"Content-Type: application/pdf (comment); name=x.pdf\r\n"
		"Content-Transfer-Encoding: BASE64 (comment)\r\n"
		"Content-ID: <cid@example.org>\r\n"
		"Content-Description: =?utf-8?q?caf=C3=A9?= menu\r\n"
		"Content-Disposition: ATTACHMENT; FILENAME=\"x.pdf\"\r\n"
		"Content-Language: en, de\r\n"
		"Content-Location: http://example.org/\r\n  x.pdf\r\n"
		"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
		"\r\nJVBERi0=\r\n";
	struct mime_part *root = parse_str(pool, msg);
	check_tree(msg, strlen(msg), root);
	const struct mime_envelope *env = root->envelope;
	assert_string_equal(env->date, "Mon, 20 Nov 2023 08:00:00 +0000");
	assert_string_equal(env->subject, "folded   subject");
	assert_string_equal(env->from, "a@example.org");
	assert_string_equal(env->sender, "s@example.org");
	assert_string_equal(env->reply_to, "r@example.org");
	assert_string_equal(env->to, "t@example.org");
	assert_string_equal(env->cc, "c@example.org");
	assert_string_equal(env->bcc, "b@example.org");
	assert_string_equal(env->in_reply_to, "<irt@example.org>");
	assert_string_equal(env->message_id, "<id@example.org>");
	assert_string_equal(root->type, "application");
	assert_string_equal(root->subtype, "pdf");
	assert_string_equal(mime_part_param(root, "name"), "x.pdf");
	assert_string_equal(root->encoding, "base64");
	assert_string_equal(root->id, "<cid@example.org>");
	assert_string_equal(mime_header_decode_str(pool, root->description,
						   strlen(root->description)), "caf\xc3\xa9 menu");
	assert_string_equal(root->disposition, "attachment");
	assert_string_equal(root->disposition_params[0].name, "filename");
	assert_string_equal(root->language, "en, de");
	assert_string_equal(root->location, "http://example.org/  x.pdf");
	assert_string_equal(root->md5, "Q2hlY2sgSW50ZWdyaXR5IQ==");

	/* envelope fields of a multipart's child are not kept: it is no message */
	msg = "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nSubject: no\r\n"
		"Content-Disposition: ; filename=a\r\n\r\nbody\r\n--x--\r\n";
	root = parse_str(pool, msg);
	assert_null(find(root, "1")->envelope);
	assert_string_equal(find(root, "1")->disposition, "attachment");
	pool_free(&pool);
}

static void test_message_edges(void **state)
{
	struct pool *pool = pool_new(0);
	/* a message/rfc822 part with an empty body still has its (empty) message */
	const char *msg = "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
		"Content-Type: message/rfc822\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n"
		"--x--\r\n";
	struct mime_part *root = parse_str(pool, msg);
	check_tree(msg, strlen(msg), root);
	assert_structure(root, "multipart/mixed[message/rfc822[text/plain],message/rfc822[text/plain]]");
	assert_int_equal(mime_part_size(find(root, "1.1")), 0);
	assert_true(find(root, "2")->flags & MIME_PART_HEADER_UNTERMINATED);

	/* a digest part without header: an empty message whose body is the text */
	msg = "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\nhello there\r\n--d--\r\n";
	root = parse_str(pool, msg);
	check_tree(msg, strlen(msg), root);
	assert_structure(root, "multipart/digest[message/rfc822[text/plain]]");
	assert_true(find(root, "1")->flags & MIME_PART_NO_HEADER);
	assert_true(find(root, "1.1")->flags & MIME_PART_NO_HEADER);
	assert_body(msg, find(root, "1.1"), "hello there");

	/* message/partial and message/external-body are leaves; text/rfc822-headers too */
	msg = "Content-Type: message/partial; id=x; number=1\r\n\r\nFrom: a@b\r\n\r\nx\r\n";
	root = parse_str(pool, msg);
	assert_structure(root, "message/partial");

	/* numbers as IMAP writes them */
	const struct corpus_file *cf = corpus_get("forward-rfc822.eml");
	root = mime_parse(pool, cf->data, cf->len, NULL);
	struct buf num = BUF_INIT(64);
	static const char *const sections[] = { "1", "2", "2.1", "2.2" };
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		buf_clear(&num);
		assert_int_equal(mime_part_number(find(root, sections[i]), &num), 0);
		assert_string_equal(buf_cstr(&num), sections[i]);
	}
	buf_clear(&num);
	assert_int_equal(mime_part_number(root, &num), 0);
	assert_string_equal(buf_cstr(&num), "");
	buf_clear(&num);
	assert_int_equal(mime_part_number(find(root, "2")->children, &num), 0);
	assert_string_equal(buf_cstr(&num), "2");
	static const char *const bad[] = { "0", "01", "1.", ".1", "1..2", "a", "2.0", "1 ",
					   "99999999999999999999", "3", "2.3", "1.1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_null(mime_part_find(root, bad[i]));
	buf_free(&num);
	pool_free(&pool);
}

static void test_encoded_word_limits(void **state)
{
	struct pool *pool = pool_new(0);
	struct buf v = BUF_INIT(1 << 20);
	/* a long encoded word (1000 bytes) still decodes ... */
	buf_append_str(&v, "=?utf-8?q?");
	for (int i = 0; i < 1000; i++)
		buf_append_str(&v, "a");
	buf_append_str(&v, "?=");
	assert_int_equal(strlen(decode(pool, buf_cstr(&v))), 1000);
	/* ... a giant one is left alone, and junk made of word starts stays linear */
	buf_clear(&v);
	buf_append_str(&v, "=?utf-8?q?");
	for (int i = 0; i < 3000; i++)
		buf_append_str(&v, "a");
	buf_append_str(&v, "?=");
	assert_string_equal(decode(pool, buf_cstr(&v)), buf_cstr(&v));
	buf_clear(&v);
	for (int i = 0; i < 10000; i++)
		buf_append_str(&v, "=?koi8-r?q?a");
	assert_string_equal(decode(pool, buf_cstr(&v)), buf_cstr(&v));
	buf_free(&v);
	pool_free(&pool);
}

/* ---- RFC examples ---- */

/* RFC 2231 sections 3, 4 and 4.1 */
static void test_rfc2231(void **state)
{
	struct pool *pool = pool_new(0);
	struct mime_part *root = parse_str(pool,
		"Content-Type: message/external-body; access-type=URL;\r\n"
		"         URL*0=\"ftp://\";\r\n"
		"         URL*1=\"cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar\"\r\n\r\n");
	assert_int_equal(root->param_count, 2);
	assert_string_equal(mime_part_param(root, "access-type"), "URL");
	assert_string_equal(mime_part_param(root, "url"),
			    "ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar");
	assert_int_equal(root->params[1].flags, MIME_PARAM_EXTENDED);

	root = parse_str(pool, "Content-Type: application/x-stuff;\r\n"
			 "         title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A\r\n\r\n");
	assert_int_equal(root->param_count, 1);
	assert_string_equal(root->params[0].name, "title");
	assert_string_equal(root->params[0].value, "This is ***fun***");
	assert_string_equal(root->params[0].charset, "us-ascii");
	assert_string_equal(root->params[0].language, "en-us");

	root = parse_str(pool, "Content-Type: application/x-stuff;\r\n"
			 "    title*0*=us-ascii'en'This%20is%20even%20more%20;\r\n"
			 "    title*1*=%2A%2A%2Afun%2A%2A%2A%20;\r\n"
			 "    title*2=\"isn't it!\"\r\n\r\n");
	assert_int_equal(root->param_count, 1);
	assert_string_equal(root->params[0].value, "This is even more ***fun*** isn't it!");
	assert_string_equal(root->params[0].language, "en");

	/* out of order sections, a gap ends the value, the extended form beats the plain one */
	root = parse_str(pool, "Content-Type: text/plain; a*1=b; a*0=a; a*3=d; "
			 "name=\"plain.txt\"; name*=utf-8''%C3%A9.txt\r\n\r\n");
	assert_string_equal(mime_part_param(root, "a"), "ab");
	assert_string_equal(mime_part_param(root, "name"), "\xc3\xa9.txt");
	/* an unknown charset keeps the bytes, flagged */
	root = parse_str(pool, "Content-Type: text/plain; name*=x-unknown-cs''%E9t%E9\r\n\r\n");
	assert_string_equal(mime_part_param(root, "name"), "\xe9t\xe9");
	assert_int_equal(root->params[0].flags, MIME_PARAM_EXTENDED | MIME_PARAM_RAW);
	/* iconv charsets */
	root = parse_str(pool, "Content-Type: text/plain; name*=iso-8859-2''%B1\r\n\r\n");
	assert_string_equal(mime_part_param(root, "name"), "\xc4\x85");
	/* RFC 2045 5.1 example with a comment; lenient unquoted values and missing ';' */
	root = parse_str(pool, "Content-type: text/plain; charset=us-ascii (Plain text)\r\n\r\n");
	assert_string_equal(mime_part_param(root, "charset"), "us-ascii");
	root = parse_str(pool, "Content-Type: TEXT/HTML; NAME=My File.htm; boundary=----=_P_1;"
			 " junk; =x; charset=\"a\\\"b\" format=flowed\r\n\r\n");
	assert_string_equal(root->type, "text");
	assert_string_equal(root->subtype, "html");
	assert_string_equal(mime_part_param(root, "name"), "My File.htm");
	assert_string_equal(mime_part_param(root, "boundary"), "----=_P_1");
	assert_string_equal(mime_part_param(root, "charset"), "a\"b");
	assert_string_equal(mime_part_param(root, "format"), "flowed");
	pool_free(&pool);
}

/* RFC 2047 section 8 */
static void test_rfc2047(void **state)
{
	struct pool *pool = pool_new(0);
	assert_string_equal(decode(pool, "=?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>"),
			    "Keith Moore <moore@cs.utk.edu>");
	assert_string_equal(decode(pool, "=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>"),
			    "Keld J\xc3\xb8rn Simonsen <keld@dkuug.dk>");
	assert_string_equal(decode(pool, "=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>"),
			    "Andr\xc3\xa9 Pirard <PIRARD@vm1.ulg.ac.be>");
	assert_string_equal(decode(pool, "=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\r\n"
				   "    =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?="),
			    "If you can read this you understand the example.");
	assert_string_equal(decode(pool, "=?ISO-8859-1?Q?Olle_J=E4rnefors?= <ojarnef@admin.kth.se>"),
			    "Olle J\xc3\xa4rnefors <ojarnef@admin.kth.se>");
	assert_string_equal(decode(pool, "=?ISO-8859-1?Q?Patrik_F=E4ltstr=F6m?= <paf@nada.kth.se>"),
			    "Patrik F\xc3\xa4ltstr\xc3\xb6m <paf@nada.kth.se>");
	assert_string_equal(decode(pool, "Nathaniel Borenstein <nsb@thumper.bellcore.com>\r\n"
				   "      (=?iso-8859-8?b?7eXs+SDv4SDp7Oj08A==?=)"),
			    "Nathaniel Borenstein <nsb@thumper.bellcore.com>      ("
			    "\xd7\x9d\xd7\x95\xd7\x9c\xd7\xa9 \xd7\x9f\xd7\x91 \xd7\x99\xd7\x9c"
			    "\xd7\x98\xd7\xa4\xd7\xa0)");
	/* the table of section 8 */
	static const char *const table[][2] = {
		{ "(=?ISO-8859-1?Q?a?=)", "(a)" },
		{ "(=?ISO-8859-1?Q?a?= b)", "(a b)" },
		{ "(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)" },
		{ "(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)" },
		{ "(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)", "(ab)" },
		{ "(=?ISO-8859-1?Q?a_b?=)", "(a b)" },
		{ "(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)" },
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		assert_string_equal(decode(pool, table[i][0]), table[i][1]);
	/* RFC 2231 section 5: a language in an encoded word */
	assert_string_equal(decode(pool, "=?US-ASCII*EN?Q?Keith_Moore?="), "Keith Moore");
	/* real-world: a UTF-8 character split over two words, lower-case, no spaces */
	assert_string_equal(decode(pool, "=?utf-8?B?w6k=?= =?utf-8?B?4oK=?= =?utf-8?B?rA==?="),
			    "\xc3\xa9\xe2\x82\xac");
	assert_string_equal(decode(pool, "=?utf-8?q?caf=C3=A9?=latte"), "caf\xc3\xa9latte");
	assert_string_equal(decode(pool, "=?windows-1252?Q?=93quoted=94?="),
			    "\xe2\x80\x9cquoted\xe2\x80\x9d");
	assert_string_equal(decode(pool, "=?iso-8859-15?Q?=A4?="), "\xe2\x82\xac");
	assert_string_equal(decode(pool, "=?koi8-r?B?8NLJ18XU?="),
			    "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");
	/* left alone: unknown charsets, bad encodings, broken words; invalid UTF-8 repaired */
	assert_string_equal(decode(pool, "=?x-no-such-charset?Q?abc?= x"),
			    "=?x-no-such-charset?Q?abc?= x");
	assert_string_equal(decode(pool, "=?utf-8?X?abc?="), "=?utf-8?X?abc?=");
	assert_string_equal(decode(pool, "=?utf-8?Q?a b?="), "=?utf-8?Q?a b?=");
	assert_string_equal(decode(pool, "=?utf-8?Q?abc"), "=?utf-8?Q?abc");
	assert_string_equal(decode(pool, "=??Q?abc?="), "=??Q?abc?=");
	assert_string_equal(decode(pool, "=?utf-8?Q?=ZZ=4?="), "=ZZ=4");
	assert_string_equal(decode(pool, "=?utf-8?Q?=FF?="), "\xef\xbf\xbd");
	assert_string_equal(decode(pool, "=?utf-8?B?!!w6k?="), "\xc3\xa9");
	assert_string_equal(decode(pool, "a =?utf-8?Q?b?= c"), "a b c");
	assert_string_equal(decode(pool, ""), "");
	assert_string_equal(decode(pool, "caf\xe9 \xc3\xa9"), "caf\xc3\xa9 \xc3\xa9");
	/* the output is bounded by the caller's buffer */
	struct buf small = BUF_INIT(4);
	assert_int_equal(mime_header_decode("=?utf-8?Q?abcdef?=", 18, &small), -1);
	assert_int_equal(buf_len(&small), 0);
	buf_free(&small);
	pool_free(&pool);
}

static void test_charsets(void **state)
{
	struct buf out = BUF_INIT(1024);
	const char *error;
	assert_true(mime_charset_is_known("UTF-8"));
	assert_true(mime_charset_is_known("latin1"));
	assert_true(mime_charset_is_known("ISO-8859-2"));
	assert_true(mime_charset_is_known(NULL));
	assert_false(mime_charset_is_known("x-no-such"));
	assert_false(mime_charset_is_known("utf-8//TRANSLIT"));
	assert_int_equal(mime_charset_to_utf8("x-no-such", "abc", 3, &out, &error), -1);
	assert_string_equal(error, "unknown charset");
	assert_int_equal(buf_len(&out), 0);
	assert_int_equal(mime_charset_to_utf8("utf-8", "a\xc3\xa9\xed\xa0\x80\xc0\xaf\x00z", 10,
					      &out, &error), 0);
	assert_string_equal(buf_cstr(&out), "a\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
			    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz");
	buf_clear(&out);
	assert_int_equal(mime_charset_to_utf8("ISO-8859-1", "\x80\xe9", 2, &out, &error), 0);
	assert_string_equal(buf_cstr(&out), "\xe2\x82\xac\xc3\xa9");
	buf_clear(&out);
	/* an incomplete UTF-16 unit at the end */
	assert_int_equal(mime_charset_to_utf8("UTF-16LE", "a\0b", 3, &out, &error), 0);
	assert_string_equal(buf_cstr(&out), "a\xef\xbf\xbd");
	buf_clear(&out);
	assert_int_equal(mime_charset_to_utf8("us-ascii", "\xe9", 1, &out, &error), 0);
	assert_string_equal(buf_cstr(&out), "\xc3\xa9");
	buf_free(&out);
	struct buf tiny = BUF_INIT(2);
	assert_int_equal(mime_charset_to_utf8("koi8-r", "\xf0\xd2", 2, &tiny, &error), -1);
	assert_int_equal(buf_len(&tiny), 0);
	buf_free(&tiny);
}

/* ---- addresses ---- */

struct expect_addr {
	const char *name, *route, *mailbox, *host;
};

static void assert_addresses(struct pool *pool, const char *value,
			     const struct expect_addr *expect, size_t n)
{
	const struct mime_address *a = mime_address_parse(pool, value, strlen(value));
	for (size_t i = 0; i < n; i++, a = a->next) {
		if (a == NULL)
			fail_msg("%s: only %zu addresses", value, i);
		const char *got[4] = { a->name, a->route, a->mailbox, a->host };
		const char *want[4] = { expect[i].name, expect[i].route, expect[i].mailbox,
					expect[i].host };
		for (int k = 0; k < 4; k++) {
			if (want[k] == NULL && got[k] != NULL)
				fail_msg("%s: address %zu field %d: got \"%s\", want NIL", value, i, k,
					 got[k]);
			if (want[k] != NULL && (got[k] == NULL || strcmp(got[k], want[k]) != 0))
				fail_msg("%s: address %zu field %d: got \"%s\", want \"%s\"", value, i,
					 k, got[k] == NULL ? "NIL" : got[k], want[k]);
		}
	}
	if (a != NULL)
		fail_msg("%s: more than %zu addresses", value, n);
}

#define ADDRS(pool, value, ...) do { \
	static const struct expect_addr e_[] = { __VA_ARGS__ }; \
	assert_addresses(pool, value, e_, sizeof(e_) / sizeof(e_[0])); \
} while (0)

/* RFC 5322 appendix A */
static void test_addresses_rfc5322(void **state)
{
	struct pool *pool = pool_new(0);
	/* A.1.1 */
	ADDRS(pool, "John Doe <jdoe@machine.example>",
	      { "John Doe", NULL, "jdoe", "machine.example" });
	/* A.1.2 */
	ADDRS(pool, "\"Joe Q. Public\" <john.q.public@example.com>",
	      { "Joe Q. Public", NULL, "john.q.public", "example.com" });
	ADDRS(pool, "Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>",
	      { "Mary Smith", NULL, "mary", "x.test" },
	      { NULL, NULL, "jdoe", "example.org" },
	      { "Who?", NULL, "one", "y.test" });
	ADDRS(pool, "<boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>",
	      { NULL, NULL, "boss", "nil.test" },
	      { "Giant; \"Big\" Box", NULL, "sysservices", "example.net" });
	/* A.1.3: groups */
	ADDRS(pool, "A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
	      { NULL, NULL, "A Group", NULL },
	      { "Ed Jones", NULL, "c", "a.test" },
	      { NULL, NULL, "joe", "where.test" },
	      { "John", NULL, "jdoe", "one.test" },
	      { NULL, NULL, NULL, NULL });
	ADDRS(pool, "Undisclosed recipients:;",
	      { NULL, NULL, "Undisclosed recipients", NULL }, { NULL, NULL, NULL, NULL });
	/* A.5: white space, comments, and other oddities */
	ADDRS(pool, "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
	      { "Pete", NULL, "pete", "silly.test" });
	ADDRS(pool, "A Group(Some people)\r\n     :Chris Jones <c@(Chris's host.)public.example>,"
	      "\r\n         joe@example.org,\r\n  John <jdoe@one.test> (my dear friend); "
	      "(the end of the group)",
	      { NULL, NULL, "A Group", NULL },
	      { "Chris Jones", NULL, "c", "public.example" },
	      { NULL, NULL, "joe", "example.org" },
	      { "John", NULL, "jdoe", "one.test" },
	      { NULL, NULL, NULL, NULL });
	ADDRS(pool, "(Empty list)(start)Hidden recipients  :(nobody(that I know))  ;",
	      { NULL, NULL, "Hidden recipients", NULL }, { NULL, NULL, NULL, NULL });
	/* A.6.1: obsolete routes and empty list elements */
	ADDRS(pool, "Joe Q. Public <john.q.public@example.com>",
	      { "Joe Q. Public", NULL, "john.q.public", "example.com" });
	ADDRS(pool, "Mary Smith <@node.test:mary@example.net>, , jdoe@test  . example",
	      { "Mary Smith", "@node.test", "mary", "example.net" },
	      { NULL, NULL, "jdoe", "test.example" });
	/* A.6.3: obsolete white space and comments */
	ADDRS(pool, "John Doe <jdoe@machine(comment).  example>",
	      { "John Doe", NULL, "jdoe", "machine.example" });
	ADDRS(pool, "Mary Smith\r\n  \r\n <mary@example.net>",
	      { "Mary Smith", NULL, "mary", "example.net" });
	pool_free(&pool);
}

static void test_addresses_junk(void **state)
{
	struct pool *pool = pool_new(0);
	assert_null(mime_address_parse(pool, "", 0));
	assert_null(mime_address_parse(pool, " , ,(c) ", 8));
	/* a comment names an address without a display name */
	ADDRS(pool, "jdoe@one.test (John Doe)", { "John Doe", NULL, "jdoe", "one.test" });
	/* routes with several hops, quoted local parts, domain literals */
	ADDRS(pool, "<@a.test,@b.test:x@c.test>", { NULL, "@a.test,@b.test", "x", "c.test" });
	ADDRS(pool, "\"john doe\"@example.com, x@[192.0.2.1]",
	      { NULL, NULL, "\"john doe\"", "example.com" },
	      { NULL, NULL, "x", "[192.0.2.1]" });
	/* missing parts get Dovecot's placeholders, never a NIL host outside a group */
	ADDRS(pool, "undisclosed-recipients", { NULL, NULL, "undisclosed-recipients",
						"MISSING_DOMAIN" });
	ADDRS(pool, "Name <user>", { "Name", NULL, "user", "MISSING_DOMAIN" });
	ADDRS(pool, "<@host.test>", { NULL, NULL, "MISSING_MAILBOX", "host.test" });
	ADDRS(pool, "@host.test", { NULL, NULL, "MISSING_MAILBOX", "host.test" });
	ADDRS(pool, "user@", { NULL, NULL, "user", "MISSING_DOMAIN" });
	ADDRS(pool, "<>", { NULL, NULL, "MISSING_MAILBOX", "MISSING_DOMAIN" });
	/* unclosed things, doubled @, junk after the address, an unclosed group */
	ADDRS(pool, "Bob <bob@example.net", { "Bob", NULL, "bob", "example.net" });
	ADDRS(pool, "\"unterminated <a@b>", { NULL, NULL, "\"unterminated <a@b>\"",
					      "MISSING_DOMAIN" });
	ADDRS(pool, "a@b@c.test", { NULL, NULL, "a@b", "c.test" });
	ADDRS(pool, "A <a@x.test> junk, B <b@y.test>",
	      { "A", NULL, "a", "x.test" }, { "B", NULL, "b", "y.test" });
	ADDRS(pool, "g: a@x.test, b@y.test",
	      { NULL, NULL, "g", NULL }, { NULL, NULL, "a", "x.test" },
	      { NULL, NULL, "b", "y.test" }, { NULL, NULL, NULL, NULL });
	ADDRS(pool, "; stray; >", { NULL, NULL, "stray", "MISSING_DOMAIN" },
	      { NULL, NULL, ">", "MISSING_DOMAIN" });
	/* encoded words stay encoded; raw 8-bit stays raw */
	ADDRS(pool, "=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>",
	      { "=?ISO-8859-1?Q?Andr=E9?= Pirard", NULL, "PIRARD", "vm1.ulg.ac.be" });
	ADDRS(pool, "Jos\xc3\xa9 <j@x.es>", { "Jos\xc3\xa9", NULL, "j", "x.es" });
	const struct mime_address *a = mime_address_parse(pool, "x@y, Name <user>", 16);
	assert_int_equal(a->flags, 0);
	assert_int_equal(a->next->flags, MIME_ADDRESS_INVALID);
	pool_free(&pool);
}

/* ---- header utilities ---- */

static void test_header_utils(void **state)
{
	const char *h = "Subject: one\r\n two\r\nX-Empty:\r\njunk line\r\nTo : a@b\r\n"
		"subject: second\r\n\r\nbody: no\r\n";
	struct mime_header_iter iter;
	struct mime_field f;
	mime_header_iter_init(&iter, h, strlen(h));
	assert_true(mime_header_iter_next(&iter, &f));
	assert_int_equal(f.name_len, 7);
	assert_memory_equal(f.value, " one\r\n two", f.value_len);
	assert_int_equal(f.offset, 0);
	assert_int_equal(f.size, 20);
	assert_true(mime_header_iter_next(&iter, &f));
	assert_int_equal(f.value_len, 0);
	assert_true(mime_header_iter_next(&iter, &f));
	assert_false(f.has_colon);
	assert_memory_equal(f.name, "junk line", f.name_len);
	assert_true(mime_header_iter_next(&iter, &f));
	assert_memory_equal(f.name, "To", f.name_len);
	assert_true(mime_header_iter_next(&iter, &f));
	assert_false(mime_header_iter_next(&iter, &f));

	assert_true(mime_header_find(h, strlen(h), "SUBJECT", &f));
	assert_int_equal(f.offset, 0);
	assert_true(mime_header_find(h, strlen(h), "to", &f));
	assert_false(mime_header_find(h, strlen(h), "body", &f));
	assert_false(mime_header_find(h, strlen(h), "Subj", &f));

	struct buf out = BUF_INIT(64);
	assert_int_equal(mime_header_unfold(" one\r\n two\r\n\tthree  ", 20, &out), 0);
	assert_string_equal(buf_cstr(&out), "one two\tthree");
	buf_clear(&out);
	assert_int_equal(mime_header_unfold("a\0b", 3, &out), 0);
	assert_string_equal(buf_cstr(&out), "a\xef\xbf\xbd" "b");
	buf_free(&out);
}

/* ---- every corpus message ---- */

/* Feeding in any chunking gives the same tree: byte at a time, and pseudo-random sizes. */
static void test_corpus_chunking(void **state)
{
	for (size_t i = 0; i < corpus_count; i++) {
		const struct corpus_file *cf = &corpus[i];
		struct pool *pool = pool_new(0);
		struct mime_part *whole = mime_parse(pool, cf->data, cf->len, NULL);
		check_tree(cf->data, cf->len, whole);
		struct buf a, b;
		serialize(whole, &a);

		struct mime_parser *p = mime_parser_new(pool);
		for (size_t off = 0; off < cf->len; off++)
			mime_parser_feed(p, cf->data + off, 1);
		serialize(mime_parser_finish(p), &b);
		if (buf_len(&a) != buf_len(&b) || memcmp(buf_data(&a), buf_data(&b), buf_len(&a)))
			fail_msg("%s: byte at a time differs", cf->name);
		buf_free(&b);

		unsigned int seed = (unsigned int)i * 7919 + 1;
		for (int round = 0; round < 20; round++) {
			p = mime_parser_new(pool);
			mime_parser_feed(p, cf->data, 0);
			for (size_t off = 0; off < cf->len; ) {
				seed = seed * 1103515245 + 12345;
				size_t n = (seed >> 16) % (round < 10 ? 8 : 300) + 1;
				if (n > cf->len - off)
					n = cf->len - off;
				mime_parser_feed(p, cf->data + off, n);
				off += n;
			}
			serialize(mime_parser_finish(p), &b);
			if (buf_len(&a) != buf_len(&b) ||
			    memcmp(buf_data(&a), buf_data(&b), buf_len(&a)))
				fail_msg("%s: chunked feeding differs (round %d)", cf->name, round);
			buf_free(&b);
		}
		buf_free(&a);
		pool_free(&pool);
	}
}

/* Compares two trees field by field. */
static void assert_same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void assert_same_params(const struct mime_param *a, unsigned int na,
			       const struct mime_param *b, unsigned int nb)
{
	assert_int_equal(na, nb);
	for (unsigned int i = 0; i < na; i++) {
		assert_same_str(a[i].name, b[i].name);
		assert_same_str(a[i].value, b[i].value);
		assert_same_str(a[i].charset, b[i].charset);
		assert_same_str(a[i].language, b[i].language);
		assert_int_equal(a[i].flags, b[i].flags);
	}
}

static void assert_same_tree(const struct mime_part *a, const struct mime_part *b)
{
	for (; a != NULL; a = mime_part_next(a), b = mime_part_next(b)) {
		assert_non_null(b);
		assert_int_equal(a->flags, b->flags);
		assert_int_equal(a->depth, b->depth);
		assert_int_equal(a->child_count, b->child_count);
		assert_int_equal(a->header_offset, b->header_offset);
		assert_int_equal(a->header_size, b->header_size);
		assert_int_equal(a->header_vsize, b->header_vsize);
		assert_int_equal(a->body_offset, b->body_offset);
		assert_int_equal(a->body_size, b->body_size);
		assert_int_equal(a->body_vsize, b->body_vsize);
		assert_int_equal(a->body_lines, b->body_lines);
		assert_same_str(a->type, b->type);
		assert_same_str(a->subtype, b->subtype);
		assert_same_params(a->params, a->param_count, b->params, b->param_count);
		assert_same_str(a->id, b->id);
		assert_same_str(a->description, b->description);
		assert_same_str(a->encoding, b->encoding);
		assert_same_str(a->disposition, b->disposition);
		assert_same_params(a->disposition_params, a->disposition_param_count,
				   b->disposition_params, b->disposition_param_count);
		assert_same_str(a->language, b->language);
		assert_same_str(a->location, b->location);
		assert_same_str(a->md5, b->md5);
		assert_int_equal(a->envelope != NULL, b->envelope != NULL);
		if (a->envelope != NULL) {
			const struct mime_envelope *x = a->envelope, *y = b->envelope;
			assert_same_str(x->date, y->date);
			assert_same_str(x->subject, y->subject);
			assert_same_str(x->from, y->from);
			assert_same_str(x->sender, y->sender);
			assert_same_str(x->reply_to, y->reply_to);
			assert_same_str(x->to, y->to);
			assert_same_str(x->cc, y->cc);
			assert_same_str(x->bcc, y->bcc);
			assert_same_str(x->in_reply_to, y->in_reply_to);
			assert_same_str(x->message_id, y->message_id);
		}
	}
	assert_null(b);
}

static void test_corpus_round_trip(void **state)
{
	for (size_t i = 0; i < corpus_count; i++) {
		const struct corpus_file *cf = &corpus[i];
		struct pool *pool = pool_new(0);
		struct mime_part *root = mime_parse(pool, cf->data, cf->len, NULL);
		struct buf a, b;
		serialize(root, &a);
		struct mime_part *copy;
		const char *error = NULL;
		if (mime_deserialize(pool, buf_data(&a), buf_len(&a), &copy, &error) < 0)
			fail_msg("%s: %s", cf->name, error);
		assert_same_tree(root, copy);
		check_tree(cf->data, cf->len, copy);
		serialize(copy, &b);
		assert_int_equal(buf_len(&a), buf_len(&b));
		assert_memory_equal(buf_data(&a), buf_data(&b), buf_len(&a));
		/* the output buffer's limit is honoured */
		struct buf small = BUF_INIT(buf_len(&a) - 1);
		assert_int_equal(mime_serialize(root, &small), -1);
		assert_int_equal(buf_len(&small), 0);
		buf_free(&small);
		buf_free(&a);
		buf_free(&b);
		pool_free(&pool);
	}
}

/* CRC-32 (IEEE) as the format defines it, to forge checksums over corrupted data. */
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

static void fix_crc(unsigned char *d, size_t len)
{
	uint32_t crc = crc32_ref(d, len - 4);
	d[len - 4] = (unsigned char)crc;
	d[len - 3] = (unsigned char)(crc >> 8);
	d[len - 2] = (unsigned char)(crc >> 16);
	d[len - 1] = (unsigned char)(crc >> 24);
}

/* Corrupt data from disk is rejected: truncation, flipped bytes; and with a forged
 * checksum every structural check holds (whatever is accepted re-serializes to itself). */
static void test_corrupt_serialized(void **state)
{
	for (size_t i = 0; i < corpus_count; i++) {
		const struct corpus_file *cf = &corpus[i];
		struct pool *pool = pool_new(0);
		struct mime_part *root = mime_parse(pool, cf->data, cf->len, NULL);
		struct buf a;
		serialize(root, &a);
		size_t len = buf_len(&a);
		unsigned char *d = malloc(len + 1);
		struct mime_part *copy;
		const char *error;

		assert_int_equal(crc32_ref((const unsigned char *)buf_data(&a), len - 4),
				 (uint32_t)((unsigned char)buf_data(&a)[len - 4] |
					    (unsigned char)buf_data(&a)[len - 3] << 8 |
					    (unsigned char)buf_data(&a)[len - 2] << 16 |
					    (uint32_t)(unsigned char)buf_data(&a)[len - 1] << 24));
		for (size_t n = 0; n < len; n++) {
			struct pool *tmp = pool_new(0);
			memcpy(d, buf_data(&a), n);
			assert_int_equal(mime_deserialize(tmp, d, n, &copy, &error), -1);
			assert_null(copy);
			if (n > 8) {
				/* truncated with a valid checksum: still rejected */
				fix_crc(d, n);
				assert_int_equal(mime_deserialize(tmp, d, n, &copy, &error), -1);
			}
			pool_free(&tmp);
		}
		/* one trailing byte too many */
		memcpy(d, buf_data(&a), len);
		d[len] = 0;
		assert_int_equal(mime_deserialize(pool, d, len + 1, &copy, &error), -1);

		static const unsigned char flips[] = { 0x01, 0x80, 0xFF, 0x7F, 0x40 };
		for (size_t pos = 0; pos < len; pos++) {
			for (size_t k = 0; k < sizeof(flips); k++) {
				struct pool *tmp = pool_new(0);
				memcpy(d, buf_data(&a), len);
				d[pos] ^= flips[k];
				assert_int_equal(mime_deserialize(tmp, d, len, &copy, &error), -1);
				if (pos < len - 4) {
					fix_crc(d, len);
					if (mime_deserialize(tmp, d, len, &copy, &error) == 0) {
						struct buf b;
						serialize(copy, &b);
						assert_int_equal(buf_len(&b), len);
						assert_memory_equal(buf_data(&b), d, len);
						buf_free(&b);
					}
				}
				pool_free(&tmp);
			}
		}
		free(d);
		buf_free(&a);
		pool_free(&pool);
	}
}

static void test_deserialize_bad(void **state)
{
	struct pool *pool = pool_new(0);
	struct mime_part *root;
	const char *error;
	assert_int_equal(mime_deserialize(pool, "", 0, &root, &error), -1);
	assert_int_equal(mime_deserialize(pool, "XXXX\x01\0\0\0\0", 9, &root, &error), -1);
	assert_string_equal(error, "not a serialized MIME tree");
	assert_int_equal(mime_deserialize(pool, "WMIM\x02\0\0\0\0", 9, &root, &error), -1);
	assert_string_equal(error, "unsupported version");
	unsigned char d[64] = "WMIM\x01";
	fix_crc(d, 9);
	assert_int_equal(mime_deserialize(pool, d, 9, &root, &error), -1);
	assert_string_equal(error, "truncated");
	/* an overlong varint for the size */
	memcpy(d + 5, "\x80\x00", 2);
	fix_crc(d, 11);
	assert_int_equal(mime_deserialize(pool, d, 11, &root, &error), -1);
	assert_string_equal(error, "overlong integer");
	memcpy(d + 5, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 10);
	fix_crc(d, 19);
	assert_int_equal(mime_deserialize(pool, d, 19, &root, &error), -1);
	assert_string_equal(error, "integer overflow");

	/* a part claiming to lie outside the message */
	root = parse_str(pool, "Subject: x\r\n\r\nbody\r\n");
	struct buf a;
	serialize(root, &a);
	unsigned char *m = (unsigned char *)a.data + a.start;
	assert_int_equal(m[5], 20);		/* size */
	m[5] = 19;
	fix_crc(m, buf_len(&a));
	assert_int_equal(mime_deserialize(pool, m, buf_len(&a), &root, &error), -1);
	assert_string_equal(error, "part outside its parent");
	buf_free(&a);
	pool_free(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_thunderbird),
		cmocka_unit_test(test_outlook),
		cmocka_unit_test(test_forward),
		cmocka_unit_test(test_digest),
		cmocka_unit_test(test_dsn),
		cmocka_unit_test(test_8bit_headers),
		cmocka_unit_test(test_global_nested),
		cmocka_unit_test(test_missing_close),
		cmocka_unit_test(test_no_boundary),
		cmocka_unit_test(test_bad_encodings),
		cmocka_unit_test(test_header_only_and_no_header),
		cmocka_unit_test(test_nul_and_8bit),
		cmocka_unit_test(test_prefix_boundaries),
		cmocka_unit_test(test_junk_header),
		cmocka_unit_test(test_empty_parts),
		cmocka_unit_test(test_bare_lf),
		cmocka_unit_test(test_huge_header),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_part_limit),
		cmocka_unit_test(test_all_fields),
		cmocka_unit_test(test_message_edges),
		cmocka_unit_test(test_encoded_word_limits),
		cmocka_unit_test(test_rfc2231),
		cmocka_unit_test(test_rfc2047),
		cmocka_unit_test(test_charsets),
		cmocka_unit_test(test_addresses_rfc5322),
		cmocka_unit_test(test_addresses_junk),
		cmocka_unit_test(test_header_utils),
		cmocka_unit_test(test_corpus_chunking),
		cmocka_unit_test(test_corpus_round_trip),
		cmocka_unit_test(test_corrupt_serialized),
		cmocka_unit_test(test_deserialize_bad),
		cmocka_unit_test(test_decode_transfer),
	};
	return cmocka_run_group_tests(tests, corpus_load, corpus_free);
}
