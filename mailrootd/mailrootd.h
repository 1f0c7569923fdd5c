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

/* mailrootd_sessions.c: the sessions table, from smtpd to smtpctl */
struct ipc_msg;
int	sessions_request(int client, uint32_t client_id, char *why, size_t whysz);
void	sessions_answer(struct ipc_msg *);
void	sessions_smtpd_gone(void);
void	sessions_client_gone(int client);

/* mailrootd_queue.c: the queue requests of operators, to queued and back */
int	queue_request(int client, uint32_t client_id, uint32_t op, const char *arg,
	    char *why, size_t whysz);
void	queue_answer(struct ipc_msg *);
void	queue_queued_gone(void);
void	queue_client_gone(int client);

#endif
