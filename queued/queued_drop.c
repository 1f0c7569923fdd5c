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

int
drop_deliver(const char *id, const char *sender, const char *const *rcpts,
    size_t nrcpts, int content_fd, char *why, size_t whysz)
{
	char name[QUEUEID_LEN + 8], tmp[QUEUEID_LEN + 8];
	struct evbuffer *hdr;
	struct stat st;
	size_t i;
	int fd, trunc, saved;

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
	if (copy_content(content_fd, fd, UINT64_MAX, &trunc) == -1 || fsync(fd) == -1 ||
	    fstat(fd, &st) == -1)
		goto fail_unlink;
	if (close(fd) == -1) {
		fd = -1;
		goto fail_unlink;
	}
	fd = -1;
	if (renameat(qdirs.drop, tmp, qdirs.drop, name) == -1)
		goto fail_unlink;
	evbuffer_free(hdr);
	quota_add((uint64_t)st.st_size);
	return 0;
fail_unlink:
	saved = errno;
	(void)unlinkat(qdirs.drop, tmp, 0);
	errno = saved;
fail:
	snprintf(why, whysz, "Drop/%s: %s", name, strerror(errno));
	if (fd != -1)
		close(fd);
	evbuffer_free(hdr);
	return -1;
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
