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

/* Told whether an internal message (owner NULL) was committed. */
typedef void (*qmsg_done_fn)(void *arg, int committed);

/*
 * A message a producer is writing, or that waits in the commit batch.  The
 * owner is NULL for a message queued itself makes (an NDR): `done` is then
 * called instead of a producer being answered.
 */
struct qmsg {
	TAILQ_ENTRY(qmsg) entry;
	char		 id[QUEUEID_LEN + 1];
	int		 fd;		/* Queue/tmp/<id>.eml, read-write */
	struct producer	*owner;		/* NULL: made by queued */
	qmsg_done_fn	 done;
	void		*done_arg;
	uint32_t	 owner_gen;
	uint32_t	 reqid;		/* the commit request, for the reply */
	enum qmsg_state	 state;
	int		 dropped;	/* local recipients were delivered in this batch */
	int		 envfd;		/* Queue/tmp/<id>.env being committed, or -1 */
	int		 dropfd;	/* Drop/.<id>.tmp of a direct commit, or -1 */
	int		 direct;	/* fd is Drop/.<id>.tmp, written from the OPEN */
	size_t		 hdrlen;	/* direct: octets of Drop header before the content */
	uint64_t	 size;		/* the content's, taken when the batch is flushed */
	struct envelope	 env;
	struct envelope	 announced;	/* direct: what OPEN said the commit will say */
};
TAILQ_HEAD(qmsg_list, qmsg);

/* Directory descriptors, opened once the config names the Mailroot. */
struct queued_dirs {
	int	queue, tmp, drop, badmail;
};

extern struct queued_dirs qdirs;

/* What queued has seen since it started (FEATURES O3; smtpctl show stats). */
struct queued_stats {
	uint64_t	in_smtpd;	/* messages committed by smtpd */
	uint64_t	in_pickupd;	/* by pickupd */
	uint64_t	local;		/* recipients delivered into Drop/ */
	uint64_t	remote;		/* recipients a remote server took */
	uint64_t	deferred;	/* recipient attempts that failed for now */
	uint64_t	ndr;		/* failure reports (NDRs) made */
	uint64_t	delay;		/* delay notices made */
	uint64_t	expired;	/* recipients past their expiration */
	uint64_t	badmail;	/* entries written to Badmail/ */
};
extern struct queued_stats queued_stats;

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

/* queued_store.c: the one way in, group commit, the files of Queue/ */
int	store_init(char *why, size_t whysz);
/* Make a directory's renames durable: fsync(2) it, or syncfs(2) (commit-sync). */
int	store_sync_dir(int dirfd);
void	store_open(struct producer *, struct ipc_msg *);
void	store_commit(struct producer *, struct ipc_msg *);
void	store_abort(struct producer *, struct ipc_msg *);
void	store_producer_gone(struct producer *);
/* At start: rebuild the schedule from Queue/, clean up leftovers. */
void	store_queue_run(void);
/* A new message of queued's own in Queue/tmp/ (fd read-write); NULL on error. */
struct qmsg *store_internal_open(void);
/* Commit it (q->env filled) in the next batch; done() says how it went. */
void	store_internal_commit(struct qmsg *, qmsg_done_fn, void *arg);
/* Throw away a message of queued's own that was not committed. */
void	store_internal_abort(struct qmsg *);
/* Load a committed message: 0; -1 gone; -2 corrupt (quarantine it). */
int	store_load(const char *id, struct envelope *, int *fdp);
/* Open Queue/<id>.eml read-only: 0; -2 (logged) when it is missing. */
int	store_open_content(const char *id, int *fdp);
/* Load only the envelope of a committed message (same results). */
int	store_load_envelope(const char *id, struct envelope *);
/* Move a message whose envelope is unreadable to Badmail/. */
void	store_quarantine(const char *id);
/*
 * Deliver the pending local recipients into Drop/ and make Drop/ durable;
 * returns how many were delivered (states updated), *deferred set when some
 * stay pending.
 */
size_t	store_deliver_local(struct envelope *, int fd, int *deferred);
/* Record a message's envelope durably (tmp, fsync, rename); -1 on error. */
int	store_save(const struct envelope *);
/* Remove a finished message from Queue/. */
void	store_remove(const char *id);

/* queued_sched.c: the schedule of the messages in Queue/ */
struct ipc;
void	sched_init(void);
/* A message is in Queue/ with pending recipients (committed, or found at start). */
void	sched_add(const struct envelope *);
/* The same for a message just committed: its envelope is moved in (m emptied). */
void	sched_add_committed(struct envelope *m);
/* The link to deliverd is up (ipc) or gone (NULL). */
void	sched_deliverd(struct ipc *);
/* A QUEUE_DELIVERY_RESULT from deliverd; -1 when it breaks the protocol. */
int	sched_result(struct ipc_msg *);
/* ETRN: release `domain` (and its subdomains with `subdomains`); messages. */
uint32_t sched_etrn(const char *domain, int subdomains, const char *who);
/* Drop/ is under its quota again: local recipients waiting are due now. */
void	sched_local_resume(void);
/* Messages in Queue/ with pending local, and remote, recipients. */
void	sched_queue_length(uint64_t *local, uint64_t *remote);

/* The operator's requests (queued_ops.c).  Messages in the schedule: */
size_t	sched_count(void);
void	sched_foreach(void (*fn)(const char *id, int held, int running, void *),
	    void *arg);
int	sched_known(const char *id);
/* Remove from Queue/ (a run on ends void): 1, or 0 when not queued. */
int	sched_delete(const char *id);
uint32_t sched_delete_all(void);
/* Due now, held domains released for the run: 1; 0 not queued; -1 on hold. */
int	sched_retry(const char *id);
uint32_t sched_retry_all(void);
/* Operator hold on or off, recorded: 1; 0 already so; -1 not recorded; -2 not queued. */
int	sched_hold(const char *id, int on);
uint32_t sched_hold_all(int on, uint32_t *failed);

/* queued_ops.c: answer DAEMON_QUEUE */
void	ops_request(struct ipc *parent, struct ipc_msg *);


/* queued_drop.c: local delivery */
/* Write Drop/<id>.eml for these recipients (IIS format), fsync'd; -1 with why. */
int	drop_deliver(const char *id, const char *sender, const char *const *rcpts,
	    size_t nrcpts, int content_fd, char *why, size_t whysz);
int	drop_write(const char *id, const char *sender, const char *const *rcpts,
	    size_t nrcpts, int content_fd, int fresh, int *fdp, char *why, size_t whysz);
/*
 * Create Drop/.<id>.tmp holding only the header, for a producer to write the
 * content after it (a message announced as all local): 0, or -1 (errno).
 */
int	drop_open(const char *id, const char *sender, const char *const *rcpts,
	    size_t nrcpts, int *fdp, size_t *hdrlen);
int	drop_commit(const char *id, int fd, int synced, char *why, size_t whysz);
/* Copy at most `limit` octets of `in` (from offset 0) to the end of `out`. */
int	copy_content(int in, int out, uint64_t limit, int *truncated);
int	drop_sync(void);
void	drop_cleanup(void);

/* queued_badmail.c */
/* Write Badmail/<id>.BAD (the content) and <id>.BDR (why; may be several lines). */
int	badmail_write(const char *id, int content_fd, const char *reason,
	    char *why, size_t whysz);
void	badmail_from_producer(struct producer *, struct ipc_msg *);

#endif
