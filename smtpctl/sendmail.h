/*
 * sendmail.h - what the parts of the sendmail command share (smtpctl/).
 */
#ifndef MR_SENDMAIL_H
#define MR_SENDMAIL_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct evbuffer;

/*
 * Write one message into the Pickup/ folder `pickup`: the x-sender: and
 * x-receiver: lines, then `content` (drained).  Under a dot-name first,
 * fsync'd, then renamed in.  Returns 0 and the file's name in `name`, or
 * -1 with why and a sysexits(3) code in *exitcode.
 */
int	pickup_write(const char *pickup, const char *sender, char **rcpts,
	    size_t nrcpts, struct evbuffer *content, char *name, size_t namesz,
	    char *why, size_t whysz, int *exitcode);

/*
 * Complete a message as the normal mode does: an empty header section when
 * it starts with none, or a From: field of the sender when it lacks one.
 * `msg` is appended to `out` after what was added.
 */
void	message_complete(struct evbuffer *out, const char *msg, size_t len,
	    const char *sender, const char *fullname);

/*
 * sendmail -bs: an SMTP dialogue on standard input and output, each message
 * written into `pickup`.  Returns the exit status.
 */
int	sendmail_bs(const struct config *conf, const char *pickup, uint64_t cap,
	    const char *fullname);

#endif
