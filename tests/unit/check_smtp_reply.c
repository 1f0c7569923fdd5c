/*
 * check_smtp_reply.c - unit tests of common/smtp_reply.c: a table of good
 * and bad server replies, each fed whole, line by line and in every growing
 * prefix (as partial reads deliver them); hostile sizes are refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>

#include "smtp_reply.h"

static const struct {
	const char	*in;
	int		 ok;		/* 1: a whole reply; 0: refused */
	int		 code;
	const char	*enhanced;
	const char	*text;
	size_t		 nlines;
} replies[] = {
	{ "250 OK\r\n", 1, 250, "", "OK", 1 },
	{ "250\r\n", 1, 250, "", "", 1 },
	{ "250 \r\n", 1, 250, "", "", 1 },
	{ "220 mx.example.test ESMTP\n", 1, 220, "", "mx.example.test ESMTP", 1 },
	{ "250 2.1.0 Sender ok\r\n", 1, 250, "2.1.0", "Sender ok", 1 },
	{ "550 5.1.1 <a@b>: no such user\r\n", 1, 550, "5.1.1", "<a@b>: no such user", 1 },
	{ "451 4.3.0\r\n", 1, 451, "4.3.0", "", 1 },
	{ "550 5.123.456 x\r\n", 1, 550, "5.123.456", "x", 1 },
	{ "550 4.1.1 class differs\r\n", 1, 550, "", "4.1.1 class differs", 1 },
	{ "550 5.1 not enhanced\r\n", 1, 550, "", "5.1 not enhanced", 1 },
	{ "550 5.1.1x not enhanced\r\n", 1, 550, "", "5.1.1x not enhanced", 1 },
	{ "550 5.1234.1 too long\r\n", 1, 550, "", "5.1234.1 too long", 1 },
	{ "250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n",
	  1, 250, "", "mx.example.test", 4 },
	{ "550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 third\r\n",
	  1, 550, "5.7.1", "first second third", 3 },
	{ "421-a\r\n421 b\r\n", 1, 421, "", "a b", 2 },
	/* refused */
	{ "25 OK\r\n", 0, 0, NULL, NULL, 0 },
	{ "2500 OK\r\n", 0, 0, NULL, NULL, 0 },
	{ "650 OK\r\n", 0, 0, NULL, NULL, 0 },
	{ "160 OK\r\n", 0, 0, NULL, NULL, 0 },
	{ "260 OK\r\n", 0, 0, NULL, NULL, 0 },
	{ "abc\r\n", 0, 0, NULL, NULL, 0 },
	{ "\r\n", 0, 0, NULL, NULL, 0 },
	{ "250-a\r\n251 b\r\n", 0, 0, NULL, NULL, 0 },	/* codes differ */
	{ "250_a\r\n", 0, 0, NULL, NULL, 0 },
};

static void
check_result(int i, enum smtp_reply_status st, const struct smtp_reply *r)
{
	if (!replies[i].ok) {
		ck_assert_msg(st == SMTP_REPLY_BAD, "case %d accepted", i);
		return;
	}
	ck_assert_msg(st == SMTP_REPLY_DONE, "case %d: status %d", i, st);
	ck_assert_int_eq(r->code, replies[i].code);
	ck_assert_str_eq(r->enhanced, replies[i].enhanced);
	ck_assert_str_eq(r->text, replies[i].text);
	ck_assert_uint_eq(r->nlines, replies[i].nlines);
}

static size_t
case_len(int i)
{
	return strlen(replies[i].in);
}

START_TEST(test_whole)
{
	struct smtp_reply r;
	enum smtp_reply_status st;
	size_t used, len = case_len(_i);

	smtp_reply_init(&r);
	st = smtp_reply_feed(&r, replies[_i].in, len, &used);
	check_result(_i, st, &r);
	if (st == SMTP_REPLY_DONE)
		ck_assert_uint_eq(used, len);
}
END_TEST

/* Every prefix first, then the rest: partial reads give the same reply. */
START_TEST(test_prefixes)
{
	const char *in = replies[_i].in;
	size_t len = case_len(_i), cut, off, used;
	enum smtp_reply_status st;
	struct smtp_reply r;

	for (cut = 0; cut <= len; cut++) {
		smtp_reply_init(&r);
		off = 0;
		st = smtp_reply_feed(&r, in, cut, &used);
		off += used;
		if (st == SMTP_REPLY_MORE) {
			st = smtp_reply_feed(&r, in + off, len - off, &used);
			off += used;
		}
		check_result(_i, st, &r);
	}
}
END_TEST

START_TEST(test_long_line)
{
	char buf[2048];
	struct smtp_reply r;
	size_t used;

	/* 510 octets and CRLF: the most a line may hold. */
	memset(buf, 'x', sizeof(buf));
	memcpy(buf, "250 ", 4);
	memcpy(buf + 510, "\r\n", 2);
	smtp_reply_init(&r);
	ck_assert_int_eq(smtp_reply_feed(&r, buf, 512, &used), SMTP_REPLY_DONE);
	ck_assert_uint_lt(strlen(r.text), SMTP_REPLY_TEXT_MAX);
	ck_assert_uint_eq(strlen(r.text), 506);
	/* One more: refused whole, and without its end as soon as it is too long. */
	memcpy(buf + 510, "x\r\n", 3);
	smtp_reply_init(&r);
	ck_assert_int_eq(smtp_reply_feed(&r, buf, 513, &used), SMTP_REPLY_BAD);
	smtp_reply_init(&r);
	ck_assert_int_eq(smtp_reply_feed(&r, buf, 511, &used), SMTP_REPLY_MORE);
	ck_assert_int_eq(smtp_reply_feed(&r, buf, 512, &used), SMTP_REPLY_BAD);
	ck_assert_int_eq(smtp_reply_feed(&r, buf, sizeof(buf), &used), SMTP_REPLY_BAD);
}
END_TEST

START_TEST(test_many_lines)
{
	struct smtp_reply r;
	int i;

	smtp_reply_init(&r);
	for (i = 0; i < SMTP_REPLY_LINES_MAX - 1; i++)
		ck_assert_int_eq(smtp_reply_line(&r, "250-x", 5), SMTP_REPLY_MORE);
	ck_assert_int_eq(smtp_reply_line(&r, "250 x", 5), SMTP_REPLY_DONE);
	smtp_reply_init(&r);
	for (i = 0; i < SMTP_REPLY_LINES_MAX; i++)
		ck_assert_int_eq(smtp_reply_line(&r, "250-x", 5), SMTP_REPLY_MORE);
	ck_assert_int_eq(smtp_reply_line(&r, "250 x", 5), SMTP_REPLY_BAD);
}
END_TEST

/* A 4xx/5xx text of many lines is cut, never overrun. */
START_TEST(test_long_text)
{
	char line[300];
	struct smtp_reply r;
	int i;

	memset(line, 'y', sizeof(line));
	memcpy(line, "550-", 4);
	smtp_reply_init(&r);
	for (i = 0; i < 20; i++)
		ck_assert_int_eq(smtp_reply_line(&r, line, sizeof(line)), SMTP_REPLY_MORE);
	ck_assert_int_eq(smtp_reply_line(&r, "550 end", 7), SMTP_REPLY_DONE);
	ck_assert_uint_eq(strlen(r.text), SMTP_REPLY_TEXT_MAX - 1);
	ck_assert_str_eq(r.text + SMTP_REPLY_TEXT_MAX - 4, "...");
}
END_TEST

START_TEST(test_nul)
{
	struct smtp_reply r;
	size_t used;

	smtp_reply_init(&r);
	ck_assert_int_eq(smtp_reply_feed(&r, "250 a\0b\r\n", 9, &used), SMTP_REPLY_BAD);
}
END_TEST

/* EHLO keywords: each line's text is handed to the caller. */
START_TEST(test_line_text)
{
	struct smtp_reply r;

	smtp_reply_init(&r);
	ck_assert_int_eq(smtp_reply_line(&r, "250-mx", 6), SMTP_REPLY_MORE);
	ck_assert_int_eq(smtp_reply_line(&r, "250-SIZE 100", 12), SMTP_REPLY_MORE);
	ck_assert_uint_eq(r.linelen, 8);
	ck_assert(memcmp(r.line, "SIZE 100", 8) == 0);
	ck_assert_int_eq(smtp_reply_line(&r, "250 X", 5), SMTP_REPLY_DONE);
	ck_assert_uint_eq(r.linelen, 1);
}
END_TEST

static Suite *
smtp_reply_suite(void)
{
	Suite *s = suite_create("smtp_reply");
	TCase *tc = tcase_create("parse");
	int n = (int)(sizeof(replies) / sizeof(replies[0]));

	tcase_add_loop_test(tc, test_whole, 0, n);
	tcase_add_loop_test(tc, test_prefixes, 0, n);
	tcase_add_test(tc, test_long_line);
	tcase_add_test(tc, test_many_lines);
	tcase_add_test(tc, test_long_text);
	tcase_add_test(tc, test_line_text);
	tcase_add_test(tc, test_nul);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(smtp_reply_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
