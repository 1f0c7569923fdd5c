/*
 * fsync_ceiling.c - the disk's ceiling for durable file commits (bench/run).
 *
 * Owns: measuring how many "commits" per second this filesystem allows,
 * where one commit is what a durable MTA does at the least for a message:
 * write 4 KiB into a new temporary file, fsync it, rename it into place,
 * fsync the directory.  THREADS threads do this at once in one directory
 * (as one queue directory would see it) until MAXOPS commits were done in
 * all or SECONDS have passed, whichever comes first.  The files are removed
 * afterwards (not timed).
 *
 * A benchmark tool run by bench/run as whoever runs it; it touches only
 * DIR, which it creates and removes, and trusts its arguments.
 *
 *	fsync_ceiling DIR THREADS MAXOPS SECONDS
 *
 * Prints one line: "threads=T ops=N seconds=S ops_per_s=R" and exits 0, or
 * a message on stderr and exits 1.
 */
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK		4096
#define MAX_THREADS	64

struct worker {
	pthread_t	 th;
	int		 index;
	long		 quota;		/* most commits this thread does */
	long		 done;
	int		 err;		/* errno of a failure, 0 if none */
};

static int dirfd_g = -1;
static double deadline_g;
static char block_g[BLOCK];

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One commit: write, fsync, rename, fsync the directory. */
static int
commit_one(int t, long i)
{
	char tmp[64], name[64];
	ssize_t n;
	size_t off = 0;
	int fd;

	snprintf(tmp, sizeof(tmp), ".tmp-%d-%ld", t, i);
	snprintf(name, sizeof(name), "f-%d-%ld", t, i);
	fd = openat(dirfd_g, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	while (off < sizeof(block_g)) {
		n = write(fd, block_g + off, sizeof(block_g) - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	if (fsync(fd) == -1 || close(fd) == -1)
		return -1;
	if (renameat(dirfd_g, tmp, dirfd_g, name) == -1)
		return -1;
	return fsync(dirfd_g);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	while (w->done < w->quota && now() < deadline_g) {
		if (commit_one(w->index, w->done) == -1) {
			w->err = errno;
			break;
		}
		w->done++;
	}
	return NULL;
}

static long
parse_long(const char *s, long lo, long hi, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "fsync_ceiling: bad %s \"%s\" (%ld to %ld)\n", what, s, lo, hi);
		exit(1);
	}
	return v;
}

int
main(int argc, char **argv)
{
	struct worker w[MAX_THREADS];
	char name[64];
	double t0, elapsed;
	long maxops, total = 0, i;
	int nthreads, t, secs, failed = 0;

	if (argc != 5) {
		fprintf(stderr, "usage: fsync_ceiling DIR THREADS MAXOPS SECONDS\n");
		return 1;
	}
	nthreads = (int)parse_long(argv[2], 1, MAX_THREADS, "THREADS");
	maxops = parse_long(argv[3], 1, 10000000, "MAXOPS");
	secs = (int)parse_long(argv[4], 1, 3600, "SECONDS");
	if (mkdir(argv[1], 0700) == -1 && errno != EEXIST) {
		fprintf(stderr, "fsync_ceiling: mkdir %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if ((dirfd_g = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		fprintf(stderr, "fsync_ceiling: open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	memset(block_g, 'x', sizeof(block_g));
	t0 = now();
	deadline_g = t0 + secs;
	for (t = 0; t < nthreads; t++) {
		w[t].index = t;
		w[t].quota = maxops / nthreads + (t < maxops % nthreads ? 1 : 0);
		w[t].done = 0;
		w[t].err = 0;
		if (pthread_create(&w[t].th, NULL, worker_main, &w[t]) != 0) {
			fprintf(stderr, "fsync_ceiling: cannot start thread %d\n", t);
			return 1;
		}
	}
	for (t = 0; t < nthreads; t++) {
		pthread_join(w[t].th, NULL);
		total += w[t].done;
		if (w[t].err != 0) {
			fprintf(stderr, "fsync_ceiling: thread %d: %s\n", t, strerror(w[t].err));
			failed = 1;
		}
	}
	elapsed = now() - t0;
	for (t = 0; t < nthreads; t++)
		for (i = 0; i < w[t].done; i++) {
			snprintf(name, sizeof(name), "f-%d-%ld", t, i);
			(void)unlinkat(dirfd_g, name, 0);
		}
	close(dirfd_g);
	(void)rmdir(argv[1]);
	if (failed)
		return 1;
	printf("threads=%d ops=%ld seconds=%.3f ops_per_s=%.1f\n", nthreads, total, elapsed,
	    elapsed > 0 ? (double)total / elapsed : 0.0);
	return 0;
}
