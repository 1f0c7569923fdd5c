/*
 * netmask.c - IPv4 and IPv6 address prefixes (generic layer).
 *
 * Runs wherever the configuration is parsed (mailrootd as root, each daemon
 * unprivileged) and in smtpd for every connection.  The text comes from the
 * administrator's file; the addresses matched come from accept(2).  Pure
 * functions: no allocation, no I/O.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netmask.h"

static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* Turn ::ffff:a.b.c.d/96+n into a.b.c.d/n. */
static void
unmap(struct netmask *nm)
{
	if (nm->family != AF_INET6 || nm->prefix < 96 ||
	    memcmp(nm->addr, v4mapped, sizeof(v4mapped)) != 0)
		return;
	memmove(nm->addr, nm->addr + 12, 4);
	memset(nm->addr + 4, 0, 12);
	nm->family = AF_INET;
	nm->prefix -= 96;
}

/* 1 when no bit beyond the first `prefix` bits of addr[0..len) is set. */
static int
host_bits_clear(const uint8_t *addr, size_t len, unsigned prefix)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned first = (unsigned)i * 8;
		uint8_t keep;

		if (first + 8 <= prefix)
			continue;
		keep = first >= prefix ? 0 : (uint8_t)(0xff << (8 - (prefix - first)));
		if (addr[i] & (uint8_t)~keep)
			return 0;
	}
	return 1;
}

int
netmask_parse(const char *s, struct netmask *nm, char *err, size_t errsz)
{
	char text[NETMASK_STRLEN], canon[NETMASK_STRLEN];
	const char *slash, *p;
	unsigned long prefix;
	unsigned max;
	size_t alen;

	memset(nm, 0, sizeof(*nm));
	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(text)) {
		snprintf(err, errsz, "\"%s\" is not an IPv4 or IPv6 address or prefix", s);
		return -1;
	}
	memcpy(text, s, alen);
	text[alen] = '\0';
	if (inet_pton(AF_INET, text, nm->addr) == 1) {
		nm->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, text, nm->addr) == 1) {
		nm->family = AF_INET6;
		max = 128;
	} else {
		snprintf(err, errsz, "\"%s\" is not a numeric IPv4 or IPv6 address", text);
		return -1;
	}
	prefix = max;
	if (slash) {
		p = slash + 1;
		/* Digits only, no sign, no blanks, no leading zero but "0". */
		if (*p == '\0' || strspn(p, "0123456789") != strlen(p) ||
		    (p[0] == '0' && p[1] != '\0') || strlen(p) > 3 ||
		    (prefix = strtoul(p, NULL, 10)) > max) {
			snprintf(err, errsz, "bad prefix length \"/%s\" in \"%s\" "
			    "(0 to %u)", p, s, max);
			return -1;
		}
	}
	nm->prefix = (unsigned)prefix;
	if (!host_bits_clear(nm->addr, nm->family == AF_INET ? 4 : 16, nm->prefix)) {
		struct netmask fixed = *nm;
		size_t i, len = nm->family == AF_INET ? 4 : 16;

		for (i = 0; i < len; i++) {
			unsigned first = (unsigned)i * 8;

			if (first >= fixed.prefix)
				fixed.addr[i] = 0;
			else if (first + 8 > fixed.prefix)
				fixed.addr[i] &= (uint8_t)(0xff << (8 - (fixed.prefix - first)));
		}
		snprintf(err, errsz, "\"%s\" has bits set beyond the prefix length "
		    "(did you mean %s?)", s, netmask_format(&fixed, canon, sizeof(canon)));
		return -1;
	}
	unmap(nm);
	return 0;
}

int
netmask_match(const struct netmask *nm, int family, const void *addr)
{
	const uint8_t *a = addr;
	unsigned full, rest;

	if (family == AF_INET6 && memcmp(a, v4mapped, sizeof(v4mapped)) == 0) {
		family = AF_INET;
		a += 12;
	}
	if (family != nm->family)
		return 0;
	full = nm->prefix / 8;
	rest = nm->prefix % 8;
	if (memcmp(a, nm->addr, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[full] ^ nm->addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

int
netmask_match_sa(const struct netmask *nm, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return netmask_match(nm, AF_INET,
		    &((const struct sockaddr_in *)(const void *)sa)->sin_addr);
	if (sa->sa_family == AF_INET6)
		return netmask_match(nm, AF_INET6,
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
	return 0;
}

char *
netmask_format(const struct netmask *nm, char *buf, size_t bufsz)
{
	char a[INET6_ADDRSTRLEN];

	if (inet_ntop(nm->family, nm->addr, a, sizeof(a)) == NULL)
		strlcpy(a, "?", sizeof(a));
	snprintf(buf, bufsz, "%s/%u", a, nm->prefix);
	return buf;
}
