/*
 * stats.h - the counters a daemon reports to the supervisor (FEATURES O3).
 *
 * Each daemon keeps plain uint64_t counters of what it sees (no locks: one
 * thread) and, asked with DAEMON_STATS, lists them as SUPERVISOR_STATS:
 * names "<daemon>.<what>" ("smtpd.connections.total"), a kind, the value
 * and a one-line help text.  mailrootd checks and aggregates them for
 * smtpctl show stats and the metrics endpoint.
 */
#ifndef MR_STATS_H
#define MR_STATS_H

#include <stdint.h>

enum stat_kind {
	STAT_COUNTER = 0,	/* only grows (until the daemon restarts) */
	STAT_GAUGE = 1		/* a current figure */
};

#define STAT_NAME_MAX	63	/* [a-z0-9_.], starts with the daemon's name */
#define STAT_HELP_MAX	159	/* printable ASCII */
#define STATS_PER_DAEMON 64

struct stat_value {
	const char	*name;
	enum stat_kind	 kind;
	uint64_t	 value;
	const char	*help;
};

#endif
