/*
 * mailrootd.h - the supervisor's shared state.
 */
#ifndef MAILROOTD_H
#define MAILROOTD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mailroot.h"
#include "proto.h"

struct config;
struct event;
struct event_base;
struct ipc;

/* One supervised daemon. */
struct proc {
	enum proc_id	 id;
	pid_t		 pid;		/* 0 when not running */
	struct ipc	*ipc;		/* link to it */
	int		 ready;		/* said SUPERVISOR_READY since its start */
	unsigned	 restarts;
	uint64_t	 started_ms;
	uint64_t	 backoff_ms;	/* wait before the next restart */
	struct event	*restart_ev;
};

enum suite_state { SUITE_STARTING, SUITE_RUNNING, SUITE_STOPPING };

struct mailrootd {
	struct event_base	*base;
	struct config		*conf;
	char			 conf_path[4096];
	char			*conf_text;	/* what the daemons are given */
	size_t			 conf_len;
	struct mailroot_ids	 ids;
	int			*listen_fds;
	size_t			 nlisten;
	struct proc		 procs[PROC_MAX];
	enum suite_state	 state;
	int			 paused;
	int			 foreground;
	int			 verbose;
	int			 log_override;	/* smtpctl log: 0, 1, or -1 none */
	int			 ready_fd;	/* tells the starting parent we serve; -1 after */
	int			 control_fd;
};

extern struct mailrootd *mrd;

/* mailrootd.c */
void	mrd_ready_report(const char *error);
void	mrd_stop(void);
int	mrd_reload(char *why, size_t whysz);
void	mrd_stopped_check(void);

/* mailrootd_listen.c: bind every listener of the config; -1 with err. */
int	listen_open(const struct config *, int **fds, size_t *n, char *err, size_t errsz);
/* Bind and listen on one address ("*": all) and port; the fd, or -1 with err. */
int	listen_bind(const char *addr, uint16_t port, int line, int backlog,
	    char *err, size_t errsz);
void	listen_close(int *fds, size_t n);

/* mailrootd_proc.c */
void	proc_init(void);
void	proc_start_all(void);
void	proc_signal_all(int sig);
int	proc_running_count(void);
int	proc_all_ready(void);
void	proc_send_config_all(void);
void	proc_send_pause(int paused);
void	proc_reap(void);

/* mailrootd_auth.c: the AUTH password table and smtpd's checks */
struct ipc_msg;
/* (Re)load the table when a listener offers AUTH; -1 with err keeps the old one. */
int	auth_table_load(const struct config *, char *err, size_t errsz);
void	auth_table_free(void);
/* Answer a SUPERVISOR_AUTH_CHECK of `p` (smtpd only). */
void	auth_check(struct proc *p, struct ipc_msg *);
/*
 * mailrootd_tls.c: read and check the TLS certificate and key of `conf`
 * (none configured: forget any); -1 with err, keeping the previous ones.
 */
int	tls_load(const struct config *, char *err, size_t errsz);
/* Hand the certificate and key to a daemon (smtpd); nothing when none. */
void	tls_send(struct ipc *);
/*
 * Read outbound-tls-ca-file and hand it to deliverd (DAEMON_CA_BUNDLE);
 * when it cannot be read, say so and send nothing (TLS then verifies no peer).
 */
void	ca_send(struct ipc *, const struct config *);

/* mailrootd_w3c.c: the W3C log files (listen ... w3c-log DIRECTORY) */
/* Open today's file of each such listener and hand it to smtpd. */
void	w3c_send(struct ipc *);
/* Arm the timer that hands smtpd the next day's files after UTC midnight. */
void	w3c_timer(void);

/* mailrootd_control.c */
int	control_open(const char *path, char *err, size_t errsz);
/* Look up operators-group and set the socket's mode (start, reload); -1 with err. */
int	control_configure(const struct config *, char *err, size_t errsz);
void	control_close(void);
void	control_notify_stopped(void);
/* Send to control client `slot` (frees the mbuf; dropped if it is gone). */
struct mbuf;
void	control_send(int slot, struct mbuf *);
void	control_fail(int slot, uint32_t id, const char *why);
void	control_ok(int slot, uint32_t id, const char *text);
/* A control request's fields (CTL_HELLO, CTL_QUEUE, CTL_KILL_SESSION, CTL_LOG_LEVEL). */
struct ctl_request {
	uint32_t	 v;	/* HELLO: version; KILL_SESSION: all; LOG_LEVEL: verbose */
	uint32_t	 sid;	/* KILL_SESSION: session id */
	uint32_t	 op;	/* QUEUE: enum queue_op (known) */
	const char	*arg;	/* QUEUE: argument, in the message */
};
struct ipc_msg;
/* Decode and bound-check one control request; -1 with the protocol error in *why. */
int	control_request_decode(struct ipc_msg *, struct ctl_request *, const char **why);

/* mailrootd_sessions.c: the sessions table, from smtpd to smtpctl */
struct ipc_msg;
int	sessions_request(int client, uint32_t client_id, char *why, size_t whysz);
void	sessions_answer(struct ipc_msg *);
void	sessions_smtpd_gone(void);
void	sessions_client_gone(int client);
int	sessions_kill(int client, uint32_t client_id, uint32_t all, uint32_t sid,
	    char *why, size_t whysz);
void	sessions_killed(struct ipc_msg *);
/* smtpctl log verbose|brief: mailrootd and every daemon. */
void	proc_send_log_level(int verbose);

/* mailrootd_stats.c: the counters of the daemons (FEATURES O3) */
#define STATS_SET_MAX	128
struct stat_set {
	size_t		n;
	struct {
		char		name[64];	/* STAT_NAME_MAX + 1 */
		uint32_t	kind;		/* enum stat_kind */
		uint64_t	value;
		char		help[160];	/* STAT_HELP_MAX + 1 */
	} v[STATS_SET_MAX];
};
/* Called once with what the daemons answered (possibly nothing). */
typedef void (*stats_done_fn)(const struct stat_set *, void *arg, uint32_t cookie);
int	stats_request(stats_done_fn, void *arg, uint32_t cookie);
void	stats_answer(struct proc *, struct ipc_msg *);
void	stats_proc_gone(struct proc *);
void	stats_cancel(void *arg);

/* mailrootd_metrics.c: the Prometheus endpoint (metrics listen) */
/* Bind it at start (none configured: 0); -1 with err. */
int	metrics_open(const struct config *, char *err, size_t errsz);
void	metrics_start(void);
void	metrics_close(void);
/*
 * The pure request reader (also fuzz_metrics' entry point): 0 for more
 * input, else the HTTP status to answer (200: the counters).
 */
int	metrics_request_parse(const char *in, size_t len, size_t total);

/* mailrootd_queue.c: the queue requests of operators, to queued and back */
int	queue_request(int client, uint32_t client_id, uint32_t op, const char *arg,
	    char *why, size_t whysz);
void	queue_answer(struct ipc_msg *);
void	queue_queued_gone(void);
void	queue_client_gone(int client);

#endif
