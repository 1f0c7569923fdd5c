/*
 * mailrootd_w3c.c - the W3C extended log files of the listeners (mailrootd,
 * root).  smtpd is chrooted and cannot open files: for each listener with
 * "w3c-log DIRECTORY" this opens (or creates) the day's file
 * DIRECTORY/exYYMMDD.log (the UTC day, as IIS named its daily files),
 * owner root, group the mailroot group, mode 0640, writes the #Software,
 * #Version, #Date and #Fields header when the file is new, and hands the
 * descriptor to smtpd (DAEMON_W3C_LOG).  It does so when smtpd starts, at
 * each reload and just after each UTC midnight; smtpd writes whole lines
 * with O_APPEND and uses the old descriptor until the new one arrives, so a
 * change of file loses no line.  Nothing here reads what smtpd writes.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>

#include "autoconf.h"
#include "config.h"
#include "ipc.h"
#include "log.h"
#include "mailrootd.h"
#include "util.h"

/* The IIS SMTP field set, in IIS's order. */
#define W3C_FIELDS	"date time c-ip cs-username s-sitename s-computername " \
			"s-ip s-port cs-method cs-uri-stem cs-uri-query sc-status " \
			"sc-win32-status sc-bytes cs-bytes time-taken cs-version " \
			"cs-host cs(User-Agent) cs(Cookie) cs(Referer)"

static struct event *midnight_ev;

/* Open today's file of directory `dir`; -1 (logged) when it cannot be. */
static int
w3c_open(const char *dir, const struct tm *tm)
{
	char path[PATH_MAX], name[32], head[512];
	struct stat st;
	int fd, n;

	/* IIS's name: two digits of the year. */
	snprintf(name, sizeof(name), "ex%02d%02d%02d.log", tm->tm_year % 100,
	    tm->tm_mon + 1, tm->tm_mday);
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path)) {
		log_warnx("w3c-log: %s/%s: path too long", dir, name);
		return -1;
	}
	if (mkdir(dir, 0750) == -1 && errno != EEXIST) {
		log_warn("w3c-log: mkdir %s", dir);
		return -1;
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
	    O_NONBLOCK, 0640);
	if (fd == -1) {
		log_warn("w3c-log: open %s", path);
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		log_warnx("w3c-log: %s is not a regular file", path);
		close(fd);
		return -1;
	}
	if (mrd->ids.privileged && (fchown(fd, 0, mrd->ids.group_gid) == -1 ||
	    fchmod(fd, 0640) == -1))
		log_warn("w3c-log: owner and mode of %s", path);
	if (st.st_size == 0) {
		n = snprintf(head, sizeof(head), "#Software: Mailroot %s\r\n"
		    "#Version: 1.0\r\n#Date: %04d-%02d-%02d %02d:%02d:%02d\r\n"
		    "#Fields: %s\r\n", PACKAGE_VERSION, tm->tm_year + 1900,
		    tm->tm_mon + 1, tm->tm_mday, tm->tm_hour, tm->tm_min,
		    tm->tm_sec, W3C_FIELDS);
		if (n < 0 || (size_t)n >= sizeof(head) ||
		    write_all(fd, head, (size_t)n) == -1)
			log_warn("w3c-log: header of %s", path);
	}
	return fd;
}

/* Send smtpd today's file of each listener that has w3c-log. */
void
w3c_send(struct ipc *ipc)
{
	const struct listener_conf *l;
	struct mbuf m;
	struct tm tm;
	time_t now = time(NULL);
	uint32_t i = 0;
	int fd;

	if (ipc == NULL)
		return;
	gmtime_r(&now, &tm);
	/* Only the listeners bound at start-up exist in smtpd. */
	TAILQ_FOREACH(l, &mrd->conf->listeners, entry) {
		if (i >= mrd->nlisten)
			break;
		if (l->w3c_log[0] == '\0') {
			/* None (any more, after a reload): smtpd closes its file. */
			m_init(&m, DAEMON_W3C_LOG, 0);
			m_add_u32(&m, i);
			ipc_send(ipc, &m);
		} else if ((fd = w3c_open(l->w3c_log, &tm)) != -1) {
			m_init(&m, DAEMON_W3C_LOG, 0);
			m_add_u32(&m, i);
			m_add_fd(&m, fd);
			ipc_send(ipc, &m);
		}
		/* else: smtpd goes on with the file it has, if any. */
		i++;
	}
}

static void
midnight_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	w3c_send(mrd->procs[PROC_SMTPD].ipc);
	w3c_timer();
}

/* (Re)arm the timer that opens the next day's files just after UTC midnight. */
void
w3c_timer(void)
{
	struct timeval tv;
	time_t now = time(NULL);

	if (midnight_ev == NULL &&
	    (midnight_ev = evtimer_new(mrd->base, midnight_cb, NULL)) == NULL) {
		log_warnx("w3c-log: no timer: the files change only at reload");
		return;
	}
	/* One second past midnight, so that the new day is sure to have begun. */
	tv.tv_sec = 86400 - now % 86400 + 1;
	tv.tv_usec = 0;
	evtimer_add(midnight_ev, &tv);
}
