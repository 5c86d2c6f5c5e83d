/* conf.h — Warren's configuration: schema, parser (libConfuse), validated snapshot.
 *
 * conf_load() parses the main file and its includes, validates everything it can
 * (types, bounds, unknown keys, duplicates, password hash formats, that TLS
 * certificate and key files load and match) and returns an immutable snapshot.
 * Errors are reported as "file:line: what is wrong", one per line.
 *
 * A snapshot is reference counted: a session takes a reference when it starts
 * and drops it when it ends, so a reload (a new snapshot) never changes the
 * settings under a session in flight. All strings and arrays live as long as
 * the snapshot. Relative paths in a file are resolved against that file's folder
 * when loading; the snapshot holds absolute paths.
 */
#ifndef WARREN_CONF_H
#define WARREN_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/access.h"

struct tls_server;

enum conf_service {
	CONF_SERVICE_SMTP,        /* inbound MX */
	CONF_SERVICE_SUBMISSION,  /* message submission, AUTH required */
	CONF_SERVICE_IMAP,
	CONF_SERVICE_POP3,
	CONF_SERVICE_HTTP,        /* client auto-configuration (later) */
};

enum conf_tls_mode {
	CONF_TLS_NONE,
	CONF_TLS_STARTTLS,   /* offered, or required with tls_required */
	CONF_TLS_IMPLICIT,   /* TLS from the first byte (465, 993, 995) */
};

enum conf_domain_type {
	CONF_DOMAIN_LOCAL,   /* mail stored here */
	CONF_DOMAIN_REMOTE,  /* accepted here and relayed to relay_host */
};

enum conf_auth_backend {
	CONF_AUTH_LOCAL,     /* password hashes in the config */
	CONF_AUTH_PAM,       /* a PAM service stack (system users, Active Directory) */
};

enum conf_pam_user {
	CONF_PAM_LOCALPART,  /* "alice" */
	CONF_PAM_ADDRESS,    /* "alice@example.test" */
};

enum conf_tls_version {
	CONF_TLS_V1_2,
	CONF_TLS_V1_3,
};

enum conf_bare_lf {
	CONF_BARE_LF_REJECT,   /* bare LF / CR in DATA: 550 5.5.2 */
	CONF_BARE_LF_NORMALIZE,/* turned into CRLF (never ends DATA) */
};

enum conf_deny_action {
	CONF_DENY_REJECT,      /* refused at connect: the protocol's error greeting, then close */
	CONF_DENY_DROP,        /* closed at once, nothing said */
};

enum conf_dnsbl_action {
	CONF_DNSBL_REJECT,     /* 554 5.7.1 Service unavailable; client [IP] blocked using ZONE */
	CONF_DNSBL_TAG,        /* an X-Warren-DNSBL header */
};

/* One zone of dnsbl { sites, rhsbl_sites }: "zone[=codes][*weight]" (conf-dnsbl.c). */
#define CONF_DNSBL_ZONE_MAX 255
struct conf_dnsbl_site {
	char zone[CONF_DNSBL_ZONE_MAX + 1];
	int weight;                  /* default 1; negative: a DNSWL */
	bool any;                    /* no codes: any 127.0.0.0/8 answer but 127.255.255.x */
	uint8_t octet[4][32];        /* codes: the values allowed for each octet (bitmaps) */
};
/* false when spec is malformed. */
bool conf_dnsbl_site_parse(const char *spec, struct conf_dnsbl_site *site);
/* Does the A record a (4 bytes) count for the site? */
bool conf_dnsbl_site_matches(const struct conf_dnsbl_site *site, const unsigned char a[4]);

enum conf_spf_action {
	CONF_SPF_ACCEPT,       /* Received-SPF and Authentication-Results only */
	CONF_SPF_TAG,          /* ... and spf.tag_header */
	CONF_SPF_REJECT,       /* 550 5.7.23 */
	CONF_SPF_TEMPFAIL,     /* 451 4.7.24 */
};

enum conf_log_target {
	CONF_LOG_STDERR,
	CONF_LOG_SYSLOG,
};

struct conf_listener {
	const char *name;            /* the block's title: "smtp", "imaps", ... */
	const char *address;         /* IP address to bind */
	unsigned port;
	enum conf_service service;
	enum conf_tls_mode tls;
	bool tls_required;           /* STARTTLS: refuse everything but STARTTLS before TLS */
	bool auth_plaintext;         /* allow AUTH/LOGIN without TLS */
	unsigned max_connections;    /* per process, 0 = no limit */
	unsigned max_connections_per_ip;
	unsigned idle_timeout_s;
	unsigned max_line_length;    /* command line bytes, CRLF excluded */
	const char *const *allow_networks;   /* clients always let in (before deny_networks) */
	size_t n_allow_networks;
	const char *const *deny_networks;    /* clients refused at connect */
	size_t n_deny_networks;
	int deny_action;             /* enum conf_deny_action */
	bool proxy_protocol;         /* connections start with a PROXY v1/v2 header */
	const char *const *proxy_trusted;    /* peers that may send one */
	size_t n_proxy_trusted;
	unsigned proxy_timeout_ms;   /* time for the header */
	const char *tls_min_protocol;/* per-listener TLS policy; NULL: the tls block's */
	const char *tls_ciphers;
	const char *tls_ciphersuites;
	unsigned command_timeout_s;  /* a started command must be readable within this */
	unsigned session_timeout_s;  /* total session time; 0 in the file: the protocol's */
	const char *file;
	int line;
};

struct conf_tls {
	const char *cert_file;       /* absolute path, NULL when not set */
	const char *key_file;
	enum conf_tls_version min_protocol;
	const char *ciphers;         /* TLS 1.2 cipher list */
	const char *ciphersuites;    /* TLS 1.3 suites */
	unsigned ticket_rotation_s;  /* session ticket key period; 0: no tickets */
	const char *file;            /* where the block is, for messages */
	int line;
};

struct conf_domain;
struct conf_spf;
struct conf_greylist;
struct conf_dnsbl;
struct conf_lists;
struct conf_rate;

/* A content filter rule (smtpd/policy-content.c, docs/policy.md). */
enum conf_filter_on {
	CONF_FILTER_HEADER,      /* a header field of the message, decoded (RFC 2047) */
	CONF_FILTER_SUBJECT,     /* the decoded Subject */
	CONF_FILTER_BODY,        /* each text part's body, transfer- and charset-decoded */
	CONF_FILTER_FILENAME,    /* each attachment's file name */
	CONF_FILTER_TYPE,        /* each part's content type "type/subtype" */
};

enum conf_filter_action {
	CONF_FILTER_REJECT,      /* 550 5.7.1 text */
	CONF_FILTER_TAG,         /* a header and/or a subject prefix */
	CONF_FILTER_DISCARD,     /* 250, delivered nowhere */
	CONF_FILTER_QUARANTINE,  /* to the recipients' domains' quarantine mailboxes */
	CONF_FILTER_REDIRECT,    /* to one address instead of the recipients */
};

struct conf_filter {
	const char *name;            /* the block's title */
	int on;                      /* enum conf_filter_on */
	const char *header;          /* on = header: the field name */
	const char *match;           /* PCRE2 pattern */
	bool caseless;
	int action;                  /* enum conf_filter_action */
	const char *text;            /* the reject reply's text; the reason in the log */
	const char *tag_header;      /* tag: "Name: value" added */
	const char *subject_prefix;  /* tag: put in front of the Subject */
	const char *redirect;        /* redirect: the address */
	const void *code;            /* the compiled pattern (pcre2_code, in the snapshot) */
	const char *file;
	int line;
};

struct conf_mailbox {
	const char *name;            /* local part, lower case */
	const char *address;         /* name@domain */
	const char *password;        /* crypt(3) hash, NULL when none (PAM domains) */
	uint64_t quota;              /* bytes, 0 = unlimited */
	uint64_t max_message_size;   /* bytes, 0 = the domain's */
	const char *const *forward;  /* addresses mail is forwarded to (smtpd) */
	size_t n_forward;
	bool forward_keep_copy;      /* with forward: also keep a copy here */
	struct conf_mailbox_imap {   /* imapd: this user's folder names; NULL: the domain's */
		const char *drafts, *sent, *trash, *junk, *archive;  /* "": not created */
		int trash_on_expunge;        /* 0: the domain's (inherit), 1: false, 2: true */
		unsigned trash_retention_s;  /* 0: the domain's */
		unsigned junk_retention_s;   /* 0: the domain's */
	} imap;
	struct access_rules access;  /* login rules over the domain's (common/access.h) */
	const struct conf_domain *domain;
	const char *file;
	int line;
};

struct conf_alias {
	const char *name;            /* local part, lower case */
	const char *const *targets;  /* local parts of this domain or full addresses */
	size_t n_targets;
	const char *file;
	int line;
};

struct conf_domain {
	const char *name;            /* lower case */
	enum conf_domain_type type;
	enum conf_auth_backend auth;
	const char *pam_service;     /* PAM service name for CONF_AUTH_PAM */
	enum conf_pam_user pam_user; /* what PAM is given as the user name */
	const char *relay_host;      /* REMOTE: where mail for the domain goes */
	const char *const *hostnames;/* names clients use for this domain's server (SNI) */
	size_t n_hostnames;
	struct conf_tls tls;         /* cert/key for SNI; NULL files: the default */
	uint64_t max_message_size;
	const struct conf_mailbox *mailboxes;  /* sorted by name */
	size_t n_mailboxes;
	const struct conf_alias *aliases;      /* sorted by name */
	size_t n_aliases;
	const char *catch_all;       /* target for unknown local parts (NULL: none) */
	const char *multidrop;       /* mailbox receiving all of the domain's mail (NULL: none) */
	const char *dkim_selector;   /* DKIM signing of outbound mail (NULL: not signed) */
	const char *dkim_key;        /* private key (PEM: RSA or Ed25519) */
	struct conf_domain_imap {    /* imapd: the special-use folders and the trashcan */
		const char *drafts, *sent, *trash, *junk, *archive;  /* NULL: not created */
		bool trash_on_expunge;       /* EXPUNGE keeps a copy in the trash folder */
		unsigned trash_retention_s;  /* trash messages older than this go; 0: kept */
		unsigned junk_retention_s;   /* the same for the junk folder */
	} imap;
	struct access_rules access;  /* login rules of every mailbox (common/access.h) */
	const char *quarantine_mailbox; /* content filters' quarantine (a local part), or NULL */
	const struct conf_filter *filters;  /* this domain's content filter rules, in file order */
	size_t n_filters;
	/* smtpd's policy sections for this domain (docs/policy.md "Per-domain
	 * overrides"): the global section with the keys of the domain's own block
	 * (spf { } ... inside domain { }) written over it; never NULL */
	const struct conf_spf *spf;            /* for its recipients (applied at RCPT) */
	const struct conf_greylist *greylist;  /* for its recipients */
	const struct conf_dnsbl *dnsbl;        /* enabled, threshold, action; zones global */
	const struct conf_rate *rate;          /* for its authenticated users */
	const struct conf_lists *lists;        /* its own lists, besides the global ones */
	bool spf_override;           /* the domain's spf { } sets a key */
	const char *file;
	int line;
};

struct warren_config {
	const char *path;            /* absolute path of the main file */
	const char *hostname;        /* our name in greetings and Received headers */
	const char *state_dir;       /* absolute; store, queue, sockets */
	const char *user;            /* unprivileged user the daemons run as when started as root */
	const char *default_domain;  /* domain for logins without "@domain" (NULL: none) */
	uint64_t max_message_size;   /* bytes */

	struct conf_pop3 {
		const char *mailbox;         /* the folder a POP3 session shows ("INBOX") */
		unsigned login_delay_s;      /* LOGIN-DELAY: least seconds between logins; 0: none */
		const char *expire;          /* EXPIRE: "never", a number of days, or NULL: not said */
		bool sdps;                   /* offer Demon's SDPS (*ENV) */
		bool delivered_to;           /* prepend Delivered-To: to other recipients' copies */
	} pop3;

	struct conf_imap {
		bool literal_minus;          /* LITERAL- instead of LITERAL+ (RFC 7888) */
		unsigned retention_interval_s;  /* trash/junk retention runs this often; 0: at login only */
		unsigned retention_batch;    /* mailboxes looked at per run */
	} imap;

	struct {
		enum conf_log_target target;
		int level;           /* enum log_level */
	} log;
	struct {
		const char *servers; /* "ADDR[:PORT],..." or "" for /etc/resolv.conf */
		unsigned timeout_ms;
		unsigned tries;
	} dns;
	struct {
		unsigned threads;
		unsigned queue_max;
		unsigned cache_ttl_s;
		unsigned cache_size;
		unsigned failure_delay_ms;
		unsigned failure_delay_max_ms;
		bool helper;                 /* a root master runs PAM in warren-authd */
		unsigned helper_timeout_ms;  /* warren-authd abandons a PAM check after this */
	} auth;
	struct conf_security {           /* brute-force blocking (service/login.c) */
		unsigned max_ip_failures;    /* failed logins from one address per window; 0: off */
		unsigned max_user_failures;  /* failed logins of one mailbox per window; 0: off */
		unsigned failure_window_s;
		unsigned block_time_s;
		const char *const *exempt_networks;  /* never counted nor blocked */
		size_t n_exempt_networks;
		bool hide_refusals;          /* access refusals answered as wrong passwords */
	} security;
	struct conf_tls tls;
	struct conf_smtp {
		unsigned max_recipients;     /* RCPT per transaction */
		bool quota_permanent;        /* over quota: 552 5.2.2 instead of 452 4.2.2 */
		int bare_lf;                 /* enum conf_bare_lf */
		uint64_t max_data_line;      /* longest line in DATA, bytes (KEY_SIZE: 64 bits) */
		const char *const *trusted_networks;   /* may relay without AUTH */
		size_t n_trusted_networks;
		const char *const *xclient_networks;   /* may send XCLIENT */
		size_t n_xclient_networks;
		bool sender_login_check;     /* submission: MAIL FROM must be the user's */
		bool vrfy;                   /* VRFY answers for local recipients (else 252) */
	} smtp;
	struct conf_queue {              /* outbound delivery (smtpd's queue, docs/outbound.md) */
		const char *relayhost;       /* smart host "host[:port]" for all remote mail, or NULL */
		const char *relayhost_user;  /* AUTH PLAIN at the smart host (NULL: no AUTH) */
		const char *relayhost_password;
		bool relayhost_tls_required; /* refuse to talk to the smart host without TLS */
		const char *const *tls_required_domains;  /* destinations that must use TLS */
		size_t n_tls_required_domains;
		unsigned smtp_port;          /* port of MX hosts (25) */
		unsigned max_lifetime_s;     /* bounce after this long in the queue */
		unsigned delay_warning_s;    /* delay DSN after this long; 0: never */
		unsigned retry_min_s;        /* first retry after this; doubling ... */
		unsigned retry_max_s;        /* ... up to this */
		unsigned scan_interval_s;    /* how often the queue is looked at */
		unsigned max_deliveries;     /* connections at once per smtpd process */
		unsigned destination_concurrency;   /* connections at once per destination */
		unsigned connect_timeout_s;
		const char *srs_secret;      /* SRS for forwarded mail; NULL: off */
		const char *srs_domain;      /* domain of SRS addresses (NULL: hostname) */
	} queue;
	struct conf_rate {               /* rate limits in the store (smtpd/policy-rate.c) */
		unsigned connections_per_ip; /* connections per connection_window; 0: off */
		unsigned connection_window_s;
		unsigned messages_per_user;  /* MAIL of an authenticated user per user_window; 0: off */
		unsigned recipients_per_user;/* RCPT accepted per user_window; 0: off */
		unsigned user_window_s;
		const char *const *exempt_networks;  /* never counted */
		size_t n_exempt_networks;
	} rate;
	const struct conf_filter *filters;  /* global content filter rules, in file order */
	size_t n_filters;
	struct conf_limits {             /* protocol limits (docs/security-tls.md) */
		unsigned max_errors;         /* bad commands before disconnect (all daemons) */
		uint64_t imap_max_literal;   /* literal bytes of a command other than APPEND */
		unsigned imap_max_literals;  /* literals in one command */
		unsigned max_unauth_commands;/* IMAP/POP3/submission commands before login */
		unsigned max_command_args;   /* arguments (list items, set ranges) per command */
		uint64_t max_header_size;    /* header section of a message (smtpd DATA) */
		unsigned max_mime_depth;     /* MIME nesting parsed at delivery (BODYSTRUCTURE) */
	} limits;
	struct conf_http {
		const char *const *metrics_allow;  /* client networks that may read /metrics */
		size_t n_metrics_allow;
	} http;
	struct conf_spf {                /* smtpd's SPF check (smtpd/policy-spf.c) */
		bool enabled;
		/* enum conf_spf_action for each result */
		int pass, fail, softfail, neutral, none, temperror, permerror;
		const char *tag_header;      /* the header that "tag" adds */
	} spf;
	struct conf_greylist {           /* smtpd's greylisting (smtpd/policy-greylist.c) */
		bool enabled;
		unsigned delay_s;            /* a retry is accepted this long after the first try */
		unsigned retry_window_s;     /* ... and until this long after it */
		unsigned max_age_s;          /* a passed triplet is remembered this long */
		unsigned auto_whitelist;     /* passed retries before a network is whitelisted; 0: off */
		unsigned auto_whitelist_time_s;  /* how long that lasts */
		unsigned ipv4_prefix, ipv6_prefix;   /* the client network of a triplet */
		unsigned expire_interval_s;  /* how often old records are removed */
	} greylist;
	struct conf_helo_checks {        /* smtpd's HELO checks (smtpd/policy-helo.c) */
		bool require;                /* HELO/EHLO before MAIL (503 5.5.1) */
		bool reject_invalid;         /* neither a FQDN nor an address literal */
		bool reject_our_name;        /* our host name, domains or address from outside */
	} helo_checks;
	struct conf_lists {              /* black and white lists (smtpd/policy-lists.c) */
		/* each entry "PATTERN" or "PATTERN text of the reply" */
		const char *const *whitehosts;          /* networks: no anti-spam checks */
		size_t n_whitehosts;
		const char *const *client_blacklist;    /* networks */
		size_t n_client_blacklist;
		const char *const *helo_blacklist;      /* names, ".domain" for subdomains */
		size_t n_helo_blacklist;
		const char *const *helo_whitelist;
		size_t n_helo_whitelist;
		const char *const *sender_blacklist;    /* addresses, domains, ".domain" */
		size_t n_sender_blacklist;
		const char *const *sender_whitelist;
		size_t n_sender_whitelist;
		const char *const *recipient_blacklist;
		size_t n_recipient_blacklist;
		const char *const *recipient_whitelist;
		size_t n_recipient_whitelist;
		const char *reject_text;     /* reply text when an entry has none */
		const char *const *client_whitelist;    /* domain lists only: networks whose
							 * RCPTs skip the anti-spam checks */
		size_t n_client_whitelist;
	} lists;
	struct conf_dnsbl {              /* DNSBL/DNSWL/RHSBL scoring (smtpd/policy-rbl.c) */
		const char *const *sites;    /* "zone[=codes][*weight]" on the client address */
		size_t n_sites;
		const char *const *rhsbl_sites;  /* the same on the sender's domain */
		size_t n_rhsbl_sites;
		int threshold;               /* score that triggers action */
		int action;                  /* enum conf_dnsbl_action */
		unsigned cache_size;         /* answers kept for their TTL */
		bool enabled;                /* false: the zones are not asked (or, per
					      * domain, not counted) */
	} dnsbl;

	const struct conf_listener *listeners;  /* in file order */
	size_t n_listeners;
	const struct conf_domain *domains;      /* sorted by name */
	size_t n_domains;

	/* TLS contexts built from the certificates above (default + SNI), or NULL
	 * when no listener uses TLS. Owned by the snapshot. */
	struct tls_server *tls_server;

	unsigned long generation;    /* increases with every successful load */
	const char *const *files;    /* every file read, the main one first (absolute) */
	size_t n_files;
};

/* Loads and validates path. On success *conf_r holds a snapshot with one
 * reference. On failure returns -1 and *errors_r (malloc'ed) holds every error,
 * one "file:line: message" per line. flags: CONF_LOAD_*. */
#define CONF_LOAD_NO_TLS 0x1   /* skip building TLS contexts (warrenctl, tests) */
int conf_load(const char *path, unsigned flags, struct warren_config **conf_r, char **errors_r);
/* The same, reading every file from the copy under root that conf_save_copy()
 * made ("root" + the file's absolute path) while resolving relative paths and
 * naming files as the originals: the daemons read the master's last good
 * configuration this way, whatever has been written to the files since. */
int conf_load_from(const char *path, const char *root, unsigned flags,
		   struct warren_config **conf_r, char **errors_r);
/* Copies every file of conf below root (made if missing), each written to a
 * temporary name and renamed into place, owned by uid/gid when uid is not -1,
 * mode 0640. Returns -1 with *error_r (static or strerror text) on failure. */
int conf_save_copy(const struct warren_config *conf, const char *root, int uid, int gid,
		   const char **error_r);

struct warren_config *conf_ref(struct warren_config *conf);
/* Drops a reference and clears *conf; the last one frees the snapshot. */
void conf_unref(struct warren_config **conf);

/* Lookups; names are compared case-insensitively. NULL when not found. */
const struct conf_domain *conf_find_domain(const struct warren_config *conf, const char *name);
const struct conf_mailbox *conf_find_mailbox(const struct conf_domain *domain, const char *local);
const struct conf_alias *conf_find_alias(const struct conf_domain *domain, const char *local);

/* Splits "user@domain" (or "user" with default_domain) into the mailbox.
 * NULL when there is no such mailbox. */
const struct conf_mailbox *conf_find_login(const struct warren_config *conf, const char *login);

const char *conf_service_name(enum conf_service service);
const char *conf_tls_mode_name(enum conf_tls_mode mode);

/* Writes the configuration reference (every block and key with type, default,
 * bounds and description) in Markdown; docs/config-reference.md is this output. */
void conf_write_reference(FILE *out);

#endif
