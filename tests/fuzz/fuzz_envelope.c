/*
 * fuzz_envelope.c - libFuzzer target of the envelope file parser and writer
 * (common/envelope.c); replayed over its seed corpus by make check.
 *
 * Trust boundary: the input stands for a Queue/<id>.env file, which may be
 * torn by a crash or edited by hand.  Beyond memory safety, the target
 * abort()s when: a success yields an envelope without a valid id, sender or
 * recipients; formatting a parsed envelope and parsing the text again fails
 * or gives a different envelope, or formatting that gives other bytes; a
 * failure comes without a one-line printable message.
 */
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

#include "envelope.h"
#include "queueid.h"
#include "smtp_parse.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Format `e` into a malloc'ed buffer of exactly its length. */
static char *
format(const struct envelope *e, size_t *len)
{
	struct evbuffer *b;
	char *out;

	if ((b = evbuffer_new()) == NULL)
		abort();
	if (envelope_format(e, b) != 0)
		abort();
	*len = evbuffer_get_length(b);
	if ((out = malloc(*len > 0 ? *len : 1)) == NULL)
		abort();
	if (evbuffer_remove(b, out, *len) != (int)*len)
		abort();
	evbuffer_free(b);
	return out;
}

static void
check_valid(const struct envelope *e)
{
	size_t i;

	if (!queueid_valid(e->id))
		abort();
	if (e->sender == NULL)
		abort();
	if (e->sender[0] != '\0' && !smtp_mailbox_valid(e->sender, 1) &&
	    !smtp_is_postmaster(e->sender))
		abort();
	if (e->nrcpts == 0 || e->rcpts == NULL)
		abort();
	for (i = 0; i < e->nrcpts; i++) {
		if (e->rcpts[i].addr == NULL)
			abort();
		if (!smtp_mailbox_valid(e->rcpts[i].addr, 1) &&
		    !smtp_is_postmaster(e->rcpts[i].addr))
			abort();
		if ((unsigned)e->rcpts[i].state > RCPT_FAILED)
			abort();
	}
}

static void
check_equal(const struct envelope *a, const struct envelope *b)
{
	size_t i;

	if (strcmp(a->id, b->id) != 0 || strcmp(a->sender, b->sender) != 0 ||
	    a->arrival != b->arrival || a->attempts != b->attempts ||
	    a->next_attempt != b->next_attempt || a->nrcpts != b->nrcpts)
		abort();
	for (i = 0; i < a->nrcpts; i++)
		if (strcmp(a->rcpts[i].addr, b->rcpts[i].addr) != 0 ||
		    a->rcpts[i].state != b->rcpts[i].state)
			abort();
}

static void
check_error(const char *err, size_t errsz)
{
	const char *s;

	if (err[0] == '\0')
		abort();
	for (s = err; *s != '\0'; s++) {
		if ((size_t)(s - err) >= errsz)
			abort();
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope e, back;
	char err[256], err2[256], *text, *text2;
	size_t len, len2;

	err[0] = '\0';
	if (envelope_parse((const char *)data, size, &e, err, sizeof(err)) == 0) {
		check_valid(&e);
		text = format(&e, &len);
		err2[0] = '\0';
		if (envelope_parse(text, len, &back, err2, sizeof(err2)) != 0)
			abort();		/* what we write we must read */
		check_valid(&back);
		check_equal(&e, &back);
		text2 = format(&back, &len2);
		if (len != len2 || memcmp(text, text2, len) != 0)
			abort();		/* the file form is canonical */
		free(text);
		free(text2);
		envelope_free(&back);
	} else
		check_error(err, sizeof(err));
	envelope_free(&e);
	envelope_free(&e);
	return 0;
}
