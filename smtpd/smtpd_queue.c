/*
 * smtpd_queue.c - smtpd's link to queued (smtpd, unprivileged, chrooted).
 * Requests carry the session id; a reply for a session that has gone is
 * answered by aborting the message it opened.  When queued restarts, its
 * new incarnation knows nothing of messages opened on the old link: those
 * sessions are told 451 and never 250.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "ipc.h"
#include "log.h"
#include "proto_commit.h"
#include "smtpd.h"

static struct ipc *link_ipc;
static uint32_t link_gen;
static int drop_over;		/* queued says Drop/ is over drop-quota */

static void
on_opened(struct ipc_msg *msg, struct session *s)
{
	const char *qid;
	int fd = msg->fd;

	msg->fd = -1;
	if (fd == -1 || m_get_str(msg, &qid, QUEUEID_LEN) == -1 || m_end(msg) == -1 ||
	    !queueid_valid(qid)) {
		if (fd != -1)
			close(fd);
		log_warnx("malformed PRODUCER_MSG_OPENED from queued");
		if (s)
			session_queue_failed(s, 1, "queue manager error");
		return;
	}
	if (s == NULL) {
		close(fd);
		queue_abort(qid);
		return;
	}
	session_opened(s, fd, qid);
}

static void
queue_dispatch(struct ipc *ipc, struct ipc_msg *msg, void *arg)
{
	struct session *s = session_find(msg->id);
	const char *reason;
	uint32_t temp;

	(void)ipc;
	(void)arg;
	switch (msg->type) {
	case PRODUCER_MSG_OPENED:
		on_opened(msg, s);
		break;
	case PRODUCER_MSG_COMMITTED:
		if (s)
			session_committed(s);
		break;
	case PRODUCER_DROP_STATE:
		if (m_get_u32(msg, &temp) == -1 || m_end(msg) == -1 || temp > 1) {
			log_warnx("malformed PRODUCER_DROP_STATE from queued");
			break;
		}
		if (drop_over != (int)temp)
			log_info("drop-quota status=%s local-rcpt=%s", temp ? "over" : "under",
			    temp ? "452" : "accepted");
		drop_over = (int)temp;
		break;
	case PRODUCER_ETRN_RESULT:
		if (m_get_u32(msg, &temp) == -1 || m_end(msg) == -1) {
			log_warnx("malformed PRODUCER_ETRN_RESULT from queued");
			break;
		}
		/* An answer after the session gave up (458) or went is dropped. */
		if (s)
			session_etrn_result(s, temp);
		break;
	case PRODUCER_MSG_FAILED:
		if (m_get_u32(msg, &temp) == -1 || m_get_str(msg, &reason, 255) == -1) {
			temp = 1;
			reason = "queue manager error";
		}
		if (s)
			session_queue_failed(s, temp != 0, reason);
		break;
	default:
		log_warnx("unexpected %s from queued", proto_type_name(msg->type));
		break;
	}
}

static void
queue_closed(struct ipc *ipc, void *arg)
{
	(void)arg;
	if (ipc == link_ipc) {
		log_warnx("link to queued lost; messages in progress get 451");
		link_ipc = NULL;
		link_gen++;
		drop_over = 0;	/* the next queued tells again */
		session_queue_lost();
	}
}

void
queue_link_set(int fd)
{
	if (link_ipc)
		ipc_close(link_ipc);
	link_gen++;
	link_ipc = ipc_new(env->base, fd, "queued", queue_dispatch, queue_closed, NULL);
	if (link_ipc == NULL) {
		log_warnx("cannot set up the link to queued");
		close(fd);
	}
}

int
queue_drop_over(void)
{
	return drop_over;
}

uint32_t
queue_link_gen(void)
{
	return link_gen;
}

/* The session's envelope, in an OPEN (announced) or a COMMIT. */
static int
send_envelope(struct session *s, int open)
{
	struct commit_head h = {
		.qid = s->qid, .sender = s->sender, .body = (uint32_t)s->body,
		.smtputf8 = (uint32_t)s->smtputf8, .ret = (uint32_t)s->ret,
		.envid = s->envid,
	};
	struct mbuf m;
	size_t i;

	if (open)
		proto_open_begin(&m, s->id, &h, s->nrcpts);
	else
		proto_commit_begin(&m, s->id, &h, s->nrcpts);
	for (i = 0; i < s->nrcpts; i++)
		proto_commit_rcpt(&m, s->rcpts[i], s->rcpt_notify ? s->rcpt_notify[i] : 0,
		    s->rcpt_orcpt ? s->rcpt_orcpt[i] : NULL);
	return ipc_send(link_ipc, &m);
}

int
queue_open(struct session *s)
{
	if (link_ipc == NULL)
		return -1;
	/* The recipients are known: all local, queued writes into Drop/ at once. */
	return send_envelope(s, 1);
}

int
queue_commit(struct session *s)
{
	if (link_ipc == NULL || s->queue_gen != link_gen)
		return -1;
	return send_envelope(s, 0);
}

void
queue_abort(const char *qid)
{
	struct mbuf m;

	if (link_ipc == NULL)
		return;
	m_init(&m, QUEUE_MSG_ABORT, 0);
	m_add_str(&m, qid);
	ipc_send(link_ipc, &m);
}

int
queue_etrn(struct session *s, const char *node)
{
	struct mbuf m;

	if (link_ipc == NULL)
		return -1;
	m_init(&m, QUEUE_ETRN, s->id);
	m_add_str(&m, node);
	return ipc_send(link_ipc, &m);
}
