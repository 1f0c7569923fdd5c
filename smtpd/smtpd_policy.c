/*
 * smtpd_policy.c - connection control and relay decisions (smtpd,
 * unprivileged, chrooted).
 *
 * Inputs: the client's address (from accept(2)), its forward-confirmed
 * reverse name (smtpd_dns.c: "" when it has none), whether it has
 * authenticated, and the recipient of a RCPT command (parsed by
 * smtp_parse_command; untrusted).  The rules come from mailroot.conf(5):
 * "access" and "relay" lists, first match wins, else the -default setting.
 * The default configuration relays nothing: a recipient outside the local
 * domains is accepted only from a client the relay rules allow, from an
 * authenticated client (relay-authenticated), or for a relay-domain or a
 * remote-domain with allow-relay.  ETRN (RFC 1985) is for the clients that
 * may relay by themselves: by network or by authentication.
 * Nothing here blocks, allocates or keeps a pointer into the configuration.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>

#include "acl.h"
#include "config.h"
#include "daemon.h"
#include "smtpd.h"
#include "util.h"

/*
 * May the client talk to us at all?  ACL_ALLOW or ACL_DENY, with the rule
 * that decided in `why`; 0 when a name rule is reached before the client's
 * name is known (look it up, then ask again).
 */
int
policy_access(const struct session *s, char *why, size_t whysz)
{
	const struct config *c = env->conf;
	const struct acl_rule *r;
	const char *name = NULL;
	int need;

	if (s->dns_status != DNS_NONE)
		name = s->rdns;
	r = acl_match(&c->access, (const struct sockaddr *)&s->ss, name, &need);
	if (r != NULL) {
		snprintf(why, whysz, "access:%d", r->line);
		return r->action;
	}
	if (need)
		return 0;
	snprintf(why, whysz, "access-default");
	return c->access_default;
}

/*
 * May this client relay by itself, whatever the recipient: authenticated
 * (with relay-authenticated yes), or allowed by the relay rules?  1 or 0,
 * with the reason in `why`.
 */
static int
policy_client_relays(const struct session *s, char *why, size_t whysz)
{
	const struct config *c = env->conf;
	const struct acl_rule *r;
	int need;

	if (s->auth_user[0] != '\0' && c->relay_authenticated) {
		snprintf(why, whysz, "authenticated");
		return 1;
	}
	r = acl_match(&c->relay, (const struct sockaddr *)&s->ss, "", &need);
	if (r != NULL) {
		snprintf(why, whysz, "rule=relay:%d", r->line);
		return r->action == ACL_ALLOW;
	}
	snprintf(why, whysz, "rule=relay-default");
	return c->relay_default == ACL_ALLOW;
}

/*
 * Where may `rcpt` go?  A local recipient always; a remote one when the
 * domain is a relay-domain or a remote-domain with allow-relay, the client
 * authenticated (and relay-authenticated is yes), or the relay rules allow
 * the client's address.  `why` says which, for the log.
 */
enum policy_rcpt
policy_rcpt(const struct session *s, const char *rcpt, char *why, size_t whysz)
{
	const struct config *c = env->conf;
	const struct remote_domain_conf *rd;
	const char *domain;
	size_t i;

	if (config_is_local_rcpt(c, rcpt)) {
		snprintf(why, whysz, "local");
		return POLICY_RCPT_LOCAL;
	}
	if (smtp_addr_domain(rcpt, &domain) == -1) {
		/* The parser lets only <Postmaster> through without a domain. */
		snprintf(why, whysz, "rule=no-domain");
		return POLICY_RCPT_DENIED;
	}
	for (i = 0; i < c->nrelay_domains; i++) {
		if (acl_domain_match(c->relay_domains[i], domain)) {
			snprintf(why, whysz, "relay-domain=%s", c->relay_domains[i]);
			return POLICY_RCPT_RELAY;
		}
	}
	if ((rd = config_remote_domain(c, domain)) != NULL &&
	    (rd->flags & RD_ALLOW_RELAY)) {
		snprintf(why, whysz, "remote-domain=%s", rd->pattern);
		return POLICY_RCPT_RELAY;
	}
	return policy_client_relays(s, why, whysz) ? POLICY_RCPT_RELAY :
	    POLICY_RCPT_DENIED;
}

/*
 * May the client ask for a queue run with ETRN?  Only one that may relay
 * by itself (RFC 1985 leaves the choice to the server; 459 otherwise), so
 * that a stranger cannot make us flush the queue of a held domain.
 */
int
policy_etrn(const struct session *s, char *why, size_t whysz)
{
	return policy_client_relays(s, why, whysz);
}
