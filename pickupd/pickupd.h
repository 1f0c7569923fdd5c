/*
 * pickupd.h - the Pickup folder scanner's shared declarations.
 */
#ifndef PICKUPD_H
#define PICKUPD_H

#include <stdint.h>

struct config;
struct ipc_msg;

/* pickupd_scan.c */
int	scan_init(char *why, size_t whysz);
void	scan_start(void);
void	scan_reconfigure(const struct config *);
/* Answers from queued, by job id. */
void	scan_opened(uint32_t job, int fd, const char *qid);
void	scan_committed(uint32_t job);
void	scan_badmail_done(uint32_t job, const char *badmail_id);
void	scan_failed(uint32_t job, int temporary, const char *reason);
/* The queue link went away: every job in flight is retried later. */
void	scan_queue_lost(void);

/* pickupd.c */
int	pickup_queue_send_open(uint32_t job, const char *sender, char *const *rcpts,
	    size_t nrcpts);
int	pickup_queue_send_commit(uint32_t job, const char *qid, const char *sender,
	    char *const *rcpts, size_t nrcpts);
void	pickup_queue_send_abort(const char *qid);
int	pickup_queue_send_badmail(uint32_t job, int fd, const char *name,
	    const char *reason);

#endif
