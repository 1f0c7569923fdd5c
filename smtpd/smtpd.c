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
#include "log.h"
#include "smtpd.h"

#define MAX_LISTENERS	CONF_LISTENERS_MAX

static struct evconnlistener *listeners[MAX_LISTENERS];
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
	(void)arg;
	session_accept(fd, sa, (socklen_t)salen);
}

static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;
	/* EMFILE and the like: the connection waits in the backlog. */
	log_warn("accept");
}

static void
smtpd_listener(uint32_t index, int fd)
{
	if (index >= MAX_LISTENERS) {
		close(fd);
		return;
	}
	if (listeners[index])
		evconnlistener_free(listeners[index]);
	evutil_make_socket_nonblocking(fd);
	listeners[index] = evconnlistener_new(env->base, accept_cb, NULL,
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

static int
smtpd_config(struct config *c, const struct config *old, char *why, size_t whysz)
{
	(void)old;
	return dns_configure(c, why, whysz);
}

static void
smtpd_pause(int on)
{
	paused = on;
	log_info("%s", on ? "paused: new connections get 421" : "resumed");
}

static const struct daemon_ops smtpd_ops = {
	.config = smtpd_config,
	.peer = smtpd_peer,
	.listener = smtpd_listener,
	.pause = smtpd_pause,
	.pre_drop = dns_init,
};

int
main(int argc, char **argv)
{
	daemon_main(argc, argv, PROC_SMTPD, &smtpd_ops);
}
