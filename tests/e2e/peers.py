"""
peers.py - the remote side of the outbound tests: SMTP servers that
Mailroot's deliverd delivers to, a DNS server with MX records, and a test
certificate authority.  Standard library only.

    SmtpSink   Postfix's smtp-sink (/usr/sbin/smtp-sink, package postfix) as a
               child process on one loopback address and port: accepts, or
               rejects chosen commands with 4xx (-r) or 5xx (-f), and dumps
               every mail transaction into a file (-d) that messages() reads
               back (envelope and content).
    PeerSMTP   a small SMTP server in Python (threads) for what smtp-sink
               cannot do: STARTTLS with a given certificate, AUTH PLAIN/LOGIN
               required, replies per recipient, HELO only; it records every
               connection (commands in order, messages, TLS, AUTH user) and
               counts connections (total, concurrent peak).
    TestCA     openssl: a CA, server certificates signed by it (DNS and IP
               names), and self-signed "bad" ones.
    MXDNS      mailroot_suite.LocalDNS (dnsmasq) plus MX records
               (--mx-host=domain,host,pref), null MX (RFC 7505: exchange
               ".", preference 0) included.
    dns_answers() one UDP query, answers decoded (A, AAAA, MX).

Facts about smtp-sink 3.7 that the fixture relies on (checked here):
  - as root it refuses to run without -u USER (it drops to that user after
    binding), so the dump directory is made writable by that user (nobody);
  - -d TEMPLATE: one file per transaction, named by strftime(TEMPLATE) plus a
    random hex number; the file is created (empty) at MAIL and written when
    the "." is taken, before the 250 reply; a transaction that ends without
    DATA leaves an empty file or none;
  - a dump file is: X-Client-Addr:, X-Client-Proto:, X-Helo-Args: (if any),
    X-Mail-Args: (the MAIL arguments, e.g. "<a@b> SIZE=9"), one X-Rcpt-Args:
    per RCPT that was accepted or not, a three-line Received: of its own,
    then the content as received (dot-unstuffed), LF line ends, then one
    empty line;
  - -r CMDS / -f CMDS reject the commands with -b / -B replies (default "450
    4.3.0 Error: command failed" / "500 5.3.0 Error: command failed") and
    imply -p (no PIPELINING); "connect" as a command rejects the greeting;
  - -a no AUTH announced, -C no XCLIENT, -F no XFORWARD.
"""
import atexit
import base64
import ipaddress
import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time

from mailroot_suite import LocalDNS, Skip, wait_for

SMTP_SINK = "/usr/sbin/smtp-sink"
CRLF = b"\r\n"

# Child processes still running, stopped at exit should a test be abandoned
# by the harness (its time limit) before its context managers ran.
_children = set()
_children_lock = threading.Lock()


def _reap_children():
    with _children_lock:
        procs = list(_children)
    for p in procs:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(2)
            except subprocess.TimeoutExpired:
                pass


atexit.register(_reap_children)


def loopback_addrs(first, n):
    """n consecutive loopback addresses from 127.0.0.<first>."""
    return ["127.0.0.%d" % (first + i) for i in range(n)]


def common_port(addrs, tries=50):
    """A TCP port free on every address of `addrs` right now."""
    for _ in range(tries):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((addrs[0], 0))
            port = s.getsockname()[1]
        ok = True
        for a in addrs:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((a, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise AssertionError("no TCP port free on all of %r" % (addrs,))


def wait_listening(addr, port, timeout=5):
    """Wait until a TCP connect to addr:port succeeds."""
    def ok():
        try:
            with socket.create_connection((addr, port), timeout=0.5):
                return True
        except OSError:
            return False
    wait_for(ok, timeout, "a server listening on %s:%d" % (addr, port))


# ---- smtp-sink ----------------------------------------------------------------

class SinkMessage:
    """One smtp-sink dump file: sender, rcpts (addresses), mail_args and
    rcpt_args (the raw arguments), helo, client, and content: the message
    as received, with CRLF line ends."""

    def __init__(self, name, raw):
        self.name, self.raw = name, raw
        self.helo = self.client = self.mail_args = None
        self.rcpt_args = []
        lines = raw.split(b"\n")
        i = 0
        while i < len(lines) and not lines[i].startswith(b"Received: "):
            k, _, v = lines[i].decode("utf-8", "replace").partition(": ")
            if k == "X-Client-Addr":
                self.client = v
            elif k == "X-Helo-Args":
                self.helo = v
            elif k == "X-Mail-Args":
                self.mail_args = v
            elif k == "X-Rcpt-Args":
                self.rcpt_args.append(v)
            i += 1
        assert i < len(lines), "%s: no Received: of smtp-sink: %r" % (name, raw[:300])
        i += 1                                  # its Received: has two more lines
        while i < len(lines) and lines[i][:1] in (b"\t", b" "):
            i += 1
        body = b"\n".join(lines[i:])
        assert body.endswith(b"\n"), "%s: dump does not end with its empty line" % name
        body = body[:-1]                        # the empty line smtp-sink appends
        self.content = body.replace(b"\n", CRLF)
        self.sender = _addr(self.mail_args or "")
        self.rcpts = [_addr(a) for a in self.rcpt_args]

    def header(self, field):
        """The first value of a header field of the content (unfolded), or None."""
        head = self.content.split(b"\r\n\r\n", 1)[0] + b"\r\n"
        m = re.search(rb"^" + re.escape(field.encode()) + rb":[ \t]*(.*?)\r\n(?![ \t])",
                      head, re.I | re.M | re.S)
        return re.sub(rb"\r\n[ \t]+", b" ", m.group(1)).decode("utf-8", "replace") if m else None


def _addr(args):
    m = re.match(r"\s*<([^>]*)>", args)
    return m.group(1) if m else args.split(" ")[0]


class SmtpSink:
    """smtp-sink on addr:port.  soft / hard: SMTP commands (e.g. ["rcpt"],
    ["connect"]) answered soft_reply (4xx) / hard_reply (5xx).  Every
    transaction is dumped into <dir>/sink-<addr>/; messages() reads them.
    start(), stop(), restart(soft=..., hard=...); a context manager."""

    def __init__(self, suite, addr, port, soft=(), hard=(), hostname=None,
                 soft_reply="451 4.3.0 Try again later",
                 hard_reply="550 5.1.1 No such user here", extra=()):
        self.suite = suite
        self.addr, self.port = addr, port
        self.soft, self.hard = list(soft), list(hard)
        self.soft_reply, self.hard_reply = soft_reply, hard_reply
        self.hostname = hostname or "sink-%s.test" % addr.replace(".", "-")
        self.extra = list(extra)
        self.dump_dir = os.path.join(suite.dir, "sink-%s-%d" % (addr, port))
        self.log_path = self.dump_dir + ".log"
        self.proc = None

    @staticmethod
    def available():
        return os.access(SMTP_SINK, os.X_OK)

    def _argv(self):
        argv = [SMTP_SINK, "-4", "-a", "-C", "-F", "-t", "30", "-h", self.hostname,
                "-d", os.path.join(self.dump_dir, "%Y%m%d%H%M%S.")]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]
        if self.soft:
            argv += ["-r", ",".join(self.soft), "-b", self.soft_reply]
        if self.hard:
            argv += ["-f", ",".join(self.hard), "-B", self.hard_reply]
        argv += self.extra
        argv += ["%s:%d" % (self.addr, self.port), "64"]
        return argv

    def start(self):
        if not self.available():
            raise Skip("%s is not installed (Debian package postfix; "
                       "scripts/install-deps installs it)" % SMTP_SINK)
        os.makedirs(self.dump_dir, exist_ok=True)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("nobody")
            os.chown(self.dump_dir, pw.pw_uid, pw.pw_gid)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self._argv(), stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=log, start_new_session=True)
        log.close()
        with _children_lock:
            _children.add(self.proc)
        deadline = time.monotonic() + 5
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("smtp-sink on %s:%d exited (%d): %s" % (
                    self.addr, self.port, self.proc.returncode, self.log_tail()))
            try:
                with socket.create_connection((self.addr, self.port), timeout=0.5):
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("smtp-sink on %s:%d does not accept connections: %s" % (
                    self.addr, self.port, self.log_tail()))
            time.sleep(0.02)

    def stop(self):
        p, self.proc = self.proc, None
        if p is None:
            return
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        with _children_lock:
            _children.discard(p)

    def restart(self, soft=None, hard=None):
        """Stop, optionally change the rejected commands, start again (same
        address, port and dump directory)."""
        self.stop()
        if soft is not None:
            self.soft = list(soft)
        if hard is not None:
            self.hard = list(hard)
        return self.start()

    def log_tail(self, n=800):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def messages(self):
        """Every complete transaction dumped so far, oldest first."""
        out = []
        try:
            names = sorted(os.listdir(self.dump_dir))
        except FileNotFoundError:
            return out
        for n in names:
            try:
                with open(os.path.join(self.dump_dir, n), "rb") as f:
                    raw = f.read()
            except OSError:
                continue
            if not raw.endswith(b"\n\n") or b"\nReceived: " not in raw:
                continue            # empty: MAIL without DATA, or still being written
            out.append(SinkMessage(n, raw))
        return out

    def find(self, needle):
        """Messages whose content contains `needle` (bytes)."""
        return [m for m in self.messages() if needle in m.content]

    def wait_messages(self, n, timeout=15, needle=None):
        """Wait until at least n (matching) messages are here; return them."""
        def enough():
            ms = self.find(needle) if needle is not None else self.messages()
            return ms if len(ms) >= n else None
        return wait_for(enough, timeout, "%d message(s) at the sink on %s:%d" % (
            n, self.addr, self.port), 0.1)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


# ---- a Python SMTP peer ---------------------------------------------------------

class PeerMessage:
    def __init__(self, sender, rcpts, data, tls, auth_user, conn):
        self.sender, self.rcpts, self.data = sender, rcpts, data
        self.tls, self.auth_user, self.conn = tls, auth_user, conn


class PeerConnection:
    """What one client connection did: commands (lines, in order, with AUTH
    credentials replaced by "AUTH <mech> ***"), messages, tls, auth_user,
    helo (the last EHLO/HELO line), peer address."""

    def __init__(self, index, peer_addr):
        self.index, self.peer_addr = index, peer_addr
        self.commands = []
        self.messages = []
        self.tls = False
        self.tls_version = None
        self.auth_user = None
        self.helo = None
        self.closed = False

    def verbs(self):
        return [c.split(" ", 1)[0].upper() for c in self.commands]


class _Close(Exception):
    pass


class PeerSMTP:
    """An SMTP server on addr:port (port 0: a free one) in threads.

    cert, key: offer STARTTLS with them.  auth=(user, password): AUTH PLAIN
    and LOGIN offered (after TLS only when auth_needs_tls), required before
    MAIL (530), 535 on wrong credentials.  rcpt_replies={address: "550 5.1.1
    text"} (lower case address), default "250 2.1.5 Ok".  ehlo=False: EHLO
    answered "502 5.5.1 ..." (the client must fall back to HELO).
    size: the SIZE limit advertised and enforced (552 5.3.4 at MAIL with a
    larger SIZE=, or after DATA).  dsn: advertise DSN.  eightbitmime=False:
    no 8BITMIME.  data_delay: seconds to wait before answering the final ".", to make
    connections overlap.  max_conns bounds the threads: a connection over it
    gets 421 and is closed.  Every socket has `timeout`."""

    def __init__(self, addr="127.0.0.1", port=0, cert=None, key=None, auth=None,
                 auth_needs_tls=False, rcpt_replies=None, ehlo=True, pipelining=True,
                 data_delay=0.0, hostname="peer.test", max_conns=32, timeout=15,
                 greeting=None, size=10240000, dsn=False, eightbitmime=True):
        self.addr, self.port = addr, port
        self.cert, self.key = cert, key
        self.auth = auth
        self.auth_needs_tls = auth_needs_tls
        self.rcpt_replies = {k.lower(): v for k, v in (rcpt_replies or {}).items()}
        self.ehlo_ok = ehlo
        self.pipelining = pipelining
        self.data_delay = data_delay
        self.hostname = hostname
        self.max_conns = max_conns
        self.timeout = timeout
        self.greeting = greeting or "220 %s ESMTP PeerSMTP" % hostname
        self.size = size
        self.dsn = dsn
        self.eightbitmime = eightbitmime
        self.lock = threading.Lock()
        self.connections = []
        self.current = 0
        self.peak = 0
        self.refused = 0
        self.errors = []        # exceptions of connection threads (not client EOFs)
        self.sock = None
        self.stopping = threading.Event()
        self.threads = []
        self.ctx = None
        if cert:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            self.ctx.load_cert_chain(cert, key)

    # -- lifecycle

    def start(self):
        fam = socket.AF_INET6 if ":" in self.addr else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((self.addr, self.port))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.stopping.clear()
        t = threading.Thread(target=self._accept_loop, name="peer-accept-%d" % self.port,
                             daemon=True)
        t.start()
        self.accepter = t
        return self

    def stop(self):
        self.stopping.set()
        if self.sock is not None:
            self.accepter.join(2)
            self.sock.close()
            self.sock = None
        for t in list(self.threads):
            t.join(2)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()

    def route(self):
        """The route of this peer for the config: [addr]:port."""
        return "[%s]:%d" % (self.addr, self.port)

    # -- what was seen

    @property
    def total(self):
        with self.lock:
            return len(self.connections)

    def messages(self):
        with self.lock:
            return [m for c in self.connections for m in c.messages]

    def find(self, needle):
        return [m for m in self.messages() if needle in m.data]

    def wait_messages(self, n, timeout=15, needle=None):
        def enough():
            ms = self.find(needle) if needle is not None else self.messages()
            return ms if len(ms) >= n else None
        return wait_for(enough, timeout, "%d message(s) at the peer on %s:%d" % (
            n, self.addr, self.port), 0.05)

    def commands(self):
        """Every command of every connection, in order: [(conn index, line)]."""
        with self.lock:
            return [(c.index, l) for c in self.connections for l in c.commands]

    # -- the server

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                s, peer = self.sock.accept()
            except socket.timeout:
                self.threads = [t for t in self.threads if t.is_alive()]
                continue
            except OSError:
                return
            s.settimeout(self.timeout)
            with self.lock:
                if self.current >= self.max_conns:
                    self.refused += 1
                    over = True
                else:
                    over = False
                    self.current += 1
                    self.peak = max(self.peak, self.current)
                    conn = PeerConnection(len(self.connections), peer[0])
                    self.connections.append(conn)
            if over:
                try:
                    s.sendall(b"421 4.7.0 too many connections\r\n")
                finally:
                    s.close()
                continue
            t = threading.Thread(target=self._serve, args=(s, conn),
                                 name="peer-%d-%d" % (self.port, conn.index), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, s, conn):
        st = {"sock": s, "buf": b""}
        try:
            self._session(st, conn)
        except (_Close, ConnectionError, socket.timeout, ssl.SSLError, OSError) as e:
            if not isinstance(e, (_Close, ConnectionError)) and not self.stopping.is_set():
                with self.lock:
                    self.errors.append("conn %d: %s: %s" % (conn.index, type(e).__name__, e))
        except Exception as e:  # noqa: B902 - a bug in the peer: record it
            with self.lock:
                self.errors.append("conn %d: %s: %s" % (conn.index, type(e).__name__, e))
        finally:
            try:
                st["sock"].close()
            except OSError:
                pass
            self._leave(conn)

    def _leave(self, conn):
        """The connection no longer counts as open: at QUIT, before the 221
        (the client may connect again as soon as it reads it), else when
        the thread ends."""
        with self.lock:
            if not conn.closed:
                self.current -= 1
                conn.closed = True

    @staticmethod
    def _send(st, line):
        st["sock"].sendall(line.encode() + CRLF)

    @staticmethod
    def _line(st, limit=4096):
        while CRLF not in st["buf"]:
            if len(st["buf"]) > limit:
                raise _Close()
            chunk = st["sock"].recv(65536)
            if not chunk:
                raise _Close()
            st["buf"] += chunk
        line, _, st["buf"] = st["buf"].partition(CRLF)
        return line.decode("utf-8", "replace")

    def _record(self, conn, line):
        with self.lock:
            conn.commands.append(line)

    def _ehlo_lines(self, conn):
        ext = []
        if self.pipelining:
            ext.append("PIPELINING")
        ext.append("SIZE %d" % self.size)
        if self.eightbitmime:
            ext.append("8BITMIME")
        if self.dsn:
            ext.append("DSN")
        ext.append("ENHANCEDSTATUSCODES")
        if self.ctx is not None and not conn.tls:
            ext.append("STARTTLS")
        if self.auth and conn.auth_user is None and (conn.tls or not self.auth_needs_tls):
            ext.append("AUTH PLAIN LOGIN")
        return [self.hostname] + ext

    def _session(self, st, conn):
        self._send(st, self.greeting)
        if not self.greeting.startswith("2"):
            while True:
                line = self._line(st)
                self._record(conn, line)
                if line.upper() == "QUIT":
                    self._leave(conn)
                    self._send(st, "221 2.0.0 Bye")
                    return
                self._send(st, "503 5.5.1 Bad sequence of commands")
        greeted = False
        sender = None
        rcpts = []
        while True:
            line = self._line(st)
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb == "AUTH":
                self._record(conn, "AUTH %s ***" % arg.split(" ")[0].upper())
            else:
                self._record(conn, line)
            if verb == "EHLO":
                if not self.ehlo_ok:
                    self._send(st, "502 5.5.1 EHLO not supported, use HELO")
                    continue
                conn.helo = line
                greeted = True
                sender, rcpts = None, []
                lines = self._ehlo_lines(conn)
                for i, l in enumerate(lines):
                    self._send(st, "250%s%s" % ("-" if i < len(lines) - 1 else " ", l))
            elif verb == "HELO":
                conn.helo = line
                greeted = True
                sender, rcpts = None, []
                self._send(st, "250 %s" % self.hostname)
            elif verb == "STARTTLS":
                if self.ctx is None or conn.tls:
                    self._send(st, "502 5.5.1 STARTTLS not available")
                    continue
                if st["buf"]:
                    self._send(st, "501 5.5.2 pipelined data after STARTTLS")
                    raise _Close()
                self._send(st, "220 2.0.0 Ready to start TLS")
                st["sock"] = self.ctx.wrap_socket(st["sock"], server_side=True)
                st["sock"].settimeout(self.timeout)
                conn.tls = True
                conn.tls_version = st["sock"].version()
                greeted = False
                sender, rcpts = None, []
            elif verb == "AUTH":
                self._auth(st, conn, greeted, arg)
            elif verb == "MAIL":
                if not greeted:
                    self._send(st, "503 5.5.1 EHLO/HELO first")
                elif self.auth and conn.auth_user is None:
                    self._send(st, "530 5.7.0 Authentication required")
                elif sender is not None:
                    self._send(st, "503 5.5.1 Nested MAIL command")
                else:
                    m = re.match(r"(?i)FROM:\s*<([^>]*)>", arg)
                    if not m:
                        self._send(st, "501 5.5.4 Syntax: MAIL FROM:<address>")
                        continue
                    sm = re.search(r"(?i)\sSIZE=(\d+)", arg)
                    if sm and int(sm.group(1)) > self.size:
                        self._send(st, "552 5.3.4 Message size exceeds fixed limit")
                        continue
                    sender, rcpts = m.group(1), []
                    self._send(st, "250 2.1.0 Ok")
            elif verb == "RCPT":
                if sender is None:
                    self._send(st, "503 5.5.1 MAIL first")
                    continue
                m = re.match(r"(?i)TO:\s*<([^>]*)>", arg)
                if not m:
                    self._send(st, "501 5.5.4 Syntax: RCPT TO:<address>")
                    continue
                reply = self.rcpt_replies.get(m.group(1).lower(), "250 2.1.5 Ok")
                if reply.startswith("2"):
                    rcpts.append(m.group(1))
                self._send(st, reply)
            elif verb == "DATA":
                if sender is None or not rcpts:
                    self._send(st, "503 5.5.1 No valid recipients")
                    continue
                self._send(st, "354 End data with <CR><LF>.<CR><LF>")
                data = self._data(st)
                if self.data_delay:
                    time.sleep(self.data_delay)
                if len(data) > self.size:
                    sender, rcpts = None, []
                    self._send(st, "552 5.3.4 Message size exceeds fixed limit")
                    continue
                with self.lock:
                    conn.messages.append(PeerMessage(sender, list(rcpts), data, conn.tls,
                                                     conn.auth_user, conn))
                sender, rcpts = None, []
                self._send(st, "250 2.0.0 Ok: queued")
            elif verb == "RSET":
                sender, rcpts = None, []
                self._send(st, "250 2.0.0 Ok")
            elif verb == "NOOP":
                self._send(st, "250 2.0.0 Ok")
            elif verb == "QUIT":
                self._leave(conn)
                self._send(st, "221 2.0.0 Bye")
                return
            else:
                self._send(st, "502 5.5.2 Command not recognized")

    @staticmethod
    def _data(st, limit=50 * 1024 * 1024):
        """The DATA content up to CRLF.CRLF, dot-unstuffed, bytes as sent."""
        out = []
        size = 0
        while True:
            while CRLF not in st["buf"]:
                if len(st["buf"]) > 1024 * 1024:
                    raise _Close()
                chunk = st["sock"].recv(65536)
                if not chunk:
                    raise _Close()
                st["buf"] += chunk
            line, _, st["buf"] = st["buf"].partition(CRLF)
            if line == b".":
                break
            if line.startswith(b"."):
                line = line[1:]
            out.append(line + CRLF)
            size += len(line) + 2
            if size > limit:
                raise _Close()
        return b"".join(out)

    def _auth(self, st, conn, greeted, arg):
        parts = arg.split(" ")
        mech = parts[0].upper()
        if not self.auth or not greeted:
            self._send(st, "503 5.5.1 AUTH not available")
            return
        if conn.auth_user is not None:
            self._send(st, "503 5.5.1 Already authenticated")
            return
        if self.auth_needs_tls and not conn.tls:
            self._send(st, "538 5.7.11 Encryption required for requested authentication")
            return
        if mech == "PLAIN":
            if len(parts) > 1:
                resp = parts[1]
            else:
                self._send(st, "334 ")
                resp = self._line(st)
            try:
                fields = base64.b64decode(resp, validate=True).split(b"\0")
                _, user, pw = fields
                user, pw = user.decode(), pw.decode()
            except (ValueError, TypeError, UnicodeDecodeError):
                self._send(st, "501 5.5.2 Bad AUTH PLAIN response")
                return
        elif mech == "LOGIN":
            try:
                if len(parts) > 1:
                    user = base64.b64decode(parts[1], validate=True).decode()
                else:
                    self._send(st, "334 VXNlcm5hbWU6")
                    user = base64.b64decode(self._line(st), validate=True).decode()
                self._send(st, "334 UGFzc3dvcmQ6")
                pw = base64.b64decode(self._line(st), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                self._send(st, "501 5.5.2 Bad AUTH LOGIN response")
                return
        else:
            self._send(st, "504 5.5.4 Unrecognized authentication type")
            return
        if (user, pw) == tuple(self.auth):
            conn.auth_user = user
            with self.lock:
                conn.commands.append("(AUTH %s ok as %s)" % (mech, user))
            self._send(st, "235 2.7.0 Authentication successful")
        else:
            with self.lock:
                conn.commands.append("(AUTH %s failed for %s)" % (mech, user))
            self._send(st, "535 5.7.8 Authentication credentials invalid")


# ---- a test certificate authority --------------------------------------------------

class TestCA:
    """A CA (ca.pem) in a directory of the test, server certificates signed
    by it, and self-signed ones.  EC P-256 keys (fast to make)."""

    def __init__(self, suite, sub="ca"):
        if shutil.which("openssl") is None:
            raise Skip("the openssl command is not installed (scripts/install-deps)")
        self.dir = os.path.join(suite.dir, sub)
        os.makedirs(self.dir, exist_ok=True)
        self.ca_pem = self.path("ca.pem")
        self.ca_key = self.path("ca.key")
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                      "ec_paramgen_curve:prime256v1", "-nodes", "-sha256",
                      "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                      "-subj", "/O=Mailroot e2e/CN=Mailroot e2e outbound test CA",
                      "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        os.chmod(self.dir, 0o755)
        os.chmod(self.ca_pem, 0o644)

    def path(self, name):
        return os.path.join(self.dir, name)

    def _openssl(self, *args):
        r = subprocess.run(["openssl"] + list(args), cwd=self.dir, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=60)
        assert r.returncode == 0, "openssl %s: %s" % (" ".join(args), r.stdout)
        return r.stdout

    @staticmethod
    def _san(names):
        out = []
        for n in names:
            try:
                ipaddress.ip_address(n)
                out.append("IP:" + n)
            except ValueError:
                out.append("DNS:" + n)
        return ",".join(out)

    def server(self, name, names):
        """A key and a certificate for `names` (DNS names and IP addresses;
        the first is the CN) signed by the CA: (crt path, key path)."""
        with open(self.path(name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth\n"
                    "basicConstraints=CA:FALSE\n" % self._san(names))
        self._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                      "-nodes", "-sha256", "-keyout", name + ".key", "-out", name + ".csr",
                      "-subj", "/O=Mailroot e2e/CN=%s" % names[0])
        self._openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                      "-CAcreateserial", "-sha256", "-days", "2", "-extfile", name + ".ext",
                      "-out", name + ".crt")
        os.chmod(self.path(name + ".key"), 0o600)
        return self.path(name + ".crt"), self.path(name + ".key")

    def self_signed(self, name, names):
        """A self-signed certificate for `names` (not from the CA): (crt, key)."""
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                      "ec_paramgen_curve:prime256v1", "-nodes", "-sha256",
                      "-keyout", name + ".key", "-out", name + ".crt", "-days", "2",
                      "-subj", "/O=Mailroot e2e bad/CN=%s" % names[0],
                      "-addext", "subjectAltName=%s" % self._san(names))
        os.chmod(self.path(name + ".key"), 0o600)
        return self.path(name + ".crt"), self.path(name + ".key")

    def client_context(self, check_hostname=True):
        ctx = ssl.create_default_context(cafile=self.ca_pem)
        ctx.check_hostname = check_hostname
        return ctx


# ---- DNS with MX records ---------------------------------------------------------

class MXDNS(LocalDNS):
    """LocalDNS (dnsmasq on 127.0.0.1) with MX records too: mx={domain:
    [(preference, host), ...]}; null_mx=[domain, ...] gives each the RFC 7505
    null MX ("0 ."); hosts={name: [addresses]} and ptr as LocalDNS.  Names
    under the local zones ("test" ...) with no record are NXDOMAIN; a name
    with an MX record only answers A/AAAA with NODATA."""

    def __init__(self, suite, mx=None, null_mx=(), hosts=None, ptr=None,
                 local=("test", "in-addr.arpa", "ip6.arpa")):
        super().__init__(suite, ptr=ptr, hosts=hosts, local=local)
        self.mx = mx or {}
        self.null_mx = list(null_mx)

    def _argv(self, port):
        argv = super()._argv(port)
        for domain, records in self.mx.items():
            for pref, host in records:
                argv.append("--mx-host=%s,%s,%d" % (domain, host, pref))
        for domain in self.null_mx:
            argv.append("--mx-host=%s,.,0" % domain)
        return argv


def _qname(name):
    return b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")
                    if l) + b"\0"


def _read_name(data, pos):
    """A (possibly compressed) domain name at pos: (name, position after it)."""
    labels = []
    end = None
    for _ in range(128):
        n = data[pos]
        if n == 0:
            pos += 1
            break
        if n & 0xc0 == 0xc0:
            if end is None:
                end = pos + 2
            pos = ((n & 0x3f) << 8) | data[pos + 1]
            continue
        labels.append(data[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    return ".".join(labels) + ".", (end if end is not None else pos)


def dns_answers(port, name, qtype, timeout=1.0, host="127.0.0.1"):
    """One DNS query over UDP: (rcode, [answers]) with A/AAAA as address
    text, MX as (preference, exchange) (exchange "." for a null MX), others
    as raw bytes; None when nothing answered."""
    qid = int.from_bytes(os.urandom(2), "big")
    pkt = qid.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + \
        _qname(name) + qtype.to_bytes(2, "big") + b"\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(pkt, (host, port))
        try:
            data = s.recv(4096)
        except socket.timeout:
            return None
    if len(data) < 12 or int.from_bytes(data[:2], "big") != qid:
        return None
    rcode = data[3] & 0x0f
    qd, an = int.from_bytes(data[4:6], "big"), int.from_bytes(data[6:8], "big")
    pos = 12
    for _ in range(qd):
        _, pos = _read_name(data, pos)
        pos += 4
    out = []
    for _ in range(an):
        _, pos = _read_name(data, pos)
        rtype = int.from_bytes(data[pos:pos + 2], "big")
        rdlen = int.from_bytes(data[pos + 8:pos + 10], "big")
        rd = pos + 10
        if rtype == 1 and rdlen == 4:
            out.append(socket.inet_ntop(socket.AF_INET, data[rd:rd + 4]))
        elif rtype == 28 and rdlen == 16:
            out.append(socket.inet_ntop(socket.AF_INET6, data[rd:rd + 16]))
        elif rtype == 15:
            pref = int.from_bytes(data[rd:rd + 2], "big")
            out.append((pref, _read_name(data, rd + 2)[0]))
        else:
            out.append(data[rd:rd + rdlen])
        pos = rd + rdlen
    return rcode, out
