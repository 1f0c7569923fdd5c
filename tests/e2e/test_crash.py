"""Crash safety: kill -9 a daemon under load; nothing acknowledged is lost.

Each message carries a unique token.  Senders retry on 4xx and connection
errors (bounded in attempts and time).  After the supervisor restarted the
daemon, every message that got 250 (every Pickup file that left Pickup/)
must be in Drop/, byte-exact; duplicates (committed, but the 250 was lost
with the connection) are counted and printed, not failed; no temporary is
left in Queue/tmp/ or Drop/, and Queue/ ends empty.
"""
import os
import re
import smtplib
import socket
import threading
import time
import uuid

from mailroot_suite import DOMAIN, alive, options, wait_for

N_SMTP = 500
N_SESSIONS = 10
N_PICKUP = 200
MAX_ATTEMPTS = 30
CLIENT_TIMEOUT = 20         # seconds an SMTP client waits for one reply
SEND_DEADLINE = 75          # seconds for all senders
RECOVERY = 20               # seconds for Drop/ and Queue/ to settle
TOKEN_RE = re.compile(rb"tok-[0-9a-f]{8}-\d{4}")


def smtp_message(token):
    t = token.encode()
    return (b"From: crash@sender.example.net\r\n"
            b"To: crash@" + DOMAIN.encode() + b"\r\n"
            b"Subject: crash test " + t + b"\r\n"
            b"Message-ID: <" + t + b"@sender.example.net>\r\n"
            b"\r\n" +
            b"".join(b"line %03d of %s: some filler to make the DATA phase last\r\n" % (i, t)
                     for i in range(40)))


class Load:
    """N messages over several SMTP sessions, each in its own thread."""

    def __init__(self, suite, n, sessions):
        self.suite = suite
        run = uuid.uuid4().hex[:8]
        self.tokens = ["tok-%s-%04d" % (run, i) for i in range(n)]
        self.sessions = sessions
        self.lock = threading.Lock()
        self.acked = {}         # token -> queue id
        self.failed = {}        # token -> why
        self.retries = 0
        self.timeouts = []      # (token, what) of replies that never came
        self.errors = {}        # kind -> count
        self.ack_times = []
        self.deadline = time.monotonic() + SEND_DEADLINE
        self.threads = [threading.Thread(target=self.worker, args=(i,), daemon=True)
                        for i in range(sessions)]

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        for t in self.threads:
            t.join(max(1, self.deadline - time.monotonic() + CLIENT_TIMEOUT + 5))
        return not any(t.is_alive() for t in self.threads)

    def longest_stall(self):
        t = sorted(self.ack_times)
        return max((b - a for a, b in zip(t, t[1:])), default=0.0)

    def count(self):
        with self.lock:
            return len(self.acked)

    def rcpt_for(self, token):
        """The recipient of the message carrying `token` (a subclass may vary it)."""
        return "crash@" + DOMAIN

    def message_for(self, token):
        """The content sent for `token` (a subclass may vary it)."""
        return smtp_message(token)

    def _err(self, kind):
        with self.lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1
            self.retries += 1

    def worker(self, idx):
        conn = None
        for token in self.tokens[idx::self.sessions]:
            rcpt, msg = self.rcpt_for(token), self.message_for(token)
            why = "no attempt"
            for attempt in range(MAX_ATTEMPTS):
                if time.monotonic() > self.deadline:
                    why = "send deadline passed"
                    break
                if attempt:
                    time.sleep(min(0.05 * attempt, 0.5))
                step = "connect"
                try:
                    if conn is None:
                        conn = smtplib.SMTP("127.0.0.1", self.suite.port,
                                            local_hostname="client.example.net",
                                            timeout=CLIENT_TIMEOUT)
                        step = "EHLO"
                        code, resp = conn.ehlo()
                        if code != 250:
                            raise smtplib.SMTPResponseException(code, resp)
                    step = "MAIL"
                    code, resp = conn.mail("crash@sender.example.net")
                    if code == 250:
                        step = "RCPT"
                        code, resp = conn.rcpt(rcpt)
                    if code == 250:
                        step = "DATA"
                        code, resp = conn.data(msg)
                    if code == 250:
                        m = re.search(rb"queued as ([0-9a-f]{20})", resp)
                        with self.lock:
                            self.acked[token] = m.group(1).decode() if m else "?"
                            self.ack_times.append(time.monotonic())
                        why = None
                        break
                    raise smtplib.SMTPResponseException(code, resp)
                except smtplib.SMTPResponseException as e:
                    why = "%s: %d %r" % (step, e.smtp_code, e.smtp_error)
                    if not 400 <= e.smtp_code < 500:
                        break           # a 5xx is final: a failure
                    self._err("%d at %s" % (e.smtp_code, step))
                except (socket.timeout, TimeoutError) as e:
                    why = "%s: timeout %s" % (step, e)
                    with self.lock:
                        self.timeouts.append((token, step))
                    self._err("timeout at %s" % step)
                except (smtplib.SMTPServerDisconnected, OSError) as e:
                    why = "%s: %s: %s" % (step, type(e).__name__, e)
                    self._err("%s at %s" % (type(e).__name__, step))
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


def drop_tokens(suite):
    """token -> list of Drop messages holding it."""
    out = {}
    for name in suite.drop_names():
        try:
            m = suite.read_drop(name)
        except FileNotFoundError:
            continue
        toks = set(TOKEN_RE.findall(m.content))
        assert len(toks) == 1, "Drop/%s holds %d tokens: %r" % (name, len(toks), toks)
        out.setdefault(toks.pop().decode(), []).append(m)
    return out


def kill_when(suite, victim, ready, timeout, result):
    """In a thread: once ready() is true, kill -9 the victim daemon and wait
    for the supervisor to restart it."""
    try:
        wait_for(ready, timeout, "the load to get going before killing %s" % victim, 0.01)
        old = suite.daemon_pids()[victim]
        os.kill(old, 9)
        result["killed"] = old
        result["at"] = time.monotonic()
        result["new"] = suite.wait_restarted(victim, old, timeout=10)
        result["restart_s"] = time.monotonic() - result["at"]
        wait_for(lambda: not alive(old), 5, "killed %s to be gone" % victim)
    except BaseException as e:  # noqa: B902 - reported by the test
        result["error"] = e


def check_recovered(suite, expected, victim, killer):
    """Every token in `expected` (token -> content) is in Drop/ byte-exact;
    the queue is empty; report duplicates.  Returns token -> messages."""
    assert "error" not in killer, "killer: %s" % killer["error"]
    assert "new" in killer, "%s was not killed and restarted: %r" % (victim, killer)
    assert killer["new"] != killer["killed"]

    def complete():
        found = drop_tokens(suite)
        if all(t in found for t in expected) and not (
                suite.queue_names() or suite.queue_tmp_names() or suite.drop_tmp_names()):
            return found
        return None
    try:
        found = wait_for(complete, RECOVERY, "recovery", 0.2)
    except AssertionError:
        found = drop_tokens(suite)
        missing = sorted(t for t in expected if t not in found)
        raise AssertionError(
            "after %ds: %d of %d acknowledged messages missing from Drop/ (e.g. %s); "
            "Queue/ %d files %r, Queue/tmp/ %r, Drop/ temporaries %r" % (
                RECOVERY, len(missing), len(expected), missing[:5], len(suite.queue_names()),
                suite.queue_names()[:6], suite.queue_tmp_names()[:6], suite.drop_tmp_names()))
    for token, msgs in found.items():
        for m in msgs:
            if token in expected:
                assert m.content == expected[token], \
                    "Drop/%s (%s) is not the message as sent: %r..." % (
                        m.name, token, m.content[:200])
            assert m.receivers == ["crash@" + DOMAIN], "Drop/%s: %r" % (m.name, m.receivers)
    assert suite.badmail_names() == [], "Badmail/: %r" % suite.badmail_names()
    st = suite.status()
    assert st.restarts.get(victim, 0) >= 1, "status after the kill: %r" % st
    assert re.search(r"%s \(pid %d\) killed by signal 9" % (victim, killer["killed"]),
                     suite.log_text()), "the supervisor did not log the kill of %s" % victim
    dups = {t: len(m) for t, m in found.items() if len(m) > 1}
    extra = sorted(t for t in found if t not in expected)
    suite.note("%s killed (pid %d), restarted as %d after %.2fs; %d messages in Drop/, "
               "%d duplicate(s)%s" % (victim, killer["killed"], killer["new"],
                                      killer["restart_s"], sum(len(m) for m in found.values()),
                                      sum(n - 1 for n in dups.values()),
                                      (", %d delivered without 250" % len(extra)) if extra else ""))
    return found


def smtp_crash(suite, victim):
    load = Load(suite, N_SMTP, N_SESSIONS)
    killer = {}
    kt = threading.Thread(target=kill_when, daemon=True,
                          args=(suite, victim, lambda: load.count() >= N_SMTP * 3 // 10, 30, killer))
    t0 = time.monotonic()
    load.start()
    kt.start()
    finished = load.join()
    kt.join(20)
    took = time.monotonic() - t0
    assert finished, "senders still running after the deadline"
    suite.note("sent %d messages in %.1fs over %d sessions (longest pause between two 250s "
               "%.2fs); %d retries (%s)" % (
        len(load.acked), took, N_SESSIONS, load.longest_stall(), load.retries,
        ", ".join("%s: %d" % kv for kv in sorted(load.errors.items())) or "none"))
    assert not load.failed, "%d message(s) never got 250, e.g. %r" % (
        len(load.failed), sorted(load.failed.items())[:3])
    assert len(load.acked) == N_SMTP
    expected = {t: smtp_message(t) for t in load.acked}
    check_recovered(suite, expected, victim, killer)
    # A session waiting on a reply when a daemon died must get one (a 4xx
    # or a closed connection), not hang until its own timeout.
    assert not load.timeouts, \
        "%d SMTP client(s) got no reply within %ds after %s was killed (e.g. %r): " \
        "sessions left waiting" % (len(load.timeouts), CLIENT_TIMEOUT, victim, load.timeouts[:3])


@options(timeout=120)
def test_kill_queued_under_smtp_load(suite):
    smtp_crash(suite, "queued")


@options(timeout=120)
def test_kill_smtpd_under_smtp_load(suite):
    smtp_crash(suite, "smtpd")


def pickup_message(token, i):
    t = token.encode()
    return (b"x-sender: app@sender.example.net\r\n"
            b"x-receiver: crash@" + DOMAIN.encode() + b"\r\n"
            b"From: app@sender.example.net\r\n"
            b"Subject: pickup crash " + t + b"\r\n"
            b"Message-ID: <" + t + b"@sender.example.net>\r\n"
            b"Date: Mon, 2 Feb 2026 10:00:00 +0000\r\n"
            b"\r\n" +
            b"".join(b"line %03d of %s\r\n" % (k, t) for k in range(20 + i % 30)))


def pickup_content(data):
    """What Drop/ holds after the Received: field: the file without its
    two envelope lines (Message-ID and Date are given, so none is added)."""
    return data.split(b"\r\n", 2)[2]


@options(timeout=120)
def test_kill_pickupd_while_files_arrive(suite):
    run = uuid.uuid4().hex[:8]
    files = {"crash-%04d" % i: ("tok-%s-%04d" % (run, i)) for i in range(N_PICKUP)}
    data = {name: pickup_message(tok, i) for i, (name, tok) in enumerate(files.items())}
    written = []
    errors = []

    def writer():
        try:
            for name in files:
                suite.pickup(name, data[name])
                written.append(name)
                time.sleep(0.004)
        except BaseException as e:  # noqa: B902
            errors.append(e)

    def taken():
        present = set(suite.pickup_names())
        return sum(1 for n in list(written) if n not in present)

    killer = {}
    kt = threading.Thread(target=kill_when, daemon=True,
                          args=(suite, "pickupd", lambda: taken() >= N_PICKUP // 4, 30, killer))
    wt = threading.Thread(target=writer, daemon=True)
    t0 = time.monotonic()
    wt.start()
    kt.start()
    wt.join(60)
    kt.join(20)
    assert not wt.is_alive() and not errors, "writer: %r" % errors
    assert len(written) == N_PICKUP
    # Every file must leave Pickup/ (the new pickupd rescans).
    try:
        wait_for(lambda: not suite.pickup_names(), 25, "Pickup/ to empty", 0.2)
    except AssertionError:
        raise AssertionError("%d file(s) still in Pickup/ after 25 s: %r" % (
            len(suite.pickup_names()), suite.pickup_names()[:5]))
    suite.note("%d Pickup files written and taken in %.1fs" % (N_PICKUP, time.monotonic() - t0))
    expected = {tok: pickup_content(data[name]) for name, tok in files.items()}
    found = check_recovered(suite, expected, "pickupd", killer)
    for tok, msgs in found.items():
        for m in msgs:
            assert m.sender == "app@sender.example.net", "Drop/%s: x-sender %r" % (m.name, m.sender)
