/*
 * mailrootd_sessions.c - the sessions table, relayed from smtpd to smtpctl
 * (mailrootd, root; FEATURES O2).
 *
 * A CTL_SESSIONS from a control client becomes a DAEMON_SESSIONS to smtpd
 * under a request id of mailrootd's own; smtpd's SUPERVISOR_SESSIONS is
 * matched to the client that asked and re-encoded as CLIENT_SESSIONS.
 * CTL_KILL_SESSION goes the same way as DAEMON_KILL_SESSION; smtpd's
 * SUPERVISOR_KILLED count becomes a CLIENT_OK (or CLIENT_FAIL when the
 * one session named is not there).
 * Trust boundary: smtpd is less privileged and faces the network; its
 * answer is checked field by field (counts, string bounds) before anything
 * of it reaches a client, and an answer nobody waits for is dropped.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ipc.h"
#include "log.h"
#include "proto.h"
#include "mailrootd.h"
#include "smtp_parse.h"

#define SESSIONS_PENDING	16
#define SESSIONS_MAX_ENTRIES	100000

struct pending {
	int		 used;
	uint32_t	 type;		/* DAEMON_SESSIONS or DAEMON_KILL_SESSION */
	uint32_t	 all, sid;	/* a kill: all, or the session named */
	int		 client;	/* control client slot */
	uint32_t	 client_id;	/* its request id */
	uint32_t	 reqid;		/* ours, sent to smtpd */
};

static struct pending pending[SESSIONS_PENDING];
static uint32_t next_reqid = 1;

/* Send a request to smtpd on behalf of a client; NULL with why. */
static struct pending *
pending_send(uint32_t type, int client, uint32_t client_id, uint32_t all,
    uint32_t sid, char *why, size_t whysz)
{
	struct proc *p = &mrd->procs[PROC_SMTPD];
	struct mbuf m;
	size_t i;

	if (p->ipc == NULL || !p->ready) {
		snprintf(why, whysz, "smtpd is not running");
		return NULL;
	}
	for (i = 0; i < SESSIONS_PENDING; i++)
		if (!pending[i].used)
			break;
	if (i == SESSIONS_PENDING) {
		snprintf(why, whysz, "too many requests under way, try again");
		return NULL;
	}
	pending[i].used = 1;
	pending[i].type = type;
	pending[i].all = all;
	pending[i].sid = sid;
	pending[i].client = client;
	pending[i].client_id = client_id;
	pending[i].reqid = next_reqid++;
	if (next_reqid == 0)
		next_reqid = 1;
	m_init(&m, type, pending[i].reqid);
	if (type == DAEMON_KILL_SESSION) {
		m_add_u32(&m, all);
		m_add_u32(&m, sid);
	}
	if (ipc_send(p->ipc, &m) == -1) {
		pending[i].used = 0;
		snprintf(why, whysz, "cannot reach smtpd");
		return NULL;
	}
	return &pending[i];
}

/* The request an answer from smtpd belongs to, taken off the table; or NULL. */
static struct pending *
pending_take(struct ipc_msg *msg, uint32_t type)
{
	size_t i;

	for (i = 0; i < SESSIONS_PENDING; i++)
		if (pending[i].used && pending[i].reqid == msg->id &&
		    pending[i].type == type) {
			pending[i].used = 0;
			return &pending[i];
		}
	log_debug("%s %u: nobody waits for it", proto_type_name(msg->type), msg->id);
	return NULL;
}

/* Ask smtpd for its sessions on behalf of a client; -1 with why. */
int
sessions_request(int client, uint32_t client_id, char *why, size_t whysz)
{
	return pending_send(DAEMON_SESSIONS, client, client_id, 0, 0, why,
	    whysz) ? 0 : -1;
}

/* Ask smtpd to end one session (sid) or all; -1 with why. */
int
sessions_kill(int client, uint32_t client_id, uint32_t all, uint32_t sid,
    char *why, size_t whysz)
{
	return pending_send(DAEMON_KILL_SESSION, client, client_id, all, sid, why,
	    whysz) ? 0 : -1;
}

/* SUPERVISOR_KILLED from smtpd: tell the client how many end. */
void
sessions_killed(struct ipc_msg *msg)
{
	struct pending *p;
	char text[128];
	uint32_t n;

	if ((p = pending_take(msg, DAEMON_KILL_SESSION)) == NULL)
		return;
	if (m_get_u32(msg, &n) == -1 || m_end(msg) == -1 || (!p->all && n > 1)) {
		log_warnx("malformed SUPERVISOR_KILLED from smtpd");
		control_fail(p->client, p->client_id, "malformed answer from smtpd");
		return;
	}
	if (!p->all && n == 0) {
		snprintf(text, sizeof(text), "no session %08x (or it is closing already)",
		    p->sid);
		control_fail(p->client, p->client_id, text);
		return;
	}
	snprintf(text, sizeof(text), "%u session%s ended", n, n == 1 ? "" : "s");
	log_info("control: %s", text);
	control_ok(p->client, p->client_id, text);
}

/* Check smtpd's answer and copy it into a CLIENT_SESSIONS; -1 if malformed. */
static int
sessions_copy(struct ipc_msg *msg, struct mbuf *out)
{
	const char *addr, *helo, *user, *state;
	uint32_t total, n, i, id, tls;
	uint64_t since, bytes;

	if (m_get_u32(msg, &total) == -1 || m_get_u32(msg, &n) == -1 || n > total ||
	    n > SESSIONS_MAX_ENTRIES)
		return -1;
	m_add_u32(out, total);
	m_add_u32(out, n);
	for (i = 0; i < n; i++) {
		if (m_get_u32(msg, &id) == -1 || m_get_str(msg, &addr, 63) == -1 ||
		    m_get_str(msg, &helo, SMTP_DOMAIN_MAX) == -1 ||
		    m_get_str(msg, &user, 255) == -1 || m_get_u32(msg, &tls) == -1 ||
		    m_get_u64(msg, &since) == -1 || m_get_str(msg, &state, 31) == -1 ||
		    m_get_u64(msg, &bytes) == -1 || tls > 1)
			return -1;
		m_add_u32(out, id);
		m_add_str(out, addr);
		m_add_str(out, helo);
		m_add_str(out, user);
		m_add_u32(out, tls);
		m_add_u64(out, since);
		m_add_str(out, state);
		m_add_u64(out, bytes);
	}
	return m_end(msg);
}

/* SUPERVISOR_SESSIONS from smtpd. */
void
sessions_answer(struct ipc_msg *msg)
{
	struct pending *p;
	struct mbuf m;

	if ((p = pending_take(msg, DAEMON_SESSIONS)) == NULL)
		return;
	m_init(&m, CLIENT_SESSIONS, p->client_id);
	if (sessions_copy(msg, &m) == -1) {
		m_free(&m);
		log_warnx("malformed SUPERVISOR_SESSIONS from smtpd");
		control_fail(p->client, p->client_id, "malformed answer from smtpd");
		return;
	}
	control_send(p->client, &m);
}

/* smtpd went away: nobody will answer what is pending. */
void
sessions_smtpd_gone(void)
{
	size_t i;

	for (i = 0; i < SESSIONS_PENDING; i++)
		if (pending[i].used) {
			pending[i].used = 0;
			control_fail(pending[i].client, pending[i].client_id,
			    "smtpd went away");
		}
}

/* A control client went away: forget its requests. */
void
sessions_client_gone(int client)
{
	size_t i;

	for (i = 0; i < SESSIONS_PENDING; i++)
		if (pending[i].used && pending[i].client == client)
			pending[i].used = 0;
}
