/*
 * pickupd.c - the Pickup scanner: main() and its link to queued (runs as
 * _smtpp, with the mailroot group to read what applications drop).
 * pickupd is a producer like smtpd: it asks queued for a file, writes the
 * checked message into it, and removes the Pickup file only after queued
 * says the message is committed.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>

#include "config.h"
#include "daemon.h"
#include "ipc.h"
#include "log.h"
#include "pickupd.h"
#include "proto_commit.h"
#include "queueid.h"
#include "smtp_parse.h"

static struct ipc *queue_ipc;

static void
queue_dispatch(struct ipc *ipc, struct ipc_msg *msg, void *arg)
{
	const char *s;
	uint32_t temp;
	int fd;

	(void)ipc;
	(void)arg;
	switch (msg->type) {
	case PRODUCER_MSG_OPENED:
		fd = msg->fd;
		msg->fd = -1;
		if (fd == -1 || m_get_str(msg, &s, QUEUEID_LEN) == -1 || m_end(msg) == -1 ||
		    !queueid_valid(s)) {
			if (fd != -1)
				close(fd);
			scan_failed(msg->id, 1, "malformed answer from queued");
			return;
		}
		scan_opened(msg->id, fd, s);
		break;
	case PRODUCER_MSG_COMMITTED:
		scan_committed(msg->id);
		break;
	case PRODUCER_BADMAIL_DONE:
		if (m_get_str(msg, &s, QUEUEID_LEN) == -1)
			s = "?";
		scan_badmail_done(msg->id, s);
		break;
	case PRODUCER_MSG_FAILED:
		if (m_get_u32(msg, &temp) == -1 || m_get_str(msg, &s, 255) == -1) {
			temp = 1;
			s = "queue manager error";
		}
		scan_failed(msg->id, temp != 0, s);
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
	if (ipc != queue_ipc)
		return;
	log_warnx("link to queued lost; files in progress are retried");
	queue_ipc = NULL;
	scan_queue_lost();
}

/*
 * A Pickup file's envelope, announced in an OPEN (local mail then goes
 * straight into Drop/) or in the COMMIT.  A Pickup file has no ESMTP
 * parameters: no BODY, no DSN requests.
 */
static int
send_envelope(int open, uint32_t job, const char *qid, const char *sender,
    char *const *rcpts, size_t nrcpts)
{
	struct commit_head h = { .qid = qid, .sender = sender };
	struct mbuf m;
	size_t i;

	if (queue_ipc == NULL)
		return -1;
	if (open)
		proto_open_begin(&m, job, &h, nrcpts);
	else
		proto_commit_begin(&m, job, &h, nrcpts);
	for (i = 0; i < nrcpts; i++)
		proto_commit_rcpt(&m, rcpts[i], 0, NULL);
	return ipc_send(queue_ipc, &m);
}

/* Give up a message opened in the queue: queued removes its file. */
void
pickup_queue_send_abort(const char *qid)
{
	struct mbuf m;

	if (queue_ipc == NULL)
		return;
	m_init(&m, QUEUE_MSG_ABORT, 0);
	m_add_str(&m, qid);
	ipc_send(queue_ipc, &m);
}

int
pickup_queue_send_open(uint32_t job, const char *sender, char *const *rcpts,
    size_t nrcpts)
{
	return send_envelope(1, job, "", sender, rcpts, nrcpts);
}

int
pickup_queue_send_commit(uint32_t job, const char *qid, const char *sender,
    char *const *rcpts, size_t nrcpts)
{
	return send_envelope(0, job, qid, sender, rcpts, nrcpts);
}

int
pickup_queue_send_badmail(uint32_t job, int fd, const char *name, const char *reason)
{
	struct mbuf m;

	if (queue_ipc == NULL) {
		close(fd);
		return -1;
	}
	m_init(&m, QUEUE_BADMAIL, job);
	m_add_fd(&m, fd);
	m_add_str(&m, name);
	m_add_str(&m, reason);
	return ipc_send(queue_ipc, &m);
}

static void
pickupd_peer(enum proc_id peer, int fd)
{
	if (peer != PROC_QUEUED) {
		log_warnx("unexpected peer %s", proc_name(peer));
		close(fd);
		return;
	}
	if (queue_ipc) {
		ipc_close(queue_ipc);
		queue_ipc = NULL;
	}
	queue_ipc = ipc_new(env->base, fd, "queued", queue_dispatch, queue_closed, NULL);
	if (queue_ipc == NULL) {
		close(fd);
		return;
	}
	/* A new queued: look again at what is waiting. */
	scan_start();
}

static int
pickupd_config(struct config *c, const struct config *old, char *why, size_t whysz)
{
	if (old != NULL) {
		scan_reconfigure(c);
		return 0;
	}
	env->conf = c;
	if (scan_init(why, whysz) == -1) {
		env->conf = NULL;
		return -1;
	}
	return 0;
}

static void
pickupd_go(void)
{
	scan_start();
}

static const struct daemon_ops pickupd_ops = {
	.config = pickupd_config,
	.peer = pickupd_peer,
	.go = pickupd_go,
};

int
main(int argc, char **argv)
{
	daemon_main(argc, argv, PROC_PICKUPD, &pickupd_ops);
}
