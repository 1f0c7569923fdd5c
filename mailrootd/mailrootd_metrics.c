/*
 * mailrootd_metrics.c - the Prometheus endpoint, GET /metrics (mailrootd,
 * root; FEATURES O3).
 *
 * `metrics listen ADDRESS port N` makes mailrootd bind one TCP socket at
 * start (as it binds the SMTP listeners) and answer GET /metrics with the
 * counters of mailrootd_stats.c in the Prometheus text exposition format
 * (version 0.0.4).  It runs here, not in a daemon, because the figures are
 * gathered here: serving them from smtpd would take one more round trip
 * and put smtpd between two of mailrootd's answers.
 *
 * Trust boundary: whoever reaches the address is a client, and this is
 * root's process.  So the reader is strict and bounded: at most
 * METRICS_CLIENTS_MAX clients at once (more are closed at once), at most
 * METRICS_REQUEST_MAX octets up to the empty line ending the header, and
 * METRICS_DEADLINE_SEC for the whole exchange.  Only the request line is
 * parsed ("GET /metrics HTTP/1.x"); header fields are never looked at.
 * Anything else gets 400, 404 or 405; every answer ends the connection.
 * Nothing the client sent is logged.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "mailrootd.h"
#include "stats.h"

#define METRICS_CLIENTS_MAX	8
#define METRICS_REQUEST_MAX	4096
#define METRICS_DEADLINE_SEC	5
/* looked at of the input: enough to find the empty line within the bound */
#define METRICS_PEEK_MAX	(METRICS_REQUEST_MAX + 4)

struct mclient {
	struct bufferevent	*bev;	/* NULL: slot free */
	struct event		*deadline;
	int			 answered;	/* a reply is queued: no more input */
	int			 waiting;	/* for the counters */
};

static struct mclient mclients[METRICS_CLIENTS_MAX];
static int metrics_fd = -1;
static struct event *metrics_ev;

static void
client_free(struct mclient *c)
{
	if (c->waiting)
		stats_cancel(c);
	if (c->deadline)
		event_free(c->deadline);
	if (c->bev)
		bufferevent_free(c->bev);
	memset(c, 0, sizeof(*c));
}

/* Queue a whole answer; the connection ends once it is written. */
static void
client_reply(struct mclient *c, const char *status, const char *extra,
    const char *type, struct evbuffer *body)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	c->answered = 1;
	bufferevent_disable(c->bev, EV_READ);
	evbuffer_add_printf(out, "HTTP/1.1 %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\n%sConnection: close\r\n\r\n", status, type,
	    evbuffer_get_length(body), extra);
	evbuffer_add_buffer(out, body);
	bufferevent_enable(c->bev, EV_WRITE);
}

static void
client_error(struct mclient *c, const char *status, const char *extra)
{
	struct evbuffer *body;

	if ((body = evbuffer_new()) == NULL) {
		client_free(c);
		return;
	}
	evbuffer_add_printf(body, "%s\n", status + 4);
	client_reply(c, status, extra, "text/plain; charset=utf-8", body);
	evbuffer_free(body);
}

/* "mailroot_" and the name with '.' as '_'; a counter ends in "_total". */
static void
metric_name(char *buf, size_t bufsz, const char *name, uint32_t kind)
{
	size_t i, len;

	snprintf(buf, bufsz, "mailroot_%s", name);
	for (i = 0; buf[i]; i++)
		if (buf[i] == '.')
			buf[i] = '_';
	len = strlen(buf);
	if (kind == STAT_COUNTER && (len < 6 || strcmp(buf + len - 6, "_total") != 0))
		strlcat(buf, "_total", bufsz);
}

static void
metrics_answer(const struct stat_set *set, void *arg, uint32_t cookie)
{
	struct mclient *c = arg;
	struct evbuffer *body;
	char name[sizeof(set->v[0].name) + 16];
	const char *h;
	size_t i;

	(void)cookie;
	c->waiting = 0;
	if ((body = evbuffer_new()) == NULL) {
		client_free(c);
		return;
	}
	for (i = 0; i < set->n; i++) {
		metric_name(name, sizeof(name), set->v[i].name, set->v[i].kind);
		/* HELP text: a backslash is escaped (stats_copy allows no newline) */
		evbuffer_add_printf(body, "# HELP %s ", name);
		for (h = set->v[i].help; *h; h++)
			evbuffer_add(body, *h == '\\' ? "\\\\" : h, *h == '\\' ? 2 : 1);
		evbuffer_add_printf(body, "\n# TYPE %s %s\n%s %llu\n", name,
		    set->v[i].kind == STAT_GAUGE ? "gauge" : "counter", name,
		    (unsigned long long)set->v[i].value);
	}
	client_reply(c, "200 OK", "", "text/plain; version=0.0.4; charset=utf-8", body);
	evbuffer_free(body);
}

/*
 * The request line: "METHOD SP TARGET SP HTTP/1.x"; 200 (counters asked
 * for), or the error status to answer.
 */
static int
request_line(const char *line)
{
	const char *sp1, *sp2;
	size_t mlen, i;

	if ((sp1 = strchr(line, ' ')) == NULL || (sp2 = strchr(sp1 + 1, ' ')) == NULL ||
	    sp1 == line || sp2 == sp1 + 1 ||
	    (strcmp(sp2 + 1, "HTTP/1.0") != 0 && strcmp(sp2 + 1, "HTTP/1.1") != 0))
		return 400;
	mlen = (size_t)(sp1 - line);
	for (i = 0; i < mlen; i++)
		if (line[i] < 'A' || line[i] > 'Z')
			return 400;
	if (mlen != 3 || strncmp(line, "GET", 3) != 0)
		return 405;
	if ((size_t)(sp2 - sp1 - 1) != strlen("/metrics") ||
	    strncmp(sp1 + 1, "/metrics", strlen("/metrics")) != 0)
		return 404;
	return 200;
}

/*
 * What a client's request asks, from the first `len` octets (at most
 * METRICS_PEEK_MAX) of the `total` it has sent: 0 while the empty line
 * ending the header has not come (and the bound is not passed), else the
 * status to answer: 200 (the counters), 400, 404 or 405.
 */
int
metrics_request_parse(const char *in, size_t len, size_t total)
{
	char line[METRICS_REQUEST_MAX + 1];
	const char *end;
	size_t n;
	char *eol;

	/* The request ends with an empty line (CRLF CRLF; bare LF tolerated). */
	if ((end = memmem(in, len, "\r\n\r\n", 4)) == NULL)
		end = memmem(in, len, "\n\n", 2);
	if (end == NULL || (size_t)(end - in) > METRICS_REQUEST_MAX)
		return total > METRICS_REQUEST_MAX ? 400 : 0;
	/* up to and with the line end that begins the empty line */
	n = (size_t)(end - in) + 2;
	if (n > sizeof(line) - 1)
		n = sizeof(line) - 1;
	memcpy(line, in, n);
	line[n] = '\0';
	if ((eol = strchr(line, '\n')) == NULL)
		return 400;
	*eol = '\0';
	if (eol > line && eol[-1] == '\r')
		eol[-1] = '\0';
	/* No control characters in the request line. */
	for (eol = line; *eol; eol++)
		if ((unsigned char)*eol < 0x20 || *eol == 0x7f)
			return 400;
	return request_line(line);
}

static void
client_read(struct bufferevent *bev, void *arg)
{
	struct mclient *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char buf[METRICS_PEEK_MAX];
	size_t len;
	ev_ssize_t n;

	if (c->answered || c->waiting) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	len = evbuffer_get_length(in);
	if ((n = evbuffer_copyout(in, buf, sizeof(buf))) < 0)
		n = 0;
	switch (metrics_request_parse(buf, (size_t)n, len)) {
	case 0:
		return;
	case 200:
		evbuffer_drain(in, len);
		if (stats_request(metrics_answer, c, 0) == -1) {
			client_error(c, "503 Service Unavailable", "");
			return;
		}
		c->waiting = 1;
		bufferevent_disable(c->bev, EV_READ);
		return;
	case 404:
		evbuffer_drain(in, len);
		client_error(c, "404 Not Found", "");
		return;
	case 405:
		evbuffer_drain(in, len);
		client_error(c, "405 Method Not Allowed", "Allow: GET\r\n");
		return;
	default:
		evbuffer_drain(in, len);
		client_error(c, "400 Bad Request", "");
		return;
	}
}

static void
client_write(struct bufferevent *bev, void *arg)
{
	struct mclient *c = arg;

	if (c->answered && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		client_free(c);
}

static void
client_event(struct bufferevent *bev, short what, void *arg)
{
	struct mclient *c = arg;

	(void)bev;
	(void)what;
	/* EOF, error: nobody to answer (a half-closed client too: keep it simple). */
	client_free(c);
}

static void
client_deadline(evutil_socket_t fd, short ev, void *arg)
{
	struct mclient *c = arg;

	(void)fd;
	(void)ev;
	log_debug("metrics: a client took too long");
	client_free(c);
}

static void
metrics_accept(evutil_socket_t fd, short ev, void *arg)
{
	struct timeval tv = { METRICS_DEADLINE_SEC, 0 };
	struct mclient *c = NULL;
	int cfd, i;

	(void)ev;
	(void)arg;
	if ((cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) == -1) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("metrics accept");
		return;
	}
	for (i = 0; i < METRICS_CLIENTS_MAX; i++)
		if (mclients[i].bev == NULL) {
			c = &mclients[i];
			break;
		}
	if (c == NULL) {
		log_debug("metrics: too many clients");
		close(cfd);
		return;
	}
	if ((c->bev = bufferevent_socket_new(mrd->base, cfd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(cfd);
		return;
	}
	if ((c->deadline = evtimer_new(mrd->base, client_deadline, c)) == NULL) {
		client_free(c);
		return;
	}
	evtimer_add(c->deadline, &tv);
	bufferevent_setcb(c->bev, client_read, client_write, client_event, c);
	/* Never more than the request bound (and a little) in memory. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, METRICS_REQUEST_MAX + 1);
	bufferevent_enable(c->bev, EV_READ);
}

/* Bind `metrics listen` (before privileges matter: at start); none set: 0. */
int
metrics_open(const struct config *c, char *err, size_t errsz)
{
	if (c->metrics_addr[0] == '\0')
		return 0;
	metrics_fd = listen_bind(c->metrics_addr, c->metrics_port, c->metrics_line, 16,
	    err, errsz);
	return metrics_fd == -1 ? -1 : 0;
}

/* Serve the socket metrics_open() bound, if any. */
void
metrics_start(void)
{
	if (metrics_fd == -1)
		return;
	metrics_ev = event_new(mrd->base, metrics_fd, EV_READ | EV_PERSIST,
	    metrics_accept, NULL);
	if (metrics_ev == NULL || event_add(metrics_ev, NULL) == -1)
		fatalx("metrics: cannot serve the socket");
	log_info("metrics on %s port %u", mrd->conf->metrics_addr,
	    (unsigned)mrd->conf->metrics_port);
}

void
metrics_close(void)
{
	int i;

	for (i = 0; i < METRICS_CLIENTS_MAX; i++)
		if (mclients[i].bev)
			client_free(&mclients[i]);
	if (metrics_ev) {
		event_free(metrics_ev);
		metrics_ev = NULL;
	}
	if (metrics_fd != -1) {
		close(metrics_fd);
		metrics_fd = -1;
	}
}
