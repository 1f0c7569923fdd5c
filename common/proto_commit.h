/*
 * proto_commit.h - the QUEUE_MSG_COMMIT payload (mail layer): one encoder
 * for both producers (smtpd, pickupd) and one checked decoder for queued.
 *
 * Payload: str queueid, str sender, u32 body (enum envelope_body),
 * u32 smtputf8, u32 ret (enum dsn_ret), str envid ("" none), u32 n,
 * n x (str rcpt, u32 notify (DSN_NOTIFY_* bits), str orcpt ("" none)).
 *
 * QUEUE_MSG_OPEN may carry the same payload with an empty queue id: the
 * envelope the producer will commit, so that queued can write a message
 * whose recipients are all local straight into Drop/.  An empty OPEN
 * asks for a queue file only.
 */
#ifndef MR_PROTO_COMMIT_H
#define MR_PROTO_COMMIT_H

#include <stddef.h>
#include <stdint.h>

struct envelope;
struct ipc_msg;
struct mbuf;

/* What a producer knows of a message besides its recipients. */
struct commit_head {
	const char	*qid;
	const char	*sender;	/* "" for the null sender */
	uint32_t	 body;		/* enum envelope_body */
	uint32_t	 smtputf8;
	uint32_t	 ret;		/* enum dsn_ret */
	const char	*envid;		/* NULL or "" when none */
};

/* Start a QUEUE_MSG_COMMIT with request id `reqid` for `nrcpts` recipients. */
void	proto_commit_begin(struct mbuf *, uint32_t reqid, const struct commit_head *,
	    size_t nrcpts);
/* The same for a QUEUE_MSG_OPEN that announces its envelope (no queue id). */
void	proto_open_begin(struct mbuf *, uint32_t reqid, const struct commit_head *,
	    size_t nrcpts);
/* Add one recipient (orcpt may be NULL); exactly nrcpts calls follow begin. */
void	proto_commit_rcpt(struct mbuf *, const char *addr, uint32_t notify,
	    const char *orcpt);

/* Read the queue id that opens the payload; -1 when malformed. */
int	proto_commit_qid(struct ipc_msg *, const char **qid);
/*
 * Read the rest into `e` (sender, recipients pending, ESMTP parameters),
 * checking every field.  0 on success; -1 when the frame is malformed (a
 * protocol error: drop the peer); -2 when a field is well framed but
 * invalid (refuse the message), or -3 when memory ran out (a temporary
 * failure), with `why` saying which.
 */
int	proto_commit_decode(struct ipc_msg *, struct envelope *e, uint32_t max_rcpts,
	    char *why, size_t whysz);

#endif
