/*
 * netmask.h - IPv4 and IPv6 address prefixes: parse, match (generic layer).
 *
 * Used by the configuration's connection and relay rules.  An IPv4-mapped
 * IPv6 address (::ffff:a.b.c.d) is the IPv4 address it carries, both in a
 * prefix and in a client address, so a rule written for IPv4 matches a
 * client that reached an IPv6 wildcard listener.
 */
#ifndef MR_NETMASK_H
#define MR_NETMASK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define NETMASK_STRLEN	64	/* "ffff:...:ffff/128" and its NUL fit */

struct netmask {
	int		family;		/* AF_INET or AF_INET6 */
	uint8_t		addr[16];	/* network byte order; 4 used for AF_INET */
	unsigned	prefix;		/* 0..32 or 0..128 */
};

/*
 * Parse "ADDRESS" or "ADDRESS/PREFIX" (numeric IPv4 dotted quad or IPv6
 * text; PREFIX a decimal without leading zeros, at most 32 or 128).  An
 * address without a prefix is a single host.  Bits set beyond the prefix
 * are refused, as they most often are a typo.  Returns 0, or -1 with a
 * reason in err.
 */
int	netmask_parse(const char *s, struct netmask *nm, char *err, size_t errsz);
/* 1 when the address (family, 4 or 16 bytes) is inside the prefix. */
int	netmask_match(const struct netmask *nm, int family, const void *addr);
/* 1 when the socket address (AF_INET, AF_INET6) is inside the prefix. */
int	netmask_match_sa(const struct netmask *nm, const struct sockaddr *sa);
/* The canonical text form, "192.0.2.0/24" or "2001:db8::/32", into buf. */
char	*netmask_format(const struct netmask *nm, char *buf, size_t bufsz);

#endif
