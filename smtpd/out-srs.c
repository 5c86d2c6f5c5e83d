/* out-srs.c — the Sender Rewriting Scheme (SRS0, as libsrs2 and postsrsd write
 * it) for mail forwarded to other domains, so that the next hop's SPF check sees
 * our domain, and its reverse for bounces coming back:
 *
 *   alice@sender.example  ->  SRS0=HHHH=TT=sender.example=alice@srs.domain
 *
 * HHHH: the first 4 characters of base64(HMAC-SHA1(secret, TT domain local)),
 * lower-cased input; TT: the day number modulo 1024 in base32. An address is
 * accepted back for SRS_MAX_AGE_DAYS. */
#include "smtpd/queue.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* Days an SRS address is accepted for a bounce (libsrs2's default). */
#define SRS_MAX_AGE_DAYS 21

static const char base32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static void srs_hash(const char *secret, const char *tt, const char *domain,
		     const char *local, char out[5])
{
	char data[QUEUE_ADDR_MAX * 2 + 8];
	int n = snprintf(data, sizeof(data), "%s%s%s", tt, domain, local);
	for (int i = 0; i < n; i++)
		data[i] = (char)tolower((unsigned char)data[i]);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned maclen = 0;
	HMAC(EVP_sha1(), secret, (int)strlen(secret), (const unsigned char *)data, (size_t)n,
	     mac, &maclen);
	char b64[64];
	EVP_EncodeBlock((unsigned char *)b64, mac, (int)maclen);
	memcpy(out, b64, 4);
	out[4] = '\0';
}

const char *out_srs_domain(const struct warren_config *conf)
{
	if (conf->queue.srs_domain != NULL && conf->queue.srs_domain[0] != '\0')
		return conf->queue.srs_domain;
	for (size_t i = 0; i < conf->n_domains; i++)
		if (conf->domains[i].type == CONF_DOMAIN_LOCAL)
			return conf->domains[i].name;
	return conf->hostname;
}

int out_srs_forward(const struct warren_config *conf, const char *from, int64_t now,
		    char *out, size_t size)
{
	const char *secret = conf->queue.srs_secret;
	const char *at = strrchr(from, '@');
	if (secret == NULL || secret[0] == '\0' || at == NULL || at == from)
		return -1;
	if (strncasecmp(from, "SRS0=", 5) == 0 || strncasecmp(from, "SRS1=", 5) == 0)
		return -1;   /* already rewritten by someone: keep it */
	const struct conf_domain *dom = conf_find_domain(conf, at + 1);
	if (dom != NULL)
		return -1;   /* our own domain: SPF passes without rewriting */
	unsigned days = (unsigned)((now / 86400) % 1024);
	char tt[3] = { base32[(days >> 5) & 31], base32[days & 31], '\0' };
	char local[QUEUE_ADDR_MAX + 1], hash[5];
	snprintf(local, sizeof(local), "%.*s", (int)(at - from), from);
	srs_hash(secret, tt, at + 1, local, hash);
	int n = snprintf(out, size, "SRS0=%s=%s=%s=%s@%s", hash, tt, at + 1, local,
			 out_srs_domain(conf));
	return n > 0 && (size_t)n < size && (size_t)n <= QUEUE_ADDR_MAX ? 0 : -1;
}

static int tt_age(const char *tt, int64_t now)
{
	const char *a = strchr(base32, toupper((unsigned char)tt[0]));
	const char *b = strchr(base32, toupper((unsigned char)tt[1]));
	if (a == NULL || b == NULL || tt[0] == '\0' || tt[1] == '\0')
		return -1;
	unsigned then = (unsigned)(((a - base32) << 5) | (b - base32));
	unsigned today = (unsigned)((now / 86400) % 1024);
	return (int)((today + 1024 - then) % 1024);
}

int out_srs_reverse(const struct warren_config *conf, const char *addr, int64_t now,
		    char *out, size_t size)
{
	const char *secret = conf->queue.srs_secret;
	if (secret == NULL || secret[0] == '\0' || strncasecmp(addr, "SRS0=", 5) != 0)
		return -1;
	const char *at = strrchr(addr, '@');
	if (at == NULL || strcasecmp(at + 1, out_srs_domain(conf)) != 0)
		return -1;
	/* SRS0=HHHH=TT=domain=local@srs_domain (the local part may contain '=') */
	char buf[QUEUE_ADDR_MAX + 1];
	snprintf(buf, sizeof(buf), "%.*s", (int)(at - addr - 5), addr + 5);
	char *hash = buf, *tt = strchr(hash, '=');
	char *domain = tt != NULL ? strchr(tt + 1, '=') : NULL;
	char *local = domain != NULL ? strchr(domain + 1, '=') : NULL;
	if (local == NULL)
		return -1;
	*tt++ = '\0';
	*domain++ = '\0';
	*local++ = '\0';
	if (strlen(hash) != 4 || strlen(tt) != 2 || *domain == '\0' || *local == '\0')
		return -1;
	int age = tt_age(tt, now);
	if (age < 0 || age > SRS_MAX_AGE_DAYS)
		return -1;
	char want[5];
	srs_hash(secret, tt, domain, local, want);
	if (strcasecmp(want, hash) != 0)
		return -1;
	int n = snprintf(out, size, "%s@%s", local, domain);
	return n > 0 && (size_t)n < size ? 0 : -1;
}
