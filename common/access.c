/* access.c — the access rules of domains and mailboxes (see access.h). */
#include "common/access.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* ---- networks ---------------------------------------------------------------- */

/* Parses an address into 16 bytes; IPv4 (and IPv4-mapped IPv6) as family 4. */
static bool parse_addr(const char *s, int *family_r, unsigned char addr[16])
{
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, s, addr) == 1) {
		*family_r = 4;
		return true;
	}
	unsigned char v6[16];
	if (inet_pton(AF_INET6, s, v6) != 1)
		return false;
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (memcmp(v6, mapped, sizeof(mapped)) == 0) {
		memcpy(addr, v6 + 12, 4);
		*family_r = 4;
		return true;
	}
	memcpy(addr, v6, 16);
	*family_r = 6;
	return true;
}

static bool parse_net(const char *net, int *family_r, unsigned char addr[16], int *bits_r)
{
	char host[64];
	const char *slash = strchr(net, '/');
	size_t len = slash != NULL ? (size_t)(slash - net) : strlen(net);
	if (len == 0 || len >= sizeof(host))
		return false;
	memcpy(host, net, len);
	host[len] = '\0';
	if (!parse_addr(host, family_r, addr))
		return false;
	int max = *family_r == 4 ? 32 : 128;
	if (strchr(host, ':') != NULL && *family_r == 4)
		max = 32;    /* ::ffff:a.b.c.d/N is read as the IPv4 net */
	if (slash == NULL) {
		*bits_r = max;
		return true;
	}
	char *end;
	errno = 0;
	long bits = strtol(slash + 1, &end, 10);
	if (slash[1] == '\0' || *end != '\0' || errno != 0 || bits < 0 || bits > max ||
	    !isdigit((unsigned char)slash[1]))
		return false;
	*bits_r = (int)bits;
	return true;
}

static bool prefix_equal(const unsigned char *a, const unsigned char *b, int bits)
{
	int full = bits / 8, rest = bits % 8;
	if (memcmp(a, b, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

bool access_net_valid(const char *net)
{
	int family, bits;
	unsigned char addr[16];
	return parse_net(net, &family, addr, &bits);
}

bool access_net_match(const char *ip, const char *const *nets, size_t n)
{
	int family;
	unsigned char addr[16];
	if (ip == NULL || !parse_addr(ip, &family, addr))
		return false;
	for (size_t i = 0; i < n; i++) {
		int nf, bits;
		unsigned char net[16];
		if (parse_net(nets[i], &nf, net, &bits) && nf == family &&
		    prefix_equal(addr, net, bits))
			return true;
	}
	return false;
}

/* ---- hours ------------------------------------------------------------------- */

static const char *const day_names[7] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };

static int parse_day(const char **p)
{
	for (int d = 0; d < 7; d++) {
		if (strncasecmp(*p, day_names[d], 3) == 0 && !isalpha((unsigned char)(*p)[3])) {
			*p += 3;
			return d;
		}
	}
	return -1;
}

/* "HH:MM" into minutes; 24:00 only when end is allowed. */
static int parse_clock(const char **p, bool end_ok)
{
	const char *s = *p;
	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || s[2] != ':' ||
	    !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
		return -1;
	int h = (s[0] - '0') * 10 + (s[1] - '0');
	int m = (s[3] - '0') * 10 + (s[4] - '0');
	if (m > 59 || h > 24 || (h == 24 && (m != 0 || !end_ok)))
		return -1;
	*p = s + 5;
	return h * 60 + m;
}

struct window {
	unsigned days;      /* bit 1 << wday */
	int start, end;     /* minutes; end <= start: runs past midnight */
};

static int parse_window(const char *s, struct window *w, const char **error_r)
{
	const char *p = s;
	while (*p == ' ')
		p++;
	w->days = 0;
	if (isalpha((unsigned char)*p)) {
		for (;;) {
			int first = parse_day(&p);
			if (first < 0) {
				*error_r = "a day is Mon, Tue, Wed, Thu, Fri, Sat or Sun";
				return -1;
			}
			int last = first;
			if (*p == '-') {
				p++;
				last = parse_day(&p);
				if (last < 0) {
					*error_r = "a day range is written as Mon-Fri";
					return -1;
				}
			}
			for (int d = first;; d = (d + 1) % 7) {
				w->days |= 1u << d;
				if (d == last)
					break;
			}
			if (*p != ',')
				break;
			p++;
		}
		if (*p != ' ') {
			*error_r = "days are followed by a space and HH:MM-HH:MM";
			return -1;
		}
		while (*p == ' ')
			p++;
	} else {
		w->days = 0x7f;
	}
	w->start = parse_clock(&p, false);
	if (w->start < 0 || *p != '-') {
		*error_r = "hours are written as HH:MM-HH:MM (00:00 to 24:00)";
		return -1;
	}
	p++;
	w->end = parse_clock(&p, true);
	if (w->end < 0) {
		*error_r = "hours are written as HH:MM-HH:MM (00:00 to 24:00)";
		return -1;
	}
	while (*p == ' ')
		p++;
	if (*p != '\0') {
		*error_r = "unexpected text after the hours";
		return -1;
	}
	if (w->start == w->end) {
		*error_r = "the window is empty (start equals end); 00:00-24:00 is the whole day";
		return -1;
	}
	return 0;
}

int access_hours_valid(const char *window, const char **error_r)
{
	struct window w;
	return parse_window(window, &w, error_r);
}

bool access_hours_match(const char *window, int wday, int minute)
{
	struct window w;
	const char *err;
	if (parse_window(window, &w, &err) < 0)
		return false;
	if (w.start < w.end)
		return (w.days & (1u << wday)) && minute >= w.start && minute < w.end;
	/* past midnight: the evening of a listed day or the morning after it */
	int yesterday = (wday + 6) % 7;
	return ((w.days & (1u << wday)) && minute >= w.start) ||
	       ((w.days & (1u << yesterday)) && minute < w.end);
}

/* ---- dates --------------------------------------------------------------------- */

/* YYYYMMDDHHMM; *has_time_r tells whether HH:MM was written. */
static bool parse_date(const char *s, int64_t *key_r, bool *has_time_r)
{
	int y, mo, d, h = 0, mi = 0, n = 0;
	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
		return false;
	*has_time_r = false;
	if (s[10] != '\0') {
		int n2 = 0;
		if (s[10] != ' ' || sscanf(s + 11, "%2d:%2d%n", &h, &mi, &n2) != 2 || n2 != 5 ||
		    s[16] != '\0')
			return false;
		*has_time_r = true;
	}
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || h < 0 ||
	    mi < 0)
		return false;
	*key_r = ((((int64_t)y * 100 + mo) * 100 + d) * 100 + h) * 100 + mi;
	return true;
}

bool access_date_valid(const char *date)
{
	int64_t key;
	bool has_time;
	return parse_date(date, &key, &has_time);
}

/* ---- time zones (TZif, RFC 8536) ----------------------------------------------- */

static int64_t be(const unsigned char *p, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v = (v << 8) | p[i];
	if (bytes == 4)
		return (int32_t)(uint32_t)v;
	return (int64_t)v;
}

/* The offset at t from a TZif image: the v2 (64-bit) data when present. After
 * the last transition the last one's type stays (Debian's files list them to
 * 2037); before the first, the first standard-time type. */
static int tzif_offset(const unsigned char *buf, size_t len, int64_t t, int *offset_r)
{
	const unsigned char *p = buf;
	size_t left = len;
	int tbytes = 4;
	for (int pass = 0; pass < 2; pass++) {
		if (left < 44 || memcmp(p, "TZif", 4) != 0)
			return -1;
		uint64_t isut = (uint32_t)be(p + 20, 4), isstd = (uint32_t)be(p + 24, 4);
		uint64_t leap = (uint32_t)be(p + 28, 4), timecnt = (uint32_t)be(p + 32, 4);
		uint64_t typecnt = (uint32_t)be(p + 36, 4), charcnt = (uint32_t)be(p + 40, 4);
		uint64_t size = timecnt * (uint64_t)tbytes + timecnt + typecnt * 6 + charcnt +
				leap * (uint64_t)(tbytes + 4) + isstd + isut;
		if (typecnt == 0 || size > left - 44)
			return -1;
		if (pass == 0 && p[4] >= '2') {
			p += 44 + size;
			left -= 44 + size;
			tbytes = 8;
			continue;
		}
		const unsigned char *times = p + 44;
		const unsigned char *idx = times + timecnt * (uint64_t)tbytes;
		const unsigned char *types = idx + timecnt;
		uint64_t type = 0;
		for (uint64_t i = 0; i < typecnt; i++) {
			if (types[i * 6 + 4] == 0) {   /* first standard time */
				type = i;
				break;
			}
		}
		for (uint64_t i = 0; i < timecnt; i++) {
			if (be(times + i * (uint64_t)tbytes, tbytes) > t)
				break;
			type = idx[i];
		}
		if (type >= typecnt)
			return -1;
		*offset_r = (int)be(types + type * 6, 4);
		return 0;
	}
	return -1;
}

int access_tz_offset(const char *zone, int64_t t, int *offset_r)
{
	char path[512];
	if (zone == NULL) {
		snprintf(path, sizeof(path), "/etc/localtime");
	} else {
		/* an IANA name: letters, digits, '/', '_', '-', '+'; no "..", not absolute */
		if (zone[0] == '\0' || zone[0] == '/' || strstr(zone, "..") != NULL ||
		    strlen(zone) > 200)
			return -1;
		for (const char *c = zone; *c != '\0'; c++)
			if (!isalnum((unsigned char)*c) && strchr("/_-+", *c) == NULL)
				return -1;
		if (strcmp(zone, "UTC") == 0) {
			*offset_r = 0;
			return 0;
		}
		snprintf(path, sizeof(path), "%s/%s", ACCESS_ZONEINFO_DIR, zone);
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (zone == NULL) {       /* no system zone: UTC */
			*offset_r = 0;
			return 0;
		}
		return -1;
	}
	unsigned char *buf = malloc(ACCESS_TZFILE_MAX);
	size_t len = 0;
	ssize_t n;
	while (buf != NULL && len < ACCESS_TZFILE_MAX &&
	       (n = read(fd, buf + len, ACCESS_TZFILE_MAX - len)) > 0)
		len += (size_t)n;
	close(fd);
	int ret = buf != NULL ? tzif_offset(buf, len, t, offset_r) : -1;
	free(buf);
	return ret;
}

/* ---- the decision ---------------------------------------------------------------- */

bool access_rules_empty(const struct access_rules *r)
{
	return r == NULL ||
	       (r->n_allow_networks == 0 && r->n_deny_networks == 0 &&
		r->submission == ACCESS_INHERIT && r->imap == ACCESS_INHERIT &&
		r->pop3 == ACCESS_INHERIT && r->n_hours == 0 && r->timezone == NULL &&
		r->valid_from == NULL && r->valid_until == NULL);
}

static int service_switch(const struct access_rules *r, enum access_service service)
{
	if (r == NULL)
		return ACCESS_INHERIT;
	switch (service) {
	case ACCESS_SUBMISSION:
		return r->submission;
	case ACCESS_IMAP:
		return r->imap;
	case ACCESS_POP3:
		return r->pop3;
	}
	return ACCESS_INHERIT;
}

static const char *const service_keys[] = { "submission", "imap", "pop3" };

struct level {
	const struct access_rules *rules;
	const char *what;    /* "domain example.test" */
};

static enum access_verdict refuse(enum access_verdict v, const struct level *l,
				  const char *rule, char *out, size_t size)
{
	snprintf(out, size, "%s %s", l->what, rule);
	return v;
}

/* One level's address lists: 1 let in (allow_networks), -1 refused (rule named),
 * 0 no decision. allow_networks always lets in; deny_networks refuses; an allow
 * list without a deny list is an allow-list. */
static int level_networks(const struct level *l, const char *ip, char *rule, size_t size)
{
	const struct access_rules *r = l->rules;
	if (r == NULL)
		return 0;
	if (r->n_allow_networks > 0 && access_net_match(ip, r->allow_networks, r->n_allow_networks))
		return 1;
	if (access_net_match(ip, r->deny_networks, r->n_deny_networks)) {
		refuse(ACCESS_DENY, l, "deny_networks", rule, size);
		return -1;
	}
	if (r->n_allow_networks > 0 && r->n_deny_networks == 0) {
		refuse(ACCESS_DENY, l, "allow_networks", rule, size);
		return -1;
	}
	return 0;
}

enum access_verdict access_check(const struct access_rules *domain, const char *domain_name,
				 const struct access_rules *mailbox, const char *mailbox_name,
				 const char *ip, enum access_service service, int64_t now,
				 char *rule_r, size_t rule_size)
{
	char dwhat[ACCESS_RULE_MAX / 2], mwhat[ACCESS_RULE_MAX / 2];
	snprintf(dwhat, sizeof(dwhat), "domain %s", domain_name != NULL ? domain_name : "?");
	snprintf(mwhat, sizeof(mwhat), "mailbox %s", mailbox_name != NULL ? mailbox_name : "?");
	struct level d = { domain, dwhat }, m = { mailbox, mwhat };
	rule_r[0] = '\0';

	/* service: the mailbox's word, else the domain's, else on */
	int sw = service_switch(mailbox, service);
	const struct level *by = &m;
	if (sw == ACCESS_INHERIT) {
		sw = service_switch(domain, service);
		by = &d;
	}
	if (sw == ACCESS_OFF)
		return refuse(ACCESS_SERVICE_OFF, by, service_keys[service], rule_r, rule_size);

	/* which level each time rule comes from */
	const struct level *tz_l = mailbox != NULL && mailbox->timezone != NULL ? &m : &d;
	const char *zone = tz_l->rules != NULL ? tz_l->rules->timezone : NULL;
	const struct level *from_l = mailbox != NULL && mailbox->valid_from != NULL ? &m : &d;
	const struct level *until_l = mailbox != NULL && mailbox->valid_until != NULL ? &m : &d;
	const struct level *hours_l = mailbox != NULL && mailbox->n_hours > 0 ? &m : &d;
	const char *from = from_l->rules != NULL ? from_l->rules->valid_from : NULL;
	const char *until = until_l->rules != NULL ? until_l->rules->valid_until : NULL;
	size_t n_hours = hours_l->rules != NULL ? hours_l->rules->n_hours : 0;

	struct tm lt;
	bool have_lt = false;
	if (from != NULL || until != NULL || n_hours > 0) {
		int offset;
		if (access_tz_offset(zone, now, &offset) < 0)
			return refuse(ACCESS_DENY, tz_l, "timezone (cannot be read)", rule_r,
				      rule_size);
		time_t local = (time_t)(now + offset);
		have_lt = gmtime_r(&local, &lt) != NULL;
		if (!have_lt)
			return refuse(ACCESS_DENY, tz_l, "timezone", rule_r, rule_size);
	}
	int64_t now_key = 0;
	if (have_lt)
		now_key = (((((int64_t)lt.tm_year + 1900) * 100 + lt.tm_mon + 1) * 100 +
			    lt.tm_mday) * 100 + lt.tm_hour) * 100 + lt.tm_min;
	int64_t key;
	bool has_time;
	if (from != NULL && (!parse_date(from, &key, &has_time) || now_key < key))
		return refuse(ACCESS_DENY, from_l, "valid_from", rule_r, rule_size);
	if (until != NULL) {
		if (!parse_date(until, &key, &has_time))
			return refuse(ACCESS_DENY, until_l, "valid_until", rule_r, rule_size);
		bool over = has_time ? now_key >= key : now_key / 10000 > key / 10000;
		if (over)
			return refuse(ACCESS_DENY, until_l, "valid_until", rule_r, rule_size);
	}

	/* networks: each level read as a listener's lists, the mailbox's first; an
	 * address the mailbox allows passes the domain's lists too */
	int net = level_networks(&m, ip, rule_r, rule_size);
	if (net == 0)
		net = level_networks(&d, ip, rule_r, rule_size);
	if (net < 0)
		return ACCESS_DENY;

	if (n_hours > 0) {
		int minute = lt.tm_hour * 60 + lt.tm_min;
		for (size_t i = 0; i < n_hours; i++)
			if (access_hours_match(hours_l->rules->hours[i], lt.tm_wday, minute))
				return ACCESS_ALLOW;
		return refuse(ACCESS_DENY, hours_l, "hours", rule_r, rule_size);
	}
	return ACCESS_ALLOW;
}
