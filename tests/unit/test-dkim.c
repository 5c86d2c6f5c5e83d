/* test-dkim.c — smtpd/out-dkim.c: relaxed canonicalization (RFC 6376 3.4.2 and
 * 3.4.4 examples), header selection, and signatures checked with OpenSSL's
 * verification against the public key. out-dkim.c is compiled into this test
 * (it belongs to warren-smtpd, not to a library). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../smtpd/out-dkim.c"

#include <openssl/pem.h>
#include <unistd.h>

static char rsa_path[] = "/tmp/warren-test-dkim-rsa-XXXXXX";
static char ed_path[] = "/tmp/warren-test-dkim-ed-XXXXXX";

static void write_key(char *path, EVP_PKEY *key)
{
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *fp = fdopen(fd, "w");
	assert_int_equal(PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(fp);
}

static EVP_PKEY *rsa_key, *ed_key;

static int setup(void **state)
{
	rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ed_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	write_key(rsa_path, rsa_key);
	write_key(ed_path, ed_key);
	return 0;
}

static int teardown(void **state)
{
	unlink(rsa_path);
	unlink(ed_path);
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(ed_key);
	return 0;
}

static char *canon_h(const char *field)
{
	struct buf b = BUF_INIT(SIZE_MAX);
	canon_header(&b, field, strlen(field));
	char *s = x_strdup(buf_cstr(&b));
	buf_free(&b);
	return s;
}

static void test_header_canon(void **state)
{
	/* RFC 6376 3.4.5's example: "A: X", "B : Y\t\r\n\tZ  " */
	char *a = canon_h("A: X\r\n");
	char *b = canon_h("B : Y\t\r\n\tZ  \r\n");
	assert_string_equal(a, "a:X");
	assert_string_equal(b, "b:Y Z");
	free(a);
	free(b);
	char *c = canon_h("Subject:   many    spaces\there \r\n");
	assert_string_equal(c, "subject:many spaces here");
	free(c);
}

static void body_hash(const char *body, char out[64])
{
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned hl;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	canon_body(md, body, strlen(body));
	EVP_DigestFinal_ex(md, h, &hl);
	EVP_MD_CTX_free(md);
	EVP_EncodeBlock((unsigned char *)out, h, (int)hl);
}

static void test_body_canon(void **state)
{
	char a[64], b[64];
	/* RFC 6376 3.4.5: " C \r\nD \t E\r\n\r\n\r\n" is " C\r\nD E\r\n" */
	body_hash(" C \r\nD \t E\r\n\r\n\r\n", a);
	body_hash(" C\r\nD E\r\n", b);
	assert_string_equal(a, b);
	/* no final CRLF is the same as one */
	body_hash("line", a);
	body_hash("line\r\n", b);
	assert_string_equal(a, b);
	/* the empty body hashes as nothing (relaxed): RFC 6376's known value */
	body_hash("", a);
	assert_string_equal(a, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
	body_hash("\r\n\r\n", b);
	assert_string_equal(a, b);
	/* different words, different hashes */
	body_hash("a b\r\n", a);
	body_hash("ab\r\n", b);
	assert_string_not_equal(a, b);
}

/* Re-creates the signed data from the header and checks the signature with
 * the public key (what a verifier does, minus DNS). */
static void verify(const char *msg, const char *sig_header, EVP_PKEY *key, bool ed)
{
	size_t body_off;
	struct field fields[64];
	size_t nf = parse_fields(msg, strlen(msg), fields, 64, &body_off);
	const char *h = strstr(sig_header, "h=");
	assert_non_null(h);
	char names[512];
	sscanf(h + 2, "%511[^;]", names);
	struct buf data = BUF_INIT(SIZE_MAX);
	char *save, *n;
	for (n = strtok_r(names, ":", &save); n != NULL; n = strtok_r(NULL, ":", &save)) {
		for (size_t k = nf; k-- > 0;) {
			if (fields[k].used || fields[k].name_len != strlen(n) ||
			    strncasecmp(fields[k].start, n, strlen(n)) != 0)
				continue;
			fields[k].used = true;
			canon_header(&data, fields[k].start, fields[k].len);
			buf_append(&data, "\r\n", 2);
			break;
		}
	}
	const char *b = strstr(sig_header, "\tb=");
	assert_non_null(b);
	canon_header(&data, sig_header, (size_t)(b + 3 - sig_header));
	/* the signature: b= up to the end, without folding whitespace */
	char sig64[2048];
	size_t o = 0;
	for (const char *p = b + 3; *p != '\0' && o < sizeof(sig64) - 1; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			sig64[o++] = *p;
	sig64[o] = '\0';
	unsigned char sig[1024];
	int siglen = EVP_DecodeBlock(sig, (unsigned char *)sig64, (int)o);
	while (o > 0 && sig64[--o] == '=')
		siglen--;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;
	if (ed) {
		unsigned char hash[32];
		unsigned hl;
		EVP_Digest(buf_data(&data), buf_len(&data), hash, &hl, EVP_sha256(), NULL);
		ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
			EVP_DigestVerify(ctx, sig, (size_t)siglen, hash, hl) == 1;
	} else {
		ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
			EVP_DigestVerify(ctx, sig, (size_t)siglen,
					 (const unsigned char *)buf_data(&data), buf_len(&data)) == 1;
	}
	EVP_MD_CTX_free(ctx);
	buf_free(&data);
	assert_true(ok);
}

static const char MSG[] =
	"Received: from somewhere\r\n"
	"From: Alice <alice@example.test>\r\n"
	"To: bob@dest.test\r\n"
	"Subject: a folded\r\n subject\r\n"
	"X-Not-Signed: 1\r\n"
	"Date: Tue, 01 Dec 2026 19:00:00 +0000\r\n"
	"\r\n"
	"Body  text \r\n\r\n";

static void test_sign_rsa(void **state)
{
	const char *err = NULL;
	char *h = out_dkim_sign(MSG, strlen(MSG), "example.test", "s1", rsa_path, 1700000000, &err);
	assert_non_null(h);
	assert_non_null(strstr(h, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; "
			       "d=example.test; s=s1;"));
	assert_non_null(strstr(h, "t=1700000000;"));
	assert_non_null(strstr(h, "h=from:subject:date:to;"));
	assert_null(strstr(h, "x-not-signed"));
	assert_null(strstr(h, "received"));
	assert_true(h[strlen(h) - 1] == '\n');
	verify(MSG, h, rsa_key, false);
	free(h);
}

static void test_sign_ed25519(void **state)
{
	const char *err = NULL;
	char *h = out_dkim_sign(MSG, strlen(MSG), "example.test", "e1", ed_path, 1700000000, &err);
	assert_non_null(h);
	assert_non_null(strstr(h, "a=ed25519-sha256;"));
	verify(MSG, h, ed_key, true);
	free(h);
}

static void test_bad_key(void **state)
{
	const char *err = NULL;
	assert_null(out_dkim_sign(MSG, strlen(MSG), "example.test", "s1", "/nonexistent", 0, &err));
	assert_non_null(err);
	char path[] = "/tmp/warren-test-dkim-bad-XXXXXX";
	int fd = mkstemp(path);
	assert_true(write(fd, "not a key\n", 10) == 10);
	close(fd);
	err = NULL;
	assert_null(out_dkim_sign(MSG, strlen(MSG), "example.test", "s1", path, 0, &err));
	assert_string_equal(err, "not a PEM private key");
	unlink(path);
}

static void test_headers_only_message(void **state)
{
	const char *err = NULL;
	static const char m[] = "From: a@example.test\r\nSubject: x\r\n";   /* no body at all */
	char *h = out_dkim_sign(m, strlen(m), "example.test", "s1", rsa_path, 1, &err);
	assert_non_null(h);
	assert_non_null(strstr(h, "bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;"));
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_canon),
		cmocka_unit_test(test_body_canon),
		cmocka_unit_test(test_sign_rsa),
		cmocka_unit_test(test_sign_ed25519),
		cmocka_unit_test(test_bad_key),
		cmocka_unit_test(test_headers_only_message),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
