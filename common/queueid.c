/*
 * queueid.c - queue id generation and checking (mail layer; queued).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queueid.h"

void
queueid_new(char *buf)
{
	static uint64_t last;
	struct timespec ts;
	uint64_t us;

	clock_gettime(CLOCK_REALTIME, &ts);
	us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	/* Never repeat or go back within a process, even if the clock does. */
	if (us <= last)
		us = last + 1;
	last = us;
	snprintf(buf, QUEUEID_LEN + 1, "%016llx%04x", (unsigned long long)us,
	    (unsigned)(arc4random() & 0xffff));
}

int
queueid_valid(const char *s)
{
	size_t i;

	for (i = 0; i < QUEUEID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[QUEUEID_LEN] == '\0';
}
