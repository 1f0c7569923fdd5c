/*
 * check_deliverd_session.c - deliverd's SMTP client (deliverd_session.c,
 * with the pool, routing and content code) against a scripted server in
 * the same event loop on 127.0.0.1: per-recipient results, PIPELINING and
 * not, HELO after a 5xx to EHLO, SIZE and SMTPUTF8 refusals, MAIL refused,
 * hostile servers (a huge line, replies nobody asked for, a 554 greeting,
 * silence), connection reuse with RSET.  The batch goes in as queued would
 * send it; deliverd_report() here collects what would go back.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <check.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"
#include "daemon.h"
#include "deliverd.h"
#include "envelope.h"
#include "log.h"

/* ---- the scripted server ------------------------------------------------------ */

struct peer {
	const char	*greeting;	/* NULL: say nothing */
	const char	*ehlo;		/* the whole reply, CRLF-joined */
	const char	*helo;
	const char	*mail;
	const char	*data;
	const char	*dot;
	int		 huge;		/* greet with 1 MB without a line end */
	int		 extra;		/* two replies to MAIL */
	/* what it saw */
	int		 conns;
	int		 messages;
	int		 rsets;
	char		 log[8192];	/* the commands, one a line */
};

static struct peer P;
static struct event_base *base;
static uint16_t port;

struct pconn {
	struct bufferevent *bev;
	int		 in_data;
	size_t		 bdat_left;	/* octets of a BDAT chunk to come */
};

static char bdat_got[256];	/* the last chunk, as received */
static size_t bdat_len;

static void
say(struct pconn *c, const char *r)
{
	evbuffer_add_printf(bufferevent_get_output(c->bev), "%s\r\n", r);
}

static const char *
rcpt_reply(const char *line)
{
	if (strstr(line, "bad@"))
		return "550 5.1.1 no such user";
	if (strstr(line, "temp@"))
		return "451 4.2.0 try later";
	return "250 2.1.5 ok";
}

static void
peer_read(struct bufferevent *bev, void *arg)
{
	struct pconn *c = arg;
	char *line;
	size_t n;

	for (;;) {
		struct evbuffer *in = bufferevent_get_input(bev);

		if (c->bdat_left > 0) {
			n = evbuffer_get_length(in);
			if (n == 0)
				return;
			if (n > c->bdat_left)
				n = c->bdat_left;
			if (bdat_len + n <= sizeof(bdat_got))
				evbuffer_copyout(in, bdat_got + bdat_len, n);
			bdat_len += n;
			evbuffer_drain(in, n);
			if ((c->bdat_left -= n) == 0) {
				P.messages++;
				say(c, "250 2.0.0 chunk queued");
			}
			continue;
		}
		if ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF)) == NULL)
			return;
		if (c->in_data) {
			if (strcmp(line, ".") == 0) {
				c->in_data = 0;
				P.messages++;
				say(c, P.dot ? P.dot : "250 2.0.0 queued");
			}
			free(line);
			continue;
		}
		(void)strlcat(P.log, line, sizeof(P.log));
		(void)strlcat(P.log, "\n", sizeof(P.log));
		if (strncasecmp(line, "EHLO", 4) == 0)
			say(c, P.ehlo ? P.ehlo : "250-peer\r\n250-PIPELINING\r\n250-SIZE 1000\r\n"
			    "250-8BITMIME\r\n250-DSN\r\n250 SMTPUTF8");
		else if (strncasecmp(line, "HELO", 4) == 0)
			say(c, P.helo ? P.helo : "250 peer");
		else if (strncasecmp(line, "MAIL", 4) == 0) {
			say(c, P.mail ? P.mail : "250 2.1.0 ok");
			if (P.extra)
				say(c, "250 2.1.0 again");
		} else if (strncasecmp(line, "RCPT", 4) == 0)
			say(c, rcpt_reply(line));
		else if (strcasecmp(line, "DATA") == 0) {
			say(c, P.data ? P.data : "354 go ahead");
			c->in_data = P.data == NULL || strncmp(P.data, "354", 3) == 0;
		} else if (strncasecmp(line, "BDAT ", 5) == 0) {
			c->bdat_left = strtoul(line + 5, NULL, 10);
			bdat_len = 0;
		} else if (strcasecmp(line, "RSET") == 0) {
			P.rsets++;
			say(c, "250 2.0.0 ok");
		} else if (strcasecmp(line, "QUIT") == 0) {
			say(c, "221 bye");
			bufferevent_flush(bev, EV_WRITE, BEV_FINISHED);
		} else
			say(c, "500 what");
		free(line);
	}
}

static void
peer_event(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	bufferevent_free(bev);
	free(arg);
}

static void
peer_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
    void *arg)
{
	struct pconn *c = calloc(1, sizeof(*c));
	char *big;

	(void)l;
	(void)sa;
	(void)salen;
	(void)arg;
	P.conns++;
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->bev, peer_read, NULL, peer_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (P.huge) {
		big = malloc(1024 * 1024);
		memset(big, 'x', 1024 * 1024);
		memcpy(big, "220 ", 4);
		evbuffer_add(bufferevent_get_output(c->bev), big, 1024 * 1024);
		free(big);
	} else if (P.greeting)
		say(c, P.greeting);
}

/* ---- deliverd's side ------------------------------------------------------------ */

#define MAX_RESULTS	64
static struct job_rcpt results[MAX_RESULTS];
static size_t nresults;
static int outstanding;

void
deliverd_report(struct job *j)
{
	size_t i;

	static char addrs[MAX_RESULTS][SMTP_PATH_MAX + 1];

	for (i = 0; i < j->nrcpts && nresults < MAX_RESULTS; i++) {
		results[nresults] = j->rcpts[i];
		(void)strlcpy(addrs[nresults], j->rcpts[i].addr, sizeof(addrs[0]));
		results[nresults].addr = addrs[nresults];	/* the job is freed next */
		results[nresults].orcpt = NULL;
		nresults++;
	}
	if (--outstanding == 0)
		event_base_loopexit(base, NULL);
}

static const struct job_rcpt *
result_of(const char *addr)
{
	size_t i;

	for (i = 0; i < nresults; i++)
		if (strcmp(results[i].addr, addr) == 0)
			return &results[i];
	ck_abort_msg("no result for %s", addr);
	return NULL;
}

/* Batch fields a test may set before submit(). */
static const char *B_envid = "", *R_orcpt = "";
static uint32_t B_ret, B_body, R_notify;

static void
setup(void)
{
	static const char text[] = "hostname mr.test\ndefault-domain example.org\n";
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	struct evconnlistener *l;
	struct config *c;
	FILE *fp;

	memset(&P, 0, sizeof(P));
	P.greeting = "220 peer ESMTP";
	nresults = 0;
	outstanding = 0;
	B_envid = R_orcpt = "";
	B_ret = B_body = R_notify = 0;
	log_init("check_deliverd_session", 1);
	ck_assert_ptr_nonnull(base = event_base_new());
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = evconnlistener_new_bind(base, peer_accept, NULL, LEV_OPT_CLOSE_ON_FREE |
	    LEV_OPT_REUSEABLE, 16, (struct sockaddr *)&sin, sizeof(sin));
	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin,
	    &slen), 0);
	port = ntohs(sin.sin_port);
	ck_assert_ptr_nonnull(fp = fmemopen((void *)text, sizeof(text) - 1, "r"));
	ck_assert_ptr_nonnull(c = config_parse(fp, "test.conf", NULL, NULL));
	fclose(fp);
	c->smart_host.literal = 1;
	(void)strlcpy(c->smart_host.host, "127.0.0.1", sizeof(c->smart_host.host));
	c->smart_host.port = port;
	c->outbound_tls = TLS_POLICY_NO;
	c->outbound_timeout = 2;
	c->outbound_connect_timeout = 2;
	env->base = base;
	env->conf = c;
	tls_client_init();
}

/* Submit a batch of `msg` for the NULL-terminated recipients. */
static void
submit(const char *msg, uint64_t size, int smtputf8, const char *const *rcpts)
{
	struct deliver_rcpt r[16];
	struct deliver_batch b;
	char path[] = "/tmp/check_deliverd_session.XXXXXX";
	struct job *j;
	int fd;
	size_t n;

	for (n = 0; rcpts[n] != NULL; n++) {
		r[n].index = (uint32_t)n;
		r[n].addr = rcpts[n];
		r[n].notify = R_notify;
		r[n].orcpt = R_orcpt;
	}
	memset(&b, 0, sizeof(b));
	b.qid = "0123456789ABCDEF";
	b.sender = "s@example.org";
	b.domain = "example.com";
	b.envid = B_envid;
	b.ret = B_ret;
	b.body = B_body;
	b.smtputf8 = (uint32_t)smtputf8;
	b.size = size;
	b.nrcpts = n;
	b.rcpts = r;
	ck_assert_int_ne(fd = mkstemp(path), -1);
	unlink(path);
	ck_assert_int_eq(write(fd, msg, strlen(msg)), (ssize_t)strlen(msg));
	ck_assert_ptr_nonnull(j = job_new(&b, 1, fd));
	route_decide(env->conf, j->domain, &j->route);
	outstanding++;
	pool_submit(j);
}

static void
run(void)
{
	struct timeval tv = { 10, 0 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	ck_assert_int_eq(outstanding, 0);
}

static const char *const three[] = { "a@example.com", "bad@example.com",
	"temp@example.com", NULL };
static const char *const one[] = { "a@example.com", NULL };

static void
check_three(void)
{
	ck_assert_uint_eq(nresults, 3);
	ck_assert_uint_eq(result_of("a@example.com")->status, DELIVER_OK);
	ck_assert_uint_eq(result_of("a@example.com")->code, 250);
	ck_assert_str_eq(result_of("a@example.com")->host, "127.0.0.1[127.0.0.1]");
	ck_assert_uint_eq(result_of("bad@example.com")->status, DELIVER_PERMFAIL);
	ck_assert_str_eq(result_of("bad@example.com")->enhanced, "5.1.1");
	ck_assert_uint_eq(result_of("temp@example.com")->status, DELIVER_TEMPFAIL);
	ck_assert_uint_eq(result_of("temp@example.com")->code, 451);
}

START_TEST(test_pipelined)
{
	submit("Subject: x\r\n\r\nhi\r\n", 20, 0, three);
	run();
	check_three();
	ck_assert_int_eq(P.messages, 1);
	ck_assert(strstr(P.log, "MAIL FROM:<s@example.org> SIZE=20\n") != NULL);
}
END_TEST

START_TEST(test_not_pipelined)
{
	P.ehlo = "250-peer\r\n250 8BITMIME";
	submit("Subject: x\r\n\r\nhi\r\n", 20, 0, three);
	run();
	check_three();
	ck_assert(strstr(P.log, "MAIL FROM:<s@example.org>\n") != NULL);
}
END_TEST

START_TEST(test_helo_after_ehlo_5xx)
{
	P.ehlo = "502 5.5.1 no ESMTP here";
	submit("x\r\n", 3, 0, one);
	run();
	ck_assert_uint_eq(result_of("a@example.com")->status, DELIVER_OK);
	ck_assert(strstr(P.log, "HELO mr.test\n") != NULL);
}
END_TEST

START_TEST(test_size_refused)
{
	submit("x\r\n", 5000, 0, one);
	run();
	ck_assert_uint_eq(result_of("a@example.com")->status, DELIVER_PERMFAIL);
	ck_assert_str_eq(result_of("a@example.com")->enhanced, "5.3.4");
	ck_assert(strstr(P.log, "MAIL") == NULL);
}
END_TEST

START_TEST(test_smtputf8_missing)
{
	P.ehlo = "250-peer\r\n250 PIPELINING";
	submit("x\r\n", 3, 1, one);
	run();
	ck_assert_uint_eq(result_of("a@example.com")->status, DELIVER_PERMFAIL);
	ck_assert_str_eq(result_of("a@example.com")->enhanced, "5.6.7");
}
END_TEST

START_TEST(test_mail_refused)
{
	P.mail = "553 5.7.1 sender refused";
	submit("x\r\n", 3, 0, three);
	run();
	ck_assert_uint_eq(nresults, 3);
	ck_assert_uint_eq(result_of("a@example.com")->status, DELIVER_PERMFAIL);
	ck_assert_uint_eq(result_of("temp@example.com")->code, 553);
}
END_TEST

START_TEST(test_mail_tempfail)
{
	P.mail = "451 4.3.0 busy";
	submit("x\r\n", 3, 0, one);
	run();
	ck_assert_uint_eq(result_of("a@example.com")->status, DELIVER_TEMPFAIL);
	ck_assert_uint_eq(result_of("a@example.com")->code, 451);
}
END_TEST

START_TEST(test_data_refused)
{
	P.dot = "554 5.6.0 content refused";
	submit("x\r\n", 3, 0, three);
	run();
	ck_assert_uint_eq(result_of("a@example.com")->status, DELIVER_PERMFAIL);
	ck_assert_str_eq(result_of("a@example.com")->enhanced, "5.6.0");
	/* the recipients refused at RCPT keep their own replies */
	ck_assert_str_eq(result_of("bad@example.com")->enhanced, "5.1.1");
	ck_assert_uint_eq(result_of("temp@example.com")->code, 451);
}
END_TEST

START_TEST(test_greeting_554)
{
	P.greeting = "554 5.3.2 not now";
	submit("x\r\n", 3, 0, one);
	run();
	/* not delivered here, maybe elsewhere: deferred */
	ck_assert_uint_eq(result_of("a@example.com")->status, DELIVER_TEMPFAIL);
	ck_assert_str_eq(result_of("a@example.com")->enhanced, "4.3.2");
}
END_TEST

START_TEST(test_huge_line)
{
	P.huge = 1;
	submit("x\r\n", 3, 0, one);
	run();
	ck_assert_uint_eq(result_of("a@example.com")->status, DELIVER_TEMPFAIL);
	ck_assert(strstr(result_of("a@example.com")->text, "too long") != NULL);
}
END_TEST

START_TEST(test_unsolicited_reply)
{
	P.extra = 1;
	P.ehlo = "250 peer";	/* no PIPELINING: one reply per command */
	submit("x\r\n", 3, 0, one);
	run();
	ck_assert_uint_eq(result_of("a@example.com")->status, DELIVER_TEMPFAIL);
}
END_TEST

START_TEST(test_silence)
{
	P.greeting = NULL;
	submit("x\r\n", 3, 0, one);
	run();
	ck_assert_uint_eq(result_of("a@example.com")->status, DELIVER_TEMPFAIL);
	ck_assert(strstr(result_of("a@example.com")->text, "timeout") != NULL);
}
END_TEST

START_TEST(test_connect_refused)
{
	env->conf->smart_host.port = 1;	/* nothing listens there */
	submit("x\r\n", 3, 0, one);
	run();
	ck_assert_uint_eq(result_of("a@example.com")->status, DELIVER_TEMPFAIL);
	ck_assert_str_eq(result_of("a@example.com")->enhanced, "4.4.1");
}
END_TEST

/* Five batches, one connection allowed, two messages on it: RSET, QUIT. */
START_TEST(test_reuse)
{
	int i;

	env->conf->max_connections_per_domain = 1;
	env->conf->max_messages_per_connection = 2;
	for (i = 0; i < 5; i++)
		submit("x\r\n", 3, 0, one);
	run();
	ck_assert_uint_eq(nresults, 5);
	for (i = 0; i < 5; i++)
		ck_assert_uint_eq(results[i].status, DELIVER_OK);
	ck_assert_int_eq(P.messages, 5);
	ck_assert_int_eq(P.conns, 3);
	ck_assert_int_eq(P.rsets, 2);
}
END_TEST

START_TEST(test_dsn_and_body)
{
	B_envid = "QQ+2B1";
	B_ret = DSN_RET_HDRS;
	B_body = ENV_BODY_8BITMIME;
	R_notify = DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY;
	R_orcpt = "rfc822;a@example.com";
	submit("x\r\n", 3, 1, one);
	run();
	ck_assert_uint_eq(result_of("a@example.com")->status, DELIVER_OK);
	ck_assert_msg(strstr(P.log, "MAIL FROM:<s@example.org> SIZE=3 BODY=8BITMIME "
	    "SMTPUTF8 RET=HDRS ENVID=QQ+2B1\n") != NULL, "%s", P.log);
	ck_assert_msg(strstr(P.log, "RCPT TO:<a@example.com> NOTIFY=FAILURE,DELAY "
	    "ORCPT=rfc822;a@example.com\n") != NULL, "%s", P.log);
}
END_TEST

/* Without DSN offered, the parameters stay home. */
START_TEST(test_no_dsn)
{
	P.ehlo = "250-peer\r\n250 PIPELINING";
	B_ret = DSN_RET_FULL;
	R_notify = DSN_NOTIFY_NEVER;
	submit("x\r\n", 3, 0, one);
	run();
	ck_assert_uint_eq(result_of("a@example.com")->status, DELIVER_OK);
	ck_assert(strstr(P.log, "MAIL FROM:<s@example.org>\n") != NULL);
	ck_assert(strstr(P.log, "RCPT TO:<a@example.com>\n") != NULL);
}
END_TEST

static struct remote_domain_conf *
block_for_example_com(void)
{
	struct remote_domain_conf *rd = calloc(1, sizeof(*rd));

	ck_assert_ptr_nonnull(rd);
	(void)strlcpy(rd->pattern, "example.com", sizeof(rd->pattern));
	TAILQ_INSERT_TAIL(&env->conf->remote_domains, rd, entry);
	return rd;
}

/* Credentials never go out in plaintext unless the block says tls no. */
START_TEST(test_auth_needs_tls)
{
	struct remote_domain_conf *rd = block_for_example_com();

	P.ehlo = "250-peer\r\n250 AUTH PLAIN LOGIN";
	(void)strlcpy(rd->auth_user, "user", sizeof(rd->auth_user));
	(void)strlcpy(rd->auth_password, "secret", sizeof(rd->auth_password));
	submit("x\r\n", 3, 0, one);
	run();
	ck_assert_uint_eq(result_of("a@example.com")->status, DELIVER_TEMPFAIL);
	ck_assert(strstr(P.log, "AUTH") == NULL);
	ck_assert(strstr(P.log, "MAIL") == NULL);
}
END_TEST

START_TEST(test_helo_option)
{
	block_for_example_com()->flags = RD_HELO;
	submit("x\r\n", 3, 0, one);
	run();
	ck_assert_uint_eq(result_of("a@example.com")->status, DELIVER_OK);
	ck_assert(strncmp(P.log, "HELO mr.test\n", 13) == 0);
	ck_assert(strstr(P.log, "EHLO") == NULL);
}
END_TEST

/* tls require and a server without STARTTLS: the mail waits, 4.7.5. */
START_TEST(test_tls_required)
{
	env->conf->outbound_tls = TLS_POLICY_REQUIRE;
	submit("x\r\n", 3, 0, one);
	run();
	ck_assert_uint_eq(result_of("a@example.com")->status, DELIVER_TEMPFAIL);
	ck_assert_str_eq(result_of("a@example.com")->enhanced, "4.7.5");
	ck_assert(strstr(P.log, "MAIL") == NULL);
}
END_TEST

/* BINARYMIME goes as one BDAT LAST chunk, octets unchanged (RFC 3030). */
START_TEST(test_binarymime)
{
	static const char msg[] = "Subject: b\r\n\r\n.\nbare\rcr\n";

	P.ehlo = "250-peer\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 BINARYMIME";
	B_body = ENV_BODY_BINARYMIME;
	submit(msg, sizeof(msg) - 1, 0, three);
	run();
	check_three();
	ck_assert_msg(strstr(P.log, "MAIL FROM:<s@example.org> BODY=BINARYMIME\n") != NULL,
	    "%s", P.log);
	ck_assert(strstr(P.log, "DATA") == NULL);
	ck_assert_uint_eq(bdat_len, sizeof(msg) - 1);
	ck_assert(memcmp(bdat_got, msg, sizeof(msg) - 1) == 0);
}
END_TEST

START_TEST(test_binarymime_refused)
{
	B_body = ENV_BODY_BINARYMIME;
	submit("x\r\n", 3, 0, one);
	run();
	ck_assert_uint_eq(result_of("a@example.com")->status, DELIVER_PERMFAIL);
	ck_assert_str_eq(result_of("a@example.com")->enhanced, "5.6.3");
}
END_TEST

static Suite *
session_suite(void)
{
	Suite *s = suite_create("deliverd_session");
	TCase *tc = tcase_create("smtp");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_pipelined);
	tcase_add_test(tc, test_not_pipelined);
	tcase_add_test(tc, test_helo_after_ehlo_5xx);
	tcase_add_test(tc, test_size_refused);
	tcase_add_test(tc, test_smtputf8_missing);
	tcase_add_test(tc, test_mail_refused);
	tcase_add_test(tc, test_mail_tempfail);
	tcase_add_test(tc, test_data_refused);
	tcase_add_test(tc, test_greeting_554);
	tcase_add_test(tc, test_huge_line);
	tcase_add_test(tc, test_unsolicited_reply);
	tcase_add_test(tc, test_silence);
	tcase_add_test(tc, test_connect_refused);
	tcase_add_test(tc, test_reuse);
	tcase_add_test(tc, test_dsn_and_body);
	tcase_add_test(tc, test_no_dsn);
	tcase_add_test(tc, test_auth_needs_tls);
	tcase_add_test(tc, test_helo_option);
	tcase_add_test(tc, test_tls_required);
	tcase_add_test(tc, test_binarymime);
	tcase_add_test(tc, test_binarymime_refused);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(session_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
