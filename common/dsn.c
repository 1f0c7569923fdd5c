/*
 * dsn.c - the syntax of DSN parameters (mail layer; smtpd checks what a
 * client sends, queued what a producer sends and what an envelope file
 * holds).  RFC 3461 sections 4 (xtext), 4.1 (NOTIFY), 4.2 (ORCPT), 4.3
 * (RET), 4.4 (ENVID); RFC 6533 3 (UTF-8 in ORCPT with SMTPUTF8).
 * Trust boundary: every value may come from a network peer; each is bounded
 * and checked octet by octet, and nothing is allocated.
 */
#include <string.h>
#include <strings.h>

#include "dsn.h"
#include "smtp_parse.h"

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
dsn_xtext_decode(const char *in, int utf8, char *out, size_t outsz)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t len = strlen(in), i = 0, o = 0, n;
	int hi, lo, c;

	if (outsz == 0)
		return -1;
	while (i < len) {
		c = s[i];
		n = 1;
		if (c == '+') {
			/* "+" 2HEXUPPER: hexchar is upper case only */
			if (len - i < 3 || (hi = hexval(s[i + 1])) == -1 ||
			    (lo = hexval(s[i + 2])) == -1)
				return -1;
			c = hi << 4 | lo;
			if (c < 0x20 || c == 0x7f)
				return -1;
			n = 3;
		} else if (c >= 0x80) {
			if (!utf8 || (n = smtp_utf8_len((const char *)s + i, len - i)) == 0)
				return -1;
			if (o + n >= outsz)
				return -1;
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
			continue;
		} else if (c < 33 || c > 126 || c == '=')
			return -1;	/* xchar: %d33-42 / %d44-60 / %d62-126 */
		if (o + 1 >= outsz)
			return -1;
		out[o++] = (char)c;
		i += n;
	}
	out[o] = '\0';
	return (int)o;
}

int
dsn_notify_parse(const char *v, uint32_t *notify)
{
	static const struct { const char *name; uint32_t bit; } kw[] = {
		{ "SUCCESS", DSN_NOTIFY_SUCCESS },
		{ "FAILURE", DSN_NOTIFY_FAILURE },
		{ "DELAY", DSN_NOTIFY_DELAY },
	};
	const char *p = v, *e;
	uint32_t seen = 0;
	size_t n, k;

	if (strcasecmp(v, "NEVER") == 0) {
		*notify = DSN_NOTIFY_NEVER;
		return 0;
	}
	for (;;) {
		e = strchr(p, ',');
		n = e ? (size_t)(e - p) : strlen(p);
		for (k = 0; k < sizeof(kw) / sizeof(kw[0]); k++)
			if (strlen(kw[k].name) == n && strncasecmp(p, kw[k].name, n) == 0)
				break;
		/* NEVER may not be combined; each keyword once */
		if (k == sizeof(kw) / sizeof(kw[0]) || (seen & kw[k].bit))
			return -1;
		seen |= kw[k].bit;
		if (e == NULL)
			break;
		p = e + 1;
	}
	*notify = seen;
	return 0;
}

const char *
dsn_notify_format(uint32_t notify, char *buf, size_t bufsz)
{
	buf[0] = '\0';
	if (notify & DSN_NOTIFY_NEVER) {
		strlcpy(buf, "never", bufsz);
		return buf;
	}
	if (notify & DSN_NOTIFY_SUCCESS)
		strlcat(buf, "success", bufsz);
	if (notify & DSN_NOTIFY_FAILURE)
		strlcat(buf, buf[0] ? ",failure" : "failure", bufsz);
	if (notify & DSN_NOTIFY_DELAY)
		strlcat(buf, buf[0] ? ",delay" : "delay", bufsz);
	return buf;
}

int
dsn_ret_parse(const char *v)
{
	if (strcasecmp(v, "FULL") == 0)
		return DSN_RET_FULL;
	if (strcasecmp(v, "HDRS") == 0)
		return DSN_RET_HDRS;
	return -1;
}

const char *
dsn_ret_name(int ret)
{
	return ret == DSN_RET_FULL ? "full" : ret == DSN_RET_HDRS ? "hdrs" : "";
}

int
dsn_envid_valid(const char *v)
{
	char buf[DSN_ENVID_MAX + 1];
	int n, i;

	if (v[0] == '\0' || strlen(v) > DSN_ENVID_MAX ||
	    (n = dsn_xtext_decode(v, 0, buf, sizeof(buf))) < 0)
		return 0;
	/* "+80".."+FF" is xtext too, but not printable US-ASCII */
	for (i = 0; i < n; i++)
		if ((unsigned char)buf[i] > 0x7e)
			return 0;
	return 1;
}

int
dsn_orcpt_valid(const char *v, int utf8)
{
	char buf[DSN_ORCPT_MAX + 1];
	const char *semi, *p;
	size_t len = strlen(v);

	if (len == 0 || len > DSN_ORCPT_MAX || (semi = strchr(v, ';')) == NULL ||
	    semi == v || semi[1] == '\0')
		return 0;
	/* addr-type = atom (RFC 5322 atext) */
	for (p = v; p < semi; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("!#$%&'*+-/=?^_`{|}~", *p)))
			return 0;
	return dsn_xtext_decode(semi + 1, utf8, buf, sizeof(buf)) > 0;
}
