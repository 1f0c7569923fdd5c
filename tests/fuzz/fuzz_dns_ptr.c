/*
 * fuzz_dns_ptr.c - libFuzzer target of smtpd's reverse DNS answer handling
 * (smtpd/smtpd_dns.c: dns_ptr_answer, dns_fwd_answer); replayed over its
 * seed corpus by make check.
 *
 * Trust boundary: the input stands for a DNS answer packet as c-ares hands
 * it to smtpd's callbacks, perhaps from the client's own DNS server.  Input
 * layout: byte 0 picks the family (bit 0: IPv6) of the client address, the
 * next 16 bytes are that address (4 used for IPv4), the rest is the packet,
 * parsed as the PTR answer for that address and as the forward answer of
 * one of its names.  Beyond memory safety, the target abort()s when a name
 * handed on is not a terminated, valid domain name without a trailing dot,
 * appears twice (ignoring case), or there are more than asked for.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ares.h>

#include "smtpd.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define NAMES_MAX	4	/* as smtpd_dns.c's DNS_NAMES_MAX */

/* smtpd_dns.c's lookups are not run here: only its pure parts. */
void
session_dns_done(struct session *s)
{
	(void)s;
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char names[NAMES_MAX + 1][SMTP_DOMAIN_MAX + 1];
	unsigned char addr[16];
	int family, n = -1, i, j, st, alen;
	size_t len;

	if (size < 17)
		return 0;
	family = data[0] & 1 ? AF_INET6 : AF_INET;
	memcpy(addr, data + 1, sizeof(addr));
	data += 17;
	size -= 17;
	alen = size > 65535 ? 65535 : (int)size;

	memset(names, 0xa5, sizeof(names));
	st = dns_ptr_answer(data, alen, addr, family, names, NAMES_MAX, &n);
	if (n < 0 || n > NAMES_MAX || (st != ARES_SUCCESS && n != 0))
		abort();
	/* the slot past `max` is never written */
	for (j = 0; j < (int)sizeof(names[0]); j++)
		if ((unsigned char)names[NAMES_MAX][j] != 0xa5)
			abort();
	for (i = 0; i < n; i++) {
		if (memchr(names[i], '\0', sizeof(names[i])) == NULL)
			abort();
		len = strlen(names[i]);
		if (len == 0 || names[i][len - 1] == '.' || names[i][0] == '[' ||
		    !smtp_domain_valid(names[i], 0))
			abort();
		for (j = 0; j < i; j++)
			if (strcasecmp(names[i], names[j]) == 0)
				abort();
	}
	(void)dns_fwd_answer(data, alen, family, addr);
	return 0;
}
