/*
 * config.c - the mailroot.conf(5) parser (mail layer).
 *
 * Runs in mailrootd (as root, on the administrator's file) and again in each
 * daemon (unprivileged, on the same text passed as a descriptor).  One
 * statement per line: a keyword and its arguments, separated by blanks;
 * "double quotes" protect blanks and '#'; '#' starts a comment.  Every error
 * is reported as "file:line: message" and parsing goes on, so one run shows
 * them all.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "acl.h"
#include "config.h"
#include "smtp_parse.h"
#include "util.h"

#define MAX_TOKENS	16
#define MAX_LINE	4096

struct parser {
	struct config	*conf;
	const char	*file;
	int		 line;
	int		 errors;
	void		(*report)(const char *, void *);
	void		*arg;
	int		 seen_hostname, seen_domain, seen_pidfile, seen_socket;
	int		 tls_cert_line, tls_key_line;
	/* where the timers were set, for the checks of config_finish() */
	int		 delay_line, expire_line, local_delay_line, local_expire_line;
	int		 direct_first_line, smart_host_line;
};

struct keyword {
	const char	*name;
	int		 min_args, max_args;
	void		(*fn)(struct parser *, int, char **);
};

static void __attribute__((format(printf, 2, 3)))
perr(struct parser *p, const char *fmt, ...)
{
	char msg[1024], full[1400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->line > 0)
		snprintf(full, sizeof(full), "%s:%d: %s", p->file, p->line, msg);
	else
		snprintf(full, sizeof(full), "%s: %s", p->file, msg);
	p->errors++;
	if (p->report)
		p->report(full, p->arg);
	else
		fprintf(stderr, "%s\n", full);
}

/* Copy a setting, refusing silent truncation. */
static void
set_str(struct parser *p, char *dst, size_t dstsz, const char *what, const char *val)
{
	if (strlcpy(dst, val, dstsz) >= dstsz)
		perr(p, "%s too long (at most %zu characters)", what, dstsz - 1);
}

static void
set_path(struct parser *p, char *dst, size_t dstsz, const char *what, const char *val)
{
	if (val[0] != '/') {
		perr(p, "%s must be an absolute path: \"%s\"", what, val);
		return;
	}
	set_str(p, dst, dstsz, what, val);
}

static void
set_domain(struct parser *p, char *dst, size_t dstsz, const char *what, const char *val)
{
	if (!smtp_domain_valid(val, 0) || val[0] == '[') {
		perr(p, "%s is not a valid domain name: \"%s\"", what, val);
		return;
	}
	set_str(p, dst, dstsz, what, val);
}

static void
set_user(struct parser *p, char *dst, const char *what, const char *val)
{
	const char *c;

	for (c = val; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '.')
			break;
	if (*c != '\0' || val[0] == '\0' || val[0] == '-') {
		perr(p, "%s is not a valid user or group name: \"%s\"", what, val);
		return;
	}
	set_str(p, dst, CONF_USER_MAX, what, val);
}

int
config_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mult = 1;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end != '\0') {
		switch (toupper((unsigned char)*end)) {
		case 'K': mult = 1024ULL; break;
		case 'M': mult = 1024ULL * 1024; break;
		case 'G': mult = 1024ULL * 1024 * 1024; break;
		default: return -1;
		}
		if (end[1] != '\0' && !(toupper((unsigned char)end[1]) == 'B' && end[2] == '\0'))
			return -1;
	}
	if (v > UINT64_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

int
config_parse_time(const char *s, uint32_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mult = 1;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end != '\0') {
		switch (*end) {
		case 's': mult = 1; break;
		case 'm': mult = 60; break;
		case 'h': mult = 3600; break;
		case 'd': mult = 86400; break;
		default: return -1;
		}
		if (end[1] != '\0')
			return -1;
	}
	if (v > UINT32_MAX / mult)
		return -1;
	*out = (uint32_t)(v * mult);
	return 0;
}

static int
parse_yesno(struct parser *p, const char *kw, const char *v)
{
	if (strcmp(v, "yes") == 0)
		return 1;
	if (strcmp(v, "no") == 0)
		return 0;
	perr(p, "%s takes yes or no, not \"%s\"", kw, v);
	return 0;
}

/* ---- keyword handlers ---------------------------------------------------- */

static void
kw_hostname(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_domain(p, p->conf->hostname, sizeof(p->conf->hostname), "hostname", av[1]);
	p->seen_hostname = 1;
}

static void
kw_mailroot(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_path(p, p->conf->mailroot, sizeof(p->conf->mailroot), "mailroot", av[1]);
}

static void
kw_default_domain(struct parser *p, int ac, char **av)
{
	(void)ac;
	struct config *c = p->conf;
	size_t i;

	set_domain(p, c->default_domain, sizeof(c->default_domain),
	    "default-domain", av[1]);
	p->seen_domain = 1;
	for (i = 0; i < c->nalias_domains; i++)
		if (strcase_eq(c->alias_domains[i], c->default_domain))
			perr(p, "default-domain %s is also an alias-domain",
			    c->default_domain);
}

static void
kw_alias_domain(struct parser *p, int ac, char **av)
{
	struct config *c = p->conf;
	char **na;
	size_t j;
	int i;

	for (i = 1; i < ac; i++) {
		if (!smtp_domain_valid(av[i], 0) || av[i][0] == '[') {
			perr(p, "alias-domain is not a valid domain name: \"%s\"", av[i]);
			continue;
		}
		for (j = 0; j < c->nalias_domains; j++)
			if (strcase_eq(c->alias_domains[j], av[i]))
				break;
		if (j < c->nalias_domains) {
			perr(p, "alias-domain %s is declared twice", av[i]);
			continue;
		}
		if (p->seen_domain && strcase_eq(av[i], c->default_domain)) {
			perr(p, "alias-domain %s is the default domain", av[i]);
			continue;
		}
		na = reallocarray(c->alias_domains, c->nalias_domains + 1, sizeof(*na));
		if (na == NULL || (na[c->nalias_domains] = strdup(av[i])) == NULL) {
			if (na)
				c->alias_domains = na;
			perr(p, "out of memory");
			return;
		}
		c->alias_domains = na;
		c->nalias_domains++;
	}
}

/*
 * listen on ADDRESS [port N] [tls | smtps] [require-tls] [auth] [require-auth]
 *     [auth-plaintext] [w3c-log DIRECTORY]
 */
static void
kw_listen(struct parser *p, int ac, char **av)
{
	static const struct {
		const char	*name;
		unsigned	 flag;
	} opts[] = {
		{ "tls", LISTEN_TLS },
		{ "smtps", LISTEN_SMTPS },
		{ "require-tls", LISTEN_REQUIRE_TLS },
		{ "auth", LISTEN_AUTH },
		{ "require-auth", LISTEN_REQUIRE_AUTH },
		{ "auth-plaintext", LISTEN_AUTH_PLAINTEXT },
	};
	struct listener_conf *l, *o;
	struct in6_addr a6;
	struct in_addr a4;
	const char *addr;
	long port = 25;
	unsigned flags = 0;
	const char *w3c = "";
	size_t k;
	char *end;
	int i;

	if (strcmp(av[1], "on") != 0) {
		perr(p, "expected \"listen on ADDRESS [port N]\"");
		return;
	}
	if (ac < 3) {
		perr(p, "listen on: missing address");
		return;
	}
	addr = av[2];
	if (strcmp(addr, "all") == 0 || strcmp(addr, "any") == 0)
		addr = "*";
	if (strcmp(addr, "*") != 0 && inet_pton(AF_INET, addr, &a4) != 1 &&
	    inet_pton(AF_INET6, addr, &a6) != 1) {
		perr(p, "listen on: \"%s\" is not a numeric IPv4 or IPv6 address or \"all\"", av[2]);
		return;
	}
	for (i = 3; i < ac; i++) {
		if (strcmp(av[i], "port") == 0 && i + 1 < ac) {
			errno = 0;
			port = strtol(av[i + 1], &end, 10);
			if (errno || *end || end == av[i + 1] || port < 1 || port > 65535) {
				perr(p, "listen on: bad port \"%s\"", av[i + 1]);
				return;
			}
			i++;
			continue;
		}
		if (strcmp(av[i], "w3c-log") == 0) {
			if (i + 1 >= ac || av[i + 1][0] != '/') {
				perr(p, "listen on: w3c-log needs an absolute directory");
				return;
			}
			if (strlen(av[i + 1]) >= PATH_MAX - 16) {
				perr(p, "listen on: w3c-log directory too long");
				return;
			}
			w3c = av[++i];
			continue;
		}
		for (k = 0; k < sizeof(opts) / sizeof(opts[0]); k++)
			if (strcmp(av[i], opts[k].name) == 0)
				break;
		if (k == sizeof(opts) / sizeof(opts[0])) {
			perr(p, "listen on: unknown option \"%s\"", av[i]);
			return;
		}
		if (flags & opts[k].flag) {
			perr(p, "listen on: option \"%s\" given twice", av[i]);
			return;
		}
		flags |= opts[k].flag;
	}
	/* STARTTLS inside implicit TLS means nothing (RFC 8314 3.3). */
	if ((flags & LISTEN_TLS) && (flags & LISTEN_SMTPS)) {
		perr(p, "listen on: \"tls\" (STARTTLS) and \"smtps\" (implicit TLS) "
		    "exclude each other");
		return;
	}
	/* Requiring TLS means offering it. */
	if ((flags & LISTEN_REQUIRE_TLS) && !(flags & LISTEN_SMTPS))
		flags |= LISTEN_TLS;
	TAILQ_FOREACH(o, &p->conf->listeners, entry) {
		if (o->port == port && strcmp(o->addr, addr) == 0) {
			perr(p, "listen on %s port %ld: already declared at line %d",
			    addr, port, o->line);
			return;
		}
	}
	i = 0;
	TAILQ_FOREACH(o, &p->conf->listeners, entry)
		i++;
	if (i >= CONF_LISTENERS_MAX) {
		perr(p, "too many listen statements (at most %d)", CONF_LISTENERS_MAX);
		return;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		perr(p, "out of memory");
		return;
	}
	strlcpy(l->addr, addr, sizeof(l->addr));
	l->port = (uint16_t)port;
	l->line = p->line;
	/* require-auth and auth-plaintext offer AUTH. */
	if (flags & (LISTEN_REQUIRE_AUTH | LISTEN_AUTH_PLAINTEXT))
		flags |= LISTEN_AUTH;
	l->flags = flags;
	(void)strlcpy(l->w3c_log, w3c, sizeof(l->w3c_log));	/* length checked above */
	TAILQ_INSERT_TAIL(&p->conf->listeners, l, entry);
}

/* metrics listen ADDRESS port N: where mailrootd serves GET /metrics (O3). */
static void
kw_metrics(struct parser *p, int ac, char **av)
{
	struct in6_addr a6;
	struct in_addr a4;
	const char *addr = av[2];
	char *end;
	long port;

	(void)ac;
	if (strcmp(av[1], "listen") != 0 || strcmp(av[3], "port") != 0) {
		perr(p, "expected \"metrics listen ADDRESS port N\"");
		return;
	}
	if (strcmp(addr, "all") == 0 || strcmp(addr, "any") == 0)
		addr = "*";
	if (strcmp(addr, "*") != 0 && inet_pton(AF_INET, addr, &a4) != 1 &&
	    inet_pton(AF_INET6, addr, &a6) != 1) {
		perr(p, "metrics listen: \"%s\" is not a numeric IPv4 or IPv6 address "
		    "or \"all\"", av[2]);
		return;
	}
	errno = 0;
	port = strtol(av[4], &end, 10);
	if (errno || *end || end == av[4] || port < 1 || port > 65535) {
		perr(p, "metrics listen: bad port \"%s\"", av[4]);
		return;
	}
	if (p->conf->metrics_addr[0]) {
		perr(p, "metrics listen: already declared at line %d", p->conf->metrics_line);
		return;
	}
	strlcpy(p->conf->metrics_addr, addr, sizeof(p->conf->metrics_addr));
	p->conf->metrics_port = (uint16_t)port;
	p->conf->metrics_line = p->line;
}

static void
kw_smtpd_user(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_user(p, p->conf->smtpd_user, "smtpd-user", av[1]);
}

static void
kw_queued_user(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_user(p, p->conf->queued_user, "queued-user", av[1]);
}

static void
kw_pickupd_user(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_user(p, p->conf->pickupd_user, "pickupd-user", av[1]);
}

static void
kw_mailroot_group(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_user(p, p->conf->mailroot_group, "mailroot-group", av[1]);
}

static void
kw_operators_group(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_user(p, p->conf->operators_group, "operators-group", av[1]);
}

static void
kw_pidfile(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_path(p, p->conf->pidfile, sizeof(p->conf->pidfile), "pidfile", av[1]);
	p->seen_pidfile = 1;
}

static void
kw_control_socket(struct parser *p, int ac, char **av)
{
	(void)ac;
	/* sun_path is 108 bytes on Linux. */
	if (strlen(av[1]) >= 108) {
		perr(p, "control-socket path too long (at most 107 characters)");
		return;
	}
	set_path(p, p->conf->control_socket, sizeof(p->conf->control_socket),
	    "control-socket", av[1]);
	p->seen_socket = 1;
}

static void
kw_log_file(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_path(p, p->conf->log_file, sizeof(p->conf->log_file), "log-file", av[1]);
}

static void
kw_log_verbose(struct parser *p, int ac, char **av)
{
	(void)ac;
	p->conf->log_verbose = parse_yesno(p, av[0], av[1]);
}

static void
kw_max_message_size(struct parser *p, int ac, char **av)
{
	(void)ac;
	if (config_parse_size(av[1], &p->conf->max_message_size) == -1)
		perr(p, "max-message-size: bad size \"%s\" (use e.g. 2048K, 10M)", av[1]);
}

static void
kw_max_recipients(struct parser *p, int ac, char **av)
{
	char *end;
	unsigned long v;

	(void)ac;
	errno = 0;
	v = strtoul(av[1], &end, 10);
	if (errno || *end || end == av[1] || v < 1 || v > 100000) {
		perr(p, "max-recipients: bad number \"%s\" (1 to 100000)", av[1]);
		return;
	}
	p->conf->max_recipients = (uint32_t)v;
}

static void
kw_idle_timeout(struct parser *p, int ac, char **av)
{
	(void)ac;
	if (config_parse_time(av[1], &p->conf->idle_timeout) == -1 ||
	    p->conf->idle_timeout == 0)
		perr(p, "idle-timeout: bad time \"%s\" (use e.g. 30s, 10m)", av[1]);
}

static void
kw_tls_certificate(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_path(p, p->conf->tls_certificate, sizeof(p->conf->tls_certificate),
	    "tls-certificate", av[1]);
	p->tls_cert_line = p->line;
}

static void
kw_tls_key(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_path(p, p->conf->tls_key, sizeof(p->conf->tls_key), "tls-key", av[1]);
	p->tls_key_line = p->line;
}

static void
kw_pickup_interval(struct parser *p, int ac, char **av)
{
	(void)ac;
	if (config_parse_time(av[1], &p->conf->pickup_interval) == -1 ||
	    p->conf->pickup_interval == 0)
		perr(p, "pickup-interval: bad time \"%s\" (use e.g. 5s, 1m)", av[1]);
}

static void
kw_auth_table(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_path(p, p->conf->auth_table, sizeof(p->conf->auth_table), "auth-table", av[1]);
}

static void
kw_auth_max_failures(struct parser *p, int ac, char **av)
{
	char *end;
	unsigned long v;

	(void)ac;
	errno = 0;
	v = strtoul(av[1], &end, 10);
	if (errno || *end || end == av[1] || !isdigit((unsigned char)av[1][0]) ||
	    v > 1000) {
		perr(p, "auth-max-failures: bad number \"%s\" (0 to 1000)", av[1]);
		return;
	}
	p->conf->auth_max_failures = (uint32_t)v;
}

static void
kw_auth_failure_delay(struct parser *p, int ac, char **av)
{
	uint32_t v;

	(void)ac;
	if (config_parse_time(av[1], &v) == -1 || v > 300) {
		perr(p, "auth-failure-delay: bad time \"%s\" (0 to 5m, e.g. 2s)", av[1]);
		return;
	}
	p->conf->auth_failure_delay = v;
}

/* A count of at most `max`; 0 is allowed (it means unlimited). */
static void
set_count(struct parser *p, uint32_t *dst, const char *kw, const char *v, unsigned long max)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || *end || end == v || v[0] == '-' || n > max) {
		perr(p, "%s: bad number \"%s\" (0 to %lu, 0 is unlimited)", kw, v, max);
		return;
	}
	*dst = (uint32_t)n;
}

static void
kw_max_connections(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_count(p, &p->conf->max_connections, av[0], av[1], 1000000);
}

static void
kw_max_conn_per_client(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_count(p, &p->conf->max_conn_per_client, av[0], av[1], 1000000);
}

/* A timeout of at least one second. */
static void
set_timeout(struct parser *p, uint32_t *dst, const char *kw, const char *v)
{
	if (config_parse_time(v, dst) == -1 || *dst == 0)
		perr(p, "%s: bad time \"%s\" (use e.g. 30s, 5m)", kw, v);
}

static void
kw_command_timeout(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_timeout(p, &p->conf->command_timeout, av[0], av[1]);
}

static void
kw_data_timeout(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_timeout(p, &p->conf->data_timeout, av[0], av[1]);
}

static void
kw_data_block_timeout(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_timeout(p, &p->conf->data_block_timeout, av[0], av[1]);
}

static void
kw_max_session_size(struct parser *p, int ac, char **av)
{
	(void)ac;
	if (config_parse_size(av[1], &p->conf->max_session_size) == -1)
		perr(p, "max-session-size: bad size \"%s\" (use e.g. 10240K, 10M; 0 is unlimited)",
		    av[1]);
}

static void
kw_drop_quota(struct parser *p, int ac, char **av)
{
	(void)ac;
	if (config_parse_size(av[1], &p->conf->drop_quota) == -1)
		perr(p, "drop-quota: bad size \"%s\" (use e.g. 500M, 2G; 0 is unlimited)",
		    av[1]);
}

/* commit-sync fsync | syncfs */
static void
kw_commit_sync(struct parser *p, int ac, char **av)
{
	(void)ac;
	if (strcmp(av[1], "fsync") == 0)
		p->conf->commit_syncfs = 0;
	else if (strcmp(av[1], "syncfs") == 0)
		p->conf->commit_syncfs = 1;
	else
		perr(p, "commit-sync takes fsync or syncfs, not \"%s\"", av[1]);
}

/* ---- connection control, relaying, reverse DNS ----------------------------- */

static int
parse_allowdeny(struct parser *p, const char *kw, const char *v)
{
	if (strcmp(v, "allow") == 0)
		return ACL_ALLOW;
	if (strcmp(v, "deny") == 0)
		return ACL_DENY;
	perr(p, "%s takes allow or deny, not \"%s\"", kw, v);
	return 0;
}

/* access allow|deny NETWORK | name PATTERN | regex PCRE */
static void
kw_access(struct parser *p, int ac, char **av)
{
	char err[512];

	if (acl_add(&p->conf->access, 1, ac - 1, av + 1, p->line, err, sizeof(err)) == -1)
		perr(p, "access: %s", err);
}

/* relay allow|deny NETWORK */
static void
kw_relay(struct parser *p, int ac, char **av)
{
	char err[512];

	if (acl_add(&p->conf->relay, 0, ac - 1, av + 1, p->line, err, sizeof(err)) == -1)
		perr(p, "relay: %s", err);
}

static void
kw_access_default(struct parser *p, int ac, char **av)
{
	int v;

	(void)ac;
	if ((v = parse_allowdeny(p, av[0], av[1])) != 0)
		p->conf->access_default = v;
}

static void
kw_relay_default(struct parser *p, int ac, char **av)
{
	int v;

	(void)ac;
	if ((v = parse_allowdeny(p, av[0], av[1])) != 0)
		p->conf->relay_default = v;
}

static void
kw_relay_authenticated(struct parser *p, int ac, char **av)
{
	(void)ac;
	p->conf->relay_authenticated = parse_yesno(p, av[0], av[1]);
}

static void
kw_reverse_dns(struct parser *p, int ac, char **av)
{
	(void)ac;
	p->conf->reverse_dns = parse_yesno(p, av[0], av[1]);
}

/* relay-domain DOMAIN|*.DOMAIN ... */
static void
kw_relay_domain(struct parser *p, int ac, char **av)
{
	struct config *c = p->conf;
	char **nd;
	size_t j;
	int i;

	for (i = 1; i < ac; i++) {
		if (!acl_domain_pattern_valid(av[i], 0)) {
			perr(p, "relay-domain: \"%s\" is not a domain name or *.domain", av[i]);
			continue;
		}
		for (j = 0; j < c->nrelay_domains; j++)
			if (strcase_eq(c->relay_domains[j], av[i]))
				break;
		if (j < c->nrelay_domains) {
			perr(p, "relay-domain %s is declared twice", av[i]);
			continue;
		}
		nd = reallocarray(c->relay_domains, c->nrelay_domains + 1, sizeof(*nd));
		if (nd == NULL || (nd[c->nrelay_domains] = strdup(av[i])) == NULL) {
			if (nd)
				c->relay_domains = nd;
			perr(p, "out of memory");
			return;
		}
		c->relay_domains = nd;
		c->nrelay_domains++;
	}
}

/* dns-server ADDRESS [port N] */
static void
kw_dns_server(struct parser *p, int ac, char **av)
{
	struct config *c = p->conf;
	struct dns_server_conf *d;
	struct in6_addr a6;
	struct in_addr a4;
	long port = 53;
	char *end;
	size_t j;

	if (inet_pton(AF_INET, av[1], &a4) != 1 && inet_pton(AF_INET6, av[1], &a6) != 1) {
		perr(p, "dns-server: \"%s\" is not a numeric IPv4 or IPv6 address", av[1]);
		return;
	}
	if (ac == 3 || (ac == 4 && strcmp(av[2], "port") != 0)) {
		perr(p, "dns-server: expected \"dns-server ADDRESS [port N]\"");
		return;
	}
	if (ac == 4) {
		errno = 0;
		port = strtol(av[3], &end, 10);
		if (errno || *end || end == av[3] || port < 1 || port > 65535) {
			perr(p, "dns-server: bad port \"%s\"", av[3]);
			return;
		}
	}
	for (j = 0; j < c->ndns_servers; j++) {
		if (strcmp(c->dns_servers[j].addr, av[1]) == 0 &&
		    c->dns_servers[j].port == port) {
			perr(p, "dns-server %s port %ld: already declared at line %d",
			    av[1], port, c->dns_servers[j].line);
			return;
		}
	}
	if (c->ndns_servers >= CONF_DNS_SERVERS_MAX) {
		perr(p, "too many dns-server statements (at most %d)", CONF_DNS_SERVERS_MAX);
		return;
	}
	d = &c->dns_servers[c->ndns_servers];
	set_str(p, d->addr, sizeof(d->addr), "dns-server address", av[1]);
	d->port = (uint16_t)port;
	d->line = p->line;
	c->ndns_servers++;
}

/* ---- outbound delivery: routes, remote domains, limits, schedule -------------- */

/* A port of 1 to 65535, digits only. -1 when it is not. */
static long
parse_port(const char *s)
{
	char *end;
	long v;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end != '\0' || v < 1 || v > 65535)
		return -1;
	return v;
}

/* 1 when `s` is a numeric IPv4 or IPv6 address. */
static int
addr_numeric(const char *s)
{
	struct in6_addr a6;
	struct in_addr a4;

	return inet_pton(AF_INET, s, &a4) == 1 || inet_pton(AF_INET6, s, &a6) == 1;
}

int
config_parse_route(const char *route, struct route_conf *r, char *why, size_t whysz)
{
	const char *s = route;
	char host[CONF_NAME_MAX];
	struct in6_addr a6;
	const char *colon, *close, *port = NULL;
	size_t hlen;
	long pv;
	int literal = 0, v6tag = 0;

	memset(r, 0, sizeof(*r));
	if (s[0] == '[') {
		/* [address] or [address]:port; IPv6 only inside the brackets */
		if ((close = strchr(s, ']')) == NULL) {
			snprintf(why, whysz, "route \"%s\": no closing ']'", s);
			return -1;
		}
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0') {
			snprintf(why, whysz, "route \"%s\": only \":PORT\" may follow ']'", s);
			return -1;
		}
		s++;
		hlen = (size_t)(close - s);
		/* the RFC 5321 form [IPv6:addr] is accepted too */
		if (hlen > 5 && strncasecmp(s, "IPv6:", 5) == 0) {
			s += 5;
			hlen -= 5;
			v6tag = 1;
		}
		literal = 1;
	} else {
		if ((colon = strchr(s, ':')) != NULL) {
			if (strchr(colon + 1, ':') != NULL) {
				snprintf(why, whysz, "route \"%s\": an IPv6 address goes "
				    "inside brackets: [address]:port", s);
				return -1;
			}
			port = colon + 1;
			hlen = (size_t)(colon - s);
		} else
			hlen = strlen(s);
	}
	if (hlen == 0 || hlen >= sizeof(host)) {
		snprintf(why, whysz, "route \"%s\": %s host", route,
		    hlen == 0 ? "no" : "too long a");
		return -1;
	}
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (literal) {
		if (v6tag ? inet_pton(AF_INET6, host, &a6) != 1 : !addr_numeric(host)) {
			snprintf(why, whysz, "route: \"[%s%s]\" is not a numeric %s",
			    v6tag ? "IPv6:" : "", host, v6tag ? "IPv6 address" :
			    "IPv4 or IPv6 address");
			return -1;
		}
	} else if (addr_numeric(host)) {
		/* a bare IPv4 address: it can only mean the address itself */
		literal = 1;
	} else if (host[0] == '[' || !smtp_domain_valid(host, 0)) {
		snprintf(why, whysz, "route: \"%s\" is not a valid host name", host);
		return -1;
	}
	if (port != NULL) {
		if ((pv = parse_port(port)) == -1) {
			snprintf(why, whysz, "route: bad port \"%s\" (1 to 65535)", port);
			return -1;
		}
		r->port = (uint16_t)pv;
	}
	/* hlen < sizeof(host) <= sizeof(r->host): it fits */
	(void)strlcpy(r->host, host, sizeof(r->host));
	r->literal = literal;
	return 0;
}

static int
parse_tls_policy(struct parser *p, const char *kw, const char *v, enum tls_policy *out)
{
	if (strcmp(v, "no") == 0)
		*out = TLS_POLICY_NO;
	else if (strcmp(v, "opportunistic") == 0)
		*out = TLS_POLICY_OPPORTUNISTIC;
	else if (strcmp(v, "require") == 0)
		*out = TLS_POLICY_REQUIRE;
	else {
		perr(p, "%s takes no, opportunistic or require, not \"%s\"", kw, v);
		return -1;
	}
	return 0;
}

/* smart-host ROUTE */
/*
 * The terms of an outbound connection that remote-domain and smart-host
 * share: "tls POLICY" and "auth USER PASSWORD" at av[*i].  Returns 1 when
 * one was taken (*i moved past it), 0 when av[*i] is neither, -1 after
 * reporting an error.  `what` names the statement in messages.
 */
static int
parse_terms(struct parser *p, const char *what, int ac, char **av, int *i,
    enum tls_policy *tls, int *seen_tls, char *user, char *password, size_t sz,
    int *seen_auth)
{
	if (strcmp(av[*i], "tls") == 0) {
		if ((*seen_tls)++) {
			perr(p, "%s: option \"tls\" given twice", what);
			return -1;
		}
		if (*i + 1 >= ac) {
			perr(p, "%s: tls needs no, opportunistic or require", what);
			return -1;
		}
		(*i)++;
		return parse_tls_policy(p, "tls", av[*i], tls) == -1 ? -1 : 1;
	}
	if (strcmp(av[*i], "auth") != 0)
		return 0;
	if ((*seen_auth)++) {
		perr(p, "%s: option \"auth\" given twice", what);
		return -1;
	}
	if (*i + 2 >= ac) {
		perr(p, "%s: expected \"auth USER PASSWORD\"", what);
		return -1;
	}
	if (av[*i + 1][0] == '\0' || av[*i + 2][0] == '\0') {
		perr(p, "%s: auth: empty user or password", what);
		return -1;
	}
	if (strlcpy(user, av[*i + 1], sz) >= sz || strlcpy(password, av[*i + 2], sz) >= sz) {
		perr(p, "%s: auth: user or password too long (at most %zu characters)",
		    what, sz - 1);
		return -1;
	}
	*i += 2;
	return 1;
}

static void
kw_smart_host(struct parser *p, int ac, char **av)
{
	struct config *c = p->conf;
	struct route_conf r;
	char why[512];
	int i, t, seen_tls = 0, seen_auth = 0;

	p->smart_host_line = p->line;	/* even when in error: reported once */
	if (config_parse_route(av[1], &r, why, sizeof(why)) == -1) {
		perr(p, "smart-host: %s", why);
		return;
	}
	for (i = 2; i < ac; i++) {
		t = parse_terms(p, "smart-host", ac, av, &i, &c->smart_host_tls, &seen_tls,
		    c->smart_host_auth_user, c->smart_host_auth_password,
		    sizeof(c->smart_host_auth_user), &seen_auth);
		if (t == 0)
			perr(p, "smart-host: unknown option \"%s\"", av[i]);
		if (t != 1)
			return;
	}
	c->smart_host = r;
}

static void
kw_direct_first(struct parser *p, int ac, char **av)
{
	(void)ac;
	p->conf->direct_first = parse_yesno(p, av[0], av[1]);
	p->direct_first_line = p->line;
}

static void
kw_outbound_port(struct parser *p, int ac, char **av)
{
	long v;

	(void)ac;
	if ((v = parse_port(av[1])) == -1) {
		perr(p, "outbound-port: bad port \"%s\" (1 to 65535)", av[1]);
		return;
	}
	p->conf->outbound_port = (uint16_t)v;
}

/*
 * remote-domain PATTERN [allow-relay] [helo] [hold] [route ROUTE]
 *     [tls no|opportunistic|require] [auth USER PASSWORD]
 */
static void
kw_remote_domain(struct parser *p, int ac, char **av)
{
	static const struct {
		const char	*name;
		unsigned	 flag;
	} flags[] = {
		{ "allow-relay", RD_ALLOW_RELAY },
		{ "helo", RD_HELO },
		{ "hold", RD_HOLD },
	};
	struct remote_domain_conf rd, *o, *n;
	char why[512], what[CONF_NAME_MAX + 16];
	int i, r, seen_route = 0, seen_tls = 0, seen_auth = 0;
	size_t k;

	memset(&rd, 0, sizeof(rd));
	(void)snprintf(what, sizeof(what), "remote-domain %s", av[1]);
	if (!acl_domain_pattern_valid(av[1], 0)) {
		perr(p, "remote-domain: \"%s\" is not a domain name or *.domain", av[1]);
		return;
	}
	TAILQ_FOREACH(o, &p->conf->remote_domains, entry) {
		if (strcase_eq(o->pattern, av[1])) {
			perr(p, "remote-domain %s: already declared at line %d",
			    av[1], o->line);
			return;
		}
	}
	if (strlcpy(rd.pattern, av[1], sizeof(rd.pattern)) >= sizeof(rd.pattern)) {
		perr(p, "remote-domain: pattern too long (at most %zu characters)",
		    sizeof(rd.pattern) - 1);
		return;
	}
	for (i = 2; i < ac; i++) {
		for (k = 0; k < sizeof(flags) / sizeof(flags[0]); k++)
			if (strcmp(av[i], flags[k].name) == 0)
				break;
		if (k < sizeof(flags) / sizeof(flags[0])) {
			if (rd.flags & flags[k].flag)
				goto twice;
			rd.flags |= flags[k].flag;
		} else if (strcmp(av[i], "route") == 0) {
			if (seen_route++)
				goto twice;
			if (i + 1 >= ac) {
				perr(p, "remote-domain %s: route needs a ROUTE", av[1]);
				goto fail;
			}
			if (config_parse_route(av[++i], &rd.route, why, sizeof(why)) == -1) {
				perr(p, "remote-domain %s: %s", av[1], why);
				goto fail;
			}
		} else if ((r = parse_terms(p, what, ac, av, &i, &rd.tls, &seen_tls,
		    rd.auth_user, rd.auth_password, sizeof(rd.auth_user),
		    &seen_auth)) == -1) {
			goto fail;
		} else if (r == 0) {
			perr(p, "remote-domain %s: unknown option \"%s\"", av[1], av[i]);
			goto fail;
		}
		continue;
twice:
		perr(p, "remote-domain %s: option \"%s\" given twice", av[1], av[i]);
		goto fail;
	}
	if ((n = malloc(sizeof(*n))) == NULL) {
		perr(p, "out of memory");
		goto fail;
	}
	*n = rd;
	n->line = p->line;
	TAILQ_INSERT_TAIL(&p->conf->remote_domains, n, entry);
fail:
	explicit_bzero(&rd, sizeof(rd));
}

static void
kw_max_outbound_connections(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_count(p, &p->conf->max_outbound_connections, av[0], av[1], 1000000);
}

static void
kw_max_connections_per_domain(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_count(p, &p->conf->max_connections_per_domain, av[0], av[1], 1000000);
}

static void
kw_max_messages_per_connection(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_count(p, &p->conf->max_messages_per_connection, av[0], av[1], 1000000);
}

static void
kw_outbound_connect_timeout(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_timeout(p, &p->conf->outbound_connect_timeout, av[0], av[1]);
}

static void
kw_outbound_timeout(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_timeout(p, &p->conf->outbound_timeout, av[0], av[1]);
}

static void
kw_outbound_tls(struct parser *p, int ac, char **av)
{
	(void)ac;
	(void)parse_tls_policy(p, av[0], av[1], &p->conf->outbound_tls);
}

static void
kw_outbound_tls_ca_file(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_path(p, p->conf->outbound_tls_ca_file, sizeof(p->conf->outbound_tls_ca_file),
	    "outbound-tls-ca-file", av[1]);
}

/* retry-intervals FIRST SECOND THIRD LATER: all four, each at least a second */
static void
kw_retry_intervals(struct parser *p, int ac, char **av)
{
	uint32_t v[4];
	int i;

	(void)ac;
	for (i = 0; i < 4; i++) {
		if (config_parse_time(av[i + 1], &v[i]) == -1 || v[i] == 0) {
			perr(p, "retry-intervals: bad time \"%s\" (use e.g. 15m, 4h; "
			    "not 0)", av[i + 1]);
			return;
		}
	}
	memcpy(p->conf->retry_interval, v, sizeof(v));
}

static void
kw_local_retry_interval(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_timeout(p, &p->conf->local_retry_interval, av[0], av[1]);
}

/* A time where 0 means never. */
static void
set_time0(struct parser *p, uint32_t *dst, const char *kw, const char *v)
{
	if (config_parse_time(v, dst) == -1)
		perr(p, "%s: bad time \"%s\" (use e.g. 4h, 1d; 0 is never)", kw, v);
}

static void
kw_delay_notification(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_time0(p, &p->conf->delay_notification, av[0], av[1]);
	p->delay_line = p->line;
}

static void
kw_expiration_timeout(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_timeout(p, &p->conf->expiration_timeout, av[0], av[1]);
	p->expire_line = p->line;
}

static void
kw_local_delay_notification(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_time0(p, &p->conf->local_delay_notification, av[0], av[1]);
	p->local_delay_line = p->line;
}

static void
kw_local_expiration_timeout(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_timeout(p, &p->conf->local_expiration_timeout, av[0], av[1]);
	p->local_expire_line = p->line;
}

/* ndr-copy-to ADDRESS: a mailbox, with or without <> */
static void
kw_ndr_copy_to(struct parser *p, int ac, char **av)
{
	char addr[SMTP_PATH_MAX_CONF];
	const char *v = av[1];
	size_t len = strlen(v);

	(void)ac;
	if (len >= 2 && v[0] == '<' && v[len - 1] == '>') {
		v++;
		len -= 2;
	}
	if (len >= sizeof(addr)) {
		perr(p, "ndr-copy-to: address too long (at most %zu characters)",
		    sizeof(addr) - 1);
		return;
	}
	memcpy(addr, v, len);
	addr[len] = '\0';
	if (!smtp_mailbox_valid(addr, 0)) {
		perr(p, "ndr-copy-to: \"%s\" is not a valid mailbox (user@domain)", av[1]);
		return;
	}
	set_str(p, p->conf->ndr_copy_to, sizeof(p->conf->ndr_copy_to), "ndr-copy-to", addr);
}

static void
kw_max_hop_count(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_count(p, &p->conf->max_hop_count, av[0], av[1], 1000);
}

static void
kw_masquerade_domain(struct parser *p, int ac, char **av)
{
	(void)ac;
	set_domain(p, p->conf->masquerade_domain, sizeof(p->conf->masquerade_domain),
	    "masquerade-domain", av[1]);
}

static const struct keyword keywords[] = {
	{ "access",		2, 3, kw_access },
	{ "access-default",	1, 1, kw_access_default },
	{ "alias-domain",	1, MAX_TOKENS - 1, kw_alias_domain },
	{ "auth-failure-delay",	1, 1, kw_auth_failure_delay },
	{ "auth-max-failures",	1, 1, kw_auth_max_failures },
	{ "auth-table",		1, 1, kw_auth_table },
	{ "command-timeout",	1, 1, kw_command_timeout },
	{ "control-socket",	1, 1, kw_control_socket },
	{ "data-block-timeout",	1, 1, kw_data_block_timeout },
	{ "data-timeout",	1, 1, kw_data_timeout },
	{ "default-domain",	1, 1, kw_default_domain },
	{ "delay-notification", 1, 1, kw_delay_notification },
	{ "commit-sync",	1, 1, kw_commit_sync },
	{ "direct-first",	1, 1, kw_direct_first },
	{ "dns-server",		1, 3, kw_dns_server },
	{ "drop-quota",		1, 1, kw_drop_quota },
	{ "expiration-timeout", 1, 1, kw_expiration_timeout },
	{ "hostname",		1, 1, kw_hostname },
	{ "idle-timeout",	1, 1, kw_idle_timeout },
	{ "listen",		1, MAX_TOKENS - 1, kw_listen },
	{ "local-delay-notification", 1, 1, kw_local_delay_notification },
	{ "local-expiration-timeout", 1, 1, kw_local_expiration_timeout },
	{ "local-retry-interval", 1, 1, kw_local_retry_interval },
	{ "log-file",		1, 1, kw_log_file },
	{ "log-verbose",	1, 1, kw_log_verbose },
	{ "mailroot",		1, 1, kw_mailroot },
	{ "mailroot-group",	1, 1, kw_mailroot_group },
	{ "masquerade-domain",	1, 1, kw_masquerade_domain },
	{ "max-connections",	1, 1, kw_max_connections },
	{ "max-connections-per-client", 1, 1, kw_max_conn_per_client },
	{ "max-connections-per-domain", 1, 1, kw_max_connections_per_domain },
	{ "max-hop-count",	1, 1, kw_max_hop_count },
	{ "max-message-size",	1, 1, kw_max_message_size },
	{ "max-messages-per-connection", 1, 1, kw_max_messages_per_connection },
	{ "max-outbound-connections", 1, 1, kw_max_outbound_connections },
	{ "max-recipients",	1, 1, kw_max_recipients },
	{ "max-session-size",	1, 1, kw_max_session_size },
	{ "metrics",		4, 4, kw_metrics },
	{ "ndr-copy-to",		1, 1, kw_ndr_copy_to },
	{ "operators-group",	1, 1, kw_operators_group },
	{ "outbound-connect-timeout", 1, 1, kw_outbound_connect_timeout },
	{ "outbound-port",	1, 1, kw_outbound_port },
	{ "outbound-timeout",	1, 1, kw_outbound_timeout },
	{ "outbound-tls",	1, 1, kw_outbound_tls },
	{ "outbound-tls-ca-file", 1, 1, kw_outbound_tls_ca_file },
	{ "pickup-interval",	1, 1, kw_pickup_interval },
	{ "pickupd-user",	1, 1, kw_pickupd_user },
	{ "pidfile",		1, 1, kw_pidfile },
	{ "queued-user",	1, 1, kw_queued_user },
	{ "relay",		2, 2, kw_relay },
	{ "relay-authenticated", 1, 1, kw_relay_authenticated },
	{ "relay-default",	1, 1, kw_relay_default },
	{ "relay-domain",	1, MAX_TOKENS - 1, kw_relay_domain },
	{ "remote-domain",	1, MAX_TOKENS - 1, kw_remote_domain },
	{ "retry-intervals",	4, 4, kw_retry_intervals },
	{ "reverse-dns",	1, 1, kw_reverse_dns },
	{ "smart-host",		1, 6, kw_smart_host },
	{ "smtpd-user",		1, 1, kw_smtpd_user },
	{ "tls-certificate",	1, 1, kw_tls_certificate },
	{ "tls-key",		1, 1, kw_tls_key },
};

const char *const config_keywords[] = {
	"auth-failure-delay", "auth-max-failures", "auth-table",
	"alias-domain", "control-socket", "default-domain", "hostname",
	"idle-timeout", "listen", "log-file", "log-verbose", "mailroot",
	"mailroot-group", "max-message-size", "max-recipients",
	"pickup-interval", "pickupd-user", "pidfile", "queued-user",
	"smtpd-user", "tls-certificate", "tls-key",
	"command-timeout", "commit-sync", "data-block-timeout", "data-timeout", "drop-quota",
	"max-connections", "max-connections-per-client", "max-session-size",
	"access", "access-default", "dns-server", "relay", "relay-authenticated",
	"relay-default", "relay-domain", "reverse-dns",
	"smart-host", "direct-first", "outbound-port", "remote-domain",
	"max-outbound-connections", "max-connections-per-domain",
	"max-messages-per-connection", "outbound-connect-timeout",
	"outbound-timeout", "outbound-tls", "outbound-tls-ca-file",
	"retry-intervals", "local-retry-interval", "delay-notification",
	"expiration-timeout", "local-delay-notification",
	"local-expiration-timeout", "ndr-copy-to", "max-hop-count",
	"masquerade-domain", "metrics", "operators-group", NULL
};

/* ---- the tokenizer --------------------------------------------------------- */

/*
 * Split one line into tokens in place.  Returns the count, or -1 after
 * reporting an unterminated quote or too many tokens.
 */
static int
tokenize(struct parser *p, char *s, char **av)
{
	int ac = 0;
	char *out;

	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0' || *s == '#' || *s == '\n' || *s == '\r')
			return ac;
		if (ac == MAX_TOKENS) {
			perr(p, "too many words on one line (at most %d)", MAX_TOKENS);
			return -1;
		}
		if (*s == '"') {
			av[ac++] = out = ++s;
			while (*s != '"') {
				if (*s == '\0' || *s == '\n' || *s == '\r') {
					perr(p, "unterminated quoted string");
					return -1;
				}
				if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
					s++;
				*out++ = *s++;
			}
			s++;
			if (*s != '\0' && *s != ' ' && *s != '\t' && *s != '\n' &&
			    *s != '\r' && *s != '#') {
				perr(p, "a quoted string must be followed by a blank");
				return -1;
			}
			*out = '\0';
			if (*s != '\0' && *s != '#')
				s++;
			else if (*s == '#')
				*s = '\0';
			continue;
		}
		av[ac++] = s;
		while (*s && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r' && *s != '#')
			s++;
		if (*s == '\0')
			return ac;
		if (*s == '#') {
			*s = '\0';
			return ac;
		}
		*s++ = '\0';
	}
}

static void
parse_line(struct parser *p, char *line)
{
	char *av[MAX_TOKENS];
	const struct keyword *kw = NULL;
	size_t i;
	int ac;

	for (i = 0; line[i]; i++) {
		if (((unsigned char)line[i] < 0x20 && line[i] != '\t') ||
		    line[i] == 0x7f) {
			perr(p, "control character 0x%02x in line", (unsigned char)line[i]);
			return;
		}
	}
	if ((ac = tokenize(p, line, av)) <= 0)
		return;
	for (i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
		if (strcmp(av[0], keywords[i].name) == 0) {
			kw = &keywords[i];
			break;
		}
	}
	if (kw == NULL) {
		perr(p, "unknown keyword \"%s\"", av[0]);
		return;
	}
	if (ac - 1 < kw->min_args || ac - 1 > kw->max_args) {
		if (kw->min_args == kw->max_args)
			perr(p, "%s takes %d argument%s", kw->name, kw->min_args,
			    kw->min_args == 1 ? "" : "s");
		else
			perr(p, "%s: wrong number of arguments", kw->name);
		return;
	}
	kw->fn(p, ac, av);
}

static void
config_defaults(struct config *c)
{
	char host[CONF_NAME_MAX];

	TAILQ_INIT(&c->listeners);
	if (gethostname(host, sizeof(host)) == -1 || !smtp_domain_valid(host, 0))
		strlcpy(host, "localhost", sizeof(host));
	strlcpy(c->hostname, host, sizeof(c->hostname));
	strlcpy(c->mailroot, LOCALSTATEDIR "/spool/mailroot", sizeof(c->mailroot));
	strlcpy(c->smtpd_user, "_smtpd", sizeof(c->smtpd_user));
	strlcpy(c->queued_user, "_smtpq", sizeof(c->queued_user));
	strlcpy(c->pickupd_user, "_smtpp", sizeof(c->pickupd_user));
	strlcpy(c->mailroot_group, "mailroot", sizeof(c->mailroot_group));
	c->max_message_size = 2048 * 1024;	/* IIS default: 2048 KB */
	c->max_recipients = 100;
	c->idle_timeout = 600;
	c->pickup_interval = 5;
	strlcpy(c->auth_table, CONF_AUTH_TABLE_DEFAULT, sizeof(c->auth_table));
	c->auth_max_failures = 3;
	c->auth_failure_delay = 2;
	c->command_timeout = 300;		/* RFC 5321 4.5.3.2.7 */
	c->data_timeout = 600;
	c->data_block_timeout = 180;		/* RFC 5321 4.5.3.2.5 */
	c->max_session_size = 10240 * 1024;	/* IIS default: 10240 KB */
	c->access_default = ACL_ALLOW;
	c->relay_default = ACL_DENY;	/* never an open relay by default */
	c->relay_authenticated = 1;
	TAILQ_INIT(&c->remote_domains);
	c->outbound_port = 25;
	c->commit_syncfs = 1;			/* one device flush per group commit */
	c->max_outbound_connections = 1000;	/* IIS default */
	c->max_connections_per_domain = 100;	/* IIS default */
	c->max_messages_per_connection = 20;	/* IIS default */
	c->outbound_connect_timeout = 30;
	c->outbound_timeout = 300;		/* RFC 5321 4.5.3.2 */
	c->outbound_tls = TLS_POLICY_OPPORTUNISTIC;
	strlcpy(c->outbound_tls_ca_file, "/etc/ssl/certs/ca-certificates.crt",
	    sizeof(c->outbound_tls_ca_file));
	c->retry_interval[0] = 15 * 60;		/* IIS defaults: 15, 30, 60, 240 minutes */
	c->retry_interval[1] = 30 * 60;
	c->retry_interval[2] = 60 * 60;
	c->retry_interval[3] = 240 * 60;
	c->local_retry_interval = 60 * 60;
	c->delay_notification = 12 * 3600;
	c->expiration_timeout = 2 * 86400;
	c->local_delay_notification = 12 * 3600;
	c->local_expiration_timeout = 2 * 86400;
	c->max_hop_count = 15;			/* IIS default */
}

/*
 * A delay notice after the message has expired would never be sent: the
 * notice must come first.  Reported on the later of the two statements.
 */
static void
check_delay(struct parser *p, uint32_t delay, int dline, uint32_t expire, int eline,
    const char *dkw, const char *ekw)
{
	if (delay == 0 || expire == 0 || delay < expire || (dline == 0 && eline == 0))
		return;
	p->line = dline > eline ? dline : eline;
	perr(p, "%s (%us) must be shorter than %s (%us)", dkw, delay, ekw, expire);
}

/* The outbound settings that depend on each other or on the local domains. */
static void
check_outbound(struct parser *p)
{
	struct config *c = p->conf;
	struct remote_domain_conf *rd;

	check_delay(p, c->delay_notification, p->delay_line, c->expiration_timeout,
	    p->expire_line, "delay-notification", "expiration-timeout");
	check_delay(p, c->local_delay_notification, p->local_delay_line,
	    c->local_expiration_timeout, p->local_expire_line,
	    "local-delay-notification", "local-expiration-timeout");
	if (c->direct_first && c->smart_host.host[0] == '\0' && !p->smart_host_line) {
		p->line = p->direct_first_line;
		perr(p, "direct-first yes needs a smart-host");
	}
	if (c->smart_host_auth_user[0] != '\0' && c->smart_host_tls == TLS_POLICY_DEFAULT &&
	    c->outbound_tls == TLS_POLICY_NO) {
		p->line = p->smart_host_line;
		perr(p, "smart-host: auth is sent over TLS only, and outbound-tls is "
		    "no: add tls opportunistic or require (or tls no to send the "
		    "password in plaintext)");
	}
	TAILQ_FOREACH(rd, &c->remote_domains, entry) {
		p->line = rd->line;
		/* Mail for a local domain goes to Drop/: a block there means nothing. */
		if (rd->pattern[0] != '*' && config_is_local_domain(c, rd->pattern))
			perr(p, "remote-domain %s is a local domain", rd->pattern);
		/*
		 * Credentials go only over TLS, unless the block itself says
		 * "tls no": with outbound-tls no they would never be sent.
		 */
		if (rd->auth_user[0] != '\0' && rd->tls == TLS_POLICY_DEFAULT &&
		    c->outbound_tls == TLS_POLICY_NO)
			perr(p, "remote-domain %s: auth is sent over TLS only, and "
			    "outbound-tls is no: give this block tls opportunistic or "
			    "require (or tls no to send the password in plaintext)",
			    rd->pattern);
	}
}

/* Checks that need the whole file: defaults derived from other settings. */
static void
config_finish(struct parser *p)
{
	struct config *c = p->conf;
	struct listener_conf *l;
	size_t i;

	p->line = 0;
	if (!p->seen_domain) {
		/* The default domain is the hostname: an alias may not repeat it. */
		strlcpy(c->default_domain, c->hostname, sizeof(c->default_domain));
		for (i = 0; i < c->nalias_domains; i++)
			if (strcase_eq(c->alias_domains[i], c->default_domain))
				perr(p, "alias-domain %s is the default domain (the "
				    "hostname, as no default-domain is set)",
				    c->alias_domains[i]);
	}
	if (!p->seen_pidfile &&
	    (size_t)snprintf(c->pidfile, sizeof(c->pidfile), "%s/run/mailrootd.pid",
	    c->mailroot) >= sizeof(c->pidfile))
		perr(p, "mailroot path too long");
	if (!p->seen_socket &&
	    (size_t)snprintf(c->control_socket, sizeof(c->control_socket),
	    "%s/run/control.sock", c->mailroot) >= 108)
		perr(p, "mailroot path too long for the control socket; "
		    "set control-socket to a shorter path");
	if (TAILQ_EMPTY(&c->listeners)) {
		if ((l = calloc(1, sizeof(*l))) == NULL) {
			perr(p, "out of memory");
			return;
		}
		strlcpy(l->addr, "*", sizeof(l->addr));
		l->port = 25;
		TAILQ_INSERT_TAIL(&c->listeners, l, entry);
	}
	/*
	 * TLS: the certificate and key go together; a TLS listener needs them.
	 * (A statement with a bad value was reported already: not again.)
	 */
	if (c->tls_certificate[0] && !c->tls_key[0] && !p->tls_key_line) {
		p->line = p->tls_cert_line;
		perr(p, "tls-certificate is set but tls-key is not");
	}
	if (c->tls_key[0] && !c->tls_certificate[0] && !p->tls_cert_line) {
		p->line = p->tls_key_line;
		perr(p, "tls-key is set but tls-certificate is not");
	}
	TAILQ_FOREACH(l, &c->listeners, entry) {
		if (!(l->flags & (LISTEN_TLS | LISTEN_SMTPS)) || c->tls_certificate[0] ||
		    p->tls_cert_line)
			continue;
		p->line = l->line;
		perr(p, "listen on %s port %u: %s needs tls-certificate and tls-key",
		    l->addr, l->port, (l->flags & LISTEN_SMTPS) ? "smtps" :
		    (l->flags & LISTEN_REQUIRE_TLS) ? "require-tls" : "tls");
	}
	check_outbound(p);
	p->line = 0;
}

static struct config *
parse_file(FILE *fp, const char *file, int lenient,
    void (*report)(const char *, void *), void *arg)
{
	struct parser p;
	struct config *c;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	config_defaults(c);
	memset(&p, 0, sizeof(p));
	p.conf = c;
	p.file = file;
	p.report = report;
	p.arg = arg;
	strlcpy(c->file, file, sizeof(c->file));

	while ((len = getline(&line, &cap, fp)) != -1) {
		p.line++;
		if (memchr(line, '\0', (size_t)len) != NULL) {
			perr(&p, "NUL byte in line");
			continue;
		}
		/* A CRLF ending is accepted; a CR anywhere else is not. */
		if (len > 0 && line[len - 1] == '\n') {
			line[--len] = '\0';
			if (len > 0 && line[len - 1] == '\r')
				line[--len] = '\0';
		}
		if (len > MAX_LINE) {
			perr(&p, "line too long (at most %d characters)", MAX_LINE);
			continue;
		}
		parse_line(&p, line);
	}
	/* the buffer may hold a remote-domain ... auth password */
	if (line != NULL)
		explicit_bzero(line, cap);
	free(line);
	if (ferror(fp)) {
		p.line = 0;
		perr(&p, "read error: %s", strerror(errno));
	}
	config_finish(&p);
	if (p.errors && !lenient) {
		config_free(c);
		return NULL;
	}
	return c;
}

struct config *
config_parse(FILE *fp, const char *file, void (*report)(const char *, void *),
    void *arg)
{
	return parse_file(fp, file, 0, report, arg);
}

static struct config *
load_file(const char *path, int lenient, void (*report)(const char *, void *),
    void *arg)
{
	struct config *c;
	char msg[PATH_MAX + 64];
	FILE *fp;

	if ((fp = fopen(path, "re")) == NULL) {
		snprintf(msg, sizeof(msg), "%s: %s", path, strerror(errno));
		if (report)
			report(msg, arg);
		else
			fprintf(stderr, "%s\n", msg);
		return NULL;
	}
	c = parse_file(fp, path, lenient, report, arg);
	fclose(fp);
	return c;
}

struct config *
config_load(const char *path, void (*report)(const char *, void *), void *arg)
{
	return load_file(path, 0, report, arg);
}

struct config *
config_load_lenient(const char *path, void (*report)(const char *, void *), void *arg)
{
	return load_file(path, 1, report, arg);
}

void
config_free(struct config *c)
{
	struct listener_conf *l;
	struct remote_domain_conf *rd;
	size_t i;

	if (c == NULL)
		return;
	while ((rd = TAILQ_FIRST(&c->remote_domains)) != NULL) {
		TAILQ_REMOVE(&c->remote_domains, rd, entry);
		explicit_bzero(rd, sizeof(*rd));
		free(rd);
	}
	while ((l = TAILQ_FIRST(&c->listeners)) != NULL) {
		TAILQ_REMOVE(&c->listeners, l, entry);
		free(l);
	}
	for (i = 0; i < c->nalias_domains; i++)
		free(c->alias_domains[i]);
	free(c->alias_domains);
	acl_free(&c->access);
	acl_free(&c->relay);
	for (i = 0; i < c->nrelay_domains; i++)
		free(c->relay_domains[i]);
	free(c->relay_domains);
	free(c);
}

int
config_auth_used(const struct config *c)
{
	const struct listener_conf *l;

	TAILQ_FOREACH(l, &c->listeners, entry)
		if (l->flags & LISTEN_AUTH)
			return 1;
	return 0;
}

int
config_is_local_domain(const struct config *c, const char *domain)
{
	size_t i;

	if (strcase_eq(domain, c->default_domain))
		return 1;
	for (i = 0; i < c->nalias_domains; i++)
		if (strcase_eq(domain, c->alias_domains[i]))
			return 1;
	return 0;
}

int
config_is_local_rcpt(const struct config *c, const char *addr)
{
	const char *domain;

	if (smtp_addr_domain(addr, &domain) == -1)
		return smtp_is_postmaster(addr);
	return config_is_local_domain(c, domain);
}

const struct remote_domain_conf *
config_remote_domain(const struct config *c, const char *domain)
{
	const struct remote_domain_conf *rd, *best = NULL;
	size_t blen = 0, plen;

	TAILQ_FOREACH(rd, &c->remote_domains, entry) {
		if (!acl_domain_match(rd->pattern, domain))
			continue;
		if (rd->pattern[0] != '*')
			return rd;	/* an exact pattern wins */
		plen = strlen(rd->pattern);
		if (best == NULL || plen > blen) {
			best = rd;
			blen = plen;
		}
	}
	return best;
}
