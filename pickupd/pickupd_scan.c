/*
 * pickupd_scan.c - watching Pickup/ and taking files in (pickupd, _smtpp).
 *
 * inotify tells of files closed after writing or moved in; a rescan every
 * pickup-interval seconds catches the rest (and an inotify overflow).  Each
 * file is opened without following links, must be a regular file with one
 * link, is capped at max-message-size, and is read as data (pickupd_parse.c).
 * A file is removed only after queued has committed it, or has stored it in
 * Badmail/ with the reason it is not a valid message.  Names starting with a
 * dot are temporaries of the writer and are left alone, as are files changed
 * in the last two seconds when found by a rescan (still being written).
 */
#include <sys/types.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/queue.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "mailroot.h"
#include "pickupd.h"
#include "pickupd_parse.h"
#include "queueid.h"
#include "util.h"

#define MAX_INFLIGHT	256		/* files handed to queued at once */
#define MAX_PENDING	100000		/* names waiting; a rescan finds the rest */
#define SETTLE_SEC	2		/* a rescan leaves files this fresh alone */
#define UNLIMITED_CAP	(1024ULL * 1024 * 1024)

enum job_state { J_OPENING, J_COMMITTING, J_BADMAIL };

struct job {
	TAILQ_ENTRY(job) entry;
	uint32_t	 id;
	enum job_state	 state;
	char		 name[NAME_MAX + 1];
	int		 fd;		/* the Pickup file */
	struct pickup_msg msg;
};
TAILQ_HEAD(job_list, job);

struct pending {
	TAILQ_ENTRY(pending) entry;
	int		 fresh_ok;	/* from inotify: no need to wait for it to settle */
	char		 name[];
};
TAILQ_HEAD(pending_list, pending);

static struct job_list jobs = TAILQ_HEAD_INITIALIZER(jobs);
static struct pending_list pending = TAILQ_HEAD_INITIALIZER(pending);
static size_t njobs, npending;
static int queue_full;		/* no space in the queue: one job at a time */
static int full_logged;		/* ... and said so since the last rescan */
static uint32_t next_job = 1;
static int dirfd_pickup = -1, inotify_fd = -1;
static struct event *inotify_ev, *rescan_ev, *work_ev;

static void schedule_work(void);

static struct job *
job_find(uint32_t id)
{
	struct job *j;

	TAILQ_FOREACH(j, &jobs, entry)
		if (j->id == id)
			return j;
	return NULL;
}

static int
job_busy(const char *name)
{
	struct job *j;

	TAILQ_FOREACH(j, &jobs, entry)
		if (strcmp(j->name, name) == 0)
			return 1;
	return 0;
}

static void
job_end(struct job *j)
{
	TAILQ_REMOVE(&jobs, j, entry);
	njobs--;
	if (j->fd != -1)
		close(j->fd);
	pickup_msg_free(&j->msg);
	free(j);
	schedule_work();
}

static void
pending_add(const char *name, int fresh_ok)
{
	struct pending *p;
	size_t len = strlen(name);

	if (name[0] == '.' || len > NAME_MAX || npending >= MAX_PENDING)
		return;
	if ((p = malloc(sizeof(*p) + len + 1)) == NULL)
		return;
	memcpy(p->name, name, len + 1);
	p->fresh_ok = fresh_ok;
	TAILQ_INSERT_TAIL(&pending, p, entry);
	npending++;
	schedule_work();
}

/*
 * The queue has no space (ENOSPC, EDQUOT): the names waiting are dropped, to
 * be found again by the next rescan, and until a message is committed again
 * one file at a time is tried: a full disk costs one attempt and one log
 * line per rescan, not an attempt and a line for every file each time.
 */
static void
queue_no_space(const char *name)
{
	struct pending *p;
	size_t n = npending;

	while ((p = TAILQ_FIRST(&pending)) != NULL) {
		TAILQ_REMOVE(&pending, p, entry);
		free(p);
	}
	npending = 0;
	if (!full_logged)
		log_warnx("Pickup/%s: no space in the queue; it and %zu more file(s) "
		    "wait for the next rescan", name, n);
	else
		log_debug("Pickup/%s: no space in the queue", name);
	queue_full = full_logged = 1;
}

/* Hand a file that is not a valid message to queued for Badmail/. */
static void
job_badmail(struct job *j, const char *reason)
{
	int fd;

	log_warnx("Pickup/%s is not a valid message: %s", j->name, reason);
	if ((fd = dup(j->fd)) == -1 ||
	    pickup_queue_send_badmail(j->id, fd, j->name, reason) == -1) {
		job_end(j);
		return;
	}
	j->state = J_BADMAIL;
}

static void
make_ids(char *msgid, size_t msgidsz, char *date, size_t datesz)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(msgid, msgidsz, "<%llx.%08x@%s>", (unsigned long long)ts.tv_sec *
	    1000000ULL + (unsigned long long)ts.tv_nsec / 1000, arc4random(),
	    env->conf->hostname);
	localtime_r(&ts.tv_sec, &tm);
	strftime(date, datesz, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* Open, check, read and parse one Pickup file; start its way into the queue. */
static void
job_start(struct pending *p)
{
	char msgid[300], date[64], reason[128];
	struct pickup_opts opts;
	struct stat st;
	struct job *j;
	uint64_t cap;
	char *buf;
	ssize_t n;
	int fd;

	if (job_busy(p->name))
		return;
	fd = openat(dirfd_pickup, p->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1) {
		if (errno == ELOOP) {
			log_warnx("Pickup/%s is a symbolic link: removed unread", p->name);
			(void)unlinkat(dirfd_pickup, p->name, 0);
		} else if (errno != ENOENT)
			log_warn("Pickup/%s: cannot open (files must be readable by "
			    "group %s)", p->name, env->conf->mailroot_group);
		return;
	}
	if (fstat(fd, &st) == -1) {
		log_warn("Pickup/%s: fstat", p->name);
		close(fd);
		return;
	}
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
		/* Not ours to read: a device, a directory, or a link to elsewhere. */
		if (!S_ISDIR(st.st_mode)) {
			log_warnx("Pickup/%s is not a regular file with one link: "
			    "removed unread", p->name);
			(void)unlinkat(dirfd_pickup, p->name, 0);
		}
		close(fd);
		return;
	}
	if (!p->fresh_ok && st.st_mtime > time(NULL) - SETTLE_SEC) {
		close(fd);	/* still being written, perhaps: the next rescan */
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		close(fd);
		return;
	}
	j->id = next_job++;
	j->fd = fd;
	strlcpy(j->name, p->name, sizeof(j->name));
	TAILQ_INSERT_TAIL(&jobs, j, entry);
	njobs++;

	cap = env->conf->max_message_size ? env->conf->max_message_size : UNLIMITED_CAP;
	if ((uint64_t)st.st_size > cap) {
		snprintf(reason, sizeof(reason), "larger than max-message-size "
		    "(%lld > %llu octets)", (long long)st.st_size, (unsigned long long)cap);
		job_badmail(j, reason);
		return;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		job_end(j);
		return;
	}
	n = read_full(fd, buf, (size_t)st.st_size + 1);
	if (n != st.st_size) {
		/* It changed under us: someone is still writing. */
		free(buf);
		job_end(j);
		return;
	}
	make_ids(msgid, sizeof(msgid), date, sizeof(date));
	memset(&opts, 0, sizeof(opts));
	opts.default_domain = env->conf->default_domain;
	opts.message_id = msgid;
	opts.date = date;
	opts.max_rcpts = env->conf->max_recipients;
	if (pickup_parse(buf, (size_t)n, &opts, &j->msg) == -1) {
		free(buf);
		job_badmail(j, j->msg.error);
		return;
	}
	free(buf);
	if (pickup_queue_send_open(j->id, j->msg.sender, j->msg.rcpts, j->msg.nrcpts) == -1) {
		job_end(j);
		return;
	}
	j->state = J_OPENING;
}

void
scan_opened(uint32_t id, int fd, const char *qid)
{
	char date[64], hdr[512];
	struct job *j = job_find(id);
	struct tm tm;
	time_t now = time(NULL);
	int n, ok, saved = 0;

	if (j == NULL || j->state != J_OPENING) {
		close(fd);
		return;
	}
	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	n = snprintf(hdr, sizeof(hdr), "Received: by %s (Mailroot pickupd)\r\n"
	    "\tid %s; %s\r\n", env->conf->hostname, qid, date);
	ok = write_all(fd, hdr, (size_t)n) == 0;
	while (ok && evbuffer_get_length(j->msg.content) > 0)
		if (evbuffer_write(j->msg.content, fd) == -1 && errno != EINTR)
			ok = 0;
	if (!ok)
		saved = errno;
	if (close(fd) == -1 && ok) {
		ok = 0;
		saved = errno;
	}
	if (!ok) {
		errno = saved;
		if (saved == ENOSPC || saved == EDQUOT)
			queue_no_space(j->name);
		else
			log_warn("Pickup/%s: writing into the queue (left for a retry)",
			    j->name);
		/* queued removes the half-written file now, not when the link goes. */
		pickup_queue_send_abort(qid);
		job_end(j);
		return;
	}
	if (pickup_queue_send_commit(j->id, qid, j->msg.sender, j->msg.rcpts,
	    j->msg.nrcpts) == -1) {
		job_end(j);
		return;
	}
	j->state = J_COMMITTING;
}

void
scan_committed(uint32_t id)
{
	struct job *j = job_find(id);

	if (j == NULL || j->state != J_COMMITTING)
		return;
	queue_full = 0;		/* space again: back to MAX_INFLIGHT */
	if (unlinkat(dirfd_pickup, j->name, 0) == -1)
		log_warn("Pickup/%s: committed but cannot remove it", j->name);
	job_end(j);
}

void
scan_badmail_done(uint32_t id, const char *badmail_id)
{
	struct job *j = job_find(id);

	if (j == NULL || j->state != J_BADMAIL)
		return;
	queue_full = 0;
	log_info("Pickup/%s moved to Badmail/%s.BAD", j->name, badmail_id);
	if (unlinkat(dirfd_pickup, j->name, 0) == -1)
		log_warn("Pickup/%s: in Badmail but cannot remove it", j->name);
	job_end(j);
}

void
scan_failed(uint32_t id, int temporary, const char *reason)
{
	struct job *j = job_find(id);
	char esc[256], why[300];

	if (j == NULL)
		return;
	log_escape(esc, sizeof(esc), reason, strlen(reason));
	if (!temporary && j->state == J_COMMITTING) {
		/* Refused for good: retrying would refuse it forever. */
		snprintf(why, sizeof(why), "refused by the queue: %s", esc);
		job_badmail(j, why);
		return;
	}
	if (temporary && strcmp(reason, "insufficient system storage") == 0)
		queue_no_space(j->name);
	else
		log_warnx("Pickup/%s: queue refused it (%s); left for a retry", j->name, esc);
	job_end(j);
}

void
scan_queue_lost(void)
{
	struct job *j;

	while ((j = TAILQ_FIRST(&jobs)) != NULL)
		job_end(j);
}

/* Start jobs from the pending names, as many as may be in flight. */
static void
work_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct pending *p;

	(void)fd;
	(void)ev;
	(void)arg;
	while (njobs < (queue_full ? 1 : MAX_INFLIGHT) &&
	    (p = TAILQ_FIRST(&pending)) != NULL) {
		TAILQ_REMOVE(&pending, p, entry);
		npending--;
		job_start(p);
		free(p);
	}
}

static void
schedule_work(void)
{
	if (work_ev && njobs < (queue_full ? 1 : MAX_INFLIGHT) && npending > 0 &&
	    !event_pending(work_ev, EV_TIMEOUT, NULL))
		event_active(work_ev, EV_TIMEOUT, 0);
}

static void
rescan(void)
{
	struct dirent *de;
	DIR *d;
	int fd;

	if ((fd = dup(dirfd_pickup)) == -1 || (d = fdopendir(fd)) == NULL) {
		log_warn("scan Pickup/");
		if (fd != -1)
			close(fd);
		return;
	}
	full_logged = 0;	/* one line per rescan while the disk is full */
	rewinddir(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && (de->d_type == DT_REG || de->d_type == DT_UNKNOWN ||
		    de->d_type == DT_LNK))
			pending_add(de->d_name, 0);
	closedir(d);
}

static void
rescan_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	/* Only when idle: the names in flight or waiting are known already. */
	if (npending == 0 && njobs == 0)
		rescan();
}

static void
inotify_cb(evutil_socket_t fd, short ev, void *arg)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ie;
	ssize_t n;
	size_t off;

	(void)ev;
	(void)arg;
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return;
		for (off = 0; off + sizeof(*ie) <= (size_t)n; off += sizeof(*ie) + ie->len) {
			ie = (const struct inotify_event *)(buf + off);
			if (off + sizeof(*ie) + ie->len > (size_t)n)
				break;
			if (ie->mask & IN_Q_OVERFLOW) {
				rescan();
				continue;
			}
			if (ie->len > 0 && memchr(ie->name, '\0', ie->len) != NULL)
				pending_add(ie->name, 1);
		}
	}
}

int
scan_init(char *why, size_t whysz)
{
	char path[PATH_MAX];
	struct timeval tv = { env->conf->pickup_interval, 0 };

	if (mailroot_path(env->conf, MR_PICKUP, path, sizeof(path)) == -1) {
		snprintf(why, whysz, "mailroot path too long");
		return -1;
	}
	if ((dirfd_pickup = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		snprintf(why, whysz, "%s: %s", path, strerror(errno));
		return -1;
	}
	inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (inotify_fd == -1 ||
	    inotify_add_watch(inotify_fd, path, IN_CLOSE_WRITE | IN_MOVED_TO) == -1) {
		log_warn("inotify on %s: relying on rescans every %u s", path,
		    env->conf->pickup_interval);
		if (inotify_fd != -1)
			close(inotify_fd);
		inotify_fd = -1;
	} else {
		inotify_ev = event_new(env->base, inotify_fd, EV_READ | EV_PERSIST,
		    inotify_cb, NULL);
		event_add(inotify_ev, NULL);
	}
	work_ev = event_new(env->base, -1, 0, work_cb, NULL);
	rescan_ev = event_new(env->base, -1, EV_PERSIST, rescan_cb, NULL);
	evtimer_add(rescan_ev, &tv);
	return 0;
}

void
scan_reconfigure(const struct config *c)
{
	struct timeval tv = { c->pickup_interval, 0 };

	if (rescan_ev)
		evtimer_add(rescan_ev, &tv);
}

void
scan_start(void)
{
	if (dirfd_pickup != -1)
		rescan();
}
