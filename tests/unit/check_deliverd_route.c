/*
 * check_deliverd_route.c - unit tests of deliverd/deliverd_route.c: a
 * remote-domain route wins over the smart host, which wins over MX unless
 * direct-first; the TLS policy, HELO and AUTH of the destination's block;
 * destinations with other terms get other pool keys; address literals.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>

#include "config.h"
#include "deliverd.h"
#include "deliverd_dns.h"

static struct config *
conf_new(void)
{
	static const char text[] = "hostname mr.test\n";
	struct config *c;
	FILE *fp;

	ck_assert_ptr_nonnull(fp = fmemopen((void *)text, sizeof(text) - 1, "r"));
	ck_assert_ptr_nonnull(c = config_parse(fp, "test.conf", NULL, NULL));
	fclose(fp);
	c->outbound_port = 2525;
	return c;
}

static struct remote_domain_conf *
block(struct config *c, const char *pattern)
{
	struct remote_domain_conf *rd = calloc(1, sizeof(*rd));

	ck_assert_ptr_nonnull(rd);
	(void)strlcpy(rd->pattern, pattern, sizeof(rd->pattern));
	TAILQ_INSERT_TAIL(&c->remote_domains, rd, entry);
	return rd;
}

/* The blocks this test made (config_free() may not know them yet). */
static void
conf_free(struct config *c)
{
	struct remote_domain_conf *rd;

	while ((rd = TAILQ_FIRST(&c->remote_domains)) != NULL) {
		TAILQ_REMOVE(&c->remote_domains, rd, entry);
		free(rd);
	}
	config_free(c);
}

START_TEST(test_mx_by_default)
{
	struct config *c = conf_new();
	struct route r;

	route_decide(c, "example.com", &r);
	ck_assert_int_eq(r.kind, ROUTE_MX);
	ck_assert_str_eq(r.host, "example.com");
	ck_assert_uint_eq(r.port, 2525);
	ck_assert_int_eq(r.tls, TLS_POLICY_OPPORTUNISTIC);
	ck_assert_int_eq(r.fallback, 0);
	ck_assert_int_eq(route_fallback(c, "example.com", &r), -1);
	conf_free(c);
}
END_TEST

START_TEST(test_smart_host)
{
	struct config *c = conf_new();
	struct route r, r2;

	(void)strlcpy(c->smart_host.host, "relay.example.net", sizeof(c->smart_host.host));
	route_decide(c, "example.com", &r);
	ck_assert_int_eq(r.kind, ROUTE_HOST);
	ck_assert_str_eq(r.host, "relay.example.net");
	ck_assert_uint_eq(r.port, 2525);
	/* another domain, same terms: the same destination */
	route_decide(c, "example.org", &r2);
	ck_assert_str_eq(r.key, r2.key);
	/* direct-first: MX, then the smart host */
	c->direct_first = 1;
	route_decide(c, "example.com", &r);
	ck_assert_int_eq(r.kind, ROUTE_MX);
	ck_assert_int_eq(r.fallback, 1);
	ck_assert_int_eq(route_fallback(c, "example.com", &r), 0);
	ck_assert_int_eq(r.kind, ROUTE_HOST);
	ck_assert_str_eq(r.host, "relay.example.net");
	ck_assert_int_eq(r.fallback, 0);
	conf_free(c);
}
END_TEST

START_TEST(test_remote_domain)
{
	struct config *c = conf_new();
	struct remote_domain_conf *rd;
	struct route r, r2;

	(void)strlcpy(c->smart_host.host, "relay.example.net", sizeof(c->smart_host.host));
	rd = block(c, "example.com");
	rd->route.literal = 1;
	(void)strlcpy(rd->route.host, "192.0.2.7", sizeof(rd->route.host));
	rd->route.port = 587;
	rd->tls = TLS_POLICY_REQUIRE;
	rd->flags = RD_HELO;
	(void)strlcpy(rd->auth_user, "u", sizeof(rd->auth_user));
	(void)strlcpy(rd->auth_password, "p", sizeof(rd->auth_password));
	route_decide(c, "example.com", &r);
	ck_assert_int_eq(r.kind, ROUTE_LITERAL);
	ck_assert_str_eq(r.host, "192.0.2.7");
	ck_assert_uint_eq(r.port, 587);
	ck_assert_int_eq(r.tls, TLS_POLICY_REQUIRE);
	ck_assert_int_eq(r.helo, 1);
	ck_assert_str_eq(r.auth_user, "u");
	ck_assert_int_eq(r.auth_plaintext, 0);
	/* a subdomain block without a route: the smart host, with its terms */
	rd = block(c, "*.example.org");
	rd->tls = TLS_POLICY_NO;
	(void)strlcpy(rd->auth_user, "v", sizeof(rd->auth_user));
	route_decide(c, "a.example.org", &r);
	ck_assert_int_eq(r.kind, ROUTE_HOST);
	ck_assert_int_eq(r.tls, TLS_POLICY_NO);
	ck_assert_str_eq(r.auth_user, "v");
	ck_assert_int_eq(r.auth_plaintext, 1);
	route_decide(c, "example.org", &r2);	/* not a strict subdomain */
	ck_assert_int_eq(r2.tls, TLS_POLICY_OPPORTUNISTIC);
	ck_assert_str_eq(r2.auth_user, "");
	ck_assert_str_ne(r.key, r2.key);
	conf_free(c);
}
END_TEST

START_TEST(test_literal)
{
	struct mx_result mx;
	struct route r;

	memset(&r, 0, sizeof(r));
	r.kind = ROUTE_LITERAL;
	r.port = 25;
	(void)strlcpy(r.host, "127.0.0.1", sizeof(r.host));
	ck_assert_int_eq(route_literal(&r, &mx), 0);
	ck_assert_uint_eq(mx.nhosts, 1);
	ck_assert_uint_eq(mx.hosts[0].naddrs, 1);
	ck_assert_int_eq(mx.hosts[0].addrs[0].ss_family, AF_INET);
	(void)strlcpy(r.host, "IPv6:::1", sizeof(r.host));
	ck_assert_int_eq(route_literal(&r, &mx), 0);
	ck_assert_int_eq(mx.hosts[0].addrs[0].ss_family, AF_INET6);
	ck_assert_str_eq(mx.hosts[0].name, "::1");
	(void)strlcpy(r.host, "mx.example.com", sizeof(r.host));
	ck_assert_int_eq(route_literal(&r, &mx), -1);
}
END_TEST

static Suite *
route_suite(void)
{
	Suite *s = suite_create("deliverd_route");
	TCase *tc = tcase_create("route");

	tcase_add_test(tc, test_mx_by_default);
	tcase_add_test(tc, test_smart_host);
	tcase_add_test(tc, test_remote_domain);
	tcase_add_test(tc, test_literal);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(route_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
