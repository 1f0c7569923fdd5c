/*
 * ctl_client.h - what smtpctl and smtpq share as clients of mailrootd's
 * control socket: connecting and greeting, and JSON output.
 */
#ifndef CTL_CLIENT_H
#define CTL_CLIENT_H

struct config;

/*
 * Connect to the control socket of `c` and greet (CTL_HELLO with this
 * PROTO_VERSION): the descriptor; -1 when no mailrootd listens there (the
 * suite is stopped); -2 (errno set) when this user may not reach the
 * socket.  Any other failure, or a refused greeting, exits with a message.
 */
int	ctl_connect(const struct config *c);
/* Print s as a JSON string (quotes, backslashes and controls escaped). */
void	json_str(const char *s);

#endif
