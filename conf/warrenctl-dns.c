/* warrenctl-dns.c — `warrenctl dns DOMAIN`: every DNS record the domain needs,
 * derived from the configuration, as zone-file lines (or --json):
 *
 *   MX and the mail host's address, SPF, DKIM (a placeholder until signing is
 *   set up), DMARC, TLS-RPT, RFC 6186 / RFC 8314 SRV records for submission(s),
 *   imap(s) and pop3(s) (a "." target for a service not offered), the
 *   autoconfig / autodiscover names Thunderbird and Outlook look up, and the
 *   MTA-STS record whose policy warren-httpd serves.
 */
#include "conf/conf.h"
#include "conf/warrenctl.h"
#include "conf/warrenctl-admin.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* TTL written on every record. */
#define DNS_TTL 3600
/* Bytes per TXT character-string written (the limit is 255). */
#define DNS_TXT_CHUNK 250
/* Most records printed for one domain. */
#define DNS_MAX_RECORDS 64

struct dns_record {
	char name[300];
	const char *type;
	char value[1400];       /* a 4096-bit RSA key's TXT fits */
	bool placeholder;       /* the admin must fill something in */
	const char *note;
};

struct dns_out {
	struct dns_record r[DNS_MAX_RECORDS];
	size_t n;
};

static struct dns_record *add(struct dns_out *o, const char *type, const char *note,
			      bool placeholder)
{
	if (o->n >= DNS_MAX_RECORDS)
		return NULL;
	struct dns_record *r = &o->r[o->n++];
	memset(r, 0, sizeof(*r));
	r->type = type;
	r->note = note;
	r->placeholder = placeholder;
	return r;
}

#define ADD(o_, type_, note_, ph_, name_fmt_, name_arg_, ...) do { \
	struct dns_record *r_ = add((o_), (type_), (note_), (ph_)); \
	if (r_ != NULL) { \
		snprintf(r_->name, sizeof(r_->name), name_fmt_, name_arg_); \
		snprintf(r_->value, sizeof(r_->value), __VA_ARGS__); \
	} \
} while (0)

/* ---- the mail host's addresses ---- */

static bool public_address(const char *a)
{
	unsigned char bin[16];
	if (inet_pton(AF_INET, a, bin) == 1)
		return !(bin[0] == 0 || bin[0] == 127);   /* not 0.0.0.0, not loopback */
	if (inet_pton(AF_INET6, a, bin) == 1) {
		static const unsigned char zero[16], one[16] = { [15] = 1 };
		return memcmp(bin, zero, 16) != 0 && memcmp(bin, one, 16) != 0;
	}
	return false;
}

static void host_addresses(struct dns_out *o, const struct warren_config *conf,
			   const char *host)
{
	size_t before = o->n;
	for (size_t i = 0; i < conf->n_listeners; i++) {
		const char *a = conf->listeners[i].address;
		bool seen = false;
		for (size_t k = 0; k < i; k++)
			seen |= strcmp(conf->listeners[k].address, a) == 0;
		if (seen || !public_address(a))
			continue;
		ADD(o, strchr(a, ':') != NULL ? "AAAA" : "A", "the listeners' address", false,
		    "%s.", host, "%s", a);
	}
	if (o->n == before) {
		ADD(o, "A", "the listeners bind wildcard or loopback addresses: put the server's "
		    "public IPv4 address here (and an AAAA record for IPv6)", true, "%s.", host,
		    "%s", "<public IPv4 address of this server>");
	}
}

/* ---- RFC 6186 / RFC 8314 SRV records ---- */

struct srv_def {
	const char *label;       /* "_imaps._tcp" */
	enum conf_service service;
	enum conf_tls_mode tls;
	unsigned priority;       /* RFC 8314 5.1: implicit TLS first; IMAP before POP3 */
};

static const struct srv_def srv_defs[] = {
	{ "_submissions._tcp", CONF_SERVICE_SUBMISSION, CONF_TLS_IMPLICIT, 0 },
	{ "_submission._tcp", CONF_SERVICE_SUBMISSION, CONF_TLS_STARTTLS, 10 },
	{ "_imaps._tcp", CONF_SERVICE_IMAP, CONF_TLS_IMPLICIT, 0 },
	{ "_imap._tcp", CONF_SERVICE_IMAP, CONF_TLS_STARTTLS, 10 },
	{ "_pop3s._tcp", CONF_SERVICE_POP3, CONF_TLS_IMPLICIT, 20 },
	{ "_pop3._tcp", CONF_SERVICE_POP3, CONF_TLS_STARTTLS, 30 },
};

static const struct conf_listener *find_service(const struct warren_config *conf,
						enum conf_service service,
						enum conf_tls_mode tls)
{
	for (size_t i = 0; i < conf->n_listeners; i++) {
		const struct conf_listener *l = &conf->listeners[i];
		if (l->service != service)
			continue;
		/* a plaintext port with passwords allowed stands in for a STARTTLS one */
		if (l->tls == tls || (tls == CONF_TLS_STARTTLS && l->tls == CONF_TLS_NONE &&
				      l->auth_plaintext))
			return l;
	}
	return NULL;
}

static void srv_records(struct dns_out *o, const struct warren_config *conf,
			const char *domain, const char *host)
{
	for (size_t i = 0; i < sizeof(srv_defs) / sizeof(srv_defs[0]); i++) {
		const struct srv_def *s = &srv_defs[i];
		const struct conf_listener *l = find_service(conf, s->service, s->tls);
		struct dns_record *r = add(o, "SRV", l != NULL ? NULL :
					   "not offered (RFC 6186: target \".\")", false);
		if (r == NULL)
			return;
		snprintf(r->name, sizeof(r->name), "%s.%s.", s->label, domain);
		if (l != NULL)
			snprintf(r->value, sizeof(r->value), "%u 1 %u %s.", s->priority, l->port, host);
		else
			snprintf(r->value, sizeof(r->value), "0 0 0 .");
	}
}

/* A short stable id for the MTA-STS policy: changes when the policy does. */
static unsigned long long policy_id(const char *host)
{
	unsigned long long h = 1469598103934665603ULL;   /* FNV-1a */
	for (const char *p = "STSv1 testing "; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	for (const char *p = host; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h % 100000000000000ULL;
}

/* The domain's DKIM record from its dkim_key: "v=DKIM1; k=rsa; p=BASE64" (RSA as
 * DER SubjectPublicKeyInfo, Ed25519 as the raw key, RFC 8463). 0 on success;
 * -1 with why in note_r. */
static int dkim_value(const struct conf_domain *d, char *out, size_t size, const char **note_r)
{
	FILE *fp = fopen(d->dkim_key, "r");
	if (fp == NULL) {
		*note_r = "dkim_key cannot be read (run as root or the key's owner): the public "
			  "key goes here";
		return -1;
	}
	EVP_PKEY *key = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (key == NULL) {
		*note_r = "dkim_key is not a PEM private key: the public key goes here";
		return -1;
	}
	bool ed = EVP_PKEY_id(key) == EVP_PKEY_ED25519;
	unsigned char raw[2048], *p = raw;
	size_t len = sizeof(raw);
	int ok;
	if (ed) {
		ok = EVP_PKEY_get_raw_public_key(key, raw, &len) == 1;
	} else {
		int n = i2d_PUBKEY(key, NULL);
		ok = n > 0 && (size_t)n <= sizeof(raw) && i2d_PUBKEY(key, &p) == n;
		len = (size_t)n;
	}
	EVP_PKEY_free(key);
	char b64[4 * (sizeof(raw) / 3) + 8];
	if (!ok || 4 * ((len + 2) / 3) >= sizeof(b64)) {
		*note_r = "the public key of dkim_key cannot be encoded";
		return -1;
	}
	EVP_EncodeBlock((unsigned char *)b64, raw, (int)len);
	if ((size_t)snprintf(out, size, "v=DKIM1; k=%s; p=%s", ed ? "ed25519" : "rsa", b64) >= size) {
		*note_r = "the public key of dkim_key is too long";
		return -1;
	}
	return 0;
}

static void dkim_record(struct dns_out *o, const struct conf_domain *d)
{
	if (d->dkim_selector == NULL || d->dkim_key == NULL) {
		ADD(o, "TXT", "DKIM signing is not set up for this domain: `warrenctl dkim keygen "
		    "DOMAIN SELECTOR` makes a key and the domain's dkim_selector/dkim_key; the "
		    "public key goes here", true, "warren._domainkey.%s.", d->name,
		    "%s", "v=DKIM1; k=rsa; p=<public key>");
		return;
	}
	struct dns_record *r = add(o, "TXT", "DKIM: the public key of the domain's dkim_key",
				   false);
	if (r == NULL)
		return;
	snprintf(r->name, sizeof(r->name), "%s._domainkey.%s.", d->dkim_selector, d->name);
	if (dkim_value(d, r->value, sizeof(r->value), &r->note) < 0) {
		r->placeholder = true;
		snprintf(r->value, sizeof(r->value), "v=DKIM1; p=<public key>");
	}
}

static bool has_http(const struct warren_config *conf)
{
	for (size_t i = 0; i < conf->n_listeners; i++)
		if (conf->listeners[i].service == CONF_SERVICE_HTTP)
			return true;
	return false;
}

static bool has_postmaster(const struct conf_domain *d)
{
	return conf_find_mailbox(d, "postmaster") != NULL || conf_find_alias(d, "postmaster") != NULL ||
		d->catch_all != NULL;
}

static void build(struct dns_out *o, const struct warren_config *conf,
		  const struct conf_domain *d)
{
	const char *dom = d->name;
	const char *host = d->n_hostnames > 0 ? d->hostnames[0] : conf->hostname;
	bool local = d->type == CONF_DOMAIN_LOCAL;
	const char *report_note = has_postmaster(d) ? NULL :
		"postmaster@ has no mailbox or alias here: add one to receive the reports";

	ADD(o, "MX", "mail for the domain comes to this server", false, "%s.", dom,
	    "10 %s.", host);
	host_addresses(o, conf, host);
	ADD(o, "TXT", "SPF: only the domain's MX hosts send its mail", false, "%s.", dom,
	    "%s", "v=spf1 mx -all");
	dkim_record(o, d);
	ADD(o, "TXT", report_note != NULL ? report_note :
	    "DMARC: start with p=none and read the reports, then p=quarantine or p=reject",
	    false, "_dmarc.%s.", dom, "v=DMARC1; p=none; rua=mailto:postmaster@%s", dom);
	ADD(o, "TXT", report_note != NULL ? report_note : "TLS reports (RFC 8460)", false,
	    "_smtp._tls.%s.", dom, "v=TLSRPTv1; rua=mailto:postmaster@%s", dom);
	ADD(o, "TXT", "MTA-STS (RFC 8461): warren-httpd serves the policy (mode testing) at "
	    "https://mta-sts.DOMAIN/.well-known/mta-sts.txt; HTTPS with a certificate for that "
	    "name is needed in front of the http listener", false, "_mta-sts.%s.", dom,
	    "v=STSv1; id=%llu", policy_id(host));
	ADD(o, "CNAME", NULL, false, "mta-sts.%s.", dom, "%s.", host);
	if (!local)
		return;   /* users of a remote domain log in elsewhere */
	srv_records(o, conf, dom, host);
	const char *http_note = has_http(conf) ? NULL :
		"no http listener is configured: add one (service = http) for auto-configuration";
	ADD(o, "CNAME", http_note != NULL ? http_note : "Thunderbird's autoconfig lookup",
	    false, "autoconfig.%s.", dom, "%s.", host);
	ADD(o, "CNAME", "Outlook's autodiscover lookup (HTTPS: the http listener behind TLS)",
	    false, "autodiscover.%s.", dom, "%s.", host);
	ADD(o, "SRV", "Outlook's autodiscover by SRV, on HTTPS port 443", false,
	    "_autodiscover._tcp.%s.", dom, "0 1 443 %s.", host);
}

static void print_text(const struct dns_out *o, const struct warren_config *conf,
		       const struct conf_domain *d)
{
	printf("; DNS records for %s (%s domain), from %s\n", d->name,
	       d->type == CONF_DOMAIN_LOCAL ? "local" : "remote", conf->path);
	printf("; mail host: %s; records marked PLACEHOLDER need a value filled in\n",
	       d->n_hostnames > 0 ? d->hostnames[0] : conf->hostname);
	for (size_t i = 0; i < o->n; i++) {
		const struct dns_record *r = &o->r[i];
		if (r->note != NULL || r->placeholder)
			printf(";%s %s\n", r->placeholder ? " PLACEHOLDER:" : "",
			       r->note != NULL ? r->note : "");
		printf("%-40s %u IN %-5s ", r->name, DNS_TTL, r->type);
		size_t len = strlen(r->value);
		if (strcmp(r->type, "TXT") != 0) {
			printf("%s\n", r->value);
		} else if (len <= DNS_TXT_CHUNK) {
			printf("\"%s\"\n", r->value);
		} else {
			/* a TXT character-string holds 255 bytes: longer values in several */
			printf("(");
			for (size_t k = 0; k < len; k += DNS_TXT_CHUNK)
				printf(" \"%.*s\"", DNS_TXT_CHUNK, r->value + k);
			printf(" )\n");
		}
	}
}

static void print_json(const struct dns_out *o, const struct conf_domain *d,
		       const struct warren_config *conf)
{
	printf("{\"domain\":");
	ctl_json_str(stdout, d->name);
	printf(",\"mail_host\":");
	ctl_json_str(stdout, d->n_hostnames > 0 ? d->hostnames[0] : conf->hostname);
	printf(",\"ttl\":%d,\"records\":[", DNS_TTL);
	for (size_t i = 0; i < o->n; i++) {
		const struct dns_record *r = &o->r[i];
		printf("%s{\"name\":", i ? "," : "");
		ctl_json_str(stdout, r->name);
		printf(",\"type\":\"%s\",\"value\":", r->type);
		ctl_json_str(stdout, r->value);
		printf(",\"placeholder\":%s,\"note\":", r->placeholder ? "true" : "false");
		ctl_json_str(stdout, r->note);
		putchar('}');
	}
	printf("]}\n");
}

int ctl_cmd_dns(struct ctl_options *opts, int argc, char **argv)
{
	if (argc != 1) {
		fprintf(stderr, "usage: warrenctl dns DOMAIN\n");
		return 2;
	}
	struct warren_config *conf;
	if (ctl_load_config(opts, CONF_LOAD_NO_TLS, &conf) < 0) {
		fprintf(stderr, "%s: configuration has errors\n", opts->config);
		return 1;
	}
	const struct conf_domain *d = conf_find_domain(conf, argv[0]);
	if (d == NULL) {
		fprintf(stderr, "warrenctl dns: no domain %s in %s\n", argv[0], conf->path);
		conf_unref(&conf);
		return 1;
	}
	struct dns_out *o = calloc(1, sizeof(*o));
	if (o == NULL) {
		conf_unref(&conf);
		return 1;
	}
	build(o, conf, d);
	if (opts->json)
		print_json(o, d, conf);
	else
		print_text(o, conf, d);
	free(o);
	conf_unref(&conf);
	return 0;
}
