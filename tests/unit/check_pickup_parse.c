/*
 * check_pickup_parse.c - unit tests of the Pickup file parser
 * (pickupd/pickupd_parse.c, run by make check).
 *
 * Tables of good files (both envelope styles, LF/CRLF/bare CR, groups,
 * comments, quoted names, folding, Bcc removal, added Message-ID:/Date:,
 * qualification, deduplication) checked against the exact sender,
 * recipients and content; tables of bad files checked against a substring
 * of the error.  Trust boundary: none, the inputs are the test's own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <event2/buffer.h>

#include "pickupd_parse.h"

#define DOMAIN	"example.org"
#define MSGID	"<id1@example.org>"
#define DATE	"Mon, 1 Jan 2024 00:00:00 +0000"
#define ADD_MID	"Message-ID: " MSGID "\r\n"
#define ADD_DATE "Date: " DATE "\r\n"
#define ADDED	ADD_MID ADD_DATE

static const struct pickup_opts opts = {
	.default_domain = DOMAIN,
	.message_id = MSGID,
	.date = DATE,
	.max_rcpts = 100
};

struct good {
	const char	*name;
	const char	*in;
	const char	*sender;
	const char	*rcpts[8];	/* NULL-terminated */
	const char	*out;
};

static const struct good good[] = {
	/* ---- IIS envelope ---- */
	{ "iis lf",
	  "x-sender: <a@example.com>\nx-receiver: <b@example.net>\n"
	  "Subject: hi\n\nbody\n",
	  "a@example.com", { "b@example.net" },
	  "Subject: hi\r\n" ADDED "\r\nbody\r\n" },
	{ "iis crlf, case, bare addresses, several receivers",
	  "X-Sender: a@example.com\r\nX-RECEIVER: b@x.net\r\n"
	  "x-Receiver:   <c@x.net>  \r\nFrom: someone\r\n\r\nbody\r\n",
	  "a@example.com", { "b@x.net", "c@x.net" },
	  "From: someone\r\n" ADDED "\r\nbody\r\n" },
	{ "iis null sender",
	  "x-sender: <>\nx-receiver: b@x.net\n\nhi",
	  "", { "b@x.net" },
	  ADDED "\r\nhi\r\n" },
	{ "iis receiver before sender",
	  "x-receiver: b@x.net\nx-sender: a@x.net\nTo: c@x.net\n\n",
	  "a@x.net", { "b@x.net" },
	  "To: c@x.net\r\n" ADDED "\r\n" },
	{ "iis later x-sender is an ordinary field",
	  "x-sender: a@x.net\nx-receiver: b@x.net\nSubject: s\n"
	  "X-Sender: foo\nx-receiver: c@x.net\n\n",
	  "a@x.net", { "b@x.net" },
	  "Subject: s\r\nX-Sender: foo\r\nx-receiver: c@x.net\r\n" ADDED
	  "\r\n" },
	{ "iis dedup and Bcc removed",
	  "x-sender: a@x.net\nx-receiver: b@x.net\nx-receiver: <B@X.NET>\n"
	  "x-receiver: c@x.net\nBcc: d@x.net,\n e@x.net\nSubject: s\n\nb\n",
	  "a@x.net", { "b@x.net", "c@x.net" },
	  "Subject: s\r\n" ADDED "\r\nb\r\n" },
	{ "iis unqualified",
	  "x-sender: joe\nx-receiver: <ann>\n\n",
	  "joe@" DOMAIN, { "ann@" DOMAIN },
	  ADDED "\r\n" },
	{ "iis folded receiver",
	  "x-sender: a@x.net\nx-receiver:\n <b@x.net>\n\n",
	  "a@x.net", { "b@x.net" },
	  ADDED "\r\n" },
	{ "iis quoted local part with @",
	  "x-sender: a@x.net\nx-receiver: \"b@c\"@x.net\n\n",
	  "a@x.net", { "\"b@c\"@x.net" },
	  ADDED "\r\n" },

	/* ---- header envelope ---- */
	{ "headers lf",
	  "From: Alice <alice@example.com>\nTo: bob@example.net\n"
	  "Subject: s\n\nHello\n",
	  "alice@example.com", { "bob@example.net" },
	  "From: Alice <alice@example.com>\r\nTo: bob@example.net\r\n"
	  "Subject: s\r\n" ADDED "\r\nHello\r\n" },
	{ "headers crlf, Sender wins, nothing added",
	  "From: a@x.com\r\nSender: s@x.com\r\nTo: b@x.com\r\n"
	  "Message-ID: <m@x>\r\nDate: Tue, 2 Jan 2024 00:00:00 +0000\r\n"
	  "\r\nbody",
	  "s@x.com", { "b@x.com" },
	  "From: a@x.com\r\nSender: s@x.com\r\nTo: b@x.com\r\n"
	  "Message-ID: <m@x>\r\nDate: Tue, 2 Jan 2024 00:00:00 +0000\r\n"
	  "\r\nbody\r\n" },
	{ "groups, quoted name with comma, empty group",
	  "From: a@x.com\n"
	  "To: Friends: b@x.com, \"Smith, J\" <c@x.com>;, d@x.com\n"
	  "Cc: undisclosed-recipients:;\n\n",
	  "a@x.com", { "b@x.com", "c@x.com", "d@x.com" },
	  "From: a@x.com\r\n"
	  "To: Friends: b@x.com, \"Smith, J\" <c@x.com>;, d@x.com\r\n"
	  "Cc: undisclosed-recipients:;\r\n" ADDED "\r\n" },
	{ "comments, nested",
	  "From: (c (nested) here) a@x.com (Alice)\n"
	  "To: b@x.com (Bob (the) builder), \"Doe, Jane\" <jane@x.com>,"
	  "(x)c(y)@(z)x.com\n\n",
	  "a@x.com", { "b@x.com", "jane@x.com", "c@x.com" },
	  "From: (c (nested) here) a@x.com (Alice)\r\n"
	  "To: b@x.com (Bob (the) builder), \"Doe, Jane\" <jane@x.com>,"
	  "(x)c(y)@(z)x.com\r\n" ADDED "\r\n" },
	{ "folded headers",
	  "From: a@x.com\nTo: b@x.com,\n c@x.com,\n\t\"D, E\"\n <d@x.com>\n"
	  "Subject: folded\n subject\n\nbody\n",
	  "a@x.com", { "b@x.com", "c@x.com", "d@x.com" },
	  "From: a@x.com\r\nTo: b@x.com,\r\n c@x.com,\r\n\t\"D, E\"\r\n"
	  " <d@x.com>\r\nSubject: folded\r\n subject\r\n" ADDED
	  "\r\nbody\r\n" },
	{ "Bcc removed with its continuation lines",
	  "From: a@x.com\nTo: b@x.com\nBcc: c@x.com,\n d@x.com\n"
	  "Subject: s\n\n",
	  "a@x.com", { "b@x.com", "c@x.com", "d@x.com" },
	  "From: a@x.com\r\nTo: b@x.com\r\nSubject: s\r\n" ADDED "\r\n" },
	{ "bCc any case, last field",
	  "From: a@x.com\nbCC: b@x.com\n\nx\n",
	  "a@x.com", { "b@x.com" },
	  "From: a@x.com\r\n" ADDED "\r\nx\r\n" },
	{ "unqualified",
	  "From: joe\nTo: ann, <bob>, \"Carl C\" <carl>\n\n",
	  "joe@" DOMAIN, { "ann@" DOMAIN, "bob@" DOMAIN, "carl@" DOMAIN },
	  "From: joe\r\nTo: ann, <bob>, \"Carl C\" <carl>\r\n" ADDED
	  "\r\n" },
	{ "dedup across fields, case-insensitive",
	  "From: a@x.com\nTo: b@x.com, B@X.COM\nCc: <b@x.com>, c@x.com\n"
	  "Bcc: C@x.com\n\n",
	  "a@x.com", { "b@x.com", "c@x.com" },
	  "From: a@x.com\r\nTo: b@x.com, B@X.COM\r\n"
	  "Cc: <b@x.com>, c@x.com\r\n" ADDED "\r\n" },
	{ "header section ends at EOF",
	  "From: a@x.com\nTo: b@x.com",
	  "a@x.com", { "b@x.com" },
	  "From: a@x.com\r\nTo: b@x.com\r\n" ADDED "\r\n" },
	{ "bare CR line breaks",
	  "From: a@x.com\rTo: b@x.com\r\rline1\rline2",
	  "a@x.com", { "b@x.com" },
	  "From: a@x.com\r\nTo: b@x.com\r\n" ADDED "\r\nline1\r\nline2\r\n" },
	{ "mixed body line endings",
	  "From: a@x.com\nTo: b@x.com\n\nA\r\nB\nC\r\r\n.\n\nFrom: no\n",
	  "a@x.com", { "b@x.com" },
	  "From: a@x.com\r\nTo: b@x.com\r\n" ADDED
	  "\r\nA\r\nB\r\nC\r\n\r\n.\r\n\r\nFrom: no\r\n" },
	{ "message-id present (any case), Date added",
	  "message-id: <x@y>\nFrom: a@x.com\nTo: b@x.com\n\n",
	  "a@x.com", { "b@x.com" },
	  "message-id: <x@y>\r\nFrom: a@x.com\r\nTo: b@x.com\r\n" ADD_DATE
	  "\r\n" },
	{ "Date present, Message-ID added",
	  "DATE: whenever\nFrom: a@x.com\nTo: b@x.com\n\n",
	  "a@x.com", { "b@x.com" },
	  "DATE: whenever\r\nFrom: a@x.com\r\nTo: b@x.com\r\n" ADD_MID
	  "\r\n" },
	{ "obsolete source route",
	  "From: a@x.com\nTo: <@relay.x.com,@r2.x.com:b@x.com>\n\n",
	  "a@x.com", { "b@x.com" },
	  "From: a@x.com\r\nTo: <@relay.x.com,@r2.x.com:b@x.com>\r\n" ADDED
	  "\r\n" },
	{ "quoted local part, domain literal",
	  "From: a@x.com\nTo: \"john doe\"@x.com, b@[192.0.2.1]\n\n",
	  "a@x.com", { "\"john doe\"@x.com", "b@[192.0.2.1]" },
	  "From: a@x.com\r\nTo: \"john doe\"@x.com, b@[192.0.2.1]\r\n" ADDED
	  "\r\n" },
	{ "empty list elements, empty To",
	  "From: a@x.com\nTo: , b@x.com,,\nCc:\n\n",
	  "a@x.com", { "b@x.com" },
	  "From: a@x.com\r\nTo: , b@x.com,,\r\nCc:\r\n" ADDED "\r\n" },
	{ "group closed by the end of the field",
	  "From: a@x.com\nTo: team: b@x.com, c@x.com\n\n",
	  "a@x.com", { "b@x.com", "c@x.com" },
	  "From: a@x.com\r\nTo: team: b@x.com, c@x.com\r\n" ADDED "\r\n" },
	{ "display name with dots, several From mailboxes",
	  "From: J. R. Doe <jrd@x.com>, other@x.com\nTo: b@x.com\n\n",
	  "jrd@x.com", { "b@x.com" },
	  "From: J. R. Doe <jrd@x.com>, other@x.com\r\nTo: b@x.com\r\n"
	  ADDED "\r\n" },
	{ "obs-local-part with CFWS around dots",
	  "From: a@x.com\nTo: john . doe @ x . com\n\n",
	  "a@x.com", { "john.doe@x.com" },
	  "From: a@x.com\r\nTo: john . doe @ x . com\r\n" ADDED "\r\n" },
	{ "x-sender not first: header style",
	  "Subject: s\nx-sender: z@x.com\nFrom: a@x.com\nTo: b@x.com\n\n",
	  "a@x.com", { "b@x.com" },
	  "Subject: s\r\nx-sender: z@x.com\r\nFrom: a@x.com\r\n"
	  "To: b@x.com\r\n" ADDED "\r\n" },
	{ "8-bit display name and body kept",
	  "From: J\xc3\xbcrgen <j@x.com>\nTo: b@x.com\n\n\xc3\xa9t\xc3\xa9\n",
	  "j@x.com", { "b@x.com" },
	  "From: J\xc3\xbcrgen <j@x.com>\r\nTo: b@x.com\r\n" ADDED
	  "\r\n\xc3\xa9t\xc3\xa9\r\n" },
};

struct bad {
	const char	*in;
	size_t		 len;		/* 0: strlen(in) */
	const char	*error;		/* expected substring */
};

static const struct bad bad[] = {
	{ "", 0, "empty file" },
	{ "From: a@x.com\nTo: b\0c\n", 22, "NUL byte at offset 19" },
	{ "From: a@x.com\nTo b@x.com\n\n", 0,
	  "line 2: header line without a colon" },
	{ " From: a@x.com\nTo: b@x.com\n\n", 0,
	  "line 1: continuation line" },
	{ "Sub ject: x\nFrom: a@x.com\nTo: b@x.com\n\n", 0,
	  "line 1: invalid character in header field name" },
	{ "F\xc3\xb6: x\nFrom: a@x.com\nTo: b@x.com\n\n", 0,
	  "line 1: invalid character in header field name" },
	{ ": x\nFrom: a@x.com\nTo: b@x.com\n\n", 0,
	  "line 1: empty header field name" },
	{ "From: a@x.com\n  \nTo: b@x.com\n\n", 0,
	  "line 2: header line of only white space" },
	{ "To: b@x.com\n\n", 0,
	  "no sender: neither x-sender, Sender nor From" },
	{ "\n\nFrom: a@x.com\nTo: b@x.com\n", 0,
	  "no sender: neither x-sender, Sender nor From" },
	{ "Subject: s\nx-sender: a@x.com\nx-receiver: b@x.com\n\n", 0,
	  "no sender: neither x-sender, Sender nor From" },
	{ "From: a@x.com\nSubject: x\n\n", 0, "no recipients" },
	{ "From: a@x.com\nTo: undisclosed-recipients:;\n\n", 0,
	  "no recipients" },
	{ "From: a@x.com\nTo: x@@y\n\n", 0,
	  "line 2: invalid address 'x@@y' in To:" },
	{ "From: a@x.com\nTo: John Doe\n\n", 0,
	  "invalid address 'John Doe' in To:" },
	{ "From: a@x.com\nCc: <>\n\n", 0, "invalid address '' in Cc:" },
	{ "From: a@\nTo: b@x.com\n\n", 0, "invalid address 'a@' in From:" },
	{ "Sender:\nFrom: a@x.com\nTo: b@x.com\n\n", 0,
	  "line 1: no address in Sender:" },
	{ "From: a@x.com\nBcc: b@-x.com\n\n", 0,
	  "invalid address 'b@-x.com' in Bcc:" },
	{ "From: a@x.com\nTo: \x01@@x\n\n", 0,
	  "invalid address '?@@x' in To:" },
	{ "x-receiver: b@x.com\n\n", 0,
	  "x-receiver: line without an x-sender: line" },
	{ "x-sender: a@x.com\nSubject: s\n\n", 0,
	  "x-sender: line without an x-receiver: line" },
	{ "x-sender: a@x.com\nx-sender: c@x.com\nx-receiver: b@x.com\n\n", 0,
	  "line 2: more than one x-sender: line" },
	{ "x-sender: a@x.com\nx-receiver: b@x.com\nX-Sender: c@x.com\n\n", 0,
	  "line 3: more than one x-sender: line" },
	{ "x-sender: a@x.com\nx-receiver: b@x.com, c@x.com\n\n", 0,
	  "line 2: invalid address 'b@x.com, c@x.com' in x-receiver:" },
	{ "x-sender: a@x.com\nx-receiver: <>\n\n", 0,
	  "invalid address '' in x-receiver:" },
	{ "x-sender:\nx-receiver: b@x.com\n\n", 0,
	  "invalid address '' in x-sender:" },
	{ "x-sender: Joe <a@x.com>\nx-receiver: b@x.com\n\n", 0,
	  "invalid address 'Joe <a@x.com>' in x-sender:" },
	{ "From: a@x.com\nTo: \"abc <b@x.com>\n\n", 0,
	  "line 2: malformed address list in To: (unterminated quoted string)" },
	{ "From: a@x.com\nTo: (abc <b@x.com>\n\n", 0,
	  "(unterminated comment)" },
	{ "From: a@x.com\nTo: <b@x.com\n\n", 0, "(unterminated '<')" },
	{ "From: a@x.com\nTo: b@[1.2.3.4\n\n", 0,
	  "(unterminated domain literal)" },
	{ "From: a@x.com\nTo: a: b: c@x.com;;\n\n", 0,
	  "(group inside a group)" },
	{ "From: a@x.com\nTo: b@x.com;\n\n", 0, "(';' outside a group)" },
	{ "From: a@x.com\nTo: <b@x.com> c@x.com\n\n", 0,
	  "(text after the end of an address)" },
	{ "From: a@x.com\nTo: g: b@x.com; c@x.com\n\n", 0,
	  "(text after the end of an address)" },
	{ "From: a@x.com\nTo: b@x.com>\n\n", 0, "(unexpected '>')" },
	{ "From: a@x.com\nTo: b)@x.com\n\n", 0, "(unbalanced bracket)" },
	{ "From: a@x.com\nTo: a\\b@x.com\n\n", 0, "(backslash outside quotes)" },
	{ "From: a@x.com\nTo: <a<b@x.com>\n\n", 0,
	  "(unexpected character inside <...>)" },
	{ "From: a@x.com\nTo: <@r.com b@x.com>\n\n", 0,
	  "(malformed source route)" },
};

static char *
content_str(const struct pickup_msg *m)
{
	size_t n = evbuffer_get_length(m->content);
	char *s;

	ck_assert_ptr_nonnull(s = malloc(n + 1));
	ck_assert_int_eq(evbuffer_copyout(m->content, s, n), (ssize_t)n);
	s[n] = '\0';
	return s;
}

START_TEST(test_good)
{
	const struct good *g = &good[_i];
	struct pickup_msg m;
	size_t n;
	char *out;

	if (pickup_parse(g->in, strlen(g->in), &opts, &m) != 0)
		ck_abort_msg("%s: unexpected error: %s", g->name, m.error);
	ck_assert_msg(strcmp(m.sender, g->sender) == 0, "%s: sender '%s'",
	    g->name, m.sender);
	for (n = 0; g->rcpts[n] != NULL; n++) {
		ck_assert_msg(n < m.nrcpts, "%s: only %zu recipients", g->name,
		    m.nrcpts);
		ck_assert_msg(strcmp(m.rcpts[n], g->rcpts[n]) == 0,
		    "%s: rcpt %zu is '%s', want '%s'", g->name, n, m.rcpts[n],
		    g->rcpts[n]);
	}
	ck_assert_msg(m.nrcpts == n, "%s: %zu recipients, want %zu", g->name,
	    m.nrcpts, n);
	out = content_str(&m);
	ck_assert_msg(strcmp(out, g->out) == 0, "%s: content\n%s\nwant\n%s",
	    g->name, out, g->out);
	free(out);
	pickup_msg_free(&m);
	pickup_msg_free(&m);
	ck_assert_ptr_null(m.sender);
	ck_assert_ptr_null(m.rcpts);
	ck_assert_ptr_null(m.content);
}
END_TEST

START_TEST(test_bad)
{
	const struct bad *b = &bad[_i];
	struct pickup_msg m;
	size_t len = b->len ? b->len : strlen(b->in);

	ck_assert_int_eq(pickup_parse(b->in, len, &opts, &m), -1);
	ck_assert_msg(strstr(m.error, b->error) != NULL,
	    "bad[%d]: error '%s', want '%s'", _i, m.error, b->error);
	ck_assert_ptr_null(strchr(m.error, '\n'));
	ck_assert_ptr_null(m.sender);
	ck_assert_ptr_null(m.rcpts);
	ck_assert_ptr_null(m.content);
	pickup_msg_free(&m);
	pickup_msg_free(&m);
}
END_TEST

START_TEST(test_null_data)
{
	struct pickup_msg m;

	ck_assert_int_eq(pickup_parse(NULL, 0, &opts, &m), -1);
	ck_assert_str_eq(m.error, "empty file");
	pickup_msg_free(&m);
}
END_TEST

START_TEST(test_free_zeroed)
{
	struct pickup_msg m;

	memset(&m, 0, sizeof(m));
	pickup_msg_free(&m);
	pickup_msg_free(&m);
	pickup_msg_free(NULL);
}
END_TEST

START_TEST(test_max_rcpts)
{
	struct pickup_opts o = opts;
	struct pickup_msg m;
	const char *in = "From: a@x.com\nTo: b@x.com, c@x.com, B@x.com\n"
	    "Cc: d@x.com\n\n";

	o.max_rcpts = 3;
	ck_assert_int_eq(pickup_parse(in, strlen(in), &o, &m), 0);
	ck_assert_uint_eq(m.nrcpts, 3);
	pickup_msg_free(&m);
	o.max_rcpts = 2;
	ck_assert_int_eq(pickup_parse(in, strlen(in), &o, &m), -1);
	ck_assert_str_eq(m.error, "too many recipients (3, limit 2)");
	pickup_msg_free(&m);
	o.max_rcpts = 0;	/* unlimited */
	ck_assert_int_eq(pickup_parse(in, strlen(in), &o, &m), 0);
	ck_assert_uint_eq(m.nrcpts, 3);
	pickup_msg_free(&m);
}
END_TEST

START_TEST(test_no_added_when_opts_null)
{
	struct pickup_opts o = opts;
	struct pickup_msg m;
	const char *in = "From: a@x.com\nTo: b\n\n";
	char *out;

	o.message_id = NULL;
	o.date = NULL;
	o.default_domain = NULL;
	ck_assert_int_eq(pickup_parse(in, strlen(in), &o, &m), -1);
	ck_assert_ptr_nonnull(strstr(m.error, "invalid address 'b' in To:"));
	pickup_msg_free(&m);
	in = "From: a@x.com\nTo: b@x.com\n\n";
	ck_assert_int_eq(pickup_parse(in, strlen(in), &o, &m), 0);
	out = content_str(&m);
	ck_assert_str_eq(out, "From: a@x.com\r\nTo: b@x.com\r\n\r\n");
	free(out);
	pickup_msg_free(&m);
}
END_TEST

/* A 998-octet header line is fine, 999 is not (RFC 5322 2.1.1). */
START_TEST(test_line_length)
{
	struct pickup_msg m;
	char buf[1200];
	size_t n;

	n = (size_t)snprintf(buf, sizeof(buf), "From: a@x.com\nTo: b@x.com\n"
	    "Subject: ");
	memset(buf + n, 'x', 998 - 9);
	n += 998 - 9;
	memcpy(buf + n, "\n\n", 2);
	n += 2;
	ck_assert_int_eq(pickup_parse(buf, n, &opts, &m), 0);
	pickup_msg_free(&m);
	memmove(buf + 27 + 1, buf + 27, n - 27);
	buf[27] = 'y';
	n++;
	ck_assert_int_eq(pickup_parse(buf, n, &opts, &m), -1);
	ck_assert_str_eq(m.error, "line 3: header line longer than 998 octets");
	pickup_msg_free(&m);
}
END_TEST

START_TEST(test_address_too_long)
{
	struct pickup_msg m;
	char buf[1000];
	size_t n;

	n = (size_t)snprintf(buf, sizeof(buf), "From: a@x.com\nTo: ");
	memset(buf + n, 'l', 600);
	n += 600;
	memcpy(buf + n, "@x.com\n\n", 8);
	n += 8;
	ck_assert_int_eq(pickup_parse(buf, n, &opts, &m), -1);
	ck_assert_str_eq(m.error, "line 2: address too long in To:");
	pickup_msg_free(&m);
}
END_TEST

/* Many recipients, each twice: the dedup table grows and stays exact. */
START_TEST(test_many_rcpts)
{
	struct pickup_opts o = opts;
	struct pickup_msg m;
	char *buf, line[64];
	size_t i, n = 0, cap = 200000;

	o.max_rcpts = 0;
	ck_assert_ptr_nonnull(buf = malloc(cap));
	n += (size_t)snprintf(buf, cap, "From: a@x.com\n");
	for (i = 0; i < 5000; i++) {
		snprintf(line, sizeof(line), "To: u%zu@x.com, U%zu@X.com\n",
		    i, i);
		ck_assert_uint_lt(n + strlen(line), cap);
		memcpy(buf + n, line, strlen(line));
		n += strlen(line);
	}
	ck_assert_int_eq(pickup_parse(buf, n, &o, &m), 0);
	ck_assert_uint_eq(m.nrcpts, 5000);
	ck_assert_str_eq(m.rcpts[0], "u0@x.com");
	ck_assert_str_eq(m.rcpts[4999], "u4999@x.com");
	pickup_msg_free(&m);
	free(buf);
}
END_TEST

static Suite *
pickup_suite(void)
{
	Suite *s = suite_create("pickup_parse");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_good, 0, sizeof(good) / sizeof(good[0]));
	tcase_add_loop_test(tc, test_bad, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, test_null_data);
	tcase_add_test(tc, test_free_zeroed);
	tcase_add_test(tc, test_max_rcpts);
	tcase_add_test(tc, test_no_added_when_opts_null);
	tcase_add_test(tc, test_line_length);
	tcase_add_test(tc, test_address_too_long);
	tcase_add_test(tc, test_many_rcpts);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(pickup_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
