/* out-bounce.c — delivery status notifications (RFC 3464 inside an RFC 6522
 * multipart/report): a human-readable part, the message/delivery-status part
 * with one block per recipient, and the original message's headers
 * (text/rfc822-headers) or, with RET=FULL, the whole message (message/rfc822).
 * Sent from the null sender, so they are never bounced themselves. */
#include "smtpd/queue.h"
#include "common/buf.h"
#include "common/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void rfc5322_date(int64_t t, char *out, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;
	localtime_r(&tt, &tm);
	strftime(out, size, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* The host of "host[addr]:port", or NULL for local deliveries. */
static void remote_host(const char *remote, char *out, size_t size)
{
	const char *br = strchr(remote, '[');
	size_t len = br != NULL ? (size_t)(br - remote) : strlen(remote);
	if (strcmp(remote, "local") == 0)
		len = 0;
	snprintf(out, size, "%.*s", (int)len, remote);
}

/* End of the header section (the offset of the empty line), or len. */
static size_t header_end(const char *msg, size_t len)
{
	if (len >= 2 && msg[0] == '\r' && msg[1] == '\n')
		return 0;
	for (size_t i = 0; i + 3 < len; i++)
		if (msg[i] == '\r' && msg[i + 1] == '\n' && msg[i + 2] == '\r' && msg[i + 3] == '\n')
			return i + 2;
	return len;
}

char *out_bounce_build(const struct qdelivery *d, const bool *which, const char *action,
		       size_t *len_r)
{
	const struct queue_msg *m = &d->msg;
	const char *host = d->conf->hostname;
	struct buf b = BUF_INIT(SIZE_MAX);
	int64_t now = (int64_t)time(NULL);
	char date[64], arrival[64], boundary[80];
	rfc5322_date(now, date, sizeof(date));
	rfc5322_date(m->created, arrival, sizeof(arrival));
	snprintf(boundary, sizeof(boundary), "%s.%lld/%s", m->id, (long long)now, host);
	bool failed = strcmp(action, "failed") == 0;
	bool delayed = strcmp(action, "delayed") == 0;
	const char *subject = failed ? "Undelivered Mail Returned to Sender" :
		delayed ? "Delayed Mail (still being retried)" :
		"Successful Mail Delivery Report";

	buf_printf(&b, "From: MAILER-DAEMON@%s (Mail Delivery System)\r\n"
		   "To: <%s>\r\nSubject: %s\r\nDate: %s\r\n"
		   "Message-ID: <%s.%lld.%s@%s>\r\nAuto-Submitted: auto-replied\r\n"
		   "MIME-Version: 1.0\r\n"
		   "Content-Type: multipart/report; report-type=delivery-status;\r\n"
		   "\tboundary=\"%s\"\r\n\r\n"
		   "This is a MIME-encapsulated message.\r\n\r\n",
		   host, m->from, subject, date, m->id, (long long)now, action, host, boundary);

	/* 1: for people */
	buf_printf(&b, "--%s\r\nContent-Description: Notification\r\n"
		   "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
		   "This is the mail system at host %s.\r\n\r\n", boundary, host);
	if (failed)
		buf_append_str(&b, "I'm sorry to have to inform you that your message could not\r\n"
			       "be delivered to one or more recipients. It's attached below.\r\n");
	else if (delayed)
		buf_append_str(&b, "Your message could not be delivered yet to one or more\r\n"
			       "recipients. It will be retried; you do not need to send it again.\r\n");
	else
		buf_append_str(&b, "Your message was successfully delivered to the destination(s)\r\n"
			       "listed below.\r\n");
	buf_append_str(&b, "\r\n");
	for (size_t i = 0; i < m->n_rcpts; i++)
		if (which[i])
			buf_printf(&b, "<%s>: %s\r\n", m->rcpts[i].addr, m->rcpts[i].reply);
	buf_append_str(&b, "\r\n");

	/* 2: for programs (RFC 3464 2.2, 2.3) */
	buf_printf(&b, "--%s\r\nContent-Description: Delivery report\r\n"
		   "Content-Type: message/delivery-status\r\n\r\n"
		   "Reporting-MTA: dns; %s\r\nX-Warren-Queue-ID: %s\r\n", boundary, host, m->id);
	if (m->envid[0] != '\0')
		buf_printf(&b, "Original-Envelope-Id: %s\r\n", m->envid);
	buf_printf(&b, "Arrival-Date: %s\r\n", arrival);
	for (size_t i = 0; i < m->n_rcpts; i++) {
		if (!which[i])
			continue;
		const struct queue_rcpt *r = &m->rcpts[i];
		char rhost[QUEUE_HOST_MAX + 1], last[64];
		remote_host(r->remote, rhost, sizeof(rhost));
		rfc5322_date(r->last_attempt != 0 ? r->last_attempt : now, last, sizeof(last));
		buf_printf(&b, "\r\nFinal-Recipient: rfc822; %s\r\n", r->addr);
		if (r->orcpt[0] != '\0') {
			const char *semi = strchr(r->orcpt, ';');
			buf_printf(&b, "Original-Recipient: rfc822; %s\r\n",
				   semi != NULL ? semi + 1 : r->orcpt);
		}
		const char *act = action;
		if (!failed && !delayed && strcmp(rhost, "") != 0)
			act = "relayed";   /* handed to a server that does not do DSN */
		buf_printf(&b, "Action: %s\r\nStatus: %s\r\n", act,
			   r->status[0] ? r->status : (failed ? "5.0.0" : delayed ? "4.0.0" : "2.0.0"));
		if (rhost[0] != '\0')
			buf_printf(&b, "Remote-MTA: dns; %s\r\n", rhost);
		if (r->code != 0 && r->reply[0] != '\0')
			buf_printf(&b, "Diagnostic-Code: smtp; %s\r\n", r->reply);
		else if (r->reply[0] != '\0')
			buf_printf(&b, "Diagnostic-Code: X-Warren; %s\r\n", r->reply);
		buf_printf(&b, "Last-Attempt-Date: %s\r\n", last);
		if (delayed) {
			char until[64];
			rfc5322_date(m->created + d->conf->queue.max_lifetime_s, until, sizeof(until));
			buf_printf(&b, "Will-Retry-Until: %s\r\n", until);
		}
	}
	buf_append_str(&b, "\r\n");

	/* 3: the message or its headers (RFC 3462/6522) */
	bool full = failed && m->ret == QUEUE_RET_FULL && d->len <= OUT_BOUNCE_FULL_MAX;
	size_t hlen = header_end(d->body, d->len);
	if (hlen > OUT_BOUNCE_HEADERS_MAX)
		hlen = OUT_BOUNCE_HEADERS_MAX;
	buf_printf(&b, "--%s\r\nContent-Description: %s\r\nContent-Type: %s\r\n\r\n", boundary,
		   full ? "Undelivered Message" : failed ? "Undelivered Message Headers" :
		   "Message Headers", full ? "message/rfc822" : "text/rfc822-headers");
	if (full)
		buf_append(&b, d->body, d->len);
	else
		buf_append(&b, d->body, hlen);
	if (b.end > 0 && buf_data(&b)[buf_len(&b) - 1] != '\n')
		buf_append_str(&b, "\r\n");
	buf_printf(&b, "\r\n--%s--\r\n", boundary);

	*len_r = buf_len(&b);
	char *out = x_malloc(buf_len(&b) + 1);
	memcpy(out, buf_data(&b), buf_len(&b));
	out[buf_len(&b)] = '\0';
	buf_free(&b);
	return out;
}
