/*
 * proto_queue.h - the queue requests of operators (smtpq -> mailrootd ->
 * queued) and their answers (mail layer; FEATURES O4).
 *
 * CTL_QUEUE / DAEMON_QUEUE: u32 enum queue_op, str argument (a queue id,
 * "all", or a domain for QOP_RETRY_DOMAIN; "" for the listings).
 *
 * SUPERVISOR_QUEUE_LIST / CLIENT_QUEUE_LIST, one or more frames; the last
 * has `last` 1:
 *	u32 total (messages in the queue), u32 last, u32 n,
 *	n x (str id, u64 size, u64 arrival, str sender, u32 attempts,
 *	     u64 next attempt (0: none planned), u32 flags (QUEUE_F_*),
 *	     u32 recipients in all, u32 k (<= QUEUE_LIST_RCPTS_MAX),
 *	     k x (str address, u32 enum rcpt_state, str last error ("" none)))
 * SUPERVISOR_QUEUE_SHOW / CLIENT_QUEUE_SHOW:
 *	str envelope file (at most QUEUE_SHOW_ENV_MAX octets),
 *	str header section (at most QUEUE_SHOW_HEADERS_MAX octets)
 * SUPERVISOR_QUEUE_BADMAIL / CLIENT_QUEUE_BADMAIL:
 *	u32 total, u32 n, n x (str id, str reason)
 * SUPERVISOR_QUEUE_DONE / CLIENT_QUEUE_DONE:
 *	u32 ok (1) or refused (0), u32 messages affected, str text
 */
#ifndef MR_PROTO_QUEUE_H
#define MR_PROTO_QUEUE_H

#include <stddef.h>
#include <stdint.h>

struct ipc_msg;
struct mbuf;

enum queue_op {
	QOP_LIST = 1,
	QOP_SHOW,
	QOP_BADMAIL,
	QOP_DELETE,
	QOP_RETRY,
	QOP_RETRY_DOMAIN,
	QOP_HOLD,
	QOP_RELEASE,
	QOP_REQUEUE,
	QOP_MAX
};

#define QUEUE_F_HELD		0x1	/* operator hold */
#define QUEUE_F_RUNNING		0x2	/* an attempt is under way */

#define QUEUE_ARG_MAX		255
#define QUEUE_LIST_RCPTS_MAX	200
#define QUEUE_TEXT_MAX		1024	/* reasons, errors, DONE texts */
#define QUEUE_SHOW_ENV_MAX	(512 * 1024)
#define QUEUE_SHOW_HEADERS_MAX	(64 * 1024)
#define QUEUE_LIST_MAX		10000000

/* 1 when the operation changes the queue (root or an operator only). */
int	proto_queue_mutates(uint32_t op);
/* "list", "delete", ... ; NULL for an unknown operation. */
const char *proto_queue_op_name(uint32_t op);
/*
 * Check an answer of queued field by field and copy it into `out` (the
 * CLIENT_QUEUE_* being built).  *last is set to 0 when more frames of a
 * listing follow.  0, or -1 when the answer is malformed.
 */
int	proto_queue_copy(uint32_t type, struct ipc_msg *in, struct mbuf *out, int *last);

#endif
