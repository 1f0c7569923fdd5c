"""Crash safety of outbound delivery: 500 messages to a remote smtp-sink
(found by MX) while deliverd is killed with -9 twice and queued once, at
random moments of the flow.  Afterwards every message that got 250 has
reached the sink at least once, complete (its end marker present), and
Queue/ is empty; duplicates (delivered, but the result was lost with the
killed daemon) are counted and reported, not failed (the contract: the
remote end may see a message twice, never none).
"""
import os
import random
import re
import smtplib
import socket
import threading
import time
import uuid

from mailroot_suite import alive, options, wait_for
from peers import MXDNS, SmtpSink
from test_outbound import SENDER, sink_world, start_outbound

N = 500
SESSIONS = 8
MAX_ATTEMPTS = 40
CLIENT_TIMEOUT = 20
SEND_DEADLINE = 100
RECOVERY = 90
RCPT_DOMAIN = "crash.test"


def crash_message(token):
    t = token.encode()
    return (b"From: <" + SENDER.encode() + b">\r\n"
            b"To: <sink@" + RCPT_DOMAIN.encode() + b">\r\n"
            b"Subject: outbound crash " + t + b"\r\n"
            b"Message-ID: <" + t + b"@client.example.net>\r\n"
            b"\r\n" +
            b"".join(b"line %03d of %s, filler to make DATA last a little\r\n" % (i, t)
                     for i in range(30)) +
            b"end-of-" + t + b"\r\n")


class Senders:
    """N messages over several SMTP sessions in threads; a message is
    retried on 4xx and connection errors (bounded in attempts and time)."""

    def __init__(self, suite, tokens):
        self.suite = suite
        self.tokens = tokens
        self.lock = threading.Lock()
        self.acked = {}
        self.failed = {}
        self.errors = {}
        self.deadline = time.monotonic() + SEND_DEADLINE
        self.threads = [threading.Thread(target=self.worker, args=(i,), daemon=True)
                        for i in range(SESSIONS)]

    def count(self):
        with self.lock:
            return len(self.acked)

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        for t in self.threads:
            t.join(max(1, self.deadline - time.monotonic() + CLIENT_TIMEOUT + 5))
        return not any(t.is_alive() for t in self.threads)

    def worker(self, idx):
        conn = None
        for token in self.tokens[idx::SESSIONS]:
            msg = crash_message(token)
            why = "no attempt"
            for attempt in range(MAX_ATTEMPTS):
                if time.monotonic() > self.deadline:
                    why = "send deadline passed"
                    break
                if attempt:
                    time.sleep(min(0.05 * attempt, 0.5))
                try:
                    if conn is None:
                        conn = smtplib.SMTP("127.0.0.1", self.suite.port,
                                            local_hostname="client.example.net",
                                            timeout=CLIENT_TIMEOUT)
                        code, resp = conn.ehlo()
                        if code != 250:
                            raise smtplib.SMTPResponseException(code, resp)
                    code, resp = conn.mail(SENDER)
                    if code == 250:
                        code, resp = conn.rcpt("sink@" + RCPT_DOMAIN)
                    if code == 250:
                        code, resp = conn.data(msg)
                    if code == 250:
                        m = re.search(rb"queued as ([0-9a-f]{20})", resp)
                        with self.lock:
                            self.acked[token] = m.group(1).decode() if m else "?"
                        why = None
                        break
                    raise smtplib.SMTPResponseException(code, resp)
                except smtplib.SMTPResponseException as e:
                    why = "%d %r" % (e.smtp_code, e.smtp_error)
                    if not 400 <= e.smtp_code < 500:
                        break
                    kind = "%d" % e.smtp_code
                except (smtplib.SMTPServerDisconnected, socket.timeout, OSError) as e:
                    why = "%s: %s" % (type(e).__name__, e)
                    kind = type(e).__name__
                with self.lock:
                    self.errors[kind] = self.errors.get(kind, 0) + 1
                if conn is not None:
                    try:
                        conn.close()
                    except OSError:
                        pass
                    conn = None
            if why is not None:
                with self.lock:
                    self.failed[token] = why
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                pass


def complete_copies(sink):
    """token -> number of complete copies at the sink."""
    out = {}
    for m in sink.messages():
        toks = set(re.findall(rb"end-of-(otok-[0-9a-f]{8}-\d{4})\r\n", m.content))
        for t in toks:
            out[t.decode()] = out.get(t.decode(), 0) + 1
    return out


@options(start=False, timeout=240)
def test_outbound_kill_deliverd_and_queued_while_mail_flows(suite):
    (a,), port = sink_world(suite, 1)
    dns = MXDNS(suite, mx={RCPT_DOMAIN: [(10, "mx." + RCPT_DOMAIN)]},
                hosts={"mx." + RCPT_DOMAIN: [a]})
    run = uuid.uuid4().hex[:8]
    tokens = ["otok-%s-%04d" % (run, i) for i in range(N)]
    with dns, SmtpSink(suite, a, port) as sink:
        start_outbound(suite, port, dns)
        senders = Senders(suite, tokens)
        kills = []
        killer_error = []
        rnd = random.Random()
        plan = [("deliverd", rnd.randint(60, 140)), ("queued", rnd.randint(200, 300)),
                ("deliverd", rnd.randint(340, 440))]

        def killer():
            try:
                for victim, at in plan:
                    wait_for(lambda: senders.count() >= at, 60,
                             "%d messages accepted before killing %s" % (at, victim), 0.01)
                    old = suite.daemon_pids()[victim]
                    t = time.monotonic()
                    os.kill(old, 9)
                    new = suite.wait_restarted(victim, old, timeout=15)
                    wait_for(lambda: not alive(old), 5, "killed %s to be gone" % victim)
                    kills.append((victim, old, new, at, len(sink.messages()),
                                  time.monotonic() - t))
            except BaseException as e:  # noqa: B902 - reported by the test
                killer_error.append(e)

        kt = threading.Thread(target=killer, daemon=True)
        t0 = time.monotonic()
        senders.start()
        kt.start()
        finished = senders.join()
        kt.join(60)
        sent_s = time.monotonic() - t0
        assert finished, "senders still running after the deadline"
        assert not killer_error, "killer: %s" % killer_error[0]
        assert len(kills) == 3, "kills done: %r" % kills
        assert not senders.failed, "%d message(s) never got 250, e.g. %r" % (
            len(senders.failed), sorted(senders.failed.items())[:3])
        acked = set(senders.acked)
        assert len(acked) == N

        def recovered():
            c = complete_copies(sink)
            return c if acked <= set(c) and not suite.queue_names() else None
        try:
            copies = wait_for(recovered, RECOVERY, "every accepted message at the sink", 0.5)
        except AssertionError:
            c = complete_copies(sink)
            missing = sorted(acked - set(c))
            raise AssertionError(
                "after %ds: %d of %d accepted messages never reached the sink (e.g. %s, "
                "queue ids %s); Queue/ holds %d files" % (
                    RECOVERY, len(missing), N, missing[:3],
                    [senders.acked[t] for t in missing[:3]], len(suite.queue_names())))
        suite.wait_queue_empty(10)
        dups = sum(n - 1 for n in copies.values())
        suite.note("sent %d in %.1fs (client retries: %s); kills %s; at the sink %d copies, "
                   "%d duplicate(s) of %d message(s)" % (
                       N, sent_s, ", ".join("%s %d" % kv for kv in sorted(senders.errors.items()))
                       or "none",
                       "; ".join("%s %d->%d at %d accepted/%d delivered (%.1fs)" % k
                                 for k in kills),
                       sum(copies.values()), dups, sum(1 for n in copies.values() if n > 1)))
        assert set(copies) <= set(tokens), "unknown tokens at the sink"
        assert suite.drop_names() == [], "DSNs or local mail in Drop/: %r" % \
            suite.drop_names()[:5]
        assert suite.badmail_names() == [], "Badmail/: %r" % suite.badmail_names()[:5]
        st = suite.status()
        assert st.restarts.get("deliverd", 0) >= 2 and st.restarts.get("queued", 0) >= 1, \
            "restart counts: %r" % st

