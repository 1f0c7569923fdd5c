/*
 * smtpctl.c - the operator's control command (runs as the operator).
 * It reads the config only to find the control socket and pidfile, and
 * speaks the framed protocol of common/ipc.c to mailrootd.  `start` runs
 * mailrootd, which returns once the suite serves or says why it cannot;
 * `check` runs `mailrootd -n`, the one full check of a file.  Trust: what
 * mailrootd relays from smtpd came from the network and is printed
 * escaped (terminal) or JSON-escaped (--json).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctl_client.h"
#include "ipc.h"
#include "log.h"
#include "proto.h"

#define STOP_WAIT_SEC	30

static const char *conf_file = CONF_DEFAULT_FILE;
static struct config *conf;
static int json;		/* --json: status, show sessions, check */

static void
ignore_report(const char *msg, void *arg)
{
	(void)msg;
	(void)arg;
}

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: smtpctl [-f file] [--json] command\n"
	    "commands: start | stop | pause | resume | reload | status | check |\n"
	    "          show sessions | show stats | kill session ID|all |\n"
	    "          log verbose|brief\n");
	exit(2);
}

/* Connect and greet: the descriptor, or -1 when the suite is stopped. */
static int
connect_ctl(void)
{
	int fd = ctl_connect(conf);

	if (fd == -2)
		errx(1, "%s: %s", conf->control_socket, strerror(errno));
	return fd;
}

/* Send one request and print the text answer; returns the exit status. */
static int
ctl_request(int fd, struct mbuf *m)
{
	struct ipc_reader r;
	struct ipc_msg msg;
	const char *text;
	int ret;

	ipc_reader_init(&r);
	if (ipc_send_sync(fd, m) == -1 || ipc_recv_sync(fd, &r, &msg) != 1)
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
ctl_simple(int fd, uint32_t type)
{
	struct mbuf m;

	m_init(&m, type, 2);
	return ctl_request(fd, &m);
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

	if ((fd = connect_ctl()) == -1) {
		printf(json ? "{\"state\":\"stopped\"}\n" : "stopped\n");
		return 3;
	}
	m_init(&m, CTL_STATUS, 2);
	ipc_reader_init(&r);
	if (ipc_send_sync(fd, &m) == -1 || ipc_recv_sync(fd, &r, &msg) != 1 ||
	    msg.type != CLIENT_STATUS || m_get_str(&msg, &state, 64) == -1 ||
	    m_get_u32(&msg, &pid) == -1 || m_get_u32(&msg, &n) == -1 || n > PROC_MAX)
		errx(1, "malformed status from mailrootd");
	if (json) {
		printf("{\"state\":");
		json_str(state);
		printf(",\"daemons\":[{\"name\":\"mailrootd\",\"pid\":%u}", pid);
	} else {
		printf("%s\n", state);
		printf("  %-10s %8u\n", "mailrootd", pid);
	}
	for (i = 0; i < n; i++) {
		if (m_get_str(&msg, &name, 64) == -1 || m_get_u32(&msg, &dpid) == -1 ||
		    m_get_u32(&msg, &restarts) == -1)
			errx(1, "malformed status from mailrootd");
		if (json) {
			printf(",{\"name\":");
			json_str(name);
			if (dpid)
				printf(",\"pid\":%u", dpid);
			else
				printf(",\"pid\":null");
			printf(",\"restarts\":%u}", restarts);
		} else if (dpid)
			printf("  %-10s %8u  restarts %u\n", name, dpid, restarts);
		else
			printf("  %-10s %8s  restarts %u\n", name, "down", restarts);
	}
	if (json)
		printf("]}\n");
	ipc_reader_clear(&r);
	close(fd);
	return 0;
}

/* One row of the sessions table, escaped for a terminal. */
struct srow {
	uint32_t	 id;
	char		 addr[64 * 4 + 1];
	char		 helo[255 * 4 + 1];
	char		 user[255 * 4 + 1];
	char		 state[31 * 4 + 1];
	char		 when[32];
	uint64_t	 since, bytes;
	uint32_t	 tls;
};

enum { COL_ID, COL_CLIENT, COL_STATE, COL_SINCE, COL_TLS, COL_USER, COL_BYTES,
	COL_HELO, NCOLS };

static void
widen(int *w, const char *text)
{
	int l = (int)strlen(text);

	if (l > *w)
		*w = l;
}

/* The sessions smtpd serves: aligned columns, or JSON (FEATURES O2). */
static int
cmd_show_sessions(void)
{
	static const char *head[NCOLS] = { "ID", "CLIENT", "STATE", "SINCE", "TLS",
	    "USER", "BYTES", "HELO" };
	struct ipc_reader r;
	struct ipc_msg msg;
	struct mbuf m;
	struct srow *rows = NULL, *e;
	const char *addr, *helo, *user, *state, *text;
	uint32_t total, n, i;
	char id[16], bytes[24];
	int w[NCOLS], c, fd;
	struct tm tm;
	time_t t;

	if ((fd = connect_ctl()) == -1)
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
	if (n > 0 && (rows = calloc(n, sizeof(*rows))) == NULL)
		err(1, "sessions");
	for (c = 0; c < NCOLS; c++)
		w[c] = (int)strlen(head[c]);
	for (i = 0; i < n; i++) {
		e = &rows[i];
		if (m_get_u32(&msg, &e->id) == -1 || m_get_str(&msg, &addr, 63) == -1 ||
		    m_get_str(&msg, &helo, 255) == -1 || m_get_str(&msg, &user, 255) == -1 ||
		    m_get_u32(&msg, &e->tls) == -1 || m_get_u64(&msg, &e->since) == -1 ||
		    m_get_str(&msg, &state, 31) == -1 || m_get_u64(&msg, &e->bytes) == -1)
			errx(1, "malformed answer from mailrootd");
		t = (time_t)e->since;
		if (localtime_r(&t, &tm) == NULL ||
		    strftime(e->when, sizeof(e->when), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
			strlcpy(e->when, "?", sizeof(e->when));
		/* smtpd faces the network: nothing of it reaches a terminal raw */
		log_escape(e->addr, sizeof(e->addr), addr, strlen(addr));
		log_escape(e->helo, sizeof(e->helo), helo, strlen(helo));
		log_escape(e->user, sizeof(e->user), user, strlen(user));
		log_escape(e->state, sizeof(e->state), state, strlen(state));
		snprintf(bytes, sizeof(bytes), "%llu", (unsigned long long)e->bytes);
		widen(&w[COL_CLIENT], e->addr);
		widen(&w[COL_STATE], e->state);
		widen(&w[COL_SINCE], e->when);
		widen(&w[COL_USER], e->user);
		widen(&w[COL_BYTES], bytes);
	}
	ipc_reader_clear(&r);
	close(fd);

	if (json) {
		/* JSON strings carry the raw text, escaped by json_str */
		printf("{\"total\":%u,\"sessions\":[", total);
		for (i = 0; i < n; i++) {
			e = &rows[i];
			printf("%s{\"id\":\"%08x\",\"client\":", i ? "," : "", e->id);
			json_str(e->addr);
			printf(",\"helo\":");
			json_str(e->helo);
			printf(",\"user\":");
			json_str(e->user);
			printf(",\"tls\":%s,\"since\":%llu,\"state\":", e->tls ? "true" : "false",
			    (unsigned long long)e->since);
			json_str(e->state);
			printf(",\"bytes\":%llu}", (unsigned long long)e->bytes);
		}
		printf("]}\n");
		free(rows);
		return 0;
	}
	printf("%-8s  %-*s  %-*s  %-*s  %-3s  %-*s  %*s  %s\n", head[COL_ID],
	    w[COL_CLIENT], head[COL_CLIENT], w[COL_STATE], head[COL_STATE],
	    w[COL_SINCE], head[COL_SINCE], head[COL_TLS], w[COL_USER], head[COL_USER],
	    w[COL_BYTES], head[COL_BYTES], head[COL_HELO]);
	for (i = 0; i < n; i++) {
		e = &rows[i];
		snprintf(id, sizeof(id), "%08x", e->id);
		printf("%-8s  %-*s  %-*s  %-*s  %-3s  %-*s  %*llu  %s\n", id,
		    w[COL_CLIENT], e->addr, w[COL_STATE], e->state, w[COL_SINCE], e->when,
		    e->tls ? "yes" : "no", w[COL_USER], e->user[0] ? e->user : "-",
		    w[COL_BYTES], (unsigned long long)e->bytes, e->helo[0] ? e->helo : "-");
	}
	if (n < total)
		printf("%u sessions, %u shown\n", total, n);
	else
		printf("%u session%s\n", total, total == 1 ? "" : "s");
	free(rows);
	return 0;
}

/* smtpctl kill session ID|all: smtpd ends them with 421 4.3.2. */
static int
cmd_kill_session(const char *arg)
{
	struct ipc_reader r;
	struct ipc_msg msg;
	struct mbuf m;
	const char *text;
	unsigned long v = 0;
	char *end;
	int all = strcmp(arg, "all") == 0, fd, ret;

	if (!all) {
		errno = 0;
		v = strtoul(arg, &end, 16);
		if (*arg == '\0' || *end != '\0' || errno != 0 || v > UINT32_MAX ||
		    strchr(arg, '-') != NULL)
			errx(2, "kill session: %s: not a session id (8 hex digits, "
			    "as `smtpctl show sessions` shows) nor \"all\"", arg);
	}
	if ((fd = connect_ctl()) == -1)
		errx(1, "mailroot is not running (%s: %s)", conf->control_socket,
		    strerror(errno));
	m_init(&m, CTL_KILL_SESSION, 2);
	m_add_u32(&m, all ? 1 : 0);
	m_add_u32(&m, (uint32_t)v);
	ipc_reader_init(&r);
	if (ipc_send_sync(fd, &m) == -1 || ipc_recv_sync(fd, &r, &msg) != 1)
		errx(1, "no answer from mailrootd");
	if (m_get_str(&msg, &text, 1024) == -1)
		text = "(malformed answer)";
	ret = msg.type == CLIENT_OK ? 0 : 1;
	if (ret == 0)
		printf("%s\n", text);
	else
		fprintf(stderr, "smtpctl: %s\n", text);
	ipc_reader_clear(&r);
	close(fd);
	return ret;
}

/* smtpctl log verbose|brief. */
static int
cmd_log(const char *level)
{
	struct mbuf m;
	uint32_t v;
	int fd;

	if (strcmp(level, "verbose") == 0)
		v = 1;
	else if (strcmp(level, "brief") == 0)
		v = 0;
	else
		usage();
	if ((fd = connect_ctl()) == -1)
		errx(1, "mailroot is not running (%s: %s)", conf->control_socket,
		    strerror(errno));
	m_init(&m, CTL_LOG_LEVEL, 2);
	m_add_u32(&m, v);
	return ctl_request(fd, &m);
}

/* The counters of the daemons (FEATURES O3): aligned, or one JSON object. */
static int
cmd_show_stats(int as_json)
{
	struct ipc_reader r;
	struct ipc_msg msg;
	struct mbuf m;
	const char *name, *help, *text;
	uint32_t n, i, kind;
	uint64_t value;
	size_t w = 0, vw = 1, len;
	char num[24];
	struct {
		char		 name[64];
		uint64_t	 value;
	} *v;
	int fd;

	if ((fd = connect_ctl()) == -1)
		errx(1, "mailroot is not running (%s: %s)", conf->control_socket,
		    strerror(errno));
	m_init(&m, CTL_STATS, 2);
	ipc_reader_init(&r);
	if (ipc_send_sync(fd, &m) == -1 || ipc_recv_sync(fd, &r, &msg) != 1)
		errx(1, "no answer from mailrootd");
	if (msg.type == CLIENT_FAIL) {
		if (m_get_str(&msg, &text, 1024) == -1)
			text = "refused";
		errx(1, "%s", text);
	}
	if (msg.type != CLIENT_STATS || m_get_u32(&msg, &n) == -1 || n > 4096)
		errx(1, "malformed answer from mailrootd");
	if ((v = calloc(n ? n : 1, sizeof(*v))) == NULL)
		err(1, "calloc");
	for (i = 0; i < n; i++) {
		if (m_get_str(&msg, &name, 63) == -1 || m_get_u32(&msg, &kind) == -1 ||
		    m_get_u64(&msg, &value) == -1 || m_get_str(&msg, &help, 159) == -1)
			errx(1, "malformed answer from mailrootd");
		/* mailrootd checked the names: [a-z0-9_.] only */
		strlcpy(v[i].name, name, sizeof(v[i].name));
		v[i].value = value;
		if ((len = strlen(name)) > w)
			w = len;
		if ((len = (size_t)snprintf(num, sizeof(num), "%llu",
		    (unsigned long long)value)) > vw)
			vw = len;
	}
	if (as_json) {
		printf("{");
		for (i = 0; i < n; i++)
			printf("%s\n  \"%s\": %llu", i ? "," : "", v[i].name,
			    (unsigned long long)v[i].value);
		printf("%s}\n", n ? "\n" : "");
	} else {
		for (i = 0; i < n; i++)
			printf("%-*s  %*llu\n", (int)w, v[i].name, (int)vw,
			    (unsigned long long)v[i].value);
		if (n == 0)
			printf("no figures: no daemon answered\n");
	}
	free(v);
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

/*
 * smtpctl check: the whole check `mailrootd -n` makes (syntax with file and
 * line, users, TLS files, the password table), its messages passed on, or
 * gathered into JSON.  0 when the configuration is good, 1 when not.
 */
static int
cmd_check(void)
{
	const char *path = mailrootd_path();
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int p[2], status, first = 1;
	FILE *fp;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) == -1)
		err(1, "pipe");
	switch ((pid = fork())) {
	case -1:
		err(1, "fork");
	case 0:
		if (dup2(p[1], STDOUT_FILENO) == -1 || dup2(p[1], STDERR_FILENO) == -1)
			_exit(127);
		execl(path, "mailrootd", "-n", "-f", conf_file, (char *)NULL);
		fprintf(stderr, "smtpctl: exec %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(p[1]);
	if ((fp = fdopen(p[0], "r")) == NULL)
		err(1, "fdopen");
	if (json) {
		printf("{\"file\":");
		json_str(conf_file);
		printf(",\"messages\":[");
	}
	while ((len = getline(&line, &cap, fp)) != -1) {
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (!json) {
			/* errors to stderr, the verdict "configuration OK" to stdout */
			fprintf(strstr(line, "configuration OK") ? stdout : stderr,
			    "%s\n", line);
			continue;
		}
		printf("%s", first ? "" : ",");
		json_str(line);
		first = 0;
	}
	free(line);
	fclose(fp);
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			err(1, "waitpid");
	status = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
	if (json)
		printf("],\"ok\":%s}\n", status == 0 ? "true" : "false");
	return status;
}

static int
cmd_start(void)
{
	const char *path = mailrootd_path();
	int fd, status;
	pid_t pid;

	if ((fd = connect_ctl()) != -1) {
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

	if ((fd = connect_ctl()) == -1) {
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
	int ch, fd, i;
	uint32_t type;

	/* --json may stand anywhere among the arguments (like smtpq). */
	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--json") == 0) {
			json = 1;
			memmove(&argv[i], &argv[i + 1], sizeof(*argv) * (size_t)(argc - i));
			argc--;
			i--;
		}
	while ((ch = getopt(argc, argv, "f:")) != -1) {
		switch (ch) {
		case 'f': conf_file = optarg; break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	cmd = argv[0];
	if (argc == 2 && strcmp(cmd, "show") == 0 && strcmp(argv[1], "sessions") == 0)
		cmd = "show sessions";
	else if (argc == 3 && strcmp(cmd, "kill") == 0 && strcmp(argv[1], "session") == 0)
		cmd = "kill session";
	else if (argc == 2 && strcmp(cmd, "log") == 0)
		cmd = "log";
	else if (argc == 2 && strcmp(argv[0], "show") == 0 && strcmp(argv[1], "stats") == 0)
		cmd = "show stats";
	else if (argc != 1)
		usage();
	log_init("smtpctl", 1);
	signal(SIGPIPE, SIG_IGN);
	/* check reads the file itself, whole, whatever state it is in */
	if (strcmp(cmd, "check") == 0)
		return cmd_check();
	/*
	 * Only the control socket and pidfile are needed here: errors elsewhere
	 * in the file must not keep an operator from stopping the suite.  start
	 * and reload report them (mailrootd checks the file whole).
	 */
	if ((conf = config_load_lenient(conf_file, ignore_report, NULL)) == NULL)
		err(1, "%s", conf_file);

	if (strcmp(cmd, "start") == 0)
		return cmd_start();
	if (strcmp(cmd, "stop") == 0)
		return cmd_stop();
	if (strcmp(cmd, "status") == 0)
		return cmd_status();
	if (strcmp(cmd, "show sessions") == 0)
		return cmd_show_sessions();
	if (strcmp(cmd, "kill session") == 0)
		return cmd_kill_session(argv[2]);
	if (strcmp(cmd, "log") == 0)
		return cmd_log(argv[1]);
	if (strcmp(cmd, "show stats") == 0)
		return cmd_show_stats(json);
	if (strcmp(cmd, "pause") == 0)
		type = CTL_PAUSE;
	else if (strcmp(cmd, "resume") == 0)
		type = CTL_RESUME;
	else if (strcmp(cmd, "reload") == 0)
		type = CTL_RELOAD;
	else
		usage();
	if ((fd = connect_ctl()) == -1)
		errx(1, "mailroot is not running (%s: %s)", conf->control_socket,
		    strerror(errno));
	return ctl_simple(fd, type);
}
