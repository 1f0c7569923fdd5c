/*
 * deliverd_data.c - the message content as DATA sends it (deliverd,
 * unprivileged, chrooted): read from the descriptor queued passed (the
 * spool file, read-only), lines ended with CRLF, a leading "." doubled
 * (RFC 5321 4.5.2), then the final ".".  With masquerade-domain set, the
 * address domain of the From: header field is replaced when it is a local
 * domain (D7); the rest of the message passes untouched.  The content is
 * our own spool (trusted in form), but its lines are of any length: only
 * one header field of at most DATA_FIELD_MAX octets is ever held.  A
 * BINARYMIME message goes out as BDAT (RFC 3030): its octets unchanged.
 */
#include <sys/types.h>
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <event2/buffer.h>

#include "config.h"
#include "deliverd.h"

#define READ_CHUNK	16384

void
data_stream_init(struct data_stream *ds, int fd, const struct config *c)
{
	memset(ds, 0, sizeof(*ds));
	ds->fd = fd;
	(void)strlcpy(ds->masquerade, c->masquerade_domain, sizeof(ds->masquerade));
	ds->bol = 1;
	ds->in_header = ds->masquerade[0] != '\0';
}

void
data_stream_init_raw(struct data_stream *ds, int fd)
{
	memset(ds, 0, sizeof(*ds));
	ds->fd = fd;
	ds->raw = 1;
}

static int
domain_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.';
}

/* Write out the held header field; a From: gets its local domains replaced. */
static void
field_flush(struct data_stream *ds, const struct config *c, struct evbuffer *out)
{
	char dom[SMTP_DOMAIN_MAX + 1];
	size_t i = 0, start, n;

	if (ds->flen == 0)
		return;
	if (ds->flen < 5 || strncasecmp(ds->field, "From:", 5) != 0) {
		evbuffer_add(out, ds->field, ds->flen);
		ds->flen = 0;
		return;
	}
	while (i < ds->flen) {
		if (ds->field[i] != '@') {
			start = i;
			while (i < ds->flen && ds->field[i] != '@')
				i++;
			evbuffer_add(out, ds->field + start, i - start);
			continue;
		}
		evbuffer_add(out, "@", 1);
		start = ++i;
		while (i < ds->flen && domain_char(ds->field[i]))
			i++;
		n = i - start;
		if (n > 0 && n < sizeof(dom)) {
			memcpy(dom, ds->field + start, n);
			dom[n] = '\0';
			if (config_is_local_domain(c, dom)) {
				evbuffer_add(out, ds->masquerade, strlen(ds->masquerade));
				continue;
			}
		}
		evbuffer_add(out, ds->field + start, n);
	}
	ds->flen = 0;
}

/* Octets of the current header field: held, or passed once it is too long. */
static void
field_add(struct data_stream *ds, struct evbuffer *out, const char *p, size_t n)
{
	if (ds->field_pass) {
		evbuffer_add(out, p, n);
		return;
	}
	if (ds->flen + n > sizeof(ds->field)) {
		evbuffer_add(out, ds->field, ds->flen);
		ds->flen = 0;
		ds->field_pass = 1;
		evbuffer_add(out, p, n);
		return;
	}
	memcpy(ds->field + ds->flen, p, n);
	ds->flen += n;
}

static void
emit(struct data_stream *ds, struct evbuffer *out, const char *p, size_t n)
{
	if (ds->in_header)
		field_add(ds, out, p, n);
	else
		evbuffer_add(out, p, n);
}

/* One octet of content (line ends already told apart). */
static void
put_char(struct data_stream *ds, const struct config *c, struct evbuffer *out, char ch)
{
	if (ds->bol) {
		ds->bol = 0;
		if (ds->in_header) {
			if (ch != ' ' && ch != '\t') {
				/* a new field starts: the previous one is whole */
				field_flush(ds, c, out);
				ds->field_pass = 0;
			}
		}
		if (ch == '.') {
			emit(ds, out, "..", 2);
			return;
		}
	}
	emit(ds, out, &ch, 1);
}

static void
put_eol(struct data_stream *ds, const struct config *c, struct evbuffer *out)
{
	if (ds->bol && ds->in_header) {
		/* the empty line: the header is over */
		field_flush(ds, c, out);
		ds->in_header = 0;
	}
	emit(ds, out, "\r\n", 2);
	ds->bol = 1;
}

int
data_stream_fill(struct data_stream *ds, const struct config *c, struct evbuffer *out,
    size_t want)
{
	char buf[READ_CHUNK];
	size_t start = evbuffer_get_length(out), i, run;
	ssize_t n;

	while (!ds->done && evbuffer_get_length(out) - start < want) {
		n = pread(ds->fd, buf, sizeof(buf), ds->off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0 && ds->raw) {
			ds->done = 1;
			break;
		}
		if (n == 0) {
			if (ds->cr)
				put_char(ds, c, out, '\r');
			ds->cr = 0;
			if (!ds->bol)
				put_eol(ds, c, out);
			field_flush(ds, c, out);
			evbuffer_add(out, ".\r\n", 3);
			ds->done = 1;
			break;
		}
		ds->off += n;
		if (ds->raw) {
			evbuffer_add(out, buf, (size_t)n);
			continue;
		}
		for (i = 0; i < (size_t)n; i++) {
			if (ds->cr) {
				ds->cr = 0;
				if (buf[i] == '\n') {
					put_eol(ds, c, out);
					continue;
				}
				put_char(ds, c, out, '\r');	/* a bare CR is data */
			}
			if (buf[i] == '\r') {
				ds->cr = 1;
				continue;
			}
			if (buf[i] == '\n') {
				put_eol(ds, c, out);
				continue;
			}
			/* The body outside line starts: whole runs at once. */
			if (!ds->bol && !ds->in_header) {
				for (run = i; run < (size_t)n && buf[run] != '\r' &&
				    buf[run] != '\n'; run++)
					;
				evbuffer_add(out, buf + i, run - i);
				i = run - 1;
				continue;
			}
			put_char(ds, c, out, buf[i]);
		}
	}
	return ds->done ? 1 : 0;
}
