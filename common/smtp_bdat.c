/*
 * smtp_bdat.c - the content of BDAT chunks (mail layer; runs in smtpd).
 * RFC 3030 (CHUNKING, BINARYMIME), RFC 5321 2.3.8 and 4.5.3.1.6 (lines).
 *
 * Trust boundary: the input is chunk data of an unauthenticated peer, cut
 * at arbitrary points by the chunk sizes and the network.  The session
 * counts the octets of each chunk; this file only turns them into the
 * stored message.  Outside BINARYMIME every line goes out with CRLF, so the
 * stored message holds no bare CR or LF, exactly like a DATA message (no
 * SMTP smuggling when it is relayed with DATA).  No allocation.
 */
#include <string.h>
#include <event2/buffer.h>

#include "smtp_bdat.h"

#define TEXT_MAX	998	/* octets of text in a line (4.5.3.1.6) */

void
smtp_bdat_init(struct smtp_bdat *b, uint64_t max_size, int binary)
{
	memset(b, 0, sizeof(*b));
	b->max_size = max_size;
	b->binary = binary;
}

/* Append message octets, counting them; see smtp_data.c emit(). */
static void
emit(struct smtp_bdat *b, const char *p, size_t n, struct evbuffer *out)
{
	size_t fit = n;

	if (!(b->flags & SMTP_DATA_TOO_BIG)) {
		if (b->max_size != 0 && n > b->max_size - b->size) {
			fit = (size_t)(b->max_size - b->size);
			b->flags |= SMTP_DATA_TOO_BIG;
		}
		if (fit > 0 && evbuffer_add(out, p, fit) == -1)
			b->flags |= SMTP_DATA_TOO_BIG;
	}
	b->size = UINT64_MAX - b->size < n ? UINT64_MAX : b->size + n;
}

static void
line_end(struct smtp_bdat *b, int bare, struct evbuffer *out)
{
	emit(b, "\r\n", 2, out);
	if (bare)
		b->flags |= SMTP_DATA_BARE_EOL;
	b->linelen = 0;
}

void
smtp_bdat_feed(struct smtp_bdat *b, const char *in, size_t len, struct evbuffer *out)
{
	const char *p = in, *end = in + len, *cr, *lf, *q;
	size_t n;

	if (b->binary) {
		emit(b, in, len, out);
		return;
	}
	while (p < end) {
		if (b->pending_cr) {
			b->pending_cr = 0;
			line_end(b, *p != '\n', out);
			if (*p == '\n')
				p++;
			continue;
		}
		if (*p == '\r') {
			b->pending_cr = 1;
			p++;
			continue;
		}
		if (*p == '\n') {
			line_end(b, 1, out);
			p++;
			continue;
		}
		/* text up to the next CR or LF, in one piece */
		n = (size_t)(end - p);
		cr = memchr(p, '\r', n);
		lf = memchr(p, '\n', n);
		q = cr == NULL ? (lf == NULL ? end : lf) : (lf == NULL || cr < lf ? cr : lf);
		n = (size_t)(q - p);
		if (!(b->flags & SMTP_DATA_NUL) && memchr(p, '\0', n) != NULL)
			b->flags |= SMTP_DATA_NUL;
		b->linelen += n;
		if (b->linelen > TEXT_MAX)
			b->flags |= SMTP_DATA_LONG_LINE;
		emit(b, p, n, out);
		p = q;
	}
}

void
smtp_bdat_end(struct smtp_bdat *b, struct evbuffer *out)
{
	if (b->pending_cr) {
		b->pending_cr = 0;
		line_end(b, 1, out);
	}
}
