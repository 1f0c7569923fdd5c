/*
 * check_queueid.c - unit tests of common/queueid.c: the format of new ids,
 * a validity table, strict increase within a process, and string order
 * matching creation order.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <check.h>

#include "queueid.h"

#define NIDS	100000

static int
is_lower_hex(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

START_TEST(test_format)
{
	char id[QUEUEID_LEN + 1 + 8];
	struct timespec ts;
	unsigned long long us, now;
	char head[17];
	size_t i;

	memset(id, 'Z', sizeof(id));
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (unsigned long long)ts.tv_sec * 1000000 + (unsigned long long)ts.tv_nsec / 1000;
	queueid_new(id);
	ck_assert_uint_eq(strlen(id), QUEUEID_LEN);
	for (i = 0; i < QUEUEID_LEN; i++)
		ck_assert_msg(is_lower_hex((unsigned char)id[i]), "id %s: bad char at %zu", id, i);
	/* nothing written past the NUL */
	for (i = QUEUEID_LEN + 1; i < sizeof(id); i++)
		ck_assert_int_eq(id[i], 'Z');
	ck_assert_int_eq(queueid_valid(id), 1);

	/* the first 16 digits are the arrival time in microseconds */
	memcpy(head, id, 16);
	head[16] = '\0';
	us = strtoull(head, NULL, 16);
	ck_assert_msg(us + 1000000 >= now && us <= now + 10 * 1000000ULL,
	    "id %s: time %llu, now %llu", id, us, now);
}
END_TEST

static const char *const valid_ids[] = {
	"00000000000000000000",
	"0123456789abcdef0123",
	"ffffffffffffffffffff",
	"0005f3c1a2b3c4d5e6f7",
};

static const char *const invalid_ids[] = {
	"",
	"0",
	"0005f3c1a2b3c4d5e6f",		/* 19 */
	"0005f3c1a2b3c4d5e6f70",	/* 21 */
	"0005f3c1a2b3c4d5e6f7 ",
	" 0005f3c1a2b3c4d5e6f7",
	"0005F3C1A2B3C4D5E6F7",		/* uppercase */
	"0005f3c1a2b3c4d5e6fA",
	"A005f3c1a2b3c4d5e6f7",
	"0005f3c1a2b3c4d5e6fg",		/* non-hex */
	"g005f3c1a2b3c4d5e6f7",
	"0005f3c1a2-3c4d5e6f7",
	"0005f3c1a2b3c4d5e6f\n",
	"../../../../etc/passw",
	"0005f3c1a2/3c4d5e6f7",
	"0x05f3c1a2b3c4d5e6f7",
	"0005f3c1a2b3c4d5e6f7.env",
	"0005f3c1a2b3c4d5e6f7\xff",
	"\xc3\xa9" "05f3c1a2b3c4d5e6f7",
};

START_TEST(test_valid_table)
{
	size_t i;

	for (i = 0; i < sizeof(valid_ids) / sizeof(valid_ids[0]); i++)
		ck_assert_msg(queueid_valid(valid_ids[i]) == 1, "\"%s\" refused",
		    valid_ids[i]);
	for (i = 0; i < sizeof(invalid_ids) / sizeof(invalid_ids[0]); i++)
		ck_assert_msg(queueid_valid(invalid_ids[i]) == 0, "\"%s\" accepted",
		    invalid_ids[i]);
}
END_TEST

/* A NUL inside the 20 characters ends the string: invalid, and nothing read past it. */
START_TEST(test_valid_embedded_nul)
{
	char *s;
	size_t i;

	for (i = 0; i <= QUEUEID_LEN; i++) {
		/* an exact-size allocation, so reading past the NUL would show */
		s = malloc(i + 1);
		ck_assert_ptr_nonnull(s);
		memset(s, 'a', i);
		s[i] = '\0';
		ck_assert_int_eq(queueid_valid(s), i == QUEUEID_LEN);
		free(s);
	}
}
END_TEST

START_TEST(test_strictly_increasing)
{
	char *ids;
	size_t i;

	ids = malloc((size_t)NIDS * (QUEUEID_LEN + 1));
	ck_assert_ptr_nonnull(ids);
	for (i = 0; i < NIDS; i++)
		queueid_new(ids + i * (QUEUEID_LEN + 1));
	for (i = 0; i < NIDS; i++) {
		const char *cur = ids + i * (QUEUEID_LEN + 1);

		if (!queueid_valid(cur))
			ck_abort_msg("id %zu \"%s\" not valid", i, cur);
		/* the time part alone already increases strictly */
		if (i > 0 && strncmp(cur - (QUEUEID_LEN + 1), cur, 16) >= 0)
			ck_abort_msg("id %zu \"%s\" not after \"%s\"", i, cur,
			    cur - (QUEUEID_LEN + 1));
	}
	free(ids);
}
END_TEST

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Shuffled and sorted as strings, ids come back in creation order. */
START_TEST(test_sortable)
{
	enum { N = 5000 };
	static char ids[N][QUEUEID_LEN + 1];
	const char *v[N], *t;
	size_t i, j;
	unsigned int seed = 12345;

	for (i = 0; i < N; i++) {
		queueid_new(ids[i]);
		v[i] = ids[i];
	}
	for (i = N - 1; i > 0; i--) {
		seed = seed * 1103515245u + 12345u;
		j = (seed >> 8) % (i + 1);
		t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
	qsort(v, N, sizeof(v[0]), cmp_str);
	for (i = 0; i < N; i++)
		if (v[i] != ids[i])
			ck_abort_msg("position %zu: \"%s\", want \"%s\"", i, v[i], ids[i]);
}
END_TEST

/* The random tail is not constant (so two processes rarely collide). */
START_TEST(test_random_tail)
{
	char a[QUEUEID_LEN + 1];
	char first[5];
	int i, differ = 0;

	queueid_new(a);
	memcpy(first, a + 16, 5);
	for (i = 0; i < 64 && !differ; i++) {
		queueid_new(a);
		differ = memcmp(first, a + 16, 4) != 0;
	}
	ck_assert_msg(differ, "the last 4 digits never change");
}
END_TEST

static Suite *
queueid_suite(void)
{
	Suite *s = suite_create("queueid");
	TCase *tc;

	tc = tcase_create("queueid");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_valid_table);
	tcase_add_test(tc, test_valid_embedded_nul);
	tcase_add_test(tc, test_strictly_increasing);
	tcase_add_test(tc, test_sortable);
	tcase_add_test(tc, test_random_tail);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(queueid_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
