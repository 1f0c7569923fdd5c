/*
 * smtpd.h - the SMTP listener's shared declarations.
 */
#ifndef SMTPD_H
#define SMTPD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "queueid.h"
#include "smtp_data.h"
#include "smtp_parse.h"

struct bufferevent;
struct config;
struct evbuffer;

enum session_state {
	S_CONNECTED,		/* greeting sent, no HELO/EHLO yet */
	S_HELO,			/* greeted: may start a transaction */
	S_MAIL,			/* MAIL accepted */
	S_RCPT,			/* at least one RCPT accepted */
	S_DATA,			/* receiving message data */
	S_CLOSING,		/* reply flushed, then close */
	S_DENIED		/* refused with 554 at connect: only QUIT (RFC 5321 3.1) */
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
	int			 msgfd;		/* content file from queued, or -1 */
	uint32_t		 queue_gen;	/* queue link the message was opened on */
	char			 qid[QUEUEID_LEN + 1];
	struct smtp_data	 data;
	struct evbuffer		*msgbuf;	/* content not yet written to msgfd */
	int			 write_errno;	/* writing msgfd failed */
	int			 discarding;	/* dropping an over-long command line */
	uint32_t		 messages;
	uint64_t		 bytes_in;
	/* who the client is: access, relay and Received: (smtpd_policy.c) */
	struct sockaddr_storage	 ss;		/* its address, from accept(2) */
	char			 auth_user[256];	/* authenticated user, "" if none */
	enum dns_status		 dns_status;
	char			 rdns[SMTP_DOMAIN_MAX + 1];	/* forward-confirmed name or "" */
	struct dns_lookup	*dns;		/* lookup in progress, or NULL */
	uint32_t		 denied_cmds;	/* commands heard in S_DENIED */
};

/* smtpd.c */
int	smtpd_paused(void);

/* smtpd_session.c */
void	session_accept(int fd, const struct sockaddr *, socklen_t);
struct session *session_find(uint32_t id);
/* Answers from queued to a session's request. */
void	session_opened(struct session *, int fd, const char *qid);
void	session_committed(struct session *);
void	session_queue_failed(struct session *, int temporary, const char *reason);
void	session_queue_lost(void);
/* The client's reverse lookup has finished (s->dns_status, s->rdns set). */
void	session_dns_done(struct session *);

/* smtpd_queue.c: the link to queued */
void	queue_link_set(int fd);
uint32_t queue_link_gen(void);
int	queue_open(struct session *);
int	queue_commit(struct session *);
void	queue_abort(const char *qid);

/* smtpd_dns.c: asynchronous reverse DNS with forward confirmation */
void	dns_init(void);
int	dns_configure(const struct config *, char *why, size_t whysz);
int	dns_lookup_client(struct session *);
void	dns_cancel(struct session *);
const char *dns_status_name(enum dns_status);

/* smtpd_policy.c: connection control and relay decisions */
enum policy_rcpt {
	POLICY_RCPT_LOCAL,	/* a local or alias domain */
	POLICY_RCPT_RELAY,	/* remote, and relaying is allowed */
	POLICY_RCPT_DENIED	/* remote, relaying denied: 550 5.7.1 */
};
int	policy_access(const struct session *, char *why, size_t whysz);
enum policy_rcpt policy_rcpt(const struct session *, const char *rcpt,
	    char *why, size_t whysz);

#endif
