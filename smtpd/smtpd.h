/*
 * smtpd.h - the SMTP listener's shared declarations.
 */
#ifndef SMTPD_H
#define SMTPD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "auth.h"
#include "envelope.h"
#include "queueid.h"
#include "smtp_bdat.h"
#include "smtp_data.h"
#include "smtp_parse.h"

struct auth_session;
struct bufferevent;
struct config;
struct evbuffer;
struct ipc_msg;
struct listener_conf;
struct smtp_cmd;
struct event;
struct ssl_st;

enum session_state {
	S_CONNECTED,		/* greeting sent, no HELO/EHLO yet */
	S_HELO,			/* greeted: may start a transaction */
	S_MAIL,			/* MAIL accepted */
	S_RCPT,			/* at least one RCPT accepted */
	S_DATA,			/* receiving message data */
	S_CLOSING,		/* reply flushed, then close */
	S_BDAT,			/* message open, chunks under way (RFC 3030) */
	S_DENIED		/* refused with 554 at connect: only QUIT (RFC 5321 3.1) */
};

enum session_tls {
	TLS_OFF,		/* plaintext */
	TLS_HANDSHAKE,		/* STARTTLS said 220, or an smtps connection */
	TLS_ON			/* the handshake completed */
};

/* What the reverse lookup of a client found (smtpd_dns.c). */
enum dns_status {
	DNS_NONE = 0,		/* not looked up */
	DNS_CONFIRMED,		/* a PTR name whose A/AAAA records hold the address */
	DNS_UNCONFIRMED,	/* PTR names, none forward-confirmed */
	DNS_NOPTR,		/* no PTR record */
	DNS_TIMEOUT,		/* no answer in time */
	DNS_FAILED		/* resolver error */
};

struct dns_lookup;

/* The command a W3C log line is owed for (smtpd_w3c.c). */
struct w3c_cmd {
	int			 pending;	/* a command awaits its final reply */
	char			 verb[40];	/* encoded, upper case */
	char			 query[128];	/* encoded arguments, "-" none */
	uint64_t		 start_ms;
	uint64_t		 start_bytes;	/* bytes_in before the command */
	uint64_t		 sc_bytes;	/* reply octets so far */
	char			 laddr[64];	/* the server's address (s-ip) */
	uint16_t		 lport;
};

struct session {
	uint32_t		 id;
	struct bufferevent	*bev;
	char			 addr[64];	/* client address as text */
	char			 literal[80];	/* [addr] / [IPv6:addr] for Received: */
	char			 helo[SMTP_DOMAIN_MAX + 1];
	int			 esmtp;
	enum session_state	 state;
	/* the transaction */
	char			 sender[SMTP_PATH_MAX + 1];
	char			**rcpts;
	size_t			 nrcpts;
	int			 waiting;	/* a request to queued is outstanding */
	int			 killed;	/* smtpctl kill session: end it */
	int			 msgfd;		/* content file from queued, or -1 */
	uint32_t		 queue_gen;	/* queue link the message was opened on */
	char			 qid[QUEUEID_LEN + 1];
	struct smtp_data	 data;
	struct evbuffer		*msgbuf;	/* content not yet written to msgfd */
	int			 write_errno;	/* writing msgfd failed */
	int			 discarding;	/* dropping an over-long command line */
	uint32_t		 messages;
	uint64_t		 bytes_in;
	uint32_t		 listener;	/* index of the listener it came in on */
	char			 auth_user[AUTH_USER_MAX + 1];	/* "" until AUTH succeeds */
	struct auth_session	*auth;		/* an AUTH exchange (smtpd_auth.c), or NULL */
	/* limits and timeouts */
	int			 counted;	/* limit_conn_enter() counted it */
	int			 data_phase;	/* the data timeouts apply */
	struct event		*data_ev;	/* the whole DATA/BDAT phase */
	struct event		*line_ev;	/* a command line begun: command-timeout */
	uint64_t		 session_data;	/* message octets in this connection */
	int64_t			 since;		/* connected at (time(3)) */
	/* extensions of the transaction: SMTPUTF8, BODY, CHUNKING */
	int			 smtputf8;	/* MAIL ... SMTPUTF8 (RFC 6531) */
	enum envelope_body	 body;
	int			 used_data;	/* DATA was given: no BDAT now */
	int			 chunking;	/* BDAT started this message */
	struct smtp_bdat	 bdat;
	uint64_t		 chunk_left;	/* octets of the current chunk to come */
	uint64_t		 chunk_size;
	int			 chunk_last;	/* it is the LAST chunk */
	int			 chunk_discard;	/* its octets are read and dropped */
	/* DSN (RFC 3461): MAIL RET= ENVID=, RCPT NOTIFY= ORCPT= */
	int			 ret;		/* enum dsn_ret */
	char			*envid;		/* xtext, or NULL */
	uint32_t		*rcpt_notify;	/* per recipient, beside rcpts */
	char			**rcpt_orcpt;	/* per recipient (NULL: none) */
	/* TLS (smtpd_tls.c) */
	unsigned		 listen_flags;	/* LISTEN_* of its listener */
	enum session_tls	 tls;
	struct bufferevent	*bev_plain;	/* the socket under bev, the TLS filter */
	struct ssl_st		*ssl;
	char			 tls_version[16];	/* "TLSv1.3" */
	char			 tls_cipher[64];
	int			 tls_bits;
	/* who the client is: access, relay and Received: (smtpd_policy.c) */
	struct sockaddr_storage	 ss;		/* its address, from accept(2) */
	enum dns_status		 dns_status;
	char			 rdns[SMTP_DOMAIN_MAX + 1];	/* forward-confirmed name or "" */
	struct dns_lookup	*dns;		/* lookup in progress, or NULL */
	uint32_t		 denied_cmds;	/* commands heard in S_DENIED */

	/* ETRN (RFC 1985): the node asked for while waiting on queued, or "" */
	char			 etrn_node[SMTP_DOMAIN_MAX + 2];
	struct event		*etrn_ev;	/* no answer in time: 458 */

	uint32_t		 commands;	/* command lines heard */
	struct w3c_cmd		 w3c;
};

/* smtpd.c */
int	smtpd_paused(void);
/* What smtpd has seen since it started (FEATURES O3; smtpctl show stats). */
struct smtpd_stats {
	uint64_t	connections;	/* accepted from a listener */
	uint64_t	refused;	/* turned away: paused, limits, access, AUTH block */
	uint64_t	tls;		/* TLS handshakes completed */
	uint64_t	auth_failures;
	uint64_t	messages;	/* committed by queued (250 said) */
	uint64_t	bytes;		/* octets of those messages */
};
extern struct smtpd_stats smtpd_stats;

/* smtpd_session.c */
void	session_accept(int fd, const struct sockaddr *, socklen_t, uint32_t listener,
	    unsigned listen_flags);
struct session *session_find(uint32_t id);
/* Call fn for every session, in id order (fn must not end sessions). */
void	session_foreach(void (*fn)(struct session *, void *), void *arg);
uint32_t session_count(void);
/* Answers from queued to a session's request. */
void	session_opened(struct session *, int fd, const char *qid);
void	session_committed(struct session *);
void	session_queue_failed(struct session *, int temporary, const char *reason);
void	session_queue_lost(void);
/* queued's answer to ETRN: messages released for the node. */
void	session_etrn_result(struct session *, uint32_t count);
/* For smtpd_auth.c: a reply line; go on reading; last reply, then close. */
void	session_reply(struct session *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	session_resume(struct session *);
void	session_end(struct session *);
/* smtpctl kill session: 421 4.3.2 and close; 1 if it will end, 0 if closing already. */
int	session_kill(struct session *);

/* smtpd_auth.c: SMTP AUTH (RFC 4954) with PLAIN and LOGIN */
/* NONE: no exchange on; WAIT: on mailrootd or the delay; PARTIAL: half a line in. */
enum auth_input { AUTH_INPUT_NONE, AUTH_INPUT_WAIT, AUTH_INPUT_PARTIAL, AUTH_INPUT_DONE };
/* The listener a session came in on, or NULL after a reload dropped it. */
const struct listener_conf *auth_listener(const struct session *);
/* 1 when the session was secured with TLS (wired by the TLS module). */
int	session_is_tls(const struct session *);
/* 1 when EHLO should advertise AUTH on this session. */
int	auth_offered(const struct session *);
/* 1 when MAIL must be refused with 530 5.7.0 (require-auth, not yet authenticated). */
int	auth_required(const struct session *);
/* 1 when the client's address has used up its AUTH failures (421 4.7.0). */
int	auth_blocked(const struct session *);
/* "ESMTP", "ESMTPA", "ESMTPS", "ESMTPSA" for Received: (RFC 3848). */
/* The AUTH command. */
void	auth_command(struct session *, struct smtp_cmd *);
/* Feed a continuation line of an exchange in progress from `in`. */
enum auth_input auth_input(struct session *, struct evbuffer *in);
/* DAEMON_AUTH_RESULT from mailrootd: 0 when it was well-formed. */
int	auth_result(struct ipc_msg *);
void	auth_session_free(struct session *);

/* smtpd_status.c: the sessions table for the supervisor */
struct ipc;
struct ipc_msg;
void	status_sessions(struct ipc *parent, struct ipc_msg *);
/* smtpctl kill session: end the named session or all; answer the count. */
void	status_kill(struct ipc *parent, struct ipc_msg *);

/* smtpd_limit.c: connection limits */
int	limit_conn_enter(const char *addr);
void	limit_conn_leave(const char *addr);
uint32_t limit_conn_count(void);
/* The client's reverse lookup has finished (s->dns_status, s->rdns set). */
void	session_dns_done(struct session *);

/* smtpd_queue.c: the link to queued */
void	queue_link_set(int fd);
uint32_t queue_link_gen(void);
/* 1 while queued says Drop/ is over drop-quota. */
int	queue_drop_over(void);
int	queue_open(struct session *);
int	queue_commit(struct session *);
/* Ask queued to run the queue for an ETRN node ("domain", "@domain", "#queue"). */
int	queue_etrn(struct session *, const char *node);
void	queue_abort(const char *qid);

/* smtpd_tls.c: TLS on the listeners */
void	tls_material(int fd, uint64_t certlen, const char *certfile,
	    const char *keyfile);
int	tls_available(void);
int	tls_start(struct session *);
void	tls_established(struct session *);
void	tls_failed(struct session *, short what);
const char *tls_log_fields(const struct session *);
void	tls_close(struct session *);
/* smtpd_w3c.c: W3C extended log files of the listeners (w3c-log) */
/* Today's file of listener `index` (DAEMON_W3C_LOG); replaces the previous one. */
void	w3c_log_set(uint32_t index, int fd);
/* A new session on socket `fd`: note the server address when its listener logs. */
void	w3c_session_init(struct session *, int fd);
/* A command line (`consumed` octets with its line end) is about to be handled. */
void	w3c_command(struct session *, const char *line, size_t len, size_t consumed);
/* A reply line of `len` octets (with CRLF) starting with `head` went out. */
void	w3c_reply(struct session *, const char *head, size_t len);

/* smtpd_dns.c: asynchronous reverse DNS with forward confirmation */
void	dns_init(void);
int	dns_configure(const struct config *, char *why, size_t whysz);
int	dns_lookup_client(struct session *);
void	dns_cancel(struct session *);
const char *dns_status_name(enum dns_status);
/* The pure parts (answer bytes in; also fuzz_dns_ptr's entry points): */
int	dns_ptr_answer(const unsigned char *abuf, int alen, const unsigned char *addr,
	    int family, char (*names)[SMTP_DOMAIN_MAX + 1], int max, int *nnames);
int	dns_fwd_answer(const unsigned char *abuf, int alen, int family,
	    const unsigned char *addr);

/* smtpd_policy.c: connection control and relay decisions */
enum policy_rcpt {
	POLICY_RCPT_LOCAL,	/* a local or alias domain */
	POLICY_RCPT_RELAY,	/* remote, and relaying is allowed */
	POLICY_RCPT_DENIED	/* remote, relaying denied: 550 5.7.1 */
};
int	policy_access(const struct session *, char *why, size_t whysz);
enum policy_rcpt policy_rcpt(const struct session *, const char *rcpt,
	    char *why, size_t whysz);
/* 1 when the client may send ETRN (it may relay by network or AUTH). */
int	policy_etrn(const struct session *, char *why, size_t whysz);

#endif
