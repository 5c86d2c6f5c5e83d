/* test-sasl.c — base64 and the PLAIN / LOGIN exchanges of common/sasl.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sasl.h"

/* base64 of len bytes of data, in a static buffer */
static const char *b64(const void *data, size_t len)
{
	static char out[2048];
	assert_true(4 * ((len + 2) / 3) + 1 <= sizeof(out));
	base64_encode(data, len, out);
	return out;
}

static void test_base64_vectors(void **state)
{
	/* RFC 4648 section 10 */
	static const char *const vectors[][2] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		char enc[32];
		unsigned char dec[32];
		base64_encode(vectors[i][0], strlen(vectors[i][0]), enc);
		assert_string_equal(enc, vectors[i][1]);
		long n = base64_decode(enc, strlen(enc), dec, sizeof(dec));
		assert_int_equal(n, strlen(vectors[i][0]));
		assert_string_equal((char *)dec, vectors[i][0]);
	}
}

static void test_base64_round_trip_binary(void **state)
{
	unsigned char data[256], dec[300];
	char enc[400];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(255 - i);
	for (size_t len = 0; len <= sizeof(data); len++) {
		base64_encode(data, len, enc);
		assert_int_equal(strlen(enc), 4 * ((len + 2) / 3));
		long n = base64_decode(enc, strlen(enc), dec, sizeof(dec));
		assert_int_equal(n, len);
		assert_memory_equal(dec, data, len);
		assert_int_equal(dec[len], 0);
	}
}

static void test_base64_bad(void **state)
{
	static const char *const bad[] = {
		"Zg=", "Zg", "Z", "Zm9", "Zm9v!", "Zm9v\n", "Zm 9v", " Zm9v", "Zm9v ",
		"Z===", "====", "=Zm9", "Zm=v", "Zg==Zm9v", "Zm9v====", "Zm9-", "Zm9_",
		"Zm9v\xc3\xa9", "Zg=\0",
	};
	unsigned char out[64];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(base64_decode(bad[i], strlen(bad[i]), out, sizeof(out)), -1);
	/* an embedded NUL is not base64 either */
	assert_int_equal(base64_decode("Zm\0v", 4, out, sizeof(out)), -1);
}

static void test_base64_outsize(void **state)
{
	unsigned char out[8];
	/* "foobar" needs 6 bytes + the NUL */
	memset(out, 'x', sizeof(out));
	assert_int_equal(base64_decode("Zm9vYmFy", 8, out, 7), 6);
	assert_int_equal(out[6], 0);
	assert_int_equal(out[7], 'x');
	memset(out, 'x', sizeof(out));
	assert_int_equal(base64_decode("Zm9vYmFy", 8, out, 6), -1);
	for (size_t i = 6; i < sizeof(out); i++)
		assert_int_equal(out[i], 'x');
	assert_int_equal(base64_decode("", 0, out, 0), -1);
	assert_int_equal(base64_decode("", 0, out, 1), 0);
	assert_int_equal(base64_decode("Zg==", 4, out, 2), 1);
	assert_int_equal(base64_decode("Zg==", 4, out, 1), -1);
}

/* Random strings over base64 and other characters into buffers of every size:
 * never more than outsize bytes written (valgrind / ASan watch the heap copies). */
static void test_base64_random(void **state)
{
	static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				    "0123456789+/==== -_*\n";
	uint32_t seed = 12345;
	char in[64], enc[64];
	for (int round = 0; round < 20000; round++) {
		seed = seed * 1103515245 + 12345;
		size_t len = (seed >> 16) % 25;
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245 + 12345;
			in[i] = chars[(seed >> 16) % (sizeof(chars) - 1)];
		}
		seed = seed * 1103515245 + 12345;
		size_t outsize = (seed >> 16) % 20;
		unsigned char *out = malloc(outsize > 0 ? outsize : 1);
		long n = base64_decode(in, len, out, outsize);
		if (n >= 0) {
			assert_true((size_t)n < outsize);
			assert_int_equal(len % 4, 0);
			assert_int_equal(out[n], 0);
			/* decoding what we encode gives the same bytes back */
			unsigned char again[32];
			base64_encode(out, (size_t)n, enc);
			assert_int_equal(base64_decode(enc, strlen(enc), again, sizeof(again)), n);
			assert_memory_equal(again, out, (size_t)n);
		}
		free(out);
	}
}

/* Junk responses never crash an exchange or leave it half-done. */
static void test_sasl_random_responses(void **state)
{
	uint32_t seed = 777;
	char line[96];
	for (int round = 0; round < 5000; round++) {
		seed = seed * 1103515245 + 12345;
		size_t len = (seed >> 16) % 60;
		unsigned char raw[64];
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245 + 12345;
			raw[i] = (unsigned char)(seed >> 16) % 4 == 0 ? 0 : (unsigned char)(seed >> 20);
		}
		base64_encode(raw, len, line);
		struct sasl_state st;
		const char *challenge;
		enum sasl_mech mech = round % 2 ? SASL_MECH_LOGIN : SASL_MECH_PLAIN;
		enum sasl_status status = sasl_begin(&st, mech, NULL, &challenge);
		while (status == SASL_CONTINUE)
			status = sasl_step(&st, line, &challenge);
		assert_true(status == SASL_DONE || status == SASL_BAD);
		if (status == SASL_DONE) {
			assert_true(strlen(st.authcid) > 0);
			assert_true(strlen(st.password) > 0);
		}
		sasl_clear(&st);
	}
}

static void test_mech_parse(void **state)
{
	enum sasl_mech mech;
	assert_int_equal(sasl_mech_parse("PLAIN", &mech), 0);
	assert_int_equal(mech, SASL_MECH_PLAIN);
	assert_int_equal(sasl_mech_parse("login", &mech), 0);
	assert_int_equal(mech, SASL_MECH_LOGIN);
	assert_int_equal(sasl_mech_parse("Plain", &mech), 0);
	assert_int_equal(mech, SASL_MECH_PLAIN);
	assert_int_equal(sasl_mech_parse("CRAM-MD5", &mech), -1);
	assert_int_equal(sasl_mech_parse("", &mech), -1);
	assert_int_equal(sasl_mech_parse("PLAINX", &mech), -1);
}

static void test_plain_initial(void **state)
{
	struct sasl_state st;
	const char *challenge = "x";
	const char msg[] = "\0alice@example.test\0s3cret pw";
	assert_int_equal(sasl_begin(&st, SASL_MECH_PLAIN, b64(msg, sizeof(msg) - 1),
				    &challenge), SASL_DONE);
	assert_null(challenge);
	assert_string_equal(st.authzid, "");
	assert_string_equal(st.authcid, "alice@example.test");
	assert_string_equal(st.password, "s3cret pw");
	sasl_clear(&st);
	assert_string_equal(st.authcid, "");
	assert_string_equal(st.password, "");
}

static void test_plain_authzid(void **state)
{
	struct sasl_state st;
	const char *challenge;
	const char msg[] = "admin\0bob\0pw";
	assert_int_equal(sasl_begin(&st, SASL_MECH_PLAIN, b64(msg, sizeof(msg) - 1),
				    &challenge), SASL_DONE);
	assert_string_equal(st.authzid, "admin");
	assert_string_equal(st.authcid, "bob");
	assert_string_equal(st.password, "pw");
	sasl_clear(&st);
}

static void test_plain_continuation(void **state)
{
	struct sasl_state st;
	const char *challenge = NULL;
	assert_int_equal(sasl_begin(&st, SASL_MECH_PLAIN, NULL, &challenge), SASL_CONTINUE);
	assert_non_null(challenge);
	assert_string_equal(challenge, "");
	const char msg[] = "\0carol\0pass";
	assert_int_equal(sasl_step(&st, b64(msg, sizeof(msg) - 1), &challenge), SASL_DONE);
	assert_string_equal(st.authcid, "carol");
	assert_string_equal(st.password, "pass");
	/* the exchange is over */
	assert_int_equal(sasl_step(&st, b64(msg, sizeof(msg) - 1), &challenge), SASL_BAD);
	assert_string_equal(st.password, "");
	sasl_clear(&st);
}

static enum sasl_status plain_once(const void *msg, size_t len)
{
	struct sasl_state st;
	const char *challenge;
	enum sasl_status status = sasl_begin(&st, SASL_MECH_PLAIN, b64(msg, len), &challenge);
	if (status != SASL_DONE) {
		/* nothing half-parsed is left behind */
		assert_string_equal(st.authcid, "");
		assert_string_equal(st.password, "");
	}
	sasl_clear(&st);
	return status;
}

static void test_plain_bad(void **state)
{
	assert_int_equal(plain_once("\0\0pw", 4), SASL_BAD);          /* empty authcid */
	assert_int_equal(plain_once("\0bob\0", 5), SASL_BAD);         /* empty password */
	assert_int_equal(plain_once("bob\0pw", 6), SASL_BAD);         /* one NUL */
	assert_int_equal(plain_once("bobpw", 5), SASL_BAD);           /* no NUL */
	assert_int_equal(plain_once("\0bob\0pw\0", 8), SASL_BAD);     /* three NULs */
	assert_int_equal(plain_once("\0bob\0p\0w", 8), SASL_BAD);
	assert_int_equal(plain_once("", 0), SASL_BAD);
	assert_int_equal(plain_once("\0bob\0pw", 7), SASL_DONE);

	struct sasl_state st;
	const char *challenge;
	assert_int_equal(sasl_begin(&st, SASL_MECH_PLAIN, "AGJvYgBwdw", &challenge),
			 SASL_BAD);   /* missing padding */
	assert_int_equal(sasl_begin(&st, SASL_MECH_PLAIN, "AGJv!gBwdw==", &challenge),
			 SASL_BAD);
	assert_int_equal(sasl_begin(&st, SASL_MECH_PLAIN, NULL, &challenge), SASL_CONTINUE);
	assert_int_equal(sasl_step(&st, "not base64", &challenge), SASL_BAD);
	sasl_clear(&st);
}

static void test_plain_lengths(void **state)
{
	char msg[3 * 300];
	char field[300];
	memset(field, 'a', sizeof(field));
	/* each field at its limit */
	size_t n = 0;
	memcpy(msg + n, field, SASL_FIELD_MAX), n += SASL_FIELD_MAX;
	msg[n++] = '\0';
	memcpy(msg + n, field, SASL_FIELD_MAX), n += SASL_FIELD_MAX;
	msg[n++] = '\0';
	memcpy(msg + n, field, SASL_FIELD_MAX), n += SASL_FIELD_MAX;
	struct sasl_state st;
	const char *challenge;
	assert_int_equal(sasl_begin(&st, SASL_MECH_PLAIN, b64(msg, n), &challenge), SASL_DONE);
	assert_int_equal(strlen(st.authzid), SASL_FIELD_MAX);
	assert_int_equal(strlen(st.authcid), SASL_FIELD_MAX);
	assert_int_equal(strlen(st.password), SASL_FIELD_MAX);
	sasl_clear(&st);

	/* one byte too many in each field */
	for (int which = 0; which < 3; which++) {
		n = 0;
		for (int f = 0; f < 3; f++) {
			size_t len = f == which ? SASL_FIELD_MAX + 1 : 3;
			memcpy(msg + n, field, len);
			n += len;
			if (f < 2)
				msg[n++] = '\0';
		}
		assert_int_equal(plain_once(msg, n), SASL_BAD);
	}
	/* a long password with short names still fits the total */
	n = 0;
	msg[n++] = '\0';
	msg[n++] = 'b';
	msg[n++] = '\0';
	memcpy(msg + n, field, SASL_FIELD_MAX + 10), n += SASL_FIELD_MAX + 10;
	assert_int_equal(plain_once(msg, n), SASL_BAD);
	/* far too long to decode at all */
	char big[4096];
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(sasl_begin(&st, SASL_MECH_PLAIN, big, &challenge), SASL_BAD);
	sasl_clear(&st);
}

static void test_plain_empty_and_cancel(void **state)
{
	struct sasl_state st;
	const char *challenge = "x";
	/* "=" is an empty initial response: no credentials */
	assert_int_equal(sasl_begin(&st, SASL_MECH_PLAIN, "=", &challenge), SASL_BAD);
	assert_null(challenge);
	assert_int_equal(sasl_begin(&st, SASL_MECH_PLAIN, "*", &challenge), SASL_CANCEL);
	assert_int_equal(sasl_begin(&st, SASL_MECH_PLAIN, NULL, &challenge), SASL_CONTINUE);
	assert_int_equal(sasl_step(&st, "*", &challenge), SASL_CANCEL);
	assert_null(challenge);
	assert_int_equal(sasl_begin(&st, SASL_MECH_PLAIN, NULL, &challenge), SASL_CONTINUE);
	assert_int_equal(sasl_step(&st, " * ", &challenge), SASL_CANCEL);
	assert_int_equal(sasl_begin(&st, SASL_MECH_PLAIN, NULL, &challenge), SASL_CONTINUE);
	assert_int_equal(sasl_step(&st, "", &challenge), SASL_BAD);
	assert_int_equal(sasl_begin(&st, SASL_MECH_PLAIN, NULL, &challenge), SASL_CONTINUE);
	assert_int_equal(sasl_step(&st, "=", &challenge), SASL_BAD);
	sasl_clear(&st);
}

static void test_plain_spaces(void **state)
{
	/* Windows Mail: "AUTH PLAIN  AGJvYgBwdw==" leaves spaces around the data */
	struct sasl_state st;
	const char *challenge;
	assert_int_equal(sasl_begin(&st, SASL_MECH_PLAIN, "  AGJvYgBwdw==", &challenge),
			 SASL_DONE);
	assert_string_equal(st.authcid, "bob");
	assert_string_equal(st.password, "pw");
	assert_int_equal(sasl_begin(&st, SASL_MECH_PLAIN, "AGJvYgBwdw==  ", &challenge),
			 SASL_DONE);
	assert_int_equal(sasl_begin(&st, SASL_MECH_PLAIN, NULL, &challenge), SASL_CONTINUE);
	assert_int_equal(sasl_step(&st, " AGJvYgBwdw== \r\n", &challenge), SASL_DONE);
	assert_string_equal(st.password, "pw");
	/* but not inside the data */
	assert_int_equal(sasl_begin(&st, SASL_MECH_PLAIN, "AGJv YgBwdw==", &challenge),
			 SASL_BAD);
	sasl_clear(&st);
}

static void test_login_two_steps(void **state)
{
	struct sasl_state st;
	const char *challenge = NULL;
	assert_int_equal(sasl_begin(&st, SASL_MECH_LOGIN, NULL, &challenge), SASL_CONTINUE);
	assert_string_equal(challenge, "VXNlcm5hbWU6");
	unsigned char dec[32];
	assert_int_equal(base64_decode(challenge, strlen(challenge), dec, sizeof(dec)), 9);
	assert_string_equal((char *)dec, "Username:");
	assert_int_equal(sasl_step(&st, b64("dave", 4), &challenge), SASL_CONTINUE);
	assert_string_equal(challenge, "UGFzc3dvcmQ6");
	assert_int_equal(base64_decode(challenge, strlen(challenge), dec, sizeof(dec)), 9);
	assert_string_equal((char *)dec, "Password:");
	assert_int_equal(sasl_step(&st, b64("p@ss word", 9), &challenge), SASL_DONE);
	assert_null(challenge);
	assert_string_equal(st.authzid, "");
	assert_string_equal(st.authcid, "dave");
	assert_string_equal(st.password, "p@ss word");
	sasl_clear(&st);
}

static void test_login_initial(void **state)
{
	struct sasl_state st;
	const char *challenge = NULL;
	/* the initial response is the user name */
	assert_int_equal(sasl_begin(&st, SASL_MECH_LOGIN, b64("erin", 4), &challenge),
			 SASL_CONTINUE);
	assert_string_equal(challenge, "UGFzc3dvcmQ6");
	assert_int_equal(sasl_step(&st, "  cHc=  ", &challenge), SASL_DONE);
	assert_string_equal(st.authcid, "erin");
	assert_string_equal(st.password, "pw");
	/* "=": an empty user name */
	assert_int_equal(sasl_begin(&st, SASL_MECH_LOGIN, "=", &challenge), SASL_BAD);
	assert_int_equal(sasl_begin(&st, SASL_MECH_LOGIN, "*", &challenge), SASL_CANCEL);
	sasl_clear(&st);
}

static void test_login_bad_and_cancel(void **state)
{
	struct sasl_state st;
	const char *challenge;
	assert_int_equal(sasl_begin(&st, SASL_MECH_LOGIN, NULL, &challenge), SASL_CONTINUE);
	assert_int_equal(sasl_step(&st, "*", &challenge), SASL_CANCEL);
	assert_int_equal(sasl_begin(&st, SASL_MECH_LOGIN, NULL, &challenge), SASL_CONTINUE);
	assert_int_equal(sasl_step(&st, b64("dave", 4), &challenge), SASL_CONTINUE);
	assert_int_equal(sasl_step(&st, "*", &challenge), SASL_CANCEL);
	assert_string_equal(st.authcid, "");
	/* empty user or password, NUL inside, bad base64, too long */
	assert_int_equal(sasl_begin(&st, SASL_MECH_LOGIN, NULL, &challenge), SASL_CONTINUE);
	assert_int_equal(sasl_step(&st, "", &challenge), SASL_BAD);
	assert_int_equal(sasl_begin(&st, SASL_MECH_LOGIN, NULL, &challenge), SASL_CONTINUE);
	assert_int_equal(sasl_step(&st, b64("dave", 4), &challenge), SASL_CONTINUE);
	assert_int_equal(sasl_step(&st, "=", &challenge), SASL_BAD);
	assert_int_equal(sasl_begin(&st, SASL_MECH_LOGIN, NULL, &challenge), SASL_CONTINUE);
	assert_int_equal(sasl_step(&st, b64("da\0ve", 5), &challenge), SASL_BAD);
	assert_int_equal(sasl_begin(&st, SASL_MECH_LOGIN, NULL, &challenge), SASL_CONTINUE);
	assert_int_equal(sasl_step(&st, "ZGF2ZQ", &challenge), SASL_BAD);
	char name[SASL_FIELD_MAX + 1];
	memset(name, 'n', sizeof(name));
	assert_int_equal(sasl_begin(&st, SASL_MECH_LOGIN, NULL, &challenge), SASL_CONTINUE);
	assert_int_equal(sasl_step(&st, b64(name, SASL_FIELD_MAX), &challenge), SASL_CONTINUE);
	assert_int_equal(sasl_step(&st, b64(name, SASL_FIELD_MAX + 1), &challenge), SASL_BAD);
	assert_string_equal(st.authcid, "");
	sasl_clear(&st);
}

static void test_clear_wipes(void **state)
{
	struct sasl_state st;
	const char *challenge;
	const char msg[] = "z\0user\0password";
	assert_int_equal(sasl_begin(&st, SASL_MECH_PLAIN, b64(msg, sizeof(msg) - 1),
				    &challenge), SASL_DONE);
	sasl_clear(&st);
	const unsigned char *p = (const unsigned char *)&st;
	for (size_t i = 0; i < sizeof(st); i++)
		assert_int_equal(p[i], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_vectors),
		cmocka_unit_test(test_base64_round_trip_binary),
		cmocka_unit_test(test_base64_bad),
		cmocka_unit_test(test_base64_outsize),
		cmocka_unit_test(test_base64_random),
		cmocka_unit_test(test_sasl_random_responses),
		cmocka_unit_test(test_mech_parse),
		cmocka_unit_test(test_plain_initial),
		cmocka_unit_test(test_plain_authzid),
		cmocka_unit_test(test_plain_continuation),
		cmocka_unit_test(test_plain_bad),
		cmocka_unit_test(test_plain_lengths),
		cmocka_unit_test(test_plain_empty_and_cancel),
		cmocka_unit_test(test_plain_spaces),
		cmocka_unit_test(test_login_two_steps),
		cmocka_unit_test(test_login_initial),
		cmocka_unit_test(test_login_bad_and_cancel),
		cmocka_unit_test(test_clear_wipes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
