/*
 * proto.c - names of IPC message types and processes, for logs and traces.
 */
#include <stdio.h>

#include "proto.h"

static const char *const type_names[MSG_TYPE_MAX] = {
	[MSG_NONE] = "MSG_NONE",
	[CTL_HELLO] = "CTL_HELLO",
	[CTL_STATUS] = "CTL_STATUS",
	[CTL_PAUSE] = "CTL_PAUSE",
	[CTL_RESUME] = "CTL_RESUME",
	[CTL_STOP] = "CTL_STOP",
	[CTL_RELOAD] = "CTL_RELOAD",
	[CLIENT_OK] = "CLIENT_OK",
	[CLIENT_FAIL] = "CLIENT_FAIL",
	[CLIENT_STATUS] = "CLIENT_STATUS",
	[DAEMON_CONFIG] = "DAEMON_CONFIG",
	[DAEMON_LISTENER] = "DAEMON_LISTENER",
	[DAEMON_PEER] = "DAEMON_PEER",
	[DAEMON_GO] = "DAEMON_GO",
	[DAEMON_PAUSE] = "DAEMON_PAUSE",
	[DAEMON_RESUME] = "DAEMON_RESUME",
	[SUPERVISOR_READY] = "SUPERVISOR_READY",
	[SUPERVISOR_FAILED] = "SUPERVISOR_FAILED",
	[QUEUE_MSG_OPEN] = "QUEUE_MSG_OPEN",
	[QUEUE_MSG_COMMIT] = "QUEUE_MSG_COMMIT",
	[QUEUE_MSG_ABORT] = "QUEUE_MSG_ABORT",
	[QUEUE_BADMAIL] = "QUEUE_BADMAIL",
	[PRODUCER_MSG_OPENED] = "PRODUCER_MSG_OPENED",
	[PRODUCER_MSG_COMMITTED] = "PRODUCER_MSG_COMMITTED",
	[PRODUCER_MSG_FAILED] = "PRODUCER_MSG_FAILED",
	[PRODUCER_BADMAIL_DONE] = "PRODUCER_BADMAIL_DONE",
	[SUPERVISOR_AUTH_CHECK] = "SUPERVISOR_AUTH_CHECK",
	[DAEMON_AUTH_RESULT] = "DAEMON_AUTH_RESULT",
	[PRODUCER_DROP_STATE] = "PRODUCER_DROP_STATE",
	[CTL_SESSIONS] = "CTL_SESSIONS",
	[DAEMON_SESSIONS] = "DAEMON_SESSIONS",
	[SUPERVISOR_SESSIONS] = "SUPERVISOR_SESSIONS",
	[CLIENT_SESSIONS] = "CLIENT_SESSIONS",
	[DAEMON_TLS_MATERIAL] = "DAEMON_TLS_MATERIAL",
};

const char *
proto_type_name(uint32_t type)
{
	static char buf[32];

	if (type < MSG_TYPE_MAX && type_names[type] != NULL)
		return type_names[type];
	snprintf(buf, sizeof(buf), "MSG_TYPE_%u", type);
	return buf;
}

const char *
proc_name(enum proc_id id)
{
	switch (id) {
	case PROC_MAILROOTD: return "mailrootd";
	case PROC_SMTPD: return "smtpd";
	case PROC_QUEUED: return "queued";
	case PROC_PICKUPD: return "pickupd";
	default: return "unknown";
	}
}
