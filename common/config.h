/*
 * config.h - mailroot.conf(5): the settings and their parser (mail layer).
 *
 * mailrootd parses the file (as root, before anything else), then hands the
 * same text to each daemon as a descriptor; each parses it again with this
 * code, so all processes hold identical settings without a serialiser.
 */
#ifndef MR_CONFIG_H
#define MR_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <limits.h>
#include <sys/queue.h>

#include "acl.h"

#define CONF_DEFAULT_FILE	SYSCONFDIR "/mailroot/mailroot.conf"
#define CONF_NAME_MAX		256
#define CONF_USER_MAX		32
#define CONF_LISTENERS_MAX	64
#define CONF_AUTH_TABLE_DEFAULT	SYSCONFDIR "/mailroot/passwd"

/* Options of a listener (listen on ... tls | smtps | require-tls). */
#define LISTEN_TLS		0x01	/* offer STARTTLS (RFC 3207) */
#define LISTEN_SMTPS		0x02	/* implicit TLS from the first octet (RFC 8314) */
#define LISTEN_REQUIRE_TLS	0x04	/* 530 5.7.0 to mail commands until TLS */
#define LISTEN_AUTH		0x08	/* offer SMTP AUTH (RFC 4954) after TLS */
#define LISTEN_REQUIRE_AUTH	0x10	/* MAIL needs AUTH first (530 5.7.0) */
#define LISTEN_AUTH_PLAINTEXT	0x20	/* offer AUTH without TLS too */
#define CONF_DNS_SERVERS_MAX	8
#define SMTP_PATH_MAX_CONF	257	/* an address of at most SMTP_PATH_MAX octets, and NUL */

struct listener_conf {
	TAILQ_ENTRY(listener_conf) entry;
	char		 addr[64];	/* numeric address, or "*" for all */
	uint16_t	 port;
	int		 line;		/* where it was declared */
	unsigned	 flags;		/* LISTEN_* */
	char		 w3c_log[PATH_MAX];	/* w3c-log DIRECTORY, or "" */
};
TAILQ_HEAD(listener_list, listener_conf);

/*
 * Where to send: a host name or an address literal, and a port
 * (smart-host, remote-domain ... route).  host[0] == '\0': not set.
 */
struct route_conf {
	char		 host[CONF_NAME_MAX];	/* name, or the address of a literal */
	int		 literal;		/* given as [address]: no MX, no A lookup */
	uint16_t	 port;			/* 0: outbound-port */
};

/* Outbound TLS (outbound-tls, remote-domain ... tls). */
enum tls_policy {
	TLS_POLICY_DEFAULT = 0,	/* remote-domain: as outbound-tls says */
	TLS_POLICY_NO,		/* never STARTTLS */
	TLS_POLICY_OPPORTUNISTIC, /* STARTTLS when offered; any certificate */
	TLS_POLICY_REQUIRE	/* STARTTLS and a verified certificate, or defer */
};

/* Options of a remote domain (remote-domain PATTERN ...). */
#define RD_ALLOW_RELAY		0x01	/* any client may send to it (A5, N3) */
#define RD_HELO			0x02	/* HELO instead of EHLO */
#define RD_HOLD			0x04	/* keep its mail until ETRN (N4) */

struct remote_domain_conf {
	TAILQ_ENTRY(remote_domain_conf) entry;
	char		 pattern[CONF_NAME_MAX];	/* "example.com" or "*.example.com" */
	int		 line;
	unsigned	 flags;				/* RD_* */
	struct route_conf route;			/* its own smart host, or none */
	enum tls_policy	 tls;
	char		 auth_user[256];		/* "" : no AUTH */
	char		 auth_password[256];
};
TAILQ_HEAD(remote_domain_list, remote_domain_conf);

/* A DNS server of smtpd's resolver (dns-server). */
struct dns_server_conf {
	char		 addr[64];	/* numeric IPv4 or IPv6 */
	uint16_t	 port;
	int		 line;
};

struct config {
	char		 file[PATH_MAX];	/* for messages */
	char		 hostname[CONF_NAME_MAX];
	char		 mailroot[PATH_MAX];
	char		 default_domain[CONF_NAME_MAX];
	char		**alias_domains;
	size_t		 nalias_domains;
	struct listener_list listeners;

	/* the system users and group of privilege separation */
	char		 smtpd_user[CONF_USER_MAX];
	char		 queued_user[CONF_USER_MAX];
	char		 pickupd_user[CONF_USER_MAX];
	char		 mailroot_group[CONF_USER_MAX];
	/* O5: members may use the mutating control commands; "" none */
	char		 operators_group[CONF_USER_MAX];

	/* paths; defaults below the Mailroot's run/ */
	char		 pidfile[PATH_MAX];
	char		 control_socket[PATH_MAX];
	char		 log_file[PATH_MAX];	/* "" : syslog */

	/* limits and timers */
	uint64_t	 max_message_size;	/* octets; 0 unlimited */
	uint32_t	 max_recipients;	/* per message */
	uint32_t	 idle_timeout;		/* seconds */
	uint32_t	 pickup_interval;	/* seconds between rescans of Pickup/ */
	int		 log_verbose;

	/* SMTP AUTH: the password table (read by mailrootd only) and its limits */
	char		 auth_table[PATH_MAX];
	uint32_t	 auth_max_failures;	/* per client address and window; 0: no limit */
	uint32_t	 auth_failure_delay;	/* seconds before each 535 */
	/* inbound limits and timeouts (smtpd) */
	uint32_t	 max_connections;	/* 0: unlimited */
	uint32_t	 max_conn_per_client;	/* per client address; 0: unlimited */
	uint32_t	 command_timeout;	/* seconds waiting for a command */
	uint32_t	 data_timeout;		/* seconds for a whole DATA/BDAT phase */
	uint32_t	 data_block_timeout;	/* seconds without any data in it */
	uint64_t	 max_session_size;	/* message octets per connection; 0 unlimited */
	uint64_t	 drop_quota;		/* octets in Drop/; 0 unlimited */
	int		 commit_syncfs;		/* commit-sync syncfs: one syncfs(2) per group */
	/* TLS of the listeners: PEM files, read by mailrootd only ("" : none) */
	char		 tls_certificate[PATH_MAX];
	char		 tls_key[PATH_MAX];
	/* connection control, relaying and reverse DNS (smtpd) */
	struct acl	 access;		/* access rules, in file order */
	int		 access_default;	/* ACL_ALLOW unless set */
	struct acl	 relay;			/* relay rules: networks only */
	int		 relay_default;		/* ACL_DENY unless set */
	int		 relay_authenticated;	/* an authenticated client may relay */
	char		**relay_domains;	/* "example.com" or "*.example.com" */
	size_t		 nrelay_domains;
	int		 reverse_dns;		/* look up (and record) the client's name */
	struct dns_server_conf dns_servers[CONF_DNS_SERVERS_MAX];
	size_t		 ndns_servers;		/* 0: the system's resolv.conf */

	/* outbound delivery: routing (deliverd) */
	struct route_conf smart_host;		/* all remote mail through it, or none */
	enum tls_policy	 smart_host_tls;	/* TLS_POLICY_DEFAULT: outbound-tls */
	char		 smart_host_auth_user[256];	/* "" : no AUTH */
	char		 smart_host_auth_password[256];
	int		 direct_first;		/* try MX first, then the smart host */
	uint16_t	 outbound_port;		/* 25 */
	struct remote_domain_list remote_domains;
	/* outbound connections (deliverd) */
	uint32_t	 max_outbound_connections;	/* in all; 0: no limit */
	uint32_t	 max_connections_per_domain;	/* 0: no limit */
	uint32_t	 max_messages_per_connection;	/* M3: 20; 0: no limit */
	uint32_t	 outbound_connect_timeout;	/* seconds */
	uint32_t	 outbound_timeout;		/* seconds for each reply */
	enum tls_policy	 outbound_tls;			/* never TLS_POLICY_DEFAULT */
	char		 outbound_tls_ca_file[PATH_MAX];	/* read by mailrootd */
	/* scheduling and reports (queued) */
	uint32_t	 retry_interval[4];	/* D1: first, second, third, subsequent */
	uint32_t	 local_retry_interval;	/* D4 */
	uint32_t	 delay_notification;	/* D2: seconds; 0: never */
	uint32_t	 expiration_timeout;	/* D3 */
	uint32_t	 local_delay_notification;
	uint32_t	 local_expiration_timeout;
	char		 ndr_copy_to[SMTP_PATH_MAX_CONF];	/* M5: "" none */
	uint32_t	 max_hop_count;		/* D6: Received: fields; 0: no limit */
	char		 masquerade_domain[CONF_NAME_MAX];	/* D7: "" none */
	/* the metrics endpoint (O3): metrics listen ADDRESS port N */
	char		 metrics_addr[64];	/* numeric, "*" all; "" none */
	uint16_t	 metrics_port;
	int		 metrics_line;
};

/*
 * Parse `fp` (named `file` in messages) into a fresh config.  Every error is
 * reported through `report` as "file:line: message" (to stderr when NULL);
 * parsing goes on to find them all.  Returns the config, or NULL when there
 * was any error.
 */
struct config *config_parse(FILE *fp, const char *file,
    void (*report)(const char *msg, void *arg), void *arg);
/* Open and parse `path`; NULL on error (reported as above). */
struct config *config_load(const char *path,
    void (*report)(const char *msg, void *arg), void *arg);
/*
 * The same, but a file with errors still gives a config: each statement in
 * error is left at its default.  For smtpctl, which needs only where the
 * control socket and pidfile are, and must stop a suite whose file now has
 * a typo.  NULL only when the file cannot be read.
 */
struct config *config_load_lenient(const char *path,
    void (*report)(const char *msg, void *arg), void *arg);
void config_free(struct config *);

/* 1 when some listener offers AUTH (mailrootd then needs the password table). */
int config_auth_used(const struct config *);

/* 1 when `domain` is the default domain or an alias domain (case-insensitive). */
int config_is_local_domain(const struct config *, const char *domain);
/* 1 when mail for `addr` is delivered here: a local domain, or bare postmaster (RFC 5321 4.5.1). */
int config_is_local_rcpt(const struct config *, const char *addr);

/*
 * The remote-domain block for `domain`: an exact pattern first, else the
 * longest "*.suffix" that matches (a strict subdomain); NULL when none.
 */
const struct remote_domain_conf *config_remote_domain(const struct config *,
    const char *domain);
/*
 * Parse a route: "host", "host:port", "[address]" or "[address]:port".
 * 0, or -1 with why.
 */
int config_parse_route(const char *s, struct route_conf *, char *why, size_t whysz);

/* Every keyword the parser knows, NULL-terminated (for the man page check). */
extern const char *const config_keywords[];

/* "2048K", "10M", "1G" -> octets; "30s", "10m", "2h", "2d" -> seconds. -1 on error. */
int config_parse_size(const char *s, uint64_t *out);
int config_parse_time(const char *s, uint32_t *out);

#endif
