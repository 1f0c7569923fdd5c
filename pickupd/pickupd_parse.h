/*
 * pickupd_parse.h - Pickup file parser (runs in pickupd, unprivileged).
 *
 * A Pickup file is an RFC 5322 message written by a local application.  Its
 * envelope is either its leading "x-sender:" and "x-receiver:" header lines
 * (the IIS format; removed from the copy sent), or, without them, taken from
 * Sender:/From: and To:/Cc:/Bcc: (RFC 5322 3.4 address lists, groups and
 * comments included).  Bcc: is always removed from the copy sent.
 * Message-ID: and Date: are added when missing (RFC 5322 3.6).  Lines may end
 * in LF or CRLF; the output always uses CRLF.
 *
 * Trust boundary: the file's content is untrusted data; the parser never
 * reads past len and bounds every field.
 */
#ifndef MR_PICKUPD_PARSE_H
#define MR_PICKUPD_PARSE_H

#include <stddef.h>

struct evbuffer;

struct pickup_opts {
	const char	*default_domain;	/* qualifies "user" into "user@default_domain" */
	const char	*message_id;		/* full "<...>" value added when missing */
	const char	*date;			/* RFC 5322 date-time added when missing */
	size_t		 max_rcpts;		/* 0: unlimited */
};

struct pickup_msg {
	char		 *sender;	/* "" for the null sender (x-sender: <>) */
	char		**rcpts;	/* addresses without <>, deduplicated */
	size_t		  nrcpts;
	struct evbuffer	 *content;	/* the message to queue, CRLF lines */
	char		  error[256];	/* why the file is not a valid message */
};

/*
 * Parse data[0..len).  Returns 0 and fills `msg` (sender, rcpts, content);
 * or -1 with msg->error set to a one-line reason for the .BDR report.
 * Call pickup_msg_free() in both cases.
 */
int	pickup_parse(const char *data, size_t len, const struct pickup_opts *,
	    struct pickup_msg *msg);
void	pickup_msg_free(struct pickup_msg *);

#endif
