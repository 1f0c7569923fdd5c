/*
 * queued.c - the queue manager: main() and its peers (runs as _smtpq).
 *
 * queued alone writes Queue/, Drop/ and Badmail/.  Its producers, smtpd and
 * pickupd, are less privileged and untrusted: every request is checked
 * (queued_store.c), and a producer that breaks the protocol is dropped.
 * deliverd is linked too, but it is no producer: it gets DELIVER_BATCH and
 * answers with results (queued_sched.c).  It faces the network from a
 * chroot, so it is untrusted as well: a result that does not match a batch
 * in flight drops its link.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>

#include "config.h"
#include "daemon.h"
#include "ipc.h"
#include "log.h"
#include "queued.h"
#include "smtp_parse.h"

static struct producer producers[PROC_MAX];
static struct ipc *deliverd;

void
producer_reply_failed(struct producer *p, uint32_t reqid, int temporary,
    const char *reason)
{
	struct mbuf m;

	if (p->ipc == NULL)
		return;
	m_init(&m, PRODUCER_MSG_FAILED, reqid);
	m_add_u32(&m, temporary ? 1 : 0);
	m_add_str(&m, reason);
	ipc_send(p->ipc, &m);
}

void
producer_drop_state(int over)
{
	struct producer *p = &producers[PROC_SMTPD];
	struct mbuf m;

	if (p->ipc == NULL)
		return;
	m_init(&m, PRODUCER_DROP_STATE, 0);
	m_add_u32(&m, over ? 1 : 0);
	ipc_send(p->ipc, &m);
}

/*
 * ETRN (RFC 1985) from smtpd, which has checked that the client may ask:
 * "domain" or "@domain" (that domain and its subdomains); "#queue" names
 * nothing here.  Answers the number of messages made due.
 */
static void
producer_etrn(struct producer *p, struct ipc_msg *msg)
{
	char d[SMTP_DOMAIN_MAX + 1], ed[64];
	const char *arg, *dom;
	struct mbuf m;
	uint32_t n = 0;
	size_t i;
	int sub;

	if (p->id != PROC_SMTPD || m_get_str(msg, &arg, SMTP_DOMAIN_MAX + 1) == -1 ||
	    m_end(msg) == -1) {
		log_warnx("%s sent a malformed ETRN: dropping the link", proc_name(p->id));
		ipc_close(p->ipc);
		return;
	}
	sub = arg[0] == '@';
	dom = arg + sub;
	for (i = 0; i < sizeof(d) - 1 && dom[i] != '\0'; i++)
		d[i] = dom[i] >= 'A' && dom[i] <= 'Z' ? (char)(dom[i] - 'A' + 'a') : dom[i];
	d[i] = '\0';
	if (dom[i] == '\0' && smtp_domain_valid(d, 0))
		n = sched_etrn(d, sub, "etrn");
	else {
		log_escape(ed, sizeof(ed), arg, strlen(arg));
		log_info("etrn domain=\"%s\" refused: not a domain", ed);
	}
	m_init(&m, PRODUCER_ETRN_RESULT, msg->id);
	m_add_u32(&m, n);
	ipc_send(p->ipc, &m);
}

/* One handler per request type a producer may send. */
static const struct {
	uint32_t	 type;
	void		(*fn)(struct producer *, struct ipc_msg *);
} producer_handlers[] = {
	{ QUEUE_MSG_OPEN,	store_open },
	{ QUEUE_MSG_COMMIT,	store_commit },
	{ QUEUE_MSG_ABORT,	store_abort },
	{ QUEUE_BADMAIL,	badmail_from_producer },
	{ QUEUE_ETRN,		producer_etrn },
};

static void
producer_dispatch(struct ipc *ipc, struct ipc_msg *msg, void *arg)
{
	struct producer *p = arg;
	size_t i;

	for (i = 0; i < sizeof(producer_handlers) / sizeof(producer_handlers[0]); i++)
		if (producer_handlers[i].type == msg->type) {
			producer_handlers[i].fn(p, msg);
			return;
		}
	log_warnx("%s sent a bad or unexpected %s: dropping the link",
	    proc_name(p->id), proto_type_name(msg->type));
	ipc_close(ipc);
}

static void
producer_closed(struct ipc *ipc, void *arg)
{
	struct producer *p = arg;

	(void)ipc;
	log_debug("link to %s closed", proc_name(p->id));
	p->ipc = NULL;
	store_producer_gone(p);
}

/* deliverd sends only results; anything else, or a bad one, drops it. */
static void
deliverd_dispatch(struct ipc *ipc, struct ipc_msg *msg, void *arg)
{
	(void)arg;
	if (msg->type == QUEUE_DELIVERY_RESULT && sched_result(msg) == 0)
		return;
	log_warnx("deliverd sent a bad or unexpected %s: dropping the link",
	    proto_type_name(msg->type));
	ipc_close(ipc);
}

static void
deliverd_closed(struct ipc *ipc, void *arg)
{
	(void)arg;
	if (ipc != deliverd)
		return;
	log_info("link to deliverd closed: batches in flight wait for the next one");
	deliverd = NULL;
	sched_deliverd(NULL);
}

static void
deliverd_link(int fd)
{
	struct ipc *old = deliverd;

	deliverd = NULL;
	if (old != NULL) {
		ipc_close(old);
		sched_deliverd(NULL);
	}
	if ((deliverd = ipc_new(env->base, fd, "deliverd", deliverd_dispatch,
	    deliverd_closed, NULL)) == NULL) {
		log_warnx("cannot link to deliverd");
		close(fd);
		return;
	}
	log_debug("link to deliverd up");
	sched_deliverd(deliverd);
}

static void
queued_peer(enum proc_id id, int fd)
{
	struct producer *p;

	if (id == PROC_DELIVERD) {
		deliverd_link(fd);
		return;
	}
	if (id != PROC_SMTPD && id != PROC_PICKUPD) {
		log_warnx("unexpected peer %s", proc_name(id));
		close(fd);
		return;
	}
	p = &producers[id];
	if (p->ipc)
		ipc_close(p->ipc);
	p->id = id;
	p->gen++;
	if ((p->ipc = ipc_new(env->base, fd, proc_name(id), producer_dispatch,
	    producer_closed, p)) == NULL) {
		log_warnx("cannot link to %s", proc_name(id));
		close(fd);
		return;
	}
	/* A new smtpd learns at once whether Drop/ is full. */
	if (id == PROC_SMTPD && quota_over())
		producer_drop_state(1);
}

static int
queued_config(struct config *c, const struct config *old, char *why, size_t whysz)
{
	if (old != NULL) {
		if (strcmp(old->mailroot, c->mailroot) != 0)
			log_warnx("a new mailroot takes effect at the next start");
		quota_configure(c);
		return 0;
	}
	env->conf = c;
	if (store_init(why, whysz) == -1) {
		env->conf = NULL;
		return -1;
	}
	quota_configure(c);
	return 0;
}

static void
queued_go(void)
{
	/* Rebuild the schedule from what a previous run left in Queue/. */
	store_queue_run();
}

struct queued_stats queued_stats;

static size_t
queued_stats_list(struct stat_value *v, size_t max)
{
	uint64_t qlocal, qremote;
	size_t i, n;

	sched_queue_length(&qlocal, &qremote);
	{
		const struct stat_value all[] = {
			{ "queued.messages.in.smtpd", STAT_COUNTER, queued_stats.in_smtpd,
			    "messages queued from smtpd" },
			{ "queued.messages.in.pickupd", STAT_COUNTER, queued_stats.in_pickupd,
			    "messages queued from pickupd (Pickup/)" },
			{ "queued.deliveries.local", STAT_COUNTER, queued_stats.local,
			    "recipients delivered into Drop/" },
			{ "queued.deliveries.remote", STAT_COUNTER, queued_stats.remote,
			    "recipients delivered to a remote server" },
			{ "queued.deferrals", STAT_COUNTER, queued_stats.deferred,
			    "recipient attempts deferred for a retry" },
			{ "queued.bounces", STAT_COUNTER, queued_stats.ndr,
			    "failure reports (NDRs) sent" },
			{ "queued.delay_notices", STAT_COUNTER, queued_stats.delay,
			    "delay notices sent" },
			{ "queued.expired", STAT_COUNTER, queued_stats.expired,
			    "recipients that expired in the queue" },
			{ "queued.badmail", STAT_COUNTER, queued_stats.badmail,
			    "entries written to Badmail/" },
			{ "queued.queue.local", STAT_GAUGE, qlocal,
			    "messages in Queue/ with local recipients pending" },
			{ "queued.queue.remote", STAT_GAUGE, qremote,
			    "messages in Queue/ with remote recipients pending" },
		};

		n = sizeof(all) / sizeof(all[0]);
		for (i = 0; i < n && i < max; i++)
			v[i] = all[i];
	}
	return i;
}

/* Messages from the supervisor beyond the common ones. */
static int
queued_message(struct ipc *parent, struct ipc_msg *msg)
{
	if (msg->type != DAEMON_QUEUE)
		return -1;
	ops_request(parent, msg);
	return 0;
}

static const struct daemon_ops queued_ops = {
	.config = queued_config,
	.peer = queued_peer,
	.go = queued_go,
	.stats = queued_stats_list,
	.message = queued_message,
};

int
main(int argc, char **argv)
{
	daemon_main(argc, argv, PROC_QUEUED, &queued_ops);
}
