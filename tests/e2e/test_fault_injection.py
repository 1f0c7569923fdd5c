"""Fault injection: 2,000 messages, half to local recipients (Drop/) and
half relayed to an smtp-sink (remote-domain relay.test allow-relay route
[127.0.0.1]:PORT), most over SMTP sessions and some as Pickup files, while
every daemon in turn is killed with -9 at random moments (20 kills: smtpd,
queued, deliverd, pickupd, five each, mailrootd restarts them) and, once,
the whole suite (mailrootd and all its children, then `smtpctl start`).

Afterwards every message that got 250, and every Pickup file that left
Pickup/, is delivered at least once: in Drop/ byte-exact for local mail, at
the sink complete (the message as sent is the end of what arrived) for
relayed mail.  Duplicates (committed or delivered, but the 250 or the
result was lost with a killed process) are counted and printed, not
failed.  No temporary file is left anywhere in the Mailroot, Queue/ ends
empty and Badmail/ empty.

Senders retry on 4xx and connection errors, bounded in attempts and time
(test_crash.Load); kills are tied to the progress of the load, not to the
clock, so a slow machine gets the same interleaving, only slower.
"""
import os
import random
import re
import threading
import time
import uuid

from mailroot_suite import DOMAIN, alive, options, wait_for, watch
from peers import SmtpSink, common_port
from test_diskfull import envelope_problem
from test_crash import TOKEN_RE, Load, drop_tokens, kill_when, pickup_content, \
    pickup_message, smtp_message

N_TOTAL = 2000
N_PICKUP = 200              # of N_TOTAL; the rest over SMTP
SESSIONS = 10
VICTIMS = ("smtpd", "queued", "deliverd", "pickupd")
ROUNDS = 5                  # each victim killed once a round: 20 kills
WHOLE_AFTER = 10            # the whole suite is killed after this many kills
SEND_DEADLINE = 120         # seconds for all senders
RECOVERY = 60               # seconds for Drop/, the sink and Queue/ to settle
RELAY_DOMAIN = "relay.test"
SINK_RCPT = "sink@" + RELAY_DOMAIN


def is_relayed(token):
    """Odd-numbered tokens go to the sink, even ones to Drop/."""
    return int(token[-4:]) % 2 == 1


def relay_message(token):
    t = token.encode()
    return (b"From: crash@sender.example.net\r\n"
            b"To: " + SINK_RCPT.encode() + b"\r\n"
            b"Subject: fault injection " + t + b"\r\n"
            b"Message-ID: <" + t + b"@sender.example.net>\r\n"
            b"\r\n" +
            b"".join(b"line %03d of %s, filler to make DATA last\r\n" % (i, t)
                     for i in range(30)) +
            b".a dot line\r\n"
            b"end-of-" + t + b"\r\n")


def relay_pickup_message(token):
    t = token.encode()
    return (b"x-sender: app@sender.example.net\r\n"
            b"x-receiver: " + SINK_RCPT.encode() + b"\r\n"
            b"From: app@sender.example.net\r\n"
            b"Subject: pickup relay " + t + b"\r\n"
            b"Message-ID: <" + t + b"@sender.example.net>\r\n"
            b"Date: Mon, 2 Feb 2026 10:00:00 +0000\r\n"
            b"\r\n" +
            b"".join(b"line %03d of %s\r\n" % (k, t) for k in range(25)) +
            b"end-of-" + t + b"\r\n")


class MixedLoad(Load):
    """test_crash.Load with a recipient and a message per token."""

    def rcpt_for(self, token):
        return SINK_RCPT if is_relayed(token) else "crash@" + DOMAIN

    def message_for(self, token):
        return relay_message(token) if is_relayed(token) else smtp_message(token)


def sink_tokens(sink):
    """token -> [sink messages holding it]."""
    out = {}
    for m in sink.messages():
        toks = set(TOKEN_RE.findall(m.content))
        assert len(toks) == 1, "sink %s holds %d tokens: %r" % (m.name, len(toks), toks)
        out.setdefault(toks.pop().decode(), []).append(m)
    return out


def leftovers(suite):
    """Temporaries anywhere in the Mailroot (dot names, *.tmp, Queue/tmp/)."""
    out = ["Queue/tmp/" + n for n in suite.queue_tmp_names()]
    for top, dirs, files in os.walk(suite.root):
        rel = os.path.relpath(top, suite.root)
        if rel.split(os.sep)[0] == "run":
            continue        # sockets and the pidfile
        for n in files:
            if n.startswith(".") or n.endswith(".tmp"):
                out.append(os.path.join(rel, n))
    return sorted(set(out))


class Killer:
    """In a thread: the kills of the plan, one after the other, each once
    the load has reached its point."""

    def __init__(self, suite, progress, total):
        self.suite = suite
        self.progress = progress
        rnd = random.Random()
        order = []
        for _ in range(ROUNDS):
            r = list(VICTIMS)
            rnd.shuffle(r)
            order += r
        order.insert(WHOLE_AFTER, "suite")
        # Points of the load (messages accepted or taken) at which to kill.
        at = sorted(rnd.sample(range(total * 3 // 100, total * 80 // 100), len(order)))
        self.plan = list(zip(order, at))
        self.done = []          # (victim, old pid or None, at progress, seconds to restart)
        self.error = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.thread.start()

    def kills(self, victim):
        return sum(1 for d in self.done if d[0] == victim)

    def run(self):
        try:
            for victim, at in self.plan:
                wait_for(lambda: self.progress() >= at, SEND_DEADLINE,
                         "the load to reach %d before killing %s" % (at, victim), 0.01)
                if victim == "suite":
                    self.whole_suite(at)
                    continue
                r = {}
                kill_when(self.suite, victim, lambda: True, 5, r)
                if "error" in r:
                    raise r["error"]
                self.done.append((victim, r["killed"], at, r["restart_s"]))
        except BaseException as e:  # noqa: B902 - reported by the test
            self.error = e

    def whole_suite(self, at):
        """kill -9 mailrootd and every process of the instance, then start again."""
        suite = self.suite
        t = time.monotonic()
        sup = suite.supervisor_pid()
        assert sup and alive(sup), "no mailrootd to kill"
        pids = [sup] + [p for p in suite.instance_pids() if p != sup]
        for p in pids:
            watch(p)            # re-parented to the harness: reap them
            try:
                os.kill(p, 9)
            except ProcessLookupError:
                pass
        wait_for(lambda: not suite.instance_pids(), 10, "every process of the suite to die")
        suite.start()
        suite.watch_supervisors()
        self.done.append(("suite", sup, at, time.monotonic() - t))


@options(start=False, timeout=300)
def test_kill_every_daemon_and_the_suite_under_mixed_load(suite):
    port = common_port(["127.0.0.1"])
    suite.write_config({
        "retry-intervals": "2s 2s 3s 3s",
        "local-retry-interval": "2s",
        "outbound-timeout": "10s",
        "outbound-connect-timeout": "3s",
        "remote-domain": "%s allow-relay route [127.0.0.1]:%d" % (RELAY_DOMAIN, port),
    })
    run_id = uuid.uuid4().hex[:8]
    n_smtp = N_TOTAL - N_PICKUP
    pick = {}               # Pickup file name -> (token, bytes)
    for i in range(n_smtp, N_TOTAL):
        tok = "tok-%s-%04d" % (run_id, i)
        pick["fi-%04d" % i] = (tok, relay_pickup_message(tok) if is_relayed(tok)
                               else pickup_message(tok, i))
    with SmtpSink(suite, "127.0.0.1", port) as sink:
        suite.start()
        load = MixedLoad(suite, n_smtp, SESSIONS)
        load.tokens = ["tok-%s-%04d" % (run_id, i) for i in range(n_smtp)]
        load.deadline = time.monotonic() + SEND_DEADLINE
        written, taken = [], set()
        writer_err = []

        def picked():
            present = set(suite.pickup_names())
            for n in list(written):
                if n not in present:
                    taken.add(n)
            return len(taken)

        def writer():
            try:
                for name, (tok, data) in pick.items():
                    if time.monotonic() > load.deadline:
                        break
                    suite.pickup(name, data)
                    written.append(name)
                    # Spread the files over the SMTP load.
                    wait_for(lambda: load.count() >= len(written) * n_smtp // N_PICKUP or
                             all(not t.is_alive() for t in load.threads),
                             SEND_DEADLINE, "the SMTP load to go on", 0.01)
            except BaseException as e:  # noqa: B902
                writer_err.append(e)

        killer = Killer(suite, lambda: load.count() + len(written), N_TOTAL)
        wt = threading.Thread(target=writer, daemon=True)
        t0 = time.monotonic()
        load.start()
        wt.start()
        killer.start()
        finished = load.join()
        wt.join(SEND_DEADLINE)
        killer.thread.join(SEND_DEADLINE)
        sent_s = time.monotonic() - t0
        assert finished, "senders still running after the deadline"
        assert not writer_err, "Pickup writer: %r" % writer_err
        assert killer.error is None, "killer: %s (kills done: %r)" % (killer.error, killer.done)
        assert len(killer.done) == len(killer.plan), "kills done %r of %r" % (
            killer.done, killer.plan)
        assert not load.failed, "%d message(s) never got 250, e.g. %r" % (
            len(load.failed), sorted(load.failed.items())[:3])
        assert len(load.acked) == n_smtp and len(written) == N_PICKUP
        # A session waiting on a reply when a daemon died gets one (a 4xx or
        # a closed connection), never silence until its own timeout.
        assert not load.timeouts, "%d SMTP client(s) got no reply within %ds (e.g. %r)" % (
            len(load.timeouts), 20, load.timeouts[:3])

        # Every Pickup file leaves Pickup/ (a new pickupd rescans).
        wait_for(lambda: not suite.pickup_names(), RECOVERY, "Pickup/ to empty", 0.2)
        picked()
        expected = {}       # token -> (relayed, the bytes the delivered copy ends with)
        for tok in load.acked:
            expected[tok] = (is_relayed(tok), load.message_for(tok))
        for name, (tok, data) in pick.items():
            if name in written:
                expected[tok] = (is_relayed(tok), pickup_content(data))

        state = {}

        def recovered():
            d, s = drop_tokens(suite), sink_tokens(sink)
            state["drop"], state["sink"] = d, s
            missing = [t for t, (rel, _) in expected.items() if t not in (s if rel else d)]
            state["missing"] = missing
            return not missing and not suite.queue_names() and not leftovers(suite)
        try:
            wait_for(recovered, RECOVERY, "every message delivered and the queue empty", 0.5)
        except AssertionError:
            missing = state.get("missing", [])
            envs = {}       # what is wrong with each envelope left (None: whole)
            for n in suite.queue_names():
                if n.endswith(".env"):
                    try:
                        envs[n] = envelope_problem(suite.path("Queue", n))
                    except FileNotFoundError:
                        pass
            raise AssertionError(
                "after %ds: %d of %d messages never delivered (e.g. %s, queue ids %s); "
                "Queue/ %d files %r, envelopes %r; temporaries %r" % (
                    RECOVERY, len(missing), len(expected), missing[:4],
                    [load.acked.get(t, "pickup") for t in missing[:4]],
                    len(suite.queue_names()), suite.queue_names()[:6],
                    dict(list(envs.items())[:6]), leftovers(suite)[:6]))
        recovered_s = time.monotonic() - t0
        drop, at_sink = state["drop"], state["sink"]

        # Each copy is the message as sent, whole, at the right place.
        for tok, msgs in drop.items():
            assert tok in expected and not expected[tok][0], \
                "Drop/%s: %s was not sent to a local recipient" % (msgs[0].name, tok)
            for m in msgs:
                assert m.content == expected[tok][1], \
                    "Drop/%s (%s) is not the message as sent: %r..." % (
                        m.name, tok, m.content[:200])
                assert m.receivers == ["crash@" + DOMAIN], "Drop/%s: %r" % (m.name, m.receivers)
        for tok, msgs in at_sink.items():
            assert tok in expected and expected[tok][0], \
                "sink %s: %s was not sent to the relay domain" % (msgs[0].name, tok)
            for m in msgs:
                assert m.content.endswith(expected[tok][1]), \
                    "sink %s (%s) is not the message as sent: ...%r" % (
                        m.name, tok, m.content[-200:])
                assert m.rcpts == [SINK_RCPT], "sink %s: %r" % (m.name, m.rcpts)
        assert suite.badmail_names() == [], "Badmail/: %r" % suite.badmail_names()[:5]
        assert suite.queue_names() == [], "Queue/: %r" % suite.queue_names()[:5]
        assert leftovers(suite) == [], "temporaries: %r" % leftovers(suite)

        # The supervisor saw every kill of a daemon, and they all run now.
        log = suite.log_text()
        for victim, pid, at, _ in killer.done:
            if victim != "suite":
                assert re.search(r"%s \(pid %d\) killed by signal 9" % (victim, pid), log), \
                    "the supervisor did not log the kill of %s (pid %d)" % (victim, pid)
        st = suite.status()
        assert st.rc == 0 and all(st.pids.get(d) and alive(st.pids[d]) for d in VICTIMS), \
            "status at the end: %r" % st

        dup_local = sum(len(m) - 1 for m in drop.values())
        dup_relay = sum(len(m) - 1 for m in at_sink.values())
        n_local = sum(1 for rel, _ in expected.values() if not rel)
        suite.note("acked %d over SMTP (%d retries: %s), picked %d Pickup files; sent in %.1fs, "
                   "all delivered after %.1fs" % (
                       len(load.acked), load.retries,
                       ", ".join("%s %d" % kv for kv in sorted(load.errors.items())) or "none",
                       len(taken), sent_s, recovered_s))
        suite.note("delivered %d local (Drop/) + %d relayed (sink) = %d messages, %d copies; "
                   "duplicates %d local, %d relayed" % (
                       n_local, len(expected) - n_local, len(expected),
                       sum(len(m) for m in drop.values()) +
                       sum(len(m) for m in at_sink.values()),
                       dup_local, dup_relay))
        suite.note("kills: %s; whole suite once (down %.1fs); restart times %s" % (
            ", ".join("%s %d" % (v, killer.kills(v)) for v in VICTIMS),
            [d[3] for d in killer.done if d[0] == "suite"][0],
            "%.2f-%.2fs" % (min(d[3] for d in killer.done if d[0] != "suite"),
                           max(d[3] for d in killer.done if d[0] != "suite"))))
        assert sum(killer.kills(v) for v in VICTIMS) == len(VICTIMS) * ROUNDS
