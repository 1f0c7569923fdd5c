/*
 * acl.h - ordered allow/deny rules on a client's address and DNS name, and
 * domain patterns (mail layer).
 *
 * The configuration's "access" and "relay" statements become one struct acl
 * each, in file order; smtpd asks which rule a client matches first.  Name
 * and regex rules are matched only against a forward-confirmed reverse
 * name, which the caller looks up (smtpd_dns.c); this module does no I/O.
 */
#ifndef MR_ACL_H
#define MR_ACL_H

#include <stddef.h>
#include <sys/socket.h>

#include "netmask.h"

#define ACL_RULES_MAX	1024	/* rules in one list */

enum acl_action {
	ACL_ALLOW = 1,
	ACL_DENY
};

enum acl_type {
	ACL_NET,		/* address or prefix */
	ACL_NAME,		/* domain pattern: name, *.name, or * */
	ACL_REGEX		/* PCRE2 pattern, caseless, unanchored */
};

struct acl_rule {
	enum acl_action	 action;
	enum acl_type	 type;
	struct netmask	 net;		/* ACL_NET */
	char		*pattern;	/* ACL_NAME, ACL_REGEX: the text */
	void		*re;		/* ACL_REGEX: pcre2_code * */
	int		 line;		/* of the configuration file */
};

struct acl {
	struct acl_rule	*rules;
	size_t		 n;
};

/*
 * Add the rule "allow|deny NETWORK", "allow|deny name PATTERN" or
 * "allow|deny regex PCRE" given as av[0..ac) (the keyword itself excluded).
 * `names` is 0 when only networks are allowed.  A regex is compiled here, so
 * a bad one is a configuration error.  Returns 0, or -1 with the reason in
 * err (the list is unchanged).
 */
int	acl_add(struct acl *, int names, int ac, char **av, int line,
	    char *err, size_t errsz);
void	acl_free(struct acl *);
/* 1 when some rule matches names (ACL_NAME or ACL_REGEX). */
int	acl_has_names(const struct acl *);

/*
 * The first rule that matches the client at `sa` with the forward-confirmed
 * name `name` ("" when it has none), or NULL when none does.  With name ==
 * NULL (not looked up yet), the walk stops at the first name rule it
 * reaches: NULL is returned and *need_name set to 1, so that the caller
 * looks the name up and asks again.
 */
const struct acl_rule *acl_match(const struct acl *, const struct sockaddr *sa,
	    const char *name, int *need_name);

/* "allow" or "deny". */
const char *acl_action_name(enum acl_action);

/*
 * Domain patterns: "example.com" (that domain only), "*.example.com" (its
 * subdomains, at any depth, not example.com itself), "*" (any name; where
 * the caller allows it).  Compared without regard to case; a trailing dot
 * of the name is ignored.
 */
int	acl_domain_pattern_valid(const char *pattern, int allow_star);
int	acl_domain_match(const char *pattern, const char *name);

#endif
