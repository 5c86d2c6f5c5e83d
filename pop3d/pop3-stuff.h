/* pop3-stuff.h — turns stored message bytes into the body of a POP3 multi-line
 * response (RFC 1939 3): every line ends in CRLF (a bare LF becomes CRLF), a line
 * that begins with "." gets a second one, and TOP stops after the header and n
 * lines of the body. Resumable: the message arrives in chunks of any size.
 * Copies nothing but into the caller's output buffer; no allocation. */
#ifndef WARREN_POP3_STUFF_H
#define WARREN_POP3_STUFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pop3_stuff {
	bool bol;                 /* at the beginning of a line */
	bool cr;                  /* the last byte written was a CR */
	bool in_body;             /* the empty line after the header has passed */
	bool limited;             /* TOP: stop after body_lines_left body lines */
	bool done;                /* TOP's limit reached: the rest is not sent */
	uint64_t body_lines_left;
	size_t line_len;          /* bytes of the current line, CRs not counted */
};

/* Output needed at most for len input bytes (every byte may double). */
#define POP3_STUFF_OUT_MAX(len) (2 * (len))
/* Output of pop3_stuff_finish at most: CR LF "." CR LF. */
#define POP3_STUFF_FINISH_MAX 5

/* limited: TOP with body_lines lines of the body; otherwise the whole message. */
void pop3_stuff_init(struct pop3_stuff *st, bool limited, uint64_t body_lines);
/* Encodes in[0..len) into out (POP3_STUFF_OUT_MAX(len) bytes of room); returns the
 * bytes written. *consumed_r: input bytes used (less than len only once st->done). */
size_t pop3_stuff_chunk(struct pop3_stuff *st, const char *in, size_t len, char *out,
			size_t *consumed_r);
/* Ends the last line if it had no line end and adds the terminating ".CRLF". */
size_t pop3_stuff_finish(struct pop3_stuff *st, char *out);

#endif
