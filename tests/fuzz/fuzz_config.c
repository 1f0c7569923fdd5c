/*
 * fuzz_config.c - libFuzzer target of the mailroot.conf(5) parser
 * (common/config.c); replayed over its seed corpus by make check.
 *
 * Trust boundary: the input stands for the configuration file.  It is
 * written by the administrator, but every daemon parses it again after
 * dropping privileges, so the parser must survive any bytes.  The input is
 * read through fmemopen(3); messages go to a callback that checks their form
 * and discards them.
 *
 * Beyond memory safety, the target abort()s when the result breaks the
 * parser's contract: a config returned although an error was reported (or
 * NULL without any message), a message not of the form "file:line: ..." with
 * a line that exists, or a returned config whose settings are not what the
 * keywords allow (relative paths, no listener, port 0, a default domain
 * that is not local, limits out of range); and a file accepted although
 * mailroot.conf(5) forbids it: a NUL byte, or a line longer than 4096
 * characters.
 */
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FILE_NAME	"fuzz.conf"
#define MAX_LINE	4096	/* mailroot.conf(5): "at most 4096 characters" */

struct report_state {
	int	count;
	long	maxline;
};

static void
report(const char *msg, void *arg)
{
	struct report_state *st = arg;
	const char *p;
	char *end;
	long line;

	st->count++;
	/* "fuzz.conf:LINE: message" or "fuzz.conf: message" */
	if (strncmp(msg, FILE_NAME ":", sizeof(FILE_NAME)) != 0)
		abort();
	p = msg + sizeof(FILE_NAME);
	if (*p == ' ') {
		if (p[1] == '\0')
			abort();
		return;
	}
	line = strtol(p, &end, 10);
	if (end == p || *end != ':' || end[1] != ' ' || end[2] == '\0')
		abort();
	if (line < 1 || line > st->maxline)
		abort();
	/* the text is discarded */
}

static int
terminated(const char *s, size_t sz)
{
	return memchr(s, '\0', sz) != NULL;
}

static void
check_config(const struct config *c)
{
	const struct listener_conf *l;
	size_t i;

	if (!terminated(c->hostname, sizeof(c->hostname)) ||
	    !terminated(c->mailroot, sizeof(c->mailroot)) ||
	    !terminated(c->default_domain, sizeof(c->default_domain)) ||
	    !terminated(c->pidfile, sizeof(c->pidfile)) ||
	    !terminated(c->control_socket, sizeof(c->control_socket)) ||
	    !terminated(c->log_file, sizeof(c->log_file)) ||
	    !terminated(c->smtpd_user, sizeof(c->smtpd_user)) ||
	    !terminated(c->queued_user, sizeof(c->queued_user)) ||
	    !terminated(c->pickupd_user, sizeof(c->pickupd_user)) ||
	    !terminated(c->mailroot_group, sizeof(c->mailroot_group)))
		abort();
	if (c->hostname[0] == '\0' || c->default_domain[0] == '\0')
		abort();
	if (c->mailroot[0] != '/' || c->pidfile[0] != '/' ||
	    c->control_socket[0] != '/' || strlen(c->control_socket) >= 108)
		abort();
	if (c->log_file[0] != '\0' && c->log_file[0] != '/')
		abort();
	if (c->smtpd_user[0] == '\0' || c->queued_user[0] == '\0' ||
	    c->pickupd_user[0] == '\0' || c->mailroot_group[0] == '\0')
		abort();
	if (!config_is_local_domain(c, c->default_domain))
		abort();
	for (i = 0; i < c->nalias_domains; i++)
		if (c->alias_domains[i] == NULL || c->alias_domains[i][0] == '\0' ||
		    !config_is_local_domain(c, c->alias_domains[i]))
			abort();
	if (TAILQ_EMPTY(&c->listeners))
		abort();
	TAILQ_FOREACH(l, &c->listeners, entry)
		if (l->port == 0 || l->addr[0] == '\0' ||
		    !terminated(l->addr, sizeof(l->addr)))
			abort();
	if (c->max_recipients < 1 || c->max_recipients > 100000)
		abort();
	if (c->idle_timeout == 0 || c->pickup_interval == 0)
		abort();
	if (c->log_verbose != 0 && c->log_verbose != 1)
		abort();
}

/* The longest line, without its LF or CRLF ending. */
static size_t
longest_line(const uint8_t *data, size_t size)
{
	size_t i, start = 0, n, max = 0;

	for (i = 0; i <= size; i++) {
		if (i < size && data[i] != '\n')
			continue;
		n = i - start;
		if (i < size && n > 0 && data[i - 1] == '\r')
			n--;
		if (n > max)
			max = n;
		start = i + 1;
	}
	return max;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct report_state st;
	struct config *c;
	char *buf;
	FILE *fp;
	size_t i;

	/* fmemopen wants a writable buffer, and some libcs refuse size 0 */
	if ((buf = malloc(size > 0 ? size : 1)) == NULL)
		return 0;
	if (size > 0)
		memcpy(buf, data, size);
	if ((fp = fmemopen(buf, size > 0 ? size : 1, "r")) == NULL) {
		free(buf);
		return 0;
	}
	if (size == 0)
		fseek(fp, 0, SEEK_END);

	memset(&st, 0, sizeof(st));
	st.maxline = 1;
	for (i = 0; i < size; i++)
		if (data[i] == '\n')
			st.maxline++;

	c = config_parse(fp, FILE_NAME, report, &st);
	fclose(fp);
	free(buf);

	if ((c != NULL) != (st.count == 0))
		abort();
	if (c != NULL) {
		check_config(c);
		if (memchr(data, '\0', size) != NULL)
			abort();	/* a NUL byte was accepted */
		if (longest_line(data, size) > MAX_LINE)
			abort();	/* an over-long line was accepted */
	}
	config_free(c);
	return 0;
}
