/* mime-private.h — shared by common/mime*.c only. */
#ifndef WARREN_MIME_PRIVATE_H
#define WARREN_MIME_PRIVATE_H

#include "common/mime.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most parameters kept from one header field (more are ignored); bounds RFC 2231 work. */
#define MIME_MAX_PARAMS 256

/* Appends the UTF-8 form of code point cp; -1 when out is full. */
int mime_utf8_put(struct buf *out, uint32_t cp);
/* Length of the valid UTF-8 sequence at p (len bytes available), 0 if invalid. */
size_t mime_utf8_seq_len(const unsigned char *p, size_t len);
/* Raw 8-bit header text to UTF-8 (valid UTF-8 kept, other bytes as windows-1252). */
int mime_raw_to_utf8(const void *data, size_t len, struct buf *out);

/* RFC 2045 structured fields. */
/* "type/subtype *(; param)": lower-cased type and subtype and the parameters (RFC 2231
 * and RFC 2047 decoded). -1 (nothing set) when type or subtype is missing. */
int mime_content_type_parse(struct pool *pool, const char *value, size_t len,
			    const char **type_r, const char **subtype_r,
			    struct mime_param **params_r, unsigned int *count_r);
/* "token *(; param)" (Content-Disposition): *token_r is NULL when the token is missing. */
void mime_disposition_parse(struct pool *pool, const char *value, size_t len,
			    const char **token_r, struct mime_param **params_r,
			    unsigned int *count_r);
/* The first token of value, lower-cased (Content-Transfer-Encoding), or NULL. */
const char *mime_token_parse(struct pool *pool, const char *value, size_t len);

static inline char mime_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

#endif
