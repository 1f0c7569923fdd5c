/*
 * smtp_data.h - the DATA stream state machine (mail layer).
 * RFC 5321 4.1.1.4 (end of data), 4.5.2 (transparency), 2.3.8 (lines).
 *
 * Bytes in, message out.  CRLF, a bare LF and a bare CR each end a text line
 * and are stored as CRLF.  Only "." on a line whose own terminator was CRLF
 * and whose previous line also ended in CRLF (or which is the first line)
 * ends the data: "\n.\r\n", "\r.\r\n" and "\n.\n" never do (no SMTP
 * smuggling).  A leading dot is removed from every other line.
 */
#ifndef MR_SMTP_DATA_H
#define MR_SMTP_DATA_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define SMTP_DATA_LONG_LINE	0x01	/* a text line over 998 octets */
#define SMTP_DATA_TOO_BIG	0x02	/* more than max_size octets of message */
#define SMTP_DATA_BARE_EOL	0x04	/* a bare CR or LF was normalised */
#define SMTP_DATA_NUL		0x08	/* a NUL octet was seen (kept) */

struct smtp_data {
	uint64_t	max_size;	/* 0: unlimited */
	uint64_t	size;		/* octets of message produced (or that would have been) */
	size_t		linelen;	/* octets in the current line so far */
	int		flags;		/* SMTP_DATA_* */
	int		done;		/* the end-of-data line was seen */
	/* internal state */
	int		at_bol;		/* at the beginning of a line */
	int		prev_crlf;	/* the previous line ended with CRLF */
	int		pending_cr;	/* a CR was seen, its LF may follow */
	int		dot_line;	/* the current line so far is "." */
};

/* Start a message of at most max_size octets (0: unlimited). */
void smtp_data_init(struct smtp_data *, uint64_t max_size);

/*
 * Consume up to len input bytes and append the message octets to `out`
 * (nothing is appended once the message is over max_size; the size keeps
 * counting).  Returns the number of input bytes consumed: all of them, or
 * fewer when the end-of-data line was reached (then `done` is set and the
 * rest belongs to the next command).
 */
size_t smtp_data_feed(struct smtp_data *, const char *in, size_t len,
    struct evbuffer *out);

#endif
