"""
test_abuse.py - abuse of the inbound listener (issue 7): thousands of
concurrent connections, slowloris clients (in a command line, an AUTH
exchange, BDAT and a TLS handshake), a client that pipelines
thousands of commands without reading, a 1 MB command line, AUTH guessing
spread over connections (one after another, at once, or hanging up before
the verdict), and the open-relay cells test_access.py's matrix
does not have (failed AUTH; source routes, the percent hack, quoted local
parts, bang paths, trailing dots, address literals, empty paths).

What test_limits.py, test_auth.py and test_access.py already show is not
repeated here: the limits of max-connections(-per-client), the plain
command, data-block and data timeouts, the 2,000-connection run, the AUTH
delay and the cut after N failures on one connection, the basic relay
matrix and the default configuration.

Memory is measured from /proc/PID/smaps_rollup (Rss and Pss, KiB) of every
process of the instance, or of smtpd alone where said.
"""
import asyncio
import itertools
import os
import resource
import socket
import threading
import time

from mailroot_suite import (ALIAS, DOMAIN, RawSMTPFrom, Skip, append_config, free_port,
                            options, wait_for)
from test_auth import USERS, configure, plain, write_table

N_CONNECTIONS = 5000
SOURCES = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")


# ---- helpers -------------------------------------------------------------------------

def memory(pid):
    """(Rss, Pss) of one process in KiB, (0, 0) when it is gone."""
    out = {"Rss": 0, "Pss": 0}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in out:
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out["Rss"], out["Pss"]


def instance_memory(suite):
    """Rss and Pss summed over every process of the instance, KiB."""
    rss = pss = 0
    for pid in suite.instance_pids():
        r, p = memory(pid)
        rss, pss = rss + r, pss + p
    return rss, pss


def sanitized(pid):
    """True when the process runs under AddressSanitizer (its memory is
    then inflated by redzones and quarantine: the bounds are wider)."""
    try:
        with open("/proc/%d/maps" % pid) as f:
            return "libasan" in f.read()
    except OSError:
        return "ASAN_OPTIONS" in os.environ


def cpu_seconds(pid):
    """User + system CPU time of a process, seconds."""
    with open("/proc/%d/stat" % pid, "rb") as f:
        data = f.read()
    fields = data[data.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def nofile_limit(pid):
    with open("/proc/%d/limits" % pid) as f:
        line = [l for l in f if l.startswith("Max open files")][0]
    soft = line.split()[3]
    return None if soft == "unlimited" else int(soft)


def raise_nofile(need):
    """Raise this process's open-files limit towards `need` (the hard
    limit too, as root): what it was, to restore, and what it is now."""
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft, hard = old
    if hard != resource.RLIM_INFINITY and hard < need and os.geteuid() == 0:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            return old, need
        except (ValueError, OSError):
            pass
    top = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if soft == resource.RLIM_INFINITY or soft < top:
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))
    return old, top


def session_count(suite):
    r = suite.smtpctl("show", "sessions")
    if r.returncode != 0 or not r.stdout.strip():
        return None
    last = r.stdout.strip().splitlines()[-1].split()
    return int(last[0]) if last and last[0].isdigit() else None


def read_reply_until(sock, deadline):
    """Read until EOF, a timeout or the deadline: all bytes, and whether
    the server closed."""
    data = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, min(1.0, deadline - time.monotonic())))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


# ---- 1. thousands of concurrent connections ----------------------------------------

@options(start=False, timeout=150)
def test_5000_concurrent_connections(suite):
    want = N_CONNECTIONS
    old, have = raise_nofile(want + 512)
    try:
        suite.write_config({"max-connections": str(want + 100),
                            "max-connections-per-client": "0"})
        suite.start()       # smtpctl, mailrootd and smtpd inherit the raised limit
        pid = suite.daemon_pids()["smtpd"]
        lim = nofile_limit(pid)
        n = want
        if lim is not None:
            n = min(n, lim - 128)
        n = min(n, have - 256)
        if n < 500:
            raise Skip("open-files limits too low for a load test: this process %d, "
                       "smtpd %s" % (have, lim))
        if n < want:
            suite.note("sized down to %d connections: open-files limit %d here, %s in "
                       "smtpd (the hard limit; raise it to run %d)" % (n, have, lim, want))
        _many_connections(suite, pid, n)
    finally:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, old)
        except (ValueError, OSError):
            pass


def _many_connections(suite, pid, n):
    asan = sanitized(pid)
    # Warm up (allocator, log, DNS) with one session; then the baseline.
    suite.send("warm@example.net", ["warm@" + DOMAIN], b"Subject: warm\r\n\r\nwarm\r\n")
    time.sleep(0.3)
    rss0, pss0 = instance_memory(suite)
    srss0, _ = memory(pid)
    cpu0, pcpu0 = cpu_seconds(pid), time.process_time()

    async def run():
        sem = asyncio.Semaphore(256)        # connections being set up at once
        held, result = [], {}
        deadline = time.monotonic() + 45

        async def one(i):
            src = SOURCES[i % len(SOURCES)]
            async with sem:
                for attempt in range(6):
                    try:
                        r, w = await asyncio.wait_for(asyncio.open_connection(
                            "127.0.0.1", suite.port, local_addr=(src, 0)), 10)
                        break
                    except (OSError, asyncio.TimeoutError):
                        if attempt == 5 or time.monotonic() > deadline:
                            result[i] = "connect failed"
                            return
                        await asyncio.sleep(0.1 * (attempt + 1))
                held.append(w)
                try:
                    line = await asyncio.wait_for(r.readline(), 20)
                    if not line.startswith(b"220 "):
                        result[i] = "greeting %r" % line[:40]
                        return
                    w.write(b"EHLO client%d.example.net\r\n" % i)
                    while True:
                        line = await asyncio.wait_for(r.readline(), 20)
                        if not line.startswith(b"250"):
                            result[i] = "EHLO %r" % line[:40]
                            return
                        if line.startswith(b"250 "):
                            break
                except (asyncio.TimeoutError, OSError) as e:
                    result[i] = "no reply (%s)" % type(e).__name__
                    return
                result[i] = "ok"

        t0 = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(n)))
        opened = time.monotonic() - t0
        cpu = (cpu_seconds(pid) - cpu0, time.process_time() - pcpu0)
        # While they are all held, a fresh session delivers a message.
        await asyncio.sleep(0.5)
        loop = asyncio.get_running_loop()
        t1 = time.monotonic()
        qid = await loop.run_in_executor(None, lambda: suite.send(
            "fresh@example.net", ["fresh@" + DOMAIN], b"Subject: fresh\r\n\r\nfresh\r\n"))
        send_took = time.monotonic() - t1
        await loop.run_in_executor(None, lambda: suite.wait_drop(qid, 15))
        deliver_took = time.monotonic() - t1
        sessions = await loop.run_in_executor(None, lambda: session_count(suite))
        mem = instance_memory(suite)
        smem = memory(pid)
        t2 = time.monotonic()
        for w in held:
            w.close()
        await asyncio.sleep(0)
        return result, opened, cpu, send_took, deliver_took, sessions, mem, smem, t2

    result, opened, cpu, send_took, deliver_took, sessions, (rss1, pss1), (srss1, _), t2 = \
        asyncio.run(run())
    tally = {}
    for v in result.values():
        tally[v] = tally.get(v, 0) + 1
    per_rss, per_pss = (rss1 - rss0) / n, (pss1 - pss0) / n
    suite.note("%d connections greeted and answered EHLO in %.1fs (CPU: smtpd %.1fs, "
               "this client %.1fs): %r; smtpd counted %s sessions"
               % (n, opened, cpu[0], cpu[1], tally, sessions))
    suite.note("a fresh session meanwhile: 250 after DATA in %.2fs, in Drop/ after %.2fs"
               % (send_took, deliver_took))
    suite.note("memory of all Mailroot processes: Rss %d -> %d KiB, Pss %d -> %d KiB; per "
               "idle connection Rss %.1f KiB, Pss %.1f KiB (smtpd alone %.1f KiB Rss)%s"
               % (rss0, rss1, pss0, pss1, per_rss, per_pss, (srss1 - srss0) / n,
                  " under ASan" if asan else ""))
    assert tally.get("ok", 0) == n, "not every connection got 220 and EHLO: %r" % tally
    assert sessions is not None and sessions >= n, "smtpctl show sessions: %r" % sessions
    assert send_took < 5, "a fresh session took %.2fs to deliver a message" % send_took
    bound = 32 if not asan else 256
    assert per_pss <= bound, "%.1f KiB per idle connection (bound %d KiB)" % (per_pss, bound)
    # They all go; smtpd counts them out and serves on.
    wait_for(lambda: session_count(suite) == 0, 30, "the sessions to end", interval=0.5)
    suite.note("all %d sessions ended %.1fs after the close" % (n, time.monotonic() - t2))
    assert suite.daemon_pids()["smtpd"] == pid, "smtpd was restarted"
    qid = suite.send("after@example.net", ["after@" + DOMAIN], b"Subject: after\r\n\r\nx\r\n")
    suite.wait_drop(qid)


# ---- 2. slowloris --------------------------------------------------------------------

def trickle(sock, data, interval, limit):
    """Send `data` one octet every `interval` seconds until the server
    answers or closes, or `limit` seconds pass: (seconds, bytes read,
    octets sent)."""
    t0 = time.monotonic()
    sock.settimeout(interval)
    got, sent = b"", 0
    while time.monotonic() - t0 < limit:
        if sent < len(data):
            try:
                sock.send(data[sent:sent + 1])
                sent += 1
            except OSError:
                break
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        got += chunk
        if not chunk or b"\r\n" in got:
            break
    return time.monotonic() - t0, got, sent


@options(conf={"command-timeout": "2s", "data-timeout": "3s", "data-block-timeout": "30s"},
         timeout=60)
def test_slowloris_is_cut_at_the_command_timeout(suite):
    # One octet every 0.5s, never a whole line: bytes keep arriving, the
    # read timer alone (2s) would never fire.
    with suite.raw(timeout=15) as c:
        took, got, sent = trickle(c.sock, b"EHLO " + b"x" * 100, 0.5, 15)
        suite.note("command trickle: cut after %.1fs and %d octets: %r" % (took, sent, got))
        assert got.startswith(b"421 4.4.2") and b"Command timeout" in got, \
            "a command line trickled for %.1fs: %r" % (took, got)
        assert 1.5 <= took <= 6, "command-timeout 2s cut the trickle after %.1fs" % took
        assert c.closed_by_peer(5)
    # The same after a complete command: the timer starts again per line.
    with suite.raw(timeout=15) as c:
        c.expect("EHLO client.example.net", 250)
        c.expect("NOOP", 250)
        took, got, sent = trickle(c.sock, b"MAIL FROM:<" + b"y" * 100, 0.5, 15)
        assert got.startswith(b"421 4.4.2"), "second command trickled %.1fs: %r" % (took, got)
        assert took <= 6, took
    # A line that never ends (past 512 octets it is discarded up to its LF)
    # sent fast: 500 at once, then cut at the command timeout all the same.
    with suite.raw(timeout=15) as c:
        c.expect("EHLO client.example.net", 250)
        c.sock.settimeout(0.2)
        t0 = time.monotonic()
        got = b""
        while time.monotonic() - t0 < 15:
            try:
                c.sock.send(b"z" * 4096)
            except OSError:
                break
            try:
                chunk = c.sock.recv(4096)
            except socket.timeout:
                continue
            if not chunk:
                break
            got += chunk
            if b"421 " in got:
                break
        took = time.monotonic() - t0
        suite.note("endless line: %r after %.1fs" % (got, took))
        assert got.startswith(b"500 5.5.2"), "a line over 512 octets: %r" % got
        assert b"421 4.4.2" in got and took <= 6, \
            "an endless line sent for %.1fs: %r" % (took, got)
    # BDAT trickled one octet at a time: data-timeout (3s) ends it.
    with suite.raw(timeout=15) as c:
        c.expect("EHLO client.example.net", 250)
        c.expect("MAIL FROM:<a@example.net>", 250)
        c.expect("RCPT TO:<bdat-trickle@%s>" % DOMAIN, 250)
        c.send(b"BDAT 1000 LAST\r\n")
        took, got, sent = trickle(c.sock, b"w" * 1000, 0.3, 15)
        suite.note("BDAT trickle: %r after %.1fs and %d octets" % (got, took, sent))
        assert got.startswith(b"421 4.4.2") and b"Data timeout" in got, got
        assert 2.5 <= took <= 8, "data-timeout 3s cut a BDAT trickle after %.1fs" % took
    log = suite.log_text()
    assert log.count("status=timeout phase=command") >= 3, "command timeouts not logged"
    assert "status=timeout phase=data-total" in log
    suite.wait_queue_empty()
    assert suite.drop_names() == [], "a trickled message was delivered"


@options(start=False, timeout=60)
def test_slowloris_in_an_auth_exchange(suite):
    configure(suite, users={"carol": USERS["carol"]},
              conf={"command-timeout": "2s", "auth-failure-delay": "0"})
    with suite.raw(timeout=15) as c:
        c.expect("EHLO client.example.net", 250)
        c.expect("AUTH LOGIN", 334)
        took, got, sent = trickle(c.sock, b"Y2Fyb2w" * 20, 0.5, 15)
        suite.note("AUTH response trickle: %r after %.1fs" % (got, took))
        assert got.startswith(b"421 4.4.2"), "an AUTH response trickled %.1fs: %r" % (took, got)
        assert took <= 6, took


# ---- 3. pipelining without reading; a 1 MB line ------------------------------------

N_PIPELINED = 10000


class Pusher(threading.Thread):
    """Sends `data` on `sock` (blocking) and counts what the kernel took."""

    def __init__(self, sock, data):
        super().__init__(daemon=True)
        self.sock, self.data, self.sent, self.error = sock, data, 0, None

    def run(self):
        view = memoryview(self.data)
        try:
            while self.sent < len(self.data):
                self.sent += self.sock.send(view[self.sent:self.sent + 65536])
        except OSError as e:
            self.error = e


def small_buffer_client(suite):
    """A client whose socket buffers are small (set before connect), so that
    what smtpd cannot send stays in smtpd."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    s.settimeout(20)
    s.connect(("127.0.0.1", suite.port))
    return s


def replies(data):
    """The reply codes of the (single-line) replies in `data`."""
    return [int(l[:3]) for l in data.split(b"\r\n") if l[:3].isdigit() and l[3:4] == b" "]


@options(timeout=90)
def test_pipelining_10000_commands_without_reading(suite):
    pid = suite.daemon_pids()["smtpd"]
    asan = sanitized(pid)
    with suite.raw() as c:          # warm up
        c.expect("EHLO client.example.net", 250)
    time.sleep(0.2)
    rss0 = memory(pid)[0]
    s = small_buffer_client(suite)
    try:
        f = s.makefile("rb")
        assert f.readline().startswith(b"220 ")
        # 10,000 NOOPs with a 500-octet argument (5 MB), then a transaction
        # of 10,000 RCPTs (max-recipients is 100: 9,900 are refused), then QUIT.
        noop = b"NOOP " + b"n" * 494 + b"\r\n"
        data = (b"EHLO client.example.net\r\n" + noop * N_PIPELINED +
                b"MAIL FROM:<pipe@example.net>\r\n" +
                b"".join(b"RCPT TO:<r%d@%s>\r\n" % (i, DOMAIN.encode())
                         for i in range(N_PIPELINED)) + b"RSET\r\nQUIT\r\n")
        pusher = Pusher(s, data)
        t0 = time.monotonic()
        pusher.start()
        # Read nothing for a while: smtpd must stop reading, not buffer 5 MB.
        peak, last, stalled_since = rss0, -1, None
        while time.monotonic() - t0 < 20:
            peak = max(peak, memory(pid)[0])
            if pusher.sent == last:
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 1.5:
                    break
            else:
                last, stalled_since = pusher.sent, None
            if not pusher.is_alive():
                break
            time.sleep(0.1)
        pushed = pusher.sent
        # The replies (about 450 KB) may all fit in the kernel's send buffer
        # of smtpd's socket (up to tcp_wmem's 4 MB): then smtpd reads on, and
        # only its memory shows whether it keeps what it reads.
        suite.note("client not reading: it got %d of %d octets in before being held up; "
                   "smtpd Rss %d -> peak %d KiB (+%d KiB)%s" % (
                       pushed, len(data), rss0, peak, peak - rss0,
                       " under ASan" if asan else ""))
        # Now read everything: every command has its reply, then 221 and EOF.
        t1 = time.monotonic()
        got, closed = b"", False
        s.settimeout(20)
        while time.monotonic() - t1 < 40:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            got += chunk
        pusher.join(10)
        took = time.monotonic() - t1
    finally:
        s.close()
    codes = replies(got)
    tally = {}
    for code in codes:
        tally[code] = tally.get(code, 0) + 1
    suite.note("%d replies read in %.1fs after the client began reading: %r" % (
        len(codes), took, tally))
    assert closed and pusher.error is None, "session did not end with QUIT: %r" % got[-200:]
    # EHLO (multi-line, counted once by its last line) + 10,000 NOOP + MAIL
    # + 100 RCPT 250 + RSET + 9,900 RCPT 452, then 221.
    assert tally.get(250) == 1 + N_PIPELINED + 1 + 100 + 1, tally
    assert tally.get(452) == N_PIPELINED - 100, tally
    assert codes[-1] == 221, codes[-5:]
    if not asan:
        assert peak - rss0 < 4096, "smtpd grew by %d KiB while the client did not read" \
            % (peak - rss0)
    assert suite.daemon_pids()["smtpd"] == pid, "smtpd was restarted"


def test_pipelined_help_replies_stop_smtpd_reading(suite):
    # HELP: 6 octets in, about 120 out.  200,000 of them (1.2 MB) owe 24 MB
    # of replies, far over what the kernel holds: smtpd must stop reading
    # while the client does not read, and keep at most OUTPUT_HIGH unsent.
    n = 200000
    pid = suite.daemon_pids()["smtpd"]
    asan = sanitized(pid)
    with suite.raw() as c:
        c.expect("EHLO client.example.net", 250)
    time.sleep(0.2)
    rss0 = memory(pid)[0]
    s = small_buffer_client(suite)
    try:
        assert s.recv(4096).startswith(b"220 ")
        data = b"HELP\r\n" * n + b"QUIT\r\n"
        pusher = Pusher(s, data)
        t0 = time.monotonic()
        pusher.start()
        peak, last, stalled_since = rss0, -1, None
        while time.monotonic() - t0 < 20 and pusher.is_alive():
            peak = max(peak, memory(pid)[0])
            if pusher.sent != last:
                last, stalled_since = pusher.sent, None
            elif stalled_since is None:
                stalled_since = time.monotonic()
            elif time.monotonic() - stalled_since > 1.5:
                break
            time.sleep(0.1)
        pushed = pusher.sent
        suite.note("HELP x %d unread: %d of %d octets got in before smtpd stopped reading; "
                   "smtpd Rss %d -> peak %d KiB%s" % (n, pushed, len(data), rss0, peak,
                                                     " under ASan" if asan else ""))
        assert pushed < len(data), "smtpd read all %d octets while %d replies went unread" \
            % (len(data), n)
        t1 = time.monotonic()
        total, closed, tail = 0, False, b""
        s.settimeout(20)
        while time.monotonic() - t1 < 40:
            chunk = s.recv(1 << 20)
            if not chunk:
                closed = True
                break
            total += len(chunk)
            tail = (tail + chunk)[-200:]
        pusher.join(10)
        suite.note("then %d octets of replies read in %.1fs" % (total, time.monotonic() - t1))
    finally:
        s.close()
    assert closed and tail.endswith(b"\r\n") and b"\r\n221 " in tail, tail
    per = len(b"214-2.0.0 Commands supported:\r\n"
              b"214-2.0.0   HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP ETRN\r\n"
              b"214 2.0.0 See RFC 5321\r\n")
    assert total > n * per, "%d octets of replies for %d HELP (%d each)" % (total, n, per)
    if not asan:
        assert peak - rss0 < 4096, "smtpd grew by %d KiB" % (peak - rss0)


def test_a_1mb_command_line(suite):
    pid = suite.daemon_pids()["smtpd"]
    asan = sanitized(pid)
    with suite.raw() as c:
        c.expect("EHLO client.example.net", 250)
    time.sleep(0.2)
    rss0 = memory(pid)[0]
    with suite.raw(timeout=20) as c:
        c.expect("EHLO client.example.net", 250)
        line = b"MAIL FROM:<" + b"a" * (1024 * 1024)
        pusher = Pusher(c.sock, line)
        t0 = time.monotonic()
        pusher.start()
        code, text = c.reply()          # answered before the line ends
        took = time.monotonic() - t0
        pusher.join(20)
        peak = memory(pid)[0]
        assert not pusher.is_alive() and pusher.error is None, pusher.error
        suite.note("1 MB without CRLF: %r after %.2fs; smtpd Rss %d -> %d KiB%s" % (
            text, took, rss0, peak, " under ASan" if asan else ""))
        assert code == 500 and "5.5.2" in text and "Line too long" in text, text
        # The end of the line ends the discarding; exactly one reply for it.
        c.send(b"@example.net>\r\nNOOP\r\n")
        code, text = c.reply()
        assert code == 250, "the NOOP after the 1 MB line: %r" % text
        c.expect("MAIL FROM:<ok@example.net>", 250)
        c.expect("QUIT", 221)
    if not asan:
        assert peak - rss0 < 2048, "smtpd grew by %d KiB for one line" % (peak - rss0)


# ---- 4. AUTH guessing over many connections ------------------------------------------
#
# test_auth.py shows the delay before each 535, the 421 after
# auth-max-failures on one connection and at the next connect.  New here:
# guesses spread over connections (each closed before its 535 comes, as a
# guesser that reads success from the quick 235 would do) add up all the
# same; and guesses made at once on parallel connections get no more
# answers than auth-max-failures.

@options(start=False, timeout=60)
def test_auth_guesses_over_reconnects_add_up(suite):
    configure(suite, users={"carol": USERS["carol"]},
              conf={"auth-failure-delay": "3s", "auth-max-failures": "3"})
    for i in range(3):
        with suite.raw(timeout=10) as c:
            assert c.banner[0] == 220, "connection %d: %r" % (i + 1, c.banner)
            c.expect("EHLO client.example.net", 250)
            c.send("AUTH PLAIN %s\r\n" % plain("carol", "guess%d" % i))
            # No answer yet (the 535 waits 3s): hang up and try again.
            data, closed = read_reply_until(c.sock, time.monotonic() + 0.7)
            assert data == b"" and not closed, "answer before the delay: %r" % data
    # The failure was counted although nobody waited for its 535.
    def blocked():
        c = suite.raw(greet=False)
        try:
            code, text = c.reply()
            return (code, text) if code == 421 else None
        finally:
            c.close()
    code, text = wait_for(blocked, 5, "the 4th connection to be refused")
    assert "4.7.0" in text, text
    log = suite.log_text()
    assert "status=auth-blocked failures=3" in log, "block not logged"
    suite.note("3 guesses on 3 connections, each closed before its 535: the next "
               "connection gets %r" % text)


@options(start=False, timeout=60)
def test_parallel_auth_guesses_get_at_most_max_failures_answers(suite):
    configure(suite, users={"carol": USERS["carol"]},
              conf={"auth-failure-delay": "1s", "auth-max-failures": "3"})
    conns = []
    try:
        for i in range(10):
            c = suite.raw(timeout=15)
            c.expect("EHLO client.example.net", 250)
            conns.append(c)
        # Every guess goes out before any answer can have come back.
        for i, c in enumerate(conns):
            c.send("AUTH PLAIN %s\r\n" % plain("carol", "parallel%d" % i))
        codes = []
        for c in conns:
            try:
                codes.append(c.reply()[0])
            except (ConnectionError, OSError) as e:
                codes.append(type(e).__name__)
    finally:
        for c in conns:
            c.close()
    tally = {}
    for code in codes:
        tally[code] = tally.get(code, 0) + 1
    suite.note("10 guesses at once from one address, auth-max-failures 3: %r" % tally)
    assert tally.get(535, 0) <= 3, "%d guesses answered 535 (a verdict) with " \
        "auth-max-failures 3: %r" % (tally.get(535, 0), tally)
    assert tally.get(421, 0) >= 7, tally


# ---- 5. the open-relay matrix: the cells test_access.py does not have ---------------
#
# test_access.py::test_relay_matrix: relay client / other client x no AUTH /
# AUTH x local, alias, postmaster, remote, relay-domain (and its
# sub-domain and case cells).  Added here: a failed AUTH, a remote-domain
# with and without allow-relay, and the address forms that have opened
# relays elsewhere.  From a client that may not relay, nothing may be
# accepted for anywhere but here; what is accepted for here must be
# delivered to Drop/, with nothing left in Queue/ for the outside.

RELAY_CLIENT, OTHER_CLIENT = "127.0.0.2", "127.0.0.3"
R = "remote.example.org"
# kind: "local" accepted from all; "relay" (a relay-domain or allow-relay
# remote-domain) accepted from all; "remote" accepted only from a client
# that may relay; "here?" must be local if accepted (accepted or refused);
# "bad" refused from everybody.
TRICKY = [
    ("local, other case", "bob@EXAMPLE.Test", "local"),
    ("postmaster, other case", "PostMaster", "local"),
    ("postmaster@local", "postmaster@" + DOMAIN, "local"),
    ("postmaster@remote", "postmaster@" + R, "remote"),
    ("sub-domain of the local domain", "x@sub." + DOMAIN, "remote"),
    ("remote-domain allow-relay", "x@open.example.org", "relay"),
    ("remote-domain without allow-relay", "x@held.example.org", "remote"),
    ("source route: local hop, remote mailbox", "@%s:x@%s" % (DOMAIN, R), "remote"),
    ("source route: two hops", "@%s,@%s:x@%s" % (DOMAIN, ALIAS, R), "remote"),
    ("source route: remote hop, local mailbox", "@%s:bob@%s" % (R, DOMAIN), "here?"),
    ("percent hack", "x%%%s@%s" % (R, DOMAIN), "here?"),
    ("percent hack, two", "x%%%s%%%s@%s" % (R, ALIAS, DOMAIN), "here?"),
    ("percent hack without a domain", "x%%%s" % R, "bad"),
    ("quoted local part with @, local", '"x@%s"@%s' % (R, DOMAIN), "here?"),
    ("quoted local part with @, remote", '"bob@%s"@%s' % (DOMAIN, R), "remote"),
    ("quoted local part with %", '"x%%%s"@%s' % (R, DOMAIN), "here?"),
    ("bang path at the local domain", "%s!x@%s" % (R, DOMAIN), "here?"),
    ("bang path alone", "%s!x" % R, "bad"),
    ("two @", "x@%s@%s" % (R, DOMAIN), "remote"),
    ("escaped @ unquoted", "x\\@%s@%s" % (R, DOMAIN), "here?"),
    ("trailing dot, remote", "x@%s." % R, "remote"),
    ("trailing dot, local", "bob@%s." % DOMAIN, "here?"),
    ("trailing dots, local", "bob@%s.." % DOMAIN, "bad"),
    ("address literal, loopback", "x@[127.0.0.1]", "remote"),
    ("address literal, other", "x@[192.0.2.1]", "remote"),
    ("address literal, IPv6", "x@[IPv6:::1]", "remote"),
    ("localhost", "x@localhost", "remote"),
    ("empty", "", "bad"),
    ("route alone", "@%s:" % R, "bad"),
    ("local part alone", "bob", "bad"),
    ("domain alone", "@" + R, "bad"),
]
AUTH_STATES = ("none", "failed", "authenticated")


def relay_session(suite, client, auth):
    c = RawSMTPFrom(suite.port, client)
    assert c.banner[0] == 220, c.banner
    c.expect("EHLO client.example.net", 250)
    if auth == "authenticated":
        c.expect("AUTH PLAIN " + plain("carol", USERS["carol"][1]), 235)
    elif auth == "failed":
        c.expect("AUTH PLAIN " + plain("carol", "not the password"), 535)
    c.expect("MAIL FROM:<a@example.net>", 250)
    return c


@options(start=False, timeout=60)
def test_relay_matrix_hard_cells(suite):
    table = os.path.join(suite.dir, "passwd")
    write_table(table, {"carol": USERS["carol"]})
    suite.write_config({"listen": "on 127.0.0.1 port %d auth-plaintext" % suite.port,
                        "auth-table": '"%s"' % table, "auth-failure-delay": "0",
                        "auth-max-failures": "0"})
    append_config(suite, ["relay allow %s" % RELAY_CLIENT,
                          "relay-domain partner.example.org",
                          "remote-domain open.example.org allow-relay",
                          "remote-domain held.example.org"])
    suite.start()
    failures, table_out, accepted_here = [], [], []
    basic = [("remote", "x@" + R, "remote"), ("relay-domain", "x@partner.example.org",
                                               "relay"), ("local", "bob@" + DOMAIN, "local")]
    for client, auth in itertools.product((RELAY_CLIENT, OTHER_CLIENT), AUTH_STATES):
        may_relay = client == RELAY_CLIENT or auth == "authenticated"
        with relay_session(suite, client, auth) as c:
            for name, rcpt, kind in (basic if auth == "failed" else []) + TRICKY:
                code, text = c.cmd("RCPT TO:<%s>" % rcpt)
                table_out.append("%s auth=%s %s <%s>: %d" % (client, auth, name, rcpt, code))
                ok = {"local": code == 250, "relay": code == 250,
                      "remote": code == 250 if may_relay else 500 <= code < 600,
                      "here?": code == 250 or 500 <= code < 600,
                      "bad": 500 <= code < 600}[kind]
                if kind == "remote" and may_relay and name != "remote":
                    ok = code == 250 or 500 <= code < 600   # either way: no open relay
                if not ok:
                    failures.append("client %s auth=%s %s <%s> (%s): got %r" % (
                        client, auth, name, rcpt, kind, text))
                if code == 250 and not may_relay and kind == "here?":
                    accepted_here.append(rcpt)
            c.expect("QUIT", 221)
    suite.note_verbose("\n        ".join(t for t in table_out if OTHER_CLIENT in t and "auth=none" in t))
    suite.note("%d cells; accepted as local from a client that may not relay: %s" % (
        len(table_out), sorted(set(accepted_here))))
    assert not failures, "\n".join(failures)
    # What the non-relaying client had accepted stays here: all of it lands
    # in Drop/ and nothing waits in Queue/ for a remote host.
    log = suite.log_text()
    relayed = [l for l in log.splitlines() if "client=%s status=relay " % OTHER_CLIENT in l]
    wrong = [l for l in relayed if "relay-domain=" not in l and "remote-domain=" not in l
             and "authenticated" not in l]
    assert not wrong, "the other client relayed:\n" + "\n".join(wrong)
    here = sorted(set(accepted_here))
    if here:
        with relay_session(suite, OTHER_CLIENT, "none") as c:
            for rcpt in here:
                c.expect("RCPT TO:<%s>" % rcpt, 250)
            c.expect("DATA", 354)
            c.send(b"Subject: tricky\r\n\r\nrelay matrix marker\r\n.\r\n")
            code, text = c.reply()
            assert code == 250, text
            c.expect("QUIT", 221)
        found = wait_for(lambda: suite.find_drop_containing(b"relay matrix marker"), 10,
                         "the message to the tricky local recipients in Drop/")
        got = sorted(r for m in found for r in m.receivers)
        suite.note("delivered to Drop/ for: %s" % got)
        assert len(got) == len(here), "recipients %r, delivered for %r" % (here, got)
        suite.wait_queue_empty()


# ---- slowloris in a TLS handshake ----------------------------------------------------

@options(start=False, timeout=60)
def test_slowloris_in_a_tls_handshake(suite):
    from test_tls import PKI, tls_config
    pki = PKI(suite)
    pki.server("mx")
    sport = free_port()
    tls_config(suite, pki, [(sport, "smtps")], conf={"idle-timeout": "2s"})
    suite.start()
    # A ClientHello record header announcing 512 octets, then one octet of
    # it every 0.5s: the handshake never completes, octets keep arriving.
    with socket.create_connection(("127.0.0.1", sport), timeout=15) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00")
        took, got, sent = trickle(sock, b"\x01" + b"\x00" * 511, 0.5, 15)
    suite.note("TLS handshake trickled: connection ended after %.1fs and %d octets (%r)" % (
        took, sent, got[:60]))
    assert took <= 8, "a handshake trickled for %.1fs was not cut off" % took


@options(start=False, timeout=60)
def test_auth_guesses_hung_up_at_once_still_count(suite):
    # A guesser that closes right after its guess never waits for the
    # verdict; the password check still costs the supervisor its hashing,
    # and must count against the address.
    configure(suite, users={"alice": USERS["alice"]},
              conf={"auth-failure-delay": "0", "auth-max-failures": "3"})
    sent = 0
    t0 = time.monotonic()
    for i in range(10):
        c = suite.raw(timeout=10)
        if c.banner[0] != 220:
            c.close()
            break
        c.expect("EHLO client.example.net", 250)
        c.send("AUTH PLAIN %s\r\n" % plain("alice", "hangup%d" % i))
        c.close()
        sent += 1
        time.sleep(0.2)
    suite.note("guesses sent before a connection was refused: %d in %.1fs" % (
        sent, time.monotonic() - t0))
    def refused():
        c = suite.raw(greet=False)
        try:
            return c.reply()[0] == 421
        finally:
            c.close()
    wait_for(refused, 5, "a connection to be refused after the guesses")
    assert sent <= 4, "%d guesses made with auth-max-failures 3" % sent
