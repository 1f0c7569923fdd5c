/*
 * fuzz_metrics.c - libFuzzer target of mailrootd's Prometheus request reader
 * (mailrootd/mailrootd_metrics.c: metrics_request_parse); replayed over its
 * seed corpus by make check.
 *
 * Trust boundary: the input stands for what any client reaching the
 * metrics address sends to root's process.  It is read as the daemon reads
 * it: the first METRICS_PEEK_MAX octets, or fewer as they arrive (every
 * prefix length of a short input; some of a long one).  Beyond memory
 * safety, the target abort()s on a status other than 0, 200, 400, 404 and
 * 405; on 200 for anything but a "GET /metrics HTTP/1.x" line; on a final
 * answer for a prefix that a longer prefix changes (more input never
 * changes an answer given); on waiting for more past the size bound.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailrootd.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define PEEK_MAX	(4096 + 4)	/* METRICS_PEEK_MAX */
#define REQUEST_MAX	4096		/* METRICS_REQUEST_MAX */

/* Only the pure reader runs here: the rest of mailrootd is not linked. */
struct mailrootd *mrd;

int
stats_request(stats_done_fn done, void *arg, uint32_t cookie)
{
	(void)done;
	(void)arg;
	(void)cookie;
	abort();
}

void
stats_cancel(void *arg)
{
	(void)arg;
	abort();
}

int
listen_bind(const char *addr, uint16_t port, int line, int backlog, char *err,
    size_t errsz)
{
	(void)addr;
	(void)port;
	(void)line;
	(void)backlog;
	(void)err;
	(void)errsz;
	abort();
}

/* The reader on the first `n` octets (exact-size copy: ASan sees overreads). */
static int
parse(const uint8_t *data, size_t n)
{
	size_t len = n > PEEK_MAX ? PEEK_MAX : n;
	char *buf;
	int st;

	if ((buf = malloc(len > 0 ? len : 1)) == NULL)
		abort();
	memcpy(buf, data, len);
	st = metrics_request_parse(buf, len, n);
	free(buf);
	if (st != 0 && st != 200 && st != 400 && st != 404 && st != 405)
		abort();
	if (st == 0 && n > REQUEST_MAX)
		abort();
	if (st == 200 && (n < 22 || (memcmp(data, "GET /metrics HTTP/1.0", 21) != 0 &&
	    memcmp(data, "GET /metrics HTTP/1.1", 21) != 0) ||
	    (data[21] != '\r' && data[21] != '\n')))
		abort();
	return st;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n, step;
	int first = 0, st;

	/* every prefix of a short input, about 64 of a long one */
	step = size / 64 + 1;
	for (n = 0;; n += step) {
		if (n > size)
			n = size;
		st = parse(data, n);
		if (first != 0 && st != first)
			abort();
		if (st != 0 && first == 0)
			first = st;
		if (n == size)
			break;
	}
	return 0;
}
