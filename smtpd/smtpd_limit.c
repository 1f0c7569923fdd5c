/*
 * smtpd_limit.c - inbound connection limits (smtpd, unprivileged, chrooted).
 *
 * Counts the sessions smtpd serves, in all and per client address, for
 * max-connections and max-connections-per-client (FEATURES L2; IIS's
 * "limit number of connections").  The per-client counts live in a hash
 * table keyed by the client address as text, so a flood of connections
 * costs one small node per distinct address, freed with its last session.
 * Trust boundary: the key is the peer address the kernel gave accept(2),
 * formatted by smtpd; no client text reaches this file.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "smtpd.h"
#include "util.h"

#define LIMIT_MIN_BUCKETS	64

struct client_node {
	struct client_node	*next;
	uint32_t		 hash;
	uint32_t		 count;
	char			 addr[];	/* client address, NUL-terminated */
};

static struct client_node **buckets;
static size_t nbuckets;		/* a power of two, or 0 before the first use */
static size_t nclients;		/* distinct addresses with a session */
static uint32_t nsessions;	/* every counted session */

/* FNV-1a: cheap and good enough for addresses the kernel formats. */
static uint32_t
addr_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

/* Double the table (or make the first); on failure keep the old one. */
static void
table_grow(void)
{
	struct client_node **nb, *n, *next;
	size_t newsz = nbuckets ? nbuckets * 2 : LIMIT_MIN_BUCKETS, i;

	/* an array of pointers: sizeof(*nb) is right */
	if ((nb = calloc(newsz, sizeof(*nb))) == NULL)	/* NOLINT(bugprone-sizeof-expression) */
		return;
	for (i = 0; i < nbuckets; i++) {
		for (n = buckets[i]; n != NULL; n = next) {
			next = n->next;
			n->next = nb[n->hash & (newsz - 1)];
			nb[n->hash & (newsz - 1)] = n;
		}
	}
	free(buckets);
	buckets = nb;
	nbuckets = newsz;
}

static struct client_node **
table_find(const char *addr, uint32_t h)
{
	struct client_node **pp;

	if (nbuckets == 0)
		return NULL;
	for (pp = &buckets[h & (nbuckets - 1)]; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->hash == h && strcmp((*pp)->addr, addr) == 0)
			return pp;
	return NULL;
}

/*
 * Count a new session from `addr`: 0 when it is within both limits (it is
 * then counted, and limit_conn_leave() must be called for it), -1 when it
 * is over one (nothing is counted), -2 when out of memory.
 */
int
limit_conn_enter(const char *addr)
{
	const struct config *c = env->conf;
	struct client_node **pp, *n;
	uint32_t h = addr_hash(addr);
	size_t len;

	if (c->max_connections && nsessions >= c->max_connections)
		return -1;
	if ((pp = table_find(addr, h)) != NULL) {
		if (c->max_conn_per_client && (*pp)->count >= c->max_conn_per_client)
			return -1;
		(*pp)->count++;
		nsessions++;
		return 0;
	}
	if (nclients >= nbuckets)
		table_grow();
	if (nbuckets == 0)
		return -2;
	len = strlen(addr);
	if ((n = malloc(sizeof(*n) + len + 1)) == NULL)
		return -2;
	memcpy(n->addr, addr, len + 1);
	n->hash = h;
	n->count = 1;
	n->next = buckets[h & (nbuckets - 1)];
	buckets[h & (nbuckets - 1)] = n;
	nclients++;
	nsessions++;
	return 0;
}

/* A session that limit_conn_enter() counted has ended. */
void
limit_conn_leave(const char *addr)
{
	struct client_node **pp, *n;

	if ((pp = table_find(addr, addr_hash(addr))) == NULL)
		return;
	n = *pp;
	if (nsessions > 0)
		nsessions--;
	if (--n->count > 0)
		return;
	*pp = n->next;
	free(n);
	nclients--;
}

/* Sessions counted now (for logs and the sessions table). */
uint32_t
limit_conn_count(void)
{
	return nsessions;
}
