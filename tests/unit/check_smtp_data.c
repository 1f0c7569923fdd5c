/*
 * check_smtp_data.c - unit tests of common/smtp_data.c: end of data, dot
 * transparency, SMTP smuggling, limits; every input is also fed in pieces.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <event2/buffer.h>

#include "smtp_data.h"

#define L(s)	s, sizeof(s) - 1
#define ALL	((size_t)-1)	/* every input byte consumed */

struct result {
	char	*out;		/* malloc'd copy of the message */
	size_t	 outlen;
	size_t	 consumed;
	uint64_t size;
	int	 flags;
	int	 done;
};

/*
 * Feed in[0..len) in pieces of `chunk` bytes (0: all at once), stopping at
 * the end of data as a session would, and collect what came out.
 */
static void
run(const char *in, size_t len, size_t chunk, uint64_t max, struct result *r)
{
	struct smtp_data sd;
	struct evbuffer *out;
	size_t off = 0, n, got;

	ck_assert_ptr_nonnull(out = evbuffer_new());
	smtp_data_init(&sd, max);
	if (chunk == 0)
		chunk = len > 0 ? len : 1;
	while (off < len && !sd.done) {
		n = len - off < chunk ? len - off : chunk;
		got = smtp_data_feed(&sd, in + off, n, out);
		ck_assert_uint_le(got, n);
		if (!sd.done)
			ck_assert_uint_eq(got, n);
		off += got;
	}
	/* once done, nothing more is taken */
	if (sd.done)
		ck_assert_uint_eq(smtp_data_feed(&sd, "x\r\n", 3, out), 0);
	r->outlen = evbuffer_get_length(out);
	ck_assert_ptr_nonnull(r->out = malloc(r->outlen + 1));
	evbuffer_remove(out, r->out, r->outlen);
	r->out[r->outlen] = '\0';
	r->consumed = off;
	r->size = sd.size;
	r->flags = sd.flags;
	r->done = sd.done;
	evbuffer_free(out);
}

/* Run in[] whole and in pieces of 1, 2, 3 and 7 bytes: all must agree. */
static void
run_all(const char *in, size_t len, uint64_t max, struct result *r)
{
	static const size_t chunks[] = { 1, 2, 3, 7 };
	struct result c;
	size_t i;

	run(in, len, 0, max, r);
	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		run(in, len, chunks[i], max, &c);
		ck_assert_msg(c.outlen == r->outlen &&
		    memcmp(c.out, r->out, r->outlen) == 0,
		    "chunk %zu: output differs", chunks[i]);
		ck_assert_uint_eq(c.consumed, r->consumed);
		ck_assert_uint_eq(c.size, r->size);
		ck_assert_int_eq(c.flags, r->flags);
		ck_assert_int_eq(c.done, r->done);
		free(c.out);
	}
}

struct dcase {
	const char	*in;
	size_t		 inlen;
	const char	*out;
	size_t		 outlen;
	size_t		 consumed;	/* ALL or a count */
	int		 done;
	int		 flags;
};

#define BARE	SMTP_DATA_BARE_EOL

static const struct dcase cases[] = {
	/* end of data and transparency (4.1.1.4, 4.5.2) */
	{ L("Hello\r\n.\r\n"), L("Hello\r\n"), ALL, 1, 0 },
	{ L(".\r\n"), L(""), ALL, 1, 0 },
	{ L("\r\n.\r\n"), L("\r\n"), ALL, 1, 0 },
	{ L("\r\n\r\n.\r\n"), L("\r\n\r\n"), ALL, 1, 0 },
	{ L("..x\r\n.\r\n"), L(".x\r\n"), ALL, 1, 0 },
	{ L(".x\r\n.\r\n"), L("x\r\n"), ALL, 1, 0 },
	{ L("a\r\n..\r\n.\r\n"), L("a\r\n.\r\n"), ALL, 1, 0 },
	{ L("a\r\n...\r\n.\r\n"), L("a\r\n..\r\n"), ALL, 1, 0 },
	{ L("a\r\n. \r\n.\r\n"), L("a\r\n \r\n"), ALL, 1, 0 },
	{ L("a.\r\nb .\r\n.\r\n"), L("a.\r\nb .\r\n"), ALL, 1, 0 },
	{ L("Subject: x\r\n\r\nbody\r\n.\r\n"), L("Subject: x\r\n\r\nbody\r\n"), ALL, 1, 0 },
	/* bytes after the end of data belong to the next command */
	{ L("x\r\n.\r\nQUIT\r\n"), L("x\r\n"), 6, 1, 0 },
	{ L(".\r\n.\r\n"), L(""), 3, 1, 0 },
	{ L("x\r\n.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"), L("x\r\n"), 6, 1, 0 },
	/* not (yet) the end */
	{ L(""), L(""), ALL, 0, 0 },
	{ L("abc"), L("abc"), ALL, 0, 0 },
	{ L("abc\r\n"), L("abc\r\n"), ALL, 0, 0 },
	{ L("abc\r\n."), L("abc\r\n"), ALL, 0, 0 },
	{ L("abc\r\n.\r"), L("abc\r\n"), ALL, 0, 0 },
	{ L("abc\r\n..\r"), L("abc\r\n."), ALL, 0, 0 },
	{ L("abc\r"), L("abc"), ALL, 0, 0 },

	/* smuggling: a "." line without CRLF on both sides never ends data */
	{ L("a\n.\r\nMAIL FROM:<x@y>\r\n"), L("a\r\n.\r\nMAIL FROM:<x@y>\r\n"), ALL, 0, BARE },
	{ L("a\n.\r\nMAIL FROM:<x@y>\r\n.\r\n"), L("a\r\n.\r\nMAIL FROM:<x@y>\r\n"), ALL, 1, BARE },
	{ L("a\r.\r\nRCPT TO:<v@w>\r\n.\r\n"), L("a\r\n.\r\nRCPT TO:<v@w>\r\n"), ALL, 1, BARE },
	{ L("a\n.\nDATA\r\n.\r\n"), L("a\r\n.\r\nDATA\r\n"), ALL, 1, BARE },
	{ L("a\r\n.\nb\r\n.\r\n"), L("a\r\n.\r\nb\r\n"), ALL, 1, BARE },
	{ L("a\r\n.\rX\r\n.\r\n"), L("a\r\n.\r\nX\r\n"), ALL, 1, BARE },
	{ L("a\r\n.\r\r\n.\r\n"), L("a\r\n.\r\n\r\n"), ALL, 1, BARE },
	{ L("a\r\n.\r.\r\n"), L("a\r\n.\r\n.\r\n"), ALL, 0, BARE },
	{ L("a\r\n.\r.\r\n.\r\n"), L("a\r\n.\r\n.\r\n"), ALL, 1, BARE },
	{ L("a\n.\n"), L("a\r\n.\r\n"), ALL, 0, BARE },
	{ L("\n.\r\n"), L("\r\n.\r\n"), ALL, 0, BARE },
	{ L("\r.\r\n"), L("\r\n.\r\n"), ALL, 0, BARE },
	{ L(".\n"), L(".\r\n"), ALL, 0, BARE },
	{ L(".\r"), L(""), ALL, 0, 0 },
	{ L(".\rx"), L(".\r\nx"), ALL, 0, BARE },
	{ L("a\n\r\n.\r\n"), L("a\r\n\r\n"), ALL, 1, BARE },
	{ L("\r\r\n.\r\n"), L("\r\n\r\n"), ALL, 1, BARE },
	{ L("a\r\r\n.\r\nQUIT\r\n"), L("a\r\n\r\n"), 7, 1, BARE },
	/* bare EOLs are normalised, a leading dot is unstuffed after them too */
	{ L("a\nb\rc\r\n.\r\n"), L("a\r\nb\r\nc\r\n"), ALL, 1, BARE },
	{ L("a\n.b\r\n.\r\n"), L("a\r\nb\r\n"), ALL, 1, BARE },
	{ L("\n\n\r\r"), L("\r\n\r\n\r\n"), ALL, 0, BARE },
	{ L("\r\n\r\n"), L("\r\n\r\n"), ALL, 0, 0 },
	/* many lines copied in one piece, broken by what needs a change */
	{ L("ab\r\ncd\r\n..e\r\n\r\nf\rg\r\nh\r\n.\r\n"),
	    L("ab\r\ncd\r\n.e\r\n\r\nf\r\ng\r\nh\r\n"), ALL, 1, BARE },
	{ L("ab\r\ncd\r\nef\r\n.\r\nX"), L("ab\r\ncd\r\nef\r\n"), 15, 1, 0 },
	{ L("ab\r\ncd\r\nef\r\n.\nX\r\n.\r\n"), L("ab\r\ncd\r\nef\r\n.\r\nX\r\n"), ALL, 1, BARE },
	/* NUL is kept and flagged */
	{ L("a\0b\r\n.\r\n"), L("a\0b\r\n"), ALL, 1, SMTP_DATA_NUL },
	{ L(".\0\r\n.\r\n"), L("\0\r\n"), ALL, 1, SMTP_DATA_NUL },
	{ L("\0"), L("\0"), ALL, 0, SMTP_DATA_NUL },
	/* other control and 8-bit octets pass untouched */
	{ L("\x01\x7f\xff\xc3\xa9\t\r\n.\r\n"), L("\x01\x7f\xff\xc3\xa9\t\r\n"), ALL, 1, 0 },
};

START_TEST(test_cases)
{
	const struct dcase *c = &cases[_i];
	struct result r;

	run_all(c->in, c->inlen, 0, &r);
	ck_assert_msg(r.outlen == c->outlen && memcmp(r.out, c->out, r.outlen) == 0,
	    "case %d: output (%zu) differs from expected (%zu)", _i, r.outlen,
	    c->outlen);
	ck_assert_uint_eq(r.consumed, c->consumed == ALL ? c->inlen : c->consumed);
	ck_assert_int_eq(r.done, c->done);
	ck_assert_int_eq(r.flags, c->flags);
	ck_assert_uint_eq(r.size, r.outlen);
	free(r.out);
}
END_TEST

/* A state carried across feeds: a CR at the end of one, its LF in the next. */
START_TEST(test_split_crlf)
{
	struct smtp_data sd;
	struct evbuffer *out = evbuffer_new();

	smtp_data_init(&sd, 0);
	ck_assert_uint_eq(smtp_data_feed(&sd, L("line\r"), out), 5);
	ck_assert_uint_eq(smtp_data_feed(&sd, L("\n.\r"), out), 3);
	ck_assert_int_eq(sd.done, 0);
	ck_assert_uint_eq(smtp_data_feed(&sd, L("\nNEXT"), out), 1);
	ck_assert_int_eq(sd.done, 1);
	ck_assert_int_eq(sd.flags, 0);
	ck_assert_uint_eq(evbuffer_get_length(out), 6);
	ck_assert_uint_eq(smtp_data_feed(&sd, L("NEXT"), out), 0);
	ck_assert_uint_eq(smtp_data_feed(&sd, "", 0, out), 0);
	evbuffer_free(out);
}
END_TEST

START_TEST(test_long_line)
{
	char *in;
	struct result r;
	size_t n = 998;

	ck_assert_ptr_nonnull(in = malloc(2000));
	/* 998 octets of text is the most a line may have (4.5.3.1.6) */
	memset(in, 'a', n);
	memcpy(in + n, "\r\n.\r\n", 5);
	run_all(in, n + 5, 0, &r);
	ck_assert_int_eq(r.flags, 0);
	ck_assert_int_eq(r.done, 1);
	ck_assert_uint_eq(r.outlen, n + 2);
	free(r.out);
	memset(in, 'a', n + 1);
	memcpy(in + n + 1, "\r\n.\r\n", 5);
	run_all(in, n + 6, 0, &r);
	ck_assert_int_eq(r.flags, SMTP_DATA_LONG_LINE);
	ck_assert_uint_eq(r.outlen, n + 3);
	free(r.out);
	/* the length counts the octets sent, stuffing dot included */
	in[0] = '.';
	run_all(in, n + 6, 0, &r);
	ck_assert_int_eq(r.flags, SMTP_DATA_LONG_LINE);
	ck_assert_uint_eq(r.outlen, n + 2);
	free(r.out);
	/* each line counts on its own, whatever ended the one before */
	memset(in, 'a', 1998);
	in[600] = '\n';
	in[1200] = '\r';
	in[1201] = 'b';
	memcpy(in + 1990, "\r\n.\r\n", 5);
	run_all(in, 1995, 0, &r);
	ck_assert_int_eq(r.flags, SMTP_DATA_BARE_EOL);
	free(r.out);
	free(in);
}
END_TEST

START_TEST(test_size_limit)
{
	struct result r;

	/* up to max_size octets are kept; the size counts on to the end */
	run_all(L("0123456789\r\n.\r\nQUIT\r\n"), 5, &r);
	ck_assert_int_eq(r.flags, SMTP_DATA_TOO_BIG);
	ck_assert_int_eq(r.done, 1);
	ck_assert_uint_eq(r.consumed, 15);
	ck_assert_uint_eq(r.size, 12);
	ck_assert_uint_eq(r.outlen, 5);
	ck_assert(memcmp(r.out, "01234", 5) == 0);
	free(r.out);
	/* exactly max_size is not too big */
	run_all(L("0123456789\r\n.\r\n"), 12, &r);
	ck_assert_int_eq(r.flags, 0);
	ck_assert_uint_eq(r.outlen, 12);
	free(r.out);
	run_all(L("0123456789\r\n.\r\n"), 11, &r);
	ck_assert_int_eq(r.flags, SMTP_DATA_TOO_BIG);
	ck_assert_uint_eq(r.outlen, 11);
	ck_assert_uint_eq(r.size, 12);
	free(r.out);
	/* normalised line ends count as the two octets they become */
	run_all(L("a\nb\r\n.\r\n"), 4, &r);
	ck_assert_int_eq(r.flags, SMTP_DATA_TOO_BIG | SMTP_DATA_BARE_EOL);
	ck_assert_uint_eq(r.size, 6);
	ck_assert_uint_eq(r.outlen, 4);
	free(r.out);
}
END_TEST

START_TEST(test_big_stream)
{
	struct smtp_data sd;
	struct evbuffer *out = evbuffer_new();
	char *in;
	size_t len = 4 * 1024 * 1024, i, n;

	/* a large message of ordinary lines; the output is exact */
	ck_assert_ptr_nonnull(in = malloc(len));
	for (i = 0; i < len; i++)
		in[i] = (i % 80 == 78) ? '\r' : (i % 80 == 79) ? '\n' :
		    (i % 80 == 0) ? '.' : 'a' + (char)(i % 26);
	memcpy(in + len - 5, "\r\n.\r\n", 5);
	smtp_data_init(&sd, 0);
	for (i = 0; i < len; i += n) {
		n = len - i < 65536 ? len - i : 65536;
		n = smtp_data_feed(&sd, in + i, n, out);
	}
	ck_assert_int_eq(sd.done, 1);
	ck_assert_int_eq(sd.flags, 0);
	/* every line lost its stuffing dot, the last line and "." are gone */
	ck_assert_uint_eq(evbuffer_get_length(out), sd.size);
	ck_assert_uint_eq(sd.size, len - 3 - (len / 80 + 1));
	free(in);
	evbuffer_free(out);
}
END_TEST

static Suite *
smtp_data_suite(void)
{
	Suite *s = suite_create("smtp_data");
	TCase *tc;

	tc = tcase_create("stream");
	tcase_add_loop_test(tc, test_cases, 0, sizeof(cases) / sizeof(cases[0]));
	tcase_add_test(tc, test_split_crlf);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc, test_long_line);
	tcase_add_test(tc, test_size_limit);
	tcase_add_test(tc, test_big_stream);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(smtp_data_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
