/*
 * queued_store.c - the one way in, group commit, Queue/ files (queued).
 *
 * A producer asks to open a message and gets a descriptor of a new file in
 * Queue/tmp/; it writes the content there and sends the envelope.  Commits
 * that arrive in one turn of the event loop form a batch: every content and
 * envelope file is made durable (an fsync each, or with commit-sync syncfs
 * one syncfs of the filesystem for all), renamed into Queue/, and Queue/ is
 * synced once;
 * only then does each producer hear that its message is committed, and only
 * then may it say 250 or remove a Pickup file.
 *
 * queued itself is a producer too: an NDR or delay notice is made in
 * Queue/tmp/ and joins the same batch (store_internal_*), with a callback
 * instead of a reply.  At start, the walk of Queue/ rebuilds the schedule
 * (queued_sched.c), which from then on is fed by every commit.
 *
 * Trust boundary: producers are untrusted.  A queue id must be one this
 * producer opened; sender and recipients must be valid mailboxes; counts are
 * bounded.  Descriptors handed out are write-only views of files that only
 * queued names.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "config.h"
#include "daemon.h"
#include "ipc.h"
#include "log.h"
#include "mailroot.h"
#include "proto_commit.h"
#include "queued.h"
#include "smtp_parse.h"
#include "util.h"

#define MAX_OPEN_PER_PRODUCER	4096
#define MAX_RCPTS_PER_MESSAGE	100000

struct queued_dirs qdirs = { -1, -1, -1, -1 };

static struct qmsg_list open_msgs = TAILQ_HEAD_INITIALIZER(open_msgs);
static struct qmsg_list batch = TAILQ_HEAD_INITIALIZER(batch);
static struct event *flush_ev;

static void flush_cb(evutil_socket_t, short, void *);
static int all_local(const struct envelope *);

static int
open_dir(const char *sub, char *why, size_t whysz)
{
	char path[PATH_MAX];
	int fd;

	if (mailroot_path(env->conf, sub, path, sizeof(path)) == -1) {
		snprintf(why, whysz, "mailroot path too long");
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		snprintf(why, whysz, "%s: %s", path, strerror(errno));
	return fd;
}

/* Remove every file in a directory of temporaries (never committed). */
static void
clean_dir(int dirfd, const char *what)
{
	struct dirent *de;
	DIR *d;
	int fd;

	if ((fd = dup(dirfd)) == -1 || (d = fdopendir(fd)) == NULL) {
		log_warn("clean %s", what);
		if (fd != -1)
			close(fd);
		return;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (unlinkat(dirfd, de->d_name, 0) == 0)
			log_info("removed uncommitted %s/%s", what, de->d_name);
	}
	closedir(d);
}

int
store_init(char *why, size_t whysz)
{
	if ((qdirs.queue = open_dir(MR_QUEUE, why, whysz)) == -1 ||
	    (qdirs.tmp = open_dir(MR_QUEUE_TMP, why, whysz)) == -1 ||
	    (qdirs.drop = open_dir(MR_DROP, why, whysz)) == -1 ||
	    (qdirs.badmail = open_dir(MR_BADMAIL, why, whysz)) == -1)
		return -1;
	clean_dir(qdirs.tmp, MR_QUEUE_TMP);
	drop_cleanup();
	flush_ev = event_new(env->base, -1, 0, flush_cb, NULL);
	/* Lower priority: runs after every pending request of this turn. */
	event_priority_set(flush_ev, 1);
	sched_init();
	return 0;
}

static void
qmsg_free(struct qmsg *q)
{
	if (q->fd != -1)
		close(q->fd);
	if (q->envfd != -1)
		close(q->envfd);
	if (q->dropfd != -1)
		close(q->dropfd);
	envelope_free(&q->env);
	envelope_free(&q->announced);
	free(q);
}

/* Remove an uncommitted message and its temporary files. */
static void
qmsg_discard(struct qmsg *q)
{
	char name[QUEUEID_LEN + 8];

	if (q->direct) {
		snprintf(name, sizeof(name), ".%s.tmp", q->id);
		(void)unlinkat(qdirs.drop, name, 0);
	} else {
		snprintf(name, sizeof(name), "%s.eml", q->id);
		(void)unlinkat(qdirs.tmp, name, 0);
		snprintf(name, sizeof(name), "%s.env", q->id);
		(void)unlinkat(qdirs.tmp, name, 0);
	}
	qmsg_free(q);
}

/* A new message with a fresh id and its content file in Queue/tmp/. */
/* The recipients' addresses, for a Drop header (free the array only). */
static const char **
rcpt_addrs(const struct envelope *e)
{
	const char **v;
	size_t i;

	if ((v = reallocarray(NULL, e->nrcpts, sizeof(*v))) == NULL)
		return NULL;
	for (i = 0; i < e->nrcpts; i++)
		v[i] = e->rcpts[i].addr;
	return v;
}

/*
 * A new message and its content file: Drop/.<id>.tmp with the Drop header
 * written when `announced` is a message for local recipients only (the
 * direct commit then only renames it), else Queue/tmp/<id>.eml.
 */
static struct qmsg *
qmsg_new(const struct envelope *announced)
{
	char name[QUEUEID_LEN + 8];
	const char **rcpts = NULL;
	struct qmsg *q;
	int tries, saved;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	if (announced != NULL && (rcpts = rcpt_addrs(announced)) == NULL)
		announced = NULL;	/* no memory for the fast way: the queue */
	q->fd = -1;
	for (tries = 0; tries < 5; tries++) {
		queueid_new(q->id);
		if (announced != NULL) {
			snprintf(name, sizeof(name), ".%s.tmp", q->id);
			if (drop_open(q->id, announced->sender, rcpts, announced->nrcpts,
			    &q->fd, &q->hdrlen) == 0) {
				q->direct = 1;
				break;
			}
			if (errno == EEXIST)
				continue;
			/* Drop/ refused it: the queue takes it, as it would anyway. */
			log_warn("%s: Drop/%s", q->id, name);
			announced = NULL;
		}
		snprintf(name, sizeof(name), "%s.eml", q->id);
		q->fd = openat(qdirs.tmp, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (q->fd != -1 || errno != EEXIST)
			break;
	}
	free(rcpts);
	if (q->fd == -1) {
		saved = errno;
		log_warn("open Queue/tmp/%s", name);
		free(q);
		errno = saved;
		return NULL;
	}
	q->envfd = q->dropfd = -1;
	return q;
}
void
store_open(struct producer *p, struct ipc_msg *msg)
{
	char name[QUEUEID_LEN + 8], why[128];
	struct envelope ann;
	const char *qid;
	uint32_t reqid = msg->id;
	struct qmsg *q;
	struct mbuf m;
	int wfd, r, direct = 0;

	memset(&ann, 0, sizeof(ann));
	if (msg->pos < msg->len) {
		/* The envelope announced (common/proto_commit.h), checked as a commit's. */
		if (proto_commit_qid(msg, &qid) == -1 || qid[0] != '\0' ||
		    (r = proto_commit_decode(msg, &ann, MAX_RCPTS_PER_MESSAGE, why,
		    sizeof(why))) == -1) {
			envelope_free(&ann);
			log_warnx("%s sent a malformed open: dropping the link",
			    proc_name(p->id));
			ipc_close(p->ipc);
			return;
		}
		/* Not valid, or no memory: the commit will say (or the queue takes it). */
		direct = r == 0 && ann.nrcpts > 0 && all_local(&ann) && !quota_over();
	}
	if (p->nopen >= MAX_OPEN_PER_PRODUCER) {
		envelope_free(&ann);
		producer_reply_failed(p, reqid, 1, "too many messages open");
		return;
	}
	if ((q = qmsg_new(direct ? &ann : NULL)) == NULL) {
		envelope_free(&ann);
		producer_reply_failed(p, reqid, 1, errno == ENOSPC || errno == EDQUOT ?
		    "insufficient system storage" : errno == ENOMEM ? "out of memory" :
		    "cannot create queue file");
		return;
	}
	if (q->direct)
		q->announced = ann;	/* moved */
	else
		envelope_free(&ann);
	if (q->direct)
		snprintf(name, sizeof(name), ".%s.tmp", q->id);
	else
		snprintf(name, sizeof(name), "%s.eml", q->id);
	/*
	 * The producer gets a duplicate of the descriptor: it can reach no
	 * other file, and reading back what it wrote itself gives it nothing.
	 * (A second open(2) here would cost a directory lookup per message.)
	 */
	if ((wfd = fcntl(q->fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		log_warn("dup %s%s", q->direct ? "Drop/" : "Queue/tmp/", name);
		producer_reply_failed(p, reqid, 1, "cannot create queue file");
		qmsg_discard(q);
		return;
	}
	q->owner = p;
	q->owner_gen = p->gen;
	q->state = QMSG_OPEN;
	TAILQ_INSERT_TAIL(&open_msgs, q, entry);
	p->nopen++;
	m_init(&m, PRODUCER_MSG_OPENED, reqid);
	m_add_fd(&m, wfd);
	m_add_str(&m, q->id);
	ipc_send(p->ipc, &m);
}

static struct qmsg *
find_open(struct producer *p, const char *id)
{
	struct qmsg *q;

	TAILQ_FOREACH(q, &open_msgs, entry)
		if (q->owner == p && q->owner_gen == p->gen && strcmp(q->id, id) == 0)
			return q;
	return NULL;
}

/* The same sender and recipients, in the same order. */
static int
same_rcpts(const struct envelope *a, const struct envelope *b)
{
	size_t i;

	if (strcmp(a->sender, b->sender) != 0 || a->nrcpts != b->nrcpts)
		return 0;
	for (i = 0; i < a->nrcpts; i++)
		if (strcmp(a->rcpts[i].addr, b->rcpts[i].addr) != 0)
			return 0;
	return 1;
}

void
store_commit(struct producer *p, struct ipc_msg *msg)
{
	const char *id;
	char why[128];
	struct qmsg *q;
	int r;

	if (proto_commit_qid(msg, &id) == -1)
		goto protocol;
	if ((q = find_open(p, id)) == NULL)
		goto protocol;
	/* One checked decoder for every producer (common/proto_commit.c). */
	r = proto_commit_decode(msg, &q->env, MAX_RCPTS_PER_MESSAGE, why, sizeof(why));
	if (r == -1)
		goto protocol;
	if (r == -2) {
		log_warnx("%s: %s sent an envelope with an %s", q->id, proc_name(p->id), why);
		goto refuse;
	}
	if (r == -3)
		goto temp;
	if (q->direct && !same_rcpts(&q->announced, &q->env)) {
		/* The Drop header was written from the OPEN: it must be this one. */
		log_warnx("%s: %s committed another envelope than it announced", q->id,
		    proc_name(p->id));
		goto refuse;
	}
	strlcpy(q->env.id, q->id, sizeof(q->env.id));
	q->env.arrival = time(NULL);
	q->reqid = msg->id;
	q->state = QMSG_COMMITTING;
	TAILQ_REMOVE(&open_msgs, q, entry);
	p->nopen--;
	TAILQ_INSERT_TAIL(&batch, q, entry);
	if (!event_pending(flush_ev, EV_TIMEOUT, NULL))
		event_active(flush_ev, EV_TIMEOUT, 0);
	return;
refuse:
	producer_reply_failed(p, msg->id, 0, "invalid envelope");
	TAILQ_REMOVE(&open_msgs, q, entry);
	p->nopen--;
	qmsg_discard(q);
	return;
temp:
	producer_reply_failed(p, msg->id, 1, "out of memory");
	TAILQ_REMOVE(&open_msgs, q, entry);
	p->nopen--;
	qmsg_discard(q);
	return;
protocol:
	log_warnx("%s sent a malformed commit: dropping the link", proc_name(p->id));
	ipc_close(p->ipc);
}

void
store_abort(struct producer *p, struct ipc_msg *msg)
{
	const char *id;
	struct qmsg *q;

	if (m_get_str(msg, &id, QUEUEID_LEN) == -1 || m_end(msg) == -1) {
		log_warnx("%s sent a malformed abort: dropping the link", proc_name(p->id));
		ipc_close(p->ipc);
		return;
	}
	if ((q = find_open(p, id)) == NULL)
		return;		/* already gone: harmless */
	TAILQ_REMOVE(&open_msgs, q, entry);
	p->nopen--;
	log_debug("%s aborted by %s", id, proc_name(p->id));
	qmsg_discard(q);
}

void
store_producer_gone(struct producer *p)
{
	struct qmsg *q, *t;

	TAILQ_FOREACH_SAFE(q, &open_msgs, entry, t) {
		if (q->owner != p)
			continue;
		TAILQ_REMOVE(&open_msgs, q, entry);
		log_debug("%s discarded: %s went away before committing it",
		    q->id, proc_name(p->id));
		qmsg_discard(q);
	}
	p->nopen = 0;
}

struct qmsg *
store_internal_open(void)
{
	struct qmsg *q;

	if ((q = qmsg_new(NULL)) == NULL)
		return NULL;
	q->state = QMSG_OPEN;
	return q;
}

void
store_internal_commit(struct qmsg *q, qmsg_done_fn done, void *arg)
{
	q->owner = NULL;
	q->done = done;
	q->done_arg = arg;
	strlcpy(q->env.id, q->id, sizeof(q->env.id));
	q->env.arrival = time(NULL);
	q->state = QMSG_COMMITTING;
	TAILQ_INSERT_TAIL(&batch, q, entry);
	if (!event_pending(flush_ev, EV_TIMEOUT, NULL))
		event_active(flush_ev, EV_TIMEOUT, 0);
}

void
store_internal_abort(struct qmsg *q)
{
	qmsg_discard(q);
}

/*
 * commit-sync syncfs: one syncfs(2) makes every file and directory entry
 * written on the spool's filesystem durable with one device flush, where
 * fsync(2) costs one flush per file: a group commit then costs two flushes
 * however many messages it holds.  Linux reports the filesystem's writeback
 * errors to syncfs(2) since 5.8; any error fails the whole group.
 */
static int
use_syncfs(void)
{
	return env->conf->commit_syncfs;
}

/*
 * Write an envelope file.  With fdp NULL it is fsync'd and closed; else its
 * writeback is started and the open descriptor left for the caller to fsync.
 */
static int
write_envelope(int dirfd, const struct envelope *e, const char *name, int *fdp)
{
	struct evbuffer *b;
	int fd, r = -1, saved;

	if ((b = evbuffer_new()) == NULL)
		return -1;
	if (envelope_format(e, b) == -1)
		goto out;
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1)
		goto out;
	while (evbuffer_get_length(b) > 0)
		if (evbuffer_write(b, fd) <= 0)
			break;
	if (evbuffer_get_length(b) == 0 && fdp != NULL) {
		if (!use_syncfs())
			(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		*fdp = fd;
		evbuffer_free(b);
		return 0;
	}
	if (evbuffer_get_length(b) == 0 && fsync(fd) == 0)
		r = 0;
	saved = errno;
	close(fd);
	errno = saved;
out:
	evbuffer_free(b);
	return r;
}

/*
 * Deliver the pending local recipients of a committed message into Drop/.
 * Returns 1 when some were delivered (Drop/ then needs its fsync).
 */
static int
deliver_local(struct envelope *e, int fd)
{
	const char **rcpts;
	size_t *idx, i, n = 0;
	char why[256];

	rcpts = reallocarray(NULL, e->nrcpts, sizeof(*rcpts));
	idx = reallocarray(NULL, e->nrcpts, sizeof(*idx));
	if (rcpts == NULL || idx == NULL)
		goto out;
	for (i = 0; i < e->nrcpts; i++)
		if (e->rcpts[i].state == RCPT_PENDING &&
		    config_is_local_rcpt(env->conf, e->rcpts[i].addr)) {
			idx[n] = i;
			rcpts[n++] = e->rcpts[i].addr;
		}
	if (n == 0)
		goto out;
	/* N2: while Drop/ is over its quota, local mail waits in the queue. */
	if (quota_over()) {
		for (i = 0; i < n; i++)
			log_info("%s status=deferred to=<%s> relay=local dsn=4.2.2 "
			    "delay=%llds reason=drop-quota", e->id, rcpts[i],
			    (long long)(time(NULL) - e->arrival));
		queued_stats.deferred += n;
		n = 0;
	} else if (drop_deliver(e->id, e->sender, rcpts, n, fd, why, sizeof(why)) == -1) {
		for (i = 0; i < n; i++)
			log_warnx("%s status=deferred to=<%s> relay=local dsn=4.3.0 "
			    "delay=%llds reason=\"%s\"", e->id, rcpts[i],
			    (long long)(time(NULL) - e->arrival), why);
		queued_stats.deferred += n;
		n = 0;
	}
	queued_stats.local += n;
	for (i = 0; i < n; i++) {
		e->rcpts[idx[i]].state = RCPT_DONE;
		log_info("%s status=delivered to=<%s> relay=local dsn=2.0.0 delay=%llds",
		    e->id, e->rcpts[idx[i]].addr,
		    (long long)(time(NULL) - e->arrival));
	}
out:
	free(rcpts);
	free(idx);
	return n > 0;
}

size_t
store_deliver_local(struct envelope *e, int fd, int *deferred)
{
	enum rcpt_state *was;
	size_t i, n = 0;

	*deferred = 0;
	if ((was = reallocarray(NULL, e->nrcpts, sizeof(*was))) == NULL) {
		*deferred = 1;
		return 0;
	}
	for (i = 0; i < e->nrcpts; i++)
		was[i] = e->rcpts[i].state;
	if (deliver_local(e, fd) && drop_sync() == -1) {
		/* Not durable: as if not delivered (a retry may duplicate). */
		log_warn("%s: fsync Drop/ (local delivery will be retried)", e->id);
		for (i = 0; i < e->nrcpts; i++)
			e->rcpts[i].state = was[i];
	}
	for (i = 0; i < e->nrcpts; i++) {
		if (was[i] == RCPT_PENDING && e->rcpts[i].state == RCPT_DONE)
			n++;
		else if (e->rcpts[i].state == RCPT_PENDING &&
		    config_is_local_rcpt(env->conf, e->rcpts[i].addr))
			*deferred = 1;
	}
	free(was);
	return n;
}

int
store_save(const struct envelope *e)
{
	char name[QUEUEID_LEN + 8];

	snprintf(name, sizeof(name), "%s.env", e->id);
	if (write_envelope(qdirs.tmp, e, name, NULL) == -1 ||
	    renameat(qdirs.tmp, name, qdirs.queue, name) == -1) {
		log_warn("%s: cannot record delivery progress (will retry)", e->id);
		(void)unlinkat(qdirs.tmp, name, 0);
		return -1;
	}
	return 0;
}

void
store_remove(const char *id)
{
	char name[QUEUEID_LEN + 8];

	/* Envelope first: a content file alone is an uncommitted leftover. */
	snprintf(name, sizeof(name), "%s.env", id);
	if (unlinkat(qdirs.queue, name, 0) == -1)
		log_warn("%s: unlink Queue/%s", id, name);
	snprintf(name, sizeof(name), "%s.eml", id);
	(void)unlinkat(qdirs.queue, name, 0);
	log_debug("%s removed from the queue", id);
}

/*
 * After Drop/ is durable: remove a finished message, or record progress.
 * Returns 1 when the message stays queued.
 */
static int
finish_message(const struct envelope *e, int changed)
{
	size_t i;

	for (i = 0; i < e->nrcpts; i++)
		if (e->rcpts[i].state == RCPT_PENDING)
			break;
	if (i == e->nrcpts) {
		store_remove(e->id);
		return 0;
	}
	if (changed)
		(void)store_save(e);
	return 1;
}

static void
reply_committed(struct qmsg *q)
{
	struct mbuf m;

	if (q->owner == NULL) {
		if (q->done)
			q->done(q->done_arg, 1);
		q->done = NULL;
		return;
	}
	if (q->owner->ipc == NULL || q->owner->gen != q->owner_gen)
		return;		/* it went away; the message is safe anyway */
	m_init(&m, PRODUCER_MSG_COMMITTED, q->reqid);
	m_add_str(&m, q->id);
	ipc_send(q->owner->ipc, &m);
}

/* Refuse one member of a commit list: reply, log, remove its temporaries. */
static void
commit_fail(struct qmsg_list *list, struct qmsg *q, const char *what)
{
	int full = errno == ENOSPC || errno == EDQUOT;

	log_warn("%s: %s", q->id, what);
	if (q->owner == NULL) {
		if (q->done)
			q->done(q->done_arg, 0);
		q->done = NULL;
	} else if (q->owner->ipc && q->owner->gen == q->owner_gen)
		producer_reply_failed(q->owner, q->reqid, 1, full ?
		    "insufficient system storage" : "queue write error");
	TAILQ_REMOVE(list, q, entry);
	qmsg_discard(q);
}

static void
log_accepted(const struct qmsg *q)
{
	if (q->owner && q->owner->id == PROC_SMTPD)
		queued_stats.in_smtpd++;
	else if (q->owner && q->owner->id == PROC_PICKUPD)
		queued_stats.in_pickupd++;
	log_info("%s status=accepted from=<%s> nrcpt=%zu size=%llu via=%s",
	    q->id, q->env.sender, q->env.nrcpts, (unsigned long long)q->size,
	    q->owner ? proc_name(q->owner->id) : "queued");
}

/* Every recipient is in a local domain: the message may go straight to Drop/. */
static int
all_local(const struct envelope *e)
{
	size_t i;

	for (i = 0; i < e->nrcpts; i++)
		if (!config_is_local_rcpt(env->conf, e->rcpts[i].addr))
			return 0;
	return 1;
}

int
store_sync_dir(int dirfd)
{
	return use_syncfs() ? syncfs(dirfd) : fsync(dirfd);
}

/*
 * Direct commit of messages whose recipients are all local: one durable
 * write each, straight into Drop/.  Every Drop file of the list is written
 * (writeback started), then each is fsync'd (the first fsync's journal
 * commit carries the others) and renamed in, then Drop/ is fsync'd once;
 * only then is each producer answered.  The content file in Queue/tmp/ was
 * never made durable: it is removed.
 */
static void
commit_direct(struct qmsg_list *list)
{
	char why[256], name[QUEUEID_LEN + 8];
	const char **rcpts;
	struct qmsg *q, *t;
	size_t i;

	TAILQ_FOREACH_SAFE(q, list, entry, t) {
		if (q->direct) {
			/* Written from its OPEN: the content is in Drop/ already. */
			q->dropfd = q->fd;
			q->fd = -1;
			continue;
		}
		if ((rcpts = rcpt_addrs(&q->env)) == NULL) {
			commit_fail(list, q, "out of memory");
			continue;
		}
		if (drop_write(q->id, q->env.sender, rcpts, q->env.nrcpts, q->fd, 1,
		    &q->dropfd, why, sizeof(why)) == -1)
			commit_fail(list, q, why);
		free(rcpts);
	}
	if (use_syncfs() && !TAILQ_EMPTY(list) && syncfs(qdirs.drop) == -1) {
		int saved = errno;

		TAILQ_FOREACH_SAFE(q, list, entry, t) {
			if (q->dropfd != -1) {
				snprintf(name, sizeof(name), ".%s.tmp", q->id);
				(void)unlinkat(qdirs.drop, name, 0);
			}
			errno = saved;
			commit_fail(list, q, "syncfs Drop/ files");
		}
		return;
	}
	TAILQ_FOREACH_SAFE(q, list, entry, t) {
		if (q->dropfd == -1)
			continue;
		if (drop_commit(q->id, q->dropfd, use_syncfs(), why, sizeof(why)) == -1) {
			q->dropfd = -1;
			commit_fail(list, q, why);
			continue;
		}
		q->dropfd = -1;
	}
	if (TAILQ_EMPTY(list))
		return;
	if (drop_sync() == -1) {
		/* Visible in Drop/ but not durable: say 451; a retry may duplicate. */
		TAILQ_FOREACH_SAFE(q, list, entry, t)
			commit_fail(list, q, "fsync Drop/");
		return;
	}
	/*
	 * commit_fail() removed what it freed from the list; the analyzer
	 * cannot follow TAILQ_REMOVE's pointer to the head.
	 */
	TAILQ_FOREACH(q, list, entry) {
		reply_committed(q);	/* NOLINT(clang-analyzer-unix.Malloc) */
		log_accepted(q);
		queued_stats.local += q->env.nrcpts;
		for (i = 0; i < q->env.nrcpts; i++)
			log_info("%s status=delivered to=<%s> relay=local dsn=2.0.0 "
			    "delay=%llds", q->id, q->env.rcpts[i].addr,
			    (long long)(time(NULL) - q->env.arrival));
		if (!q->direct) {
			snprintf(name, sizeof(name), "%s.eml", q->id);
			(void)unlinkat(qdirs.tmp, name, 0);
		}
	}
}

/*
 * Commit into Queue/.  Order matters: all content and envelopes are written
 * and fsync'd before any rename, so a crash leaves each message either
 * wholly in Queue/ or only in Queue/tmp/ (removed at the next start).  Then
 * its local recipients are delivered into Drop/.
 */
static void
commit_queue(struct qmsg_list *list)
{
	char name[QUEUEID_LEN + 8];
	struct qmsg *q, *t;
	int ndrop = 0;

	TAILQ_FOREACH_SAFE(q, list, entry, t) {
		snprintf(name, sizeof(name), "%s.env", q->id);
		if (!use_syncfs())
			(void)sync_file_range(q->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		if (write_envelope(qdirs.tmp, &q->env, name, &q->envfd) == -1)
			commit_fail(list, q, "write envelope");
	}
	if (use_syncfs() && !TAILQ_EMPTY(list) && syncfs(qdirs.tmp) == -1) {
		int saved = errno;

		TAILQ_FOREACH_SAFE(q, list, entry, t) {
			errno = saved;
			commit_fail(list, q, "syncfs queue files");
		}
		return;
	}
	TAILQ_FOREACH_SAFE(q, list, entry, t) {
		if (!use_syncfs() && (fsync(q->fd) == -1 || fsync(q->envfd) == -1)) {
			commit_fail(list, q, "fsync queue files");
			continue;
		}
		close(q->envfd);
		q->envfd = -1;
	}
	TAILQ_FOREACH_SAFE(q, list, entry, t) {
		snprintf(name, sizeof(name), "%s.eml", q->id);
		if (renameat(qdirs.tmp, name, qdirs.queue, name) == -1) {
			commit_fail(list, q, "rename content into Queue/");
			continue;
		}
		snprintf(name, sizeof(name), "%s.env", q->id);
		if (renameat(qdirs.tmp, name, qdirs.queue, name) == -1) {
			snprintf(name, sizeof(name), "%s.eml", q->id);
			(void)unlinkat(qdirs.queue, name, 0);
			commit_fail(list, q, "rename envelope into Queue/");
		}
	}
	if (TAILQ_EMPTY(list))
		return;
	if (store_sync_dir(qdirs.queue) == -1) {
		/* Not durable: nobody may be told it is. */
		TAILQ_FOREACH_SAFE(q, list, entry, t) {
			snprintf(name, sizeof(name), "%s.eml", q->id);
			(void)unlinkat(qdirs.queue, name, 0);
			snprintf(name, sizeof(name), "%s.env", q->id);
			(void)unlinkat(qdirs.queue, name, 0);
			commit_fail(list, q, "fsync Queue/");
		}
		return;
	}
	/*
	 * commit_fail() removed what it freed from the list; the analyzer
	 * cannot follow TAILQ_REMOVE's pointer to the head.
	 */
	TAILQ_FOREACH(q, list, entry) {
		reply_committed(q);	/* NOLINT(clang-analyzer-unix.Malloc) */
		log_accepted(q);
	}
	/* Local delivery of the whole list, then one fsync of Drop/. */
	TAILQ_FOREACH(q, list, entry)
		ndrop += q->dropped = deliver_local(&q->env, q->fd);
	if (ndrop > 0 && drop_sync() == -1) {
		log_warn("fsync Drop/ (messages stay queued)");
		TAILQ_FOREACH(q, list, entry)
			sched_add(&q->env);
	} else
		TAILQ_FOREACH(q, list, entry)
			if (finish_message(&q->env, q->dropped))
				sched_add_committed(&q->env);
}

/*
 * Group commit: the commits that arrived in one turn of the event loop are
 * made durable together.
 */
static void
flush_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct qmsg_list direct = TAILQ_HEAD_INITIALIZER(direct);
	struct qmsg_list queue = TAILQ_HEAD_INITIALIZER(queue);
	struct qmsg *q;

	(void)fd;
	(void)ev;
	(void)arg;
	while ((q = TAILQ_FIRST(&batch)) != NULL) {
		struct stat st;

		TAILQ_REMOVE(&batch, q, entry);
		/* What the producer wrote (after the Drop header, if any). */
		if (fstat(q->fd, &st) == 0 && (uint64_t)st.st_size >= q->hdrlen)
			q->size = (uint64_t)st.st_size - q->hdrlen;
		/*
		 * Over the Drop quota, local mail waits in the queue instead
		 * (a message written into Drop/ from its OPEN was let in then).
		 */
		if (q->direct || (all_local(&q->env) && !quota_over()))
			TAILQ_INSERT_TAIL(&direct, q, entry);
		else
			TAILQ_INSERT_TAIL(&queue, q, entry);
	}
	commit_direct(&direct);
	commit_queue(&queue);
	while ((q = TAILQ_FIRST(&direct)) != NULL) {
		TAILQ_REMOVE(&direct, q, entry);
		qmsg_free(q);
	}
	while ((q = TAILQ_FIRST(&queue)) != NULL) {
		TAILQ_REMOVE(&queue, q, entry);
		qmsg_free(q);
	}
}

int
store_load_envelope(const char *id, struct envelope *e)
{
	char name[QUEUEID_LEN + 8], why[128];
	struct stat st;
	char *buf;
	ssize_t n;
	int fd;

	memset(e, 0, sizeof(*e));
	snprintf(name, sizeof(name), "%s.env", id);
	if ((fd = openat(qdirs.queue, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return -1;
	if (fstat(fd, &st) == -1 || st.st_size > ENVELOPE_MAX_SIZE ||
	    (buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return -1;
	}
	n = read_full(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size || envelope_parse(buf, (size_t)n, e, why, sizeof(why)) == -1 ||
	    strcmp(e->id, id) != 0) {
		free(buf);
		log_warnx("%s: corrupt envelope Queue/%s: %s", id, name,
		    n != st.st_size ? "short read" : e->id[0] && strcmp(e->id, id) != 0 ?
		    "another message's id" : why);
		envelope_free(e);
		return -2;
	}
	free(buf);
	return 0;
}

int
store_open_content(const char *id, int *fdp)
{
	char name[QUEUEID_LEN + 8];

	snprintf(name, sizeof(name), "%s.eml", id);
	if ((*fdp = openat(qdirs.queue, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		log_warn("%s: envelope without content Queue/%s", id, name);
		return -2;
	}
	return 0;
}

int
store_load(const char *id, struct envelope *e, int *fdp)
{
	int r;

	if ((r = store_load_envelope(id, e)) != 0)
		return r;
	if ((r = store_open_content(id, fdp)) != 0)
		envelope_free(e);
	return r;
}

void
store_quarantine(const char *id)
{
	char name[QUEUEID_LEN + 8], why[256];
	int fd;

	snprintf(name, sizeof(name), "%s.eml", id);
	fd = openat(qdirs.queue, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (badmail_write(id, fd, "the queue envelope of this message was "
	    "corrupt or unreadable; its recipients are unknown", why, sizeof(why)) == -1) {
		log_warnx("%s: cannot move to Badmail/: %s", id, why);
		if (fd != -1)
			close(fd);
		return;
	}
	if (fd != -1)
		close(fd);
	log_info("%s status=badmail reason=\"corrupt queue envelope\"", id);
	snprintf(name, sizeof(name), "%s.env", id);
	(void)unlinkat(qdirs.queue, name, 0);
	snprintf(name, sizeof(name), "%s.eml", id);
	(void)unlinkat(qdirs.queue, name, 0);
}

/*
 * The recovery walk, once at start: every committed message of Queue/ joins
 * the schedule (due at once when never attempted or its time is past);
 * content files that were never committed are removed; a message whose
 * envelope is corrupt goes to Badmail/.  Only envelopes are read here:
 * delivery is the scheduler's, a bounded number of messages at a time.
 */
void
store_queue_run(void)
{
	struct envelope e;
	struct dirent *de;
	char id[QUEUEID_LEN + 1], name[QUEUEID_LEN + 8];
	const char *ext;
	size_t n = 0;
	int dfd, r;
	DIR *d;

	if ((dfd = dup(qdirs.queue)) == -1 || (d = fdopendir(dfd)) == NULL) {
		log_warn("recovery walk of Queue/");
		if (dfd != -1)
			close(dfd);
		return;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (strlen(de->d_name) != QUEUEID_LEN + 4)
			continue;
		ext = de->d_name + QUEUEID_LEN;
		if (strcmp(ext, ".env") != 0 && strcmp(ext, ".eml") != 0)
			continue;
		memcpy(id, de->d_name, QUEUEID_LEN);
		id[QUEUEID_LEN] = '\0';
		if (!queueid_valid(id))
			continue;
		if (strcmp(ext, ".eml") == 0) {
			snprintf(name, sizeof(name), "%s.env", id);
			if (faccessat(qdirs.queue, name, F_OK, AT_SYMLINK_NOFOLLOW) == -1 &&
			    errno == ENOENT && unlinkat(qdirs.queue, de->d_name, 0) == 0)
				log_info("removed uncommitted Queue/%s", de->d_name);
			continue;
		}
		snprintf(name, sizeof(name), "%s.eml", id);
		if ((r = store_load_envelope(id, &e)) == 0 &&
		    faccessat(qdirs.queue, name, F_OK, AT_SYMLINK_NOFOLLOW) == -1) {
			log_warnx("%s: envelope without content Queue/%s", id, name);
			envelope_free(&e);
			r = -2;
		}
		if (r == -2) {
			store_quarantine(id);
			continue;
		}
		if (r == -1)
			continue;
		sched_add(&e);
		envelope_free(&e);
		n++;
	}
	closedir(d);
	log_info("queue recovered messages=%zu", n);
}
