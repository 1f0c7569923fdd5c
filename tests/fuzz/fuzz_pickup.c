/*
 * fuzz_pickup.c - libFuzzer target of the Pickup file parser
 * (pickupd/pickupd_parse.c); replayed over its seed corpus by make check.
 *
 * Trust boundary: the input stands for a file any local application may
 * drop into the Pickup directory.  Beyond memory safety (ASan/UBSan), the
 * target abort()s when a result breaks the parser's contract: a success
 * without a valid sender or recipients, duplicate recipients, more than
 * max_rcpts, content with a bare CR or LF, a Bcc: field left in the header
 * section; or a failure without a one-line printable reason.
 */
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

#include "smtp_parse.h"
#include "pickupd_parse.h"

#define FUZZ_MAX_RCPTS	50

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const struct pickup_opts opts = {
	.default_domain = "example.org",
	.message_id = "<fuzz.1@example.org>",
	.date = "Mon, 1 Jan 2024 00:00:00 +0000",
	.max_rcpts = FUZZ_MAX_RCPTS
};

static int
lc(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int
caseeq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (lc((unsigned char)*a) != lc((unsigned char)*b))
			return 0;
	return *a == *b;
}

static int
prefix_caseeq(const char *s, size_t len, const char *lit)
{
	size_t i, n = strlen(lit);

	if (len < n)
		return 0;
	for (i = 0; i < n; i++)
		if (lc((unsigned char)s[i]) != lit[i])
			return 0;
	return 1;
}

/* Every line ends in CRLF; the header section has no Bcc: and an ID. */
static void
check_content(const char *c, size_t n)
{
	size_t i, start = 0;
	int in_header = 1, has_msgid = 0, has_date = 0;

	if (n < 2 || c[n - 2] != '\r' || c[n - 1] != '\n')
		abort();
	for (i = 0; i < n; i++) {
		if (c[i] == '\n' && (i == 0 || c[i - 1] != '\r'))
			abort();			/* bare LF */
		if (c[i] == '\r' && (i + 1 == n || c[i + 1] != '\n'))
			abort();			/* bare CR */
		if (c[i] == '\0')
			abort();
		if (c[i] != '\n')
			continue;
		if (in_header) {
			if (i - 1 == start) {		/* the empty line */
				in_header = 0;
			} else {
				if (i - 1 - start > 998)
					abort();
				if (prefix_caseeq(c + start, i - 1 - start,
				    "bcc:"))
					abort();
				if (prefix_caseeq(c + start, i - 1 - start,
				    "message-id:"))
					has_msgid = 1;
				if (prefix_caseeq(c + start, i - 1 - start,
				    "date:"))
					has_date = 1;
			}
		}
		start = i + 1;
	}
	if (in_header || !has_msgid || !has_date)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pickup_msg m;
	const char *s;
	size_t i, j, n;
	char *c;

	if (pickup_parse((const char *)data, size, &opts, &m) == 0) {
		if (m.sender == NULL || m.content == NULL || m.rcpts == NULL)
			abort();
		if (m.sender[0] != '\0' && !smtp_mailbox_valid(m.sender, 0))
			abort();
		if (m.nrcpts == 0 || m.nrcpts > FUZZ_MAX_RCPTS)
			abort();
		for (i = 0; i < m.nrcpts; i++) {
			if (!smtp_mailbox_valid(m.rcpts[i], 0))
				abort();
			for (j = 0; j < i; j++)
				if (caseeq(m.rcpts[i], m.rcpts[j]))
					abort();
		}
		n = evbuffer_get_length(m.content);
		if ((c = malloc(n + 1)) == NULL)
			abort();
		if (evbuffer_copyout(m.content, c, n) != (ssize_t)n)
			abort();
		c[n] = '\0';
		check_content(c, n);
		free(c);
	} else {
		if (m.error[0] == '\0' || m.sender != NULL || m.rcpts != NULL ||
		    m.content != NULL)
			abort();
		for (s = m.error; *s != '\0'; s++)
			if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
				abort();
		if (s - m.error >= (ptrdiff_t)sizeof(m.error))
			abort();
	}
	pickup_msg_free(&m);
	pickup_msg_free(&m);
	return 0;
}
