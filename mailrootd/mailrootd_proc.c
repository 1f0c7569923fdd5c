/*
 * mailrootd_proc.c - starting, wiring and restarting the daemons (mailrootd,
 * root).  Each daemon is exec'd with its link to the supervisor on fd 3 and
 * the user and chroot to drop to on its command line; the config text,
 * listeners and peer sockets follow as messages.  A daemon that dies is
 * restarted after a back-off that doubles while it keeps dying young, and
 * its peers are given fresh sockets to the new one.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/wait.h>
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
#include "mailrootd.h"
#include "util.h"

#define BACKOFF_MIN_MS		100
#define BACKOFF_MAX_MS		30000
#define HEALTHY_AFTER_MS	30000	/* a daemon that lived this long starts over at the minimum */

/* Which daemons talk to each other: each pair gets one socketpair. */
static const enum proc_id links[][2] = {
	{ PROC_SMTPD, PROC_QUEUED },
	{ PROC_PICKUPD, PROC_QUEUED },
	{ PROC_DELIVERD, PROC_QUEUED },
};

/* The daemons, in start order: queued first, since every other one links to it. */
static const enum proc_id start_order[] = {
	PROC_QUEUED, PROC_DELIVERD, PROC_SMTPD, PROC_PICKUPD
};

static void proc_dispatch(struct ipc *, struct ipc_msg *, void *);
static void proc_closed(struct ipc *, void *);
static void proc_restart_cb(evutil_socket_t, short, void *);
static int proc_start(struct proc *);

void
proc_init(void)
{
	int i;

	for (i = 0; i < PROC_MAX; i++) {
		mrd->procs[i].id = (enum proc_id)i;
		mrd->procs[i].backoff_ms = BACKOFF_MIN_MS;
		mrd->procs[i].restart_ev = evtimer_new(mrd->base, proc_restart_cb,
		    &mrd->procs[i]);
	}
}

/* A descriptor holding the config text, for a daemon to parse. */
static int
config_fd(void)
{
	int fd = memfd_create("mailroot.conf", MFD_CLOEXEC);

	if (fd == -1)
		return -1;
	if (write_all(fd, mrd->conf_text, mrd->conf_len) == -1 ||
	    lseek(fd, 0, SEEK_SET) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* DAEMON_LOG_LEVEL: smtpctl log verbose|brief. */
static void
send_log_level(struct proc *p, int verbose)
{
	struct mbuf m;

	m_init(&m, DAEMON_LOG_LEVEL, 0);
	m_add_u32(&m, verbose ? 1 : 0);
	ipc_send(p->ipc, &m);
}

static void
send_config(struct proc *p)
{
	struct mbuf m;
	int fd;

	if ((fd = config_fd()) == -1) {
		log_warn("config descriptor for %s", proc_name(p->id));
		return;
	}
	m_init(&m, DAEMON_CONFIG, 0);
	m_add_fd(&m, fd);
	m_add_str(&m, mrd->conf_path);
	ipc_send(p->ipc, &m);
}

static void
send_fd(struct proc *p, uint32_t type, uint32_t arg, int fd)
{
	struct mbuf m;

	m_init(&m, type, 0);
	m_add_u32(&m, arg);
	m_add_fd(&m, fd);
	ipc_send(p->ipc, &m);
}

/* Give `p` a fresh socket to each running peer it links with. */
static void
wire_peers(struct proc *p)
{
	struct proc *o;
	size_t i;
	int sv[2];
	enum proc_id other;

	for (i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		if (links[i][0] == p->id)
			other = links[i][1];
		else if (links[i][1] == p->id)
			other = links[i][0];
		else
			continue;
		o = &mrd->procs[other];
		if (o->pid == 0 || o->ipc == NULL)
			continue;
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
			log_warn("socketpair %s-%s", proc_name(p->id), proc_name(other));
			continue;
		}
		send_fd(p, DAEMON_PEER, other, sv[0]);
		send_fd(o, DAEMON_PEER, p->id, sv[1]);
	}
}

static const char *
daemon_dir(void)
{
	const char *d = getenv("MAILROOT_LIBEXECDIR");

	return (d && *d) ? d : PKGLIBEXECDIR;
}

static int
proc_start(struct proc *p)
{
	char path[4096], chroot_dir[4096];
	const char *argv[12];
	const char *user = NULL, *group = NULL;
	int sv[2], argc = 0, nullfd;
	sigset_t all, saved_mask;
	size_t i;
	pid_t pid;

	if (snprintf(path, sizeof(path), "%s/%s", daemon_dir(), proc_name(p->id)) >=
	    (int)sizeof(path))
		return -1;
	argv[argc++] = proc_name(p->id);
	if (mrd->foreground || mrd->conf->log_file[0])
		argv[argc++] = "-d";
	if (mrd->verbose)
		argv[argc++] = "-v";
	if (mrd->ids.privileged) {
		switch (p->id) {
		case PROC_SMTPD:
		case PROC_DELIVERD:
			/* Network daemons: unprivileged, in the empty chroot. */
			user = mrd->conf->smtpd_user;
			if (mailroot_path(mrd->conf, MR_EMPTY, chroot_dir,
			    sizeof(chroot_dir)) == -1)
				return -1;
			argv[argc++] = "-r";
			argv[argc++] = chroot_dir;
			break;
		case PROC_QUEUED:
			user = mrd->conf->queued_user;
			break;
		case PROC_PICKUPD:
			user = mrd->conf->pickupd_user;
			group = mrd->conf->mailroot_group;
			break;
		default:
			return -1;
		}
		argv[argc++] = "-u";
		argv[argc++] = user;
		if (group) {
			argv[argc++] = "-g";
			argv[argc++] = group;
		}
	}
	argv[argc] = NULL;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("socketpair for %s", proc_name(p->id));
		return -1;
	}
	/*
	 * Until execv() the child has our libevent signal handlers: a SIGTERM
	 * then would be taken for ours and lost.  Block signals across fork; the
	 * child restores the default dispositions before it unblocks them.
	 */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &saved_mask);
	switch ((pid = fork())) {
	case -1:
		log_warn("fork %s", proc_name(p->id));
		sigprocmask(SIG_SETMASK, &saved_mask, NULL);
		close(sv[0]);
		close(sv[1]);
		return -1;
	case 0:
		for (i = 1; i < NSIG; i++)
			signal((int)i, SIG_DFL);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		/* Child: fd 3 is the supervisor link; nothing else is inherited. */
		if (dup2(sv[1], DAEMON_PARENT_FD) == -1 ||
		    fcntl(DAEMON_PARENT_FD, F_SETFD, 0) == -1)
			_exit(127);
		nullfd = open("/dev/null", O_RDWR);
		if (nullfd != -1) {
			dup2(nullfd, STDIN_FILENO);
			dup2(nullfd, STDOUT_FILENO);
			if (!mrd->foreground && !mrd->conf->log_file[0])
				dup2(nullfd, STDERR_FILENO);
		}
		for (i = 0; i < (size_t)sysconf(_SC_OPEN_MAX) && i < 1024; i++)
			if (i > DAEMON_PARENT_FD)
				close((int)i);
		execv(path, (char *const *)argv);
		fprintf(stderr, "mailrootd: exec %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	sigprocmask(SIG_SETMASK, &saved_mask, NULL);
	close(sv[1]);
	p->pid = pid;
	p->ready = 0;
	p->started_ms = now_ms();
	p->ipc = ipc_new(mrd->base, sv[0], proc_name(p->id), proc_dispatch, proc_closed, p);
	if (p->ipc == NULL) {
		log_warnx("cannot link to %s", proc_name(p->id));
		kill(pid, SIGKILL);
		return -1;
	}
	log_debug("started %s pid %ld", proc_name(p->id), (long)pid);
	send_config(p);
	if (p->id == PROC_SMTPD) {
		tls_send(p->ipc);
		w3c_send(p->ipc);
	}
	if (p->id == PROC_DELIVERD)
		ca_send(p->ipc, mrd->conf);
	if (p->id == PROC_SMTPD)
		for (i = 0; i < mrd->nlisten; i++) {
			int fd = dup(mrd->listen_fds[i]);

			if (fd == -1)
				log_warn("dup listener");
			else
				send_fd(p, DAEMON_LISTENER, (uint32_t)i, fd);
		}
	wire_peers(p);
	ipc_send_empty(p->ipc, DAEMON_GO, 0);
	if (p->id == PROC_SMTPD && mrd->paused)
		ipc_send_empty(p->ipc, DAEMON_PAUSE, 0);
	if (mrd->log_override >= 0)
		send_log_level(p, mrd->log_override);
	return 0;
}

void
proc_start_all(void)
{
	size_t i;

	for (i = 0; i < sizeof(start_order) / sizeof(start_order[0]); i++)
		if (proc_start(&mrd->procs[start_order[i]]) == -1)
			mrd_ready_report("could not start a daemon");
}

static void
proc_restart_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct proc *p = arg;

	(void)fd;
	(void)ev;
	if (mrd->state == SUITE_STOPPING || p->pid != 0)
		return;
	p->restarts++;
	log_info("restarting %s (restart %u)", proc_name(p->id), p->restarts);
	if (proc_start(p) == -1) {
		struct timeval tv = { (time_t)(p->backoff_ms / 1000),
		    (suseconds_t)(p->backoff_ms % 1000) * 1000 };

		evtimer_add(p->restart_ev, &tv);
		p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ?
		    BACKOFF_MAX_MS : p->backoff_ms * 2;
	}
}

/* A daemon exited: log why, and schedule its restart. */
static void
proc_exited(struct proc *p, int status)
{
	struct timeval tv;
	uint64_t lived = now_ms() - p->started_ms;
	char how[64];
	pid_t pid = p->pid;

	if (WIFSIGNALED(status))
		snprintf(how, sizeof(how), "killed by signal %d", WTERMSIG(status));
	else
		snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
	p->pid = 0;
	p->ready = 0;
	if (p->ipc) {
		ipc_close(p->ipc);
		p->ipc = NULL;
	}
	if (mrd->state == SUITE_STOPPING) {
		log_debug("%s %s", proc_name(p->id), how);
		return;
	}
	if (mrd->state == SUITE_STARTING) {
		char msg[128];

		snprintf(msg, sizeof(msg), "%s %s during start-up", proc_name(p->id), how);
		log_warnx("%s", msg);
		mrd_ready_report(msg);
		return;
	}
	if (lived >= HEALTHY_AFTER_MS)
		p->backoff_ms = BACKOFF_MIN_MS;
	log_warnx("%s (pid %ld) %s after %llu ms; restarting in %llu ms",
	    proc_name(p->id), (long)pid, how, (unsigned long long)lived,
	    (unsigned long long)p->backoff_ms);
	tv.tv_sec = (time_t)(p->backoff_ms / 1000);
	tv.tv_usec = (suseconds_t)(p->backoff_ms % 1000) * 1000;
	evtimer_add(p->restart_ev, &tv);
	p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
	    p->backoff_ms * 2;
}

void
proc_reap(void)
{
	pid_t pid;
	int status, i;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < PROC_MAX; i++)
			if (mrd->procs[i].pid == pid) {
				proc_exited(&mrd->procs[i], status);
				break;
			}
	}
	if (mrd->state == SUITE_STOPPING)
		mrd_stopped_check();
}

static void
proc_dispatch(struct ipc *ipc, struct ipc_msg *msg, void *arg)
{
	struct proc *p = arg;
	const char *why;
	char buf[300];

	(void)ipc;
	switch (msg->type) {
	case SUPERVISOR_READY:
		p->ready = 1;
		log_debug("%s ready", proc_name(p->id));
		if (mrd->state == SUITE_STARTING && proc_all_ready()) {
			mrd->state = SUITE_RUNNING;
			mrd_ready_report(NULL);
		}
		break;
	case SUPERVISOR_SESSIONS:
		if (p->id != PROC_SMTPD)
			goto bad;
		sessions_answer(msg);
		break;
	case SUPERVISOR_KILLED:
		if (p->id != PROC_SMTPD)
			goto bad;
		sessions_killed(msg);
		break;
	case SUPERVISOR_STATS:
		stats_answer(p, msg);
		break;
	case SUPERVISOR_QUEUE_LIST:
	case SUPERVISOR_QUEUE_SHOW:
	case SUPERVISOR_QUEUE_BADMAIL:
	case SUPERVISOR_QUEUE_DONE:
		if (p->id != PROC_QUEUED)
			goto bad;
		queue_answer(msg);
		break;
	case SUPERVISOR_FAILED:
		if (m_get_str(msg, &why, 256) == -1)
			why = "(no reason given)";
		snprintf(buf, sizeof(buf), "%s cannot start: %s", proc_name(p->id), why);
		log_warnx("%s", buf);
		if (mrd->state == SUITE_STARTING)
			mrd_ready_report(buf);
		break;
	case SUPERVISOR_AUTH_CHECK:
		if (p->id != PROC_SMTPD) {
			explicit_bzero((void *)(uintptr_t)msg->data, msg->len);
			goto bad;
		}
		auth_check(p, msg);
		break;
	default:
		goto bad;
	}
	return;
bad:
	/*
	 * Only a broken or compromised daemon sends what is not its to send:
	 * it is killed, and restarted as if it had crashed.
	 */
	log_warnx("%s sent an unexpected %s: dropping its link, killing pid %ld",
	    proc_name(p->id), proto_type_name(msg->type), (long)p->pid);
	ipc_close(ipc);
	if (p->pid > 0)
		kill(p->pid, SIGKILL);
}

static void
proc_closed(struct ipc *ipc, void *arg)
{
	struct proc *p = arg;

	(void)ipc;
	/* The exit itself is handled on SIGCHLD. */
	p->ipc = NULL;
	if (p->id == PROC_SMTPD)
		sessions_smtpd_gone();
	stats_proc_gone(p);
	if (p->id == PROC_QUEUED)
		queue_queued_gone();
}

void
proc_signal_all(int sig)
{
	int i;

	for (i = 0; i < PROC_MAX; i++) {
		evtimer_del(mrd->procs[i].restart_ev);
		if (mrd->procs[i].pid > 0)
			kill(mrd->procs[i].pid, sig);
	}
}

int
proc_running_count(void)
{
	int i, n = 0;

	for (i = 0; i < PROC_MAX; i++)
		if (mrd->procs[i].pid > 0)
			n++;
	return n;
}

int
proc_all_ready(void)
{
	size_t i;

	for (i = 0; i < sizeof(start_order) / sizeof(start_order[0]); i++)
		if (!mrd->procs[start_order[i]].ready)
			return 0;
	return 1;
}

void
proc_send_config_all(void)
{
	int i;

	for (i = 0; i < PROC_MAX; i++)
		if (mrd->procs[i].ipc)
			send_config(&mrd->procs[i]);
}

void
proc_send_pause(int paused)
{
	struct proc *p = &mrd->procs[PROC_SMTPD];

	if (p->ipc)
		ipc_send_empty(p->ipc, paused ? DAEMON_PAUSE : DAEMON_RESUME, 0);
}

void
proc_send_log_level(int verbose)
{
	int i;

	mrd->log_override = verbose;
	for (i = 0; i < PROC_MAX; i++)
		if (mrd->procs[i].ipc)
			send_log_level(&mrd->procs[i], verbose);
}
