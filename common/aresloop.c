/*
 * aresloop.c - one c-ares channel inside a libevent loop (generic layer:
 * it knows DNS, not mail).  Used by smtpd (reverse lookups of clients) and
 * deliverd (MX and address lookups), both unprivileged and chrooted: the
 * channel is made before the chroot, and everything after that is sockets
 * and timers.  No call here blocks.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <event2/event.h>

#include "aresloop.h"
#include "log.h"

#define ARESLOOP_SOCKETS_MAX	16
#define ARESLOOP_SERVERS_MAX	8

static ares_channel channel;
static int channel_ok;
static struct event_base *base;
static struct ares_addr_port_node *system_servers;	/* resolv.conf's */
static struct event *timer;
static unsigned outstanding;
static void (*ready_cb)(void);

/* The servers asked for, applied when the channel is idle. */
static struct {
	char		 addr[64];
	uint16_t	 port;
} want[ARESLOOP_SERVERS_MAX];
static size_t nwant;
static int pending;		/* a change waits for the channel to be idle */
static int configured;		/* want[] holds what was asked for last */

static struct {
	ares_socket_t	 fd;
	struct event	*ev;
} socks[ARESLOOP_SOCKETS_MAX];

static void update(void);

static void
sock_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)arg;
	ares_process_fd(channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
	    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	update();
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	update();
}

/* c-ares says which of its sockets to watch for what. */
static void
sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	short what = (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
	int i, slot = -1;

	(void)data;
	for (i = 0; i < ARESLOOP_SOCKETS_MAX; i++) {
		if (socks[i].ev != NULL && socks[i].fd == fd) {
			event_free(socks[i].ev);
			socks[i].ev = NULL;
			slot = i;
			break;
		}
		if (socks[i].ev == NULL && slot == -1)
			slot = i;
	}
	if (what == 0)
		return;
	if (slot == -1 || base == NULL) {
		/* More sockets than servers times two: the query times out. */
		log_warnx("dns: cannot watch a resolver socket");
		return;
	}
	socks[slot].fd = fd;
	socks[slot].ev = event_new(base, fd, what | EV_PERSIST, sock_cb, NULL);
	if (socks[slot].ev == NULL || event_add(socks[slot].ev, NULL) == -1)
		log_warnx("dns: cannot watch a resolver socket");
}

static int
apply(void)
{
	struct ares_addr_port_node nodes[ARESLOOP_SERVERS_MAX], *list = system_servers;
	size_t i;
	int rc;

	if (nwant > 0) {
		memset(nodes, 0, sizeof(nodes));
		for (i = 0; i < nwant; i++) {
			struct ares_addr_port_node *n = &nodes[i];

			if (inet_pton(AF_INET, want[i].addr, &n->addr.addr4) == 1)
				n->family = AF_INET;
			else if (inet_pton(AF_INET6, want[i].addr, &n->addr.addr6) == 1)
				n->family = AF_INET6;
			else
				return ARES_EBADSTR;
			n->udp_port = n->tcp_port = want[i].port;
			n->next = i + 1 < nwant ? &nodes[i + 1] : NULL;
		}
		list = &nodes[0];
	}
	/* c-ares refuses (ENOTIMP) while queries are outstanding. */
	if ((rc = ares_set_servers_ports(channel, list)) == ARES_SUCCESS)
		pending = 0;
	return rc;
}

/* Re-arm the retransmission timer; make a server change that waited. */
static void
update(void)
{
	struct timeval tv, *tvp;
	int rc;

	if (pending && outstanding == 0) {
		if ((rc = apply()) != ARES_SUCCESS) {
			log_warnx("dns: cannot set the new DNS servers: %s; keeping "
			    "the old ones", ares_strerror(rc));
			pending = 0;
		}
		if (ready_cb)
			ready_cb();
	}
	if (timer == NULL)
		return;
	if (outstanding == 0) {
		evtimer_del(timer);
		return;
	}
	if ((tvp = ares_timeout(channel, NULL, &tv)) != NULL)
		evtimer_add(timer, tvp);
}

int
aresloop_init(int try_ms, int tries, void (*ready)(void), char *why, size_t whysz)
{
	struct ares_options o;
	int rc, mask;

	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		snprintf(why, whysz, "c-ares: %s", ares_strerror(rc));
		return -1;
	}
	memset(&o, 0, sizeof(o));
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	o.timeout = try_ms;
	o.tries = tries;
	o.lookups = (char *)"b";	/* DNS only: never the chroot's (absent) hosts file */
	o.sock_state_cb = sock_state_cb;
	mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS |
	    ARES_OPT_SOCK_STATE_CB;
	if ((rc = ares_init_options(&channel, &o, mask)) != ARES_SUCCESS) {
		snprintf(why, whysz, "cannot set up the resolver: %s", ares_strerror(rc));
		return -1;
	}
	if (ares_get_servers_ports(channel, &system_servers) != ARES_SUCCESS)
		system_servers = NULL;
	ready_cb = ready;
	channel_ok = 1;
	return 0;
}

int
aresloop_attach(struct event_base *b, char *why, size_t whysz)
{
	if (!channel_ok || timer != NULL)
		return 0;
	base = b;
	if ((timer = evtimer_new(base, timer_cb, NULL)) == NULL) {
		snprintf(why, whysz, "cannot make the resolver's timer");
		return -1;
	}
	return 0;
}

int
aresloop_usable(void)
{
	return channel_ok && timer != NULL;
}

int
aresloop_servers(const struct aresloop_server *s, size_t n, char *why, size_t whysz)
{
	size_t i;
	int rc;

	if (!channel_ok)
		return 0;
	if (n > ARESLOOP_SERVERS_MAX) {
		snprintf(why, whysz, "too many DNS servers (at most %d)", ARESLOOP_SERVERS_MAX);
		return -1;
	}
	if (configured && !pending && n == nwant) {
		for (i = 0; i < n; i++)
			if (strcmp(want[i].addr, s[i].addr) != 0 || want[i].port != s[i].port)
				break;
		if (i == n)
			return 0;
	}
	for (i = 0; i < n; i++) {
		if (strlcpy(want[i].addr, s[i].addr, sizeof(want[i].addr)) >=
		    sizeof(want[i].addr)) {
			snprintf(why, whysz, "DNS server address too long");
			return -1;
		}
		want[i].port = s[i].port;
	}
	nwant = n;
	configured = 1;
	pending = 1;
	if (outstanding > 0) {
		log_debug("dns: new servers wait for %u queries to finish", outstanding);
		return 0;
	}
	if ((rc = apply()) != ARES_SUCCESS) {
		pending = 0;
		snprintf(why, whysz, "cannot set the DNS servers: %s", ares_strerror(rc));
		return -1;
	}
	return 0;
}

int
aresloop_waiting(void)
{
	return pending;
}

void
aresloop_query(const char *name, int type, ares_callback cb, void *arg)
{
	outstanding++;
	ares_query(channel, name, 1 /* ns_c_in */, type, cb, arg);
	update();
}

void
aresloop_answered(void)
{
	if (outstanding > 0)
		outstanding--;
}

unsigned
aresloop_outstanding(void)
{
	return outstanding;
}
