"""
test_stats.py - the counters (FEATURES O3): smtpctl show stats [--json]
(mailrootd asks each daemon: DAEMON_STATS / SUPERVISOR_STATS, CLIENT_STATS
to smtpctl) and the Prometheus endpoint of `metrics listen` (GET /metrics,
served by mailrootd).
"""
import json
import os
import re
import signal
import socket
import time

from mailroot_suite import DOMAIN, free_port, options, wait_for
from peers import MXDNS, PeerSMTP
from test_auth import USERS, plain, write_table
from test_outbound import send, sink_world, start_outbound, wait_outcome
from test_tls import PKI, starttls_raw

NAMES = {
    "smtpd.connections.current", "smtpd.connections.total", "smtpd.connections.refused",
    "smtpd.tls.sessions", "smtpd.auth.failures", "smtpd.messages.in", "smtpd.bytes.in",
    "queued.messages.in.smtpd", "queued.messages.in.pickupd", "queued.deliveries.local",
    "queued.deliveries.remote", "queued.deferrals", "queued.bounces",
    "queued.delay_notices", "queued.expired", "queued.badmail", "queued.queue.local",
    "queued.queue.remote",
    "deliverd.connections.current", "deliverd.connections.total",
    "deliverd.connections.failed", "deliverd.tls.sessions", "deliverd.messages.out",
    "deliverd.bytes.out",
}
GAUGES = {"smtpd.connections.current", "queued.queue.local", "queued.queue.remote",
          "deliverd.connections.current"}


def stats_json(suite):
    r = suite.smtpctl("show", "stats", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def stats_text(suite):
    r = suite.smtpctl("show", "stats")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines, r.stdout
    out = {}
    for line in lines:
        m = re.fullmatch(r"([a-z0-9_.]+)( +)(\d+)", line)
        assert m, "not NAME VALUE: %r" % line
        out[m.group(1)] = int(m.group(3))
    # aligned: names left, values right, every line as long; fits a terminal
    assert len({len(l) for l in lines}) == 1, r.stdout
    assert len(lines[0]) <= 80, r.stdout
    return out


def http(port, data, timeout=10):
    """Send raw octets to the metrics port, read until it closes: (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return None, b""
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
    if not buf:
        return None, b""
    head, _, body = buf.partition(b"\r\n\r\n")
    status = head.split(b"\r\n")[0]
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", status)
    assert m, "no status line: %r" % buf[:200]
    headers = head.decode().lower()
    assert "connection: close" in headers, head
    m2 = re.search(r"content-length: (\d+)", headers)
    assert m2 and int(m2.group(1)) == len(body), head
    return int(m.group(1)), body


METRIC_LINE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*) (\d+)")


def parse_exposition(text):
    """Check the text format (0.0.4): HELP and TYPE before each sample;
    return {name: (type, value)}."""
    out, helps, types = {}, {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, h = line[7:].partition(" ")
            assert h and name not in helps, line
            helps[name] = h
        elif line.startswith("# TYPE "):
            name, _, t = line[7:].partition(" ")
            assert t in ("counter", "gauge") and name not in types, line
            types[name] = t
        else:
            m = METRIC_LINE.fullmatch(line)
            assert m, "not a sample line: %r" % line
            name = m.group(1)
            assert name in helps and name in types and name not in out, line
            out[name] = (types[name], int(m.group(2)))
    assert text.endswith("\n"), text[-50:]
    return out


def prom_name(name):
    n = "mailroot_" + name.replace(".", "_")
    if name not in GAUGES and not n.endswith("_total"):
        n += "_total"
    return n


def settle(suite, want):
    """Wait until the gauges are back to 0 and `want` holds; the figures."""
    def check():
        s = stats_json(suite)
        if all(s.get(g) == 0 for g in GAUGES) and want(s):
            return s
        return None
    return wait_for(check, 15, "the counters to settle", 0.2)


@options(start=False, timeout=90)
def test_stats_and_metrics(suite):
    (a,), port = sink_world(suite, 1)
    pki = PKI(suite)
    crt, key = pki.server("mx")
    table = os.path.join(suite.dir, "passwd")
    write_table(table, USERS)
    mport = free_port()
    dns = MXDNS(suite, mx={"mx.test": [(10, "mx1.mx.test")]}, hosts={"mx1.mx.test": [a]})
    with dns, PeerSMTP(addr=a, port=port, cert=crt, key=key) as peer:
        start_outbound(suite, port, dns, conf={
            "listen": "on 127.0.0.1 port %d tls auth-plaintext" % suite.port,
            "auth-table": '"%s"' % table,
            "auth-failure-delay": "0",
            "tls-certificate": '"%s"' % crt, "tls-key": '"%s"' % key,
            "metrics": "listen 127.0.0.1 port %d" % mport,
        })
        assert re.search(r"metrics on 127\.0\.0\.1 port %d" % mport, suite.log_text())
        base = stats_json(suite)
        assert set(base) == NAMES, sorted(set(base) ^ NAMES)
        assert all(v == 0 for v in base.values()), base

        # a local message, a relayed one, a TLS session, a failed AUTH
        lqid, _, lmsg = send(suite, ["bob@" + DOMAIN])
        suite.wait_drop(lqid)
        rqid, token, rmsg = send(suite, ["carl@mx.test"])
        (m,) = peer.wait_messages(1, needle=token.encode())
        assert m.tls
        wait_outcome(suite, rqid, "sent", "carl@mx.test")
        with suite.raw() as c:
            c.expect("EHLO client.example.net", 250)
            c.expect("STARTTLS", 220)
            starttls_raw(c, pki)
            c.expect("EHLO client.example.net", 250)
            c.expect("QUIT", 221)
        with suite.raw() as c:
            c.expect("EHLO client.example.net", 250)
            user = next(iter(USERS))
            c.expect("AUTH PLAIN " + plain(user, "not the password"), 535)
            c.expect("QUIT", 221)

        s = settle(suite, lambda s: s["smtpd.connections.total"] == 4 and
                   s["deliverd.messages.out"] == 1)
        want = {
            "smtpd.connections.total": 4, "smtpd.connections.refused": 0,
            "smtpd.tls.sessions": 1, "smtpd.auth.failures": 1,
            "smtpd.messages.in": 2, "smtpd.bytes.in": len(lmsg) + len(rmsg),
            "queued.messages.in.smtpd": 2, "queued.messages.in.pickupd": 0,
            "queued.deliveries.local": 1, "queued.deliveries.remote": 1,
            "queued.deferrals": 0, "queued.bounces": 0, "queued.delay_notices": 0,
            "queued.expired": 0, "queued.badmail": 0,
            "deliverd.connections.total": 1, "deliverd.connections.failed": 0,
            "deliverd.tls.sessions": 1, "deliverd.messages.out": 1,
            "deliverd.bytes.out": len(m.data),
        }
        got = {k: s[k] for k in want}
        assert got == want, {k: (got[k], want[k]) for k in want if got[k] != want[k]}
        assert stats_text(suite) == s

        # the same figures as Prometheus text
        code, body = http(mport, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert code == 200, body
        prom = parse_exposition(body.decode())
        assert set(prom) == {prom_name(n) for n in NAMES}, sorted(prom)
        for n in NAMES:
            t, v = prom[prom_name(n)]
            assert t == ("gauge" if n in GAUGES else "counter"), (n, t)
            assert v == s[n], (n, v, s[n])
        assert prom["mailroot_smtpd_connections_total"] == ("counter", 4)
        assert prom["mailroot_queued_queue_remote"] == ("gauge", 0)
        # HTTP/1.0 and a bare-LF request too
        assert http(mport, b"GET /metrics HTTP/1.0\n\n")[0] == 200

        # everything else is refused, and the endpoint lives on
        assert http(mport, b"GET / HTTP/1.1\r\n\r\n")[0] == 404
        assert http(mport, b"GET /metrics/x HTTP/1.1\r\n\r\n")[0] == 404
        assert http(mport, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")[0] == 405
        assert http(mport, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n")[0] == 400
        assert http(mport, b"GET /metrics\r\n\r\n")[0] == 400
        assert http(mport, b"GET /metrics HTTP/2.0\r\n\r\n")[0] == 400
        assert http(mport, b"GET\x00/metrics HTTP/1.1\r\n\r\n")[0] == 400
        code, _ = http(mport, b"A" * 5000)
        assert code in (400, None), code

        # a slow client holds nothing up, and is cut off after a few seconds
        slow = socket.create_connection(("127.0.0.1", mport), timeout=10)
        slow.sendall(b"GET /met")
        t0 = time.monotonic()
        assert http(mport, b"GET /metrics HTTP/1.1\r\n\r\n")[0] == 200
        assert slow.recv(100) == b""
        slow.close()
        assert 3 < time.monotonic() - t0 < 9, time.monotonic() - t0

        # at most a handful of clients at once: more are closed unanswered
        idle = [socket.create_connection(("127.0.0.1", mport), timeout=10)
                for _ in range(8)]
        time.sleep(0.3)
        assert http(mport, b"GET /metrics HTTP/1.1\r\n\r\n")[0] is None
        for i in idle:
            i.close()
        wait_for(lambda: http(mport, b"GET /metrics HTTP/1.1\r\n\r\n")[0] == 200, 5,
                 "the endpoint to serve again")
        assert suite.status().rc == 0


@options(timeout=60)
def test_stats_daemon_down_and_metrics_off(suite):
    # Off by default: mailrootd listens on the SMTP port only.
    assert "metrics on" not in suite.log_text()
    pid = suite.daemon_pids()["mailrootd"]
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", t)
        if m:
            inodes.add(m.group(1))
    ports = set()
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(f) as fp:
            for line in fp.readlines()[1:]:
                c = line.split()
                if c[3] == "0A" and c[9] in inodes:
                    ports.add(int(c[1].rsplit(":", 1)[1], 16))
    assert ports == {suite.port}, ports

    # a refused client is counted (paused: 421 at once)
    assert suite.smtpctl("pause").returncode == 0
    with suite.raw(greet=False) as c:
        code, _ = c.reply()
        assert code == 421
    assert suite.smtpctl("resume").returncode == 0
    s = settle(suite, lambda s: s["smtpd.connections.refused"] == 1)
    assert s["smtpd.connections.total"] == 1, s

    # a daemon that does not answer has no figures; the others are there
    dpid = suite.daemon_pids()["deliverd"]
    os.kill(dpid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        s = stats_json(suite)
        assert time.monotonic() - t0 < 5
    finally:
        os.kill(dpid, signal.SIGCONT)
    assert not any(k.startswith("deliverd.") for k in s), s
    assert s["smtpd.connections.refused"] == 1 and "queued.queue.remote" in s, s
    s = stats_json(suite)
    assert set(s) == NAMES, sorted(set(s) ^ NAMES)


def test_stats_pickup_and_badmail(suite):
    good = (b"x-sender: app@sender.example.net\r\n"
            b"x-receiver: one@" + DOMAIN.encode() + b"\r\n"
            b"Subject: stats tok-stats-1\r\n\r\nbody\r\n")
    suite.pickup("good.eml", good)
    suite.pickup("bad.eml", b"no envelope at all\r\n\r\nbody\r\n")
    suite.wait_pickup_gone("good.eml")
    suite.wait_pickup_gone("bad.eml")
    s = settle(suite, lambda s: s["queued.messages.in.pickupd"] == 1 and
               s["queued.badmail"] == 1 and s["queued.deliveries.local"] == 1)
    assert s["queued.messages.in.smtpd"] == 0 and s["smtpd.messages.in"] == 0, s
