/*
 * proto_deliver.h - the DELIVER_BATCH and QUEUE_DELIVERY_RESULT payloads
 * (mail layer): queued hands deliverd one message for the recipients of
 * one destination domain; deliverd answers with one result per recipient.
 *
 * DELIVER_BATCH (queued -> deliverd; fd: the content, read-only):
 *	str queueid, str sender ("" null sender; already masqueraded),
 *	str domain (the destination: the recipients' domain, lower case),
 *	u32 body (enum envelope_body), u32 smtputf8, u32 ret (enum dsn_ret),
 *	str envid ("" none), u64 size (octets of the content),
 *	u32 n, n x (u32 index (the recipient's index in the envelope),
 *	str rcpt, u32 notify (DSN_NOTIFY_*), str orcpt ("" none)).
 * QUEUE_DELIVERY_RESULT (deliverd -> queued; request id = the batch's):
 *	str queueid, u32 n, n x (u32 index, u32 status (enum deliver_status),
 *	u32 code (the SMTP reply code, 0 when none came), str enhanced
 *	("5.1.1", "" none), str text (the reply or what went wrong, one line),
 *	str host (who answered: "mx.example.org[192.0.2.1]", "" none)).
 * Every recipient of a batch gets exactly one result, in one message.
 */
#ifndef MR_PROTO_DELIVER_H
#define MR_PROTO_DELIVER_H

#include <stddef.h>
#include <stdint.h>

#include "queueid.h"
#include "smtp_parse.h"

struct ipc_msg;
struct mbuf;

#define DELIVER_TEXT_MAX	512	/* a reply text, as passed on */
#define DELIVER_HOST_MAX	(SMTP_DOMAIN_MAX + 64)
#define DELIVER_RCPTS_MAX	100000

enum deliver_status {
	DELIVER_OK = 0,		/* the remote server took it (2xx) */
	DELIVER_TEMPFAIL,	/* try again later (4xx, no answer, DNS trouble) */
	DELIVER_PERMFAIL	/* never (5xx, null MX, no such domain) */
};

struct deliver_rcpt {
	uint32_t	 index;
	const char	*addr;
	uint32_t	 notify;
	const char	*orcpt;		/* "" none */
};

/* A decoded batch; strings point into the frame (valid during the handler). */
struct deliver_batch {
	const char		*qid;
	const char		*sender;
	const char		*domain;
	uint32_t		 body;
	uint32_t		 smtputf8;
	uint32_t		 ret;
	const char		*envid;
	uint64_t		 size;
	size_t			 nrcpts;
	struct deliver_rcpt	*rcpts;	/* malloc'd: proto_deliver_batch_free() */
};

struct deliver_result {
	uint32_t	 index;
	uint32_t	 status;	/* enum deliver_status */
	uint32_t	 code;
	const char	*enhanced;
	const char	*text;
	const char	*host;
};

/* Encode a batch: begin, then exactly nrcpts calls of _rcpt. */
void	proto_deliver_begin(struct mbuf *, uint32_t reqid, const struct deliver_batch *);
void	proto_deliver_rcpt(struct mbuf *, const struct deliver_rcpt *);
/*
 * Decode a batch, checking every field (queue id, mailboxes, domain, DSN
 * fields, counts).  0, or -1 when malformed (the peer is broken: drop it).
 */
int	proto_deliver_decode(struct ipc_msg *, struct deliver_batch *);
void	proto_deliver_batch_free(struct deliver_batch *);

/* Encode a result message: begin, then exactly n calls of _result. */
void	proto_result_begin(struct mbuf *, uint32_t reqid, const char *qid, size_t n);
void	proto_result_add(struct mbuf *, const struct deliver_result *);
/*
 * Decode a result message into `out` (malloc'd array of *n entries, strings
 * pointing into the frame).  0, or -1 when malformed.  Text fields are
 * checked to be printable one-line text.
 */
int	proto_result_decode(struct ipc_msg *, const char **qid,
	    struct deliver_result **out, size_t *n);

const char *deliver_status_name(uint32_t);

#endif
