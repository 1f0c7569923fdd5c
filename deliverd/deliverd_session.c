/*
 * deliverd_session.c - the SMTP client (deliverd, unprivileged, chrooted):
 * one connection to one destination, on a bufferevent, that delivers a job
 * and then, after RSET, the destination's waiting jobs, up to
 * max-messages-per-connection (RFC 5321 3, 4; RFC 2920 PIPELINING; RFC 1870
 * SIZE; RFC 6152 8BITMIME; RFC 6531 SMTPUTF8; RFC 3461 DSN; RFC 3207
 * STARTTLS; RFC 4954 AUTH; RFC 3030 BDAT for BINARYMIME content).
 *
 *   resolve -> connect -> greeting -> EHLO (HELO) -> [STARTTLS -> EHLO]
 *   -> [AUTH] -> MAIL -> RCPT... -> DATA -> content -> "." -> RSET / QUIT
 *                                 (BINARYMIME: BDAT n LAST -> content)
 *
 * Until a server has answered MAIL, any trouble (connect failure, timeout,
 * a 4xx/5xx greeting, 4xx to EHLO/HELO/MAIL, TLS that policy refuses)
 * moves on to the next address, then the next MX host; when none is left
 * the job is deferred.  Once MAIL is answered, the replies decide, one per
 * recipient, and trouble defers what is still open.
 *
 * Trust boundary: everything the server sends.  Replies are read line by
 * line from an input buffer capped by a watermark, through the bounded
 * parser of common/smtp_reply.c, each reply within outbound-timeout of
 * being awaited however slowly it trickles in; text is cleaned before it
 * is logged or passed on.  A server that sends more replies than were asked for, or
 * plaintext behind its STARTTLS answer, is dropped.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "daemon.h"
#include "deliverd.h"
#include "deliverd_dns.h"
#include "envelope.h"
#include "log.h"
#include "smtp_reply.h"

#define INPUT_MAX	(16 * 1024)	/* read no more while this waits unparsed */
#define OUTPUT_LOW	(64 * 1024)	/* refill the content below this */
#define QUIT_WAIT	10		/* seconds for the reply to QUIT */
#define IDLE_KEEP	2		/* seconds a connection waits for a next job */
#define AUTH_B64_MAX	1024		/* base64 of user and password (255 each) */

enum state {
	S_RESOLVE,
	S_CONNECT,
	S_GREETING,
	S_EHLO,
	S_HELO,
	S_STARTTLS,
	S_TLS,			/* handshake under way */
	S_AUTH_PLAIN,
	S_AUTH_LOGIN_USER,
	S_AUTH_LOGIN_PASS,
	S_AUTH_DONE,
	S_MAIL,
	S_RCPT,
	S_DATA,
	S_BODY,			/* sending the content */
	S_DOT,			/* waiting for the reply to the final "." */
	S_DOT_IGNORE,		/* "." after a 354 with no recipient accepted */
	S_RSET,
	S_IDLE,			/* between messages, kept for the next job */
	S_QUIT
};

#define EXT_PIPELINING	0x01
#define EXT_SIZE	0x02
#define EXT_8BITMIME	0x04
#define EXT_SMTPUTF8	0x08
#define EXT_DSN		0x10
#define EXT_STARTTLS	0x20
#define EXT_AUTH_PLAIN	0x40
#define EXT_AUTH_LOGIN	0x80
#define EXT_CHUNKING	0x100
#define EXT_BINARYMIME	0x200

struct session {
	TAILQ_ENTRY(session)	 idle_entry;	/* on idle_sessions in S_IDLE */
	uint32_t		 id;
	struct dest		*dest;
	struct job		*job;		/* the job under way, or NULL */
	struct route		 route;		/* of the first job: the terms of the connection */
	enum state		 state;
	struct dns_query	*dq;
	struct event		*start_ev;
	struct event		*reply_ev;	/* the deadline of the reply awaited */
	struct mx_result	*mx;
	size_t			 host_i, addr_i;
	int			 plain_retry;	/* opportunistic TLS failed: again without */
	/* the connection */
	struct bufferevent	*bev;		/* the socket, or the TLS filter over it */
	struct bufferevent	*bev_plain;	/* the socket under the TLS filter */
	SSL			*ssl;
	int			 tls_on;
	int			 verified;
	int			 connected;	/* counted in deliverd_stats.current */
	char			 tls_version[16];
	char			 name[SMTP_DOMAIN_MAX + 1];	/* the host connected to */
	char			 addr[INET6_ADDRSTRLEN];
	uint16_t		 port;
	char			 hostfield[DELIVER_HOST_MAX];	/* "name[addr]" */
	/* what the server said */
	struct smtp_reply	 reply;
	unsigned		 ext;
	uint64_t		 max_size;	/* SIZE; 0 none announced */
	int			 mail_answered;	/* no failing over from here */
	uint32_t		 messages;	/* jobs finished on this connection */
	int			 no_reuse;
	uint32_t		 pending;	/* replies owed for what was sent */
	/* the transaction */
	size_t			 rcpt_sent, rcpt_replied, naccepted;
	int			 bdat;		/* BINARYMIME: BDAT, not DATA */
	struct data_stream	 ds;
};

static uint32_t next_id;
/* Connections between messages, oldest first (IDLE_KEEP bounds them). */
static TAILQ_HEAD(, session) idle_sessions = TAILQ_HEAD_INITIALIZER(idle_sessions);
/* Kept here, where the connections are (deliverd.c lists them). */
struct deliverd_stats deliverd_stats;

static void	connect_next(struct session *);
static int	start_message(struct session *);
static int	message_failed(struct session *, uint32_t, const char *, const char *);
static void	read_cb(struct bufferevent *, void *);
static void	write_cb(struct bufferevent *, void *);
static int	body_fill(struct session *);
static void	event_cb(struct bufferevent *, short, void *);
static void	reply_deadline(struct session *);
static void	reply_timeout_cb(evutil_socket_t, short, void *);

/* ---- small helpers ---------------------------------------------------------- */

static const char *
qid_of(const struct session *s)
{
	return s->job ? s->job->qid : "-";
}

static void
set_timeouts(struct session *s, int reading)
{
	struct timeval tv = { env->conf->outbound_timeout, 0 };

	bufferevent_set_timeouts(s->bev, reading ? &tv : NULL, &tv);
}

static void
sendf(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
sendf(struct session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(s->bev), fmt, ap);
	va_end(ap);
	evbuffer_add(bufferevent_get_output(s->bev), "\r\n", 2);
	s->pending++;	/* every command line earns one reply */
	reply_deadline(s);
}

/* The reply, escaped, for a log line. */
static const char *
reply_log(const struct session *s)
{
	static char buf[SMTP_REPLY_TEXT_MAX * 4 + 32];
	char line[SMTP_REPLY_TEXT_MAX + 32];

	(void)snprintf(line, sizeof(line), "%d%s%s %s", s->reply.code,
	    s->reply.enhanced[0] ? " " : "", s->reply.enhanced, s->reply.text);
	return log_escape(buf, sizeof(buf), line, strlen(line));
}

/* The reply as one line for a result: "550 5.1.1 no such user". */
static void
reply_text(const struct session *s, char *buf, size_t bufsz)
{
	(void)snprintf(buf, bufsz, "%d%s%s %s", s->reply.code,
	    s->reply.enhanced[0] ? " " : "", s->reply.enhanced, s->reply.text);
}

/* An enhanced code for a reply that had none (RFC 3463 x.0.0). */
static const char *
reply_enhanced(const struct session *s)
{
	if (s->reply.enhanced[0])
		return s->reply.enhanced;
	switch (SMTP_REPLY_CLASS(&s->reply)) {
	case 2: return "2.0.0";
	case 5: return "5.0.0";
	default: return "4.0.0";
	}
}

static void
close_conn(struct session *s)
{
	if (s->reply_ev)
		evtimer_del(s->reply_ev);
	if (s->connected) {
		deliverd_stats.current--;
		s->connected = 0;
	}
	if (s->bev_plain) {
		if (s->tls_on)
			(void)SSL_shutdown(s->ssl);
		bufferevent_free(s->bev);
		SSL_free(s->ssl);
		bufferevent_free(s->bev_plain);
	} else if (s->bev)
		bufferevent_free(s->bev);
	s->bev = s->bev_plain = NULL;
	s->ssl = NULL;
	s->tls_on = 0;
	s->verified = 0;
}

/* The connection is over: the job (if any) is settled, the pool told. */
static void
session_free(struct session *s)
{
	struct dest *d = s->dest;

	if (s->state == S_IDLE)
		TAILQ_REMOVE(&idle_sessions, s, idle_entry);
	if (s->dq)
		dns_cancel(s->dq);
	if (s->start_ev)
		event_free(s->start_ev);
	close_conn(s);
	if (s->reply_ev)
		event_free(s->reply_ev);
	if (s->job)
		pool_job_done(s->job);
	free(s->mx);
	explicit_bzero(&s->route, sizeof(s->route));
	free(s);
	pool_closed(d);
}

/*
 * Before any server answered MAIL: note why this address failed and try
 * the next one.  Returns -1 (the caller must not touch the connection).
 */
static int
fail_over(struct session *s, uint32_t code, const char *enhanced, const char *why)
{
	char esc[DELIVER_TEXT_MAX * 4], enh[DELIVERD_ENH_MAX], text[DELIVER_TEXT_MAX];

	/* Not delivered here, maybe elsewhere: a temporary failure. */
	(void)strlcpy(enh, enhanced, sizeof(enh));
	if (enh[0] == '5')
		enh[0] = '4';
	enhanced = enh;
	log_info("%s relay=%s[%s]:%u status=failed reason=\"%s\"", qid_of(s), s->name,
	    s->addr, (unsigned)s->port, log_escape(esc, sizeof(esc), why, strlen(why)));
	if (s->job) {
		if (s->messages > 0 || s->mail_answered) {
			/* A connection that had delivered: defer, do not fail over. */
			job_error(s->job, 0, code / 100 == 4 ? code : 0, enhanced, why,
			    s->hostfield);
			session_free(s);
			return -1;
		}
		(void)snprintf(text, sizeof(text), "%s[%s]:%u: %s", s->name, s->addr,
		    (unsigned)s->port, why);
		job_error(s->job, 0, code / 100 == 4 ? code : 0, enhanced, text,
		    s->hostfield);
	}
	close_conn(s);
	s->addr_i++;
	s->plain_retry = 0;
	connect_next(s);
	return -1;
}

/* Trouble after MAIL was answered: defer what is open and end. */
static int
conn_lost(struct session *s, const char *why)
{
	char text[DELIVER_TEXT_MAX], esc[DELIVER_TEXT_MAX * 4];

	if (s->state == S_CONNECT) {
		deliverd_stats.failed++;
		return fail_over(s, 0, "4.4.1", why);
	}
	if (!s->mail_answered && s->messages == 0 && s->state != S_QUIT)
		return fail_over(s, 0, "4.4.2", why);
	if (s->state == S_RSET && s->job) {
		/* The waiting job was not tried here: a fresh connection takes it. */
		pool_requeue(s->dest, s->job);
		s->job = NULL;
	}
	if (s->job) {
		(void)snprintf(text, sizeof(text), "lost connection with %s: %s",
		    s->hostfield, why);
		job_error(s->job, 0, 0, "4.4.2", text, s->hostfield);
		log_info("%s relay=%s[%s]:%u status=lost reason=\"%s\"", qid_of(s), s->name,
		    s->addr, (unsigned)s->port, log_escape(esc, sizeof(esc), why,
		    strlen(why)));
	}
	session_free(s);
	return -1;
}

/* ---- resolving and connecting ----------------------------------------------- */

static void
dns_done(const struct mx_result *mx, void *arg)
{
	struct session *s = arg;

	s->dq = NULL;
	if (mx->status != MX_OK) {
		char esc[sizeof(mx->why) * 4];

		log_info("%s domain=%s lookup=%s status=%s reason=\"%s\"", s->job->qid,
		    s->job->domain, s->route.host, mx->status == MX_TEMPFAIL ?
		    "deferred" : "failed", log_escape(esc, sizeof(esc), mx->why,
		    strlen(mx->why)));
	}
	switch (mx->status) {
	case MX_OK:
		break;
	case MX_NXDOMAIN:
	case MX_NOHOST:
		job_error(s->job, 1, 550, "5.1.2", mx->why[0] ? mx->why :
		    "no such domain", "");
		session_free(s);
		return;
	case MX_NULLMX:
		job_error(s->job, 1, 556, "5.1.10", mx->why[0] ? mx->why :
		    "the domain accepts no mail (null MX)", "");
		session_free(s);
		return;
	default:
		job_error(s->job, 0, 0, "4.4.3", mx->why[0] ? mx->why :
		    "DNS lookup failed", "");
		session_free(s);
		return;
	}
	if ((s->mx = malloc(sizeof(*s->mx))) == NULL) {
		job_error(s->job, 0, 0, "4.3.0", "out of memory", "");
		session_free(s);
		return;
	}
	*s->mx = *mx;
	connect_next(s);
}

static void
start_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct session *s = arg;
	enum dns_mode mode;
	struct mx_result mx;

	(void)fd;
	(void)ev;
	if (s->route.kind == ROUTE_LITERAL) {
		if (route_literal(&s->route, &mx) == -1) {
			job_error(s->job, 0, 0, "4.4.3", "the route is not an address", "");
			session_free(s);
			return;
		}
		dns_done(&mx, s);
		return;
	}
	mode = s->route.kind == ROUTE_MX ? DNS_MODE_MX : DNS_MODE_HOST;
	s->dq = dns_lookup(s->route.host, mode, s->route.port, dns_done, s);
	if (s->dq == NULL) {
		log_warnx("%s domain=%s lookup=%s status=deferred reason=\"the lookup "
		    "could not start\"", s->job->qid, s->job->domain, s->route.host);
		job_error(s->job, 0, 0, "4.4.3", "DNS lookup could not start", "");
		session_free(s);
	}
}

void
session_start(struct dest *d, struct job *j)
{
	struct session *s;
	struct timeval tv = { 0, 0 };

	if ((s = calloc(1, sizeof(*s))) == NULL)
		goto fail;
	s->id = ++next_id;
	s->dest = d;
	s->job = j;
	s->route = j->route;
	s->state = S_RESOLVE;
	/* Started from the loop, never inside the pool's own bookkeeping. */
	if ((s->reply_ev = evtimer_new(env->base, reply_timeout_cb, s)) == NULL ||
	    (s->start_ev = evtimer_new(env->base, start_cb, s)) == NULL ||
	    evtimer_add(s->start_ev, &tv) == -1) {
		if (s->start_ev)
			event_free(s->start_ev);
		if (s->reply_ev)
			event_free(s->reply_ev);
		free(s);
		goto fail;
	}
	return;
fail:
	/* Unlikely (out of memory); the job is deferred at once. */
	log_warnx("%s cannot start a connection", j->qid);
	job_error(j, 0, 0, "4.3.0", "out of memory", "");
	job_settle(j);
	deliverd_report(j);
	job_free(j);
	pool_closed(d);
}

static void
connect_next(struct session *s)
{
	struct timeval tv = { env->conf->outbound_connect_timeout, 0 };
	const struct mx_host *h;
	const struct sockaddr *sa;

	for (;;) {
		if (s->host_i >= s->mx->nhosts) {
			/* Every host and address tried: the job's last error stands. */
			session_free(s);
			return;
		}
		h = &s->mx->hosts[s->host_i];
		if (s->addr_i >= h->naddrs) {
			s->host_i++;
			s->addr_i = 0;
			continue;
		}
		break;
	}
	sa = (const struct sockaddr *)&h->addrs[s->addr_i];
	/* The resolver checks names; cleaned all the same, they go into logs. */
	text_clean(s->name, sizeof(s->name), h->name);
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, s->addr, sizeof(s->addr));
		s->port = ntohs(s6->sin6_port);
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, s->addr, sizeof(s->addr));
		s->port = ntohs(s4->sin_port);
	} else {
		s->addr_i++;
		connect_next(s);
		return;
	}
	(void)snprintf(s->hostfield, sizeof(s->hostfield), "%s[%s]", s->name, s->addr);
	s->ext = 0;
	s->max_size = 0;
	s->pending = 0;
	smtp_reply_init(&s->reply);
	s->state = S_CONNECT;
	s->bev = bufferevent_socket_new(env->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		job_error(s->job, 0, 0, "4.3.0", "out of memory", "");
		session_free(s);
		return;
	}
	bufferevent_setcb(s->bev, read_cb, write_cb, event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, INPUT_MAX);
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(s->bev, sa, (int)h->addrlens[s->addr_i]) == -1) {
		deliverd_stats.failed++;
		(void)fail_over(s, 0, "4.4.1", strerror(errno));
		return;
	}
}

/* ---- TLS -------------------------------------------------------------------- */

static int
tls_begin(struct session *s)
{
	struct bufferevent *bev;
	int literal = s->route.kind == ROUTE_LITERAL;
	SSL *ssl;

	/* Plaintext behind the 220 would be read as TLS, or injected. */
	if (evbuffer_get_length(bufferevent_get_input(s->bev)) > 0)
		return fail_over(s, 0, "4.7.0", "data after the reply to STARTTLS");
	ssl = tls_client_new(literal ? s->addr : s->name, literal,
	    s->route.tls == TLS_POLICY_REQUIRE);
	if (ssl == NULL)
		return fail_over(s, 0, "4.7.5", "cannot set up TLS");
	bev = bufferevent_openssl_filter_new(env->base, s->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING, 0);
	if (bev == NULL) {
		SSL_free(ssl);
		return fail_over(s, 0, "4.7.5", "cannot set up TLS");
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	bufferevent_set_timeouts(s->bev, NULL, NULL);
	s->bev_plain = s->bev;
	s->bev = bev;
	s->ssl = ssl;
	s->state = S_TLS;
	bufferevent_setcb(bev, read_cb, write_cb, event_cb, s);
	bufferevent_setwatermark(bev, EV_READ, 0, INPUT_MAX);
	/* TLS records wait in the socket's buffer: bounded too */
	bufferevent_setwatermark(s->bev_plain, EV_READ, 0, INPUT_MAX * 2);
	set_timeouts(s, 1);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	return 0;
}

static void
send_ehlo(struct session *s)
{
	s->ext = 0;
	s->max_size = 0;
	if (s->route.helo) {
		sendf(s, "HELO %s", env->conf->hostname);
		s->state = S_HELO;
	} else {
		sendf(s, "EHLO %s", env->conf->hostname);
		s->state = S_EHLO;
	}
}

static void
tls_up(struct session *s)
{
	tls_client_info(s->ssl, s->tls_version, sizeof(s->tls_version), &s->verified);
	s->tls_on = 1;
	deliverd_stats.tls++;
	send_ehlo(s);	/* RFC 3207 4.2: forget what was said before */
}

/* ---- the greeting, EHLO, STARTTLS and AUTH ---------------------------------- */

/* One line of the EHLO reply after the first: an extension (RFC 5321 4.1.1.1). */
static void
ehlo_line(struct session *s, const char *p, size_t len)
{
	char kw[32], arg[SMTP_REPLY_LINE_MAX], *t, *save;
	size_t k = 0;

	while (k < len && p[k] != ' ' && p[k] != '=' && k + 1 < sizeof(kw)) {
		kw[k] = p[k];
		k++;
	}
	kw[k] = '\0';
	if (k < len && p[k] != ' ' && p[k] != '=')
		return;		/* a keyword too long for any we know */
	if (k < len)
		k++;
	if (len - k >= sizeof(arg))
		return;
	memcpy(arg, p + k, len - k);
	arg[len - k] = '\0';
	if (strcasecmp(kw, "PIPELINING") == 0)
		s->ext |= EXT_PIPELINING;
	else if (strcasecmp(kw, "8BITMIME") == 0)
		s->ext |= EXT_8BITMIME;
	else if (strcasecmp(kw, "SMTPUTF8") == 0)
		s->ext |= EXT_SMTPUTF8;
	else if (strcasecmp(kw, "DSN") == 0)
		s->ext |= EXT_DSN;
	else if (strcasecmp(kw, "STARTTLS") == 0)
		s->ext |= EXT_STARTTLS;
	else if (strcasecmp(kw, "CHUNKING") == 0)
		s->ext |= EXT_CHUNKING;
	else if (strcasecmp(kw, "BINARYMIME") == 0)
		s->ext |= EXT_BINARYMIME;
	else if (strcasecmp(kw, "SIZE") == 0) {
		s->ext |= EXT_SIZE;
		s->max_size = strtoull(arg, NULL, 10);	/* 0 or junk: no limit */
	} else if (strcasecmp(kw, "AUTH") == 0) {
		for (t = strtok_r(arg, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
			if (strcasecmp(t, "PLAIN") == 0)
				s->ext |= EXT_AUTH_PLAIN;
			else if (strcasecmp(t, "LOGIN") == 0)
				s->ext |= EXT_AUTH_LOGIN;
		}
	}
}

static void
b64(const void *in, size_t len, char *out, size_t outsz)
{
	if (outsz < (len + 2) / 3 * 4 + 1) {
		out[0] = '\0';
		return;
	}
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

static void
log_connected(struct session *s)
{
	log_info("%s relay=%s[%s]:%u tls=%s verified=%s%s%s", qid_of(s), s->name, s->addr,
	    (unsigned)s->port, s->tls_on ? s->tls_version : "no",
	    s->tls_on && s->verified ? "yes" : "no",
	    s->route.auth_user[0] && s->state == S_AUTH_DONE ? " auth=yes" : "",
	    s->plain_retry ? " tls-fallback=plaintext" : "");
}

/* Greeted (and TLS as policy wants): authenticate, then the first message. */
static int
after_hello(struct session *s)
{
	char buf[256 * 2 + 3], enc[AUTH_B64_MAX];
	size_t ul, pl;

	if (!s->tls_on && s->route.tls != TLS_POLICY_NO && (s->ext & EXT_STARTTLS) &&
	    !s->plain_retry) {
		sendf(s, "STARTTLS");
		s->state = S_STARTTLS;
		return 0;
	}
	if (!s->tls_on && s->route.tls == TLS_POLICY_REQUIRE)
		return fail_over(s, 0, "4.7.5", "TLS is required but the server does "
		    "not offer STARTTLS");
	if (s->route.auth_user[0] && s->state != S_AUTH_DONE) {
		if (!s->tls_on && !s->route.auth_plaintext)
			return fail_over(s, 0, "4.7.0", "credentials are not sent "
			    "without TLS");
		ul = strlen(s->route.auth_user);
		pl = strlen(s->route.auth_password);
		if (s->ext & EXT_AUTH_PLAIN) {
			/* RFC 4616: authzid (empty) NUL authcid NUL passwd */
			buf[0] = '\0';
			memcpy(buf + 1, s->route.auth_user, ul);
			buf[1 + ul] = '\0';
			memcpy(buf + 2 + ul, s->route.auth_password, pl);
			b64(buf, 2 + ul + pl, enc, sizeof(enc));
			sendf(s, "AUTH PLAIN %s", enc);
			explicit_bzero(buf, sizeof(buf));
			explicit_bzero(enc, sizeof(enc));
			s->state = S_AUTH_PLAIN;
			return 0;
		}
		if (s->ext & EXT_AUTH_LOGIN) {
			sendf(s, "AUTH LOGIN");
			s->state = S_AUTH_LOGIN_USER;
			return 0;
		}
		log_warnx("%s relay=%s[%s]:%u auth=unavailable reason=\"the server offers "
		    "neither PLAIN nor LOGIN\"", qid_of(s), s->name, s->addr,
		    (unsigned)s->port);
	}
	log_connected(s);
	return start_message(s);
}

static int
on_auth(struct session *s)
{
	char enc[AUTH_B64_MAX], text[DELIVER_TEXT_MAX];
	const char *v;

	if (s->state == S_AUTH_LOGIN_USER || s->state == S_AUTH_LOGIN_PASS) {
		if (s->reply.code == 334) {
			v = s->state == S_AUTH_LOGIN_USER ? s->route.auth_user :
			    s->route.auth_password;
			b64(v, strlen(v), enc, sizeof(enc));
			sendf(s, "%s", enc);
			explicit_bzero(enc, sizeof(enc));
			s->state = s->state == S_AUTH_LOGIN_USER ? S_AUTH_LOGIN_PASS :
			    S_AUTH_PLAIN;
			return 0;
		}
	} else if (SMTP_REPLY_CLASS(&s->reply) == 2) {
		s->state = S_AUTH_DONE;
		return after_hello(s);
	}
	reply_text(s, text, sizeof(text));
	/* 535 and other refusals: the mail waits for the credentials to be fixed. */
	return fail_over(s, s->reply.code / 100 == 4 ? (uint32_t)s->reply.code : 0,
	    "4.7.8", text);
}

/* ---- the transaction -------------------------------------------------------- */

static void
send_rcpt(struct session *s, size_t i)
{
	struct job *j = s->job;
	struct job_rcpt *r = &j->rcpts[i];
	char notify[64], *p;

	if ((s->ext & EXT_DSN) && (r->notify || r->orcpt)) {
		dsn_notify_format(r->notify, notify, sizeof(notify));
		for (p = notify; *p; p++)
			if (*p >= 'a' && *p <= 'z')
				*p -= 'a' - 'A';
		sendf(s, "RCPT TO:<%s>%s%s%s%s", r->addr, r->notify ? " NOTIFY=" : "",
		    r->notify ? notify : "", r->orcpt ? " ORCPT=" : "",
		    r->orcpt ? r->orcpt : "");
	} else
		sendf(s, "RCPT TO:<%s>", r->addr);
	s->rcpt_sent++;
}

static void
send_quit(struct session *s)
{
	struct timeval tv = { QUIT_WAIT, 0 };

	sendf(s, "QUIT");
	s->state = S_QUIT;
	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

/* Take a job on this connection: RSET first, which also proves it alive. */
static void
reuse(struct session *s, struct job *j)
{
	s->job = j;
	sendf(s, "RSET");
	s->state = S_RSET;
	set_timeouts(s, 1);
}

/*
 * The message is over on this connection: the destination's next job after
 * RSET; with none waiting, the connection stays open IDLE_KEEP seconds for
 * the next one (as a connection cache would), then QUIT.
 */
static int
message_done(struct session *s)
{
	struct job *next;
	uint32_t max = env->conf->max_messages_per_connection;
	struct timeval tv = { IDLE_KEEP, 0 };

	pool_job_done(s->job);
	s->job = NULL;
	s->messages++;
	if (s->no_reuse || (max != 0 && s->messages >= max)) {
		send_quit(s);
		return 0;
	}
	if ((next = pool_next(s->dest)) != NULL) {
		reuse(s, next);
		return 0;
	}
	s->state = S_IDLE;
	TAILQ_INSERT_TAIL(&idle_sessions, s, idle_entry);
	/* The read timeout is the idle timer; EOF still ends it at once. */
	bufferevent_set_timeouts(s->bev, &tv, NULL);
	return 0;
}

int
session_take_idle(struct dest *d, struct job *j)
{
	struct session *s;

	TAILQ_FOREACH(s, &idle_sessions, idle_entry)
		if (s->dest == d) {
			TAILQ_REMOVE(&idle_sessions, s, idle_entry);
			reuse(s, j);
			return 1;
		}
	return 0;
}

int
session_retire_idle(void)
{
	struct session *s;

	if ((s = TAILQ_FIRST(&idle_sessions)) == NULL)
		return 0;
	TAILQ_REMOVE(&idle_sessions, s, idle_entry);
	send_quit(s);
	return 1;
}

/* Settle every recipient of the job with a reply about the whole message. */
static int
message_failed(struct session *s, uint32_t code, const char *enhanced,
    const char *text)
{
	job_error(s->job, code / 100 == 5, code, enhanced, text, s->hostfield);
	return message_done(s);
}

static int
start_message(struct session *s)
{
	struct job *j = s->job;
	char size[32] = "", envid[DSN_ENVID_MAX + 8] = "";
	const char *body = "", *ret = "";
	size_t i;

	s->rcpt_sent = s->rcpt_replied = s->naccepted = 0;
	for (i = 0; i < j->nrcpts; i++)
		j->rcpts[i].accepted = 0;
	log_debug("%s relay=%s[%s]:%u message=%u", j->qid, s->name, s->addr,
	    (unsigned)s->port, s->messages + 1);
	if (j->smtputf8 && !(s->ext & EXT_SMTPUTF8))
		return message_failed(s, 553, "5.6.7", "the server does not support "
		    "SMTPUTF8 (RFC 6531)");
	if ((s->ext & EXT_SIZE) && s->max_size > 0 && j->size > s->max_size)
		return message_failed(s, 552, "5.3.4", "message too big for the server");
	if (s->ext & EXT_SIZE)
		(void)snprintf(size, sizeof(size), " SIZE=%llu", (unsigned long long)j->size);
	s->bdat = 0;
	if (j->body == ENV_BODY_BINARYMIME) {
		/* RFC 3030 3: only to a server that takes it, and only with BDAT */
		if ((s->ext & (EXT_BINARYMIME | EXT_CHUNKING)) !=
		    (EXT_BINARYMIME | EXT_CHUNKING))
			return message_failed(s, 554, "5.6.3", "the server does not "
			    "accept binary content (BINARYMIME, RFC 3030)");
		body = " BODY=BINARYMIME";
		s->bdat = 1;
	} else if (j->body == ENV_BODY_8BITMIME && (s->ext & EXT_8BITMIME))
		body = " BODY=8BITMIME";
	if (s->ext & EXT_DSN) {
		if (j->ret == DSN_RET_FULL)
			ret = " RET=FULL";
		else if (j->ret == DSN_RET_HDRS)
			ret = " RET=HDRS";
		if (j->envid[0])
			(void)snprintf(envid, sizeof(envid), " ENVID=%s", j->envid);
	}
	sendf(s, "MAIL FROM:<%s>%s%s%s%s%s", j->sender, size, body,
	    j->smtputf8 ? " SMTPUTF8" : "", ret, envid);
	s->state = S_MAIL;
	s->mail_answered = 0;
	if (s->ext & EXT_PIPELINING) {
		/* RFC 2920 3.1: MAIL, every RCPT and DATA in one group. */
		for (i = 0; i < j->nrcpts; i++)
			send_rcpt(s, i);
		if (!s->bdat)
			sendf(s, "DATA");
	}
	return 0;
}

/* BDAT of the whole content as one LAST chunk, once a recipient is accepted. */
static int
start_bdat(struct session *s)
{
	struct stat st;

	if (fstat(s->job->fd, &st) == -1 || st.st_size < 0) {
		job_error(s->job, 0, 0, "4.3.0", "cannot read the message", s->hostfield);
		session_free(s);
		return -1;
	}
	sendf(s, "BDAT %lld LAST", (long long)st.st_size);
	s->pending--;	/* the reply comes once the chunk is sent */
	reply_deadline(s);
	data_stream_init_raw(&s->ds, s->job->fd);
	s->state = S_BODY;
	set_timeouts(s, 0);
	bufferevent_setwatermark(s->bev, EV_WRITE, OUTPUT_LOW / 2, 0);
	return body_fill(s);
}

static int
on_mail(struct session *s)
{
	char text[DELIVER_TEXT_MAX];

	reply_text(s, text, sizeof(text));
	if (SMTP_REPLY_CLASS(&s->reply) == 2) {
		s->mail_answered = 1;
		s->state = S_RCPT;
		if (!(s->ext & EXT_PIPELINING))
			send_rcpt(s, 0);
		return 0;
	}
	/* RCPT and DATA replies may follow: no more use of this connection. */
	s->no_reuse = 1;
	if (SMTP_REPLY_CLASS(&s->reply) == 4 && s->messages == 0)
		return fail_over(s, (uint32_t)s->reply.code, reply_enhanced(s), text);
	s->mail_answered = 1;
	log_info("%s relay=%s[%s]:%u status=mail-refused reply=\"%s\"", qid_of(s),
	    s->name, s->addr, (unsigned)s->port, reply_log(s));
	return message_failed(s, (uint32_t)s->reply.code, reply_enhanced(s), text);
}

static int
on_rcpt(struct session *s)
{
	struct job *j = s->job;
	struct job_rcpt *r = &j->rcpts[s->rcpt_replied];
	char text[DELIVER_TEXT_MAX];

	reply_text(s, text, sizeof(text));
	if (SMTP_REPLY_CLASS(&s->reply) == 2) {
		r->accepted = 1;
		s->naccepted++;
	} else
		job_rcpt_result(j, r, (uint32_t)s->reply.code, reply_enhanced(s), text,
		    s->hostfield);
	s->rcpt_replied++;
	if (s->rcpt_replied < j->nrcpts) {
		if (!(s->ext & EXT_PIPELINING))
			send_rcpt(s, s->rcpt_replied);
		return 0;
	}
	s->state = S_DATA;
	if (s->bdat) {
		if (s->naccepted == 0)
			return message_done(s);
		return start_bdat(s);
	}
	if (!(s->ext & EXT_PIPELINING)) {
		if (s->naccepted == 0)
			return message_done(s);
		sendf(s, "DATA");
	}
	return 0;
}

static void
settle_accepted(struct session *s, uint32_t code, const char *enhanced,
    const char *text)
{
	size_t i;

	for (i = 0; i < s->job->nrcpts; i++)
		if (s->job->rcpts[i].accepted && !s->job->rcpts[i].done)
			job_rcpt_result(s->job, &s->job->rcpts[i], code, enhanced, text,
			    s->hostfield);
}

static int
on_data(struct session *s)
{
	char text[DELIVER_TEXT_MAX];

	if (s->reply.code == 354) {
		if (s->naccepted == 0) {
			/* RFC 2920 3.1: pipelined DATA with no recipient: end it empty. */
			sendf(s, ".");
			s->state = S_DOT_IGNORE;
			return 0;
		}
		data_stream_init(&s->ds, s->job->fd, env->conf);
		s->state = S_BODY;
		set_timeouts(s, 0);
		bufferevent_setwatermark(s->bev, EV_WRITE, OUTPUT_LOW / 2, 0);
		return body_fill(s);
	}
	reply_text(s, text, sizeof(text));
	if (s->reply.code / 100 == 3)	/* a 3xx other than 354: not SMTP */
		return conn_lost(s, "unexpected reply to DATA");
	settle_accepted(s, (uint32_t)s->reply.code, reply_enhanced(s), text);
	return message_done(s);
}

static int
on_dot(struct session *s)
{
	char text[DELIVER_TEXT_MAX];

	reply_text(s, text, sizeof(text));
	settle_accepted(s, (uint32_t)s->reply.code, reply_enhanced(s), text);
	if (SMTP_REPLY_CLASS(&s->reply) == 2) {
		deliverd_stats.messages++;
		deliverd_stats.bytes += s->job->size;
	}
	log_info("%s relay=%s[%s]:%u status=%s accepted=%zu reply=\"%s\"", s->job->qid,
	    s->name, s->addr, (unsigned)s->port, SMTP_REPLY_CLASS(&s->reply) == 2 ?
	    "sent" : "refused", s->naccepted, reply_log(s));
	return message_done(s);
}

/* ---- dispatch of replies ---------------------------------------------------- */

/*
 * outbound-timeout bounds each reply as a whole, from the moment it is
 * awaited: the idle timeout of the bufferevent alone would let a server
 * that sends a byte now and then hold the connection for ever.
 */
static void
reply_deadline(struct session *s)
{
	struct timeval tv = { env->conf->outbound_timeout, 0 };

	if (s->pending == 0)
		evtimer_del(s->reply_ev);
	else if (!evtimer_pending(s->reply_ev, NULL))
		evtimer_add(s->reply_ev, &tv);
}

static void
reply_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)ev;
	if (s->state == S_QUIT) {
		session_free(s);
		return;
	}
	(void)conn_lost(s, "timeout waiting for the server");
}

/* A whole reply arrived; -1 when the session is gone. */
static int
on_reply(struct session *s)
{
	char text[DELIVER_TEXT_MAX];
	int cls = SMTP_REPLY_CLASS(&s->reply);

	reply_text(s, text, sizeof(text));
	log_debug("%s relay=%s[%s]:%u state=%d reply=\"%s\"", qid_of(s), s->name,
	    s->addr, (unsigned)s->port, (int)s->state, reply_log(s));
	switch (s->state) {
	case S_GREETING:
		if (s->reply.code != 220)
			return fail_over(s, (uint32_t)s->reply.code, reply_enhanced(s), text);
		set_timeouts(s, 1);
		send_ehlo(s);
		return 0;
	case S_EHLO:
		if (cls == 2)
			return after_hello(s);
		if (cls == 5) {
			/* RFC 5321 4.1.4: an old server; HELO, no extensions */
			s->ext = 0;
			sendf(s, "HELO %s", env->conf->hostname);
			s->state = S_HELO;
			return 0;
		}
		return fail_over(s, (uint32_t)s->reply.code, reply_enhanced(s), text);
	case S_HELO:
		if (cls == 2)
			return after_hello(s);
		return fail_over(s, (uint32_t)s->reply.code, reply_enhanced(s), text);
	case S_STARTTLS:
		if (s->reply.code == 220)
			return tls_begin(s);
		if (s->route.tls == TLS_POLICY_REQUIRE)
			return fail_over(s, 0, "4.7.5", text);
		s->plain_retry = 1;	/* refused: go on without */
		return after_hello(s);
	case S_AUTH_PLAIN:
	case S_AUTH_LOGIN_USER:
	case S_AUTH_LOGIN_PASS:
		return on_auth(s);
	case S_MAIL:
		return on_mail(s);
	case S_RCPT:
		return on_rcpt(s);
	case S_DATA:
		return on_data(s);
	case S_DOT:
		return on_dot(s);
	case S_DOT_IGNORE:
		return message_done(s);
	case S_RSET:
		if (cls == 2) {
			log_info("%s relay=%s[%s]:%u reused=yes message=%u", qid_of(s),
			    s->name, s->addr, (unsigned)s->port, s->messages + 1);
			return start_message(s);
		}
		/* The waiting job gets a fresh connection. */
		pool_requeue(s->dest, s->job);
		s->job = NULL;
		session_free(s);
		return -1;
	case S_QUIT:
		session_free(s);
		return -1;
	default:
		/* A reply nobody asked for (S_BODY, S_TLS, S_CONNECT). */
		return conn_lost(s, "unexpected reply from the server");
	}
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char line[SMTP_REPLY_LINE_MAX];
	struct evbuffer_ptr eol;
	enum smtp_reply_status st;
	size_t eollen, len;
	/*
	 * What is buffered now came before any command this call sends: it
	 * may answer only the commands already sent.
	 */
	uint32_t owed = s->pending;

	for (;;) {
		eol = evbuffer_search_eol(in, NULL, &eollen, EVBUFFER_EOL_LF);
		if (eol.pos == -1) {
			if (evbuffer_get_length(in) >= SMTP_REPLY_LINE_MAX)
				(void)conn_lost(s, "reply line too long");
			return;
		}
		len = (size_t)eol.pos;
		if (len + eollen > SMTP_REPLY_LINE_MAX) {
			(void)conn_lost(s, "reply line too long");
			return;
		}
		evbuffer_remove(in, line, len + eollen);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		st = smtp_reply_line(&s->reply, line, len);
		if (st == SMTP_REPLY_BAD) {
			(void)conn_lost(s, "malformed reply");
			return;
		}
		if (s->state == S_EHLO && s->reply.code == 250 && s->reply.nlines > 1)
			ehlo_line(s, s->reply.line, s->reply.linelen);
		if (st == SMTP_REPLY_MORE)
			continue;
		if (owed == 0 || s->pending == 0) {
			(void)conn_lost(s, "a reply nobody asked for");
			return;
		}
		owed--;
		s->pending--;
		/* The next reply has a deadline of its own, from now. */
		evtimer_del(s->reply_ev);
		if (on_reply(s) == -1)
			return;
		reply_deadline(s);
		smtp_reply_init(&s->reply);
		/* tls_begin swapped the bufferevent; the socket's input is empty */
		if (bev != s->bev)
			return;
	}
}

/*
 * Put more of the body into the output buffer.  -1 when the message could
 * not be read: the session is freed then, and the caller must not touch it.
 */
static int
body_fill(struct session *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	int r;

	if (s->state != S_BODY || evbuffer_get_length(out) >= OUTPUT_LOW)
		return 0;
	r = data_stream_fill(&s->ds, env->conf, out, OUTPUT_LOW);
	if (r == -1) {
		log_warn("%s reading the message", s->job->qid);
		/* Not the server's fault: defer, and do not send a cut message. */
		job_error(s->job, 0, 0, "4.3.0", "cannot read the message", s->hostfield);
		session_free(s);
		return -1;
	}
	if (r == 1) {
		s->pending++;	/* the final "." */
		reply_deadline(s);
		s->state = S_DOT;
		set_timeouts(s, 1);
		bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
	}
	return 0;
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	(void)body_fill(arg);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;
	char why[256];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		if (s->state == S_CONNECT) {
			s->connected = 1;
			deliverd_stats.current++;
			deliverd_stats.connections++;
			s->state = S_GREETING;
			s->pending = 1;
			reply_deadline(s);
			set_timeouts(s, 1);
		} else if (s->state == S_TLS)
			tls_up(s);
		return;
	}
	if (s->state == S_TLS) {
		tls_client_error(s->bev, what, why, sizeof(why));
		if (s->route.tls == TLS_POLICY_OPPORTUNISTIC && !s->plain_retry &&
		    s->messages == 0) {
			/* RFC 7435: this server's TLS is broken; again, in plaintext */
			log_info("%s relay=%s[%s]:%u status=tls-failed reason=\"%s\" "
			    "retry=plaintext", qid_of(s), s->name, s->addr,
			    (unsigned)s->port, why);
			close_conn(s);
			s->plain_retry = 1;
			connect_next(s);
			return;
		}
		(void)fail_over(s, 0, "4.7.5", why);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		(void)strlcpy(why, s->state == S_CONNECT ? "connection timed out" :
		    "timeout waiting for the server", sizeof(why));
	else if (what & BEV_EVENT_EOF)
		(void)strlcpy(why, "connection closed by the server", sizeof(why));
	else
		(void)strlcpy(why, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()),
		    sizeof(why));
	if (s->state == S_QUIT) {
		session_free(s);
		return;
	}
	if (s->state == S_IDLE) {
		if (what & BEV_EVENT_TIMEOUT) {
			TAILQ_REMOVE(&idle_sessions, s, idle_entry);
			/* A timeout disabled reading: the reply to QUIT needs it. */
			bufferevent_enable(s->bev, EV_READ);
			send_quit(s);
		} else
			session_free(s);
		return;
	}
	(void)conn_lost(s, why);
}
