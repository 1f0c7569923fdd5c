/*
 * check_acl.c - unit tests of common/acl.c: domain patterns, building rule
 * lists from configuration words (good and bad), first-match evaluation
 * with and without a known client name, and PCRE2 rules (caseless, bad
 * patterns with PCRE2's message and offset, the match limit).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <check.h>

#include "acl.h"

/* ---- domain patterns ----------------------------------------------------------- */

static const struct {
	const char	*pattern;
	int		 star_ok;	/* valid when "*" is allowed */
	int		 valid;		/* valid when it is not */
} patterns[] = {
	{ "example.com", 1, 1 },
	{ "*.example.com", 1, 1 },
	{ "Example.COM", 1, 1 },
	{ "localhost", 1, 1 },
	{ "*", 1, 0 },
	{ "", 0, 0 },
	{ "*.", 0, 0 },
	{ "*.*.example.com", 0, 0 },
	{ "a*.example.com", 0, 0 },
	{ "*example.com", 0, 0 },
	{ "example.*", 0, 0 },
	{ ".example.com", 0, 0 },
	{ "example..com", 0, 0 },
	{ "-bad.example.com", 0, 0 },
	{ "under_score.example.com", 0, 0 },
	{ "[192.0.2.1]", 0, 0 },
	{ "*.[192.0.2.1]", 0, 0 },
	{ "example.com/24", 0, 0 },
};

START_TEST(test_pattern_valid)
{
	ck_assert_msg(acl_domain_pattern_valid(patterns[_i].pattern, 1) == patterns[_i].star_ok,
	    "\"%s\" with *", patterns[_i].pattern);
	ck_assert_msg(acl_domain_pattern_valid(patterns[_i].pattern, 0) == patterns[_i].valid,
	    "\"%s\" without *", patterns[_i].pattern);
}
END_TEST

static const struct {
	const char	*pattern;
	const char	*name;
	int		 match;
} dmatch[] = {
	{ "example.com", "example.com", 1 },
	{ "example.com", "EXAMPLE.Com", 1 },
	{ "example.com", "example.com.", 1 },
	{ "example.com", "a.example.com", 0 },
	{ "example.com", "example.co", 0 },
	{ "example.com", "example.comm", 0 },
	{ "example.com", "xexample.com", 0 },
	{ "example.com", "", 0 },
	{ "example.com", ".", 0 },
	{ "*.example.com", "a.example.com", 1 },
	{ "*.example.com", "a.b.c.example.com", 1 },
	{ "*.example.com", "A.EXAMPLE.COM.", 1 },
	{ "*.example.com", "example.com", 0 },
	{ "*.example.com", "aexample.com", 0 },
	{ "*.example.com", ".example.com", 0 },
	{ "*.example.com", "a.example.com.evil", 0 },
	{ "*.example.com", "a.example.org", 0 },
	{ "*", "anything.example", 1 },
	{ "*", "x", 1 },
	{ "*", "", 0 },
	{ "*", ".", 0 },
};

START_TEST(test_domain_match)
{
	ck_assert_msg(acl_domain_match(dmatch[_i].pattern, dmatch[_i].name) == dmatch[_i].match,
	    "pattern \"%s\" name \"%s\": want %d", dmatch[_i].pattern, dmatch[_i].name,
	    dmatch[_i].match);
}
END_TEST

/* ---- building rule lists ---------------------------------------------------------- */

/* Split "a b c" into av (in place, at most 8 words). */
static int
split(char *line, char **av)
{
	int ac = 0;
	char *w;

	for (w = strtok(line, " "); w != NULL && ac < 8; w = strtok(NULL, " "))
		av[ac++] = w;
	return ac;
}

static int
add(struct acl *acl, int names, const char *words, char *err, size_t errsz)
{
	char buf[512], *av[8];
	int ac;

	strlcpy(buf, words, sizeof(buf));
	ac = split(buf, av);
	return acl_add(acl, names, ac, av, 42, err, errsz);
}

static const struct {
	int		 names;
	const char	*words;
	const char	*substr;
} bad_rules[] = {
	{ 1, "", "expected allow or deny and a network, \"name PATTERN\" or \"regex PCRE\"" },
	{ 1, "allow", "expected allow or deny and" },
	{ 0, "deny", "expected allow or deny and a network" },
	{ 1, "permit 192.0.2.1", "expected allow or deny, not \"permit\"" },
	{ 1, "Allow 192.0.2.1", "not \"Allow\"" },
	{ 1, "allow 192.0.2.1 extra", "allow takes one network, or \"name PATTERN\"" },
	{ 0, "allow 192.0.2.1 extra", "allow takes one network" },
	{ 1, "allow host.example.com", "not a numeric IPv4 or IPv6 address" },
	{ 1, "deny 192.0.2.1/24", "did you mean 192.0.2.0/24?" },
	{ 1, "deny 192.0.2.0/33", "bad prefix length" },
	{ 1, "allow name", "allow name takes one pattern" },
	{ 1, "allow name a.example b.example", "allow name takes one pattern" },
	{ 1, "allow name *.*.example", "bad name pattern \"*.*.example\"" },
	{ 1, "allow name bad_name.example", "bad name pattern" },
	{ 1, "allow name [192.0.2.1]", "bad name pattern" },
	{ 1, "deny regex", "deny regex takes one pattern" },
	{ 1, "deny regex a b", "deny regex takes one pattern" },
	{ 1, "deny regex a(b", "bad regex \"a(b\": missing closing parenthesis at offset 3" },
	{ 1, "deny regex [z-a]", "bad regex \"[z-a]\": range out of order in character class at offset 3" },
	{ 1, "deny regex *x", "bad regex \"*x\": quantifier does not follow a repeatable item at offset 0" },
	{ 1, "deny regex \\C", "bad regex" },	/* \C is refused (PCRE2_NEVER_BACKSLASH_C) */
	/* relay lists take networks only */
	{ 0, "allow name *.example.com", "allow takes one network" },
	{ 0, "allow regex x", "allow takes one network" },
};

START_TEST(test_bad_rules)
{
	struct acl acl = { NULL, 0 };
	char err[512] = "";

	ck_assert_msg(add(&acl, bad_rules[_i].names, bad_rules[_i].words, err, sizeof(err)) == -1,
	    "\"%s\" accepted", bad_rules[_i].words);
	ck_assert_msg(strstr(err, bad_rules[_i].substr) != NULL,
	    "\"%s\": want ...%s...; got \"%s\"", bad_rules[_i].words, bad_rules[_i].substr, err);
	ck_assert_uint_eq(acl.n, 0);
	acl_free(&acl);
}
END_TEST

START_TEST(test_empty_regex)
{
	struct acl acl = { NULL, 0 };
	char *av[] = { (char *)"deny", (char *)"regex", (char *)"" };
	char err[256] = "";

	ck_assert_int_eq(acl_add(&acl, 1, 3, av, 1, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "empty regex");
	acl_free(&acl);
}
END_TEST

START_TEST(test_too_many_rules)
{
	struct acl acl = { NULL, 0 };
	char err[256];
	int i;

	for (i = 0; i < ACL_RULES_MAX; i++)
		ck_assert_int_eq(add(&acl, 1, "deny 192.0.2.1", err, sizeof(err)), 0);
	ck_assert_int_eq(add(&acl, 1, "deny 192.0.2.1", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "too many rules (at most 1024)"));
	ck_assert_uint_eq(acl.n, ACL_RULES_MAX);
	acl_free(&acl);
	ck_assert_uint_eq(acl.n, 0);
	ck_assert_ptr_null(acl.rules);
}
END_TEST

/* ---- matching ------------------------------------------------------------------------ */

static struct sockaddr_storage *
sa_of(const char *text)
{
	static struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	else
		ck_abort_msg("bad test address %s", text);
	return &ss;
}

static struct acl
build(const char *const *rules)
{
	struct acl acl = { NULL, 0 };
	char err[512];
	size_t i;

	for (i = 0; rules[i] != NULL; i++) {
		ck_assert_msg(add(&acl, 1, rules[i], err, sizeof(err)) == 0, "%s: %s",
		    rules[i], err);
		acl.rules[acl.n - 1].line = (int)i + 1;
	}
	return acl;
}

/* The rule line that matched, 0 for none, -1 for "need the name". */
static int
which(const struct acl *acl, const char *addr, const char *name)
{
	const struct acl_rule *r;
	int need = 7;

	r = acl_match(acl, (struct sockaddr *)sa_of(addr), name, &need);
	if (r != NULL) {
		ck_assert_int_eq(need, 0);
		return r->line;
	}
	return need ? -1 : 0;
}

START_TEST(test_first_match)
{
	static const char *const rules[] = {
		"allow 192.0.2.7",		/* 1 */
		"deny 192.0.2.0/24",		/* 2 */
		"allow 2001:db8::/32",		/* 3 */
		"deny name *.bad.example",	/* 4 */
		"allow name good.example",	/* 5 */
		"deny regex ^dyn-[0-9]+\\.",	/* 6 */
		"allow regex \\.example$",	/* 7 */
		"deny 0.0.0.0/0",		/* 8 */
		NULL
	};
	struct acl acl = build(rules);

	ck_assert_int_eq(acl.n, 8);
	ck_assert_int_eq(acl.rules[0].action, ACL_ALLOW);
	ck_assert_int_eq(acl.rules[1].action, ACL_DENY);
	ck_assert_int_eq(acl.rules[3].type, ACL_NAME);
	ck_assert_int_eq(acl.rules[5].type, ACL_REGEX);
	ck_assert_int_eq(acl_has_names(&acl), 1);

	/* network rules before any name rule: decided without a name */
	ck_assert_int_eq(which(&acl, "192.0.2.7", NULL), 1);
	ck_assert_int_eq(which(&acl, "192.0.2.8", NULL), 2);
	ck_assert_int_eq(which(&acl, "::ffff:192.0.2.8", NULL), 2);
	ck_assert_int_eq(which(&acl, "2001:db8::25", NULL), 3);
	/* a name rule is reached: the caller must look the name up */
	ck_assert_int_eq(which(&acl, "198.51.100.1", NULL), -1);
	ck_assert_int_eq(which(&acl, "2001:db9::1", NULL), -1);
	/* with the name */
	ck_assert_int_eq(which(&acl, "198.51.100.1", "mx.bad.example"), 4);
	ck_assert_int_eq(which(&acl, "198.51.100.1", "MX.Bad.Example."), 4);
	ck_assert_int_eq(which(&acl, "198.51.100.1", "good.example"), 5);
	ck_assert_int_eq(which(&acl, "198.51.100.1", "dyn-1234.isp.example"), 6);
	ck_assert_int_eq(which(&acl, "198.51.100.1", "DYN-99.isp.example"), 6);
	ck_assert_int_eq(which(&acl, "198.51.100.1", "dyn-x.isp.example"), 7);
	ck_assert_int_eq(which(&acl, "198.51.100.1", "mail.example."), 7);
	ck_assert_int_eq(which(&acl, "198.51.100.1", "mail.example.org"), 8);
	/* no confirmed name: name rules do not match, network rules do */
	ck_assert_int_eq(which(&acl, "198.51.100.1", ""), 8);
	ck_assert_int_eq(which(&acl, "2001:db9::1", ""), 0);
	/* the name does not override an earlier network rule */
	ck_assert_int_eq(which(&acl, "192.0.2.8", "good.example"), 2);
	acl_free(&acl);
}
END_TEST

START_TEST(test_empty_list)
{
	struct acl acl = { NULL, 0 };

	ck_assert_int_eq(which(&acl, "192.0.2.1", NULL), 0);
	ck_assert_int_eq(which(&acl, "192.0.2.1", "x.example"), 0);
	ck_assert_int_eq(acl_has_names(&acl), 0);
	acl_free(&acl);
}
END_TEST

START_TEST(test_networks_only)
{
	static const char *const rules[] = { "deny 192.0.2.0/24", "allow ::/0", NULL };
	struct acl acl = build(rules);

	ck_assert_int_eq(acl_has_names(&acl), 0);
	ck_assert_int_eq(which(&acl, "198.51.100.1", NULL), 0);
	ck_assert_int_eq(which(&acl, "2001:db8::1", NULL), 2);
	acl_free(&acl);
}
END_TEST

/* A pathological pattern hits PCRE2's match limit: no match, no stall. */
START_TEST(test_regex_match_limit)
{
	static const char *const rules[] = { "deny regex ^(a+)+$", NULL };
	struct acl acl = build(rules);
	char name[256];
	time_t t0 = time(NULL);

	memset(name, 'a', 60);
	name[60] = '!';
	name[61] = '\0';
	ck_assert_int_eq(which(&acl, "192.0.2.1", name), 0);
	ck_assert_msg(time(NULL) - t0 <= 2, "the match limit did not stop backtracking");
	name[60] = '\0';
	ck_assert_int_eq(which(&acl, "192.0.2.1", name), 1);
	acl_free(&acl);
}
END_TEST

START_TEST(test_action_name)
{
	ck_assert_str_eq(acl_action_name(ACL_ALLOW), "allow");
	ck_assert_str_eq(acl_action_name(ACL_DENY), "deny");
}
END_TEST

static Suite *
acl_suite(void)
{
	Suite *s = suite_create("acl");
	TCase *tc;

	tc = tcase_create("patterns");
	tcase_add_loop_test(tc, test_pattern_valid, 0, sizeof(patterns) / sizeof(patterns[0]));
	tcase_add_loop_test(tc, test_domain_match, 0, sizeof(dmatch) / sizeof(dmatch[0]));
	suite_add_tcase(s, tc);

	tc = tcase_create("rules");
	tcase_add_loop_test(tc, test_bad_rules, 0, sizeof(bad_rules) / sizeof(bad_rules[0]));
	tcase_add_test(tc, test_empty_regex);
	tcase_add_test(tc, test_too_many_rules);
	tcase_add_test(tc, test_action_name);
	suite_add_tcase(s, tc);

	tc = tcase_create("match");
	tcase_add_test(tc, test_first_match);
	tcase_add_test(tc, test_empty_list);
	tcase_add_test(tc, test_networks_only);
	tcase_add_test(tc, test_regex_match_limit);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(acl_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
