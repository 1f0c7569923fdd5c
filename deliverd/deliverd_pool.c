/*
 * deliverd_pool.c - destinations and their connections (deliverd,
 * unprivileged, chrooted).  A destination is what a route's key names: an
 * MX domain, or a route/smart host with its terms.  It counts its
 * connections against max-connections-per-domain and, with the others,
 * max-outbound-connections.  A batch takes an idle connection to its
 * destination first, else opens one; batches that find every allowed
 * connection busy wait here, first come first served, until a connection is
 * free (it takes the next one after RSET) or one closes (a new one opens).  No peer input
 * reaches this file.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "deliverd.h"
#include "log.h"

struct dest {
	TAILQ_ENTRY(dest) entry;
	char		 key[ROUTE_KEY_MAX];
	struct job_list	 waiting;
	size_t		 nwaiting;
	uint32_t	 nconns;
};

static TAILQ_HEAD(, dest) dests = TAILQ_HEAD_INITIALIZER(dests);
static uint32_t nconns_total;

const char *
pool_dest_key(const struct dest *d)
{
	return d->key;
}

static struct dest *
dest_get(const char *key)
{
	struct dest *d;

	TAILQ_FOREACH(d, &dests, entry)
		if (strcmp(d->key, key) == 0)
			return d;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	(void)strlcpy(d->key, key, sizeof(d->key));
	TAILQ_INIT(&d->waiting);
	TAILQ_INSERT_TAIL(&dests, d, entry);
	return d;
}

static void
dest_gc(struct dest *d)
{
	if (d->nconns == 0 && d->nwaiting == 0) {
		TAILQ_REMOVE(&dests, d, entry);
		free(d);
	}
}

static int
may_open(const struct dest *d)
{
	const struct config *c = env->conf;

	if (c->max_outbound_connections && nconns_total >= c->max_outbound_connections)
		return 0;
	if (c->max_connections_per_domain && d->nconns >= c->max_connections_per_domain)
		return 0;
	return 1;
}

static void
open_conn(struct dest *d, struct job *j)
{
	d->nconns++;
	nconns_total++;
	session_start(d, j);
}

void
pool_submit(struct job *j)
{
	struct dest *d;

	if ((d = dest_get(j->route.key)) == NULL) {
		job_error(j, 0, 0, "4.3.0", "out of memory", "");
		pool_job_done(j);
		return;
	}
	if (d->nwaiting == 0 && session_take_idle(d, j))
		return;
	if (d->nwaiting == 0 && may_open(d)) {
		open_conn(d, j);
		return;
	}
	TAILQ_INSERT_TAIL(&d->waiting, j, entry);
	d->nwaiting++;
	/* All connections in use, some idle elsewhere: free a slot. */
	if (env->conf->max_outbound_connections &&
	    nconns_total >= env->conf->max_outbound_connections)
		(void)session_retire_idle();
	log_debug("%s dest=%s status=waiting connections=%u waiting=%zu", j->qid,
	    d->key, d->nconns, d->nwaiting);
}

struct job *
pool_next(struct dest *d)
{
	struct job *j;

	if ((j = TAILQ_FIRST(&d->waiting)) == NULL)
		return NULL;
	TAILQ_REMOVE(&d->waiting, j, entry);
	d->nwaiting--;
	return j;
}

void
pool_requeue(struct dest *d, struct job *j)
{
	TAILQ_INSERT_HEAD(&d->waiting, j, entry);
	d->nwaiting++;
}

void
pool_closed(struct dest *d)
{
	struct dest *e, *next;
	struct job *j;

	d->nconns--;
	nconns_total--;
	/* This destination first, then any that waits for the global limit. */
	if (d->nwaiting > 0 && may_open(d) && (j = pool_next(d)) != NULL) {
		open_conn(d, j);
		return;
	}
	for (e = TAILQ_FIRST(&dests); e != NULL; e = next) {
		next = TAILQ_NEXT(e, entry);
		while (e->nwaiting > 0 && may_open(e) && (j = pool_next(e)) != NULL)
			open_conn(e, j);
		if (e != d)
			dest_gc(e);
	}
	dest_gc(d);
}

void
pool_job_done(struct job *j)
{
	struct route r;

	/* direct-first: every MX failed temporarily; now the smart host. */
	if (j->route.fallback && !j->fell_back && !j->err_perm) {
		size_t i, open = 0;

		for (i = 0; i < j->nrcpts; i++)
			open += !j->rcpts[i].done;
		r = j->route;
		if (open == j->nrcpts && route_fallback(env->conf, j->domain, &r) == 0) {
			log_info("%s domain=%s status=fallback relay=smart-host reason=\"%s\"",
			    j->qid, j->domain, j->err_text);
			j->route = r;
			j->fell_back = 1;
			pool_submit(j);
			return;
		}
	}
	job_settle(j);
	deliverd_report(j);
	job_free(j);
}

void
pool_drop_waiting(void)
{
	struct dest *d, *next;
	struct job *j;

	for (d = TAILQ_FIRST(&dests); d != NULL; d = next) {
		next = TAILQ_NEXT(d, entry);
		while ((j = pool_next(d)) != NULL)
			job_free(j);
		dest_gc(d);
	}
}
