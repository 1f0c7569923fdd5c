/*
 * smtp_data.c - the DATA stream state machine (mail layer; runs in smtpd).
 * RFC 5321 4.1.1.4 (end of data), 4.5.2 (transparency), 2.3.8 (lines).
 *
 * Trust boundary: the input is the raw byte stream of an unauthenticated
 * peer after "354", cut at arbitrary points by the network.  The only line
 * that ends the data is "." with CRLF after a line that also ended in CRLF,
 * so a peer cannot make Mailroot see an end of data that a relay behind it
 * would not see (or the reverse): bare CR and bare LF end a line but never
 * the data.  Every line goes out with CRLF, so the stored message holds no
 * bare CR or LF.  All state lives in struct smtp_data; no allocation.
 */
#include <string.h>
#include <event2/buffer.h>

#include "smtp_data.h"

#define TEXT_MAX	998	/* octets of text in a line (4.5.3.1.6) */

void
smtp_data_init(struct smtp_data *sd, uint64_t max_size)
{
	memset(sd, 0, sizeof(*sd));
	sd->max_size = max_size;
	sd->at_bol = 1;
	sd->prev_crlf = 1;	/* the first line may be the end-of-data line */
}

/*
 * Append message octets to `out`, counting them in sd->size; once the size
 * passes max_size only the part that fits was appended and nothing more is.
 * Should evbuffer_add() fail, the message is marked too big: it must be
 * refused rather than stored truncated.
 */
static void
emit(struct smtp_data *sd, const char *p, size_t n, struct evbuffer *out)
{
	size_t fit = n;

	if (!(sd->flags & SMTP_DATA_TOO_BIG)) {
		if (sd->max_size != 0 && n > sd->max_size - sd->size) {
			/* size <= max_size until TOO_BIG is set */
			fit = (size_t)(sd->max_size - sd->size);
			sd->flags |= SMTP_DATA_TOO_BIG;
		}
		if (fit > 0 && evbuffer_add(out, p, fit) == -1)
			sd->flags |= SMTP_DATA_TOO_BIG;
	}
	/* saturate rather than wrap on absurdly long streams */
	sd->size = UINT64_MAX - sd->size < n ? UINT64_MAX : sd->size + n;
}

/*
 * The current line ended with CRLF (`crlf`) or a bare CR or LF.  Returns 1
 * when it was the end-of-data line.
 */
static int
end_line(struct smtp_data *sd, int crlf, struct evbuffer *out)
{
	if (sd->dot_line) {
		if (crlf && sd->prev_crlf) {
			sd->done = 1;
			return 1;
		}
		/* "." that does not end the data is kept as a line "." */
		emit(sd, ".\r\n", 3, out);
	} else
		emit(sd, "\r\n", 2, out);
	if (!crlf)
		sd->flags |= SMTP_DATA_BARE_EOL;
	sd->prev_crlf = crlf;
	sd->at_bol = 1;
	sd->dot_line = 0;
	sd->linelen = 0;
	return 0;
}

size_t
smtp_data_feed(struct smtp_data *sd, const char *in, size_t len,
    struct evbuffer *out)
{
	const char *p = in, *end = in + len, *q, *start;
	const char *cr = NULL, *lf = NULL;	/* next CR, LF at or after p */
	size_t n;

	if (sd->done)
		return 0;
	while (p < end) {
		if (sd->pending_cr) {
			sd->pending_cr = 0;
			if (*p == '\n') {
				p++;
				if (end_line(sd, 1, out))
					return (size_t)(p - in);
				continue;
			}
			(void)end_line(sd, 0, out);	/* bare CR */
			/* *p starts the next line */
		}
		if (*p == '\r') {
			sd->pending_cr = 1;
			p++;
			continue;
		}
		if (*p == '\n') {
			p++;
			(void)end_line(sd, 0, out);	/* bare LF */
			continue;
		}
		if (sd->at_bol) {
			sd->at_bol = 0;
			if (*p == '.') {
				/* held: end of data, a "." line or stuffing */
				sd->dot_line = 1;
				sd->linelen = 1;
				p++;
				continue;
			}
		}
		/* text after a leading "." means it was stuffing: drop it */
		sd->dot_line = 0;

		/*
		 * Copy text in one piece: up to the next CR or LF, and on over
		 * each CRLF whose next line starts with ordinary text (nothing
		 * to change there), so a plain message costs one evbuffer_add()
		 * per feed rather than one per line.
		 */
		start = p;
		for (;;) {
			n = (size_t)(end - p);
			if ((cr == NULL || cr < p) &&
			    (cr = memchr(p, '\r', n)) == NULL)
				cr = end;
			if ((lf == NULL || lf < p) &&
			    (lf = memchr(p, '\n', n)) == NULL)
				lf = end;
			q = cr < lf ? cr : lf;
			n = (size_t)(q - p);
			if (!(sd->flags & SMTP_DATA_NUL) &&
			    memchr(p, '\0', n) != NULL)
				sd->flags |= SMTP_DATA_NUL;
			sd->linelen += n;
			if (sd->linelen > TEXT_MAX)
				sd->flags |= SMTP_DATA_LONG_LINE;
			p = q;
			if (end - p < 3 || p[0] != '\r' || p[1] != '\n' ||
			    p[2] == '.' || p[2] == '\r' || p[2] == '\n')
				break;
			/* a CRLF line end, and the next line is under way */
			p += 2;
			sd->prev_crlf = 1;
			sd->linelen = 0;
		}
		emit(sd, start, (size_t)(p - start), out);
	}
	return len;
}
