/* out-dkim.c — DKIM signatures (RFC 6376) on OpenSSL: rsa-sha256 and
 * ed25519-sha256 (RFC 8463), relaxed/relaxed canonicalization, the usual
 * header set. Why our own code and not libopendkim: docs/outbound.md. */
#include "smtpd/queue.h"
#include "common/buf.h"
#include "common/pool.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

/* Header fields signed when present (RFC 6376 5.4.1's recommendation). */
static const char *const signed_headers[] = {
	"from", "reply-to", "subject", "date", "to", "cc", "message-id", "in-reply-to",
	"references", "mime-version", "content-type", "content-transfer-encoding",
	"list-id", "list-unsubscribe", NULL,
};
/* Header fields looked at, at most. */
#define DKIM_FIELDS_MAX 1000

struct field {
	const char *start;    /* the name */
	size_t len;           /* through the CRLF of its last line */
	size_t name_len;
	bool used;
};

static bool wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 6376 3.4.2: lower-case name, unfolded value with WSP runs as one SP,
 * no WSP at the ends or around the colon. */
static void canon_header(struct buf *out, const char *field, size_t len)
{
	const char *colon = memchr(field, ':', len);
	if (colon == NULL)
		return;
	size_t nlen = (size_t)(colon - field);
	while (nlen > 0 && wsp(field[nlen - 1]))
		nlen--;
	for (size_t i = 0; i < nlen; i++) {
		char c = (char)tolower((unsigned char)field[i]);
		buf_append(out, &c, 1);
	}
	buf_append(out, ":", 1);
	const char *p = colon + 1, *end = field + len;
	bool space = false, started = false;
	for (; p < end; p++) {
		if (*p == '\r' || *p == '\n')
			continue;
		if (wsp(*p)) {
			space = true;
			continue;
		}
		if (space && started)
			buf_append(out, " ", 1);
		space = false;
		started = true;
		buf_append(out, p, 1);
	}
}

/* RFC 6376 3.4.4 into the digest. */
static void canon_body(EVP_MD_CTX *md, const char *body, size_t len)
{
	size_t empty = 0;
	const char *p = body, *end = body + len;
	struct buf line = BUF_INIT(SIZE_MAX);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl != NULL ? nl : end;
		const char *q = le;
		if (q > p && q[-1] == '\r')
			q--;
		buf_clear(&line);
		/* copy runs of non-WSP at once; a WSP run becomes one SP, none at the end */
		const char *c = p;
		while (c < q) {
			const char *run = c;
			while (c < q && !wsp(*c))
				c++;
			buf_append(&line, run, (size_t)(c - run));
			const char *sp = c;
			while (c < q && wsp(*c))
				c++;
			if (c > sp && c < q)
				buf_append(&line, " ", 1);
		}
		if (buf_len(&line) == 0) {
			empty++;
		} else {
			for (; empty > 0; empty--)
				EVP_DigestUpdate(md, "\r\n", 2);
			EVP_DigestUpdate(md, buf_data(&line), buf_len(&line));
			EVP_DigestUpdate(md, "\r\n", 2);
		}
		p = nl != NULL ? nl + 1 : end;
	}
	buf_free(&line);
}

static size_t parse_fields(const char *msg, size_t len, struct field *f, size_t max,
			   size_t *body_r)
{
	size_t n = 0, i = 0;
	*body_r = len;
	while (i < len) {
		if (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n') {
			*body_r = i + 2;
			break;
		}
		if (msg[i] == '\n') {
			*body_r = i + 1;
			break;
		}
		size_t start = i;
		/* the field: this line and continuation lines */
		for (;;) {
			const char *nl = memchr(msg + i, '\n', len - i);
			i = nl != NULL ? (size_t)(nl - msg) + 1 : len;
			if (i >= len || !wsp(msg[i]))
				break;
		}
		if (n < max && !wsp(msg[start])) {
			const char *colon = memchr(msg + start, ':', i - start);
			if (colon != NULL) {
				f[n].start = msg + start;
				f[n].len = i - start;
				f[n].name_len = (size_t)(colon - (msg + start));
				while (f[n].name_len > 0 && wsp(f[n].start[f[n].name_len - 1]))
					f[n].name_len--;
				f[n].used = false;
				n++;
			}
		}
	}
	return n;
}

static char *b64(const unsigned char *data, size_t len)
{
	char *out = x_malloc(4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

static EVP_PKEY *load_key(const char *path, const char **error_r)
{
	FILE *fp = fopen(path, "r");
	if (fp == NULL) {
		*error_r = strerror(errno);
		return NULL;
	}
	EVP_PKEY *key = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (key == NULL)
		*error_r = "not a PEM private key";
	return key;
}

char *out_dkim_sign(const char *msg, size_t len, const char *domain, const char *selector,
		    const char *key_file, int64_t now, const char **error_r)
{
	EVP_PKEY *key = load_key(key_file, error_r);
	if (key == NULL)
		return NULL;
	int type = EVP_PKEY_get_base_id(key);
	const char *alg = type == EVP_PKEY_RSA ? "rsa-sha256" :
		type == EVP_PKEY_ED25519 ? "ed25519-sha256" : NULL;
	if (alg == NULL) {
		*error_r = "the key is neither RSA nor Ed25519";
		EVP_PKEY_free(key);
		return NULL;
	}
	struct field *fields = x_calloc(DKIM_FIELDS_MAX, sizeof(*fields));
	size_t body_off;
	size_t nf = parse_fields(msg, len, fields, DKIM_FIELDS_MAX, &body_off);

	/* body hash */
	unsigned char bh[EVP_MAX_MD_SIZE];
	unsigned bhlen = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	canon_body(md, msg + body_off, len - body_off);
	EVP_DigestFinal_ex(md, bh, &bhlen);
	char *bh64 = b64(bh, bhlen);

	/* signed headers, each instance from the bottom up (RFC 6376 5.4.2) */
	struct buf hdrs = BUF_INIT(SIZE_MAX), hlist = BUF_INIT(4096);
	for (const char *const *name = signed_headers; *name != NULL; name++) {
		size_t nlen = strlen(*name);
		for (size_t k = nf; k-- > 0;) {
			struct field *f = &fields[k];
			if (f->used || f->name_len != nlen || strncasecmp(f->start, *name, nlen) != 0)
				continue;
			f->used = true;
			canon_header(&hdrs, f->start, f->len);
			buf_append(&hdrs, "\r\n", 2);
			if (buf_len(&hlist) > 0)
				buf_append(&hlist, ":", 1);
			buf_append_str(&hlist, *name);
		}
	}
	struct buf sig = BUF_INIT(SIZE_MAX);
	buf_printf(&sig, "DKIM-Signature: v=1; a=%s; c=relaxed/relaxed; d=%s; s=%s;\r\n"
		   "\tt=%lld; h=%s;\r\n\tbh=%s;\r\n\tb=", alg, domain, selector, (long long)now,
		   buf_cstr(&hlist), bh64);
	canon_header(&hdrs, buf_data(&sig), buf_len(&sig));

	unsigned char sigbytes[1024];
	size_t siglen = sizeof(sigbytes);
	int ok;
	EVP_MD_CTX *sctx = EVP_MD_CTX_new();
	if (type == EVP_PKEY_ED25519) {
		/* RFC 8463 3: Ed25519 over the SHA-256 of the canonical header data */
		unsigned char h[EVP_MAX_MD_SIZE];
		unsigned hl = 0;
		EVP_DigestInit_ex(md, EVP_sha256(), NULL);
		EVP_DigestUpdate(md, buf_data(&hdrs), buf_len(&hdrs));
		EVP_DigestFinal_ex(md, h, &hl);
		ok = EVP_DigestSignInit(sctx, NULL, NULL, NULL, key) == 1 &&
			EVP_DigestSign(sctx, sigbytes, &siglen, h, hl) == 1;
	} else {
		ok = EVP_PKEY_get_size(key) <= (int)sizeof(sigbytes) &&
			EVP_DigestSignInit(sctx, NULL, EVP_sha256(), NULL, key) == 1 &&
			EVP_DigestSign(sctx, sigbytes, &siglen, (const unsigned char *)buf_data(&hdrs),
				       buf_len(&hdrs)) == 1;
	}
	EVP_MD_CTX_free(sctx);
	EVP_MD_CTX_free(md);
	char *out = NULL;
	if (ok) {
		char *s64 = b64(sigbytes, siglen);
		/* fold b= (whitespace inside it is ignored by verifiers) */
		size_t slen = strlen(s64);
		for (size_t i = 0; i < slen; i += 72) {
			if (i > 0)
				buf_append_str(&sig, "\r\n\t ");
			buf_append(&sig, s64 + i, slen - i < 72 ? slen - i : 72);
		}
		buf_append_str(&sig, "\r\n");
		free(s64);
		out = x_strdup(buf_cstr(&sig));
	} else {
		*error_r = "signing failed";
	}
	buf_free(&sig);
	buf_free(&hdrs);
	buf_free(&hlist);
	free(bh64);
	free(fields);
	EVP_PKEY_free(key);
	return out;
}
