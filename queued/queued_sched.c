/*
 * queued_sched.c - the schedule of Queue/ and the routing of its mail
 * (queued, as _smtpq).
 *
 * An index in memory holds one entry per message in Queue/: its id, when it
 * is due, whether a run of it is on, and the remote domains it still has
 * recipients in (for ETRN).  It is built by the recovery walk at start and
 * fed by every commit; a min-heap orders the waiting entries by due time
 * and one timer fires at the earliest.  Queue/ is never rescanned.
 *
 * A run of a due message loads its envelope and content, fails every
 * recipient at once when it has looped (too many Received: fields),
 * expires recipients that waited too long, delivers the local ones into
 * Drop/, and hands deliverd one DELIVER_BATCH per remote domain (held
 * domains wait for ETRN).  At most RUNS_MAX runs are on at once (each
 * holds a descriptor); the rest wait for a free slot.  When every batch
 * is answered, the run counts the attempt, makes the NDR or delay notice,
 * records the envelope durably and schedules the next attempt, or removes
 * the message.  Reports are committed before the envelope that says they
 * were made: a crash makes a report twice, never not at all.
 *
 * When the link to deliverd breaks, its unanswered batches are kept and
 * sent again, with new batch ids, as soon as a new link arrives: not
 * attempted, no retry delay.  Without deliverd, due remote mail waits.
 *
 * Trust boundary: deliverd is untrusted.  A result must name a batch in
 * flight, its message, and each recipient of that batch exactly once;
 * anything else is refused whole and the link dropped (sched_result()).
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>

#include "config.h"
#include "daemon.h"
#include "dsn.h"
#include "ipc.h"
#include "log.h"
#include "proto_deliver.h"
#include "queued.h"
#include "queued_ndr.h"
#include "smtp_parse.h"
#include "util.h"

#define RUNS_MAX		256	/* messages being delivered at once */
#define RUNS_PER_TURN		64	/* runs started by one timer callback */
#define BATCH_RCPTS_MAX		1000	/* keeps a batch well under IPC_MAX_PAYLOAD */
#define TIMER_MAX		3600	/* seconds: the timer is re-checked at least this often */
#define NEVER			INT64_MAX

struct run;

/* One message of Queue/. */
struct entry {
	TAILQ_ENTRY(entry) all;
	char		 id[QUEUEID_LEN + 1];
	int64_t		 due;
	size_t		 heapidx;	/* SIZE_MAX: not in the heap */
	struct run	*run;		/* a run is on */
	int		 again;		/* made due while its run was on (ETRN) */
	int		 local_wait;	/* local recipients wait (Drop/ quota or error) */
	int		 parked;	/* remote recipients wait for a deliverd link */
	int		 local_pending;	/* some local recipient is pending */
	char		**domains;	/* remote domains with pending recipients */
	size_t		 ndomains;
	char		**released;	/* held domains released by ETRN for one run */
	size_t		 nreleased;
	int		 held;		/* operator hold: never in the heap */
	int		 deleted;	/* removed by an operator while its run was on */
	struct envelope	*fresh;		/* as just committed: the first run needs no read */
};
TAILQ_HEAD(entry_list, entry);

/* One DELIVER_BATCH: a message's pending recipients in one domain. */
struct batch {
	TAILQ_ENTRY(batch) entry;	/* in the run */
	TAILQ_ENTRY(batch) link;	/* in `outstanding` or `unsent` */
	uint32_t	 id;
	struct run	*run;
	int		 sent;
	char		 domain[SMTP_DOMAIN_MAX + 1];
	uint32_t	*idx;
	size_t		 n;
};
TAILQ_HEAD(batch_list, batch);

/* What became of one recipient in this run (for the log and the report). */
struct outcome {
	int		 reported;	/* needs a line in this run's NDR */
	char		 status[16];
	char		*host;
	char		*diag;
};

/* A message being delivered. */
struct run {
	struct entry	*e;
	struct envelope	 env;
	int		 fd;
	uint64_t	 size;
	int64_t		 now;
	struct batch_list batches;	/* not yet answered */
	struct outcome	*out;		/* one per recipient */
	int		 remote_tried;	/* some batch was answered */
	int		 counted;	/* env.attempts includes this run */
	int		 local_deferred;
	int		 no_deliverd;	/* remote recipients not sent: no link */
	int		 reports;	/* reports being committed */
	int		 report_failed;
	char		**released;
	size_t		 nreleased;
};

static struct entry_list entries = TAILQ_HEAD_INITIALIZER(entries);
static struct batch_list outstanding = TAILQ_HEAD_INITIALIZER(outstanding);
static struct batch_list unsent = TAILQ_HEAD_INITIALIZER(unsent);
static struct entry **heap;
static size_t nheap, heapcap;
static struct event *timer;
static struct ipc *deliverd;
static uint32_t batch_seq;
static unsigned nruns;
static size_t nparked;		/* entries with `parked` set */

static void run_finish(struct run *);
static void run_done(struct run *);

/* ---- the heap of waiting entries, by due time ------------------------------ */

static void
heap_set(size_t i, struct entry *e)
{
	heap[i] = e;
	e->heapidx = i;
}

static void
heap_up(size_t i)
{
	struct entry *e = heap[i];

	while (i > 0 && heap[(i - 1) / 2]->due > e->due) {
		heap_set(i, heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(i, e);
}

static void
heap_down(size_t i)
{
	struct entry *e = heap[i];
	size_t c;

	while ((c = 2 * i + 1) < nheap) {
		if (c + 1 < nheap && heap[c + 1]->due < heap[c]->due)
			c++;
		if (heap[c]->due >= e->due)
			break;
		heap_set(i, heap[c]);
		i = c;
	}
	heap_set(i, e);
}

static int
heap_push(struct entry *e)
{
	struct entry **nh;

	if (nheap == heapcap) {
		/* an array of pointers: sizeof(*nh) is right */
		if ((nh = reallocarray(heap, heapcap ? heapcap * 2 : 256,
		    sizeof(*nh))) == NULL)	/* NOLINT(bugprone-sizeof-expression) */
			return -1;
		heap = nh;
		heapcap = heapcap ? heapcap * 2 : 256;
	}
	heap_set(nheap++, e);
	heap_up(nheap - 1);
	return 0;
}

static void
heap_remove(struct entry *e)
{
	size_t i = e->heapidx;

	if (i == SIZE_MAX)
		return;
	e->heapidx = SIZE_MAX;
	if (--nheap == i)
		return;
	heap_set(i, heap[nheap]);
	heap_down(i);
	heap_up(heap[i]->heapidx);
}

/* Put an entry (back) in the heap, due at `due`. */
static void
entry_wait(struct entry *e, int64_t due)
{
	if (e->heapidx != SIZE_MAX) {
		e->due = due;
		heap_down(e->heapidx);
		heap_up(e->heapidx);
		return;
	}
	e->due = due;
	if (heap_push(e) == -1)
		/* Out of memory: the next start finds it in Queue/. */
		log_warnx("%s: out of memory: not scheduled until restart", e->id);
}

/* Due now: at once, or, while a run is under way, again as soon as it ends. */
static void
entry_due_now(struct entry *e, int64_t now)
{
	if (e->run != NULL)
		e->again = 1;
	else
		entry_wait(e, now);
}

/* Arm the one timer at the earliest due time. */
static void
sched_arm(void)
{
	struct timeval tv = { 0, 0 };
	int64_t now = time(NULL), wait;

	evtimer_del(timer);
	if (nheap == 0 || nruns >= RUNS_MAX)
		return;		/* a finished run re-arms it */
	wait = heap[0]->due - now;
	if (wait > TIMER_MAX)
		wait = TIMER_MAX;
	tv.tv_sec = wait > 0 ? (time_t)wait : 0;
	evtimer_add(timer, &tv);
}

/* ---- the index ------------------------------------------------------------- */

static void
strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int
strv_has(char *const *v, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return 1;
	return 0;
}

static int
strv_add(char ***v, size_t *n, const char *s)
{
	char **nv, *d;

	if (strv_has(*v, *n, s))
		return 0;
	if ((d = strdup(s)) == NULL)
		return -1;
	if ((nv = reallocarray(*v, *n + 1, sizeof(*nv))) == NULL) {
		free(d);
		return -1;
	}
	nv[(*n)++] = d;
	*v = nv;
	return 0;
}

/* The domain of an address, lower case, into buf; "" for none. */
static const char *
rcpt_domain(const char *addr, char *buf, size_t bufsz)
{
	const char *at = strrchr(addr, '@');
	size_t i;

	buf[0] = '\0';
	if (at == NULL)
		return buf;
	for (i = 0; at[1 + i] != '\0' && i < bufsz - 1; i++)
		buf[i] = at[1 + i] >= 'A' && at[1 + i] <= 'Z' ?
		    (char)(at[1 + i] - 'A' + 'a') : at[1 + i];
	buf[i] = '\0';
	return buf;
}

static int
is_local(const char *addr)
{
	return config_is_local_rcpt(env->conf, addr);
}

/* Refresh an entry's list of remote domains with pending recipients. */
static void
entry_domains(struct entry *e, const struct envelope *env_)
{
	char d[SMTP_DOMAIN_MAX + 1];
	size_t i;

	strv_free(e->domains, e->ndomains);
	e->domains = NULL;
	e->ndomains = 0;
	e->local_pending = 0;
	for (i = 0; i < env_->nrcpts; i++)
		if (env_->rcpts[i].state == RCPT_PENDING && is_local(env_->rcpts[i].addr))
			e->local_pending = 1;
	for (i = 0; i < env_->nrcpts; i++)
		if (env_->rcpts[i].state == RCPT_PENDING && !is_local(env_->rcpts[i].addr) &&
		    strv_add(&e->domains, &e->ndomains,
		    rcpt_domain(env_->rcpts[i].addr, d, sizeof(d))) == -1)
			log_warnx("%s: out of memory (ETRN will not see it)", e->id);
}

/* The envelope file changes (or the entry goes): the copy is no longer it. */
static void
entry_forget_fresh(struct entry *e)
{
	if (e->fresh != NULL) {
		envelope_free(e->fresh);
		free(e->fresh);
		e->fresh = NULL;
	}
}

static void
entry_free(struct entry *e)
{
	heap_remove(e);
	TAILQ_REMOVE(&entries, e, all);
	strv_free(e->domains, e->ndomains);
	strv_free(e->released, e->nreleased);
	entry_forget_fresh(e);
	free(e);
}

static struct entry *
entry_add(const struct envelope *m)
{
	struct entry *e;
	int64_t now = time(NULL);

	if ((e = calloc(1, sizeof(*e))) == NULL) {
		log_warnx("%s: out of memory: not scheduled until restart", m->id);
		return NULL;
	}
	strlcpy(e->id, m->id, sizeof(e->id));
	e->heapidx = SIZE_MAX;
	e->held = m->held;
	TAILQ_INSERT_TAIL(&entries, e, all);
	entry_domains(e, m);
	if (e->held)
		return e;	/* no attempt until an operator releases it */
	/* Never attempted, or its time is past: due at once. */
	entry_wait(e, m->next_attempt > now ? m->next_attempt : now);
	sched_arm();
	return e;
}

void
sched_add(const struct envelope *m)
{
	(void)entry_add(m);
}

void
sched_add_committed(struct envelope *m)
{
	struct entry *e;

	if ((e = entry_add(m)) == NULL)
		return;
	/* Its first run, due at once, takes it instead of reading Queue/. */
	if ((e->fresh = malloc(sizeof(*e->fresh))) != NULL) {
		*e->fresh = *m;
		memset(m, 0, sizeof(*m));
	}
}

/* ---- results and their log lines ------------------------------------------- */

static void
log_outcome(const struct run *r, size_t i, const char *status)
{
	const struct outcome *o = &r->out[i];
	char reply[DELIVER_TEXT_MAX * 4 + 1];

	log_escape(reply, sizeof(reply), o->diag ? o->diag : "",
	    o->diag ? strlen(o->diag) : 0);
	log_info("%s status=%s to=<%s> relay=%s dsn=%s delay=%llds attempts=%u "
	    "reply=\"%s\"", r->env.id, status, r->env.rcpts[i].addr,
	    o->host ? o->host : "none", o->status,
	    (long long)(r->now - r->env.arrival),
	    r->env.attempts + (r->counted ? 0 : 1), reply);
}

/* Set the outcome of recipient i (strings copied). */
static void
set_outcome(struct run *r, size_t i, const char *status, const char *host,
    const char *diag)
{
	struct outcome *o = &r->out[i];
	char *h, *d;

	/* host or diag may be this outcome's own strings */
	h = host && host[0] ? strdup(host) : NULL;
	d = diag && diag[0] ? strdup(diag) : NULL;
	(void)strlcpy(o->status, status && status[0] ? status : "4.0.0",
	    sizeof(o->status));
	free(o->host);
	free(o->diag);
	o->host = h;
	o->diag = d;
}

/* A recipient fails for good in this run: it goes into the report. */
static void
rcpt_fail(struct run *r, size_t i, const char *status, const char *host,
    const char *diag, const char *what)
{
	set_outcome(r, i, status, host, diag);
	r->env.rcpts[i].state = RCPT_FAILED;
	r->out[i].reported = 1;
	(void)envelope_rcpt_error(&r->env, i, diag);
	log_outcome(r, i, what);
}

/* The reply as one line: "550 5.1.1 text" (what goes into logs and reports). */
static void
format_reply(const struct deliver_result *res, char *buf, size_t bufsz)
{
	char code[8] = "";
	size_t n;

	if (res->code != 0)
		snprintf(code, sizeof(code), "%u ", res->code);
	/* deliverd may pass the whole reply line: do not say its code twice. */
	n = strlen(code);
	if (n > 0 && strncmp(res->text, code, n) == 0) {
		(void)strlcpy(buf, res->text, bufsz);
		return;
	}
	snprintf(buf, bufsz, "%s%s%s%s", code, res->enhanced,
	    res->enhanced[0] ? " " : "", res->text);
}

static const char *
default_status(uint32_t st)
{
	return st == DELIVER_OK ? "2.0.0" : st == DELIVER_PERMFAIL ? "5.0.0" : "4.0.0";
}

/* An enhanced status code that fits its class (RFC 3463), or the default. */
static const char *
result_status(const struct deliver_result *res)
{
	const char *s = res->enhanced;
	char want = res->status == DELIVER_OK ? '2' :
	    res->status == DELIVER_PERMFAIL ? '5' : '4';
	size_t i, dots = 0;

	if (s[0] != want || s[1] != '.')
		return default_status(res->status);
	for (i = 1; s[i]; i++)
		if (s[i] == '.')
			dots++;
		else if (s[i] < '0' || s[i] > '9')
			return default_status(res->status);
	return dots == 2 && strlen(s) < 12 ? s : default_status(res->status);
}

static void
apply_result(struct run *r, const struct deliver_result *res)
{
	char reply[DELIVER_TEXT_MAX + 32], err[DELIVER_TEXT_MAX + DELIVER_HOST_MAX + 40];
	size_t i = res->index;

	format_reply(res, reply, sizeof(reply));
	switch (res->status) {
	case DELIVER_OK:
		set_outcome(r, i, result_status(res), res->host, reply);
		r->env.rcpts[i].state = RCPT_DONE;
		(void)envelope_rcpt_error(&r->env, i, NULL);
		queued_stats.remote++;
		log_outcome(r, i, "sent");
		break;
	case DELIVER_PERMFAIL:
		rcpt_fail(r, i, result_status(res), res->host, reply, "bounced");
		break;
	default:
		set_outcome(r, i, result_status(res), res->host, reply);
		if (res->host[0])
			snprintf(err, sizeof(err), "%s: %s", res->host, reply);
		else
			(void)strlcpy(err, reply, sizeof(err));
		(void)envelope_rcpt_error(&r->env, i, err);
		queued_stats.deferred++;
		log_outcome(r, i, "deferred");
		break;
	}
}

static struct batch *
find_batch(uint32_t id)
{
	struct batch *b;

	TAILQ_FOREACH(b, &outstanding, link)
		if (b->id == id)
			return b;
	return NULL;
}

static void
batch_free(struct batch *b)
{
	free(b->idx);
	free(b);
}

int
sched_result(struct ipc_msg *msg)
{
	struct deliver_result *res;
	struct batch *b;
	struct run *r;
	const char *qid;
	unsigned char *seen = NULL;
	size_t n, i, k;

	if ((b = find_batch(msg->id)) == NULL) {
		log_warnx("deliverd answered batch %u, which is not in flight", msg->id);
		return -1;
	}
	r = b->run;
	if (proto_result_decode(msg, &qid, &res, &n) == -1) {
		log_warnx("%s: malformed result of batch %u", r->env.id, b->id);
		return -1;
	}
	/* The whole result must fit the batch before any of it is used. */
	if (strcmp(qid, r->env.id) != 0 || n != b->n ||
	    (seen = calloc(r->env.nrcpts, 1)) == NULL)
		goto bad;
	for (i = 0; i < n; i++) {
		for (k = 0; k < b->n; k++)
			if (b->idx[k] == res[i].index)
				break;
		if (k == b->n || seen[res[i].index]++)
			goto bad;
	}
	r->now = time(NULL);
	for (i = 0; i < n; i++)
		apply_result(r, &res[i]);
	r->remote_tried = 1;
	free(seen);
	free(res);
	TAILQ_REMOVE(&outstanding, b, link);
	TAILQ_REMOVE(&r->batches, b, entry);
	batch_free(b);
	if (TAILQ_EMPTY(&r->batches))
		run_finish(r);
	return 0;
bad:
	log_warnx("%s: result of batch %u does not match it", r->env.id, b->id);
	free(seen);
	free(res);
	return -1;
}

/* ---- sending batches ------------------------------------------------------- */

/* The sender as deliverd sends it: a local domain's becomes the masquerade's. */
static void
masquerade(const char *sender, char *buf, size_t bufsz)
{
	const char *at = strrchr(sender, '@');
	const char *m = env->conf->masquerade_domain;

	if (m[0] != '\0' && at != NULL && config_is_local_domain(env->conf, at + 1) &&
	    (size_t)(at - sender) + 1 + strlen(m) < bufsz &&
	    (size_t)(at - sender) + 1 + strlen(m) <= SMTP_PATH_MAX) {
		snprintf(buf, bufsz, "%.*s@%s", (int)(at - sender), sender, m);
		return;
	}
	(void)strlcpy(buf, sender, bufsz);
}

/*
 * Send one batch with a new id.  -1 when the link failed (it stays unsent);
 * 0 when sent, or when its content cannot be opened (its recipients are
 * deferred, which may finish the run).
 */
static int
batch_send(struct batch *b)
{
	struct deliver_batch db;
	struct deliver_rcpt dr;
	struct run *r = b->run;
	char name[QUEUEID_LEN + 8], sender[SMTP_PATH_MAX + 1];
	struct mbuf m;
	size_t i;
	int fd;

	snprintf(name, sizeof(name), "%s.eml", r->env.id);
	/* Its own open file: deliverd's reads move no offset of ours. */
	if ((fd = openat(qdirs.queue, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		log_warn("%s: open Queue/%s for deliverd", r->env.id, name);
		r->now = time(NULL);
		for (i = 0; i < b->n; i++) {
			set_outcome(r, b->idx[i], "4.3.0", NULL, "cannot open the queue file");
			log_outcome(r, b->idx[i], "deferred");
		}
		r->local_deferred = 1;	/* counts as an attempt */
		TAILQ_REMOVE(&unsent, b, link);
		TAILQ_REMOVE(&r->batches, b, entry);
		batch_free(b);
		if (TAILQ_EMPTY(&r->batches))
			run_finish(r);
		return 0;
	}
	masquerade(r->env.sender, sender, sizeof(sender));
	memset(&db, 0, sizeof(db));
	db.qid = r->env.id;
	db.sender = sender;
	db.domain = b->domain;
	db.body = r->env.body;
	db.smtputf8 = (uint32_t)r->env.smtputf8;
	db.ret = (uint32_t)r->env.ret;
	db.envid = r->env.envid;
	db.size = r->size;
	db.nrcpts = b->n;
	b->id = ++batch_seq;
	proto_deliver_begin(&m, b->id, &db);
	for (i = 0; i < b->n; i++) {
		const struct envelope_rcpt *er = &r->env.rcpts[b->idx[i]];

		dr.index = b->idx[i];
		dr.addr = er->addr;
		dr.notify = er->notify;
		dr.orcpt = er->orcpt;
		proto_deliver_rcpt(&m, &dr);
	}
	m_add_fd(&m, fd);
	if (ipc_send(deliverd, &m) == -1) {
		log_warnx("%s: cannot send batch %u to deliverd", r->env.id, b->id);
		return -1;
	}
	TAILQ_REMOVE(&unsent, b, link);
	TAILQ_INSERT_TAIL(&outstanding, b, link);
	b->sent = 1;
	log_debug("%s batch=%u domain=%s nrcpt=%zu sent to deliverd", r->env.id,
	    b->id, b->domain, b->n);
	return 0;
}

/* Each send takes its batch off `unsent` (or stops on a broken link). */
static void
send_unsent(void)
{
	struct batch *b;

	while (deliverd != NULL && (b = TAILQ_FIRST(&unsent)) != NULL)
		if (batch_send(b) == -1)
			break;
}

void
sched_deliverd(struct ipc *ipc)
{
	struct batch *b;
	size_t n = 0;

	deliverd = ipc;
	if (ipc == NULL) {
		/* Not attempted: sent again, at once, to the next deliverd. */
		while ((b = TAILQ_FIRST(&outstanding)) != NULL) {
			TAILQ_REMOVE(&outstanding, b, link);
			b->sent = 0;
			TAILQ_INSERT_TAIL(&unsent, b, link);
			n++;
		}
		if (n > 0)
			log_info("deliverd gone: %zu batches in flight will be sent again", n);
		return;
	}
	TAILQ_FOREACH(b, &unsent, link)
		n++;
	if (n > 0 || nparked > 0)
		log_info("deliverd linked: sending %zu waiting batches, %zu messages due",
		    n, nparked);
	send_unsent();
	if (nparked > 0) {
		struct entry *e;
		int64_t now = time(NULL);

		TAILQ_FOREACH(e, &entries, all)
			if (e->parked) {
				e->parked = 0;
				if (e->run != NULL || !e->held)
					entry_due_now(e, now);
			}
		nparked = 0;
		sched_arm();
	}
}

/* Group the pending remote recipients by domain into batches. */
static int
make_batches(struct run *r)
{
	const struct remote_domain_conf *rd;
	char d[SMTP_DOMAIN_MAX + 1];
	struct batch *b;
	uint32_t *ni;
	size_t i;

	for (i = 0; i < r->env.nrcpts; i++) {
		if (r->env.rcpts[i].state != RCPT_PENDING || is_local(r->env.rcpts[i].addr))
			continue;
		rcpt_domain(r->env.rcpts[i].addr, d, sizeof(d));
		/* N4: held until ETRN releases it for one run. */
		if ((rd = config_remote_domain(env->conf, d)) != NULL &&
		    (rd->flags & RD_HOLD) && !strv_has(r->released, r->nreleased, d))
			continue;
		TAILQ_FOREACH(b, &r->batches, entry)
			if (strcmp(b->domain, d) == 0 && b->n < BATCH_RCPTS_MAX)
				break;
		if (b == NULL) {
			if ((b = calloc(1, sizeof(*b))) == NULL)
				return -1;
			b->run = r;
			(void)strlcpy(b->domain, d, sizeof(b->domain));
			TAILQ_INSERT_TAIL(&r->batches, b, entry);
			TAILQ_INSERT_TAIL(&unsent, b, link);
		}
		if ((ni = reallocarray(b->idx, b->n + 1, sizeof(*ni))) == NULL)
			return -1;
		b->idx = ni;
		b->idx[b->n++] = (uint32_t)i;
	}
	return 0;
}

static void
drop_batches(struct run *r)
{
	struct batch *b;

	while ((b = TAILQ_FIRST(&r->batches)) != NULL) {
		TAILQ_REMOVE(&r->batches, b, entry);
		if (b->sent)
			TAILQ_REMOVE(&outstanding, b, link);
		else
			TAILQ_REMOVE(&unsent, b, link);
		batch_free(b);
	}
}

/* ---- a run ---------------------------------------------------------------- */

static uint32_t
expiration(const char *addr)
{
	return is_local(addr) ? env->conf->local_expiration_timeout :
	    env->conf->expiration_timeout;
}

static uint32_t
delay_after(const char *addr)
{
	return is_local(addr) ? env->conf->local_delay_notification :
	    env->conf->delay_notification;
}

/* D3: pending recipients past their expiration fail with 4.4.7. */
static void
expire(struct run *r)
{
	struct envelope *m = &r->env;
	char diag[ENVELOPE_ERROR_MAX + 64];
	uint32_t t;
	size_t i;

	for (i = 0; i < m->nrcpts; i++) {
		if (m->rcpts[i].state != RCPT_PENDING)
			continue;
		t = expiration(m->rcpts[i].addr);
		if (t == 0 || r->now - m->arrival < (int64_t)t)
			continue;
		snprintf(diag, sizeof(diag), "delivery time expired%s%s",
		    m->rcpts[i].error ? "; last error: " : "",
		    m->rcpts[i].error ? m->rcpts[i].error : "");
		set_outcome(r, i, "4.4.7", r->out[i].host, diag);
		m->rcpts[i].state = RCPT_FAILED;
		r->out[i].reported = 1;
		queued_stats.expired++;
		log_outcome(r, i, "expired");
	}
}

/* D6: a message with more Received: fields than allowed has looped. */
static void
hop_check(struct run *r)
{
	char diag[128];
	size_t i;
	int hops;

	if (env->conf->max_hop_count == 0 || r->env.attempts > 0 ||
	    (hops = ndr_count_received(r->fd)) <= (int)env->conf->max_hop_count)
		return;
	snprintf(diag, sizeof(diag), "554 5.4.6 too many hops (%d Received: header "
	    "fields, at most %u): mail loop", hops, env->conf->max_hop_count);
	for (i = 0; i < r->env.nrcpts; i++)
		if (r->env.rcpts[i].state == RCPT_PENDING)
			rcpt_fail(r, i, "5.4.6", NULL, diag, "bounced");
}

static void
run_free(struct run *r)
{
	size_t i;

	drop_batches(r);
	if (r->out != NULL)
		for (i = 0; i < r->env.nrcpts; i++) {
			free(r->out[i].host);
			free(r->out[i].diag);
		}
	free(r->out);
	if (r->fd != -1)
		close(r->fd);
	envelope_free(&r->env);
	strv_free(r->released, r->nreleased);
	free(r);
}

/* Start a run of a due entry (taken out of the heap). */
static void
run_start(struct entry *e)
{
	struct stat st;
	struct run *r;
	size_t done;
	int rv, deferred;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		entry_wait(e, (int64_t)time(NULL) + 60);
		return;
	}
	r->fd = -1;
	TAILQ_INIT(&r->batches);
	if (e->fresh != NULL) {
		r->env = *e->fresh;
		free(e->fresh);
		e->fresh = NULL;
		rv = store_open_content(e->id, &r->fd);
		if (rv != 0)
			envelope_free(&r->env);
	} else
		rv = store_load(e->id, &r->env, &r->fd);
	if (rv != 0) {
		if (rv == -2)
			store_quarantine(e->id);
		else
			log_debug("%s: no longer in the queue", e->id);
		free(r);
		entry_free(e);
		return;
	}
	if ((r->out = calloc(r->env.nrcpts, sizeof(*r->out))) == NULL) {
		run_free(r);
		entry_wait(e, (int64_t)time(NULL) + 60);
		return;
	}
	r->size = fstat(r->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	r->e = e;
	e->run = r;
	e->again = 0;
	if (e->parked) {
		e->parked = 0;
		nparked--;
	}
	r->released = e->released;
	r->nreleased = e->nreleased;
	e->released = NULL;
	e->nreleased = 0;
	nruns++;
	r->now = time(NULL);

	hop_check(r);
	expire(r);
	done = store_deliver_local(&r->env, r->fd, &deferred);
	r->local_deferred = deferred;
	e->local_wait = deferred;
	/* Drop/ has it: record that now, so a crash does not drop it twice. */
	if (done > 0)
		(void)store_save(&r->env);
	if (make_batches(r) == -1) {
		log_warnx("%s: out of memory: remote delivery deferred", r->env.id);
		drop_batches(r);
		r->local_deferred = 1;
	}
	/* No deliverd: not attempted; the message is due when one links. */
	if (deliverd == NULL && !TAILQ_EMPTY(&r->batches)) {
		log_debug("%s: no link to deliverd: remote delivery waits", r->env.id);
		drop_batches(r);
		r->no_deliverd = 1;
	}
	if (TAILQ_EMPTY(&r->batches)) {
		run_finish(r);
		return;
	}
	send_unsent();
}

/* The recipients a report of this kind is for, by their NOTIFY (RFC 3461 4.1). */
static int
wants_report(const struct envelope_rcpt *er, enum ndr_kind kind)
{
	if (er->notify & DSN_NOTIFY_NEVER)
		return 0;
	if (kind == NDR_FAILED)
		return er->notify == 0 || (er->notify & DSN_NOTIFY_FAILURE);
	return er->notify == 0 || (er->notify & DSN_NOTIFY_DELAY);
}

static void
report_done(void *arg, int committed)
{
	struct run *r = arg;

	if (!committed)
		r->report_failed = 1;
	if (--r->reports == 0)
		run_done(r);
}

/* Make and commit a report to the sender for the recipients in `sel`. */
static void
report_send(struct run *r, enum ndr_kind kind, const size_t *sel, size_t nsel)
{
	struct ndr_rcpt *nr;
	struct ndr_info ni;
	struct qmsg *q;
	char why[256] = "out of memory";
	size_t i;

	if ((nr = reallocarray(NULL, nsel, sizeof(*nr))) == NULL ||
	    (q = store_internal_open()) == NULL) {
		free(nr);
		log_warnx("%s: cannot make a %s report", r->env.id,
		    kind == NDR_FAILED ? "failure" : "delay");
		r->report_failed = 1;
		return;
	}
	for (i = 0; i < nsel; i++) {
		const struct outcome *o = &r->out[sel[i]];
		const struct envelope_rcpt *er = &r->env.rcpts[sel[i]];

		nr[i].addr = er->addr;
		nr[i].orcpt = er->orcpt;
		nr[i].status = o->status[0] ? o->status : "4.0.0";
		nr[i].remote_mta = o->host;
		nr[i].diag = o->diag ? o->diag : er->error;
	}
	memset(&ni, 0, sizeof(ni));
	ni.hostname = env->conf->hostname;
	ni.id = q->id;
	ni.orig = &r->env;
	ni.content_fd = r->fd;
	ni.kind = kind;
	ni.now = r->now;
	ni.last_attempt = r->env.last_attempt;
	ni.retry_until = r->env.arrival + (int64_t)env->conf->expiration_timeout;
	ni.rcpts = nr;
	ni.nrcpts = nsel;
	if (ndr_compose(&ni, q->fd, why, sizeof(why)) == -1 ||
	    (q->env.sender = strdup("")) == NULL ||
	    envelope_add_rcpt(&q->env, r->env.sender, RCPT_PENDING) == -1 ||
	    (env->conf->ndr_copy_to[0] != '\0' &&
	    strcasecmp(env->conf->ndr_copy_to, r->env.sender) != 0 &&
	    envelope_add_rcpt(&q->env, env->conf->ndr_copy_to, RCPT_PENDING) == -1)) {
		log_warnx("%s: cannot make a report: %s", r->env.id, why);
		free(nr);
		store_internal_abort(q);
		r->report_failed = 1;
		return;
	}
	free(nr);
	q->env.body = r->env.body == ENV_BODY_8BITMIME || r->env.smtputf8 ?
	    ENV_BODY_8BITMIME : ENV_BODY_NONE;
	q->env.smtputf8 = r->env.smtputf8;
	log_info("%s status=%s report=%s nrcpt=%zu to=<%s>", r->env.id,
	    kind == NDR_FAILED ? "ndr" : "delay-notice", q->id, nsel, r->env.sender);
	if (kind == NDR_FAILED)
		queued_stats.ndr++;
	else
		queued_stats.delay++;
	r->reports++;
	store_internal_commit(q, report_done, r);
}

/* A message of the null sender that failed: Badmail/, never a bounce (loops). */
static void
report_badmail(struct run *r, const size_t *sel, size_t nsel)
{
	char id[QUEUEID_LEN + 1], name[QUEUEID_LEN + 8], why[256], *text, *p;
	size_t i, len = 128, off;

	for (i = 0; i < nsel; i++)
		len += strlen(r->env.rcpts[sel[i]].addr) + 64 +
		    (r->out[sel[i]].diag ? strlen(r->out[sel[i]].diag) : 0);
	if ((text = malloc(len)) == NULL) {
		r->report_failed = 1;
		return;
	}
	off = (size_t)snprintf(text, len, "undeliverable mail from the null sender "
	    "(a report is never sent for it); queue id %s", r->env.id);
	for (i = 0; i < nsel && off < len; i++) {
		p = r->out[sel[i]].diag;
		off += (size_t)snprintf(text + off, len - off, "\r\nRecipient: <%s> %s %s",
		    r->env.rcpts[sel[i]].addr, r->out[sel[i]].status, p ? p : "");
	}
	/* The message's own id, unless a part of it is in Badmail/ already. */
	(void)strlcpy(id, r->env.id, sizeof(id));
	snprintf(name, sizeof(name), "%s.BAD", id);
	if (faccessat(qdirs.badmail, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		queueid_new(id);
	if (badmail_write(id, r->fd, text, why, sizeof(why)) == -1) {
		log_warnx("%s: cannot write Badmail/: %s", r->env.id, why);
		r->report_failed = 1;
	} else
		log_info("%s status=badmail badmail=%s nrcpt=%zu reason=\"null sender\"",
		    r->env.id, id, nsel);
	free(text);
}

/* Every batch is answered: count the attempt, report, then record (run_done). */
static void
run_finish(struct run *r)
{
	struct envelope *m = &r->env;
	size_t *sel, nsel = 0, i;
	int any_pending = 0;

	if (r->e->deleted) {
		run_done(r);	/* no report, no record: it is gone */
		return;
	}
	r->now = time(NULL);
	if (r->remote_tried || r->local_deferred) {
		m->attempts++;
		m->last_attempt = r->now;
		r->counted = 1;
	}
	expire(r);
	if ((sel = reallocarray(NULL, m->nrcpts ? m->nrcpts : 1, sizeof(*sel))) == NULL) {
		r->report_failed = 1;
		run_done(r);
		return;
	}
	/* NDR of the recipients that failed in this run. */
	for (i = 0; i < m->nrcpts; i++)
		if (r->out[i].reported && (m->sender[0] == '\0' ||
		    wants_report(&m->rcpts[i], NDR_FAILED)))
			sel[nsel++] = i;
	if (nsel > 0) {
		if (m->sender[0] == '\0')
			report_badmail(r, sel, nsel);
		else
			report_send(r, NDR_FAILED, sel, nsel);
	}
	/* D2: one delay notice, once the message has waited long enough. */
	for (i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].state == RCPT_PENDING)
			any_pending = 1;
	if (!m->delay_notified && any_pending && m->sender[0] != '\0') {
		nsel = 0;
		for (i = 0; i < m->nrcpts; i++) {
			uint32_t t = delay_after(m->rcpts[i].addr);

			if (m->rcpts[i].state == RCPT_PENDING && t != 0 &&
			    r->now - m->arrival >= (int64_t)t &&
			    wants_report(&m->rcpts[i], NDR_DELAYED)) {
				if (r->out[i].status[0] == '\0')
					(void)strlcpy(r->out[i].status, "4.0.0",
					    sizeof(r->out[i].status));
				sel[nsel++] = i;
			}
		}
		if (nsel > 0) {
			report_send(r, NDR_DELAYED, sel, nsel);
			m->delay_notified = 1;
		}
	}
	free(sel);
	if (r->reports == 0)
		run_done(r);
}

/* When the message is due next; NEVER when only held recipients wait. */
static int64_t
next_attempt(const struct run *r)
{
	const struct envelope *m = &r->env;
	int64_t next = NEVER, t;
	uint32_t k;
	size_t i;
	int remote = 0, local = 0;

	for (i = 0; i < m->nrcpts; i++) {
		const struct remote_domain_conf *rd;
		char d[SMTP_DOMAIN_MAX + 1];

		if (m->rcpts[i].state != RCPT_PENDING)
			continue;
		if (is_local(m->rcpts[i].addr))
			local = 1;
		else if (!r->no_deliverd && ((rd = config_remote_domain(env->conf,
		    rcpt_domain(m->rcpts[i].addr, d, sizeof(d)))) == NULL ||
		    !(rd->flags & RD_HOLD)))
			remote = 1;
		/* A held recipient still expires, and is still reported late. */
		if ((k = expiration(m->rcpts[i].addr)) != 0 && m->arrival + k < next)
			next = m->arrival + k;
		if (!m->delay_notified && (k = delay_after(m->rcpts[i].addr)) != 0 &&
		    m->arrival + k > r->now && m->arrival + k < next)
			next = m->arrival + k;
	}
	if (remote) {
		k = m->attempts == 0 ? 0 : m->attempts - 1 > 3 ? 3 : m->attempts - 1;
		t = r->now + env->conf->retry_interval[k];
		next = t < next ? t : next;
	}
	if (local) {
		t = r->now + env->conf->local_retry_interval;
		next = t < next ? t : next;
	}
	return next;
}

/* The reports are committed: record the envelope, or remove the message. */
static void
run_done(struct run *r)
{
	struct entry *e = r->e;
	int64_t next;
	size_t i;

	if (e->deleted) {
		/* An operator removed its files meanwhile: the late result is void. */
		log_info("%s status=deleted (its attempt ended)", e->id);
		e->run = NULL;
		entry_free(e);
		run_free(r);
		nruns--;
		sched_arm();
		return;
	}
	r->env.held = e->held;
	if (r->report_failed) {
		/* What Queue/ says is still true: try it all again later. */
		log_warnx("%s: a report could not be made: the message stays as it was",
		    r->env.id);
		next = r->now + env->conf->retry_interval[0];
		goto wait;
	}
	for (i = 0; i < r->env.nrcpts; i++)
		if (r->env.rcpts[i].state == RCPT_PENDING)
			break;
	if (i == r->env.nrcpts) {
		store_remove(r->env.id);
		e->run = NULL;
		entry_free(e);
		run_free(r);
		nruns--;
		sched_arm();
		return;
	}
	next = next_attempt(r);
	/*
	 * Remote recipients that no deliverd took were not attempted: on disk
	 * they are due now, so that a queued restarted meanwhile sends them at
	 * once instead of at the next retry or report time.
	 */
	r->env.next_attempt = r->no_deliverd ? r->now : next == NEVER ? 0 : next;
	if (store_save(&r->env) == -1)
		next = r->now + env->conf->retry_interval[0];
	entry_domains(e, &r->env);
	if (r->no_deliverd && !e->parked) {
		e->parked = 1;
		nparked++;
	}
wait:
	if (e->again)
		next = r->now;
	e->run = NULL;
	run_free(r);
	nruns--;
	if (next != NEVER && !e->held)
		entry_wait(e, next);
	sched_arm();
}

/* ---- the timer, ETRN and the quota ------------------------------------------ */

void
sched_queue_length(uint64_t *local, uint64_t *remote)
{
	const struct entry *e;

	*local = *remote = 0;
	TAILQ_FOREACH(e, &entries, all) {
		if (e->local_pending)
			(*local)++;
		if (e->ndomains > 0)
			(*remote)++;
	}
}

static void
timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct entry *e;
	int64_t now = time(NULL);
	int n = 0;

	(void)fd;
	(void)ev;
	(void)arg;
	while (nheap > 0 && heap[0]->due <= now && nruns < RUNS_MAX &&
	    n++ < RUNS_PER_TURN) {
		e = heap[0];
		heap_remove(e);
		run_start(e);
	}
	sched_arm();
}

void
sched_init(void)
{
	if ((timer = evtimer_new(env->base, timer_cb, NULL)) == NULL)
		fatalx("cannot make the queue timer");
}

/* 1 when `d` is `want`, or with `sub` one of its subdomains. */
static int
domain_match(const char *d, const char *want, int sub)
{
	size_t dl = strlen(d), wl = strlen(want);

	if (strcmp(d, want) == 0)
		return 1;
	return sub && dl > wl && d[dl - wl - 1] == '.' && strcmp(d + dl - wl, want) == 0;
}

uint32_t
sched_etrn(const char *domain, int sub, const char *who)
{
	struct entry *e;
	int64_t now = time(NULL);
	uint32_t count = 0;
	size_t i;
	int hit;

	TAILQ_FOREACH(e, &entries, all) {
		if (e->held || e->deleted)
			continue;
		hit = 0;
		for (i = 0; i < e->ndomains; i++)
			if (domain_match(e->domains[i], domain, sub)) {
				hit = 1;
				if (strv_add(&e->released, &e->nreleased, e->domains[i]) == -1)
					log_warnx("%s: out of memory releasing %s", e->id,
					    e->domains[i]);
			}
		if (!hit)
			continue;
		count++;
		entry_due_now(e, now);
	}
	log_info("%s domain=%s%s messages=%u", who, sub ? "@" : "", domain, count);
	sched_arm();
	return count;
}

void
sched_local_resume(void)
{
	struct entry *e;
	int64_t now = time(NULL);

	TAILQ_FOREACH(e, &entries, all)
		if (e->local_wait) {
			e->local_wait = 0;
			if (e->run != NULL || !e->held)
				entry_due_now(e, now);
		}
	sched_arm();
}

/* ---- the operator's requests (queued_ops.c) -------------------------------- */

static struct entry *
find_entry(const char *id)
{
	struct entry *e;

	TAILQ_FOREACH(e, &entries, all)
		if (!e->deleted && strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

size_t
sched_count(void)
{
	struct entry *e;
	size_t n = 0;

	TAILQ_FOREACH(e, &entries, all)
		if (!e->deleted)
			n++;
	return n;
}

void
sched_foreach(void (*fn)(const char *id, int held, int running, void *), void *arg)
{
	struct entry *e, *t;

	TAILQ_FOREACH_SAFE(e, &entries, all, t)
		if (!e->deleted)
			fn(e->id, e->held, e->run != NULL, arg);
}

int
sched_known(const char *id)
{
	return find_entry(id) != NULL;
}

/* Remove one entry's files and forget it; a run on finishes as void. */
static void
entry_delete(struct entry *e)
{
	struct run *r = e->run;
	struct batch *b, *t;
	int answering;

	store_remove(e->id);
	log_info("%s status=deleted by=operator%s", e->id, r ? " (attempt under way)" : "");
	if (r == NULL) {
		entry_free(e);
		return;
	}
	e->deleted = 1;
	answering = !TAILQ_EMPTY(&r->batches);
	/* Batches not yet sent never will be; those at deliverd are awaited. */
	TAILQ_FOREACH_SAFE(b, &r->batches, entry, t)
		if (!b->sent) {
			TAILQ_REMOVE(&unsent, b, link);
			TAILQ_REMOVE(&r->batches, b, entry);
			batch_free(b);
		}
	if (answering && TAILQ_EMPTY(&r->batches))
		run_finish(r);
}

int
sched_delete(const char *id)
{
	struct entry *e;

	if ((e = find_entry(id)) == NULL)
		return 0;
	entry_delete(e);
	sched_arm();
	return 1;
}

uint32_t
sched_delete_all(void)
{
	struct entry *e, *t;
	uint32_t n = 0;

	TAILQ_FOREACH_SAFE(e, &entries, all, t)
		if (!e->deleted) {
			entry_delete(e);
			n++;
		}
	sched_arm();
	return n;
}

/* Due now, its held domains released for that run (as ETRN does). */
static void
entry_retry(struct entry *e)
{
	size_t i;

	for (i = 0; i < e->ndomains; i++)
		if (strv_add(&e->released, &e->nreleased, e->domains[i]) == -1)
			log_warnx("%s: out of memory releasing %s", e->id, e->domains[i]);
	entry_due_now(e, time(NULL));
}

int
sched_retry(const char *id)
{
	struct entry *e;

	if ((e = find_entry(id)) == NULL)
		return 0;
	if (e->held)
		return -1;
	entry_retry(e);
	log_info("%s retry by=operator", e->id);
	sched_arm();
	return 1;
}

uint32_t
sched_retry_all(void)
{
	struct entry *e;
	uint32_t n = 0;

	TAILQ_FOREACH(e, &entries, all)
		if (!e->deleted && !e->held) {
			entry_retry(e);
			n++;
		}
	log_info("retry all by=operator messages=%u", n);
	sched_arm();
	return n;
}

/* Record the hold in the envelope file; -1 when it cannot be written. */
static int
hold_record(const char *id, int on)
{
	struct envelope env_;
	int r;

	if (store_load_envelope(id, &env_) != 0)
		return -1;
	env_.held = on;
	r = store_save(&env_);
	envelope_free(&env_);
	return r;
}

/* 1 changed, 0 already so, -1 not recorded. */
static int
entry_hold(struct entry *e, int on)
{
	if (e->held == on)
		return 0;
	entry_forget_fresh(e);
	if (hold_record(e->id, on) == -1)
		return -1;
	e->held = on;
	log_info("%s %s by=operator", e->id, on ? "held" : "released");
	if (on) {
		heap_remove(e);
		e->again = 0;
	} else
		entry_due_now(e, time(NULL));
	return 1;
}

int
sched_hold(const char *id, int on)
{
	struct entry *e;
	int r;

	if ((e = find_entry(id)) == NULL)
		return -2;
	r = entry_hold(e, on);
	sched_arm();
	return r;
}

uint32_t
sched_hold_all(int on, uint32_t *failed)
{
	struct entry *e;
	uint32_t n = 0;

	*failed = 0;
	TAILQ_FOREACH(e, &entries, all) {
		if (e->deleted)
			continue;
		switch (entry_hold(e, on)) {
		case 1: n++; break;
		case -1: (*failed)++; break;
		}
	}
	sched_arm();
	return n;
}
