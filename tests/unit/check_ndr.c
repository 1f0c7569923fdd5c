/*
 * check_ndr.c - unit tests of queued/queued_ndr.c: the MIME structure of a
 * failure report and a delay notice (parts, their types and order, the
 * per-message and per-recipient fields), RET=FULL vs RET=HDRS, and the
 * header section scanner behind RET=HDRS and the hop count.
 */
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <check.h>

#include "dsn.h"
#include "envelope.h"
#include "queued_ndr.h"
#include "util.h"

#define ORIG_ID	"0005f3c1a2b3c4d5e6f7"
#define NDR_ID	"0005f3c1a2b3c4d5e6f8"

static const char original[] =
    "Received: from a.example by b.example; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    "received: from c.example\r\n"
    "\tby d.example; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    "X-Not-Received: Received: no\r\n"
    "Subject: the original\r\n"
    "\r\n"
    "Received: in the body does not count\r\n"
    "the body line\r\n";

static int
memfile(const char *data, size_t len)
{
	int fd = memfd_create("t", 0);

	ck_assert_int_ne(fd, -1);
	if (len > 0)
		ck_assert_int_eq(write_all(fd, data, len), 0);
	return fd;
}

/* The whole of fd as a NUL-terminated string. */
static char *
slurp(int fd)
{
	off_t len = lseek(fd, 0, SEEK_END);
	char *buf = malloc((size_t)len + 1);

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(pread(fd, buf, (size_t)len, 0), len);
	buf[len] = '\0';
	return buf;
}

static void
fake_envelope(struct envelope *e, int ret)
{
	memset(e, 0, sizeof(*e));
	strlcpy(e->id, ORIG_ID, sizeof(e->id));
	e->sender = strdup("alice@example.test");
	e->arrival = 1763900000;
	e->ret = ret;
	e->envid = strdup("QQ+2B123");
	ck_assert_int_eq(envelope_add_rcpt(e, "bob@remote.example", RCPT_FAILED), 0);
	ck_assert_int_eq(envelope_rcpt_dsn(e, DSN_NOTIFY_FAILURE, "rfc822;b+2Bx@remote.example"), 0);
	ck_assert_int_eq(envelope_add_rcpt(e, "carol@remote.example", RCPT_FAILED), 0);
}

static char *
compose(const struct envelope *e, enum ndr_kind kind)
{
	struct ndr_rcpt r[2] = {
		{ "bob@remote.example", "rfc822;b+2Bx@remote.example", "5.1.1",
		  "mx.remote.example[192.0.2.1]", "550 5.1.1 no such user" },
		{ "carol@remote.example", NULL, "4.4.7", NULL,
		  "delivery time expired" },
	};
	struct ndr_info ni;
	char why[128], *out;
	int in = memfile(original, sizeof(original) - 1), fd = memfile("", 0);

	memset(&ni, 0, sizeof(ni));
	ni.hostname = "mx.example.test";
	ni.id = NDR_ID;
	ni.orig = e;
	ni.content_fd = in;
	ni.kind = kind;
	ni.now = 1763990000;
	ni.last_attempt = 1763980000;
	ni.retry_until = 1764072800;
	ni.rcpts = r;
	ni.nrcpts = 2;
	ck_assert_msg(ndr_compose(&ni, fd, why, sizeof(why)) == 0, "%s", why);
	out = slurp(fd);
	close(in);
	close(fd);
	return out;
}

/* Position of `needle` in `hay` (asserted present). */
static size_t
at(const char *hay, const char *needle)
{
	const char *p = strstr(hay, needle);

	ck_assert_msg(p != NULL, "missing \"%s\" in:\n%s", needle, hay);
	return (size_t)(p - hay);
}

static size_t
count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (; (hay = strstr(hay, needle)) != NULL; hay++)
		n++;
	return n;
}

START_TEST(test_failure_full)
{
	struct envelope e;
	char *m, *hdr_end;
	const char *b = "--=_" NDR_ID ".report";

	fake_envelope(&e, DSN_RET_NONE);
	m = compose(&e, NDR_FAILED);
	hdr_end = strstr(m, "\r\n\r\n");
	ck_assert_ptr_nonnull(hdr_end);
	/* the message header */
	ck_assert_uint_lt(at(m, "From: Mail Delivery System <MAILER-DAEMON@mx.example.test>\r\n"),
	    (size_t)(hdr_end - m));
	ck_assert_uint_lt(at(m, "To: <alice@example.test>\r\n"), (size_t)(hdr_end - m));
	ck_assert_uint_lt(at(m, "Auto-Submitted: auto-replied\r\n"), (size_t)(hdr_end - m));
	ck_assert_uint_lt(at(m, "MIME-Version: 1.0\r\n"), (size_t)(hdr_end - m));
	ck_assert_uint_lt(at(m, "Message-ID: <" NDR_ID ".report@mx.example.test>\r\n"),
	    (size_t)(hdr_end - m));
	ck_assert_uint_lt(at(m, "Content-Type: multipart/report; report-type=delivery-status;"
	    "\r\n\tboundary=\"=_" NDR_ID ".report\"\r\n"), (size_t)(hdr_end - m));
	/* three parts, in order, and the closing boundary */
	ck_assert_uint_eq(count(m, b), 4);
	ck_assert_uint_eq(count(m, "--=_" NDR_ID ".report--\r\n"), 1);
	ck_assert_uint_lt(at(m, "Content-Type: text/plain"),
	    at(m, "Content-Type: message/delivery-status"));
	ck_assert_uint_lt(at(m, "Content-Type: message/delivery-status"),
	    at(m, "Content-Type: message/rfc822"));
	/* per message, then per recipient */
	ck_assert_uint_lt(at(m, "\r\n\r\nReporting-MTA: dns; mx.example.test\r\n"),
	    at(m, "Original-Envelope-Id: QQ+123\r\n"));
	at(m, "Arrival-Date: ");
	ck_assert_uint_lt(at(m, "\r\n\r\nOriginal-Recipient: rfc822;b+x@remote.example\r\n"
	    "Final-Recipient: rfc822; bob@remote.example\r\nAction: failed\r\n"
	    "Status: 5.1.1\r\nRemote-MTA: dns; mx.remote.example\r\n"
	    "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\nLast-Attempt-Date: "),
	    at(m, "\r\n\r\nFinal-Recipient: rfc822; carol@remote.example\r\n"
	    "Action: failed\r\nStatus: 4.4.7\r\n"));
	ck_assert_uint_eq(count(m, "Will-Retry-Until"), 0);
	/* the whole original, body too */
	at(m, "Content-Type: message/rfc822\r\n\r\nReceived: from a.example");
	at(m, "the body line\r\n\r\n--=_" NDR_ID ".report--\r\n");
	free(m);
	envelope_free(&e);
}
END_TEST

START_TEST(test_failure_hdrs_and_delay)
{
	struct envelope e;
	char *m;

	fake_envelope(&e, DSN_RET_HDRS);
	m = compose(&e, NDR_FAILED);
	at(m, "Content-Type: text/rfc822-headers\r\n\r\nReceived: from a.example");
	at(m, "Subject: the original\r\n\r\n\r\n--=_" NDR_ID ".report--\r\n");
	ck_assert_uint_eq(count(m, "the body line"), 0);
	ck_assert_uint_eq(count(m, "message/rfc822"), 0);
	free(m);
	envelope_free(&e);

	/* a delay notice returns the headers even without RET */
	fake_envelope(&e, DSN_RET_NONE);
	m = compose(&e, NDR_DELAYED);
	at(m, "Subject: Delayed Mail");
	at(m, "Action: delayed\r\n");
	at(m, "Will-Retry-Until: ");
	ck_assert_uint_eq(count(m, "Action: failed"), 0);
	at(m, "Content-Type: text/rfc822-headers\r\n");
	ck_assert_uint_eq(count(m, "the body line"), 0);
	free(m);
	envelope_free(&e);
}
END_TEST

START_TEST(test_header_scan)
{
	static const struct {
		const char	*text;
		ssize_t		 hlen;
		int		 received;
	} t[] = {
		{ "Subject: x\r\n\r\nbody\r\n", 14, 0 },
		{ "Subject: x\n\nbody\n", 12, 0 },
		{ "\r\nbody\r\n", 2, 0 },
		{ "\nReceived: body\n", 1, 0 },
		{ "Received: a\r\nReceived: b\r\n", 26, 2 },	/* no body */
		{ "", 0, 0 },
		{ "RECEIVED: a\r\n b\r\nX: Received: c\r\n\r\nReceived: d\r\n", 35, 1 },
	};
	size_t i;
	int fd;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		fd = memfile(t[i].text, strlen(t[i].text));
		ck_assert_msg(ndr_header_length(fd) == t[i].hlen, "case %zu: %zd", i,
		    ndr_header_length(fd));
		ck_assert_msg(ndr_count_received(fd) == t[i].received, "case %zu: %d", i,
		    ndr_count_received(fd));
		close(fd);
	}
	fd = memfile(original, sizeof(original) - 1);
	ck_assert_int_eq(ndr_count_received(fd), 2);
	close(fd);
}
END_TEST

static Suite *
ndr_suite(void)
{
	Suite *s = suite_create("ndr");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_failure_full);
	tcase_add_test(tc, test_failure_hdrs_and_delay);
	tcase_add_test(tc, test_header_scan);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(ndr_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
