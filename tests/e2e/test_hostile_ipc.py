"""A compromised peer: malformed IPC frames sent to queued and mailrootd.

queued's links are socketpairs that mailrootd hands it at start (DAEMON_PEER
on the supervisor link, fd 3; mailrootd/mailrootd_proc.c).  So the test
becomes queued's supervisor: it stops the instance (whose mailrootd made the
Mailroot and committed mail), execs the real queued binary with a socketpair
of its own on fd 3 and the same arguments mailrootd gives (-d, and -u _smtpq
as root), hands it the config, then a fresh smtpd or pickupd link per
attack, and plays that compromised producer (or deliverd).  Each bad frame must be logged
on one line naming the peer, the link dropped (the test reads EOF), queued
left alive and serving a good producer, and the mail already committed kept.

mailrootd's own way in for another process is its control socket, which
every smtpctl reaches: bad greetings and bad frames there must be refused
and the client dropped, with mailrootd and its daemons untouched.  Its links
to the daemons are tested by a stand-in pickupd that the real mailrootd
starts (MAILROOT_LIBEXECDIR points at a directory with it and the real
smtpd, queued and deliverd): the stand-in hands its fd 3 to the test, which
sends what a compromised pickupd would; mailrootd must log it, drop and kill
that daemon and restart it alone.
"""
import os
import re
import socket
import struct
import threading
import time

from mailroot_suite import DOMAIN, alive, options, wait_for

HDR = ">IIII"           # type, payload length, request id, flags (common/ipc.c)
FLAG_FD = 1
MAX_PAYLOAD = 1024 * 1024


def enum_values(srcdir, enum):
    """name -> value of a C enum of common/proto.h (plain sequential enums)."""
    with open(os.path.join(srcdir, "common", "proto.h")) as f:
        text = f.read()
    body = text[text.index("enum %s {" % enum):]
    body = body[body.index("{") + 1:body.index("};")]
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    out, n = {}, 0
    for item in (x.strip() for x in body.split(",")):
        if not item:
            continue
        name, _, val = item.partition("=")
        n = int(val) if val.strip() else n
        out[name.strip()] = n
        n += 1
    return out


def u32(v):
    return struct.pack(">I", v)


def s(text):
    b = text.encode() if isinstance(text, str) else text
    return u32(len(b) + 1) + b + b"\0"


def frame(type_, payload=b"", rid=0, flags=0, length=None):
    return struct.pack(HDR, type_, len(payload) if length is None else length, rid,
                       flags) + payload


class Link:
    """One end of a socketpair, speaking frames (blocking, with a timeout)."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(10)
        self.buf = b""
        self.fds = []

    def send(self, data, fds=()):
        if fds:
            socket.send_fds(self.sock, [data], list(fds))
        else:
            self.sock.sendall(data)

    def recv(self, timeout=10):
        """(type, id, payload, fd or None); None at EOF."""
        self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 16:
                t, n, rid, fl = struct.unpack(HDR, self.buf[:16])
                if len(self.buf) >= 16 + n:
                    payload, self.buf = self.buf[16:16 + n], self.buf[16 + n:]
                    fd = self.fds.pop(0) if fl & FLAG_FD else None
                    return t, rid, payload, fd
            data, fds, _, _ = socket.recv_fds(self.sock, 65536, 4)
            self.fds += fds
            if not data:
                return None
            self.buf += data

    def eof(self, timeout=10):
        """True when the other end closes within timeout (frames before are skipped)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                m = self.recv(timeout=max(0.1, deadline - time.time()))
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
            if m is None:
                return True
            if m[3] is not None:
                os.close(m[3])
        return False

    def close(self):
        for fd in self.fds:
            os.close(fd)
        self.sock.close()


def get_str(payload, pos):
    n = struct.unpack(">I", payload[pos:pos + 4])[0]
    return payload[pos + 4:pos + 4 + n - 1].decode(), pos + 4 + n


class FakeSupervisor:
    """The real queued binary, with the test as its mailrootd."""

    def __init__(self, suite):
        self.suite = suite
        self.T = enum_values(suite.srcdir, "proto_type")
        self.P = enum_values(suite.srcdir, "proc_id")
        self.log_path = os.path.join(suite.dir, "queued-alone.log")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        argv = [os.path.join(suite.bindir, "queued"), "-d"]
        if suite.is_root:
            argv += ["-u", suite.conf.get("queued-user", "_smtpq")]
        logfd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.pid = os.fork()
        if self.pid == 0:
            try:
                os.dup2(theirs.fileno(), 3)
                null = os.open("/dev/null", os.O_RDWR)
                os.dup2(null, 0)
                os.dup2(null, 1)
                os.dup2(logfd, 2)
                os.closerange(4, 1024)
                os.execve(argv[0], argv, suite.env)
            finally:
                os._exit(127)
        os.close(logfd)
        theirs.close()
        self.parent = Link(ours)
        conf = os.open(suite.conf_path, os.O_RDONLY)
        self.parent.send(frame(self.T["DAEMON_CONFIG"], s(suite.conf_path), flags=FLAG_FD),
                         [conf])
        os.close(conf)
        self.parent.send(frame(self.T["DAEMON_GO"]))
        m = self.parent.recv(timeout=20)
        assert m and m[0] == self.T["SUPERVISOR_READY"], "queued did not get ready: %r %s" % (
            m, self.log())

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def peer(self, name):
        """A fresh link to queued as PROC_<name>, as mailrootd's wire_peers() makes."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.parent.send(frame(self.T["DAEMON_PEER"], u32(self.P["PROC_" + name.upper()]),
                               flags=FLAG_FD), [theirs.fileno()])
        theirs.close()
        return Link(ours)

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def stop(self):
        self.parent.close()
        try:
            wait_for(lambda: os.waitpid(self.pid, os.WNOHANG)[0] == self.pid, 10,
                     "queued to exit when its supervisor link closes")
        except AssertionError:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
            raise


def good_commit(sup, link, rcpt, body):
    """The protocol done right: open, write the content, commit; the queue id."""
    T = sup.T
    link.send(frame(T["QUEUE_MSG_OPEN"], rid=7))
    m = link.recv()
    assert m and m[0] == T["PRODUCER_MSG_OPENED"] and m[3] is not None, "open: %r" % (m,)
    qid, _ = get_str(m[2], 0)
    with os.fdopen(m[3], "wb") as f:
        f.write(body)
    payload = s(qid) + s("good@sender.example.net") + u32(0) + u32(0) + u32(0) + s("") + \
        u32(1) + s(rcpt) + u32(0) + s("")
    link.send(frame(T["QUEUE_MSG_COMMIT"], payload, rid=8))
    m = link.recv()
    assert m and m[0] == T["PRODUCER_MSG_COMMITTED"], "commit of %s: %r" % (qid, m)
    return qid


def attacks(T):
    """(name, peer, frames, fds to pass, log line expected): one per attack."""
    big = frame(T["QUEUE_ETRN"], length=MAX_PAYLOAD + 1)
    absurd_n = s("00000000000000000000") + s("a@b.example") + u32(0) * 3 + s("") + \
        u32(0xFFFFFFFF)
    long_field = u32(0x7FFFFFF0) + b"x" * 16
    return [
        ("a length over IPC_MAX_PAYLOAD", "smtpd", big, None, r"ipc smtpd: malformed frame"),
        ("unknown flags", "pickupd", frame(T["QUEUE_MSG_OPEN"], flags=0x80), None,
         r"ipc pickupd: malformed frame"),
        ("an fd flag without a descriptor", "smtpd",
         frame(T["QUEUE_BADMAIL"], s("x") + s("y"), flags=FLAG_FD), None,
         r"ipc smtpd: malformed frame"),
        ("more descriptors than a reader holds", "pickupd",
         frame(T["QUEUE_MSG_OPEN"]), 20, r"ipc pickupd: (malformed frame|receive)"),
        ("an unknown type", "smtpd", frame(9999), None,
         r"smtpd sent a bad or unexpected .*dropping the link"),
        ("a type only deliverd sends", "smtpd",
         frame(T["QUEUE_DELIVERY_RESULT"], u32(1) + u32(2)), None,
         r"smtpd sent a bad or unexpected QUEUE_DELIVERY_RESULT"),
        ("a type only the supervisor sends", "pickupd", frame(T["DAEMON_GO"]), None,
         r"pickupd sent a bad or unexpected DAEMON_GO"),
        ("ETRN from pickupd (only smtpd may)", "pickupd",
         frame(T["QUEUE_ETRN"], s("example.test")), None, r"pickupd sent a malformed ETRN"),
        ("a field longer than its frame", "smtpd",
         frame(T["QUEUE_MSG_ABORT"], long_field), None, r"smtpd sent a malformed abort"),
        ("an open whose announced envelope is malformed", "pickupd",
         frame(T["QUEUE_MSG_OPEN"], u32(1)), None, r"pickupd sent a malformed open"),
        ("a commit of a message never opened", "smtpd",
         frame(T["QUEUE_MSG_COMMIT"], absurd_n), None, r"smtpd sent a malformed commit"),
        # deliverd sends only results, and only for a batch in flight.
        ("a producer's type from deliverd", "deliverd", frame(T["QUEUE_MSG_OPEN"]), None,
         r"deliverd sent a bad or unexpected QUEUE_MSG_OPEN"),
        ("a result for no batch in flight", "deliverd",
         frame(T["QUEUE_DELIVERY_RESULT"], u32(0) * 4, rid=12345), None,
         r"deliverd sent a bad or unexpected QUEUE_DELIVERY_RESULT"),
        # These open a message first (a callable gets the queue id queued gave).
        ("a commit with 2^32-1 recipients", "smtpd",
         lambda qid: frame(T["QUEUE_MSG_COMMIT"], s(qid) + absurd_n[len(s(qid)):]), None,
         r"smtpd sent a malformed commit"),
        ("a commit whose recipient runs past the frame", "pickupd",
         lambda qid: frame(T["QUEUE_MSG_COMMIT"], s(qid) + s("a@b.example") + u32(0) * 3 +
                           s("") + u32(1) + u32(5000) + b"r@x"), None,
         r"pickupd sent a malformed commit"),
    ]


@options(conf={"relay": "allow 127.0.0.1/32", "retry-intervals": "1h 1h 1h 1h"}, timeout=90)
def test_queued_drops_a_hostile_producer(suite):
    # Committed mail: one message in Drop/, one deferred in Queue/.
    local = suite.send("c@sender.example.net", ["c@" + DOMAIN], b"Subject: c\r\n\r\nc\r\n")
    suite.wait_drop(local)
    held = suite.send("h@sender.example.net", ["h@remote.invalid"], b"Subject: h\r\n\r\nh\r\n")
    wait_for(lambda: "%s status=deferred" % held in suite.log_text(), 15, "the deferral")
    queue_before = {n: open(suite.path("Queue", n), "rb").read()
                    for n in suite.queue_names() if n.endswith(".eml")}
    assert any(n.startswith(held) for n in queue_before), "held message not in Queue/"
    r = suite.stop()
    assert r.returncode == 0, "smtpctl stop: %s%s" % (r.stdout, r.stderr)

    sup = FakeSupervisor(suite)
    try:
        T = sup.T
        fds_before = sup.fd_count()
        for what, peer, data, nfds, expect in attacks(T):
            link = sup.peer(peer)
            # The link works before the attack: a request a producer may send.
            if peer != "deliverd":
                link.send(frame(T["QUEUE_MSG_ABORT"], s("00000000000000000000")))
            if callable(data):
                link.send(frame(T["QUEUE_MSG_OPEN"], rid=1))
                m = link.recv()
                assert m and m[0] == T["PRODUCER_MSG_OPENED"], "%s: open: %r" % (what, m)
                os.close(m[3])
                data = data(get_str(m[2], 0)[0])
            start = len(sup.log())
            t0 = time.time()
            if nfds:
                extra = [os.open("/dev/null", os.O_RDONLY) for _ in range(nfds)]
                link.send(data, extra)
                for fd in extra:
                    os.close(fd)
            else:
                link.send(data)
            dropped = link.eof(timeout=10)
            link.close()
            assert dropped, "%s: queued kept the link\n%s" % (what, sup.log()[start:])
            assert alive(sup.pid), "%s: queued died\n%s" % (what, sup.log())
            logged = sup.log()[start:]
            lines = [ln for ln in logged.splitlines() if re.search(expect, ln)]
            assert len(lines) == 1, "%s: expected one line /%s/, log has:\n%s" % (
                what, expect, logged)
            suite.note("%s: dropped in %.0f ms: %s" % (
                what, 1000 * (time.time() - t0), lines[0].split(": ", 1)[-1]))

        # A truncated header, then silence: queued must not block on it.
        slow = sup.peer("pickupd")
        slow.send(frame(T["QUEUE_MSG_OPEN"])[:7])
        good = sup.peer("smtpd")
        qid = good_commit(sup, good, "after@" + DOMAIN, b"Subject: after\r\n\r\nafter\r\n")
        slow.close()

        # Many frames at once: 2,000 ETRN requests written without reading.
        n = 2000
        good.send(b"".join(frame(T["QUEUE_ETRN"], s("flood.example"), rid=i)
                           for i in range(n)))
        got = 0
        while got < n:
            m = good.recv(timeout=20)
            assert m is not None, "queued dropped a good smtpd after %d answers" % got
            assert m[0] == T["PRODUCER_ETRN_RESULT"] and m[1] == got, "answer %d: %r" % (got, m)
            got += 1
        suite.note("%d pipelined ETRN frames answered in order" % n)
        good.close()
        # The descriptors of every dropped peer were closed.
        wait_for(lambda: sup.fd_count() <= fds_before, 10,
                 "queued's descriptors back to %d (now %d)" % (fds_before, sup.fd_count()))
        # Messages opened by a dropped producer were discarded.
        wait_for(lambda: not suite.queue_tmp_names(), 10,
                 "an empty Queue/tmp/ (now %r)" % suite.queue_tmp_names())
        # (No Received: line: the producer writes that, and this one did not.)
        wait_for(lambda: os.path.exists(suite.path("Drop", qid + ".eml")), 10,
                 "Drop/%s.eml from the good producer" % qid)
        assert alive(sup.pid), "queued died"
    finally:
        sup.stop()

    # Nothing committed was lost or changed; the suite starts and delivers.
    for name, data in queue_before.items():
        with open(suite.path("Queue", name), "rb") as f:
            assert f.read() == data, "Queue/%s changed" % name
    assert os.path.exists(suite.path("Drop", local + ".eml")), "Drop/%s lost" % local
    suite.start()
    suite.barrier()
    assert any(n.startswith(held) for n in suite.queue_names()), "held message lost"


def control(suite):
    s_ = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s_.connect(suite.control_socket)
    return Link(s_)


def test_mailrootd_refuses_hostile_control_clients(suite):
    T = enum_values(suite.srcdir, "proto_type")
    pids = suite.daemon_pids()
    uid = os.geteuid()
    cases = [
        ("a wrong protocol version", frame(T["CTL_HELLO"], u32(0xDEAD)), "version mismatch",
         r"control: client uid=%d speaks protocol 57005" % uid),
        ("no greeting first", frame(T["CTL_STOP"]), "expected a greeting",
         r"control: client uid=%d sent CTL_STOP, not a greeting" % uid),
        ("a greeting without its version", frame(T["CTL_HELLO"]), "expected a greeting",
         r"control: client uid=%d sent CTL_HELLO, not a greeting" % uid),
        ("a length over IPC_MAX_PAYLOAD", frame(T["CTL_HELLO"], length=MAX_PAYLOAD + 1), None,
         r"ipc control: malformed frame"),
        ("unknown flags", frame(T["CTL_HELLO"], u32(7), flags=0x40), None,
         r"ipc control: malformed frame"),
        ("an fd flag without a descriptor", frame(T["CTL_HELLO"], u32(7), flags=FLAG_FD), None,
         r"ipc control: malformed frame"),
        ("20 descriptors on a greeting", frame(T["CTL_HELLO"], u32(7)), None,
         r"ipc control: (receive|malformed frame)"),
    ]
    mrd_fds = len(os.listdir("/proc/%d/fd" % pids["mailrootd"]))
    for what, data, reason, expect in cases:
        c = control(suite)
        start = len(suite.log_text())
        if what.startswith("20 descriptors"):
            extra = [os.open("/dev/null", os.O_RDONLY) for _ in range(20)]
            c.send(data, extra)
            for fd in extra:
                os.close(fd)
        else:
            c.send(data)
        m = c.recv(timeout=10) if reason else None
        if reason:
            assert m and m[0] == T["CLIENT_FAIL"] and reason in m[2].decode(errors="replace"), \
                "%s: answer %r" % (what, m)
        assert c.eof(timeout=10), "%s: mailrootd kept the client" % what
        c.close()
        logged = wait_for(lambda: (lambda t: t if re.search(expect, t) else None)(
            suite.log_text()[start:]), 10, "the log line of %s" % what)
        lines = [ln for ln in logged.splitlines() if re.search(expect, ln)]
        assert len(lines) == 1, "%s: expected one line /%s/:\n%s" % (what, expect, logged)
        suite.note("%s: refused and dropped" % what)
    # A greeted client sending nonsense gets an error, then is served.
    c = control(suite)
    c.send(frame(T["CTL_HELLO"], u32(int(re.search(
        r"#define PROTO_VERSION\s+(\d+)", open(os.path.join(
            suite.srcdir, "common", "proto.h")).read()).group(1)))))
    assert c.recv()[0] == T["CLIENT_OK"]
    for bad in (frame(9999, rid=1), frame(T["CTL_STATUS"], u32(1), rid=2),
                frame(T["CTL_QUEUE"], u32(0xFFFF) + s("x"), rid=3),
                frame(T["CLIENT_OK"], s("forged"), rid=4)):
        m = c.recv() if c.send(bad) is None else None
        assert m and m[0] == T["CLIENT_FAIL"], "bad request %r: %r" % (bad[:16], m)
    # Many frames at once: 1,000 status requests without reading.
    c.send(b"".join(frame(T["CTL_STATUS"], rid=100 + i) for i in range(1000)))
    for i in range(1000):
        m = c.recv(timeout=20)
        assert m and m[0] == T["CLIENT_STATUS"] and m[1] == 100 + i, "status %d: %r" % (i, m)
    c.close()
    # No descriptor of a dropped client stayed open in mailrootd.
    wait_for(lambda: len(os.listdir("/proc/%d/fd" % pids["mailrootd"])) <= mrd_fds, 10,
             "mailrootd's descriptors back to %d" % mrd_fds)
    # Nothing was restarted, everything still serves.
    assert suite.daemon_pids() == pids, "daemons changed: %r -> %r" % (pids,
                                                                      suite.daemon_pids())
    suite.barrier()


FAKE_PICKUPD = r'''#!/usr/bin/env python3
# A stand-in pickupd: hands its supervisor link (fd 3) to the test, then
# lives until the test lets it go.
import os, socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(os.environ["HOSTILE_SOCK"])
socket.send_fds(s, [b"3"], [3])
os.close(3)
s.recv(1)
'''


class FakeDaemon:
    """A pickupd started by the real mailrootd: each start of it hands the
    test its supervisor link, which the test then speaks on."""

    def __init__(self, suite):
        self.T = enum_values(suite.srcdir, "proto_type")
        libexec = os.path.join(suite.dir, "libexec")
        os.mkdir(libexec)
        os.chmod(libexec, 0o755)
        for name in ("smtpd", "queued", "deliverd"):
            os.symlink(os.path.join(suite.bindir, name), os.path.join(libexec, name))
        with open(os.path.join(libexec, "pickupd"), "w") as f:
            f.write(FAKE_PICKUPD)
        os.chmod(os.path.join(libexec, "pickupd"), 0o755)
        path = os.path.join(suite.dir, "hostile.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(4)
        self.listener.settimeout(30)
        suite.env.update(MAILROOT_LIBEXECDIR=libexec, HOSTILE_SOCK=path)
        self.starter = None

    def accept(self):
        """The next start of the fake: its supervisor link, greeted as a daemon."""
        if self.starter is not None:
            self.starter.close()
        self.starter, _ = self.listener.accept()
        self.starter.settimeout(10)
        _, fds, _, _ = socket.recv_fds(self.starter, 1, 1)
        assert len(fds) == 1, "the fake pickupd passed no descriptor"
        link = Link(socket.socket(fileno=fds[0]))
        while True:         # config, queued link, ...: up to DAEMON_GO
            m = link.recv(timeout=20)
            assert m is not None, "mailrootd closed the new pickupd's link"
            if m[3] is not None:
                os.close(m[3])
            if m[0] == self.T["DAEMON_GO"]:
                break
        link.send(frame(self.T["SUPERVISOR_READY"]))
        return link

    def close(self):
        if self.starter is not None:
            self.starter.close()
        self.listener.close()


@options(start=False, timeout=90)
def test_mailrootd_drops_a_hostile_daemon(suite):
    fake = FakeDaemon(suite)
    T = fake.T
    try:
        # smtpctl start returns once every daemon is ready: the fake too.
        res = []
        starter = threading.Thread(target=lambda: res.append(suite.smtpctl("start")))
        starter.start()
        link = fake.accept()
        starter.join(60)
        assert res and res[0].returncode == 0, "start: %r" % res
        suite.watch_supervisor()
        pids = suite.daemon_pids()
        cases = [
            ("a type only smtpd sends", frame(T["SUPERVISOR_AUTH_CHECK"], s("u") + s("p")),
             r"pickupd sent an unexpected SUPERVISOR_AUTH_CHECK: dropping its link"),
            ("a type only queued sends", frame(T["SUPERVISOR_QUEUE_DONE"], u32(1) + u32(0) +
                                               s("forged")),
             r"pickupd sent an unexpected SUPERVISOR_QUEUE_DONE: dropping its link"),
            ("an unknown type", frame(4242), r"pickupd sent an unexpected MSG_TYPE_4242"),
            ("a length over IPC_MAX_PAYLOAD", frame(T["SUPERVISOR_READY"],
                                                    length=MAX_PAYLOAD + 1),
             r"ipc pickupd: malformed frame, dropping peer"),
        ]
        for what, data, expect in cases:
            start = len(suite.log_text())
            link.send(data)
            assert link.eof(timeout=10), "%s: mailrootd kept the link" % what
            link.close()
            logged = wait_for(lambda: (lambda t: t if re.search(expect, t) else None)(
                suite.log_text()[start:]), 10, "the log line of %s" % what)
            assert len([ln for ln in logged.splitlines() if re.search(expect, ln)]) == 1, \
                "%s: expected one line /%s/:\n%s" % (what, expect, logged)
            # The fake does not exit by itself: a link that broke at the
            # framing leaves it to the test to end it, as a real daemon
            # does on EOF.
            link = fake.accept()
            suite.note("%s: dropped, pickupd restarted" % what)
        st = suite.status()
        assert st.rc == 0 and all(st.pids[n] == pids[n] for n in
                                  ("mailrootd", "smtpd", "queued", "deliverd")), \
            "more than pickupd restarted: %r -> %r" % (pids, st.pids)
        suite.barrier()
        link.close()
    finally:
        fake.close()
