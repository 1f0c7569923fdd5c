/*
 * check_sasl.c - unit tests of common/sasl.c: tables of good and bad base64
 * (RFC 4648 4: alphabet, padding, length, the output size), every prefix of
 * a good response, and PLAIN messages (RFC 4616 2) split or refused.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>

#include "sasl.h"

static const struct {
	const char	*in;
	const char	*out;		/* NULL: refused */
	size_t		 outlen;
} b64[] = {
	{ "", "", 0 },
	{ "QQ==", "A", 1 },
	{ "QUI=", "AB", 2 },
	{ "QUJD", "ABC", 3 },
	{ "AGFsaWNlAHNlY3JldA==", "\0alice\0secret", 13 },
	{ "VXNlcm5hbWU6", "Username:", 9 },
	{ "+/+/", "\xfb\xff\xbf", 3 },
	{ "=", NULL, 0 },		/* the empty marker is the session's to map */
	{ "Q", NULL, 0 },
	{ "QQ", NULL, 0 },
	{ "QQ=", NULL, 0 },
	{ "QUJD=", NULL, 0 },
	{ "Q===", NULL, 0 },
	{ "====", NULL, 0 },
	{ "QU=J", NULL, 0 },
	{ "QQ==QUJD", NULL, 0 },	/* data after the padding */
	{ "QUJ D", NULL, 0 },
	{ "QUJ\tD", NULL, 0 },
	{ "QUJD\r\n", NULL, 0 },
	{ " QUJD", NULL, 0 },
	{ "QU-D", NULL, 0 },		/* base64url is not base64 */
	{ "QU_D", NULL, 0 },
	{ "*", NULL, 0 },
};

START_TEST(test_b64_table)
{
	unsigned char out[64];
	int n;

	n = sasl_b64_decode(b64[_i].in, strlen(b64[_i].in), out, sizeof(out));
	if (b64[_i].out == NULL) {
		ck_assert_msg(n == -1, "\"%s\" accepted", b64[_i].in);
		return;
	}
	ck_assert_msg(n == (int)b64[_i].outlen, "\"%s\": %d", b64[_i].in, n);
	ck_assert(memcmp(out, b64[_i].out, b64[_i].outlen) == 0);
}
END_TEST

/* The output buffer must hold len / 4 * 3 octets, padding or not. */
START_TEST(test_b64_outsz)
{
	unsigned char out[16];

	ck_assert_int_eq(sasl_b64_decode("QUJD", 4, out, 3), 3);
	ck_assert_int_eq(sasl_b64_decode("QUJD", 4, out, 2), -1);
	ck_assert_int_eq(sasl_b64_decode("QQ==", 4, out, 2), -1);
	ck_assert_int_eq(sasl_b64_decode("QQ==", 4, out, 3), 1);
	ck_assert_int_eq(sasl_b64_decode("", 0, out, 0), 0);
}
END_TEST

/* Each proper prefix of a good response is refused or decodes to a prefix. */
START_TEST(test_b64_prefixes)
{
	static const char full[] = "AGFsaWNlAHNlY3JldA==";
	static const unsigned char dec[] = "\0alice\0secret";
	unsigned char out[64];
	size_t i;
	int n;

	for (i = 0; i < sizeof(full) - 1; i++) {
		n = sasl_b64_decode(full, i, out, sizeof(out));
		if (i % 4 != 0) {
			ck_assert_msg(n == -1, "prefix of %zu accepted", i);
			continue;
		}
		ck_assert_int_eq(n, (int)(i / 4 * 3));
		ck_assert(memcmp(out, dec, (size_t)n) == 0);
	}
}
END_TEST

/* A line of SASL_LINE_MAX octets fits SASL_DECODED_MAX. */
START_TEST(test_b64_longest)
{
	static char line[SASL_LINE_MAX + 1];
	static unsigned char out[SASL_DECODED_MAX];
	size_t i;

	for (i = 0; i < SASL_LINE_MAX; i += 4)
		memcpy(line + i, "QUJD", 4);
	ck_assert_int_eq(sasl_b64_decode(line, SASL_LINE_MAX, out, sizeof(out)),
	    SASL_DECODED_MAX);
	ck_assert(memcmp(out + SASL_DECODED_MAX - 3, "ABC", 3) == 0);
}
END_TEST

static const struct {
	const char	*msg;
	size_t		 len;
	int		 ok;
	size_t		 zlen, clen, plen;
} plains[] = {
	{ "\0alice\0secret", 13, 1, 0, 5, 6 },
	{ "alice\0alice\0secret", 18, 1, 5, 5, 6 },
	{ "\0\0", 2, 1, 0, 0, 0 },		/* empty parts: the caller refuses */
	{ "\0alice\0", 7, 1, 0, 5, 0 },
	{ "", 0, 0, 0, 0, 0 },
	{ "alicesecret", 11, 0, 0, 0, 0 },
	{ "\0alicesecret", 12, 0, 0, 0, 0 },
	{ "alice\0secret", 12, 0, 0, 0, 0 },
	{ "\0alice\0sec\0ret", 14, 0, 0, 0, 0 },	/* a NUL in the password */
	{ "\0\0\0", 3, 0, 0, 0, 0 },
};

START_TEST(test_plain_table)
{
	struct sasl_plain p;
	const unsigned char *m = (const unsigned char *)plains[_i].msg;
	int r;

	r = sasl_plain_split(m, plains[_i].len, &p);
	if (!plains[_i].ok) {
		ck_assert_msg(r == -1, "entry %d accepted", _i);
		return;
	}
	ck_assert_int_eq(r, 0);
	ck_assert_uint_eq(p.zlen, plains[_i].zlen);
	ck_assert_uint_eq(p.clen, plains[_i].clen);
	ck_assert_uint_eq(p.plen, plains[_i].plen);
	ck_assert(p.authzid == m);
	ck_assert(p.authcid == m + p.zlen + 1);
	ck_assert(p.passwd == p.authcid + p.clen + 1);
}
END_TEST

static Suite *
sasl_suite(void)
{
	Suite *s = suite_create("sasl");
	TCase *tc;

	tc = tcase_create("base64");
	tcase_add_loop_test(tc, test_b64_table, 0, sizeof(b64) / sizeof(b64[0]));
	tcase_add_test(tc, test_b64_outsz);
	tcase_add_test(tc, test_b64_prefixes);
	tcase_add_test(tc, test_b64_longest);
	suite_add_tcase(s, tc);

	tc = tcase_create("plain");
	tcase_add_loop_test(tc, test_plain_table, 0, sizeof(plains) / sizeof(plains[0]));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(sasl_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
