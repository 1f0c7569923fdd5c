/*
 * smtp_bdat.h - the content of BDAT chunks (mail layer).
 * RFC 3030 (CHUNKING, BINARYMIME), RFC 5321 2.3.8 (lines), 4.5.3.1.6.
 *
 * Chunk octets in, message out.  BDAT data is counted, not delimited: no
 * dot-stuffing and no end-of-data line, so nothing in it can end the
 * message.  For BODY=7BIT and 8BITMIME a bare CR or bare LF is stored as
 * CRLF, as for DATA, and a text line over 998 octets is flagged; for
 * BODY=BINARYMIME the octets are stored exactly as sent.  A CR at the end
 * of one chunk and an LF at the start of the next are one CRLF.
 */
#ifndef MR_SMTP_BDAT_H
#define MR_SMTP_BDAT_H

#include <stddef.h>
#include <stdint.h>

#include "smtp_data.h"	/* the SMTP_DATA_* flags */

struct evbuffer;

struct smtp_bdat {
	uint64_t	max_size;	/* 0: unlimited */
	uint64_t	size;		/* octets of message produced (or that would have been) */
	size_t		linelen;	/* octets in the current line so far */
	int		flags;		/* SMTP_DATA_LONG_LINE, _TOO_BIG, _BARE_EOL, _NUL */
	int		binary;		/* BINARYMIME: store verbatim */
	int		pending_cr;	/* a CR ended the last input; its LF may follow */
};

/* Start a message of at most max_size octets (0: unlimited). */
void	smtp_bdat_init(struct smtp_bdat *, uint64_t max_size, int binary);
/*
 * Append the message octets of len chunk octets to `out` (nothing more once
 * the message is over max_size; the size keeps counting).
 */
void	smtp_bdat_feed(struct smtp_bdat *, const char *in, size_t len,
	    struct evbuffer *out);
/* The LAST chunk is in: a CR still pending is a bare CR, stored as CRLF. */
void	smtp_bdat_end(struct smtp_bdat *, struct evbuffer *out);

#endif
