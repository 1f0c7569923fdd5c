/*
 * mailrootd_sessions.c - the sessions table, relayed from smtpd to smtpctl
 * (mailrootd, root; FEATURES O2).
 *
 * A CTL_SESSIONS from a control client becomes a DAEMON_SESSIONS to smtpd
 * under a request id of mailrootd's own; smtpd's SUPERVISOR_SESSIONS is
 * matched to the client that asked and re-encoded as CLIENT_SESSIONS.
 * Trust boundary: smtpd is less privileged and faces the network; its
 * answer is checked field by field (counts, string bounds) before anything
 * of it reaches a client, and an answer nobody waits for is dropped.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ipc.h"
#include "log.h"
#include "mailrootd.h"
#include "smtp_parse.h"

#define SESSIONS_PENDING	16
#define SESSIONS_MAX_ENTRIES	100000

struct pending {
	int		 used;
	int		 client;	/* control client slot */
	uint32_t	 client_id;	/* its request id */
	uint32_t	 reqid;		/* ours, sent to smtpd */
};

static struct pending pending[SESSIONS_PENDING];
static uint32_t next_reqid = 1;

/* Ask smtpd for its sessions on behalf of a client; -1 with why. */
int
sessions_request(int client, uint32_t client_id, char *why, size_t whysz)
{
	struct proc *p = &mrd->procs[PROC_SMTPD];
	struct mbuf m;
	size_t i;

	if (p->ipc == NULL || !p->ready) {
		snprintf(why, whysz, "smtpd is not running");
		return -1;
	}
	for (i = 0; i < SESSIONS_PENDING; i++)
		if (!pending[i].used)
			break;
	if (i == SESSIONS_PENDING) {
		snprintf(why, whysz, "too many requests under way, try again");
		return -1;
	}
	pending[i].used = 1;
	pending[i].client = client;
	pending[i].client_id = client_id;
	pending[i].reqid = next_reqid++;
	if (next_reqid == 0)
		next_reqid = 1;
	m_init(&m, DAEMON_SESSIONS, pending[i].reqid);
	if (ipc_send(p->ipc, &m) == -1) {
		pending[i].used = 0;
		snprintf(why, whysz, "cannot reach smtpd");
		return -1;
	}
	return 0;
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
	struct mbuf m;
	size_t i;

	for (i = 0; i < SESSIONS_PENDING; i++)
		if (pending[i].used && pending[i].reqid == msg->id)
			break;
	if (i == SESSIONS_PENDING) {
		log_debug("sessions answer %u: nobody waits for it", msg->id);
		return;
	}
	pending[i].used = 0;
	m_init(&m, CLIENT_SESSIONS, pending[i].client_id);
	if (sessions_copy(msg, &m) == -1) {
		m_free(&m);
		log_warnx("malformed SUPERVISOR_SESSIONS from smtpd");
		control_fail(pending[i].client, pending[i].client_id,
		    "malformed answer from smtpd");
		return;
	}
	control_send(pending[i].client, &m);
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
