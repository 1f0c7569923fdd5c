/*
 * smtpd_status.c - what smtpd tells the supervisor about its sessions
 * (smtpd, unprivileged, chrooted): the table behind `smtpctl show
 * sessions` (FEATURES O2).  Trust boundary: the HELO name came from a
 * client; it was checked as a domain or address literal and travels as a
 * bounded string that mailrootd checks again.  Also `smtpctl kill
 * session`: the supervisor names a session (or all), smtpd ends them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "ipc.h"
#include "log.h"
#include "smtpd.h"

/* Leave room for one more entry under the frame limit. */
#define STATUS_ROOM	(IPC_MAX_PAYLOAD - 2048)

static const char *
state_name(const struct session *s)
{
	switch (s->state) {
	case S_CONNECTED:	return "connected";
	case S_HELO:		return s->etrn_node[0] ? "etrn" : "helo";
	case S_MAIL:		return "mail";
	case S_RCPT:		return s->waiting ? "opening" : "rcpt";
	case S_DATA:		return s->waiting ? "committing" : "data";
	case S_BDAT:		return s->waiting ? "committing" : "bdat";
	case S_CLOSING:		return "closing";
	case S_DENIED:		return "denied";
	}
	return "unknown";
}

struct status_walk {
	struct mbuf	*m;
	uint32_t	 n;
};

static void
add_session(struct session *s, void *arg)
{
	struct status_walk *w = arg;

	if (w->m->len >= STATUS_ROOM)
		return;
	m_add_u32(w->m, s->id);
	m_add_str(w->m, s->addr);
	m_add_str(w->m, s->helo);
	m_add_str(w->m, s->auth_user);	/* "" before AUTH */
	m_add_u32(w->m, s->tls == TLS_ON);
	m_add_u64(w->m, (uint64_t)s->since);
	m_add_str(w->m, state_name(s));
	m_add_u64(w->m, s->bytes_in);
	w->n++;
}

/* Answer DAEMON_SESSIONS with SUPERVISOR_SESSIONS (the same request id). */
void
status_sessions(struct ipc *parent, struct ipc_msg *msg)
{
	struct mbuf m;
	struct status_walk w = { &m, 0 };
	uint8_t *p;

	if (m_end(msg) == -1) {
		log_warnx("malformed DAEMON_SESSIONS from the supervisor");
		return;
	}
	m_init(&m, SUPERVISOR_SESSIONS, msg->id);
	m_add_u32(&m, session_count());
	m_add_u32(&m, 0);		/* n, set below once known */
	session_foreach(add_session, &w);
	if (!m.error) {
		/* u32 fields are big-endian on the wire (ipc.h) */
		p = m.buf + IPC_HDR_SIZE + 4;
		p[0] = (uint8_t)(w.n >> 24);
		p[1] = (uint8_t)(w.n >> 16);
		p[2] = (uint8_t)(w.n >> 8);
		p[3] = (uint8_t)w.n;
	}
	ipc_send(parent, &m);
}

struct kill_walk {
	struct session	**v;
	uint32_t	  n, cap;
};

static void
collect_session(struct session *s, void *arg)
{
	struct kill_walk *w = arg;

	if (w->n < w->cap)
		w->v[w->n++] = s;
}

/* Answer DAEMON_KILL_SESSION with SUPERVISOR_KILLED: how many will end. */
void
status_kill(struct ipc *parent, struct ipc_msg *msg)
{
	struct kill_walk w = { NULL, 0, 0 };
	struct session *s;
	struct mbuf m;
	uint32_t all, id, ended = 0, i;

	if (m_get_u32(msg, &all) == -1 || m_get_u32(msg, &id) == -1 ||
	    m_end(msg) == -1 || all > 1) {
		log_warnx("malformed DAEMON_KILL_SESSION from the supervisor");
		return;
	}
	if (all) {
		/* Collect first: ending one may take it out of the tree. */
		w.cap = session_count();
		/* an array of pointers: sizeof(*w.v) is right */
		/* NOLINTNEXTLINE(bugprone-sizeof-expression) */
		if (w.cap > 0 && (w.v = reallocarray(NULL, w.cap, sizeof(*w.v))) == NULL)
			fatal("kill sessions");
		session_foreach(collect_session, &w);
		for (i = 0; i < w.n; i++)
			ended += (uint32_t)session_kill(w.v[i]);
		free(w.v);
	} else if ((s = session_find(id)) != NULL)
		ended = (uint32_t)session_kill(s);
	if (all)
		log_info("kill sessions=all ended=%u", ended);
	else
		log_info("kill session=%08x ended=%u", id, ended);
	m_init(&m, SUPERVISOR_KILLED, msg->id);
	m_add_u32(&m, ended);
	ipc_send(parent, &m);
}
