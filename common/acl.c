/*
 * acl.c - ordered allow/deny rules and domain patterns (mail layer).
 *
 * Rules are built in every process that parses the configuration (mailrootd
 * as root, the daemons unprivileged) from the administrator's file, and
 * matched in smtpd against a client's address (from accept(2)) and its
 * forward-confirmed DNS name.  The name is data from the network: it has
 * been checked as a domain name by smtpd_dns.c, and a regex runs on it with
 * PCRE2 match and depth limits, so a pathological pattern cannot stall the
 * daemon.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <sys/types.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pcre2.h>

#include "acl.h"
#include "smtp_parse.h"
#include "util.h"

#define REGEX_MATCH_LIMIT	100000
#define REGEX_DEPTH_LIMIT	1000

const char *
acl_action_name(enum acl_action a)
{
	return a == ACL_ALLOW ? "allow" : "deny";
}

int
acl_domain_pattern_valid(const char *pattern, int allow_star)
{
	if (strcmp(pattern, "*") == 0)
		return allow_star;
	if (strncmp(pattern, "*.", 2) == 0)
		pattern += 2;
	return pattern[0] != '[' && strchr(pattern, '*') == NULL &&
	    smtp_domain_valid(pattern, 0);
}

int
acl_domain_match(const char *pattern, const char *name)
{
	size_t nlen = strlen(name), plen;

	if (nlen > 0 && name[nlen - 1] == '.')
		nlen--;
	if (nlen == 0)
		return 0;
	if (strcmp(pattern, "*") == 0)
		return 1;
	if (strncmp(pattern, "*.", 2) == 0) {
		/* ".example.com" must end the name, after at least one label. */
		pattern++;
		plen = strlen(pattern);
		return nlen > plen && strncasecmp(name + nlen - plen, pattern, plen) == 0;
	}
	plen = strlen(pattern);
	return nlen == plen && strncasecmp(name, pattern, plen) == 0;
}

static int
regex_compile(struct acl_rule *r, const char *src, char *err, size_t errsz)
{
	PCRE2_UCHAR msg[256];
	PCRE2_SIZE off;
	pcre2_code *re;
	int code;

	re = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED,
	    PCRE2_CASELESS | PCRE2_NEVER_UTF | PCRE2_NEVER_BACKSLASH_C, &code, &off,
	    NULL);
	if (re == NULL) {
		if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
			strlcpy((char *)msg, "unknown error", sizeof(msg));
		snprintf(err, errsz, "bad regex \"%s\": %s at offset %zu", src,
		    (char *)msg, (size_t)off);
		return -1;
	}
	r->re = re;
	return 0;
}

int
acl_add(struct acl *acl, int names, int ac, char **av, int line, char *err,
    size_t errsz)
{
	struct acl_rule r, *nr;

	memset(&r, 0, sizeof(r));
	r.line = line;
	if (ac < 2) {
		snprintf(err, errsz, "expected allow or deny and %s",
		    names ? "a network, \"name PATTERN\" or \"regex PCRE\"" : "a network");
		return -1;
	}
	if (strcmp(av[0], "allow") == 0)
		r.action = ACL_ALLOW;
	else if (strcmp(av[0], "deny") == 0)
		r.action = ACL_DENY;
	else {
		snprintf(err, errsz, "expected allow or deny, not \"%s\"", av[0]);
		return -1;
	}
	if (acl->n >= ACL_RULES_MAX) {
		snprintf(err, errsz, "too many rules (at most %d)", ACL_RULES_MAX);
		return -1;
	}
	if (names && (strcmp(av[1], "name") == 0 || strcmp(av[1], "regex") == 0)) {
		r.type = strcmp(av[1], "name") == 0 ? ACL_NAME : ACL_REGEX;
		if (ac != 3) {
			snprintf(err, errsz, "%s %s takes one pattern", av[0], av[1]);
			return -1;
		}
		if (r.type == ACL_NAME && !acl_domain_pattern_valid(av[2], 1)) {
			snprintf(err, errsz, "bad name pattern \"%s\" (a domain name, "
			    "*.domain or *)", av[2]);
			return -1;
		}
		if (r.type == ACL_REGEX && av[2][0] == '\0') {
			snprintf(err, errsz, "empty regex");
			return -1;
		}
		if (r.type == ACL_REGEX && regex_compile(&r, av[2], err, errsz) == -1)
			return -1;
		if ((r.pattern = strdup(av[2])) == NULL) {
			pcre2_code_free(r.re);
			snprintf(err, errsz, "out of memory");
			return -1;
		}
	} else {
		r.type = ACL_NET;
		if (ac != 2) {
			snprintf(err, errsz, "%s takes one network%s", av[0],
			    names ? ", or \"name PATTERN\" or \"regex PCRE\"" : "");
			return -1;
		}
		if (netmask_parse(av[1], &r.net, err, errsz) == -1)
			return -1;
	}
	nr = reallocarray(acl->rules, acl->n + 1, sizeof(*nr));
	if (nr == NULL) {
		free(r.pattern);
		pcre2_code_free(r.re);
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	acl->rules = nr;
	acl->rules[acl->n++] = r;
	return 0;
}

void
acl_free(struct acl *acl)
{
	size_t i;

	for (i = 0; i < acl->n; i++) {
		free(acl->rules[i].pattern);
		pcre2_code_free(acl->rules[i].re);
	}
	free(acl->rules);
	acl->rules = NULL;
	acl->n = 0;
}

int
acl_has_names(const struct acl *acl)
{
	size_t i;

	for (i = 0; i < acl->n; i++)
		if (acl->rules[i].type != ACL_NET)
			return 1;
	return 0;
}

static int
regex_match(pcre2_code *re, const char *name)
{
	pcre2_match_context *mc;
	pcre2_match_data *md;
	size_t len = strlen(name);
	int rc;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if ((md = pcre2_match_data_create_from_pattern(re, NULL)) == NULL)
		return 0;
	if ((mc = pcre2_match_context_create(NULL)) == NULL) {
		pcre2_match_data_free(md);
		return 0;
	}
	pcre2_set_match_limit(mc, REGEX_MATCH_LIMIT);
	pcre2_set_depth_limit(mc, REGEX_DEPTH_LIMIT);
	rc = pcre2_match(re, (PCRE2_SPTR)name, len, 0, 0, md, mc);
	pcre2_match_context_free(mc);
	pcre2_match_data_free(md);
	/* An error (match limit) is no match: the rule is skipped. */
	return rc >= 0;
}

const struct acl_rule *
acl_match(const struct acl *acl, const struct sockaddr *sa, const char *name,
    int *need_name)
{
	const struct acl_rule *r;
	size_t i;

	*need_name = 0;
	for (i = 0; i < acl->n; i++) {
		r = &acl->rules[i];
		switch (r->type) {
		case ACL_NET:
			if (netmask_match_sa(&r->net, sa))
				return r;
			break;
		case ACL_NAME:
		case ACL_REGEX:
			if (name == NULL) {
				*need_name = 1;
				return NULL;
			}
			if (name[0] == '\0')
				break;
			if (r->type == ACL_NAME ? acl_domain_match(r->pattern, name) :
			    regex_match(r->re, name))
				return r;
			break;
		}
	}
	return NULL;
}
