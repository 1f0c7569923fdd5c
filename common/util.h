/*
 * util.h - small file-descriptor and string helpers (generic layer).
 */
#ifndef MR_UTIL_H
#define MR_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Write all of buf, retrying on EINTR and short writes; -1 with errno on failure. */
int write_all(int fd, const void *buf, size_t len);
/* Read until buf is full or EOF; returns bytes read or -1. */
ssize_t read_full(int fd, void *buf, size_t len);
/* fsync(2) the directory `path` (or the open directory fd when path is NULL). */
int fsync_dir(int dirfd, const char *path);
int set_nonblock(int fd);
int set_cloexec(int fd);
/* Monotonic milliseconds, for timeouts and back-off. */
uint64_t now_ms(void);
/* ASCII case-insensitive comparison of a domain or address part. */
int strcase_eq(const char *a, const char *b);

#endif
