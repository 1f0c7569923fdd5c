/*
 * deliverd_route.c - where the mail of a destination domain goes
 * (deliverd, unprivileged, chrooted): a remote-domain block's route, else
 * the smart host (unless direct-first), else the domain's MX hosts; and
 * the TLS policy, HELO choice and AUTH credentials that go with it.  Input:
 * the configuration (trusted) and a domain queued checked.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "deliverd.h"
#include "deliverd_dns.h"

static void
route_set_host(const struct config *c, const struct route_conf *rc, struct route *r)
{
	r->kind = rc->literal ? ROUTE_LITERAL : ROUTE_HOST;
	(void)strlcpy(r->host, rc->host, sizeof(r->host));
	r->port = rc->port ? rc->port : c->outbound_port;
	r->fallback = 0;
}

static void
route_key(struct route *r, const struct remote_domain_conf *rd)
{
	/*
	 * Connections are shared by mail with the same target and the same
	 * terms: TLS policy, HELO and credentials come from the block.
	 */
	(void)snprintf(r->key, sizeof(r->key), "%s:%s:%u|%s|%d", r->kind == ROUTE_MX ?
	    "mx" : "host", r->host, (unsigned)r->port, rd ? rd->pattern : "", (int)r->tls);
}

static void route_terms(const struct config *, const struct remote_domain_conf *,
    struct route *, int);

void
route_decide(const struct config *c, const char *domain, struct route *r)
{
	const struct remote_domain_conf *rd = config_remote_domain(c, domain);

	memset(r, 0, sizeof(*r));
	if (rd && rd->route.host[0] != '\0')
		route_set_host(c, &rd->route, r);
	else if (c->smart_host.host[0] != '\0' && !c->direct_first)
		route_set_host(c, &c->smart_host, r);
	else {
		r->kind = ROUTE_MX;
		(void)strlcpy(r->host, domain, sizeof(r->host));
		r->port = c->outbound_port;
		r->fallback = c->smart_host.host[0] != '\0' && c->direct_first;
	}
	route_terms(c, rd, r, r->kind != ROUTE_MX && !(rd && rd->route.host[0] != '\0'));
}

/*
 * TLS policy, HELO and credentials.  Through the smart host, its own terms
 * (smart-host ... tls/auth) come first; else the destination's
 * remote-domain block's; else outbound-tls.
 */
static void
route_terms(const struct config *c, const struct remote_domain_conf *rd,
    struct route *r, int via_smart_host)
{
	const char *user = NULL, *password = NULL;
	enum tls_policy own = TLS_POLICY_DEFAULT;

	if (via_smart_host && (c->smart_host_tls != TLS_POLICY_DEFAULT ||
	    c->smart_host_auth_user[0] != '\0')) {
		own = c->smart_host_tls;
		if (c->smart_host_auth_user[0] != '\0') {
			user = c->smart_host_auth_user;
			password = c->smart_host_auth_password;
		}
	} else if (rd) {
		own = rd->tls;
		if (rd->auth_user[0] != '\0') {
			user = rd->auth_user;
			password = rd->auth_password;
		}
	}
	r->tls = own != TLS_POLICY_DEFAULT ? own : c->outbound_tls;
	if (r->tls == TLS_POLICY_DEFAULT)
		r->tls = TLS_POLICY_OPPORTUNISTIC;
	r->helo = rd && (rd->flags & RD_HELO);
	r->auth_user[0] = r->auth_password[0] = '\0';
	r->auth_plaintext = 0;
	if (user != NULL) {
		(void)strlcpy(r->auth_user, user, sizeof(r->auth_user));
		(void)strlcpy(r->auth_password, password, sizeof(r->auth_password));
		r->auth_plaintext = own == TLS_POLICY_NO;
	}
	route_key(r, rd);
}

int
route_fallback(const struct config *c, const char *domain, struct route *r)
{
	if (c->smart_host.host[0] == '\0')
		return -1;
	route_set_host(c, &c->smart_host, r);
	route_terms(c, config_remote_domain(c, domain), r, 1);
	return 0;
}

int
route_literal(const struct route *r, struct mx_result *mx)
{
	struct mx_host *h = &mx->hosts[0];
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&h->addrs[0];
	struct sockaddr_in *s4 = (struct sockaddr_in *)&h->addrs[0];
	const char *a = r->host;
	char buf[CONF_NAME_MAX];

	memset(mx, 0, sizeof(*mx));
	/* "IPv6:2001:db8::1" (RFC 5321 4.1.3) or the bare address */
	if (strncasecmp(a, "IPv6:", 5) == 0)
		a += 5;
	if (strlcpy(buf, a, sizeof(buf)) >= sizeof(buf))
		return -1;
	if (inet_pton(AF_INET6, buf, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(r->port);
		h->addrlens[0] = sizeof(*s6);
	} else if (inet_pton(AF_INET, buf, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(r->port);
		h->addrlens[0] = sizeof(*s4);
	} else
		return -1;
	(void)strlcpy(h->name, buf, sizeof(h->name));
	h->naddrs = 1;
	mx->nhosts = 1;
	mx->status = MX_OK;
	return 0;
}
