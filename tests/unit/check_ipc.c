/*
 * check_ipc.c - unit tests of common/ipc.c: the field codec (m_add_* /
 * m_get_* / m_end), the frame reader (ipc_reader_feed / ipc_reader_next) on
 * hand-built frames, and the blocking transport (ipc_send_sync /
 * ipc_recv_sync) over a real socketpair with descriptor passing.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <check.h>

#include "ipc.h"

/* ---- helpers --------------------------------------------------------------- */

static void
be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/*
 * Append one frame (wire format of ipc.h: type, payload length, id, flags,
 * all big-endian, then the payload) to buf at *off.
 */
static void
put_frame(uint8_t *buf, size_t *off, uint32_t type, uint32_t len, uint32_t id,
    uint32_t flags, const void *payload, size_t plen)
{
	be32(buf + *off, type);
	be32(buf + *off + 4, len);
	be32(buf + *off + 8, id);
	be32(buf + *off + 12, flags);
	*off += IPC_HDR_SIZE;
	if (plen > 0)
		memcpy(buf + *off, payload, plen);
	*off += plen;
}

/* A message over a payload given by hand, as ipc_reader_next() makes it. */
static void
msg_over(struct ipc_msg *msg, const void *data, size_t len)
{
	memset(msg, 0, sizeof(*msg));
	msg->fd = -1;
	msg->data = data;
	msg->len = len;
}

/* Seal an mbuf the way the transport does, for feeding a reader directly. */
static void
seal(struct mbuf *m)
{
	be32(m->buf + 4, (uint32_t)(m->len - IPC_HDR_SIZE));
	be32(m->buf + 12, m->fd != -1 ? IPC_FLAG_FD : 0);
}

static int
fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

static void
make_socketpair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void
make_pipe(int p[2])
{
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
}

/* 1 when every copy of the write end of the pipe whose read end is `rfd` is gone. */
static int
pipe_at_eof(int rfd)
{
	char c;
	int fl;
	ssize_t n;

	fl = fcntl(rfd, F_GETFL);
	ck_assert_int_ne(fl, -1);
	ck_assert_int_eq(fcntl(rfd, F_SETFL, fl | O_NONBLOCK), 0);
	n = read(rfd, &c, 1);
	return n == 0;
}

/* ---- field codec ------------------------------------------------------------- */

START_TEST(test_roundtrip_all_fields)
{
	static const uint8_t blob[] = { 0, 1, 2, 0, 0xff, 0x80, '\n', 0 };
	struct ipc_reader r;
	struct ipc_msg msg;
	struct mbuf m;
	uint32_t u32;
	uint64_t u64;
	const char *s;
	const void *p;
	size_t len;
	char longstr[1001];

	memset(longstr, 'x', sizeof(longstr) - 1);
	longstr[sizeof(longstr) - 1] = '\0';

	m_init(&m, 0xdeadbeef, 0x01020304);
	m_add_u32(&m, 0);
	m_add_u32(&m, 1);
	m_add_u32(&m, UINT32_MAX);
	m_add_u64(&m, 0);
	m_add_u64(&m, UINT64_MAX);
	m_add_u64(&m, 0x0123456789abcdefULL);
	m_add_str(&m, "hello, world");
	m_add_str(&m, "");
	m_add_str(&m, NULL);
	m_add_str(&m, longstr);
	m_add_str(&m, "caf\xc3\xa9");
	m_add_data(&m, blob, sizeof(blob));
	m_add_data(&m, NULL, 0);
	m_add_data(&m, "", 0);
	ck_assert_int_eq(m.error, 0);
	ck_assert_int_eq(m.fd, -1);
	seal(&m);

	ipc_reader_init(&r);
	ck_assert_int_eq(ipc_reader_feed(&r, m.buf, m.len, NULL, 0), 0);
	ck_assert_int_eq(ipc_reader_next(&r, &msg), 1);
	ck_assert_uint_eq(msg.type, 0xdeadbeef);
	ck_assert_uint_eq(msg.id, 0x01020304);
	ck_assert_int_eq(msg.fd, -1);
	ck_assert_uint_eq(msg.len, m.len - IPC_HDR_SIZE);
	ck_assert_uint_eq(msg.pos, 0);
	ck_assert_int_eq(msg.error, 0);

	ck_assert_int_eq(m_get_u32(&msg, &u32), 0); ck_assert_uint_eq(u32, 0);
	ck_assert_int_eq(m_get_u32(&msg, &u32), 0); ck_assert_uint_eq(u32, 1);
	ck_assert_int_eq(m_get_u32(&msg, &u32), 0); ck_assert_uint_eq(u32, UINT32_MAX);
	ck_assert_int_eq(m_get_u64(&msg, &u64), 0); ck_assert(u64 == 0);
	ck_assert_int_eq(m_get_u64(&msg, &u64), 0); ck_assert(u64 == UINT64_MAX);
	ck_assert_int_eq(m_get_u64(&msg, &u64), 0); ck_assert(u64 == 0x0123456789abcdefULL);
	ck_assert_int_eq(m_get_str(&msg, &s, 64), 0); ck_assert_str_eq(s, "hello, world");
	ck_assert_int_eq(m_get_str(&msg, &s, 0), 0); ck_assert_str_eq(s, "");
	ck_assert_int_eq(m_get_str(&msg, &s, 0), 0); ck_assert_str_eq(s, "");
	ck_assert_int_eq(m_get_str(&msg, &s, 1000), 0); ck_assert_str_eq(s, longstr);
	ck_assert_int_eq(m_get_str(&msg, &s, 5), 0); ck_assert_str_eq(s, "caf\xc3\xa9");
	ck_assert_int_eq(m_get_data(&msg, &p, &len), 0);
	ck_assert_uint_eq(len, sizeof(blob));
	ck_assert_int_eq(memcmp(p, blob, sizeof(blob)), 0);
	ck_assert_int_eq(m_get_data(&msg, &p, &len), 0); ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(m_get_data(&msg, &p, &len), 0); ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(m_end(&msg), 0);
	ck_assert_int_eq(msg.error, 0);
	ck_assert_uint_eq(msg.pos, msg.len);

	/* nothing more in the reader */
	ck_assert_int_eq(ipc_reader_next(&r, &msg), 0);
	ipc_reader_clear(&r);
	m_free(&m);
}
END_TEST

/* The exact wire form of each field type. */
START_TEST(test_wire_format)
{
	static const uint8_t want[] = {
		0, 0, 0, 7,  0, 0, 0, 0x19,  0, 0, 0, 9,  0, 0, 0, 0,	/* header */
		0x11, 0x22, 0x33, 0x44,					/* u32 */
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,		/* u64 */
		0, 0, 0, 3, 'a', 'b', 0,				/* str */
		0, 0, 0, 2, 0xfe, 0xff,					/* data */
	};
	struct mbuf m;

	m_init(&m, 7, 9);
	m_add_u32(&m, 0x11223344);
	m_add_u64(&m, 0x0102030405060708ULL);
	m_add_str(&m, "ab");
	m_add_data(&m, "\xfe\xff", 2);
	ck_assert_int_eq(m.error, 0);
	seal(&m);
	ck_assert_uint_eq(m.len, sizeof(want));
	ck_assert_int_eq(memcmp(m.buf, want, sizeof(want)), 0);
	m_free(&m);
}
END_TEST

START_TEST(test_str_nul_rule)
{
	/* each payload holds one string field as it would come off the wire */
	static const uint8_t ok_empty[] = { 0, 0, 0, 1, 0 };
	static const uint8_t ok_abc[] = { 0, 0, 0, 4, 'a', 'b', 'c', 0 };
	static const uint8_t no_nul[] = { 0, 0, 0, 3, 'a', 'b', 'c' };
	static const uint8_t embedded[] = { 0, 0, 0, 4, 'a', 0, 'c', 0 };
	static const uint8_t only_nuls[] = { 0, 0, 0, 2, 0, 0 };
	static const uint8_t zero_len[] = { 0, 0, 0, 0 };
	static const uint8_t past_end[] = { 0, 0, 0, 9, 'a', 'b', 0 };
	static const uint8_t huge_len[] = { 0xff, 0xff, 0xff, 0xff, 'a', 0 };
	static const uint8_t short_len[] = { 0, 0, 1 };
	struct ipc_msg msg;
	const char *s;

	msg_over(&msg, ok_empty, sizeof(ok_empty));
	ck_assert_int_eq(m_get_str(&msg, &s, 0), 0);
	ck_assert_str_eq(s, "");
	ck_assert_int_eq(m_end(&msg), 0);

	/* maxlen counts the bytes before the NUL: 3 is fine, 2 is not */
	msg_over(&msg, ok_abc, sizeof(ok_abc));
	ck_assert_int_eq(m_get_str(&msg, &s, 3), 0);
	ck_assert_str_eq(s, "abc");
	ck_assert_int_eq(m_end(&msg), 0);
	msg_over(&msg, ok_abc, sizeof(ok_abc));
	ck_assert_int_eq(m_get_str(&msg, &s, 2), -1);
	ck_assert_int_ne(msg.error, 0);
	ck_assert_int_eq(m_end(&msg), -1);

#define BAD_STR(buf) do {						\
	msg_over(&msg, buf, sizeof(buf));				\
	s = NULL;							\
	ck_assert_msg(m_get_str(&msg, &s, 1024) == -1, #buf " accepted");	\
	ck_assert_msg(msg.error != 0, #buf ": no error flag");		\
	ck_assert_msg(msg.pos <= msg.len, #buf ": pos past len");	\
	ck_assert_msg(m_end(&msg) == -1, #buf ": m_end ok");		\
} while (0)
	BAD_STR(no_nul);
	BAD_STR(embedded);
	BAD_STR(only_nuls);
	BAD_STR(zero_len);
	BAD_STR(past_end);
	BAD_STR(huge_len);
	BAD_STR(short_len);
#undef BAD_STR
}
END_TEST

/* m_get_str with the largest maxlen sent by m_add_str. */
START_TEST(test_str_max_length)
{
	struct ipc_reader r;
	struct ipc_msg msg;
	struct mbuf m;
	const char *s;
	char *big;
	size_t n = 65535;

	big = malloc(n + 1);
	ck_assert_ptr_nonnull(big);
	memset(big, 'q', n);
	big[n] = '\0';
	m_init(&m, 1, 1);
	m_add_str(&m, big);
	m_add_str(&m, big);
	ck_assert_int_eq(m.error, 0);
	seal(&m);
	ipc_reader_init(&r);
	ck_assert_int_eq(ipc_reader_feed(&r, m.buf, m.len, NULL, 0), 0);
	ck_assert_int_eq(ipc_reader_next(&r, &msg), 1);
	ck_assert_int_eq(m_get_str(&msg, &s, n), 0);
	ck_assert_uint_eq(strlen(s), n);
	ck_assert_int_eq(m_get_str(&msg, &s, n - 1), -1);
	ck_assert_int_eq(m_end(&msg), -1);
	ipc_reader_clear(&r);
	m_free(&m);
	free(big);
}
END_TEST

START_TEST(test_m_end_lengths)
{
	static const uint8_t two[] = { 1, 2 };
	static const uint8_t four[] = { 1, 2, 3, 4 };
	static const uint8_t five[] = { 1, 2, 3, 4, 5 };
	static const uint8_t seven[] = { 1, 2, 3, 4, 5, 6, 7 };
	struct ipc_msg msg;
	uint32_t u32;
	uint64_t u64;
	const void *p;
	size_t len;

	/* exact */
	msg_over(&msg, four, sizeof(four));
	ck_assert_int_eq(m_get_u32(&msg, &u32), 0);
	ck_assert_uint_eq(u32, 0x01020304);
	ck_assert_int_eq(m_end(&msg), 0);

	/* short payload: the field does not fit */
	msg_over(&msg, two, sizeof(two));
	ck_assert_int_eq(m_get_u32(&msg, &u32), -1);
	ck_assert_uint_eq(msg.pos, 0);
	ck_assert_int_eq(m_end(&msg), -1);
	msg_over(&msg, seven, sizeof(seven));
	ck_assert_int_eq(m_get_u64(&msg, &u64), -1);
	ck_assert_int_eq(m_end(&msg), -1);
	msg_over(&msg, NULL, 0);
	ck_assert_int_eq(m_get_u32(&msg, &u32), -1);
	ck_assert_int_eq(m_end(&msg), -1);

	/* an empty payload read as empty is fine */
	msg_over(&msg, NULL, 0);
	ck_assert_int_eq(m_end(&msg), 0);

	/* trailing bytes: the payload is longer than what was read */
	msg_over(&msg, five, sizeof(five));
	ck_assert_int_eq(m_get_u32(&msg, &u32), 0);
	ck_assert_int_eq(msg.error, 0);
	ck_assert_int_eq(m_end(&msg), -1);
	msg_over(&msg, four, sizeof(four));
	ck_assert_int_eq(m_end(&msg), -1);

	/* the error is sticky: later fields that would fit still fail */
	msg_over(&msg, seven, sizeof(seven));
	ck_assert_int_eq(m_get_u64(&msg, &u64), -1);
	ck_assert_int_eq(m_get_u32(&msg, &u32), -1);
	ck_assert_int_eq(m_get_data(&msg, &p, &len), -1);
	ck_assert_int_eq(m_end(&msg), -1);

	/* data longer than the rest */
	{
		static const uint8_t d[] = { 0, 0, 0, 5, 'a', 'b', 'c', 'd' };
		static const uint8_t dmax[] = { 0xff, 0xff, 0xff, 0xfc, 'a' };

		msg_over(&msg, d, sizeof(d));
		ck_assert_int_eq(m_get_data(&msg, &p, &len), -1);
		ck_assert(msg.pos <= msg.len);
		ck_assert_int_eq(m_end(&msg), -1);
		msg_over(&msg, dmax, sizeof(dmax));
		ck_assert_int_eq(m_get_data(&msg, &p, &len), -1);
		ck_assert(msg.pos <= msg.len);
		ck_assert_int_eq(m_end(&msg), -1);
	}
}
END_TEST

/* The builder refuses payloads beyond IPC_MAX_PAYLOAD. */
START_TEST(test_mbuf_limits)
{
	struct mbuf m;
	uint8_t *big;

	big = calloc(1, IPC_MAX_PAYLOAD + 1);
	ck_assert_ptr_nonnull(big);

	m_init(&m, 1, 1);
	m_add_data(&m, big, IPC_MAX_PAYLOAD - 4);	/* exactly the maximum */
	ck_assert_int_eq(m.error, 0);
	ck_assert_uint_eq(m.len, IPC_HDR_SIZE + IPC_MAX_PAYLOAD);
	m_add_u32(&m, 0);				/* one field too many */
	ck_assert_int_ne(m.error, 0);
	m_free(&m);

	m_init(&m, 1, 1);
	m_add_data(&m, big, IPC_MAX_PAYLOAD + 1);
	ck_assert_int_ne(m.error, 0);
	m_free(&m);

	m_init(&m, 1, 1);
	m_add_data(&m, big, IPC_MAX_PAYLOAD);		/* + 4 length bytes */
	ck_assert_int_ne(m.error, 0);
	m_free(&m);
	free(big);
}
END_TEST

/* ---- the frame reader ----------------------------------------------------------- */

START_TEST(test_reader_header_limits)
{
	struct ipc_reader r;
	struct ipc_msg msg;
	uint8_t buf[64];
	size_t off;
	uint8_t *big;

	/* a header announcing too long a payload fails as soon as it is whole */
	off = 0;
	put_frame(buf, &off, 1, IPC_MAX_PAYLOAD + 1, 1, 0, NULL, 0);
	ipc_reader_init(&r);
	ck_assert_int_eq(ipc_reader_feed(&r, buf, IPC_HDR_SIZE - 1, NULL, 0), 0);
	ck_assert_int_eq(ipc_reader_next(&r, &msg), 0);
	ck_assert_int_eq(ipc_reader_feed(&r, buf + IPC_HDR_SIZE - 1, 1, NULL, 0), 0);
	ck_assert_int_eq(ipc_reader_next(&r, &msg), -1);
	ipc_reader_clear(&r);

	off = 0;
	put_frame(buf, &off, 1, UINT32_MAX, 1, 0, NULL, 0);
	ipc_reader_init(&r);
	ck_assert_int_eq(ipc_reader_feed(&r, buf, off, NULL, 0), 0);
	ck_assert_int_eq(ipc_reader_next(&r, &msg), -1);
	ipc_reader_clear(&r);

	/* unknown flag bits */
	off = 0;
	put_frame(buf, &off, 1, 0, 1, 0x2, NULL, 0);
	ipc_reader_init(&r);
	ck_assert_int_eq(ipc_reader_feed(&r, buf, off, NULL, 0), 0);
	ck_assert_int_eq(ipc_reader_next(&r, &msg), -1);
	ipc_reader_clear(&r);

	/* a frame that says it carries a descriptor, but none came */
	off = 0;
	put_frame(buf, &off, 1, 4, 1, IPC_FLAG_FD, "abcd", 4);
	ipc_reader_init(&r);
	ck_assert_int_eq(ipc_reader_feed(&r, buf, off, NULL, 0), 0);
	ck_assert_int_eq(ipc_reader_next(&r, &msg), -1);
	ipc_reader_clear(&r);

	/* exactly IPC_MAX_PAYLOAD is accepted */
	big = calloc(1, IPC_HDR_SIZE + IPC_MAX_PAYLOAD);
	ck_assert_ptr_nonnull(big);
	off = 0;
	put_frame(big, &off, 5, IPC_MAX_PAYLOAD, 6, 0, NULL, 0);
	big[IPC_HDR_SIZE + IPC_MAX_PAYLOAD - 1] = 0x5a;
	ipc_reader_init(&r);
	ck_assert_int_eq(ipc_reader_feed(&r, big, IPC_HDR_SIZE + IPC_MAX_PAYLOAD - 1,
	    NULL, 0), 0);
	ck_assert_int_eq(ipc_reader_next(&r, &msg), 0);
	ck_assert_int_eq(ipc_reader_feed(&r, big + IPC_HDR_SIZE + IPC_MAX_PAYLOAD - 1,
	    1, NULL, 0), 0);
	ck_assert_int_eq(ipc_reader_next(&r, &msg), 1);
	ck_assert_uint_eq(msg.type, 5);
	ck_assert_uint_eq(msg.id, 6);
	ck_assert_uint_eq(msg.len, IPC_MAX_PAYLOAD);
	ck_assert_uint_eq(msg.data[IPC_MAX_PAYLOAD - 1], 0x5a);
	ck_assert_int_eq(ipc_reader_next(&r, &msg), 0);
	ipc_reader_clear(&r);
	free(big);

	/* an empty payload */
	off = 0;
	put_frame(buf, &off, 9, 0, 10, 0, NULL, 0);
	ipc_reader_init(&r);
	ck_assert_int_eq(ipc_reader_feed(&r, buf, off, NULL, 0), 0);
	ck_assert_int_eq(ipc_reader_next(&r, &msg), 1);
	ck_assert_uint_eq(msg.len, 0);
	ck_assert_int_eq(m_end(&msg), 0);
	ipc_reader_clear(&r);
}
END_TEST

/* A stream of several frames and what each should decode to. */
#define NFRAMES	6
struct want {
	uint32_t	type, id;
	size_t		len;
	uint8_t		first;		/* first payload byte when len > 0 */
};

static size_t
build_stream(uint8_t *buf, struct want *w)
{
	uint8_t payload[300];
	size_t off = 0, i;
	static const size_t lens[NFRAMES] = { 0, 1, 4, 17, 0, 300 };

	for (i = 0; i < NFRAMES; i++) {
		memset(payload, (int)(0x40 + i), sizeof(payload));
		w[i].type = (uint32_t)(100 + i);
		w[i].id = (uint32_t)(0xabc00000 + i);
		w[i].len = lens[i];
		w[i].first = (uint8_t)(0x40 + i);
		put_frame(buf, &off, w[i].type, (uint32_t)lens[i], w[i].id, 0,
		    payload, lens[i]);
	}
	return off;
}

static void
check_msg(const struct ipc_msg *msg, const struct want *w)
{
	size_t i;

	ck_assert_uint_eq(msg->type, w->type);
	ck_assert_uint_eq(msg->id, w->id);
	ck_assert_uint_eq(msg->len, w->len);
	ck_assert_int_eq(msg->fd, -1);
	ck_assert_uint_eq(msg->pos, 0);
	ck_assert_int_eq(msg->error, 0);
	for (i = 0; i < w->len; i++)
		ck_assert_uint_eq(msg->data[i], w->first);
}

START_TEST(test_reader_several_frames_one_feed)
{
	uint8_t buf[NFRAMES * (IPC_HDR_SIZE + 300)];
	struct want w[NFRAMES];
	struct ipc_reader r;
	struct ipc_msg msg;
	size_t len, i;

	len = build_stream(buf, w);
	ipc_reader_init(&r);
	ck_assert_int_eq(ipc_reader_feed(&r, buf, len, NULL, 0), 0);
	for (i = 0; i < NFRAMES; i++) {
		ck_assert_int_eq(ipc_reader_next(&r, &msg), 1);
		check_msg(&msg, &w[i]);
	}
	ck_assert_int_eq(ipc_reader_next(&r, &msg), 0);
	ck_assert_int_eq(ipc_reader_next(&r, &msg), 0);
	ipc_reader_clear(&r);
}
END_TEST

START_TEST(test_reader_byte_at_a_time)
{
	uint8_t buf[NFRAMES * (IPC_HDR_SIZE + 300)];
	struct want w[NFRAMES];
	struct ipc_reader r;
	struct ipc_msg msg;
	size_t len, i, got = 0;
	int rv;

	len = build_stream(buf, w);
	ipc_reader_init(&r);
	for (i = 0; i < len; i++) {
		ck_assert_int_eq(ipc_reader_feed(&r, buf + i, 1, NULL, 0), 0);
		while ((rv = ipc_reader_next(&r, &msg)) == 1) {
			ck_assert_uint_lt(got, NFRAMES);
			check_msg(&msg, &w[got]);
			got++;
		}
		ck_assert_int_eq(rv, 0);
	}
	ck_assert_uint_eq(got, NFRAMES);
	ipc_reader_clear(&r);
}
END_TEST

/* Every prefix of the stream yields exactly the frames it holds whole. */
START_TEST(test_reader_growing_prefixes)
{
	uint8_t buf[NFRAMES * (IPC_HDR_SIZE + 300)];
	struct want w[NFRAMES];
	struct ipc_reader r;
	struct ipc_msg msg;
	size_t len, k, i, whole, end, got;
	int rv;

	len = build_stream(buf, w);
	for (k = 0; k <= len; k++) {
		whole = 0;
		end = 0;
		for (i = 0; i < NFRAMES; i++) {
			end += IPC_HDR_SIZE + w[i].len;
			if (end <= k)
				whole++;
		}
		ipc_reader_init(&r);
		ck_assert_int_eq(ipc_reader_feed(&r, buf, k, NULL, 0), 0);
		got = 0;
		while ((rv = ipc_reader_next(&r, &msg)) == 1) {
			ck_assert_uint_lt(got, NFRAMES);
			check_msg(&msg, &w[got]);
			got++;
		}
		ck_assert_int_eq(rv, 0);
		ck_assert_msg(got == whole, "prefix %zu: %zu messages, want %zu",
		    k, got, whole);
		/* the rest completes the stream */
		ck_assert_int_eq(ipc_reader_feed(&r, buf + k, len - k, NULL, 0), 0);
		while ((rv = ipc_reader_next(&r, &msg)) == 1) {
			ck_assert_uint_lt(got, NFRAMES);
			check_msg(&msg, &w[got]);
			got++;
		}
		ck_assert_int_eq(rv, 0);
		ck_assert_uint_eq(got, NFRAMES);
		ipc_reader_clear(&r);
	}
}
END_TEST

/* Descriptors fed with bytes go to the flagged frames, in order. */
START_TEST(test_reader_fd_queue)
{
	uint8_t buf[4 * IPC_HDR_SIZE];
	struct ipc_reader r;
	struct ipc_msg msg;
	int p1[2], p2[2], fds[2];
	size_t off = 0;

	make_pipe(p1);
	make_pipe(p2);
	put_frame(buf, &off, 1, 0, 1, IPC_FLAG_FD, NULL, 0);
	put_frame(buf, &off, 2, 0, 2, 0, NULL, 0);
	put_frame(buf, &off, 3, 0, 3, IPC_FLAG_FD, NULL, 0);
	put_frame(buf, &off, 4, 0, 4, IPC_FLAG_FD, NULL, 0);
	fds[0] = p1[1];
	fds[1] = p2[1];
	ipc_reader_init(&r);
	ck_assert_int_eq(ipc_reader_feed(&r, buf, off, fds, 2), 0);
	ck_assert_int_eq(ipc_reader_next(&r, &msg), 1);
	ck_assert_uint_eq(msg.type, 1);
	ck_assert_int_eq(msg.fd, p1[1]);
	ck_assert_int_eq(ipc_reader_next(&r, &msg), 1);
	ck_assert_uint_eq(msg.type, 2);
	ck_assert_int_eq(msg.fd, -1);
	ck_assert_int_eq(ipc_reader_next(&r, &msg), 1);
	ck_assert_uint_eq(msg.type, 3);
	ck_assert_int_eq(msg.fd, p2[1]);
	/* the fourth frame wants a third descriptor that never came */
	ck_assert_int_eq(ipc_reader_next(&r, &msg), -1);
	ipc_reader_clear(&r);
	/* the handed-out descriptors belong to the caller: still open */
	ck_assert(fd_is_open(p1[1]));
	ck_assert(fd_is_open(p2[1]));
	close(p1[0]); close(p1[1]);
	close(p2[0]); close(p2[1]);
}
END_TEST

/* Unclaimed descriptors are closed by ipc_reader_clear(). */
START_TEST(test_reader_clear_closes_fds)
{
	struct ipc_reader r;
	int p[2], fds[3], i;

	make_pipe(p);
	for (i = 0; i < 3; i++)
		fds[i] = dup(p[1]);
	close(p[1]);
	ipc_reader_init(&r);
	ck_assert_int_eq(ipc_reader_feed(&r, NULL, 0, fds, 3), 0);
	ck_assert(!pipe_at_eof(p[0]));
	ipc_reader_clear(&r);
	ck_assert(pipe_at_eof(p[0]));
	close(p[0]);
}
END_TEST

/* More than IPC_MAX_FDS unclaimed descriptors: the excess is closed, not leaked. */
START_TEST(test_reader_too_many_fds)
{
	struct ipc_reader r;
	int p[2], fds[IPC_MAX_FDS + 4], i;

	make_pipe(p);
	for (i = 0; i < IPC_MAX_FDS + 4; i++) {
		fds[i] = dup(p[1]);
		ck_assert_int_ne(fds[i], -1);
	}
	close(p[1]);
	ipc_reader_init(&r);
	ck_assert_int_eq(ipc_reader_feed(&r, "x", 1, fds, IPC_MAX_FDS + 4), -1);
	for (i = IPC_MAX_FDS; i < IPC_MAX_FDS + 4; i++)
		ck_assert_msg(!fd_is_open(fds[i]), "excess fd %d left open", fds[i]);
	ipc_reader_clear(&r);
	for (i = 0; i < IPC_MAX_FDS + 4; i++)
		ck_assert_msg(!fd_is_open(fds[i]), "fd %d left open", fds[i]);
	ck_assert(pipe_at_eof(p[0]));

	/* one at a time up to the limit, then one more */
	make_pipe(p + 0);
	ipc_reader_init(&r);
	for (i = 0; i < IPC_MAX_FDS; i++) {
		fds[0] = dup(p[1]);
		ck_assert_int_eq(ipc_reader_feed(&r, NULL, 0, fds, 1), 0);
	}
	fds[0] = dup(p[1]);
	ck_assert_int_eq(ipc_reader_feed(&r, NULL, 0, fds, 1), -1);
	ck_assert(!fd_is_open(fds[0]));
	close(p[1]);
	ipc_reader_clear(&r);
	ck_assert(pipe_at_eof(p[0]));
	close(p[0]);
}
END_TEST

/* ---- transport over a socketpair ------------------------------------------------- */

START_TEST(test_sync_roundtrip)
{
	struct ipc_reader r;
	struct ipc_msg msg;
	struct mbuf m;
	int sv[2], i;
	uint32_t u32;
	const char *s;

	make_socketpair(sv);
	for (i = 0; i < 10; i++) {
		m_init(&m, 40 + (uint32_t)i, 1000 + (uint32_t)i);
		m_add_u32(&m, (uint32_t)i);
		m_add_str(&m, "payload");
		ck_assert_int_eq(ipc_send_sync(sv[0], &m), 0);
		ck_assert_ptr_null(m.buf);
	}
	ipc_reader_init(&r);
	for (i = 0; i < 10; i++) {
		ck_assert_int_eq(ipc_recv_sync(sv[1], &r, &msg), 1);
		ck_assert_uint_eq(msg.type, 40 + (uint32_t)i);
		ck_assert_uint_eq(msg.id, 1000 + (uint32_t)i);
		ck_assert_int_eq(msg.fd, -1);
		ck_assert_int_eq(m_get_u32(&msg, &u32), 0);
		ck_assert_uint_eq(u32, (uint32_t)i);
		ck_assert_int_eq(m_get_str(&msg, &s, 100), 0);
		ck_assert_str_eq(s, "payload");
		ck_assert_int_eq(m_end(&msg), 0);
	}
	close(sv[0]);
	ck_assert_int_eq(ipc_recv_sync(sv[1], &r, &msg), 0);	/* EOF */
	ipc_reader_clear(&r);
	close(sv[1]);
}
END_TEST

/* A failed build is not sent, and its descriptor is closed. */
START_TEST(test_sync_send_error)
{
	struct mbuf m;
	int sv[2], p[2];
	uint8_t *big;
	char c;

	make_socketpair(sv);
	make_pipe(p);
	big = calloc(1, IPC_MAX_PAYLOAD + 1);
	ck_assert_ptr_nonnull(big);
	m_init(&m, 1, 1);
	m_add_data(&m, big, IPC_MAX_PAYLOAD + 1);
	m_add_fd(&m, p[1]);
	ck_assert_int_eq(ipc_send_sync(sv[0], &m), -1);
	ck_assert(!fd_is_open(p[1]));
	ck_assert(pipe_at_eof(p[0]));
	/* nothing was written */
	ck_assert_int_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(read(sv[1], &c, 1), -1);
	ck_assert_int_eq(errno, EAGAIN);
	free(big);
	close(p[0]);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* m_add_fd twice closes the first; m_free closes an unsent one. */
START_TEST(test_mbuf_fd_ownership)
{
	struct mbuf m;
	int p1[2], p2[2];

	make_pipe(p1);
	make_pipe(p2);
	m_init(&m, 1, 1);
	m_add_fd(&m, p1[1]);
	m_add_fd(&m, p2[1]);
	ck_assert(pipe_at_eof(p1[0]));
	ck_assert(!pipe_at_eof(p2[0]));
	m_free(&m);
	ck_assert(pipe_at_eof(p2[0]));
	m_free(&m);			/* twice is harmless */
	close(p1[0]);
	close(p2[0]);
}
END_TEST

START_TEST(test_fd_passing)
{
	struct ipc_reader r;
	struct ipc_msg msg;
	struct mbuf m;
	int sv[2], p[2], wfd;
	const char *s;
	char buf[16];

	make_socketpair(sv);
	make_pipe(p);
	wfd = p[1];
	m_init(&m, 77, 5);
	m_add_str(&m, "here is a pipe");
	m_add_fd(&m, wfd);
	ck_assert_int_eq(ipc_send_sync(sv[0], &m), 0);
	/* the message owned the descriptor: sent, then closed on this side */
	ck_assert(!fd_is_open(wfd));

	ipc_reader_init(&r);
	ck_assert_int_eq(ipc_recv_sync(sv[1], &r, &msg), 1);
	ck_assert_uint_eq(msg.type, 77);
	ck_assert_uint_eq(msg.id, 5);
	ck_assert_int_ge(msg.fd, 0);
	ck_assert_int_eq(m_get_str(&msg, &s, 64), 0);
	ck_assert_str_eq(s, "here is a pipe");
	ck_assert_int_eq(m_end(&msg), 0);
	/* received close-on-exec */
	ck_assert_int_ne(fcntl(msg.fd, F_GETFD) & FD_CLOEXEC, 0);
	/* write through the received descriptor, read from the pipe */
	ck_assert_int_eq(write(msg.fd, "ping", 4), 4);
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 4);
	ck_assert_int_eq(memcmp(buf, "ping", 4), 0);
	close(msg.fd);
	ck_assert(pipe_at_eof(p[0]));
	ipc_reader_clear(&r);
	close(p[0]);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* Several frames, some with descriptors, arrive in order with theirs. */
START_TEST(test_fd_passing_mixed)
{
	struct ipc_reader r;
	struct ipc_msg msg;
	struct mbuf m;
	int sv[2], p[3][2], i;
	char c;

	make_socketpair(sv);
	for (i = 0; i < 3; i++)
		make_pipe(p[i]);
	for (i = 0; i < 6; i++) {
		m_init(&m, (uint32_t)i, 0);
		m_add_u32(&m, (uint32_t)i);
		if (i % 2 == 0)
			m_add_fd(&m, p[i / 2][1]);
		ck_assert_int_eq(ipc_send_sync(sv[0], &m), 0);
	}
	ipc_reader_init(&r);
	for (i = 0; i < 6; i++) {
		ck_assert_int_eq(ipc_recv_sync(sv[1], &r, &msg), 1);
		ck_assert_uint_eq(msg.type, (uint32_t)i);
		if (i % 2 == 0) {
			ck_assert_int_ge(msg.fd, 0);
			c = (char)('a' + i);
			ck_assert_int_eq(write(msg.fd, &c, 1), 1);
			close(msg.fd);
			ck_assert_int_eq(read(p[i / 2][0], &c, 1), 1);
			ck_assert_int_eq(c, 'a' + i);
			ck_assert(pipe_at_eof(p[i / 2][0]));
		} else
			ck_assert_int_eq(msg.fd, -1);
	}
	ipc_reader_clear(&r);
	for (i = 0; i < 3; i++)
		close(p[i][0]);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/*
 * A peer that sends more descriptors than IPC_MAX_FDS in one sendmsg: the
 * receive fails, and none of them stays open once the reader is cleared.
 */
START_TEST(test_fd_flood_socket)
{
	enum { N = IPC_MAX_FDS + 8 };
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int) * N)];
	} cbuf;
	struct ipc_reader r;
	struct msghdr mh;
	struct cmsghdr *cm;
	struct iovec iov;
	uint8_t frame[IPC_HDR_SIZE];
	int sv[2], p[2], fds[N], i;
	size_t off = 0;
	ssize_t n;

	make_socketpair(sv);
	make_pipe(p);
	for (i = 0; i < N; i++)
		fds[i] = dup(p[1]);
	put_frame(frame, &off, 1, 0, 1, IPC_FLAG_FD, NULL, 0);
	memset(&mh, 0, sizeof(mh));
	memset(&cbuf, 0, sizeof(cbuf));
	iov.iov_base = frame;
	iov.iov_len = sizeof(frame);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf.buf;
	mh.msg_controllen = sizeof(cbuf.buf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_len = CMSG_LEN(sizeof(int) * N);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	ck_assert_int_eq(sendmsg(sv[0], &mh, 0), (ssize_t)sizeof(frame));
	for (i = 0; i < N; i++)
		close(fds[i]);
	close(p[1]);

	ipc_reader_init(&r);
	n = ipc_reader_recv(&r, sv[1]);
	ck_assert_int_eq(n, -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ipc_reader_clear(&r);
	ck_assert(pipe_at_eof(p[0]));
	close(p[0]);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* A maximum-size message through a socket buffer much smaller than it. */
START_TEST(test_sync_large_message)
{
	struct ipc_reader r;
	struct ipc_msg msg;
	struct mbuf m;
	const void *p;
	size_t len, i;
	uint8_t *big;
	pid_t pid;
	int sv[2], status;

	big = malloc(IPC_MAX_PAYLOAD - 4);
	ck_assert_ptr_nonnull(big);
	for (i = 0; i < IPC_MAX_PAYLOAD - 4; i++)
		big[i] = (uint8_t)(i * 7 + 3);
	make_socketpair(sv);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		close(sv[1]);
		m_init(&m, 3, 4);
		m_add_data(&m, big, IPC_MAX_PAYLOAD - 4);
		_exit(ipc_send_sync(sv[0], &m) == 0 ? 0 : 1);
	}
	close(sv[0]);
	ipc_reader_init(&r);
	ck_assert_int_eq(ipc_recv_sync(sv[1], &r, &msg), 1);
	ck_assert_uint_eq(msg.len, IPC_MAX_PAYLOAD);
	ck_assert_int_eq(m_get_data(&msg, &p, &len), 0);
	ck_assert_uint_eq(len, IPC_MAX_PAYLOAD - 4);
	ck_assert_int_eq(memcmp(p, big, len), 0);
	ck_assert_int_eq(m_end(&msg), 0);
	ck_assert_int_eq(ipc_recv_sync(sv[1], &r, &msg), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ipc_reader_clear(&r);
	close(sv[1]);
	free(big);
}
END_TEST

/* EOF in the middle of a frame is EOF, not a message. */
START_TEST(test_sync_eof_mid_frame)
{
	struct ipc_reader r;
	struct ipc_msg msg;
	uint8_t buf[IPC_HDR_SIZE + 8];
	size_t off = 0;
	int sv[2];

	make_socketpair(sv);
	put_frame(buf, &off, 1, 8, 1, 0, "abcdefgh", 8);
	ck_assert_int_eq(write(sv[0], buf, off - 3), (ssize_t)(off - 3));
	close(sv[0]);
	ipc_reader_init(&r);
	ck_assert_int_eq(ipc_recv_sync(sv[1], &r, &msg), 0);
	ipc_reader_clear(&r);
	close(sv[1]);
}
END_TEST

/* A malformed frame from the peer is an error for ipc_recv_sync. */
START_TEST(test_sync_bad_frame)
{
	struct ipc_reader r;
	struct ipc_msg msg;
	uint8_t buf[IPC_HDR_SIZE];
	size_t off = 0;
	int sv[2];

	make_socketpair(sv);
	put_frame(buf, &off, 1, 0, 1, IPC_FLAG_FD, NULL, 0);	/* no fd sent */
	ck_assert_int_eq(write(sv[0], buf, off), (ssize_t)off);
	ipc_reader_init(&r);
	ck_assert_int_eq(ipc_recv_sync(sv[1], &r, &msg), -1);
	ipc_reader_clear(&r);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

static Suite *
ipc_suite(void)
{
	Suite *s = suite_create("ipc");
	TCase *tc;

	tc = tcase_create("codec");
	tcase_add_test(tc, test_roundtrip_all_fields);
	tcase_add_test(tc, test_wire_format);
	tcase_add_test(tc, test_str_nul_rule);
	tcase_add_test(tc, test_str_max_length);
	tcase_add_test(tc, test_m_end_lengths);
	tcase_add_test(tc, test_mbuf_limits);
	suite_add_tcase(s, tc);

	tc = tcase_create("reader");
	tcase_add_test(tc, test_reader_header_limits);
	tcase_add_test(tc, test_reader_several_frames_one_feed);
	tcase_add_test(tc, test_reader_byte_at_a_time);
	tcase_add_test(tc, test_reader_growing_prefixes);
	tcase_add_test(tc, test_reader_fd_queue);
	tcase_add_test(tc, test_reader_clear_closes_fds);
	tcase_add_test(tc, test_reader_too_many_fds);
	suite_add_tcase(s, tc);

	tc = tcase_create("socket");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_sync_roundtrip);
	tcase_add_test(tc, test_sync_send_error);
	tcase_add_test(tc, test_mbuf_fd_ownership);
	tcase_add_test(tc, test_fd_passing);
	tcase_add_test(tc, test_fd_passing_mixed);
	tcase_add_test(tc, test_fd_flood_socket);
	tcase_add_test(tc, test_sync_large_message);
	tcase_add_test(tc, test_sync_eof_mid_frame);
	tcase_add_test(tc, test_sync_bad_frame);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	sr = srunner_create(ipc_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
