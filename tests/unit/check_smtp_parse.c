/*
 * check_smtp_parse.c - unit tests of common/smtp_parse.c: tables of good and
 * bad command lines, address syntax and limits, and line framing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>

#include "smtp_parse.h"

#define L(s)	s, sizeof(s) - 1

/* ---- good command lines -------------------------------------------------- */

struct good {
	const char	*line;
	size_t		 len;
	int		 utf8;
	enum smtp_verb	 verb;
	const char	*arg;		/* NULL: not checked */
	const char	*path;		/* NULL: not checked */
	const char	*params;	/* "KEY=VALUE KEY" as parsed; NULL: none */
};

static const struct good good[] = {
	{ L("HELO example.com"), 0, SMTP_CMD_HELO, "example.com", NULL, NULL },
	{ L("helo mx1"), 0, SMTP_CMD_HELO, "mx1", NULL, NULL },
	{ L("EHLO mail.example.org"), 0, SMTP_CMD_EHLO, "mail.example.org", NULL, NULL },
	{ L("ehlo [192.0.2.1]"), 0, SMTP_CMD_EHLO, "[192.0.2.1]", NULL, NULL },
	{ L("EhLo [IPv6:2001:db8::1]"), 0, SMTP_CMD_EHLO, "[IPv6:2001:db8::1]", NULL, NULL },
	{ L("EHLO [ipv6:::ffff:192.0.2.1]"), 0, SMTP_CMD_EHLO, "[ipv6:::ffff:192.0.2.1]", NULL, NULL },
	{ L("EHLO a-b.c-d.example"), 0, SMTP_CMD_EHLO, "a-b.c-d.example", NULL, NULL },
	{ L("EHLO 123.example"), 0, SMTP_CMD_EHLO, "123.example", NULL, NULL },
	{ L("EHLO example.com   "), 0, SMTP_CMD_EHLO, "example.com", NULL, NULL },
	{ L("EHLO  example.com"), 0, SMTP_CMD_EHLO, "example.com", NULL, NULL },
	{ L("EHLO b\xc3\xbc" "cher.example"), 1, SMTP_CMD_EHLO, NULL, NULL, NULL },

	{ L("MAIL FROM:<a@b.example>"), 0, SMTP_CMD_MAIL, NULL, "a@b.example", NULL },
	{ L("mail from:<a@b.example>"), 0, SMTP_CMD_MAIL, NULL, "a@b.example", NULL },
	{ L("MAIL FROM: <a@b.example>"), 0, SMTP_CMD_MAIL, NULL, "a@b.example", NULL },
	{ L("MAIL FROM:<>"), 0, SMTP_CMD_MAIL, NULL, "", NULL },
	{ L("MAIL FROM:<> SIZE=0"), 0, SMTP_CMD_MAIL, NULL, "", "SIZE=0" },
	{ L("MAIL FROM:<a@b.example> SIZE=12345"), 0, SMTP_CMD_MAIL, NULL, "a@b.example", "SIZE=12345" },
	{ L("MAIL FROM:<a@b.example> size=1 body=8bitmime"), 0, SMTP_CMD_MAIL, NULL, "a@b.example", "SIZE=1 BODY=8bitmime" },
	{ L("MAIL FROM:<a@b.example> BODY=7BIT"), 0, SMTP_CMD_MAIL, NULL, NULL, "BODY=7BIT" },
	{ L("MAIL FROM:<a@b.example> BODY=BINARYMIME"), 0, SMTP_CMD_MAIL, NULL, NULL, "BODY=BINARYMIME" },
	{ L("MAIL FROM:<a@b.example> SMTPUTF8"), 0, SMTP_CMD_MAIL, NULL, NULL, "SMTPUTF8" },
	{ L("MAIL FROM:<a@b.example> RET=HDRS ENVID=QQ314159"), 0, SMTP_CMD_MAIL, NULL, NULL, "RET=HDRS ENVID=QQ314159" },
	{ L("MAIL FROM:<a@b.example> RET=FULL ENVID=a+2Bb"), 0, SMTP_CMD_MAIL, NULL, NULL, "RET=FULL ENVID=a+2Bb" },
	{ L("MAIL FROM:<a@b.example> AUTH=<>"), 0, SMTP_CMD_MAIL, NULL, NULL, "AUTH=<>" },
	{ L("MAIL FROM:<a@b.example> AUTH=e+3Dmc2@example.com"), 0, SMTP_CMD_MAIL, NULL, NULL, "AUTH=e+3Dmc2@example.com" },
	{ L("MAIL FROM:<a@b.example>   SIZE=1  X-FOO  "), 0, SMTP_CMD_MAIL, NULL, NULL, "SIZE=1 X-FOO" },
	{ L("MAIL FROM:<a@b.example> XVENDOR=x,y;z"), 0, SMTP_CMD_MAIL, NULL, NULL, "XVENDOR=x,y;z" },
	{ L("MAIL FROM:<a@b.example> A=1 B=2 C=3 D=4 E=5 F=6 G=7 H=8 I=9 J=10 K=11 L=12 M=13 N=14 O=15 P=16"),
	    0, SMTP_CMD_MAIL, NULL, NULL, "A=1 B=2 C=3 D=4 E=5 F=6 G=7 H=8 I=9 J=10 K=11 L=12 M=13 N=14 O=15 P=16" },
	{ L("MAIL FROM:<\"john doe\"@b.example>"), 0, SMTP_CMD_MAIL, NULL, "\"john doe\"@b.example", NULL },
	{ L("MAIL FROM:<\"a>b\\\"c\"@b.example>"), 0, SMTP_CMD_MAIL, NULL, "\"a>b\\\"c\"@b.example", NULL },
	{ L("MAIL FROM:<\"@\"@b.example>"), 0, SMTP_CMD_MAIL, NULL, "\"@\"@b.example", NULL },
	{ L("MAIL FROM:<\"\"@b.example>"), 0, SMTP_CMD_MAIL, NULL, "\"\"@b.example", NULL },
	{ L("MAIL FROM:<first.last+tag@b.example>"), 0, SMTP_CMD_MAIL, NULL, "first.last+tag@b.example", NULL },
	{ L("MAIL FROM:<!#$%&'*+-/=?^_`{|}~@b.example>"), 0, SMTP_CMD_MAIL, NULL, "!#$%&'*+-/=?^_`{|}~@b.example", NULL },
	{ L("MAIL FROM:<a@[192.0.2.7]>"), 0, SMTP_CMD_MAIL, NULL, "a@[192.0.2.7]", NULL },
	{ L("MAIL FROM:<a@[IPv6:::1]>"), 0, SMTP_CMD_MAIL, NULL, "a@[IPv6:::1]", NULL },
	{ L("MAIL FROM:<@relay.example:a@b.example>"), 0, SMTP_CMD_MAIL, NULL, "a@b.example", NULL },
	{ L("MAIL FROM:<@r1.example,@[192.0.2.1]:a@b.example>"), 0, SMTP_CMD_MAIL, NULL, "a@b.example", NULL },
	{ L("MAIL FROM:<j\xc3\xb6rg@b\xc3\xbc" "cher.example> SMTPUTF8"), 0, SMTP_CMD_MAIL, NULL,
	    "j\xc3\xb6rg@b\xc3\xbc" "cher.example", "SMTPUTF8" },
	{ L("MAIL FROM:<j\xc3\xb6rg@b.example>"), 1, SMTP_CMD_MAIL, NULL, "j\xc3\xb6rg@b.example", NULL },
	{ L("MAIL FROM:<\"\xe2\x82\xac\"@b.example> SMTPUTF8"), 0, SMTP_CMD_MAIL, NULL, "\"\xe2\x82\xac\"@b.example", "SMTPUTF8" },
	{ L("MAIL FROM:<a@b.example> SMTPUTF8 ENVID=\xc3\xa9"), 0, SMTP_CMD_MAIL, NULL, NULL, "SMTPUTF8 ENVID=\xc3\xa9" },

	{ L("RCPT TO:<c@d.example>"), 0, SMTP_CMD_RCPT, NULL, "c@d.example", NULL },
	{ L("rcpt to: <c@d.example>"), 0, SMTP_CMD_RCPT, NULL, "c@d.example", NULL },
	{ L("RCPT TO:<postmaster>"), 0, SMTP_CMD_RCPT, NULL, "postmaster", NULL },
	{ L("RCPT TO:<PostMaster>"), 0, SMTP_CMD_RCPT, NULL, "PostMaster", NULL },
	{ L("RCPT TO:<postmaster@d.example>"), 0, SMTP_CMD_RCPT, NULL, "postmaster@d.example", NULL },
	{ L("RCPT TO:<c@d.example> NOTIFY=NEVER"), 0, SMTP_CMD_RCPT, NULL, NULL, "NOTIFY=NEVER" },
	{ L("RCPT TO:<c@d.example> NOTIFY=SUCCESS,FAILURE,DELAY"), 0, SMTP_CMD_RCPT, NULL, NULL, "NOTIFY=SUCCESS,FAILURE,DELAY" },
	{ L("RCPT TO:<c@d.example> notify=delay orcpt=rfc822;c+40d.example"), 0, SMTP_CMD_RCPT, NULL, NULL,
	    "NOTIFY=delay ORCPT=rfc822;c+40d.example" },
	{ L("RCPT TO:<c@d.example> ORCPT=utf-8;j\xc3\xb6rg@d.example"), 1, SMTP_CMD_RCPT, NULL, NULL,
	    "ORCPT=utf-8;j\xc3\xb6rg@d.example" },
	{ L("RCPT TO:<@hop.example:c@d.example>"), 0, SMTP_CMD_RCPT, NULL, "c@d.example", NULL },
	{ L("RCPT TO:<c@localhost>"), 0, SMTP_CMD_RCPT, NULL, "c@localhost", NULL },

	{ L("DATA"), 0, SMTP_CMD_DATA, "", NULL, NULL },
	{ L("data"), 0, SMTP_CMD_DATA, "", NULL, NULL },
	{ L("DATA "), 0, SMTP_CMD_DATA, "", NULL, NULL },
	{ L("RSET"), 0, SMTP_CMD_RSET, "", NULL, NULL },
	{ L("QUIT"), 0, SMTP_CMD_QUIT, "", NULL, NULL },
	{ L("StartTLS"), 0, SMTP_CMD_STARTTLS, "", NULL, NULL },
	{ L("NOOP"), 0, SMTP_CMD_NOOP, "", NULL, NULL },
	{ L("NOOP anything at all <>:\"\x01"), 0, SMTP_CMD_NOOP, "anything at all <>:\"\x01", NULL, NULL },
	{ L("HELP"), 0, SMTP_CMD_HELP, "", NULL, NULL },
	{ L("HELP MAIL"), 0, SMTP_CMD_HELP, "MAIL", NULL, NULL },
	{ L("VRFY postmaster"), 0, SMTP_CMD_VRFY, "postmaster", NULL, NULL },
	{ L("VRFY <Smith@example.com>"), 0, SMTP_CMD_VRFY, "<Smith@example.com>", NULL, NULL },
	{ L("EXPN staff-list"), 0, SMTP_CMD_EXPN, "staff-list", NULL, NULL },
	{ L("AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q="), 0, SMTP_CMD_AUTH, "PLAIN dGVzdAB0ZXN0AHRlc3Q=", NULL, NULL },
	{ L("BDAT 1000 LAST"), 0, SMTP_CMD_BDAT, "1000 LAST", NULL, NULL },
	{ L("ETRN @example.com"), 0, SMTP_CMD_ETRN, "@example.com", NULL, NULL },
};

/* "KEY=VALUE KEY ..." of the parsed parameters. */
static void
params_str(const struct smtp_cmd *cmd, char *buf, size_t bufsz)
{
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < cmd->nparams; i++) {
		if (i > 0)
			strlcat(buf, " ", bufsz);
		strlcat(buf, cmd->params[i].key, bufsz);
		if (cmd->params[i].value[0] != '\0') {
			strlcat(buf, "=", bufsz);
			strlcat(buf, cmd->params[i].value, bufsz);
		}
	}
}

START_TEST(test_good)
{
	const struct good *g = &good[_i];
	struct smtp_cmd cmd;
	const char *why = NULL;
	char buf[2048];
	enum smtp_parse_result r;

	r = smtp_parse_command(g->line, g->len, g->utf8, &cmd, &why);
	ck_assert_msg(r == SMTP_PARSE_OK, "\"%s\": result %d (%s)", g->line, r, why);
	ck_assert_ptr_nonnull(why);
	ck_assert_str_eq(why, "ok");
	ck_assert_int_eq(cmd.verb, g->verb);
	if (g->arg != NULL)
		ck_assert_str_eq(cmd.arg, g->arg);
	if (g->path != NULL)
		ck_assert_str_eq(cmd.path, g->path);
	params_str(&cmd, buf, sizeof(buf));
	ck_assert_str_eq(buf, g->params != NULL ? g->params : "");
}
END_TEST

/* ---- bad command lines --------------------------------------------------- */

struct bad {
	const char	*line;
	size_t		 len;
	int		 utf8;
	enum smtp_parse_result result;
};

static const struct bad bad[] = {
	{ L(""), 0, SMTP_PARSE_UNKNOWN },
	{ L("   "), 0, SMTP_PARSE_UNKNOWN },
	{ L("FOO bar"), 0, SMTP_PARSE_UNKNOWN },
	{ L("MAILFROM:<a@b>"), 0, SMTP_PARSE_UNKNOWN },
	{ L("HELO\tx"), 0, SMTP_PARSE_UNKNOWN },
	{ L(" HELO x"), 0, SMTP_PARSE_UNKNOWN },
	{ L("STARTTLSX"), 0, SMTP_PARSE_UNKNOWN },
	{ L("GET / HTTP/1.1"), 0, SMTP_PARSE_UNKNOWN },

	{ L("HELO"), 0, SMTP_PARSE_SYNTAX },
	{ L("EHLO"), 0, SMTP_PARSE_SYNTAX },
	{ L("EHLO "), 0, SMTP_PARSE_SYNTAX },
	{ L("EHLO foo bar"), 0, SMTP_PARSE_SYNTAX },
	{ L("EHLO my_host"), 0, SMTP_PARSE_SYNTAX },
	{ L("EHLO -a.example"), 0, SMTP_PARSE_SYNTAX },
	{ L("EHLO a-.example"), 0, SMTP_PARSE_SYNTAX },
	{ L("EHLO a..example"), 0, SMTP_PARSE_SYNTAX },
	{ L("EHLO .example"), 0, SMTP_PARSE_SYNTAX },
	{ L("EHLO example."), 0, SMTP_PARSE_SYNTAX },
	{ L("EHLO [192.0.2.256]"), 0, SMTP_PARSE_SYNTAX },
	{ L("EHLO [192.0.2.1"), 0, SMTP_PARSE_SYNTAX },
	{ L("EHLO [1.2.3]"), 0, SMTP_PARSE_SYNTAX },
	{ L("EHLO [IPv6:2001:db8::g]"), 0, SMTP_PARSE_SYNTAX },
	{ L("EHLO [IPv6:192.0.2.1]"), 0, SMTP_PARSE_SYNTAX },
	{ L("EHLO [2001:db8::1]"), 0, SMTP_PARSE_SYNTAX },
	{ L("EHLO [x-tag:foo]"), 0, SMTP_PARSE_SYNTAX },
	{ L("EHLO []"), 0, SMTP_PARSE_SYNTAX },
	{ L("EHLO b\xc3\xbc" "cher.example"), 0, SMTP_PARSE_SYNTAX },
	{ L("EHLO b\xc3" "cher.example"), 1, SMTP_PARSE_SYNTAX },
	{ L("EHLO \xc0\xaf.example"), 1, SMTP_PARSE_SYNTAX },
	{ L("EHLO \xed\xa0\x80.example"), 1, SMTP_PARSE_SYNTAX },

	{ L("MAIL"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL TO:<a@b.example>"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:a@b.example"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example>SIZE=1"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM :<a@b.example>"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> SIZE="), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> =1"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> SIZE=1=2"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> SIZE=abc"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> SIZE=-1"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> SIZE=123456789012345678901"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> SIZE"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> SIZE=1 size=2"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> BODY=9BIT"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> BODY"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> SMTPUTF8=yes"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> RET=ALL"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> ENVID=a+2b"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> ENVID=a+"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> ENVID=\xc3\xa9"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> AUTH=a+zz"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> X_Y=1"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> -X=1"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> X=a\tb"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> X=\x7f"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> ABCDEFGHIJKLMNOPQRSTUVWXYZ012345=1"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> A=1 B=2 C=3 D=4 E=5 F=6 G=7 H=8 I=9 J=10 K=11 L=12 M=13 N=14 O=15 P=16 Q=17"),
	    0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> X=\xc3\xa9"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a@b.example> SMTPUTF8 X=\xc3"), 0, SMTP_PARSE_SYNTAX },

	{ L("MAIL FROM:<a>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<a@>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<@b.example>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<a@@b.example>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<a@b@c.example>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<.a@b.example>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<a.@b.example>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<a..b@b.example>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<a b@b.example>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<a(b)@b.example>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<a@b_c.example>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<a@[300.0.0.1]>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<a@[IPv6:::1%eth0]>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<\"a\"b@b.example>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<\"a\\\"@b.example>"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<\"a\x01\"@b.example>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<\"a\\\x01\"@b.example>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<j\xc3\xb6rg@b.example>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<a@b\xc3\xbc" "cher.example>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<j\xf8rg@b.example> SMTPUTF8"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<j\xc3@b.example> SMTPUTF8"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<j\xe0\x80\x80@b.example> SMTPUTF8"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<j\xf4\x90\x80\x80@b.example> SMTPUTF8"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<@relay.example a@b.example>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<@relay.example:>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<@:a@b.example>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<@r1.example,r2.example:a@b.example>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<@[1.2.3.4]x:a@b.example>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("MAIL FROM:<postmaster>"), 0, SMTP_PARSE_BAD_ADDRESS },

	{ L("RCPT"), 0, SMTP_PARSE_SYNTAX },
	{ L("RCPT TO:"), 0, SMTP_PARSE_SYNTAX },
	{ L("RCPT FROM:<c@d.example>"), 0, SMTP_PARSE_SYNTAX },
	{ L("RCPT TO:c@d.example"), 0, SMTP_PARSE_SYNTAX },
	{ L("RCPT TO:<c@d.example> NOTIFY=SOMETIMES"), 0, SMTP_PARSE_SYNTAX },
	{ L("RCPT TO:<c@d.example> NOTIFY=NEVER,DELAY"), 0, SMTP_PARSE_SYNTAX },
	{ L("RCPT TO:<c@d.example> NOTIFY=DELAY,DELAY"), 0, SMTP_PARSE_SYNTAX },
	{ L("RCPT TO:<c@d.example> NOTIFY=SUCCESS,"), 0, SMTP_PARSE_SYNTAX },
	{ L("RCPT TO:<c@d.example> NOTIFY=,SUCCESS"), 0, SMTP_PARSE_SYNTAX },
	{ L("RCPT TO:<c@d.example> ORCPT=rfc822"), 0, SMTP_PARSE_SYNTAX },
	{ L("RCPT TO:<c@d.example> ORCPT=;c@d"), 0, SMTP_PARSE_SYNTAX },
	{ L("RCPT TO:<c@d.example> ORCPT=rfc822;"), 0, SMTP_PARSE_SYNTAX },
	{ L("RCPT TO:<c@d.example> ORCPT=rfc(822);c@d"), 0, SMTP_PARSE_SYNTAX },
	{ L("RCPT TO:<c@d.example> ORCPT=rfc822;c+4"), 0, SMTP_PARSE_SYNTAX },
	{ L("RCPT TO:<c@d.example> ORCPT=utf-8;j\xc3\xb6rg@d.example"), 0, SMTP_PARSE_SYNTAX },
	{ L("RCPT TO:<c@d.example> SMTPUTF8 ORCPT=utf-8;j\xc3\xb6rg@d.example"), 0, SMTP_PARSE_SYNTAX },
	{ L("RCPT TO:<>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("RCPT TO:<c>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("RCPT TO:<postmaster@>"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("RCPT TO:<\"postmaster\">"), 0, SMTP_PARSE_BAD_ADDRESS },
	{ L("RCPT TO:<j\xc3\xb6rg@d.example>"), 0, SMTP_PARSE_BAD_ADDRESS },

	{ L("DATA x"), 0, SMTP_PARSE_SYNTAX },
	{ L("RSET now"), 0, SMTP_PARSE_SYNTAX },
	{ L("QUIT bye"), 0, SMTP_PARSE_SYNTAX },
	{ L("STARTTLS x"), 0, SMTP_PARSE_SYNTAX },
	{ L("VRFY"), 0, SMTP_PARSE_SYNTAX },
	{ L("EXPN"), 0, SMTP_PARSE_SYNTAX },
	{ L("AUTH"), 0, SMTP_PARSE_SYNTAX },
	{ L("BDAT"), 0, SMTP_PARSE_SYNTAX },
	{ L("ETRN"), 0, SMTP_PARSE_SYNTAX },

	/* NUL, CR and LF inside the line */
	{ L("NOOP\0"), 0, SMTP_PARSE_SYNTAX },
	{ L("QUIT\0garbage"), 0, SMTP_PARSE_SYNTAX },
	{ L("\0"), 0, SMTP_PARSE_SYNTAX },
	{ L("MAIL FROM:<a\0@b.example>"), 0, SMTP_PARSE_SYNTAX },
	{ L("EHLO [1.2.3.4\0junk]"), 0, SMTP_PARSE_SYNTAX },
	{ L("NOOP\r"), 0, SMTP_PARSE_SYNTAX },
	{ L("DATA\rRSET"), 0, SMTP_PARSE_SYNTAX },
	{ L("RCPT TO:<c@d.example>\rDATA"), 0, SMTP_PARSE_SYNTAX },
	{ L("NOOP\nQUIT"), 0, SMTP_PARSE_SYNTAX },
	{ L("\r"), 0, SMTP_PARSE_SYNTAX },
};

START_TEST(test_bad)
{
	const struct bad *b = &bad[_i];
	struct smtp_cmd cmd;
	const char *why = NULL;
	enum smtp_parse_result r;

	r = smtp_parse_command(b->line, b->len, b->utf8, &cmd, &why);
	ck_assert_msg(r == b->result, "\"%s\" (%zu): result %d (%s), want %d",
	    b->line, b->len, r, why, b->result);
	ck_assert_ptr_nonnull(why);
	ck_assert_msg(why[0] != '\0', "empty reason");
}
END_TEST

/* ---- limits -------------------------------------------------------------- */

/* buf = prefix + n copies of c + suffix */
static size_t
fill(char *buf, size_t bufsz, const char *prefix, int c, size_t n,
    const char *suffix)
{
	size_t len;

	ck_assert(strlcpy(buf, prefix, bufsz) < bufsz);
	len = strlen(buf);
	ck_assert(len + n < bufsz);
	memset(buf + len, c, n);
	buf[len + n] = '\0';
	ck_assert(strlcat(buf, suffix, bufsz) < bufsz);
	return strlen(buf);
}

START_TEST(test_line_length)
{
	char buf[1024];
	struct smtp_cmd cmd;
	const char *why;
	size_t len;

	/* 510 octets + CRLF is the longest command line (4.5.3.1.4) */
	len = fill(buf, sizeof(buf), "NOOP ", 'x', 505, "");
	ck_assert_uint_eq(len, 510);
	ck_assert_int_eq(smtp_parse_command(buf, len, 0, &cmd, &why), SMTP_PARSE_OK);
	ck_assert_uint_eq(strlen(cmd.arg), 505);
	len = fill(buf, sizeof(buf), "NOOP ", 'x', 506, "");
	ck_assert_int_eq(smtp_parse_command(buf, len, 0, &cmd, &why), SMTP_PARSE_TOO_LONG);
	ck_assert_str_eq(why, "line too long");
	/* too long wins over anything else wrong with it */
	len = fill(buf, sizeof(buf), "\r\n", '\0', 600, "");
	ck_assert_int_eq(smtp_parse_command(buf, 602, 0, &cmd, &why), SMTP_PARSE_TOO_LONG);
	(void)len;
}
END_TEST

START_TEST(test_local_part_length)
{
	char buf[1024];
	struct smtp_cmd cmd;
	const char *why;
	size_t len;

	len = fill(buf, sizeof(buf), "MAIL FROM:<", 'l', 64, "@b.example>");
	ck_assert_int_eq(smtp_parse_command(buf, len, 0, &cmd, &why), SMTP_PARSE_OK);
	len = fill(buf, sizeof(buf), "MAIL FROM:<", 'l', 65, "@b.example>");
	ck_assert_int_eq(smtp_parse_command(buf, len, 0, &cmd, &why), SMTP_PARSE_BAD_ADDRESS);
	ck_assert_str_eq(why, "local part too long");
	/* a quoted local part counts its quotes */
	len = fill(buf, sizeof(buf), "RCPT TO:<\"", 'q', 62, "\"@b.example>");
	ck_assert_int_eq(smtp_parse_command(buf, len, 0, &cmd, &why), SMTP_PARSE_OK);
	len = fill(buf, sizeof(buf), "RCPT TO:<\"", 'q', 63, "\"@b.example>");
	ck_assert_int_eq(smtp_parse_command(buf, len, 0, &cmd, &why), SMTP_PARSE_BAD_ADDRESS);
}
END_TEST

START_TEST(test_domain_length)
{
	char buf[1024];
	size_t i;

	/* labels of 63 octets, not 64 */
	fill(buf, sizeof(buf), "", 'd', 63, ".example");
	ck_assert_int_eq(smtp_domain_valid(buf, 0), 1);
	fill(buf, sizeof(buf), "", 'd', 64, ".example");
	ck_assert_int_eq(smtp_domain_valid(buf, 0), 0);
	/* 255 octets in all, not 256 */
	buf[0] = '\0';
	for (i = 0; i < 4; i++)
		fill(buf + strlen(buf), sizeof(buf) - strlen(buf),
		    i ? "." : "", 'a' + (int)i, 62, "");
	ck_assert_uint_eq(strlen(buf), 251);
	strlcat(buf, ".abc", sizeof(buf));
	ck_assert_int_eq(smtp_domain_valid(buf, 0), 1);
	strlcat(buf, "d", sizeof(buf));
	ck_assert_int_eq(smtp_domain_valid(buf, 0), 0);
}
END_TEST

START_TEST(test_path_length)
{
	char buf[1024], dom[300];
	struct smtp_cmd cmd;
	const char *why;
	size_t len;

	/* a path of 256 octets with its <> (4.5.3.1.3), one more is too long */
	fill(dom, sizeof(dom), "", 'a', 60, ".");
	fill(dom + strlen(dom), sizeof(dom) - strlen(dom), "", 'b', 60, ".");
	fill(dom + strlen(dom), sizeof(dom) - strlen(dom), "", 'c', 60, ".");
	fill(dom + strlen(dom), sizeof(dom) - strlen(dom), "", 'd', 5, "");
	ck_assert_uint_eq(strlen(dom), 188);
	len = fill(buf, sizeof(buf), "RCPT TO:<", 'l', 64, "@");
	strlcat(buf, dom, sizeof(buf));
	strlcat(buf, ">", sizeof(buf));
	len = strlen(buf);
	ck_assert_uint_eq(len - strlen("RCPT TO:"), 255);
	ck_assert_int_eq(smtp_parse_command(buf, len, 0, &cmd, &why), SMTP_PARSE_OK);
	strlcpy(buf + len - 1, "e>", sizeof(buf) - len + 1);
	len++;
	ck_assert_int_eq(smtp_parse_command(buf, len, 0, &cmd, &why), SMTP_PARSE_OK);
	ck_assert_uint_eq(strlen(cmd.path), 254);
	strlcpy(buf + len - 1, "e>", sizeof(buf) - len + 1);
	len++;
	ck_assert_int_eq(smtp_parse_command(buf, len, 0, &cmd, &why), SMTP_PARSE_BAD_ADDRESS);
	ck_assert_str_eq(why, "path too long");
	/* a source route counts toward the limit */
	len = fill(buf, sizeof(buf), "MAIL FROM:<@", 'r', 240, ".example:a@b.example>");
	ck_assert_int_eq(smtp_parse_command(buf, len, 0, &cmd, &why), SMTP_PARSE_BAD_ADDRESS);
}
END_TEST

/* ---- address functions --------------------------------------------------- */

START_TEST(test_parse_path)
{
	char out[SMTP_PATH_MAX + 1], small[4];

	ck_assert_int_eq(smtp_parse_path(L("<a@b.example>"), 0, 0, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "a@b.example");
	ck_assert_int_eq(smtp_parse_path(L("<>"), 1, 0, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(smtp_parse_path(L("<>"), 0, 0, out, sizeof(out)), -1);
	ck_assert_int_eq(smtp_parse_path(L("<@x.example,@y.example:a@b.example>"), 0, 0,
	    out, sizeof(out)), 0);
	ck_assert_str_eq(out, "a@b.example");
	ck_assert_int_eq(smtp_parse_path(L("a@b.example"), 0, 0, out, sizeof(out)), -1);
	ck_assert_int_eq(smtp_parse_path(L("<a@b.example"), 0, 0, out, sizeof(out)), -1);
	ck_assert_int_eq(smtp_parse_path(L("<a@b.example> "), 0, 0, out, sizeof(out)), -1);
	ck_assert_int_eq(smtp_parse_path(L("<"), 1, 0, out, sizeof(out)), -1);
	ck_assert_int_eq(smtp_parse_path(L(">"), 1, 0, out, sizeof(out)), -1);
	ck_assert_int_eq(smtp_parse_path("", 0, 1, 0, out, sizeof(out)), -1);
	ck_assert_int_eq(smtp_parse_path(L("<postmaster>"), 0, 0, out, sizeof(out)), -1);
	ck_assert_int_eq(smtp_parse_path(L("<a@b\0.example>"), 0, 0, out, sizeof(out)), -1);
	/* the output buffer is never overrun */
	ck_assert_int_eq(smtp_parse_path(L("<a@b.example>"), 0, 0, small, sizeof(small)), -1);
	ck_assert_int_eq(smtp_parse_path(L("<a@b>"), 0, 0, small, sizeof(small)), 0);
	ck_assert_str_eq(small, "a@b");
	ck_assert_int_eq(smtp_parse_path(L("<\xc3\xa9@b>"), 0, 1, out, sizeof(out)), 0);
	ck_assert_int_eq(smtp_parse_path(L("<\xc3\xa9@b>"), 0, 0, out, sizeof(out)), -1);
}
END_TEST

START_TEST(test_mailbox_domain)
{
	const char *d;

	ck_assert_int_eq(smtp_mailbox_valid("a@b", 0), 1);
	ck_assert_int_eq(smtp_mailbox_valid("\"a b\"@[IPv6:::1]", 0), 1);
	ck_assert_int_eq(smtp_mailbox_valid("a", 0), 0);
	ck_assert_int_eq(smtp_mailbox_valid("", 0), 0);
	ck_assert_int_eq(smtp_mailbox_valid("@", 0), 0);
	ck_assert_int_eq(smtp_mailbox_valid("\"", 0), 0);
	ck_assert_int_eq(smtp_mailbox_valid("\"a\"", 0), 0);
	ck_assert_int_eq(smtp_mailbox_valid("\"a\"@", 0), 0);
	ck_assert_int_eq(smtp_mailbox_valid("<a@b>", 0), 0);
	ck_assert_int_eq(smtp_mailbox_valid("\xe4\xbe\x8b@\xe4\xbe\x8b.example", 1), 1);
	ck_assert_int_eq(smtp_mailbox_valid("\xe4\xbe\x8b@\xe4\xbe\x8b.example", 0), 0);

	ck_assert_int_eq(smtp_domain_valid("example", 0), 1);
	ck_assert_int_eq(smtp_domain_valid("xn--bcher-kva.example", 0), 1);
	ck_assert_int_eq(smtp_domain_valid("[127.0.0.1]", 0), 1);
	ck_assert_int_eq(smtp_domain_valid("[IPv6:fe80::1]", 0), 1);
	ck_assert_int_eq(smtp_domain_valid("[IPv6:1:2:3:4:5:6:1.2.3.4]", 0), 1);
	ck_assert_int_eq(smtp_domain_valid("[01.2.3.4]", 0), 0);
	ck_assert_int_eq(smtp_domain_valid("[1.2.3.4", 0), 0);
	ck_assert_int_eq(smtp_domain_valid("1.2.3.4]", 0), 0);
	ck_assert_int_eq(smtp_domain_valid("[", 0), 0);
	ck_assert_int_eq(smtp_domain_valid("", 0), 0);
	ck_assert_int_eq(smtp_domain_valid(".", 0), 0);
	ck_assert_int_eq(smtp_domain_valid("-", 0), 0);
	ck_assert_int_eq(smtp_domain_valid("a.-b", 0), 0);
	ck_assert_int_eq(smtp_domain_valid("a b", 0), 0);
	ck_assert_int_eq(smtp_domain_valid("a@b", 0), 0);

	ck_assert_int_eq(smtp_addr_domain("a@b.example", &d), 0);
	ck_assert_str_eq(d, "b.example");
	ck_assert_int_eq(smtp_addr_domain("\"x@y\"@z.example", &d), 0);
	ck_assert_str_eq(d, "z.example");
	ck_assert_int_eq(smtp_addr_domain("postmaster", &d), -1);
	ck_assert_int_eq(smtp_addr_domain("a@", &d), -1);
	ck_assert_int_eq(smtp_addr_domain("", &d), -1);

	ck_assert_int_eq(smtp_is_postmaster("postmaster"), 1);
	ck_assert_int_eq(smtp_is_postmaster("POSTMASTER"), 1);
	ck_assert_int_eq(smtp_is_postmaster("PostMaster"), 1);
	ck_assert_int_eq(smtp_is_postmaster("postmaster@example.com"), 0);
	ck_assert_int_eq(smtp_is_postmaster("postmaste"), 0);
	ck_assert_int_eq(smtp_is_postmaster("postmasters"), 0);
	ck_assert_int_eq(smtp_is_postmaster(""), 0);
}
END_TEST

START_TEST(test_why_and_reuse)
{
	struct smtp_cmd cmd;
	const char *why;

	/* a failed parse leaves no stale result of an earlier one */
	ck_assert_int_eq(smtp_parse_command(L("MAIL FROM:<a@b> SIZE=1"), 0, &cmd, &why),
	    SMTP_PARSE_OK);
	ck_assert_uint_eq(cmd.nparams, 1);
	ck_assert_int_eq(smtp_parse_command(L("RCPT TO:<>"), 0, &cmd, &why),
	    SMTP_PARSE_BAD_ADDRESS);
	ck_assert_str_eq(why, "null path not allowed");
	ck_assert_str_eq(cmd.path, "");
	ck_assert_uint_eq(cmd.nparams, 0);
	ck_assert_int_eq(smtp_parse_command(L("XYZZY"), 0, &cmd, &why), SMTP_PARSE_UNKNOWN);
	ck_assert_int_eq(cmd.verb, SMTP_CMD_UNKNOWN);
	ck_assert_str_eq(why, "command unrecognized");
	ck_assert_int_eq(smtp_parse_command(L("MAIL FROM:<a@b> SIZE=1 SIZE=2"), 0, &cmd, &why),
	    SMTP_PARSE_SYNTAX);
	ck_assert_str_eq(why, "duplicate parameter");
	/* why may be NULL */
	ck_assert_int_eq(smtp_parse_command(L("QUIT now"), 0, &cmd, NULL), SMTP_PARSE_SYNTAX);
}
END_TEST

/* ---- line framing -------------------------------------------------------- */

static const char pipeline[] =
    "EHLO client.example\r\n"
    "MAIL FROM:<a@b.example> SIZE=100\r\n"
    "RCPT TO:<c@d.example>\n"		/* a bare LF ends a command line too */
    "RCPT TO:<postmaster>\r\n"
    "\r\n"
    "DATA\r\n";
static const char *pipeline_lines[] = {
	"EHLO client.example", "MAIL FROM:<a@b.example> SIZE=100",
	"RCPT TO:<c@d.example>", "RCPT TO:<postmaster>", "", "DATA"
};

START_TEST(test_line_next_prefixes)
{
	size_t total = sizeof(pipeline) - 1, k, off, nlines, complete, linelen,
	    consumed, i;
	int r;

	/* every prefix of the buffer yields exactly the lines it completes */
	for (k = 0; k <= total; k++) {
		complete = 0;
		for (i = 0; i < k; i++)
			if (pipeline[i] == '\n')
				complete++;
		off = 0;
		nlines = 0;
		while ((r = smtp_line_next(pipeline + off, k - off, &linelen,
		    &consumed)) == 1) {
			ck_assert_uint_lt(nlines, 6);
			ck_assert_uint_eq(linelen, strlen(pipeline_lines[nlines]));
			ck_assert(memcmp(pipeline + off, pipeline_lines[nlines],
			    linelen) == 0);
			ck_assert_uint_ge(consumed, linelen + 1);
			ck_assert_uint_le(consumed, linelen + 2);
			off += consumed;
			nlines++;
		}
		ck_assert_int_eq(r, 0);
		ck_assert_uint_eq(nlines, complete);
	}
}
END_TEST

START_TEST(test_line_next_limits)
{
	char buf[1024];
	size_t linelen = 0, consumed = 0;

	memset(buf, 'x', sizeof(buf));
	ck_assert_int_eq(smtp_line_next(buf, 0, &linelen, &consumed), 0);
	ck_assert_int_eq(smtp_line_next(buf, SMTP_LINE_MAX - 1, &linelen, &consumed), 0);
	ck_assert_int_eq(smtp_line_next(buf, SMTP_LINE_MAX, &linelen, &consumed), -1);
	ck_assert_int_eq(smtp_line_next(buf, sizeof(buf), &linelen, &consumed), -1);
	/* LF as the 512th octet: still a line (the parser says how long) */
	buf[SMTP_LINE_MAX - 2] = '\r';
	buf[SMTP_LINE_MAX - 1] = '\n';
	ck_assert_int_eq(smtp_line_next(buf, sizeof(buf), &linelen, &consumed), 1);
	ck_assert_uint_eq(linelen, SMTP_LINE_MAX - 2);
	ck_assert_uint_eq(consumed, SMTP_LINE_MAX);
	buf[SMTP_LINE_MAX - 2] = 'x';
	ck_assert_int_eq(smtp_line_next(buf, sizeof(buf), &linelen, &consumed), 1);
	ck_assert_uint_eq(linelen, SMTP_LINE_MAX - 1);
	/* one octet later is too late */
	buf[SMTP_LINE_MAX - 1] = 'x';
	buf[SMTP_LINE_MAX] = '\n';
	ck_assert_int_eq(smtp_line_next(buf, sizeof(buf), &linelen, &consumed), -1);
	/* a lone LF, a lone CRLF, and a CR in the middle stays in the line */
	ck_assert_int_eq(smtp_line_next("\n", 1, &linelen, &consumed), 1);
	ck_assert_uint_eq(linelen, 0);
	ck_assert_uint_eq(consumed, 1);
	ck_assert_int_eq(smtp_line_next("\r\n", 2, &linelen, &consumed), 1);
	ck_assert_uint_eq(linelen, 0);
	ck_assert_uint_eq(consumed, 2);
	ck_assert_int_eq(smtp_line_next("a\rb\r\r\n", 6, &linelen, &consumed), 1);
	ck_assert_uint_eq(linelen, 4);
	ck_assert_uint_eq(consumed, 6);
	ck_assert_int_eq(smtp_line_next("QUIT\r", 5, &linelen, &consumed), 0);
}
END_TEST

static Suite *
smtp_parse_suite(void)
{
	Suite *s = suite_create("smtp_parse");
	TCase *tc;

	tc = tcase_create("commands");
	tcase_add_loop_test(tc, test_good, 0, sizeof(good) / sizeof(good[0]));
	tcase_add_loop_test(tc, test_bad, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, test_why_and_reuse);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc, test_line_length);
	tcase_add_test(tc, test_local_part_length);
	tcase_add_test(tc, test_domain_length);
	tcase_add_test(tc, test_path_length);
	suite_add_tcase(s, tc);

	tc = tcase_create("addresses");
	tcase_add_test(tc, test_parse_path);
	tcase_add_test(tc, test_mailbox_domain);
	suite_add_tcase(s, tc);

	tc = tcase_create("framing");
	tcase_add_test(tc, test_line_next_prefixes);
	tcase_add_test(tc, test_line_next_limits);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(smtp_parse_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
