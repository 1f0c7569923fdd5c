/*
 * deliverd_dns.c - MX and address lookups for deliverd (placeholder: the
 * c-ares implementation replaces it).
 */
#include "config.h"
#include "deliverd_dns.h"

void
dns_init(void)
{
}

void
dns_configure(const struct config *c)
{
	(void)c;
}

struct dns_query *
dns_lookup(const char *name, enum dns_mode mode, uint16_t port, dns_done_fn done,
    void *arg)
{
	(void)name;
	(void)mode;
	(void)port;
	(void)done;
	(void)arg;
	return NULL;
}

void
dns_cancel(struct dns_query *q)
{
	(void)q;
}
