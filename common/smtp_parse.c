/*
 * smtp_parse.c - SMTP command lines and address syntax (mail layer; runs in
 * smtpd, also used by anything that must check an address).
 *
 * Trust boundary: every byte handed to these functions comes from an
 * unauthenticated network peer.  They are pure: no I/O, no allocation,
 * bounded stack, and a line is never assumed to be NUL-terminated; every
 * index is checked against the length the caller gave.  What
 * smtp_parse_command() returns as SMTP_PARSE_OK has passed the RFC 5321
 * grammar named at each function, with only these leniencies:
 *  - trailing SP/HTAB at the end of a line is ignored;
 *  - one or more SP may separate the verb, the arguments and the parameters;
 *  - MAIL FROM: and RCPT TO: may be followed by SP before the "<".
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "smtp_parse.h"

/* Largest text inside an address literal's brackets: "IPv6:" + 45. */
#define ADDR_LITERAL_MAX	64
#define LABEL_MAX		63	/* RFC 1035 2.3.4 */
#define ENVID_MAX		100	/* RFC 3461 4.4 */
#define ORCPT_MAX		500	/* RFC 3461 4.2 */
#define SIZE_DIGITS_MAX		20	/* RFC 1870 size-value */

/* ---- character classes (ASCII only, locale independent) ---------------- */

static int
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
is_hexupper(int c)
{
	return is_digit(c) || (c >= 'A' && c <= 'F');
}

static int
to_upper(int c)
{
	return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

/* atext of RFC 5322 3.2.3, used by RFC 5321 Atom. */
static int
is_atext(int c)
{
	if (is_alpha(c) || is_digit(c))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* s[0..len) equals the ASCII literal `lit`, ignoring case. */
static int
caseeq(const char *s, size_t len, const char *lit)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (lit[i] == '\0' || to_upper((unsigned char)s[i]) !=
		    to_upper((unsigned char)lit[i]))
			return 0;
	return lit[len] == '\0';
}

/*
 * Length of the well-formed UTF-8 sequence of a non-ASCII character at
 * s[0..len) (RFC 3629 UTF8-2/3/4: no overlong forms, no surrogates, nothing
 * above U+10FFFF), or 0.
 */
size_t
smtp_utf8_len(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	uint32_t cp;
	size_t n, i;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* ---- addresses ---------------------------------------------------------- */

/* RFC 5321 4.1.3 address-literal: "[" IPv4 "]" or "[IPv6:" IPv6 "]". */
static const char *
addr_literal_check(const char *d, size_t len)
{
	char buf[ADDR_LITERAL_MAX + 1];
	unsigned char addr[sizeof(struct in6_addr)];
	const char *p;
	size_t n;
	int af;

	if (len < 3 || d[0] != '[' || d[len - 1] != ']')
		return "bad address literal";
	p = d + 1;
	n = len - 2;
	if (n >= 5 && caseeq(p, 5, "IPv6:")) {
		af = AF_INET6;
		p += 5;
		n -= 5;
	} else
		af = AF_INET;	/* General-address-literal is not supported */
	/* inet_pton() wants a C string: no NUL may hide a suffix. */
	if (n == 0 || n > ADDR_LITERAL_MAX || memchr(p, '\0', n) != NULL)
		return "bad address literal";
	memcpy(buf, p, n);
	buf[n] = '\0';
	if (inet_pton(af, buf, addr) != 1)
		return "bad address literal";
	return NULL;
}

/*
 * RFC 5321 4.1.2 Domain: sub-domain *("." sub-domain), sub-domain = Let-dig
 * [Ldh-str] (labels of at most 63 octets, at most 255 in all), or an
 * address-literal.  With `utf8`, a label may also hold UTF-8 characters
 * (RFC 6531 3.3 U-label; not checked against IDNA rules).
 */
static const char *
domain_check(const char *d, size_t len, int utf8)
{
	size_t i, n, label = 0;
	int prev = '.';
	unsigned char c;

	if (len == 0)
		return "empty domain";
	if (d[0] == '[')
		return addr_literal_check(d, len);
	if (len > SMTP_DOMAIN_MAX)
		return "domain too long";
	for (i = 0; i < len; i += n) {
		c = (unsigned char)d[i];
		n = 1;
		if (c == '.') {
			if (label == 0 || prev == '-')
				return "bad domain";
			label = 0;
			prev = c;
			continue;
		}
		if (c == '-') {
			if (label == 0)
				return "bad domain";
		} else if (!is_alpha(c) && !is_digit(c)) {
			if (c < 0x80 || !utf8 ||
			    (n = smtp_utf8_len(d + i, len - i)) == 0)
				return "bad domain";
		}
		label += n;
		if (label > LABEL_MAX)
			return "domain label too long";
		prev = c;
	}
	if (label == 0 || prev == '-')
		return "bad domain";
	return NULL;
}

/* Index of the DQUOTE closing the Quoted-string that opens s, or 0. */
static size_t
quoted_end(const char *s, size_t len)
{
	size_t i;

	for (i = 1; i < len; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			return i;
	}
	return 0;
}

/*
 * RFC 5321 4.1.2 Local-part = Dot-string / Quoted-string, at most 64 octets
 * (4.5.3.1.1).  With `utf8`, atext and qtextSMTP also take UTF-8 characters
 * (RFC 6531 3.3).
 */
static const char *
local_check(const char *s, size_t len, int utf8)
{
	size_t i, n;
	unsigned char c;
	int prevdot = 1;

	if (len == 0)
		return "empty local part";
	if (len > SMTP_LOCAL_MAX)
		return "local part too long";
	if (s[0] == '"') {
		/* Quoted-string = DQUOTE *QcontentSMTP DQUOTE */
		if (len < 2 || quoted_end(s, len) != len - 1)
			return "bad quoted local part";
		for (i = 1; i < len - 1; i += n) {
			c = (unsigned char)s[i];
			n = 1;
			if (c == '\\') {
				/* quoted-pairSMTP = %d92 %d32-126 */
				c = (unsigned char)s[i + 1];
				if (c < 32 || c > 126)
					return "bad quoted local part";
				n = 2;
			} else if (c >= 0x80) {
				if (!utf8 ||
				    (n = smtp_utf8_len(s + i, len - 1 - i)) == 0)
					return "bad quoted local part";
			} else if (c < 32 || c > 126)	/* qtextSMTP */
				return "bad quoted local part";
		}
		return NULL;
	}
	/* Dot-string = Atom *("." Atom) */
	for (i = 0; i < len; i += n) {
		c = (unsigned char)s[i];
		n = 1;
		if (c == '.') {
			if (prevdot)
				return "bad local part";
			prevdot = 1;
			continue;
		}
		if (!is_atext(c)) {
			if (c < 0x80 || !utf8 ||
			    (n = smtp_utf8_len(s + i, len - i)) == 0)
				return "bad local part";
		}
		prevdot = 0;
	}
	if (prevdot)
		return "bad local part";
	return NULL;
}

/* RFC 5321 4.1.2 Mailbox = Local-part "@" ( Domain / address-literal ). */
static const char *
mailbox_check(const char *s, size_t len, int utf8)
{
	const char *at, *why;
	size_t llen;

	if (len > SMTP_PATH_MAX - 2)
		return "path too long";
	if (len > 0 && s[0] == '"') {
		if ((llen = quoted_end(s, len)) == 0)
			return "bad quoted local part";
		llen++;
		if (llen >= len || s[llen] != '@')
			return "missing domain";
	} else {
		if ((at = memchr(s, '@', len)) == NULL)
			return "missing domain";
		llen = (size_t)(at - s);
	}
	if ((why = local_check(s, llen, utf8)) != NULL)
		return why;
	return domain_check(s + llen + 1, len - llen - 1, utf8);
}

/*
 * RFC 5321 4.1.2 Path = "<" [ A-d-l ":" ] Mailbox ">", at most 256 octets
 * (4.5.3.1.3); the obsolete source route A-d-l is checked and dropped.
 * On success *mb and *mblen point at the Mailbox inside s ("" for "<>").
 */
static const char *
path_check(const char *s, size_t len, int allow_null, int utf8,
    const char **mb, size_t *mblen)
{
	const char *p, *e, *why;
	size_t n, i;

	if (len < 2 || s[0] != '<' || s[len - 1] != '>')
		return "path not enclosed in <>";
	if (len > SMTP_PATH_MAX)
		return "path too long";
	p = s + 1;
	n = len - 2;
	if (n == 0) {
		if (!allow_null)
			return "null path not allowed";
		*mb = p;
		*mblen = 0;
		return NULL;
	}
	if (p[0] == '@') {
		/* A-d-l = At-domain *("," At-domain), At-domain = "@" Domain */
		i = 0;
		for (;;) {
			if (i >= n || p[i] != '@')
				return "bad source route";
			i++;
			if (i < n && p[i] == '[')
				e = memchr(p + i, ']', n - i);
			else
				e = NULL;
			if (e != NULL)
				e++;
			else
				for (e = p + i; e < p + n && *e != ',' &&
				    *e != ':'; e++)
					;
			if (domain_check(p + i, (size_t)(e - p) - i, utf8))
				return "bad source route";
			i = (size_t)(e - p);
			if (i >= n)
				return "bad source route";
			if (p[i++] == ':')
				break;
			if (p[i - 1] != ',')
				return "bad source route";
		}
		p += i;
		n -= i;
	}
	if ((why = mailbox_check(p, n, utf8)) != NULL)
		return why;
	*mb = p;
	*mblen = n;
	return NULL;
}

int
smtp_parse_path(const char *s, size_t len, int allow_null, int smtputf8,
    char *out, size_t outsz)
{
	const char *mb;
	size_t mblen;

	if (path_check(s, len, allow_null, smtputf8, &mb, &mblen) != NULL ||
	    mblen >= outsz)
		return -1;
	memcpy(out, mb, mblen);
	out[mblen] = '\0';
	return 0;
}

int
smtp_mailbox_valid(const char *addr, int smtputf8)
{
	return mailbox_check(addr, strlen(addr), smtputf8) == NULL;
}

int
smtp_domain_valid(const char *d, int smtputf8)
{
	return domain_check(d, strlen(d), smtputf8) == NULL;
}

int
smtp_addr_domain(const char *addr, const char **domain)
{
	const char *at;

	if ((at = strrchr(addr, '@')) == NULL || at[1] == '\0')
		return -1;
	*domain = at + 1;
	return 0;
}

/*
 * RFC 5321 4.1.1.3 and 4.5.1: "RCPT TO:<Postmaster>" without a domain must
 * be accepted, the local-part compared case-insensitively.  Only that bare
 * form matches: "postmaster@domain" is an ordinary mailbox whose domain the
 * caller must check like any other.
 */
int
smtp_is_postmaster(const char *addr)
{
	return caseeq(addr, strlen(addr), "postmaster");
}

/* ---- ESMTP parameters --------------------------------------------------- */

/* RFC 3461 4 xtext: xchar (%d33-42 / %d44-60 / %d62-126) / "+" 2HEXUPPER. */
static int
xtext_valid(const char *v, size_t len, int utf8)
{
	size_t i, n;
	unsigned char c;

	for (i = 0; i < len; i += n) {
		c = (unsigned char)v[i];
		n = 1;
		if (c == '+') {
			if (len - i < 3 || !is_hexupper(v[i + 1]) ||
			    !is_hexupper(v[i + 2]))
				return 0;
			n = 3;
		} else if (c >= 0x80) {
			/* RFC 6533 3 utf-8-addr-unitext (SMTPUTF8 only) */
			if (!utf8 || (n = smtp_utf8_len(v + i, len - i)) == 0)
				return 0;
		} else if (c < 33 || c > 126 || c == '=')
			return 0;
	}
	return 1;
}

/*
 * The value of the parameters Mailroot knows must match their own grammar:
 * SIZE (RFC 1870), BODY (RFC 6152, RFC 3030), SMTPUTF8 (RFC 6531), RET,
 * ENVID, NOTIFY, ORCPT (RFC 3461), AUTH (RFC 4954).  Other keywords pass
 * with the generic esmtp-param grammar; the session decides whether it
 * supports them (555) and on which command.
 */
static const char *
param_check(const struct smtp_param *p, int utf8)
{
	const char *v = p->value, *e, *semi;
	size_t len = strlen(v), i, n;
	int seen = 0, bit;

	if (strcmp(p->key, "SMTPUTF8") == 0)
		return len == 0 ? NULL : "SMTPUTF8 takes no value";
	if (strcmp(p->key, "SIZE") == 0) {
		if (len == 0 || len > SIZE_DIGITS_MAX)
			return "bad SIZE value";
		for (i = 0; i < len; i++)
			if (!is_digit(v[i]))
				return "bad SIZE value";
		return NULL;
	}
	if (strcmp(p->key, "BODY") == 0) {
		if (caseeq(v, len, "7BIT") || caseeq(v, len, "8BITMIME") ||
		    caseeq(v, len, "BINARYMIME"))
			return NULL;
		return "bad BODY value";
	}
	if (strcmp(p->key, "RET") == 0) {
		if (caseeq(v, len, "FULL") || caseeq(v, len, "HDRS"))
			return NULL;
		return "bad RET value";
	}
	if (strcmp(p->key, "ENVID") == 0) {
		if (len == 0 || len > ENVID_MAX || !xtext_valid(v, len, utf8))
			return "bad ENVID value";
		return NULL;
	}
	if (strcmp(p->key, "AUTH") == 0) {
		if (len == 0 || !xtext_valid(v, len, utf8))
			return "bad AUTH value";
		return NULL;
	}
	if (strcmp(p->key, "NOTIFY") == 0) {
		/* "NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" ), each once */
		if (caseeq(v, len, "NEVER"))
			return NULL;
		if (len == 0)
			return "bad NOTIFY value";
		for (i = 0; i <= len; i = n + 1) {
			e = memchr(v + i, ',', len - i);
			n = e != NULL ? (size_t)(e - v) : len;
			if (caseeq(v + i, n - i, "SUCCESS"))
				bit = 1;
			else if (caseeq(v + i, n - i, "FAILURE"))
				bit = 2;
			else if (caseeq(v + i, n - i, "DELAY"))
				bit = 4;
			else
				return "bad NOTIFY value";
			if (seen & bit)
				return "bad NOTIFY value";
			seen |= bit;
		}
		return NULL;
	}
	if (strcmp(p->key, "ORCPT") == 0) {
		/* addr-type ";" xtext, addr-type = atom */
		if (len > ORCPT_MAX || (semi = memchr(v, ';', len)) == NULL ||
		    semi == v || semi + 1 == v + len)
			return "bad ORCPT value";
		for (e = v; e < semi; e++)
			if (!is_atext((unsigned char)*e))
				return "bad ORCPT value";
		if (!xtext_valid(semi + 1, (size_t)(v + len - semi - 1), utf8))
			return "bad ORCPT value";
		return NULL;
	}
	return NULL;
}

/*
 * RFC 5321 4.1.2 Mail-parameters / Rcpt-parameters: esmtp-param *(SP
 * esmtp-param), esmtp-param = esmtp-keyword ["=" esmtp-value],
 * esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"),
 * esmtp-value = 1*(%d33-60 / %d62-126) (UTF-8 also taken here; the caller
 * rejects it unless the transaction is SMTPUTF8, RFC 6531 3.3).
 */
static const char *
params_parse(const char *s, size_t len, struct smtp_cmd *cmd)
{
	struct smtp_param *p;
	const char *tok, *eq;
	size_t i = 0, j, n, tlen, klen, vlen;
	unsigned char c;

	for (;;) {
		while (i < len && s[i] == ' ')
			i++;
		if (i == len)
			return NULL;
		tok = s + i;
		while (i < len && s[i] != ' ')
			i++;
		tlen = (size_t)(s + i - tok);
		eq = memchr(tok, '=', tlen);
		klen = eq != NULL ? (size_t)(eq - tok) : tlen;
		if (klen == 0 || klen >= sizeof(p->key))
			return "bad parameter keyword";
		if (!is_alpha(tok[0]) && !is_digit(tok[0]))
			return "bad parameter keyword";
		for (j = 1; j < klen; j++)
			if (!is_alpha(tok[j]) && !is_digit(tok[j]) &&
			    tok[j] != '-')
				return "bad parameter keyword";
		vlen = eq != NULL ? tlen - klen - 1 : 0;
		if (eq != NULL && vlen == 0)
			return "empty parameter value";
		for (j = 0; j < vlen; j += n) {
			c = (unsigned char)eq[1 + j];
			n = 1;
			if (c >= 0x80) {
				if ((n = smtp_utf8_len(eq + 1 + j, vlen - j)) == 0)
					return "bad parameter value";
			} else if (c < 33 || c > 126 || c == '=')
				return "bad parameter value";
		}
		if (cmd->nparams == SMTP_PARAMS_MAX)
			return "too many parameters";
		p = &cmd->params[cmd->nparams];
		for (j = 0; j < klen; j++)
			p->key[j] = (char)to_upper((unsigned char)tok[j]);
		p->key[klen] = '\0';
		for (j = 0; j < cmd->nparams; j++)
			if (strcmp(cmd->params[j].key, p->key) == 0)
				return "duplicate parameter";
		if (vlen >= sizeof(p->value))
			return "parameter value too long";
		if (vlen > 0)
			memcpy(p->value, eq + 1, vlen);
		p->value[vlen] = '\0';
		cmd->nparams++;
	}
}

/* 1 when some parameter value holds a non-ASCII octet. */
static int
params_8bit(const struct smtp_cmd *cmd)
{
	const unsigned char *v;
	size_t i;

	for (i = 0; i < cmd->nparams; i++)
		for (v = (const unsigned char *)cmd->params[i].value; *v; v++)
			if (*v >= 0x80)
				return 1;
	return 0;
}

/* ---- commands ------------------------------------------------------------ */

static const struct {
	const char	*name;
	enum smtp_verb	 verb;
} verbs[] = {
	{ "HELO", SMTP_CMD_HELO },
	{ "EHLO", SMTP_CMD_EHLO },
	{ "MAIL", SMTP_CMD_MAIL },
	{ "RCPT", SMTP_CMD_RCPT },
	{ "DATA", SMTP_CMD_DATA },
	{ "RSET", SMTP_CMD_RSET },
	{ "NOOP", SMTP_CMD_NOOP },
	{ "QUIT", SMTP_CMD_QUIT },
	{ "VRFY", SMTP_CMD_VRFY },
	{ "EXPN", SMTP_CMD_EXPN },
	{ "HELP", SMTP_CMD_HELP },
	{ "STARTTLS", SMTP_CMD_STARTTLS },
	{ "AUTH", SMTP_CMD_AUTH },
	{ "BDAT", SMTP_CMD_BDAT },
	{ "ETRN", SMTP_CMD_ETRN },
};

/*
 * Index of the ">" that closes the Path opening at s[0] == '<' (a ">" inside
 * a quoted local part does not count), or 0 when there is none.
 */
static size_t
path_end(const char *s, size_t len)
{
	size_t i;
	int quoted = 0;

	for (i = 1; i < len; i++) {
		if (quoted && s[i] == '\\')
			i++;
		else if (s[i] == '"')
			quoted = !quoted;
		else if (!quoted && s[i] == '>')
			return i;
	}
	return 0;
}

/*
 * MAIL FROM:<reverse-path> [SP Mail-parameters] and RCPT TO:<forward-path>
 * [SP Rcpt-parameters] (RFC 5321 4.1.1.2, 4.1.1.3).  `a` is the text after
 * the verb and its SP.
 */
static enum smtp_parse_result
parse_mail_rcpt(const char *a, size_t alen, int smtputf8, struct smtp_cmd *cmd,
    const char **why)
{
	const char *pfx, *mb, *err;
	size_t i, lt, end, plen, mblen;
	int mail = cmd->verb == SMTP_CMD_MAIL, utf8;

	pfx = mail ? "FROM:" : "TO:";
	plen = strlen(pfx);
	if (alen < plen || !caseeq(a, plen, pfx)) {
		*why = mail ? "expected MAIL FROM:<address>" :
		    "expected RCPT TO:<address>";
		return SMTP_PARSE_SYNTAX;
	}
	for (i = plen; i < alen && a[i] == ' '; i++)
		;
	lt = i;
	if (lt == alen || a[lt] != '<' ||
	    (end = path_end(a + lt, alen - lt)) == 0) {
		*why = "address must be enclosed in <>";
		return SMTP_PARSE_SYNTAX;
	}
	end += lt + 1;		/* just after the ">" */
	if (end < alen && a[end] != ' ') {
		*why = "garbage after address";
		return SMTP_PARSE_SYNTAX;
	}
	if ((err = params_parse(a + end, alen - end, cmd)) != NULL) {
		*why = err;
		return SMTP_PARSE_SYNTAX;
	}

	/*
	 * MAIL: the SMTPUTF8 parameter on this very line (or the caller's
	 * flag) allows UTF-8 in the reverse-path; RCPT uses the caller's flag.
	 */
	utf8 = smtputf8;
	if (mail)
		for (i = 0; i < cmd->nparams; i++)
			if (strcmp(cmd->params[i].key, "SMTPUTF8") == 0)
				utf8 = 1;
	if (!utf8 && params_8bit(cmd)) {
		*why = "non-ASCII parameter without SMTPUTF8";
		return SMTP_PARSE_SYNTAX;
	}
	for (i = 0; i < cmd->nparams; i++)
		if ((err = param_check(&cmd->params[i], utf8)) != NULL) {
			*why = err;
			return SMTP_PARSE_SYNTAX;
		}

	mb = a + lt;
	plen = end - lt;
	if (!mail && caseeq(mb + 1, plen - 2, "postmaster")) {
		/* "<Postmaster>" without a domain (4.1.1.3) */
		memcpy(cmd->path, mb + 1, plen - 2);
		cmd->path[plen - 2] = '\0';
		return SMTP_PARSE_OK;
	}
	if ((err = path_check(mb, plen, mail, utf8, &mb, &mblen)) != NULL) {
		*why = err;
		return SMTP_PARSE_BAD_ADDRESS;
	}
	memcpy(cmd->path, mb, mblen);	/* mblen <= SMTP_PATH_MAX - 2 */
	cmd->path[mblen] = '\0';
	return SMTP_PARSE_OK;
}

/*
 * RFC 5321 4.1.1 command line: verb (case-insensitive) [SP arguments].
 */
enum smtp_parse_result
smtp_parse_command(const char *line, size_t len, int smtputf8,
    struct smtp_cmd *cmd, const char **why)
{
	const char *dummy, *a;
	size_t i, vlen, alen;

	if (why == NULL)
		why = &dummy;
	*why = "ok";
	cmd->verb = SMTP_CMD_UNKNOWN;
	cmd->arg[0] = '\0';
	cmd->path[0] = '\0';
	cmd->nparams = 0;

	if (len > SMTP_LINE_MAX - 2) {
		*why = "line too long";
		return SMTP_PARSE_TOO_LONG;
	}
	if (len == 0) {
		*why = "empty command line";
		return SMTP_PARSE_UNKNOWN;
	}
	if (memchr(line, '\0', len) != NULL) {
		*why = "NUL in command line";
		return SMTP_PARSE_SYNTAX;
	}
	if (memchr(line, '\r', len) != NULL ||
	    memchr(line, '\n', len) != NULL) {
		*why = "bare CR or LF in command line";
		return SMTP_PARSE_SYNTAX;
	}
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;

	for (vlen = 0; vlen < len && line[vlen] != ' '; vlen++)
		;
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (caseeq(line, vlen, verbs[i].name))
			break;
	if (i == sizeof(verbs) / sizeof(verbs[0])) {
		*why = "command unrecognized";
		return SMTP_PARSE_UNKNOWN;
	}
	cmd->verb = verbs[i].verb;
	a = line + vlen;
	alen = len - vlen;
	while (alen > 0 && *a == ' ') {
		a++;
		alen--;
	}

	switch (cmd->verb) {
	case SMTP_CMD_HELO:
	case SMTP_CMD_EHLO:
		/* "HELO" SP Domain / "EHLO" SP ( Domain / address-literal ) */
		if (alen == 0) {
			*why = "domain name required";
			return SMTP_PARSE_SYNTAX;
		}
		if (domain_check(a, alen, smtputf8) != NULL) {
			*why = "invalid domain name";
			return SMTP_PARSE_SYNTAX;
		}
		break;
	case SMTP_CMD_MAIL:
	case SMTP_CMD_RCPT:
		return parse_mail_rcpt(a, alen, smtputf8, cmd, why);
	case SMTP_CMD_DATA:
	case SMTP_CMD_RSET:
	case SMTP_CMD_QUIT:
	case SMTP_CMD_STARTTLS:
		if (alen != 0) {
			*why = "no parameters allowed";
			return SMTP_PARSE_SYNTAX;
		}
		break;
	case SMTP_CMD_NOOP:
	case SMTP_CMD_HELP:
		/* [ SP String ] */
		break;
	case SMTP_CMD_VRFY:
	case SMTP_CMD_EXPN:
	case SMTP_CMD_AUTH:
	case SMTP_CMD_BDAT:
	case SMTP_CMD_ETRN:
		/* SP String (the session parses it further) */
		if (alen == 0) {
			*why = "argument required";
			return SMTP_PARSE_SYNTAX;
		}
		break;
	case SMTP_CMD_UNKNOWN:
		break;
	}
	memcpy(cmd->arg, a, alen);	/* alen <= SMTP_LINE_MAX - 2 */
	cmd->arg[alen] = '\0';
	return SMTP_PARSE_OK;
}

int
smtp_line_next(const char *buf, size_t len, size_t *linelen, size_t *consumed)
{
	const char *lf;
	size_t n;

	/* The LF must come within SMTP_LINE_MAX octets (CRLF included). */
	if ((lf = memchr(buf, '\n', len < SMTP_LINE_MAX ? len : SMTP_LINE_MAX))
	    == NULL)
		return len >= SMTP_LINE_MAX ? -1 : 0;
	n = (size_t)(lf - buf);
	*consumed = n + 1;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	*linelen = n;
	return 1;
}
