/*
 * smtp_reply.c - parse the replies of a remote SMTP server (mail layer;
 * used by deliverd, unprivileged and chrooted).  Trust boundary: every
 * octet here comes from a server on the Internet.  The reply is checked
 * line by line against fixed limits; nothing grows with the input.
 */
#include <string.h>

#include "smtp_reply.h"

void
smtp_reply_init(struct smtp_reply *r)
{
	memset(r, 0, sizeof(*r));
}

static int
isdig(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * An enhanced status code at the start of `s` (RFC 3463 2: class "."
 * subject "." detail; class 2, 4 or 5; subject 1-3 digits; detail 1-3
 * digits), followed by a space or the end.  Its length, or 0.
 */
static size_t
enhanced_len(const char *s, size_t len)
{
	size_t i = 0, n;
	int part;

	if (len < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (n = 0; i < len && isdig(s[i]) && n < 3; i++, n++)
			;
		if (n == 0)
			return 0;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && s[i] != ' ')
		return 0;
	return i;
}

/* Append a line's text to r->text, ' '-joined; "..." marks a cut. */
static void
text_append(struct smtp_reply *r, const char *s, size_t len)
{
	size_t have = strlen(r->text), room;

	if (have > 0 && have + 1 < sizeof(r->text) && len > 0) {
		r->text[have++] = ' ';
		r->text[have] = '\0';
	}
	room = sizeof(r->text) - 1 - have;
	if (len > room) {
		if (room >= 3) {
			memcpy(r->text + have, s, room - 3);
			memcpy(r->text + have + room - 3, "...", 3);
		}
		r->text[sizeof(r->text) - 1] = '\0';
		return;
	}
	memcpy(r->text + have, s, len);
	r->text[have + len] = '\0';
}

enum smtp_reply_status
smtp_reply_line(struct smtp_reply *r, const char *line, size_t len)
{
	const char *t;
	size_t tlen, elen;
	int code, last;

	if (len + 2 > SMTP_REPLY_LINE_MAX || r->nlines >= SMTP_REPLY_LINES_MAX)
		return SMTP_REPLY_BAD;
	if (memchr(line, '\0', len) != NULL)
		return SMTP_REPLY_BAD;
	/* Reply-code = %x32-35 %x30-35 %x30-39 (RFC 5321 4.2) */
	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
	    !isdig(line[2]))
		return SMTP_REPLY_BAD;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (len == 3 || line[3] == ' ')
		last = 1;
	else if (line[3] == '-')
		last = 0;
	else
		return SMTP_REPLY_BAD;
	if (r->nlines > 0 && code != r->code)
		return SMTP_REPLY_BAD;
	r->code = code;
	t = len > 4 ? line + 4 : line + len;
	tlen = len > 4 ? len - 4 : 0;
	r->line = t;
	r->linelen = tlen;
	/* RFC 2034: the enhanced code leads every line's text; keep the first. */
	elen = enhanced_len(t, tlen);
	if (elen > 0 && t[0] == line[0]) {
		if (r->nlines == 0) {
			memcpy(r->enhanced, t, elen);
			r->enhanced[elen] = '\0';
		}
		t += elen;
		tlen -= elen;
		while (tlen > 0 && *t == ' ')
			t++, tlen--;
	}
	if (r->nlines == 0 || r->code / 100 != 2)
		text_append(r, t, tlen);
	r->nlines++;
	return last ? SMTP_REPLY_DONE : SMTP_REPLY_MORE;
}

enum smtp_reply_status
smtp_reply_feed(struct smtp_reply *r, const char *buf, size_t len, size_t *consumed)
{
	enum smtp_reply_status st;
	const char *nl;
	size_t off = 0, ll;

	*consumed = 0;
	while (off < len) {
		if ((nl = memchr(buf + off, '\n', len - off)) == NULL) {
			if (len - off + 1 > SMTP_REPLY_LINE_MAX)
				return SMTP_REPLY_BAD;
			return SMTP_REPLY_MORE;
		}
		ll = (size_t)(nl - (buf + off));
		if (ll + 1 > SMTP_REPLY_LINE_MAX)
			return SMTP_REPLY_BAD;
		if (ll > 0 && buf[off + ll - 1] == '\r')
			ll--;
		st = smtp_reply_line(r, buf + off, ll);
		off = (size_t)(nl - buf) + 1;
		*consumed = off;
		if (st != SMTP_REPLY_MORE)
			return st;
	}
	return SMTP_REPLY_MORE;
}
