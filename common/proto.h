/*
 * proto.h - the messages Mailroot processes exchange (mail layer).
 *
 * Names are <DESTINATION>_<ACTION>.  Payloads are listed beside each type in
 * the order of their m_add_* fields.  Bump PROTO_VERSION whenever a payload
 * changes: a peer or smtpctl speaking another version is refused.
 */
#ifndef MR_PROTO_H
#define MR_PROTO_H

#include <stdint.h>

#define PROTO_VERSION	7

enum proto_type {
	MSG_NONE = 0,

	/* smtpctl -> mailrootd (control socket); replies below */
	CTL_HELLO,		/* u32 version */
	CTL_STATUS,
	CTL_PAUSE,
	CTL_RESUME,
	CTL_STOP,
	CTL_RELOAD,

	/* mailrootd -> smtpctl */
	CLIENT_OK,		/* str text */
	CLIENT_FAIL,		/* str reason */
	CLIENT_STATUS,		/* str state, u32 n, n x (str name, u32 pid, u32 restarts) */

	/* mailrootd -> a daemon */
	DAEMON_CONFIG,		/* fd: the config text; str file name (for messages) */
	DAEMON_LISTENER,	/* fd: a listening socket; u32 listener index */
	DAEMON_PEER,		/* fd: socket to a peer; u32 peer (enum proc_id) */
	DAEMON_GO,		/* everything is handed over: run */
	DAEMON_PAUSE,
	DAEMON_RESUME,

	/* a daemon -> mailrootd */
	SUPERVISOR_READY,	/* the daemon serves */
	SUPERVISOR_FAILED,	/* str reason: the daemon cannot run (bad config) */

	/* a producer (smtpd, pickupd) -> queued: the one way in */
	QUEUE_MSG_OPEN,		/* (id = producer's request id) */
	QUEUE_MSG_COMMIT,	/* str queueid, str sender, u32 body, u32 smtputf8,
				   u32 ret, str envid, u32 n, n x (str rcpt,
				   u32 notify, str orcpt): common/proto_commit.h */
	QUEUE_MSG_ABORT,	/* str queueid */
	QUEUE_BADMAIL,		/* fd: the bad file; str name, str reason */

	/* queued -> a producer */
	PRODUCER_MSG_OPENED,	/* fd: write end of the content file; str queueid */
	PRODUCER_MSG_COMMITTED,	/* str queueid */
	PRODUCER_MSG_FAILED,	/* u32 temporary (1) or permanent (0); str reason */
	PRODUCER_BADMAIL_DONE,	/* str queueid of the Badmail entry */

	/* smtpd -> mailrootd: check AUTH credentials (id = session id) */
	SUPERVISOR_AUTH_CHECK,	/* str user, str password (common/auth.h limits) */
	/* mailrootd -> smtpd: the answer (id = the request's) */
	DAEMON_AUTH_RESULT,	/* u32 enum auth_result */
	/* queued -> smtpd */
	PRODUCER_DROP_STATE,	/* u32 over: Drop/ is (1) or is no longer (0) over drop-quota */

	/* the sessions table (smtpctl show sessions) */
	CTL_SESSIONS,		/* smtpctl -> mailrootd */
	DAEMON_SESSIONS,	/* mailrootd -> smtpd (id = mailrootd's request id) */
	SUPERVISOR_SESSIONS,	/* smtpd -> mailrootd, CLIENT_SESSIONS -> smtpctl:
				   u32 total, u32 n (<= total: what fits in a frame),
				   n x (u32 id, str client address, str helo,
				   str user ("" none), u32 tls, u64 since (time(3)),
				   str state, u64 bytes in) */
	CLIENT_SESSIONS,
	/* mailrootd -> smtpd */
	DAEMON_TLS_MATERIAL,	/* fd: PEM text, certificate (and chain) then key;
				   u64 certificate length; str certificate file;
				   str key file (names for messages) */


	/* mailrootd -> deliverd */
	DAEMON_CA_BUNDLE,	/* fd: PEM text of the CA certificates deliverd
				   verifies peers with; str file name */

	/* queued -> deliverd: one message to one destination (common/proto_deliver.h) */
	DELIVER_BATCH,		/* fd: the content (read-only); see proto_deliver.h */
	/* deliverd -> queued: one result per recipient of a batch (id = the batch's) */
	QUEUE_DELIVERY_RESULT,	/* see proto_deliver.h */

	/* smtpd -> queued: ETRN (RFC 1985) from a client allowed to send it */
	QUEUE_ETRN,		/* str domain (or "@domain", "#queue" as given) */
	/* queued -> smtpd: the answer (id = the request's) */
	PRODUCER_ETRN_RESULT,	/* u32 messages released for that domain */

	/* mailrootd -> smtpd: today's W3C log file of a listener (w3c-log) */
	DAEMON_W3C_LOG,		/* fd: the file, O_APPEND (none: stop logging);
				   u32 listener index */

	/* smtpctl kill session ID|all (FEATURES O2) */
	CTL_KILL_SESSION,	/* smtpctl -> mailrootd: u32 all (0 or 1), u32 session id */
	DAEMON_KILL_SESSION,	/* mailrootd -> smtpd (id = mailrootd's request id):
				   u32 all, u32 session id */
	SUPERVISOR_KILLED,	/* smtpd -> mailrootd: u32 sessions ended; the
				   answer to smtpctl is CLIENT_OK or CLIENT_FAIL */

	/* smtpctl log verbose|brief: the log level at run time */
	CTL_LOG_LEVEL,		/* smtpctl -> mailrootd: u32 verbose (0 or 1) */
	DAEMON_LOG_LEVEL,	/* mailrootd -> every daemon: u32 verbose */

	/* counters (smtpctl show stats, the metrics endpoint; FEATURES O3) */
	CTL_STATS,		/* smtpctl -> mailrootd */
	DAEMON_STATS,		/* mailrootd -> a daemon (id = mailrootd's request id) */
	SUPERVISOR_STATS,	/* a daemon -> mailrootd, CLIENT_STATS -> smtpctl:
				   u32 n, n x (str name, u32 enum stat_kind,
				   u64 value, str help): common/stats.h */
	CLIENT_STATS,

	/*
	 * The queue for operators (smtpq; FEATURES O4): CTL_QUEUE from a
	 * control client becomes DAEMON_QUEUE to queued (id = mailrootd's
	 * request id); queued answers with one of SUPERVISOR_QUEUE_*, which
	 * mailrootd checks and relays as the matching CLIENT_QUEUE_*.
	 * Payloads: common/proto_queue.h.
	 */
	CTL_QUEUE,		/* u32 enum queue_op, str argument */
	DAEMON_QUEUE,		/* u32 enum queue_op, str argument */
	SUPERVISOR_QUEUE_LIST,	/* one or more frames: see proto_queue.h */
	CLIENT_QUEUE_LIST,
	SUPERVISOR_QUEUE_SHOW,	/* str envelope file, str header section */
	CLIENT_QUEUE_SHOW,
	SUPERVISOR_QUEUE_BADMAIL, /* u32 n, n x (str id, str reason) */
	CLIENT_QUEUE_BADMAIL,
	SUPERVISOR_QUEUE_DONE,	/* u32 ok (1) or refused (0), u32 count, str text */
	CLIENT_QUEUE_DONE,

	MSG_TYPE_MAX
};

/* The processes of the suite; index of the peer tables. */
enum proc_id {
	PROC_MAILROOTD = 0,
	PROC_SMTPD,
	PROC_QUEUED,
	PROC_PICKUPD,
	PROC_DELIVERD,
	PROC_MAX
};

/* For traces: "QUEUE_MSG_OPEN", or "MSG_TYPE_<n>" for an unknown number. */
const char *proto_type_name(uint32_t type);
const char *proc_name(enum proc_id);

#endif
