/*
 * fuzz_dsn.c - libFuzzer target of the DSN parameter parsers (common/dsn.c)
 * as smtpd applies them to MAIL and RCPT parameters from a client;
 * replayed over its seed corpus by make check.
 *
 * Input layout: byte 0: bit 0 is SMTPUTF8, the other bits pick the size of
 * the xtext output buffer (1..128); the rest, up to a NUL, is the value (an
 * exact-size copy, so that ASan sees any overread).  Beyond memory safety,
 * the target abort()s when xtext decoding overruns or leaves an unterminated
 * or control character result; when NOTIFY accepts NEVER with another
 * keyword, bits outside the mask, or does not survive format and parse
 * again; when ENVID or ORCPT accept a value over their bounds, or an ENVID
 * that does not decode to printable US-ASCII (RFC 3461 4.4).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_xtext(const char *v, int utf8, size_t outsz)
{
	char out[129 + 16];
	int n, i;

	memset(out, 0x5a, sizeof(out));
	n = dsn_xtext_decode(v, utf8, out, outsz);
	for (i = (int)outsz; i < (int)sizeof(out); i++)
		if (out[i] != 0x5a)
			abort();	/* written past outsz */
	if (n < 0)
		return;
	if ((size_t)n >= outsz || out[n] != '\0' || strlen(out) != (size_t)n ||
	    (size_t)n > strlen(v))
		abort();
	for (i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			abort();
}

static void
check_notify(const char *v)
{
	char buf[64];
	uint32_t a, b;

	if (dsn_notify_parse(v, &a) == -1)
		return;
	if (a == 0 || (a & ~(uint32_t)DSN_NOTIFY_MASK) ||
	    ((a & DSN_NOTIFY_NEVER) && a != DSN_NOTIFY_NEVER))
		abort();
	if (dsn_notify_parse(dsn_notify_format(a, buf, sizeof(buf)), &b) == -1 || a != b)
		abort();
}

static void
check_envid_orcpt(const char *v, int utf8)
{
	char out[DSN_ENVID_MAX + 1];
	size_t len = strlen(v);
	int n, i;

	if (dsn_envid_valid(v)) {
		if (len == 0 || len > DSN_ENVID_MAX)
			abort();
		if ((n = dsn_xtext_decode(v, 0, out, sizeof(out))) < 0)
			abort();
		for (i = 0; i < n; i++)
			if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e)
				abort();
	}
	if (dsn_orcpt_valid(v, utf8) && (len < 3 || len > DSN_ORCPT_MAX ||
	    strchr(v, ';') == NULL || (!utf8 && dsn_orcpt_valid(v, 1) == 0)))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul;
	size_t len, outsz;
	char *v;
	int utf8, r;

	if (size < 1)
		return 0;
	utf8 = data[0] & 1;
	outsz = (size_t)(data[0] >> 1) + 1;
	data++;
	size--;
	len = (nul = memchr(data, '\0', size)) != NULL ? (size_t)(nul - data) : size;
	if ((v = malloc(len + 1)) == NULL)
		abort();
	memcpy(v, data, len);
	v[len] = '\0';
	check_xtext(v, utf8, outsz);
	check_notify(v);
	r = dsn_ret_parse(v);
	if (r != -1 && r != DSN_RET_FULL && r != DSN_RET_HDRS)
		abort();
	check_envid_orcpt(v, utf8);
	free(v);
	return 0;
}
