/*
 * deliverd.c - the outbound delivery daemon: main(), its configuration,
 * the CA bundle and its link to queued (runs as _smtpd, chrooted to an
 * empty directory when started as root).  It never touches the spool:
 * queued sends DELIVER_BATCH with a read-only descriptor of the message
 * and gets QUEUE_DELIVERY_RESULT back, one result per recipient.
 * Trust: queued is more privileged, but its batches are still checked
 * (common/proto_deliver.c) and a malformed one drops the link.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "deliverd.h"
#include "deliverd_dns.h"
#include "ipc.h"
#include "log.h"
#include "proto_deliver.h"

static struct ipc *queue_ipc;
static uint32_t queue_gen;	/* bumped with each new link to queued */

void
deliverd_report(struct job *j)
{
	struct deliver_result r;
	struct mbuf m;
	size_t i;

	if (queue_ipc == NULL || j->link_gen != queue_gen) {
		/* queued restarted: it sends the batch again, as not attempted */
		log_debug("%s result dropped: the link to queued changed", j->qid);
		return;
	}
	proto_result_begin(&m, j->reqid, j->qid, j->nrcpts);
	for (i = 0; i < j->nrcpts; i++) {
		const struct job_rcpt *jr = &j->rcpts[i];

		r.index = jr->index;
		r.status = jr->status;
		r.code = jr->code;
		r.enhanced = jr->enhanced;
		r.text = jr->text;
		r.host = jr->host;
		proto_result_add(&m, &r);
	}
	if (ipc_send(queue_ipc, &m) == -1)
		log_warnx("%s cannot send the delivery result to queued", j->qid);
}

static void
on_batch(struct ipc *ipc, struct ipc_msg *msg)
{
	struct deliver_batch b;
	struct job *j;
	int fd = msg->fd;

	msg->fd = -1;
	if (fd == -1 || proto_deliver_decode(msg, &b) == -1) {
		if (fd != -1)
			close(fd);
		log_warnx("malformed DELIVER_BATCH from queued; dropping the link");
		ipc_close(ipc);
		return;
	}
	j = job_new(&b, msg->id, fd);
	proto_deliver_batch_free(&b);
	if (j == NULL) {
		/* No answer: queued sees the batch not done and tries again. */
		log_warnx("out of memory for a batch");
		close(fd);
		return;
	}
	j->link_gen = queue_gen;
	route_decide(env->conf, j->domain, &j->route);
	log_debug("%s domain=%s rcpts=%zu dest=%s", j->qid, j->domain, j->nrcpts,
	    j->route.key);
	pool_submit(j);
}

static void
queue_dispatch(struct ipc *ipc, struct ipc_msg *msg, void *arg)
{
	(void)arg;
	switch (msg->type) {
	case DELIVER_BATCH:
		on_batch(ipc, msg);
		break;
	default:
		log_warnx("unexpected %s from queued", proto_type_name(msg->type));
		break;
	}
}

static void
queue_closed(struct ipc *ipc, void *arg)
{
	(void)arg;
	if (ipc != queue_ipc)
		return;
	queue_ipc = NULL;
	/* queued counts what was in flight as not attempted and sends it again. */
	pool_drop_waiting();
	log_info("link to queued lost");
}

static void
deliverd_peer(enum proc_id peer, int fd)
{
	if (peer != PROC_QUEUED) {
		log_warnx("unexpected peer %s", proc_name(peer));
		close(fd);
		return;
	}
	if (queue_ipc) {
		struct ipc *old = queue_ipc;

		queue_ipc = NULL;
		ipc_close(old);
		pool_drop_waiting();
	}
	queue_gen++;
	if ((queue_ipc = ipc_new(env->base, fd, "queued", queue_dispatch, queue_closed,
	    NULL)) == NULL)
		log_warnx("cannot set up the link to queued");
}

static int
deliverd_config(struct config *c, const struct config *old, char *why, size_t whysz)
{
	(void)old;
	(void)why;
	(void)whysz;
	dns_configure(c);
	return 0;
}

/* DAEMON_CA_BUNDLE: fd with the PEM text of outbound-tls-ca-file. */
static int
deliverd_message(struct ipc *parent, struct ipc_msg *msg)
{
	const char *name;
	int fd = msg->fd;

	(void)parent;
	if (msg->type != DAEMON_CA_BUNDLE)
		return -1;
	msg->fd = -1;
	if (fd == -1 || m_get_str(msg, &name, 4096) == -1 || m_end(msg) == -1) {
		if (fd != -1)
			close(fd);
		log_warnx("malformed DAEMON_CA_BUNDLE from the supervisor");
		return 0;
	}
	tls_ca_bundle(fd, name);
	return 0;
}

/* Still root, outside the chroot: the resolver reads /etc/resolv.conf. */
static void
deliverd_pre_drop(void)
{
	dns_init();
	tls_client_init();
}

static size_t
deliverd_stats_list(struct stat_value *v, size_t max)
{
	const struct stat_value all[] = {
		{ "deliverd.connections.current", STAT_GAUGE, deliverd_stats.current,
		    "outbound SMTP connections open now" },
		{ "deliverd.connections.total", STAT_COUNTER, deliverd_stats.connections,
		    "outbound SMTP connections made" },
		{ "deliverd.connections.failed", STAT_COUNTER, deliverd_stats.failed,
		    "outbound connection attempts that failed" },
		{ "deliverd.tls.sessions", STAT_COUNTER, deliverd_stats.tls,
		    "outbound TLS handshakes completed" },
		{ "deliverd.messages.out", STAT_COUNTER, deliverd_stats.messages,
		    "messages delivered to remote servers" },
		{ "deliverd.bytes.out", STAT_COUNTER, deliverd_stats.bytes,
		    "octets of the messages delivered to remote servers" },
	};
	size_t i, n = sizeof(all) / sizeof(all[0]);

	for (i = 0; i < n && i < max; i++)
		v[i] = all[i];
	return i;
}

static const struct daemon_ops deliverd_ops = {
	.config = deliverd_config,
	.peer = deliverd_peer,
	.message = deliverd_message,
	.pre_drop = deliverd_pre_drop,
	.stats = deliverd_stats_list,
};

int
main(int argc, char **argv)
{
	daemon_main(argc, argv, PROC_DELIVERD, &deliverd_ops);
}
