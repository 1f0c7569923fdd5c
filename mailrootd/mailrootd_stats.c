/*
 * mailrootd_stats.c - the suite's counters, gathered from the daemons
 * (mailrootd, root; FEATURES O3).
 *
 * A request (from smtpctl show stats, or the metrics endpoint) becomes a
 * DAEMON_STATS to every daemon that serves, under a request id of
 * mailrootd's own.  Their SUPERVISOR_STATS answers are collected into one
 * set; once all have answered, or after STATS_TIMEOUT_MS, the requester is
 * called with what arrived (a daemon that is down simply has no figures).
 * Trust boundary: the daemons are less privileged, smtpd and deliverd face
 * the network; every answer is checked (counts, name syntax and prefix,
 * help text) before anything of it reaches a client, and an answer nobody
 * waits for is dropped.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "ipc.h"
#include "log.h"
#include "mailrootd.h"
#include "stats.h"

#define STATS_PENDING		16
#define STATS_TIMEOUT_MS	1500

struct stats_req {
	int		 used;
	uint32_t	 reqid;
	unsigned	 waiting;	/* bit per enum proc_id not yet answered */
	struct event	*timer;
	stats_done_fn	 done;
	void		*arg;
	uint32_t	 cookie;
	struct stat_set	 set;
};

static struct stats_req reqs[STATS_PENDING];
static uint32_t next_reqid = 1;

static void
req_finish(struct stats_req *r)
{
	evtimer_del(r->timer);
	r->waiting = 0;
	r->done(&r->set, r->arg, r->cookie);
	r->used = 0;
}

static void
req_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct stats_req *r = arg;
	int i;

	(void)fd;
	(void)ev;
	for (i = 0; i < PROC_MAX; i++)
		if (r->waiting & (1u << i))
			log_warnx("stats: no answer from %s in time",
			    proc_name((enum proc_id)i));
	req_finish(r);
}

/* Ask every running daemon for its counters; done() is called once; -1 when busy. */
int
stats_request(stats_done_fn done, void *arg, uint32_t cookie)
{
	struct timeval tv = { STATS_TIMEOUT_MS / 1000, (STATS_TIMEOUT_MS % 1000) * 1000 };
	struct stats_req *r = NULL;
	struct mbuf m;
	size_t i;
	int p;

	for (i = 0; i < STATS_PENDING; i++)
		if (!reqs[i].used) {
			r = &reqs[i];
			break;
		}
	if (r == NULL)
		return -1;
	if (r->timer == NULL &&
	    (r->timer = evtimer_new(mrd->base, req_timeout, r)) == NULL)
		return -1;
	r->used = 1;
	r->done = done;
	r->arg = arg;
	r->cookie = cookie;
	r->set.n = 0;
	r->waiting = 0;
	r->reqid = next_reqid++;
	if (next_reqid == 0)
		next_reqid = 1;
	for (p = 1; p < PROC_MAX; p++) {
		struct proc *pr = &mrd->procs[p];

		if (pr->ipc == NULL || !pr->ready)
			continue;
		m_init(&m, DAEMON_STATS, r->reqid);
		if (ipc_send(pr->ipc, &m) == 0)
			r->waiting |= 1u << p;
	}
	if (r->waiting == 0) {
		/* Nobody to ask: answer at once, but never from inside the caller. */
		tv.tv_sec = 0;
		tv.tv_usec = 0;
	}
	evtimer_add(r->timer, &tv);
	return 0;
}

static int
name_ok(const char *name, const char *prefix)
{
	size_t plen = strlen(prefix), i;

	if (strncmp(name, prefix, plen) != 0 || name[plen] != '.' || name[plen + 1] == '\0')
		return 0;
	for (i = 0; name[i]; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
		    name[i] == '_' || name[i] == '.'))
			return 0;
	return name[i - 1] != '.';
}

static int
help_ok(const char *help)
{
	for (; *help; help++)
		if (*help < 0x20 || *help > 0x7e)
			return 0;
	return 1;
}

/* Check one daemon's answer and add it to the set; -1 if malformed. */
static int
stats_copy(struct proc *p, struct ipc_msg *msg, struct stat_set *set)
{
	const char *name, *help;
	uint32_t n, i, kind;
	uint64_t value;
	size_t start = set->n;

	if (m_get_u32(msg, &n) == -1 || n > STATS_PER_DAEMON)
		return -1;
	for (i = 0; i < n; i++) {
		if (m_get_str(msg, &name, STAT_NAME_MAX) == -1 ||
		    m_get_u32(msg, &kind) == -1 || m_get_u64(msg, &value) == -1 ||
		    m_get_str(msg, &help, STAT_HELP_MAX) == -1 ||
		    kind > STAT_GAUGE || !name_ok(name, proc_name(p->id)) || !help_ok(help))
			goto bad;
		if (set->n == STATS_SET_MAX)
			goto bad;
		strlcpy(set->v[set->n].name, name, sizeof(set->v[set->n].name));
		strlcpy(set->v[set->n].help, help, sizeof(set->v[set->n].help));
		set->v[set->n].kind = kind;
		set->v[set->n].value = value;
		set->n++;
	}
	if (m_end(msg) == -1)
		goto bad;
	return 0;
bad:
	set->n = start;
	return -1;
}

/* SUPERVISOR_STATS from a daemon. */
void
stats_answer(struct proc *p, struct ipc_msg *msg)
{
	struct stats_req *r = NULL;
	size_t i;

	for (i = 0; i < STATS_PENDING; i++)
		if (reqs[i].used && reqs[i].reqid == msg->id) {
			r = &reqs[i];
			break;
		}
	if (r == NULL || !(r->waiting & (1u << p->id))) {
		log_debug("stats answer %u from %s: nobody waits for it", msg->id,
		    proc_name(p->id));
		return;
	}
	r->waiting &= ~(1u << p->id);
	if (stats_copy(p, msg, &r->set) == -1)
		log_warnx("malformed SUPERVISOR_STATS from %s", proc_name(p->id));
	if (r->waiting == 0)
		req_finish(r);
}

/* A daemon went away: it will not answer what is pending. */
void
stats_proc_gone(struct proc *p)
{
	size_t i;

	for (i = 0; i < STATS_PENDING; i++)
		if (reqs[i].used && (reqs[i].waiting & (1u << p->id))) {
			reqs[i].waiting &= ~(1u << p->id);
			if (reqs[i].waiting == 0)
				req_finish(&reqs[i]);
		}
}

/* The requester `arg` went away: forget its requests (done() is not called). */
void
stats_cancel(void *arg)
{
	size_t i;

	for (i = 0; i < STATS_PENDING; i++)
		if (reqs[i].used && reqs[i].arg == arg) {
			evtimer_del(reqs[i].timer);
			reqs[i].used = 0;
		}
}
