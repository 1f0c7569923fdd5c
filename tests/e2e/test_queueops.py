"""The queue for operators (FEATURES O4, O5): smtpq list, show, delete,
retry, hold, release, retry domain, badmail and requeue against real
daemons, and who may use them.

The remote world is that of test_outbound.py: smtp-sink peers on loopback
and a dnsmasq with MX records.  The retry interval is an hour, so that
only an operator's command can explain a delivery within the test.
"""
import json
import os
import subprocess
import time

from mailroot_suite import options, wait_for
from peers import MXDNS, SmtpSink
from test_outbound import outcome_lines, send, sink_world, start_outbound, wait_outcome

SLOW = {"retry-intervals": "1h 1h 1h 1h"}


def smtpq(suite, *args, user=None, group=None):
    argv = [os.path.join(suite.builddir, "smtpctl", "smtpq"), "-f", suite.conf_path] + \
        list(args)
    if user:
        argv = ["runuser", "-u", user] + (["-g", group] if group else []) + ["--"] + argv
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=30, env=suite.env)


def ok(r):
    assert r.returncode == 0, "exit %d: %s%s" % (r.returncode, r.stdout, r.stderr)
    return r


def listing(suite, **kw):
    return {m["id"]: m for m in json.loads(ok(smtpq(suite, "--json", **kw)).stdout)}


def world(suite, sink_kw, domains=("q.test",), conf=None, lines=()):
    (a,), port = sink_world(suite, 1)
    mx = {d: [(10, "mx." + d)] for d in domains}
    hosts = {"mx." + d: [a] for d in domains}
    dns = MXDNS(suite, mx=mx, hosts=hosts)
    sink = SmtpSink(suite, a, port, **sink_kw)
    return dns, sink, port, dict(SLOW, **(conf or {})), list(lines)


def in_queue(suite, qid):
    return any(n.startswith(qid) for n in suite.queue_names())


@options(start=False, timeout=90)
def test_queueops_list_shows_last_error_then_retry_and_delete(suite):
    dns, sink, port, conf, lines = world(suite, {"soft": ["rcpt"]})
    with dns, sink:
        start_outbound(suite, port, dns, conf=conf)
        qid, token, _ = send(suite, ["later@q.test"])
        wait_outcome(suite, qid, "deferred", "later@q.test")
        m = wait_for(lambda: listing(suite).get(qid, {}).get("attempts") == 1 and
                     listing(suite)[qid], 10, "attempt 1 recorded")
        (rc,) = m["recipients"]
        assert rc["address"] == "later@q.test" and rc["state"] == "pending", rc
        assert "451" in rc["error"] and "4.3.0" in rc["error"], rc
        assert m["held"] is False and m["next_attempt"] > time.time() + 3000, m
        text = ok(smtpq(suite)).stdout
        assert qid in text and "451 4.3.0" in text and "1 request." in text, text
        shown = ok(smtpq(suite, "show", qid)).stdout
        assert "rcpt pending <later@q.test>" in shown and token in shown, shown
        # the sink accepts now; only the retry command can explain a delivery
        sink.restart(soft=[])
        r = ok(smtpq(suite, "retry", qid))
        assert "due now" in r.stdout, r.stdout
        sink.wait_messages(1, needle=token.encode(), timeout=15)
        suite.wait_queue_empty(15)
        assert "Mail queue is empty" in ok(smtpq(suite)).stdout
        # delete: a deferred message goes, and is never delivered afterwards
        sink.restart(soft=["rcpt"])
        qid2, token2, _ = send(suite, ["gone@q.test"])
        wait_outcome(suite, qid2, "deferred", "gone@q.test")
        r = ok(smtpq(suite, "--json", "delete", qid2))
        assert json.loads(r.stdout) == {"ok": True, "count": 1,
                                        "message": "%s deleted" % qid2}, r.stdout
        assert not in_queue(suite, qid2), suite.queue_names()
        assert qid2 not in listing(suite)
        r = smtpq(suite, "delete", qid2)
        assert r.returncode == 1 and "not in the queue" in r.stderr, r
        sink.restart(soft=[])
        ok(smtpq(suite, "retry", "all"))
        time.sleep(2)
        assert sink.find(token2.encode()) == [], "a deleted message was delivered"
        assert suite.queue_names() == [], suite.queue_names()


@options(start=False, timeout=90)
def test_queueops_hold_release_and_retry_domain(suite):
    dns, sink, port, conf, lines = world(suite, {"soft": ["rcpt"]}, ("q.test", "r.test"))
    with dns, sink:
        start_outbound(suite, port, dns, conf=conf)
        q1, t1, _ = send(suite, ["one@q.test"])
        q2, t2, _ = send(suite, ["two@r.test"])
        wait_outcome(suite, q1, "deferred", "one@q.test")
        wait_outcome(suite, q2, "deferred", "two@r.test")
        ok(smtpq(suite, "hold", q1))
        m = listing(suite)[q1]
        assert m["held"] is True, m
        with open(suite.path("Queue", q1 + ".env")) as f:
            assert "\nheld yes\n" in f.read(), "the hold is not in the envelope"
        assert "HELD" in ok(smtpq(suite)).stdout
        sink.restart(soft=[])
        r = smtpq(suite, "retry", q1)
        assert r.returncode == 1 and "on hold" in r.stderr, r
        r = ok(smtpq(suite, "--json", "retry", "domain", "q.test"))
        assert json.loads(r.stdout)["count"] == 0, r.stdout
        r = ok(smtpq(suite, "--json", "retry", "domain", "r.test"))
        assert json.loads(r.stdout)["count"] == 1, r.stdout
        sink.wait_messages(1, needle=t2.encode(), timeout=15)
        wait_outcome(suite, q2, "sent", "two@r.test")
        time.sleep(1)
        assert sink.find(t1.encode()) == [], "held mail was sent"
        assert len(outcome_lines(suite, q1)) == 1, outcome_lines(suite, q1)
        ok(smtpq(suite, "release", q1))
        sink.wait_messages(1, needle=t1.encode(), timeout=15)
        suite.wait_queue_empty(15)


@options(start=False, timeout=90)
def test_queueops_requeue_from_badmail(suite):
    dns, sink, port, conf, lines = world(suite, {"hard": ["rcpt"]}, ("h.test",))
    with dns, sink:
        start_outbound(suite, port, dns, conf=conf)
        qid, token, _ = send(suite, ["gone@h.test"], sender="")
        wait_for(lambda: {qid + ".BAD", qid + ".BDR"} <= set(suite.badmail_names()), 15,
                 "Badmail/%s" % qid)
        b = json.loads(ok(smtpq(suite, "--json", "badmail")).stdout)
        assert [x["id"] for x in b] == [qid] and "null sender" in b[0]["reason"], b
        # a Pickup file that was no message: its recipients are unknown
        suite.pickup("junk", b"not a message\n")
        wait_for(lambda: len(suite.badmail_names()) == 4, 15, "the Pickup file in Badmail/")
        junk = [n[:-4] for n in suite.badmail_names()
                if n.endswith(".BDR") and not n.startswith(qid)][0]
        r = smtpq(suite, "requeue", junk)
        assert r.returncode == 1 and "records no recipients" in r.stderr, r
        sink.restart(hard=[])
        r = ok(smtpq(suite, "requeue", qid))
        assert "requeued as" in r.stdout, r.stdout
        (m,) = sink.wait_messages(1, needle=token.encode(), timeout=15)
        assert m.rcpts == ["gone@h.test"] and m.sender == "", (m.rcpts, m.mail_args)
        assert not any(n.startswith(qid) for n in suite.badmail_names()), \
            suite.badmail_names()
        suite.wait_queue_empty(15)


@options(start=False, timeout=90, only="root",
         why="needs runuser to run smtpq as another user")
def test_queueops_operators_group_and_readers(suite):
    dns, sink, port, conf, lines = world(suite, {"soft": ["rcpt"]},
                                         conf={"operators-group": "mailroot"})
    with dns, sink:
        start_outbound(suite, port, dns, conf=conf)
        assert os.stat(suite.control_socket).st_mode & 0o777 == 0o666
        qid, token, _ = send(suite, ["x@q.test"])
        wait_outcome(suite, qid, "deferred", "x@q.test")
        # nobody is no operator: may list, may not change anything
        assert qid in listing(suite, user="nobody")
        r = smtpq(suite, "delete", qid, user="nobody")
        assert r.returncode == 1 and "refused: queue delete needs root or membership " \
            "of group mailroot" in r.stderr, r
        r = smtpq(suite, "show", qid, user="nobody")
        assert r.returncode == 1 and "refused" in r.stderr, r
        r = suite.run(["runuser", "-u", "nobody", "--", suite.binary("smtpctl"), "-f",
                       suite.conf_path, "stop"])
        assert r.returncode == 1 and \
            "refused: stop needs root or membership of group mailroot" in r.stderr, r
        assert suite.status().state == "running"
        assert in_queue(suite, qid)
        # with the group as its (primary) group it is an operator
        ok(smtpq(suite, "hold", qid, user="nobody", group="mailroot"))
        assert listing(suite)[qid]["held"] is True
        # without an operators group the socket is root's alone again
        suite.write_config(dict(suite.conf, **{"operators-group": None}))
        ok(suite.smtpctl("reload"))
        assert os.stat(suite.control_socket).st_mode & 0o777 == 0o600
        r = smtpq(suite, "release", qid, user="nobody", group="mailroot")
        assert r.returncode == 1 and "refused" in r.stderr and "root only" in r.stderr, r


@options(start=False, timeout=60)
def test_queueops_delete_during_an_attempt(suite):
    # The peer holds the final "." for 3 s: the attempt is in flight when
    # the message is deleted; its late result must not bring it back.
    from peers import PeerSMTP
    (a,), port = sink_world(suite, 1)
    dns = MXDNS(suite, mx={"q.test": [(10, "mx.q.test")]}, hosts={"mx.q.test": [a]})
    with dns, PeerSMTP(addr=a, port=port, data_delay=3) as peer:
        start_outbound(suite, port, dns, conf=SLOW)
        qid, token, _ = send(suite, ["slow@q.test"])
        wait_for(lambda: listing(suite).get(qid, {}).get("running"), 10,
                 "the attempt under way")
        r = ok(smtpq(suite, "delete", qid))
        assert "deleted" in r.stdout, r.stdout
        assert not in_queue(suite, qid), suite.queue_names()
        wait_for(lambda: "%s status=deleted (its attempt ended)" % qid in suite.log_text(),
                 15, "the late result ignored")
        assert not in_queue(suite, qid) and qid not in listing(suite)
        assert suite.status().pids.get("queued"), "queued is down"
        assert "restarts 0" in suite.smtpctl("status").stdout.split("queued")[1].split("\n")[0]
        assert peer.connections, "deliverd never connected"
