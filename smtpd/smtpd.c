/*
 * smtpd.c - the SMTP listener: main(), listeners, pause (runs as _smtpd,
 * chrooted to an empty directory).  It holds no file of the Mailroot: the
 * content of each message goes into a descriptor queued hands it.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"
#include "daemon.h"
#include "ipc.h"
#include "log.h"
#include "smtpd.h"

#define MAX_LISTENERS	CONF_LISTENERS_MAX
#define ACCEPT_PAUSE_MS	200	/* after accept(2) fails, e.g. out of descriptors */

static struct evconnlistener *listeners[MAX_LISTENERS];
static unsigned listener_flags[MAX_LISTENERS];	/* LISTEN_* of each */
static int paused;

int
smtpd_paused(void)
{
	return paused;
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	(void)l;
	/* arg: the listener's index, which says its options. */
	session_accept(fd, sa, (socklen_t)salen, (uint32_t)(uintptr_t)arg,
	    listener_flags[(uintptr_t)arg]);
}

static void
accept_resume_cb(evutil_socket_t fd, short ev, void *arg)
{
	size_t i;

	(void)fd;
	(void)ev;
	(void)arg;
	for (i = 0; i < MAX_LISTENERS; i++)
		if (listeners[i] != NULL)
			evconnlistener_enable(listeners[i]);
}

/*
 * accept(2) failed, as with EMFILE when every descriptor is in use.  The
 * listener would stay readable and the loop spin: stop accepting for a
 * moment (the connection waits in the backlog) and say so once.
 */
static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	static struct event *resume_ev;
	struct timeval tv = { 0, ACCEPT_PAUSE_MS * 1000 };
	size_t i;

	(void)l;
	(void)arg;
	log_warn("accept (pausing new connections for %d ms)", ACCEPT_PAUSE_MS);
	if (resume_ev == NULL &&
	    (resume_ev = evtimer_new(env->base, accept_resume_cb, NULL)) == NULL)
		return;
	for (i = 0; i < MAX_LISTENERS; i++)
		if (listeners[i] != NULL)
			evconnlistener_disable(listeners[i]);
	evtimer_add(resume_ev, &tv);
}

/* The index-th listener of `c` (mailrootd binds them in this order). */
static const struct listener_conf *
listener_nth(const struct config *c, uint32_t index)
{
	const struct listener_conf *l;

	TAILQ_FOREACH(l, &c->listeners, entry)
		if (index-- == 0)
			return l;
	return NULL;
}

static void
smtpd_listener(uint32_t index, int fd)
{
	const struct listener_conf *lc;

	if (index >= MAX_LISTENERS) {
		close(fd);
		return;
	}
	lc = listener_nth(env->conf, index);
	listener_flags[index] = lc ? lc->flags : 0;
	if (listeners[index])
		evconnlistener_free(listeners[index]);
	evutil_make_socket_nonblocking(fd);
	listeners[index] = evconnlistener_new(env->base, accept_cb, (void *)(uintptr_t)index,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (listeners[index] == NULL) {
		log_warnx("cannot serve listener %u", index);
		close(fd);
		return;
	}
	evconnlistener_set_error_cb(listeners[index], accept_error_cb);
}

static void
smtpd_peer(enum proc_id peer, int fd)
{
	if (peer != PROC_QUEUED) {
		log_warnx("unexpected peer %s", proc_name(peer));
		close(fd);
		return;
	}
	queue_link_set(fd);
}

/*
 * The sockets are those of the first configuration: if a reload changed the
 * listen lines, a session's listener index would name another line's
 * options (auth, require-auth).  Keep the running lines until the restart
 * that binds the new ones, as mailrootd does.  -1 when out of memory.
 */
static int
keep_listeners(struct config *c, const struct config *old)
{
	const struct listener_conf *a, *b;
	struct listener_conf *l;

	for (a = TAILQ_FIRST(&c->listeners), b = TAILQ_FIRST(&old->listeners);
	    a && b; a = TAILQ_NEXT(a, entry), b = TAILQ_NEXT(b, entry))
		if (a->port != b->port || strcmp(a->addr, b->addr) != 0)
			break;
	if (a == NULL && b == NULL)
		return 0;
	while ((l = TAILQ_FIRST(&c->listeners)) != NULL) {
		TAILQ_REMOVE(&c->listeners, l, entry);
		free(l);
	}
	TAILQ_FOREACH(b, &old->listeners, entry) {
		if ((l = malloc(sizeof(*l))) == NULL)
			return -1;
		*l = *b;
		TAILQ_INSERT_TAIL(&c->listeners, l, entry);
	}
	log_warnx("reload: the listen lines changed; their options take effect "
	    "at the next start");
	return 0;
}

static int
smtpd_config(struct config *c, const struct config *old, char *why, size_t whysz)
{
	const struct listener_conf *a, *b;
	uint32_t i;

	if (old && keep_listeners(c, old) == -1) {
		strlcpy(why, "out of memory", whysz);
		return -1;
	}
	/*
	 * A reload changes the options (tls, smtps, require-tls) of a listener
	 * still bound where the config says; one that moved keeps its own
	 * until the next start, as mailrootd keeps its socket.
	 */
	for (i = 0; old != NULL && i < MAX_LISTENERS; i++) {
		if (listeners[i] == NULL || (a = listener_nth(c, i)) == NULL ||
		    (b = listener_nth(old, i)) == NULL)
			continue;
		if (a->port == b->port && strcmp(a->addr, b->addr) == 0)
			listener_flags[i] = a->flags;
	}
	return dns_configure(c, why, whysz);
}

static void
smtpd_pause(int on)
{
	paused = on;
	log_info("%s", on ? "paused: new connections get 421" : "resumed");
}

/* Messages from the supervisor beyond the common ones. */
static int
smtpd_message(struct ipc *parent, struct ipc_msg *msg)
{
	switch (msg->type) {
	case DAEMON_AUTH_RESULT:
		if (auth_result(msg) == -1)
			log_warnx("malformed DAEMON_AUTH_RESULT from the supervisor");
		return 0;
	case DAEMON_SESSIONS:
		status_sessions(parent, msg);
		return 0;
	case DAEMON_W3C_LOG: {
		uint32_t index;
		int fd = msg->fd;

		msg->fd = -1;
		/* No descriptor: the listener logs no more. */
		if (m_get_u32(msg, &index) == -1 || m_end(msg) == -1) {
			if (fd != -1)
				close(fd);
			log_warnx("malformed DAEMON_W3C_LOG from the supervisor");
			return 0;
		}
		w3c_log_set(index, fd);
		return 0;
	}
	case DAEMON_KILL_SESSION:
		status_kill(parent, msg);
		return 0;
	default:
		return -1;
	}
}

struct smtpd_stats smtpd_stats;

static size_t
smtpd_stats_list(struct stat_value *v, size_t max)
{
	const struct stat_value all[] = {
		{ "smtpd.connections.current", STAT_GAUGE, session_count(),
		    "SMTP sessions open now" },
		{ "smtpd.connections.total", STAT_COUNTER, smtpd_stats.connections,
		    "SMTP connections accepted" },
		{ "smtpd.connections.refused", STAT_COUNTER, smtpd_stats.refused,
		    "SMTP connections turned away (paused, limits, access rules, AUTH failures)" },
		{ "smtpd.tls.sessions", STAT_COUNTER, smtpd_stats.tls,
		    "TLS handshakes completed with SMTP clients" },
		{ "smtpd.auth.failures", STAT_COUNTER, smtpd_stats.auth_failures,
		    "failed AUTH attempts" },
		{ "smtpd.messages.in", STAT_COUNTER, smtpd_stats.messages,
		    "messages accepted by SMTP" },
		{ "smtpd.bytes.in", STAT_COUNTER, smtpd_stats.bytes,
		    "octets of the messages accepted by SMTP" },
	};
	size_t i, n = sizeof(all) / sizeof(all[0]);

	for (i = 0; i < n && i < max; i++)
		v[i] = all[i];
	return i;
}

static const struct daemon_ops smtpd_ops = {
	.config = smtpd_config,
	.peer = smtpd_peer,
	.listener = smtpd_listener,
	.pause = smtpd_pause,
	.message = smtpd_message,
	.tls_material = tls_material,
	.pre_drop = dns_init,
	.stats = smtpd_stats_list,
};

int
main(int argc, char **argv)
{
	daemon_main(argc, argv, PROC_SMTPD, &smtpd_ops);
}
