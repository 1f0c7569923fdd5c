/*
 * fuzz_control.c - libFuzzer target of mailrootd's control-socket decoders:
 * the requests of smtpctl and smtpq (mailrootd/mailrootd_control.c:
 * control_request_decode) and the queue answers of queued it relays to them
 * (common/proto_queue.c: proto_queue_copy); replayed over its seed corpus by
 * make check.
 *
 * Trust boundary: a request is the payload of a frame from any local user
 * who can reach the socket; a queue answer the payload of a frame from
 * queued, unprivileged (compromised, or reading edited files).  Input
 * layout: byte 0 picks the decoder (even: a request, odd: a queue answer),
 * byte 1 the message type among those the decoder handles (and one it does
 * not), the rest is the payload, in a buffer of its exact size so that ASan
 * sees any overread.  Beyond memory safety, the target abort()s when a
 * decoder accepts what it must refuse: a payload not read whole, a string
 * outside the payload, not terminated or over its bound, a flag over 1, an
 * unknown queue operation; or when a relayed answer is not the very octets
 * it was copied from.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"
#include "proto.h"
#include "proto_queue.h"
#include "mailrootd.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* ---- the rest of mailrootd is not linked: only the decoders run --------- */
struct mailrootd *mrd;

static void __attribute__((noreturn))
not_here(void)
{
	abort();
}

int mrd_reload(char *why, size_t whysz) { (void)why; (void)whysz; not_here(); }
void mrd_stop(void) { not_here(); }
void proc_send_log_level(int v) { (void)v; not_here(); }
void proc_send_pause(int v) { (void)v; not_here(); }
void queue_client_gone(int slot) { (void)slot; not_here(); }
void sessions_client_gone(int slot) { (void)slot; not_here(); }
void stats_cancel(void *arg) { (void)arg; not_here(); }
int
queue_request(int slot, uint32_t id, uint32_t op, const char *arg, char *why,
    size_t whysz)
{
	(void)slot; (void)id; (void)op; (void)arg; (void)why; (void)whysz;
	not_here();
}
int
sessions_kill(int slot, uint32_t id, uint32_t all, uint32_t sid, char *why,
    size_t whysz)
{
	(void)slot; (void)id; (void)all; (void)sid; (void)why; (void)whysz;
	not_here();
}
int
sessions_request(int slot, uint32_t id, char *why, size_t whysz)
{
	(void)slot; (void)id; (void)why; (void)whysz;
	not_here();
}
int
stats_request(stats_done_fn done, void *arg, uint32_t cookie)
{
	(void)done; (void)arg; (void)cookie;
	not_here();
}

/* ---- the target ------------------------------------------------------------ */

static const uint32_t request_types[] = {
	CTL_HELLO, CTL_QUEUE, CTL_KILL_SESSION, CTL_LOG_LEVEL, CTL_STATUS, CTL_STOP
};
static const uint32_t answer_types[] = {
	SUPERVISOR_QUEUE_LIST, SUPERVISOR_QUEUE_SHOW, SUPERVISOR_QUEUE_BADMAIL,
	SUPERVISOR_QUEUE_DONE, CTL_STATUS
};

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
fuzz_request(uint32_t type, const uint8_t *data, size_t len)
{
	struct ctl_request r;
	struct ipc_msg m;
	const char *why = NULL;

	msg_init(&m, type, data, len);
	if (control_request_decode(&m, &r, &why) == -1) {
		if (why == NULL || strncmp(why, "protocol error: ", 16) != 0)
			abort();
		return;
	}
	if (m.error || m.pos != m.len)
		abort();
	switch (type) {
	case CTL_QUEUE:
		if (r.arg == NULL || (const uint8_t *)r.arg < data ||
		    (const uint8_t *)r.arg >= data + len ||
		    memchr(r.arg, '\0', (size_t)(data + len - (const uint8_t *)r.arg)) == NULL ||
		    strlen(r.arg) > QUEUE_ARG_MAX || proto_queue_op_name(r.op) == NULL)
			abort();
		break;
	case CTL_KILL_SESSION:
	case CTL_LOG_LEVEL:
		if (r.v > 1)
			abort();
		break;
	case CTL_HELLO:
		break;
	default:
		if (len != 0)
			abort();
	}
}

static void
fuzz_answer(uint32_t type, const uint8_t *data, size_t len)
{
	struct ipc_msg m;
	struct mbuf out;
	int last = -1;

	msg_init(&m, type, data, len);
	m_init(&out, type + 1, 7);
	if (proto_queue_copy(type, &m, &out, &last) == 0) {
		/* a relay: field by field, the same octets, every one of them */
		if (m.pos != len || last < 0 || last > 1 ||
		    out.len - IPC_HDR_SIZE != len ||
		    memcmp(out.buf + IPC_HDR_SIZE, data, len) != 0)
			abort();
	}
	m_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;
	size_t len;
	int answer;
	uint32_t type;

	if (size < 2)
		return 0;
	answer = data[0] & 1;
	type = answer ?
	    answer_types[data[1] % (sizeof(answer_types) / sizeof(answer_types[0]))] :
	    request_types[data[1] % (sizeof(request_types) / sizeof(request_types[0]))];
	len = size - 2;
	if ((copy = malloc(len > 0 ? len : 1)) == NULL)
		abort();
	memcpy(copy, data + 2, len);
	if (answer)
		fuzz_answer(type, copy, len);
	else
		fuzz_request(type, copy, len);
	free(copy);
	return 0;
}
