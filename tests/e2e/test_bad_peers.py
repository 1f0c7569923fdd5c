"""Misbehaving remote servers (issue 7): what deliverd does when the server
it delivers to never accepts the connection, never greets, trickles its
greeting, stalls in the middle of DATA (stops reading, or never answers
the final dot), drops the connection after 354, answers garbage (binary,
"2x0", a multi-line reply that never ends, a continuation line with
another code, a reply nobody asked for) or a 10 MB reply line, closes at
once or resets.

Every scenario is a scripted server (BadPeer, below: raw sockets, one
thread per connection) on its own loopback port, reached by `remote-domain
bp-NAME.test route [127.0.0.1]:PORT`; one message goes to each, all at the
same time, to one instance with `outbound-timeout 5s` and
`outbound-connect-timeout 2s`; the TLS ones have `tls require`.  The
test checks:

  - the recipient is deferred (queued's outcome line status=deferred with a
    4.x.x code), the message stays in Queue/ with a retry scheduled and the
    error shown by `smtpq --json` / `smtpq show`; no NDR (nothing in Drop/);
  - deliverd gave up within a bound of outbound-timeout (the time from the
    server's accept to deliverd's `status=failed|lost` line is printed);
  - deliverd stays up (same pid, no "deliverd (pid N) killed by signal" or
    "exited with status" line of mailrootd in the log);
  - deliverd does not buffer a 10 MB reply line: the two 10 MB scenarios
    run after the others, alone, and deliverd's peak memory (VmHWM, reset
    before) grows by less than 8 MiB around them; over all the scenarios
    its VmRSS grows by less than 16 MiB (ASan's quarantine included);
  - a server that stops reading stalled deliverd's writes (4 MB message,
    small receive buffer): it got less than the message;
  - while the stalling servers hold their connections, mail for another
    domain is delivered (deliverd is not blocked by them);
  - when each bad server is replaced by a good one (PeerSMTP, same port)
    and `smtpq retry all` is issued, every message is delivered once.

retry-intervals are an hour, so that only the operator's retry explains a
second attempt within the test.
"""
import json
import os
import re
import socket
import struct
import threading
import time

from mailroot_suite import options, wait_for
from peers import PeerSMTP, TestCA
from test_outbound import SENDER, log_time, message, new_token, start_outbound

TIMEOUT = 5                     # outbound-timeout, seconds
GIVE_UP = 3 * TIMEOUT + 5       # deliverd must have given up by then
BIG_REPLY = 10 * 1024 * 1024    # the reply line without CRLF
BIG_MESSAGE = 4 * 1024 * 1024   # the message of the write stall
MEMORY_BOUND = 8 * 1024 * 1024


class _Gone(Exception):
    """The client closed the connection, or the server is stopping."""


class BadConn:
    """One accepted connection of a BadPeer: what the script needs (send,
    lines, a minimal SMTP dialogue) and what was seen (times, bytes)."""

    def __init__(self, peer, sock):
        self.peer, self.sock = peer, sock
        self.buf = b""
        self.accepted = time.time()
        self.closed_at = None           # when the client's EOF was read
        self.sent = 0
        self.received = 0
        self.commands = []
        self.sock.settimeout(0.2)

    def send(self, data):
        view = memoryview(data)
        while view:
            if self.peer.stopping.is_set():
                raise _Gone()
            try:
                n = self.sock.send(view[:65536])
            except socket.timeout:
                continue
            except OSError:
                raise _Gone()
            self.sent += n
            view = view[n:]

    def _recv(self):
        while True:
            if self.peer.stopping.is_set():
                raise _Gone()
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self.closed_at = time.time()
                raise _Gone()
            self.received += len(chunk)
            return chunk

    def line(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise _Gone()
            self.buf += self._recv()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def drain(self):
        """Read and discard until the client closes (or the server stops)."""
        self.buf = b""
        while True:
            self._recv()

    def hold(self):
        """Read nothing more: wait for the server to be stopped."""
        self.peer.stopping.wait()
        raise _Gone()

    def dialogue(self, stop, pipelining=True):
        """Greet and answer like a server until `stop`: "mail" (MAIL read,
        not answered), "rcpt" (RCPT read, not answered), "354" (354 sent),
        "dot" (the final "." read, not answered)."""
        self.send(b"220 bad.test ESMTP\r\n")
        while True:
            line = self.line()
            self.commands.append(line)
            verb = line.split(b" ", 1)[0].upper()
            if verb == b"EHLO":
                self.send(b"250-bad.test\r\n" + (b"250-PIPELINING\r\n" if pipelining else b"") +
                          b"250 8BITMIME\r\n")
            elif verb == b"HELO":
                self.send(b"250 bad.test\r\n")
            elif verb == b"MAIL":
                if stop == "mail":
                    return
                self.send(b"250 2.1.0 Ok\r\n")
            elif verb == b"RCPT":
                if stop == "rcpt":
                    return
                self.send(b"250 2.1.5 Ok\r\n")
            elif verb == b"DATA":
                self.send(b"354 go ahead\r\n")
                if stop == "354":
                    return
                while self.line() != b".":
                    pass
                if stop == "dot":
                    return
                self.send(b"250 2.0.0 Ok\r\n")
            elif verb == b"QUIT":
                self.send(b"221 2.0.0 Bye\r\n")
                raise _Gone()
            else:
                self.send(b"250 2.0.0 Ok\r\n")


class BadPeer:
    """A scripted server on 127.0.0.1 (a free port): each connection runs
    script(conn) in a thread of its own.  rcvbuf: SO_RCVBUF of the
    listening socket (inherited by the connections), to make a server that
    stops reading stall the client's writes soon."""

    def __init__(self, name, script, rcvbuf=0):
        self.name, self.script, self.rcvbuf = name, script, rcvbuf
        self.fillers = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.conns = []
        self.errors = []
        self.threads = []
        self.sock = None
        self.port = None

    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        s.bind(("127.0.0.1", 0))
        self.sock, self.port = s, s.getsockname()[1]
        if self.script is None:
            # Never accepts, and its accept queue is full (backlog 0 holds
            # one): the kernel drops the client's SYN, connect() hangs.
            s.listen(0)
            for _ in range(3):
                f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                f.setblocking(False)
                f.connect_ex(("127.0.0.1", self.port))
                self.fillers.append(f)
            time.sleep(0.2)
            return self
        s.listen(16)
        s.settimeout(0.2)
        t = threading.Thread(target=self._accept_loop, daemon=True,
                             name="badpeer-%s" % self.name)
        t.start()
        self.threads.append(t)
        return self

    def route(self):
        return "[127.0.0.1]:%d" % self.port

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(5)
        for f in self.fillers:
            f.close()
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                s, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c = BadConn(self, s)
            with self.lock:
                self.conns.append(c)
            t = threading.Thread(target=self._serve, args=(c,), daemon=True,
                                 name="badpeer-%s-%d" % (self.name, len(self.conns)))
            self.threads.append(t)
            t.start()

    def _serve(self, c):
        try:
            self.script(c)
        except _Gone:
            pass
        except Exception as e:  # noqa: B902 - a bug in the script: report it
            with self.lock:
                self.errors.append("%s: %s" % (type(e).__name__, e))
        finally:
            try:
                c.sock.close()
            except OSError:
                pass


# ---- the scripts ---------------------------------------------------------------

def never_greets(c):
    c.drain()


def trickles_greeting(c):
    # A greeting of 300 octets, one octet every 0.2 s (60 s): each read
    # comes well within outbound-timeout, the reply never does.
    for b in b"220 " + b"x" * 296 + b"\r\n":
        c.send(bytes([b]))
        if c.peer.stopping.wait(0.2):
            raise _Gone()
    c.drain()


def stops_reading_in_data(c):
    c.dialogue("354")
    c.hold()


def never_answers_dot(c):
    c.dialogue("dot")
    c.drain()


def drops_after_354(c):
    c.dialogue("354")


def binary_greeting(c):
    c.send(bytes(range(256)) + b"\r\n")
    c.drain()


def code_2x0(c):
    c.send(b"2x0 bad.test ESMTP\r\n")
    c.drain()


def endless_multiline(c):
    # 220- lines as fast as the client takes them, never a last line.
    chunk = b"".join(b"220-greeting line that goes on %06d\r\n" % i for i in range(1000))
    for _ in range(1000):
        c.send(chunk)
    c.drain()


def mismatched_continuation(c):
    c.send(b"220 bad.test ESMTP\r\n")
    c.line()
    c.send(b"250-bad.test\r\n251-PIPELINING\r\n250 8BITMIME\r\n")
    c.drain()


def huge_greeting(c):
    c.send(b"220 " + b"x" * BIG_REPLY)
    c.drain()


def huge_reply_to_dot(c):
    c.dialogue("dot")
    c.send(b"250 " + b"y" * BIG_REPLY)
    c.drain()


def garbage_to_rcpt(c):
    c.dialogue("rcpt", pipelining=False)
    c.send(b"\xff\xfe\x00\x01garbage\x80\r\n")
    c.drain()


def starttls_then(c, after):
    c.send(b"220 bad.test ESMTP\r\n")
    c.line()
    c.send(b"250-bad.test\r\n250 STARTTLS\r\n")
    if c.line().upper() != b"STARTTLS":
        raise _Gone()
    c.send(b"220 2.0.0 Ready to start TLS\r\n")
    after(c)


def tls_stalls(c):
    # The client's ClientHello is read; no ServerHello ever comes.
    starttls_then(c, BadConn.drain)


def tls_trickles(c):
    # A TLS record header announcing a 16 KB handshake record, then its
    # octets one every 0.2 s: the TLS library waits for the whole record.
    def trickle(c):
        c.send(b"\x16\x03\x03\x40\x00")
        for _ in range(300):
            c.send(b"\x00")
            if c.peer.stopping.wait(0.2):
                raise _Gone()
        c.drain()
    starttls_then(c, trickle)


def resets_in_data(c):
    c.dialogue("354")
    while c.received < 200000:         # some of the content, then RST
        c.buf = b""
        c._recv()
    resets(c)


def unasked_reply(c):
    c.send(b"220 bad.test ESMTP\r\n220 and again\r\n")
    c.drain()


def closes_at_once(c):
    c.sock.close()
    raise _Gone()


def resets(c):
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.sock.close()
    raise _Gone()


# name: (script, what deliverd must give as the reason, in its log and the error)
SCENARIOS = {
    "silent": (never_greets, r"timeout waiting for the server"),
    "trickle": (trickles_greeting, r"timeout waiting for the server"),
    "noread": (stops_reading_in_data, r"timeout waiting for the server"),
    "nodot": (never_answers_dot, r"timeout waiting for the server"),
    "drop354": (drops_after_354, r"connection closed by the server|reset"),
    "binary": (binary_greeting, r"malformed reply"),
    "code2x0": (code_2x0, r"malformed reply"),
    "endless": (endless_multiline, r"malformed reply"),
    "mismatch": (mismatched_continuation, r"malformed reply"),
    "hugegreet": (huge_greeting, r"reply line too long"),
    "hugedot": (huge_reply_to_dot, r"reply line too long"),
    "garbage": (garbage_to_rcpt, r"malformed reply"),
    "close": (closes_at_once, r"connection closed by the server|reset"),
    "rst": (resets, r"reset by peer|connection closed by the server"),
    "rstdata": (resets_in_data, r"reset by peer|broken pipe|connection closed by the server"),
    "unasked": (unasked_reply, r"a reply nobody asked for"),
    "nosyn": (None, r"connection timed out"),
    "tlsstall": (tls_stalls, r"timeout"),
    "tlstrickle": (tls_trickles, r"timeout"),
}
# tls require: a TLS failure defers (opportunistic would retry in plaintext)
TLS_REQUIRE = ("tlsstall", "tlstrickle")
# These get a message of BIG_MESSAGE octets: the server stops reading,
# or goes away, while deliverd still has content to write.
BIG = ("noread", "drop354", "rstdata")
STALLERS = ("silent", "trickle", "noread", "nodot", "tlsstall", "tlstrickle")
HUGE = ("hugegreet", "hugedot")


# ---- helpers ---------------------------------------------------------------------

def smtpq(suite, *args):
    r = suite.run([os.path.join(suite.builddir, "smtpctl", "smtpq"), "-f", suite.conf_path] +
                  list(args), timeout=30)
    assert r.returncode == 0, "smtpq %s: exit %d: %s%s" % (
        " ".join(args), r.returncode, r.stdout, r.stderr)
    return r.stdout


def memory(pid):
    """(VmRSS, VmHWM) of a process in octets."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024
    return out["VmRSS"], out["VmHWM"]


def reset_peak(pid):
    """Reset VmHWM to the current RSS (Linux clear_refs 5); False if refused."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def give_up_line(suite, qid):
    """deliverd's line where it gave up on the server for qid: (time, line)."""
    pat = re.compile(r"\b%s relay=\S+ status=(failed|lost) reason=" % qid)
    for line in suite.log_text().splitlines():
        if pat.search(line):
            return log_time(line), line
    return None


def outcome(suite, qid, rcpt, status):
    pat = re.compile(r"\b%s status=%s to=<%s>" % (qid, status, re.escape(rcpt)))
    return [l for l in suite.log_text().splitlines() if pat.search(l)]


def daemon_deaths(suite):
    return [l for l in suite.log_text().splitlines()
            if re.search(r"\bdeliverd (\(pid \d+\) )?(killed by signal|exited with status)", l)]


def send_one(suite, rcpt, size=0):
    token = new_token()
    msg = message(token, to=rcpt)
    if size:
        line = b"x" * 998 + b"\r\n"
        msg += line * (size // len(line))
    return suite.send(SENDER, [rcpt], msg), token


# ---- the test ----------------------------------------------------------------------

@options(start=False, timeout=120)
def test_bad_peers_defer_and_deliverd_stays_healthy(suite):
    peers = {n: BadPeer(n, script, rcvbuf=4096 if n == "noread" else 0)
             for n, (script, _) in SCENARIOS.items()}
    good = PeerSMTP(hostname="good.test")
    ca = TestCA(suite)
    crt, key = ca.server("fixed", ["127.0.0.1"])    # a literal route: its address is the name
    started = []
    try:
        for p in peers.values():
            started.append(p.start())
        good.start()
        lines = ["remote-domain bp-%s.test route %s%s" % (
            n, p.route(), " tls require" if n in TLS_REQUIRE else "") for n, p in peers.items()]
        lines.append("remote-domain good.test route %s" % good.route())
        start_outbound(suite, 25, lines=lines, conf={
            "outbound-timeout": "%ds" % TIMEOUT, "outbound-connect-timeout": "2s",
            "retry-intervals": "1h 1h 1h 1h", "max-message-size": "8M",
            "outbound-tls-ca-file": '"%s"' % ca.ca_pem})

        # A first delivery loads what deliverd loads once; then the baseline.
        qid0, tok0 = send_one(suite, "warm@good.test")
        good.wait_messages(1, needle=tok0.encode(), timeout=20)
        pid = suite.daemon_pids()["deliverd"]
        rss0, _ = memory(pid)

        sent, t_sent = {}, {}

        def submit(names):
            t0 = time.time()
            for n in names:
                t_sent[n] = time.time()
                rcpt = "user@bp-%s.test" % n
                qid, tok = send_one(suite, rcpt, size=BIG_MESSAGE if n in BIG else 0)
                sent[n] = (qid, tok, rcpt)
            suite.note("%d messages to bad servers submitted in %.1fs" % (
                len(names), time.time() - t0))

        def wait_gave_up(names):
            try:
                wait_for(lambda: all(give_up_line(suite, sent[n][0]) for n in names),
                         GIVE_UP + 10, "deliverd to give up on every bad server", 0.1)
            except AssertionError:
                raise AssertionError("deliverd still talks to: %s" % ", ".join(
                    n for n in names if give_up_line(suite, sent[n][0]) is None))

        # Everything but the 10 MB reply lines, at the same time.
        submit([n for n in peers if n not in HUGE])

        # While the stalling servers hold their connections, other mail flows.
        wait_for(lambda: all(peers[n].conns for n in STALLERS), 15,
                 "a connection at each stalling server")
        t1 = time.time()
        qid1, tok1 = send_one(suite, "busy@good.test")
        good.wait_messages(1, needle=tok1.encode(), timeout=20)
        t_good = time.time()
        held = [n for n in STALLERS
                if give_up_line(suite, sent[n][0]) is None and
                peers[n].conns[0].closed_at is None]
        suite.note("good.test delivered in %.2fs while %s held their connections" % (
            t_good - t1, ", ".join(held) or "none"))
        assert held, "no stalling server was still holding its connection when the mail " \
            "for good.test arrived (%.1fs): deliverd gave up on them all first" % (t_good - t1)

        wait_gave_up(list(sent))
        # Then the 10 MB reply lines alone, deliverd's peak memory measured
        # around them (the stalled content streamed above must not count:
        # under ASan every freed buffer stays in the quarantine).
        peak_reset_huge = reset_peak(pid)
        rss_h0, hwm_h0 = memory(pid)
        submit(HUGE)
        wait_gave_up(HUGE)
        rss1, hwm1 = memory(pid)
        growth_huge = hwm1 - (rss_h0 if peak_reset_huge else hwm_h0)
        suite.note("deliverd memory around the 10 MB reply lines: VmRSS %d KiB before, "
                   "peak %d KiB after (growth %d KiB%s)" % (
                       rss_h0 // 1024, hwm1 // 1024, growth_huge // 1024,
                       "" if peak_reset_huge else "; the peak could not be reset"))
        assert growth_huge < MEMORY_BOUND, \
            "deliverd's peak memory grew by %d KiB around two 10 MB reply lines" % (
                growth_huge // 1024)

        # Each bad server: deliverd gave up within the bound, and deferred.
        problems = []
        for n, (qid, tok, rcpt) in sent.items():
            t, line = give_up_line(suite, qid)
            # From the server's accept; from the submission for the one that never accepts.
            since = peers[n].conns[0].accepted if peers[n].conns else t_sent[n]
            took = max(0.0, t - since)
            reason = re.search(r'reason="(.*)"', line).group(1)
            suite.note("%-9s gave up after %5.2fs: %s (peer sent %d, read %d octets)" % (
                n, took, reason, peers[n].conns[0].sent if peers[n].conns else 0,
                peers[n].conns[0].received if peers[n].conns else 0))
            if not re.search(SCENARIOS[n][1], reason, re.I):
                problems.append("%s: reason %r, want /%s/" % (n, reason, SCENARIOS[n][1]))
            if not took <= GIVE_UP:
                problems.append("%s: gave up after %.1fs (bound %ds)" % (n, took, GIVE_UP))
            want = 0 if SCENARIOS[n][0] is None else 1
            if len(peers[n].conns) != want:
                problems.append("%s: %d connections, want %d" % (n, len(peers[n].conns), want))
        wait_for(lambda: all(outcome(suite, q, r, "deferred") for q, _, r in sent.values()),
                 10, "a deferred outcome for every bad server")
        for n, (qid, tok, rcpt) in sent.items():
            (line,) = outcome(suite, qid, rcpt, "deferred")
            m = re.search(r"\bdsn=(\S+)", line)
            if not (m and re.fullmatch(r"4\.\d+\.\d+", m.group(1))):
                problems.append("%s: deferred without a 4.x.x code: %s" % (n, line))
            if outcome(suite, qid, rcpt, "(sent|bounced|expired)"):
                problems.append("%s: another outcome than deferred" % n)
        assert not problems, "\n".join(problems)

        # The queue: every message still there, error recorded, retry in an hour.
        q = {m["id"]: m for m in json.loads(smtpq(suite, "--json"))}
        for n, (qid, tok, rcpt) in sent.items():
            assert qid in q, "%s: %s is not in the queue: %r" % (n, qid, sorted(q))
            (r,) = q[qid]["recipients"]
            assert r["state"] == "pending", (n, r)
            assert re.search(SCENARIOS[n][1], r["error"], re.I) and "4." in r["error"], \
                "%s: the recorded error is %r" % (n, r["error"])
            assert q[qid]["next_attempt"] > time.time() + 3000, (n, q[qid])
            assert q[qid]["attempts"] == 1, (n, q[qid])
        shown = smtpq(suite, "show", sent["hugegreet"][0])
        assert "rcpt pending <%s>" % sent["hugegreet"][2] in shown and \
            "reply line too long" in shown, shown
        assert not [l for l in shown.splitlines() if len(l) > 1100], \
            "smtpq show has a line of %d octets" % max(len(l) for l in shown.splitlines())
        assert suite.drop_names() == [], "an NDR for a temporary failure? Drop/: %r" % \
            suite.drop_names()

        # deliverd: alive, the same process, its memory bounded.
        assert not daemon_deaths(suite), daemon_deaths(suite)
        assert suite.daemon_pids()["deliverd"] == pid, "deliverd was restarted"
        growth = rss1 - rss0
        suite.note("deliverd memory over all the scenarios: VmRSS %d KiB before, %d KiB "
                   "after (growth %d KiB)" % (rss0 // 1024, rss1 // 1024, growth // 1024))
        assert growth < 2 * MEMORY_BOUND, "deliverd's memory grew by %d KiB" % (growth // 1024)
        # The server that stopped reading: the content was cut, not all sent.
        noread = peers["noread"].conns[0]
        assert noread.received < BIG_MESSAGE, "the stalled server read %d octets" % \
            noread.received

        # Good servers take their place; the operator's retry delivers everything.
        for n in peers:
            peers[n].stop()
        goods = {}
        for n, p in peers.items():
            tls = {"cert": crt, "key": key} if n in TLS_REQUIRE else {}
            goods[n] = PeerSMTP(port=p.port, hostname="fixed-%s.test" % n, **tls)
            started.append(goods[n].start())
        t2 = time.time()
        smtpq(suite, "retry", "all")
        for n, (qid, tok, rcpt) in sent.items():
            (m,) = goods[n].wait_messages(1, needle=tok.encode(), timeout=30)
            assert m.rcpts == [rcpt], (n, m.rcpts)
            assert m.tls == (n in TLS_REQUIRE), (n, m.tls)
        suite.wait_queue_empty(15)
        suite.note("after the retry, %d messages delivered in %.1fs" % (len(sent),
                                                                       time.time() - t2))
        for n, (qid, tok, rcpt) in sent.items():
            assert len(outcome(suite, qid, rcpt, "sent")) == 1, n
            assert len(goods[n].find(tok.encode())) == 1, "%s: delivered twice" % n
        assert suite.drop_names() == [], suite.drop_names()
        assert not daemon_deaths(suite), daemon_deaths(suite)
        assert suite.daemon_pids()["deliverd"] == pid, "deliverd was restarted"
        errs = [(n, p.errors) for n, p in peers.items() if p.errors]
        assert not errs, "scripted servers failed: %r" % errs
    finally:
        for p in started:
            p.stop()
        good.stop()
