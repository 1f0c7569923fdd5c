/*
 * proto_queue.c - the checked relay of queue answers (mail layer; used by
 * mailrootd).  queued runs unprivileged and reads files an administrator
 * may have edited: every count and string of its answers is bounded here
 * before anything of it reaches a control client.
 */
#include <stdint.h>
#include <string.h>

#include "envelope.h"
#include "ipc.h"
#include "proto.h"
#include "proto_queue.h"
#include "queueid.h"
#include "smtp_parse.h"

static const char *const op_names[QOP_MAX] = {
	[QOP_LIST] = "list", [QOP_SHOW] = "show", [QOP_BADMAIL] = "badmail",
	[QOP_DELETE] = "delete", [QOP_RETRY] = "retry",
	[QOP_RETRY_DOMAIN] = "retry domain", [QOP_HOLD] = "hold",
	[QOP_RELEASE] = "release", [QOP_REQUEUE] = "requeue",
};

int
proto_queue_mutates(uint32_t op)
{
	return op >= QOP_DELETE && op < QOP_MAX;
}

const char *
proto_queue_op_name(uint32_t op)
{
	return op > 0 && op < QOP_MAX ? op_names[op] : NULL;
}

static int
copy_str(struct ipc_msg *in, struct mbuf *out, size_t max)
{
	const char *s;

	if (m_get_str(in, &s, max) == -1)
		return -1;
	m_add_str(out, s);
	return 0;
}

static int
copy_u32(struct ipc_msg *in, struct mbuf *out, uint32_t max, uint32_t *vp)
{
	uint32_t v;

	if (m_get_u32(in, &v) == -1 || v > max)
		return -1;
	m_add_u32(out, v);
	if (vp)
		*vp = v;
	return 0;
}

static int
copy_u64(struct ipc_msg *in, struct mbuf *out)
{
	uint64_t v;

	if (m_get_u64(in, &v) == -1)
		return -1;
	m_add_u64(out, v);
	return 0;
}

static int
copy_list(struct ipc_msg *in, struct mbuf *out, int *last)
{
	uint32_t total, l, n, i, k, j;

	if (copy_u32(in, out, QUEUE_LIST_MAX, &total) == -1 ||
	    copy_u32(in, out, 1, &l) == -1 || copy_u32(in, out, total, &n) == -1)
		return -1;
	*last = (int)l;
	for (i = 0; i < n; i++) {
		if (copy_str(in, out, QUEUEID_LEN) == -1 || copy_u64(in, out) == -1 ||
		    copy_u64(in, out) == -1 || copy_str(in, out, SMTP_PATH_MAX) == -1 ||
		    copy_u32(in, out, UINT32_MAX, NULL) == -1 || copy_u64(in, out) == -1 ||
		    copy_u32(in, out, QUEUE_F_HELD | QUEUE_F_RUNNING, NULL) == -1 ||
		    copy_u32(in, out, UINT32_MAX, NULL) == -1 ||
		    copy_u32(in, out, QUEUE_LIST_RCPTS_MAX, &k) == -1)
			return -1;
		for (j = 0; j < k; j++)
			if (copy_str(in, out, SMTP_PATH_MAX) == -1 ||
			    copy_u32(in, out, RCPT_FAILED, NULL) == -1 ||
			    copy_str(in, out, ENVELOPE_ERROR_MAX) == -1)
				return -1;
	}
	return 0;
}

int
proto_queue_copy(uint32_t type, struct ipc_msg *in, struct mbuf *out, int *last)
{
	uint32_t total, n, i;
	int r = -1;

	*last = 1;
	switch (type) {
	case SUPERVISOR_QUEUE_LIST:
		r = copy_list(in, out, last);
		break;
	case SUPERVISOR_QUEUE_SHOW:
		r = copy_str(in, out, QUEUE_SHOW_ENV_MAX) == -1 ||
		    copy_str(in, out, QUEUE_SHOW_HEADERS_MAX) == -1 ? -1 : 0;
		break;
	case SUPERVISOR_QUEUE_BADMAIL:
		if (copy_u32(in, out, QUEUE_LIST_MAX, &total) == -1 ||
		    copy_u32(in, out, total, &n) == -1)
			return -1;
		for (i = 0, r = 0; i < n && r == 0; i++)
			if (copy_str(in, out, QUEUEID_LEN) == -1 ||
			    copy_str(in, out, QUEUE_TEXT_MAX) == -1)
				r = -1;
		break;
	case SUPERVISOR_QUEUE_DONE:
		r = copy_u32(in, out, 1, NULL) == -1 ||
		    copy_u32(in, out, UINT32_MAX, NULL) == -1 ||
		    copy_str(in, out, QUEUE_TEXT_MAX) == -1 ? -1 : 0;
		break;
	}
	if (r == 0 && m_end(in) == -1)
		r = -1;
	return out->error ? -1 : r;
}
