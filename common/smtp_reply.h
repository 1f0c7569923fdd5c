/*
 * smtp_reply.h - a bounded parser of the replies of an SMTP server (mail
 * layer): RFC 5321 4.2 (Reply-line, multi-line replies) and RFC 3463
 * enhanced status codes (RFC 2034 puts them first in the text).
 * Pure: no I/O, no allocation.  The server is untrusted: a line over
 * SMTP_REPLY_LINE_MAX octets or a reply over SMTP_REPLY_LINES_MAX lines is
 * an error the caller handles (it drops the connection), never a crash or
 * an unbounded buffer.
 */
#ifndef MR_SMTP_REPLY_H
#define MR_SMTP_REPLY_H

#include <stddef.h>

#define SMTP_REPLY_LINE_MAX	512	/* a reply line, CRLF included (4.5.3.1.5) */
#define SMTP_REPLY_LINES_MAX	100	/* lines of one reply (EHLO lists are short) */
#define SMTP_REPLY_TEXT_MAX	512	/* the text kept: lines joined, cut with "..." */
#define SMTP_ENHANCED_MAX	16	/* "5.123.456" fits */

enum smtp_reply_status {
	SMTP_REPLY_MORE,	/* the reply goes on: feed the next line */
	SMTP_REPLY_DONE,	/* the reply is whole */
	SMTP_REPLY_BAD		/* not an SMTP reply: drop the connection */
};

struct smtp_reply {
	int		 code;		/* 200..599 */
	char		 enhanced[SMTP_ENHANCED_MAX];	/* of the first line, "" none */
	char		 text[SMTP_REPLY_TEXT_MAX];	/* first line; 4xx/5xx: all, joined */
	size_t		 nlines;
	/* the line just fed, its text after the code (and separator) */
	const char	*line;
	size_t		 linelen;
};

/* Start a new reply. */
void	smtp_reply_init(struct smtp_reply *);
/*
 * Feed one line of a reply, CRLF (or LF) removed.  Every line must carry
 * the same code; "ddd-" continues, "ddd " or a bare "ddd" ends the reply.
 */
enum smtp_reply_status smtp_reply_line(struct smtp_reply *, const char *line,
	    size_t len);
/*
 * Feed octets as they arrive: whole lines of `buf` are consumed (*consumed
 * says how many octets).  SMTP_REPLY_MORE with an unfinished line means
 * "call again with more", unless the line is already over the limit, which
 * is SMTP_REPLY_BAD.
 */
enum smtp_reply_status smtp_reply_feed(struct smtp_reply *, const char *buf,
	    size_t len, size_t *consumed);
/* The class of a code: 2, 3, 4 or 5. */
#define SMTP_REPLY_CLASS(r)	((r)->code / 100)

#endif
