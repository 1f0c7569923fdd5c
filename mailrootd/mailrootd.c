/*
 * mailrootd.c - the supervisor: main(), start-up, stop and reload (root).
 *
 * It checks the config, creates the Mailroot with the owners and modes of the
 * privilege model, binds the listeners, then starts queued, smtpd and pickupd
 * (mailrootd_proc.c) and serves the control socket (mailrootd_control.c).
 * Without -d it detaches, and the process that started it exits only once
 * every daemon said it is ready (status 0) or with the reason it could not
 * start (status 1): so `smtpctl start` can say what went wrong.
 */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>

#include "config.h"
#include "ipc.h"
#include "log.h"
#include "mailroot.h"
#include "mailrootd.h"
#include "util.h"

#define CONF_MAX_SIZE		(1024 * 1024)
#define STOP_GRACE_SEC		10

static struct mailrootd the_mrd = { .ready_fd = -1, .control_fd = -1,
    .log_override = -1 };
struct mailrootd *mrd = &the_mrd;

static int pidfile_fd = -1;
static int start_failed;
static struct event *kill_ev;

/*
 * Raise the open-file limit to its hard limit: every session of smtpd is a
 * descriptor, and the daemons inherit the limit across fork and exec.
 */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("getrlimit RLIMIT_NOFILE");
		return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
			log_warn("setrlimit RLIMIT_NOFILE");
			(void)getrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	log_info("rlimit nofile=%llu hard=%llu (inherited by the daemons)",
	    (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
}

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: mailrootd [-dnv] [-f file]\n");
	exit(1);
}

static void
report_stderr(const char *msg, void *arg)
{
	(void)arg;
	fprintf(stderr, "%s\n", msg);
}

struct report_buf {
	char	*buf;
	size_t	 sz;
};

static void
report_collect(const char *msg, void *arg)
{
	struct report_buf *rb = arg;

	if (rb->buf[0])
		strlcat(rb->buf, "\n", rb->sz);
	strlcat(rb->buf, msg, rb->sz);
	log_warnx("%s", msg);
}

/* Read the config file whole: the daemons are given exactly this text. */
static int
read_config_text(const char *path, char **text, size_t *len, char *err, size_t errsz)
{
	struct stat st;
	char *buf;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size > CONF_MAX_SIZE) {
		snprintf(err, errsz, "%s: not a regular file of at most 1 MiB", path);
		close(fd);
		return -1;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	n = read_full(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		free(buf);
		snprintf(err, errsz, "%s: short read", path);
		return -1;
	}
	buf[n] = '\0';
	*text = buf;
	*len = (size_t)n;
	return 0;
}

static struct config *
parse_text(const char *path, char *text, size_t len,
    void (*report)(const char *, void *), void *arg)
{
	struct config *c;
	FILE *fp;

	if ((fp = fmemopen(text, len ? len : 1, "r")) == NULL)
		return NULL;
	if (len == 0)
		(void)fgetc(fp);	/* an empty file: no statements */
	c = config_parse(fp, path, report, arg);
	fclose(fp);
	return c;
}

/* Take the pidfile's lock; -1 with err when another mailrootd holds it. */
static int
pidfile_take(const char *path, char *err, size_t errsz)
{
	char buf[32];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644)) == -1) {
		snprintf(err, errsz, "pidfile %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		snprintf(err, errsz, "already running (pid %s, pidfile %s)",
		    buf[0] ? buf : "?", path);
		close(fd);
		return -1;
	}
	pidfile_fd = fd;
	return 0;
}

static void
pidfile_store(void)
{
	char buf[32];
	int n;

	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(pidfile_fd, 0) == -1 || pwrite(pidfile_fd, buf, (size_t)n, 0) != n)
		log_warn("pidfile");
}

/*
 * Tell the process that started us whether we serve (error NULL) or why we
 * cannot.  On error we stop everything and exit.
 */
void
mrd_ready_report(const char *error)
{
	if (error == NULL) {
		log_info("started: %s, Mailroot %s", mrd->conf->hostname,
		    mrd->conf->mailroot);
		if (mrd->ready_fd != -1) {
			(void)write_all(mrd->ready_fd, "", 1);
			close(mrd->ready_fd);
			mrd->ready_fd = -1;
		}
		return;
	}
	log_warnx("cannot start: %s", error);
	start_failed = 1;
	if (mrd->ready_fd != -1) {
		(void)write_all(mrd->ready_fd, error, strlen(error));
		close(mrd->ready_fd);
		mrd->ready_fd = -1;
	}
	mrd_stop();
}

/* Detach; the foreground process waits on a pipe for the outcome. */
static void
daemonize(void)
{
	char buf[1024];
	int pfd[2], nullfd;
	ssize_t n;
	size_t got = 0;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) == -1)
		fatal("pipe");
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid > 0) {
		close(pfd[1]);
		while (got < sizeof(buf) - 1 &&
		    (n = read(pfd[0], buf + got, sizeof(buf) - 1 - got)) != 0) {
			if (n == -1) {
				if (errno == EINTR)
					continue;
				break;
			}
			got += (size_t)n;
		}
		buf[got] = '\0';
		if (got == 1 && buf[0] == '\0')
			_exit(0);
		fprintf(stderr, "mailrootd: %s\n", got ? buf :
		    "exited during start-up (see the log)");
		_exit(1);
	}
	close(pfd[0]);
	mrd->ready_fd = pfd[1];
	if (setsid() == -1)
		fatal("setsid");
	if ((nullfd = open("/dev/null", O_RDWR)) != -1) {
		dup2(nullfd, STDIN_FILENO);
		dup2(nullfd, STDOUT_FILENO);
		dup2(nullfd, STDERR_FILENO);
		if (nullfd > STDERR_FILENO)
			close(nullfd);
	}
}

static void
kill_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	log_warnx("daemons did not stop within %d seconds: killing them", STOP_GRACE_SEC);
	proc_signal_all(SIGKILL);
}

void
mrd_stop(void)
{
	struct timeval tv = { STOP_GRACE_SEC, 0 };

	if (mrd->state == SUITE_STOPPING || mrd->base == NULL)
		return;
	log_info("stopping");
	mrd->state = SUITE_STOPPING;
	proc_signal_all(SIGTERM);
	kill_ev = evtimer_new(mrd->base, kill_cb, NULL);
	evtimer_add(kill_ev, &tv);
	mrd_stopped_check();
}

/* Once every daemon is gone: answer `smtpctl stop`, clean up, leave the loop. */
void
mrd_stopped_check(void)
{
	if (mrd->state != SUITE_STOPPING || proc_running_count() > 0)
		return;
	(void)unlink(mrd->conf->pidfile);
	control_notify_stopped();
	control_close();
	metrics_close();
	log_info("stopped");
	event_base_loopbreak(mrd->base);
}

/*
 * Settings the running suite was built on (folders, sockets, users) cannot
 * change under it: keep the running values, and say so.
 */
static void
keep_bound_settings(struct config *c, const struct config *old)
{
	const struct {
		const char	*name;
		size_t		 off, size;
	} bound[] = {
#define B(f, n) { n, offsetof(struct config, f), sizeof(((struct config *)0)->f) }
		B(mailroot, "mailroot"),
		B(pidfile, "pidfile"),
		B(control_socket, "control-socket"),
		B(log_file, "log-file"),
		B(smtpd_user, "smtpd-user"),
		B(queued_user, "queued-user"),
		B(pickupd_user, "pickupd-user"),
		B(mailroot_group, "mailroot-group"),
#undef B
	};
	size_t i;
	char *nv;
	const char *ov;

	for (i = 0; i < sizeof(bound) / sizeof(bound[0]); i++) {
		nv = (char *)c + bound[i].off;
		ov = (const char *)old + bound[i].off;
		if (strcmp(nv, ov) == 0)
			continue;
		log_warnx("reload: %s takes effect at the next start", bound[i].name);
		strlcpy(nv, ov, bound[i].size);
	}
}

int
mrd_reload(char *why, size_t whysz)
{
	struct report_buf rb = { why, whysz };
	struct listener_conf *a, *b;
	struct config *c;
	char *text;
	size_t len;

	why[0] = '\0';
	if (read_config_text(mrd->conf_path, &text, &len, why, whysz) == -1) {
		log_warnx("reload: %s", why);
		return -1;
	}
	if ((c = parse_text(mrd->conf_path, text, len, report_collect, &rb)) == NULL) {
		free(text);
		log_warnx("reload refused; keeping the running configuration");
		return -1;
	}
	/* The password table and the TLS files are read again, or the reload fails. */
	if (auth_table_load(c, why, whysz) == -1 || tls_load(c, why, whysz) == -1 ||
	    control_configure(c, why, whysz) == -1) {
		log_warnx("reload refused: %s; keeping the running configuration", why);
		config_free(c);
		free(text);
		return -1;
	}
	/* Settings bound at start-up stay; say so rather than pretend. */
	for (a = TAILQ_FIRST(&c->listeners), b = TAILQ_FIRST(&mrd->conf->listeners);
	    a && b; a = TAILQ_NEXT(a, entry), b = TAILQ_NEXT(b, entry))
		if (a->port != b->port || strcmp(a->addr, b->addr) != 0)
			break;
	if (a || b)
		log_warnx("reload: listener changes take effect at the next start");
	keep_bound_settings(c, mrd->conf);
	if (c->metrics_port != mrd->conf->metrics_port ||
	    strcmp(c->metrics_addr, mrd->conf->metrics_addr) != 0) {
		log_warnx("reload: metrics listen takes effect at the next start");
		strlcpy(c->metrics_addr, mrd->conf->metrics_addr, sizeof(c->metrics_addr));
		c->metrics_port = mrd->conf->metrics_port;
		c->metrics_line = mrd->conf->metrics_line;
	}
	free(mrd->conf_text);
	mrd->conf_text = text;
	mrd->conf_len = len;
	config_free(mrd->conf);
	mrd->conf = c;
	proc_send_config_all();
	tls_send(mrd->procs[PROC_SMTPD].ipc);
	w3c_send(mrd->procs[PROC_SMTPD].ipc);
	ca_send(mrd->procs[PROC_DELIVERD].ipc, mrd->conf);
	log_info("configuration reloaded from %s", mrd->conf_path);
	return 0;
}

static void
signal_cb(evutil_socket_t sig, short ev, void *arg)
{
	char why[1024];

	(void)ev;
	(void)arg;
	switch (sig) {
	case SIGCHLD:
		proc_reap();
		break;
	case SIGHUP:
		(void)mrd_reload(why, sizeof(why));
		break;
	case SIGTERM:
	case SIGINT:
		mrd_stop();
		break;
	}
}

int
main(int argc, char **argv)
{
	const char *file = CONF_DEFAULT_FILE;
	static const int sigs[] = { SIGCHLD, SIGHUP, SIGTERM, SIGINT };
	const struct listener_conf *l;
	char err[1024], *text;
	int ch, check_only = 0, logfd;
	size_t len, i;

	while ((ch = getopt(argc, argv, "df:nv")) != -1) {
		switch (ch) {
		case 'd': mrd->foreground = 1; break;
		case 'f': file = optarg; break;
		case 'n': check_only = 1; break;
		case 'v': mrd->verbose++; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("mailrootd", 1);
	log_setverbose(mrd->verbose);

	if (realpath(file, mrd->conf_path) == NULL) {
		fprintf(stderr, "mailrootd: %s: %s\n", file, strerror(errno));
		return 1;
	}
	if (read_config_text(mrd->conf_path, &text, &len, err, sizeof(err)) == -1) {
		fprintf(stderr, "mailrootd: %s\n", err);
		return 1;
	}
	if ((mrd->conf = parse_text(mrd->conf_path, text, len, report_stderr, NULL)) == NULL) {
		fprintf(stderr, "mailrootd: %s: configuration has errors\n", mrd->conf_path);
		return 1;
	}
	mrd->conf_text = text;
	mrd->conf_len = len;
	if (mailroot_ids(mrd->conf, &mrd->ids, err, sizeof(err)) == -1) {
		fprintf(stderr, "mailrootd: %s\n", err);
		return 1;
	}
	if (tls_load(mrd->conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "mailrootd: %s\n", err);
		return 1;
	}
	if (check_only) {
		/* The password table too: its bad lines are warned about. */
		if (auth_table_load(mrd->conf, err, sizeof(err)) == -1) {
			fprintf(stderr, "mailrootd: %s\n", err);
			return 1;
		}
		printf("%s: configuration OK\n", mrd->conf_path);
		return 0;
	}
	if (mrd->conf->log_verbose)
		log_setverbose(1);
	if (mailroot_setup(mrd->conf, &mrd->ids, err, sizeof(err)) == -1 ||
	    pidfile_take(mrd->conf->pidfile, err, sizeof(err)) == -1) {
		fprintf(stderr, "mailrootd: %s\n", err);
		return 1;
	}
	if (listen_open(mrd->conf, &mrd->listen_fds, &mrd->nlisten, err, sizeof(err)) == -1) {
		fprintf(stderr, "mailrootd: %s\n", err);
		(void)unlink(mrd->conf->pidfile);
		return 1;
	}
	if (metrics_open(mrd->conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "mailrootd: metrics: %s\n", err);
		listen_close(mrd->listen_fds, mrd->nlisten);
		(void)unlink(mrd->conf->pidfile);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	if (!mrd->foreground)
		daemonize();
	if (mrd->conf->log_file[0]) {
		logfd = open(mrd->conf->log_file, O_WRONLY | O_APPEND | O_CREAT |
		    O_CLOEXEC | O_NOFOLLOW, 0640);
		if (logfd == -1) {
			snprintf(err, sizeof(err), "log-file %s: %s", mrd->conf->log_file,
			    strerror(errno));
			mrd_ready_report(err);
			return 1;
		}
		dup2(logfd, STDERR_FILENO);
		close(logfd);
		log_init("mailrootd", 1);
	} else
		log_init("mailrootd", mrd->foreground);
	pidfile_store();
	raise_nofile();
	TAILQ_FOREACH(l, &mrd->conf->listeners, entry)
		log_info("listening on %s port %u", l->addr, l->port);

	/* The password table: read here, never by smtpd. */
	if (auth_table_load(mrd->conf, err, sizeof(err)) == -1) {
		mrd_ready_report(err);
		(void)unlink(mrd->conf->pidfile);
		return 1;
	}
	if ((mrd->base = event_base_new()) == NULL)
		fatalx("event_base_new");
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		evsignal_add(evsignal_new(mrd->base, sigs[i], signal_cb, NULL), NULL);
	if (control_open(mrd->conf->control_socket, err, sizeof(err)) == -1 ||
	    control_configure(mrd->conf, err, sizeof(err)) == -1) {
		control_close();
		mrd_ready_report(err);
		(void)unlink(mrd->conf->pidfile);
		return 1;
	}
	metrics_start();
	proc_init();
	mrd->state = SUITE_STARTING;
	proc_start_all();
	w3c_timer();
	event_base_dispatch(mrd->base);
	listen_close(mrd->listen_fds, mrd->nlisten);
	auth_table_free();
	return start_failed ? 1 : 0;
}
