/*
 * mailrootd_queue.c - the queue requests of operators, relayed between the
 * control socket and queued (mailrootd, root; FEATURES O4).
 *
 * A CTL_QUEUE from a control client (whose right to ask was checked by
 * mailrootd_control.c) becomes a DAEMON_QUEUE to queued under a request id
 * of mailrootd's own; each SUPERVISOR_QUEUE_* answer is matched to the
 * client that asked, checked field by field (common/proto_queue.c) and
 * relayed as the matching CLIENT_QUEUE_*.  A listing may take several
 * frames; the request is done with its last.  Trust boundary: queued is
 * less privileged; an answer nobody waits for is dropped, a malformed one
 * fails the request.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ipc.h"
#include "log.h"
#include "mailrootd.h"
#include "proto_queue.h"

#define QUEUE_PENDING	16

struct pending {
	int		 used;
	int		 client;	/* control client slot */
	uint32_t	 client_id;	/* its request id */
	uint32_t	 reqid;		/* ours, sent to queued */
};

static struct pending pending[QUEUE_PENDING];
static uint32_t next_reqid = 1;

/* Forward a queue request of a client to queued; -1 with why. */
int
queue_request(int client, uint32_t client_id, uint32_t op, const char *arg,
    char *why, size_t whysz)
{
	struct proc *p = &mrd->procs[PROC_QUEUED];
	struct mbuf m;
	size_t i;

	if (p->ipc == NULL || !p->ready) {
		snprintf(why, whysz, "queued is not running");
		return -1;
	}
	for (i = 0; i < QUEUE_PENDING; i++)
		if (!pending[i].used)
			break;
	if (i == QUEUE_PENDING) {
		snprintf(why, whysz, "too many requests under way, try again");
		return -1;
	}
	pending[i].used = 1;
	pending[i].client = client;
	pending[i].client_id = client_id;
	pending[i].reqid = next_reqid++;
	if (next_reqid == 0)
		next_reqid = 1;
	m_init(&m, DAEMON_QUEUE, pending[i].reqid);
	m_add_u32(&m, op);
	m_add_str(&m, arg);
	if (ipc_send(p->ipc, &m) == -1) {
		pending[i].used = 0;
		snprintf(why, whysz, "cannot reach queued");
		return -1;
	}
	return 0;
}

/* A SUPERVISOR_QUEUE_* from queued. */
void
queue_answer(struct ipc_msg *msg)
{
	struct mbuf m;
	size_t i;
	int last;

	for (i = 0; i < QUEUE_PENDING; i++)
		if (pending[i].used && pending[i].reqid == msg->id)
			break;
	if (i == QUEUE_PENDING) {
		log_debug("queue answer %u: nobody waits for it", msg->id);
		return;
	}
	/* Each SUPERVISOR_QUEUE_x is followed by its CLIENT_QUEUE_x (proto.h). */
	m_init(&m, msg->type + 1, pending[i].client_id);
	if (proto_queue_copy(msg->type, msg, &m, &last) == -1) {
		m_free(&m);
		pending[i].used = 0;
		log_warnx("malformed %s from queued", proto_type_name(msg->type));
		control_fail(pending[i].client, pending[i].client_id,
		    "malformed answer from queued");
		return;
	}
	if (last)
		pending[i].used = 0;
	control_send(pending[i].client, &m);
}

/* queued went away: nobody will answer what is pending. */
void
queue_queued_gone(void)
{
	size_t i;

	for (i = 0; i < QUEUE_PENDING; i++)
		if (pending[i].used) {
			pending[i].used = 0;
			control_fail(pending[i].client, pending[i].client_id,
			    "queued went away");
		}
}

/* A control client went away: forget its requests. */
void
queue_client_gone(int client)
{
	size_t i;

	for (i = 0; i < QUEUE_PENDING; i++)
		if (pending[i].used && pending[i].client == client)
			pending[i].used = 0;
}
