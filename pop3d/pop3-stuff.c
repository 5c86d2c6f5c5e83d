/* pop3-stuff.c — byte-stuffing and line ends for RETR, TOP and *ENV. */
#include "pop3d/pop3-stuff.h"

void pop3_stuff_init(struct pop3_stuff *st, bool limited, uint64_t body_lines)
{
	*st = (struct pop3_stuff){ .bol = true, .limited = limited,
				   .body_lines_left = body_lines };
	/* TOP n 0 ends right after the empty line; with no header line at all the
	 * message is sent whole, as there is no body to count */
}

/* A line ended: TOP counts it when it is in the body. */
static void line_ended(struct pop3_stuff *st)
{
	if (!st->in_body) {
		if (st->line_len == 0) {
			st->in_body = true;
			if (st->limited && st->body_lines_left == 0)
				st->done = true;
		}
	} else if (st->limited && --st->body_lines_left == 0) {
		st->done = true;
	}
	st->bol = true;
	st->line_len = 0;
}

size_t pop3_stuff_chunk(struct pop3_stuff *st, const char *in, size_t len, char *out,
			size_t *consumed_r)
{
	size_t o = 0, i = 0;
	for (; i < len && !st->done; i++) {
		char c = in[i];
		if (c == '\n') {
			if (!st->cr)
				out[o++] = '\r';
			out[o++] = '\n';
			st->cr = false;
			line_ended(st);
			continue;
		}
		if (st->bol && c == '.')
			out[o++] = '.';
		out[o++] = c;
		st->bol = false;
		st->cr = c == '\r';
		if (c != '\r')
			st->line_len++;
	}
	*consumed_r = i;
	return o;
}

size_t pop3_stuff_finish(struct pop3_stuff *st, char *out)
{
	size_t o = 0;
	if (!st->bol) {
		if (!st->cr)
			out[o++] = '\r';
		out[o++] = '\n';
		st->bol = true;
		st->cr = false;
	}
	out[o++] = '.';
	out[o++] = '\r';
	out[o++] = '\n';
	return o;
}
