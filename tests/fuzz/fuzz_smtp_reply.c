/*
 * fuzz_smtp_reply.c - libFuzzer target for common/smtp_reply.c.
 *
 * Input: what a hostile SMTP server sends.  It is parsed as a stream of
 * replies twice, whole and one octet at a time, and both must give the
 * same replies; every finished reply must have a code of 200..599, a
 * bounded NUL-terminated text, and an enhanced code of the right form.
 * Violations abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define MAX_REPLIES	64

struct seen {
	int	 n;
	int	 bad;
	int	 codes[MAX_REPLIES];
	char	 texts[MAX_REPLIES][SMTP_REPLY_TEXT_MAX];
};

static void
check(const struct smtp_reply *r)
{
	size_t i, len;

	if (r->code < 200 || r->code > 599)
		abort();
	if (memchr(r->text, '\0', sizeof(r->text)) == NULL ||
	    memchr(r->enhanced, '\0', sizeof(r->enhanced)) == NULL)
		abort();
	len = strlen(r->enhanced);
	if (len > 0 && (r->enhanced[0] != '0' + r->code / 100 || r->enhanced[1] != '.'))
		abort();
	for (i = 0; i < len; i++)
		if (r->enhanced[i] != '.' && (r->enhanced[i] < '0' || r->enhanced[i] > '9'))
			abort();
	if (r->nlines == 0 || r->nlines > SMTP_REPLY_LINES_MAX)
		abort();
}

/* Parse `in` as the client does, `step` octets more each time. */
static void
run(const uint8_t *in, size_t len, size_t step, struct seen *s)
{
	struct smtp_reply r;
	enum smtp_reply_status st;
	size_t start = 0, avail = 0, used;

	memset(s, 0, sizeof(*s));
	smtp_reply_init(&r);
	while (start < len && s->n < MAX_REPLIES) {
		avail = avail + step > len ? len : avail + step;
		st = smtp_reply_feed(&r, (const char *)in + start, avail - start, &used);
		if (used > avail - start)
			abort();
		start += used;
		if (st == SMTP_REPLY_BAD) {
			s->bad = 1;
			return;
		}
		if (st == SMTP_REPLY_DONE) {
			check(&r);
			s->codes[s->n] = r.code;
			memcpy(s->texts[s->n], r.text, sizeof(r.text));
			s->n++;
			smtp_reply_init(&r);
			continue;
		}
		if (avail == len)
			return;		/* the rest is an unfinished line */
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct seen a, b;
	int i;

	run(data, size, size ? size : 1, &a);
	run(data, size, 1, &b);
	if (a.n != b.n || a.bad != b.bad)
		abort();
	for (i = 0; i < a.n; i++)
		if (a.codes[i] != b.codes[i] || strcmp(a.texts[i], b.texts[i]) != 0)
			abort();
	return 0;
}
