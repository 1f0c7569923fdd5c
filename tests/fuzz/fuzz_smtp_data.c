/*
 * fuzz_smtp_data.c - libFuzzer target for common/smtp_data.c.
 *
 * Input: byte 0 picks where the stream is cut in two feeds, byte 1 a size
 * limit (high bit set: 0..127 octets), the rest is what a client sent after
 * "354".  The two-feed run must agree with a one-feed run, a byte-at-a-time
 * run and a naive line-by-line model of smtp_data.h; violations abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

#include "smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct run {
	struct evbuffer	*out;
	size_t		 consumed;
	struct smtp_data sd;
};

/* Append to a growing buffer (the model's output). */
static void
put(char **buf, size_t *len, const char *p, size_t n)
{
	char *nb;

	if ((nb = realloc(*buf, *len + n + 1)) == NULL)
		abort();
	*buf = nb;
	memcpy(*buf + *len, p, n);
	*len += n;
}

/*
 * The documented behaviour, one whole line at a time: returns the octets
 * consumed, sets *done, fills *out with the unlimited message.
 */
static size_t
model(const char *in, size_t len, char **out, size_t *outlen, int *done)
{
	size_t i = 0, j, tlen;
	int crlf, prev_crlf = 1;
	const char *t;

	*done = 0;
	while (i < len) {
		for (j = i; j < len && in[j] != '\r' && in[j] != '\n'; j++)
			;
		t = in + i;
		tlen = j - i;
		if (j == len || (in[j] == '\r' && j + 1 == len)) {
			/* the line's end is not known yet: all but a lone "." */
			if (!(tlen == 1 && t[0] == '.'))
				put(out, outlen, t + (tlen > 0 && t[0] == '.'),
				    tlen - (tlen > 0 && t[0] == '.'));
			return len;
		}
		crlf = in[j] == '\r' && in[j + 1] == '\n';
		if (tlen == 1 && t[0] == '.') {
			if (crlf && prev_crlf) {
				*done = 1;
				return j + 2;
			}
			put(out, outlen, ".\r\n", 3);
		} else {
			put(out, outlen, t + (tlen > 0 && t[0] == '.'),
			    tlen - (tlen > 0 && t[0] == '.'));
			put(out, outlen, "\r\n", 2);
		}
		prev_crlf = crlf;
		i = j + (crlf ? 2 : 1);
	}
	return len;
}

/* Feed in[0..len) cut at the offsets cuts[0..ncuts) (increasing). */
static void
feed(struct run *r, const char *in, size_t len, const size_t *cuts,
    size_t ncuts, uint64_t max)
{
	size_t start = 0, stop, k, got;

	if ((r->out = evbuffer_new()) == NULL)
		abort();
	smtp_data_init(&r->sd, max);
	r->consumed = 0;
	for (k = 0; k <= ncuts; k++) {
		stop = k < ncuts ? cuts[k] : len;
		got = smtp_data_feed(&r->sd, in + start, stop - start, r->out);
		if (got > stop - start || (!r->sd.done && got != stop - start))
			abort();
		r->consumed += got;
		if (r->sd.done)
			break;
		start = stop;
	}
	if (r->sd.done && smtp_data_feed(&r->sd, in, len, r->out) != 0)
		abort();
}

static void
same(struct run *a, struct run *b)
{
	size_t n = evbuffer_get_length(a->out);

	if (a->consumed != b->consumed || a->sd.done != b->sd.done ||
	    a->sd.flags != b->sd.flags || a->sd.size != b->sd.size ||
	    n != evbuffer_get_length(b->out) ||
	    (n > 0 && memcmp(evbuffer_pullup(a->out, -1),
	    evbuffer_pullup(b->out, -1), n) != 0))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run one, two, bytes;
	const char *in, *o;
	char *mout = NULL;
	size_t len, split, *cuts, i, n, moutlen = 0, mconsumed;
	uint64_t max;
	int mdone;

	if (size < 2)
		return 0;
	in = (const char *)data + 2;
	len = size - 2;
	split = len > 0 ? data[0] % (len + 1) : 0;
	max = (data[1] & 0x80) ? (data[1] & 0x7f) : 0;

	feed(&one, in, len, NULL, 0, max);
	feed(&two, in, len, &split, 1, max);
	same(&one, &two);
	if ((cuts = calloc(len > 0 ? len : 1, sizeof(*cuts))) == NULL)
		abort();
	for (i = 0; i + 1 < len; i++)
		cuts[i] = i + 1;
	feed(&bytes, in, len, cuts, len > 0 ? len - 1 : 0, max);
	same(&one, &bytes);
	free(cuts);

	/* consumed <= len; all unless done; done means the input had its end */
	if (one.consumed > len || (!one.sd.done && one.consumed != len))
		abort();
	if (one.sd.done && !(one.consumed == 3 && memcmp(in, ".\r\n", 3) == 0) &&
	    !(one.consumed >= 5 &&
	    memcmp(in + one.consumed - 5, "\r\n.\r\n", 5) == 0))
		abort();
	/* NUL flagged iff a NUL was consumed */
	if (!(one.sd.flags & SMTP_DATA_NUL) !=
	    (memchr(in, '\0', one.consumed) == NULL))
		abort();
	/* output: at most max_size octets, the first of what was counted */
	n = evbuffer_get_length(one.out);
	if (max != 0 ? n != (one.sd.size < max ? one.sd.size : max) :
	    n != one.sd.size)
		abort();
	if (((one.sd.flags & SMTP_DATA_TOO_BIG) != 0) !=
	    (max != 0 && one.sd.size > max))
		abort();
	/* no bare CR or LF in what is stored */
	o = (const char *)evbuffer_pullup(one.out, -1);
	for (i = 0; i < n; i++)
		if ((o[i] == '\r' && i + 1 < n && o[i + 1] != '\n') ||
		    (o[i] == '\n' && (i == 0 || o[i - 1] != '\r')))
			abort();
	if (n > 0 && o[n - 1] == '\r' && (max == 0 || n < max))
		abort();

	/* the model agrees */
	mconsumed = model(in, len, &mout, &moutlen, &mdone);
	if (mconsumed != one.consumed || mdone != one.sd.done ||
	    moutlen != one.sd.size ||
	    (n > 0 && memcmp(mout, o, n) != 0))
		abort();
	free(mout);

	evbuffer_free(one.out);
	evbuffer_free(two.out);
	evbuffer_free(bytes.out);
	return 0;
}
