/*
 * deliverd_dns.c - where to connect for a destination: MX, then A/AAAA
 * (deliverd, unprivileged, chrooted).
 *
 * c-ares runs inside deliverd's libevent loop (common/aresloop.c, as in
 * smtpd), and no call blocks.  The channel is
 * made before the chroot (dns_init, from the pre_drop hook), while
 * /etc/resolv.conf can still be read; it looks names up in the DNS only
 * (lookups "b"), never in the chroot's absent hosts file.  The servers of
 * mailroot.conf's dns-server statements replace resolv.conf's when a
 * configuration arrives, once the channel is idle.
 *
 * DNS_MODE_MX (RFC 5321 5.1, RFC 7505): the MX records of the domain.
 * NXDOMAIN fails now (MX_NXDOMAIN).  An answer whose MX records all name
 * "." is a null MX (MX_NULLMX); a "." among real hosts is ignored, and so
 * is a host name that is not a valid domain name (only such names:
 * MX_TEMPFAIL; c-ares itself refuses a whole answer with a name that has
 * characters no host name has).  No MX records at all is the implicit MX:
 * the domain's own A/AAAA as one host of preference 0 (none either:
 * MX_NOHOST).  Hosts are sorted by preference, equal preferences
 * shuffled, at most MX_HOSTS_MAX kept; each host's AAAA and A are looked
 * up and a host without any address is dropped (none left: MX_TEMPFAIL).
 * A server failure, a refusal or a timeout is MX_TEMPFAIL.  When the
 * whole-lookup limit strikes during the address queries, the hosts whose
 * addresses have come in by then are the result.
 *
 * DNS_MODE_HOST (a smart host or a route host by name): its A/AAAA as one
 * host.  A name that does not exist or has no address is MX_TEMPFAIL, not
 * a failure: it is this server's configuration that is wrong, and mail
 * must wait for the administrator, not bounce.
 *
 * DNS_MODE_LITERAL ("[192.0.2.1]" routes): the numeric address as one
 * host; no query.
 *
 * A host's addresses alternate between the families, IPv6 first, each
 * family in the order the server gave; so both families are tried even
 * when MX_ADDRS_MAX cuts the list.  The result always reaches the caller
 * from the event loop, never from inside dns_lookup() or a c-ares call.
 *
 * Trust boundary: answers come from the network, perhaps from the
 * destination's own DNS server.  A name from an answer is used only when it
 * is a valid domain name (RFC 5321 4.1.2 syntax), lower-cased, without its
 * trailing dot; counts are bounded (MX_CANDIDATES_MAX records looked at,
 * MX_HOSTS_MAX hosts, MX_ADDRS_MAX addresses per family and host);
 * unspecified and multicast addresses are dropped; a lookup takes at most
 * DNS_LOOKUP_TIMEOUT seconds whatever the servers do.  A query cancelled
 * or timed out stays allocated until c-ares has answered all of its
 * queries (within the c-ares timeouts), so a late answer never touches
 * freed memory.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/queue.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ares.h>
#include <event2/event.h>

#include "aresloop.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "deliverd_dns.h"

#define DNS_LOOKUP_TIMEOUT	10	/* seconds for the whole lookup */
#define DNS_TRY_TIMEOUT_MS	1500	/* c-ares: first try; later tries double */
#define DNS_TRIES		2	/* so each phase (MX, then A/AAAA) <= 4.5 s */
#define MX_CANDIDATES_MAX	64	/* MX records of one answer looked at */
#define DNS_RECORDS_MAX		32	/* A or AAAA records parsed per answer */

/* One A or AAAA query of one host. */
struct dns_addr_query {
	struct dns_query	*q;
	int			 host;		/* index in q->res.hosts */
	int			 family;	/* AF_INET or AF_INET6 */
};

struct dns_query {
	dns_done_fn		 done;		/* NULL once cancelled or called */
	void			*arg;
	enum dns_mode		 mode;
	uint16_t		 port;
	char			 name[SMTP_DOMAIN_MAX + 1];
	unsigned		 pending;	/* c-ares queries not yet answered */
	int			 finished;	/* res is final; the timer delivers it */
	int			 calling;	/* inside done() */
	int			 implicit;	/* MX mode: no MX, the name's own A/AAAA */
	int			 addr_phase;	/* the A/AAAA queries went out */
	int			 queued;	/* on waitq: a server change is due */
	TAILQ_ENTRY(dns_query)	 wait;
	struct event		*timer;		/* whole-lookup limit, then delivery */
	struct dns_addr_query	 aq[MX_HOSTS_MAX][2];
	struct dns_host_addrs	 found[MX_HOSTS_MAX];
	struct mx_result	 res;
};

/*
 * Lookups that wait for a server change (aresloop_waiting), started from
 * the channel's ready callback.
 */
static TAILQ_HEAD(, dns_query) waitq = TAILQ_HEAD_INITIALIZER(waitq);

static void lookup_start(struct dns_query *);

/* The servers changed: start the lookups that waited for it. */
static void
waitq_run(void)
{
	struct dns_query *q;

	while ((q = TAILQ_FIRST(&waitq)) != NULL) {
		TAILQ_REMOVE(&waitq, q, wait);
		q->queued = 0;
		lookup_start(q);
	}
}

/* Before the chroot: make the channel (it reads /etc/resolv.conf now). */
void
dns_init(void)
{
	char why[256];

	if (aresloop_init(DNS_TRY_TIMEOUT_MS, DNS_TRIES, waitq_run, why, sizeof(why)) == -1)
		log_warnx("dns: %s; no MX lookups", why);
}

/* A configuration arrived: use its dns-server list, or the system's servers. */
void
dns_configure(const struct config *c)
{
	struct aresloop_server sv[CONF_DNS_SERVERS_MAX];
	char why[256];
	size_t i;

	if (aresloop_attach(env->base, why, sizeof(why)) == -1) {
		log_warnx("dns: %s", why);
		return;
	}
	for (i = 0; i < c->ndns_servers; i++) {
		sv[i].addr = c->dns_servers[i].addr;
		sv[i].port = c->dns_servers[i].port;
	}
	if (aresloop_servers(sv, c->ndns_servers, why, sizeof(why)) == -1)
		log_warnx("dns: %s; keeping the old ones", why);
}

/* ---- one lookup ------------------------------------------------------------------ */

static void
query_free_if_idle(struct dns_query *q)
{
	if (q->done != NULL || q->calling || q->pending > 0)
		return;
	if (q->timer)
		event_free(q->timer);
	free(q);
}

/* The result is final: the caller hears of it from the loop (zero timer). */
static void
query_finish(struct dns_query *q, enum mx_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
query_finish(struct dns_query *q, enum mx_status st, const char *fmt, ...)
{
	static const struct timeval now = { 0, 0 };
	va_list ap;

	if (q->finished)
		return;
	q->finished = 1;
	q->res.status = st;
	if (st != MX_OK)
		q->res.nhosts = 0;
	if (fmt != NULL) {
		va_start(ap, fmt);
		(void)vsnprintf(q->res.why, sizeof(q->res.why), fmt, ap);
		va_end(ap);
	}
	if (q->queued) {
		TAILQ_REMOVE(&waitq, q, wait);
		q->queued = 0;
	}
	evtimer_del(q->timer);
	evtimer_add(q->timer, &now);
}

/* A result's status as a short word for log lines ("nullmx"). */
const char *
dns_mx_status_name(enum mx_status st)
{
	switch (st) {
	case MX_OK:		return "ok";
	case MX_TEMPFAIL:	return "tempfail";
	case MX_NXDOMAIN:	return "nxdomain";
	case MX_NULLMX:		return "nullmx";
	case MX_NOHOST:		return "nohost";
	}
	return "?";
}

static void
query_deliver(struct dns_query *q)
{
	dns_done_fn done = q->done;

	log_debug("dns: lookup name=%s mode=%d result=%s hosts=%zu%s%s%s", q->name,
	    (int)q->mode, dns_mx_status_name(q->res.status), q->res.nhosts,
	    q->res.why[0] ? " why=\"" : "", q->res.why, q->res.why[0] ? "\"" : "");
	q->done = NULL;
	q->calling = 1;
	done(&q->res, q->arg);
	q->calling = 0;
	query_free_if_idle(q);
}

/* A c-ares status as words for `why`. */
static const char *
status_words(int st)
{
	switch (st) {
	case ARES_ENOTFOUND:	return "no such domain";
	case ARES_ENODATA:	return "no address";
	case ARES_ETIMEOUT:	return "DNS timeout";
	case ARES_ESERVFAIL:	return "DNS server failure";
	case ARES_EREFUSED:	return "DNS query refused";
	case ARES_ECONNREFUSED:	return "DNS server refused or unreachable";
	default:		return ares_strerror(st);
	}
}

static int
addr_usable4(const struct in_addr *a)
{
	uint32_t h = ntohl(a->s_addr);

	return h != INADDR_ANY && h != INADDR_BROADCAST && !IN_MULTICAST(h);
}

static int
addr_usable6(const struct in6_addr *a)
{
	return !IN6_IS_ADDR_UNSPECIFIED(a) && !IN6_IS_ADDR_MULTICAST(a);
}

static void
host_add_addr(struct mx_host *h, int family, const void *addr, uint16_t port)
{
	struct sockaddr_storage *ss = &h->addrs[h->naddrs];

	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, addr, sizeof(sin6->sin6_addr));
		h->addrlens[h->naddrs] = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, addr, sizeof(sin->sin_addr));
		h->addrlens[h->naddrs] = sizeof(*sin);
	}
	h->naddrs++;
}

/* Both families of one host into its addrs[], alternating, IPv6 first. */
static void
host_fill(struct mx_host *h, const struct dns_host_addrs *f, uint16_t port)
{
	size_t i6 = 0, i4 = 0;

	h->naddrs = 0;
	while (h->naddrs < MX_ADDRS_MAX && (i6 < f->n6 || i4 < f->n4)) {
		if (i6 < f->n6)
			host_add_addr(h, AF_INET6, &f->v6[i6++], port);
		if (h->naddrs < MX_ADDRS_MAX && i4 < f->n4)
			host_add_addr(h, AF_INET, &f->v4[i4++], port);
	}
}

/*
 * Why a host has no address: a failure (timeout, SERVFAIL, ...) of either
 * query if there is one, else "no such domain" or "no address".
 */
static int
host_status(const struct dns_host_addrs *f)
{
	if (f->status6 != ARES_SUCCESS && f->status6 != ARES_ENODATA &&
	    f->status6 != ARES_ENOTFOUND)
		return f->status6;
	if (f->status4 != ARES_SUCCESS && f->status4 != ARES_ENODATA &&
	    f->status4 != ARES_ENOTFOUND)
		return f->status4;
	if (f->status6 == ARES_ENOTFOUND || f->status4 == ARES_ENOTFOUND)
		return ARES_ENOTFOUND;
	return ARES_ENODATA;
}

/*
 * The address queries are over (or out of time): keep the hosts that have
 * an address, in order.  `timedout`: the whole-lookup limit struck.
 */
static void
addrs_done(struct dns_query *q, int timedout)
{
	size_t i, n = 0;
	int st = ARES_ENODATA, hst;

	for (i = 0; i < q->res.nhosts; i++) {
		host_fill(&q->res.hosts[i], &q->found[i], q->port);
		if (q->res.hosts[i].naddrs == 0) {
			/* The first real failure is the reason given. */
			hst = host_status(&q->found[i]);
			if (st == ARES_ENODATA || (st == ARES_ENOTFOUND &&
			    hst != ARES_ENODATA))
				st = hst;
			continue;
		}
		if (n != i)
			memcpy(&q->res.hosts[n], &q->res.hosts[i], sizeof(q->res.hosts[0]));
		n++;
	}
	q->res.nhosts = n;
	if (n > 0) {
		query_finish(q, MX_OK, NULL);
		return;
	}
	if (timedout)
		st = ARES_ETIMEOUT;
	if (q->mode == DNS_MODE_HOST)
		query_finish(q, MX_TEMPFAIL, "host %s: %s", q->name, status_words(st));
	else if (q->implicit && (st == ARES_ENODATA || st == ARES_ENOTFOUND))
		query_finish(q, MX_NOHOST, "%s has no MX and no address", q->name);
	else if (q->implicit)
		query_finish(q, MX_TEMPFAIL, "%s has no MX; its address: %s", q->name,
		    status_words(st));
	else
		query_finish(q, MX_TEMPFAIL, "no MX host of %s has an address (%s)",
		    q->name, status_words(st));
}

/*
 * An A (AF_INET) or AAAA (AF_INET6) answer from the network into f's
 * usable addresses of that family (appended, at most MX_ADDRS_MAX); the
 * c-ares status of the parse.
 */
int
dns_addr_answer(const unsigned char *abuf, int alen, int family,
    struct dns_host_addrs *f)
{
	struct ares_addrttl a4[DNS_RECORDS_MAX];
	struct ares_addr6ttl a6[DNS_RECORDS_MAX];
	int i, n = DNS_RECORDS_MAX, status;

	if (family == AF_INET6)
		status = ares_parse_aaaa_reply(abuf, alen, NULL, a6, &n);
	else
		status = ares_parse_a_reply(abuf, alen, NULL, a4, &n);
	if (status == ARES_SUCCESS && family == AF_INET6) {
		for (i = 0; i < n && i < DNS_RECORDS_MAX && f->n6 < MX_ADDRS_MAX; i++) {
			memcpy(&f->v6[f->n6], &a6[i].ip6addr, sizeof(f->v6[0]));
			if (addr_usable6(&f->v6[f->n6]))
				f->n6++;
		}
	} else if (status == ARES_SUCCESS) {
		for (i = 0; i < n && i < DNS_RECORDS_MAX && f->n4 < MX_ADDRS_MAX; i++)
			if (addr_usable4(&a4[i].ipaddr))
				f->v4[f->n4++] = a4[i].ipaddr;
	}
	return status;
}

/* One A or AAAA answer of one host. */
static void
addr_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_addr_query *a = arg;
	struct dns_query *q = a->q;
	struct dns_host_addrs *f = &q->found[a->host];

	(void)timeouts;
	q->pending--;
	aresloop_answered();
	if (q->done == NULL || q->finished) {
		query_free_if_idle(q);
		return;
	}
	if (status == ARES_SUCCESS)
		status = dns_addr_answer(abuf, alen, a->family, f);
	if (a->family == AF_INET6)
		f->status6 = status;
	else
		f->status4 = status;
	if (q->pending == 0)
		addrs_done(q, 0);
}

static void
send_query(struct dns_query *q, const char *name, int type, ares_callback cb,
    void *arg)
{
	q->pending++;
	aresloop_query(name, type, cb, arg);
}

/* AAAA and A of every host in res.hosts[]. */
static void
addrs_start(struct dns_query *q)
{
	size_t i;

	q->addr_phase = 1;
	/*
	 * Hold the lookup while the queries go out: c-ares may answer one at
	 * once (an error), and that answer must not end the lookup early.
	 */
	q->pending++;
	for (i = 0; i < q->res.nhosts; i++) {
		q->aq[i][0] = (struct dns_addr_query){ q, (int)i, AF_INET6 };
		q->aq[i][1] = (struct dns_addr_query){ q, (int)i, AF_INET };
		send_query(q, q->res.hosts[i].name, ns_t_aaaa, addr_cb, &q->aq[i][0]);
		send_query(q, q->res.hosts[i].name, ns_t_a, addr_cb, &q->aq[i][1]);
	}
	q->pending--;
	if (q->done == NULL || q->finished)
		query_free_if_idle(q);
	else if (q->pending == 0)
		addrs_done(q, 0);
}

/*
 * A name from an answer (or the caller) as we use it: lower case, no
 * trailing dot, a valid domain name (RFC 5321 4.1.2), not a literal.
 * 0, or -1 when it is not usable.  "." gives "" (0): the null MX.
 */
static int
name_clean(const char *in, char *out, size_t outsz)
{
	size_t len, i;

	if (in == NULL || (len = strlen(in)) >= outsz || len > SMTP_DOMAIN_MAX + 1)
		return -1;
	if (len > 0 && in[len - 1] == '.')
		len--;
	for (i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[len] = '\0';
	if (len == 0)
		return 0;
	if (len > SMTP_DOMAIN_MAX || out[0] == '[' || !smtp_domain_valid(out, 0))
		return -1;
	return 0;
}

static void
host_set(struct mx_host *h, const char *name, uint16_t pref)
{
	memset(h, 0, sizeof(*h));
	/* Both are SMTP_DOMAIN_MAX + 1 long: the copy fits. */
	(void)strlcpy(h->name, name, sizeof(h->name));
	h->pref = pref;
}

/* The domain has no MX records: its own A/AAAA (RFC 5321 5.1). */
static void
implicit_mx(struct dns_query *q)
{
	q->implicit = 1;
	q->res.nhosts = 1;
	host_set(&q->res.hosts[0], q->name, 0);
	addrs_start(q);
}

static int
mx_cmp(const void *a, const void *b)
{
	const struct mx_host *x = a, *y = b;

	return (int)x->pref - (int)y->pref;
}

/* Sorted by preference, each run of equal preferences shuffled. */
static void
mx_order(struct mx_host *h, size_t n)
{
	struct mx_host tmp;
	size_t i, j, k;

	qsort(h, n, sizeof(h[0]), mx_cmp);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && h[j].pref == h[i].pref; j++)
			;
		for (k = j - 1; k > i; k--) {
			size_t r = i + arc4random_uniform((uint32_t)(k - i + 1));

			if (r != k) {
				tmp = h[k];
				h[k] = h[r];
				h[r] = tmp;
			}
		}
	}
}

/*
 * An MX answer from the network as the hosts to try, into res->hosts[]:
 * names cleaned (RFC 5321 4.1.2), duplicates merged at their best
 * preference, sorted (equal preferences shuffled), at most MX_HOSTS_MAX of
 * the first MX_CANDIDATES_MAX records.  The c-ares status of the parse
 * (ENODATA: no MX records); on success res->nhosts may be 0, and then
 * res->status is MX_NULLMX (only "." hosts) or MX_TEMPFAIL (no usable name).
 */
int
dns_mx_answer(const unsigned char *abuf, int alen, struct mx_result *res)
{
	struct ares_mx_reply *mx = NULL, *m;
	struct mx_host *cand;
	char name[SMTP_DOMAIN_MAX + 2];
	size_t n = 0, i;
	int nnull = 0, nbad = 0, status;

	res->nhosts = 0;
	if ((status = ares_parse_mx_reply(abuf, alen, &mx)) != ARES_SUCCESS)
		return status;
	if ((cand = calloc(MX_CANDIDATES_MAX, sizeof(*cand))) == NULL) {
		ares_free_data(mx);
		return ARES_ENOMEM;
	}
	for (m = mx; m != NULL && n < MX_CANDIDATES_MAX; m = m->next) {
		if (name_clean(m->host, name, sizeof(name)) == -1) {
			nbad++;
			continue;
		}
		if (name[0] == '\0') {
			nnull++;
			continue;
		}
		for (i = 0; i < n; i++)
			if (strcmp(cand[i].name, name) == 0)
				break;
		if (i < n) {
			/* The same host twice: its best preference counts. */
			if (m->priority < cand[i].pref)
				cand[i].pref = m->priority;
			continue;
		}
		host_set(&cand[n++], name, m->priority);
	}
	ares_free_data(mx);
	if (n == 0)
		res->status = nnull > 0 && nbad == 0 ? MX_NULLMX : MX_TEMPFAIL;
	else {
		mx_order(cand, n);
		res->status = MX_OK;
		res->nhosts = n < MX_HOSTS_MAX ? n : MX_HOSTS_MAX;
		memcpy(res->hosts, cand, res->nhosts * sizeof(res->hosts[0]));
	}
	free(cand);
	return ARES_SUCCESS;
}

static void
mx_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;

	(void)timeouts;
	q->pending--;
	aresloop_answered();
	if (q->done == NULL || q->finished) {
		query_free_if_idle(q);
		return;
	}
	if (status == ARES_SUCCESS)
		status = dns_mx_answer(abuf, alen, &q->res);
	switch (status) {
	case ARES_SUCCESS:
		break;
	case ARES_ENOTFOUND:
		query_finish(q, MX_NXDOMAIN, "%s: no such domain", q->name);
		return;
	case ARES_ENODATA:
		implicit_mx(q);
		return;
	default:
		query_finish(q, MX_TEMPFAIL, "MX of %s: %s", q->name,
		    status_words(status));
		return;
	}
	if (q->res.nhosts == 0) {
		if (q->res.status == MX_NULLMX)
			query_finish(q, MX_NULLMX, "%s accepts no mail (null MX)", q->name);
		else
			query_finish(q, MX_TEMPFAIL, "MX of %s: no usable host name",
			    q->name);
		return;
	}
	addrs_start(q);
}

/* The first queries go out (the time limit already runs). */
static void
lookup_start(struct dns_query *q)
{
	if (q->mode == DNS_MODE_MX) {
		send_query(q, q->name, ns_t_mx, mx_cb, q);
		return;
	}
	q->res.nhosts = 1;
	host_set(&q->res.hosts[0], q->name, 0);
	addrs_start(q);
}

/* The whole-lookup limit struck, or (finished) the result is to be told. */
static void
query_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;

	(void)fd;
	(void)what;
	if (q->done == NULL)
		return;
	if (!q->finished) {
		/* Out of time: hosts whose addresses came in by now still count. */
		if (q->addr_phase)
			addrs_done(q, 1);
		else
			query_finish(q, MX_TEMPFAIL, "%s of %s: DNS timeout",
			    q->mode == DNS_MODE_MX ? "MX" : "address", q->name);
		return;		/* query_finish re-armed the timer */
	}
	query_deliver(q);
}

/* "192.0.2.1", "[192.0.2.1]", "2001:db8::1", "[IPv6:2001:db8::1]": one host. */
static void
literal(struct dns_query *q, const char *name)
{
	char buf[INET6_ADDRSTRLEN + 8];
	struct in6_addr a6;
	struct in_addr a4;
	size_t len = strlen(name);
	const char *p = buf;
	struct mx_host *h = &q->res.hosts[0];

	if (len >= 2 && name[0] == '[' && name[len - 1] == ']') {
		name++;
		len -= 2;
	}
	if (len >= sizeof(buf)) {
		query_finish(q, MX_TEMPFAIL, "route is not an IP address");
		return;
	}
	memcpy(buf, name, len);
	buf[len] = '\0';
	if (strncasecmp(p, "IPv6:", 5) == 0)
		p += 5;		/* RFC 5321 4.1.3 IPv6-address-literal */
	q->res.nhosts = 1;
	memset(h, 0, sizeof(*h));
	if (p == buf && inet_pton(AF_INET, p, &a4) == 1) {
		host_add_addr(h, AF_INET, &a4, q->port);
		inet_ntop(AF_INET, &a4, h->name, sizeof(h->name));
	} else if (inet_pton(AF_INET6, p, &a6) == 1) {
		host_add_addr(h, AF_INET6, &a6, q->port);
		inet_ntop(AF_INET6, &a6, h->name, sizeof(h->name));
	} else {
		query_finish(q, MX_TEMPFAIL, "route is not an IP address");
		return;
	}
	query_finish(q, MX_OK, NULL);
}

/*
 * Start looking up where to deliver for `name`; `done` runs once, from the
 * event loop.  NULL when no lookup can be made.
 */
struct dns_query *
dns_lookup(const char *name, enum dns_mode mode, uint16_t port, dns_done_fn done,
    void *arg)
{
	static const struct timeval limit = { DNS_LOOKUP_TIMEOUT, 0 };
	struct dns_query *q;

	if (done == NULL || (mode != DNS_MODE_LITERAL && !aresloop_usable()))
		return NULL;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	if ((q->timer = evtimer_new(env->base, query_timer_cb, q)) == NULL) {
		free(q);
		return NULL;
	}
	q->done = done;
	q->arg = arg;
	q->mode = mode;
	q->port = port;
	if (mode == DNS_MODE_LITERAL) {
		(void)strlcpy(q->name, name, sizeof(q->name));
		literal(q, name);
		return q;
	}
	if (name_clean(name, q->name, sizeof(q->name)) == -1 || q->name[0] == '\0') {
		/* Not a domain name: it cannot exist (a host: the config is wrong). */
		if (mode == DNS_MODE_HOST)
			query_finish(q, MX_TEMPFAIL, "host name is not a valid domain");
		else
			query_finish(q, MX_NXDOMAIN, "not a valid domain name");
		return q;
	}
	evtimer_add(q->timer, &limit);
	if (aresloop_waiting()) {
		q->queued = 1;
		TAILQ_INSERT_TAIL(&waitq, q, wait);
	} else
		lookup_start(q);
	/*
	 * The analyzer thinks lookup_start() may free q: only when q->done is
	 * NULL (query_free_if_idle), and done was set above and is cleared by
	 * dns_cancel() alone, which the caller cannot have called yet.
	 */
	return q;	/* NOLINT(clang-analyzer-unix.Malloc) */
}

/* Forget a lookup: its callback will not run; late answers are dropped. */
void
dns_cancel(struct dns_query *q)
{
	if (q == NULL || q->done == NULL)
		return;
	q->done = NULL;
	if (q->queued) {
		TAILQ_REMOVE(&waitq, q, wait);
		q->queued = 0;
	}
	evtimer_del(q->timer);
	query_free_if_idle(q);
}
