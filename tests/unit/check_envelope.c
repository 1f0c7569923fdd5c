/*
 * check_envelope.c - unit tests of common/envelope.c: the exact file form,
 * format -> parse round trips (null sender, many recipients, every state,
 * extreme numbers), a table of malformed files each rejected with an error
 * naming the line, and every prefix of a good file rejected as torn.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include <check.h>

#include "envelope.h"
#include "queueid.h"

#define ID	"0005f3c1a2b3c4d5e6f7"
#define HEAD	"mailroot-envelope 1\nid " ID "\narrival 1763900000\n" \
		"attempts 0\nnext-attempt 0\n"

static const char good_file[] =
    "mailroot-envelope 1\n"
    "id " ID "\n"
    "arrival 1763900000\n"
    "attempts 0\n"
    "next-attempt 0\n"
    "sender <alice@example.test>\n"
    "rcpt pending <bob@example.test>\n"
    "end\n";

/* ---- helpers -------------------------------------------------------------- */

/* Format `e` into a malloc'ed buffer of exactly its length. */
static char *
format(const struct envelope *e, size_t *len)
{
	struct evbuffer *b;
	char *out;

	b = evbuffer_new();
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(envelope_format(e, b), 0);
	*len = evbuffer_get_length(b);
	out = malloc(*len > 0 ? *len : 1);
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(evbuffer_remove(b, out, *len), (int)*len);
	evbuffer_free(b);
	return out;
}

/* Parse `len` bytes from an exact-size copy (so overreads show under ASan). */
static int
parse(const char *buf, size_t len, struct envelope *e, char *err, size_t errsz)
{
	char *copy;
	int rv;

	copy = malloc(len > 0 ? len : 1);
	ck_assert_ptr_nonnull(copy);
	if (len > 0)
		memcpy(copy, buf, len);
	err[0] = '\0';
	rv = envelope_parse(copy, len, e, err, errsz);
	free(copy);
	return rv;
}

static void
assert_equal(const struct envelope *a, const struct envelope *b)
{
	size_t i;

	ck_assert_str_eq(a->id, b->id);
	ck_assert_str_eq(a->sender != NULL ? a->sender : "", b->sender);
	ck_assert(a->arrival == b->arrival);
	ck_assert_uint_eq(a->attempts, b->attempts);
	ck_assert(a->next_attempt == b->next_attempt);
	ck_assert_uint_eq(a->nrcpts, b->nrcpts);
	for (i = 0; i < a->nrcpts; i++) {
		ck_assert_str_eq(a->rcpts[i].addr, b->rcpts[i].addr);
		ck_assert_int_eq(a->rcpts[i].state, b->rcpts[i].state);
		ck_assert_uint_eq(a->rcpts[i].notify, b->rcpts[i].notify);
		ck_assert_str_eq(a->rcpts[i].orcpt ? a->rcpts[i].orcpt : "-",
		    b->rcpts[i].orcpt ? b->rcpts[i].orcpt : "-");
		ck_assert_str_eq(a->rcpts[i].error ? a->rcpts[i].error : "-",
		    b->rcpts[i].error ? b->rcpts[i].error : "-");
	}
	ck_assert_int_eq(a->delay_notified, b->delay_notified);
	ck_assert_int_eq(a->held, b->held);
	ck_assert(a->last_attempt == b->last_attempt);
	ck_assert_int_eq(a->body, b->body);
	ck_assert_int_eq(a->smtputf8, b->smtputf8);
	ck_assert_int_eq(a->ret, b->ret);
	ck_assert_str_eq(a->envid ? a->envid : "-", b->envid ? b->envid : "-");
}

/* format -> parse -> compare -> format again gives the same bytes */
static void
roundtrip(const struct envelope *e)
{
	struct envelope back;
	char err[256], *text, *text2;
	size_t len, len2;

	text = format(e, &len);
	ck_assert_msg(parse(text, len, &back, err, sizeof(err)) == 0,
	    "parse of formatted envelope failed: %s\n%.*s", err, (int)len, text);
	assert_equal(e, &back);
	text2 = format(&back, &len2);
	ck_assert_uint_eq(len, len2);
	ck_assert_int_eq(memcmp(text, text2, len), 0);
	envelope_free(&back);
	free(text);
	free(text2);
}

/* An address of exactly `total` characters: a 64-character local part, a long domain. */
static void
long_addr(char *buf, size_t total)
{
	size_t n;

	memset(buf, 'l', 64);
	buf[64] = '@';
	for (n = 65; n < total; n++)
		buf[n] = (n - 65) % 11 == 10 ? '.' : (char)('a' + (n - 65) % 11);
	if (buf[total - 1] == '.')
		buf[total - 1] = 'z';
	buf[total] = '\0';
}

static void check_prefixes(const char *, size_t);

/* ---- format ----------------------------------------------------------------------- */

/* The ESMTP and DSN lines: exact form, round trip, and files without them. */
START_TEST(test_dsn_fields)
{
	static const char want[] =
	    "mailroot-envelope 1\n"
	    "id " ID "\n"
	    "arrival 1763900000\n"
	    "attempts 0\n"
	    "next-attempt 0\n"
	    "sender <alice@example.test>\n"
	    "body 8bitmime\n"
	    "smtputf8 yes\n"
	    "ret hdrs\n"
	    "envid QQ+2B123\n"
	    "rcpt pending <bob@example.test>\n"
	    "notify success,failure\n"
	    "orcpt rfc822;bob+2Bx@example.test\n"
	    "rcpt pending <j\xc3\xb6rg@example.test>\n"
	    "notify never\n"
	    "rcpt done <carol@example.test>\n"
	    "orcpt utf-8;j\xc3\xb6rg@example.test\n"
	    "end\n";
	struct envelope e, back;
	char err[256], *text;
	size_t len;

	memset(&e, 0, sizeof(e));
	strlcpy(e.id, ID, sizeof(e.id));
	e.sender = strdup("alice@example.test");
	e.arrival = 1763900000;
	e.body = ENV_BODY_8BITMIME;
	e.smtputf8 = 1;
	e.ret = 2;	/* DSN_RET_HDRS */
	e.envid = strdup("QQ+2B123");
	ck_assert_int_eq(envelope_add_rcpt(&e, "bob@example.test", RCPT_PENDING), 0);
	ck_assert_int_eq(envelope_rcpt_dsn(&e, 0x3, "rfc822;bob+2Bx@example.test"), 0);
	ck_assert_int_eq(envelope_add_rcpt(&e, "j\xc3\xb6rg@example.test", RCPT_PENDING), 0);
	ck_assert_int_eq(envelope_rcpt_dsn(&e, 0x8, NULL), 0);
	ck_assert_int_eq(envelope_add_rcpt(&e, "carol@example.test", RCPT_DONE), 0);
	ck_assert_int_eq(envelope_rcpt_dsn(&e, 0, "utf-8;j\xc3\xb6rg@example.test"), 0);
	text = format(&e, &len);
	ck_assert_uint_eq(len, sizeof(want) - 1);
	ck_assert_msg(memcmp(text, want, len) == 0, "got:\n%.*s", (int)len, text);
	roundtrip(&e);
	ck_assert_int_eq(parse(text, len, &back, err, sizeof(err)), 0);
	ck_assert_uint_eq(back.rcpts[0].notify, 0x3);
	ck_assert_uint_eq(back.rcpts[1].notify, 0x8);
	ck_assert_ptr_null(back.rcpts[1].orcpt);
	ck_assert_uint_eq(back.rcpts[2].notify, 0);
	envelope_free(&back);
	check_prefixes(text, len);
	free(text);
	envelope_free(&e);

	/* a file of the first format (no such lines) still parses, all unset */
	ck_assert_int_eq(parse(good_file, sizeof(good_file) - 1, &back, err, sizeof(err)), 0);
	ck_assert_int_eq(back.body, ENV_BODY_NONE);
	ck_assert_int_eq(back.ret, 0);
	ck_assert_ptr_null(back.envid);
	ck_assert_uint_eq(back.rcpts[0].notify, 0);
	ck_assert_ptr_null(back.rcpts[0].orcpt);
	envelope_free(&back);
}
END_TEST

/* The delivery history lines: exact form, round trip, old files, cleaning. */
START_TEST(test_history_fields)
{
	static const char want[] =
	    "mailroot-envelope 1\n"
	    "id " ID "\n"
	    "arrival 1763900000\n"
	    "attempts 2\n"
	    "next-attempt 1763903600\n"
	    "sender <alice@example.test>\n"
	    "delay-notified yes\n"
	    "last-attempt 1763901800\n"
	    "held yes\n"
	    "rcpt pending <bob@example.test>\n"
	    "notify delay\n"
	    "error 451 4.3.0 mx.example.test[192.0.2.1]: try later\n"
	    "rcpt failed <carol@example.test>\n"
	    "error 550 5.1.1 no such user (\"carol\")\n"
	    "rcpt done <dave@example.test>\n"
	    "end\n";
	struct envelope e, back;
	char err[256], *text;
	size_t len;

	memset(&e, 0, sizeof(e));
	strlcpy(e.id, ID, sizeof(e.id));
	e.sender = strdup("alice@example.test");
	e.arrival = 1763900000;
	e.attempts = 2;
	e.next_attempt = 1763903600;
	e.delay_notified = 1;
	e.last_attempt = 1763901800;
	e.held = 1;
	ck_assert_int_eq(envelope_add_rcpt(&e, "bob@example.test", RCPT_PENDING), 0);
	ck_assert_int_eq(envelope_rcpt_dsn(&e, 0x4, NULL), 0);
	ck_assert_int_eq(envelope_rcpt_error(&e, 0,
	    "451 4.3.0 mx.example.test[192.0.2.1]: try later"), 0);
	ck_assert_int_eq(envelope_add_rcpt(&e, "carol@example.test", RCPT_FAILED), 0);
	/* control characters become '?', trailing blanks go */
	ck_assert_int_eq(envelope_rcpt_error(&e, 1, "550 5.1.1 no such user (\"carol\")  "), 0);
	ck_assert_int_eq(envelope_add_rcpt(&e, "dave@example.test", RCPT_DONE), 0);
	ck_assert_int_eq(envelope_rcpt_error(&e, 2, "x\r\ny"), 0);
	ck_assert_str_eq(e.rcpts[2].error, "x??y");
	ck_assert_int_eq(envelope_rcpt_error(&e, 2, NULL), 0);
	ck_assert_ptr_null(e.rcpts[2].error);
	ck_assert_int_eq(envelope_rcpt_error(&e, 3, "x"), -1);
	text = format(&e, &len);
	ck_assert_msg(len == sizeof(want) - 1 && memcmp(text, want, len) == 0,
	    "got:\n%.*s", (int)len, text);
	roundtrip(&e);
	check_prefixes(text, len);
	free(text);
	envelope_free(&e);

	/* a file written before these lines existed: all unset */
	ck_assert_int_eq(parse(good_file, sizeof(good_file) - 1, &back, err, sizeof(err)), 0);
	ck_assert_int_eq(back.delay_notified, 0);
	ck_assert(back.last_attempt == 0);
	ck_assert_int_eq(back.held, 0);
	ck_assert_ptr_null(back.rcpts[0].error);
	envelope_free(&back);

	/* the longest error fits, one more octet is cut */
	{
		char longtext[ENVELOPE_ERROR_MAX + 2];

		memset(longtext, 'e', sizeof(longtext) - 1);
		longtext[sizeof(longtext) - 1] = '\0';
		memset(&e, 0, sizeof(e));
		strlcpy(e.id, ID, sizeof(e.id));
		e.sender = strdup("");
		ck_assert_int_eq(envelope_add_rcpt(&e, "bob@example.test", RCPT_PENDING), 0);
		ck_assert_int_eq(envelope_rcpt_error(&e, 0, longtext), 0);
		ck_assert_uint_eq(strlen(e.rcpts[0].error), ENVELOPE_ERROR_MAX);
		roundtrip(&e);
		envelope_free(&e);
	}
}
END_TEST

START_TEST(test_format_exact)
{
	struct envelope e;
	char *text;
	size_t len;

	memset(&e, 0, sizeof(e));
	strlcpy(e.id, ID, sizeof(e.id));
	e.sender = strdup("alice@example.test");
	e.arrival = 1763900000;
	ck_assert_int_eq(envelope_add_rcpt(&e, "bob@example.test", RCPT_PENDING), 0);
	text = format(&e, &len);
	ck_assert_uint_eq(len, sizeof(good_file) - 1);
	ck_assert_int_eq(memcmp(text, good_file, len), 0);
	free(text);
	envelope_free(&e);

	/* NULL sender is the null sender <> */
	memset(&e, 0, sizeof(e));
	strlcpy(e.id, ID, sizeof(e.id));
	e.attempts = 3;
	e.next_attempt = -5;
	ck_assert_int_eq(envelope_add_rcpt(&e, "a@example.test", RCPT_DONE), 0);
	ck_assert_int_eq(envelope_add_rcpt(&e, "b@example.test", RCPT_FAILED), 0);
	text = format(&e, &len);
	{
		static const char want[] =
		    "mailroot-envelope 1\nid " ID "\narrival 0\nattempts 3\n"
		    "next-attempt -5\nsender <>\nrcpt done <a@example.test>\n"
		    "rcpt failed <b@example.test>\nend\n";

		ck_assert_uint_eq(len, sizeof(want) - 1);
		ck_assert_int_eq(memcmp(text, want, len), 0);
	}
	free(text);
	envelope_free(&e);
}
END_TEST

START_TEST(test_parse_good)
{
	struct envelope e;
	char err[256];

	ck_assert_int_eq(parse(good_file, sizeof(good_file) - 1, &e, err, sizeof(err)), 0);
	ck_assert_str_eq(e.id, ID);
	ck_assert_str_eq(e.sender, "alice@example.test");
	ck_assert(e.arrival == 1763900000);
	ck_assert_uint_eq(e.attempts, 0);
	ck_assert(e.next_attempt == 0);
	ck_assert_uint_eq(e.nrcpts, 1);
	ck_assert_str_eq(e.rcpts[0].addr, "bob@example.test");
	ck_assert_int_eq(e.rcpts[0].state, RCPT_PENDING);
	envelope_free(&e);
	envelope_free(&e);		/* twice is harmless */
}
END_TEST

START_TEST(test_state_names)
{
	ck_assert_str_eq(rcpt_state_name(RCPT_PENDING), "pending");
	ck_assert_str_eq(rcpt_state_name(RCPT_DONE), "done");
	ck_assert_str_eq(rcpt_state_name(RCPT_FAILED), "failed");
	ck_assert_str_eq(rcpt_state_name((enum rcpt_state)3), "unknown");
	ck_assert_str_eq(rcpt_state_name((enum rcpt_state)-1), "unknown");
}
END_TEST

/* ---- round trips --------------------------------------------------------------------- */

START_TEST(test_roundtrip_basic)
{
	struct envelope e;

	memset(&e, 0, sizeof(e));
	queueid_new(e.id);
	e.sender = strdup("alice@example.test");
	e.arrival = 1763900000;
	e.attempts = 2;
	e.next_attempt = 1763903600;
	envelope_add_rcpt(&e, "bob@example.test", RCPT_PENDING);
	envelope_add_rcpt(&e, "carol@example.test", RCPT_DONE);
	envelope_add_rcpt(&e, "dave@example.test", RCPT_FAILED);
	roundtrip(&e);
	envelope_free(&e);
}
END_TEST

START_TEST(test_roundtrip_null_sender)
{
	struct envelope e;

	memset(&e, 0, sizeof(e));
	strlcpy(e.id, ID, sizeof(e.id));
	e.sender = strdup("");
	envelope_add_rcpt(&e, "postmaster@example.test", RCPT_PENDING);
	roundtrip(&e);
	envelope_free(&e);

	/* NULL sender formats as <> and parses as "" */
	memset(&e, 0, sizeof(e));
	strlcpy(e.id, ID, sizeof(e.id));
	envelope_add_rcpt(&e, "bob@example.test", RCPT_PENDING);
	roundtrip(&e);
	envelope_free(&e);
}
END_TEST

START_TEST(test_roundtrip_many_rcpts)
{
	struct envelope e;
	char addr[64];
	int i;

	memset(&e, 0, sizeof(e));
	queueid_new(e.id);
	e.sender = strdup("list-owner@example.test");
	for (i = 0; i < 2000; i++) {
		snprintf(addr, sizeof(addr), "user%d@host%d.example.test", i, i % 7);
		ck_assert_int_eq(envelope_add_rcpt(&e, addr, (enum rcpt_state)(i % 3)), 0);
	}
	roundtrip(&e);
	envelope_free(&e);
}
END_TEST

START_TEST(test_roundtrip_extremes)
{
	struct envelope e;
	char addr[300];

	memset(&e, 0, sizeof(e));
	strlcpy(e.id, "ffffffffffffffffffff", sizeof(e.id));
	e.sender = strdup("\"john doe\"@example.test");
	e.arrival = INT64_MIN;
	e.attempts = UINT32_MAX;
	e.next_attempt = INT64_MAX;
	/* Postmaster without a domain, quoted local parts, an address literal */
	envelope_add_rcpt(&e, "Postmaster", RCPT_PENDING);
	envelope_add_rcpt(&e, "\"a>b\\\"c\"@example.test", RCPT_DONE);
	envelope_add_rcpt(&e, "x@[192.0.2.1]", RCPT_FAILED);
	envelope_add_rcpt(&e, "x@[IPv6:2001:db8::1]", RCPT_PENDING);
	/* the longest address: 254 characters */
	long_addr(addr, 254);
	envelope_add_rcpt(&e, addr, RCPT_PENDING);
	roundtrip(&e);
	envelope_free(&e);
}
END_TEST

/* ---- malformed files ------------------------------------------------------------------------ */

struct bad {
	const char	*text;
	size_t		 len;		/* 0: strlen */
	const char	*substr;	/* expected in the error */
};

#define B(t, s)		{ t, 0, s }
#define BN(t, s)	{ t, sizeof(t) - 1, s }

static const struct bad bad[] = {
	/* torn */
	B("", "no end line (torn file)"),
	B(HEAD "sender <a@example.test>\nrcpt pending <b@example.test>\n",
	    "no end line (torn file)"),
	B(HEAD "sender <a@example.test>\nrcpt pending <b@example.test>\nend",
	    "line 8: not terminated (torn file)"),
	B(HEAD "sender <a@example.test>\nrcpt pending <b@exa",
	    "line 7: not terminated (torn file)"),
	B("mailroot-envelope 1", "line 1: not terminated"),

	/* version */
	B("mailroot-envelope 2\nid " ID "\nsender <a@example.test>\n"
	    "rcpt pending <b@example.test>\nend\n", "line 1: not a version 1 envelope"),
	B("mailroot-envelope 1 \nid " ID "\nsender <a@example.test>\n"
	    "rcpt pending <b@example.test>\nend\n", "line 1:"),
	B("mailroot-envelope\nend\n", "line 1:"),
	B("id " ID "\nmailroot-envelope 1\nend\n", "line 1:"),
	B("mailroot-envelope 1\r\nid " ID "\r\nend\r\n", "line 1:"),
	B("\nmailroot-envelope 1\nend\n", "line 1:"),

	/* id */
	B("mailroot-envelope 1\nid 0005F3C1A2B3C4D5E6F7\nsender <a@example.test>\n"
	    "rcpt pending <b@example.test>\nend\n", "line 2: malformed"),
	B("mailroot-envelope 1\nid 0005f3c1\nsender <a@example.test>\n"
	    "rcpt pending <b@example.test>\nend\n", "line 2: malformed"),
	B("mailroot-envelope 1\nid ../../etc/passwd\nsender <a@example.test>\n"
	    "rcpt pending <b@example.test>\nend\n", "line 2: malformed"),
	B("mailroot-envelope 1\nid\nsender <a@example.test>\n"
	    "rcpt pending <b@example.test>\nend\n", "line 2: malformed"),
	B("mailroot-envelope 1\nid  " ID "\nsender <a@example.test>\n"
	    "rcpt pending <b@example.test>\nend\n", "line 2: malformed"),

	/* numbers */
	B("mailroot-envelope 1\narrival abc\n", "line 2: malformed"),
	B("mailroot-envelope 1\narrival \n", "line 2: malformed"),
	B("mailroot-envelope 1\narrival +5\n", "line 2: malformed"),
	B("mailroot-envelope 1\narrival 5 \n", "line 2: malformed"),
	B("mailroot-envelope 1\narrival 99999999999999999999\n", "line 2: malformed"),
	B("mailroot-envelope 1\nattempts -1\n", "line 2: malformed"),
	B("mailroot-envelope 1\nattempts 4294967296\n", "line 2: malformed"),
	B("mailroot-envelope 1\nnext-attempt 1e9\n", "line 2: malformed"),
	B("mailroot-envelope 1\nnext-attempt -\n", "line 2: malformed"),

	/* states */
	B(HEAD "sender <a@example.test>\nrcpt delivered <b@example.test>\nend\n",
	    "line 7: malformed"),
	B(HEAD "sender <a@example.test>\nrcpt Pending <b@example.test>\nend\n",
	    "line 7: malformed"),
	B(HEAD "sender <a@example.test>\nrcpt <b@example.test>\nend\n",
	    "line 7: malformed"),
	B(HEAD "sender <a@example.test>\nrcpt pending\nend\n", "line 7: malformed"),

	/* addresses */
	B(HEAD "sender <alice>\nrcpt pending <b@example.test>\nend\n", "line 6: malformed"),
	B(HEAD "sender alice@example.test\nrcpt pending <b@example.test>\nend\n",
	    "line 6: malformed"),
	B(HEAD "sender <a@example.test\nrcpt pending <b@example.test>\nend\n",
	    "line 6: malformed"),
	B(HEAD "sender <a@@example.test>\nrcpt pending <b@example.test>\nend\n",
	    "line 6: malformed"),
	B(HEAD "sender <a@example.test> \nrcpt pending <b@example.test>\nend\n",
	    "line 6: malformed"),
	B(HEAD "sender <a@example.test>\nrcpt pending <>\nend\n", "line 7: malformed"),
	B(HEAD "sender <a@example.test>\nrcpt pending <b@>\nend\n", "line 7: malformed"),
	B(HEAD "sender <a@example.test>\nrcpt pending b@example.test\nend\n",
	    "line 7: malformed"),
	B(HEAD "sender <a@example.test>\nrcpt pending  <b@example.test>\nend\n",
	    "line 7: malformed"),
	B(HEAD "sender <a@example.test>\nrcpt pending <b c@example.test>\nend\n",
	    "line 7: malformed"),
	B(HEAD "sender <a@example.test>\nrcpt pending <b@example..test>\nend\n",
	    "line 7: malformed"),

	/* missing or duplicate parts */
	B(HEAD "rcpt pending <b@example.test>\nend\n", "missing id, sender or recipients"),
	B(HEAD "sender <a@example.test>\nend\n", "missing id, sender or recipients"),
	B("mailroot-envelope 1\nsender <a@example.test>\nrcpt pending <b@example.test>\nend\n",
	    "missing id, sender or recipients"),
	B("mailroot-envelope 1\nend\n", "missing"),
	B(HEAD "sender <a@example.test>\nsender <c@example.test>\n"
	    "rcpt pending <b@example.test>\nend\n", "line 7: malformed"),
	B(HEAD "sender <>\nsender <>\nrcpt pending <b@example.test>\nend\n",
	    "line 7: malformed"),

	/* unknown lines, data after end */
	B(HEAD "sender <a@example.test>\ncolor blue\nrcpt pending <b@example.test>\nend\n",
	    "line 7: malformed"),
	B(HEAD "sender <a@example.test>\n\nrcpt pending <b@example.test>\nend\n",
	    "line 7: malformed"),
	B(HEAD "sender <a@example.test>\nrcpt pending <b@example.test>\nend \n",
	    "line 8: malformed"),
	B(HEAD "sender <a@example.test>\nrcpt pending <b@example.test>\nend\n"
	    "rcpt pending <c@example.test>\n", "line 9: data after end"),
	B(HEAD "sender <a@example.test>\nrcpt pending <b@example.test>\nend\n\n",
	    "line 9: data after end"),
	B(HEAD "sender <a@example.test>\nrcpt pending <b@example.test>\nend\nend\n",
	    "line 9: data after end"),
	B(HEAD "sender <a@example.test>\nrcpt pending <b@example.test>\nend\nx",
	    "line 9:"),
	B(HEAD "sender <a@example.test>\nend\nrcpt pending <b@example.test>\nend\n",
	    "line 8: data after end"),

	/* over-long lines, NUL */
	B(HEAD "sender <a@example.test>\nrcpt pending <"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "@example.test>\nend\n", "line 7: too long or binary"),
	BN(HEAD "sender <a\0b@example.test>\nrcpt pending <b@example.test>\nend\n",
	    "line 6: too long or binary"),
	BN("mailroot-envelope 1\0\nend\n", "line 1: too long or binary"),
	BN(HEAD "sender <a@example.test>\nrcpt pending <b@example.test>\nend\n\0",
	    "line 9:"),
	B(HEAD "sender <a@example.test>\nrcpt pending <b@example.test\001>\nend\n",
	    "line 7: malformed"),

	/* ESMTP and DSN lines (RFC 3461) */
	B(HEAD "sender <a@example.test>\nnotify never\nrcpt pending <b@example.test>\nend\n",
	    "line 7: malformed"),		/* notify before any rcpt */
	B(HEAD "sender <a@example.test>\nrcpt pending <b@example.test>\nnotify never,success\nend\n",
	    "line 8: malformed"),
	B(HEAD "sender <a@example.test>\nrcpt pending <b@example.test>\nnotify success,success\nend\n",
	    "line 8: malformed"),
	B(HEAD "sender <a@example.test>\nrcpt pending <b@example.test>\nnotify delay\nnotify delay\nend\n",
	    "line 9: malformed"),
	B(HEAD "sender <a@example.test>\nrcpt pending <b@example.test>\norcpt rfc822\nend\n",
	    "line 8: malformed"),
	B(HEAD "sender <a@example.test>\nrcpt pending <b@example.test>\norcpt rfc822;a+2b@x\nend\n",
	    "line 8: malformed"),		/* hexchar is upper case */
	B(HEAD "sender <a@example.test>\nrcpt pending <b@example.test>\norcpt ;a@x\nend\n",
	    "line 8: malformed"),
	B(HEAD "sender <a@example.test>\nenvid a+0Ab\nrcpt pending <b@example.test>\nend\n",
	    "line 7: malformed"),		/* decodes to a control character */
	B(HEAD "sender <a@example.test>\nenvid a=b\nrcpt pending <b@example.test>\nend\n",
	    "line 7: malformed"),
	B(HEAD "sender <a@example.test>\nenvid x\nenvid y\nrcpt pending <b@example.test>\nend\n",
	    "line 8: malformed"),
	B(HEAD "sender <a@example.test>\nret never\nrcpt pending <b@example.test>\nend\n",
	    "line 7: malformed"),
	B(HEAD "sender <a@example.test>\nret full\nret hdrs\nrcpt pending <b@example.test>\nend\n",
	    "line 8: malformed"),
	B(HEAD "sender <a@example.test>\nbody 9bit\nrcpt pending <b@example.test>\nend\n",
	    "line 7: malformed"),
	B(HEAD "sender <a@example.test>\nsmtputf8 no\nrcpt pending <b@example.test>\nend\n",
	    "line 7: malformed"),

	/* delivery history lines */
	B(HEAD "sender <a@example.test>\nerror 451 x\nrcpt pending <b@example.test>\nend\n",
	    "line 7: malformed"),		/* error before any rcpt */
	B(HEAD "sender <a@example.test>\nrcpt pending <b@example.test>\nerror \nend\n",
	    "line 8: malformed"),
	B(HEAD "sender <a@example.test>\nrcpt pending <b@example.test>\nerror a\nerror b\nend\n",
	    "line 9: malformed"),
	B(HEAD "sender <a@example.test>\nrcpt pending <b@example.test>\nerror a\tb\nend\n",
	    "line 8: malformed"),
	B(HEAD "sender <a@example.test>\nrcpt pending <b@example.test>\nerror caf\xc3\xa9\nend\n",
	    "line 8: malformed"),
	B(HEAD "sender <a@example.test>\ndelay-notified no\nrcpt pending <b@example.test>\nend\n",
	    "line 7: malformed"),
	B(HEAD "sender <a@example.test>\ndelay-notified yes\ndelay-notified yes\n"
	    "rcpt pending <b@example.test>\nend\n", "line 8: malformed"),
	B(HEAD "sender <a@example.test>\nlast-attempt soon\nrcpt pending <b@example.test>\nend\n",
	    "line 7: malformed"),
	B(HEAD "sender <a@example.test>\nlast-attempt 1\nlast-attempt 2\n"
	    "rcpt pending <b@example.test>\nend\n", "line 8: malformed"),
	/* the operator hold */
	B(HEAD "sender <a@example.test>\nheld no\nrcpt pending <b@example.test>\nend\n",
	    "line 7: malformed"),
	B(HEAD "sender <a@example.test>\nheld yes\nheld yes\n"
	    "rcpt pending <b@example.test>\nend\n", "line 8: malformed"),
};

START_TEST(test_bad)
{
	const struct bad *b = &bad[_i];
	struct envelope e;
	char err[256];
	size_t len = b->len ? b->len : strlen(b->text);

	ck_assert_msg(parse(b->text, len, &e, err, sizeof(err)) == -1,
	    "accepted:\n%s", b->text);
	ck_assert_msg(strstr(err, b->substr) != NULL,
	    "error \"%s\", want \"%s\" for:\n%s", err, b->substr, b->text);
	envelope_free(&e);
	envelope_free(&e);
}
END_TEST

/* A line of exactly the largest size that fits is accepted; one more is not. */
START_TEST(test_line_limit)
{
	struct envelope e;
	char err[256], buf[4096], addr[2100];

	/* the longest valid address (254 characters) */
	long_addr(addr, 254);
	snprintf(buf, sizeof(buf), HEAD "sender <%s>\nrcpt failed <%s>\nend\n", addr, addr);
	ck_assert_msg(parse(buf, strlen(buf), &e, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(e.sender, addr);
	ck_assert_str_eq(e.rcpts[0].addr, addr);
	envelope_free(&e);

	/* one character more is not a valid mailbox */
	long_addr(addr, 255);
	snprintf(buf, sizeof(buf), HEAD "sender <a@example.test>\nrcpt failed <%s>\nend\n", addr);
	ck_assert_int_eq(parse(buf, strlen(buf), &e, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "line 7:") != NULL, "%s", err);
	envelope_free(&e);

	/* a line longer than the parser's buffer */
	memset(addr, 'x', 2000);
	addr[2000] = '\0';
	snprintf(buf, sizeof(buf), HEAD "sender <a@example.test>\nrcpt failed <%s@example.test>\nend\n", addr);
	ck_assert_int_eq(parse(buf, strlen(buf), &e, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "line 7: too long") != NULL, "%s", err);
	envelope_free(&e);

	/* a too-large file */
	{
		size_t big = ENVELOPE_MAX_SIZE + 1;
		char *p = malloc(big);

		ck_assert_ptr_nonnull(p);
		memset(p, '\n', big);
		ck_assert_int_eq(envelope_parse(p, big, &e, err, sizeof(err)), -1);
		ck_assert_ptr_nonnull(strstr(err, "too large"));
		envelope_free(&e);
		free(p);
	}
}
END_TEST

/* Every proper prefix of a good file is torn; only the whole file parses. */
static void
check_prefixes(const char *text, size_t len)
{
	struct envelope e;
	char err[256];
	size_t k;

	for (k = 0; k < len; k++) {
		if (parse(text, k, &e, err, sizeof(err)) != -1)
			ck_abort_msg("prefix of %zu bytes accepted", k);
		if (strstr(err, "torn") == NULL)
			ck_abort_msg("prefix of %zu bytes: error \"%s\" is not torn", k, err);
		envelope_free(&e);
	}
	ck_assert_msg(parse(text, len, &e, err, sizeof(err)) == 0, "%s", err);
	envelope_free(&e);
}

START_TEST(test_prefixes)
{
	struct envelope e;
	char *text;
	size_t len;

	check_prefixes(good_file, sizeof(good_file) - 1);

	memset(&e, 0, sizeof(e));
	strlcpy(e.id, ID, sizeof(e.id));
	e.sender = strdup("");
	e.attempts = 17;
	e.arrival = -1;
	envelope_add_rcpt(&e, "a@example.test", RCPT_DONE);
	envelope_add_rcpt(&e, "Postmaster", RCPT_FAILED);
	envelope_add_rcpt(&e, "\"q r\"@[192.0.2.7]", RCPT_PENDING);
	text = format(&e, &len);
	check_prefixes(text, len);
	free(text);
	envelope_free(&e);
}
END_TEST

/* The error buffer is always terminated, even when small. */
START_TEST(test_small_err)
{
	struct envelope e;
	char err[8];

	memset(err, 'X', sizeof(err));
	ck_assert_int_eq(envelope_parse("x\n", 2, &e, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(memchr(err, '\0', sizeof(err)));
	envelope_free(&e);
}
END_TEST

/*
 * A hand-edited file with two id lines is ambiguous (which file is it?),
 * like one with two sender lines, which the parser refuses.
 */
START_TEST(test_duplicate_id)
{
	static const char text[] =
	    "mailroot-envelope 1\n"
	    "id " ID "\n"
	    "id 00000000000000000001\n"
	    "sender <a@example.test>\n"
	    "rcpt pending <b@example.test>\n"
	    "end\n";
	struct envelope e;
	char err[256];
	int rv;

	char id[QUEUEID_LEN + 1];

	rv = parse(text, sizeof(text) - 1, &e, err, sizeof(err));
	memcpy(id, e.id, sizeof(id));
	envelope_free(&e);
	ck_assert_msg(rv == -1, "two id lines accepted (id is %s)", id);
	ck_assert_msg(strstr(err, "line 3") != NULL, "error \"%s\"", err);
}
END_TEST

static Suite *
envelope_suite(void)
{
	Suite *s = suite_create("envelope");
	TCase *tc;

	tc = tcase_create("format");
	tcase_add_test(tc, test_format_exact);
	tcase_add_test(tc, test_dsn_fields);
	tcase_add_test(tc, test_history_fields);
	tcase_add_test(tc, test_parse_good);
	tcase_add_test(tc, test_state_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("roundtrip");
	tcase_add_test(tc, test_roundtrip_basic);
	tcase_add_test(tc, test_roundtrip_null_sender);
	tcase_add_test(tc, test_roundtrip_many_rcpts);
	tcase_add_test(tc, test_roundtrip_extremes);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_bad, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, test_line_limit);
	tcase_add_test(tc, test_prefixes);
	tcase_add_test(tc, test_small_err);
	suite_add_tcase(s, tc);

	tc = tcase_create("regressions");
	tcase_add_test(tc, test_duplicate_id);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(envelope_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
