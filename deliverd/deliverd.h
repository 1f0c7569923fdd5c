/*
 * deliverd.h - the outbound delivery daemon's shared declarations: jobs
 * (one batch from queued), routes, destinations and SMTP client sessions.
 */
#ifndef DELIVERD_H
#define DELIVERD_H

#include <sys/types.h>
#include <sys/queue.h>
#include <stdint.h>

#include "config.h"
#include "dsn.h"
#include "proto_deliver.h"
#include "queueid.h"
#include "smtp_parse.h"

struct bufferevent;
struct evbuffer;
struct dest;
struct ssl_st;

#define ROUTE_KEY_MAX		(CONF_NAME_MAX * 2 + 32)
#define DELIVERD_ENH_MAX	16

/* Where a job goes (deliverd_route.c). */
enum route_kind {
	ROUTE_MX,		/* the MX hosts of `host` (a domain) */
	ROUTE_HOST,		/* the A/AAAA of `host` (a route or smart host) */
	ROUTE_LITERAL		/* `host` is an address: connect to it as is */
};

struct route {
	enum route_kind	 kind;
	char		 host[CONF_NAME_MAX];
	uint16_t	 port;
	enum tls_policy	 tls;			/* never TLS_POLICY_DEFAULT */
	int		 helo;			/* the block says helo */
	int		 fallback;		/* MX, then the smart host (direct-first) */
	int		 auth_plaintext;	/* the block says tls no: AUTH without TLS */
	char		 auth_user[256];	/* "" no AUTH */
	char		 auth_password[256];
	char		 key[ROUTE_KEY_MAX];	/* the destination (pool key) */
};

/* One recipient of a job and its outcome. */
struct job_rcpt {
	uint32_t	 index;
	char		*addr;
	uint32_t	 notify;
	char		*orcpt;			/* NULL none */
	int		 done;			/* the result below is final */
	int		 accepted;		/* RCPT got 2xx on this connection */
	uint32_t	 status;		/* enum deliver_status */
	uint32_t	 code;
	char		 enhanced[DELIVERD_ENH_MAX];
	char		 text[DELIVER_TEXT_MAX];
	char		 host[DELIVER_HOST_MAX];
};

/* One DELIVER_BATCH: a message for the recipients of one domain. */
struct job {
	TAILQ_ENTRY(job)  entry;		/* in its destination's waiting list */
	uint32_t	  reqid;		/* queued's batch number */
	uint32_t	  link_gen;		/* the queued link it came on */
	char		  qid[QUEUEID_LEN + 1];
	char		 *sender;		/* "" null sender */
	char		  domain[SMTP_DOMAIN_MAX + 1];
	uint32_t	  body;			/* enum envelope_body */
	int		  smtputf8;
	uint32_t	  ret;			/* enum dsn_ret */
	char		  envid[DSN_ENVID_MAX + 1];	/* xtext, "" none */
	uint64_t	  size;
	int		  fd;			/* the content, read-only */
	size_t		  nrcpts;
	struct job_rcpt	 *rcpts;
	struct route	  route;
	int		  fell_back;		/* now on the smart host (direct-first) */
	/* why it was not delivered, for recipients without a reply of their own */
	uint32_t	  err_code;
	char		  err_enhanced[DELIVERD_ENH_MAX];
	char		  err_text[DELIVER_TEXT_MAX];
	char		  err_host[DELIVER_HOST_MAX];
	int		  err_perm;
};
TAILQ_HEAD(job_list, job);

/* deliverd.c */
/* Send the job's results to queued (if its link still stands). */
void	deliverd_report(struct job *);
/* What deliverd has seen since it started (FEATURES O3; smtpctl show stats). */
struct deliverd_stats {
	uint64_t	current;	/* connections open now */
	uint64_t	connections;	/* TCP connections made */
	uint64_t	failed;		/* connection attempts that failed */
	uint64_t	tls;		/* TLS handshakes completed */
	uint64_t	messages;	/* messages a server took (2xx after the data) */
	uint64_t	bytes;		/* octets of those messages */
};
extern struct deliverd_stats deliverd_stats;

/* deliverd_job.c */
/* A job from a decoded batch; takes `fd`.  NULL when out of memory. */
struct job *job_new(const struct deliver_batch *, uint32_t reqid, int fd);
void	job_free(struct job *);
/* Note why delivery did not happen (for recipients not yet answered). */
void	job_error(struct job *, int perm, uint32_t code, const char *enhanced,
	    const char *text, const char *host);
/* Set the result of one recipient (a reply of its own). */
void	job_rcpt_result(struct job *, struct job_rcpt *, uint32_t code,
	    const char *enhanced, const char *text, const char *host);
/* Give every recipient without a final result the job's error. */
void	job_settle(struct job *);
/* Clean peer text into one printable line. */
void	text_clean(char *dst, size_t dstsz, const char *src);

/* deliverd_route.c */
/* Decide where mail for `domain` goes (remote-domain route, smart host, MX). */
void	route_decide(const struct config *, const char *domain, struct route *);
/* Switch a route to the smart host (direct-first); 0, or -1 when none is set. */
int	route_fallback(const struct config *, const char *domain, struct route *);
/* A lookup result for a literal route (no DNS); 0, or -1 when not an address. */
struct mx_result;
int	route_literal(const struct route *, struct mx_result *);

/* deliverd_pool.c */
/* Hand a job to its destination: a new connection, or wait for one. */
void	pool_submit(struct job *);
/* The next waiting job of `d` for a connection that is free (or NULL). */
struct job *pool_next(struct dest *);
/* Put a job back first in its destination's queue (its connection failed). */
void	pool_requeue(struct dest *, struct job *);
/* A connection of `d` ended: count it, then start what waits. */
void	pool_closed(struct dest *);
/* Report and free a job that is over. */
void	pool_job_done(struct job *);
/* Forget every waiting job (queued's link broke: it sends them again). */
void	pool_drop_waiting(void);
const char *pool_dest_key(const struct dest *);

/* deliverd_session.c */
/* Open a connection for `job` (the first of destination `d`). */
void	session_start(struct dest *, struct job *);
/* An idle connection to d takes job j: 1; none idle: 0. */
int	session_take_idle(struct dest *, struct job *);
/* QUIT the longest-idle connection (a limit needs its slot): 1; none: 0. */
int	session_retire_idle(void);

/* deliverd_tls.c */
/* The client context (TLS 1.2+), with no CA until a bundle arrives. */
void	tls_client_init(void);
/* DAEMON_CA_BUNDLE: the CA certificates to verify peers with (takes fd). */
void	tls_ca_bundle(int fd, const char *name);
/*
 * A client SSL for a connection to `name` (a host name, or an address when
 * `literal`): SNI, the name to verify, and whether verification is a must.
 */
struct ssl_st *tls_client_new(const char *name, int literal, int require);
/* After the handshake: "TLSv1.3" and whether chain and name verified. */
void	tls_client_info(struct ssl_st *, char *version, size_t versionsz,
	    int *verified);
/* OpenSSL's reasons for a failed handshake on `bev`, oldest first. */
void	tls_client_error(struct bufferevent *bev, short what, char *buf,
	    size_t bufsz);

/* deliverd_data.c: the message content, as DATA sends it */
#define DATA_FIELD_MAX	4096	/* a header field held for masquerading */
struct data_stream {
	int		 fd;
	off_t		 off;
	char		 masquerade[CONF_NAME_MAX];	/* "": no rewriting */
	int		 bol;		/* at the start of a line */
	int		 cr;		/* a CR was read, its LF not yet */
	int		 in_header;
	int		 field_pass;	/* the field is too long: passed as is */
	size_t		 flen;
	char		 field[DATA_FIELD_MAX];
	int		 done;
	int		 raw;		/* BDAT: the octets as they are, no "." */
};
void	data_stream_init(struct data_stream *, int fd, const struct config *);
/* The content as BDAT sends it (RFC 3030): unchanged, no final ".". */
void	data_stream_init_raw(struct data_stream *, int fd);
/*
 * Append about `want` octets of the dot-stuffed CRLF content to `out`, the
 * final "." line at the end; `c` says which domains are local (it may be a
 * newer configuration than at init).  1 when all is out, 0 more to come,
 * -1 read error.
 */
int	data_stream_fill(struct data_stream *, const struct config *c,
	    struct evbuffer *out, size_t want);

#endif
