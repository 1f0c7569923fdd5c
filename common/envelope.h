/*
 * envelope.h - the envelope file Queue/<id>.env (mail layer).
 *
 * A line-oriented text file, so an administrator can read it:
 *	mailroot-envelope 1
 *	id 0005f3c1a2b3c4d5e6f7
 *	arrival 1763900000
 *	attempts 0
 *	next-attempt 0
 *	sender <alice@example.test>
 *	body 8bitmime
 *	smtputf8 yes
 *	ret hdrs
 *	envid QQ+2B123
 *	rcpt pending <bob@example.test>
 *	notify success,failure
 *	orcpt rfc822;bob@example.test
 *	error 451 4.3.0 mx.example.test[192.0.2.1]: try again later
 *	delay-notified yes
 *	last-attempt 1763900900
 *	held yes
 *	end
 * The final "end" line tells a whole file from a torn one.  The lines body,
 * smtputf8, ret, envid, delay-notified, last-attempt and held (once each, anywhere
 * before "end") and notify, orcpt and error (after the rcpt line they belong
 * to) appear only when the message has them: files without them are valid.
 * An error is the last failure of that recipient, printable US-ASCII on one
 * line of at most ENVELOPE_ERROR_MAX octets.  ENVID and ORCPT are kept in their
 * xtext form (RFC 3461), as they are passed on.
 */
#ifndef MR_ENVELOPE_H
#define MR_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "queueid.h"

struct evbuffer;

/* MAIL BODY= (RFC 6152, RFC 3030); 0 when not given. */
enum envelope_body {
	ENV_BODY_NONE = 0, ENV_BODY_7BIT, ENV_BODY_8BITMIME, ENV_BODY_BINARYMIME
};

#define ENVELOPE_VERSION	1
#define ENVELOPE_MAX_SIZE	(4 * 1024 * 1024)
#define ENVELOPE_ERROR_MAX	1024	/* an error line's text */

enum rcpt_state {
	RCPT_PENDING = 0,	/* still to deliver */
	RCPT_DONE,		/* delivered */
	RCPT_FAILED		/* failed for good */
};

struct envelope_rcpt {
	char		*addr;
	enum rcpt_state	 state;
	uint32_t	 notify;	/* DSN_NOTIFY_* bits; 0: not given */
	char		*orcpt;		/* ORCPT "type;xtext", or NULL */
	char		*error;		/* the last error (one line), or NULL */
};

struct envelope {
	char			 id[QUEUEID_LEN + 1];
	char			*sender;	/* "" is the null sender */
	int64_t			 arrival;
	uint32_t		 attempts;
	int64_t			 next_attempt;
	struct envelope_rcpt	*rcpts;
	size_t			 nrcpts;
	/* ESMTP parameters of MAIL, for delivery and DSNs */
	enum envelope_body	 body;
	int			 smtputf8;
	int			 ret;		/* enum dsn_ret */
	char			*envid;		/* ENVID xtext, or NULL */
	/* delivery history (queued) */
	int			 delay_notified;	/* the delay notice went out */
	int64_t			 last_attempt;		/* 0: never attempted */
	int			 held;		/* operator hold (smtpq hold): no attempts */
};

/* Add a recipient (copied); -1 on allocation failure. */
int	envelope_add_rcpt(struct envelope *, const char *addr, enum rcpt_state);
/*
 * Set the DSN parameters of the last recipient added (orcpt copied, may be
 * NULL); -1 on allocation failure.
 */
int	envelope_rcpt_dsn(struct envelope *, uint32_t notify, const char *orcpt);
/*
 * Record the last error of recipient i (copied; made one printable line and
 * cut at ENVELOPE_ERROR_MAX); NULL clears it.  -1 on allocation failure.
 */
int	envelope_rcpt_error(struct envelope *, size_t i, const char *text);
/* Append the file form of the envelope to `out`. */
int	envelope_format(const struct envelope *, struct evbuffer *out);
/*
 * Parse the file form.  0 on success; -1 with `err` saying which line is
 * wrong.  The result owns its strings: envelope_free() it in both cases.
 */
int	envelope_parse(const char *buf, size_t len, struct envelope *,
	    char *err, size_t errsz);
void	envelope_free(struct envelope *);
const char *rcpt_state_name(enum rcpt_state);

#endif
