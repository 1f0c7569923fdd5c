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
#include <ctype.h>
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
#include "dsn.h"
#include "log.h"
#include "smtpd.h"
#include "util.h"

#define OUTPUT_HIGH	(64 * 1024)	/* stop reading while this much output is unsent */
#define INPUT_HIGH	(256 * 1024)	/* stop reading from the socket above this */
#define MSGBUF_FLUSH	(64 * 1024)	/* write message data to the file in chunks */
#define DENIED_MAX_COMMANDS	5	/* heard after a 554 greeting before closing */
#define DENIED_TIMEOUT		10	/* seconds a refused client may linger */
#define ETRN_TIMEOUT		5	/* seconds queued has to answer ETRN */

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
static void message_refuse(struct session *, const char *, int);
static void message_complete(struct session *, const char *, int, int);
static void bdat_chunk_done(struct session *);
static void cmd_bdat(struct session *, struct smtp_cmd *);
static int session_tls_begin(struct session *);
static void session_tls_ready(struct session *);
static void session_admit(struct session *);
static int kill_pending(struct session *);

/* ---- replies ---------------------------------------------------------------- */

static void
reply_v(struct session *s, const char *fmt, va_list ap)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	char head[8];
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(head, sizeof(head), fmt, ap2);
	va_end(ap2);
	evbuffer_add_vprintf(out, fmt, ap);
	evbuffer_add(out, "\r\n", 2);
	if (n >= 0)
		w3c_reply(s, head, (size_t)n + 2);
}

static void __attribute__((format(printf, 2, 3)))
reply(struct session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_v(s, fmt, ap);
	va_end(ap);
}

/* Say a last reply and close once it is sent. */
static void
session_close_after(struct session *s)
{
	s->state = S_CLOSING;
	bufferevent_disable(s->bev, EV_READ);
	/*
	 * Not freed here even when all is sent: the caller still uses the
	 * session, and over TLS the reply leaves the output at once.  The
	 * write callback frees it.
	 */
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		bufferevent_trigger(s->bev, EV_WRITE,
		    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/* ---- timeouts ------------------------------------------------------------------ */

/*
 * The read timeout of the phase the session is in: waiting for a command
 * (command-timeout, RFC 5321 4.5.3.2.7) or for message data (data-block-
 * timeout, 4.5.3.2.5), never more than idle-timeout; the write side (a
 * client that does not read its replies) is idle-timeout.
 */
static void
session_timeouts(struct session *s, int data_phase)
{
	const struct config *c = env->conf;
	struct timeval rd = { 0, 0 }, wr = { (time_t)c->idle_timeout, 0 };
	uint32_t t = data_phase ? c->data_block_timeout : c->command_timeout;

	rd.tv_sec = t < c->idle_timeout ? t : c->idle_timeout;
	s->data_phase = data_phase;
	bufferevent_set_timeouts(s->bev, &rd, &wr);
}

static void transaction_reset(struct session *);

/* data-timeout: the whole DATA/BDAT phase took too long. */
static void
data_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)ev;
	if (s->state == S_CLOSING || s->waiting)
		return;
	log_info("session=%08x client=%s status=timeout phase=data-total", s->id, s->addr);
	transaction_reset(s);
	reply(s, "421 4.4.2 %s Data timeout, closing connection", env->conf->hostname);
	session_close_after(s);
	if (s->state == S_CLOSING)
		bufferevent_enable(s->bev, EV_WRITE);
}

/* The message is open: start the clocks of the data phase. */
static void
data_phase_begin(struct session *s)
{
	struct timeval tv = { (time_t)env->conf->data_timeout, 0 };

	session_timeouts(s, 1);
	if (s->data_ev == NULL)
		s->data_ev = evtimer_new(env->base, data_timeout_cb, s);
	if (s->data_ev != NULL)
		evtimer_add(s->data_ev, &tv);
}

/* All data is in (or the message is dropped): back to command timeouts. */
static void
data_phase_end(struct session *s)
{
	if (s->data_ev != NULL)
		evtimer_del(s->data_ev);
	if (s->data_phase && s->state != S_CLOSING)
		session_timeouts(s, 0);
}

/*
 * command-timeout counts from a command line's first octet, not from the
 * last one: the read timer alone restarts with every octet, and a client
 * sending one a second (slowloris) would hold the session for ever.  The
 * line timer runs while half a line (or the rest of an over-long one) is
 * in, and stops when the line ends.
 */
static void event_cb(struct bufferevent *, short, void *);

static void
line_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)ev;
	if (s->state == S_CLOSING || s->waiting || s->data_phase || s->tls == TLS_HANDSHAKE)
		return;
	/* The read timer's own end: 421 Command timeout, logged, closed. */
	event_cb(s->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, s);
}

/* Half a command line is in: start its clock, unless it runs already. */
static void
line_timer_start(struct session *s)
{
	const struct config *c = env->conf;
	struct timeval tv = { DENIED_TIMEOUT, 0 };

	if (s->state != S_DENIED)
		tv.tv_sec = c->command_timeout < c->idle_timeout ? c->command_timeout :
		    c->idle_timeout;
	if (s->line_ev == NULL &&
	    (s->line_ev = evtimer_new(env->base, line_timeout_cb, s)) == NULL)
		return;
	if (!evtimer_pending(s->line_ev, NULL))
		evtimer_add(s->line_ev, &tv);
}

/* A whole line has come in. */
static void
line_timer_stop(struct session *s)
{
	if (s->line_ev != NULL)
		evtimer_del(s->line_ev);
}

/*
 * The most octets to store for the next message: max-message-size, or less
 * when max-session-size leaves less (the verdict compares the counts, this
 * only bounds what is written).
 */
static uint64_t
data_limit(const struct session *s)
{
	uint64_t lim = env->conf->max_message_size, max = env->conf->max_session_size, left;

	if (max == 0)
		return lim;
	left = s->session_data >= max ? 1 : max - s->session_data;
	return lim == 0 || left < lim ? left : lim;
}

/*
 * Count a message's octets against max-session-size (M2): 1 when this
 * message crossed it (it is refused, and the session closed).
 */
static int
session_size_crossed(struct session *s, uint64_t size)
{
	uint64_t max = env->conf->max_session_size;

	s->session_data = UINT64_MAX - s->session_data < size ? UINT64_MAX :
	    s->session_data + size;
	return max != 0 && s->session_data > max;
}

/* ---- the transaction ---------------------------------------------------------- */

static void
transaction_reset(struct session *s)
{
	size_t i;

	data_phase_end(s);
	for (i = 0; i < s->nrcpts; i++) {
		free(s->rcpts[i]);
		if (s->rcpt_orcpt)
			free(s->rcpt_orcpt[i]);
	}
	free(s->rcpts);
	free(s->rcpt_notify);
	free(s->rcpt_orcpt);
	s->rcpts = NULL;
	s->rcpt_notify = NULL;
	s->rcpt_orcpt = NULL;
	s->nrcpts = 0;
	free(s->envid);
	s->envid = NULL;
	s->ret = DSN_RET_NONE;
	s->sender[0] = '\0';
	if (s->msgfd != -1) {
		close(s->msgfd);
		s->msgfd = -1;
	}
	if (s->qid[0] && s->waiting == 0 && (s->state == S_DATA || s->state == S_BDAT))
		queue_abort(s->qid);
	s->qid[0] = '\0';
	if (s->msgbuf)
		evbuffer_drain(s->msgbuf, evbuffer_get_length(s->msgbuf));
	s->write_errno = 0;
	s->smtputf8 = 0;
	s->body = ENV_BODY_NONE;
	s->used_data = 0;
	s->chunking = 0;
	/* A chunk under way is still sent by the client: read and drop it. */
	if (s->chunk_left > 0)
		s->chunk_discard = 1;
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
	if ((s->listen_flags & LISTEN_TLS) && s->tls == TLS_OFF)
		reply(s, "250-STARTTLS");
	if (auth_offered(s))
		reply(s, "250-AUTH PLAIN LOGIN");
	reply(s, "250-BINARYMIME");
	reply(s, "250-CHUNKING");
	reply(s, "250-SMTPUTF8");
	reply(s, "250-DSN");
	reply(s, "250-ETRN");
	reply(s, "250 ENHANCEDSTATUSCODES");
}

static void
cmd_mail(struct session *s, struct smtp_cmd *c)
{
	const char *v;
	unsigned long long size;
	enum envelope_body body = ENV_BODY_NONE;
	const char *envid = NULL;
	char *end;
	size_t i;
	int utf8 = 0, ret = DSN_RET_NONE;

	if (auth_required(s)) {
		reply(s, "530 5.7.0 Authentication required");
		return;
	}
	for (i = 0; i < c->nparams; i++) {
		v = c->params[i].value;
		if (strcmp(c->params[i].key, "AUTH") == 0 && auth_offered(s)) {
			/* RFC 4954 5: accepted, and not passed on (we do not relay). */
			continue;
		} else if (strcmp(c->params[i].key, "SIZE") == 0) {
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
			/* RFC 6152 and RFC 3030 3: 7BIT, 8BITMIME, BINARYMIME */
			if (strcasecmp(v, "7BIT") == 0)
				body = ENV_BODY_7BIT;
			else if (strcasecmp(v, "8BITMIME") == 0)
				body = ENV_BODY_8BITMIME;
			else if (strcasecmp(v, "BINARYMIME") == 0)
				body = ENV_BODY_BINARYMIME;
			else {
				reply(s, "501 5.5.4 Unsupported BODY parameter");
				return;
			}
		} else if (strcmp(c->params[i].key, "SMTPUTF8") == 0) {
			/* RFC 6531 3.4: UTF-8 addresses in this transaction */
			utf8 = 1;
		} else if (strcmp(c->params[i].key, "RET") == 0) {
			/* RFC 3461 4.3 */
			if ((ret = dsn_ret_parse(v)) == -1) {
				reply(s, "501 5.5.4 Bad RET parameter (FULL or HDRS)");
				return;
			}
		} else if (strcmp(c->params[i].key, "ENVID") == 0) {
			/* RFC 3461 4.4: xtext of printable US-ASCII, at most 100 */
			if (!dsn_envid_valid(v)) {
				reply(s, "501 5.5.4 Bad ENVID parameter");
				return;
			}
			envid = v;
		} else {
			reply(s, "555 5.5.4 Unsupported MAIL parameter %s", c->params[i].key);
			return;
		}
	}
	if (envid != NULL && (s->envid = strdup(envid)) == NULL) {
		reply(s, "451 4.3.0 Temporary failure: out of memory");
		return;
	}
	strlcpy(s->sender, c->path, sizeof(s->sender));
	s->body = body;
	s->smtputf8 = utf8;
	s->ret = ret;
	s->state = S_MAIL;
	reply(s, "250 2.1.0 Ok");
}

static void
cmd_rcpt(struct session *s, struct smtp_cmd *c)
{
	char **nr, **no, esc[SMTP_PATH_MAX * 4 + 1], *orcpt_copy = NULL;
	char why[SMTP_DOMAIN_MAX + 64];
	const char *orcpt = NULL;
	uint32_t *nn, notify = 0;
	enum policy_rcpt pr;
	size_t i;

	for (i = 0; i < c->nparams; i++) {
		if (strcmp(c->params[i].key, "NOTIFY") == 0) {
			/* RFC 3461 4.1: NEVER alone, or SUCCESS/FAILURE/DELAY */
			if (dsn_notify_parse(c->params[i].value, &notify) == -1) {
				reply(s, "501 5.5.4 Bad NOTIFY parameter");
				return;
			}
		} else if (strcmp(c->params[i].key, "ORCPT") == 0) {
			/* RFC 3461 4.2: addr-type ";" xtext */
			if (!dsn_orcpt_valid(c->params[i].value, s->smtputf8)) {
				reply(s, "501 5.5.4 Bad ORCPT parameter");
				return;
			}
			orcpt = c->params[i].value;
		} else {
			reply(s, "555 5.5.4 Unsupported RCPT parameter %s",
			    c->params[i].key);
			return;
		}
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
	/* N2: Drop/ over its quota: local mail waits at the client. */
	else if (queue_drop_over()) {
		log_info("session=%08x client=%s status=deferred reason=drop-quota to=<%s>",
		    s->id, s->addr, log_escape(esc, sizeof(esc), c->path, strlen(c->path)));
		reply(s, "452 4.2.2 Mailbox full, try again later");
		return;
	}
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
	/* rcpts, rcpt_notify and rcpt_orcpt grow together */
	if ((nn = reallocarray(s->rcpt_notify, s->nrcpts + 1, sizeof(*nn))) != NULL)
		s->rcpt_notify = nn;
	if ((no = reallocarray(s->rcpt_orcpt, s->nrcpts + 1, sizeof(*no))) != NULL)
		s->rcpt_orcpt = no;
	if ((nr = reallocarray(s->rcpts, s->nrcpts + 1, sizeof(*nr))) != NULL)
		s->rcpts = nr;
	if (nn == NULL || no == NULL || nr == NULL ||
	    (orcpt != NULL && (orcpt_copy = strdup(orcpt)) == NULL) ||
	    (nr[s->nrcpts] = strdup(c->path)) == NULL) {
		free(orcpt_copy);
		reply(s, "451 4.3.0 Temporary failure: out of memory");
		return;
	}
	nn[s->nrcpts] = notify;
	no[s->nrcpts] = orcpt_copy;
	s->nrcpts++;
	s->state = S_RCPT;
	reply(s, "250 2.1.5 Ok");
}

static void
cmd_data(struct session *s, struct smtp_cmd *c)
{
	(void)c;
	/* RFC 3030 2: DATA and BDAT do not mix in one transaction. */
	if (s->state == S_BDAT) {
		reply(s, "503 5.5.1 DATA not allowed after BDAT in one transaction");
		return;
	}
	/* RFC 3030 3: a BINARYMIME body can only be sent with BDAT. */
	if (s->body == ENV_BODY_BINARYMIME) {
		reply(s, "503 5.5.1 BODY=BINARYMIME requires BDAT, not DATA");
		return;
	}
	s->used_data = 1;
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
	reply(s, "214-2.0.0   HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP ETRN");
	reply(s, "214 2.0.0 See RFC 5321");
}

/*
 * RFC 3207: STARTTLS, on a `tls` listener and before TLS only.  After the
 * 220, plaintext the client pipelined behind the command is dropped, never
 * read as commands (CVE-2011-0411), and the session forgets what it was
 * told in plaintext (4.2): the client starts again with EHLO.
 */
static void
cmd_starttls(struct session *s, struct smtp_cmd *c)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer_ptr eol;
	size_t n;

	(void)c;
	if (!(s->listen_flags & LISTEN_TLS) && s->tls == TLS_OFF) {
		reply(s, "502 5.5.1 Command not implemented");
		return;
	}
	if (s->tls != TLS_OFF) {
		reply(s, "503 5.5.1 TLS already active");
		return;
	}
	if (!tls_available()) {
		reply(s, "454 4.7.0 TLS not available due to temporary reason");
		return;
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	/* The input starts with this command's line; what follows it goes. */
	eol = evbuffer_search(in, "\n", 1, NULL);
	n = evbuffer_get_length(in);
	if (eol.pos >= 0 && n > (size_t)eol.pos + 1)
		log_info("session=%08x client=%s status=discarded bytes=%zu "
		    "reason=\"plaintext pipelined after STARTTLS\"", s->id, s->addr,
		    n - ((size_t)eol.pos + 1));
	evbuffer_drain(in, n);
	transaction_reset(s);
	s->helo[0] = '\0';
	s->esmtp = 0;
	/* RFC 3207 4.2: forget an authentication made before TLS, too. */
	auth_session_free(s);
	explicit_bzero(s->auth_user, sizeof(s->auth_user));
	s->state = S_CONNECTED;
	if (session_tls_begin(s) == -1)
		session_close_after(s);
}

/*
 * RFC 1985 ETRN: "ETRN" SP node, where node is a domain, "@domain" (the
 * domain and its subdomains) or "#queue" (a queue name); queued decides
 * what each means.  Copies the node, in lower case, to `out`; -1 when the
 * argument is not one of those forms.
 */
static int
etrn_parse(const char *arg, char *out, size_t outsz)
{
	const char *d = arg, *c;
	size_t len = strlen(arg), i;

	if (len == 0 || len >= outsz)
		return -1;
	if (arg[0] == '#') {
		/* a queue name: letters, digits and a few marks, never a blank */
		if (len < 2)
			return -1;
		for (c = arg + 1; *c; c++)
			if (!isalnum((unsigned char)*c) && strchr(".-_@", *c) == NULL)
				return -1;
	} else {
		if (arg[0] == '@')
			d++;
		if (d[0] == '[' || !smtp_domain_valid(d, 0))
			return -1;
	}
	for (i = 0; i <= len; i++)
		out[i] = (char)tolower((unsigned char)arg[i]);
	return 0;
}

/* The ETRN wait is over: `count` messages, or -1 when queued did not answer. */
static void
etrn_finish(struct session *s, int64_t count, const char *status)
{
	if (s->etrn_ev != NULL)
		evtimer_del(s->etrn_ev);
	s->waiting = 0;
	log_info("session=%08x client=%s etrn=%s status=%s count=%lld", s->id, s->addr,
	    s->etrn_node, status, (long long)(count < 0 ? 0 : count));
	if (count < 0)
		reply(s, "458 4.3.0 Unable to queue messages for node %s", s->etrn_node);
	else if (count == 0)
		reply(s, "251 2.0.0 No messages waiting for node %s", s->etrn_node);
	else
		reply(s, "250 2.0.0 Queuing for node %s started", s->etrn_node);
	s->etrn_node[0] = '\0';
}

static void
etrn_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)ev;
	if (s->etrn_node[0] == '\0' || s->state == S_CLOSING)
		return;
	etrn_finish(s, -1, "timeout");
	session_process(s);
}

void
session_etrn_result(struct session *s, uint32_t count)
{
	/* Late (after 458) or unasked: nothing waits for it. */
	if (s->etrn_node[0] == '\0' || s->state == S_CLOSING)
		return;
	etrn_finish(s, count, count > 0 ? "started" : "empty");
	session_process(s);
}

/*
 * ETRN: allowed between transactions, after HELO/EHLO, to a client that
 * may relay by itself.  The session stops reading until queued answers or
 * ETRN_TIMEOUT passes; the answer arrives through smtpd_queue.c.
 */
static void
cmd_etrn(struct session *s, struct smtp_cmd *c)
{
	struct timeval tv = { ETRN_TIMEOUT, 0 };
	char node[SMTP_DOMAIN_MAX + 2], why[128];

	if (s->state == S_CONNECTED) {
		reply(s, "503 5.5.1 Send HELO/EHLO first");
		return;
	}
	if (etrn_parse(c->arg, node, sizeof(node)) == -1) {
		reply(s, "501 5.5.4 Syntax: ETRN domain");
		return;
	}
	if (!policy_etrn(s, why, sizeof(why))) {
		log_info("session=%08x client=%s etrn=%s status=refused %s", s->id,
		    s->addr, node, why);
		reply(s, "459 5.7.1 <%s>: not allowed to ETRN", c->arg);
		return;
	}
	/* the node as the client wrote it is what the reply names (checked above) */
	if (strlcpy(s->etrn_node, c->arg, sizeof(s->etrn_node)) >= sizeof(s->etrn_node) ||
	    (s->etrn_ev == NULL &&
	    (s->etrn_ev = evtimer_new(env->base, etrn_timeout_cb, s)) == NULL) ||
	    queue_etrn(s, node) == -1) {
		etrn_finish(s, -1, "unavailable");
		return;
	}
	s->waiting = 1;
	evtimer_add(s->etrn_ev, &tv);
}

static void
cmd_not_implemented(struct session *s, struct smtp_cmd *c)
{
	(void)c;
	reply(s, "502 5.5.1 Command not implemented");
}

#define ST(x)		(1u << (x))
#define ANY_STATE	(ST(S_CONNECTED) | ST(S_HELO) | ST(S_MAIL) | ST(S_RCPT) | ST(S_BDAT))

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
	{ SMTP_CMD_DATA, ST(S_RCPT) | ST(S_BDAT), "503 5.5.1 Need RCPT before DATA", cmd_data },
	{ SMTP_CMD_RSET, ANY_STATE, NULL, cmd_rset },
	{ SMTP_CMD_NOOP, ANY_STATE, NULL, cmd_noop },
	{ SMTP_CMD_QUIT, ANY_STATE, NULL, cmd_quit },
	{ SMTP_CMD_VRFY, ANY_STATE, NULL, cmd_vrfy },
	{ SMTP_CMD_HELP, ANY_STATE, NULL, cmd_help },
	{ SMTP_CMD_EXPN, ANY_STATE, NULL, cmd_not_implemented },
	{ SMTP_CMD_STARTTLS, ST(S_CONNECTED) | ST(S_HELO),
	    "503 5.5.1 STARTTLS is not allowed during a mail transaction", cmd_starttls },
	{ SMTP_CMD_AUTH, ANY_STATE, NULL, auth_command },
	{ SMTP_CMD_BDAT, ANY_STATE, NULL, cmd_bdat },
	{ SMTP_CMD_ETRN, ST(S_CONNECTED) | ST(S_HELO),
	    "503 5.5.1 ETRN is not allowed during a mail transaction", cmd_etrn },
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
session_command(struct session *s, char *line, size_t len)
{
	enum smtp_parse_result r;
	struct smtp_cmd cmd;
	const char *why = "";
	size_t i;

	if (s->state == S_DENIED) {
		session_denied_command(s, line, len);
		explicit_bzero(line, len);
		return;
	}
	r = smtp_parse_command(line, len, s->smtputf8, &cmd, &why);
	/*
	 * The line may hold an AUTH initial response: scrub it now, before a
	 * handler runs (STARTTLS drains the input it lies in); `cmd` holds
	 * what the handlers need.  Its line ending stays: STARTTLS looks for it.
	 */
	explicit_bzero(line, len);
	switch (r) {
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
		if (cmd.verb == SMTP_CMD_ETRN) {
			/* RFC 1985 5: 501 for ETRN without a node, one reply text for all */
			reply(s, "501 5.5.4 Syntax: ETRN domain");
			return;
		}
		reply(s, "501 5.5.2 Syntax error: %s", why);
		return;
	}
	/* "Require secure channel": mail commands wait for TLS (RFC 3207 4). */
	if ((s->listen_flags & LISTEN_REQUIRE_TLS) && s->tls != TLS_ON &&
	    cmd.verb != SMTP_CMD_EHLO && cmd.verb != SMTP_CMD_HELO &&
	    cmd.verb != SMTP_CMD_STARTTLS && cmd.verb != SMTP_CMD_NOOP &&
	    cmd.verb != SMTP_CMD_RSET && cmd.verb != SMTP_CMD_QUIT) {
		reply(s, "530 5.7.0 Must issue a STARTTLS command first");
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

/*
 * The protocol of Received: (RFC 3848; RFC 6531 4.3 for SMTPUTF8): ESMTP or
 * UTF8SMTP, with S over TLS and A once authenticated.
 */
static const char *
received_with(const struct session *s)
{
	static const char *const names[2][4] = {
		{ "ESMTP", "ESMTPA", "ESMTPS", "ESMTPSA" },
		{ "UTF8SMTP", "UTF8SMTPA", "UTF8SMTPS", "UTF8SMTPSA" },
	};

	if (!s->esmtp && !s->smtputf8)
		return "SMTP";
	return names[s->smtputf8 != 0][(s->auth_user[0] != '\0') + 2 * (s->tls == TLS_ON)];
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
	/* RFC 6531 4.3: UTF8SMTP is the protocol of an SMTPUTF8 transaction. */
	evbuffer_add_printf(s->msgbuf, "\r\n\tby %s (Mailroot) with %s id %s",
	    env->conf->hostname, received_with(s), s->qid);
	/* RFC 3848 ESMTPS; what was agreed, as Postfix and OpenSMTPD say it. */
	if (s->tls == TLS_ON)
		evbuffer_add_printf(s->msgbuf, "\r\n\t(version=%s cipher=%s bits=%d)",
		    s->tls_version, s->tls_cipher, s->tls_bits);
	if (s->nrcpts == 1)
		evbuffer_add_printf(s->msgbuf, "\r\n\tfor <%s>", s->rcpts[0]);
	evbuffer_add_printf(s->msgbuf, "; %s\r\n", date);
}

void
session_opened(struct session *s, int fd, const char *qid)
{
	s->waiting = 0;
	if (s->state != S_RCPT || s->killed) {
		close(fd);
		queue_abort(qid);
		kill_pending(s);
		return;
	}
	s->msgfd = fd;
	strlcpy(s->qid, qid, sizeof(s->qid));
	write_received(s);
	data_phase_begin(s);
	if (s->chunking) {
		/* The first BDAT: its chunk follows in the input. */
		smtp_bdat_init(&s->bdat, data_limit(s), s->body == ENV_BODY_BINARYMIME);
		s->state = S_BDAT;
		if (s->chunk_left == 0)
			bdat_chunk_done(s);
		session_process(s);
		return;
	}
	smtp_data_init(&s->data, data_limit(s));
	s->state = S_DATA;
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
	session_process(s);
}

/* The end-of-data line arrived: refuse, or ask queued to commit. */
static void
data_done(struct session *s)
{
	const char *err = NULL;
	int crossed;

	msgbuf_flush(s, 1);
	data_phase_end(s);
	crossed = session_size_crossed(s, s->data.size);
	/* In order of precedence; two causes share a reply. */
	/* NOLINTBEGIN(bugprone-branch-clone) */
	if (env->conf->max_message_size && s->data.size > env->conf->max_message_size)
		err = "552 5.3.4 Message size exceeds fixed maximum message size";
	else if (crossed)
		err = "552 5.3.4 Message crosses the session size limit";
	else if (s->data.flags & SMTP_DATA_TOO_BIG)
		err = "552 5.3.4 Message size exceeds fixed maximum message size";
	/* NOLINTEND(bugprone-branch-clone) */
	message_complete(s, err, s->data.flags, crossed);
}

/*
 * Refuse the open message with `err`; when it crossed max-session-size,
 * also close the session (421 4.7.0 after the refusal, M2).
 */
static void
message_refuse(struct session *s, const char *err, int crossed)
{
	log_info("session=%08x client=%s qid=%s status=refused reply=\"%.3s\"",
	    s->id, s->addr, s->qid, err);
	reply(s, "%s", err);
	queue_abort(s->qid);
	s->qid[0] = '\0';
	transaction_reset(s);
	if (crossed) {
		log_info("session=%08x client=%s status=closed reason=session-size "
		    "bytes=%llu", s->id, s->addr, (unsigned long long)s->session_data);
		reply(s, "421 4.7.0 %s Session size limit reached, closing connection",
		    env->conf->hostname);
		session_close_after(s);
	}
}

/*
 * The last octet of a message (DATA or BDAT) is in.  Refuse it for `err`,
 * for what its content showed (`flags` of the DATA/BDAT machine) or for a
 * failed write; else ask queued to commit it: the reply waits for that.
 */
static void
message_complete(struct session *s, const char *err, int flags, int crossed)
{
	if (err == NULL) {
		if (flags & SMTP_DATA_LONG_LINE)
			err = "550 5.6.0 Message has a line longer than 998 octets (RFC 5322 2.1.1)";
		else if (s->write_errno == ENOSPC || s->write_errno == EDQUOT)
			err = "452 4.3.1 Insufficient system storage";
		else if (s->write_errno)
			err = "451 4.3.0 Local error writing the message";
	}
	if (err == NULL) {
		close(s->msgfd);
		s->msgfd = -1;
		if (queue_commit(s) == 0) {
			s->waiting = 1;
			return;
		}
		err = "451 4.3.0 Queue manager unavailable, try again later";
	}
	message_refuse(s, err, crossed);
}

/* ---- BDAT (RFC 3030) ------------------------------------------------------------ */

/*
 * A chunk is in whole.  Size limits are checked at every chunk, so a client
 * hears 552 as soon as its message is too big; the other verdicts and the
 * commit wait for LAST.  The 250 after LAST comes only once queued has
 * committed the message.
 */
static void
bdat_chunk_done(struct session *s)
{
	const char *err = NULL;
	uint64_t max = env->conf->max_session_size, total;
	int crossed = 0;

	if (s->chunk_last)
		smtp_bdat_end(&s->bdat, s->msgbuf);
	msgbuf_flush(s, s->chunk_last);
	total = UINT64_MAX - s->session_data < s->bdat.size ? UINT64_MAX :
	    s->session_data + s->bdat.size;
	/* In order of precedence; two causes share a reply. */
	/* NOLINTBEGIN(bugprone-branch-clone) */
	if (env->conf->max_message_size && s->bdat.size > env->conf->max_message_size)
		err = "552 5.3.4 Message size exceeds fixed maximum message size";
	else if (max != 0 && total > max) {
		err = "552 5.3.4 Message crosses the session size limit";
		crossed = 1;
	} else if (s->bdat.flags & SMTP_DATA_TOO_BIG)
		err = "552 5.3.4 Message size exceeds fixed maximum message size";
	/* NOLINTEND(bugprone-branch-clone) */
	if (err == NULL && !s->chunk_last) {
		reply(s, "250 2.0.0 %llu octets received", (unsigned long long)s->chunk_size);
		return;
	}
	data_phase_end(s);
	(void)session_size_crossed(s, s->bdat.size);
	message_complete(s, err, s->bdat.flags, crossed);
}

/* Parse "chunk-size [SP "LAST"]" (RFC 3030 2 bdat-cmd); -1 when malformed. */
static int
bdat_parse(const char *arg, uint64_t *size, int *last)
{
	const char *p = arg;
	uint64_t v = 0;
	size_t n = 0;

	for (; *p >= '0' && *p <= '9'; p++, n++) {
		if (n == 20 || v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (n == 0)
		return -1;
	*last = 0;
	if (*p == ' ') {
		while (*p == ' ')
			p++;
		if (strcasecmp(p, "LAST") != 0)
			return -1;
		*last = 1;
	} else if (*p != '\0')
		return -1;
	*size = v;
	return 0;
}

static void
cmd_bdat(struct session *s, struct smtp_cmd *c)
{
	uint64_t size;
	int last;

	if (bdat_parse(c->arg, &size, &last) == -1) {
		/* The chunk size is unknown: its octets cannot be told from commands. */
		log_info("session=%08x client=%s status=closed reason=bad-bdat", s->id, s->addr);
		reply(s, "501 5.5.4 Syntax: BDAT chunk-size [LAST]; closing connection");
		session_close_after(s);
		return;
	}
	/* Whatever the answer, the chunk's octets follow and are read. */
	s->chunk_left = size;
	s->chunk_size = size;
	s->chunk_last = last;
	s->chunk_discard = 1;
	if (s->state != S_RCPT && s->state != S_BDAT) {
		reply(s, "503 5.5.1 Need MAIL and RCPT before BDAT");
		return;
	}
	if (s->used_data) {
		reply(s, "503 5.5.1 BDAT not allowed after DATA in one transaction");
		return;
	}
	if (s->state == S_BDAT) {
		s->chunk_discard = 0;
		if (size == 0)
			bdat_chunk_done(s);
		return;
	}
	/* The first chunk: ask queued for the message file, then read it. */
	if (queue_open(s) == -1) {
		reply(s, "451 4.3.0 Queue manager unavailable, try again later");
		return;
	}
	s->chunking = 1;
	s->chunk_discard = 0;
	s->waiting = 1;
	s->queue_gen = queue_link_gen();
}

/* Read (or drop) what the input holds of the current chunk. */
static void
bdat_input(struct session *s, struct evbuffer *in)
{
	struct evbuffer_iovec v[16];
	size_t avail = evbuffer_get_length(in), want, used = 0, n;
	int i, nv;

	want = s->chunk_left < avail ? (size_t)s->chunk_left : avail;
	if (s->chunk_discard) {
		evbuffer_drain(in, want);
		used = want;
	} else {
		nv = evbuffer_peek(in, (ev_ssize_t)want, NULL, v, 16);
		for (i = 0; i < nv && i < 16 && used < want; i++) {
			n = v[i].iov_len < want - used ? v[i].iov_len : want - used;
			smtp_bdat_feed(&s->bdat, v[i].iov_base, n, s->msgbuf);
			used += n;
		}
		evbuffer_drain(in, used);
		msgbuf_flush(s, 0);
	}
	s->chunk_left -= used;
	s->bytes_in += used;
}

void
session_committed(struct session *s)
{
	char from[SMTP_PATH_MAX * 4 + 1], helo[SMTP_DOMAIN_MAX * 4 + 1];
	char user[AUTH_USER_MAX * 4 + 1];

	s->waiting = 0;
	s->messages++;
	log_escape(from, sizeof(from), s->sender, strlen(s->sender));
	log_escape(helo, sizeof(helo), s->helo, strlen(s->helo));
	/* queued's "accepted" line has the same id: this one says who sent it. */
	log_info("%s status=received session=%08x client=%s name=%s helo=%s "
	    "from=<%s> nrcpt=%zu%s%s", s->qid, s->id, s->addr,
	    s->rdns[0] ? s->rdns : "unknown", helo[0] ? helo : "none", from,
	    s->nrcpts, s->auth_user[0] ? " user=" : "", s->auth_user[0] ?
	    log_escape(user, sizeof(user), s->auth_user, strlen(s->auth_user)) : "");
	smtpd_stats.messages++;
	smtpd_stats.bytes += s->chunking ? s->bdat.size : s->data.size;
	reply(s, "250 2.0.0 Ok: queued as %s", s->qid);
	s->qid[0] = '\0';
	transaction_reset(s);
	if (!kill_pending(s))
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
	if (!kill_pending(s))
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
	int r, partial = 0;

	while (s->state != S_CLOSING && !s->waiting &&
	    evbuffer_get_length(out) < OUTPUT_HIGH &&
	    (avail = evbuffer_get_length(in)) > 0) {
		/* An AUTH exchange reads its own lines (smtpd_auth.c). */
		if (s->auth != NULL && (r = auth_input(s, in)) != AUTH_INPUT_NONE) {
			if (r == AUTH_INPUT_PARTIAL)
				partial = 1;
			if (r != AUTH_INPUT_DONE || s->state == S_CLOSING)
				break;
			line_timer_stop(s);
			continue;
		}
		if (s->chunk_left > 0) {
			bdat_input(s, in);
			if (s->chunk_left > 0)
				continue;
			if (s->chunk_discard)
				s->chunk_discard = 0;
			else
				bdat_chunk_done(s);
			continue;
		}
		if (s->state == S_DATA) {
			if (data_input(s, in))
				data_done(s);
			continue;
		}
		if (s->discarding) {
			pos = evbuffer_search(in, "\n", 1, NULL);
			if (pos.pos == -1) {
				evbuffer_drain(in, avail);
				partial = 1;
				break;
			}
			evbuffer_drain(in, (size_t)pos.pos + 1);
			s->discarding = 0;
			line_timer_stop(s);
			continue;
		}
		if (avail > SMTP_LINE_MAX + 1)
			avail = SMTP_LINE_MAX + 1;
		if ((p = evbuffer_pullup(in, (ssize_t)avail)) == NULL)
			break;
		r = smtp_line_next((const char *)p, avail, &linelen, &consumed);
		if (r == 0) {
			partial = 1;
			break;
		}
		if (r == -1) {
			reply(s, "500 5.5.2 Line too long (at most %d octets)", SMTP_LINE_MAX);
			s->discarding = 1;
			continue;
		}
		line_timer_stop(s);
		s->bytes_in += consumed;
		s->commands++;
		w3c_command(s, (const char *)p, linelen, consumed);
		session_command(s, (char *)p, linelen);
		/* The handler may have closed the session, or started TLS. */
		if (s->state == S_CLOSING || s->tls == TLS_HANDSHAKE)
			return;
		evbuffer_drain(in, consumed);
	}
	if (partial)
		line_timer_start(s);
}

/* ---- libevent callbacks ------------------------------------------------------------- */

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	(void)bev;
	/* libevent may hand over the first data before it reports the handshake. */
	if (s->tls == TLS_HANDSHAKE) {
		session_tls_ready(s);
		return;
	}
	session_process(s);
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

	if (what & BEV_EVENT_CONNECTED) {
		if (s->tls == TLS_HANDSHAKE)
			session_tls_ready(s);
		return;
	}
	if (s->tls == TLS_HANDSHAKE) {
		tls_failed(s, what);
		session_free(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (s->state == S_CLOSING) {
			session_free(s);
			return;
		}
		if (what & BEV_EVENT_WRITING) {
			log_info("session=%08x client=%s status=timeout phase=idle",
			    s->id, s->addr);
			reply(s, "421 4.4.2 %s Idle timeout, closing connection",
			    env->conf->hostname);
		} else if (s->data_phase) {
			log_info("session=%08x client=%s status=timeout phase=data",
			    s->id, s->addr);
			reply(s, "421 4.4.2 %s Data timeout, closing connection",
			    env->conf->hostname);
		} else {
			log_info("session=%08x client=%s status=timeout phase=command",
			    s->id, s->addr);
			reply(s, "421 4.4.2 %s Command timeout, closing connection",
			    env->conf->hostname);
		}
		session_close_after(s);
		bufferevent_enable(bev, EV_WRITE);
		return;
	}
	/* EOF or error: the client is gone. */
	session_free(s);
}

/* Start TLS (after STARTTLS's 220, or on an smtps connection); -1 if it cannot. */
static int
session_tls_begin(struct session *s)
{
	struct timeval tv = { env->conf->idle_timeout, 0 };

	if (tls_start(s) == -1)
		return -1;
	/* From here on the session reads and writes the TLS filter. */
	bufferevent_setcb(s->bev, read_cb, write_cb, event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, INPUT_HIGH);
	bufferevent_setwatermark(s->bev, EV_WRITE, OUTPUT_HIGH / 4, 0);
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	return 0;
}

/* The TLS handshake completed: greet (smtps), then read what came with it. */
static void
session_tls_ready(struct session *s)
{
	tls_established(s);
	if (s->listen_flags & LISTEN_SMTPS) {
		log_info("session=%08x client=%s status=connect%s listener=%u", s->id,
		    s->addr, tls_log_fields(s), s->listener);
		session_admit(s);
		return;
	} else
		log_info("session=%08x client=%s status=starttls%s", s->id, s->addr,
		    tls_log_fields(s));
	session_process(s);
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
		smtpd_stats.refused++;
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
session_accept(int fd, const struct sockaddr *sa, socklen_t salen, uint32_t listener,
    unsigned listen_flags)
{
	static const char paused_msg[] = "421 4.3.2 Service paused, try again later\r\n";
	struct session_node *node = NULL;
	struct session *s;
	char busy[CONF_NAME_MAX + 64];
	int r;

	smtpd_stats.connections++;
	if (smtpd_paused()) {
		smtpd_stats.refused++;
		/* On an implicit TLS port, plaintext would only confuse. */
		if (!(listen_flags & LISTEN_SMTPS))
			(void)!write(fd, paused_msg, sizeof(paused_msg) - 1);
		close(fd);
		return;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL || (node = calloc(1, sizeof(*node))) == NULL ||
	    (s->msgbuf = evbuffer_new()) == NULL) {
		log_warnx("out of memory for a session");
		if (s && s->msgbuf)
			evbuffer_free(s->msgbuf);
		free(node);
		free(s);
		close(fd);
		return;
	}
	s->id = next_id++;
	if (next_id == 0)
		next_id = 1;
	s->msgfd = -1;
	s->state = S_CONNECTED;
	s->listener = listener;
	s->since = time(NULL);
	w3c_session_init(s, fd);
	s->listen_flags = listen_flags;
	memcpy(&s->ss, sa, salen < sizeof(s->ss) ? salen : sizeof(s->ss));
	format_literal(s, sa);
	/* L2: over max-connections(-per-client), 421 and close at once. */
	if ((r = limit_conn_enter(s->addr)) != 0) {
		smtpd_stats.refused++;
		log_info("session=%08x client=%s status=refused reason=%s "
		    "connections=%u", s->id, s->addr, r == -1 ? "too-many-connections" :
		    "out-of-memory", limit_conn_count());
		snprintf(busy, sizeof(busy), "421 4.7.0 %s Too many connections, "
		    "try again later\r\n", env->conf->hostname);
		(void)!write(fd, busy, strlen(busy));
		evbuffer_free(s->msgbuf);
		free(node);
		free(s);
		close(fd);
		return;
	}
	s->counted = 1;
	s->bev = bufferevent_socket_new(env->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		limit_conn_leave(s->addr);
		evbuffer_free(s->msgbuf);
		free(node);
		free(s);
		close(fd);
		return;
	}
	node->s = s;
	RB_INSERT(session_tree, &sessions, node);
	/* The tree holds node: the analyzer cannot see RB_INSERT keep it. */
	/* NOLINTNEXTLINE(clang-analyzer-unix.Malloc) */
	bufferevent_setcb(s->bev, read_cb, write_cb, event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, INPUT_HIGH);
	bufferevent_setwatermark(s->bev, EV_WRITE, OUTPUT_HIGH / 4, 0);
	session_timeouts(s, 0);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	/* Implicit TLS (RFC 8314 3.3): the greeting follows the handshake. */
	if (listen_flags & LISTEN_SMTPS) {
		if (session_tls_begin(s) == -1)
			session_free(s);
		return;
	}
	log_info("session=%08x client=%s status=connect listener=%u", s->id, s->addr,
	    s->listener);
	session_admit(s);
}

/*
 * Decide whether to serve a new client: too many AUTH failures (421), then
 * the access rules, whose name rules (and reverse-dns) wait for the lookup
 * (at most a few seconds; the client's input stays unread until then).
 */
static void
session_admit(struct session *s)
{
	char why[64];

	if (auth_blocked(s)) {
		smtpd_stats.refused++;
		log_info("session=%08x client=%s status=refused reason=auth-failures",
		    s->id, s->addr);
		reply(s, "421 4.7.0 %s Too many authentication failures, try again later",
		    env->conf->hostname);
		session_close_after(s);
		return;
	}
	if (policy_access(s, why, sizeof(why)) == 0 || env->conf->reverse_dns) {
		if (dns_lookup_client(s) == 0) {
			bufferevent_disable(s->bev, EV_READ);
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
		if (n->s->etrn_node[0] != '\0') {
			etrn_finish(n->s, -1, "unavailable");
			session_process(n->s);
		} else if (n->s->waiting)
			session_queue_failed(n->s, 1, "queue manager unavailable");
	}
}

void
session_foreach(void (*fn)(struct session *, void *), void *arg)
{
	struct session_node *n;

	RB_FOREACH(n, session_tree, &sessions)
		fn(n->s, arg);
}

uint32_t
session_count(void)
{
	struct session_node *n;
	uint32_t c = 0;

	RB_FOREACH(n, session_tree, &sessions)
		c++;
	return c;
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
	auth_session_free(s);
	log_info("session=%08x client=%s status=disconnect messages=%u bytes=%llu%s "
	    "commands=%u duration=%llds", s->id, s->addr, s->messages,
	    (unsigned long long)s->bytes_in, tls_log_fields(s), s->commands,
	    (long long)(time(NULL) - s->since));
	if (s->counted)
		limit_conn_leave(s->addr);
	if (s->data_ev != NULL)
		event_free(s->data_ev);
	if (s->line_ev != NULL)
		event_free(s->line_ev);
	if (s->etrn_ev != NULL)
		event_free(s->etrn_ev);
	if (s->tls != TLS_OFF)
		tls_close(s);
	else
		bufferevent_free(s->bev);
	evbuffer_free(s->msgbuf);
	free(s);
}

/* ---- for smtpd_auth.c ------------------------------------------------------------ */

void
session_reply(struct session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_v(s, fmt, ap);
	va_end(ap);
}

void
session_resume(struct session *s)
{
	session_process(s);
}

void
session_end(struct session *s)
{
	session_close_after(s);
}

/* ---- smtpctl kill session (smtpd_status.c) ------------------------------------- */

static void
kill_reply(struct session *s)
{
	log_info("session=%08x client=%s status=killed", s->id, s->addr);
	reply(s, "421 4.3.2 %s Session ended by the administrator, closing connection",
	    env->conf->hostname);
	session_close_after(s);
}

/* A kill that waited for queued's answer: carry it out now; 1 if it did. */
static int
kill_pending(struct session *s)
{
	if (!s->killed || s->state == S_CLOSING)
		return 0;
	kill_reply(s);
	return 1;
}

/*
 * End a session for the operator: 421 4.3.2, then close once it is sent.
 * Called from the supervisor's message, never from the session's own
 * callbacks, so freeing at once is safe where nothing can be said (a TLS
 * handshake under way).  A session waiting for queued keeps its place
 * until the answer comes (its client hears it, then the 421): a message
 * queued is never left unanswered.  Returns 1 if the session will end, 0
 * if it was already closing.
 */
int
session_kill(struct session *s)
{
	if (s->state == S_CLOSING || s->killed)
		return 0;
	s->killed = 1;
	if (s->tls == TLS_HANDSHAKE) {
		log_info("session=%08x client=%s status=killed phase=tls-handshake",
		    s->id, s->addr);
		session_free(s);
		return 1;
	}
	if (s->waiting)
		return 1;
	dns_cancel(s);
	kill_reply(s);
	bufferevent_enable(s->bev, EV_WRITE);
	return 1;
}
