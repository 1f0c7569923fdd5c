/*
 * queued.h - the queue manager's shared state.
 */
#ifndef QUEUED_H
#define QUEUED_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "envelope.h"
#include "proto.h"
#include "queueid.h"

struct ipc;
struct ipc_msg;

/* A producer link (smtpd or pickupd); replaced when that daemon restarts. */
struct producer {
	enum proc_id	 id;
	struct ipc	*ipc;
	uint32_t	 gen;		/* bumped on each new link */
	unsigned	 nopen;		/* messages opened and not committed */
};

enum qmsg_state { QMSG_OPEN, QMSG_COMMITTING };

/* A message a producer is writing, or that waits in the commit batch. */
struct qmsg {
	TAILQ_ENTRY(qmsg) entry;
	char		 id[QUEUEID_LEN + 1];
	int		 fd;		/* Queue/tmp/<id>.eml, read-write */
	struct producer	*owner;
	uint32_t	 owner_gen;
	uint32_t	 reqid;		/* the commit request, for the reply */
	enum qmsg_state	 state;
	int		 dropped;	/* local recipients were delivered in this batch */
	int		 envfd;		/* Queue/tmp/<id>.env being committed, or -1 */
	int		 dropfd;	/* Drop/.<id>.tmp of a direct commit, or -1 */
	struct envelope	 env;
};
TAILQ_HEAD(qmsg_list, qmsg);

/* Directory descriptors, opened once the config names the Mailroot. */
struct queued_dirs {
	int	queue, tmp, drop, badmail;
};

extern struct queued_dirs qdirs;

/* queued.c */
void	producer_reply_failed(struct producer *, uint32_t reqid, int temporary,
	    const char *reason);
/* Tell smtpd whether Drop/ is over its quota (PRODUCER_DROP_STATE). */
void	producer_drop_state(int over);

/* queued_quota.c: the Drop quota */
struct config;
void	quota_configure(const struct config *);
void	quota_add(uint64_t size);
int	quota_over(void);

/* queued_store.c: the one way in, group commit, queue runs */
int	store_init(char *why, size_t whysz);
void	store_open(struct producer *, uint32_t reqid);
void	store_commit(struct producer *, struct ipc_msg *);
void	store_abort(struct producer *, struct ipc_msg *);
void	store_producer_gone(struct producer *);
void	store_queue_run(void);

/* queued_drop.c: local delivery */
/* Write Drop/<id>.eml for these recipients (IIS format), fsync'd; -1 with why. */
int	drop_deliver(const char *id, const char *sender, const char *const *rcpts,
	    size_t nrcpts, int content_fd, char *why, size_t whysz);
int	drop_write(const char *id, const char *sender, const char *const *rcpts,
	    size_t nrcpts, int content_fd, int *fdp, char *why, size_t whysz);
int	drop_commit(const char *id, int fd, char *why, size_t whysz);
/* Copy at most `limit` octets of `in` (from offset 0) to the end of `out`. */
int	copy_content(int in, int out, uint64_t limit, int *truncated);
int	drop_sync(void);
void	drop_cleanup(void);

/* queued_badmail.c */
int	badmail_write(const char *id, int content_fd, const char *reason,
	    char *why, size_t whysz);
void	badmail_from_producer(struct producer *, struct ipc_msg *);

#endif
