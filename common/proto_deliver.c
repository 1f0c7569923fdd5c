/*
 * proto_deliver.c - encode and decode DELIVER_BATCH and
 * QUEUE_DELIVERY_RESULT (mail layer).  Batches are encoded by queued and
 * decoded by deliverd; results the other way round.
 * Trust boundary: each side checks what the other sent.  deliverd runs in
 * a chroot with network exposure, so queued must treat its results as
 * untrusted: every index must be bounded, every text printable and short.
 */
#include <stdlib.h>
#include <string.h>

#include "dsn.h"
#include "envelope.h"
#include "ipc.h"
#include "proto.h"
#include "proto_deliver.h"
#include "smtp_parse.h"

void
proto_deliver_begin(struct mbuf *m, uint32_t reqid, const struct deliver_batch *b)
{
	m_init(m, DELIVER_BATCH, reqid);
	m_add_str(m, b->qid);
	m_add_str(m, b->sender);
	m_add_str(m, b->domain);
	m_add_u32(m, b->body);
	m_add_u32(m, b->smtputf8);
	m_add_u32(m, b->ret);
	m_add_str(m, b->envid ? b->envid : "");
	m_add_u64(m, b->size);
	m_add_u32(m, (uint32_t)b->nrcpts);
}

void
proto_deliver_rcpt(struct mbuf *m, const struct deliver_rcpt *r)
{
	m_add_u32(m, r->index);
	m_add_str(m, r->addr);
	m_add_u32(m, r->notify);
	m_add_str(m, r->orcpt ? r->orcpt : "");
}

int
proto_deliver_decode(struct ipc_msg *msg, struct deliver_batch *b)
{
	uint32_t n, i;

	memset(b, 0, sizeof(*b));
	if (m_get_str(msg, &b->qid, QUEUEID_LEN) == -1 || !queueid_valid(b->qid) ||
	    m_get_str(msg, &b->sender, SMTP_PATH_MAX) == -1 ||
	    m_get_str(msg, &b->domain, SMTP_DOMAIN_MAX) == -1 ||
	    m_get_u32(msg, &b->body) == -1 || m_get_u32(msg, &b->smtputf8) == -1 ||
	    m_get_u32(msg, &b->ret) == -1 ||
	    m_get_str(msg, &b->envid, DSN_ENVID_MAX) == -1 ||
	    m_get_u64(msg, &b->size) == -1 ||
	    m_get_u32(msg, &n) == -1 || n == 0 || n > DELIVER_RCPTS_MAX)
		return -1;
	if ((b->sender[0] != '\0' && !smtp_mailbox_valid(b->sender, 1)) ||
	    !smtp_domain_valid(b->domain, 1) ||
	    b->body > ENV_BODY_BINARYMIME || b->smtputf8 > 1 || b->ret > DSN_RET_HDRS ||
	    (b->envid[0] != '\0' && !dsn_envid_valid(b->envid)))
		return -1;
	if ((b->rcpts = reallocarray(NULL, n, sizeof(*b->rcpts))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		struct deliver_rcpt *r = &b->rcpts[i];

		if (m_get_u32(msg, &r->index) == -1 || r->index >= DELIVER_RCPTS_MAX ||
		    m_get_str(msg, &r->addr, SMTP_PATH_MAX) == -1 ||
		    m_get_u32(msg, &r->notify) == -1 ||
		    m_get_str(msg, &r->orcpt, DSN_ORCPT_MAX) == -1 ||
		    !smtp_mailbox_valid(r->addr, 1) ||
		    (r->notify & ~(uint32_t)DSN_NOTIFY_MASK) ||
		    (r->orcpt[0] != '\0' && !dsn_orcpt_valid(r->orcpt, 1)))
			goto bad;
	}
	b->nrcpts = n;
	if (m_end(msg) == -1)
		goto bad;
	return 0;
bad:
	proto_deliver_batch_free(b);
	return -1;
}

void
proto_deliver_batch_free(struct deliver_batch *b)
{
	free(b->rcpts);
	b->rcpts = NULL;
	b->nrcpts = 0;
}

void
proto_result_begin(struct mbuf *m, uint32_t reqid, const char *qid, size_t n)
{
	m_init(m, QUEUE_DELIVERY_RESULT, reqid);
	m_add_str(m, qid);
	m_add_u32(m, (uint32_t)n);
}

void
proto_result_add(struct mbuf *m, const struct deliver_result *r)
{
	m_add_u32(m, r->index);
	m_add_u32(m, r->status);
	m_add_u32(m, r->code);
	m_add_str(m, r->enhanced ? r->enhanced : "");
	m_add_str(m, r->text ? r->text : "");
	m_add_str(m, r->host ? r->host : "");
}

/* Printable US-ASCII on one line (it goes into logs, envelopes and NDRs). */
static int
one_line(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

int
proto_result_decode(struct ipc_msg *msg, const char **qid, struct deliver_result **out,
    size_t *np)
{
	struct deliver_result *res;
	uint32_t n, i;

	*out = NULL;
	*np = 0;
	if (m_get_str(msg, qid, QUEUEID_LEN) == -1 || !queueid_valid(*qid) ||
	    m_get_u32(msg, &n) == -1 || n == 0 || n > DELIVER_RCPTS_MAX)
		return -1;
	if ((res = reallocarray(NULL, n, sizeof(*res))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		struct deliver_result *r = &res[i];

		if (m_get_u32(msg, &r->index) == -1 || r->index >= DELIVER_RCPTS_MAX ||
		    m_get_u32(msg, &r->status) == -1 || r->status > DELIVER_PERMFAIL ||
		    m_get_u32(msg, &r->code) == -1 || r->code > 599 ||
		    m_get_str(msg, &r->enhanced, 16) == -1 ||
		    m_get_str(msg, &r->text, DELIVER_TEXT_MAX) == -1 ||
		    m_get_str(msg, &r->host, DELIVER_HOST_MAX) == -1 ||
		    !one_line(r->enhanced) || !one_line(r->text) || !one_line(r->host)) {
			free(res);
			return -1;
		}
	}
	if (m_end(msg) == -1) {
		free(res);
		return -1;
	}
	*out = res;
	*np = n;
	return 0;
}

const char *
deliver_status_name(uint32_t st)
{
	switch (st) {
	case DELIVER_OK:	return "sent";
	case DELIVER_TEMPFAIL:	return "deferred";
	case DELIVER_PERMFAIL:	return "bounced";
	}
	return "?";
}
