/* pop3-retr.c — long responses: RETR and TOP read the body from the store in
 * chunks off the loop thread; LIST and UIDL of a large maildrop. Each pauses
 * when the output queue is full and goes on when it drains, so a slow client
 * never makes the daemon buffer a whole message or listing. */
#include "pop3d/pop3-job.h"
#include "common/log.h"
#include "common/pool.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- RETR, TOP ------------------------------------------------------------------ */

static void read_next(struct pop3_session *s);

static int read_work(struct pop3_job *job)
{
	return store_blob_read(job->store, job->blob, job->offset, job->buf, job->len, &job->got);
}

static void message_done(struct pop3_session *s, const struct pop3_message *m)
{
	struct pop3_stream *st = &s->stream;
	if (st->top) {
		s->stats.top++;
		s->stats.top_bytes += st->offset + st->sent_prefix;
	} else {
		s->stats.retr++;
		s->stats.retr_bytes += st->offset + st->sent_prefix;
		s->drop.msgs[st->msg].retrieved = true;
	}
	log_debug("%s: %s of UID %u done (%" PRIu64 " bytes)", s->id, st->top ? "TOP" : "RETR",
		  m->uid, st->offset);
	st->kind = POP3_STREAM_NONE;
}

static void read_done(struct pop3_job *job, int result)
{
	struct pop3_session *s = job->s;
	struct pop3_stream *st = &s->stream;
	const struct pop3_message *m = &s->drop.msgs[st->msg];
	if (st->kind != POP3_STREAM_MESSAGE)
		return;         /* the connection is closing (idle timeout, shutdown) */
	if (result != STORE_OK) {
		log_error("%s: cannot read UID %u of %s: %s", s->id, m->uid, s->mailbox->address,
			  store_strerror(result));
		st->kind = POP3_STREAM_NONE;
		if (!st->started) {
			if (result == STORE_ENOTFOUND)
				pop3_err(s, "Message was expunged by another session.");
			else
				pop3_err(s, "[SYS/TEMP] Cannot read the message, try again later.");
			return;
		}
		/* the response is cut: the client must not take it for the message */
		pop3_session_close(s);
		return;
	}
	if (!st->started) {
		st->started = true;
		if (st->top)
			pop3_ok(s, "%s", "");
		else
			pop3_ok(s, "%" PRIu64 " octets", m->size);
	}
	size_t prefix_len = st->offset == 0 && m->prefix != NULL ? strlen(m->prefix) : 0;
	char *out = x_malloc(POP3_STUFF_OUT_MAX(job->got + prefix_len) + POP3_STUFF_FINISH_MAX);
	size_t consumed;
	size_t n = 0;
	if (prefix_len > 0) {
		n = pop3_stuff_chunk(&st->stuff, m->prefix, prefix_len, out, &consumed);
		st->sent_prefix = prefix_len;
	}
	n += pop3_stuff_chunk(&st->stuff, job->buf, job->got, out + n, &consumed);
	st->offset += consumed;
	bool end = job->got < job->len || st->stuff.done;
	if (end)
		n += pop3_stuff_finish(&st->stuff, out + n);
	net_conn_write(s->conn, out, n);
	free(out);
	/* a client taking a large message slowly is not idle */
	if (s->state == POP3_STATE_TRANSACTION)
		net_conn_set_idle_timeout(s->conn, s->listener->idle_timeout_s * 1000);
	if (end) {
		message_done(s, m);
		return;
	}
	if (!net_conn_output_full(s->conn))
		read_next(s);
	/* else on_drain calls pop3_stream_resume */
}

static void read_next(struct pop3_session *s)
{
	struct pop3_stream *st = &s->stream;
	const struct pop3_message *m = &s->drop.msgs[st->msg];
	struct pop3_job *job = pop3_job_new(s, read_work, read_done);
	memcpy(job->blob, m->blob, sizeof(job->blob));
	job->offset = st->offset;
	job->len = POP3_READ_CHUNK;
	job->buf = x_malloc(job->len);
	if (pop3_job_start(job) < 0) {
		st->kind = POP3_STREAM_NONE;
		if (!st->started)
			pop3_err(s, "[SYS/TEMP] Cannot read the message, try again later.");
		else
			pop3_session_close(s);
	}
}

void pop3_stream_message(struct pop3_session *s, size_t index, bool top, uint64_t lines)
{
	s->stream = (struct pop3_stream){ .kind = POP3_STREAM_MESSAGE, .msg = index, .top = top };
	pop3_stuff_init(&s->stream.stuff, top, lines);
	read_next(s);
}

/* ---- LIST, UIDL ------------------------------------------------------------------- */

static void list_step(struct pop3_session *s)
{
	struct pop3_stream *st = &s->stream;
	const struct pop3_maildrop *d = &s->drop;
	char line[64];
	while (st->next < d->count && !net_conn_output_full(s->conn)) {
		const struct pop3_message *m = &d->msgs[st->next++];
		if (m->deleted)
			continue;
		if (st->kind == POP3_STREAM_LIST) {
			int n = snprintf(line, sizeof(line), "%zu %" PRIu64 "\r\n", st->next, m->size);
			net_conn_write(s->conn, line, (size_t)n);
		} else {
			char uidl[32];
			pop3_uidl(d, m, uidl, sizeof(uidl));
			int n = snprintf(line, sizeof(line), "%zu %s\r\n", st->next, uidl);
			net_conn_write(s->conn, line, (size_t)n);
		}
	}
	if (st->next < d->count)
		return;     /* on_drain goes on */
	net_conn_write_str(s->conn, ".\r\n");
	st->kind = POP3_STREAM_NONE;
	pop3_session_continue(s);
}

void pop3_stream_list(struct pop3_session *s, enum pop3_stream_kind kind)
{
	const struct pop3_maildrop *d = &s->drop;
	if (kind == POP3_STREAM_LIST)
		pop3_ok(s, "%zu messages (%" PRIu64 " octets)", d->count - d->deleted,
			d->size - d->deleted_size);
	else
		pop3_ok(s, "%s", "");
	s->stream = (struct pop3_stream){ .kind = kind };
	list_step(s);
}

void pop3_stream_resume(struct pop3_session *s)
{
	switch (s->stream.kind) {
	case POP3_STREAM_LIST:
	case POP3_STREAM_UIDL:
		list_step(s);
		break;
	case POP3_STREAM_MESSAGE:
		if (s->job == NULL)
			read_next(s);
		break;
	case POP3_STREAM_NONE:
		break;
	}
}
