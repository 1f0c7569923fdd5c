/*
 * log.c - logging to syslog or stderr (generic layer; every process).
 * Each call writes one line with a single write(2), so lines from several
 * processes sharing a log file do not interleave.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#define LIBBSD_OPENBSD_VIS
#include <bsd/vis.h>

#include "log.h"

static const char *log_ident = "mailroot";
static long log_pid;
static int log_stderr = 1;
static int log_verbose;

void
log_init(const char *ident, int to_stderr)
{
	log_ident = ident;
	log_stderr = to_stderr;
	log_pid = (long)getpid();
	if (!to_stderr)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	tzset();
}

void
log_setverbose(int verbose)
{
	log_verbose = verbose;
}

int
log_getverbose(void)
{
	return log_verbose;
}

static void
vlog(int pri, const char *fmt, va_list ap, const char *errstr)
{
	char msg[2048], line[2300], ts[32];
	struct timespec now;
	struct tm tm;
	int n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (!log_stderr) {
		if (errstr)
			syslog(pri, "%s: %s", msg, errstr);
		else
			syslog(pri, "%s", msg);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03ld %s[%ld]: %s%s%s\n", ts,
	    now.tv_nsec / 1000000, log_ident, log_pid, msg,
	    errstr ? ": " : "", errstr ? errstr : "");
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	(void)!write(STDERR_FILENO, line, n);
}

#define LOGFN(name, pri, witherr)					\
void									\
name(const char *fmt, ...)						\
{									\
	va_list ap;							\
	int saved = errno;						\
	va_start(ap, fmt);						\
	vlog(pri, fmt, ap, (witherr) ? strerror(saved) : NULL);		\
	va_end(ap);							\
	errno = saved;							\
}

LOGFN(log_warn, LOG_WARNING, 1)
LOGFN(log_warnx, LOG_WARNING, 0)
LOGFN(log_info, LOG_INFO, 0)

void
log_debug(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, fmt, ap, NULL);
	va_end(ap);
	errno = saved;
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap, strerror(saved));
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}

char *
log_escape(char *dst, size_t dstsz, const char *src, size_t srclen)
{
	/* strnvisx writes at most 4 bytes per input byte plus a NUL. */
	if (dstsz == 0)
		return dst;
	if (srclen > (dstsz - 1) / 4)
		srclen = (dstsz - 1) / 4;
	if (strnvisx(dst, dstsz, src, srclen, VIS_SAFE | VIS_OCTAL | VIS_CSTYLE) == -1)
		dst[0] = '\0';
	return dst;
}
