"""queued's schedule: remote mail goes to deliverd as one batch per domain,
a batch in flight is sent again to a restarted deliverd, the schedule is
rebuilt from Queue/ at start, and a looping message (too many Received:
fields) is returned at once: an NDR into Drop/ for a local sender, Badmail/
for the null sender.  Remote mail goes to a smart host on loopback that
either never greets (the batch stays in flight) or answers 451 to RCPT.
"""
import os
import re
import socket
import time

from mailroot_suite import DOMAIN, HOSTNAME, options, wait_for
from peers import PeerSMTP

RELAY = {"relay": "allow 127.0.0.1/32"}


class MuteHost:
    """A listening socket nobody accepts on: a connection to it is made (by
    the kernel's backlog) but never greeted, so deliverd's batch stays in
    flight for outbound-timeout."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.sock.close()


def start_via(suite, port):
    """Start with every remote recipient routed to [127.0.0.1]:port."""
    suite.write_config(dict(RELAY, **{"smart-host": "[127.0.0.1]:%d" % port,
                                      "outbound-timeout": "5m"}))
    suite.start()
SENDER = "alice@" + DOMAIN

MESSAGE = (b"From: alice@" + DOMAIN.encode() + b"\r\n"
           b"To: someone elsewhere\r\n"
           b"Subject: outbound\r\n"
           b"\r\n"
           b"body line\r\n")


def batch_lines(suite, qid):
    """The 'batch=N domain=D nrcpt=K sent to deliverd' lines of a message."""
    return re.findall(r"%s batch=(\d+) domain=(\S+) nrcpt=(\d+) sent to deliverd" % qid,
                      suite.log_text())


def answered(suite, qid):
    return re.search(r"%s status=(sent|deferred|bounced|expired) " % qid, suite.log_text())


def wait_batches(suite, qid, n, timeout=10):
    return wait_for(lambda: (lambda b: b if len(b) >= n else None)(batch_lines(suite, qid)),
                    timeout, "%d batch(es) of %s sent to deliverd" % (n, qid))


@options(start=False)
def test_one_batch_per_domain(suite):
    with MuteHost() as mute:
        start_via(suite, mute.port)
        one_batch_per_domain(suite)


def one_batch_per_domain(suite):
    rcpts = ["bob@remote.example", "carol@REMOTE.example", "dave@other.example",
             "erin@" + DOMAIN]
    qid = suite.send(SENDER, rcpts, MESSAGE)
    # the local recipient at once, into Drop/
    m = suite.wait_drop(qid)
    assert m.receivers == ["erin@" + DOMAIN], m.receivers
    batches = wait_batches(suite, qid, 2)
    got = sorted((d, int(n)) for _, d, n in batches)
    assert got == [("other.example", 1), ("remote.example", 2)], got
    # the message waits in Queue/, its local recipient done
    env = wait_for(lambda: (lambda t: t if "rcpt done" in t else None)(
        open(suite.path("Queue", qid + ".env")).read()), 5, "the local recipient recorded")
    assert "rcpt done <erin@%s>" % DOMAIN in env, env


@options(start=False)
def test_batch_resent_to_restarted_deliverd(suite):
    with MuteHost() as mute:
        start_via(suite, mute.port)
        batch_resent(suite)


def batch_resent(suite):
    qid = suite.send(SENDER, ["hang@remote.example"], MESSAGE)
    wait_batches(suite, qid, 1)
    assert not answered(suite, qid), "a batch to a host that never greets was answered"
    old = suite.daemon_pids()["deliverd"]
    os.kill(old, 9)
    suite.wait_restarted("deliverd", old, timeout=15)
    batches = wait_batches(suite, qid, 2, timeout=15)
    assert batches[0][0] != batches[1][0], "the resent batch has a new id: %r" % batches


@options(start=False)
def test_schedule_rebuilt_at_start(suite):
    with MuteHost() as mute:
        start_via(suite, mute.port)
        schedule_rebuilt(suite)


def schedule_rebuilt(suite):
    qid = suite.send(SENDER, ["hang@remote.example"], MESSAGE)
    wait_batches(suite, qid, 1)
    assert not answered(suite, qid), "a batch to a host that never greets was answered"
    suite.stop()
    suite.start()
    wait_for(lambda: re.search(r"queue recovered messages=1\b", suite.log_text()), 10,
             "the recovery walk")
    wait_batches(suite, qid, 2, timeout=15)


def looping(n):
    hops = b"".join(b"Received: from hop%d.example by hop%d.example; "
                    b"Mon, 1 Jan 2024 00:00:00 +0000\r\n" % (i, i + 1) for i in range(n))
    return hops + MESSAGE


@options(conf=RELAY)
def test_hop_count_ndr_to_local_sender(suite):
    # smtpd adds one more Received: field: 15 + 1 is over the default of 15
    qid = suite.send(SENDER, ["bob@remote.example"], looping(15))
    suite.wait_queue_empty(timeout=10)
    assert not batch_lines(suite, qid), "a looping message was sent on"
    ndrs = wait_for(lambda: suite.find_drop_containing(b"Status: 5.4.6"), 10, "the NDR")
    m = ndrs[0]
    assert m.sender == "" or m.sender == "<>", "NDR envelope sender %r" % m.sender
    assert m.receivers == [SENDER], m.receivers
    c = m.content
    for want in (b"From: Mail Delivery System <MAILER-DAEMON@" + HOSTNAME.encode() + b">",
                 b"To: <" + SENDER.encode() + b">", b"Auto-Submitted: auto-replied",
                 b"MIME-Version: 1.0", b"Content-Type: multipart/report; "
                 b"report-type=delivery-status;",
                 b"Content-Type: message/delivery-status",
                 b"Reporting-MTA: dns; " + HOSTNAME.encode(),
                 b"Final-Recipient: rfc822; bob@remote.example", b"Action: failed",
                 b"Content-Type: message/rfc822", b"Subject: outbound"):
        assert want in c, "NDR lacks %r:\n%s" % (want, c.decode("utf-8", "replace"))
    assert re.search(r"%s status=bounced to=<bob@remote.example> relay=none dsn=5.4.6"
                     % qid, suite.log_text()), suite.log_tail()


@options(conf=RELAY)
def test_hop_count_null_sender_to_badmail(suite):
    qid = suite.send("", ["bob@remote.example"], looping(20))
    suite.wait_queue_empty(timeout=10)
    wait_for(lambda: qid + ".BDR" in suite.badmail_names(), 10, "Badmail/%s.BDR" % qid)
    bdr = open(suite.path("Badmail", qid + ".BDR"), "rb").read()
    assert b"Recipient: <bob@remote.example> 5.4.6" in bdr, bdr
    bad = open(suite.path("Badmail", qid + ".BAD"), "rb").read()
    assert b"Subject: outbound" in bad, bad[:200]
    assert not suite.find_drop_containing(b"multipart/report"), "an NDR of an NDR"


def age_envelope(suite, qid, seconds):
    """Stop the suite and make the queued message `seconds` older, due now."""
    suite.stop()
    path = suite.path("Queue", qid + ".env")
    text = open(path).read()
    arrival = int(re.search(r"^arrival (\d+)$", text, re.M).group(1))
    text = re.sub(r"^arrival \d+$", "arrival %d" % (arrival - seconds), text, flags=re.M)
    text = re.sub(r"^next-attempt \d+$", "next-attempt 0", text, flags=re.M)
    with open(path, "w") as f:
        f.write(text)
    suite.start()


@options(start=False)
def test_expired_recipient_reported(suite):
    with MuteHost() as mute:
        start_via(suite, mute.port)
        expired_recipient(suite)


def expired_recipient(suite):
    qid = suite.send(SENDER, ["hang@remote.example", "erin@" + DOMAIN], MESSAGE)
    suite.wait_drop(qid)
    wait_for(lambda: os.path.exists(suite.path("Queue", qid + ".env")), 5, "queued")
    age_envelope(suite, qid, 3 * 86400)     # expiration-timeout is 2d
    ndr = wait_for(lambda: suite.find_drop_containing(b"Status: 4.4.7"), 15, "the NDR")[0]
    c = ndr.content
    assert b"Final-Recipient: rfc822; hang@remote.example" in c, c
    assert b"Action: failed" in c, c
    assert b"erin@" not in c.split(b"message/delivery-status")[1].split(b"\r\n--")[0], c
    suite.wait_queue_empty(timeout=10)
    assert re.search(r"%s status=expired to=<hang@remote.example> relay=none dsn=4.4.7 "
                     % qid, suite.log_text()), suite.log_tail()


@options(start=False)
def test_delay_notice_once(suite):
    with PeerSMTP(rcpt_replies={"temp@remote.example": "451 4.3.0 try later"}) as peer:
        start_via(suite, peer.port)
        delay_notice_once(suite)


def delay_notice_once(suite):
    qid = suite.send(SENDER, ["temp@remote.example"], MESSAGE)
    wait_for(lambda: re.search(r"%s status=deferred " % qid, suite.log_text()), 10,
             "the first attempt to be deferred")
    age_envelope(suite, qid, 13 * 3600)     # delay-notification is 12h
    notice = wait_for(lambda: suite.find_drop_containing(b"Action: delayed"), 15,
                      "the delay notice")
    c = notice[0].content
    for want in (b"Final-Recipient: rfc822; temp@remote.example", b"Will-Retry-Until: ",
                 b"Content-Type: text/rfc822-headers", b"Subject: outbound"):
        assert want in c, "delay notice lacks %r:\n%s" % (want, c.decode("utf-8", "replace"))
    assert b"body line" not in c, "a delay notice returns only the header"
    wait_for(lambda: "delay-notified yes" in open(suite.path("Queue", qid + ".env")).read(),
             5, "delay-notified recorded")
    # once only: the next run sends none
    age_envelope(suite, qid, 0)
    time.sleep(1)
    assert len(suite.find_drop_containing(b"Action: delayed")) == 1, "a second delay notice"
