/*
 * mailrootd_control.c - the control socket smtpctl talks to (mailrootd, root).
 * Trust boundary: any local user who can reach the socket is a client; each
 * must say the protocol version first, and every request is checked.  The
 * socket is mode 0600 (root, or the user running Mailroot).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>

#include "config.h"
#include "ipc.h"
#include "log.h"
#include "mailrootd.h"
#include "util.h"

#define CONTROL_MAX_CLIENTS	64

struct client {
	struct ipc	*ipc;
	int		 hello;		/* said a matching CTL_HELLO */
	int		 wants_stop;	/* answer when the suite has stopped */
	uint32_t	 stop_id;
};

static struct client clients[CONTROL_MAX_CLIENTS];
static struct event *accept_ev;
static char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

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

static void
control_dispatch(struct ipc *ipc, struct ipc_msg *msg, void *arg)
{
	struct client *c = arg;
	char why[512];
	uint32_t v, sid;

	if (!c->hello) {
		if (msg->type != CTL_HELLO || m_get_u32(msg, &v) == -1 ||
		    m_end(msg) == -1) {
			reply(c, CLIENT_FAIL, msg->id, "protocol error: expected a greeting");
			ipc_close(ipc);
			return;
		}
		if (v != PROTO_VERSION) {
			snprintf(why, sizeof(why), "protocol version mismatch: "
			    "smtpctl speaks %u, mailrootd %u (use the smtpctl of "
			    "the installed version)", v, PROTO_VERSION);
			reply(c, CLIENT_FAIL, msg->id, why);
			ipc_close(ipc);
			return;
		}
		c->hello = 1;
		reply(c, CLIENT_OK, msg->id, "hello");
		return;
	}
	switch (msg->type) {
	case CTL_KILL_SESSION:
		if (m_get_u32(msg, &v) == -1 || m_get_u32(msg, &sid) == -1 ||
		    m_end(msg) == -1 || v > 1) {
			reply(c, CLIENT_FAIL, msg->id, "protocol error: bad kill request");
			return;
		}
		if (sessions_kill((int)(c - clients), msg->id, v, sid, why,
		    sizeof(why)) == -1)
			reply(c, CLIENT_FAIL, msg->id, why);
		return;
	case CTL_LOG_LEVEL:
		if (m_get_u32(msg, &v) == -1 || m_end(msg) == -1 || v > 1) {
			reply(c, CLIENT_FAIL, msg->id, "protocol error: bad log level");
			return;
		}
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
