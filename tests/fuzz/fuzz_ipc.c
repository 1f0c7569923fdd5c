/*
 * fuzz_ipc.c - libFuzzer target of the IPC frame reader and field decoder
 * (common/ipc.c); replayed over its seed corpus by make check.
 *
 * Trust boundary: the input stands for the bytes a peer process writes on
 * an IPC socket.  Input layout:
 *	byte 0:	 (byte0 / 3) picks where the rest is split in two feeds;
 *		 (byte0 % 3) is how many descriptors arrive with the first one
 *	rest:	 the stream of frames
 * Each message handed out is decoded with a sequence of m_get_* calls chosen
 * by the bits of its type and id (so the fuzzer steers the decoder), over an
 * exact-size copy of its payload so that ASan sees any overread.
 *
 * Beyond memory safety, the target abort()s when an invariant breaks: the
 * cursor past the payload, a success with the error flag set (or a failure
 * without), a field pointing outside the payload, a string longer than asked
 * or not terminated, m_end() disagreeing with the cursor; a message outside
 * the reader's buffer or longer than IPC_MAX_PAYLOAD; the split feed giving
 * other messages than one feed of the whole; a descriptor leaked.
 */
#include <sys/types.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define MAX_TEST_FDS	2

/* What a reader handed out, summed up for comparison. */
struct trace {
	uint64_t	hash;
	size_t		count;
	int		last;		/* last ipc_reader_next() result: 0 or -1 */
	int		fds_out;
};

static uint64_t
mix(uint64_t h, uint64_t v)
{
	h ^= v;
	h *= 0x100000001b3ULL;
	return h;
}

static void
check_field(struct ipc_msg *m, size_t oldpos, int rv, int was_error)
{
	if (m->pos > m->len)
		abort();
	if (m->pos < oldpos)
		abort();
	if (rv == 0 && (m->error || was_error))
		abort();
	if (rv == -1 && !m->error)
		abort();
	if (rv != 0 && rv != -1)
		abort();
}

/* Decode the payload with the calls chosen by `ops`, checking each. */
static void
decode(const struct ipc_msg *orig, uint64_t ops)
{
	struct ipc_msg m = *orig;
	uint8_t *copy;
	const uint8_t *end;
	const void *p;
	const char *s;
	uint32_t u32;
	uint64_t u64;
	size_t len, oldpos, maxlen, sl;
	int i, rv, was_error;

	copy = malloc(m.len > 0 ? m.len : 1);
	if (copy == NULL)
		return;
	if (m.len > 0)
		memcpy(copy, m.data, m.len);
	m.data = copy;
	end = copy + m.len;

	for (i = 0; i < 21; i++, ops >>= 3) {
		oldpos = m.pos;
		was_error = m.error;
		switch (ops & 7) {
		case 0:
			rv = m_get_u32(&m, &u32);
			check_field(&m, oldpos, rv, was_error);
			if (rv == 0 && m.pos != oldpos + 4)
				abort();
			break;
		case 1:
			rv = m_get_u64(&m, &u64);
			check_field(&m, oldpos, rv, was_error);
			if (rv == 0 && m.pos != oldpos + 8)
				abort();
			break;
		case 2:
		case 3:
			maxlen = (ops & 7) == 2 ? 8 : IPC_MAX_PAYLOAD;
			s = NULL;
			rv = m_get_str(&m, &s, maxlen);
			check_field(&m, oldpos, rv, was_error);
			if (rv == 0) {
				if (s == NULL || (const uint8_t *)s < copy ||
				    (const uint8_t *)s >= end)
					abort();
				sl = strnlen(s, (size_t)(end - (const uint8_t *)s));
				if ((const uint8_t *)s + sl >= end || sl > maxlen)
					abort();
				/* the NUL is the last byte of the field */
				if ((const uint8_t *)s + sl + 1 != copy + m.pos)
					abort();
			}
			break;
		case 4:
		case 5:
			p = NULL;
			len = 0;
			rv = m_get_data(&m, &p, &len);
			check_field(&m, oldpos, rv, was_error);
			if (rv == 0) {
				if (p == NULL || (const uint8_t *)p < copy ||
				    (const uint8_t *)p > end ||
				    len > (size_t)(end - (const uint8_t *)p))
					abort();
				if (m.pos != oldpos + 4 + len)
					abort();
				/* touch every byte, so ASan checks the range */
				u32 = 0;
				for (sl = 0; sl < len; sl++)
					u32 += ((const uint8_t *)p)[sl];
				(void)u32;
			}
			break;
		case 6:
			rv = m_end(&m);
			if (rv != ((!m.error && m.pos == m.len) ? 0 : -1))
				abort();
			if (m.pos != oldpos || m.error != was_error)
				abort();
			break;
		default:
			goto done;
		}
	}
done:
	rv = m_end(&m);
	if (rv != ((!m.error && m.pos == m.len) ? 0 : -1))
		abort();
	free(copy);
}

/* Hand out every whole message; fold each into the trace. */
static void
drain(struct ipc_reader *r, struct trace *t, int decode_them)
{
	struct ipc_msg msg;
	uint64_t ph;
	size_t i;
	int rv;

	while ((rv = ipc_reader_next(r, &msg)) == 1) {
		if (msg.len > IPC_MAX_PAYLOAD)
			abort();
		if (msg.data < r->buf || msg.data + msg.len > r->buf + r->len)
			abort();
		if (msg.pos != 0 || msg.error != 0)
			abort();
		ph = 0xcbf29ce484222325ULL;
		for (i = 0; i < msg.len; i++)
			ph = mix(ph, msg.data[i]);
		t->hash = mix(t->hash, msg.type);
		t->hash = mix(t->hash, msg.id);
		t->hash = mix(t->hash, msg.len);
		t->hash = mix(t->hash, ph);
		t->hash = mix(t->hash, msg.fd != -1);
		t->count++;
		if (decode_them)
			decode(&msg, (uint64_t)msg.type << 32 | msg.id);
		if (msg.fd != -1) {
			t->fds_out++;
			close(msg.fd);
		}
	}
	if (rv != 0 && rv != -1)
		abort();
	t->last = rv;
}

static int devnull = -1;

/* Descriptors as recvmsg would deliver them: fresh ones, owned by the reader. */
static int
make_fds(int *fds, int n)
{
	int i;

	if (devnull == -1 && (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	for (i = 0; i < n; i++)
		if ((fds[i] = fcntl(devnull, F_DUPFD_CLOEXEC, 0)) == -1)
			break;
	return i;
}

static void
check_closed(const int *fds, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (fcntl(fds[i], F_GETFD) != -1 || errno != EBADF)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipc_reader ra, rb;
	struct trace ta, tb;
	const uint8_t *rest;
	size_t rlen, cut;
	int fa[MAX_TEST_FDS], fb[MAX_TEST_FDS], na, nb, want;

	if (size < 1)
		return 0;
	rest = data + 1;
	rlen = size - 1;
	cut = (size_t)(data[0] / 3) * rlen / 85;
	want = data[0] % 3;

	memset(&ta, 0, sizeof(ta));
	memset(&tb, 0, sizeof(tb));

	/* A: two feeds, split at `cut`, draining (and decoding) after each */
	ipc_reader_init(&ra);
	na = make_fds(fa, want);
	if (ipc_reader_feed(&ra, rest, cut, fa, na) == -1)
		abort();			/* far below every limit */
	drain(&ra, &ta, 1);
	if (ta.last == 0) {
		if (ipc_reader_feed(&ra, rest + cut, rlen - cut, NULL, 0) == -1)
			abort();
		drain(&ra, &ta, 1);
	}
	ipc_reader_clear(&ra);
	check_closed(fa, na);

	/* B: one feed of the whole */
	ipc_reader_init(&rb);
	nb = make_fds(fb, want);
	if (ipc_reader_feed(&rb, rest, rlen, fb, nb) == -1)
		abort();
	drain(&rb, &tb, 0);
	ipc_reader_clear(&rb);
	check_closed(fb, nb);

	/* framing does not depend on how the bytes arrived */
	if (na == nb && (ta.hash != tb.hash || ta.count != tb.count ||
	    ta.last != tb.last || ta.fds_out != tb.fds_out))
		abort();
	return 0;
}
