/*
 * log.h - the one logging API of every Mailroot program (generic layer).
 * Lines go to syslog (facility mail) or, in the foreground, to stderr.
 */
#ifndef MR_LOG_H
#define MR_LOG_H

#include <stdarg.h>

/* Start logging as `ident`; to stderr when `to_stderr`, else syslog(LOG_MAIL). */
void log_init(const char *ident, int to_stderr);
/* Show log_debug lines when `verbose` is non-zero. */
void log_setverbose(int verbose);
int log_getverbose(void);

void log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
/* Log (fatal adds strerror(errno)) and exit(1): for broken invariants, never for bad input. */
void fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * Escape untrusted text (client input) for a log line into `dst`: non-printable
 * bytes become \ooo, so a peer cannot forge log lines. Returns dst.
 */
char *log_escape(char *dst, size_t dstsz, const char *src, size_t srclen);

#endif
