/* sasl.c — server side of SASL PLAIN (RFC 4616) and LOGIN. See sasl.h.
 *
 * PLAIN: one response, authzid NUL authcid NUL passwd. Without an initial response
 * the server sends an empty challenge first.
 * LOGIN: challenges "Username:" and "Password:" (base64); an initial response is
 * taken as the user name, as Outlook and some phones send it.
 */
#include "common/sasl.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* Steps of an exchange (state->step). */
enum {
	SASL_STEP_START,
	SASL_STEP_PLAIN,          /* waiting for the PLAIN response */
	SASL_STEP_LOGIN_USER,     /* waiting for the LOGIN user name */
	SASL_STEP_LOGIN_PASS,     /* waiting for the LOGIN password */
	SASL_STEP_FINISHED,       /* done, bad or cancelled: nothing more is accepted */
};

/* Longest decoded PLAIN message: three fields and two NULs (+ the decoder's NUL). */
#define SASL_PLAIN_MAX (3 * SASL_FIELD_MAX + 2)

#define LOGIN_CHALLENGE_USER "VXNlcm5hbWU6"   /* "Username:" */
#define LOGIN_CHALLENGE_PASS "UGFzc3dvcmQ6"   /* "Password:" */

int sasl_mech_parse(const char *name, enum sasl_mech *mech_r)
{
	if (strcasecmp(name, "PLAIN") == 0)
		*mech_r = SASL_MECH_PLAIN;
	else if (strcasecmp(name, "LOGIN") == 0)
		*mech_r = SASL_MECH_LOGIN;
	else
		return -1;
	return 0;
}

/* ---- base64 ---- */

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0..63, or -1 for anything else (including '='). */
static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

void base64_encode(const void *in, size_t len, char *out)
{
	const unsigned char *p = in;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		out[o++] = b64_alphabet[(v >> 18) & 63];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
	}
	out[o] = '\0';
}

/* Strict RFC 4648: length a multiple of 4, padding only at the end, no spaces.
 * Bits left over in the last quantum are ignored. */
long base64_decode(const char *in, size_t inlen, unsigned char *out, size_t outsize)
{
	if (inlen % 4 != 0)
		return -1;
	size_t pad = 0;
	if (inlen > 0 && in[inlen - 1] == '=')
		pad = inlen > 1 && in[inlen - 2] == '=' ? 2 : 1;
	size_t outlen = inlen / 4 * 3 - pad;
	if (outlen >= outsize || outlen > (size_t)INT32_MAX)
		return -1;

	size_t o = 0;
	for (size_t i = 0; i < inlen; i += 4) {
		bool last = i + 4 == inlen;
		size_t valid = last ? 4 - pad : 4;
		uint32_t v = 0;
		for (size_t k = 0; k < 4; k++) {
			int c = k < valid ? b64_value((unsigned char)in[i + k]) : 0;
			if (c < 0)
				return -1;
			v = v << 6 | (uint32_t)c;
		}
		out[o++] = (unsigned char)(v >> 16);
		if (valid > 2)
			out[o++] = (unsigned char)(v >> 8);
		if (valid > 3)
			out[o++] = (unsigned char)v;
	}
	out[o] = '\0';
	return (long)o;
}

/* ---- the exchange ---- */

static void wipe(void *p, size_t len)
{
	explicit_bzero(p, len);
}

static void wipe_credentials(struct sasl_state *state)
{
	wipe(state->authzid, sizeof(state->authzid));
	wipe(state->authcid, sizeof(state->authcid));
	wipe(state->password, sizeof(state->password));
}

static enum sasl_status finish(struct sasl_state *state, enum sasl_status status,
			       const char **challenge_r)
{
	state->step = SASL_STEP_FINISHED;
	if (status != SASL_DONE)
		wipe_credentials(state);
	if (challenge_r != NULL)
		*challenge_r = NULL;
	return status;
}

static enum sasl_status next(struct sasl_state *state, int step, const char *challenge,
			     const char **challenge_r)
{
	state->step = step;
	if (challenge_r != NULL)
		*challenge_r = challenge;
	return SASL_CONTINUE;
}

enum response_kind {
	RESPONSE_DATA,
	RESPONSE_CANCEL,
	RESPONSE_BAD,
};

/* Decodes one client response: surrounding spaces (and a stray CR/LF) dropped,
 * "*" is a cancel, "=" or nothing is an empty response. */
static enum response_kind decode_response(const char *response, unsigned char *out,
					  size_t outsize, size_t *len_r)
{
	const char *start = response, *end = response + strlen(response);
	while (*start == ' ' || *start == '\t')
		start++;
	while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' ||
			       end[-1] == '\n'))
		end--;
	size_t len = (size_t)(end - start);
	if (len == 1 && start[0] == '*')
		return RESPONSE_CANCEL;
	if (len == 1 && start[0] == '=')
		len = 0;
	long n = base64_decode(start, len, out, outsize);
	if (n < 0)
		return RESPONSE_BAD;
	*len_r = (size_t)n;
	return RESPONSE_DATA;
}

/* Copies a field of 1..SASL_FIELD_MAX bytes (0 allowed when may_be_empty). */
static bool copy_field(char *dst, const unsigned char *src, size_t len, bool may_be_empty)
{
	if (len > SASL_FIELD_MAX || (len == 0 && !may_be_empty))
		return false;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return true;
}

/* authzid NUL authcid NUL passwd: exactly two NULs. */
static bool plain_parse(struct sasl_state *state, const unsigned char *msg, size_t len)
{
	const unsigned char *nul1 = memchr(msg, '\0', len);
	if (nul1 == NULL)
		return false;
	size_t rest = len - (size_t)(nul1 + 1 - msg);
	const unsigned char *nul2 = memchr(nul1 + 1, '\0', rest);
	if (nul2 == NULL)
		return false;
	const unsigned char *passwd = nul2 + 1;
	size_t passwd_len = len - (size_t)(passwd - msg);
	if (memchr(passwd, '\0', passwd_len) != NULL)
		return false;
	return copy_field(state->authzid, msg, (size_t)(nul1 - msg), true) &&
	       copy_field(state->authcid, nul1 + 1, (size_t)(nul2 - nul1 - 1), false) &&
	       copy_field(state->password, passwd, passwd_len, false);
}

static enum sasl_status plain_response(struct sasl_state *state, const char *response,
				       const char **challenge_r)
{
	unsigned char msg[SASL_PLAIN_MAX + 1];
	size_t len = 0;
	enum sasl_status status;
	switch (decode_response(response, msg, sizeof(msg), &len)) {
	case RESPONSE_CANCEL:
		status = SASL_CANCEL;
		break;
	case RESPONSE_DATA:
		status = plain_parse(state, msg, len) ? SASL_DONE : SASL_BAD;
		break;
	default:
		status = SASL_BAD;
		break;
	}
	wipe(msg, sizeof(msg));
	return finish(state, status, challenge_r);
}

/* One LOGIN field (user name or password) into dst. */
static enum sasl_status login_response(struct sasl_state *state, const char *response,
				       char *dst, const char **challenge_r)
{
	unsigned char field[SASL_FIELD_MAX + 1];
	size_t len = 0;
	enum sasl_status status = SASL_BAD;
	switch (decode_response(response, field, sizeof(field), &len)) {
	case RESPONSE_CANCEL:
		status = SASL_CANCEL;
		break;
	case RESPONSE_DATA:
		if (memchr(field, '\0', len) == NULL && copy_field(dst, field, len, false))
			status = SASL_CONTINUE;
		break;
	default:
		break;
	}
	wipe(field, sizeof(field));
	if (status != SASL_CONTINUE)
		return finish(state, status, challenge_r);
	if (state->step == SASL_STEP_LOGIN_PASS)
		return finish(state, SASL_DONE, challenge_r);
	return next(state, SASL_STEP_LOGIN_PASS, LOGIN_CHALLENGE_PASS, challenge_r);
}

enum sasl_status sasl_begin(struct sasl_state *state, enum sasl_mech mech,
			    const char *initial, const char **challenge_r)
{
	wipe(state, sizeof(*state));
	state->mech = mech;
	state->step = SASL_STEP_START;
	switch (mech) {
	case SASL_MECH_PLAIN:
		if (initial == NULL)
			return next(state, SASL_STEP_PLAIN, "", challenge_r);
		return plain_response(state, initial, challenge_r);
	case SASL_MECH_LOGIN:
		if (initial == NULL)
			return next(state, SASL_STEP_LOGIN_USER, LOGIN_CHALLENGE_USER,
				    challenge_r);
		state->step = SASL_STEP_LOGIN_USER;
		return login_response(state, initial, state->authcid, challenge_r);
	}
	return finish(state, SASL_BAD, challenge_r);
}

enum sasl_status sasl_step(struct sasl_state *state, const char *response,
			   const char **challenge_r)
{
	switch (state->step) {
	case SASL_STEP_PLAIN:
		return plain_response(state, response, challenge_r);
	case SASL_STEP_LOGIN_USER:
		return login_response(state, response, state->authcid, challenge_r);
	case SASL_STEP_LOGIN_PASS:
		return login_response(state, response, state->password, challenge_r);
	default:
		return finish(state, SASL_BAD, challenge_r);
	}
}

void sasl_clear(struct sasl_state *state)
{
	wipe(state, sizeof(*state));
}
