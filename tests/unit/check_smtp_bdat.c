/*
 * check_smtp_bdat.c - unit tests of common/smtp_bdat.c: BDAT chunk content
 * (RFC 3030): line ends normalised outside BINARYMIME, kept within it, no
 * dot handling, limits; every input is also fed in pieces of every size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <event2/buffer.h>

#include "smtp_bdat.h"

#define L(s)	s, sizeof(s) - 1

struct result {
	char	*out;
	size_t	 outlen;
	uint64_t size;
	int	 flags;
};

/* Feed in[0..len) in pieces of `chunk` octets (0: at once), then end. */
static void
run(const char *in, size_t len, size_t chunk, uint64_t max, int binary, struct result *r)
{
	struct smtp_bdat b;
	struct evbuffer *out;
	size_t off = 0, n;

	ck_assert_ptr_nonnull(out = evbuffer_new());
	smtp_bdat_init(&b, max, binary);
	if (chunk == 0)
		chunk = len > 0 ? len : 1;
	while (off < len) {
		n = len - off < chunk ? len - off : chunk;
		smtp_bdat_feed(&b, in + off, n, out);
		off += n;
	}
	smtp_bdat_end(&b, out);
	r->outlen = evbuffer_get_length(out);
	ck_assert_ptr_nonnull(r->out = malloc(r->outlen + 1));
	evbuffer_remove(out, r->out, r->outlen);
	r->out[r->outlen] = '\0';
	r->size = b.size;
	r->flags = b.flags;
	evbuffer_free(out);
}

static const struct {
	const char	*in;
	size_t		 inlen;
	const char	*out;
	size_t		 outlen;
	int		 binary;
	int		 flags;
} cases[] = {
	{ L("a\r\nb\r\n"), L("a\r\nb\r\n"), 0, 0 },
	{ L(""), L(""), 0, 0 },
	/* no dot-stuffing, no end-of-data line */
	{ L(".\r\n..x\r\n.\r\n"), L(".\r\n..x\r\n.\r\n"), 0, 0 },
	/* bare LF and bare CR become CRLF */
	{ L("a\nb\rc\r\n"), L("a\r\nb\r\nc\r\n"), 0, SMTP_DATA_BARE_EOL },
	{ L("a\r\r\n"), L("a\r\n\r\n"), 0, SMTP_DATA_BARE_EOL },
	/* a CR at the very end is a bare CR */
	{ L("a\r"), L("a\r\n"), 0, SMTP_DATA_BARE_EOL },
	{ L("a\0b\r\n"), L("a\0b\r\n"), 0, SMTP_DATA_NUL },
	/* no final line end: kept as is */
	{ L("abc"), L("abc"), 0, 0 },
	/* BINARYMIME: verbatim */
	{ L("a\nb\rc\0.\r\n"), L("a\nb\rc\0.\r\n"), 1, 0 },
	{ L("\r"), L("\r"), 1, 0 },
};

START_TEST(test_cases)
{
	struct result r;
	size_t chunk;

	for (chunk = 0; chunk <= cases[_i].inlen + 1; chunk++) {
		run(cases[_i].in, cases[_i].inlen, chunk, 0, cases[_i].binary, &r);
		ck_assert_msg(r.outlen == cases[_i].outlen &&
		    memcmp(r.out, cases[_i].out, r.outlen) == 0,
		    "case %d chunk %zu: wrong output (%zu octets)", _i, chunk, r.outlen);
		ck_assert_int_eq(r.flags, cases[_i].flags);
		ck_assert_uint_eq(r.size, r.outlen);
		free(r.out);
	}
}
END_TEST

START_TEST(test_long_line)
{
	char buf[2100];
	struct result r;

	memset(buf, 'x', 998);
	memcpy(buf + 998, "\r\n", 2);
	run(buf, 1000, 7, 0, 0, &r);
	ck_assert_int_eq(r.flags, 0);
	free(r.out);
	memset(buf, 'x', 999);
	memcpy(buf + 999, "\r\n", 2);
	run(buf, 1001, 13, 0, 0, &r);
	ck_assert_int_eq(r.flags & SMTP_DATA_LONG_LINE, SMTP_DATA_LONG_LINE);
	free(r.out);
	/* BINARYMIME has no lines */
	memset(buf, 'x', 2000);
	run(buf, 2000, 0, 0, 1, &r);
	ck_assert_int_eq(r.flags, 0);
	free(r.out);
}
END_TEST

START_TEST(test_size_limit)
{
	struct result r;

	run(L("0123456789"), 3, 10, 0, &r);
	ck_assert_int_eq(r.flags, 0);
	ck_assert_uint_eq(r.outlen, 10);
	free(r.out);
	run(L("0123456789"), 3, 9, 0, &r);
	ck_assert_int_eq(r.flags & SMTP_DATA_TOO_BIG, SMTP_DATA_TOO_BIG);
	ck_assert_uint_eq(r.outlen, 9);		/* never more than the limit */
	ck_assert_uint_eq(r.size, 10);		/* but still counted */
	free(r.out);
	run(L("a\nb\n"), 1, 5, 0, &r);		/* output octets are counted */
	ck_assert_int_eq(r.flags & SMTP_DATA_TOO_BIG, SMTP_DATA_TOO_BIG);
	ck_assert_uint_eq(r.size, 6);
	free(r.out);
	run(L("a\nb\n"), 0, 4, 1, &r);		/* binary: as sent */
	ck_assert_int_eq(r.flags, 0);
	free(r.out);
}
END_TEST

static Suite *
smtp_bdat_suite(void)
{
	Suite *s = suite_create("smtp_bdat");
	TCase *tc;

	tc = tcase_create("chunks");
	tcase_add_loop_test(tc, test_cases, 0, sizeof(cases) / sizeof(cases[0]));
	tcase_add_test(tc, test_long_line);
	tcase_add_test(tc, test_size_limit);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(smtp_bdat_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
