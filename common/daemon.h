/*
 * daemon.h - what smtpd, queued and pickupd share: start-up, the link to the
 * supervisor, and its messages (mail layer).
 *
 * A daemon is exec'd by mailrootd with the supervisor's socket on fd 3 and,
 * when started as root, "-u USER [-g GROUP] [-r CHROOT]".  It drops
 * privileges before it reads anything; the configuration, listening sockets
 * and peer sockets then arrive as messages on fd 3.
 */
#ifndef MR_DAEMON_H
#define MR_DAEMON_H

#include <stdint.h>

#include "proto.h"
#include "stats.h"

struct config;
struct event_base;
struct ipc;
struct ipc_msg;

#define DAEMON_PARENT_FD	3

struct daemon_ops {
	/*
	 * A configuration arrived: the first (old == NULL) or a reload.  Take
	 * it (return 0: the daemon now owns it) or refuse it (-1, with reason).
	 */
	int	(*config)(struct config *conf, const struct config *old,
		    char *why, size_t whysz);
	/* A socket to a peer daemon (new, or replacing one that restarted). */
	void	(*peer)(enum proc_id peer, int fd);
	/* A listening socket (smtpd). */
	void	(*listener)(uint32_t index, int fd);
	/* Everything is handed over: start serving. */
	void	(*go)(void);
	/* Pause or resume (smtpd). */
	void	(*pause)(int paused);
	/*
	 * Any other message from the supervisor (smtpd: DAEMON_AUTH_RESULT,
	 * DAEMON_SESSIONS): 0 when handled, -1 when not expected here.
	 */
	int	(*message)(struct ipc *parent, struct ipc_msg *);
	/*
	 * The TLS certificate and key (smtpd): `fd` holds the PEM text, the
	 * certificate's `certlen` octets then the key's; the handler owns fd.
	 */
	void	(*tls_material)(int fd, uint64_t certlen, const char *certfile,
		    const char *keyfile);
	/*
	 * Still root and outside the chroot, before privileges are dropped:
	 * open what the chroot will hide (smtpd: the resolver reads
	 * /etc/resolv.conf).  No configuration is known yet.
	 */
	void	(*pre_drop)(void);
	/*
	 * The daemon's counters (DAEMON_STATS): fill at most `max` and return
	 * how many.  None: the daemon answers with an empty list.
	 */
	size_t	(*stats)(struct stat_value *out, size_t max);
};

/* The process-wide state every daemon has. */
struct daemon_env {
	enum proc_id		 self;
	struct event_base	*base;
	struct ipc		*parent;
	struct config		*conf;
};

extern struct daemon_env *env;

/*
 * Parse the common options, drop privileges, connect to the supervisor and
 * run the event loop until SIGTERM or the supervisor goes away.  Never
 * returns.
 */
void	daemon_main(int argc, char **argv, enum proc_id self,
	    const struct daemon_ops *ops) __attribute__((noreturn));

#endif
