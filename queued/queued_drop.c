/*
 * queued_drop.c - local delivery into Drop/ (queued, as _smtpq).
 *
 * Each message for local or alias domains becomes one Drop/<id>.eml: an
 * "x-sender:" line, one "x-receiver:" line per local recipient (the IIS
 * format), then the message as queued.  It is written as Drop/.<id>.tmp,
 * fsync'd and renamed, so a reader never sees a partial file; names
 * starting with a dot are never messages.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/buffer.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "queued.h"
#include "util.h"

int
copy_content(int in, int out, uint64_t limit, int *truncated)
{
	char buf[65536];
	loff_t off = 0;
	ssize_t n;
	size_t want;

	*truncated = 0;
	for (;;) {
		want = limit - (uint64_t)off > (1 << 30) ? (1 << 30) : (size_t)(limit - (uint64_t)off);
		if (want == 0)
			break;
		n = copy_file_range(in, &off, out, NULL, want, 0);
		if (n == -1 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
		    errno == EOPNOTSUPP))
			goto fallback;
		if (n == -1)
			return -1;
		if (n == 0)
			return 0;
	}
	goto limited;
fallback:
	for (;;) {
		want = limit - (uint64_t)off > sizeof(buf) ? sizeof(buf) : (size_t)(limit - (uint64_t)off);
		if (want == 0)
			break;
		n = pread(in, buf, want, off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0)
			return 0;
		if (write_all(out, buf, (size_t)n) == -1)
			return -1;
		off += n;
	}
limited:
	/* At the limit: is there more? */
	if (pread(in, buf, 1, off) == 1)
		*truncated = 1;
	return 0;
}

/*
 * Write Drop/.<id>.tmp for these recipients and start its writeback (unless
 * the caller syncs the filesystem); the caller makes it durable with
 * drop_commit().  Returns 1 with the open descriptor, 0 (*fdp = -1) when
 * Drop/<id>.eml is there already, or -1 with why.  A message just committed
 * (fresh) cannot be in Drop/ yet: no need to look.
 */
/* The IIS header of a Drop file: x-sender, then an x-receiver per recipient. */
static int
write_header(int fd, const char *sender, const char *const *rcpts, size_t nrcpts,
    size_t *len)
{
	struct evbuffer *hdr;
	size_t i;
	int r = 0;

	if ((hdr = evbuffer_new()) == NULL)
		return -1;
	evbuffer_add_printf(hdr, "x-sender: %s\r\n", sender[0] ? sender : "<>");
	for (i = 0; i < nrcpts; i++)
		evbuffer_add_printf(hdr, "x-receiver: %s\r\n", rcpts[i]);
	*len = evbuffer_get_length(hdr);
	while (r == 0 && evbuffer_get_length(hdr) > 0)
		if (evbuffer_write(hdr, fd) <= 0)
			r = -1;
	evbuffer_free(hdr);
	return r;
}

int
drop_open(const char *id, const char *sender, const char *const *rcpts,
    size_t nrcpts, int *fdp, size_t *hdrlen)
{
	char tmp[QUEUEID_LEN + 8];
	int fd, saved;

	snprintf(tmp, sizeof(tmp), ".%s.tmp", id);
	fd = openat(qdirs.drop, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd == -1)
		return -1;
	if (write_header(fd, sender, rcpts, nrcpts, hdrlen) == -1) {
		saved = errno;
		close(fd);
		(void)unlinkat(qdirs.drop, tmp, 0);
		errno = saved;
		return -1;
	}
	*fdp = fd;
	return 0;
}

int
drop_write(const char *id, const char *sender, const char *const *rcpts,
    size_t nrcpts, int content_fd, int fresh, int *fdp, char *why, size_t whysz)
{
	char name[QUEUEID_LEN + 8], tmp[QUEUEID_LEN + 8];
	size_t hdrlen;
	int fd, trunc, saved;

	*fdp = -1;
	snprintf(name, sizeof(name), "%s.eml", id);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", id);
	/* Delivered before a crash, with the queue not yet told: not twice. */
	if (!fresh && faccessat(qdirs.drop, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		log_debug("%s: Drop/%s already there", id, name);
		return 0;
	}
	fd = openat(qdirs.drop, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0640);
	if (fd == -1)
		goto fail;
	if (write_header(fd, sender, rcpts, nrcpts, &hdrlen) == -1 ||
	    copy_content(content_fd, fd, UINT64_MAX, &trunc) == -1)
		goto fail_unlink;
	/* Start writing now: the fsync of a whole batch then costs one journal commit. */
	if (!env->conf->commit_syncfs)
		(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	*fdp = fd;
	return 1;
fail_unlink:
	saved = errno;
	close(fd);
	(void)unlinkat(qdirs.drop, tmp, 0);
	errno = saved;
fail:
	snprintf(why, whysz, "Drop/%s: %s", tmp, strerror(errno));
	return -1;
}

/*
 * Close what drop_write() wrote and rename it into Drop/: fsync'd first, or
 * already made durable by the caller's store_sync_files() (synced 1).
 */
int
drop_commit(const char *id, int fd, int synced, char *why, size_t whysz)
{
	char name[QUEUEID_LEN + 8], tmp[QUEUEID_LEN + 8];
	struct stat st;
	int r;

	snprintf(name, sizeof(name), "%s.eml", id);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", id);
	r = synced ? 0 : fsync(fd);
	if (r == 0 && fstat(fd, &st) == -1)
		r = -1;
	if (close(fd) == -1)
		r = -1;
	if (r != 0 || renameat(qdirs.drop, tmp, qdirs.drop, name) == -1) {
		snprintf(why, whysz, "Drop/%s: %s", name, strerror(errno));
		(void)unlinkat(qdirs.drop, tmp, 0);
		return -1;
	}
	quota_add((uint64_t)st.st_size);
	return 0;
}

int
drop_deliver(const char *id, const char *sender, const char *const *rcpts,
    size_t nrcpts, int content_fd, char *why, size_t whysz)
{
	int fd, r;

	if ((r = drop_write(id, sender, rcpts, nrcpts, content_fd, 0, &fd, why, whysz)) <= 0)
		return r;
	return drop_commit(id, fd, 0, why, whysz);
}

int
drop_sync(void)
{
	return store_sync_dir(qdirs.drop);
}

/* Remove temporaries a crash left in Drop/ (their messages are still queued). */
void
drop_cleanup(void)
{
	struct dirent *de;
	size_t len;
	DIR *d;
	int fd;

	if ((fd = dup(qdirs.drop)) == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (de->d_name[0] == '.' && len > 5 &&
		    strcmp(de->d_name + len - 4, ".tmp") == 0 &&
		    unlinkat(qdirs.drop, de->d_name, 0) == 0)
			log_info("removed partial Drop/%s", de->d_name);
	}
	closedir(d);
}
