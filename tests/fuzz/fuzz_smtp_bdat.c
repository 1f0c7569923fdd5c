/*
 * fuzz_smtp_bdat.c - libFuzzer target for common/smtp_bdat.c.
 *
 * Input: byte 0 picks BINARYMIME (bit 7) and a chunk size (low bits, 0:
 * all at once), byte 1 a size limit (high bit set: 0..127 octets), the rest
 * is chunk data.  The chunked run must agree with a one-feed run and with a
 * naive model (outside BINARYMIME every CR, LF or CRLF is one CRLF; within
 * it the octets as sent), and outside BINARYMIME the output holds no bare CR
 * or LF; violations abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

#include "smtp_bdat.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char *
run(const char *in, size_t len, size_t chunk, uint64_t max, int binary, size_t *outlen,
    struct smtp_bdat *b)
{
	struct evbuffer *out;
	size_t off = 0, n;
	char *buf;

	if ((out = evbuffer_new()) == NULL)
		abort();
	smtp_bdat_init(b, max, binary);
	if (chunk == 0)
		chunk = len > 0 ? len : 1;
	while (off < len) {
		n = len - off < chunk ? len - off : chunk;
		smtp_bdat_feed(b, in + off, n, out);
		off += n;
	}
	smtp_bdat_end(b, out);
	*outlen = evbuffer_get_length(out);
	if ((buf = malloc(*outlen + 1)) == NULL)
		abort();
	evbuffer_remove(out, buf, *outlen);
	evbuffer_free(out);
	return buf;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_bdat b1, b2;
	const char *in;
	char *o1, *o2, *model;
	size_t len, l1, l2, ml = 0, i, chunk;
	uint64_t max;
	int binary;

	if (size < 2)
		return 0;
	binary = (data[0] & 0x80) != 0;
	chunk = data[0] & 0x7f;
	max = (data[1] & 0x80) ? (uint64_t)(data[1] & 0x7f) : 0;
	in = (const char *)data + 2;
	len = size - 2;

	o1 = run(in, len, 0, 0, binary, &l1, &b1);
	o2 = run(in, len, chunk, max, binary, &l2, &b2);
	/* the limit only cuts: same count, a prefix of the output */
	if (b1.size != b2.size || b1.size != l1)
		abort();
	if (max != 0 && b1.size > max) {
		if (!(b2.flags & SMTP_DATA_TOO_BIG) || l2 != max)
			abort();
	} else if (l2 != l1 || (b1.flags & ~SMTP_DATA_TOO_BIG) != (b2.flags & ~SMTP_DATA_TOO_BIG))
		abort();
	if (memcmp(o1, o2, l2) != 0)
		abort();

	if ((model = malloc(2 * len + 1)) == NULL)
		abort();
	for (i = 0; i < len; i++) {
		if (!binary && (in[i] == '\r' || in[i] == '\n')) {
			if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
				i++;
			model[ml++] = '\r';
			model[ml++] = '\n';
		} else
			model[ml++] = in[i];
	}
	if (ml != l1 || memcmp(model, o1, ml) != 0)
		abort();
	if (!binary)
		for (i = 0; i < l1; i++)
			if ((o1[i] == '\r' && (i + 1 == l1 || o1[i + 1] != '\n')) ||
			    (o1[i] == '\n' && (i == 0 || o1[i - 1] != '\r')))
				abort();
	free(model);
	free(o1);
	free(o2);
	return 0;
}
