/*
 * fuzz_sasl.c - libFuzzer target for common/sasl.c.
 *
 * Input: what a client sends as one AUTH response line.  The strict base64
 * decoder must agree with a naive model (alphabet, padding, length), what
 * it accepts must encode back to the same text, and the PLAIN splitter
 * must return parts that lie inside the message and put it back together.
 * The decoded bytes are split too, as the server does.  Violations abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* The grammar of RFC 4648 4, written the slow way. */
static int
model_valid(const uint8_t *in, size_t len)
{
	static const char alpha[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, pad = 0;

	if (len % 4 != 0)
		return 0;
	while (pad < len && pad < 3 && in[len - 1 - pad] == '=')
		pad++;
	if (pad > 2)
		return 0;
	for (i = 0; i < len - pad; i++)
		if (in[i] == '\0' || strchr(alpha, in[i]) == NULL)
			return 0;
	return 1;
}

static void
check_plain(const unsigned char *msg, size_t len)
{
	struct sasl_plain p;
	size_t nuls = 0, i;

	for (i = 0; i < len; i++)
		nuls += msg[i] == '\0';
	if (sasl_plain_split(msg, len, &p) == -1) {
		if (nuls == 2)
			abort();
		return;
	}
	if (nuls != 2 || p.authzid != msg || p.zlen + 1 + p.clen + 1 + p.plen != len ||
	    p.authcid != msg + p.zlen + 1 || p.passwd != p.authcid + p.clen + 1 ||
	    msg[p.zlen] != '\0' || msg[p.zlen + 1 + p.clen] != '\0' ||
	    memchr(p.authzid, '\0', p.zlen) != NULL ||
	    memchr(p.authcid, '\0', p.clen) != NULL ||
	    memchr(p.passwd, '\0', p.plen) != NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *out, *again;
	int n, m;

	if (size > SASL_LINE_MAX)
		return 0;
	check_plain(data, size);
	if ((out = malloc(size / 4 * 3 + 1)) == NULL)
		return 0;
	n = sasl_b64_decode((const char *)data, size, out, size / 4 * 3);
	if ((n >= 0) != model_valid(data, size))
		abort();
	if (n >= 0) {
		if ((size_t)n > size / 4 * 3 || (size > 0 && (size_t)n + 2 < size / 4 * 3))
			abort();
		/* Canonical or not, it encodes back to the same length. */
		if ((again = malloc(size + 1)) == NULL) {
			free(out);
			return 0;
		}
		m = EVP_EncodeBlock(again, out, n);
		if (m < 0 || (size_t)m != size)
			abort();
		free(again);
		check_plain(out, (size_t)n);
	}
	/* Too small an output buffer is refused, never overrun. */
	if (size >= 4 && sasl_b64_decode((const char *)data, size, out,
	    size / 4 * 3 - 1) != -1)
		abort();
	free(out);
	return 0;
}
