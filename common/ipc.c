/*
 * ipc.c - frame codec and event-driven peers (generic layer, every process).
 *
 * Trust boundary: everything ipc_reader_next() hands out has a header whose
 * length was checked against what arrived and against IPC_MAX_PAYLOAD, and a
 * descriptor only when the frame says it carries one and one arrived.  The
 * m_get_* functions check each field against the remaining payload.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>

#include "ipc.h"
#include "log.h"
#include "util.h"

/* ---- encoding ---------------------------------------------------------- */

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static void
m_reserve(struct mbuf *m, size_t more)
{
	uint8_t *nb;
	size_t ncap;

	if (m->error)
		return;
	if (more > IPC_MAX_PAYLOAD || m->len + more > IPC_HDR_SIZE + IPC_MAX_PAYLOAD) {
		m->error = 1;
		return;
	}
	if (m->len + more <= m->cap)
		return;
	ncap = m->cap ? m->cap : 256;
	while (ncap < m->len + more)
		ncap *= 2;
	if ((nb = realloc(m->buf, ncap)) == NULL) {
		m->error = 1;
		return;
	}
	m->buf = nb;
	m->cap = ncap;
}

void
m_init(struct mbuf *m, uint32_t type, uint32_t id)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	m_reserve(m, IPC_HDR_SIZE);
	if (m->error)
		return;
	memset(m->buf, 0, IPC_HDR_SIZE);
	put32(m->buf, type);
	put32(m->buf + 8, id);
	m->len = IPC_HDR_SIZE;
}

void
m_add_u32(struct mbuf *m, uint32_t v)
{
	m_reserve(m, 4);
	if (m->error)
		return;
	put32(m->buf + m->len, v);
	m->len += 4;
}

void
m_add_u64(struct mbuf *m, uint64_t v)
{
	m_add_u32(m, (uint32_t)(v >> 32));
	m_add_u32(m, (uint32_t)v);
}

void
m_add_data(struct mbuf *m, const void *p, size_t len)
{
	if (len > IPC_MAX_PAYLOAD) {
		m->error = 1;
		return;
	}
	m_add_u32(m, (uint32_t)len);
	m_reserve(m, len);
	if (m->error)
		return;
	if (len)
		memcpy(m->buf + m->len, p, len);
	m->len += len;
}

void
m_add_str(struct mbuf *m, const char *s)
{
	if (s == NULL)
		s = "";
	m_add_data(m, s, strlen(s) + 1);
}

void
m_add_fd(struct mbuf *m, int fd)
{
	if (m->fd != -1)
		close(m->fd);
	m->fd = fd;
}

void
m_free(struct mbuf *m)
{
	/* A frame may carry a secret (an AUTH password): scrub it first. */
	if (m->buf)
		explicit_bzero(m->buf, m->len);
	free(m->buf);
	m->buf = NULL;
	if (m->fd != -1)
		close(m->fd);
	m->fd = -1;
}

/* Finish the header: payload length and flags. */
static void
m_seal(struct mbuf *m)
{
	put32(m->buf + 4, (uint32_t)(m->len - IPC_HDR_SIZE));
	put32(m->buf + 12, m->fd != -1 ? IPC_FLAG_FD : 0);
}

/* ---- decoding ---------------------------------------------------------- */

int
m_get_u32(struct ipc_msg *msg, uint32_t *v)
{
	if (msg->error || msg->len - msg->pos < 4) {
		msg->error = 1;
		return -1;
	}
	*v = get32(msg->data + msg->pos);
	msg->pos += 4;
	return 0;
}

int
m_get_u64(struct ipc_msg *msg, uint64_t *v)
{
	uint32_t hi, lo;

	if (m_get_u32(msg, &hi) == -1 || m_get_u32(msg, &lo) == -1)
		return -1;
	*v = (uint64_t)hi << 32 | lo;
	return 0;
}

int
m_get_data(struct ipc_msg *msg, const void **p, size_t *len)
{
	uint32_t n;

	if (m_get_u32(msg, &n) == -1)
		return -1;
	if (msg->len - msg->pos < n) {
		msg->error = 1;
		return -1;
	}
	*p = msg->data + msg->pos;
	*len = n;
	msg->pos += n;
	return 0;
}

int
m_get_str(struct ipc_msg *msg, const char **s, size_t maxlen)
{
	const void *p;
	size_t len;

	/* Wire form: length including the NUL, the bytes, one NUL. */
	if (m_get_data(msg, &p, &len) == -1)
		return -1;
	if (len == 0 || len - 1 > maxlen || ((const char *)p)[len - 1] != '\0' ||
	    memchr(p, '\0', len - 1) != NULL) {
		msg->error = 1;
		return -1;
	}
	*s = p;
	return 0;
}

int
m_end(struct ipc_msg *msg)
{
	if (msg->error || msg->pos != msg->len)
		return -1;
	return 0;
}

/* ---- the frame reader -------------------------------------------------- */

void
ipc_reader_init(struct ipc_reader *r)
{
	memset(r, 0, sizeof(*r));
}

void
ipc_reader_clear(struct ipc_reader *r)
{
	int i;

	for (i = 0; i < r->nfds; i++)
		close(r->fds[i]);
	free(r->buf);
	ipc_reader_init(r);
}

/* Drop the bytes of the message handed out last. */
static void
reader_compact(struct ipc_reader *r)
{
	if (r->consumed == 0)
		return;
	memmove(r->buf, r->buf + r->consumed, r->len - r->consumed);
	r->len -= r->consumed;
	r->consumed = 0;
}

static int
reader_room(struct ipc_reader *r, size_t more)
{
	uint8_t *nb;
	size_t ncap;

	reader_compact(r);
	if (r->len + more <= r->cap)
		return 0;
	if (r->len + more > 2 * (IPC_HDR_SIZE + IPC_MAX_PAYLOAD))
		return -1;
	ncap = r->cap ? r->cap : 4096;
	while (ncap < r->len + more)
		ncap *= 2;
	if ((nb = realloc(r->buf, ncap)) == NULL)
		return -1;
	r->buf = nb;
	r->cap = ncap;
	return 0;
}

int
ipc_reader_feed(struct ipc_reader *r, const void *p, size_t len, const int *fds,
    int nfds)
{
	int i;

	for (i = 0; i < nfds; i++) {
		if (r->nfds == IPC_MAX_FDS) {
			/* A peer flooding descriptors is broken; do not leak them. */
			for (; i < nfds; i++)
				close(fds[i]);
			return -1;
		}
		r->fds[r->nfds++] = fds[i];
	}
	if (len == 0)
		return 0;
	if (reader_room(r, len) == -1)
		return -1;
	memcpy(r->buf + r->len, p, len);
	r->len += len;
	return 0;
}

ssize_t
ipc_reader_recv(struct ipc_reader *r, int fd)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int) * IPC_MAX_FDS)];
	} cmsgbuf;
	struct msghdr mh;
	struct cmsghdr *cm;
	struct iovec iov;
	int fds[IPC_MAX_FDS], nfds = 0;
	ssize_t n;
	size_t i, cnt;

	if (reader_room(r, 65536) == -1) {
		errno = EMSGSIZE;
		return -1;
	}
	memset(&mh, 0, sizeof(mh));
	iov.iov_base = r->buf + r->len;
	iov.iov_len = r->cap - r->len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cmsgbuf.buf;
	mh.msg_controllen = sizeof(cmsgbuf.buf);
	do {
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		cnt = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < cnt && nfds < IPC_MAX_FDS; i++)
			memcpy(&fds[nfds++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
	}
	r->len += (size_t)n;
	if (nfds > 0 && ipc_reader_feed(r, NULL, 0, fds, nfds) == -1) {
		errno = EMSGSIZE;
		return -1;
	}
	if ((mh.msg_flags & MSG_CTRUNC) != 0) {
		errno = EMSGSIZE;
		return -1;
	}
	return n;
}

int
ipc_reader_next(struct ipc_reader *r, struct ipc_msg *msg)
{
	const uint8_t *h;
	uint32_t len, flags;

	reader_compact(r);
	if (r->len < IPC_HDR_SIZE)
		return 0;
	h = r->buf;
	len = get32(h + 4);
	flags = get32(h + 12);
	if (len > IPC_MAX_PAYLOAD || (flags & ~IPC_FLAG_FD) != 0)
		return -1;
	if (r->len - IPC_HDR_SIZE < len)
		return 0;
	memset(msg, 0, sizeof(*msg));
	msg->type = get32(h);
	msg->id = get32(h + 8);
	msg->data = h + IPC_HDR_SIZE;
	msg->len = len;
	msg->fd = -1;
	if (flags & IPC_FLAG_FD) {
		if (r->nfds == 0)
			return -1;
		msg->fd = r->fds[0];
		memmove(r->fds, r->fds + 1, sizeof(int) * (size_t)(r->nfds - 1));
		r->nfds--;
	}
	r->consumed = IPC_HDR_SIZE + len;
	return 1;
}

/* ---- blocking send / receive ------------------------------------------- */

/* sendmsg the bytes [off, len) of m, with its fd when off == 0. */
static ssize_t
send_part(int fd, struct mbuf *m, size_t off)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} cmsgbuf;
	struct msghdr mh;
	struct cmsghdr *cm;
	struct iovec iov;
	ssize_t n;

	memset(&mh, 0, sizeof(mh));
	iov.iov_base = m->buf + off;
	iov.iov_len = m->len - off;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (off == 0 && m->fd != -1) {
		memset(&cmsgbuf, 0, sizeof(cmsgbuf));
		mh.msg_control = cmsgbuf.buf;
		mh.msg_controllen = sizeof(cmsgbuf.buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		memcpy(CMSG_DATA(cm), &m->fd, sizeof(int));
	}
	do {
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
	} while (n == -1 && errno == EINTR);
	if (n > 0 && off == 0 && m->fd != -1) {
		close(m->fd);
		m->fd = -1;
	}
	return n;
}

int
ipc_send_sync(int fd, struct mbuf *m)
{
	size_t off = 0;
	ssize_t n;
	int ret = -1;

	if (m->error)
		goto out;
	m_seal(m);
	while (off < m->len) {
		n = send_part(fd, m, off);
		if (n == -1)
			goto out;
		off += (size_t)n;
	}
	ret = 0;
out:
	m_free(m);
	return ret;
}

int
ipc_recv_sync(int fd, struct ipc_reader *r, struct ipc_msg *msg)
{
	ssize_t n;
	int got;

	for (;;) {
		got = ipc_reader_next(r, msg);
		if (got != 0)
			return got;
		n = ipc_reader_recv(r, fd);
		if (n == 0)
			return 0;
		if (n == -1)
			return -1;
	}
}

/* ---- event-driven peers ------------------------------------------------- */

struct outmsg {
	struct outmsg	*next;
	struct mbuf	 m;
	size_t		 off;
};

struct ipc {
	int		 fd;
	char		 name[32];
	struct event	*rev, *wev;
	struct ipc_reader r;
	struct outmsg	*out_head, *out_tail;
	size_t		 out_bytes;
	ipc_handler_fn	 handler;
	ipc_closed_fn	 closed;
	void		*arg;
	int		 in_dispatch;
	int		 dead;
};

static void ipc_read_cb(evutil_socket_t, short, void *);
static void ipc_write_cb(evutil_socket_t, short, void *);

struct ipc *
ipc_new(struct event_base *base, int fd, const char *name, ipc_handler_fn handler,
    ipc_closed_fn closed, void *arg)
{
	struct ipc *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->fd = fd;
	strlcpy(p->name, name, sizeof(p->name));
	p->handler = handler;
	p->closed = closed;
	p->arg = arg;
	ipc_reader_init(&p->r);
	if (set_nonblock(fd) == -1) {
		free(p);
		return NULL;
	}
	p->rev = event_new(base, fd, EV_READ | EV_PERSIST, ipc_read_cb, p);
	p->wev = event_new(base, fd, EV_WRITE, ipc_write_cb, p);
	if (p->rev == NULL || p->wev == NULL || event_add(p->rev, NULL) == -1) {
		if (p->rev)
			event_free(p->rev);
		if (p->wev)
			event_free(p->wev);
		free(p);
		return NULL;
	}
	return p;
}

static void
ipc_destroy(struct ipc *p)
{
	struct outmsg *o;

	event_free(p->rev);
	event_free(p->wev);
	while ((o = p->out_head) != NULL) {
		p->out_head = o->next;
		m_free(&o->m);
		free(o);
	}
	ipc_reader_clear(&p->r);
	close(p->fd);
	free(p);
}

/* Run the owner's closed() once and free the peer, unless a dispatch is on. */
static void
ipc_finish(struct ipc *p)
{
	if (p->in_dispatch)
		return;
	if (p->closed)
		p->closed(p, p->arg);
	ipc_destroy(p);
}

void
ipc_close(struct ipc *p)
{
	if (p->dead)
		return;
	p->dead = 1;
	event_del(p->rev);
	event_del(p->wev);
	ipc_finish(p);
}

static void
ipc_read_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct ipc *p = arg;
	struct ipc_msg msg;
	ssize_t n;
	int got, rounds;

	(void)ev;
	for (rounds = 0; rounds < 16; rounds++) {
		n = ipc_reader_recv(&p->r, fd);
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n == -1) {
			log_warn("ipc %s: receive", p->name);
			ipc_close(p);
			return;
		}
		if (n == 0) {
			log_debug("ipc %s: peer closed", p->name);
			ipc_close(p);
			return;
		}
		p->in_dispatch = 1;
		while (!p->dead && (got = ipc_reader_next(&p->r, &msg)) == 1) {
			p->handler(p, &msg, p->arg);
			if (msg.fd != -1) {
				/* The handler did not take it: do not leak it. */
				close(msg.fd);
			}
		}
		p->in_dispatch = 0;
		if (p->dead) {
			ipc_finish(p);
			return;
		}
		if (got == -1) {
			log_warnx("ipc %s: malformed frame, dropping peer", p->name);
			ipc_close(p);
			return;
		}
	}
}

/* Write queued frames; a frame with a descriptor starts its own sendmsg. */
static int
ipc_write_some(struct ipc *p)
{
	struct outmsg *o;
	ssize_t n;

	while ((o = p->out_head) != NULL) {
		n = send_part(p->fd, &o->m, o->off);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		o->off += (size_t)n;
		p->out_bytes -= (size_t)n;
		if (o->off < o->m.len)
			return 0;
		p->out_head = o->next;
		if (p->out_head == NULL)
			p->out_tail = NULL;
		m_free(&o->m);
		free(o);
	}
	return 0;
}

static void
ipc_write_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct ipc *p = arg;

	(void)fd;
	(void)ev;
	if (ipc_write_some(p) == -1) {
		log_warn("ipc %s: send", p->name);
		ipc_close(p);
		return;
	}
	if (p->out_head != NULL)
		event_add(p->wev, NULL);
}

int
ipc_send(struct ipc *p, struct mbuf *m)
{
	struct outmsg *o;

	if (p->dead || m->error || (o = calloc(1, sizeof(*o))) == NULL) {
		m_free(m);
		return -1;
	}
	m_seal(m);
	o->m = *m;
	m->buf = NULL;
	m->fd = -1;
	p->out_bytes += o->m.len;
	if (p->out_tail)
		p->out_tail->next = o;
	else
		p->out_head = o;
	p->out_tail = o;
	/*
	 * Try at once: most frames go out without waiting for the loop.  A
	 * failure is left to the write event, so that the peer is never torn
	 * down under a caller that is still using it.
	 */
	if (ipc_write_some(p) == -1 || p->out_head != NULL)
		event_add(p->wev, NULL);
	return 0;
}

int
ipc_send_empty(struct ipc *p, uint32_t type, uint32_t id)
{
	struct mbuf m;

	m_init(&m, type, id);
	return ipc_send(p, &m);
}

void
ipc_flush(struct ipc *p)
{
	int fl;

	fl = fcntl(p->fd, F_GETFL);
	if (fl != -1)
		(void)fcntl(p->fd, F_SETFL, fl & ~O_NONBLOCK);
	(void)ipc_write_some(p);
}

const char *
ipc_name(const struct ipc *p)
{
	return p->name;
}

int
ipc_fd(const struct ipc *p)
{
	return p->fd;
}
