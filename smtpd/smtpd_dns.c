/*
 * smtpd_dns.c - the client's reverse DNS name, forward-confirmed (smtpd,
 * unprivileged, chrooted).
 *
 * c-ares runs inside smtpd's libevent loop (common/aresloop.c), and no
 * call blocks.  The channel is made before the chroot (dns_init, from the
 * pre_drop hook), while /etc/resolv.conf can still be read; the servers of
 * mailroot.conf's dns-server statements replace that file's when a
 * configuration arrives.
 *
 * For a client: one PTR query; then, for each of at most DNS_NAMES_MAX
 * names it gives, an A (IPv4 client) or AAAA (IPv6 client) query.  The
 * first PTR name whose records hold the client's address is its name
 * (forward-confirmed reverse DNS); anything else leaves it unknown.
 * Trust boundary: answers come from the network, perhaps from the client's
 * own DNS server.  A name is used only when it is a valid domain name (RFC
 * 5321 4.1.2 syntax), and only once its forward lookup confirms it; a
 * lookup takes at most DNS_LOOKUP_TIMEOUT seconds, whatever the servers do.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/queue.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ares.h>
#include <event2/event.h>

#include "aresloop.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "smtpd.h"

#define DNS_LOOKUP_TIMEOUT	5	/* seconds for the whole lookup of a client */
#define DNS_TRY_TIMEOUT_MS	1500	/* c-ares: first try; later tries double */
#define DNS_TRIES		2
#define DNS_NAMES_MAX		4	/* PTR names forward-checked */
#define DNS_ADDRS_MAX		32	/* A/AAAA records looked at per name */

struct dns_fwd {
	struct dns_lookup	*lk;
	int			 idx;
};

struct dns_lookup {
	struct session		*s;		/* NULL once the session stopped waiting */
	unsigned		 pending;	/* queries not yet answered */
	int			 starting;	/* inside lookup_start() */
	int			 queued;	/* on waitq: a server change is due */
	TAILQ_ENTRY(dns_lookup)	 wait;
	enum dns_status		 result;	/* when finished early */
	struct event		*timer;		/* whole-lookup limit, or deferred end */
	int			 family;	/* AF_INET or AF_INET6 */
	unsigned char		 addr[16];
	char			 names[DNS_NAMES_MAX][SMTP_DOMAIN_MAX + 1];
	int			 confirmed[DNS_NAMES_MAX];
	int			 timedout;	/* some forward query timed out */
	int			 error;		/* c-ares status of a failure */
	int			 nnames;
	struct dns_fwd		 fwd[DNS_NAMES_MAX];
};

/*
 * Lookups that wait for a server change (aresloop_waiting), started from
 * the channel's ready callback.
 */
static TAILQ_HEAD(, dns_lookup) waitq = TAILQ_HEAD_INITIALIZER(waitq);

static void lookup_start(struct dns_lookup *);

const char *
dns_status_name(enum dns_status st)
{
	switch (st) {
	case DNS_NONE:		return "none";
	case DNS_CONFIRMED:	return "confirmed";
	case DNS_UNCONFIRMED:	return "unconfirmed";
	case DNS_NOPTR:		return "no-ptr";
	case DNS_TIMEOUT:	return "timeout";
	case DNS_FAILED:	return "failed";
	}
	return "?";
}

/* The servers changed: start the lookups that waited for it. */
static void
waitq_run(void)
{
	struct dns_lookup *lk;

	while ((lk = TAILQ_FIRST(&waitq)) != NULL) {
		TAILQ_REMOVE(&waitq, lk, wait);
		lk->queued = 0;
		lookup_start(lk);
	}
}

/* Before the chroot: make the channel (it reads /etc/resolv.conf now). */
void
dns_init(void)
{
	char why[256];

	if (aresloop_init(DNS_TRY_TIMEOUT_MS, DNS_TRIES, waitq_run, why, sizeof(why)) == -1)
		log_warnx("dns: %s; client names stay unknown", why);
}

/* A configuration arrived: its dns-server list, or the system's servers. */
int
dns_configure(const struct config *c, char *why, size_t whysz)
{
	struct aresloop_server sv[CONF_DNS_SERVERS_MAX];
	size_t i;

	if (aresloop_attach(env->base, why, whysz) == -1)
		return -1;
	for (i = 0; i < c->ndns_servers; i++) {
		sv[i].addr = c->dns_servers[i].addr;
		sv[i].port = c->dns_servers[i].port;
	}
	return aresloop_servers(sv, c->ndns_servers, why, whysz);
}

/* ---- one client's lookup ------------------------------------------------------- */

static void
lookup_free_if_idle(struct dns_lookup *lk)
{
	if (lk->s != NULL || lk->pending > 0)
		return;
	if (lk->timer)
		event_free(lk->timer);
	free(lk);
}

/* The session is told, and no longer waits; late answers are dropped. */
static void
lookup_finish(struct dns_lookup *lk, enum dns_status st)
{
	struct session *s = lk->s;
	char ptr[SMTP_DOMAIN_MAX + 1] = "";
	int i;

	if (s == NULL)
		return;
	if (lk->timer)
		evtimer_del(lk->timer);
	s->dns = NULL;
	lk->s = NULL;
	s->dns_status = st;
	s->rdns[0] = '\0';
	if (st == DNS_CONFIRMED) {
		for (i = 0; i < lk->nnames; i++) {
			if (lk->confirmed[i]) {
				strlcpy(s->rdns, lk->names[i], sizeof(s->rdns));
				break;
			}
		}
	}
	if (lk->nnames > 0)
		strlcpy(ptr, lk->names[0], sizeof(ptr));
	log_info("session=%08x client=%s dns=%s name=%s%s%s%s%s%s", s->id, s->addr,
	    dns_status_name(st), s->rdns[0] ? s->rdns : "unknown",
	    st == DNS_UNCONFIRMED ? " ptr=" : "", st == DNS_UNCONFIRMED ? ptr : "",
	    st == DNS_FAILED ? " error=\"" : "",
	    st == DNS_FAILED ? ares_strerror(lk->error) : "",
	    st == DNS_FAILED ? "\"" : "");
	lookup_free_if_idle(lk);
	session_dns_done(s);
}

/* Finish now, or (inside dns_lookup_client) from the loop, never re-entering. */
static void
lookup_complete(struct dns_lookup *lk, enum dns_status st)
{
	static const struct timeval now = { 0, 0 };

	if (lk->s == NULL)
		return;
	if (lk->starting) {
		lk->result = st;
		evtimer_add(lk->timer, &now);
		return;
	}
	lookup_finish(lk, st);
}

static void
lookup_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_lookup *lk = arg;

	int i;

	(void)fd;
	(void)what;
	if (lk->result != DNS_NONE) {
		lookup_finish(lk, lk->result);
		return;
	}
	/* Out of time: a name confirmed by then still counts. */
	for (i = 0; i < lk->nnames; i++)
		if (lk->confirmed[i])
			break;
	lookup_finish(lk, i < lk->nnames ? DNS_CONFIRMED : DNS_TIMEOUT);
}

static enum dns_status
status_of(int ares_status)
{
	switch (ares_status) {
	case ARES_ENOTFOUND:
	case ARES_ENODATA:
		return DNS_NOPTR;
	case ARES_ETIMEOUT:
		return DNS_TIMEOUT;
	default:
		return DNS_FAILED;
	}
}

/* Every forward query has answered: the first confirmed name wins. */
static void
fwd_done(struct dns_lookup *lk)
{
	int i;

	for (i = 0; i < lk->nnames; i++)
		if (lk->confirmed[i])
			break;
	lookup_complete(lk, i < lk->nnames ? DNS_CONFIRMED :
	    lk->timedout ? DNS_TIMEOUT : DNS_UNCONFIRMED);
}

/*
 * Whether an A (AF_INET) or AAAA (AF_INET6) answer from the network holds
 * `addr` (4 or 16 bytes) among its first DNS_ADDRS_MAX records.
 */
int
dns_fwd_answer(const unsigned char *abuf, int alen, int family,
    const unsigned char *addr)
{
	struct ares_addrttl a4[DNS_ADDRS_MAX];
	struct ares_addr6ttl a6[DNS_ADDRS_MAX];
	int i, n = DNS_ADDRS_MAX;

	if (family == AF_INET &&
	    ares_parse_a_reply(abuf, alen, NULL, a4, &n) == ARES_SUCCESS) {
		for (i = 0; i < n && i < DNS_ADDRS_MAX; i++)
			if (memcmp(&a4[i].ipaddr, addr, 4) == 0)
				return 1;
	} else if (family == AF_INET6 &&
	    ares_parse_aaaa_reply(abuf, alen, NULL, a6, &n) == ARES_SUCCESS) {
		for (i = 0; i < n && i < DNS_ADDRS_MAX; i++)
			if (memcmp(&a6[i].ip6addr, addr, 16) == 0)
				return 1;
	}
	return 0;
}

/* A forward (A or AAAA) answer for names[idx]. */
static void
fwd_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_fwd *f = arg;
	struct dns_lookup *lk = f->lk;
	int found = 0;

	(void)timeouts;
	lk->pending--;
	aresloop_answered();
	if (lk->s == NULL) {
		lookup_free_if_idle(lk);
		return;
	}
	if (status == ARES_SUCCESS)
		found = dns_fwd_answer(abuf, alen, lk->family, lk->addr);
	else if (status == ARES_ETIMEOUT)
		lk->timedout = 1;
	lk->confirmed[f->idx] = found;
	if (lk->pending == 0)
		fwd_done(lk);
}

/* Keep a PTR name if it is a domain name and new; drop a trailing dot. */
static void
add_name(char (*names)[SMTP_DOMAIN_MAX + 1], int max, int *nnames,
    const char *name)
{
	char n[SMTP_DOMAIN_MAX + 2];
	size_t len;
	int i;

	if (name == NULL || *nnames >= max ||
	    (len = strlen(name)) == 0 || len >= sizeof(n))
		return;
	memcpy(n, name, len + 1);
	if (n[len - 1] == '.')
		n[--len] = '\0';
	if (len == 0 || len > SMTP_DOMAIN_MAX || n[0] == '[' || !smtp_domain_valid(n, 0))
		return;
	for (i = 0; i < *nnames; i++)
		if (strcasecmp(names[i], n) == 0)
			return;
	strlcpy(names[(*nnames)++], n, sizeof(names[0]));
}

/*
 * A PTR answer from the network for `addr` (4 or 16 bytes of `family`):
 * its distinct names that are domain names, without a trailing dot, into
 * names[] (at most `max`, *nnames of them); the c-ares status of the parse.
 */
int
dns_ptr_answer(const unsigned char *abuf, int alen, const unsigned char *addr,
    int family, char (*names)[SMTP_DOMAIN_MAX + 1], int max, int *nnames)
{
	struct hostent *he = NULL;
	int i, rc;

	*nnames = 0;
	rc = ares_parse_ptr_reply(abuf, alen, addr, family == AF_INET ? 4 : 16,
	    family, &he);
	if (rc != ARES_SUCCESS)
		return rc;
	for (i = 0; he->h_aliases != NULL && he->h_aliases[i] != NULL; i++)
		add_name(names, max, nnames, he->h_aliases[i]);
	add_name(names, max, nnames, he->h_name);
	ares_free_hostent(he);
	return ARES_SUCCESS;
}

static void
ptr_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_lookup *lk = arg;
	int i, rc, n;

	(void)timeouts;
	lk->pending--;
	aresloop_answered();
	if (lk->s == NULL) {
		lookup_free_if_idle(lk);
		return;
	}
	if (status != ARES_SUCCESS) {
		lk->error = status;
		lookup_complete(lk, status_of(status));
		return;
	}
	rc = dns_ptr_answer(abuf, alen, lk->addr, lk->family, lk->names,
	    DNS_NAMES_MAX, &lk->nnames);
	if (rc != ARES_SUCCESS) {
		lk->error = rc;
		lookup_complete(lk, status_of(rc));
		return;
	}
	if (lk->nnames == 0) {
		/* Only names that are not domain names: as good as none. */
		lookup_complete(lk, DNS_UNCONFIRMED);
		return;
	}
	/*
	 * Hold the lookup while the queries go out: c-ares may answer one at
	 * once (an error), and the last answer must not end it too early.
	 */
	lk->pending++;
	n = lk->nnames;
	for (i = 0; i < n; i++) {
		lk->fwd[i].lk = lk;
		lk->fwd[i].idx = i;
		lk->pending++;
		aresloop_query(lk->names[i], lk->family == AF_INET ? ns_t_a : ns_t_aaaa,
		    fwd_cb, &lk->fwd[i]);
	}
	lk->pending--;
	if (lk->s == NULL)
		lookup_free_if_idle(lk);
	else if (lk->pending == 0)
		fwd_done(lk);
}

/* "4.3.2.1.in-addr.arpa" or the 32 nibbles of ip6.arpa (RFC 1035, 3596). */
static void
reverse_name(const struct dns_lookup *lk, char *buf, size_t bufsz)
{
	static const char hex[] = "0123456789abcdef";
	size_t off = 0;
	int i;

	if (lk->family == AF_INET) {
		snprintf(buf, bufsz, "%u.%u.%u.%u.in-addr.arpa", lk->addr[3],
		    lk->addr[2], lk->addr[1], lk->addr[0]);
		return;
	}
	for (i = 15; i >= 0 && off + 4 < bufsz; i--) {
		buf[off++] = hex[lk->addr[i] & 0xf];
		buf[off++] = '.';
		buf[off++] = hex[lk->addr[i] >> 4];
		buf[off++] = '.';
	}
	buf[off] = '\0';
	strlcat(buf, "ip6.arpa", bufsz);
}

/* Send the PTR query; the lookup's time limit starts now. */
static void
lookup_start(struct dns_lookup *lk)
{
	static const struct timeval limit = { DNS_LOOKUP_TIMEOUT, 0 };
	char rname[128];

	evtimer_add(lk->timer, &limit);
	reverse_name(lk, rname, sizeof(rname));
	lk->starting = 1;
	lk->pending++;
	aresloop_query(rname, ns_t_ptr, ptr_cb, lk);
	lk->starting = 0;
}

/*
 * Start looking up the session's client.  session_dns_done(s) is called
 * when the lookup ends, from the event loop, never from inside this call.
 * -1 when no lookup can be made (the name is then unknown).
 */
int
dns_lookup_client(struct session *s)
{
	const struct sockaddr *sa = (const struct sockaddr *)&s->ss;
	const struct sockaddr_in6 *sin6 = (const void *)sa;
	struct dns_lookup *lk;

	if (!aresloop_usable())
		return -1;
	if ((lk = calloc(1, sizeof(*lk))) == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		lk->family = AF_INET;
		memcpy(lk->addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		lk->family = AF_INET;
		memcpy(lk->addr, &sin6->sin6_addr.s6_addr[12], 4);
	} else if (sa->sa_family == AF_INET6) {
		lk->family = AF_INET6;
		memcpy(lk->addr, &sin6->sin6_addr, 16);
	} else {
		free(lk);
		return -1;
	}
	if ((lk->timer = evtimer_new(env->base, lookup_timer_cb, lk)) == NULL) {
		free(lk);
		return -1;
	}
	lk->s = s;
	s->dns = lk;
	if (aresloop_waiting()) {
		lk->queued = 1;
		TAILQ_INSERT_TAIL(&waitq, lk, wait);
		return 0;
	}
	lookup_start(lk);
	return 0;
}

/* The session goes away before its lookup ended: drop its answers. */
void
dns_cancel(struct session *s)
{
	struct dns_lookup *lk = s->dns;

	if (lk == NULL)
		return;
	s->dns = NULL;
	lk->s = NULL;
	if (lk->queued) {
		TAILQ_REMOVE(&waitq, lk, wait);
		lk->queued = 0;
	}
	if (lk->timer)
		evtimer_del(lk->timer);
	lookup_free_if_idle(lk);
}
