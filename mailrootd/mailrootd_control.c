/*
 * mailrootd_control.c - the control socket smtpctl and smtpq talk to
 * (mailrootd, root).
 * Trust boundary: any local user who can reach the socket is a client; each
 * must say the protocol version first, and every request is checked.
 * Without an operators-group the socket is mode 0600 (root, or the user
 * running Mailroot).  With one it is mode 0666, and the credentials the
 * kernel gives for the peer (SO_PEERCRED, SO_PEERGROUPS: as they were at
 * connect(2), not what the client claims) decide: root, the user running
 * Mailroot and members of the group may use every command; anyone else
 * only those that read (FEATURES O5).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>

#include "config.h"
#include "ipc.h"
#include "log.h"
#include "mailrootd.h"
#include "proto_queue.h"
#include "util.h"

#define CONTROL_MAX_CLIENTS	64
#define PEER_GROUPS_MAX		256

struct client {
	struct ipc	*ipc;
	uid_t		 uid;
	int		 operator;	/* may use the commands that change things */
	int		 hello;		/* said a matching CTL_HELLO */
	int		 wants_stop;	/* answer when the suite has stopped */
	uint32_t	 stop_id;
};

static struct client clients[CONTROL_MAX_CLIENTS];
static struct event *accept_ev;
static char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static char operators_name[CONF_USER_MAX];	/* "" : none */
static void reply(struct client *, uint32_t, uint32_t, const char *);
static gid_t operators_gid;

int
control_configure(const struct config *c, char *err, size_t errsz)
{
	struct group *gr;
	mode_t mode = 0600;

	if (c->operators_group[0] != '\0') {
		/* at start and reload only: the name service may block */
		errno = 0;
		if ((gr = getgrnam(c->operators_group)) == NULL) {
			snprintf(err, errsz, "operators-group %s: %s", c->operators_group,
			    errno ? strerror(errno) : "no such group");
			return -1;
		}
		operators_gid = gr->gr_gid;
		mode = 0666;
	}
	(void)strlcpy(operators_name, c->operators_group, sizeof(operators_name));
	if (socket_path[0] != '\0' && chmod(socket_path, mode) == -1) {
		snprintf(err, errsz, "chmod %s: %s", socket_path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Who is at the other end, as the kernel says: may it change things? */
static void
peer_credentials(struct client *c, int fd)
{
	struct ucred uc;
	gid_t groups[PEER_GROUPS_MAX];
	socklen_t len = sizeof(uc);
	size_t i, n;

	c->uid = (uid_t)-1;
	c->operator = 0;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == -1 ||
	    len != sizeof(uc)) {
		log_warn("control: SO_PEERCRED");
		return;
	}
	c->uid = uc.uid;
	if (uc.uid == 0 || uc.uid == geteuid()) {
		c->operator = 1;
		return;
	}
	if (operators_name[0] == '\0')
		return;
	if (uc.gid == operators_gid) {
		c->operator = 1;
		return;
	}
	len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == -1) {
		/* ERANGE: more groups than we look at; ENOPROTOOPT: an old kernel */
		log_debug("control: SO_PEERGROUPS: %s", strerror(errno));
		return;
	}
	n = len / sizeof(gid_t);
	for (i = 0; i < n; i++)
		if (groups[i] == operators_gid) {
			c->operator = 1;
			return;
		}
}

/* -1 (after the refusal) when the client may not use a command that changes things. */
static int
need_operator(struct client *c, uint32_t id, const char *what)
{
	char why[256];

	if (c->operator)
		return 0;
	if (operators_name[0] != '\0')
		snprintf(why, sizeof(why), "refused: %s needs root or membership of "
		    "group %s", what, operators_name);
	else
		snprintf(why, sizeof(why), "refused: %s needs root", what);
	log_info("control: uid %ld refused: %s", (long)c->uid, what);
	reply(c, CLIENT_FAIL, id, why);
	return -1;
}

static void
reply(struct client *c, uint32_t type, uint32_t id, const char *text)
{
	struct mbuf m;

	m_init(&m, type, id);
	m_add_str(&m, text);
	ipc_send(c->ipc, &m);
}

static void
reply_status(struct client *c, uint32_t id)
{
	struct mbuf m;
	const char *state;
	int i;

	if (mrd->state == SUITE_STOPPING)
		state = "stopping";
	else if (mrd->state == SUITE_STARTING)
		state = "starting";
	else
		state = mrd->paused ? "paused" : "running";
	m_init(&m, CLIENT_STATUS, id);
	m_add_str(&m, state);
	m_add_u32(&m, (uint32_t)getpid());
	m_add_u32(&m, PROC_MAX - 1);
	for (i = 1; i < PROC_MAX; i++) {
		m_add_str(&m, proc_name((enum proc_id)i));
		m_add_u32(&m, (uint32_t)mrd->procs[i].pid);
		m_add_u32(&m, mrd->procs[i].restarts);
	}
	ipc_send(c->ipc, &m);
}

/* The counters arrived (or the wait is over): CLIENT_STATS. */
static void
reply_stats(const struct stat_set *set, void *arg, uint32_t id)
{
	struct client *c = arg;
	struct mbuf m;
	size_t i;

	if (c->ipc == NULL)
		return;
	m_init(&m, CLIENT_STATS, id);
	m_add_u32(&m, (uint32_t)set->n);
	for (i = 0; i < set->n; i++) {
		m_add_str(&m, set->v[i].name);
		m_add_u32(&m, set->v[i].kind);
		m_add_u64(&m, set->v[i].value);
		m_add_str(&m, set->v[i].help);
	}
	ipc_send(c->ipc, &m);
}

/*
 * The fields of one request from a control client, checked against their
 * bounds (also fuzz_control's entry point): 0, or -1 with the protocol
 * error to answer in *why.  A type without fields must have no payload.
 */
int
control_request_decode(struct ipc_msg *msg, struct ctl_request *r, const char **why)
{
	memset(r, 0, sizeof(*r));
	switch (msg->type) {
	case CTL_HELLO:
		*why = "protocol error: expected a greeting";
		return m_get_u32(msg, &r->v) == -1 || m_end(msg) == -1 ? -1 : 0;
	case CTL_QUEUE:
		*why = "protocol error: bad queue request";
		return m_get_u32(msg, &r->op) == -1 ||
		    m_get_str(msg, &r->arg, QUEUE_ARG_MAX) == -1 || m_end(msg) == -1 ||
		    proto_queue_op_name(r->op) == NULL ? -1 : 0;
	case CTL_KILL_SESSION:
		*why = "protocol error: bad kill request";
		return m_get_u32(msg, &r->v) == -1 || m_get_u32(msg, &r->sid) == -1 ||
		    m_end(msg) == -1 || r->v > 1 ? -1 : 0;
	case CTL_LOG_LEVEL:
		*why = "protocol error: bad log level";
		return m_get_u32(msg, &r->v) == -1 || m_end(msg) == -1 || r->v > 1 ? -1 : 0;
	default:
		*why = "protocol error: unexpected payload";
		return m_end(msg);
	}
}

/* CTL_QUEUE: u32 op, str argument; to queued (mailrootd_queue.c). */
static void
control_queue(struct client *c, struct ipc_msg *msg)
{
	struct ctl_request r;
	const char *name, *perr;
	char what[64], why[256];
	uint32_t op;

	if (control_request_decode(msg, &r, &perr) == -1) {
		reply(c, CLIENT_FAIL, msg->id, perr);
		return;
	}
	op = r.op;
	name = proto_queue_op_name(op);
	snprintf(what, sizeof(what), "queue %s", name);
	/* The header section is the content of someone's mail: operators only. */
	if ((proto_queue_mutates(op) || op == QOP_SHOW) &&
	    need_operator(c, msg->id, what) == -1)
		return;
	if (queue_request((int)(c - clients), msg->id, op, r.arg, why, sizeof(why)) == -1)
		reply(c, CLIENT_FAIL, msg->id, why);
}

static void
control_dispatch(struct ipc *ipc, struct ipc_msg *msg, void *arg)
{
	struct client *c = arg;
	struct ctl_request r;
	const char *perr;
	char why[512];
	uint32_t v;

	if (!c->hello) {
		if (msg->type != CTL_HELLO || control_request_decode(msg, &r, &perr) == -1) {
			log_warnx("control: client uid=%ld sent %s, not a greeting: dropped",
			    (long)c->uid, proto_type_name(msg->type));
			reply(c, CLIENT_FAIL, msg->id, "protocol error: expected a greeting");
			ipc_close(ipc);
			return;
		}
		v = r.v;
		if (v != PROTO_VERSION) {
			snprintf(why, sizeof(why), "protocol version mismatch: "
			    "smtpctl speaks %u, mailrootd %u (use the smtpctl of "
			    "the installed version)", v, (unsigned)PROTO_VERSION);
			log_warnx("control: client uid=%ld speaks protocol %u, not %u: dropped",
			    (long)c->uid, v, (unsigned)PROTO_VERSION);
			reply(c, CLIENT_FAIL, msg->id, why);
			ipc_close(ipc);
			return;
		}
		c->hello = 1;
		reply(c, CLIENT_OK, msg->id, "hello");
		return;
	}
	if (msg->type == CTL_QUEUE) {
		control_queue(c, msg);
		return;
	}
	switch (msg->type) {
	case CTL_KILL_SESSION:
		if (need_operator(c, msg->id, "kill session") == -1)
			return;
		if (control_request_decode(msg, &r, &perr) == -1) {
			reply(c, CLIENT_FAIL, msg->id, perr);
			return;
		}
		if (sessions_kill((int)(c - clients), msg->id, r.v, r.sid, why,
		    sizeof(why)) == -1)
			reply(c, CLIENT_FAIL, msg->id, why);
		return;
	case CTL_LOG_LEVEL:
		if (need_operator(c, msg->id, "log") == -1)
			return;
		if (control_request_decode(msg, &r, &perr) == -1) {
			reply(c, CLIENT_FAIL, msg->id, perr);
			return;
		}
		v = r.v;
		log_setverbose((int)v);
		proc_send_log_level((int)v);
		log_info("log level %s", v ? "verbose" : "brief");
		reply(c, CLIENT_OK, msg->id, v ? "log verbose" : "log brief");
		return;
	}
	if (m_end(msg) == -1) {
		reply(c, CLIENT_FAIL, msg->id, "protocol error: unexpected payload");
		return;
	}
	switch (msg->type) {
	case CTL_PAUSE:
	case CTL_RESUME:
	case CTL_RELOAD:
	case CTL_STOP:
		if (need_operator(c, msg->id, msg->type == CTL_PAUSE ? "pause" :
		    msg->type == CTL_RESUME ? "resume" : msg->type == CTL_RELOAD ?
		    "reload" : "stop") == -1)
			return;
		break;
	}
	switch (msg->type) {
	case CTL_STATUS:
		reply_status(c, msg->id);
		break;
	case CTL_PAUSE:
	case CTL_RESUME:
		mrd->paused = msg->type == CTL_PAUSE;
		proc_send_pause(mrd->paused);
		log_info("%s: new connections %s", mrd->paused ? "paused" : "resumed",
		    mrd->paused ? "get 421 and are closed" : "are served");
		reply(c, CLIENT_OK, msg->id, mrd->paused ? "paused" : "resumed");
		break;
	case CTL_RELOAD:
		if (mrd_reload(why, sizeof(why)) == -1)
			reply(c, CLIENT_FAIL, msg->id, why);
		else
			reply(c, CLIENT_OK, msg->id, "reloaded");
		break;
	case CTL_SESSIONS:
		if (sessions_request((int)(c - clients), msg->id, why, sizeof(why)) == -1)
			reply(c, CLIENT_FAIL, msg->id, why);
		break;
	case CTL_STATS:
		if (stats_request(reply_stats, c, msg->id) == -1)
			reply(c, CLIENT_FAIL, msg->id, "too many requests under way, try again");
		break;
	case CTL_STOP:
		c->wants_stop = 1;
		c->stop_id = msg->id;
		mrd_stop();
		break;
	default:
		reply(c, CLIENT_FAIL, msg->id, "unknown request");
		break;
	}
}

static void
control_closed(struct ipc *ipc, void *arg)
{
	struct client *c = arg;

	(void)ipc;
	sessions_client_gone((int)(c - clients));
	stats_cancel(c);
	queue_client_gone((int)(c - clients));
	memset(c, 0, sizeof(*c));
}

void
control_send(int slot, struct mbuf *m)
{
	if (slot < 0 || slot >= CONTROL_MAX_CLIENTS || clients[slot].ipc == NULL) {
		m_free(m);
		return;
	}
	ipc_send(clients[slot].ipc, m);
}

void
control_ok(int slot, uint32_t id, const char *text)
{
	if (slot >= 0 && slot < CONTROL_MAX_CLIENTS && clients[slot].ipc != NULL)
		reply(&clients[slot], CLIENT_OK, id, text);
}

void
control_fail(int slot, uint32_t id, const char *why)
{
	if (slot >= 0 && slot < CONTROL_MAX_CLIENTS && clients[slot].ipc != NULL)
		reply(&clients[slot], CLIENT_FAIL, id, why);
}

static void
control_accept(evutil_socket_t fd, short ev, void *arg)
{
	int cfd, i;

	(void)ev;
	(void)arg;
	if ((cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) == -1) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("control accept");
		return;
	}
	for (i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (clients[i].ipc == NULL)
			break;
	if (i == CONTROL_MAX_CLIENTS) {
		log_warnx("control: too many clients");
		close(cfd);
		return;
	}
	peer_credentials(&clients[i], cfd);
	clients[i].ipc = ipc_new(mrd->base, cfd, "control", control_dispatch,
	    control_closed, &clients[i]);
	if (clients[i].ipc == NULL)
		close(cfd);
}

int
control_open(const char *path, char *err, size_t errsz)
{
	struct sockaddr_un sun;
	mode_t old;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >= sizeof(sun.sun_path)) {
		snprintf(err, errsz, "control socket path too long: %s", path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1) {
		snprintf(err, errsz, "control socket: %s", strerror(errno));
		return -1;
	}
	/* The caller checked that no mailrootd answers there: a stale socket. */
	(void)unlink(path);
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old);
		snprintf(err, errsz, "bind %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	umask(old);
	if (listen(fd, 16) == -1) {
		snprintf(err, errsz, "listen %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	strlcpy(socket_path, path, sizeof(socket_path));
	mrd->control_fd = fd;
	accept_ev = event_new(mrd->base, fd, EV_READ | EV_PERSIST, control_accept, NULL);
	event_add(accept_ev, NULL);
	return 0;
}

void
control_notify_stopped(void)
{
	int i;

	for (i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (clients[i].ipc && clients[i].wants_stop) {
			reply(&clients[i], CLIENT_OK, clients[i].stop_id, "stopped");
			ipc_flush(clients[i].ipc);
		}
}

void
control_close(void)
{
	if (accept_ev) {
		event_free(accept_ev);
		accept_ev = NULL;
	}
	if (mrd->control_fd != -1) {
		close(mrd->control_fd);
		mrd->control_fd = -1;
		(void)unlink(socket_path);
	}
}
