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
 * Write Drop/.<id>.tmp for these recipients and start its writeback; the
 * caller makes it durable with drop_commit().  Returns the open descriptor,
 * 0 (*fdp = -1) when Drop/<id>.eml is there already, or -1 with why.
 */
int
drop_write(const char *id, const char *sender, const char *const *rcpts,
    size_t nrcpts, int content_fd, int *fdp, char *why, size_t whysz)
{
	char name[QUEUEID_LEN + 8], tmp[QUEUEID_LEN + 8];
	struct evbuffer *hdr;
	size_t i;
	int fd, trunc, saved;

	*fdp = -1;
	snprintf(name, sizeof(name), "%s.eml", id);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", id);
	/* Delivered before a crash, with the queue not yet told: not twice. */
	if (faccessat(qdirs.drop, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		log_debug("%s: Drop/%s already there", id, name);
		return 0;
	}
	if ((hdr = evbuffer_new()) == NULL) {
		snprintf(why, whysz, "out of memory");
		return -1;
	}
	evbuffer_add_printf(hdr, "x-sender: %s\r\n", sender[0] ? sender : "<>");
	for (i = 0; i < nrcpts; i++)
		evbuffer_add_printf(hdr, "x-receiver: %s\r\n", rcpts[i]);
	fd = openat(qdirs.drop, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0640);
	if (fd == -1)
		goto fail;
	while (evbuffer_get_length(hdr) > 0)
		if (evbuffer_write(hdr, fd) <= 0)
			goto fail_unlink;
	if (copy_content(content_fd, fd, UINT64_MAX, &trunc) == -1)
		goto fail_unlink;
	/* Start writing now: the fsync of a whole batch then costs one journal commit. */
	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	evbuffer_free(hdr);
	*fdp = fd;
	return 1;
fail_unlink:
	saved = errno;
	close(fd);
	(void)unlinkat(qdirs.drop, tmp, 0);
	errno = saved;
fail:
	snprintf(why, whysz, "Drop/%s: %s", tmp, strerror(errno));
	evbuffer_free(hdr);
	return -1;
}

/* fsync and close what drop_write() wrote, and rename it into Drop/. */
int
drop_commit(const char *id, int fd, char *why, size_t whysz)
{
	char name[QUEUEID_LEN + 8], tmp[QUEUEID_LEN + 8];
	struct stat st;
	int r;

	snprintf(name, sizeof(name), "%s.eml", id);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", id);
	r = fsync(fd);
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

	if ((r = drop_write(id, sender, rcpts, nrcpts, content_fd, &fd, why, whysz)) <= 0)
		return r;
	return drop_commit(id, fd, why, whysz);
}

int
drop_sync(void)
{
	return fsync(qdirs.drop);
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
