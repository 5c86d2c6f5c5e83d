/* smtp-data.c — DATA and BDAT (RFC 5321 4.1.1.4, RFC 3030): the message is spooled
 * to a file in state_dir/spool as it arrives (never held in memory), with our
 * trace headers in front. Limits (size, line length) are checked as bytes come in;
 * a message that breaks one is read to its end and refused. Mail that is not from an
 * authenticated client loses the Authentication-Results fields that carry our
 * authserv-id (smtp-authres.h) on its way to the spool. */
#include "smtpd/smtp-session.h"
#include "smtpd/smtp-authres.h"
#include "smtpd/policy.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/pool.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- the spool file ---- */

static void spool_flush(struct smtp_txn *t)
{
	if (t->wlen > 0 && !t->io_error && fd_write_all(t->fd, t->wbuf, t->wlen) < 0) {
		log_error("%s: write %s: %s", t->queue_id, t->spool_path, strerror(errno));
		t->io_error = true;
	}
	t->wlen = 0;
}

static void spool_write(struct smtp_txn *t, const char *data, size_t len)
{
	while (len > 0 && !t->io_error) {
		size_t n = SMTP_SPOOL_BUF - t->wlen;
		if (n > len)
			n = len;
		memcpy(t->wbuf + t->wlen, data, n);
		t->wlen += n;
		data += n;
		len -= n;
		if (t->wlen == SMTP_SPOOL_BUF)
			spool_flush(t);
	}
}

static void spool_write_cb(void *ctx, const char *data, size_t len)
{
	spool_write(ctx, data, len);
}

static void spool_printf(struct smtp_txn *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void spool_printf(struct smtp_txn *t, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		spool_write(t, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void rfc5322_date(char *buf, size_t size, time_t when)
{
	struct tm tm;
	localtime_r(&when, &tm);
	strftime(buf, size, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

static void write_trace_headers(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	char date[64];
	rfc5322_date(date, sizeof(date), time(NULL));
	/* final-delivery headers, only in the local copies (RFC 5321 4.4) */
	if (t->n_copies > 0) {
		spool_printf(t, "Return-Path: <%s>\r\n", t->from);
		if (t->n_copies == 1)
			spool_printf(t, "Delivered-To: %s\r\n", t->copies[0].mailbox->address);
	}
	t->local_hdr_len = t->wlen;
	for (const struct policy_header *h = t->policy_headers; h != NULL; h = h->next)
		spool_printf(t, "%s\r\n", h->text);
	spool_printf(t, "Received: from %s (%s [%s])\r\n", s->helo[0] != '\0' ? s->helo : "unknown",
		     s->client_name, s->client_ip);
	spool_printf(t, "\tby %s (Warren) with %s id %s", s->conf->hostname, smtp_proto_name(s),
		     t->queue_id);
	if (net_conn_is_tls(s->conn))
		spool_printf(t, "\r\n\t(using %s with cipher %s)", net_conn_tls_version(s->conn),
			     net_conn_tls_cipher(s->conn));
	if (t->rcpt_accepted == 1 && smtp_address_valid(t->first_rcpt, t->smtputf8))
		spool_printf(t, "\r\n\tfor <%s>", t->first_rcpt);
	spool_printf(t, ";\r\n\t%s\r\n", date);
}

static int spool_open(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/spool", s->conf->state_dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		log_error("%s: mkdir %s: %s", t->queue_id, dir, strerror(errno));
		return -1;
	}
	t->spool_path = pool_printf(t->pool, "%s/%s.%ld", dir, t->queue_id, (long)getpid());
	t->fd = open(t->spool_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (t->fd < 0) {
		log_error("%s: create %s: %s", t->queue_id, t->spool_path, strerror(errno));
		t->spool_path = NULL;
		return -1;
	}
	t->wbuf = x_malloc(SMTP_SPOOL_BUF);
	t->data_started = true;
	t->in_headers = true;
	t->hdr_bol = true;
	write_trace_headers(s);
	/* RFC 8601 5: only our own verdicts (written above) carry our authserv-id */
	if (s->auth_user == NULL)
		t->authres = authres_filter_new(t->pool, s->conf->hostname, t->queue_id,
						spool_write_cb, t);
	return 0;
}

/* ---- header scan: Message-ID for the log, Message-ID/Date for submission ---- */

static void insert_missing_headers(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	if (s->listener->service != CONF_SERVICE_SUBMISSION)
		return;
	if (!t->has_msgid) {
		struct timeval tv;
		gettimeofday(&tv, NULL);
		int n = snprintf(t->msgid, sizeof(t->msgid), "<%ld%06ld.%s@%s>", (long)tv.tv_sec,
				 (long)tv.tv_usec, t->queue_id, s->conf->hostname);
		t->msgid_len = n > 0 && (size_t)n < sizeof(t->msgid) ? (size_t)n : 0;
		spool_printf(t, "Message-ID: %s\r\n", t->msgid);
	}
	if (!t->has_date) {
		char date[64];
		rfc5322_date(date, sizeof(date), time(NULL));
		spool_printf(t, "Date: %s\r\n", date);
	}
}

static void header_name_done(struct smtp_txn *t)
{
	t->hdr_naming = false;
	t->hdr_name[t->hdr_name_len] = '\0';
	if (strcmp(t->hdr_name, "message-id") == 0) {
		t->has_msgid = true;
		t->hdr_in_msgid = true;
		t->msgid_len = 0;
	} else if (strcmp(t->hdr_name, "date") == 0) {
		t->has_date = true;
	} else if (strcmp(t->hdr_name, "received") == 0) {
		t->hops++;
	}
}

/* The header section ended (the empty line, or the end of a message without a body). */
static bool headers_end(struct smtp_txn *t)
{
	return t->authres != NULL && authres_end(t->authres);
}

static void scan_headers(struct smtp_session *s, const char *data, size_t len)
{
	struct smtp_txn *t = s->txn;
	size_t run = 0;   /* data[run..i) is still to be written */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)data[i];
		if (t->hdr_bol) {
			if (c == '\r' || c == '\n') {
				/* the empty line: the header ends here */
				spool_write(t, data + run, i - run);
				headers_end(t);
				insert_missing_headers(s);
				t->in_headers = false;
				spool_write(t, data + i, len - i);
				return;
			}
			t->hdr_bol = false;
			if (c == ' ' || c == '\t') {
				t->hdr_naming = false;   /* a folded continuation */
			} else {
				t->hdr_naming = true;
				t->hdr_in_msgid = false;
				t->hdr_name_len = 0;
			}
		}
		if (t->authres != NULL && authres_byte(t->authres, c)) {
			/* held or dropped by the filter: what came before goes first */
			spool_write(t, data + run, i - run);
			run = i + 1;
		}
		if (c == '\n') {
			t->hdr_bol = true;
			continue;
		}
		if (t->hdr_naming) {
			if (c == ':')
				header_name_done(t);
			else if (t->hdr_name_len < sizeof(t->hdr_name) - 1)
				t->hdr_name[t->hdr_name_len++] = (char)tolower(c);
			else
				t->hdr_naming = false;
		} else if (t->hdr_in_msgid && c != '\r' && t->msgid_len < SMTP_MSGID_LOG_MAX) {
			if (t->msgid_len > 0 || (c != ' ' && c != '\t'))
				t->msgid[t->msgid_len++] = (char)c;
		}
	}
	spool_write(t, data + run, len - run);
}

/* Bytes of data before the header's empty line (all when it is not in data);
 * bol: data starts a line. */
static size_t header_part(bool bol, const char *data, size_t len)
{
	if (bol && len > 0 && (data[0] == '\r' || data[0] == '\n'))
		return 0;
	for (size_t i = 0; i + 1 < len; i++)
		if (data[i] == '\n' && (data[i + 1] == '\r' || data[i + 1] == '\n'))
			return i + 1;
	return len;
}

static void body_emit(void *ctx, const char *data, size_t len)
{
	struct smtp_session *s = ctx;
	struct smtp_txn *t = s->txn;
	t->size += len;
	if (t->too_big || t->io_error || t->header_too_big)
		return;
	if (t->size > t->max_size) {
		t->too_big = true;
		return;
	}
	uint64_t max_header = s->conf->limits.max_header_size;
	if (t->in_headers && t->size > max_header &&
	    t->size - len + header_part(t->hdr_bol, data, len) > max_header) {
		t->header_too_big = true;   /* refused at the end (message_done) */
		return;
	}
	if (t->in_headers)
		scan_headers(s, data, len);
	else
		spool_write(t, data, len);
}

/* The message has ended: refuse it, or finish the spool file and deliver. */
/* After the DATA stage of the policy chain (content checks): deliver or refuse. */
static void data_done(struct smtp_session *s, struct policy_request *r)
{
	if (s == NULL)
		return;
	if (r->code == 0) {
		smtp_deliver(s);
		return;
	}
	smtp_reply(s, r->code, "%s", r->reply);
	smtp_txn_reset(s);
	smtp_enter_state(s, SMTP_STATE_HELO);
	if (r->disconnect) {
		smtp_enter_state(s, SMTP_STATE_QUIT);
		net_conn_close(s->conn);
	}
}

static void message_done(struct smtp_session *s, bool bare_refused, bool line_too_long)
{
	struct smtp_txn *t = s->txn;
	const char *qid = t->queue_id;
	if (bare_refused) {
		log_info("%s: reject: DATA from %s[%s]: 550 5.5.2 bare <CR> or <LF> in message "
			 "(SMTP smuggling protection); from=<%s> proto=%s helo=<%s>", qid,
			 s->client_name, s->client_ip, t->from, smtp_proto_name(s), s->helo);
		smtp_reply(s, 550, "5.5.2 Error: bare <CR> or <LF> received; lines must end in <CR><LF>");
	} else if (t->too_big) {
		log_info("%s: reject: %s from %s[%s]: 552 5.3.4 Message size exceeds fixed limit "
			 "(%llu bytes); from=<%s> proto=%s helo=<%s>", qid, t->chunking ? "BDAT" : "DATA",
			 s->client_name, s->client_ip, (unsigned long long)t->max_size, t->from,
			 smtp_proto_name(s), s->helo);
		smtp_reply(s, 552, "5.3.4 Error: message file too big");
	} else if (t->header_too_big) {
		log_info("%s: reject: %s from %s[%s]: 552 5.3.4 Message header too large (over "
			 "%llu bytes); from=<%s> proto=%s helo=<%s>", qid, t->chunking ? "BDAT" : "DATA",
			 s->client_name, s->client_ip,
			 (unsigned long long)s->conf->limits.max_header_size, t->from,
			 smtp_proto_name(s), s->helo);
		smtp_reply(s, 552, "5.3.4 Message header too large");
	} else if (t->hops > SMTP_HOPS_MAX) {
		log_info("%s: reject: %s from %s[%s]: 554 5.4.6 too many hops (%u Received headers, "
			 "a mail loop?); from=<%s> proto=%s helo=<%s>", qid,
			 t->chunking ? "BDAT" : "DATA", s->client_name, s->client_ip, t->hops, t->from,
			 smtp_proto_name(s), s->helo);
		smtp_reply(s, 554, "5.4.6 Error: too many hops (mail loop?)");
	} else if (line_too_long) {
		log_info("%s: reject: DATA from %s[%s]: 552 5.3.4 line longer than %u bytes; "
			 "from=<%s> proto=%s helo=<%s>", qid, s->client_name, s->client_ip,
			 (unsigned)s->conf->smtp.max_data_line, t->from, smtp_proto_name(s), s->helo);
		smtp_reply(s, 552, "5.3.4 Error: message line too long (over %u bytes)",
			   (unsigned)s->conf->smtp.max_data_line);
	} else {
		if (t->in_headers) {
			bool dropped = headers_end(t);
			if (!t->hdr_bol && !dropped)
				spool_write(t, "\r\n", 2);
			insert_missing_headers(s);
			t->in_headers = false;
		}
		spool_flush(t);
		if (t->io_error) {
			smtp_reply(s, 451, "4.3.0 Error: local problem writing the message, try again");
		} else {
			policy_run(s, POLICY_DATA, NULL, false, NULL, data_done);
			return;
		}
	}
	smtp_txn_reset(s);
	smtp_enter_state(s, SMTP_STATE_HELO);
}

/* ---- DATA ---- */

void smtp_cmd_data(struct smtp_session *s, const char *args)
{
	struct smtp_txn *t = s->txn;
	if (args[0] != '\0') {
		smtp_reply(s, 501, "5.5.4 Syntax: DATA");
		return;
	}
	if (t == NULL) {
		smtp_reply(s, 503, "5.5.1 Error: need RCPT command");
		return;
	}
	if (t->chunking) {
		smtp_reply(s, 503, "5.5.1 Error: DATA after BDAT");
		return;
	}
	if (t->body == SMTP_BODY_BINARYMIME) {
		/* RFC 3030 3: a BINARYMIME message can only be sent with BDAT */
		smtp_reply(s, 503, "5.5.1 Error: BODY=BINARYMIME needs BDAT");
		return;
	}
	if (smtp_txn_rcpts(t) == 0) {
		if (t->rcpt_tried > 0)
			smtp_reply(s, 554, "5.5.1 Error: no valid recipients");
		else
			smtp_reply(s, 503, "5.5.1 Error: need RCPT command");
		return;
	}
	if (spool_open(s) < 0) {
		smtp_reply(s, 451, "4.3.0 Error: local problem, try again later");
		return;
	}
	s->n_data++;
	smtp_dot_init(&t->dot, s->conf->smtp.bare_lf == CONF_BARE_LF_NORMALIZE,
		      s->conf->smtp.max_data_line);
	smtp_reply(s, 354, "End data with <CR><LF>.<CR><LF>");
	smtp_enter_state(s, SMTP_STATE_DATA);
}

/* ---- BDAT (CHUNKING) ---- */

static void bdat_chunk_done(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	if (s->bdat_discard) {
		/* the chunk had no transaction to go to */
		s->bdat_discard = false;
		smtp_enter_state(s, SMTP_STATE_HELO);
		if (t != NULL && smtp_txn_rcpts(t) == 0 && t->rcpt_tried > 0)
			smtp_reply(s, 554, "5.5.1 Error: no valid recipients");
		else
			smtp_reply(s, 503, "5.5.1 Error: need RCPT command");
		return;
	}
	if (t->too_big || t->io_error || t->bdat_last) {
		message_done(s, false, false);
		return;
	}
	smtp_enter_state(s, SMTP_STATE_HELO);
	smtp_reply(s, 250, "2.0.0 Ok: %llu octets received", (unsigned long long)t->size);
}

static int parse_bdat(const char *args, uint64_t *size_r, bool *last_r)
{
	uint64_t size = 0;
	size_t i = 0;
	for (; args[i] >= '0' && args[i] <= '9'; i++) {
		if (i >= 20 || size > (UINT64_MAX - 9) / 10)
			return -1;
		size = size * 10 + (uint64_t)(args[i] - '0');
	}
	if (i == 0)
		return -1;
	*last_r = false;
	if (args[i] == ' ') {
		const char *p = args + i;
		while (*p == ' ')
			p++;
		if (strcasecmp(p, "LAST") != 0)
			return -1;
		*last_r = true;
	} else if (args[i] != '\0') {
		return -1;
	}
	*size_r = size;
	return 0;
}

void smtp_cmd_bdat(struct smtp_session *s, const char *args)
{
	uint64_t size;
	bool last;
	if (parse_bdat(args, &size, &last) < 0) {
		/* the chunk's length is unknown: what follows cannot be read as commands */
		smtp_reply(s, 501, "5.5.4 Syntax: BDAT size [LAST]");
		smtp_enter_state(s, SMTP_STATE_QUIT);
		net_conn_close(s->conn);
		return;
	}
	s->n_bdat++;
	struct smtp_txn *t = s->txn;
	s->bdat_left = size;
	if (t == NULL || smtp_txn_rcpts(t) == 0) {
		s->bdat_discard = true;
	} else {
		if (!t->data_started) {
			if (spool_open(s) < 0)
				t->io_error = true;
			t->chunking = true;
			s->n_data++;
		}
		t->bdat_last = last;
	}
	smtp_enter_state(s, SMTP_STATE_BDAT);
	if (size == 0)
		bdat_chunk_done(s);
}

/* ---- reading message bytes ---- */

bool smtp_data_input(struct smtp_session *s)
{
	const char *data;
	size_t len = net_conn_input(s->conn, &data);
	struct smtp_txn *t = s->txn;
	if (s->state == SMTP_STATE_DATA) {
		if (len == 0)
			return false;
		size_t used = smtp_dot_feed(&t->dot, data, len, body_emit, s);
		net_conn_consume(s->conn, used);
		if (t->dot.state != SMTP_DOT_DONE)
			return false;
		message_done(s, t->dot.bare && !t->dot.normalize, t->dot.line_too_long);
		return true;
	}
	/* BDAT: exactly bdat_left bytes, taken as they are */
	size_t n = len < s->bdat_left ? len : (size_t)s->bdat_left;
	if (n == 0)
		return false;
	if (!s->bdat_discard)
		body_emit(s, data, n);
	net_conn_consume(s->conn, n);
	s->bdat_left -= n;
	if (s->bdat_left > 0)
		return false;
	bdat_chunk_done(s);
	return true;
}
