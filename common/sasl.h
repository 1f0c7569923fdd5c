/*
 * sasl.h - the client responses of SMTP AUTH: base64 and the PLAIN message
 * (mail layer).  Pure functions: no I/O, no allocation; safe on any input.
 * RFC 4954 section 4 (AUTH), RFC 4648 section 4 (base64), RFC 4616 section
 * 2 (PLAIN).
 */
#ifndef MR_SASL_H
#define MR_SASL_H

#include <stddef.h>

/* RFC 4954 4: a line of the exchange is at most 12288 octets, CRLF apart. */
#define SASL_LINE_MAX		12288
/* The most octets a response line can decode to. */
#define SASL_DECODED_MAX	(SASL_LINE_MAX / 4 * 3)

/*
 * Decode `len` characters of base64 (RFC 4648 4) into `out`, which holds
 * `outsz` octets (at least len / 4 * 3 are needed).  Strict: a multiple of
 * four characters of the alphabet, '=' only as one or two pads at the end,
 * no blank or line break.  Returns the decoded length, or -1.
 */
int	sasl_b64_decode(const char *in, size_t len, unsigned char *out, size_t outsz);

/* The three parts of a PLAIN message; each points into the message. */
struct sasl_plain {
	const unsigned char	*authzid, *authcid, *passwd;
	size_t			 zlen, clen, plen;
};

/*
 * Split a PLAIN message, [authzid] NUL authcid NUL passwd (RFC 4616 2):
 * 0, or -1 when it does not hold exactly two NULs.  Lengths and emptiness
 * are the caller's to judge.
 */
int	sasl_plain_split(const unsigned char *msg, size_t len, struct sasl_plain *);

#endif
