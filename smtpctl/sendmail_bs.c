/*
 * sendmail_bs.c - `sendmail -bs`: an SMTP dialogue on standard input and
 * output (runs as the invoking user, setgid mailroot; no network).
 *
 * Programs that submit by speaking SMTP to a sendmail child (some mail
 * clients, cron replacements, language libraries) get the minimal server
 * of RFC 5321: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT (HELP and VRFY
 * answered, the rest 502).  Commands are parsed by common/smtp_parse.c and
 * the message by common/smtp_data.c (dot-stuffing, the end of data, line
 * endings), as smtpd does.  Each accepted message is completed and written
 * into Pickup/ exactly as the normal mode writes it (sendmail.c), and only
 * then does the client hear 250.  Trust: the peer is the invoking user,
 * untrusted when the program runs setgid; every line and size is bounded.
 */
#include <sys/types.h>
#include <err.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>
#include <event2/buffer.h>

#include "config.h"
#include "sendmail.h"
#include "smtp_data.h"
#include "smtp_parse.h"
#include "util.h"

#define BS_MAX_RCPTS	1000	/* RFC 5321 4.5.3.1.8 asks for at least 100 */
#define BS_MAX_ERRORS	20	/* bad commands before the dialogue ends */

/* What a command line leads to. */
enum { BS_GO_ON, BS_QUIT, BS_BROKEN };

struct bs {
	const struct config	*conf;
	const char		*pickup;
	const char		*fullname;
	uint64_t		 cap;
	struct evbuffer		*in;
	int			 eof;
	int			 has_mail;	/* a MAIL was accepted */
	char			 sender[SMTP_PATH_MAX + 1];
	char			**rcpts;
	size_t			 nrcpts;
	int			 errors;
};

static void __attribute__((format(printf, 1, 2)))
say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputs("\r\n", stdout);
}

/* Send what was said: at once when no pipelined input waits (RFC 2920). */
static void
say_flush(struct bs *b)
{
	if (evbuffer_get_length(b->in) == 0 || b->eof)
		fflush(stdout);
}

/* Read more of standard input; 0 at end of input. */
static int
fill(struct bs *b)
{
	int n;

	if (b->eof)
		return 0;
	fflush(stdout);
	for (;;) {
		n = evbuffer_read(b->in, STDIN_FILENO, 65536);
		if (n > 0)
			return 1;
		if (n == 0 || errno != EINTR) {
			b->eof = 1;
			return 0;
		}
	}
}

static void
transaction_reset(struct bs *b)
{
	size_t i;

	for (i = 0; i < b->nrcpts; i++)
		free(b->rcpts[i]);
	free(b->rcpts);
	b->rcpts = NULL;
	b->nrcpts = 0;
	b->has_mail = 0;
	b->sender[0] = '\0';
}

static void
cmd_mail(struct bs *b, struct smtp_cmd *c)
{
	unsigned long long size;
	char *end;
	size_t i;

	if (b->has_mail) {
		say("503 5.5.1 Error: nested MAIL command");
		return;
	}
	for (i = 0; i < c->nparams; i++) {
		if (strcmp(c->params[i].key, "SIZE") == 0) {
			errno = 0;
			size = strtoull(c->params[i].value, &end, 10);
			if (c->params[i].value[0] == '\0' || *end != '\0' || errno != 0) {
				say("501 5.5.4 Syntax: SIZE=octets");
				return;
			}
			if (size > b->cap) {
				say("552 5.3.4 Message size exceeds fixed limit (%llu octets)",
				    (unsigned long long)b->cap);
				return;
			}
		} else if (strcmp(c->params[i].key, "BODY") == 0) {
			if (strcasecmp(c->params[i].value, "7BIT") != 0 &&
			    strcasecmp(c->params[i].value, "8BITMIME") != 0) {
				say("501 5.5.4 BODY=7BIT or BODY=8BITMIME");
				return;
			}
		} else {
			say("555 5.5.4 Unsupported MAIL parameter %s", c->params[i].key);
			return;
		}
	}
	if (strlcpy(b->sender, c->path, sizeof(b->sender)) >= sizeof(b->sender)) {
		say("501 5.1.7 Sender address too long");
		return;
	}
	b->has_mail = 1;
	say("250 2.1.0 Ok");
}

static void
cmd_rcpt(struct bs *b, struct smtp_cmd *c)
{
	char **nr;

	if (!b->has_mail) {
		say("503 5.5.1 Error: need MAIL command");
		return;
	}
	if (c->nparams > 0) {
		say("555 5.5.4 Unsupported RCPT parameter %s", c->params[0].key);
		return;
	}
	if (c->path[0] == '\0' || !smtp_mailbox_valid(c->path, 0)) {
		say("553 5.1.3 Bad recipient address syntax");
		return;
	}
	if (b->nrcpts >= BS_MAX_RCPTS) {
		say("452 4.5.3 Too many recipients");
		return;
	}
	if ((nr = reallocarray(b->rcpts, b->nrcpts + 1, sizeof(*nr))) == NULL)
		err(EX_OSERR, "recipients");
	b->rcpts = nr;
	if ((b->rcpts[b->nrcpts] = strdup(c->path)) == NULL)
		err(EX_OSERR, "recipients");
	b->nrcpts++;
	say("250 2.1.5 Ok");
}

/*
 * DATA: read the message up to the end-of-data line, then write it into
 * Pickup/.  Returns -1 when the input ended first (the message is dropped:
 * it was never acknowledged).
 */
static int
cmd_data(struct bs *b)
{
	struct smtp_data d;
	struct evbuffer *msg, *content;
	struct evbuffer_iovec v;
	char name[128], why[PATH_MAX + 128];
	size_t used, len;
	int status;

	if (!b->has_mail) {
		say("503 5.5.1 Error: need MAIL command");
		return 0;
	}
	if (b->nrcpts == 0) {
		say("554 5.5.1 Error: no valid recipients");
		return 0;
	}
	say("354 End data with <CR><LF>.<CR><LF>");
	fflush(stdout);
	if ((msg = evbuffer_new()) == NULL || (content = evbuffer_new()) == NULL)
		err(EX_OSERR, "evbuffer_new");
	smtp_data_init(&d, b->cap);
	while (!d.done) {
		if (evbuffer_get_length(b->in) == 0 && !fill(b)) {
			evbuffer_free(msg);
			evbuffer_free(content);
			return -1;
		}
		if (evbuffer_peek(b->in, -1, NULL, &v, 1) < 1)
			continue;
		used = smtp_data_feed(&d, v.iov_base, v.iov_len, msg);
		evbuffer_drain(b->in, used);
	}
	if (d.flags & SMTP_DATA_TOO_BIG)
		say("552 5.3.4 Message size exceeds fixed limit (%llu octets)",
		    (unsigned long long)b->cap);
	else {
		len = evbuffer_get_length(msg);
		message_complete(content, len ? (const char *)evbuffer_pullup(msg, -1) : "",
		    len, b->sender, b->fullname);
		if (pickup_write(b->pickup, b->sender, b->rcpts, b->nrcpts, content,
		    name, sizeof(name), why, sizeof(why), &status) == -1) {
			fprintf(stderr, "sendmail: %s\n", why);
			say("451 4.3.0 Cannot write the message into Pickup, try again later");
		} else
			say("250 2.0.0 Ok: written to Pickup as %s", name);
	}
	evbuffer_free(msg);
	evbuffer_free(content);
	transaction_reset(b);
	return 0;
}

static void
cmd_ehlo(struct bs *b, struct smtp_cmd *c, int extended)
{
	transaction_reset(b);
	if (!extended) {
		say("250 %s", b->conf->hostname);
		return;
	}
	say("250-%s", b->conf->hostname);
	say("250-PIPELINING");
	say("250-8BITMIME");
	say("250-ENHANCEDSTATUSCODES");
	say("250 SIZE %llu", (unsigned long long)b->cap);
	(void)c;
}

/* One command line: go on, QUIT, or broken off (too many errors, input ended in DATA). */
static int
command(struct bs *b, const char *line, size_t len)
{
	struct smtp_cmd c;
	const char *why;

	switch (smtp_parse_command(line, len, 0, &c, &why)) {
	case SMTP_PARSE_OK:
		break;
	case SMTP_PARSE_UNKNOWN:
		say("500 5.5.1 Command unrecognized");
		return ++b->errors >= BS_MAX_ERRORS ? BS_BROKEN : BS_GO_ON;
	case SMTP_PARSE_BAD_ADDRESS:
		say("553 5.1.3 %s", why);
		return ++b->errors >= BS_MAX_ERRORS ? BS_BROKEN : BS_GO_ON;
	case SMTP_PARSE_TOO_LONG:
		say("500 5.5.2 Line too long");
		return ++b->errors >= BS_MAX_ERRORS ? BS_BROKEN : BS_GO_ON;
	default:
		say("501 5.5.2 %s", why);
		return ++b->errors >= BS_MAX_ERRORS ? BS_BROKEN : BS_GO_ON;
	}
	switch (c.verb) {
	case SMTP_CMD_HELO: cmd_ehlo(b, &c, 0); break;
	case SMTP_CMD_EHLO: cmd_ehlo(b, &c, 1); break;
	case SMTP_CMD_MAIL: cmd_mail(b, &c); break;
	case SMTP_CMD_RCPT: cmd_rcpt(b, &c); break;
	case SMTP_CMD_DATA:
		if (cmd_data(b) == -1)
			return BS_BROKEN;
		break;
	case SMTP_CMD_RSET:
		transaction_reset(b);
		say("250 2.0.0 Ok");
		break;
	case SMTP_CMD_NOOP:
		say("250 2.0.0 Ok");
		break;
	case SMTP_CMD_QUIT:
		say("221 2.0.0 Bye");
		return BS_QUIT;
	case SMTP_CMD_HELP:
		say("214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT");
		break;
	case SMTP_CMD_VRFY:
		say("252 2.5.0 Cannot VRFY; try RCPT");
		break;
	default:
		say("502 5.5.1 Command not implemented");
		break;
	}
	return BS_GO_ON;
}

int
sendmail_bs(const struct config *conf, const char *pickup, uint64_t cap,
    const char *fullname)
{
	struct bs b;
	unsigned char *p;
	size_t avail, linelen, consumed;
	int r, done = BS_GO_ON, discarding = 0;
	char line[SMTP_LINE_MAX + 1];
	struct evbuffer_ptr pos;

	memset(&b, 0, sizeof(b));
	b.conf = conf;
	b.pickup = pickup;
	b.cap = cap;
	b.fullname = fullname;
	if ((b.in = evbuffer_new()) == NULL)
		err(EX_OSERR, "evbuffer_new");
	say("220 %s ESMTP Mailroot (sendmail -bs)", conf->hostname);
	while (!done) {
		if (evbuffer_get_length(b.in) == 0 && !fill(&b))
			break;
		if (discarding) {
			pos = evbuffer_search(b.in, "\n", 1, NULL);
			if (pos.pos == -1) {
				evbuffer_drain(b.in, evbuffer_get_length(b.in));
				continue;
			}
			evbuffer_drain(b.in, (size_t)pos.pos + 1);
			discarding = 0;
			continue;
		}
		avail = evbuffer_get_length(b.in);
		if (avail > SMTP_LINE_MAX + 1)
			avail = SMTP_LINE_MAX + 1;
		if ((p = evbuffer_pullup(b.in, (ssize_t)avail)) == NULL)
			break;
		r = smtp_line_next((const char *)p, avail, &linelen, &consumed);
		if (r == 0) {
			/* a partial line: more input, or the end of it */
			if (!fill(&b))
				break;
			continue;
		}
		if (r == -1) {
			say("500 5.5.2 Line too long (at most %d octets)", SMTP_LINE_MAX);
			discarding = 1;
			continue;
		}
		/* a copy: the handler may read on (DATA) */
		memcpy(line, p, linelen);
		line[linelen] = '\0';
		evbuffer_drain(b.in, consumed);
		done = command(&b, line, linelen);
		say_flush(&b);
	}
	if (done == BS_BROKEN && !b.eof)
		say("421 4.7.0 Too many errors, closing");
	fflush(stdout);
	/* The input ended with a transaction open, or inside DATA: none of it was kept. */
	r = done == BS_QUIT || (done == BS_GO_ON && !b.has_mail) ? 0 : EX_PROTOCOL;
	transaction_reset(&b);
	evbuffer_free(b.in);
	return r;
}
