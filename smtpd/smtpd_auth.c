/*
 * smtpd_auth.c - SMTP AUTH on the inbound listeners (smtpd, unprivileged,
 * chrooted).
 *
 * RFC 4954 with the SASL mechanisms PLAIN (RFC 4616) and LOGIN
 * (draft-murchison-sasl-login-00).  Trust boundary: everything the client
 * sends.  Responses are base64 (RFC 4648 section 4, checked strictly) on
 * lines of at most 12288 octets (RFC 4954 section 4), read here while an
 * exchange is on, so that no other command is taken meanwhile.  The
 * decoded user name and password go to mailrootd, which alone holds the
 * password table (SUPERVISOR_AUTH_CHECK): smtpd never sees a hash.
 *
 * Failures are counted per client address over AUTH_FAILURE_WINDOW
 * seconds: past auth-max-failures the address is cut off with 421 4.7.0,
 * at each AUTH and at connect, until its window ends; and each 535 is
 * delayed by auth-failure-delay.  The counts live in this process: a
 * restart of smtpd forgets them.  Passwords are scrubbed from our buffers
 * once sent, and never logged.
 */
#include <sys/types.h>
#ifndef __unused
#define __unused __attribute__((unused))
#endif
#include <sys/tree.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#define LIBBSD_OPENBSD_VIS
#include <bsd/vis.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "config.h"
#include "daemon.h"
#include "ipc.h"
#include "log.h"
#include "sasl.h"
#include "smtpd.h"
#include "util.h"

#define AUTH_LINE_MAX		SASL_LINE_MAX
/* Decoded PLAIN response: authzid NUL authcid NUL passwd. */
#define PLAIN_MAX		(AUTH_USER_MAX + 1 + AUTH_USER_MAX + 1 + AUTH_PASS_MAX)
/* Client addresses whose failures are remembered at once. */
#define FAIL_TABLE_MAX		10000

enum auth_step {
	STEP_IDLE,		/* no exchange on */
	STEP_PLAIN,		/* "334 " sent: waiting for the PLAIN response */
	STEP_LOGIN_USER,	/* "334 Username:" sent */
	STEP_LOGIN_PASS,	/* "334 Password:" sent */
	STEP_CHECKING,		/* mailrootd was asked */
	STEP_DELAY		/* failed: the 535 waits for auth-failure-delay */
};

struct auth_session {
	enum auth_step	 step;
	const char	*mech;
	char		 user[AUTH_USER_MAX + 1];
	int		 user_bad;	/* LOGIN: too long or with a NUL */
	struct event	*delay_ev;
};

/* Failures of one client address within its window. */
struct fail_node {
	RB_ENTRY(fail_node) entry;
	char		 addr[64];
	uint64_t	 start;		/* monotonic seconds: the window's start */
	uint32_t	 failures;
};

static int
fail_cmp(struct fail_node *a, struct fail_node *b)
{
	return strcmp(a->addr, b->addr);
}

RB_HEAD(fail_tree, fail_node);
RB_GENERATE_STATIC(fail_tree, fail_node, entry, fail_cmp)

static struct fail_tree fails = RB_INITIALIZER(&fails);
static size_t nfails;

/* ---- the failure table ------------------------------------------------------ */

static uint64_t
now_sec(void)
{
	return now_ms() / 1000;
}

static int
fail_expired(const struct fail_node *n, uint64_t now)
{
	return now - n->start >= AUTH_FAILURE_WINDOW;
}

static struct fail_node *
fail_find(const char *addr)
{
	struct fail_node key;

	if (strlcpy(key.addr, addr, sizeof(key.addr)) >= sizeof(key.addr))
		return NULL;
	return RB_FIND(fail_tree, &fails, &key);
}

static void
fail_remove(struct fail_node *n)
{
	RB_REMOVE(fail_tree, &fails, n);
	free(n);
	nfails--;
}

/* Make room for one more address: drop the expired, else the oldest. */
static void
fail_make_room(uint64_t now)
{
	struct fail_node *n, *next, *oldest = NULL;

	for (n = RB_MIN(fail_tree, &fails); n != NULL; n = next) {
		next = RB_NEXT(fail_tree, &fails, n);
		if (fail_expired(n, now))
			fail_remove(n);
		else if (oldest == NULL || n->start < oldest->start)
			oldest = n;
	}
	if (nfails >= FAIL_TABLE_MAX && oldest != NULL)
		fail_remove(oldest);
}

/* Count a failure of `addr`; returns its failures in the current window. */
static uint32_t
fail_note(const char *addr)
{
	uint64_t now = now_sec();
	struct fail_node *n;

	if ((n = fail_find(addr)) != NULL && fail_expired(n, now)) {
		n->start = now;
		n->failures = 0;
	}
	if (n == NULL) {
		if (nfails >= FAIL_TABLE_MAX)
			fail_make_room(now);
		if ((n = calloc(1, sizeof(*n))) == NULL)
			return 0;
		strlcpy(n->addr, addr, sizeof(n->addr));
		n->start = now;
		RB_INSERT(fail_tree, &fails, n);
		nfails++;
	}
	if (n->failures < UINT32_MAX)
		n->failures++;
	/* n is in the tree: fail_find() found no node for addr, so RB_INSERT took it */
	return n->failures;	/* NOLINT(clang-analyzer-unix.Malloc) */
}

int
auth_blocked(const struct session *s)
{
	uint32_t max = env->conf->auth_max_failures;
	struct fail_node *n;

	if (max == 0 || (n = fail_find(s->addr)) == NULL)
		return 0;
	if (fail_expired(n, now_sec())) {
		fail_remove(n);
		return 0;
	}
	return n->failures >= max;
}

/* ---- what the listener offers ---------------------------------------------------- */

/* Is the session protected by TLS (STARTTLS done, or an smtps listener)? */
int
session_is_tls(const struct session *s)
{
	return s->tls == TLS_ON;
}

const struct listener_conf *
auth_listener(const struct session *s)
{
	const struct listener_conf *l;
	uint32_t i = 0;

	TAILQ_FOREACH(l, &env->conf->listeners, entry)
		if (i++ == s->listener)
			return l;
	return NULL;
}

int
auth_offered(const struct session *s)
{
	const struct listener_conf *l = auth_listener(s);

	return l != NULL && (l->flags & LISTEN_AUTH) &&
	    ((l->flags & LISTEN_AUTH_PLAINTEXT) || session_is_tls(s));
}

int
auth_required(const struct session *s)
{
	const struct listener_conf *l = auth_listener(s);

	return l != NULL && (l->flags & LISTEN_REQUIRE_AUTH) && s->auth_user[0] == '\0';
}

/* ---- helpers ------------------------------------------------------------------------ */

/* A user name for a log line: every blank, quote and control byte escaped. */
static char *
user_esc(char *dst, size_t dstsz, const char *user, size_t len)
{
	if (len > (dstsz - 1) / 4)
		len = (dstsz - 1) / 4;
	if (strnvisx(dst, dstsz, user, len, VIS_OCTAL | VIS_CSTYLE | VIS_WHITE |
	    VIS_DQ) == -1)
		strlcpy(dst, "?", dstsz);
	return dst;
}

static void
exchange_end(struct auth_session *a)
{
	a->step = STEP_IDLE;
	a->user_bad = 0;
	explicit_bzero(a->user, sizeof(a->user));
}

/* ---- outcomes ------------------------------------------------------------------------ */

static void
auth_log(struct session *s, const char *status, const char *why)
{
	char esc[AUTH_USER_MAX * 4 + 1];
	struct auth_session *a = s->auth;

	user_esc(esc, sizeof(esc), a->user, strlen(a->user));
	log_info("session=%08x client=%s status=%s mech=%s user=\"%s\"%s%s",
	    s->id, s->addr, status, a->mech, esc, why ? " reason=" : "", why ? why : "");
}

static void
delay_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)ev;
	exchange_end(s->auth);
	if (s->state == S_CLOSING)
		return;
	session_reply(s, "535 5.7.8 Authentication credentials invalid");
	session_resume(s);
}

/* Count and log a failed attempt. */
static void
fail_count(struct session *s, const char *why)
{
	struct auth_session *a = s->auth;
	char esc[AUTH_USER_MAX * 4 + 1];
	uint32_t n;

	smtpd_stats.auth_failures++;
	n = fail_note(s->addr);
	user_esc(esc, sizeof(esc), a->user, strlen(a->user));
	log_info("session=%08x client=%s status=auth-failed mech=%s user=\"%s\" "
	    "reason=%s failures=%u", s->id, s->addr, a->mech, esc, why, n);
	if (env->conf->auth_max_failures && n == env->conf->auth_max_failures)
		log_info("session=%08x client=%s status=auth-blocked failures=%u "
		    "window=%ds", s->id, s->addr, n, AUTH_FAILURE_WINDOW);
}

/* A failed attempt: counted, logged, and answered 535 after the delay. */
static void
auth_fail(struct session *s, const char *why)
{
	struct auth_session *a = s->auth;
	struct timeval tv = { env->conf->auth_failure_delay, 0 };

	fail_count(s, why);
	if (tv.tv_sec == 0) {
		exchange_end(a);
		session_reply(s, "535 5.7.8 Authentication credentials invalid");
		return;
	}
	a->step = STEP_DELAY;
	evtimer_add(a->delay_ev, &tv);
}

/* Ask mailrootd; `pass` is scrubbed by the caller. */
static void
auth_check(struct session *s, const char *pass)
{
	struct auth_session *a = s->auth;
	struct mbuf m;

	if (a->user_bad || a->user[0] == '\0') {
		auth_fail(s, a->user_bad ? "bad-user-name" : "empty-user-name");
		return;
	}
	if (pass[0] == '\0') {
		auth_fail(s, "empty-password");
		return;
	}
	m_init(&m, SUPERVISOR_AUTH_CHECK, s->id);
	m_add_str(&m, a->user);
	m_add_str(&m, pass);		/* last: the mbuf grows before it is copied */
	if (ipc_send(env->parent, &m) == -1) {
		auth_log(s, "auth-tempfail", "supervisor-unavailable");
		exchange_end(a);
		session_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	}
	a->step = STEP_CHECKING;
}

int
auth_result(struct ipc_msg *msg)
{
	struct session *s = session_find(msg->id);
	struct auth_session *a;
	uint32_t r;
	int bad = 0;

	if (m_get_u32(msg, &r) == -1 || m_end(msg) == -1) {
		r = AUTH_RESULT_TEMPFAIL;
		bad = -1;
	}
	if (s == NULL || (a = s->auth) == NULL || a->step != STEP_CHECKING) {
		log_debug("AUTH result for session %08x, which no longer waits", msg->id);
		return bad;
	}
	if (s->state == S_CLOSING) {
		exchange_end(a);
		return bad;
	}
	/*
	 * Guesses sent at once on parallel connections all pass the check at
	 * AUTH: once the address is blocked, the rest get no verdict.
	 */
	if (auth_blocked(s)) {
		exchange_end(a);
		log_info("session=%08x client=%s status=refused reason=auth-failures",
		    s->id, s->addr);
		session_reply(s, "421 4.7.0 %s Too many authentication failures, "
		    "closing connection", env->conf->hostname);
		session_end(s);
		return bad;
	}
	switch (r) {
	case AUTH_RESULT_OK:
		strlcpy(s->auth_user, a->user, sizeof(s->auth_user));
		auth_log(s, "authenticated", NULL);
		exchange_end(a);
		session_reply(s, "235 2.7.0 Authentication successful");
		break;
	case AUTH_RESULT_FAIL:
		auth_fail(s, "credentials");
		break;
	default:
		auth_log(s, "auth-tempfail", "supervisor");
		exchange_end(a);
		session_reply(s, "454 4.7.0 Temporary authentication failure");
		break;
	}
	if (a->step == STEP_IDLE)
		session_resume(s);
	return bad;
}

/* ---- the mechanisms --------------------------------------------------------------- */

/* RFC 4616 2: message = [authzid] UTF8NUL authcid UTF8NUL passwd. */
static void
plain_response(struct session *s, const unsigned char *buf, size_t len)
{
	struct auth_session *a = s->auth;
	char pass[AUTH_PASS_MAX + 1];
	struct sasl_plain pl;

	if (sasl_plain_split(buf, len, &pl) == -1) {
		exchange_end(a);
		session_reply(s, "501 5.5.2 Malformed PLAIN response");
		return;
	}
	if (pl.clen > AUTH_USER_MAX) {
		a->user_bad = 1;
		pl.clen = AUTH_USER_MAX;
	}
	memcpy(a->user, pl.authcid, pl.clen);
	a->user[pl.clen] = '\0';
	if (pl.plen > AUTH_PASS_MAX) {
		auth_fail(s, "password-too-long");
		return;
	}
	/* We do not act for others: an authzid must be the authcid itself. */
	if (pl.zlen > 0 && (a->user_bad || pl.zlen != pl.clen ||
	    memcmp(pl.authzid, pl.authcid, pl.clen) != 0)) {
		auth_fail(s, "authzid");
		return;
	}
	memcpy(pass, pl.passwd, pl.plen);
	pass[pl.plen] = '\0';
	auth_check(s, pass);
	explicit_bzero(pass, sizeof(pass));
}

static void
login_user(struct session *s, const unsigned char *buf, size_t len)
{
	struct auth_session *a = s->auth;

	if (len > AUTH_USER_MAX || memchr(buf, '\0', len) != NULL)
		a->user_bad = 1;
	if (len > AUTH_USER_MAX)
		len = AUTH_USER_MAX;
	memcpy(a->user, buf, len);
	a->user[len] = '\0';
	a->step = STEP_LOGIN_PASS;
	session_reply(s, "334 UGFzc3dvcmQ6");	/* "Password:" */
}

static void
login_pass(struct session *s, const unsigned char *buf, size_t len)
{
	char pass[AUTH_PASS_MAX + 1];

	if (len > AUTH_PASS_MAX) {
		auth_fail(s, "password-too-long");
		return;
	}
	if (memchr(buf, '\0', len) != NULL) {
		auth_fail(s, "nul-in-password");
		return;
	}
	memcpy(pass, buf, len);
	pass[len] = '\0';
	auth_check(s, pass);
	explicit_bzero(pass, sizeof(pass));
}

/* One response (a line, or the initial response) of the current step. */
static void
auth_response(struct session *s, const char *line, size_t len)
{
	struct auth_session *a = s->auth;
	unsigned char buf[SASL_DECODED_MAX];
	int n;

	/* RFC 4954 4: "*" cancels the exchange. */
	if (len == 1 && line[0] == '*') {
		exchange_end(a);
		session_reply(s, "501 5.0.0 Authentication cancelled");
		return;
	}
	if ((n = sasl_b64_decode(line, len, buf, sizeof(buf))) == -1) {
		exchange_end(a);
		session_reply(s, "501 5.5.2 Cannot decode the base64 response");
		return;
	}
	switch (a->step) {
	case STEP_PLAIN:
		if ((size_t)n > PLAIN_MAX) {
			a->user_bad = 1;
			auth_fail(s, "response-too-long");
		} else
			plain_response(s, buf, (size_t)n);
		break;
	case STEP_LOGIN_USER:
		login_user(s, buf, (size_t)n);
		break;
	case STEP_LOGIN_PASS:
		login_pass(s, buf, (size_t)n);
		break;
	default:
		break;
	}
	explicit_bzero(buf, (size_t)n);
}

/* ---- the command and its continuation lines ------------------------------------------ */

static struct auth_session *
auth_session_get(struct session *s)
{
	struct auth_session *a;

	if (s->auth)
		return s->auth;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	if ((a->delay_ev = evtimer_new(env->base, delay_cb, s)) == NULL) {
		free(a);
		return NULL;
	}
	s->auth = a;
	return a;
}

/* AUTH mechanism [initial-response] (RFC 4954 4). */
void
auth_command(struct session *s, struct smtp_cmd *c)
{
	const struct listener_conf *l = auth_listener(s);
	struct auth_session *a;
	char *mech = c->arg, *ir = NULL, *sp;

	if (l == NULL || !(l->flags & LISTEN_AUTH)) {
		session_reply(s, "502 5.5.1 Command not implemented");
		goto done;
	}
	if (s->state == S_CONNECTED || !s->esmtp) {
		session_reply(s, "503 5.5.1 Send EHLO first");
		goto done;
	}
	if (s->state != S_HELO) {
		session_reply(s, "503 5.5.1 AUTH is not allowed during a mail transaction");
		goto done;
	}
	if (s->auth_user[0]) {
		session_reply(s, "503 5.5.1 Already authenticated");
		goto done;
	}
	if (!auth_offered(s)) {
		session_reply(s, "538 5.7.11 Encryption required for requested "
		    "authentication mechanism");
		goto done;
	}
	if (auth_blocked(s)) {
		log_info("session=%08x client=%s status=refused reason=auth-failures",
		    s->id, s->addr);
		session_reply(s, "421 4.7.0 %s Too many authentication failures, "
		    "closing connection", env->conf->hostname);
		session_end(s);
		goto done;
	}
	if ((sp = strchr(mech, ' ')) != NULL) {
		*sp = '\0';
		ir = sp + 1;
		if (*ir == '\0' || strchr(ir, ' ') != NULL) {
			session_reply(s, "501 5.5.2 Syntax error: AUTH mechanism "
			    "[initial-response]");
			goto done;
		}
	}
	if ((a = auth_session_get(s)) == NULL) {
		session_reply(s, "454 4.7.0 Temporary authentication failure");
		goto done;
	}
	exchange_end(a);
	if (strcasecmp(mech, "PLAIN") == 0) {
		a->mech = "PLAIN";
		a->step = STEP_PLAIN;
		if (ir == NULL)
			session_reply(s, "334 ");
		else	/* RFC 4954 4: "=" is an empty initial response */
			auth_response(s, ir, strcmp(ir, "=") == 0 ? 0 : strlen(ir));
	} else if (strcasecmp(mech, "LOGIN") == 0) {
		a->mech = "LOGIN";
		a->step = STEP_LOGIN_USER;
		if (ir == NULL)
			session_reply(s, "334 VXNlcm5hbWU6");	/* "Username:" */
		else
			auth_response(s, ir, strcmp(ir, "=") == 0 ? 0 : strlen(ir));
	} else
		session_reply(s, "504 5.5.4 Unrecognized authentication type");
done:
	explicit_bzero(c->arg, sizeof(c->arg));
}

enum auth_input
auth_input(struct session *s, struct evbuffer *in)
{
	struct auth_session *a = s->auth;
	size_t avail, n, linelen, consumed;
	unsigned char *p, *lf;

	switch (a->step) {
	case STEP_IDLE:
		return AUTH_INPUT_NONE;
	case STEP_CHECKING:
	case STEP_DELAY:
		return AUTH_INPUT_WAIT;
	default:
		break;
	}
	avail = evbuffer_get_length(in);
	n = avail < AUTH_LINE_MAX + 2 ? avail : AUTH_LINE_MAX + 2;
	if (n == 0 || (p = evbuffer_pullup(in, (ssize_t)n)) == NULL)
		return AUTH_INPUT_WAIT;
	if ((lf = memchr(p, '\n', n)) == NULL) {
		if (n < AUTH_LINE_MAX + 2)
			return AUTH_INPUT_PARTIAL;
		/* Too long: drop what we have, the rest up to LF is discarded. */
		consumed = n;
		s->discarding = 1;
		linelen = n;
	} else {
		consumed = (size_t)(lf - p) + 1;
		linelen = consumed - 1;
		if (linelen > 0 && p[linelen - 1] == '\r')
			linelen--;
	}
	s->bytes_in += consumed;
	if (linelen > AUTH_LINE_MAX) {
		/* RFC 4954 6 */
		exchange_end(a);
		session_reply(s, "500 5.5.6 Authentication Exchange line is too long");
	} else
		auth_response(s, (const char *)p, linelen);
	/* The line may hold a password: scrub it before libevent frees it. */
	explicit_bzero(p, consumed);
	evbuffer_drain(in, consumed);
	return AUTH_INPUT_DONE;
}

void
auth_session_free(struct session *s)
{
	struct auth_session *a = s->auth;

	if (a == NULL)
		return;
	/*
	 * Gone before the verdict: a failure, or a guesser that hangs up at
	 * once would have passwords checked without end, never counted.
	 */
	if (a->step == STEP_CHECKING)
		fail_count(s, "disconnected");
	event_free(a->delay_ev);
	explicit_bzero(a, sizeof(*a));
	free(a);
	s->auth = NULL;
}
