/*
 * fuzz_proto.c - libFuzzer target of the mail-layer IPC decoders
 * (common/proto_commit.c, common/proto_deliver.c); replayed over its seed
 * corpus by make check.
 *
 * Trust boundary: the input stands for the payload of one frame from a less
 * privileged or compromised peer: QUEUE_MSG_COMMIT from smtpd or pickupd
 * and QUEUE_DELIVERY_RESULT from deliverd as queued decodes them,
 * DELIVER_BATCH as deliverd decodes it.  Input layout: byte 0 picks the
 * decoder (byte0 % 3), the rest is the payload, in a buffer of its exact
 * size so that ASan sees any overread.
 *
 * Beyond memory safety, the target abort()s when a decoder accepts what it
 * must refuse: a string that is not NUL-terminated inside the payload, a
 * count over its bound, a recipient index out of range, result text that
 * is not one printable line; and when a decoded batch, encoded again and
 * decoded, differs from the first decoding (the codec must round-trip).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "ipc.h"
#include "proto.h"
#include "proto_commit.h"
#include "proto_deliver.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const uint8_t *lo, *hi;

/* A decoded string must lie inside the payload, NUL-terminated there. */
static void
in_payload(const char *s)
{
	const uint8_t *p = (const uint8_t *)s;

	if (p < lo || p >= hi || memchr(p, '\0', (size_t)(hi - p)) == NULL)
		abort();
}

static void
printable(const char *s)
{
	in_payload(s);
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			abort();
}

static void
msg_init(struct ipc_msg *m, uint32_t type, const uint8_t *data, size_t len)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->fd = -1;
	m->data = data;
	m->len = len;
}

static void
fuzz_commit(const uint8_t *data, size_t len)
{
	struct envelope e;
	struct ipc_msg m;
	const char *qid;
	char why[128];

	memset(&e, 0, sizeof(e));
	msg_init(&m, QUEUE_MSG_COMMIT, data, len);
	if (proto_commit_qid(&m, &qid) == 0) {
		in_payload(qid);
		if (proto_commit_decode(&m, &e, 1000, why, sizeof(why)) == 0 &&
		    (e.nrcpts == 0 || e.nrcpts > 1000 || e.sender == NULL))
			abort();
	}
	envelope_free(&e);
}

static void
same_batch(const struct deliver_batch *a, const struct deliver_batch *b)
{
	size_t i;

	if (strcmp(a->qid, b->qid) || strcmp(a->sender, b->sender) ||
	    strcmp(a->domain, b->domain) || a->body != b->body ||
	    a->smtputf8 != b->smtputf8 || a->ret != b->ret ||
	    strcmp(a->envid, b->envid) || a->size != b->size || a->nrcpts != b->nrcpts)
		abort();
	for (i = 0; i < a->nrcpts; i++)
		if (a->rcpts[i].index != b->rcpts[i].index ||
		    strcmp(a->rcpts[i].addr, b->rcpts[i].addr) ||
		    a->rcpts[i].notify != b->rcpts[i].notify ||
		    strcmp(a->rcpts[i].orcpt, b->rcpts[i].orcpt))
			abort();
}

static void
fuzz_batch(const uint8_t *data, size_t len)
{
	struct deliver_batch b, again;
	struct ipc_msg m;
	struct mbuf out;
	size_t i;

	msg_init(&m, DELIVER_BATCH, data, len);
	if (proto_deliver_decode(&m, &b) == -1)
		return;
	if (b.nrcpts == 0 || b.nrcpts > DELIVER_RCPTS_MAX)
		abort();
	in_payload(b.qid);
	in_payload(b.sender);
	in_payload(b.domain);
	in_payload(b.envid);
	for (i = 0; i < b.nrcpts; i++) {
		if (b.rcpts[i].index >= DELIVER_RCPTS_MAX)
			abort();
		in_payload(b.rcpts[i].addr);
		in_payload(b.rcpts[i].orcpt);
	}
	/* Encode what was decoded and decode that: the same batch. */
	proto_deliver_begin(&out, 1, &b);
	for (i = 0; i < b.nrcpts; i++)
		proto_deliver_rcpt(&out, &b.rcpts[i]);
	if (out.error)
		abort();
	msg_init(&m, DELIVER_BATCH, out.buf + IPC_HDR_SIZE, out.len - IPC_HDR_SIZE);
	lo = m.data;
	hi = m.data + m.len;
	if (proto_deliver_decode(&m, &again) == -1)
		abort();
	same_batch(&b, &again);
	proto_deliver_batch_free(&again);
	proto_deliver_batch_free(&b);
	m_free(&out);
}

static void
fuzz_result(const uint8_t *data, size_t len)
{
	struct deliver_result *r;
	struct ipc_msg m;
	const char *qid;
	size_t n, i;

	msg_init(&m, QUEUE_DELIVERY_RESULT, data, len);
	if (proto_result_decode(&m, &qid, &r, &n) == -1)
		return;
	if (n == 0 || n > DELIVER_RCPTS_MAX || r == NULL)
		abort();
	in_payload(qid);
	for (i = 0; i < n; i++) {
		if (r[i].index >= DELIVER_RCPTS_MAX || r[i].status > DELIVER_PERMFAIL ||
		    r[i].code > 599)
			abort();
		printable(r[i].enhanced);
		printable(r[i].text);
		printable(r[i].host);
	}
	free(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	lo = data + 1;
	hi = data + size;
	switch (data[0] % 3) {
	case 0:
		fuzz_commit(data + 1, size - 1);
		break;
	case 1:
		fuzz_batch(data + 1, size - 1);
		break;
	default:
		fuzz_result(data + 1, size - 1);
		break;
	}
	return 0;
}
