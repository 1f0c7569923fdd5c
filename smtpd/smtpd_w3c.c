/*
 * smtpd_w3c.c - W3C extended log lines of the SMTP commands, as IIS wrote
 * them (smtpd, unprivileged, chrooted).  mailrootd opens each listener's
 * file of the day and hands its descriptor over (DAEMON_W3C_LOG); this file
 * only appends to it.  One line per command, written when its final reply
 * is (334 and 354 are not final: AUTH and DATA end later), with one
 * write(2) on an O_APPEND descriptor so a line is never split and a change
 * of file loses none.  Trust boundary: the verb and arguments come from the
 * client; every octet outside printable ASCII, and the separators space and
 * '%', are %XX-encoded (a space becomes '+', as in IIS's cs-uri-query), so a
 * client cannot forge a field or a line.  AUTH arguments other than the
 * mechanism are never logged.  A failing write is counted and warned about
 * once per file; smtpd never waits on the log.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "smtpd.h"
#include "util.h"

#define W3C_LINE_MAX	2048

static struct {
	int		fd;		/* -1: no log for this listener */
	uint64_t	failed;		/* lines lost since this file came */
} files[CONF_LISTENERS_MAX];
static int files_init;

static void
files_setup(void)
{
	size_t i;

	if (files_init)
		return;
	for (i = 0; i < CONF_LISTENERS_MAX; i++)
		files[i].fd = -1;
	files_init = 1;
}

void
w3c_log_set(uint32_t index, int fd)
{
	files_setup();
	if (index >= CONF_LISTENERS_MAX) {
		if (fd != -1)
			close(fd);
		return;
	}
	/* The old file's lines are all written: each went out with one write(2). */
	if (files[index].fd != -1)
		close(files[index].fd);
	files[index].fd = fd;
	files[index].failed = 0;
}

/* Append `src` to `dst` W3C-safe: "-" when empty. */
static void
w3c_field(char *dst, size_t dstsz, const char *src, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, o = 0;
	unsigned char c;

	if (dstsz < 4)
		return;
	for (i = 0; i < len && o + 4 < dstsz; i++) {
		c = (unsigned char)src[i];
		if (c == ' ')
			dst[o++] = '+';
		else if (c > 0x20 && c < 0x7f && c != '%' && c != '+')
			dst[o++] = (char)c;
		else {
			dst[o++] = '%';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	if (o == 0)
		dst[o++] = '-';
	dst[o] = '\0';
}

void
w3c_session_init(struct session *s, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	files_setup();
	s->w3c.pending = 0;
	(void)strlcpy(s->w3c.laddr, "-", sizeof(s->w3c.laddr));
	if (s->listener >= CONF_LISTENERS_MAX || files[s->listener].fd == -1)
		return;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return;
	/* getsockname(2) filled ss; the analyzer does not model it */
	if (ss.ss_family == AF_INET) {	/* NOLINT(clang-analyzer-core.UndefinedBinaryOperatorResult) */
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &in->sin_addr, s->w3c.laddr, sizeof(s->w3c.laddr));
		s->w3c.lport = ntohs(in->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, s->w3c.laddr, sizeof(s->w3c.laddr));
		s->w3c.lport = ntohs(in6->sin6_port);
	}
}

void
w3c_command(struct session *s, const char *line, size_t len, size_t consumed)
{
	size_t v, a;

	if (s->listener >= CONF_LISTENERS_MAX || files[s->listener].fd == -1)
		return;
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	for (v = 0; v < len && line[v] != ' '; v++)
		;
	w3c_field(s->w3c.verb, sizeof(s->w3c.verb), line, v);
	for (v = 0; s->w3c.verb[v]; v++)
		s->w3c.verb[v] = (char)toupper((unsigned char)s->w3c.verb[v]);
	for (a = v; a < len && line[a] == ' '; a++)
		;
	/* AUTH PLAIN may carry the credentials: keep the mechanism only. */
	if (strcmp(s->w3c.verb, "AUTH") == 0) {
		for (v = a; v < len && line[v] != ' '; v++)
			;
		len = v;
	}
	w3c_field(s->w3c.query, sizeof(s->w3c.query), line + a, len - a);
	s->w3c.start_ms = now_ms();
	s->w3c.start_bytes = s->bytes_in - consumed;
	s->w3c.sc_bytes = 0;
	s->w3c.pending = 1;
}

void
w3c_reply(struct session *s, const char *head, size_t len)
{
	char line[W3C_LINE_MAX], helo[SMTP_DOMAIN_MAX * 3 + 1], query[128];
	char host[CONF_NAME_MAX * 3 + 1];
	struct tm tm;
	time_t now;
	int n, code;
	ssize_t w;

	if (!s->w3c.pending || s->listener >= CONF_LISTENERS_MAX ||
	    files[s->listener].fd == -1)
		return;
	s->w3c.sc_bytes += len;
	/* A continuation line, or an intermediate reply: the command goes on. */
	if (len < 3 || (len > 3 && head[3] == '-'))
		return;
	code = (head[0] - '0') * 100 + (head[1] - '0') * 10 + (head[2] - '0');
	if (code == 334 || code == 354)
		return;
	s->w3c.pending = 0;
	if (strcmp(s->w3c.verb, "DATA") == 0 || strcmp(s->w3c.verb, "BDAT") == 0)
		/* IIS logged the message's id with the end of its data. */
		w3c_field(query, sizeof(query), s->qid, code == 250 ? strlen(s->qid) : 0);
	else
		(void)strlcpy(query, s->w3c.query, sizeof(query));
	w3c_field(helo, sizeof(helo), s->helo, strlen(s->helo));
	w3c_field(host, sizeof(host), env->conf->hostname, strlen(env->conf->hostname));
	now = time(NULL);
	gmtime_r(&now, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02d %02d:%02d:%02d %s %s "
	    "SMTPSVC%u %s %s %u %s - %s %d 0 %llu %llu %llu SMTP - - - -\r\n",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, s->addr, helo, s->listener + 1, host, s->w3c.laddr,
	    (unsigned)s->w3c.lport, s->w3c.verb, query, code,
	    (unsigned long long)s->w3c.sc_bytes,
	    (unsigned long long)(s->bytes_in - s->w3c.start_bytes),
	    (unsigned long long)(now_ms() - s->w3c.start_ms));
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	w = write(files[s->listener].fd, line, (size_t)n);
	if (w == n)
		return;
	if (files[s->listener].failed++ == 0)
		log_warnx("w3c-log: listener %u: %s: lines are lost until the next "
		    "file", s->listener, w == -1 ? strerror(errno) : "short write");
}
