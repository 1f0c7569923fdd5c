/*
 * smtpd_session.c - one SMTP session (smtpd, unprivileged, chrooted).
 *
 * Trust boundary: everything the client sends.  Command lines are framed
 * by smtp_line_next() (at most 512 octets, RFC 5321 4.5.3.1.4; longer lines
 * get 500 and are discarded without ending the session), parsed by
 * smtp_parse_command(), and dispatched from a table of verbs with the states
 * each is allowed in (4.1.4 sequencing, 503 otherwise).  Message data goes
 * through the smtp_data state machine, whose only end of data is
 * <CRLF>.<CRLF>.  250 after DATA is said only when queued has committed the
 * message.  The session stops reading while a reply it owes waits on queued
 * or while the client does not read its replies, so no buffer grows without
 * bound.
 */
#include <sys/types.h>
#include <sys/socket.h>
#ifndef __unused
#define __unused __attribute__((unused))
#endif
#include <sys/tree.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "smtpd.h"
#include "util.h"

#define OUTPUT_HIGH	(64 * 1024)	/* stop reading while this much output is unsent */
#define INPUT_HIGH	(256 * 1024)	/* stop reading from the socket above this */
#define MSGBUF_FLUSH	(64 * 1024)	/* write message data to the file in chunks */
#define DENIED_MAX_COMMANDS	5	/* heard after a 554 greeting before closing */
#define DENIED_TIMEOUT		10	/* seconds a refused client may linger */

struct session_node {
	RB_ENTRY(session_node) entry;
	struct session	*s;
};

static int
node_cmp(struct session_node *a, struct session_node *b)
{
	return a->s->id < b->s->id ? -1 : a->s->id > b->s->id;
}

RB_HEAD(session_tree, session_node);
RB_GENERATE_STATIC(session_tree, session_node, entry, node_cmp)

static struct session_tree sessions = RB_INITIALIZER(&sessions);
static uint32_t next_id = 1;

static void session_process(struct session *);
static void session_free(struct session *);

/* ---- replies ---------------------------------------------------------------- */

static void __attribute__((format(printf, 2, 3)))
reply(struct session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

/* Say a last reply and close once it is sent. */
static void
session_close_after(struct session *s)
{
	s->state = S_CLOSING;
	bufferevent_disable(s->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		session_free(s);
}

/* ---- the transaction ---------------------------------------------------------- */

static void
transaction_reset(struct session *s)
{
	size_t i;

	for (i = 0; i < s->nrcpts; i++)
		free(s->rcpts[i]);
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpts = 0;
	s->sender[0] = '\0';
	if (s->msgfd != -1) {
		close(s->msgfd);
		s->msgfd = -1;
	}
	if (s->qid[0] && s->waiting == 0 && s->state == S_DATA)
		queue_abort(s->qid);
	s->qid[0] = '\0';
	if (s->msgbuf)
		evbuffer_drain(s->msgbuf, evbuffer_get_length(s->msgbuf));
	s->write_errno = 0;
	if (s->state != S_CONNECTED && s->state != S_CLOSING)
		s->state = S_HELO;
}

/* ---- command handlers ----------------------------------------------------------- */

static void
cmd_helo(struct session *s, struct smtp_cmd *c)
{
	transaction_reset(s);
	strlcpy(s->helo, c->arg, sizeof(s->helo));
	s->esmtp = c->verb == SMTP_CMD_EHLO;
	s->state = S_HELO;
	if (!s->esmtp) {
		reply(s, "250 %s Hello %s", env->conf->hostname, s->literal);
		return;
	}
	reply(s, "250-%s Hello %s", env->conf->hostname, s->literal);
	reply(s, "250-PIPELINING");
	if (env->conf->max_message_size)
		reply(s, "250-SIZE %llu", (unsigned long long)env->conf->max_message_size);
	else
		reply(s, "250-SIZE");
	reply(s, "250-8BITMIME");
	reply(s, "250 ENHANCEDSTATUSCODES");
}

static void
cmd_mail(struct session *s, struct smtp_cmd *c)
{
	const char *v;
	unsigned long long size;
	char *end;
	size_t i;

	for (i = 0; i < c->nparams; i++) {
		v = c->params[i].value;
		if (strcmp(c->params[i].key, "SIZE") == 0) {
			errno = 0;
			size = strtoull(v, &end, 10);
			if (*v == '\0' || *end != '\0' || errno) {
				reply(s, "501 5.5.4 Bad SIZE parameter");
				return;
			}
			if (env->conf->max_message_size && size > env->conf->max_message_size) {
				reply(s, "552 5.3.4 Message size exceeds fixed maximum message size");
				return;
			}
		} else if (strcmp(c->params[i].key, "BODY") == 0) {
			if (strcasecmp(v, "7BIT") != 0 && strcasecmp(v, "8BITMIME") != 0) {
				reply(s, "501 5.5.4 Unsupported BODY parameter");
				return;
			}
		} else {
			reply(s, "555 5.5.4 Unsupported MAIL parameter %s", c->params[i].key);
			return;
		}
	}
	strlcpy(s->sender, c->path, sizeof(s->sender));
	s->state = S_MAIL;
	reply(s, "250 2.1.0 Ok");
}

static void
cmd_rcpt(struct session *s, struct smtp_cmd *c)
{
	char **nr, esc[SMTP_PATH_MAX * 4 + 1], why[SMTP_DOMAIN_MAX + 64];
	enum policy_rcpt pr;

	if (c->nparams > 0) {
		reply(s, "555 5.5.4 Unsupported RCPT parameter %s", c->params[0].key);
		return;
	}
	pr = policy_rcpt(s, c->path, why, sizeof(why));
	if (pr == POLICY_RCPT_DENIED) {
		log_info("session=%08x client=%s status=refused reason=relay %s to=<%s>",
		    s->id, s->addr, why,
		    log_escape(esc, sizeof(esc), c->path, strlen(c->path)));
		reply(s, "550 5.7.1 Relaying denied: <%s> is not a local domain here",
		    c->path);
		return;
	}
	if (pr == POLICY_RCPT_RELAY)
		log_info("session=%08x client=%s status=relay %s to=<%s>", s->id,
		    s->addr, why, log_escape(esc, sizeof(esc), c->path, strlen(c->path)));
	if (s->nrcpts >= env->conf->max_recipients) {
		reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	/* RFC 5321 4.5.1: bare "postmaster" is the default domain's postmaster. */
	if (smtp_is_postmaster(c->path) &&
	    (size_t)snprintf(c->path, sizeof(c->path), "postmaster@%s",
	    env->conf->default_domain) >= sizeof(c->path)) {
		reply(s, "451 4.3.0 Temporary failure: postmaster address too long");
		return;
	}
	nr = reallocarray(s->rcpts, s->nrcpts + 1, sizeof(*nr));
	if (nr == NULL || (nr[s->nrcpts] = strdup(c->path)) == NULL) {
		if (nr)
			s->rcpts = nr;
		reply(s, "451 4.3.0 Temporary failure: out of memory");
		return;
	}
	s->rcpts = nr;
	s->nrcpts++;
	s->state = S_RCPT;
	reply(s, "250 2.1.5 Ok");
}

static void
cmd_data(struct session *s, struct smtp_cmd *c)
{
	(void)c;
	if (queue_open(s) == -1) {
		reply(s, "451 4.3.0 Queue manager unavailable, try again later");
		return;
	}
	s->waiting = 1;
	s->queue_gen = queue_link_gen();
}

static void
cmd_rset(struct session *s, struct smtp_cmd *c)
{
	(void)c;
	transaction_reset(s);
	reply(s, "250 2.0.0 Ok");
}

static void
cmd_noop(struct session *s, struct smtp_cmd *c)
{
	(void)c;
	reply(s, "250 2.0.0 Ok");
}

static void
cmd_quit(struct session *s, struct smtp_cmd *c)
{
	(void)c;
	reply(s, "221 2.0.0 %s Bye", env->conf->hostname);
	session_close_after(s);
}

static void
cmd_vrfy(struct session *s, struct smtp_cmd *c)
{
	(void)c;
	reply(s, "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery");
}

static void
cmd_help(struct session *s, struct smtp_cmd *c)
{
	(void)c;
	reply(s, "214-2.0.0 Commands supported:");
	reply(s, "214-2.0.0   HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
	reply(s, "214 2.0.0 See RFC 5321");
}

static void
cmd_not_implemented(struct session *s, struct smtp_cmd *c)
{
	(void)c;
	reply(s, "502 5.5.1 Command not implemented");
}

#define ST(x)		(1u << (x))
#define ANY_STATE	(ST(S_CONNECTED) | ST(S_HELO) | ST(S_MAIL) | ST(S_RCPT))

/* RFC 5321 4.1.4: which command is allowed in which state. */
static const struct {
	enum smtp_verb	 verb;
	unsigned	 states;
	const char	*seq_error;	/* reply text when out of sequence */
	void		(*fn)(struct session *, struct smtp_cmd *);
} commands[] = {
	{ SMTP_CMD_HELO, ANY_STATE, NULL, cmd_helo },
	{ SMTP_CMD_EHLO, ANY_STATE, NULL, cmd_helo },
	{ SMTP_CMD_MAIL, ST(S_HELO), "503 5.5.1 Send HELO/EHLO first, one MAIL per transaction", cmd_mail },
	{ SMTP_CMD_RCPT, ST(S_MAIL) | ST(S_RCPT), "503 5.5.1 Need MAIL before RCPT", cmd_rcpt },
	{ SMTP_CMD_DATA, ST(S_RCPT), "503 5.5.1 Need RCPT before DATA", cmd_data },
	{ SMTP_CMD_RSET, ANY_STATE, NULL, cmd_rset },
	{ SMTP_CMD_NOOP, ANY_STATE, NULL, cmd_noop },
	{ SMTP_CMD_QUIT, ANY_STATE, NULL, cmd_quit },
	{ SMTP_CMD_VRFY, ANY_STATE, NULL, cmd_vrfy },
	{ SMTP_CMD_HELP, ANY_STATE, NULL, cmd_help },
	{ SMTP_CMD_EXPN, ANY_STATE, NULL, cmd_not_implemented },
	{ SMTP_CMD_STARTTLS, ANY_STATE, NULL, cmd_not_implemented },
	{ SMTP_CMD_AUTH, ANY_STATE, NULL, cmd_not_implemented },
	{ SMTP_CMD_BDAT, ANY_STATE, NULL, cmd_not_implemented },
	{ SMTP_CMD_ETRN, ANY_STATE, NULL, cmd_not_implemented },
};

/*
 * RFC 5321 3.1: after a 554 greeting the server waits for QUIT and answers
 * anything else 503; a client that goes on is cut off after a few commands
 * (or DENIED_TIMEOUT seconds).
 */
static void
session_denied_command(struct session *s, const char *line, size_t len)
{
	struct smtp_cmd cmd;
	const char *why;

	if (smtp_parse_command(line, len, 0, &cmd, &why) == SMTP_PARSE_OK &&
	    cmd.verb == SMTP_CMD_QUIT) {
		cmd_quit(s, &cmd);
		return;
	}
	if (++s->denied_cmds >= DENIED_MAX_COMMANDS) {
		reply(s, "421 4.7.1 %s Access denied, closing connection",
		    env->conf->hostname);
		session_close_after(s);
		return;
	}
	reply(s, "503 5.7.1 Access denied: only QUIT is accepted");
}

static void
session_command(struct session *s, const char *line, size_t len)
{
	struct smtp_cmd cmd;
	const char *why = "";
	size_t i;

	if (s->state == S_DENIED) {
		session_denied_command(s, line, len);
		return;
	}
	switch (smtp_parse_command(line, len, 0, &cmd, &why)) {
	case SMTP_PARSE_OK:
		break;
	case SMTP_PARSE_UNKNOWN:
		reply(s, "500 5.5.1 Command unrecognized");
		return;
	case SMTP_PARSE_TOO_LONG:
		reply(s, "500 5.5.2 Line too long");
		return;
	case SMTP_PARSE_BAD_ADDRESS:
		reply(s, "553 5.1.3 Bad address syntax: %s", why);
		return;
	case SMTP_PARSE_SYNTAX:
	default:
		reply(s, "501 5.5.2 Syntax error: %s", why);
		return;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (commands[i].verb != cmd.verb)
			continue;
		if ((commands[i].states & ST(s->state)) == 0) {
			reply(s, "%s", commands[i].seq_error ? commands[i].seq_error :
			    "503 5.5.1 Bad sequence of commands");
			return;
		}
		commands[i].fn(s, &cmd);
		return;
	}
	reply(s, "502 5.5.1 Command not implemented");
}

/* ---- message data ------------------------------------------------------------------ */

static void
msgbuf_flush(struct session *s, int all)
{
	while (s->write_errno == 0 && evbuffer_get_length(s->msgbuf) > 0 &&
	    (all || evbuffer_get_length(s->msgbuf) >= MSGBUF_FLUSH)) {
		if (evbuffer_write(s->msgbuf, s->msgfd) == -1) {
			if (errno == EINTR)
				continue;
			s->write_errno = errno;
		}
	}
	if (s->write_errno)
		evbuffer_drain(s->msgbuf, evbuffer_get_length(s->msgbuf));
}

static void
write_received(struct session *s)
{
	char date[64], helo[SMTP_DOMAIN_MAX * 4 + 1];
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	/* The HELO argument was checked as a domain or literal; escape anyway. */
	log_escape(helo, sizeof(helo), s->helo, strlen(s->helo));
	/* With reverse-dns: the forward-confirmed name, or "unknown". */
	if (env->conf->reverse_dns && s->dns_status != DNS_NONE)
		evbuffer_add_printf(s->msgbuf, "Received: from %s (%s %s)", helo,
		    s->rdns[0] ? s->rdns : "unknown", s->literal);
	else
		evbuffer_add_printf(s->msgbuf, "Received: from %s (%s)", helo, s->literal);
	evbuffer_add_printf(s->msgbuf, "\r\n\tby %s (Mailroot) with %s id %s",
	    env->conf->hostname, s->esmtp ? "ESMTP" : "SMTP", s->qid);
	if (s->nrcpts == 1)
		evbuffer_add_printf(s->msgbuf, "\r\n\tfor <%s>", s->rcpts[0]);
	evbuffer_add_printf(s->msgbuf, "; %s\r\n", date);
}

void
session_opened(struct session *s, int fd, const char *qid)
{
	s->waiting = 0;
	if (s->state != S_RCPT) {
		close(fd);
		queue_abort(qid);
		return;
	}
	s->msgfd = fd;
	strlcpy(s->qid, qid, sizeof(s->qid));
	smtp_data_init(&s->data, env->conf->max_message_size);
	write_received(s);
	s->state = S_DATA;
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
	session_process(s);
}

/* The end-of-data line arrived: refuse, or ask queued to commit. */
static void
data_done(struct session *s)
{
	const char *err = NULL;

	msgbuf_flush(s, 1);
	if (s->data.flags & SMTP_DATA_TOO_BIG)
		err = "552 5.3.4 Message size exceeds fixed maximum message size";
	else if (s->data.flags & SMTP_DATA_LONG_LINE)
		err = "550 5.6.0 Message has a line longer than 998 octets (RFC 5322 2.1.1)";
	else if (s->write_errno == ENOSPC || s->write_errno == EDQUOT)
		err = "452 4.3.1 Insufficient system storage";
	else if (s->write_errno)
		err = "451 4.3.0 Local error writing the message";
	if (err == NULL) {
		close(s->msgfd);
		s->msgfd = -1;
		if (queue_commit(s) == 0) {
			s->waiting = 1;
			return;
		}
		err = "451 4.3.0 Queue manager unavailable, try again later";
	}
	log_info("session=%08x client=%s qid=%s status=refused reply=\"%.3s\"",
	    s->id, s->addr, s->qid, err);
	reply(s, "%s", err);
	queue_abort(s->qid);
	s->qid[0] = '\0';
	transaction_reset(s);
}

void
session_committed(struct session *s)
{
	s->waiting = 0;
	s->messages++;
	reply(s, "250 2.0.0 Ok: queued as %s", s->qid);
	s->qid[0] = '\0';
	transaction_reset(s);
	session_process(s);
}

void
session_queue_failed(struct session *s, int temporary, const char *reason)
{
	char esc[256];

	s->waiting = 0;
	log_escape(esc, sizeof(esc), reason, strlen(reason));
	if (strcmp(reason, "insufficient system storage") == 0)
		reply(s, "452 4.3.1 Insufficient system storage");
	else if (temporary)
		reply(s, "451 4.3.0 Temporary queue failure: %s", esc);
	else
		reply(s, "554 5.3.0 Message refused by the queue: %s", esc);
	s->qid[0] = '\0';
	transaction_reset(s);
	session_process(s);
}

/* Feed buffered input to the DATA state machine; 1 when it saw the end. */
static int
data_input(struct session *s, struct evbuffer *in)
{
	struct evbuffer_iovec v[16];
	size_t used = 0, n;
	int i, nv;

	nv = evbuffer_peek(in, -1, NULL, v, 16);
	for (i = 0; i < nv && i < 16 && !s->data.done; i++) {
		n = smtp_data_feed(&s->data, v[i].iov_base, v[i].iov_len, s->msgbuf);
		used += n;
	}
	evbuffer_drain(in, used);
	s->bytes_in += used;
	msgbuf_flush(s, 0);
	return s->data.done;
}

/* ---- the input loop ----------------------------------------------------------------- */

static void
session_process(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer *out = bufferevent_get_output(s->bev);
	struct evbuffer_ptr pos;
	unsigned char *p;
	size_t avail, linelen, consumed;
	int r;

	while (s->state != S_CLOSING && !s->waiting &&
	    evbuffer_get_length(out) < OUTPUT_HIGH &&
	    (avail = evbuffer_get_length(in)) > 0) {
		if (s->state == S_DATA) {
			if (data_input(s, in))
				data_done(s);
			continue;
		}
		if (s->discarding) {
			pos = evbuffer_search(in, "\n", 1, NULL);
			if (pos.pos == -1) {
				evbuffer_drain(in, avail);
				break;
			}
			evbuffer_drain(in, (size_t)pos.pos + 1);
			s->discarding = 0;
			continue;
		}
		if (avail > SMTP_LINE_MAX + 1)
			avail = SMTP_LINE_MAX + 1;
		if ((p = evbuffer_pullup(in, (ssize_t)avail)) == NULL)
			break;
		r = smtp_line_next((const char *)p, avail, &linelen, &consumed);
		if (r == 0)
			break;
		if (r == -1) {
			reply(s, "500 5.5.2 Line too long (at most %d octets)", SMTP_LINE_MAX);
			s->discarding = 1;
			continue;
		}
		s->bytes_in += consumed;
		session_command(s, (const char *)p, linelen);
		/* The handler may have closed the session. */
		if (s->state == S_CLOSING)
			return;
		evbuffer_drain(in, consumed);
	}
}

/* ---- libevent callbacks ------------------------------------------------------------- */

static void
read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	session_process(arg);
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	if (s->state == S_CLOSING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			session_free(s);
		return;
	}
	/* Output drained below the mark: go on with pipelined input. */
	session_process(s);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;

	if (what & BEV_EVENT_TIMEOUT) {
		if (s->state == S_CLOSING) {
			session_free(s);
			return;
		}
		log_info("session=%08x client=%s status=timeout", s->id, s->addr);
		reply(s, "421 4.4.2 %s Idle timeout, closing connection",
		    env->conf->hostname);
		session_close_after(s);
		bufferevent_enable(bev, EV_WRITE);
		return;
	}
	/* EOF or error: the client is gone. */
	session_free(s);
}

static void
format_literal(struct session *s, const struct sockaddr *sa)
{
	char buf[INET6_ADDRSTRLEN];
	const void *a;

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], buf, sizeof(buf));
			strlcpy(s->addr, buf, sizeof(s->addr));
			snprintf(s->literal, sizeof(s->literal), "[%s]", buf);
			return;
		}
		a = &sin6->sin6_addr;
		inet_ntop(AF_INET6, a, buf, sizeof(buf));
		strlcpy(s->addr, buf, sizeof(s->addr));
		snprintf(s->literal, sizeof(s->literal), "[IPv6:%s]", buf);
	} else if (sa->sa_family == AF_INET) {
		a = &((const struct sockaddr_in *)sa)->sin_addr;
		inet_ntop(AF_INET, a, buf, sizeof(buf));
		strlcpy(s->addr, buf, sizeof(s->addr));
		snprintf(s->literal, sizeof(s->literal), "[%s]", buf);
	} else {
		strlcpy(s->addr, "local", sizeof(s->addr));
		strlcpy(s->literal, "[local]", sizeof(s->literal));
	}
}

/* Greet the client, or refuse it with 554 (access rules). */
static void
session_greet(struct session *s)
{
	struct timeval tv = { DENIED_TIMEOUT, 0 };
	char why[64];

	if (policy_access(s, why, sizeof(why)) == ACL_DENY) {
		log_info("session=%08x client=%s name=%s status=refused reason=access "
		    "rule=%s", s->id, s->addr, s->rdns[0] ? s->rdns : "unknown", why);
		s->state = S_DENIED;
		bufferevent_set_timeouts(s->bev, &tv, &tv);
		reply(s, "554 5.7.1 <%s> access denied", s->addr);
	} else
		reply(s, "220 %s ESMTP Mailroot", env->conf->hostname);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

void
session_accept(int fd, const struct sockaddr *sa, socklen_t salen)
{
	static const char paused_msg[] = "421 4.3.2 Service paused, try again later\r\n";
	struct timeval tv = { env->conf->idle_timeout, 0 };
	char why[64];
	struct session_node *node;
	struct session *s;

	if (smtpd_paused()) {
		(void)!write(fd, paused_msg, sizeof(paused_msg) - 1);
		close(fd);
		return;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL || (node = calloc(1, sizeof(*node))) == NULL ||
	    (s->msgbuf = evbuffer_new()) == NULL) {
		log_warnx("out of memory for a session");
		if (s)
			evbuffer_free(s->msgbuf);
		free(s);
		close(fd);
		return;
	}
	s->id = next_id++;
	if (next_id == 0)
		next_id = 1;
	s->msgfd = -1;
	s->state = S_CONNECTED;
	memcpy(&s->ss, sa, salen < sizeof(s->ss) ? salen : sizeof(s->ss));
	format_literal(s, sa);
	s->bev = bufferevent_socket_new(env->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		evbuffer_free(s->msgbuf);
		free(node);
		free(s);
		close(fd);
		return;
	}
	node->s = s;
	RB_INSERT(session_tree, &sessions, node);
	bufferevent_setcb(s->bev, read_cb, write_cb, event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, INPUT_HIGH);
	bufferevent_setwatermark(s->bev, EV_WRITE, OUTPUT_HIGH / 4, 0);
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	log_info("session=%08x client=%s status=connect", s->id, s->addr);
	/*
	 * Name rules or reverse-dns: the greeting waits for the lookup (at most
	 * a few seconds); the client's input stays unread until then.
	 */
	if (policy_access(s, why, sizeof(why)) == 0 || env->conf->reverse_dns) {
		if (dns_lookup_client(s) == 0) {
			bufferevent_enable(s->bev, EV_WRITE);
			return;
		}
		s->dns_status = DNS_FAILED;	/* no lookup possible: name unknown */
	}
	session_greet(s);
}

void
session_dns_done(struct session *s)
{
	session_greet(s);
}

/*
 * The link to queued is gone: a session waiting for its answer would wait
 * forever.  Each hears 451 (the new queued knows nothing of its message).
 */
void
session_queue_lost(void)
{
	struct session_node *n, *next;

	for (n = RB_MIN(session_tree, &sessions); n != NULL; n = next) {
		next = RB_NEXT(session_tree, &sessions, n);
		if (n->s->waiting)
			session_queue_failed(n->s, 1, "queue manager unavailable");
	}
}

struct session *
session_find(uint32_t id)
{
	struct session key = { .id = id };
	struct session_node find = { .s = &key }, *n;

	n = RB_FIND(session_tree, &sessions, &find);
	return n ? n->s : NULL;
}

static void
session_free(struct session *s)
{
	struct session key = { .id = s->id };
	struct session_node find = { .s = &key }, *n;

	if ((n = RB_FIND(session_tree, &sessions, &find)) != NULL) {
		RB_REMOVE(session_tree, &sessions, n);
		free(n);
	}
	dns_cancel(s);
	/* An open message that will never be committed. */
	if (s->qid[0] && !s->waiting)
		queue_abort(s->qid);
	s->state = S_CLOSING;
	transaction_reset(s);
	log_info("session=%08x client=%s status=disconnect messages=%u bytes=%llu",
	    s->id, s->addr, s->messages, (unsigned long long)s->bytes_in);
	bufferevent_free(s->bev);
	evbuffer_free(s->msgbuf);
	free(s);
}
