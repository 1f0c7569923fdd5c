/*
 * check_netmask.c - unit tests of common/netmask.c: tables of good and bad
 * prefixes (IPv4, IPv6, IPv4-mapped), their canonical forms, and matching
 * addresses and socket addresses against them.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>

#include "netmask.h"

/* ---- parsing ------------------------------------------------------------------ */

static const struct {
	const char	*text;
	int		 family;
	unsigned	 prefix;
	const char	*canon;
} good[] = {
	{ "192.0.2.1", AF_INET, 32, "192.0.2.1/32" },
	{ "192.0.2.1/32", AF_INET, 32, "192.0.2.1/32" },
	{ "192.0.2.0/24", AF_INET, 24, "192.0.2.0/24" },
	{ "192.0.2.128/25", AF_INET, 25, "192.0.2.128/25" },
	{ "10.0.0.0/8", AF_INET, 8, "10.0.0.0/8" },
	{ "172.16.0.0/12", AF_INET, 12, "172.16.0.0/12" },
	{ "0.0.0.0/0", AF_INET, 0, "0.0.0.0/0" },
	{ "127.0.0.1", AF_INET, 32, "127.0.0.1/32" },
	{ "255.255.255.255/32", AF_INET, 32, "255.255.255.255/32" },
	{ "2001:db8::1", AF_INET6, 128, "2001:db8::1/128" },
	{ "2001:db8::/32", AF_INET6, 32, "2001:db8::/32" },
	{ "2001:DB8:0:0:0:0:0:0/32", AF_INET6, 32, "2001:db8::/32" },
	{ "::1", AF_INET6, 128, "::1/128" },
	{ "::1/128", AF_INET6, 128, "::1/128" },
	{ "::/0", AF_INET6, 0, "::/0" },
	{ "fe80::/10", AF_INET6, 10, "fe80::/10" },
	{ "2001:db8:1234::/47", AF_INET6, 47, "2001:db8:1234::/47" },
	/* IPv4-mapped prefixes are IPv4 prefixes */
	{ "::ffff:192.0.2.1", AF_INET, 32, "192.0.2.1/32" },
	{ "::ffff:192.0.2.0/120", AF_INET, 24, "192.0.2.0/24" },
	{ "::ffff:0:0/96", AF_INET, 0, "0.0.0.0/0" },
	{ "::ffff:c000:200/120", AF_INET, 24, "192.0.2.0/24" },
	/* shorter than 96: stays IPv6 */
	{ "::fffe:0:0/95", AF_INET6, 95, "::fffe:0:0/95" },
	{ "::/80", AF_INET6, 80, "::/80" },
};

static const struct {
	const char	*text;
	const char	*substr;
} bad[] = {
	{ "", "not an IPv4 or IPv6 address" },
	{ "/24", "not an IPv4 or IPv6 address" },
	{ "localhost", "not a numeric IPv4 or IPv6 address" },
	{ "example.com/24", "not a numeric" },
	{ "192.0.2", "not a numeric" },
	{ "192.0.2.256", "not a numeric" },
	{ "192.0.2.1.5", "not a numeric" },
	{ "10/8", "not a numeric" },
	{ "192.0.2.01", "not a numeric" },
	{ " 192.0.2.1", "not a numeric" },
	{ "192.0.2.1 ", "not a numeric" },
	{ "2001:db8:::1", "not a numeric" },
	{ "2001:db8::g", "not a numeric" },
	{ "fe80::1%eth0", "not a numeric" },
	{ "[::1]", "not a numeric" },
	{ "192.0.2.0/", "bad prefix length \"/\"" },
	{ "192.0.2.0/33", "bad prefix length \"/33\" in \"192.0.2.0/33\" (0 to 32)" },
	{ "2001:db8::/129", "bad prefix length \"/129\" in \"2001:db8::/129\" (0 to 128)" },
	{ "192.0.2.0/-1", "bad prefix length" },
	{ "192.0.2.0/+24", "bad prefix length" },
	{ "192.0.2.0/024", "bad prefix length" },
	{ "192.0.2.0/24 ", "bad prefix length" },
	{ "192.0.2.0/2x", "bad prefix length" },
	{ "192.0.2.0/24/24", "bad prefix length" },
	{ "192.0.2.0/0x18", "bad prefix length" },
	{ "::/1280", "bad prefix length" },
	{ "192.0.2.0/99999999999999999999", "bad prefix length" },
	/* host bits: a typo most of the time; the message suggests the fix */
	{ "192.0.2.1/24", "bits set beyond the prefix length (did you mean 192.0.2.0/24?)" },
	{ "192.0.2.129/25", "did you mean 192.0.2.128/25?" },
	{ "10.1.0.0/8", "did you mean 10.0.0.0/8?" },
	{ "0.0.0.1/0", "did you mean 0.0.0.0/0?" },
	{ "2001:db8::1/32", "did you mean 2001:db8::/32?" },
	{ "fe80::1:1/112", "did you mean fe80::1:0/112?" },
	{ "::ffff:0:0/95", "did you mean ::fffe:0:0/95?" },
	{ "::ffff:192.0.2.1/120", "did you mean ::ffff:192.0.2.0/120?" },
	/* the address part is at most NETMASK_STRLEN - 1 characters */
	{ "0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000/8",
	  "not an IPv4 or IPv6 address" },
};

START_TEST(test_parse_good)
{
	struct netmask nm;
	char err[256] = "", buf[NETMASK_STRLEN];

	ck_assert_msg(netmask_parse(good[_i].text, &nm, err, sizeof(err)) == 0,
	    "\"%s\" refused: %s", good[_i].text, err);
	ck_assert_msg(nm.family == good[_i].family, "\"%s\": family %d", good[_i].text,
	    nm.family);
	ck_assert_msg(nm.prefix == good[_i].prefix, "\"%s\": prefix %u", good[_i].text,
	    nm.prefix);
	ck_assert_str_eq(netmask_format(&nm, buf, sizeof(buf)), good[_i].canon);
}
END_TEST

START_TEST(test_parse_bad)
{
	struct netmask nm;
	char err[256] = "";

	ck_assert_msg(netmask_parse(bad[_i].text, &nm, err, sizeof(err)) == -1,
	    "\"%s\" accepted", bad[_i].text);
	ck_assert_msg(strstr(err, bad[_i].substr) != NULL,
	    "\"%s\": want ...%s...; got \"%s\"", bad[_i].text, bad[_i].substr, err);
}
END_TEST

/* A short error buffer truncates the message, never overflows. */
START_TEST(test_parse_small_err)
{
	struct netmask nm;
	char err[8];

	memset(err, 'x', sizeof(err));
	ck_assert_int_eq(netmask_parse("192.0.2.1/24", &nm, err, sizeof(err)), -1);
	ck_assert_int_eq(err[sizeof(err) - 1], '\0');
}
END_TEST

/* ---- matching ---------------------------------------------------------------- */

static const struct {
	const char	*rule;
	const char	*addr;
	int		 match;
} matches[] = {
	{ "192.0.2.0/24", "192.0.2.0", 1 },
	{ "192.0.2.0/24", "192.0.2.255", 1 },
	{ "192.0.2.0/24", "192.0.3.0", 0 },
	{ "192.0.2.0/24", "192.0.1.255", 0 },
	{ "192.0.2.128/25", "192.0.2.127", 0 },
	{ "192.0.2.128/25", "192.0.2.128", 1 },
	{ "192.0.2.128/25", "192.0.2.200", 1 },
	{ "192.0.2.1", "192.0.2.1", 1 },
	{ "192.0.2.1", "192.0.2.2", 0 },
	{ "10.0.0.0/8", "10.255.255.255", 1 },
	{ "10.0.0.0/8", "11.0.0.0", 0 },
	{ "172.16.0.0/12", "172.31.1.1", 1 },
	{ "172.16.0.0/12", "172.32.0.0", 0 },
	{ "0.0.0.0/0", "203.0.113.9", 1 },
	{ "0.0.0.0/0", "2001:db8::1", 0 },
	{ "127.0.0.0/8", "127.0.0.2", 1 },
	{ "192.0.2.0/31", "192.0.2.1", 1 },
	{ "192.0.2.0/31", "192.0.2.2", 0 },
	{ "2001:db8::/32", "2001:db8:ffff::1", 1 },
	{ "2001:db8::/32", "2001:db9::1", 0 },
	{ "2001:db8::/33", "2001:db8:7fff::1", 1 },
	{ "2001:db8::/33", "2001:db8:8000::1", 0 },
	{ "2001:db8::1", "2001:db8::1", 1 },
	{ "2001:db8::1", "2001:db8::2", 0 },
	{ "::1", "::1", 1 },
	{ "::1", "127.0.0.1", 0 },
	{ "::/0", "2001:db8::1", 1 },
	{ "::/0", "192.0.2.1", 0 },	/* an IPv6 rule never matches IPv4 */
	{ "fe80::/10", "febf::1", 1 },
	{ "fe80::/10", "fec0::1", 0 },
	/* IPv4-mapped client addresses are IPv4 */
	{ "192.0.2.0/24", "::ffff:192.0.2.7", 1 },
	{ "192.0.2.0/24", "::ffff:192.0.3.7", 0 },
	{ "::ffff:192.0.2.0/120", "192.0.2.7", 1 },
	{ "::ffff:192.0.2.0/120", "::ffff:192.0.2.7", 1 },
	{ "::ffff:0:0/96", "198.51.100.1", 1 },
	{ "::ffff:0:0/96", "2001:db8::1", 0 },
	{ "::/0", "::ffff:192.0.2.7", 0 },
	{ "::fffe:0:0/95", "::ffff:192.0.2.7", 0 },	/* an IPv6 rule: no */
	{ "127.0.0.1", "::ffff:127.0.0.1", 1 },
	/* IPv4-compatible (deprecated) is not mapped */
	{ "192.0.2.0/24", "::192.0.2.7", 0 },
};

static void
to_addr(const char *text, int *family, unsigned char *buf)
{
	if (inet_pton(AF_INET, text, buf) == 1)
		*family = AF_INET;
	else if (inet_pton(AF_INET6, text, buf) == 1)
		*family = AF_INET6;
	else
		ck_abort_msg("bad test address %s", text);
}

START_TEST(test_match)
{
	struct netmask nm;
	unsigned char a[16];
	char err[256] = "";
	int family;

	ck_assert_msg(netmask_parse(matches[_i].rule, &nm, err, sizeof(err)) == 0,
	    "rule %s: %s", matches[_i].rule, err);
	to_addr(matches[_i].addr, &family, a);
	ck_assert_msg(netmask_match(&nm, family, a) == matches[_i].match,
	    "%s %s %s", matches[_i].addr, matches[_i].match ? "not in" : "in",
	    matches[_i].rule);
}
END_TEST

/* The same table through socket addresses, as accept(2) gives them. */
START_TEST(test_match_sockaddr)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct netmask nm;
	unsigned char a[16];
	char err[256];
	int family;

	ck_assert_int_eq(netmask_parse(matches[_i].rule, &nm, err, sizeof(err)), 0);
	to_addr(matches[_i].addr, &family, a);
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(25);
		memcpy(&sin->sin_addr, a, 4);
	} else {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(25);
		memcpy(&sin6->sin6_addr, a, 16);
	}
	ck_assert_int_eq(netmask_match_sa(&nm, (struct sockaddr *)&ss), matches[_i].match);
}
END_TEST

/* A Unix-domain or unknown family matches no rule, not even 0.0.0.0/0. */
START_TEST(test_match_other_families)
{
	struct sockaddr_un sun;
	struct netmask nm;
	char err[256];

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	ck_assert_int_eq(netmask_parse("0.0.0.0/0", &nm, err, sizeof(err)), 0);
	ck_assert_int_eq(netmask_match_sa(&nm, (struct sockaddr *)&sun), 0);
	ck_assert_int_eq(netmask_parse("::/0", &nm, err, sizeof(err)), 0);
	ck_assert_int_eq(netmask_match_sa(&nm, (struct sockaddr *)&sun), 0);
}
END_TEST

/* Every prefix length of both families: the boundary addresses. */
START_TEST(test_every_prefix)
{
	struct netmask nm;
	unsigned char a[16];
	char text[NETMASK_STRLEN], err[256];
	unsigned p, max;
	int v6;

	for (v6 = 0; v6 < 2; v6++) {
		max = v6 ? 128 : 32;
		for (p = 0; p <= max; p++) {
			snprintf(text, sizeof(text), "%s/%u", v6 ? "::" : "0.0.0.0", p);
			ck_assert_msg(netmask_parse(text, &nm, err, sizeof(err)) == 0,
			    "%s: %s", text, err);
			memset(a, 0, sizeof(a));
			ck_assert(netmask_match(&nm, v6 ? AF_INET6 : AF_INET, a));
			if (p == 0)
				continue;
			/* the last bit inside the prefix set: outside */
			a[(p - 1) / 8] = (unsigned char)(0x80 >> ((p - 1) % 8));
			ck_assert_msg(!netmask_match(&nm, v6 ? AF_INET6 : AF_INET, a),
			    "%s matched bit %u", text, p);
			/* the first bit beyond it set: inside */
			memset(a, 0, sizeof(a));
			if (p < max) {
				a[p / 8] = (unsigned char)(0x80 >> (p % 8));
				ck_assert_msg(netmask_match(&nm, v6 ? AF_INET6 : AF_INET, a),
				    "%s missed bit %u", text, p + 1);
			}
		}
	}
}
END_TEST

static Suite *
netmask_suite(void)
{
	Suite *s = suite_create("netmask");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_add_loop_test(tc, test_parse_good, 0, sizeof(good) / sizeof(good[0]));
	tcase_add_loop_test(tc, test_parse_bad, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, test_parse_small_err);
	suite_add_tcase(s, tc);

	tc = tcase_create("match");
	tcase_add_loop_test(tc, test_match, 0, sizeof(matches) / sizeof(matches[0]));
	tcase_add_loop_test(tc, test_match_sockaddr, 0, sizeof(matches) / sizeof(matches[0]));
	tcase_add_test(tc, test_match_other_families);
	tcase_add_test(tc, test_every_prefix);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(netmask_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
