"""
bench_client.py - the load bench/run puts on an MTA, the same for both.

Owns: many idle SMTP connections that each sent EHLO (asyncio, bounded in
count and time, every refusal and 421 counted), the sequential latency
client (smtplib, monotonic clock), and writing a burst of files into
Mailroot's Pickup/.  smtp-source itself is run by bench/run.

Runs in bench/run's process; talks only to 127.0.0.1.  Replies from the
MTAs are read with bounded line lengths and counts.
"""
import asyncio
import grp
import os
import smtplib
import time

CRLF = b"\r\n"
REPLY_LINES_MAX = 64
LINE_MAX = 4096


def message_body(size, tag):
    """A message of about `size` octets: headers, then 72-column lines."""
    head = ("From: <a@bench.test>\r\nTo: <b@local.test>\r\nSubject: bench %s\r\n"
            "Message-ID: <%s@bench.test>\r\n\r\n" % (tag, tag)).encode()
    line = b"x" * 70 + CRLF
    body = b""
    while len(head) + len(body) + len(line) <= size:
        body += line
    return head + body


# ---- idle connections ---------------------------------------------------------

async def _reply(reader, timeout):
    """Read one (multi-line) SMTP reply: its code, or raise."""
    for _ in range(REPLY_LINES_MAX):
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise ConnectionError("closed by the server")
        if len(line) > LINE_MAX or len(line) < 4 or not line[:3].isdigit():
            raise ValueError("malformed reply line %r" % line[:80])
        if line[3:4] != b"-":
            return int(line[:3])
    raise ValueError("reply of more than %d lines" % REPLY_LINES_MAX)


async def _flood(port, n, concurrency, conn_timeout, deadline_s, hold):
    counts = {"ok": 0, "refused": 0, "421": 0, "other_reply": 0, "timeout": 0,
              "closed": 0, "error": 0, "not_tried": 0}
    errors = {}
    held = []
    sem = asyncio.Semaphore(concurrency)
    deadline = time.monotonic() + deadline_s

    async def one():
        async with sem:
            if time.monotonic() >= deadline:
                counts["not_tried"] += 1
                return
            w = None
            try:
                r, w = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port, limit=LINE_MAX * 2),
                    conn_timeout)
                code = await _reply(r, conn_timeout)
                if code == 220:
                    w.write(b"EHLO client.bench.test\r\n")
                    await w.drain()
                    code = await _reply(r, conn_timeout)
                if code == 250:
                    counts["ok"] += 1
                    held.append(w)
                    w = None
                elif code == 421:
                    counts["421"] += 1
                else:
                    counts["other_reply"] += 1
                    errors["reply %d" % code] = errors.get("reply %d" % code, 0) + 1
            except ConnectionRefusedError:
                counts["refused"] += 1
            except asyncio.TimeoutError:
                counts["timeout"] += 1
            except (ConnectionError, asyncio.IncompleteReadError) as e:
                counts["closed"] += 1
                k = type(e).__name__
                errors[k] = errors.get(k, 0) + 1
            except (OSError, ValueError) as e:
                counts["error"] += 1
                k = "%s: %s" % (type(e).__name__, e)
                errors[k[:80]] = errors.get(k[:80], 0) + 1
            finally:
                if w is not None:
                    w.close()

    t0 = time.monotonic()
    try:
        await asyncio.gather(*(one() for _ in range(n)))
        setup_s = time.monotonic() - t0
        # Everything is open now: let the server settle, then measure.
        await asyncio.sleep(1.0)
        still = 0
        for w in held:
            if not w.is_closing() and not w.transport.is_closing():
                still += 1
        result = hold()
    finally:
        # Closed whatever happened: a run that dies here must not keep
        # thousands of descriptors open through its cleanup.
        for w in held:
            w.transport.abort()
    return {"counts": counts, "errors": errors, "setup_s": setup_s, "held_open": still,
            "measured": result}


def idle_connections(port, n, hold, concurrency=100, conn_timeout=20, deadline_s=180):
    """Open n connections to port, each reading the greeting and sending
    EHLO; with all those that got 250 still open, call hold() (whose result
    is returned as "measured"), then close them.  Every outcome is counted:
    ok, refused, 421, other_reply, timeout, closed, error, not_tried."""
    return asyncio.run(_flood(port, n, concurrency, conn_timeout, deadline_s, hold))


# ---- latency --------------------------------------------------------------------

def latency(port, n, size, deadline_s=300):
    """n sequential messages, each on a new connection: seconds from connect
    to the 250 after DATA (monotonic clock), in order."""
    out = []
    end = time.monotonic() + deadline_s
    body = message_body(size, "latency")
    for i in range(n):
        if time.monotonic() > end:
            raise TimeoutError("latency: only %d of %d messages within %ds" % (i, n, deadline_s))
        t0 = time.monotonic()
        s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.bench.test", timeout=30)
        try:
            code, text = s.ehlo()
            if code != 250:
                raise RuntimeError("EHLO: %d %r" % (code, text))
            code, text = s.mail("a@bench.test")
            if code != 250:
                raise RuntimeError("MAIL: %d %r" % (code, text))
            code, text = s.rcpt("b@local.test")
            if code != 250:
                raise RuntimeError("RCPT: %d %r" % (code, text))
            code, text = s.data(body)
            t1 = time.monotonic()
            if code != 250:
                raise RuntimeError("DATA: %d %r" % (code, text))
        finally:
            try:
                s.quit()
            except (smtplib.SMTPException, OSError):
                s.close()
        out.append(t1 - t0)
    return out


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    v = sorted(values)
    k = max(1, int(-(-p * len(v) // 100)))     # ceil(p/100 * n)
    return v[min(k, len(v)) - 1]


# ---- Pickup ---------------------------------------------------------------------

def pickup_burst(pickup_dir, stage_dir, n, size):
    """Write n message files in stage_dir (same filesystem), then rename them
    all into pickup_dir as fast as possible.  Returns the monotonic time of
    the first rename.  As root the files are made readable by the mailroot
    group (pickupd runs as _smtpp, a member), as an application would."""
    os.mkdir(stage_dir)
    gid = grp.getgrnam("mailroot").gr_gid if os.geteuid() == 0 else -1
    names = []
    for i in range(n):
        name = "bench-%06d.eml" % i
        data = (b"x-sender: a@bench.test\r\nx-receiver: b@local.test\r\n" +
                message_body(size, "pickup-%d" % i))
        path = os.path.join(stage_dir, name)
        with open(path, "wb") as f:
            f.write(data)
        if gid != -1:
            os.chown(path, -1, gid)
            os.chmod(path, 0o640)
        names.append(name)
    t0 = time.monotonic()
    for name in names:
        os.rename(os.path.join(stage_dir, name), os.path.join(pickup_dir, name))
    os.rmdir(stage_dir)
    return t0
