/*
 * daemon.c - the start-up and supervisor link of smtpd, queued and pickupd.
 * Trust: the supervisor (fd 3) is trusted; its messages are still checked,
 * since a bug there must not become a crash here.
 */
#include <sys/types.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>

#include "config.h"
#include "daemon.h"
#include "ipc.h"
#include "log.h"
#include "privsep.h"

static struct daemon_env the_env;
struct daemon_env *env = &the_env;
static const struct daemon_ops *ops;
/* The level smtpctl log set (0 brief, 1 verbose), or -1: the config's. */
static int log_override = -1;

static void
config_report(const char *msg, void *arg)
{
	(void)arg;
	log_warnx("%s", msg);
}

static void
on_config(struct ipc_msg *msg)
{
	struct config *c, *old = env->conf;
	char why[256] = "";
	const char *file;
	struct mbuf m;
	FILE *fp;
	int fd = msg->fd;

	msg->fd = -1;
	if (m_get_str(msg, &file, 4096) == -1 || m_end(msg) == -1 || fd == -1) {
		if (fd != -1)
			close(fd);
		fatalx("bad DAEMON_CONFIG from the supervisor");
	}
	if ((fp = fdopen(fd, "r")) == NULL)
		fatal("fdopen config");
	c = config_parse(fp, file, config_report, NULL);
	fclose(fp);
	if (c == NULL)
		strlcpy(why, "the configuration does not parse", sizeof(why));
	else if (ops->config(c, old, why, sizeof(why)) == 0) {
		if (old)
			config_free(old);
		env->conf = c;
		if (log_override >= 0)
			log_setverbose(log_override);
		else
			log_setverbose(c->log_verbose || log_getverbose() > 1);
		if (old)
			log_info("configuration reloaded");
		return;
	} else
		config_free(c);
	if (old == NULL) {
		m_init(&m, SUPERVISOR_FAILED, 0);
		m_add_str(&m, why);
		ipc_send(env->parent, &m);
		ipc_flush(env->parent);
		fatalx("cannot start: %s", why);
	}
	log_warnx("reload refused: %s; keeping the running configuration", why);
}

static void
on_tls_material(struct ipc_msg *msg)
{
	const char *certfile, *keyfile;
	uint64_t certlen;
	int fd = msg->fd;

	msg->fd = -1;
	if (m_get_u64(msg, &certlen) == -1 || m_get_str(msg, &certfile, 4096) == -1 ||
	    m_get_str(msg, &keyfile, 4096) == -1 || m_end(msg) == -1 || fd == -1) {
		if (fd != -1)
			close(fd);
		fatalx("bad DAEMON_TLS_MATERIAL from the supervisor");
	}
	if (ops->tls_material)
		ops->tls_material(fd, certlen, certfile, keyfile);
	else
		close(fd);
}

/* DAEMON_STATS: the daemon's counters, as SUPERVISOR_STATS (common/stats.h). */
static void
on_stats(struct ipc *p, struct ipc_msg *msg)
{
	struct stat_value v[STATS_PER_DAEMON];
	struct mbuf m;
	size_t n = 0, i;

	if (m_end(msg) == -1) {
		log_warnx("bad DAEMON_STATS from the supervisor");
		return;
	}
	if (ops->stats)
		n = ops->stats(v, STATS_PER_DAEMON);
	m_init(&m, SUPERVISOR_STATS, msg->id);
	m_add_u32(&m, (uint32_t)n);
	for (i = 0; i < n; i++) {
		m_add_str(&m, v[i].name);
		m_add_u32(&m, (uint32_t)v[i].kind);
		m_add_u64(&m, v[i].value);
		m_add_str(&m, v[i].help);
	}
	ipc_send(p, &m);
}

static void
parent_dispatch(struct ipc *p, struct ipc_msg *msg, void *arg)
{
	uint32_t v;

	(void)arg;
	switch (msg->type) {
	case DAEMON_CONFIG:
		on_config(msg);
		break;
	case DAEMON_PEER:
	case DAEMON_LISTENER:
		if (m_get_u32(msg, &v) == -1 || m_end(msg) == -1 || msg->fd == -1 ||
		    (msg->type == DAEMON_PEER && v >= PROC_MAX))
			fatalx("bad %s from the supervisor", proto_type_name(msg->type));
		if (msg->type == DAEMON_PEER && ops->peer)
			ops->peer((enum proc_id)v, msg->fd);
		else if (msg->type == DAEMON_LISTENER && ops->listener)
			ops->listener(v, msg->fd);
		else
			close(msg->fd);
		msg->fd = -1;
		break;
	case DAEMON_GO:
		if (env->conf == NULL)
			fatalx("DAEMON_GO before a configuration");
		if (ops->go)
			ops->go();
		ipc_send_empty(p, SUPERVISOR_READY, 0);
		break;
	case DAEMON_PAUSE:
	case DAEMON_RESUME:
		if (ops->pause)
			ops->pause(msg->type == DAEMON_PAUSE);
		break;
	case DAEMON_TLS_MATERIAL:
		on_tls_material(msg);
		break;
	case DAEMON_LOG_LEVEL:
		/* smtpctl log verbose|brief: holds until the next one, reloads too */
		if (m_get_u32(msg, &v) == -1 || m_end(msg) == -1 || v > 1)
			fatalx("bad DAEMON_LOG_LEVEL from the supervisor");
		log_override = (int)v;
		log_setverbose(log_override);
		log_info("log level %s", v ? "verbose" : "brief");
		break;
	case DAEMON_STATS:
		on_stats(p, msg);
		break;
	default:
		if (ops->message && ops->message(p, msg) == 0)
			break;
		log_warnx("unexpected %s from the supervisor",
		    proto_type_name(msg->type));
		break;
	}
}

static void
parent_closed(struct ipc *p, void *arg)
{
	(void)p;
	(void)arg;
	/* The supervisor is gone: a daemon never runs unsupervised. */
	log_debug("supervisor went away, exiting");
	exit(0);
}

static void
on_signal(evutil_socket_t sig, short ev, void *arg)
{
	(void)ev;
	(void)arg;
	log_debug("signal %d, exiting", (int)sig);
	event_base_loopbreak(env->base);
}

static void __attribute__((noreturn))
usage(const char *name)
{
	fprintf(stderr, "usage: %s [-dv] [-u user] [-g group] [-r chroot]\n"
	    "%s is started by mailrootd(8), not by hand.\n", name, name);
	exit(1);
}

void
daemon_main(int argc, char **argv, enum proc_id self, const struct daemon_ops *o)
{
	const char *name = proc_name(self);
	const char *user = NULL, *group = NULL, *root = NULL;
	struct event *sigterm, *sigint;
	struct event_config *cfg;
	int ch, foreground = 0, verbose = 0;

	ops = o;
	env->self = self;
	while ((ch = getopt(argc, argv, "dg:r:u:v")) != -1) {
		switch (ch) {
		case 'd': foreground = 1; break;
		case 'g': group = optarg; break;
		case 'r': root = optarg; break;
		case 'u': user = optarg; break;
		case 'v': verbose++; break;
		default: usage(name);
		}
	}
	if (optind != argc)
		usage(name);
	log_init(name, foreground);
	log_setverbose(verbose);
	if (fcntl(DAEMON_PARENT_FD, F_GETFD) == -1)
		fatalx("no supervisor socket on fd %d: %s is started by mailrootd",
		    DAEMON_PARENT_FD, name);

	if (ops->pre_drop)
		ops->pre_drop();
	privsep_drop(user, group, root);

	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	/* The epoll changelist merges the many event changes of one loop turn. */
	if ((cfg = event_config_new()) == NULL)
		fatalx("event_config_new");
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	if ((env->base = event_base_new_with_config(cfg)) == NULL)
		fatalx("event_base_new");
	event_config_free(cfg);
	event_base_priority_init(env->base, 2);
	sigterm = evsignal_new(env->base, SIGTERM, on_signal, NULL);
	sigint = evsignal_new(env->base, SIGINT, on_signal, NULL);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	env->parent = ipc_new(env->base, DAEMON_PARENT_FD, "mailrootd",
	    parent_dispatch, parent_closed, NULL);
	if (env->parent == NULL)
		fatalx("cannot set up the supervisor link");

	event_base_dispatch(env->base);
	log_debug("exiting");
	exit(0);
}
