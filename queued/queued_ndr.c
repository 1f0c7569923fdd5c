/*
 * queued_ndr.c - composing delivery status notifications (queued, as
 * _smtpq): the non-delivery report of failed recipients and the delay
 * notice of waiting ones, as RFC 3464 multipart/report messages
 * (RFC 6522) with the original message or its header section.
 *
 * This file only writes text into a descriptor; what becomes of it (a
 * message committed like any other, or Badmail/) is queued_sched.c's.
 * Trust boundary: the original's header section and the remote replies are
 * data from outside.  Replies arrive as checked one-line printable text
 * (proto_deliver.c); the original is copied as it was queued, inside its
 * own MIME part, and never parsed beyond finding where its header ends.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <event2/buffer.h>

#include "dsn.h"
#include "envelope.h"
#include "queued_ndr.h"
#include "util.h"

#define NDR_HEADER_MAX	(1024 * 1024)	/* a header section returned or counted */
#define NDR_FULL_MAX	(10ULL * 1024 * 1024)	/* above: headers only */

/* An RFC 5322 date-time. */
static void
rfc5322_date(int64_t t, char *buf, size_t bufsz)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL ||
	    strftime(buf, bufsz, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		(void)strlcpy(buf, "Thu, 01 Jan 1970 00:00:00 +0000", bufsz);
}

ssize_t
ndr_header_length(int fd)
{
	char buf[8192];
	size_t have = 0, k;
	ssize_t n;
	int state = 1;	/* 0 in a line, 1 at a line start, 2 after CR there */

	/* The header section ends at the first empty line (RFC 5322 2.1). */
	while (have < NDR_HEADER_MAX) {
		n = pread(fd, buf, sizeof(buf), (off_t)have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0)
			return (ssize_t)have;	/* a message with no body */
		for (k = 0; k < (size_t)n; k++) {
			if (buf[k] == '\n') {
				if (state != 0)
					return (ssize_t)(have + k + 1);
				state = 1;
			} else if (buf[k] == '\r' && state == 1)
				state = 2;
			else
				state = 0;
		}
		have += (size_t)n;
	}
	return (ssize_t)have;
}

int
ndr_count_received(int fd)
{
	ssize_t len;
	char *p, *end, *line, *nl;
	int count = 0;

	if ((len = ndr_header_length(fd)) <= 0)
		return len < 0 ? -1 : 0;
	if ((p = malloc((size_t)len + 1)) == NULL)
		return -1;
	if (pread(fd, p, (size_t)len, 0) != len) {
		free(p);
		return -1;
	}
	p[len] = '\0';
	end = p + len;
	/* A field starts at a line start; folded lines start with a blank. */
	for (line = p; line < end; line = nl + 1) {
		if ((size_t)(end - line) >= 9 && strncasecmp(line, "Received:", 9) == 0)
			count++;
		if ((nl = memchr(line, '\n', (size_t)(end - line))) == NULL)
			break;
	}
	free(p);
	return count;
}

/* Copy octets [0, len) of `in` to the end of `out`. */
static int
copy_range(int in, int out, uint64_t len)
{
	char buf[65536];
	uint64_t off = 0;
	ssize_t n;
	size_t want;

	while (off < len) {
		want = len - off > sizeof(buf) ? sizeof(buf) : (size_t)(len - off);
		n = pread(in, buf, want, (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? 0 : -1;
		if (write_all(out, buf, (size_t)n) == -1)
			return -1;
		off += (uint64_t)n;
	}
	return 0;
}

/* The printable form of an xtext value (RFC 3461 4), or the value itself. */
static const char *
unxtext(const char *x, int utf8, char *buf, size_t bufsz)
{
	return dsn_xtext_decode(x, utf8, buf, bufsz) >= 0 ? buf : x;
}

/* The human-readable part: what happened, to whom, and what the server said. */
static void
add_text(struct evbuffer *b, const struct ndr_info *n, int full)
{
	char date[64];
	size_t i;

	evbuffer_add_printf(b, "This is the mail system at host %s.\r\n\r\n", n->hostname);
	if (n->kind == NDR_FAILED)
		evbuffer_add_printf(b,
		    "I'm sorry to have to inform you that your message could not\r\n"
		    "be delivered to one or more recipients.  %s\r\n\r\n",
		    full ? "It is attached below." : "Its header is attached below.");
	else {
		rfc5322_date(n->retry_until, date, sizeof(date));
		evbuffer_add_printf(b,
		    "Your message could not be delivered yet to one or more\r\n"
		    "recipients.  It will be retried until %s;\r\n"
		    "you need not send it again.  Its header is attached below.\r\n\r\n",
		    date);
	}
	for (i = 0; i < n->nrcpts; i++) {
		const struct ndr_rcpt *r = &n->rcpts[i];

		if (r->remote_mta)
			evbuffer_add_printf(b, "<%s>: host %s said:\r\n", r->addr,
			    r->remote_mta);
		else
			evbuffer_add_printf(b, "<%s>:\r\n", r->addr);
		evbuffer_add_printf(b, "    %s (status %s)\r\n",
		    r->diag ? r->diag : "no reply", r->status);
	}
}

/* The machine-readable part (RFC 3464 2.2, 2.3). */
static void
add_status(struct evbuffer *b, const struct ndr_info *n)
{
	const struct envelope *o = n->orig;
	char date[64], x[DSN_ORCPT_MAX + 1], *semi;
	size_t i;

	evbuffer_add_printf(b, "Reporting-MTA: dns; %s\r\n", n->hostname);
	evbuffer_add_printf(b, "X-Mailroot-Queue-ID: %s\r\n", o->id);
	if (o->envid)
		evbuffer_add_printf(b, "Original-Envelope-Id: %s\r\n",
		    unxtext(o->envid, 0, x, sizeof(x)));
	rfc5322_date(o->arrival, date, sizeof(date));
	evbuffer_add_printf(b, "Arrival-Date: %s\r\n", date);
	for (i = 0; i < n->nrcpts; i++) {
		const struct ndr_rcpt *r = &n->rcpts[i];

		evbuffer_add_printf(b, "\r\n");
		if (r->orcpt && (semi = strchr(r->orcpt, ';')) != NULL)
			evbuffer_add_printf(b, "Original-Recipient: %.*s;%s\r\n",
			    (int)(semi - r->orcpt), r->orcpt,
			    unxtext(semi + 1, o->smtputf8, x, sizeof(x)));
		evbuffer_add_printf(b, "Final-Recipient: %s; %s\r\n",
		    o->smtputf8 ? "utf-8" : "rfc822", r->addr);
		evbuffer_add_printf(b, "Action: %s\r\n",
		    n->kind == NDR_FAILED ? "failed" : "delayed");
		evbuffer_add_printf(b, "Status: %s\r\n", r->status);
		if (r->remote_mta) {
			/* "name[address]": the name, as RFC 3464 2.3.5 wants a host. */
			const char *br = strchr(r->remote_mta, '[');
			int len = br && br != r->remote_mta ?
			    (int)(br - r->remote_mta) : (int)strlen(r->remote_mta);

			evbuffer_add_printf(b, "Remote-MTA: dns; %.*s\r\n", len,
			    r->remote_mta);
		}
		if (r->diag)
			evbuffer_add_printf(b, "Diagnostic-Code: smtp; %s\r\n", r->diag);
		if (n->last_attempt != 0) {
			rfc5322_date(n->last_attempt, date, sizeof(date));
			evbuffer_add_printf(b, "Last-Attempt-Date: %s\r\n", date);
		}
		if (n->kind == NDR_DELAYED) {
			rfc5322_date(n->retry_until, date, sizeof(date));
			evbuffer_add_printf(b, "Will-Retry-Until: %s\r\n", date);
		}
	}
}

static int
flush(struct evbuffer *b, int fd)
{
	while (evbuffer_get_length(b) > 0)
		if (evbuffer_write(b, fd) <= 0)
			return -1;
	return 0;
}

int
ndr_compose(const struct ndr_info *n, int outfd, char *why, size_t whysz)
{
	const struct envelope *o = n->orig;
	struct evbuffer *b;
	struct stat st;
	char date[64], boundary[QUEUEID_LEN + 16];
	ssize_t hlen = -1;
	int full, eightbit;

	if (fstat(n->content_fd, &st) == -1 || (b = evbuffer_new()) == NULL) {
		snprintf(why, whysz, "%s", strerror(errno));
		return -1;
	}
	/* RET=FULL or none on a failure: the whole message (RFC 3461 4.3). */
	full = n->kind == NDR_FAILED && o->ret != DSN_RET_HDRS &&
	    o->body != ENV_BODY_BINARYMIME && (uint64_t)st.st_size <= NDR_FULL_MAX;
	if (!full && (hlen = ndr_header_length(n->content_fd)) == -1) {
		snprintf(why, whysz, "reading the original: %s", strerror(errno));
		evbuffer_free(b);
		return -1;
	}
	eightbit = o->body == ENV_BODY_8BITMIME || o->smtputf8;
	/* At most 70 characters (RFC 2046 5.1.1); the fresh id makes it unique. */
	snprintf(boundary, sizeof(boundary), "=_%s.report", n->id);
	rfc5322_date(n->now, date, sizeof(date));
	/* Its own trace field, as a message made here (RFC 5321 4.4). */
	evbuffer_add_printf(b, "Received: by %s (Mailroot) id %s;\r\n\t%s\r\n",
	    n->hostname, n->id, date);
	evbuffer_add_printf(b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
	    n->hostname);
	evbuffer_add_printf(b, "To: <%s>\r\n", o->sender);
	evbuffer_add_printf(b, "Subject: %s\r\n", n->kind == NDR_FAILED ?
	    "Undelivered Mail Returned to Sender" :
	    "Delayed Mail (still being retried)");
	evbuffer_add_printf(b, "Date: %s\r\n", date);
	evbuffer_add_printf(b, "Message-ID: <%s.report@%s>\r\n", n->id, n->hostname);
	evbuffer_add_printf(b, "MIME-Version: 1.0\r\n");
	evbuffer_add_printf(b, "Auto-Submitted: auto-replied\r\n");
	evbuffer_add_printf(b, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n", boundary);
	if (eightbit)
		evbuffer_add_printf(b, "Content-Transfer-Encoding: 8bit\r\n");
	evbuffer_add_printf(b, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");

	evbuffer_add_printf(b, "--%s\r\nContent-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n\r\n", boundary);
	add_text(b, n, full);
	evbuffer_add_printf(b, "\r\n--%s\r\nContent-Description: Delivery report\r\n"
	    "Content-Type: message/%sdelivery-status\r\n\r\n", boundary,
	    o->smtputf8 ? "global-" : "");
	add_status(b, n);
	evbuffer_add_printf(b, "\r\n--%s\r\n", boundary);
	if (full)
		evbuffer_add_printf(b, "Content-Description: Undelivered Message\r\n"
		    "Content-Type: message/%s\r\n%s\r\n", o->smtputf8 ? "global" : "rfc822",
		    eightbit ? "Content-Transfer-Encoding: 8bit\r\n" : "");
	else
		evbuffer_add_printf(b, "Content-Description: %s\r\n"
		    "Content-Type: text/%s\r\n%s\r\n",
		    n->kind == NDR_FAILED ? "Undelivered Message Headers" :
		    "Message Headers", o->smtputf8 ? "global-headers" : "rfc822-headers",
		    eightbit ? "Content-Transfer-Encoding: 8bit\r\n" : "");
	if (flush(b, outfd) == -1 ||
	    copy_range(n->content_fd, outfd, full ? (uint64_t)st.st_size : (uint64_t)hlen) == -1)
		goto fail;
	/* The boundary must start a line of its own. */
	evbuffer_add_printf(b, "\r\n--%s--\r\n", boundary);
	if (flush(b, outfd) == -1)
		goto fail;
	evbuffer_free(b);
	return 0;
fail:
	snprintf(why, whysz, "writing the report: %s", strerror(errno));
	evbuffer_free(b);
	return -1;
}
