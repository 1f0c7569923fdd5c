/*
 * deliverd_dns.h - where to connect for a destination: MX, then A/AAAA
 * (RFC 5321 5.1, RFC 7505), with c-ares inside deliverd's event loop.
 */
#ifndef DELIVERD_DNS_H
#define DELIVERD_DNS_H

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <stdint.h>

#include "smtp_parse.h"

struct config;

#define MX_HOSTS_MAX	16	/* MX hosts used of one domain */
#define MX_ADDRS_MAX	8	/* addresses used of one host */

enum mx_status {
	MX_OK = 0,		/* hosts[] to try, in order */
	MX_TEMPFAIL,		/* SERVFAIL, timeout, no address for any host: try later */
	MX_NXDOMAIN,		/* the domain does not exist: fail now (5.1.2) */
	MX_NULLMX,		/* "MX 0 ." (RFC 7505): accepts no mail (5.1.10) */
	MX_NOHOST		/* no MX and no A/AAAA: fail now (5.1.2) */
};

struct mx_host {
	char			 name[SMTP_DOMAIN_MAX + 1];	/* lower case, no trailing dot */
	uint16_t		 pref;
	size_t			 naddrs;
	struct sockaddr_storage	 addrs[MX_ADDRS_MAX];	/* port set to the caller's */
	socklen_t		 addrlens[MX_ADDRS_MAX];
};

struct mx_result {
	enum mx_status	 status;
	char		 why[256];	/* for logs and NDRs when not MX_OK */
	size_t		 nhosts;
	struct mx_host	 hosts[MX_HOSTS_MAX];
};

/* What the A and AAAA queries of one host found. */
struct dns_host_addrs {
	struct in6_addr		 v6[MX_ADDRS_MAX];
	struct in_addr		 v4[MX_ADDRS_MAX];
	size_t			 n6, n4;
	int			 status6, status4;	/* c-ares status */
};

/*
 * The pure parts of a lookup (answer bytes in, hosts out; also the fuzz
 * target's entry points): an MX answer as res->hosts[] (the c-ares status;
 * on success with no hosts, res->status is MX_NULLMX or MX_TEMPFAIL), and an
 * A/AAAA answer appended to f's addresses of that family.
 */
int	dns_mx_answer(const unsigned char *abuf, int alen, struct mx_result *res);
int	dns_addr_answer(const unsigned char *abuf, int alen, int family,
	    struct dns_host_addrs *f);

/* A status as a short word for log lines: "ok", "tempfail", "nxdomain", ... */
const char *dns_mx_status_name(enum mx_status);

/*
 * Called once per lookup with its result (valid during the call only),
 * never from inside dns_lookup() itself.
 */
typedef void (*dns_done_fn)(const struct mx_result *, void *arg);

/* Before the chroot (pre_drop): make the channel, reading /etc/resolv.conf. */
void	dns_init(void);
/* A configuration arrived: use its dns-server statements (none: resolv.conf's). */
void	dns_configure(const struct config *);

enum dns_mode {
	DNS_MODE_MX,		/* MX of `name` (sorted by preference, equal ones
				   shuffled), each host's A and AAAA; no MX: the
				   name's own A/AAAA (implicit MX) */
	DNS_MODE_HOST,		/* A and AAAA of `name` only (a smart host by name) */
	DNS_MODE_LITERAL	/* `name` is a numeric IPv4/IPv6 address: no query */
};

/*
 * Look up where to deliver for `name`; every address gets `port`.  Returns
 * a handle for dns_cancel(), or NULL when the lookup could not start
 * (then `done` is not called).  Each lookup is bounded in time.
 */
struct dns_query;
struct dns_query *dns_lookup(const char *name, enum dns_mode, uint16_t port,
	    dns_done_fn done, void *arg);
/* Forget a lookup: its callback will not run. */
void	dns_cancel(struct dns_query *);

#endif
