/*
 * check_deliverd_data.c - unit tests of deliverd/deliverd_data.c: the
 * content as DATA sends it: CRLF line ends, dot-stuffing, the final ".",
 * From: masquerading of local domains only, over-long header fields passed
 * untouched; output taken in small and large pieces, a CRLF across reads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <check.h>
#include <event2/buffer.h>

#include "config.h"
#include "deliverd.h"

static struct config *
conf_with(const char *masq)
{
	static const char text[] = "hostname mr.test\ndefault-domain example.org\n"
	    "alias-domain other.example\n";
	struct config *c;
	FILE *fp;

	ck_assert_ptr_nonnull(fp = fmemopen((void *)text, sizeof(text) - 1, "r"));
	ck_assert_ptr_nonnull(c = config_parse(fp, "test.conf", NULL, NULL));
	fclose(fp);
	(void)strlcpy(c->masquerade_domain, masq, sizeof(c->masquerade_domain));
	return c;
}

/* The stream of `in` (len octets), taken `want` octets at a time. */
static char *
stream(const char *in, size_t len, const char *masq, size_t want)
{
	char path[] = "/tmp/check_deliverd_data.XXXXXX", *out;
	struct data_stream ds;
	struct config *c = conf_with(masq);
	struct evbuffer *eb;
	int fd, r, rounds = 0;
	size_t n;

	ck_assert_int_ne(fd = mkstemp(path), -1);
	unlink(path);
	ck_assert_int_eq(write(fd, in, len), (ssize_t)len);
	ck_assert_ptr_nonnull(eb = evbuffer_new());
	data_stream_init(&ds, fd, c);
	while ((r = data_stream_fill(&ds, c, eb, want)) == 0)
		ck_assert_int_lt(++rounds, 1000000);
	ck_assert_int_eq(r, 1);
	n = evbuffer_get_length(eb);
	ck_assert_ptr_nonnull(out = malloc(n + 1));
	evbuffer_remove(eb, out, n);
	out[n] = '\0';
	evbuffer_free(eb);
	close(fd);
	config_free(c);
	return out;
}

static const struct {
	const char	*in, *masq, *out;
} cases[] = {
	{ "", "", ".\r\n" },
	{ "a\r\nb\r\n", "", "a\r\nb\r\n.\r\n" },
	{ "a\nb\n", "", "a\r\nb\r\n.\r\n" },
	{ "a\r\nb", "", "a\r\nb\r\n.\r\n" },
	{ ".\r\n..\r\n.x\r\nx.\r\n", "", "..\r\n...\r\n..x\r\nx.\r\n.\r\n" },
	{ "a\rb\r\n", "", "a\rb\r\n.\r\n" },		/* a bare CR is data */
	{ "x\r", "", "x\r\r\n.\r\n" },
	{ "From: a@example.org\r\n\r\nFrom: b@example.org\r\n", "masq.test",
	  "From: a@masq.test\r\n\r\nFrom: b@example.org\r\n.\r\n" },
	{ "from: <a@Example.ORG>, b@other.example,\r\n c@foreign.test\r\nTo: d@example.org\r\n\r\nx\r\n",
	  "masq.test",
	  "from: <a@masq.test>, b@masq.test,\r\n c@foreign.test\r\nTo: d@example.org\r\n\r\nx\r\n.\r\n" },
	{ "From: a@example.orgx\r\n\r\n", "masq.test", "From: a@example.orgx\r\n\r\n.\r\n" },
	{ "From: a@example.org\r\n\r\n", "", "From: a@example.org\r\n\r\n.\r\n" },
	{ "From: a@example.org", "masq.test", "From: a@masq.test\r\n.\r\n" },
	{ "Subject: x\n.From: a@example.org\n\n", "masq.test",
	  "Subject: x\r\n..From: a@example.org\r\n\r\n.\r\n" },
};

START_TEST(test_cases)
{
	size_t wants[] = { 1, 7, 65536 }, w;
	char *out;

	for (w = 0; w < sizeof(wants) / sizeof(wants[0]); w++) {
		out = stream(cases[_i].in, strlen(cases[_i].in), cases[_i].masq, wants[w]);
		ck_assert_str_eq(out, cases[_i].out);
		free(out);
	}
}
END_TEST

/* A CR at the end of one read, its LF at the start of the next. */
START_TEST(test_crlf_across_reads)
{
	size_t n = 16383, i;
	char *in = malloc(n + 4), *out;

	memset(in, 'a', n);
	memcpy(in + n, "\r\n.\n", 4);
	out = stream(in, n + 4, "", 65536);
	ck_assert_uint_eq(strlen(out), n + 2 + 4 + 3);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(out[i], 'a');
	ck_assert_str_eq(out + n, "\r\n..\r\n.\r\n");
	free(in);
	free(out);
}
END_TEST

/* A header field longer than DATA_FIELD_MAX passes untouched and whole. */
START_TEST(test_long_field)
{
	size_t n = DATA_FIELD_MAX * 3, len;
	char *in = malloc(n + 64), *out, *exp = malloc(n + 64);

	len = (size_t)snprintf(in, 64, "From: a@example.org ");
	memset(in + len, 'x', n);
	len += n;
	memcpy(in + len, "\r\nFrom: b@example.org\r\n\r\n", 26);
	len += 25;
	memcpy(exp, in, len);
	memcpy(exp + len, ".\r\n", 4);
	out = stream(in, len, "masq.test", 100);
	/* the long field as it was; the next one rewritten */
	ck_assert(strncmp(out, exp, 6 + 14 + n) == 0);
	ck_assert(strstr(out, "From: b@masq.test\r\n\r\n.\r\n") != NULL);
	free(in);
	free(exp);
	free(out);
}
END_TEST

static Suite *
data_suite(void)
{
	Suite *s = suite_create("deliverd_data");
	TCase *tc = tcase_create("stream");

	tcase_add_loop_test(tc, test_cases, 0, sizeof(cases) / sizeof(cases[0]));
	tcase_add_test(tc, test_crlf_across_reads);
	tcase_add_test(tc, test_long_field);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(data_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
