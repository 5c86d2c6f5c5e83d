/* sasl.h — server side of SASL PLAIN (RFC 4616) and LOGIN, shared by the three daemons.
 *
 * The protocol feeds the client's base64 responses in; the mechanism answers with a
 * base64 challenge to send, or with the decoded credentials. Protocol framing
 * ("334 ", "+ ", IMAP literals, cancel with "*") stays in the daemon except that
 * sasl_step() recognises "*" as a cancel for every protocol.
 */
#ifndef WARREN_SASL_H
#define WARREN_SASL_H

#include <stddef.h>

/* Longest decoded credential we accept (RFC 4616 allows 255 octets per field). */
#define SASL_FIELD_MAX 255

enum sasl_mech {
	SASL_MECH_PLAIN,
	SASL_MECH_LOGIN,
};

enum sasl_status {
	SASL_CONTINUE,   /* send *challenge_r (base64) to the client and call sasl_step again */
	SASL_DONE,       /* credentials in state->authcid / authzid / password */
	SASL_BAD,        /* malformed response (bad base64, missing fields, too long) */
	SASL_CANCEL,     /* the client sent "*" */
};

struct sasl_state {
	enum sasl_mech mech;
	int step;
	char authzid[SASL_FIELD_MAX + 1];
	char authcid[SASL_FIELD_MAX + 1];
	char password[SASL_FIELD_MAX + 1];
};

/* Case-insensitive mechanism name to enum; -1 if not supported. */
int sasl_mech_parse(const char *name, enum sasl_mech *mech_r);

/* Starts an exchange. initial: the initial response (RFC 4954 / 5034 / SASL-IR)
 * in base64, "=" for an empty one, or NULL when the client sent none. */
enum sasl_status sasl_begin(struct sasl_state *state, enum sasl_mech mech,
			    const char *initial, const char **challenge_r);
/* The client's next line (base64, surrounding spaces ignored). *challenge_r is
 * NULL unless the result is SASL_CONTINUE; a step after DONE, BAD or CANCEL
 * returns SASL_BAD. */
enum sasl_status sasl_step(struct sasl_state *state, const char *response,
			   const char **challenge_r);
/* Wipes the credentials from memory. */
void sasl_clear(struct sasl_state *state);

/* Base64 (RFC 4648, with padding). decode returns the decoded length or -1 on bad
 * input or when it would not fit in outsize bytes (output is NUL-terminated, so
 * outsize must allow for it). */
long base64_decode(const char *in, size_t inlen, unsigned char *out, size_t outsize);
/* Writes NUL-terminated base64 of in into out (needs 4*ceil(len/3)+1 bytes). */
void base64_encode(const void *in, size_t len, char *out);

#endif
