/* conf-schema.c — every configuration key, its type, default, bounds and meaning. */
#include "conf/conf.h"
#include "conf/conf-schema.h"

#include <limits.h>

#define K(name_, type_, def_, min_, max_, field_, doc_) \
	{ name_, type_, def_, min_, max_, NULL, field_, doc_, NULL }
#define KE(name_, def_, choices_, field_, doc_) \
	{ name_, KEY_ENUM, def_, 0, 0, choices_, field_, doc_, NULL }
#define SUB(name_, section_, field_) \
	{ name_, KEY_STR, NULL, 0, 0, NULL, field_, NULL, section_ }
#define KEND { NULL, KEY_STR, NULL, 0, 0, NULL, 0, NULL, NULL }

#define KB 1024LL
#define MB (1024LL * KB)
#define GB (1024LL * MB)

static const char *const log_targets[] = { "stderr", "syslog", NULL };
static const char *const log_levels[] = { "debug", "info", "warning", "error", NULL };
static const char *const services[] = { "smtp", "submission", "imap", "pop3", "http", NULL };
static const char *const tls_modes[] = { "none", "starttls", "implicit", NULL };
static const char *const domain_types[] = { "local", "remote", NULL };
static const char *const auth_backends[] = { "local", "pam", NULL };
static const char *const pam_users[] = { "localpart", "address", NULL };
static const char *const tls_versions[] = { "TLSv1.2", "TLSv1.3", NULL };
static const char *const bare_lf_modes[] = { "reject", "normalize", NULL };
static const char *const deny_actions[] = { "reject", "drop", NULL };

#define CFG_OFF(field) offsetof(struct warren_config, field)
#define TLS_OFF(field) offsetof(struct conf_tls, field)
#define LIS_OFF(field) offsetof(struct conf_listener, field)
#define DOM_OFF(field) offsetof(struct conf_domain, field)
#define MBX_OFF(field) offsetof(struct conf_mailbox, field)
#define ALI_OFF(field) offsetof(struct conf_alias, field)

_Static_assert(offsetof(struct conf_alias, n_targets) ==
	       offsetof(struct conf_alias, targets) + sizeof(void *), "strlist layout");
_Static_assert(offsetof(struct conf_listener, n_allow_networks) ==
	       offsetof(struct conf_listener, allow_networks) + sizeof(void *), "strlist layout");
_Static_assert(offsetof(struct conf_listener, n_deny_networks) ==
	       offsetof(struct conf_listener, deny_networks) + sizeof(void *), "strlist layout");
_Static_assert(offsetof(struct conf_listener, n_proxy_trusted) ==
	       offsetof(struct conf_listener, proxy_trusted) + sizeof(void *), "strlist layout");
_Static_assert(offsetof(struct conf_domain, n_hostnames) ==
	       offsetof(struct conf_domain, hostnames) + sizeof(void *), "strlist layout");

static const struct conf_key_def pop3_keys[] = {
	K("mailbox", KEY_STR, "INBOX", 0, 0, CFG_OFF(pop3.mailbox),
	  "The folder a POP3 session shows (and deletes from); a user without that "
	  "folder gets -ERR [SYS/PERM] at login."),
	K("login_delay", KEY_DURATION, "0", 0, 86400, CFG_OFF(pop3.login_delay_s),
	  "Least time between two POP3 logins of a mailbox (RFC 2449 LOGIN-DELAY, "
	  "announced in CAPA); earlier logins get -ERR [LOGIN-DELAY]. 0: no limit, not "
	  "announced."),
	K("expire", KEY_STR, NULL, 0, 0, CFG_OFF(pop3.expire),
	  "RFC 2449 EXPIRE policy announced in CAPA: \"never\", or days messages stay "
	  "after they were retrieved (0: retrieved messages are deleted at QUIT; N: "
	  "retrieved messages older than N days are deleted at QUIT). Unset: not "
	  "announced, nothing deleted but what the client deletes."),
	K("sdps", KEY_BOOL, "true", 0, 0, CFG_OFF(pop3.sdps),
	  "Offer Demon's SDPS *ENV command (envelope sender and recipient of a "
	  "message), which fetchmail's protocol sdps uses to collect a domain's "
	  "multi-drop mailbox."),
	K("delivered_to", KEY_BOOL, "true", 0, 0, CFG_OFF(pop3.delivered_to),
	  "RETR and TOP put a \"Delivered-To: RECIPIENT\" line first in messages whose "
	  "envelope recipient is not the mailbox itself (the copies in a multi-drop "
	  "mailbox, mail that came through an alias), as Postfix's local delivery "
	  "does; sizes include it. Collectors need it: fetchmail drops a copy whose "
	  "header equals the previous one's unless a Delivered-To tells them apart."),
	KEND
};

static const struct conf_key_def log_keys[] = {
	KE("target", "stderr", log_targets, CFG_OFF(log.target),
	   "Where log lines go: stderr (the master's terminal or a service manager's "
	   "journal) or syslog (facility mail, as Postfix does)."),
	KE("level", "info", log_levels, CFG_OFF(log.level),
	   "Lowest level written: debug, info, warning or error."),
	KEND
};

static const struct conf_key_def dns_keys[] = {
	K("servers", KEY_STR, "", 0, 0, CFG_OFF(dns.servers),
	  "Resolvers to ask, as \"ADDR[:PORT],...\" (IPv6 as \"[ADDR]:PORT\"); empty: "
	  "the ones in /etc/resolv.conf."),
	K("timeout", KEY_DURATION_MS, "5s", 100, 60000, CFG_OFF(dns.timeout_ms),
	  "Time to wait for an answer before trying again."),
	K("tries", KEY_INT, "2", 1, 10, CFG_OFF(dns.tries), "Attempts per query."),
	KEND
};

static const struct conf_key_def auth_keys[] = {
	K("threads", KEY_INT, "4", 1, 64, CFG_OFF(auth.threads),
	  "Threads per daemon that verify passwords (yescrypt, PAM), apart from the "
	  "threads that do mail work."),
	K("queue_max", KEY_INT, "1024", 1, 1000000, CFG_OFF(auth.queue_max),
	  "Logins waiting for a thread beyond this are answered with a temporary failure."),
	K("cache_ttl", KEY_DURATION, "60s", 0, 86400, CFG_OFF(auth.cache_ttl_s),
	  "How long a successful verification is remembered, so clients that open "
	  "many connections do not pay the hash each time; 0 turns the cache off."),
	K("cache_size", KEY_INT, "10000", 1, 10000000, CFG_OFF(auth.cache_size),
	  "Successful verifications remembered at most."),
	K("failure_delay", KEY_DURATION_MS, "1s", 0, 60000, CFG_OFF(auth.failure_delay_ms),
	  "Delay before a failed login is answered; doubles with each further failure "
	  "from the same address."),
	K("failure_delay_max", KEY_DURATION_MS, "15s", 0, 600000,
	  CFG_OFF(auth.failure_delay_max_ms), "Upper bound of the growing delay."),
	K("helper", KEY_BOOL, "true", 0, 0, CFG_OFF(auth.helper),
	  "When the master runs as root and a domain uses auth = pam: run the PAM "
	  "checks in warren-authd, a small process that keeps root (pam_unix must read "
	  "/etc/shadow), while the protocol daemons run as the unprivileged user. "
	  "false: the daemons run PAM themselves, as that user. Read at start."),
	K("helper_timeout", KEY_DURATION_MS, "10s", 100, 25000, CFG_OFF(auth.helper_timeout_ms),
	  "How long warren-authd lets one PAM check run (each runs in a process of its "
	  "own); a check that takes longer (a hung PAM module or directory server) is "
	  "killed and the login gets a temporary failure. Read at start."),
	KEND
};

static const struct conf_key_def tls_keys[] = {
	K("cert", KEY_PATH, NULL, 0, 0, TLS_OFF(cert_file),
	  "Certificate chain in PEM, leaf first."),
	K("key", KEY_PATH, NULL, 0, 0, TLS_OFF(key_file), "Private key in PEM."),
	KE("min_protocol", "TLSv1.2", tls_versions, TLS_OFF(min_protocol),
	   "Oldest TLS version accepted: TLSv1.2 or TLSv1.3."),
	K("ciphers", KEY_STR, NULL, 0, 0, TLS_OFF(ciphers),
	  "OpenSSL cipher list for TLS 1.2; unset: forward-secret AEAD ciphers only."),
	K("ciphersuites", KEY_STR, NULL, 0, 0, TLS_OFF(ciphersuites),
	  "OpenSSL TLS 1.3 cipher suites; unset: all three AEAD suites, AES-256-GCM first."),
	K("ticket_rotation", KEY_DURATION, "1h", 0, 7 * 86400, TLS_OFF(ticket_rotation_s),
	  "Session tickets (RFC 5077/8446 resumption): each daemon process makes a random "
	  "ticket key, replaces it after this long and still accepts tickets of the "
	  "previous key for another period (renewing them), so a ticket is good for one "
	  "to two periods; 0: no tickets."),
	KEND
};

static const struct conf_key_def domain_tls_keys[] = {
	K("cert", KEY_PATH, NULL, 0, 0, TLS_OFF(cert_file),
	  "Certificate chain in PEM for this domain, chosen when the client asks for one "
	  "of the domain's names (SNI)."),
	K("key", KEY_PATH, NULL, 0, 0, TLS_OFF(key_file), "Private key in PEM."),
	KEND
};

#define DIMAP_OFF(field) offsetof(struct conf_domain_imap, field)

static const struct conf_key_def domain_imap_keys[] = {
	K("drafts", KEY_STR, "Drafts", 0, 0, DIMAP_OFF(drafts),
	  "Folder created (\\Drafts, subscribed) at each login when missing; "
	  "\"Entwürfe\" and the like are fine (UTF-8)."),
	K("sent", KEY_STR, "Sent", 0, 0, DIMAP_OFF(sent),
	  "The \\Sent folder (\"Sent Items\" for older Outlook users)."),
	K("trash", KEY_STR, "Trash", 0, 0, DIMAP_OFF(trash),
	  "The \\Trash folder (\"Deleted Items\" for older Outlook users)."),
	K("junk", KEY_STR, "Junk", 0, 0, DIMAP_OFF(junk), "The \\Junk folder."),
	K("archive", KEY_STR, "Archive", 0, 0, DIMAP_OFF(archive), "The \\Archive folder."),
	K("trash_on_expunge", KEY_BOOL, "false", 0, 0, DIMAP_OFF(trash_on_expunge),
	  "Trashcan: messages expunged from any other folder (\\Deleted + EXPUNGE or "
	  "CLOSE) keep a copy in the trash folder."),
	K("trash_retention", KEY_DURATION, "0", 0, 10 * 365 * 86400,
	  DIMAP_OFF(trash_retention_s),
	  "Messages that have been in the trash folder longer than this are removed "
	  "(at each IMAP login and every imap.retention_interval); 0: kept until the "
	  "user empties it."),
	K("junk_retention", KEY_DURATION, "0", 0, 10 * 365 * 86400,
	  DIMAP_OFF(junk_retention_s),
	  "The same for the junk folder: messages in it longer than this are removed; "
	  "0: kept."),
	KEND
};

static const struct conf_section_def domain_imap_section = {
	"imap", 0, NULL, "The domain's IMAP folders (imapd).", domain_imap_keys };

#define MIMAP_OFF(field) offsetof(struct conf_mailbox_imap, field)

static const char *const inherit_false_true[] = { "inherit", "false", "true", NULL };

static const struct conf_key_def mailbox_imap_keys[] = {
	K("drafts", KEY_STR, NULL, 0, 0, MIMAP_OFF(drafts),
	  "This user's \\Drafts folder, created at the next login when missing; unset: "
	  "the domain's name; \"\": none."),
	K("sent", KEY_STR, NULL, 0, 0, MIMAP_OFF(sent),
	  "This user's \\Sent folder (\"Sent Items\" for an Outlook user); unset: the "
	  "domain's."),
	K("trash", KEY_STR, NULL, 0, 0, MIMAP_OFF(trash),
	  "This user's \\Trash folder (\"Deleted Items\"); unset: the domain's. The "
	  "trashcan and the retention use it."),
	K("junk", KEY_STR, NULL, 0, 0, MIMAP_OFF(junk),
	  "This user's \\Junk folder; unset: the domain's."),
	K("archive", KEY_STR, NULL, 0, 0, MIMAP_OFF(archive),
	  "This user's \\Archive folder; unset: the domain's."),
	KE("trash_on_expunge", "inherit", inherit_false_true, MIMAP_OFF(trash_on_expunge),
	   "The trashcan for this user: true or false; inherit: the domain's "
	   "trash_on_expunge."),
	K("trash_retention", KEY_DURATION, NULL, 0, 10 * 365 * 86400,
	  MIMAP_OFF(trash_retention_s),
	  "This user's trash retention; unset or 0: the domain's."),
	K("junk_retention", KEY_DURATION, NULL, 0, 10 * 365 * 86400,
	  MIMAP_OFF(junk_retention_s),
	  "This user's junk retention; unset or 0: the domain's."),
	KEND
};

static const struct conf_section_def mailbox_imap_section = {
	"imap", 0, NULL, "The user's own IMAP folder names and trashcan (imapd), over the "
	"domain's.",
	mailbox_imap_keys };

static const struct conf_key_def imap_keys[] = {
	K("literal_minus", KEY_BOOL, "false", 0, 0, CFG_OFF(imap.literal_minus),
	  "Advertise LITERAL- instead of LITERAL+ (RFC 7888): a non-synchronizing "
	  "literal larger than 4096 bytes gets BAD [TOOBIG] and is skipped, so clients "
	  "must wait for the go-ahead before sending big ones."),
	K("retention_interval", KEY_DURATION, "1h", 0, 7 * 86400,
	  CFG_OFF(imap.retention_interval_s),
	  "How often imapd applies the domains' trash_retention and junk_retention to "
	  "every configured mailbox (besides each login); 0: at login only."),
	K("retention_batch", KEY_INT, "200", 1, 1000000, CFG_OFF(imap.retention_batch),
	  "Mailboxes looked at per retention run; the next run goes on where this one "
	  "stopped, so one run's work stays bounded."),
	KEND
};

static const struct conf_section_def imap_section = {
	"imap", 0, NULL, "IMAP sessions (imapd).", imap_keys };

static const struct conf_key_def security_keys[] = {
	K("max_ip_failures", KEY_INT, "20", 0, 1000000, CFG_OFF(security.max_ip_failures),
	  "Failed logins (SMTP AUTH, IMAP, POP3, counted together in the store) from one "
	  "client address within failure_window before the address is blocked for "
	  "block_time; while blocked even right passwords fail. 0: never blocked."),
	K("max_user_failures", KEY_INT, "50", 0, 1000000, CFG_OFF(security.max_user_failures),
	  "Failed logins of one mailbox (from any address) within failure_window before "
	  "logins to it are blocked for block_time. 0: never blocked."),
	K("failure_window", KEY_DURATION, "10m", 1, 7 * 86400, CFG_OFF(security.failure_window_s),
	  "How long failures are counted (a fixed window from the first failure)."),
	K("block_time", KEY_DURATION, "15m", 1, 30 * 86400, CFG_OFF(security.block_time_s),
	  "How long a block lasts (`warrenctl ban list|add|remove` shows and changes "
	  "blocks)."),
	K("exempt_networks", KEY_STRLIST, NULL, 0, 0, CFG_OFF(security.exempt_networks),
	  "Client networks whose failures are neither counted nor blocked (a webmail "
	  "or proxy host)."),
	K("hide_refusals", KEY_BOOL, "false", 0, 0, CFG_OFF(security.hide_refusals),
	  "Answer a login that an access rule refuses exactly as a wrong password "
	  "(reply, delay, counted as a failure), as Dovecot does for allow_nets, so a "
	  "guesser cannot tell a right password from the answer; off: the user is told "
	  "(IMAP [AUTHORIZATIONFAILED] / [CONTACTADMIN]). The log names the rule "
	  "either way."),
	KEND
};

_Static_assert(offsetof(struct warren_config, security.n_exempt_networks) ==
	       offsetof(struct warren_config, security.exempt_networks) + sizeof(void *),
	       "strlist layout");

static const struct conf_section_def security_section = {
	"security", 0, NULL, "Brute-force protection of logins (docs/security.md).",
	security_keys };

static const char *const spf_actions[] = { "accept", "tag", "reject", "tempfail", NULL };

#define SPF_ACTION(name_, def_, what_) \
	KE(#name_, def_, spf_actions, CFG_OFF(spf.name_), \
	   "What a " what_ " result does: accept, tag (adds tag_header), reject (550 " \
	   "5.7.23) or tempfail (451 4.7.24).")

static const struct conf_key_def spf_keys[] = {
	K("enabled", KEY_BOOL, "false", 0, 0, CFG_OFF(spf.enabled),
	  "Check SPF (RFC 7208, libspf2) of MAIL FROM, or of the HELO name for the null "
	  "sender, for clients that are not trusted (authenticated, trusted_networks, "
	  "whitehosts); the result goes into Received-SPF and Authentication-Results "
	  "headers. Lookups use the dns { } resolvers."),
	SPF_ACTION(pass, "accept", "pass"),
	SPF_ACTION(fail, "reject", "fail"),
	SPF_ACTION(softfail, "tag", "softfail"),
	SPF_ACTION(neutral, "accept", "neutral"),
	SPF_ACTION(none, "accept", "none (no SPF record)"),
	SPF_ACTION(temperror, "tempfail", "temperror (DNS failure)"),
	SPF_ACTION(permerror, "accept", "permerror (a broken record)"),
	K("tag_header", KEY_STR, "X-Spam-SPF", 0, 0, CFG_OFF(spf.tag_header),
	  "Header field added, with the result as its value, when the action is tag."),
	KEND
};

static const struct conf_section_def spf_section = {
	"spf", 0, NULL, "SPF checks of inbound mail (smtpd, docs/policy.md).", spf_keys };

static const struct conf_key_def greylist_keys[] = {
	K("enabled", KEY_BOOL, "false", 0, 0, CFG_OFF(greylist.enabled),
	  "Greylist untrusted clients: the first RCPT of a (client network, sender, "
	  "recipient) triplet gets 451 4.7.1; a retry after delay is accepted. Senders "
	  "whose SPF passes are keyed by their domain instead of the network."),
	K("delay", KEY_DURATION, "5m", 1, 86400, CFG_OFF(greylist.delay_s),
	  "How long a sender must wait before its retry is accepted."),
	K("retry_window", KEY_DURATION, "4h", 1, 7 * 86400, CFG_OFF(greylist.retry_window_s),
	  "How long after the first attempt a retry is still accepted; a later one "
	  "starts over."),
	K("max_age", KEY_DURATION, "35d", 1, 365 * 86400, CFG_OFF(greylist.max_age_s),
	  "How long a triplet that passed stays accepted without new mail."),
	K("auto_whitelist", KEY_INT, "5", 0, 1000000, CFG_OFF(greylist.auto_whitelist),
	  "Retries that passed from one client network before the network skips "
	  "greylisting for auto_whitelist_time; 0: never."),
	K("auto_whitelist_time", KEY_DURATION, "30d", 1, 365 * 86400,
	  CFG_OFF(greylist.auto_whitelist_time_s),
	  "How long an automatically whitelisted network skips greylisting."),
	K("ipv4_prefix", KEY_INT, "24", 8, 32, CFG_OFF(greylist.ipv4_prefix),
	  "Prefix length of the client network of an IPv4 client."),
	K("ipv6_prefix", KEY_INT, "64", 16, 128, CFG_OFF(greylist.ipv6_prefix),
	  "Prefix length of the client network of an IPv6 client."),
	K("expire_interval", KEY_DURATION, "10m", 1, 86400, CFG_OFF(greylist.expire_interval_s),
	  "How often each smtpd process removes expired greylisting records."),
	KEND
};

static const struct conf_section_def greylist_section = {
	"greylist", 0, NULL, "Greylisting of inbound mail (smtpd, docs/policy.md).",
	greylist_keys };

static const struct conf_section_def log_section = {
	"log", 0, NULL, "Logging.", log_keys };
static const struct conf_section_def pop3_section = {
	"pop3", 0, NULL, "POP3 sessions (pop3d).", pop3_keys };
static const struct conf_section_def dns_section = {
	"dns", 0, NULL, "The DNS resolver used for MX, SPF and DNSBL lookups.", dns_keys };
static const struct conf_section_def auth_section = {
	"auth", 0, NULL, "Password verification.", auth_keys };
static const struct conf_section_def tls_section = {
	"tls", 0, NULL, "The default certificate and the TLS policy of every listener.",
	tls_keys };
static const struct conf_section_def domain_tls_section = {
	"tls", 0, NULL, "The domain's own certificate (SNI).", domain_tls_keys };

static const struct conf_key_def smtp_keys[] = {
	K("max_recipients", KEY_INT, "100", 1, 100000, CFG_OFF(smtp.max_recipients),
	  "Recipients per message (RFC 5321 4.5.3.1.8 asks for at least 100); more get "
	  "452 4.5.3."),
	K("quota_permanent", KEY_BOOL, "false", 0, 0, CFG_OFF(smtp.quota_permanent),
	  "Refuse recipients over quota with 552 5.2.2 (permanent) instead of 452 4.2.2."),
	KE("bare_lf", "reject", bare_lf_modes, CFG_OFF(smtp.bare_lf),
	   "A bare LF or CR in DATA (never an end of line, so SMTP smuggling cannot "
	   "work): reject the message with 550 5.5.2, or normalize it to CRLF."),
	K("max_data_line", KEY_SIZE, "1M", 1000, 256 * MB, CFG_OFF(smtp.max_data_line),
	  "Longest line accepted in a message (RFC 5321 says 998, real senders send "
	  "more); longer lines get 552 5.3.4."),
	K("trusted_networks", KEY_STRLIST, NULL, 0, 0, CFG_OFF(smtp.trusted_networks),
	  "Client networks (\"192.0.2.0/24\", \"::1/128\") that may relay without "
	  "AUTH."),
	K("xclient_networks", KEY_STRLIST, NULL, 0, 0, CFG_OFF(smtp.xclient_networks),
	  "Client networks allowed to send XCLIENT (a proxy or test presenting the real "
	  "client)."),
	K("sender_login_check", KEY_BOOL, "true", 0, 0, CFG_OFF(smtp.sender_login_check),
	  "On submission, MAIL FROM must be the authenticated user's address or one of "
	  "its aliases (else 553 5.7.1)."),
	K("vrfy", KEY_BOOL, "false", 0, 0, CFG_OFF(smtp.vrfy),
	  "Let VRFY say whether a local address exists (250 or 550 5.1.1); off: 252 for "
	  "every address, so the server cannot be used to find users."),
	KEND
};

static const struct conf_section_def smtp_section = {
	"smtp", 0, NULL, "SMTP transactions (smtpd).", smtp_keys };

static const struct conf_key_def queue_keys[] = {
	K("relayhost", KEY_STR, NULL, 0, 0, CFG_OFF(queue.relayhost),
	  "Smart host (\"host[:port]\", port 25 by default, no MX lookup) that receives "
	  "all mail for other domains; unset: deliver by MX. Remote domains' relay_host "
	  "still wins."),
	K("relayhost_user", KEY_STR, NULL, 0, 0, CFG_OFF(queue.relayhost_user),
	  "User name for AUTH PLAIN at the smart host; unset: no AUTH."),
	K("relayhost_password", KEY_STR, NULL, 0, 0, CFG_OFF(queue.relayhost_password),
	  "Password for AUTH at the smart host."),
	K("relayhost_tls_required", KEY_BOOL, "true", 0, 0,
	  CFG_OFF(queue.relayhost_tls_required),
	  "Only talk to the smart host over TLS (STARTTLS); without it mail waits in the "
	  "queue."),
	K("tls_required_domains", KEY_STRLIST, NULL, 0, 0,
	  CFG_OFF(queue.tls_required_domains),
	  "Destination domains whose servers must offer STARTTLS (others: TLS when "
	  "offered)."),
	K("smtp_port", KEY_INT, "25", 1, 65535, CFG_OFF(queue.smtp_port),
	  "Port of the MX hosts (25; other values are for tests)."),
	K("max_lifetime", KEY_DURATION, "5d", 1, 60 * 86400, CFG_OFF(queue.max_lifetime_s),
	  "How long a message may wait for a recipient; then it is bounced."),
	K("delay_warning", KEY_DURATION, "4h", 0, 60 * 86400, CFG_OFF(queue.delay_warning_s),
	  "A delay notice goes to the sender after this long (DSN NOTIFY=DELAY, the "
	  "default); 0: never."),
	K("retry_min", KEY_DURATION, "5m", 1, 86400, CFG_OFF(queue.retry_min_s),
	  "Wait before the first retry after a temporary failure; doubles with each "
	  "attempt..."),
	K("retry_max", KEY_DURATION, "1h", 1, 86400, CFG_OFF(queue.retry_max_s),
	  "... up to this."),
	K("scan_interval", KEY_DURATION, "60s", 1, 3600, CFG_OFF(queue.scan_interval_s),
	  "How often the queue is searched for messages due (new mail starts at once)."),
	K("max_deliveries", KEY_INT, "20", 1, 10000, CFG_OFF(queue.max_deliveries),
	  "Messages in delivery at once per smtpd process (each may use one connection "
	  "per destination domain)."),
	K("destination_concurrency", KEY_INT, "5", 1, 1000,
	  CFG_OFF(queue.destination_concurrency),
	  "Outgoing connections at once to one destination domain."),
	K("connect_timeout", KEY_DURATION, "30s", 1, 600, CFG_OFF(queue.connect_timeout_s),
	  "Time allowed for a TCP connection to a next hop."),
	K("srs_secret", KEY_STR, NULL, 0, 0, CFG_OFF(queue.srs_secret),
	  "Secret for the Sender Rewriting Scheme: with it, mail forwarded to other "
	  "domains gets an SRS0 envelope sender, and bounces to SRS addresses go back "
	  "to the original sender; unset: no SRS."),
	K("srs_domain", KEY_STR, NULL, 0, 0, CFG_OFF(queue.srs_domain),
	  "Domain of SRS addresses (a local domain); unset: the first local domain."),
	KEND
};

static const struct conf_section_def queue_section = {
	"queue", 0, NULL, "The outbound queue and delivery to other servers (smtpd).",
	queue_keys };

_Static_assert(offsetof(struct warren_config, queue.n_tls_required_domains) ==
	       offsetof(struct warren_config, queue.tls_required_domains) + sizeof(void *),
	       "strlist layout");

static const struct conf_key_def limits_keys[] = {
	K("max_errors", KEY_INT, "20", 1, 1000, CFG_OFF(limits.max_errors),
	  "Bad or refused commands in one session (SMTP 5xx, IMAP BAD, POP3 -ERR) before "
	  "the server says goodbye and closes."),
	K("imap_max_literal", KEY_SIZE, "1M", 1 * KB, 1 * GB, CFG_OFF(limits.imap_max_literal),
	  "Literal bytes one IMAP command other than APPEND may carry in all (APPEND: "
	  "max_message_size more); larger ones get NO [TOOBIG]."),
	K("imap_max_literals", KEY_INT, "1000", 1, 1000000, CFG_OFF(limits.imap_max_literals),
	  "Literals in one IMAP command (MULTIAPPEND counts each message); more get "
	  "BAD and the command is dropped."),
	K("max_unauth_commands", KEY_INT, "50", 1, 100000, CFG_OFF(limits.max_unauth_commands),
	  "IMAP and POP3 commands a client may send before it has logged in (CAPABILITY, "
	  "STARTTLS, failed logins...), and SMTP commands on submission listeners before "
	  "AUTH (421 4.7.0; MX listeners are not limited); then the server says goodbye "
	  "and closes."),
	K("max_command_args", KEY_INT, "200000", 10, 1000000, CFG_OFF(limits.max_command_args),
	  "Arguments one command may have: IMAP atoms, strings and list elements at any "
	  "depth, each range of a sequence set counted (the set 1,3,5:9 counts 3); more get "
	  "IMAP BAD, POP3 -ERR, SMTP 501 5.5.4, counted as errors. The default lets the "
	  "longest UID sets of sparse UIDs through (Thunderbird, mbsync; imapd's tests "
	  "send 100000 ranges); lower it (e.g. 1000) to refuse huge sets and searches."),
	K("max_header_size", KEY_SIZE, "1M", 1 * KB, 64 * MB, CFG_OFF(limits.max_header_size),
	  "Bytes of a message's header section (up to the empty line) smtpd accepts; a "
	  "larger one is refused at the end of DATA/BDAT with 552 5.3.4 Message header "
	  "too large (as Exim's header_maxsize)."),
	K("max_mime_depth", KEY_INT, "100", 1, 1000, CFG_OFF(limits.max_mime_depth),
	  "MIME nesting levels parsed when a message is stored (the message itself is "
	  "level 0); deeper parts are kept as leaves (text/plain in BODYSTRUCTURE), the "
	  "message is not refused. Read at start."),
	KEND
};

static const struct conf_section_def limits_section = {
	"limits", 0, NULL, "Protocol limits every session has (docs/security-tls.md lists "
	"every limit, where it is set and its default).", limits_keys };

static const struct conf_key_def http_keys[] = {
	K("metrics_allow", KEY_STRLIST, "{\"127.0.0.0/8\", \"::1/128\"}", 0, 0,
	  CFG_OFF(http.metrics_allow),
	  "Client networks (\"192.0.2.0/24\", \"::1/128\") that may read the Prometheus "
	  "endpoint /metrics on http listeners; others get 403. Default: loopback only."),
	KEND
};

static const struct conf_section_def http_section = {
	"http", 0, NULL, "The HTTP daemon (httpd): client auto-configuration and metrics.",
	http_keys };

_Static_assert(offsetof(struct warren_config, http.n_metrics_allow) ==
	       offsetof(struct warren_config, http.metrics_allow) + sizeof(void *),
	       "strlist layout");

/* smtpd's policy chain (docs/policy.md): HELO checks, black and white lists, DNSBLs. */
static const struct conf_key_def helo_checks_keys[] = {
	K("require", KEY_BOOL, "true", 0, 0, CFG_OFF(helo_checks.require),
	  "MAIL, RCPT, DATA, BDAT and AUTH need a HELO/EHLO first (503 5.5.1); false "
	  "lets a client start a transaction without one."),
	K("reject_invalid", KEY_BOOL, "false", 0, 0, CFG_OFF(helo_checks.reject_invalid),
	  "From outside the trusted networks, refuse (at MAIL) a HELO name that is "
	  "neither a valid address literal nor a host name (501 5.5.2 Invalid name), "
	  "or a host name without a dot (504 5.5.2 need fully-qualified hostname)."),
	K("reject_our_name", KEY_BOOL, "false", 0, 0, CFG_OFF(helo_checks.reject_our_name),
	  "From outside the trusted networks, refuse (at MAIL) a HELO that gives our "
	  "own host name, one of our local domains, or the address literal of the "
	  "address the client connected to (554 5.7.1 You are not me)."),
	KEND
};

static const struct conf_section_def helo_checks_section = {
	"helo_checks", 0, NULL, "Checks of the HELO/EHLO name (smtpd, docs/policy.md).",
	helo_checks_keys };

static const struct conf_key_def lists_keys[] = {
	K("whitehosts", KEY_STRLIST, NULL, 0, 0, CFG_OFF(lists.whitehosts),
	  "Client networks (\"192.0.2.0/24\", \"2001:db8::/32\") that skip every "
	  "anti-spam check (lists, HELO checks, DNSBLs, SPF, greylisting...) but not "
	  "relay protection: they still may not relay without AUTH."),
	K("client_blacklist", KEY_STRLIST, NULL, 0, 0, CFG_OFF(lists.client_blacklist),
	  "Client networks refused at RCPT (554 5.7.1 <IP>: Client host rejected: "
	  "TEXT). An entry may be followed by a space and the reply's text."),
	K("helo_blacklist", KEY_STRLIST, NULL, 0, 0, CFG_OFF(lists.helo_blacklist),
	  "HELO names refused at RCPT (554 5.7.1 <NAME>: Helo command rejected: TEXT); "
	  "\".example.test\" matches every name under example.test. An entry may be "
	  "followed by a space and the reply's text."),
	K("helo_whitelist", KEY_STRLIST, NULL, 0, 0, CFG_OFF(lists.helo_whitelist),
	  "HELO names (as in helo_blacklist) whose sessions skip the anti-spam checks."),
	K("sender_blacklist", KEY_STRLIST, NULL, 0, 0, CFG_OFF(lists.sender_blacklist),
	  "Envelope senders refused at RCPT (554 5.7.1 <ADDR>: Sender address "
	  "rejected: TEXT): \"user@example.test\" one address, \"example.test\" or "
	  "\"@example.test\" a domain, \".example.test\" its subdomains. An entry may "
	  "be followed by a space and the reply's text."),
	K("sender_whitelist", KEY_STRLIST, NULL, 0, 0, CFG_OFF(lists.sender_whitelist),
	  "Envelope senders (as in sender_blacklist) whose transactions skip the "
	  "anti-spam checks."),
	K("recipient_blacklist", KEY_STRLIST, NULL, 0, 0, CFG_OFF(lists.recipient_blacklist),
	  "Recipients (as in sender_blacklist) refused at RCPT (554 5.7.1 <ADDR>: "
	  "Recipient address rejected: TEXT)."),
	K("recipient_whitelist", KEY_STRLIST, NULL, 0, 0, CFG_OFF(lists.recipient_whitelist),
	  "Recipients (as in sender_blacklist, e.g. \"postmaster@example.test\") that "
	  "skip the anti-spam checks of their RCPT, blacklists included."),
	K("reject_text", KEY_STR, "Access denied", 0, 0, CFG_OFF(lists.reject_text),
	  "Text of a blacklist refusal whose entry gives none."),
	KEND
};

_Static_assert(offsetof(struct warren_config, lists.n_whitehosts) ==
	       offsetof(struct warren_config, lists.whitehosts) + sizeof(void *), "strlist layout");
_Static_assert(offsetof(struct warren_config, lists.n_recipient_whitelist) ==
	       offsetof(struct warren_config, lists.recipient_whitelist) + sizeof(void *),
	       "strlist layout");

static const struct conf_section_def lists_section = {
	"lists", 0, NULL, "Black and white lists of smtpd's policy chain (docs/policy.md).",
	lists_keys };

static const char *const dnsbl_actions[] = { "reject", "tag", NULL };

static const struct conf_key_def dnsbl_keys[] = {
	K("sites", KEY_STRLIST, NULL, 0, 0, CFG_OFF(dnsbl.sites),
	  "DNSBL and DNSWL zones asked about the client address, in Postfix's "
	  "postscreen_dnsbl_sites form \"zone[=codes][*weight]\": codes are the "
	  "answers that count (\"127.0.0.2\", \"127.0.0.[2..11]\", "
	  "\"127.0.[0..255].[1;3]\"; default any 127.x.x.x), weight the points a "
	  "listing adds (default 1; negative for a whitelist such as "
	  "\"list.dnswl.test=127.0.[0..255].[1..3]*-2\"). All zones are asked at once."),
	K("rhsbl_sites", KEY_STRLIST, NULL, 0, 0, CFG_OFF(dnsbl.rhsbl_sites),
	  "Domain-based zones (RHSBL) asked about the envelope sender's domain, in the "
	  "same form; their points add to the same score."),
	K("threshold", KEY_INT, "1", 1, 1000, CFG_OFF(dnsbl.threshold),
	  "Score at which action is taken."),
	KE("action", "reject", dnsbl_actions, CFG_OFF(dnsbl.action),
	   "At the threshold: reject (554 5.7.1 Service unavailable; client [IP] blocked "
	   "using ZONE; and the zone's TXT text when it has one, at RCPT) or tag (an X-Warren-DNSBL header with the score and the "
	   "zones)."),
	K("cache_size", KEY_INT, "10000", 1, 10000000, CFG_OFF(dnsbl.cache_size),
	  "DNSBL answers each smtpd process keeps for their TTL."),
	K("enabled", KEY_BOOL, "true", 0, 0, CFG_OFF(dnsbl.enabled),
	  "false: no zone is asked (a domain's dnsbl { enabled = true } still asks for "
	  "its recipients)."),
	KEND
};

_Static_assert(offsetof(struct warren_config, dnsbl.n_sites) ==
	       offsetof(struct warren_config, dnsbl.sites) + sizeof(void *), "strlist layout");
_Static_assert(offsetof(struct warren_config, dnsbl.n_rhsbl_sites) ==
	       offsetof(struct warren_config, dnsbl.rhsbl_sites) + sizeof(void *),
	       "strlist layout");

static const struct conf_section_def dnsbl_section = {
	"dnsbl", 0, NULL, "DNS block and allow lists (DNSBL, DNSWL, RHSBL) of smtpd's policy "
	"chain (docs/policy.md).", dnsbl_keys };

_Static_assert(offsetof(struct warren_config, smtp.n_trusted_networks) ==
	       offsetof(struct warren_config, smtp.trusted_networks) + sizeof(void *),
	       "strlist layout");
_Static_assert(offsetof(struct warren_config, smtp.n_xclient_networks) ==
	       offsetof(struct warren_config, smtp.xclient_networks) + sizeof(void *),
	       "strlist layout");
_Static_assert(offsetof(struct conf_mailbox, n_forward) ==
	       offsetof(struct conf_mailbox, forward) + sizeof(void *), "strlist layout");

#define FLT_OFF(field) offsetof(struct conf_filter, field)

static const char *const filter_ons[] = { "header", "subject", "body", "filename", "type",
					  NULL };  /* enum conf_filter_on */
static const char *const filter_actions[] = { "reject", "tag", "discard", "quarantine",
					      "redirect", NULL };  /* enum conf_filter_action */

static const struct conf_key_def filter_keys[] = {
	KE("on", NULL, filter_ons, FLT_OFF(on),
	   "What the pattern is matched against: header (the field named by header, "
	   "RFC 2047-decoded, each occurrence), subject (the decoded Subject), body (each "
	   "text part, transfer- and charset-decoded to UTF-8, the first 1 MB of each), "
	   "filename (each attachment's file name) or type (each part's content type, "
	   "\"type/subtype\"). Unset: header when header is set."),
	K("header", KEY_STR, NULL, 0, 0, FLT_OFF(header),
	  "With on = header: the field name (\"X-Mailer\")."),
	K("match", KEY_STR, NULL, 0, 0, FLT_OFF(match),
	  "A PCRE2 pattern (UTF-8); it matches when found anywhere in the text. Required."),
	K("caseless", KEY_BOOL, "true", 0, 0, FLT_OFF(caseless),
	  "Match without regard to case."),
	KE("action", NULL, filter_actions, FLT_OFF(action),
	   "reject (550 5.7.1 with text), tag (tag_header and/or subject_prefix), discard "
	   "(250, delivered nowhere, logged), quarantine (delivered only to the "
	   "quarantine_mailbox of the recipients' domains) or redirect (delivered only to "
	   "redirect). Required."),
	K("text", KEY_STR, NULL, 0, 0, FLT_OFF(text),
	  "The reject reply's text and the reason in the log; unset: \"Message content "
	  "rejected\"."),
	K("tag_header", KEY_STR, NULL, 0, 0, FLT_OFF(tag_header),
	  "tag: a header field \"Name: value\" added to the message."),
	K("subject_prefix", KEY_STR, NULL, 0, 0, FLT_OFF(subject_prefix),
	  "tag: text put in front of the Subject (\"[SPAM] \"); not added twice."),
	K("redirect", KEY_STR, NULL, 0, 0, FLT_OFF(redirect),
	  "redirect: the address that gets the message instead of the recipients (a "
	  "mailbox of a local domain, or an outside address, through the queue)."),
	KEND
};

static const struct conf_section_def filter_section = {
	"filter", SECTION_MULTI, "a name for the rule (in the log)",
	"A content filter rule of smtpd, matched once per message after DATA; the rules "
	"run in file order, global ones first, then those of the recipients' domains, and "
	"the first that matches decides (docs/policy.md).", filter_keys };

static const struct conf_key_def rate_keys[] = {
	K("connections_per_ip", KEY_INT, "0", 0, 100000000, CFG_OFF(rate.connections_per_ip),
	  "SMTP connections from one client address per connection_window, counted in "
	  "the store for every smtpd process; beyond it the greeting is 421 4.7.0 and the "
	  "connection closes. 0: no limit."),
	K("connection_window", KEY_DURATION, "1m", 1, 86400, CFG_OFF(rate.connection_window_s),
	  "The window connections_per_ip counts in (fixed, from the first connection)."),
	K("messages_per_user", KEY_INT, "0", 0, 100000000, CFG_OFF(rate.messages_per_user),
	  "Transactions (MAIL FROM) of one authenticated user per user_window; beyond "
	  "it MAIL gets 451 4.7.1. 0: no limit."),
	K("recipients_per_user", KEY_INT, "0", 0, 100000000, CFG_OFF(rate.recipients_per_user),
	  "Recipients (RCPT TO) of one authenticated user per user_window; beyond it "
	  "RCPT gets 452 4.5.3. 0: no limit."),
	K("user_window", KEY_DURATION, "1h", 1, 30 * 86400, CFG_OFF(rate.user_window_s),
	  "The window messages_per_user and recipients_per_user count in."),
	K("exempt_networks", KEY_STRLIST, NULL, 0, 0, CFG_OFF(rate.exempt_networks),
	  "Client networks never counted nor limited."),
	KEND
};

_Static_assert(offsetof(struct warren_config, rate.n_exempt_networks) ==
	       offsetof(struct warren_config, rate.exempt_networks) + sizeof(void *),
	       "strlist layout");

static const struct conf_section_def rate_section = {
	"rate", 0, NULL, "smtpd's rate limits, shared by every smtpd process through the "
	"store (docs/policy.md).", rate_keys };

static const struct conf_key_def listener_keys[] = {
	K("address", KEY_STR, "0.0.0.0", 0, 0, LIS_OFF(address),
	  "IP address to listen on (IPv4 or IPv6; \"::\" for all IPv6 addresses)."),
	K("port", KEY_INT, NULL, 1, 65535, LIS_OFF(port), "TCP port. Required."),
	KE("service", NULL, services, LIS_OFF(service),
	   "What is spoken: smtp (inbound MX), submission (AUTH required), imap, pop3, "
	   "http. Required."),
	KE("tls", "none", tls_modes, LIS_OFF(tls),
	   "none, starttls (offered after the greeting) or implicit (TLS from the first "
	   "byte, as on 465, 993 and 995)."),
	K("tls_required", KEY_BOOL, "false", 0, 0, LIS_OFF(tls_required),
	  "With starttls: refuse authentication and mail transactions until TLS is up."),
	K("auth_plaintext", KEY_BOOL, "false", 0, 0, LIS_OFF(auth_plaintext),
	  "Allow passwords over a connection without TLS (only for trusted networks)."),
	K("max_connections", KEY_INT, "1000", 0, 1000000, LIS_OFF(max_connections),
	  "Connections at once per daemon process; 0: no limit."),
	K("max_connections_per_ip", KEY_INT, "50", 0, 1000000,
	  LIS_OFF(max_connections_per_ip), "Connections at once from one client address; 0: no limit."),
	K("idle_timeout", KEY_DURATION, "0", 0, 86400, LIS_OFF(idle_timeout_s),
	  "Close a connection that sends nothing for this long; 0: the protocol's "
	  "default (SMTP 5m, POP3 10m, IMAP 30m)."),
	K("max_line_length", KEY_INT, "0", 0, 64 * 1024 * 1024, LIS_OFF(max_line_length),
	  "Longest command line in bytes; 0: the protocol's default (SMTP 16384, POP3 "
	  "8192, IMAP 2 MB since webmail clients send huge UID sets)."),
	K("allow_networks", KEY_STRLIST, NULL, 0, 0, LIS_OFF(allow_networks),
	  "Client addresses or networks (\"192.0.2.0/24\", \"2001:db8::/32\") always "
	  "let in, even when deny_networks matches too. When set and deny_networks is "
	  "not, only these clients are let in."),
	K("deny_networks", KEY_STRLIST, NULL, 0, 0, LIS_OFF(deny_networks),
	  "Client addresses or networks refused at connect (\"0.0.0.0/0\" and \"::/0\" "
	  "with allow_networks for an allow-list). SMTP says 554 5.7.1 and closes."),
	KE("deny_action", "reject", deny_actions, LIS_OFF(deny_action),
	   "For refused clients: reject (the protocol's error greeting, then close) or "
	   "drop (close without a word)."),
	K("proxy_protocol", KEY_BOOL, "false", 0, 0, LIS_OFF(proxy_protocol),
	  "Every connection starts with a HAProxy PROXY protocol header (v1 or v2) whose "
	  "client address is used for logs, access rules and policy; connections from "
	  "outside proxy_trusted, and without a valid header, are closed."),
	K("proxy_trusted", KEY_STRLIST, NULL, 0, 0, LIS_OFF(proxy_trusted),
	  "Load balancer networks (\"127.0.0.1\", \"10.0.0.0/8\") that may send the PROXY "
	  "header; required with proxy_protocol."),
	K("proxy_timeout", KEY_DURATION_MS, "5s", 100, 60000, LIS_OFF(proxy_timeout_ms),
	  "Time allowed for the PROXY header to arrive."),
	K("tls_min_protocol", KEY_STR, NULL, 0, 0, LIS_OFF(tls_min_protocol),
	  "This listener's oldest TLS version (TLSv1.2 or TLSv1.3); unset: the tls block's."),
	K("tls_ciphers", KEY_STR, NULL, 0, 0, LIS_OFF(tls_ciphers),
	  "This listener's OpenSSL cipher list for TLS 1.2; unset: the tls block's."),
	K("tls_ciphersuites", KEY_STR, NULL, 0, 0, LIS_OFF(tls_ciphersuites),
	  "This listener's TLS 1.3 cipher suites; unset: the tls block's."),
	K("command_timeout", KEY_DURATION, "5m", 1, 86400, LIS_OFF(command_timeout_s),
	  "Once a client has started a command (or a message or literal), the server must "
	  "be able to read on within this long; arriving bytes alone do not restart it, so "
	  "a client trickling a byte a second (slowloris) is closed."),
	K("session_timeout", KEY_DURATION, "0", 0, 30 * 86400, LIS_OFF(session_timeout_s),
	  "Longest session, however busy; 0: the protocol's default (SMTP and POP3 1h, "
	  "IMAP 24h, HTTP 10m)."),
	KEND
};

#define ACC_OFF(field) offsetof(struct access_rules, field)

static const char *const switches[] = { "off", "on", "inherit", NULL };  /* enum access_switch */

_Static_assert(offsetof(struct access_rules, n_allow_networks) ==
	       offsetof(struct access_rules, allow_networks) + sizeof(void *), "strlist layout");
_Static_assert(offsetof(struct access_rules, n_deny_networks) ==
	       offsetof(struct access_rules, deny_networks) + sizeof(void *), "strlist layout");
_Static_assert(offsetof(struct access_rules, n_hours) ==
	       offsetof(struct access_rules, hours) + sizeof(void *), "strlist layout");

static const struct conf_key_def access_keys[] = {
	K("allow_networks", KEY_STRLIST, NULL, 0, 0, ACC_OFF(allow_networks),
	  "Client addresses or networks (\"192.0.2.0/24\", \"2001:db8::/32\") always let "
	  "in, even when deny_networks matches too; without deny_networks in the same "
	  "block only these may log in. An address a mailbox allows passes its "
	  "domain's lists too."),
	K("deny_networks", KEY_STRLIST, NULL, 0, 0, ACC_OFF(deny_networks),
	  "Client addresses or networks refused (\"0.0.0.0/0\" and \"::/0\" with "
	  "allow_networks for an allow-list with exceptions). The domain's apply to "
	  "every mailbox that does not allow the address itself."),
	KE("submission", "inherit", switches, ACC_OFF(submission),
	   "SMTP AUTH on submission listeners (sending mail): on, off, or inherit (a "
	   "mailbox: the domain's setting; a domain: on)."),
	KE("imap", "inherit", switches, ACC_OFF(imap),
	   "IMAP logins: on, off, or inherit (a mailbox: the domain's setting; a "
	   "domain: on)."),
	KE("pop3", "inherit", switches, ACC_OFF(pop3),
	   "POP3 logins: on, off, or inherit (a mailbox: the domain's setting; a "
	   "domain: on)."),
	K("hours", KEY_STRLIST, NULL, 0, 0, ACC_OFF(hours),
	  "Times logins are allowed, each \"[DAYS ]HH:MM-HH:MM\" with DAYS as Mon, "
	  "Mon-Fri or Mon,Wed,Sat-Sun (\"Mon-Fri 07:00-19:00\", \"Sat 09:00-12:00\"); "
	  "an end before the start runs past midnight. Unset: any time. A mailbox's "
	  "list replaces the domain's."),
	K("timezone", KEY_STR, NULL, 0, 0, ACC_OFF(timezone),
	  "IANA time zone the hours and dates are read in (\"Europe/Berlin\"); unset: "
	  "the mailbox's falls back to the domain's, then to the system's."),
	K("valid_from", KEY_STR, NULL, 0, 0, ACC_OFF(valid_from),
	  "No login before this date (\"YYYY-MM-DD\" or \"YYYY-MM-DD HH:MM\")."),
	K("valid_until", KEY_STR, NULL, 0, 0, ACC_OFF(valid_until),
	  "No login after this date (a date alone: through the end of that day; with "
	  "HH:MM: before that minute)."),
	KEND
};

static const struct conf_section_def access_section = {
	"access", 0, NULL,
	"Login rules (SMTP AUTH, IMAP, POP3) by client address, service and time, "
	"checked after the password (docs/security.md). A mailbox's block refines its "
	"domain's.", access_keys };

static const struct conf_key_def mailbox_keys[] = {
	K("password", KEY_HASH, NULL, 0, 0, MBX_OFF(password),
	  "Password hash from `warrenctl passwd` (yescrypt; bcrypt and SHA-512-crypt are "
	  "accepted too). Not needed in PAM domains."),
	K("quota", KEY_SIZE, "0", 0, LLONG_MAX, MBX_OFF(quota),
	  "Most bytes the mailbox may hold; 0: no limit."),
	K("max_message_size", KEY_SIZE, "0", 0, 4 * GB, MBX_OFF(max_message_size),
	  "Largest message accepted for this mailbox; 0: the domain's limit."),
	K("forward", KEY_STRLIST, NULL, 0, 0, MBX_OFF(forward),
	  "Addresses the mailbox's mail is forwarded to (through the outbound queue)."),
	K("forward_keep_copy", KEY_BOOL, "false", 0, 0, MBX_OFF(forward_keep_copy),
	  "With forward: also keep a copy in this mailbox."),
	SUB("imap", &mailbox_imap_section, MBX_OFF(imap)),
	SUB("access", &access_section, MBX_OFF(access)),
	KEND
};

static const struct conf_key_def alias_keys[] = {
	K("to", KEY_STRLIST, NULL, 0, 0, ALI_OFF(targets),
	  "Where the mail goes: local parts of this domain (mailboxes or other aliases) "
	  "or full addresses. Required."),
	KEND
};

static const struct conf_section_def mailbox_section = {
	"mailbox", SECTION_MULTI, "the local part (\"alice\" in alice@example.test)",
	"A user's mailbox.", mailbox_keys };
static const struct conf_section_def alias_section = {
	"alias", SECTION_MULTI, "the local part of the alias address",
	"An address that delivers to one or more other addresses.", alias_keys };

/* A domain's overrides of the policy sections (docs/policy.md "Per-domain
 * overrides"): a key left out keeps the global value. */
#define DSPF_OFF(field) offsetof(struct conf_spf, field)
#define DGREY_OFF(field) offsetof(struct conf_greylist, field)
#define DRBL_OFF(field) offsetof(struct conf_dnsbl, field)
#define DLST_OFF(field) offsetof(struct conf_lists, field)
#define DRATE_OFF(field) offsetof(struct conf_rate, field)
#define DSPF_ACTION(name_) \
	KE(#name_, NULL, spf_actions, DSPF_OFF(name_), \
	   "The action of a " #name_ " result for this domain's recipients.")

static const struct conf_key_def domain_spf_keys[] = {
	K("enabled", KEY_BOOL, NULL, 0, 0, DSPF_OFF(enabled),
	  "Check SPF for this domain's recipients (the lookup is made once at MAIL; "
	  "with any domain's spf { } the action is applied per recipient at RCPT)."),
	DSPF_ACTION(pass), DSPF_ACTION(fail), DSPF_ACTION(softfail), DSPF_ACTION(neutral),
	DSPF_ACTION(none), DSPF_ACTION(temperror), DSPF_ACTION(permerror),
	KEND
};

static const struct conf_key_def domain_greylist_keys[] = {
	K("enabled", KEY_BOOL, NULL, 0, 0, DGREY_OFF(enabled),
	  "Greylist RCPTs of this domain's recipients."),
	K("delay", KEY_DURATION, NULL, 1, 86400, DGREY_OFF(delay_s),
	  "greylist.delay for this domain's recipients."),
	K("retry_window", KEY_DURATION, NULL, 1, 7 * 86400, DGREY_OFF(retry_window_s),
	  "greylist.retry_window for this domain's recipients."),
	KEND
};

static const struct conf_key_def domain_dnsbl_keys[] = {
	K("enabled", KEY_BOOL, NULL, 0, 0, DRBL_OFF(enabled),
	  "Count the DNSBL score for this domain's recipients (the zones and the "
	  "lookups, once per session, are the global ones)."),
	K("threshold", KEY_INT, NULL, 1, 1000, DRBL_OFF(threshold),
	  "Score at which action is taken for this domain's recipients."),
	KE("action", NULL, dnsbl_actions, DRBL_OFF(action),
	   "reject or tag, for this domain's recipients."),
	KEND
};

static const struct conf_key_def domain_lists_keys[] = {
	K("client_blacklist", KEY_STRLIST, NULL, 0, 0, DLST_OFF(client_blacklist),
	  "Client networks refused at RCPT for this domain's recipients only, as in "
	  "lists.client_blacklist."),
	K("client_whitelist", KEY_STRLIST, NULL, 0, 0, DLST_OFF(client_whitelist),
	  "Client networks whose RCPTs to this domain skip the anti-spam checks."),
	K("sender_blacklist", KEY_STRLIST, NULL, 0, 0, DLST_OFF(sender_blacklist),
	  "Envelope senders refused at RCPT for this domain's recipients only, as in "
	  "lists.sender_blacklist."),
	K("sender_whitelist", KEY_STRLIST, NULL, 0, 0, DLST_OFF(sender_whitelist),
	  "Envelope senders whose RCPTs to this domain skip the anti-spam checks."),
	KEND
};

_Static_assert(offsetof(struct conf_lists, n_client_whitelist) ==
	       offsetof(struct conf_lists, client_whitelist) + sizeof(void *), "strlist layout");

static const struct conf_key_def domain_rate_keys[] = {
	K("messages_per_user", KEY_INT, NULL, 0, 100000000, DRATE_OFF(messages_per_user),
	  "rate.messages_per_user for this domain's authenticated users; 0: no limit."),
	K("recipients_per_user", KEY_INT, NULL, 0, 100000000, DRATE_OFF(recipients_per_user),
	  "rate.recipients_per_user for this domain's authenticated users; 0: no limit."),
	K("user_window", KEY_DURATION, NULL, 1, 30 * 86400, DRATE_OFF(user_window_s),
	  "rate.user_window for this domain's authenticated users."),
	KEND
};

static const struct conf_section_def domain_spf_section = {
	"spf", SECTION_OVERRIDE, NULL, "The domain's SPF settings over the global spf { }.",
	domain_spf_keys };
static const struct conf_section_def domain_greylist_section = {
	"greylist", SECTION_OVERRIDE, NULL, "The domain's greylisting over the global "
	"greylist { }.", domain_greylist_keys };
static const struct conf_section_def domain_dnsbl_section = {
	"dnsbl", SECTION_OVERRIDE, NULL, "The domain's DNSBL verdict over the global dnsbl { }.",
	domain_dnsbl_keys };
static const struct conf_section_def domain_lists_section = {
	"lists", SECTION_OVERRIDE, NULL, "Black and white lists for this domain's recipients, "
	"looked at after the global lists { }.", domain_lists_keys };
static const struct conf_section_def domain_rate_section = {
	"rate", SECTION_OVERRIDE, NULL, "The domain's users' rate limits over the global "
	"rate { }.", domain_rate_keys };

static const struct conf_key_def domain_keys[] = {
	KE("type", "local", domain_types, DOM_OFF(type),
	   "local (mail is stored here) or remote (accepted here and relayed to relay_host)."),
	KE("auth", "local", auth_backends, DOM_OFF(auth),
	   "Where passwords are checked: local (hashes in this file) or pam (the system "
	   "or Active Directory through a PAM stack)."),
	K("pam_service", KEY_STR, "warren", 0, 0, DOM_OFF(pam_service),
	  "PAM service name (a file in /etc/pam.d) for auth = pam."),
	KE("pam_user", "localpart", pam_users, DOM_OFF(pam_user),
	   "Name handed to PAM: localpart (\"alice\") or address (\"alice@example.test\")."),
	K("relay_host", KEY_STR, NULL, 0, 0, DOM_OFF(relay_host),
	  "For type = remote: the internal server (\"host[:port]\") mail is relayed to."),
	K("hostnames", KEY_STRLIST, NULL, 0, 0, DOM_OFF(hostnames),
	  "Host names clients use to reach this domain's mail (\"mail.example.org\"); "
	  "they select the domain's certificate."),
	K("max_message_size", KEY_SIZE, "0", 0, 4 * GB, DOM_OFF(max_message_size),
	  "Largest message accepted for the domain; 0: the global max_message_size."),
	K("catch_all", KEY_STR, NULL, 0, 0, DOM_OFF(catch_all),
	  "Where mail for unknown local parts goes: a mailbox or alias of the domain, or "
	  "a full address; unset: unknown users are refused (550 5.1.1)."),
	K("multidrop", KEY_STR, NULL, 0, 0, DOM_OFF(multidrop),
	  "A mailbox of the domain that receives all of the domain's mail, each message "
	  "keeping its envelope recipient (for POP3 SDPS or a downstream server)."),
	K("dkim_selector", KEY_STR, NULL, 0, 0, DOM_OFF(dkim_selector),
	  "DKIM selector: outbound mail from the domain is signed with dkim_key "
	  "(`warrenctl dkim keygen DOMAIN SELECTOR` makes both and prints the DNS "
	  "record)."),
	K("dkim_key", KEY_PATH, NULL, 0, 0, DOM_OFF(dkim_key),
	  "DKIM private key in PEM: RSA (rsa-sha256) or Ed25519 (ed25519-sha256)."),
	SUB("tls", &domain_tls_section, DOM_OFF(tls)),
	SUB("imap", &domain_imap_section, DOM_OFF(imap)),
	SUB("access", &access_section, DOM_OFF(access)),
	K("quarantine_mailbox", KEY_STR, NULL, 0, 0, DOM_OFF(quarantine_mailbox),
	  "A mailbox of the domain (its local part) that gets the messages a content "
	  "filter with action = quarantine holds back from the domain's recipients."),
	SUB("filter", &filter_section, 0),
	SUB("spf", &domain_spf_section, 0),
	SUB("greylist", &domain_greylist_section, 0),
	SUB("dnsbl", &domain_dnsbl_section, 0),
	SUB("lists", &domain_lists_section, 0),
	SUB("rate", &domain_rate_section, 0),
	SUB("mailbox", &mailbox_section, 0),
	SUB("alias", &alias_section, 0),
	KEND
};

static const struct conf_section_def listener_section = {
	"listener", SECTION_MULTI, "a name for the listener (\"smtp\", \"imaps\", ...)",
	"A socket the suite listens on and the protocol spoken there.", listener_keys };
static const struct conf_section_def domain_section = {
	"domain", SECTION_MULTI, "the domain name", "A mail domain.", domain_keys };

static const struct conf_key_def root_keys[] = {
	K("hostname", KEY_STR, NULL, 0, 0, CFG_OFF(hostname),
	  "This server's name in greetings and Received headers; unset: the system's "
	  "host name."),
	K("state_dir", KEY_PATH, "/var/lib/warren", 0, 0, CFG_OFF(state_dir),
	  "Where the store, queue and run-time files live."),
	K("user", KEY_STR, "warren", 0, 0, CFG_OFF(user),
	  "Unprivileged user the daemons switch to when started as root."),
	K("default_domain", KEY_STR, NULL, 0, 0, CFG_OFF(default_domain),
	  "Domain assumed for logins given without \"@domain\"."),
	K("max_message_size", KEY_SIZE, "50M", 1 * KB, 4 * GB, CFG_OFF(max_message_size),
	  "Largest message accepted (SMTP SIZE, IMAP APPENDLIMIT)."),
	SUB("log", &log_section, 0),
	SUB("dns", &dns_section, 0),
	SUB("auth", &auth_section, 0),
	SUB("security", &security_section, 0),
	SUB("spf", &spf_section, 0),
	SUB("greylist", &greylist_section, 0),
	SUB("smtp", &smtp_section, 0),
	SUB("queue", &queue_section, 0),
	SUB("http", &http_section, 0),
	SUB("limits", &limits_section, 0),
	SUB("rate", &rate_section, 0),
	SUB("filter", &filter_section, 0),
	SUB("helo_checks", &helo_checks_section, 0),
	SUB("lists", &lists_section, 0),
	SUB("dnsbl", &dnsbl_section, 0),
	SUB("tls", &tls_section, CFG_OFF(tls)),
	SUB("listener", &listener_section, 0),
	SUB("domain", &domain_section, 0),
	SUB("pop3", &pop3_section, 0),
	SUB("imap", &imap_section, 0),
	KEND
};

const struct conf_section_def conf_root_section = {
	"(top level)", 0, NULL,
	"Settings outside any block. `include(\"FILE\")` reads another file here; FILE "
	"may be a pattern such as \"domains/*.conf\" and is relative to the including "
	"file's folder.", root_keys };
