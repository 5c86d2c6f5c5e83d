/* smtp-dot.c — the DATA byte parser (RFC 5321 4.1.1.4, 4.5.2).
 *
 * Only <CRLF>.<CRLF> ends the data. A bare LF or bare CR is never a line end, so
 * "<LF>.<LF>", "<LF>.<CR><LF>" and "<CR>.<CR>" cannot end a message early (SMTP
 * smuggling): such bytes are flagged (the message is then refused) or, with
 * normalize, turned into CRLF — still without starting a line where a dot could
 * end the data. Leading dots are removed (dot-unstuffing). Resumable: the state is
 * kept between calls, input may be split anywhere, and nothing is copied except
 * through emit, which receives runs of message bytes.
 */
#include "smtpd/smtp-session.h"

#include <string.h>

void smtp_dot_init(struct smtp_dot *d, bool normalize, size_t max_line)
{
	memset(d, 0, sizeof(*d));
	d->state = SMTP_DOT_BOL;
	d->normalize = normalize;
	d->max_line = max_line;
}

static void out_text(struct smtp_dot *d, const char *data, size_t len, smtp_dot_emit *emit,
		     void *ctx)
{
	d->line_len += len;
	if (d->line_len > d->max_line)
		d->line_too_long = true;
	emit(ctx, data, len);
}

static void out_crlf(struct smtp_dot *d, smtp_dot_emit *emit, void *ctx)
{
	d->line_len = 0;
	emit(ctx, "\r\n", 2);
}

/* A bare CR or LF: flagged, or a CRLF that does not start a new SMTP line. */
static void bare(struct smtp_dot *d, smtp_dot_emit *emit, void *ctx)
{
	d->bare = true;
	if (d->normalize)
		out_crlf(d, emit, ctx);
	d->state = SMTP_DOT_TEXT;
}

size_t smtp_dot_feed(struct smtp_dot *d, const char *in, size_t len, smtp_dot_emit *emit,
		     void *ctx)
{
	size_t i = 0;
	while (i < len && d->state != SMTP_DOT_DONE) {
		char c = in[i];
		switch (d->state) {
		case SMTP_DOT_BOL:
			if (c == '.') {
				d->state = SMTP_DOT_DOT;
				i++;
			} else {
				d->state = SMTP_DOT_TEXT;
			}
			break;
		case SMTP_DOT_DOT:
			if (c == '\r') {
				d->state = SMTP_DOT_DOT_CR;
				i++;
			} else {
				d->state = SMTP_DOT_TEXT;   /* the dot is dropped */
			}
			break;
		case SMTP_DOT_DOT_CR:
			if (c == '\n') {
				d->state = SMTP_DOT_DONE;
				i++;
			} else {
				bare(d, emit, ctx);          /* ".<CR>x" */
			}
			break;
		case SMTP_DOT_TEXT: {
			size_t j = i;
			while (j < len && in[j] != '\r' && in[j] != '\n')
				j++;
			if (j > i)
				out_text(d, in + i, j - i, emit, ctx);
			if (j < len) {
				if (in[j] == '\r')
					d->state = SMTP_DOT_CR;
				else
					bare(d, emit, ctx);  /* bare LF */
				j++;
			}
			i = j;
			break;
		}
		case SMTP_DOT_CR:
			if (c == '\n') {
				out_crlf(d, emit, ctx);
				d->state = SMTP_DOT_BOL;
				i++;
			} else {
				bare(d, emit, ctx);          /* bare CR; c is looked at again */
			}
			break;
		case SMTP_DOT_DONE:
			break;
		}
	}
	return i;
}
