/*
 * check_config.c - unit tests of common/config.c: good files (the sample of
 * the README, every keyword, quoting and comments, defaults), a table of bad
 * files each with the "file:line: message" expected, several errors in one
 * file, size and time units, local domains, and the man page listing every
 * keyword of config_keywords.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <check.h>

#include "config.h"

#define CONF_NAME	"test.conf"
#define MAX_MSGS	32

/* ---- helpers --------------------------------------------------------------- */

struct msgs {
	char	*msg[MAX_MSGS];
	int	 n;
};

static void
collect(const char *msg, void *arg)
{
	struct msgs *m = arg;

	if (m->n < MAX_MSGS)
		m->msg[m->n] = strdup(msg);
	m->n++;
}

static void
msgs_free(struct msgs *m)
{
	int i;

	for (i = 0; i < m->n && i < MAX_MSGS; i++)
		free(m->msg[i]);
	memset(m, 0, sizeof(*m));
}

/* Parse `len` bytes of text (NULs allowed) as file CONF_NAME. */
static struct config *
parse_buf(const char *text, size_t len, struct msgs *m)
{
	struct config *c;
	char *copy;
	FILE *fp;

	memset(m, 0, sizeof(*m));
	/* fmemopen of an empty buffer is refused by some libcs: use a real stream */
	if ((fp = tmpfile()) == NULL)
		ck_abort_msg("tmpfile: %s", strerror(errno));
	copy = malloc(len + 1);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, text, len);
	if (len > 0)
		ck_assert_uint_eq(fwrite(copy, 1, len, fp), len);
	rewind(fp);
	c = config_parse(fp, CONF_NAME, collect, m);
	fclose(fp);
	free(copy);
	return c;
}

static struct config *
parse_str(const char *text, struct msgs *m)
{
	return parse_buf(text, strlen(text), m);
}

static void
dump_msgs(const struct msgs *m, char *out, size_t outsz)
{
	int i;

	out[0] = '\0';
	for (i = 0; i < m->n && i < MAX_MSGS; i++) {
		strncat(out, "[", outsz - strlen(out) - 1);
		strncat(out, m->msg[i], outsz - strlen(out) - 1);
		strncat(out, "] ", outsz - strlen(out) - 1);
	}
}

/* Does message `msg` say "CONF_NAME:line: ...substr..."? */
static int
msg_matches(const char *msg, int line, const char *substr)
{
	char prefix[64];

	if (line > 0)
		snprintf(prefix, sizeof(prefix), "%s:%d: ", CONF_NAME, line);
	else
		snprintf(prefix, sizeof(prefix), "%s: ", CONF_NAME);
	return strncmp(msg, prefix, strlen(prefix)) == 0 &&
	    strstr(msg + strlen(prefix), substr) != NULL;
}

static struct config *
parse_ok(const char *text)
{
	struct config *c;
	struct msgs m;
	char all[4096];

	c = parse_str(text, &m);
	dump_msgs(&m, all, sizeof(all));
	ck_assert_msg(c != NULL && m.n == 0, "rejected: %s\n%s", all, text);
	msgs_free(&m);
	return c;
}

START_TEST(test_metrics)
{
	struct config *c;

	c = parse_ok("hostname mx.example.test\n");
	ck_assert_str_eq(c->metrics_addr, "");
	ck_assert_uint_eq(c->metrics_port, 0);
	config_free(c);
	c = parse_ok("metrics listen 127.0.0.1 port 9425\n");
	ck_assert_str_eq(c->metrics_addr, "127.0.0.1");
	ck_assert_uint_eq(c->metrics_port, 9425);
	ck_assert_int_eq(c->metrics_line, 1);
	config_free(c);
	c = parse_ok("metrics listen all port 9100\n");
	ck_assert_str_eq(c->metrics_addr, "*");
	config_free(c);
}
END_TEST

static size_t
count_listeners(const struct config *c)
{
	const struct listener_conf *l;
	size_t n = 0;

	TAILQ_FOREACH(l, &c->listeners, entry)
		n++;
	return n;
}

static const struct listener_conf *
nth_listener(const struct config *c, size_t i)
{
	const struct listener_conf *l;

	TAILQ_FOREACH(l, &c->listeners, entry)
		if (i-- == 0)
			return l;
	return NULL;
}

/* ---- good files ---------------------------------------------------------------- */

START_TEST(test_sample)
{
	static const char sample[] =
	    "hostname       mx.example.test\n"
	    "mailroot       \"/var/spool/mailroot\"\n"
	    "default-domain example.test\n"
	    "alias-domain   alias.example.test\n"
	    "listen on 127.0.0.1 port 2525\n";
	struct config *c;
	const struct listener_conf *l;

	c = parse_ok(sample);
	ck_assert_str_eq(c->file, CONF_NAME);
	ck_assert_str_eq(c->hostname, "mx.example.test");
	ck_assert_str_eq(c->mailroot, "/var/spool/mailroot");
	ck_assert_str_eq(c->default_domain, "example.test");
	ck_assert_uint_eq(c->nalias_domains, 1);
	ck_assert_str_eq(c->alias_domains[0], "alias.example.test");
	ck_assert_uint_eq(count_listeners(c), 1);
	l = TAILQ_FIRST(&c->listeners);
	ck_assert_str_eq(l->addr, "127.0.0.1");
	ck_assert_uint_eq(l->port, 2525);
	ck_assert_int_eq(l->line, 5);
	/* derived from mailroot */
	ck_assert_str_eq(c->pidfile, "/var/spool/mailroot/run/mailrootd.pid");
	ck_assert_str_eq(c->control_socket, "/var/spool/mailroot/run/control.sock");
	config_free(c);
}
END_TEST

START_TEST(test_all_keywords)
{
	static const char text[] =
	    "# a full configuration\n"
	    "\n"
	    "   # indented comment\n"
	    "hostname mx.example.test   # trailing comment\n"
	    "mailroot \"/srv/mail root\"\n"
	    "default-domain Example.Test\n"
	    "alias-domain a.example.test b.example.test\n"
	    "alias-domain \"c.example.test\"\n"
	    "listen on 127.0.0.1 port 2525\n"
	    "listen on ::1\n"
	    "listen on all port 587\n"
	    "listen on 127.0.0.1 port 587\n"
	    "\tlisten\ton\t2001:db8::1\tport\t65535\n"
	    "smtpd-user _smtpd2\n"
	    "queued-user q.user\n"
	    "pickupd-user pick-up\n"
	    "mailroot-group mail_root\n"
	    "operators-group ops\n"
	    "pidfile /run/mailroot/mailrootd.pid\n"
	    "control-socket \"/run/mail root/control.sock\"\n"
	    "log-file /var/log/mailroot.log\n"
	    "log-verbose yes\n"
	    "tls-certificate /etc/ssl/mx.pem\n"
	    "tls-key \"/etc/ssl/private/mx key.pem\"\n"
	    "max-message-size 10M\n"
	    "max-recipients 500\n"
	    "idle-timeout 5m\n"
	    "pickup-interval 30s\r\n"
	    "max-connections 2000\n"
	    "max-connections-per-client 20\n"
	    "command-timeout 2m\n"
	    "data-timeout 15m\n"
	    "data-block-timeout 90s\n"
	    "max-session-size 20M\n"
	    "drop-quota 1G\n"
	    "# done";
	struct config *c;
	const struct listener_conf *l;

	c = parse_ok(text);
	ck_assert_str_eq(c->hostname, "mx.example.test");
	ck_assert_str_eq(c->mailroot, "/srv/mail root");
	ck_assert_str_eq(c->default_domain, "Example.Test");
	ck_assert_uint_eq(c->nalias_domains, 3);
	ck_assert_str_eq(c->alias_domains[0], "a.example.test");
	ck_assert_str_eq(c->alias_domains[1], "b.example.test");
	ck_assert_str_eq(c->alias_domains[2], "c.example.test");
	ck_assert_uint_eq(count_listeners(c), 5);
	l = nth_listener(c, 0);
	ck_assert_str_eq(l->addr, "127.0.0.1"); ck_assert_uint_eq(l->port, 2525);
	ck_assert_int_eq(l->line, 9);
	l = nth_listener(c, 1);
	ck_assert_str_eq(l->addr, "::1"); ck_assert_uint_eq(l->port, 25);
	l = nth_listener(c, 2);
	ck_assert_str_eq(l->addr, "*"); ck_assert_uint_eq(l->port, 587);
	l = nth_listener(c, 3);
	ck_assert_str_eq(l->addr, "127.0.0.1"); ck_assert_uint_eq(l->port, 587);
	l = nth_listener(c, 4);
	ck_assert_str_eq(l->addr, "2001:db8::1"); ck_assert_uint_eq(l->port, 65535);
	ck_assert_int_eq(l->line, 13);
	ck_assert_str_eq(c->smtpd_user, "_smtpd2");
	ck_assert_str_eq(c->queued_user, "q.user");
	ck_assert_str_eq(c->pickupd_user, "pick-up");
	ck_assert_str_eq(c->mailroot_group, "mail_root");
	ck_assert_str_eq(c->operators_group, "ops");
	ck_assert_str_eq(c->pidfile, "/run/mailroot/mailrootd.pid");
	ck_assert_str_eq(c->control_socket, "/run/mail root/control.sock");
	ck_assert_str_eq(c->log_file, "/var/log/mailroot.log");
	ck_assert_int_eq(c->log_verbose, 1);
	ck_assert_str_eq(c->tls_certificate, "/etc/ssl/mx.pem");
	ck_assert_str_eq(c->tls_key, "/etc/ssl/private/mx key.pem");
	ck_assert(c->max_message_size == 10ULL * 1024 * 1024);
	ck_assert_uint_eq(c->max_recipients, 500);
	ck_assert_uint_eq(c->idle_timeout, 300);
	ck_assert_uint_eq(c->pickup_interval, 30);
	ck_assert_uint_eq(c->max_connections, 2000);
	ck_assert_uint_eq(c->max_conn_per_client, 20);
	ck_assert_uint_eq(c->command_timeout, 120);
	ck_assert_uint_eq(c->data_timeout, 900);
	ck_assert_uint_eq(c->data_block_timeout, 90);
	ck_assert(c->max_session_size == 20ULL * 1024 * 1024);
	ck_assert(c->drop_quota == 1024ULL * 1024 * 1024);
	config_free(c);

	/* 0 is unlimited for the counts and sizes */
	c = parse_ok("max-connections 0\nmax-connections-per-client 0\n"
	    "max-session-size 0\ndrop-quota 0\n");
	ck_assert_uint_eq(c->max_connections, 0);
	ck_assert_uint_eq(c->max_conn_per_client, 0);
	ck_assert(c->max_session_size == 0);
	ck_assert(c->drop_quota == 0);
	config_free(c);
}
END_TEST

START_TEST(test_quoting)
{
	struct config *c;

	c = parse_ok("mailroot \"/a b\\\"c\\\\d#e\" # comment \"x\n"
	    "log-file \"/x\"#comment right after\n"
	    "pidfile\t\"/p q\"\t\n");
	ck_assert_str_eq(c->mailroot, "/a b\"c\\d#e");
	ck_assert_str_eq(c->log_file, "/x");
	ck_assert_str_eq(c->pidfile, "/p q");
	config_free(c);

	/* a '#' inside a word ends it */
	c = parse_ok("hostname mx.example.test#comment\n");
	ck_assert_str_eq(c->hostname, "mx.example.test");
	config_free(c);
}
END_TEST

START_TEST(test_defaults)
{
	struct config *c;
	const struct listener_conf *l;

	c = parse_ok("");
	ck_assert(c->hostname[0] != '\0');
	ck_assert_str_eq(c->default_domain, c->hostname);
	ck_assert_str_eq(c->mailroot, LOCALSTATEDIR "/spool/mailroot");
	ck_assert_str_eq(c->pidfile, LOCALSTATEDIR "/spool/mailroot/run/mailrootd.pid");
	ck_assert_str_eq(c->control_socket,
	    LOCALSTATEDIR "/spool/mailroot/run/control.sock");
	ck_assert_str_eq(c->log_file, "");
	ck_assert_str_eq(c->smtpd_user, "_smtpd");
	ck_assert_str_eq(c->queued_user, "_smtpq");
	ck_assert_str_eq(c->pickupd_user, "_smtpp");
	ck_assert_str_eq(c->mailroot_group, "mailroot");
	ck_assert(c->max_message_size == 2048 * 1024);
	ck_assert_uint_eq(c->max_recipients, 100);
	ck_assert_uint_eq(c->idle_timeout, 600);
	ck_assert_uint_eq(c->pickup_interval, 5);
	ck_assert_uint_eq(c->max_connections, 0);
	ck_assert_uint_eq(c->max_conn_per_client, 0);
	ck_assert_uint_eq(c->command_timeout, 300);
	ck_assert_uint_eq(c->data_timeout, 600);
	ck_assert_uint_eq(c->data_block_timeout, 180);
	ck_assert(c->max_session_size == 10240 * 1024);
	ck_assert(c->drop_quota == 0);
	ck_assert_int_eq(c->log_verbose, 0);
	ck_assert_uint_eq(c->nalias_domains, 0);
	ck_assert_uint_eq(count_listeners(c), 1);
	l = TAILQ_FIRST(&c->listeners);
	ck_assert_str_eq(l->addr, "*");
	ck_assert_uint_eq(l->port, 25);
	ck_assert_uint_eq(l->flags, 0);
	ck_assert_str_eq(c->tls_certificate, "");
	ck_assert_str_eq(c->tls_key, "");
	config_free(c);

	/* default-domain follows hostname when not given */
	c = parse_ok("hostname mx.example.test\n");
	ck_assert_str_eq(c->default_domain, "mx.example.test");
	config_free(c);

	/* comments and blank lines only */
	c = parse_ok("# x\n\n   \n\t# y\n\r\n");
	config_free(c);

	config_free(NULL);
}
END_TEST

/* SMTP AUTH: the listener options, the global keywords and their defaults. */
START_TEST(test_auth)
{
	struct config *c;
	const struct listener_conf *l;

	c = parse_ok("");
	ck_assert_str_eq(c->auth_table, SYSCONFDIR "/mailroot/passwd");
	ck_assert_uint_eq(c->auth_max_failures, 3);
	ck_assert_uint_eq(c->auth_failure_delay, 2);
	l = TAILQ_FIRST(&c->listeners);
	ck_assert(!(l->flags & LISTEN_AUTH) && !(l->flags & LISTEN_REQUIRE_AUTH) && !(l->flags & LISTEN_AUTH_PLAINTEXT));
	ck_assert_int_eq(config_auth_used(c), 0);
	config_free(c);

	c = parse_ok("listen on 127.0.0.1 port 25\n"
	    "listen on 127.0.0.1 port 587 auth\n"
	    "listen on ::1 port 587 require-auth\n"
	    "listen on 127.0.0.1 port 2525 auth-plaintext port 2526\n"
	    "listen on 127.0.0.2 auth require-auth auth-plaintext\n"
	    "auth-table \"/etc/mail root/passwd\"\n"
	    "auth-max-failures 0\n"
	    "auth-failure-delay 1m\n");
	ck_assert_uint_eq(count_listeners(c), 5);
	l = nth_listener(c, 0);
	ck_assert(!(l->flags & LISTEN_AUTH) && !(l->flags & LISTEN_REQUIRE_AUTH) && !(l->flags & LISTEN_AUTH_PLAINTEXT));
	l = nth_listener(c, 1);
	ck_assert((l->flags & LISTEN_AUTH) && !(l->flags & LISTEN_REQUIRE_AUTH) && !(l->flags & LISTEN_AUTH_PLAINTEXT));
	l = nth_listener(c, 2);		/* require-auth implies auth */
	ck_assert((l->flags & LISTEN_AUTH) && (l->flags & LISTEN_REQUIRE_AUTH) && !(l->flags & LISTEN_AUTH_PLAINTEXT));
	l = nth_listener(c, 3);		/* so does auth-plaintext; options in any order */
	ck_assert((l->flags & LISTEN_AUTH) && !(l->flags & LISTEN_REQUIRE_AUTH) && (l->flags & LISTEN_AUTH_PLAINTEXT));
	ck_assert_uint_eq(l->port, 2526);
	l = nth_listener(c, 4);
	ck_assert((l->flags & LISTEN_AUTH) && (l->flags & LISTEN_REQUIRE_AUTH) && (l->flags & LISTEN_AUTH_PLAINTEXT));
	ck_assert_uint_eq(l->port, 25);
	ck_assert_int_eq(config_auth_used(c), 1);
	ck_assert_str_eq(c->auth_table, "/etc/mail root/passwd");
	ck_assert_uint_eq(c->auth_max_failures, 0);
	ck_assert_uint_eq(c->auth_failure_delay, 60);
	config_free(c);

	c = parse_ok("auth-max-failures 1000\nauth-failure-delay 0\n");
	ck_assert_uint_eq(c->auth_max_failures, 1000);
	ck_assert_uint_eq(c->auth_failure_delay, 0);
	config_free(c);
	c = parse_ok("auth-failure-delay 5m\n");
	ck_assert_uint_eq(c->auth_failure_delay, 300);
	config_free(c);
}
END_TEST

/* listen ... w3c-log DIRECTORY: per listener, absolute, beside other options. */
START_TEST(test_listen_w3c_log)
{
	struct config *c;

	c = parse_ok("listen on 127.0.0.1 port 25 w3c-log /var/log/mailroot/w3c tls\n"
	    "listen on 127.0.0.1 port 587 require-auth w3c-log \"/var/log/w 3c\"\n"
	    "listen on ::1 port 25\n"
	    "tls-certificate /etc/ssl/c.pem\ntls-key /etc/ssl/k.pem\n");
	ck_assert_str_eq(nth_listener(c, 0)->w3c_log, "/var/log/mailroot/w3c");
	ck_assert(nth_listener(c, 0)->flags & LISTEN_TLS);
	ck_assert_str_eq(nth_listener(c, 1)->w3c_log, "/var/log/w 3c");
	ck_assert_str_eq(nth_listener(c, 2)->w3c_log, "");
	config_free(c);
}
END_TEST

/* Listener options: tls, smtps, require-tls (which implies tls), any order. */
START_TEST(test_listen_tls)
{
	static const char text[] =
	    "listen on 127.0.0.1 port 25 tls\n"
	    "listen on 127.0.0.1 port 465 smtps\n"
	    "listen on 127.0.0.1 port 587 require-tls\n"
	    "listen on ::1 port 2465 require-tls smtps\n"
	    "listen on ::1 tls require-tls port 26\n"
	    "listen on ::1 port 2525\n"
	    "tls-key /etc/mailroot/key.pem\n"
	    "tls-certificate /etc/mailroot/cert.pem\n";
	static const unsigned want[] = {
		LISTEN_TLS,
		LISTEN_SMTPS,
		LISTEN_TLS | LISTEN_REQUIRE_TLS,
		LISTEN_SMTPS | LISTEN_REQUIRE_TLS,
		LISTEN_TLS | LISTEN_REQUIRE_TLS,
		0,
	};
	struct config *c;
	const struct listener_conf *l;
	struct msgs m;
	size_t i;

	c = parse_ok(text);
	ck_assert_uint_eq(count_listeners(c), 6);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		l = nth_listener(c, i);
		ck_assert_msg(l->flags == want[i], "listener %zu: flags %#x, want %#x",
		    i, l->flags, want[i]);
	}
	ck_assert_uint_eq(nth_listener(c, 4)->port, 26);
	ck_assert_str_eq(c->tls_certificate, "/etc/mailroot/cert.pem");
	ck_assert_str_eq(c->tls_key, "/etc/mailroot/key.pem");
	config_free(c);

	/* A certificate without TLS listeners is fine (loaded, unused). */
	c = parse_ok("tls-certificate /c.pem\ntls-key /k.pem\n");
	ck_assert_uint_eq(TAILQ_FIRST(&c->listeners)->flags, 0);
	config_free(c);

	/* A bad tls-certificate is reported once, not again by the listener. */
	c = parse_str("tls-certificate cert.pem\ntls-key /k.pem\nlisten on ::1 tls\n", &m);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(m.n, 1);
	msgs_free(&m);
}
END_TEST

/* Exactly MAX_TOKENS (16) words, and a line of exactly 4096 characters, are fine. */
START_TEST(test_limits_ok)
{
	char buf[8192];
	struct config *c;
	size_t n;

	c = parse_ok("alias-domain a1.test a2.test a3.test a4.test a5.test a6.test "
	    "a7.test a8.test a9.test a10.test a11.test a12.test a13.test "
	    "a14.test a15.test\n");
	ck_assert_uint_eq(c->nalias_domains, 15);
	config_free(c);

	/* "# xxx...x\n": 4096 characters before the newline */
	buf[0] = '#';
	memset(buf + 1, 'x', 4095);
	buf[4096] = '\n';
	n = 4097;
	memcpy(buf + n, "hostname mx.example.test\n", 26);
	c = parse_ok(buf);
	ck_assert_str_eq(c->hostname, "mx.example.test");
	config_free(c);
}
END_TEST

/* Connection control, relaying and reverse DNS: values and defaults. */
START_TEST(test_access_keywords)
{
	static const char text[] =
	    "access allow 127.0.0.1\n"				/* 1 */
	    "access deny 192.0.2.0/24\n"			/* 2 */
	    "access allow ::ffff:198.51.100.0/120\n"		/* 3 */
	    "access allow name *.client.example.test\n"	/* 4 */
	    "access deny regex \"^dyn-[0-9]+\\.\"\n"		/* 5 */
	    "access-default deny\n"
	    "relay allow 10.0.0.0/8\n"				/* 7 */
	    "relay deny 2001:db8::/32\n"			/* 8 */
	    "relay-default allow\n"
	    "relay-authenticated no\n"
	    "relay-domain partner.example.org *.wild.example.org\n"
	    "relay-domain other.example.net\n"
	    "reverse-dns yes\n"
	    "dns-server 127.0.0.1 port 5353\n"
	    "dns-server ::1\n";
	struct config *c;
	char buf[NETMASK_STRLEN];

	c = parse_ok(text);
	ck_assert_uint_eq(c->access.n, 5);
	ck_assert_int_eq(c->access.rules[0].action, ACL_ALLOW);
	ck_assert_int_eq(c->access.rules[0].type, ACL_NET);
	ck_assert_str_eq(netmask_format(&c->access.rules[0].net, buf, sizeof(buf)),
	    "127.0.0.1/32");
	ck_assert_int_eq(c->access.rules[1].action, ACL_DENY);
	ck_assert_str_eq(netmask_format(&c->access.rules[1].net, buf, sizeof(buf)),
	    "192.0.2.0/24");
	ck_assert_int_eq(c->access.rules[1].line, 2);
	ck_assert_str_eq(netmask_format(&c->access.rules[2].net, buf, sizeof(buf)),
	    "198.51.100.0/24");
	ck_assert_int_eq(c->access.rules[3].type, ACL_NAME);
	ck_assert_str_eq(c->access.rules[3].pattern, "*.client.example.test");
	ck_assert_int_eq(c->access.rules[4].type, ACL_REGEX);
	ck_assert_str_eq(c->access.rules[4].pattern, "^dyn-[0-9]+\\.");
	ck_assert_ptr_nonnull(c->access.rules[4].re);
	ck_assert_int_eq(c->access.rules[4].line, 5);
	ck_assert_int_eq(c->access_default, ACL_DENY);
	ck_assert_uint_eq(c->relay.n, 2);
	ck_assert_int_eq(c->relay.rules[0].action, ACL_ALLOW);
	ck_assert_int_eq(c->relay.rules[1].action, ACL_DENY);
	ck_assert_int_eq(c->relay.rules[1].line, 8);
	ck_assert_int_eq(c->relay_default, ACL_ALLOW);
	ck_assert_int_eq(c->relay_authenticated, 0);
	ck_assert_uint_eq(c->nrelay_domains, 3);
	ck_assert_str_eq(c->relay_domains[0], "partner.example.org");
	ck_assert_str_eq(c->relay_domains[1], "*.wild.example.org");
	ck_assert_str_eq(c->relay_domains[2], "other.example.net");
	ck_assert_int_eq(c->reverse_dns, 1);
	ck_assert_uint_eq(c->ndns_servers, 2);
	ck_assert_str_eq(c->dns_servers[0].addr, "127.0.0.1");
	ck_assert_uint_eq(c->dns_servers[0].port, 5353);
	ck_assert_str_eq(c->dns_servers[1].addr, "::1");
	ck_assert_uint_eq(c->dns_servers[1].port, 53);
	ck_assert_int_eq(c->dns_servers[1].line, 15);
	config_free(c);

	/* the defaults: allow every client, relay for none but authenticated ones */
	c = parse_ok("");
	ck_assert_uint_eq(c->access.n, 0);
	ck_assert_int_eq(c->access_default, ACL_ALLOW);
	ck_assert_uint_eq(c->relay.n, 0);
	ck_assert_int_eq(c->relay_default, ACL_DENY);
	ck_assert_int_eq(c->relay_authenticated, 1);
	ck_assert_uint_eq(c->nrelay_domains, 0);
	ck_assert_int_eq(c->reverse_dns, 0);
	ck_assert_uint_eq(c->ndns_servers, 0);
	config_free(c);

	/* the last access-default counts; rules add up */
	c = parse_ok("access-default deny\naccess deny ::1\naccess-default allow\n"
	    "access deny ::2\n");
	ck_assert_int_eq(c->access_default, ACL_ALLOW);
	ck_assert_uint_eq(c->access.n, 2);
	config_free(c);
}
END_TEST

/* A file whose regex is bad is refused, and nothing leaks (ASan). */
START_TEST(test_access_errors_free)
{
	struct config *c;
	struct msgs m;

	c = parse_str("access deny regex ok\nrelay-domain a.test\naccess deny regex (\n"
	    "relay allow 192.0.2.0/24\n", &m);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(m.n, 1);
	ck_assert(msg_matches(m.msg[0], 3, "bad regex"));
	msgs_free(&m);
}
END_TEST

/* ---- bad files ------------------------------------------------------------------ */

struct bad {
	const char	*text;
	size_t		 len;		/* 0: strlen(text) */
	int		 line;		/* of the first message; 0: no line */
	const char	*substr;
};

#define B(t, l, s)	{ t, 0, l, s }

static const struct bad bad[] = {
	B("bogus x\n", 1, "unknown keyword \"bogus\""),
	B("listen on 127.0.0.1 w3c-log\n", 1, "w3c-log needs an absolute directory"),
	B("listen on 127.0.0.1 w3c-log logs/w3c\n", 1, "w3c-log needs an absolute directory"),
	B("metrics listen 127.0.0.1\n", 1, "metrics takes"),
	B("metrics on 127.0.0.1 port 9425\n", 1, "expected \"metrics listen ADDRESS port N\""),
	B("metrics listen localhost port 9425\n", 1, "not a numeric IPv4 or IPv6 address"),
	B("metrics listen 127.0.0.1 port 0\n", 1, "bad port \"0\""),
	B("metrics listen ::1 port 65536\n", 1, "bad port"),
	B("metrics listen ::1 port 1\nmetrics listen ::1 port 2\n", 2, "already declared at line 1"),
	B("# c\n\nHostname mx.example.test\n", 3, "unknown keyword \"Hostname\""),
	B("hostname\n", 1, "hostname takes 1 argument"),
	B("hostname a.test b.test\n", 1, "hostname takes 1 argument"),
	B("hostname -bad-.test\n", 1, "hostname is not a valid domain name"),
	B("hostname a..test\n", 1, "hostname is not a valid domain name"),
	B("hostname [192.0.2.1]\n", 1, "hostname is not a valid domain name"),
	B("hostname \"\"\n", 1, "hostname is not a valid domain name"),
	B("default-domain under_score.test\n", 1, "default-domain is not a valid domain name"),
	B("alias-domain\n", 1, "alias-domain: wrong number of arguments"),
	B("alias-domain a.test bad..test\n", 1, "alias-domain is not a valid domain name"),
	B("alias-domain a.test a.test\n", 1, "alias-domain a.test is declared twice"),
	B("alias-domain a.test\nalias-domain A.TEST\n", 2, "alias-domain A.TEST is declared twice"),
	/* the clash is reported on the line of the later declaration, either order */
	B("default-domain example.test\nalias-domain EXAMPLE.test\n", 2,
	    "alias-domain EXAMPLE.test is the default domain"),
	B("alias-domain example.test\ndefault-domain Example.Test\n", 2,
	    "default-domain Example.Test is also an alias-domain"),
	/* the hostname as default domain is known only at the end: no line */
	B("hostname mx.example.test\nalias-domain MX.example.test\n", 0,
	    "alias-domain MX.example.test is the default domain"),

	/* listen */
	B("listen\n", 1, "listen: wrong number of arguments"),
	B("listen at 127.0.0.1\n", 1, "expected \"listen on ADDRESS [port N]\""),
	B("listen on\n", 1, "listen on: missing address"),
	B("listen on localhost\n", 1, "\"localhost\" is not a numeric IPv4 or IPv6 address"),
	B("listen on 127.0.0.256\n", 1, "is not a numeric"),
	B("listen on 127.0.0.1 port 0\n", 1, "listen on: bad port \"0\""),
	B("listen on 127.0.0.1 port 65536\n", 1, "bad port \"65536\""),
	B("listen on 127.0.0.1 port -25\n", 1, "bad port"),
	B("listen on 127.0.0.1 port smtp\n", 1, "bad port \"smtp\""),
	B("listen on 127.0.0.1 port 25x\n", 1, "bad port \"25x\""),
	B("listen on 127.0.0.1 port \"\"\n", 1, "bad port \"\""),
	B("listen on 127.0.0.1 port 99999999999999999999\n", 1, "bad port"),
	B("listen on 127.0.0.1 port\n", 1, "unknown option \"port\""),
	B("listen on 127.0.0.1 starttls\n", 1, "unknown option \"starttls\""),
	B("listen on 127.0.0.1 TLS\n", 1, "unknown option \"TLS\""),
	B("listen on 127.0.0.1 port 25\nlisten on 127.0.0.1 port 25\n", 2,
	    "listen on 127.0.0.1 port 25: already declared at line 1"),
	B("listen on 127.0.0.1\n# x\nlisten on 127.0.0.1 port 25\n", 3,
	    "already declared at line 1"),
	B("listen on all port 2525\nlisten on * port 2525\n", 2,
	    "already declared at line 1"),
	B("listen on any\nlisten on all\n", 2, "already declared at line 1"),

	/* TLS */
	B("listen on 127.0.0.1 tls\n", 1,
	    "listen on 127.0.0.1 port 25: tls needs tls-certificate and tls-key"),
	B("# x\nlisten on all port 465 smtps\n", 2,
	    "listen on * port 465: smtps needs tls-certificate and tls-key"),
	B("listen on ::1 port 587 require-tls\n", 1,
	    "listen on ::1 port 587: require-tls needs tls-certificate"),
	B("tls-key /k.pem\nlisten on 127.0.0.1 tls\n", 1,
	    "tls-key is set but tls-certificate is not"),
	B("tls-certificate /c.pem\ntls-key /k.pem\nlisten on 127.0.0.1 tls smtps\n", 3,
	    "\"tls\" (STARTTLS) and \"smtps\" (implicit TLS) exclude each other"),
	B("tls-certificate /c.pem\ntls-key /k.pem\nlisten on 127.0.0.1 smtps tls\n", 3,
	    "exclude each other"),
	B("tls-certificate /c.pem\ntls-key /k.pem\nlisten on 127.0.0.1 tls port 26 tls\n", 3,
	    "listen on: option \"tls\" given twice"),
	B("tls-certificate /c.pem\ntls-key /k.pem\nlisten on 127.0.0.1 require-tls require-tls\n",
	    3, "option \"require-tls\" given twice"),
	B("tls-certificate /c.pem\n", 1, "tls-certificate is set but tls-key is not"),
	B("# x\ntls-key /k.pem\n", 2, "tls-key is set but tls-certificate is not"),
	B("tls-certificate cert.pem\ntls-key /k.pem\n", 1,
	    "tls-certificate must be an absolute path: \"cert.pem\""),
	B("tls-certificate /c.pem\ntls-key \"\"\n", 2, "tls-key must be an absolute path"),
	B("tls-certificate cert.pem\ntls-key /k.pem\nlisten on 127.0.0.1 tls\n", 1,
	    "tls-certificate must be an absolute path"),
	B("tls-key\n", 1, "tls-key takes 1 argument"),
	B("tls-certificate /a.pem /b.pem\n", 1, "tls-certificate takes 1 argument"),

	/* sizes and times */
	B("max-message-size 10X\n", 1, "max-message-size: bad size \"10X\""),
	B("max-message-size 10MiB\n", 1, "bad size"),
	B("max-message-size -1\n", 1, "bad size"),
	B("max-message-size M\n", 1, "bad size"),
	B("max-message-size 1.5M\n", 1, "bad size"),
	B("max-message-size 99999999999999999999\n", 1, "bad size"),
	B("max-message-size 17179869184G\n", 1, "bad size"),
	B("idle-timeout 10M\n", 1, "idle-timeout: bad time \"10M\""),
	B("idle-timeout 0\n", 1, "idle-timeout: bad time \"0\""),
	B("idle-timeout 0s\n", 1, "bad time"),
	B("idle-timeout 1w\n", 1, "bad time"),
	B("idle-timeout 10ms\n", 1, "bad time"),
	B("idle-timeout 49711d\n", 1, "bad time"),
	B("pickup-interval 0m\n", 1, "pickup-interval: bad time"),
	B("pickup-interval x\n", 1, "pickup-interval: bad time \"x\""),
	B("max-recipients 0\n", 1, "max-recipients: bad number \"0\""),
	B("max-recipients 100001\n", 1, "bad number"),
	B("max-recipients ten\n", 1, "bad number"),
	B("max-recipients 10k\n", 1, "bad number"),
	B("max-connections -1\n", 1, "max-connections: bad number \"-1\""),
	B("max-connections 1000001\n", 1, "max-connections: bad number"),
	B("max-connections 10k\n", 1, "max-connections: bad number \"10k\""),
	B("max-connections-per-client x\n", 1, "max-connections-per-client: bad number"),
	B("max-connections-per-client \"\"\n", 1, "max-connections-per-client: bad number"),
	B("command-timeout 0\n", 1, "command-timeout: bad time \"0\""),
	B("command-timeout 5M\n", 1, "command-timeout: bad time \"5M\""),
	B("data-timeout 1w\n", 1, "data-timeout: bad time \"1w\""),
	B("data-timeout 0s\n", 1, "data-timeout: bad time"),
	B("data-block-timeout -3m\n", 1, "data-block-timeout: bad time"),
	B("max-session-size 10X\n", 1, "max-session-size: bad size \"10X\""),
	B("max-session-size -1\n", 1, "max-session-size: bad size"),
	B("drop-quota 1.5G\n", 1, "drop-quota: bad size \"1.5G\""),
	B("drop-quota G\n", 1, "drop-quota: bad size"),
	B("max-connections 1 2\n", 1, "max-connections takes 1 argument"),
	B("log-verbose maybe\n", 1, "log-verbose takes yes or no, not \"maybe\""),
	B("log-verbose YES\n", 1, "takes yes or no"),

	/* paths */
	B("mailroot var/spool/mailroot\n", 1,
	    "mailroot must be an absolute path: \"var/spool/mailroot\""),
	B("mailroot \"\"\n", 1, "mailroot must be an absolute path"),
	B("pidfile run/mailrootd.pid\n", 1, "pidfile must be an absolute path"),
	B("log-file ./mailroot.log\n", 1, "log-file must be an absolute path"),
	B("control-socket control.sock\n", 1, "control-socket must be an absolute path"),
	B("control-socket /0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789/control.sock\n",
	    1, "control-socket path too long"),
	/* a long mailroot: the derived control socket does not fit (no line) */
	B("mailroot /0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\n",
	    0, "mailroot path too long for the control socket"),

	/* users */
	B("smtpd-user -x\n", 1, "smtpd-user is not a valid user or group name: \"-x\""),
	B("queued-user \"a b\"\n", 1, "queued-user is not a valid user or group name"),
	B("pickupd-user \"\"\n", 1, "pickupd-user is not a valid user or group name"),
	B("mailroot-group gr/oup\n", 1, "mailroot-group is not a valid user or group name"),
	B("operators-group -x\n", 1, "operators-group is not a valid user or group name"),
	B("smtpd-user abcdefghijabcdefghijabcdefghijabc\n", 1, "smtpd-user too long"),

	/* connection control, relaying, reverse DNS */
	B("access\n", 1, "access: wrong number of arguments"),
	B("access allow\n", 1, "access: wrong number of arguments"),
	B("access deny name a.test b.test\n", 1, "access: wrong number of arguments"),
	B("access permit 192.0.2.1\n", 1, "access: expected allow or deny, not \"permit\""),
	B("access allow localhost\n", 1,
	    "access: \"localhost\" is not a numeric IPv4 or IPv6 address"),
	B("access deny 192.0.2.0/33\n", 1, "access: bad prefix length \"/33\""),
	B("access deny 2001:db8::/129\n", 1, "access: bad prefix length \"/129\""),
	B("access deny 192.0.2.0/024\n", 1, "access: bad prefix length"),
	B("access deny 192.0.2.1/24\n", 1, "did you mean 192.0.2.0/24?"),
	B("access allow 192.0.2.1 192.0.2.2\n", 1, "access: allow takes one network"),
	B("access allow name\n", 1, "access: allow name takes one pattern"),
	B("access allow name *.*.example.test\n", 1, "access: bad name pattern \"*.*.example.test\""),
	B("access allow name host_1.example.test\n", 1, "access: bad name pattern"),
	B("access deny regex \"a(b\"\n", 1,
	    "access: bad regex \"a(b\": missing closing parenthesis at offset 3"),
	B("access deny regex \"x{2,1}\"\n", 1, "access: bad regex \"x{2,1}\": numbers out of order"),
	B("access deny regex \"\"\n", 1, "access: empty regex"),
	B("# rules\naccess allow 192.0.2.1\naccess deny regex (\n", 3, "access: bad regex \"(\""),
	B("access-default\n", 1, "access-default takes 1 argument"),
	B("access-default maybe\n", 1, "access-default takes allow or deny, not \"maybe\""),
	B("access-default Deny\n", 1, "access-default takes allow or deny"),
	B("relay allow\n", 1, "relay takes 2 arguments"),
	B("relay allow name x.example.test\n", 1, "relay takes 2 arguments"),
	B("relay allow x.example.test\n", 1, "relay: \"x.example.test\" is not a numeric"),
	B("relay permit 192.0.2.1\n", 1, "relay: expected allow or deny, not \"permit\""),
	B("relay allow 2001:db8::1/129\n", 1, "relay: bad prefix length"),
	B("relay-default open\n", 1, "relay-default takes allow or deny, not \"open\""),
	B("relay-authenticated maybe\n", 1, "relay-authenticated takes yes or no, not \"maybe\""),
	B("relay-domain\n", 1, "relay-domain: wrong number of arguments"),
	B("relay-domain *.*.example.test\n", 1,
	    "relay-domain: \"*.*.example.test\" is not a domain name or *.domain"),
	B("relay-domain *\n", 1, "relay-domain: \"*\" is not a domain name or *.domain"),
	B("relay-domain [192.0.2.1]\n", 1, "relay-domain: \"[192.0.2.1]\" is not a domain name"),
	B("relay-domain a.test A.TEST\n", 1, "relay-domain A.TEST is declared twice"),
	B("relay-domain *.a.test\nrelay-domain *.A.test\n", 2, "relay-domain *.A.test is declared twice"),
	B("reverse-dns on\n", 1, "reverse-dns takes yes or no, not \"on\""),
	B("dns-server\n", 1, "dns-server: wrong number of arguments"),
	B("dns-server localhost\n", 1, "dns-server: \"localhost\" is not a numeric IPv4 or IPv6"),
	B("dns-server 127.0.0.1 port\n", 1, "expected \"dns-server ADDRESS [port N]\""),
	B("dns-server 127.0.0.1 prot 53\n", 1, "expected \"dns-server ADDRESS [port N]\""),
	B("dns-server 127.0.0.1 port 0\n", 1, "dns-server: bad port \"0\""),
	B("dns-server 127.0.0.1 port 65536\n", 1, "dns-server: bad port \"65536\""),
	B("dns-server 127.0.0.1 port domain\n", 1, "dns-server: bad port \"domain\""),
	B("dns-server ::1 port 5353\ndns-server ::1 port 5353\n", 2,
	    "dns-server ::1 port 5353: already declared at line 1"),
	B("dns-server 127.0.0.1\ndns-server 127.0.0.1 port 53\n", 2, "already declared at line 1"),
	B("dns-server 127.0.0.1\ndns-server 127.0.0.2\ndns-server 127.0.0.3\n"
	    "dns-server 127.0.0.4\ndns-server 127.0.0.5\ndns-server 127.0.0.6\n"
	    "dns-server 127.0.0.7\ndns-server 127.0.0.8\ndns-server 127.0.0.9\n", 9,
	    "too many dns-server statements (at most 8)"),

	/* tokenizer */
	B("alias-domain a1.test a2.test a3.test a4.test a5.test a6.test a7.test "
	    "a8.test a9.test a10.test a11.test a12.test a13.test a14.test "
	    "a15.test a16.test\n", 1, "too many words on one line (at most 16)"),
	B("hostname mx.example.test\nmailroot \"/var/spool\n", 2,
	    "unterminated quoted string"),
	B("mailroot \"/var/spool", 1, "unterminated quoted string"),
	B("mailroot \"/var\"/spool\n", 1, "a quoted string must be followed by a blank"),
	B("mailroot \"/var\\\"\n", 1, "unterminated quoted string"),
	B("hostname mx\001.test\n", 1, "control character 0x01 in line"),
	B("# comment with escape \033[1m\n", 1, "control character 0x1b"),
	B("hostname a.test\vb\n", 1, "control character 0x0b"),

	/* SMTP AUTH */
	B("listen on 127.0.0.1 port 587 auth-required\n", 1,
	    "listen on: unknown option \"auth-required\""),
	B("listen on 127.0.0.1 AUTH\n", 1, "unknown option \"AUTH\""),
	B("auth-table\n", 1, "auth-table takes 1 argument"),
	B("auth-table etc/passwd\n", 1, "auth-table must be an absolute path: \"etc/passwd\""),
	B("auth-table /a /b\n", 1, "auth-table takes 1 argument"),
	B("auth-max-failures -1\n", 1, "auth-max-failures: bad number \"-1\" (0 to 1000)"),
	B("auth-max-failures 1001\n", 1, "auth-max-failures: bad number \"1001\""),
	B("auth-max-failures three\n", 1, "auth-max-failures: bad number"),
	B("auth-max-failures 3x\n", 1, "auth-max-failures: bad number"),
	B("auth-max-failures \"\"\n", 1, "auth-max-failures: bad number"),
	B("auth-max-failures +3\n", 1, "auth-max-failures: bad number"),
	B("auth-failure-delay 2x\n", 1, "auth-failure-delay: bad time \"2x\""),
	B("auth-failure-delay 6m\n", 1, "auth-failure-delay: bad time \"6m\" (0 to 5m"),
	B("auth-failure-delay 301\n", 1, "auth-failure-delay: bad time"),
	B("auth-failure-delay -1s\n", 1, "auth-failure-delay: bad time"),

	/* outbound delivery */
	B("smart-host\n", 1, "smart-host: wrong number of arguments"),
	B("smart-host a.test b.test\n", 1, "smart-host: unknown option \"b.test\""),
	B("smart-host a.test tls maybe\n", 1, "tls takes no, opportunistic or require, not \"maybe\""),
	B("smart-host a.test auth user\n", 1, "smart-host: expected \"auth USER PASSWORD\""),
	B("smart-host a.test tls no tls no\n", 1, "smart-host: option \"tls\" given twice"),
	B("outbound-tls no\nsmart-host a.test auth u p\n", 2, "smart-host: auth is sent over TLS only"),
	B("smart-host bad..test\n", 1, "smart-host: route: \"bad..test\" is not a valid host name"),
	B("smart-host relay.test:0\n", 1, "smart-host: route: bad port \"0\""),
	B("smart-host relay.test:65536\n", 1, "smart-host: route: bad port \"65536\""),
	B("smart-host relay.test:\n", 1, "smart-host: route: bad port \"\""),
	B("smart-host relay.test:25x\n", 1, "bad port \"25x\""),
	B("smart-host [192.0.2.300]\n", 1, "is not a numeric IPv4 or IPv6 address"),
	B("smart-host [relay.test]\n", 1, "\"[relay.test]\" is not a numeric"),
	B("smart-host [192.0.2.1\n", 1, "no closing ']'"),
	B("smart-host [192.0.2.1]x\n", 1, "only \":PORT\" may follow ']'"),
	B("smart-host 2001:db8::1\n", 1, "an IPv6 address goes inside brackets"),
	B("smart-host :25\n", 1, "smart-host: route \":25\": no host"),
	B("smart-host []\n", 1, "smart-host: route \"[]\": no host"),
	B("direct-first maybe\n", 1, "direct-first takes yes or no"),
	B("direct-first yes\n", 1, "direct-first yes needs a smart-host"),
	B("outbound-port 0\n", 1, "outbound-port: bad port \"0\" (1 to 65535)"),
	B("outbound-port 70000\n", 1, "outbound-port: bad port"),
	B("outbound-port -25\n", 1, "outbound-port: bad port"),
	B("outbound-port smtp\n", 1, "outbound-port: bad port"),
	B("max-outbound-connections many\n", 1, "max-outbound-connections: bad number"),
	B("max-outbound-connections -1\n", 1, "max-outbound-connections: bad number"),
	B("max-connections-per-domain 1000001\n", 1, "max-connections-per-domain: bad number"),
	B("max-messages-per-connection 1.5\n", 1, "max-messages-per-connection: bad number"),
	B("outbound-connect-timeout 0\n", 1, "outbound-connect-timeout: bad time \"0\""),
	B("outbound-connect-timeout 30x\n", 1, "outbound-connect-timeout: bad time"),
	B("outbound-timeout 0s\n", 1, "outbound-timeout: bad time"),
	B("outbound-tls yes\n", 1, "outbound-tls takes no, opportunistic or require, not \"yes\""),
	B("outbound-tls Require\n", 1, "outbound-tls takes no, opportunistic or require"),
	B("outbound-tls-ca-file certs.pem\n", 1, "outbound-tls-ca-file must be an absolute path"),
	B("retry-intervals 15m 30m 60m\n", 1, "retry-intervals takes 4 arguments"),
	B("retry-intervals 15m 30m 60m 4h 8h\n", 1, "retry-intervals takes 4 arguments"),
	B("retry-intervals 15m 0 60m 4h\n", 1, "retry-intervals: bad time \"0\""),
	B("retry-intervals 15m 30m 60m 4x\n", 1, "retry-intervals: bad time \"4x\""),
	B("local-retry-interval 0\n", 1, "local-retry-interval: bad time"),
	B("delay-notification 12x\n", 1, "delay-notification: bad time \"12x\""),
	B("expiration-timeout 0\n", 1, "expiration-timeout: bad time \"0\""),
	B("local-delay-notification -1h\n", 1, "local-delay-notification: bad time"),
	B("local-expiration-timeout 2w\n", 1, "local-expiration-timeout: bad time"),
	/* the notice must come before expiry: reported on the later line */
	B("delay-notification 2d\n", 1,
	    "delay-notification (172800s) must be shorter than expiration-timeout (172800s)"),
	B("delay-notification 1d\n# x\nexpiration-timeout 12h\n", 3,
	    "delay-notification (86400s) must be shorter than expiration-timeout (43200s)"),
	B("local-expiration-timeout 1h\n", 1,
	    "local-delay-notification (43200s) must be shorter than local-expiration-timeout"),
	B("ndr-copy-to postmaster\n", 1, "ndr-copy-to: \"postmaster\" is not a valid mailbox"),
	B("ndr-copy-to <>\n", 1, "ndr-copy-to: \"<>\" is not a valid mailbox"),
	B("ndr-copy-to a@b@c.test\n", 1, "is not a valid mailbox"),
	B("ndr-copy-to a@c..test\n", 1, "is not a valid mailbox"),
	B("ndr-copy-to a@[300.1.1.1]\n", 1, "is not a valid mailbox"),
	B("max-hop-count 1001\n", 1, "max-hop-count: bad number \"1001\" (0 to 1000"),
	B("max-hop-count x\n", 1, "max-hop-count: bad number"),
	B("masquerade-domain bad_domain.test\n", 1, "masquerade-domain is not a valid domain name"),
	B("masquerade-domain [192.0.2.1]\n", 1, "masquerade-domain is not a valid domain name"),
	B("remote-domain\n", 1, "remote-domain: wrong number of arguments"),
	B("remote-domain *\n", 1, "remote-domain: \"*\" is not a domain name or *.domain"),
	B("remote-domain a.*.test\n", 1, "is not a domain name or *.domain"),
	B("remote-domain [192.0.2.1]\n", 1, "is not a domain name or *.domain"),
	B("remote-domain a.test bogus\n", 1, "remote-domain a.test: unknown option \"bogus\""),
	B("remote-domain a.test hold hold\n", 1, "remote-domain a.test: option \"hold\" given twice"),
	B("remote-domain a.test route\n", 1, "remote-domain a.test: route needs a ROUTE"),
	B("remote-domain a.test route r.test:0\n", 1, "remote-domain a.test: route: bad port \"0\""),
	B("remote-domain a.test route [::1\n", 1, "no closing ']'"),
	B("remote-domain a.test route r.test route s.test\n", 1, "option \"route\" given twice"),
	B("remote-domain a.test tls\n", 1, "tls needs no, opportunistic or require"),
	B("remote-domain a.test tls always\n", 1, "takes no, opportunistic or require, not \"always\""),
	B("remote-domain a.test tls no tls require\n", 1, "option \"tls\" given twice"),
	B("remote-domain a.test auth user\n", 1, "expected \"auth USER PASSWORD\""),
	B("remote-domain a.test auth \"\" pw\n", 1, "auth: empty user or password"),
	B("remote-domain a.test auth u \"\"\n", 1, "auth: empty user or password"),
	B("remote-domain a.test auth u p auth v q\n", 1, "option \"auth\" given twice"),
	B("remote-domain a.test hold\n# x\nremote-domain A.Test\n", 3,
	    "remote-domain A.Test: already declared at line 1"),
	B("remote-domain *.a.test\nremote-domain *.A.TEST hold\n", 2,
	    "remote-domain *.A.TEST: already declared at line 1"),
	B("default-domain example.test\nremote-domain Example.Test route r.test\n", 2,
	    "remote-domain Example.Test is a local domain"),
	B("remote-domain a.test auth u p\noutbound-tls no\n", 1,
	    "remote-domain a.test: auth is sent over TLS only, and outbound-tls is no"),
	B("smart-host bad..test\ndirect-first yes\n", 1, "smart-host: route"),

	/* NUL bytes: see the known-bugs test case */
};

START_TEST(test_bad)
{
	const struct bad *b = &bad[_i];
	struct config *c;
	struct msgs m;
	char all[4096];

	c = parse_buf(b->text, b->len ? b->len : strlen(b->text), &m);
	dump_msgs(&m, all, sizeof(all));
	ck_assert_msg(c == NULL, "accepted: %s", b->text);
	ck_assert_msg(m.n >= 1, "no message for: %s", b->text);
	ck_assert_msg(msg_matches(m.msg[0], b->line, b->substr),
	    "for \"%s\": want %s:%d: ...%s...; got %s", b->text, CONF_NAME,
	    b->line, b->substr, all);
	msgs_free(&m);
}
END_TEST

/* Over-long lines: reported once, on their own line; the next line counts right. */
START_TEST(test_long_line)
{
	struct config *c;
	struct msgs m;
	char *buf, all[4096];
	size_t len;

	/* 4097 characters then a newline, then an unknown keyword on line 2 */
	buf = malloc(20000);
	ck_assert_ptr_nonnull(buf);
	buf[0] = '#';
	memset(buf + 1, 'x', 4096);
	len = 4097;
	memcpy(buf + len, "\nbogus1\n", 8);
	len += 8;
	c = parse_buf(buf, len, &m);
	dump_msgs(&m, all, sizeof(all));
	ck_assert_ptr_null(c);
	ck_assert_msg(m.n == 2, "got %s", all);
	ck_assert_msg(msg_matches(m.msg[0], 1, "line too long (at most 4096 characters)"),
	    "got %s", all);
	ck_assert_msg(msg_matches(m.msg[1], 2, "unknown keyword \"bogus1\""), "got %s", all);
	msgs_free(&m);

	/* a line of three buffers' worth, between two good lines */
	len = 0;
	memcpy(buf, "hostname mx.example.test\nhostname ", 34);
	len = 34;
	memset(buf + len, 'a', 12000);
	len += 12000;
	memcpy(buf + len, "\n\nbogus3\n", 9);
	len += 9;
	c = parse_buf(buf, len, &m);
	dump_msgs(&m, all, sizeof(all));
	ck_assert_ptr_null(c);
	ck_assert_msg(m.n == 2, "got %s", all);
	ck_assert_msg(msg_matches(m.msg[0], 2, "line too long"), "got %s", all);
	ck_assert_msg(msg_matches(m.msg[1], 4, "unknown keyword \"bogus3\""), "got %s", all);
	msgs_free(&m);

	/* too long and last, without a newline */
	memset(buf, '#', 5000);
	c = parse_buf(buf, 5000, &m);
	dump_msgs(&m, all, sizeof(all));
	ck_assert_ptr_null(c);
	ck_assert_msg(m.n == 1 && msg_matches(m.msg[0], 1, "line too long"), "got %s", all);
	msgs_free(&m);

	/* 4096 characters and the end of the file: fine */
	c = parse_buf(buf, 4096, &m);
	ck_assert_msg(c != NULL && m.n == 0, "a last line of 4096 characters refused");
	config_free(c);
	msgs_free(&m);
	free(buf);
}
END_TEST

/* The limit is the same whether or not the last line ends in a newline. */
START_TEST(test_long_last_line)
{
	struct config *c;
	struct msgs m;
	char buf[4200], all[4096];
	int accepted, ok;

	memset(buf, '#', sizeof(buf));
	c = parse_buf(buf, 4097, &m);	/* 4097 characters, no newline */
	dump_msgs(&m, all, sizeof(all));
	accepted = c != NULL;
	ok = m.n == 1 && msg_matches(m.msg[0], 1, "line too long");
	config_free(c);
	msgs_free(&m);
	ck_assert_msg(!accepted, "a last line of 4097 characters without a newline accepted");
	ck_assert_msg(ok, "got %s", all);
}
END_TEST

/*
 * A NUL byte must be reported as such on its own line, and must not change
 * the numbering of the lines after it.
 */
START_TEST(test_nul_line_numbers)
{
	static const char text[] = "hostname a.test\0b\nbogus2 x\n";
	struct config *c;
	struct msgs m;
	char all[4096];

	int accepted, ok;

	c = parse_buf(text, sizeof(text) - 1, &m);
	dump_msgs(&m, all, sizeof(all));
	accepted = c != NULL;
	ok = m.n == 2 && msg_matches(m.msg[0], 1, "NUL byte in line") &&
	    msg_matches(m.msg[1], 2, "unknown keyword \"bogus2\"");
	config_free(c);
	msgs_free(&m);
	ck_assert_msg(!accepted, "a file with a NUL byte was accepted");
	ck_assert_msg(ok, "want line 1 NUL byte, line 2 unknown keyword; got %s", all);
}
END_TEST

/* A NUL byte on the last line, without a newline, must not be ignored. */
START_TEST(test_nul_last_line)
{
	static const char text[] = "hostname mx.example.test\0junk";
	struct config *c;
	struct msgs m;
	char all[4096];

	int accepted, ok;

	c = parse_buf(text, sizeof(text) - 1, &m);
	dump_msgs(&m, all, sizeof(all));
	accepted = c != NULL;
	ok = m.n == 1 && msg_matches(m.msg[0], 1, "NUL byte");
	config_free(c);
	msgs_free(&m);
	ck_assert_msg(!accepted, "a file with a NUL byte was accepted");
	ck_assert_msg(ok, "got %s", all);
}
END_TEST

/* A line that starts with a NUL byte must not be skipped silently. */
START_TEST(test_nul_line_start)
{
	static const char text[] = "# ok\n\0bogus3\nlisten on 127.0.0.1 port 0\n";
	struct config *c;
	struct msgs m;
	char all[4096];

	int accepted, ok;

	c = parse_buf(text, sizeof(text) - 1, &m);
	dump_msgs(&m, all, sizeof(all));
	accepted = c != NULL;
	ok = m.n == 2 && msg_matches(m.msg[0], 2, "NUL byte in line") &&
	    msg_matches(m.msg[1], 3, "bad port");
	config_free(c);
	msgs_free(&m);
	ck_assert_msg(!accepted, "a file with a NUL byte was accepted");
	ck_assert_msg(ok, "want line 2 NUL byte, line 3 bad port; got %s", all);
}
END_TEST

/*
 * mailroot.conf(5): "It may not contain a NUL byte or a control character
 * other than tab."  A CR is tolerated before the LF (CRLF files), but a bare
 * CR inside a line must not silently end it.
 */
START_TEST(test_bare_cr_mid_line)
{
	struct config *c;
	struct msgs m;
	char all[4096];

	unsigned port = 0;
	int ok;

	c = parse_str("listen on 127.0.0.1 \rport 2525\n", &m);
	dump_msgs(&m, all, sizeof(all));
	if (c != NULL)
		port = TAILQ_FIRST(&c->listeners)->port;
	ok = m.n == 1 && msg_matches(m.msg[0], 1, "control character 0x0d");
	config_free(c);
	msgs_free(&m);
	ck_assert_msg(port == 0, "bare CR accepted (listener on port %u)", port);
	ck_assert_msg(ok, "got %s", all);
}
END_TEST

/* Every error of a file is reported, in order, and the parse fails. */
START_TEST(test_multiple_errors)
{
	static const char text[] =
	    "hostname mx.example.test\n"			/* 1 */
	    "bogus\n"						/* 2 */
	    "listen on 127.0.0.1 port 2525\n"			/* 3 */
	    "listen on 127.0.0.1 port 2525\n"			/* 4 */
	    "# fine\n"						/* 5 */
	    "max-message-size 10Q\n"				/* 6 */
	    "idle-timeout 1y\n"					/* 7 */
	    "mailroot relative/dir\n"				/* 8 */
	    "default-domain example.test\n"			/* 9 */
	    "mailroot \"/unterminated\n"			/* 10 */
	    "log-verbose yes\n"					/* 11 */
	    "alias-domain a b c d e f g h i j k l m n o p q\n"	/* 12 */
	    "listen on 127.0.0.1 port 70000\n";			/* 13 */
	static const struct { int line; const char *substr; } want[] = {
		{ 2, "unknown keyword \"bogus\"" },
		{ 4, "already declared at line 3" },
		{ 6, "bad size \"10Q\"" },
		{ 7, "bad time \"1y\"" },
		{ 8, "must be an absolute path" },
		{ 10, "unterminated quoted string" },
		{ 12, "too many words" },
		{ 13, "bad port \"70000\"" },
	};
	struct config *c;
	struct msgs m;
	char all[4096];
	size_t i;

	c = parse_str(text, &m);
	dump_msgs(&m, all, sizeof(all));
	ck_assert_ptr_null(c);
	ck_assert_msg(m.n == (int)(sizeof(want) / sizeof(want[0])), "got %s", all);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_msg(msg_matches(m.msg[i], want[i].line, want[i].substr),
		    "message %zu: want line %d \"%s\"; got %s", i, want[i].line,
		    want[i].substr, all);
	msgs_free(&m);
}
END_TEST

/* Without a report callback, messages go to stderr and the parse still fails. */
START_TEST(test_no_report_callback)
{
	struct config *c;
	FILE *fp;

	fp = tmpfile();
	ck_assert_ptr_nonnull(fp);
	fputs("bogus\n", fp);
	rewind(fp);
	c = config_parse(fp, CONF_NAME, NULL, NULL);
	ck_assert_ptr_null(c);
	fclose(fp);
}
END_TEST

START_TEST(test_load)
{
	struct config *c;
	struct msgs m;
	char path[] = "/tmp/check_config.XXXXXX";
	FILE *fp;
	int fd;

	memset(&m, 0, sizeof(m));
	c = config_load("/nonexistent/dir/mailroot.conf", collect, &m);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(m.n, 1);
	ck_assert_ptr_nonnull(strstr(m.msg[0], "/nonexistent/dir/mailroot.conf: "));
	msgs_free(&m);

	fd = mkstemp(path);
	ck_assert_int_ne(fd, -1);
	fp = fdopen(fd, "w");
	ck_assert_ptr_nonnull(fp);
	fputs("hostname mx.example.test\nbogus\n", fp);
	fclose(fp);
	c = config_load(path, collect, &m);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(m.n, 1);
	ck_assert_ptr_nonnull(strstr(m.msg[0], ":2: unknown keyword"));
	ck_assert_int_eq(strncmp(m.msg[0], path, strlen(path)), 0);
	msgs_free(&m);
	unlink(path);
}
END_TEST

/* ---- sizes and times ---------------------------------------------------------------- */

static const struct { const char *s; uint64_t v; } sizes_ok[] = {
	{ "0", 0 },
	{ "1", 1 },
	{ "2048", 2048 },
	{ "2048K", 2048ULL * 1024 },
	{ "2048k", 2048ULL * 1024 },
	{ "2048KB", 2048ULL * 1024 },
	{ "2048kb", 2048ULL * 1024 },
	{ "10M", 10ULL * 1024 * 1024 },
	{ "10m", 10ULL * 1024 * 1024 },
	{ "10MB", 10ULL * 1024 * 1024 },
	{ "1G", 1024ULL * 1024 * 1024 },
	{ "1gB", 1024ULL * 1024 * 1024 },
	{ "007K", 7ULL * 1024 },
	{ "18446744073709551615", UINT64_MAX },
	{ "17179869183G", 17179869183ULL * 1024 * 1024 * 1024 },
	{ "18014398509481983K", 18014398509481983ULL * 1024 },
};

static const char *const sizes_bad[] = {
	"", "K", "M", "-1", "+1", " 1", "1 ", "1 K", "1X", "1B", "1KK", "1KBB",
	"1KB2", "1Ki", "1MiB", "1.5M", "0x10", "1T",
	"18446744073709551616", "99999999999999999999999",
	"17179869184G", "18014398509481984K",
};

START_TEST(test_parse_size)
{
	uint64_t v;
	size_t i;

	for (i = 0; i < sizeof(sizes_ok) / sizeof(sizes_ok[0]); i++) {
		v = 12345;
		ck_assert_msg(config_parse_size(sizes_ok[i].s, &v) == 0,
		    "\"%s\" refused", sizes_ok[i].s);
		ck_assert_msg(v == sizes_ok[i].v, "\"%s\": %llu", sizes_ok[i].s,
		    (unsigned long long)v);
	}
	for (i = 0; i < sizeof(sizes_bad) / sizeof(sizes_bad[0]); i++) {
		v = 12345;
		ck_assert_msg(config_parse_size(sizes_bad[i], &v) == -1,
		    "\"%s\" accepted", sizes_bad[i]);
		ck_assert_msg(v == 12345, "\"%s\": output changed on error", sizes_bad[i]);
	}
}
END_TEST

static const struct { const char *s; uint32_t v; } times_ok[] = {
	{ "0", 0 },
	{ "30", 30 },
	{ "30s", 30 },
	{ "10m", 600 },
	{ "2h", 7200 },
	{ "2d", 172800 },
	{ "0d", 0 },
	{ "007m", 420 },
	{ "4294967295", UINT32_MAX },
	{ "4294967295s", UINT32_MAX },
	{ "71582788m", 71582788U * 60 },
	{ "1193046h", 1193046U * 3600 },
	{ "49710d", 49710U * 86400 },
};

static const char *const times_bad[] = {
	"", "s", "m", "-1", "+1", " 1", "1 ", "1 s", "1S", "1M", "1H", "1D",
	"1w", "1y", "1ms", "1sec", "1ss", "1.5h", "0x10",
	"4294967296", "4294967296s", "71582789m", "1193047h", "49711d",
	"18446744073709551616", "18446744073709551615d",
};

START_TEST(test_parse_time)
{
	uint32_t v;
	size_t i;

	for (i = 0; i < sizeof(times_ok) / sizeof(times_ok[0]); i++) {
		v = 12345;
		ck_assert_msg(config_parse_time(times_ok[i].s, &v) == 0,
		    "\"%s\" refused", times_ok[i].s);
		ck_assert_msg(v == times_ok[i].v, "\"%s\": %u", times_ok[i].s, v);
	}
	for (i = 0; i < sizeof(times_bad) / sizeof(times_bad[0]); i++) {
		v = 12345;
		ck_assert_msg(config_parse_time(times_bad[i], &v) == -1,
		    "\"%s\" accepted", times_bad[i]);
		ck_assert_msg(v == 12345, "\"%s\": output changed on error", times_bad[i]);
	}
}
END_TEST

/* ---- local domains ---------------------------------------------------------------------- */

START_TEST(test_local_domain)
{
	struct config *c;

	c = parse_ok("hostname mx.example.test\n"
	    "default-domain Example.Test\n"
	    "alias-domain alias.example.test OTHER.example.TEST\n");
	ck_assert_int_eq(config_is_local_domain(c, "example.test"), 1);
	ck_assert_int_eq(config_is_local_domain(c, "EXAMPLE.TEST"), 1);
	ck_assert_int_eq(config_is_local_domain(c, "Example.Test"), 1);
	ck_assert_int_eq(config_is_local_domain(c, "alias.example.test"), 1);
	ck_assert_int_eq(config_is_local_domain(c, "ALIAS.EXAMPLE.TEST"), 1);
	ck_assert_int_eq(config_is_local_domain(c, "other.example.test"), 1);
	ck_assert_int_eq(config_is_local_domain(c, "mx.example.test"), 0);
	ck_assert_int_eq(config_is_local_domain(c, "example.tes"), 0);
	ck_assert_int_eq(config_is_local_domain(c, "xexample.test"), 0);
	ck_assert_int_eq(config_is_local_domain(c, "sub.example.test"), 0);
	ck_assert_int_eq(config_is_local_domain(c, ""), 0);
	config_free(c);

	/* without default-domain, the hostname is the local domain */
	c = parse_ok("hostname Mx.Example.Test\n");
	ck_assert_int_eq(config_is_local_domain(c, "mx.example.test"), 1);
	ck_assert_int_eq(config_is_local_domain(c, "example.test"), 0);
	config_free(c);
}
END_TEST

/* ---- outbound delivery ------------------------------------------------------------ */

START_TEST(test_outbound_defaults)
{
	struct config *c;

	c = parse_ok("");
	ck_assert_str_eq(c->smart_host.host, "");
	ck_assert_int_eq(c->direct_first, 0);
	ck_assert_uint_eq(c->outbound_port, 25);
	ck_assert(TAILQ_EMPTY(&c->remote_domains));
	ck_assert_uint_eq(c->max_outbound_connections, 1000);
	ck_assert_uint_eq(c->max_connections_per_domain, 100);
	ck_assert_uint_eq(c->max_messages_per_connection, 20);
	ck_assert_uint_eq(c->outbound_connect_timeout, 30);
	ck_assert_uint_eq(c->outbound_timeout, 300);
	ck_assert_int_eq(c->outbound_tls, TLS_POLICY_OPPORTUNISTIC);
	ck_assert_str_eq(c->outbound_tls_ca_file, "/etc/ssl/certs/ca-certificates.crt");
	ck_assert_uint_eq(c->retry_interval[0], 900);
	ck_assert_uint_eq(c->retry_interval[1], 1800);
	ck_assert_uint_eq(c->retry_interval[2], 3600);
	ck_assert_uint_eq(c->retry_interval[3], 14400);
	ck_assert_uint_eq(c->local_retry_interval, 3600);
	ck_assert_uint_eq(c->delay_notification, 43200);
	ck_assert_uint_eq(c->expiration_timeout, 172800);
	ck_assert_uint_eq(c->local_delay_notification, 43200);
	ck_assert_uint_eq(c->local_expiration_timeout, 172800);
	ck_assert_str_eq(c->ndr_copy_to, "");
	ck_assert_uint_eq(c->max_hop_count, 15);
	ck_assert_str_eq(c->masquerade_domain, "");
	ck_assert_ptr_null(config_remote_domain(c, "example.com"));
	config_free(c);
}
END_TEST

START_TEST(test_outbound_keywords)
{
	static const char text[] =
	    "default-domain example.test\n"
	    "smart-host relay.example.net:587 tls require auth relayuser \"relay pw\"\n"
	    "direct-first yes\n"
	    "outbound-port 2526\n"
	    "max-outbound-connections 50\n"
	    "max-connections-per-domain 5\n"
	    "max-messages-per-connection 0\n"
	    "outbound-connect-timeout 1m\n"
	    "outbound-timeout 10m\n"
	    "outbound-tls require\n"
	    "outbound-tls-ca-file \"/etc/ssl/my ca.pem\"\n"
	    "retry-intervals 1m 2m 3h 1d\n"
	    "local-retry-interval 30s\n"
	    "delay-notification 4h\n"
	    "expiration-timeout 5d\n"
	    "local-delay-notification 0\n"
	    "local-expiration-timeout 1h\n"
	    "ndr-copy-to <Postmaster@example.test>\n"
	    "max-hop-count 0\n"
	    "masquerade-domain example.test\n"
	    "remote-domain partner.test allow-relay helo hold route [192.0.2.7]:2525 "
	    "tls require auth \"user@x\" \"pass word #1\"\n"
	    "remote-domain *.partner.test tls no\n"
	    "remote-domain legacy.test route [IPv6:2001:db8::25]\n";
	const struct remote_domain_conf *rd;
	struct config *c;
	struct msgs m;

	c = parse_ok(text);
	ck_assert_str_eq(c->smart_host.host, "relay.example.net");
	ck_assert_uint_eq(c->smart_host.port, 587);
	ck_assert_int_eq(c->smart_host.literal, 0);
	ck_assert_int_eq(c->smart_host_tls, TLS_POLICY_REQUIRE);
	ck_assert_str_eq(c->smart_host_auth_user, "relayuser");
	ck_assert_str_eq(c->smart_host_auth_password, "relay pw");
	ck_assert_int_eq(c->direct_first, 1);
	ck_assert_uint_eq(c->outbound_port, 2526);
	ck_assert_uint_eq(c->max_outbound_connections, 50);
	ck_assert_uint_eq(c->max_connections_per_domain, 5);
	ck_assert_uint_eq(c->max_messages_per_connection, 0);
	ck_assert_uint_eq(c->outbound_connect_timeout, 60);
	ck_assert_uint_eq(c->outbound_timeout, 600);
	ck_assert_int_eq(c->outbound_tls, TLS_POLICY_REQUIRE);
	ck_assert_str_eq(c->outbound_tls_ca_file, "/etc/ssl/my ca.pem");
	ck_assert_uint_eq(c->retry_interval[0], 60);
	ck_assert_uint_eq(c->retry_interval[1], 120);
	ck_assert_uint_eq(c->retry_interval[2], 3 * 3600);
	ck_assert_uint_eq(c->retry_interval[3], 86400);
	ck_assert_uint_eq(c->local_retry_interval, 30);
	ck_assert_uint_eq(c->delay_notification, 4 * 3600);
	ck_assert_uint_eq(c->expiration_timeout, 5 * 86400);
	ck_assert_uint_eq(c->local_delay_notification, 0);
	ck_assert_uint_eq(c->local_expiration_timeout, 3600);
	ck_assert_str_eq(c->ndr_copy_to, "Postmaster@example.test");
	ck_assert_uint_eq(c->max_hop_count, 0);
	ck_assert_str_eq(c->masquerade_domain, "example.test");

	rd = config_remote_domain(c, "partner.test");
	ck_assert_ptr_nonnull(rd);
	ck_assert_str_eq(rd->pattern, "partner.test");
	ck_assert_int_eq(rd->line, 21);
	ck_assert_uint_eq(rd->flags, RD_ALLOW_RELAY | RD_HELO | RD_HOLD);
	ck_assert_str_eq(rd->route.host, "192.0.2.7");
	ck_assert_int_eq(rd->route.literal, 1);
	ck_assert_uint_eq(rd->route.port, 2525);
	ck_assert_int_eq(rd->tls, TLS_POLICY_REQUIRE);
	ck_assert_str_eq(rd->auth_user, "user@x");
	ck_assert_str_eq(rd->auth_password, "pass word #1");

	rd = config_remote_domain(c, "mx.partner.test");
	ck_assert_ptr_nonnull(rd);
	ck_assert_str_eq(rd->pattern, "*.partner.test");
	ck_assert_uint_eq(rd->flags, 0);
	ck_assert_str_eq(rd->route.host, "");
	ck_assert_int_eq(rd->tls, TLS_POLICY_NO);
	ck_assert_str_eq(rd->auth_user, "");

	rd = config_remote_domain(c, "legacy.test");
	ck_assert_ptr_nonnull(rd);
	ck_assert_str_eq(rd->route.host, "2001:db8::25");
	ck_assert_int_eq(rd->route.literal, 1);
	ck_assert_uint_eq(rd->route.port, 0);
	ck_assert_int_eq(rd->tls, TLS_POLICY_DEFAULT);
	config_free(c);

	/* the other values of the enumerations, and the counts' unlimited 0 */
	c = parse_ok("outbound-tls no\nmax-outbound-connections 0\n"
	    "max-connections-per-domain 0\ndelay-notification 0\n"
	    "remote-domain a.test tls opportunistic\n");
	ck_assert_int_eq(c->outbound_tls, TLS_POLICY_NO);
	ck_assert_uint_eq(c->max_outbound_connections, 0);
	ck_assert_uint_eq(c->max_connections_per_domain, 0);
	ck_assert_uint_eq(c->delay_notification, 0);
	ck_assert_int_eq(config_remote_domain(c, "a.test")->tls, TLS_POLICY_OPPORTUNISTIC);
	config_free(c);

	/* a bad smart-host is reported once, not again by direct-first */
	c = parse_str("smart-host bad..test\ndirect-first yes\n", &m);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(m.n, 1);
	msgs_free(&m);

	/* auth with outbound-tls no: fine when the block says its own tls */
	c = parse_ok("outbound-tls no\nremote-domain a.test auth u p tls no\n"
	    "remote-domain b.test auth u p tls require\n");
	config_free(c);

	/* expiry 0 is refused, but delay 0 with any expiry is fine */
	c = parse_ok("delay-notification 0\nexpiration-timeout 1h\n"
	    "local-delay-notification 59m\nlocal-expiration-timeout 1h\n");
	config_free(c);
}
END_TEST

static const struct {
	const char	*s;
	const char	*host;
	int		 literal;
	uint16_t	 port;
} routes_ok[] = {
	{ "relay.example.net", "relay.example.net", 0, 0 },
	{ "relay.example.net:587", "relay.example.net", 0, 587 },
	{ "Relay.Example.NET:1", "Relay.Example.NET", 0, 1 },
	{ "localhost:65535", "localhost", 0, 65535 },
	{ "[192.0.2.1]", "192.0.2.1", 1, 0 },
	{ "[192.0.2.1]:2525", "192.0.2.1", 1, 2525 },
	{ "192.0.2.1", "192.0.2.1", 1, 0 },
	{ "192.0.2.1:25", "192.0.2.1", 1, 25 },
	{ "[::1]", "::1", 1, 0 },
	{ "[2001:db8::1]:587", "2001:db8::1", 1, 587 },
	{ "[IPv6:2001:db8::1]:25", "2001:db8::1", 1, 25 },
	{ "[::ffff:192.0.2.1]", "::ffff:192.0.2.1", 1, 0 },
	{ "[ipv6:::1]", "::1", 1, 0 },
};

static const char *const routes_bad[] = {
	"", ":25", "[]", "[]:25", "relay.test:", "relay.test:0", "relay.test:65536",
	"relay.test:-1", "relay.test:+25", "relay.test: 25", "relay.test:25:26",
	"relay..test", "-relay.test", "relay_x.test", "[relay.test]", "[192.0.2.1",
	"[192.0.2.1]25", "[192.0.2.1]:", "[192.0.2.1]:0", "[192.0.2.256]", "::1",
	"2001:db8::1:25", "[IPv6:192.0.2.1]x", "[IPv6:]", "[fe80::1%eth0]",
	"[IPv6:192.0.2.1]", "[ipv6:::1]x", "[192.0.2.1]:25x", "[::1]:65536",
};

START_TEST(test_parse_route)
{
	struct route_conf r;
	char why[512], longname[300];
	size_t i;

	for (i = 0; i < sizeof(routes_ok) / sizeof(routes_ok[0]); i++) {
		ck_assert_msg(config_parse_route(routes_ok[i].s, &r, why, sizeof(why)) == 0,
		    "%s: refused: %s", routes_ok[i].s, why);
		ck_assert_str_eq(r.host, routes_ok[i].host);
		ck_assert_int_eq(r.literal, routes_ok[i].literal);
		ck_assert_uint_eq(r.port, routes_ok[i].port);
	}
	for (i = 0; i < sizeof(routes_bad) / sizeof(routes_bad[0]); i++) {
		why[0] = '\0';
		ck_assert_msg(config_parse_route(routes_bad[i], &r, why, sizeof(why)) == -1,
		    "\"%s\": accepted", routes_bad[i]);
		ck_assert_msg(why[0] != '\0', "\"%s\": no reason", routes_bad[i]);
	}
	/* a name longer than a domain may be */
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ck_assert_int_eq(config_parse_route(longname, &r, why, sizeof(why)), -1);
	/* a small why buffer is cut, never overrun */
	ck_assert_int_eq(config_parse_route("relay.test:0", &r, why, 8), -1);
	ck_assert_uint_le(strlen(why), 7);
}
END_TEST

START_TEST(test_remote_domain_lookup)
{
	static const char text[] =
	    "remote-domain *.example.com route [192.0.2.1]\n"
	    "remote-domain *.sub.example.com route [192.0.2.2]\n"
	    "remote-domain example.com route [192.0.2.3]\n"
	    "remote-domain *.a.sub.example.com route [192.0.2.4]\n"
	    "remote-domain b.sub.example.com route [192.0.2.5]\n"
	    "remote-domain Other.Test hold\n";
	static const struct {
		const char	*domain;
		const char	*host;	/* NULL: no block */
	} cases[] = {
		{ "example.com", "192.0.2.3" },		/* exact, not the wildcard */
		{ "EXAMPLE.COM", "192.0.2.3" },
		{ "example.com.", "192.0.2.3" },
		{ "www.example.com", "192.0.2.1" },
		{ "sub.example.com", "192.0.2.1" },	/* *.sub is strict subdomains */
		{ "x.sub.example.com", "192.0.2.2" },	/* the longer suffix wins */
		{ "x.y.sub.example.com", "192.0.2.2" },
		{ "a.sub.example.com", "192.0.2.2" },
		{ "z.a.sub.example.com", "192.0.2.4" },
		{ "b.sub.example.com", "192.0.2.5" },	/* exact beats any wildcard */
		{ "c.b.sub.example.com", "192.0.2.2" },	/* an exact one covers no subdomain */
		{ "notexample.com", NULL },
		{ "example.com.evil.test", NULL },
		{ "com", NULL },
		{ "", NULL },
		{ "other.test", "" },
		{ "x.other.test", NULL },
	};
	const struct remote_domain_conf *rd;
	struct config *c;
	size_t i;

	c = parse_ok(text);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rd = config_remote_domain(c, cases[i].domain);
		if (cases[i].host == NULL) {
			ck_assert_msg(rd == NULL, "%s: matched %s", cases[i].domain,
			    rd ? rd->pattern : "");
			continue;
		}
		ck_assert_msg(rd != NULL, "%s: no block", cases[i].domain);
		ck_assert_msg(strcmp(rd->route.host, cases[i].host) == 0,
		    "%s: got %s (%s), want %s", cases[i].domain, rd->pattern,
		    rd->route.host, cases[i].host);
	}
	ck_assert_uint_eq(config_remote_domain(c, "other.test")->flags, RD_HOLD);
	config_free(c);
}
END_TEST

/* A statement in error leaves no remote-domain block behind, and all is freed. */
START_TEST(test_remote_domain_errors)
{
	const struct remote_domain_conf *rd;
	struct config *c;
	struct msgs m;
	char longpat[512], path[64], label[64];
	FILE *fp;
	int n;

	c = parse_str("remote-domain a.test hold\nremote-domain b.test bogus\n"
	    "remote-domain a.test\nremote-domain c.test auth u\n", &m);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(m.n, 3);
	ck_assert(msg_matches(m.msg[0], 2, "unknown option \"bogus\""));
	ck_assert(msg_matches(m.msg[1], 3, "already declared at line 1"));
	ck_assert(msg_matches(m.msg[2], 4, "expected \"auth USER PASSWORD\""));
	msgs_free(&m);

	/* "*." and a domain of 255 octets do not fit: refused, not cut */
	memset(label, 'a', 63);
	label[63] = '\0';
	snprintf(longpat, sizeof(longpat), "remote-domain *.%s.%s.%s.%s\n", label, label,
	    label, label);
	c = parse_str(longpat, &m);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(m.n, 1);
	ck_assert(msg_matches(m.msg[0], 1, "remote-domain: pattern too long"));
	msgs_free(&m);

	/* lenient: the statements in error leave no block behind */
	snprintf(path, sizeof(path), "/tmp/check_config_rd.%ld", (long)getpid());
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fprintf(fp, "remote-domain a.test hold\nremote-domain b.test bogus\n"
	    "remote-domain a.test helo\n%s", longpat);
	fclose(fp);
	c = config_load_lenient(path, collect, &m);
	unlink(path);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(m.n, 3);
	msgs_free(&m);
	ck_assert_uint_eq(config_remote_domain(c, "a.test")->flags, RD_HOLD);
	ck_assert_ptr_null(config_remote_domain(c, "b.test"));
	ck_assert_ptr_null(config_remote_domain(c, "x.aaaa.test"));
	n = 0;
	TAILQ_FOREACH(rd, &c->remote_domains, entry)
		n++;
	ck_assert_int_eq(n, 1);
	config_free(c);
}
END_TEST

/* ---- the man page ------------------------------------------------------------------------ */

/* 1 when some line of `text` is ".It Ic <kw>" followed by the end or a blank. */
static int
man_has_keyword(const char *text, const char *kw)
{
	const char *line, *p;
	size_t n = strlen(kw);

	for (line = text; line != NULL && *line != '\0'; ) {
		if (strncmp(line, ".It Ic ", 7) == 0) {
			p = line + 7;
			if (strncmp(p, kw, n) == 0 &&
			    (p[n] == '\n' || p[n] == ' ' || p[n] == '\t' || p[n] == '\0'))
				return 1;
		}
		if ((line = strchr(line, '\n')) != NULL)
			line++;
	}
	return 0;
}

START_TEST(test_man_page_keywords)
{
	const char *top = getenv("top_srcdir");
	char path[4096], *text, missing[2048];
	FILE *fp;
	long sz;
	size_t i;

	if (top == NULL || *top == '\0')
		top = ".";
	snprintf(path, sizeof(path), "%s/man/mailroot.conf.5", top);
	fp = fopen(path, "r");
	ck_assert_msg(fp != NULL, "%s: %s (the man page must exist)", path,
	    strerror(errno));
	ck_assert_int_eq(fseek(fp, 0, SEEK_END), 0);
	sz = ftell(fp);
	ck_assert_int_ge(sz, 0);
	rewind(fp);
	text = malloc((size_t)sz + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(fread(text, 1, (size_t)sz, fp), (size_t)sz);
	text[sz] = '\0';
	fclose(fp);

	ck_assert_ptr_nonnull(config_keywords[0]);
	missing[0] = '\0';
	for (i = 0; config_keywords[i] != NULL; i++)
		if (!man_has_keyword(text, config_keywords[i])) {
			strncat(missing, " ", sizeof(missing) - strlen(missing) - 1);
			strncat(missing, config_keywords[i],
			    sizeof(missing) - strlen(missing) - 1);
		}
	ck_assert_msg(missing[0] == '\0', "%s: no \".It Ic KEYWORD\" line for:%s",
	    path, missing);
	free(text);
}
END_TEST

/* Every name in config_keywords is accepted by the parser as a keyword. */
START_TEST(test_keywords_known)
{
	struct config *c;
	struct msgs m;
	char line[128];
	size_t i;
	int j;

	for (i = 0; config_keywords[i] != NULL; i++) {
		/* a wrong argument, so that the keyword's own check answers */
		snprintf(line, sizeof(line), "%s\n", config_keywords[i]);
		c = parse_str(line, &m);
		ck_assert_ptr_null(c);
		for (j = 0; j < m.n && j < MAX_MSGS; j++)
			ck_assert_msg(strstr(m.msg[j], "unknown keyword") == NULL,
			    "%s: %s", config_keywords[i], m.msg[j]);
		msgs_free(&m);
	}
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("good");
	tcase_add_test(tc, test_sample);
	tcase_add_test(tc, test_all_keywords);
	tcase_add_test(tc, test_quoting);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_limits_ok);
	tcase_add_test(tc, test_load);
	tcase_add_test(tc, test_auth);
	tcase_add_test(tc, test_listen_w3c_log);
	tcase_add_test(tc, test_listen_tls);
	tcase_add_test(tc, test_access_keywords);
	tcase_add_test(tc, test_access_errors_free);
	tcase_add_test(tc, test_outbound_defaults);
	tcase_add_test(tc, test_outbound_keywords);
	tcase_add_test(tc, test_remote_domain_lookup);
	tcase_add_test(tc, test_remote_domain_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("bad");
	tcase_add_loop_test(tc, test_bad, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, test_long_line);
	tcase_add_test(tc, test_multiple_errors);
	tcase_add_test(tc, test_no_report_callback);
	suite_add_tcase(s, tc);

	tc = tcase_create("regressions");
	tcase_add_test(tc, test_nul_line_numbers);
	tcase_add_test(tc, test_nul_last_line);
	tcase_add_test(tc, test_nul_line_start);
	tcase_add_test(tc, test_bare_cr_mid_line);
	tcase_add_test(tc, test_long_last_line);
	suite_add_tcase(s, tc);

	tc = tcase_create("units");
	tcase_add_test(tc, test_parse_size);
	tcase_add_test(tc, test_parse_time);
	tcase_add_test(tc, test_parse_route);
	tcase_add_test(tc, test_local_domain);
	tcase_add_test(tc, test_metrics);
	suite_add_tcase(s, tc);

	tc = tcase_create("keywords");
	tcase_add_test(tc, test_keywords_known);
	tcase_add_test(tc, test_man_page_keywords);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
