/*
 * deliverd.c - outbound SMTP (runs as _smtpd, chrooted): main() and its
 * link to queued.  Placeholder until the delivery engine lands: every batch
 * is deferred, so nothing is lost.
 */
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "ipc.h"
#include "log.h"
#include "proto_deliver.h"
#include "deliverd.h"

static int
deliverd_config(struct config *c, const struct config *old, char *why, size_t whysz)
{
	(void)why;
	(void)whysz;
	if (old == NULL)
		env->conf = c;
	return 0;
}

static const struct daemon_ops deliverd_ops = {
	.config = deliverd_config,
};

int
main(int argc, char **argv)
{
	daemon_main(argc, argv, PROC_DELIVERD, &deliverd_ops);
}
