/*
 * aresloop.h - one c-ares channel inside a libevent loop (generic layer).
 *
 * The channel is made before the chroot (aresloop_init reads
 * /etc/resolv.conf then); its sockets are watched as events and its
 * retransmissions by one timer, so no call blocks.  c-ares changes servers
 * only on an idle channel: a change asked for while queries are under way
 * waits until they are answered, and lookups started meanwhile should wait
 * with it (aresloop_waiting), to be started from the `ready` callback, so
 * that a busy channel drains even under load.
 */
#ifndef MR_ARESLOOP_H
#define MR_ARESLOOP_H

#include <stddef.h>
#include <stdint.h>
#include <ares.h>

struct event_base;

struct aresloop_server {
	const char	*addr;		/* numeric IPv4 or IPv6 */
	uint16_t	 port;
};

/*
 * Before the chroot: the channel, DNS only (never a hosts file), with a
 * first try of try_ms milliseconds (later ones double) and `tries` tries.
 * `ready` runs each time a server change that waited has been made.
 * -1 with why: lookups are then off.
 */
int	aresloop_init(int try_ms, int tries, void (*ready)(void), char *why, size_t whysz);
/* Once the loop exists: -1 with why.  Harmless when repeated. */
int	aresloop_attach(struct event_base *, char *why, size_t whysz);
/* 1 when queries may be sent (init and attach succeeded). */
int	aresloop_usable(void);
/*
 * Use these servers (n == 0: resolv.conf's, as read at init), now or once
 * the queries under way are answered.  The same list again changes
 * nothing.  -1 with why when the list is bad (the old one stays).
 */
int	aresloop_servers(const struct aresloop_server *, size_t n, char *why, size_t whysz);
/* 1 while a server change waits: a new lookup should wait for `ready`. */
int	aresloop_waiting(void);
/* Send one query; its callback must call aresloop_answered() first. */
void	aresloop_query(const char *name, int type, ares_callback, void *arg);
void	aresloop_answered(void);
/* Queries sent and not yet answered. */
unsigned aresloop_outstanding(void);

#endif
