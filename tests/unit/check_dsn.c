/*
 * check_dsn.c - unit tests of common/dsn.c (RFC 3461 xtext, NOTIFY, RET,
 * ENVID, ORCPT) and common/proto_commit.c (the QUEUE_MSG_COMMIT payload:
 * round trip, every truncation refused as malformed, invalid fields refused).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>

#include "dsn.h"
#include "envelope.h"
#include "ipc.h"
#include "proto.h"
#include "proto_commit.h"

/* ---- xtext ---------------------------------------------------------------- */

static const struct {
	const char	*in;
	int		 utf8;
	const char	*out;		/* NULL: refused */
} xtexts[] = {
	{ "abc", 0, "abc" },
	{ "a+2Bb", 0, "a+b" },
	{ "+3D", 0, "=" },
	{ "+20x", 0, " x" },
	{ "a+2b", 0, NULL },		/* hexchar is upper case */
	{ "a+2", 0, NULL },
	{ "a+", 0, NULL },
	{ "a=b", 0, NULL },		/* '=' must be encoded */
	{ "a b", 0, NULL },
	{ "+00", 0, NULL },		/* NUL */
	{ "+0D+0A", 0, NULL },		/* CRLF */
	{ "+7F", 0, NULL },
	{ "j\xc3\xb6rg", 0, NULL },
	{ "j\xc3\xb6rg", 1, "j\xc3\xb6rg" },
	{ "j\xc3rg", 1, NULL },		/* broken UTF-8 */
	{ "", 0, "" },
};

START_TEST(test_xtext)
{
	char out[64];
	int r;

	r = dsn_xtext_decode(xtexts[_i].in, xtexts[_i].utf8, out, sizeof(out));
	if (xtexts[_i].out == NULL)
		ck_assert_msg(r == -1, "\"%s\" accepted", xtexts[_i].in);
	else {
		ck_assert_msg(r >= 0, "\"%s\" refused", xtexts[_i].in);
		ck_assert_str_eq(out, xtexts[_i].out);
		ck_assert_int_eq(r, (int)strlen(xtexts[_i].out));
	}
}
END_TEST

START_TEST(test_xtext_room)
{
	char out[4];

	ck_assert_int_eq(dsn_xtext_decode("abc", 0, out, sizeof(out)), 3);
	ck_assert_int_eq(dsn_xtext_decode("abcd", 0, out, sizeof(out)), -1);
	ck_assert_int_eq(dsn_xtext_decode("ab+2B", 0, out, sizeof(out)), 3);
	ck_assert_int_eq(dsn_xtext_decode("a", 0, out, 0), -1);
}
END_TEST

/* ---- NOTIFY, RET, ENVID, ORCPT --------------------------------------------------- */

static const struct {
	const char	*in;
	int		 ok;
	uint32_t	 bits;
	const char	*fmt;
} notifies[] = {
	{ "NEVER", 1, DSN_NOTIFY_NEVER, "never" },
	{ "never", 1, DSN_NOTIFY_NEVER, "never" },
	{ "SUCCESS", 1, DSN_NOTIFY_SUCCESS, "success" },
	{ "FAILURE,DELAY", 1, DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY, "failure,delay" },
	{ "delay,success,failure", 1, 7, "success,failure,delay" },
	{ "NEVER,SUCCESS", 0, 0, NULL },
	{ "SUCCESS,NEVER", 0, 0, NULL },
	{ "SUCCESS,SUCCESS", 0, 0, NULL },
	{ "SUCCESS,", 0, 0, NULL },
	{ ",SUCCESS", 0, 0, NULL },
	{ "", 0, 0, NULL },
	{ "ALWAYS", 0, 0, NULL },
	{ "SUCCESSX", 0, 0, NULL },
};

START_TEST(test_notify)
{
	uint32_t bits = 0;
	char buf[32];
	int r = dsn_notify_parse(notifies[_i].in, &bits);

	if (!notifies[_i].ok) {
		ck_assert_msg(r == -1, "\"%s\" accepted", notifies[_i].in);
		return;
	}
	ck_assert_msg(r == 0, "\"%s\" refused", notifies[_i].in);
	ck_assert_uint_eq(bits, notifies[_i].bits);
	ck_assert_str_eq(dsn_notify_format(bits, buf, sizeof(buf)), notifies[_i].fmt);
	/* the text form reads back */
	ck_assert_int_eq(dsn_notify_parse(buf, &bits), 0);
	ck_assert_uint_eq(bits, notifies[_i].bits);
}
END_TEST

START_TEST(test_ret_envid_orcpt)
{
	char big[600];

	ck_assert_int_eq(dsn_ret_parse("FULL"), DSN_RET_FULL);
	ck_assert_int_eq(dsn_ret_parse("hdrs"), DSN_RET_HDRS);
	ck_assert_int_eq(dsn_ret_parse("NONE"), -1);
	ck_assert_int_eq(dsn_ret_parse(""), -1);
	ck_assert_str_eq(dsn_ret_name(DSN_RET_FULL), "full");

	ck_assert(dsn_envid_valid("QQ314159"));
	ck_assert(dsn_envid_valid("a+2Bb"));
	ck_assert(!dsn_envid_valid(""));
	ck_assert(!dsn_envid_valid("a+0Ab"));
	ck_assert(!dsn_envid_valid("j\xc3\xb6rg"));
	ck_assert(!dsn_envid_valid("a+80b"));	/* xtext, but not US-ASCII (fuzz_dsn) */
	ck_assert(!dsn_envid_valid("a+7Fb"));
	memset(big, 'e', 100);
	big[100] = '\0';
	ck_assert(dsn_envid_valid(big));
	big[100] = 'e';
	big[101] = '\0';
	ck_assert(!dsn_envid_valid(big));

	ck_assert(dsn_orcpt_valid("rfc822;bob@example.test", 0));
	ck_assert(dsn_orcpt_valid("RFC822;b+2Bob@example.test", 0));
	ck_assert(dsn_orcpt_valid("utf-8;j\xc3\xb6rg@example.test", 1));
	ck_assert(!dsn_orcpt_valid("utf-8;j\xc3\xb6rg@example.test", 0));
	ck_assert(!dsn_orcpt_valid("rfc822", 0));
	ck_assert(!dsn_orcpt_valid(";bob@example.test", 0));
	ck_assert(!dsn_orcpt_valid("rfc822;", 0));
	ck_assert(!dsn_orcpt_valid("rfc 822;bob@x", 0));
	ck_assert(!dsn_orcpt_valid("rfc822;bob@x+0D+0A", 0));
	memcpy(big, "rfc822;", 7);
	memset(big + 7, 'o', 493);
	big[500] = '\0';
	ck_assert(dsn_orcpt_valid(big, 0));
	big[500] = 'o';
	big[501] = '\0';
	ck_assert(!dsn_orcpt_valid(big, 0));
}
END_TEST

/* ---- QUEUE_MSG_COMMIT ------------------------------------------------------------ */

static void
msg_of(struct mbuf *m, struct ipc_msg *msg, size_t len)
{
	memset(msg, 0, sizeof(*msg));
	msg->fd = -1;
	msg->type = QUEUE_MSG_COMMIT;
	msg->data = m->buf + IPC_HDR_SIZE;
	msg->len = len;
}

static void
build(struct mbuf *m, const char *sender, uint32_t notify2, const char *rcpt2)
{
	struct commit_head h = {
		.qid = "0005f3c1a2b3c4d5e6f7", .sender = sender,
		.body = ENV_BODY_BINARYMIME, .smtputf8 = 1, .ret = DSN_RET_FULL,
		.envid = "ID+2B1",
	};

	proto_commit_begin(m, 7, &h, 2);
	proto_commit_rcpt(m, "bob@example.test", DSN_NOTIFY_SUCCESS | DSN_NOTIFY_DELAY,
	    "rfc822;bob@example.test");
	proto_commit_rcpt(m, rcpt2, notify2, NULL);
	ck_assert_int_eq(m->error, 0);
}

START_TEST(test_commit_roundtrip)
{
	struct envelope e;
	struct ipc_msg msg;
	struct mbuf m;
	const char *qid;
	char why[128];

	build(&m, "alice@example.test", DSN_NOTIFY_NEVER, "Postmaster");
	msg_of(&m, &msg, m.len - IPC_HDR_SIZE);
	memset(&e, 0, sizeof(e));
	ck_assert_int_eq(proto_commit_qid(&msg, &qid), 0);
	ck_assert_str_eq(qid, "0005f3c1a2b3c4d5e6f7");
	ck_assert_int_eq(proto_commit_decode(&msg, &e, 100, why, sizeof(why)), 0);
	ck_assert_str_eq(e.sender, "alice@example.test");
	ck_assert_int_eq(e.body, ENV_BODY_BINARYMIME);
	ck_assert_int_eq(e.smtputf8, 1);
	ck_assert_int_eq(e.ret, DSN_RET_FULL);
	ck_assert_str_eq(e.envid, "ID+2B1");
	ck_assert_uint_eq(e.nrcpts, 2);
	ck_assert_str_eq(e.rcpts[0].addr, "bob@example.test");
	ck_assert_uint_eq(e.rcpts[0].notify, DSN_NOTIFY_SUCCESS | DSN_NOTIFY_DELAY);
	ck_assert_str_eq(e.rcpts[0].orcpt, "rfc822;bob@example.test");
	ck_assert_str_eq(e.rcpts[1].addr, "Postmaster");
	ck_assert_uint_eq(e.rcpts[1].notify, DSN_NOTIFY_NEVER);
	ck_assert_ptr_null(e.rcpts[1].orcpt);
	envelope_free(&e);
	m_free(&m);
}
END_TEST

/* Every truncation of the payload is a malformed frame, never a crash. */
START_TEST(test_commit_truncated)
{
	struct envelope e;
	struct ipc_msg msg;
	struct mbuf m;
	const char *qid;
	char why[128];
	size_t len, full;
	uint8_t *copy;

	build(&m, "", 0, "carol@example.test");
	full = m.len - IPC_HDR_SIZE;
	for (len = 0; len < full; len++) {
		ck_assert_ptr_nonnull(copy = malloc(len ? len : 1));
		memcpy(copy, m.buf + IPC_HDR_SIZE, len);
		memset(&msg, 0, sizeof(msg));
		msg.fd = -1;
		msg.data = copy;
		msg.len = len;
		memset(&e, 0, sizeof(e));
		if (proto_commit_qid(&msg, &qid) == 0)
			ck_assert_int_eq(proto_commit_decode(&msg, &e, 100, why,
			    sizeof(why)), -1);
		envelope_free(&e);
		free(copy);
	}
	/* a count over the limit is malformed too */
	msg_of(&m, &msg, full);
	memset(&e, 0, sizeof(e));
	ck_assert_int_eq(proto_commit_qid(&msg, &qid), 0);
	ck_assert_int_eq(proto_commit_decode(&msg, &e, 1, why, sizeof(why)), -1);
	envelope_free(&e);
	m_free(&m);
}
END_TEST

/* Well framed but invalid: refused (-2), the whole frame still read. */
START_TEST(test_commit_invalid)
{
	static const struct {
		const char	*sender;
		uint32_t	 notify;
		const char	*rcpt;
	} cases[] = {
		{ "not an address", 0, "carol@example.test" },
		{ "alice@example.test", DSN_NOTIFY_NEVER | DSN_NOTIFY_SUCCESS, "carol@example.test" },
		{ "alice@example.test", 0x10, "carol@example.test" },
		{ "alice@example.test", 0, "carol" },
		{ "alice@example.test", 0, "<carol@example.test>" },
	};
	struct envelope e;
	struct ipc_msg msg;
	struct mbuf m;
	const char *qid;
	char why[128];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		build(&m, cases[i].sender, cases[i].notify, cases[i].rcpt);
		msg_of(&m, &msg, m.len - IPC_HDR_SIZE);
		memset(&e, 0, sizeof(e));
		ck_assert_int_eq(proto_commit_qid(&msg, &qid), 0);
		ck_assert_msg(proto_commit_decode(&msg, &e, 100, why, sizeof(why)) == -2,
		    "case %zu accepted", i);
		ck_assert_int_eq(msg.error, 0);
		envelope_free(&e);
		m_free(&m);
	}
}
END_TEST

static Suite *
dsn_suite(void)
{
	Suite *s = suite_create("dsn");
	TCase *tc;

	tc = tcase_create("syntax");
	tcase_add_loop_test(tc, test_xtext, 0, sizeof(xtexts) / sizeof(xtexts[0]));
	tcase_add_test(tc, test_xtext_room);
	tcase_add_loop_test(tc, test_notify, 0, sizeof(notifies) / sizeof(notifies[0]));
	tcase_add_test(tc, test_ret_envid_orcpt);
	suite_add_tcase(s, tc);

	tc = tcase_create("commit");
	tcase_add_test(tc, test_commit_roundtrip);
	tcase_add_test(tc, test_commit_truncated);
	tcase_add_test(tc, test_commit_invalid);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(dsn_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
