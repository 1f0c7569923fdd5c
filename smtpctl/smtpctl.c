/*
 * smtpctl.c - the operator's control command (runs as the operator).
 * It reads the config only to find the control socket and pidfile, and
 * speaks the framed protocol of common/ipc.c to mailrootd.  `start` runs
 * mailrootd, which returns once the suite serves or says why it cannot.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <err.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ipc.h"
#include "log.h"
#include "proto.h"

#define STOP_WAIT_SEC	30

static const char *conf_file = CONF_DEFAULT_FILE;
static struct config *conf;

static void
ignore_report(const char *msg, void *arg)
{
	(void)msg;
	(void)arg;
}

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: smtpctl [-f file] start | stop | pause | resume | "
	    "reload | status | show sessions\n");
	exit(2);
}

/* Connect and greet; -1 (errno set) when no mailrootd answers. */
static int
ctl_connect(void)
{
	struct sockaddr_un sun;
	struct ipc_reader r;
	struct ipc_msg msg;
	struct mbuf m;
	const char *text;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, conf->control_socket, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path))
		errx(1, "control socket path too long");
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		err(1, "socket");
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		int saved = errno;

		/* Only "nobody listens there" means stopped; anything else is an error. */
		if (saved != ENOENT && saved != ECONNREFUSED)
			errx(1, "%s: %s", conf->control_socket, strerror(saved));
		close(fd);
		errno = saved;
		return -1;
	}
	m_init(&m, CTL_HELLO, 1);
	m_add_u32(&m, PROTO_VERSION);
	ipc_reader_init(&r);
	if (ipc_send_sync(fd, &m) == -1 || ipc_recv_sync(fd, &r, &msg) != 1)
		errx(1, "%s: no answer from mailrootd", conf->control_socket);
	if (msg.type != CLIENT_OK) {
		if (m_get_str(&msg, &text, 1024) == -1)
			text = "refused";
		errx(1, "%s", text);
	}
	ipc_reader_clear(&r);
	return fd;
}

/* Send one request and print the text answer; returns the exit status. */
static int
ctl_simple(int fd, uint32_t type)
{
	struct ipc_reader r;
	struct ipc_msg msg;
	struct mbuf m;
	const char *text;
	int ret;

	m_init(&m, type, 2);
	ipc_reader_init(&r);
	if (ipc_send_sync(fd, &m) == -1 || ipc_recv_sync(fd, &r, &msg) != 1)
		errx(1, "no answer from mailrootd");
	if (m_get_str(&msg, &text, 65536) == -1)
		text = "(malformed answer)";
	ret = msg.type == CLIENT_OK ? 0 : 1;
	if (ret == 0)
		printf("%s\n", text);
	else
		fprintf(stderr, "smtpctl: %s\n", text);
	ipc_reader_clear(&r);
	return ret;
}

static int
cmd_status(void)
{
	struct ipc_reader r;
	struct ipc_msg msg;
	struct mbuf m;
	const char *state, *name;
	uint32_t pid, n, dpid, restarts, i;
	int fd;

	if ((fd = ctl_connect()) == -1) {
		printf("stopped\n");
		return 3;
	}
	m_init(&m, CTL_STATUS, 2);
	ipc_reader_init(&r);
	if (ipc_send_sync(fd, &m) == -1 || ipc_recv_sync(fd, &r, &msg) != 1 ||
	    msg.type != CLIENT_STATUS || m_get_str(&msg, &state, 64) == -1 ||
	    m_get_u32(&msg, &pid) == -1 || m_get_u32(&msg, &n) == -1 || n > PROC_MAX)
		errx(1, "malformed status from mailrootd");
	printf("%s\n", state);
	printf("  %-10s %8u\n", "mailrootd", pid);
	for (i = 0; i < n; i++) {
		if (m_get_str(&msg, &name, 64) == -1 || m_get_u32(&msg, &dpid) == -1 ||
		    m_get_u32(&msg, &restarts) == -1)
			errx(1, "malformed status from mailrootd");
		if (dpid)
			printf("  %-10s %8u  restarts %u\n", name, dpid, restarts);
		else
			printf("  %-10s %8s  restarts %u\n", name, "down", restarts);
	}
	ipc_reader_clear(&r);
	close(fd);
	return 0;
}

/* The sessions smtpd serves: one line each (FEATURES O2). */
static int
cmd_show_sessions(void)
{
	struct ipc_reader r;
	struct ipc_msg msg;
	struct mbuf m;
	const char *addr, *helo, *user, *state, *text;
	uint32_t total, n, i, id, tls;
	uint64_t since, bytes;
	char when[32], eaddr[64 * 4 + 1], ehelo[255 * 4 + 1], euser[255 * 4 + 1];
	char estate[31 * 4 + 1];
	struct tm tm;
	time_t t;
	int fd;

	if ((fd = ctl_connect()) == -1)
		errx(1, "mailroot is not running (%s: %s)", conf->control_socket,
		    strerror(errno));
	m_init(&m, CTL_SESSIONS, 2);
	ipc_reader_init(&r);
	if (ipc_send_sync(fd, &m) == -1 || ipc_recv_sync(fd, &r, &msg) != 1)
		errx(1, "no answer from mailrootd");
	if (msg.type == CLIENT_FAIL) {
		if (m_get_str(&msg, &text, 1024) == -1)
			text = "refused";
		errx(1, "%s", text);
	}
	if (msg.type != CLIENT_SESSIONS || m_get_u32(&msg, &total) == -1 ||
	    m_get_u32(&msg, &n) == -1 || n > total)
		errx(1, "malformed answer from mailrootd");
	printf("%-8s %-39s %-10s %-19s %-4s %-19s %s\n", "ID", "CLIENT", "STATE",
	    "SINCE", "TLS", "USER", "BYTES HELO");
	for (i = 0; i < n; i++) {
		if (m_get_u32(&msg, &id) == -1 || m_get_str(&msg, &addr, 63) == -1 ||
		    m_get_str(&msg, &helo, 255) == -1 || m_get_str(&msg, &user, 255) == -1 ||
		    m_get_u32(&msg, &tls) == -1 || m_get_u64(&msg, &since) == -1 ||
		    m_get_str(&msg, &state, 31) == -1 || m_get_u64(&msg, &bytes) == -1)
			errx(1, "malformed answer from mailrootd");
		t = (time_t)since;
		if (localtime_r(&t, &tm) == NULL ||
		    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
			strlcpy(when, "?", sizeof(when));
		/* smtpd faces the network: nothing of it reaches a terminal raw */
		log_escape(eaddr, sizeof(eaddr), addr, strlen(addr));
		log_escape(ehelo, sizeof(ehelo), helo, strlen(helo));
		log_escape(euser, sizeof(euser), user, strlen(user));
		log_escape(estate, sizeof(estate), state, strlen(state));
		printf("%08x %-39s %-10s %-19s %-4s %-19s %llu %s\n", id, eaddr, estate,
		    when, tls ? "yes" : "no", euser[0] ? euser : "-",
		    (unsigned long long)bytes, ehelo[0] ? ehelo : "-");
	}
	if (n < total)
		printf("%u sessions, %u shown\n", total, n);
	else
		printf("%u session%s\n", total, total == 1 ? "" : "s");
	ipc_reader_clear(&r);
	close(fd);
	return 0;
}

static const char *
mailrootd_path(void)
{
	const char *d = getenv("MAILROOT_SBINDIR");
	static char path[4096];

	snprintf(path, sizeof(path), "%s/mailrootd", (d && *d) ? d : SBINDIR);
	return path;
}

static int
cmd_start(void)
{
	const char *path = mailrootd_path();
	int fd, status;
	pid_t pid;

	if ((fd = ctl_connect()) != -1) {
		close(fd);
		fprintf(stderr, "smtpctl: mailroot is already running\n");
		return 1;
	}
	switch ((pid = fork())) {
	case -1:
		err(1, "fork");
	case 0:
		execl(path, "mailrootd", "-f", conf_file, (char *)NULL);
		fprintf(stderr, "smtpctl: exec %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			err(1, "waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "smtpctl: mailroot did not start\n");
		return 1;
	}
	printf("started\n");
	return 0;
}

static pid_t
read_pid(void)
{
	FILE *fp;
	long pid = 0;

	if ((fp = fopen(conf->pidfile, "re")) == NULL)
		return 0;
	if (fscanf(fp, "%ld", &pid) != 1)
		pid = 0;
	fclose(fp);
	return (pid_t)pid;
}

static int
cmd_stop(void)
{
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	pid_t pid = read_pid();
	int fd, ret, i;

	if ((fd = ctl_connect()) == -1) {
		printf("not running\n");
		return 0;
	}
	ret = ctl_simple(fd, CTL_STOP);
	close(fd);
	/* Return once mailrootd itself is gone, too. */
	for (i = 0; ret == 0 && pid > 0 && i < STOP_WAIT_SEC * 20; i++) {
		if (kill(pid, 0) == -1 && errno == ESRCH)
			break;
		nanosleep(&ts, NULL);
	}
	return ret;
}

int
main(int argc, char **argv)
{
	const char *cmd;
	int ch, fd;
	uint32_t type;

	while ((ch = getopt(argc, argv, "f:")) != -1) {
		switch (ch) {
		case 'f': conf_file = optarg; break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 2 && strcmp(argv[0], "show") == 0 && strcmp(argv[1], "sessions") == 0)
		cmd = "show sessions";
	else if (argc != 1)
		usage();
	else
		cmd = argv[0];
	log_init("smtpctl", 1);
	/*
	 * Only the control socket and pidfile are needed here: errors elsewhere
	 * in the file must not keep an operator from stopping the suite.  start
	 * and reload report them (mailrootd checks the file whole).
	 */
	if ((conf = config_load_lenient(conf_file, ignore_report, NULL)) == NULL)
		err(1, "%s", conf_file);
	signal(SIGPIPE, SIG_IGN);

	if (strcmp(cmd, "start") == 0)
		return cmd_start();
	if (strcmp(cmd, "stop") == 0)
		return cmd_stop();
	if (strcmp(cmd, "status") == 0)
		return cmd_status();
	if (strcmp(cmd, "show sessions") == 0)
		return cmd_show_sessions();
	if (strcmp(cmd, "pause") == 0)
		type = CTL_PAUSE;
	else if (strcmp(cmd, "resume") == 0)
		type = CTL_RESUME;
	else if (strcmp(cmd, "reload") == 0)
		type = CTL_RELOAD;
	else
		usage();
	if ((fd = ctl_connect()) == -1)
		errx(1, "mailroot is not running (%s: %s)", conf->control_socket,
		    strerror(errno));
	return ctl_simple(fd, type);
}
