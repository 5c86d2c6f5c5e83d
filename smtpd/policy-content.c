/* policy-content.c — content filter rules (issue #5 item 7), the DATA stage.
 *
 * The rules (filter NAME { } blocks: the global ones, then those of the
 * recipients' domains, in file order) are compiled once per config snapshot
 * (conf/conf-filter.c). Once per message, after the whole message is spooled, a
 * job on the thread pool maps the spool, parses it with common/mime.h and matches
 * each rule against its target — a header field or the Subject (RFC 2047-decoded),
 * the text parts' bodies (transfer- and charset-decoded), attachments' file names,
 * parts' content types. The first rule that matches decides:
 *   reject      550 5.7.1 with the rule's text (logged by the chain);
 *   tag         a header and/or a subject prefix;
 *   discard     250, delivered nowhere;
 *   quarantine  delivered only to the quarantine_mailbox of the recipients' domains;
 *   redirect    delivered only to the rule's address.
 * Tag, quarantine and redirect rewrite the spool in the same job: a new file next
 * to it, renamed over it, so t->fd, t->spool_path and t->local_hdr_len (Return-Path
 * and Delivered-To, written for the new recipients) stay consistent.
 * Every match is logged as Postfix's cleanup logs header_checks actions:
 *   QID: discard: header Subject: win money from name[ip]; from=<> to=<> proto=ESMTP helo=<>: rule=NAME
 */
#include "smtpd/policy-checks.h"
#include "common/buf.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/mime.h"
#include "common/pool.h"
#include "storage/store.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes of each text part's body that are decoded and matched. */
#define CONTENT_SCAN_MAX (1024 * 1024)
/* Bytes of one decoded header value matched. */
#define CONTENT_HEADER_MAX (64 * 1024)
/* The matched text shown in the log. */
#define CONTENT_LOG_MAX 100
/* Rules of one message (global + the recipients' domains). */
#define CONTENT_RULES_MAX 1000

struct content_copy {
	const struct conf_mailbox *mailbox;
	const char *env_to;
};

struct content_job {
	struct policy_request *r;
	struct smtp_session *s;
	const struct warren_config *conf;
	char *spool_path;
	char *from;
	size_t local_hdr_len;
	const struct conf_filter *rules[CONTENT_RULES_MAX];
	size_t n_rules;
	/* the recipients, read-only in the job */
	struct content_copy *copies;
	size_t n_copies;
	char **exts;
	size_t n_exts;
	/* results */
	const struct conf_filter *hit;
	char what[CONTENT_LOG_MAX + 96];  /* "header Subject: text" */
	bool no_quarantine;               /* quarantine with no quarantine mailbox anywhere */
	struct content_copy *new_copies;  /* quarantine, redirect */
	size_t n_new_copies;
	char *new_ext;                    /* redirect to an outside address */
	size_t dropped;                   /* quarantine: recipients without a quarantine mailbox */
	int new_fd;                       /* the rewritten spool, or -1 */
	size_t new_local_hdr_len;
};

/* ---- matching ---- */

static bool rule_match(const struct conf_filter *f, const char *text, size_t len)
{
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(f->code, NULL);
	if (md == NULL)
		return false;
	int rc = pcre2_match(f->code, (PCRE2_SPTR)text, len, 0, 0, md, NULL);
	pcre2_match_data_free(md);
	return rc >= 0;
}

static void note_hit(struct content_job *j, const struct conf_filter *f, const char *kind,
		     const char *text, size_t len)
{
	char p[CONTENT_LOG_MAX + 1];
	j->hit = f;
	while (len > 0 && (*text == ' ' || *text == '\t')) {
		text++;
		len--;
	}
	log_printable(p, sizeof(p), text, len < CONTENT_LOG_MAX ? len : CONTENT_LOG_MAX);
	snprintf(j->what, sizeof(j->what), "%s %s", kind, p);
}

/* on = header or subject: every field of the top header with that name, decoded. */
static bool match_header(struct content_job *j, const struct conf_filter *f, const char *msg,
			 const struct mime_part *root, const char *name)
{
	struct mime_header_iter it;
	struct mime_field fld;
	struct buf b;
	bool hit = false;
	buf_init(&b, CONTENT_HEADER_MAX);
	mime_header_iter_init(&it, msg + root->header_offset, root->header_size);
	size_t nlen = strlen(name);
	while (!hit && mime_header_iter_next(&it, &fld)) {
		if (!fld.has_colon || fld.name_len != nlen || strncasecmp(fld.name, name, nlen) != 0)
			continue;
		buf_clear(&b);
		size_t vlen = fld.value_len < CONTENT_HEADER_MAX / 4 ? fld.value_len :
			CONTENT_HEADER_MAX / 4;
		mime_header_decode(fld.value, vlen, &b);
		/* the value without the blanks around it, so ^ and $ mean its ends */
		const char *v = buf_data(&b);
		size_t n = buf_len(&b);
		while (n > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			n--;
		}
		while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r' ||
				 v[n - 1] == '\n'))
			n--;
		if (rule_match(f, v != NULL ? v : "", n)) {
			char label[80];
			snprintf(label, sizeof(label), "header %.*s:", (int)(nlen < 60 ? nlen : 60),
				 fld.name);
			note_hit(j, f, label, v, n);
			hit = true;
		}
	}
	buf_free(&b);
	return hit;
}

static bool is_leaf(const struct mime_part *p)
{
	return !(p->flags & (MIME_PART_MULTIPART | MIME_PART_HAS_MESSAGE));
}

/* The file name of an attachment: Content-Disposition's filename, else
 * Content-Type's name (both decoded by the parser). */
static const char *part_filename(const struct mime_part *p)
{
	for (unsigned i = 0; i < p->disposition_param_count; i++)
		if (strcmp(p->disposition_params[i].name, "filename") == 0)
			return p->disposition_params[i].value;
	return mime_part_param(p, "name");
}

static bool match_body(struct content_job *j, const struct conf_filter *f, const char *msg,
		       const struct mime_part *root)
{
	bool hit = false;
	struct buf raw, text;
	buf_init(&raw, CONTENT_SCAN_MAX);
	buf_init(&text, 3 * CONTENT_SCAN_MAX + 16);
	for (const struct mime_part *p = root; p != NULL && !hit; p = mime_part_next(p)) {
		if (!is_leaf(p) || strcmp(p->type, "text") != 0)
			continue;
		const char *fn = part_filename(p);
		if (p->disposition != NULL && strcmp(p->disposition, "attachment") == 0 && fn != NULL)
			continue;   /* a text file attached: an attachment, not the message's text */
		size_t len = p->body_size < CONTENT_SCAN_MAX ? (size_t)p->body_size : CONTENT_SCAN_MAX;
		buf_clear(&raw);
		buf_clear(&text);
		if (mime_decode_transfer(p->encoding, msg + p->body_offset, len, &raw) < 0 &&
		    buf_len(&raw) == 0)
			buf_append(&raw, msg + p->body_offset, len);
		const char *err;
		const char *cs = mime_part_param(p, "charset");
		const char *data = buf_data(&raw);
		size_t dlen = buf_len(&raw);
		if (mime_charset_to_utf8(cs, buf_data(&raw), buf_len(&raw), &text, &err) == 0) {
			data = buf_data(&text);
			dlen = buf_len(&text);
		}
		if (data != NULL && rule_match(f, data, dlen)) {
			/* the log shows the line that matched */
			pcre2_match_data *md = pcre2_match_data_create_from_pattern(f->code, NULL);
			size_t at = 0;
			if (md != NULL && pcre2_match(f->code, (PCRE2_SPTR)data, dlen, 0, 0, md, NULL) >= 0)
				at = pcre2_get_ovector_pointer(md)[0];
			pcre2_match_data_free(md);
			size_t start = at, end = at;
			while (start > 0 && data[start - 1] != '\n')
				start--;
			while (end < dlen && data[end] != '\r' && data[end] != '\n')
				end++;
			note_hit(j, f, "body", data + start, end - start);
			hit = true;
		}
	}
	buf_free(&raw);
	buf_free(&text);
	return hit;
}

static bool match_parts(struct content_job *j, const struct conf_filter *f,
			const struct mime_part *root)
{
	char type[256];
	for (const struct mime_part *p = root; p != NULL; p = mime_part_next(p)) {
		if (f->on == CONF_FILTER_FILENAME) {
			const char *fn = part_filename(p);
			if (fn != NULL && rule_match(f, fn, strlen(fn))) {
				note_hit(j, f, "attachment", fn, strlen(fn));
				return true;
			}
		} else if (is_leaf(p) || (p->flags & MIME_PART_HAS_MESSAGE)) {
			int n = snprintf(type, sizeof(type), "%s/%s", p->type, p->subtype);
			if (n > 0 && (size_t)n < sizeof(type) && rule_match(f, type, (size_t)n)) {
				note_hit(j, f, "content-type", type, (size_t)n);
				return true;
			}
		}
	}
	return false;
}

static void match_rules(struct content_job *j, const char *msg, size_t len)
{
	struct pool *pool = pool_new(16384);
	struct mime_limits limits = { .max_depth = j->conf->limits.max_mime_depth };
	struct mime_part *root = mime_parse(pool, msg, len, &limits);
	for (size_t i = 0; i < j->n_rules && j->hit == NULL; i++) {
		const struct conf_filter *f = j->rules[i];
		switch (f->on) {
		case CONF_FILTER_HEADER:
			match_header(j, f, msg, root, f->header);
			break;
		case CONF_FILTER_SUBJECT:
			match_header(j, f, msg, root, "Subject");
			break;
		case CONF_FILTER_BODY:
			match_body(j, f, msg, root);
			break;
		default:
			match_parts(j, f, root);
			break;
		}
	}
	pool_free(&pool);
}

/* ---- the new recipients (quarantine, redirect) ---- */

static void add_new_copy(struct content_job *j, const struct conf_mailbox *mb, const char *env_to)
{
	for (size_t i = 0; i < j->n_new_copies; i++)
		if (j->new_copies[i].mailbox == mb)
			return;
	j->new_copies[j->n_new_copies++] = (struct content_copy){ mb, env_to };
}

static const struct conf_mailbox *quarantine_of(const struct conf_domain *d)
{
	if (d == NULL || d->type != CONF_DOMAIN_LOCAL || d->quarantine_mailbox == NULL)
		return NULL;
	return conf_find_mailbox(d, d->quarantine_mailbox);
}

static void new_recipients(struct content_job *j)
{
	const struct conf_filter *f = j->hit;
	j->new_copies = x_calloc(j->n_copies + j->n_exts + 1, sizeof(*j->new_copies));
	if (f->action == CONF_FILTER_REDIRECT) {
		const char *at = strrchr(f->redirect, '@');
		const struct conf_domain *d = conf_find_domain(j->conf, at + 1);
		const struct conf_mailbox *mb = NULL;
		if (d != NULL && d->type == CONF_DOMAIN_LOCAL) {
			char local[SMTP_LOCAL_MAX + 1];
			size_t n = (size_t)(at - f->redirect);
			if (n <= SMTP_LOCAL_MAX) {
				memcpy(local, f->redirect, n);
				local[n] = '\0';
				mb = conf_find_mailbox(d, local);
			}
		}
		if (mb != NULL)
			add_new_copy(j, mb, f->redirect);
		else
			j->new_ext = x_strdup(f->redirect);
		return;
	}
	/* quarantine: each recipient's domain's quarantine mailbox */
	for (size_t i = 0; i < j->n_copies; i++) {
		const struct conf_mailbox *q = quarantine_of(j->copies[i].mailbox->domain);
		if (q != NULL)
			add_new_copy(j, q, j->copies[i].env_to);
		else
			j->dropped++;
	}
	for (size_t i = 0; i < j->n_exts; i++) {
		const char *at = strrchr(j->exts[i], '@');
		const struct conf_mailbox *q =
			at != NULL ? quarantine_of(conf_find_domain(j->conf, at + 1)) : NULL;
		if (q != NULL)
			add_new_copy(j, q, j->exts[i]);
		else
			j->dropped++;
	}
	if (j->n_new_copies == 0)
		j->no_quarantine = true;
}

/* ---- rewriting the spool ---- */

static int write_str(int fd, const char *s)
{
	return fd_write_all(fd, s, strlen(s));
}

/* The message (after the old local headers) with the Subject prefixed. */
static int write_message(int fd, const char *msg, size_t len, const char *prefix)
{
	if (prefix == NULL)
		return fd_write_all(fd, msg, len);
	struct pool *pool = pool_new(8192);
	struct mime_part *root = mime_parse(pool, msg, len, NULL);
	struct mime_field fld;
	int ret;
	size_t hlen = (size_t)root->header_size;
	if (!mime_header_find(msg, hlen, "Subject", &fld)) {
		/* none: one is added at the end of the header */
		size_t end = hlen;
		if (end >= 2 && msg[end - 2] == '\r' && msg[end - 1] == '\n')
			end -= 2;
		else if (end >= 1 && msg[end - 1] == '\n')
			end -= 1;
		size_t plen = strlen(prefix);
		while (plen > 0 && prefix[plen - 1] == ' ')
			plen--;
		ret = fd_write_all(fd, msg, end) | write_str(fd, "Subject: ") |
			fd_write_all(fd, prefix, plen) | write_str(fd, "\r\n") |
			fd_write_all(fd, msg + end, len - end);
	} else {
		size_t voff = (size_t)(fld.value - msg);
		const char *v = fld.value;
		size_t skip = 0;
		while (skip < fld.value_len && (v[skip] == ' ' || v[skip] == '\t'))
			skip++;
		size_t plen = strlen(prefix);
		if (fld.value_len - skip >= plen && memcmp(v + skip, prefix, plen) == 0)
			ret = fd_write_all(fd, msg, len);   /* already tagged */
		else
			ret = fd_write_all(fd, msg, voff + skip) | write_str(fd, skip == 0 ? " " : "") |
				fd_write_all(fd, prefix, plen) |
				fd_write_all(fd, msg + voff + skip, len - voff - skip);
	}
	pool_free(&pool);
	return ret;
}

static const char *action_name(int action)
{
	static const char *const names[] = { "reject", "tag", "discard", "quarantine",
					     "redirect" };
	return action >= 0 && (size_t)action < sizeof(names) / sizeof(names[0]) ?
		names[action] : "?";
}

/* A new spool: Return-Path/Delivered-To for the recipients it goes to, the rule's
 * header, the message with the Subject prefixed; renamed over the old one. */
static int rewrite_spool(struct content_job *j, const char *msg, size_t len)
{
	const struct conf_filter *f = j->hit;
	bool moved = f->action == CONF_FILTER_QUARANTINE || f->action == CONF_FILTER_REDIRECT;
	const struct content_copy *copies = moved ? j->new_copies : j->copies;
	size_t n_copies = moved ? j->n_new_copies : j->n_copies;
	char path[4096];
	if (snprintf(path, sizeof(path), "%s.flt", j->spool_path) >= (int)sizeof(path))
		return STORE_EIO;
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error("content filter: create %s: %s", path, strerror(errno));
		return STORE_EIO;
	}
	struct buf h;
	buf_init(&h, 3 * SMTP_PATH_MAX + 2048);
	if (n_copies > 0) {
		buf_printf(&h, "Return-Path: <%s>\r\n", j->from);
		if (n_copies == 1)
			buf_printf(&h, "Delivered-To: %s\r\n", copies[0].mailbox->address);
	}
	j->new_local_hdr_len = buf_len(&h);
	if (f->tag_header != NULL)
		buf_printf(&h, "%s\r\n", f->tag_header);
	if (moved)
		buf_printf(&h, "X-Warren-Filter: %s (%s)\r\n", f->name, action_name(f->action));
	int ret = fd_write_all(fd, buf_data(&h), buf_len(&h)) |
		write_message(fd, msg, len, f->subject_prefix);
	buf_free(&h);
	if (ret != 0 || rename(path, j->spool_path) < 0) {
		log_error("content filter: write %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return STORE_EIO;
	}
	j->new_fd = fd;
	return STORE_OK;
}

/* ---- the job ---- */

static int content_work(void *arg)
{
	struct content_job *j = arg;
	int fd = open(j->spool_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return STORE_EIO;
	struct stat st;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < j->local_hdr_len) {
		close(fd);
		return STORE_EIO;
	}
	size_t size = (size_t)st.st_size;
	char *map = NULL;
	if (size > 0) {
		map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			close(fd);
			return STORE_EIO;
		}
	}
	close(fd);
	const char *msg = map != NULL ? map + j->local_hdr_len : "";
	size_t len = size - j->local_hdr_len;
	match_rules(j, msg, len);
	int ret = STORE_OK;
	if (j->hit != NULL) {
		int a = j->hit->action;
		if (a == CONF_FILTER_QUARANTINE || a == CONF_FILTER_REDIRECT)
			new_recipients(j);
		if ((a == CONF_FILTER_TAG || a == CONF_FILTER_QUARANTINE ||
		     a == CONF_FILTER_REDIRECT) && !j->no_quarantine)
			ret = rewrite_spool(j, msg, len);
	}
	if (map != NULL)
		munmap(map, size);
	return ret;
}

static void job_free(struct content_job *j)
{
	if (j->new_fd >= 0)
		close(j->new_fd);
	free(j->spool_path);
	free(j->from);
	free(j->copies);
	for (size_t i = 0; i < j->n_exts; i++)
		free(j->exts[i]);
	free(j->exts);
	free(j->new_copies);
	free(j->new_ext);
	free(j);
}

/* The recipients become the job's new ones (quarantine, redirect, discard). */
static void replace_recipients(struct smtp_txn *t, struct content_job *j)
{
	t->n_copies = 0;
	t->n_exts = 0;
	for (size_t i = 0; i < j->n_new_copies; i++) {
		if (t->n_copies == t->cap_copies) {
			t->cap_copies = t->cap_copies == 0 ? 8 : t->cap_copies * 2;
			t->copies = x_realloc(t->copies, t->cap_copies * sizeof(*t->copies));
		}
		t->copies[t->n_copies++] = (struct smtp_copy){
			j->new_copies[i].mailbox, pool_strdup(t->pool, j->new_copies[i].env_to),
			NULL, 0 };
	}
	if (j->new_ext != NULL) {
		if (t->cap_exts == 0) {
			t->cap_exts = 8;
			t->exts = x_realloc(t->exts, t->cap_exts * sizeof(*t->exts));
		}
		t->exts[t->n_exts++] = (struct smtp_ext){ pool_strdup(t->pool, j->new_ext), NULL, 0 };
	}
}

static void log_action(struct smtp_session *s, const struct content_job *j, const char *action,
		       const char *detail)
{
	const struct smtp_txn *t = s->txn;
	char pf[SMTP_PATH_MAX + 1], pt[SMTP_PATH_MAX + 1], helo[SMTP_HELO_MAX + 1];
	const char *to = t->first_rcpt != NULL ? t->first_rcpt : "";
	log_info_as("cleanup", "%s: %s: %s from %s[%s]; from=<%s> to=<%s> proto=%s helo=<%s>: "
		    "rule=%s%s%s", t->queue_id, action, j->what, s->client_name, s->client_ip,
		    log_printable(pf, sizeof(pf), t->from, strlen(t->from)),
		    log_printable(pt, sizeof(pt), to, strlen(to)), smtp_proto_name(s),
		    log_printable(helo, sizeof(helo), s->helo, strlen(s->helo)), j->hit->name,
		    detail[0] != '\0' ? " " : "", detail);
}

static void content_done(void *arg, int result)
{
	struct content_job *j = arg;
	struct policy_request *r = j->r;
	struct smtp_session *s = j->s;
	if (s->closed || s->txn == NULL) {
		job_free(j);
		policy_resume(r, POLICY_NEXT);   /* frees r: the client is gone */
		return;
	}
	struct smtp_txn *t = s->txn;
	const struct conf_filter *f = j->hit;
	if (result != STORE_OK) {
		log_warn("%s: content filter could not read or rewrite the message", t->queue_id);
		policy_reject(r, 451, "4.3.0 Error: local problem checking the message, try again "
			      "later");
		job_free(j);
		policy_resume(r, POLICY_REJECT);
		return;
	}
	if (f == NULL) {
		job_free(j);
		policy_resume(r, POLICY_NEXT);
		return;
	}
	const char *text = f->text != NULL ? f->text : "Message content rejected";
	if (f->action == CONF_FILTER_REJECT || j->no_quarantine) {
		log_action(s, j, "reject", j->no_quarantine ? "(quarantine: no quarantine_mailbox "
			   "in the recipients' domains)" : text);
		policy_reject(r, 550, "5.7.1 %s", text);
		job_free(j);
		policy_resume(r, POLICY_REJECT);
		return;
	}
	if (j->new_fd >= 0) {
		close(t->fd);
		t->fd = j->new_fd;
		j->new_fd = -1;
		t->local_hdr_len = j->new_local_hdr_len;
	}
	char detail[SMTP_PATH_MAX + 64] = "";
	switch (f->action) {
	case CONF_FILTER_TAG:
		log_action(s, j, "tag", f->text != NULL ? f->text : "");
		break;
	case CONF_FILTER_DISCARD:
		policy_session(s)->discard = true;
		j->n_new_copies = 0;
		replace_recipients(t, j);
		log_action(s, j, "discard", f->text != NULL ? f->text : "");
		break;
	case CONF_FILTER_QUARANTINE:
		replace_recipients(t, j);
		snprintf(detail, sizeof(detail), "(to %zu quarantine mailbox%s; %zu recipient%s "
			 "without one dropped)", j->n_new_copies, j->n_new_copies == 1 ? "" : "es",
			 j->dropped, j->dropped == 1 ? "" : "s");
		log_action(s, j, "quarantine", detail);
		break;
	case CONF_FILTER_REDIRECT:
		replace_recipients(t, j);
		log_action(s, j, "redirect", f->redirect);
		break;
	}
	job_free(j);
	policy_resume(r, POLICY_NEXT);
}

static void add_domain_rules(struct content_job *j, const struct conf_domain *d,
			     const struct conf_domain **seen, size_t *n_seen)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < *n_seen; i++)
		if (seen[i] == d)
			return;
	seen[(*n_seen)++] = d;
	for (size_t i = 0; i < d->n_filters && j->n_rules < CONTENT_RULES_MAX; i++)
		j->rules[j->n_rules++] = &d->filters[i];
}

enum policy_action policy_content_filter(struct policy_request *r)
{
	struct smtp_session *s = r->s;
	struct smtp_txn *t = s->txn;
	const struct warren_config *conf = s->conf;
	if (t == NULL || t->spool_path == NULL)
		return POLICY_NEXT;
	struct content_job *j = x_calloc(1, sizeof(*j));
	j->new_fd = -1;
	for (size_t i = 0; i < conf->n_filters && j->n_rules < CONTENT_RULES_MAX; i++)
		j->rules[j->n_rules++] = &conf->filters[i];
	/* the rules of each recipient's domain, once */
	size_t n_rcpt = t->n_copies + t->n_exts, n_seen = 0;
	const struct conf_domain **seen = x_calloc(n_rcpt + 1, sizeof(*seen));
	for (size_t i = 0; i < t->n_copies; i++)
		add_domain_rules(j, t->copies[i].mailbox->domain, seen, &n_seen);
	for (size_t i = 0; i < t->n_exts; i++) {
		const char *at = strrchr(t->exts[i].addr, '@');
		if (at != NULL)
			add_domain_rules(j, conf_find_domain(conf, at + 1), seen, &n_seen);
	}
	free(seen);
	if (j->n_rules == 0) {
		free(j);
		return POLICY_NEXT;
	}
	j->r = r;
	j->s = s;
	j->conf = conf;
	j->spool_path = x_strdup(t->spool_path);
	j->from = x_strdup(t->from);
	j->local_hdr_len = t->local_hdr_len;
	j->copies = x_calloc(t->n_copies + 1, sizeof(*j->copies));
	for (size_t i = 0; i < t->n_copies; i++)
		j->copies[i] = (struct content_copy){ t->copies[i].mailbox, t->copies[i].env_to };
	j->n_copies = t->n_copies;
	j->exts = x_calloc(t->n_exts + 1, sizeof(*j->exts));
	for (size_t i = 0; i < t->n_exts; i++)
		j->exts[i] = x_strdup(t->exts[i].addr);
	j->n_exts = t->n_exts;
	if (store_async(service_loop(s->svc), content_work, content_done, j) != 0) {
		job_free(j);
		policy_reject(r, 451, "4.3.0 Error: local problem checking the message, try again "
			      "later");
		return POLICY_REJECT;
	}
	return POLICY_PENDING;
}
