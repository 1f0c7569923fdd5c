/*
 * ipc.h - framed messages with descriptor passing over Unix stream sockets
 * (generic layer: it knows message numbers, not their meaning).
 *
 * A frame is a 16-byte header (type, payload length, request id, flags) and a
 * payload of typed fields written with m_add_* and read with m_get_*.  A frame
 * may carry one descriptor (SCM_RIGHTS).  The reader checks every length
 * before use: a peer that sends a short, long or inconsistent frame gets an
 * error, never a crash, and is dropped by its owner.
 */
#ifndef MR_IPC_H
#define MR_IPC_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

#define IPC_HDR_SIZE		16
#define IPC_MAX_PAYLOAD		(1024 * 1024)
#define IPC_MAX_FDS		16	/* received but not yet claimed */
#define IPC_FLAG_FD		0x1

/* A received message; valid during the handler call only. */
struct ipc_msg {
	uint32_t	 type;
	uint32_t	 id;		/* request id, echoed in replies */
	int		 fd;		/* -1, or a descriptor the handler now owns */
	const uint8_t	*data;
	size_t		 len;
	size_t		 pos;		/* decoding cursor */
	int		 error;		/* a m_get_* ran past the end or found bad data */
};

/* An outgoing message under construction. */
struct mbuf {
	uint8_t		*buf;		/* header + payload */
	size_t		 len, cap;
	int		 fd;
	int		 error;		/* allocation failed or payload too long */
};

void	m_init(struct mbuf *, uint32_t type, uint32_t id);
void	m_add_u32(struct mbuf *, uint32_t);
void	m_add_u64(struct mbuf *, uint64_t);
/* A C string, sent with its NUL (NULL is sent as ""). */
void	m_add_str(struct mbuf *, const char *);
void	m_add_data(struct mbuf *, const void *, size_t);
/* Attach a descriptor; ownership passes to the message (closed once sent). */
void	m_add_fd(struct mbuf *, int fd);
void	m_free(struct mbuf *);

/* Each returns 0, or -1 and sets msg->error. */
int	m_get_u32(struct ipc_msg *, uint32_t *);
int	m_get_u64(struct ipc_msg *, uint64_t *);
/* A string of at most maxlen bytes, NUL-terminated in the frame (checked). */
int	m_get_str(struct ipc_msg *, const char **, size_t maxlen);
int	m_get_data(struct ipc_msg *, const void **, size_t *);
/* 0 when the payload was read whole and without error. */
int	m_end(struct ipc_msg *);

/*
 * Frame reader: bytes and descriptors in, whole messages out.  Used by the
 * event-driven peer below, by blocking clients, and by the fuzz target.
 */
struct ipc_reader {
	uint8_t		*buf;
	size_t		 len, cap;
	size_t		 consumed;	/* bytes of the last message handed out */
	int		 fds[IPC_MAX_FDS];
	int		 nfds;
};

void	ipc_reader_init(struct ipc_reader *);
void	ipc_reader_clear(struct ipc_reader *);
/* Append received bytes (and fds) as recvmsg(2) delivered them; -1 on overflow. */
int	ipc_reader_feed(struct ipc_reader *, const void *, size_t, const int *fds, int nfds);
/* Read from fd once; >0 bytes, 0 EOF, -1 error (errno; EAGAIN when none). */
ssize_t	ipc_reader_recv(struct ipc_reader *, int fd);
/* 1: a message is in *msg; 0: need more bytes; -1: the peer broke the framing. */
int	ipc_reader_next(struct ipc_reader *, struct ipc_msg *);

/* Blocking send of one message (for clients and start-up); frees the mbuf. */
int	ipc_send_sync(int fd, struct mbuf *);
/* Blocking receive of one message; 1 ok, 0 EOF, -1 error. */
int	ipc_recv_sync(int fd, struct ipc_reader *, struct ipc_msg *);

/* An event-driven peer connection. */
struct ipc;
typedef void (*ipc_handler_fn)(struct ipc *, struct ipc_msg *, void *);
typedef void (*ipc_closed_fn)(struct ipc *, void *);

/*
 * Take ownership of `fd` and dispatch each incoming message to `handler`.
 * `closed` runs once when the peer hangs up or breaks the protocol, or the
 * owner calls ipc_close(); the ipc is freed after it returns.
 */
struct ipc *ipc_new(struct event_base *, int fd, const char *name,
    ipc_handler_fn handler, ipc_closed_fn closed, void *arg);
/* Queue a message; frees the mbuf.  -1 when it could not be queued. */
int	ipc_send(struct ipc *, struct mbuf *);
/* Convenience: a message with no payload. */
int	ipc_send_empty(struct ipc *, uint32_t type, uint32_t id);
/* Drop the peer (from anywhere, handlers included): closed() runs, then free. */
void	ipc_close(struct ipc *);
/* Flush what is queued with blocking writes, then close (for shutdown). */
void	ipc_flush(struct ipc *);
const char *ipc_name(const struct ipc *);
int	ipc_fd(const struct ipc *);

#endif
