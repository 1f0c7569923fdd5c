/*
 * queued_quota.c - the Drop quota (queued, as _smtpq; FEATURES N2).
 *
 * queued knows how many octets Drop/ holds: it counts the folder at start,
 * adds every message it drops, and counts it again every minute, since the
 * local mail consumer removes files behind its back (every two seconds
 * while over the quota, so that room made by a consumer is seen at once).
 * At or over drop-quota, local delivery is deferred (the messages stay in
 * Queue/) and smtpd is told, so it answers RCPT for local domains with
 * 452 4.2.2; back under, smtpd is told and the scheduler delivers what
 * waited.  Trust boundary: none crossed here; Drop/ is queued's own folder,
 * read with fstatat() without following links.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "queued.h"

#define QUOTA_RESCAN		60	/* seconds between counts of Drop/ */
#define QUOTA_RESCAN_OVER	2	/* the same while over the quota */

static uint64_t quota;		/* drop-quota; 0: none */
static uint64_t drop_bytes;	/* octets in Drop/ as last counted, plus drops */
static int over;
static struct event *rescan_ev;

/* Octets of the messages in Drop/ (names with a leading dot are not messages). */
static uint64_t
drop_count(void)
{
	struct dirent *de;
	struct stat st;
	uint64_t total = 0;
	DIR *d;
	int fd;

	if ((fd = dup(qdirs.drop)) == -1 || (d = fdopendir(fd)) == NULL) {
		log_warn("count Drop/");
		if (fd != -1)
			close(fd);
		return drop_bytes;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(qdirs.drop, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode))
			total += (uint64_t)st.st_size;
	}
	closedir(d);
	return total;
}

static void
rescan_schedule(void)
{
	struct timeval tv = { over ? QUOTA_RESCAN_OVER : QUOTA_RESCAN, 0 };

	if (rescan_ev == NULL)
		return;
	evtimer_del(rescan_ev);
	if (quota != 0)
		evtimer_add(rescan_ev, &tv);
}

/* Compare with the quota; on a change tell smtpd (and deliver, when under). */
static void
quota_check(void)
{
	int now = quota != 0 && drop_bytes >= quota;

	if (now == over)
		return;
	over = now;
	log_info("drop-quota status=%s bytes=%llu quota=%llu local-delivery=%s",
	    over ? "over" : "under", (unsigned long long)drop_bytes,
	    (unsigned long long)quota, over ? "deferred" : "resumed");
	producer_drop_state(over);
	rescan_schedule();
	if (!over)
		sched_local_resume();
}

static void
rescan_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	drop_bytes = drop_count();
	rescan_schedule();
	quota_check();
}

/* Take drop-quota from `c` (at start and on reload) and count Drop/. */
void
quota_configure(const struct config *c)
{
	if (rescan_ev == NULL && (rescan_ev = evtimer_new(env->base, rescan_cb, NULL)) == NULL)
		log_warnx("drop-quota: cannot make its timer; Drop/ is counted only on drops");
	quota = c->drop_quota;
	drop_bytes = quota != 0 ? drop_count() : 0;
	rescan_schedule();
	quota_check();
}

/* A message of `size` octets was dropped. */
void
quota_add(uint64_t size)
{
	if (quota == 0)
		return;
	drop_bytes += size;
	quota_check();
}

/* 1 while Drop/ is at or over the quota: local delivery waits. */
int
quota_over(void)
{
	return over;
}
