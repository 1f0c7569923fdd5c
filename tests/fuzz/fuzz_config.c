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
 * that is not local, limits out of range, an outbound setting the keyword
 * table forbids, a remote-domain pattern declared twice or not found by
 * config_remote_domain()); and a file accepted although
 * mailroot.conf(5) forbids it: a NUL byte, or a line longer than 4096
 * characters.
 */
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
check_route(const struct route_conf *r)
{
	if (!terminated(r->host, sizeof(r->host)) || (r->literal && r->host[0] == '\0'))
		abort();
	if (r->host[0] == '\0' && (r->port != 0 || r->literal))
		abort();
}

static void
check_outbound(const struct config *c)
{
	const struct remote_domain_conf *rd, *o;
	size_t i;

	check_route(&c->smart_host);
	if (c->direct_first && c->smart_host.host[0] == '\0')
		abort();
	if (c->outbound_port == 0 || c->outbound_connect_timeout == 0 ||
	    c->outbound_timeout == 0 || c->local_retry_interval == 0 ||
	    c->expiration_timeout == 0 || c->local_expiration_timeout == 0)
		abort();
	if (c->outbound_tls == TLS_POLICY_DEFAULT || c->outbound_tls > TLS_POLICY_REQUIRE)
		abort();
	if (c->outbound_tls_ca_file[0] != '/' ||
	    !terminated(c->outbound_tls_ca_file, sizeof(c->outbound_tls_ca_file)))
		abort();
	for (i = 0; i < 4; i++)
		if (c->retry_interval[i] == 0)
			abort();
	if ((c->delay_notification != 0 &&
	    c->delay_notification >= c->expiration_timeout) ||
	    (c->local_delay_notification != 0 &&
	    c->local_delay_notification >= c->local_expiration_timeout))
		abort();
	if (!terminated(c->ndr_copy_to, sizeof(c->ndr_copy_to)) ||
	    (c->ndr_copy_to[0] != '\0' && strchr(c->ndr_copy_to, '@') == NULL))
		abort();
	if (!terminated(c->masquerade_domain, sizeof(c->masquerade_domain)) ||
	    c->max_hop_count > 1000)
		abort();
	TAILQ_FOREACH(rd, &c->remote_domains, entry) {
		if (!terminated(rd->pattern, sizeof(rd->pattern)) || rd->pattern[0] == '\0' ||
		    !terminated(rd->auth_user, sizeof(rd->auth_user)) ||
		    !terminated(rd->auth_password, sizeof(rd->auth_password)) ||
		    (rd->auth_user[0] == '\0') != (rd->auth_password[0] == '\0') ||
		    rd->tls > TLS_POLICY_REQUIRE ||
		    (rd->flags & ~(unsigned)(RD_ALLOW_RELAY | RD_HELO | RD_HOLD)) != 0)
			abort();
		check_route(&rd->route);
		if (rd->auth_user[0] != '\0' && rd->tls == TLS_POLICY_DEFAULT &&
		    c->outbound_tls == TLS_POLICY_NO)
			abort();	/* credentials that could never be sent */
		for (o = TAILQ_NEXT(rd, entry); o != NULL; o = TAILQ_NEXT(o, entry))
			if (strcasecmp(o->pattern, rd->pattern) == 0)
				abort();
		/* an exact pattern finds its own block */
		if (rd->pattern[0] != '*' && config_remote_domain(c, rd->pattern) != rd)
			abort();
	}
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
	check_outbound(c);
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
