/* imap-compress.c — COMPRESS=DEFLATE (RFC 4978) and the session's I/O.
 *
 * Every byte imapd reads or writes goes through imap_read_line / imap_input /
 * imap_consume / imap_write. Without compression they are the net layer's calls;
 * after COMPRESS DEFLATE the raw input is inflated into a buffer the session reads
 * lines and literals from (bounded: inflating stops while the buffer is full), and
 * output is deflated with a sync flush per write, above TLS. */
#include "imapd/imap-session.h"
#include "common/log.h"
#include "common/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Inflated input kept beyond the longest line. */
#define COMPRESS_IN_SLACK (64 * 1024)
/* Deflate's window and memory level: about 64 KB per compressing session. */
#define COMPRESS_WINDOW_BITS 13
#define COMPRESS_MEM_LEVEL 6

struct imap_compress {
	z_stream in, out;
	struct buf plain;            /* inflated input */
	size_t consume;              /* bytes of the last line returned, dropped next call */
	size_t max_line;
	bool skipping;               /* dropping the rest of a line that was too long */
	bool failed;
};

int imap_compress_start(struct imap_session *s)
{
	struct imap_compress *c = x_calloc(1, sizeof(*c));
	if (inflateInit2(&c->in, -15) != Z_OK) {
		free(c);
		return -1;
	}
	if (deflateInit2(&c->out, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -COMPRESS_WINDOW_BITS,
			 COMPRESS_MEM_LEVEL, Z_DEFAULT_STRATEGY) != Z_OK) {
		inflateEnd(&c->in);
		free(c);
		return -1;
	}
	c->max_line = s->listener->max_line_length;
	buf_init(&c->plain, c->max_line + COMPRESS_IN_SLACK);
	s->compress = c;
	return 0;
}

void imap_compress_free(struct imap_compress **cp)
{
	struct imap_compress *c = *cp;
	if (c == NULL)
		return;
	inflateEnd(&c->in);
	deflateEnd(&c->out);
	buf_free(&c->plain);
	free(c);
	*cp = NULL;
}

/* ---- output ---- */

void imap_write(struct imap_session *s, const void *data, size_t len)
{
	struct imap_compress *c = s->compress;
	if (c == NULL) {
		net_conn_write(s->conn, data, len);
		return;
	}
	unsigned char chunk[16384];
	c->out.next_in = (unsigned char *)data;
	c->out.avail_in = (uInt)len;
	do {
		c->out.next_out = chunk;
		c->out.avail_out = sizeof(chunk);
		if (deflate(&c->out, Z_SYNC_FLUSH) == Z_STREAM_ERROR) {
			log_error("%s: deflate failed", s->id);
			net_conn_abort(s->conn);
			return;
		}
		net_conn_write(s->conn, chunk, sizeof(chunk) - c->out.avail_out);
	} while (c->out.avail_out == 0 || c->out.avail_in > 0);
}

void imap_write_str(struct imap_session *s, const char *text)
{
	imap_write(s, text, strlen(text));
}

/* ---- input ---- */

/* Inflates what the net layer holds, as far as the buffer has room. */
static void pull(struct imap_session *s)
{
	struct imap_compress *c = s->compress;
	if (c->consume > 0) {
		buf_consume(&c->plain, c->consume);
		c->consume = 0;
	}
	const char *raw;
	size_t avail;
	while (!c->failed && (avail = net_conn_input(s->conn, &raw)) > 0 &&
	       buf_room(&c->plain) > 0) {
		size_t room = buf_room(&c->plain) < 65536 ? buf_room(&c->plain) : 65536;
		char *dst = buf_reserve(&c->plain, room);
		c->in.next_in = (unsigned char *)raw;
		c->in.avail_in = (uInt)avail;
		c->in.next_out = (unsigned char *)dst;
		c->in.avail_out = (uInt)room;
		int ret = inflate(&c->in, Z_SYNC_FLUSH);
		size_t used = avail - c->in.avail_in;
		size_t made = room - c->in.avail_out;
		buf_commit(&c->plain, made);
		net_conn_consume(s->conn, used);
		if (ret != Z_OK && ret != Z_BUF_ERROR) {
			log_info("%s: invalid compressed input from [%s]", s->id,
				 net_conn_peer_ip(s->conn));
			c->failed = true;
			imap_enter_state(s, IMAP_STATE_LOGOUT);
			net_conn_abort(s->conn);
			return;
		}
		if (used == 0 && made == 0)
			break;
	}
}

enum net_line_status imap_read_line(struct imap_session *s, struct net_line *line)
{
	struct imap_compress *c = s->compress;
	if (c == NULL)
		return net_conn_read_line(s->conn, line);
	pull(s);
	for (;;) {
		const char *d = buf_data(&c->plain);
		size_t len = buf_len(&c->plain);
		const char *lf = len > 0 ? memchr(d, '\n', len) : NULL;   /* d is NULL when empty */
		if (c->skipping) {
			if (lf == NULL) {
				buf_clear(&c->plain);
				return NET_LINE_NEED_MORE;
			}
			buf_consume(&c->plain, (size_t)(lf - d) + 1);
			c->skipping = false;
			continue;
		}
		if (lf == NULL) {
			if (len > c->max_line) {
				buf_clear(&c->plain);
				c->skipping = true;
				return NET_LINE_TOO_LONG;
			}
			return NET_LINE_NEED_MORE;
		}
		size_t n = (size_t)(lf - d);
		if (n > c->max_line) {
			buf_consume(&c->plain, n + 1);
			return NET_LINE_TOO_LONG;
		}
		line->data = d;
		line->crlf = n > 0 && d[n - 1] == '\r';
		line->len = line->crlf ? n - 1 : n;
		c->consume = n + 1;
		return NET_LINE_OK;
	}
}

size_t imap_input(struct imap_session *s, const char **data_r)
{
	struct imap_compress *c = s->compress;
	if (c == NULL)
		return net_conn_input(s->conn, data_r);
	pull(s);
	*data_r = buf_data(&c->plain);
	return buf_len(&c->plain);
}

void imap_consume(struct imap_session *s, size_t n)
{
	if (s->compress == NULL)
		net_conn_consume(s->conn, n);
	else
		buf_consume(&s->compress->plain, n);
}

/* ---- the command ---- */

void imap_cmd_compress(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	const char *mech = n == 1 ? imap_arg_string(&args[0]) : NULL;
	if (mech == NULL) {
		imap_tagged(s, "BAD", "Syntax: COMPRESS DEFLATE");
		return;
	}
	if (strcasecmp(mech, "DEFLATE") != 0) {
		imap_tagged(s, "BAD", "Unknown compression mechanism");
		return;
	}
	if (s->compress != NULL) {
		imap_tagged(s, "NO", "[COMPRESSIONACTIVE] DEFLATE is already active.");
		return;
	}
	/* the OK goes out as it is; everything after it is compressed */
	imap_tagged(s, "OK", "DEFLATE active");
	if (imap_compress_start(s) < 0) {
		log_error("%s: cannot start compression", s->id);
		net_conn_abort(s->conn);
		return;
	}
	log_info("%s: compression (DEFLATE) started", s->id);
}

bool imap_compress_pending(const struct imap_session *s)
{
	return s->compress != NULL && !s->in_input &&
		buf_len(&s->compress->plain) > s->compress->consume;
}
