/*
 * queued_ops.c - the queue for operators: list, show, delete, retry, hold,
 * release, Badmail and requeue (queued, as _smtpq; FEATURES O4).
 *
 * Requests come from mailrootd (DAEMON_QUEUE), which has checked that the
 * control client may make them; each gets one answer, a listing possibly
 * several frames.  What is listed is what Queue/ records, read from the
 * envelope files; changes go through the schedule (queued_sched.c), so a
 * message whose attempt is under way is never resurrected nor crashed on.
 * Trust boundary: the argument is a client's text: a queue id must be
 * valid before it names a file, a domain must be a valid domain.  Badmail
 * reports were written by queued, but are checked like any input.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "ipc.h"
#include "log.h"
#include "proto_queue.h"
#include "queued.h"
#include "smtp_parse.h"
#include "util.h"

#define FRAME_ROOM	(IPC_MAX_PAYLOAD / 2)	/* start a new frame beyond this */
#define BDR_MAX		(64 * 1024)

static void
done(struct ipc *parent, uint32_t id, int ok, uint32_t count, const char *text)
{
	struct mbuf m;

	m_init(&m, SUPERVISOR_QUEUE_DONE, id);
	m_add_u32(&m, ok ? 1 : 0);
	m_add_u32(&m, count);
	m_add_str(&m, text);
	ipc_send(parent, &m);
}

/* Big-endian u32 at payload offset `off` (ipc.h), for counts known late. */
static void
patch_u32(struct mbuf *m, size_t off, uint32_t v)
{
	uint8_t *p;

	if (m->error)
		return;
	p = m->buf + IPC_HDR_SIZE + off;
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* ---- list -------------------------------------------------------------------- */

struct lister {
	struct ipc	*parent;
	uint32_t	 id;
	uint32_t	 total;
	struct mbuf	 m;
	uint32_t	 n;		/* entries in this frame */
};

static void
list_frame_begin(struct lister *l)
{
	m_init(&l->m, SUPERVISOR_QUEUE_LIST, l->id);
	m_add_u32(&l->m, l->total);
	m_add_u32(&l->m, 0);		/* last, set when sent */
	m_add_u32(&l->m, 0);		/* n */
	l->n = 0;
}

static void
list_frame_send(struct lister *l, int last)
{
	patch_u32(&l->m, 4, last ? 1 : 0);
	patch_u32(&l->m, 8, l->n);
	ipc_send(l->parent, &l->m);
}

static void
list_one(const char *id, int held, int running, void *arg)
{
	struct lister *l = arg;
	struct envelope e;
	struct stat st;
	char name[QUEUEID_LEN + 8];
	size_t i, k;

	if (store_load_envelope(id, &e) != 0)
		return;		/* gone meanwhile, or corrupt (its run quarantines it) */
	if (l->m.len > FRAME_ROOM) {
		list_frame_send(l, 0);
		list_frame_begin(l);
	}
	snprintf(name, sizeof(name), "%s.eml", id);
	if (fstatat(qdirs.queue, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		st.st_size = 0;
	k = e.nrcpts < QUEUE_LIST_RCPTS_MAX ? e.nrcpts : QUEUE_LIST_RCPTS_MAX;
	m_add_str(&l->m, e.id);
	m_add_u64(&l->m, (uint64_t)st.st_size);
	m_add_u64(&l->m, (uint64_t)e.arrival);
	m_add_str(&l->m, e.sender);
	m_add_u32(&l->m, e.attempts);
	m_add_u64(&l->m, held ? 0 : (uint64_t)e.next_attempt);
	m_add_u32(&l->m, (held ? QUEUE_F_HELD : 0) | (running ? QUEUE_F_RUNNING : 0));
	m_add_u32(&l->m, (uint32_t)e.nrcpts);
	m_add_u32(&l->m, (uint32_t)k);
	for (i = 0; i < k; i++) {
		m_add_str(&l->m, e.rcpts[i].addr);
		m_add_u32(&l->m, (uint32_t)e.rcpts[i].state);
		m_add_str(&l->m, e.rcpts[i].error ? e.rcpts[i].error : "");
	}
	l->n++;
	envelope_free(&e);
}

static void
op_list(struct ipc *parent, uint32_t id)
{
	struct lister l;

	memset(&l, 0, sizeof(l));
	l.parent = parent;
	l.id = id;
	l.total = (uint32_t)sched_count();
	list_frame_begin(&l);
	sched_foreach(list_one, &l);
	list_frame_send(&l, 1);
}

/* ---- show -------------------------------------------------------------------- */

/* At most max octets of dirfd/name, NUL-terminated (a NUL inside ends it). */
static char *
read_head(int dirfd, const char *name, size_t max)
{
	char *buf;
	ssize_t n;
	int fd;

	if ((fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return NULL;
	if ((buf = malloc(max + 1)) == NULL) {
		close(fd);
		return NULL;
	}
	n = read_full(fd, buf, max);
	close(fd);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

static void
op_show(struct ipc *parent, uint32_t id, const char *qid)
{
	char name[QUEUEID_LEN + 8], why[128], *envtext, *head, *end;
	struct mbuf m;

	snprintf(name, sizeof(name), "%s.env", qid);
	if (!sched_known(qid) || (envtext = read_head(qdirs.queue, name,
	    QUEUE_SHOW_ENV_MAX)) == NULL) {
		snprintf(why, sizeof(why), "%s: not in the queue", qid);
		done(parent, id, 0, 0, why);
		return;
	}
	snprintf(name, sizeof(name), "%s.eml", qid);
	if ((head = read_head(qdirs.queue, name, QUEUE_SHOW_HEADERS_MAX)) != NULL &&
	    (end = strstr(head, "\r\n\r\n")) != NULL)
		end[2] = '\0';
	m_init(&m, SUPERVISOR_QUEUE_SHOW, id);
	m_add_str(&m, envtext);
	m_add_str(&m, head ? head : "");
	ipc_send(parent, &m);
	free(envtext);
	free(head);
}

/* ---- Badmail ----------------------------------------------------------------- */

/* The value of the "Reason:" line of a .BDR, cut at its end (in place). */
static const char *
bdr_reason(char *bdr)
{
	char *r, *eol;

	if (bdr == NULL || (r = strstr(bdr, "Reason: ")) == NULL)
		return "";
	r += 8;
	if ((eol = strpbrk(r, "\r\n")) != NULL)
		*eol = '\0';
	if (strlen(r) > QUEUE_TEXT_MAX)
		r[QUEUE_TEXT_MAX] = '\0';
	return r;
}

static void
op_badmail(struct ipc *parent, uint32_t id)
{
	struct dirent *de;
	struct mbuf m;
	char bid[QUEUEID_LEN + 1], *bdr;
	uint32_t total = 0, n = 0;
	DIR *d;
	int fd;

	if ((fd = dup(qdirs.badmail)) == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		done(parent, id, 0, 0, "cannot read Badmail/");
		return;
	}
	rewinddir(d);
	m_init(&m, SUPERVISOR_QUEUE_BADMAIL, id);
	m_add_u32(&m, 0);
	m_add_u32(&m, 0);
	while ((de = readdir(d)) != NULL) {
		if (strlen(de->d_name) != QUEUEID_LEN + 4 ||
		    strcmp(de->d_name + QUEUEID_LEN, ".BDR") != 0)
			continue;
		memcpy(bid, de->d_name, QUEUEID_LEN);
		bid[QUEUEID_LEN] = '\0';
		if (!queueid_valid(bid))
			continue;
		total++;
		if (m.len > IPC_MAX_PAYLOAD - 4096)
			continue;	/* counted, not shown */
		bdr = read_head(qdirs.badmail, de->d_name, 8192);
		m_add_str(&m, bid);
		m_add_str(&m, bdr_reason(bdr));
		free(bdr);
		n++;
	}
	closedir(d);
	patch_u32(&m, 0, total);
	patch_u32(&m, 4, n);
	ipc_send(parent, &m);
}

/*
 * Requeue: a Badmail entry whose report names its recipients ("Recipient:
 * <addr> ..." lines: mail that could not be delivered) goes back into the
 * queue as a new message, the .BAD as its content, the sender that of a
 * "Sender:" line or else the null sender (the only mail Badmail keeps
 * with its recipients).  Anything else is refused: its recipients are not
 * known.  The Badmail files are removed once the new message is committed.
 */
struct requeue {
	struct ipc	*parent;
	uint32_t	 id;
	char		 bid[QUEUEID_LEN + 1];
	char		 qid[QUEUEID_LEN + 1];
};

static void
requeue_done(void *arg, int committed)
{
	struct requeue *rq = arg;
	char name[QUEUEID_LEN + 8], text[128];

	if (committed) {
		snprintf(name, sizeof(name), "%s.BDR", rq->bid);
		(void)unlinkat(qdirs.badmail, name, 0);
		snprintf(name, sizeof(name), "%s.BAD", rq->bid);
		(void)unlinkat(qdirs.badmail, name, 0);
		(void)fsync(qdirs.badmail);
		log_info("%s status=requeued badmail=%s by=operator", rq->qid, rq->bid);
		snprintf(text, sizeof(text), "%s requeued as %s", rq->bid, rq->qid);
	} else
		snprintf(text, sizeof(text), "%s: the new message could not be committed",
		    rq->bid);
	/* The supervisor link outlives a commit, or the daemon exits with it. */
	done(rq->parent, rq->id, committed, committed ? 1 : 0, text);
	free(rq);
}

/* Sender and recipients from a .BDR into e; -1 with why. */
static int
bdr_envelope(char *bdr, struct envelope *e, char *why, size_t whysz)
{
	char *line, *next, *a, *gt;

	if (strstr(bdr, "\r\nNote: the .BAD copy was truncated") != NULL) {
		snprintf(why, whysz, "its .BAD copy is truncated");
		return -1;
	}
	for (line = bdr; line != NULL && *line != '\0'; line = next) {
		if ((next = strstr(line, "\r\n")) != NULL) {
			*next = '\0';
			next += 2;
		}
		if (strncmp(line, "Recipient: <", 12) != 0 &&
		    strncmp(line, "Sender: <", 9) != 0)
			continue;
		a = strchr(line, '<') + 1;
		if ((gt = strchr(a, '>')) == NULL || gt - a > SMTP_PATH_MAX)
			continue;
		*gt = '\0';
		if (line[0] == 'S') {
			if (e->sender != NULL || (a[0] != '\0' && !smtp_mailbox_valid(a, 1)))
				continue;
			if ((e->sender = strdup(a)) == NULL)
				goto nomem;
		} else if ((smtp_mailbox_valid(a, 1) || smtp_is_postmaster(a)) &&
		    envelope_add_rcpt(e, a, RCPT_PENDING) == -1)
			goto nomem;
	}
	if (e->nrcpts == 0) {
		snprintf(why, whysz, "its report records no recipients (a Pickup file "
		    "that was no message, or a queue file whose envelope was lost)");
		return -1;
	}
	if (e->sender == NULL && (e->sender = strdup("")) == NULL)
		goto nomem;
	return 0;
nomem:
	snprintf(why, whysz, "out of memory");
	return -1;
}

static void
op_requeue(struct ipc *parent, uint32_t id, const char *bid)
{
	char name[QUEUEID_LEN + 8], why[256], text[400], buf[65536];
	struct requeue *rq = NULL;
	struct qmsg *q = NULL;
	char *bdr = NULL;
	ssize_t n;
	size_t i;
	int fd = -1, eight = 0;

	snprintf(name, sizeof(name), "%s.BDR", bid);
	if ((bdr = read_head(qdirs.badmail, name, BDR_MAX)) == NULL) {
		snprintf(why, sizeof(why), "not in Badmail/");
		goto fail;
	}
	snprintf(name, sizeof(name), "%s.BAD", bid);
	if ((fd = openat(qdirs.badmail, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		snprintf(why, sizeof(why), "Badmail/%s: %s", name, strerror(errno));
		goto fail;
	}
	if ((rq = calloc(1, sizeof(*rq))) == NULL || (q = store_internal_open()) == NULL) {
		snprintf(why, sizeof(why), "cannot make a queue file");
		goto fail;
	}
	if (bdr_envelope(bdr, &q->env, why, sizeof(why)) == -1)
		goto fail;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (i = 0; i < (size_t)n && !eight; i++)
			eight = (unsigned char)buf[i] >= 0x80;
		if (write_all(q->fd, buf, (size_t)n) == -1)
			break;
	}
	if (n != 0) {
		snprintf(why, sizeof(why), "copying Badmail/%s: %s", name, strerror(errno));
		goto fail;
	}
	close(fd);
	free(bdr);
	q->env.body = eight ? ENV_BODY_8BITMIME : ENV_BODY_NONE;
	rq->parent = parent;
	rq->id = id;
	(void)strlcpy(rq->bid, bid, sizeof(rq->bid));
	(void)strlcpy(rq->qid, q->id, sizeof(rq->qid));
	store_internal_commit(q, requeue_done, rq);
	return;
fail:
	if (q != NULL)
		store_internal_abort(q);
	free(rq);
	free(bdr);
	if (fd != -1)
		close(fd);
	snprintf(text, sizeof(text), "%s cannot be requeued: %s", bid, why);
	done(parent, id, 0, 0, text);
}

/* ---- the request ------------------------------------------------------------- */

/* DAEMON_QUEUE: u32 op, str argument. */
void
ops_request(struct ipc *parent, struct ipc_msg *msg)
{
	char d[SMTP_DOMAIN_MAX + 1], text[256];
	const char *arg;
	uint32_t op, n, failed;
	size_t i;
	int all, r;

	if (m_get_u32(msg, &op) == -1 || m_get_str(msg, &arg, QUEUE_ARG_MAX) == -1 ||
	    m_end(msg) == -1 || proto_queue_op_name(op) == NULL) {
		log_warnx("malformed DAEMON_QUEUE from the supervisor");
		return;
	}
	all = strcmp(arg, "all") == 0;
	switch (op) {
	case QOP_LIST:
		op_list(parent, msg->id);
		return;
	case QOP_BADMAIL:
		op_badmail(parent, msg->id);
		return;
	case QOP_RETRY_DOMAIN:
		for (i = 0; i < sizeof(d) - 1 && arg[i] != '\0'; i++)
			d[i] = arg[i] >= 'A' && arg[i] <= 'Z' ? (char)(arg[i] - 'A' + 'a') :
			    arg[i];
		d[i] = '\0';
		if (arg[i] != '\0' || !smtp_domain_valid(d, 0)) {
			done(parent, msg->id, 0, 0, "not a domain");
			return;
		}
		n = sched_etrn(d, 0, "retry by=operator");
		snprintf(text, sizeof(text), "%u message%s for %s due now", n,
		    n == 1 ? "" : "s", d);
		done(parent, msg->id, 1, n, text);
		return;
	}
	if (!all && !queueid_valid(arg)) {
		done(parent, msg->id, 0, 0, "not a queue id");
		return;
	}
	if (all && (op == QOP_SHOW || op == QOP_REQUEUE)) {
		done(parent, msg->id, 0, 0, "give one queue id");
		return;
	}
	switch (op) {
	case QOP_SHOW:
		op_show(parent, msg->id, arg);
		return;
	case QOP_REQUEUE:
		op_requeue(parent, msg->id, arg);
		return;
	case QOP_DELETE:
		if (all) {
			n = sched_delete_all();
			snprintf(text, sizeof(text), "%u message%s deleted", n, n == 1 ? "" : "s");
			done(parent, msg->id, 1, n, text);
		} else if (sched_delete(arg)) {
			snprintf(text, sizeof(text), "%s deleted", arg);
			done(parent, msg->id, 1, 1, text);
		} else
			goto notq;
		return;
	case QOP_RETRY:
		if (all) {
			n = sched_retry_all();
			snprintf(text, sizeof(text), "%u message%s due now", n, n == 1 ? "" : "s");
			done(parent, msg->id, 1, n, text);
			return;
		}
		if ((r = sched_retry(arg)) == 0)
			goto notq;
		if (r == -1) {
			snprintf(text, sizeof(text), "%s is on hold: release it first", arg);
			done(parent, msg->id, 0, 0, text);
			return;
		}
		snprintf(text, sizeof(text), "%s due now", arg);
		done(parent, msg->id, 1, 1, text);
		return;
	case QOP_HOLD:
	case QOP_RELEASE:
		if (all) {
			n = sched_hold_all(op == QOP_HOLD, &failed);
			snprintf(text, sizeof(text), "%u message%s %s%s", n, n == 1 ? "" : "s",
			    op == QOP_HOLD ? "held" : "released",
			    failed ? " (some could not be recorded: see the log)" : "");
			done(parent, msg->id, failed == 0, n, text);
			return;
		}
		if ((r = sched_hold(arg, op == QOP_HOLD)) == -2)
			goto notq;
		if (r == -1)
			snprintf(text, sizeof(text), "%s: the hold could not be recorded", arg);
		else
			snprintf(text, sizeof(text), "%s %s%s", arg,
			    op == QOP_HOLD ? "held" : "released",
			    r == 0 ? " already" : "");
		done(parent, msg->id, r != -1, r == 1, text);
		return;
	}
	return;
notq:
	snprintf(text, sizeof(text), "%s: not in the queue", arg);
	done(parent, msg->id, 0, 0, text);
}
