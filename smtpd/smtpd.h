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
struct evbuffer;
struct ssl_st;

enum session_state {
	S_CONNECTED,		/* greeting sent, no HELO/EHLO yet */
	S_HELO,			/* greeted: may start a transaction */
	S_MAIL,			/* MAIL accepted */
	S_RCPT,			/* at least one RCPT accepted */
	S_DATA,			/* receiving message data */
	S_CLOSING		/* reply flushed, then close */
};

enum session_tls {
	TLS_OFF,		/* plaintext */
	TLS_HANDSHAKE,		/* STARTTLS said 220, or an smtps connection */
	TLS_ON			/* the handshake completed */
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
	int			 msgfd;		/* content file from queued, or -1 */
	uint32_t		 queue_gen;	/* queue link the message was opened on */
	char			 qid[QUEUEID_LEN + 1];
	struct smtp_data	 data;
	struct evbuffer		*msgbuf;	/* content not yet written to msgfd */
	int			 write_errno;	/* writing msgfd failed */
	int			 discarding;	/* dropping an over-long command line */
	uint32_t		 messages;
	uint64_t		 bytes_in;
	/* TLS (smtpd_tls.c) */
	unsigned		 listen_flags;	/* LISTEN_* of its listener */
	enum session_tls	 tls;
	struct bufferevent	*bev_plain;	/* the socket under bev, the TLS filter */
	struct ssl_st		*ssl;
	char			 tls_version[16];	/* "TLSv1.3" */
	char			 tls_cipher[64];
	int			 tls_bits;
};

/* smtpd.c */
int	smtpd_paused(void);

/* smtpd_session.c */
void	session_accept(int fd, const struct sockaddr *, socklen_t, unsigned listen_flags);
struct session *session_find(uint32_t id);
/* Answers from queued to a session's request. */
void	session_opened(struct session *, int fd, const char *qid);
void	session_committed(struct session *);
void	session_queue_failed(struct session *, int temporary, const char *reason);
void	session_queue_lost(void);

/* smtpd_queue.c: the link to queued */
void	queue_link_set(int fd);
uint32_t queue_link_gen(void);
int	queue_open(struct session *);
int	queue_commit(struct session *);
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

#endif
