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
 *	rcpt pending <bob@example.test>
 *	end
 * The final "end" line tells a whole file from a torn one.
 */
#ifndef MR_ENVELOPE_H
#define MR_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "queueid.h"

struct evbuffer;

#define ENVELOPE_VERSION	1
#define ENVELOPE_MAX_SIZE	(4 * 1024 * 1024)

enum rcpt_state {
	RCPT_PENDING = 0,	/* still to deliver */
	RCPT_DONE,		/* delivered */
	RCPT_FAILED		/* failed for good */
};

struct envelope_rcpt {
	char		*addr;
	enum rcpt_state	 state;
};

struct envelope {
	char			 id[QUEUEID_LEN + 1];
	char			*sender;	/* "" is the null sender */
	int64_t			 arrival;
	uint32_t		 attempts;
	int64_t			 next_attempt;
	struct envelope_rcpt	*rcpts;
	size_t			 nrcpts;
};

/* Add a recipient (copied); -1 on allocation failure. */
int	envelope_add_rcpt(struct envelope *, const char *addr, enum rcpt_state);
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
