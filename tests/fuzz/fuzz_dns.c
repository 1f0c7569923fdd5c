/*
 * fuzz_dns.c - libFuzzer target of deliverd's DNS answer handling
 * (deliverd/deliverd_dns.c: dns_mx_answer, dns_addr_answer); replayed over
 * its seed corpus by make check.
 *
 * Trust boundary: the input stands for a DNS answer packet as c-ares hands
 * it to deliverd's callbacks, from any server on the path, perhaps the
 * destination's own.  The same bytes are parsed as an MX answer, an A answer
 * and an AAAA answer.  Beyond memory safety, the target abort()s when the
 * hosts handed on break what deliverd_route relies on: more than
 * MX_HOSTS_MAX hosts, a name that is not a terminated, lower-case, valid
 * domain name without a trailing dot, a name twice, preferences out of
 * order, success without hosts unless null MX or no usable name; more than
 * MX_ADDRS_MAX addresses, or an unspecified or multicast one.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <ares.h>

#include "smtp_parse.h"
#include "deliverd_dns.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_mx(const struct mx_result *res, int status)
{
	const struct mx_host *h;
	size_t i, j, len;

	if (res->nhosts > MX_HOSTS_MAX)
		abort();
	if (status != ARES_SUCCESS) {
		if (res->nhosts != 0)
			abort();
		return;
	}
	if (res->nhosts == 0 && res->status != MX_NULLMX &&
	    res->status != MX_TEMPFAIL)
		abort();
	if (res->nhosts > 0 && res->status != MX_OK)
		abort();
	for (i = 0; i < res->nhosts; i++) {
		h = &res->hosts[i];
		if (memchr(h->name, '\0', sizeof(h->name)) == NULL)
			abort();
		len = strlen(h->name);
		if (len == 0 || h->name[len - 1] == '.' || h->name[0] == '[' ||
		    !smtp_domain_valid(h->name, 0))
			abort();
		for (j = 0; j < len; j++)
			if (h->name[j] >= 'A' && h->name[j] <= 'Z')
				abort();
		if (h->naddrs != 0)
			abort();
		if (i > 0 && res->hosts[i - 1].pref > h->pref)
			abort();
		for (j = 0; j < i; j++)
			if (strcmp(res->hosts[j].name, h->name) == 0)
				abort();
	}
}

static void
check_addrs(const struct dns_host_addrs *f)
{
	size_t i;
	uint32_t a;

	if (f->n4 > MX_ADDRS_MAX || f->n6 > MX_ADDRS_MAX)
		abort();
	for (i = 0; i < f->n4; i++) {
		a = ntohl(f->v4[i].s_addr);
		if (a == INADDR_ANY || a == INADDR_BROADCAST || IN_MULTICAST(a))
			abort();
	}
	for (i = 0; i < f->n6; i++)
		if (IN6_IS_ADDR_UNSPECIFIED(&f->v6[i]) ||
		    IN6_IS_ADDR_MULTICAST(&f->v6[i]))
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mx_result res;
	struct dns_host_addrs f;
	int alen = size > 65535 ? 65535 : (int)size;	/* a DNS message's limit */
	int st;

	memset(&res, 0xa5, sizeof(res));
	st = dns_mx_answer(data, alen, &res);
	check_mx(&res, st);

	/* twice each: the second answer appends to the first's addresses */
	memset(&f, 0, sizeof(f));
	(void)dns_addr_answer(data, alen, AF_INET, &f);
	(void)dns_addr_answer(data, alen, AF_INET, &f);
	(void)dns_addr_answer(data, alen, AF_INET6, &f);
	(void)dns_addr_answer(data, alen, AF_INET6, &f);
	check_addrs(&f);
	return 0;
}
