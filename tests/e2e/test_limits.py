"""
test_limits.py - inbound limits and timeouts of smtpd (FEATURES L2, L3, M1,
M2, M4): max-connections, max-connections-per-client, command-timeout,
data-timeout, data-block-timeout, idle-timeout, max-session-size,
max-recipients; and the open-files limit mailrootd raises at start.
"""
import os
import socket
import time

from mailroot_suite import DOMAIN, RawSMTP, Skip, options, wait_for


def _greeting(sock_timeout, port, source=None):
    """Connect (from `source` when given) and read the first reply."""
    s = socket.create_connection(("127.0.0.1", port), timeout=sock_timeout,
                                 source_address=(source, 0) if source else None)
    c = RawSMTP.__new__(RawSMTP)
    c.sock, c.buf = s, b""
    c.banner = c.reply()
    return c


@options(conf={"max-connections": "3"})
def test_max_connections(suite):
    conns = [suite.raw() for _ in range(3)]
    try:
        for c in conns:
            assert c.banner[0] == 220, "within the limit: %r" % (c.banner,)
        over = suite.raw()
        code, text = over.banner
        assert code == 421 and "4.7.0" in text and "Too many connections" in text, \
            "4th connection with max-connections 3: %r" % text
        assert over.closed_by_peer(5), "connection over the limit not closed"
        over.close()
        # One leaves: a new one is served again.
        conns.pop().expect("QUIT", 221)
        def served():
            c = suite.raw()
            if c.banner[0] == 220:
                return c
            c.close()
            return None
        conns.append(wait_for(served, 5, "a free slot after a QUIT"))
        assert "reason=too-many-connections" in suite.log_text()
    finally:
        for c in conns:
            c.close()


@options(conf={"max-connections-per-client": "2"})
def test_max_connections_per_client(suite):
    a = [_greeting(10, suite.port, "127.0.0.1") for _ in range(2)]
    try:
        assert all(c.banner[0] == 220 for c in a), [c.banner for c in a]
        third = _greeting(10, suite.port, "127.0.0.1")
        assert third.banner[0] == 421 and "4.7.0" in third.banner[1], third.banner
        assert third.closed_by_peer(5)
        third.close()
        # Another client address is counted apart.
        other = _greeting(10, suite.port, "127.0.0.2")
        assert other.banner[0] == 220, "another address: %r" % (other.banner,)
        other.expect("EHLO client.example.net", 250)
        other.expect("QUIT", 221)
        other.close()
    finally:
        for c in a:
            c.close()


@options(conf={"command-timeout": "2s"})
def test_command_timeout(suite):
    with suite.raw(timeout=15) as c:
        c.expect("EHLO client.example.net", 250)
        t0 = time.monotonic()
        code, text = c.reply()
        took = time.monotonic() - t0
        assert code == 421 and "4.4.2" in text and "Command timeout" in text, text
        assert 1.5 <= took <= 6, "command timeout of 2s took %.1fs" % took
        assert c.closed_by_peer(5)
    assert "phase=command" in suite.log_text()


@options(conf={"idle-timeout": "2s"})
def test_idle_timeout_caps_command_timeout(suite):
    # command-timeout is 5m by default: idle-timeout, shorter, wins.
    with suite.raw(timeout=15) as c:
        t0 = time.monotonic()
        code, text = c.reply()
        assert code == 421 and "4.4.2" in text, text
        assert time.monotonic() - t0 <= 6


@options(conf={"data-block-timeout": "2s"})
def test_data_block_timeout(suite):
    with suite.raw(timeout=15) as c:
        c.expect("EHLO client.example.net", 250)
        c.expect("MAIL FROM:<a@example.net>", 250)
        c.expect("RCPT TO:<stall@%s>" % DOMAIN, 250)
        c.expect("DATA", 354)
        c.send(b"Subject: stalled\r\n\r\nsome data but no end\r\n")
        t0 = time.monotonic()
        code, text = c.reply()
        assert code == 421 and "4.4.2" in text and "Data timeout" in text, text
        assert time.monotonic() - t0 <= 6
        assert c.closed_by_peer(5)
    suite.wait_queue_empty()
    assert suite.drop_names() == [], "a timed-out message was delivered"


@options(conf={"data-timeout": "2s", "data-block-timeout": "30s"})
def test_data_timeout_whole_phase(suite):
    with suite.raw(timeout=15) as c:
        c.expect("EHLO client.example.net", 250)
        c.expect("MAIL FROM:<a@example.net>", 250)
        c.expect("RCPT TO:<trickle@%s>" % DOMAIN, 250)
        c.expect("DATA", 354)
        t0 = time.monotonic()
        c.sock.settimeout(0.5)
        got = None
        # A line every 0.3s keeps the block timer alive; the phase timer is not.
        for i in range(40):
            try:
                c.send(b"line %d\r\n" % i)
            except OSError:
                break
            try:
                chunk = c.sock.recv(4096)
            except socket.timeout:
                continue
            got = chunk
            break
        took = time.monotonic() - t0
        assert got is not None, "no reply while trickling data for %.1fs" % took
        assert got.startswith(b"421 4.4.2") and b"Data timeout" in got, got
        assert 1.5 <= took <= 8, "data-timeout 2s took %.1fs" % took
    suite.wait_queue_empty()
    assert suite.drop_names() == []


@options(conf={"max-session-size": "10K", "max-message-size": "8K"})
def test_max_session_size(suite):
    body = b"Subject: s\r\n\r\n" + (b"x" * 70 + b"\r\n") * 80     # about 5.8K
    with suite.raw() as c:
        c.expect("EHLO client.example.net", 250)
        c.expect("MAIL FROM:<a@example.net>", 250)
        c.expect("RCPT TO:<s1@%s>" % DOMAIN, 250)
        c.expect("DATA", 354)
        c.send(body + b".\r\n")
        code, text = c.reply()
        assert code == 250, "first message within the session limit: %r" % text
        c.expect("MAIL FROM:<a@example.net>", 250)
        c.expect("RCPT TO:<s2@%s>" % DOMAIN, 250)
        c.expect("DATA", 354)
        c.send(body + b".\r\n")
        code, text = c.reply()
        assert code == 552 and "5.3.4" in text, "message crossing the session limit: %r" % text
        code, text = c.reply()
        assert code == 421 and "4.7.0" in text, "then the session closes: %r" % text
        assert c.closed_by_peer(5)
    suite.wait_drop_count(1)
    suite.wait_queue_empty()
    assert len(suite.drop_names()) == 1, suite.drop_names()


@options(conf={"max-message-size": "4K", "max-session-size": "0"})
def test_max_message_size_data(suite):
    with suite.raw() as c:
        c.expect("EHLO client.example.net", 250)
        c.expect("MAIL FROM:<a@example.net>", 250)
        c.expect("RCPT TO:<big@%s>" % DOMAIN, 250)
        c.expect("DATA", 354)
        c.send(b"Subject: big\r\n\r\n" + (b"y" * 99 + b"\r\n") * 60 + b".\r\n")
        code, text = c.reply()
        assert code == 552 and "5.3.4" in text, text
        # the session goes on
        c.expect("MAIL FROM:<a@example.net> SIZE=5000", 552)
        c.expect("NOOP", 250)


@options(conf={"max-recipients": "2"})
def test_max_recipients(suite):
    with suite.raw() as c:
        c.expect("EHLO client.example.net", 250)
        c.expect("MAIL FROM:<a@example.net>", 250)
        c.expect("RCPT TO:<r1@%s>" % DOMAIN, 250)
        c.expect("RCPT TO:<r2@%s>" % DOMAIN, 250)
        text = c.expect("RCPT TO:<r3@%s>" % DOMAIN, 452)
        assert "4.5.3" in text, text


def test_nofile_raised(suite):
    log = suite.log_text()
    assert "rlimit nofile=" in log, "mailrootd did not log its open-files limit"
    pids = suite.daemon_pids()
    with open("/proc/%d/limits" % pids["smtpd"]) as f:
        line = [l for l in f if l.startswith("Max open files")][0]
    soft, hard = line.split()[3:5]
    assert soft == hard, "smtpd's open-files limit not raised to the hard one: %r" % line


def _fill_drop(suite, tag):
    """Send one message of about 3K, delivered: Drop/ is then over 2K."""
    qid = suite.send("fill@example.net", ["%s@%s" % (tag, DOMAIN)],
                     b"Subject: fill\r\n\r\n" + (b"z" * 98 + b"\r\n") * 30)
    suite.wait_drop(qid)
    return qid


@options(conf={"drop-quota": "2K"})
def test_drop_quota(suite):
    _fill_drop(suite, "fill")
    # smtpd hears that Drop/ is full: RCPT for a local domain gets 452 4.2.2.
    def refused():
        with suite.raw() as c:
            c.expect("EHLO client.example.net", 250)
            c.expect("MAIL FROM:<a@example.net>", 250)
            code, text = c.cmd("RCPT TO:<late@%s>" % DOMAIN)
            return (code, text) if code != 250 else None
    code, text = wait_for(refused, 5, "RCPT to be refused over the drop quota")
    assert code == 452 and "4.2.2" in text and "Mailbox full" in text, text
    # Mail that queued takes anyway (from Pickup/) waits in the queue.
    suite.pickup("held.eml", b"x-sender: app@example.test\r\n"
                 b"x-receiver: held@example.test\r\n\r\nSubject: held\r\n\r\nheld\r\n")
    suite.wait_pickup_gone("held.eml")
    wait_for(lambda: any(n.endswith(".env") for n in suite.queue_names()), 5,
             "the Pickup message committed to Queue/")
    assert len(suite.drop_names()) == 1, "delivered over the quota: %r" % suite.drop_names()
    assert "reason=drop-quota" in suite.log_text()
    # The consumer empties Drop/: queued notices, delivers, smtpd accepts again.
    for n in suite.drop_names():
        os.unlink(suite.path("Drop", n))
    found = wait_for(lambda: suite.find_drop_containing(b"held\r\n"), 10,
                     "the held message delivered once Drop/ has room")
    assert found[0].receivers == ["held@example.test"]
    suite.wait_queue_empty()
    def accepted():
        with suite.raw() as c:
            c.expect("EHLO client.example.net", 250)
            c.expect("MAIL FROM:<a@example.net>", 250)
            return c.cmd("RCPT TO:<again@%s>" % DOMAIN)[0] == 250
    wait_for(accepted, 5, "RCPT accepted again under the quota")


# ---- many connections ----------------------------------------------------------------

N_CONNECTIONS = 2000


def _smtpd_memory(pid):
    """(Rss, Pss) of a process in KiB, from /proc/PID/smaps_rollup."""
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Rss", "Pss"):
                out[k] = int(v.split()[0])
    return out["Rss"], out["Pss"]


@options(timeout=90)
def test_2000_concurrent_connections(suite):
    import asyncio
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = N_CONNECTIONS + 256
    if hard != resource.RLIM_INFINITY and hard < need:
        raise Skip("the hard open-files limit (%d) is below %d" % (hard, need))
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    pid = suite.daemon_pids()["smtpd"]
    with open("/proc/%d/limits" % pid) as f:
        lim = [l for l in f if l.startswith("Max open files")][0].split()[3]
    if lim != "unlimited" and int(lim) < need:
        raise Skip("smtpd's open-files limit (%s) is below %d" % (lim, need))
    # Warm up (allocator, log) with one session, then take the baseline.
    with suite.raw() as c:
        c.expect("QUIT", 221)
    time.sleep(0.2)
    rss0, pss0 = _smtpd_memory(pid)

    async def run():
        sem = asyncio.Semaphore(200)        # connection attempts under way
        writers, codes = [], {}
        deadline = time.monotonic() + 40

        async def one(i):
            async with sem:
                for attempt in range(5):
                    try:
                        r, w = await asyncio.wait_for(
                            asyncio.open_connection("127.0.0.1", suite.port), 10)
                        break
                    except (OSError, asyncio.TimeoutError):
                        if attempt == 4 or time.monotonic() > deadline:
                            codes[i] = "connect failed"
                            return
                        await asyncio.sleep(0.1 * (attempt + 1))
                writers.append(w)
                try:
                    line = await asyncio.wait_for(r.readline(), 15)
                except asyncio.TimeoutError:
                    codes[i] = "no greeting"
                    return
                codes[i] = line[:3].decode("ascii", "replace")

        t0 = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(N_CONNECTIONS)))
        opened = time.monotonic() - t0
        # While they are all open, a new client still gets its 220 at once.
        loop = asyncio.get_running_loop()
        t1 = time.monotonic()
        c = await loop.run_in_executor(None, lambda: suite.raw(timeout=10))
        latency = time.monotonic() - t1
        banner = c.banner
        c.close()
        time.sleep(0.3)
        mem = _smtpd_memory(pid)
        for w in writers:
            w.close()
        return codes, opened, latency, banner, mem

    codes, opened, latency, banner, (rss1, pss1) = asyncio.run(run())
    tally = {}
    for v in codes.values():
        tally[v] = tally.get(v, 0) + 1
    assert len(codes) == N_CONNECTIONS, "%d of %d clients finished" % (len(codes), N_CONNECTIONS)
    bad = {k: v for k, v in tally.items() if k not in ("220", "421")}
    assert not bad, "connections without a greeting or 421: %r (all: %r)" % (bad, tally)
    assert banner[0] == 220, "a new session while %d are open: %r" % (N_CONNECTIONS, banner)
    assert latency < 2.0, "the new session's 220 took %.2fs" % latency
    suite.note("%d connections opened in %.1fs (%r); a new session's 220 after %.3fs"
               % (N_CONNECTIONS, opened, tally, latency))
    suite.note("smtpd memory per idle connection: Rss %.1f KiB, Pss %.1f KiB "
               "(Rss %d -> %d KiB)" % ((rss1 - rss0) / N_CONNECTIONS,
                                       (pss1 - pss0) / N_CONNECTIONS, rss0, rss1))
    # They all go away; smtpd serves on.
    def drained():
        r = suite.smtpctl("show", "sessions")
        return r.returncode == 0 and r.stdout.strip().splitlines()[-1] == "0 sessions"
    wait_for(drained, 20, "the sessions to end", interval=0.5)
    with suite.raw() as c:
        c.expect("EHLO client.example.net", 250)
