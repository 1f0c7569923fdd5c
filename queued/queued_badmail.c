/*
 * queued_badmail.c - Badmail/ (queued, as _smtpq).
 *
 * What can be neither delivered nor returned, and Pickup files that are not
 * valid messages, end here as <id>.BAD (the message as it was) and <id>.BDR
 * (a short report saying why), both fsync'd before the producer may remove
 * its original.  Names and reasons from pickupd are untrusted text: they are
 * escaped before they reach a log line or a report.
 */
#include <sys/types.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "ipc.h"
#include "log.h"
#include "queued.h"
#include "util.h"

#define BADMAIL_COPY_MAX	(64ULL * 1024 * 1024)

/* Write one Badmail file durably under a temporary name, then rename it in. */
static int
write_one(const char *name, int content_fd, const char *text, int *truncated)
{
	char tmp[QUEUEID_LEN + 16];
	int fd, saved;

	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	fd = openat(qdirs.badmail, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0640);
	if (fd == -1)
		return -1;
	if ((text && write_all(fd, text, strlen(text)) == -1) ||
	    (content_fd != -1 && copy_content(content_fd, fd, BADMAIL_COPY_MAX,
	    truncated) == -1) || fsync(fd) == -1) {
		saved = errno;
		close(fd);
		(void)unlinkat(qdirs.badmail, tmp, 0);
		errno = saved;
		return -1;
	}
	if (close(fd) == -1 || renameat(qdirs.badmail, tmp, qdirs.badmail, name) == -1) {
		saved = errno;
		(void)unlinkat(qdirs.badmail, tmp, 0);
		errno = saved;
		return -1;
	}
	return 0;
}

int
badmail_write(const char *id, int content_fd, const char *reason, char *why,
    size_t whysz)
{
	char name[QUEUEID_LEN + 8], *report, date[64];
	size_t reportsz = strlen(reason) + CONF_NAME_MAX + 256;
	struct tm tm;
	time_t now = time(NULL);
	int truncated = 0;

	snprintf(name, sizeof(name), "%s.BAD", id);
	if (write_one(name, content_fd, content_fd == -1 ? "" : NULL, &truncated) == -1) {
		snprintf(why, whysz, "Badmail/%s: %s", name, strerror(errno));
		return -1;
	}
	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	if ((report = malloc(reportsz)) == NULL) {
		snprintf(why, whysz, "out of memory");
		return -1;
	}
	snprintf(report, reportsz,
	    "Queue-ID: %s\r\nDate: %s\r\nReporting-MTA: %s\r\nReason: %s\r\n%s",
	    id, date, env->conf->hostname, reason,
	    truncated ? "Note: the .BAD copy was truncated at 64 MiB.\r\n" : "");
	snprintf(name, sizeof(name), "%s.BDR", id);
	if (write_one(name, -1, report, &truncated) == -1) {
		snprintf(why, whysz, "Badmail/%s: %s", name, strerror(errno));
		free(report);
		/* No copy without its report: the caller retries both. */
		snprintf(name, sizeof(name), "%s.BAD", id);
		(void)unlinkat(qdirs.badmail, name, 0);
		return -1;
	}
	free(report);
	if (fsync(qdirs.badmail) == -1) {
		snprintf(why, whysz, "fsync Badmail/: %s", strerror(errno));
		return -1;
	}
	queued_stats.badmail++;
	return 0;
}

void
badmail_from_producer(struct producer *p, struct ipc_msg *msg)
{
	const char *name, *reason;
	char id[QUEUEID_LEN + 1], ename[256], ereason[1024], text[1400], why[256];
	struct mbuf m;
	int fd = msg->fd;

	msg->fd = -1;
	if (fd == -1 || m_get_str(msg, &name, 255) == -1 ||
	    m_get_str(msg, &reason, 255) == -1 || m_end(msg) == -1) {
		if (fd != -1)
			close(fd);
		log_warnx("%s sent a malformed Badmail request: dropping the link",
		    proc_name(p->id));
		ipc_close(p->ipc);
		return;
	}
	log_escape(ename, sizeof(ename), name, strlen(name));
	log_escape(ereason, sizeof(ereason), reason, strlen(reason));
	snprintf(text, sizeof(text), "Pickup file \"%s\" is not a valid message: %s",
	    ename, ereason);
	queueid_new(id);
	if (badmail_write(id, fd, text, why, sizeof(why)) == -1) {
		close(fd);
		log_warnx("%s: Badmail write failed: %s", id, why);
		producer_reply_failed(p, msg->id, 1, "cannot write Badmail");
		return;
	}
	close(fd);
	log_info("%s status=badmail source=Pickup/%s reason=\"%s\"", id, ename, ereason);
	m_init(&m, PRODUCER_BADMAIL_DONE, msg->id);
	m_add_str(&m, id);
	ipc_send(p->ipc, &m);
}
