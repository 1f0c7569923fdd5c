/*
 * proto_commit.c - encode and decode QUEUE_MSG_COMMIT (mail layer).
 * The encoder runs in the producers (smtpd, pickupd), the decoder in queued.
 * Trust boundary: the decoder reads what a less privileged producer sent.
 * Every string is bounded by its protocol maximum, every count by the
 * caller's limit, every address must be a valid mailbox (or the bare
 * postmaster), and the DSN fields must match RFC 3461.
 */
#include <stdio.h>
#include <string.h>

#include "dsn.h"
#include "envelope.h"
#include "ipc.h"
#include "proto.h"
#include "proto_commit.h"
#include "queueid.h"
#include "smtp_parse.h"

static void
begin(struct mbuf *m, uint32_t type, uint32_t reqid, const char *qid,
    const struct commit_head *h, size_t nrcpts)
{
	m_init(m, type, reqid);
	m_add_str(m, qid);
	m_add_str(m, h->sender);
	m_add_u32(m, h->body);
	m_add_u32(m, h->smtputf8);
	m_add_u32(m, h->ret);
	m_add_str(m, h->envid ? h->envid : "");
	m_add_u32(m, (uint32_t)nrcpts);
}

void
proto_commit_begin(struct mbuf *m, uint32_t reqid, const struct commit_head *h,
    size_t nrcpts)
{
	begin(m, QUEUE_MSG_COMMIT, reqid, h->qid, h, nrcpts);
}

void
proto_open_begin(struct mbuf *m, uint32_t reqid, const struct commit_head *h,
    size_t nrcpts)
{
	begin(m, QUEUE_MSG_OPEN, reqid, "", h, nrcpts);
}

void
proto_commit_rcpt(struct mbuf *m, const char *addr, uint32_t notify, const char *orcpt)
{
	m_add_str(m, addr);
	m_add_u32(m, notify);
	m_add_str(m, orcpt ? orcpt : "");
}

int
proto_commit_qid(struct ipc_msg *msg, const char **qid)
{
	return m_get_str(msg, qid, QUEUEID_LEN);
}

int
proto_commit_decode(struct ipc_msg *msg, struct envelope *e, uint32_t max_rcpts,
    char *why, size_t whysz)
{
	const char *sender, *envid, *rcpt, *orcpt;
	uint32_t body, utf8, ret, n, i, notify;
	int bad = 0;

	if (m_get_str(msg, &sender, SMTP_PATH_MAX) == -1 ||
	    m_get_u32(msg, &body) == -1 || m_get_u32(msg, &utf8) == -1 ||
	    m_get_u32(msg, &ret) == -1 ||
	    m_get_str(msg, &envid, DSN_ENVID_MAX) == -1 ||
	    m_get_u32(msg, &n) == -1 || n == 0 || n > max_rcpts)
		return -1;
	if (sender[0] != '\0' && !smtp_mailbox_valid(sender, 1)) {
		snprintf(why, whysz, "invalid sender");
		bad = 1;
	} else if (body > ENV_BODY_BINARYMIME || utf8 > 1 || ret > DSN_RET_HDRS ||
	    (envid[0] != '\0' && !dsn_envid_valid(envid))) {
		snprintf(why, whysz, "invalid MAIL parameters");
		bad = 1;
	}
	if (!bad && (e->sender = strdup(sender)) == NULL) {
		snprintf(why, whysz, "out of memory");
		bad = 2;
	}
	if (!bad && envid[0] != '\0' && (e->envid = strdup(envid)) == NULL) {
		snprintf(why, whysz, "out of memory");
		bad = 2;
	}
	e->body = (enum envelope_body)(bad ? 0 : body);
	e->smtputf8 = bad ? 0 : (int)utf8;
	e->ret = bad ? 0 : (int)ret;
	/* Read every field even after an invalid one: the frame must be whole. */
	for (i = 0; i < n; i++) {
		if (m_get_str(msg, &rcpt, SMTP_PATH_MAX) == -1 ||
		    m_get_u32(msg, &notify) == -1 ||
		    m_get_str(msg, &orcpt, DSN_ORCPT_MAX) == -1)
			return -1;
		if (bad)
			continue;
		if (!smtp_mailbox_valid(rcpt, 1) && !smtp_is_postmaster(rcpt)) {
			snprintf(why, whysz, "invalid recipient");
			bad = 1;
		} else if ((notify & ~(uint32_t)DSN_NOTIFY_MASK) ||
		    ((notify & DSN_NOTIFY_NEVER) && notify != DSN_NOTIFY_NEVER) ||
		    (orcpt[0] != '\0' && !dsn_orcpt_valid(orcpt, 1))) {
			snprintf(why, whysz, "invalid RCPT parameters");
			bad = 1;
		} else if (envelope_add_rcpt(e, rcpt, RCPT_PENDING) == -1 ||
		    envelope_rcpt_dsn(e, notify, orcpt[0] ? orcpt : NULL) == -1) {
			snprintf(why, whysz, "out of memory");
			bad = 2;
		}
	}
	if (m_end(msg) == -1)
		return -1;
	return bad == 2 ? -3 : bad ? -2 : 0;
}
