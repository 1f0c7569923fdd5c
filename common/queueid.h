/*
 * queueid.h - queue ids (mail layer): 20 lowercase hex digits, the first 16
 * the arrival time in microseconds, the last 4 random; so ids sort by
 * arrival as strings and stay unique across restarts.  Only queued makes them.
 */
#ifndef MR_QUEUEID_H
#define MR_QUEUEID_H

#define QUEUEID_LEN	20

/* Write a new id into buf (QUEUEID_LEN + 1 bytes). Strictly increasing in one process. */
void	queueid_new(char *buf);
/* 1 when s is exactly a well-formed id (so it is safe as a file name). */
int	queueid_valid(const char *s);

#endif
