/*
 * sasl.c - base64 and PLAIN responses of SMTP AUTH (mail layer; smtpd).
 * Trust boundary: the input is the client's, unchecked.  RFC 4648 section 4
 * and RFC 4616 section 2; see sasl.h.
 */
#include <stdint.h>
#include <string.h>
#include <openssl/evp.h>

#include "sasl.h"

static int
b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int
sasl_b64_decode(const char *in, size_t len, unsigned char *out, size_t outsz)
{
	size_t i, pad = 0;
	int n;

	if (len % 4 != 0 || len / 4 * 3 > outsz || len > INT32_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		if (in[i] == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || !b64_char((unsigned char)in[i]))
			return -1;
	}
	if (pad > 2)
		return -1;
	if (len == 0)
		return 0;
	/* Checked above: EVP_DecodeBlock skips blanks we do not allow. */
	if ((n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len)) < 0 ||
	    (size_t)n < pad)
		return -1;
	return n - (int)pad;
}

int
sasl_plain_split(const unsigned char *msg, size_t len, struct sasl_plain *p)
{
	const unsigned char *nul1, *nul2;

	if (len == 0 || (nul1 = memchr(msg, '\0', len)) == NULL)
		return -1;
	nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - msg));
	if (nul2 == NULL ||
	    memchr(nul2 + 1, '\0', len - (size_t)(nul2 + 1 - msg)) != NULL)
		return -1;
	p->authzid = msg;
	p->zlen = (size_t)(nul1 - msg);
	p->authcid = nul1 + 1;
	p->clen = (size_t)(nul2 - nul1 - 1);
	p->passwd = nul2 + 1;
	p->plen = len - (size_t)(nul2 + 1 - msg);
	return 0;
}
