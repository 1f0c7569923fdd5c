"""
mailroot_suite.py - the fixture of the Mailroot end-to-end suite.

One `Suite` is one isolated Mailroot instance: its own directory under the
run's base directory (mode 0755, so the daemon users can traverse it when
run as root), its own mailroot.conf, log file, control socket, pidfile and
free loopback port.  run.py makes one per test, starts it (unless the test
asks otherwise with @options(start=False)), calls the test with it, then
stops it and kills -9 whatever process of this instance is left (failing
the test if there was one).

Processes of an instance are found by an environment variable,
MAILROOT_E2E_INSTANCE=<token>, that smtpctl passes to mailrootd and
mailrootd to every daemon it execs; /proc/PID/environ shows it (root can
read every process's, an ordinary user its own).  So leftovers are found
even when they are no longer children of the supervisor.

Only the Python standard library is used.  Every wait polls with a
deadline; nothing sleeps a fixed long time.
"""
import ctypes
import grp
import os
import pwd
import re
import socket
import smtplib
import subprocess
import threading
import time
import uuid

DOMAIN = "example.test"
ALIAS = "alias.example.test"
HOSTNAME = "mx.example.test"
DAEMONS = ("smtpd", "queued", "pickupd", "deliverd")
CRLF = b"\r\n"


def _unserved_udp_port():
    """A loopback UDP port that nothing listens on (just freed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        return u.getsockname()[1]


NO_DNS = "127.0.0.1 port %d" % _unserved_udp_port()


class Skip(Exception):
    """Raised by a test that cannot run here; the reason is printed."""


def options(start=True, conf=None, timeout=None, only=None, why=""):
    """Decorate a test: start=False leaves the suite stopped (the config is
    written all the same); conf={keyword: value} overrides or adds
    mailroot.conf statements (value None removes one); timeout is the
    test's time limit in seconds (default: run.py's); only="root" or
    only="user" skips the test (before anything starts) unless run as root,
    or as an ordinary user, saying `why`."""
    assert only in (None, "root", "user")

    def deco(fn):
        fn.suite_options = {"start": start, "conf": dict(conf or {}),
                            "timeout": timeout, "only": only, "why": why}
        return fn
    return deco


def free_port():
    """A loopback port nobody listens on right now (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, what, interval=0.05):
    """Poll pred() until it returns a true value (returned) or fail."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def proc_state(pid):
    """The state letter of a process (R, S, Z, ...), or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # pid (comm) state ...: comm may hold spaces and parentheses.
    return data[data.rindex(b")") + 2:][:1].decode()


def alive(pid):
    """A process that exists and has not exited (a zombie has exited)."""
    st = proc_state(pid)
    return st is not None and st not in ("Z", "X")


def proc_status(pid):
    """/proc/PID/status as a dict of field -> text."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def proc_name(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


# ---- reaping the detached supervisor -------------------------------------
#
# mailrootd detaches (its starter exits), so it is re-parented to the
# nearest "child subreaper", normally PID 1.  Where PID 1 reaps late (some
# container and VM inits take a second or more), the exited mailrootd stays
# a zombie and `smtpctl stop`, which waits until kill(pid, 0) fails, waits
# that long too.  The harness makes itself the subreaper and reaps the
# supervisors it started at once, as a normal init would.

_watched = set()
_watch_lock = threading.Lock()
_reaper_started = False


def _reaper():
    while True:
        with _watch_lock:
            pids = list(_watched)
        for pid in pids:
            if proc_state(pid) in (None, "Z"):
                try:
                    reaped = os.waitpid(pid, os.WNOHANG)[0] == pid
                except ChildProcessError:
                    reaped = False      # not ours to reap (PID 1 will)
                if reaped or proc_state(pid) is None:
                    with _watch_lock:
                        _watched.discard(pid)
        time.sleep(0.02)


def enable_subreaper():
    """Become the subreaper of detached descendants (Linux prctl)."""
    global _reaper_started
    PR_SET_CHILD_SUBREAPER = 36
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        ok = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        ok = False
    if ok and not _reaper_started:
        threading.Thread(target=_reaper, name="reaper", daemon=True).start()
        _reaper_started = True
    return ok


def watch(pid):
    """Reap `pid` as soon as it exits (when it is our child)."""
    with _watch_lock:
        _watched.add(pid)


def session_leader(pid):
    """True when the process leads its own session (a detached daemon)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return False
    fields = data[data.rindex(b")") + 2:].split()
    return int(fields[3]) == pid      # state ppid pgrp session


class Status:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err
        self.state = None
        self.pids = {}          # name -> pid or None (down)
        self.restarts = {}      # name -> int
        lines = out.splitlines()
        if lines:
            self.state = lines[0].strip()
        for line in lines[1:]:
            m = re.match(r"\s+(\S+)\s+(\d+|down)(?:\s+restarts\s+(\d+))?\s*$", line)
            if not m:
                continue
            self.pids[m.group(1)] = None if m.group(2) == "down" else int(m.group(2))
            if m.group(3) is not None:
                self.restarts[m.group(1)] = int(m.group(3))

    def __repr__(self):
        return "Status(rc=%d, %r)" % (self.rc, self.out + self.err)


class DropMessage:
    """A Drop/<id>.eml: x-sender, x-receivers, the Received: field (bytes,
    all its lines) and the content after it (bytes)."""

    def __init__(self, name, raw):
        self.name, self.raw = name, raw
        self.sender = None
        self.receivers = []
        pos = 0
        while True:
            end = raw.find(CRLF, pos)
            assert end != -1, "%s: unterminated envelope line" % name
            line = raw[pos:end]
            if line.startswith(b"x-sender: ") and self.sender is None and not self.receivers:
                self.sender = line[len(b"x-sender: "):].decode()
            elif line.startswith(b"x-receiver: ") and self.sender is not None:
                self.receivers.append(line[len(b"x-receiver: "):].decode())
            else:
                break
            pos = end + 2
        assert self.sender is not None, "%s: no leading x-sender line: %r" % (name, raw[:200])
        assert self.receivers, "%s: no x-receiver line: %r" % (name, raw[:200])
        assert raw.startswith(b"Received: ", pos), \
            "%s: no Received: after the envelope lines: %r" % (name, raw[pos:pos + 200])
        start = pos
        pos = raw.index(CRLF, pos) + 2
        while raw[pos:pos + 1] in (b" ", b"\t"):
            pos = raw.index(CRLF, pos) + 2
        self.received = raw[start:pos]
        self.content = raw[pos:]

    @property
    def qid(self):
        return self.name[:-4]

    def header_section(self):
        """The content's header section (up to the empty line), bytes."""
        i = self.content.find(b"\r\n\r\n")
        return self.content if i == -1 else self.content[:i + 2]

    def header_count(self, field):
        """How many header fields (in the content) are named `field`."""
        pat = re.compile(rb"^" + re.escape(field.encode()) + rb":", re.I | re.M)
        return len(pat.findall(self.header_section()))

    def header_value(self, field):
        m = re.search(rb"^" + re.escape(field.encode()) + rb":[ \t]*(.*?)\r\n",
                      self.header_section(), re.I | re.M)
        return m.group(1).decode() if m else None


class RawSMTP:
    """An SMTP client on a plain socket, to send exact bytes."""

    def __init__(self, port, timeout=10, greet=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.banner = self.reply() if greet else None

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _line(self):
        while CRLF not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by the server; unread %r" % self.buf)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(CRLF)
        return line.decode("utf-8", "replace")

    def reply(self):
        """Read one (possibly multi-line) reply: (code, text of all lines)."""
        lines = []
        while True:
            line = self._line()
            lines.append(line)
            if not re.match(r"^\d{3}[ -]", line + " "):
                raise AssertionError("malformed reply line %r" % line)
            if len(line) < 4 or line[3] == " ":
                return int(line[:3]), "\n".join(lines)

    def cmd(self, line):
        self.send(line + "\r\n" if isinstance(line, str) else line + CRLF)
        return self.reply()

    def expect(self, line, code, what=None):
        c, text = self.cmd(line)
        assert c == code, "%s: expected %d, got %r" % (what or repr(line)[:80], code, text)
        return text

    def closed_by_peer(self, timeout=5):
        """True when the server closes the connection (EOF) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class Suite:
    def __init__(self, name, basedir, bindir, builddir, srcdir, verbose=False):
        self.name = name
        self.dir = os.path.join(basedir, name)
        os.mkdir(self.dir)
        os.chmod(self.dir, 0o755)
        self.builddir, self.srcdir, self.bindir = builddir, srcdir, bindir
        self.verbose = verbose
        self.root = os.path.join(self.dir, "root")
        self.conf_path = os.path.join(self.dir, "mailroot.conf")
        self.log_path = os.path.join(self.dir, "mailroot.log")
        self.port = free_port()
        self.token = "e2e-" + uuid.uuid4().hex
        self.env = dict(os.environ)
        self.env.update(MAILROOT_SBINDIR=bindir, MAILROOT_LIBEXECDIR=bindir,
                        MAILROOT_E2E_INSTANCE=self.token)
        self.notes = []
        self.is_root = os.geteuid() == 0
        self.conf = {}

    # ---- configuration and control ---------------------------------------

    def write_config(self, overrides=None):
        conf = {
            "hostname": HOSTNAME,
            "mailroot": '"%s"' % self.root,
            "default-domain": DOMAIN,
            "alias-domain": ALIAS,
            "listen": "on 127.0.0.1 port %d" % self.port,
            "log-file": '"%s"' % self.log_path,
            "log-verbose": "yes",
            "pickup-interval": "1s",
            # Traffic stays on loopback: without a test's own DNS server,
            # lookups go to a port nobody serves (refused at once), never
            # to the host's resolver.
            "dns-server": NO_DNS,
        }
        for k, v in (overrides or {}).items():
            if v is None:
                conf.pop(k, None)
            else:
                conf[k] = v
        self.conf = conf
        with open(self.conf_path, "w") as f:
            f.write("# written by tests/e2e for %s\n" % self.name)
            for k, v in conf.items():
                f.write("%-16s %s\n" % (k, v))

    @property
    def pidfile(self):
        return os.path.join(self.root, "run", "mailrootd.pid")

    @property
    def control_socket(self):
        return os.path.join(self.root, "run", "control.sock")

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def binary(self, name):
        return os.path.join(self.bindir, name)

    def run(self, argv, timeout=60):
        """Run a command with the instance's environment: CompletedProcess."""
        return subprocess.run(argv, env=self.env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, text=True)

    def smtpctl(self, *args, timeout=60):
        self.watch_supervisors()
        try:
            return self.run([self.binary("smtpctl"), "-f", self.conf_path] + list(args),
                            timeout=timeout)
        finally:
            self.watch_supervisors()

    def start(self):
        r = self.smtpctl("start")
        assert r.returncode == 0, "smtpctl start: exit %d: %s%s" % (
            r.returncode, r.stdout, r.stderr)
        self.watch_supervisor()
        self.note_verbose("started on port %d" % self.port)
        return r

    def supervisor_pid(self):
        try:
            with open(self.pidfile) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def watch_supervisor(self):
        pid = self.supervisor_pid()
        if pid and session_leader(pid):
            watch(pid)
        return pid

    def watch_supervisors(self):
        """Have every mailrootd of this instance reaped as soon as it exits."""
        self.watch_supervisor()
        for pid in self.instance_pids():
            # The detached supervisor only: never a child subprocess waits for.
            if proc_name(pid) == "mailrootd" and session_leader(pid):
                watch(pid)

    def stop(self):
        return self.smtpctl("stop")

    def status(self):
        r = self.smtpctl("status")
        return Status(r.returncode, r.stdout, r.stderr)

    def daemon_pids(self):
        """name -> pid for mailrootd and the daemons, from `smtpctl status`."""
        st = self.status()
        assert st.rc == 0, "smtpctl status: %r" % st
        return st.pids

    def wait_restarted(self, name, old_pid, timeout=10):
        """Wait until status shows `name` running with a pid other than old_pid."""
        def check():
            st = self.status()
            pid = st.pids.get(name)
            return pid if st.rc == 0 and pid and pid != old_pid and alive(pid) else None
        return wait_for(check, timeout, "%s to be restarted (old pid %d)" % (name, old_pid))

    def instance_pids(self):
        """Live processes carrying this instance's token in their environment."""
        key = ("MAILROOT_E2E_INSTANCE=" + self.token).encode()
        found = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            pid = int(d)
            try:
                with open("/proc/%d/environ" % pid, "rb") as f:
                    envs = f.read().split(b"\0")
            except OSError:
                continue
            if key in envs and alive(pid) and pid != os.getpid():
                found.append(pid)
        return found

    # ---- logs and notes --------------------------------------------------

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=20):
        return self.log_text().splitlines()[-n:]

    def note(self, msg):
        """A line printed under the test's result line."""
        self.notes.append(msg)

    def note_verbose(self, msg):
        if self.verbose:
            self.notes.append(msg)

    # ---- SMTP ------------------------------------------------------------

    def smtp(self, timeout=10):
        s = smtplib.SMTP("127.0.0.1", self.port, local_hostname="client.example.net",
                         timeout=timeout)
        return s

    def raw(self, timeout=10, greet=True):
        return RawSMTP(self.port, timeout=timeout, greet=greet)

    def send(self, sender, rcpts, msg, smtp=None):
        """Send one message by smtplib (which dot-stuffs); return its queue id."""
        own = smtp is None
        s = smtp or self.smtp()
        try:
            if own:
                code, text = s.ehlo()
                assert code == 250, "EHLO: %d %r" % (code, text)
            code, text = s.mail(sender)
            assert code == 250, "MAIL FROM:<%s>: %d %r" % (sender, code, text)
            for r in rcpts:
                code, text = s.rcpt(r)
                assert code == 250, "RCPT TO:<%s>: %d %r" % (r, code, text)
            code, text = s.data(msg)
            assert code == 250, "DATA: %d %r" % (code, text)
            m = re.search(rb"queued as ([0-9a-f]{20})\b", text)
            assert m, "250 after DATA without a queue id: %r" % text
            return m.group(1).decode()
        finally:
            if own:
                try:
                    s.quit()
                except (smtplib.SMTPException, OSError):
                    pass

    # ---- the Mailroot folders ----------------------------------------------

    def _names(self, sub, dot=False):
        try:
            names = os.listdir(self.path(sub))
        except FileNotFoundError:
            return []
        return sorted(n for n in names if n.startswith(".") == dot)

    def drop_names(self):
        return [n for n in self._names("Drop") if n.endswith(".eml")]

    def drop_tmp_names(self):
        return self._names("Drop", dot=True)

    def queue_names(self):
        """Files in Queue/ (the tmp/ folder itself excluded)."""
        return [n for n in self._names("Queue") + self._names("Queue", dot=True) if n != "tmp"]

    def queue_tmp_names(self):
        return self._names("Queue/tmp") + self._names("Queue/tmp", dot=True)

    def wait_queue_empty(self, timeout=10):
        """Queue/ and Queue/tmp/ empty and no Drop/.*.tmp (a delivered
        message leaves Queue/ just after its Drop file appears)."""
        def check():
            return not (self.queue_names() or self.queue_tmp_names() or self.drop_tmp_names())
        try:
            wait_for(check, timeout, "an empty queue")
        except AssertionError:
            raise AssertionError("after %ss: Queue/ %r, Queue/tmp/ %r, Drop/ temporaries %r" % (
                timeout, self.queue_names(), self.queue_tmp_names(), self.drop_tmp_names()))

    def badmail_names(self):
        return self._names("Badmail")

    def pickup_names(self):
        return self._names("Pickup")

    def read_drop(self, name):
        if not name.endswith(".eml"):
            name += ".eml"
        with open(self.path("Drop", name), "rb") as f:
            return DropMessage(name, f.read())

    def wait_drop(self, qid, timeout=10):
        """Wait for Drop/<qid>.eml and return it parsed."""
        wait_for(lambda: os.path.exists(self.path("Drop", qid + ".eml")), timeout,
                 "Drop/%s.eml" % qid)
        return self.read_drop(qid)

    def wait_drop_count(self, n, timeout=10):
        return wait_for(lambda: (lambda d: d if len(d) >= n else None)(self.drop_names()),
                        timeout, "%d file(s) in Drop/" % n)

    def barrier(self, timeout=10):
        """Send a marker message by SMTP and wait for it in Drop/: every
        message accepted before it has been delivered by then (queued
        handles commits in order).  Returns the marker's queue id."""
        qid = self.send("barrier@example.net", ["barrier@" + DOMAIN],
                        b"Subject: barrier\r\n\r\nbarrier\r\n")
        self.wait_drop(qid, timeout)
        return qid

    def pickup(self, name, data):
        """Write a Pickup file the way an application should: under a dot
        name, readable by the mailroot group, then renamed into place."""
        assert not name.startswith(".")
        tmp = self.path("Pickup", "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        if self.is_root:
            os.chown(tmp, -1, grp.getgrnam("mailroot").gr_gid)
            os.chmod(tmp, 0o640)
        else:
            os.chmod(tmp, 0o600)
        os.rename(tmp, self.path("Pickup", name))

    def wait_pickup_gone(self, name, timeout=10):
        wait_for(lambda: not os.path.exists(self.path("Pickup", name)), timeout,
                 "Pickup/%s to be taken" % name)

    def find_drop_containing(self, needle):
        """Drop messages whose content contains `needle` (bytes)."""
        out = []
        for n in self.drop_names():
            try:
                m = self.read_drop(n)
            except FileNotFoundError:
                continue
            if needle in m.content:
                out.append(m)
        return out

    # ---- users (root only) -------------------------------------------------

    @staticmethod
    def uid(name):
        return pwd.getpwnam(name).pw_uid

    @staticmethod
    def gid(name):
        return grp.getgrnam(name).gr_gid

    # ---- teardown ------------------------------------------------------------

    def teardown(self):
        """Stop the instance; kill -9 leftovers.  Returns a list of problems."""
        problems = []
        self.watch_supervisors()
        if os.path.exists(self.control_socket) or self.instance_pids():
            try:
                r = self.stop()
                if r.returncode != 0:
                    problems.append("smtpctl stop: exit %d: %s%s" % (
                        r.returncode, r.stdout.strip(), r.stderr.strip()))
            except subprocess.TimeoutExpired:
                problems.append("smtpctl stop did not return within 60 s")
        left = self.instance_pids()
        if left:
            desc = ", ".join("%d (%s)" % (p, proc_name(p)) for p in left)
            for p in left:
                try:
                    os.kill(p, 9)
                except ProcessLookupError:
                    pass
            problems.append("processes left after stop (killed with -9): " + desc)
            try:
                wait_for(lambda: not self.instance_pids(), 5, "killed leftovers to go")
            except AssertionError as e:
                problems.append(str(e))
        return problems


# ---- helpers for connection control, relaying and reverse DNS -----------------
#
# Clients connect FROM other loopback addresses (127.0.0.2 and so on are
# local on Linux) so that access and relay rules see different clients, and
# a local DNS server (dnsmasq, package dnsmasq-base) gives those addresses
# their PTR and A/AAAA records.

def append_config(suite, lines):
    """Append statements (a keyword may repeat) to the instance's config file,
    after write_config() wrote it.  A dns-server line replaces the harness's
    default one (a server nobody serves)."""
    lines = list(lines)
    if any(l.split()[:1] == ["dns-server"] for l in lines) and \
            suite.conf.get("dns-server") == NO_DNS:
        with open(suite.conf_path) as f:
            kept = [l for l in f if l.split() != ["dns-server"] + NO_DNS.split()]
        with open(suite.conf_path, "w") as f:
            f.writelines(kept)
        del suite.conf["dns-server"]
    with open(suite.conf_path, "a") as f:
        for line in lines:
            f.write(line + "\n")


class RawSMTPFrom(RawSMTP):
    """RawSMTP whose socket is bound to a given local address first (to
    connect as another client); `host` is where the server listens."""

    def __init__(self, port, source, timeout=10, greet=True, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0))
        self.buf = b""
        self.banner = self.reply() if greet else None


def smtp_from(suite, source, timeout=10):
    """An smtplib client connecting to the instance from address `source`."""
    return smtplib.SMTP("127.0.0.1", suite.port, local_hostname="client.example.net",
                        timeout=timeout, source_address=(source, 0))


def ipv6_loopback():
    """True when ::1 can be bound here (a host or container without IPv6
    cannot run the IPv6 scenarios)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def dns_query(port, name, qtype, timeout=1.0, host="127.0.0.1"):
    """One DNS query over UDP (qtype 1 A, 12 PTR, 28 AAAA): (rcode, answer
    count), or None when nothing answered within timeout."""
    qid = int.from_bytes(os.urandom(2), "big")
    qname = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    pkt = qid.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + \
        qname + qtype.to_bytes(2, "big") + b"\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(pkt, (host, port))
        try:
            data = s.recv(4096)
        except socket.timeout:
            return None
    if len(data) < 12 or int.from_bytes(data[:2], "big") != qid:
        return None
    return data[3] & 0x0f, int.from_bytes(data[6:8], "big")


def reverse_name(addr):
    """The PTR owner name of an IPv4 or IPv6 address."""
    import ipaddress
    return ipaddress.ip_address(addr).reverse_pointer


class LocalDNS:
    """A dnsmasq on 127.0.0.1 and a free port that answers only from the
    records it is given, with no upstream server and no hosts file:
    ptr={address: name or [names]} gives PTR records only; hosts={name:
    [addresses]} gives A/AAAA records (and, by dnsmasq's rule, the matching
    PTR records too); `local` lists the zones answered NXDOMAIN for anything
    else.  A context manager; raises Skip when dnsmasq is not installed.
    Started with --no-daemon, so it is a child of the test and stopped (and
    waited for) on exit."""

    BINARY_PATHS = ("/usr/sbin/dnsmasq", "/usr/bin/dnsmasq")

    def __init__(self, suite, ptr=None, hosts=None, local=("test", "in-addr.arpa", "ip6.arpa")):
        self.suite = suite
        self.ptr = ptr or {}
        self.hosts = hosts or {}
        self.local = local
        self.port = None
        self.proc = None
        self.log_path = os.path.join(suite.dir, "dnsmasq.log")

    @classmethod
    def binary(cls):
        for p in cls.BINARY_PATHS:
            if os.access(p, os.X_OK):
                return p
        return None

    def _argv(self, port):
        argv = [self.binary(), "--no-daemon", "--conf-file=/dev/null", "--no-resolv",
                "--no-hosts", "--port=%d" % port, "--listen-address=127.0.0.1",
                "--bind-interfaces", "--pid-file=", "--log-queries", "--cache-size=0"]
        if os.geteuid() == 0:
            argv.append("--user=root")      # no need to become nobody for a test
        for zone in self.local:
            argv.append("--local=/%s/" % zone)
        for addr, names in self.ptr.items():
            for n in [names] if isinstance(names, str) else names:
                argv.append("--ptr-record=%s,%s" % (reverse_name(addr), n))
        for name, addrs in self.hosts.items():
            argv.append("--host-record=%s,%s" % (name, ",".join(addrs)))
        return argv

    @staticmethod
    def _free_udp_tcp_port():
        """A port free for both UDP and TCP on 127.0.0.1 (dnsmasq binds both)."""
        for _ in range(20):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", 0))
                port = u.getsockname()[1]
                try:
                    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                        t.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
        raise AssertionError("no free UDP+TCP port for dnsmasq")

    def start(self):
        if self.binary() is None:
            raise Skip("dnsmasq is not installed (Debian package dnsmasq-base; "
                       "scripts/install-deps installs it)")
        last = ""
        for _ in range(5):      # another process may take the port meanwhile
            port = self._free_udp_tcp_port()
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(self._argv(port), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log)
            log.close()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self.proc.poll() is None:
                if dns_query(port, "probe.invalid", 1, timeout=0.2) is not None:
                    self.port = port
                    return self
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(5)
            with open(self.log_path, "rb") as f:
                last = f.read().decode("utf-8", "replace")[-500:]
        raise AssertionError("dnsmasq did not start: %s" % last)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def conf_value(self):
        """The value of a dns-server statement for this server."""
        return "127.0.0.1 port %d" % self.port

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


class SilentDNS:
    """A UDP socket on 127.0.0.1 that takes DNS queries and never answers:
    a resolver pointed at it times out.  A context manager."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def conf_value(self):
        return "127.0.0.1 port %d" % self.port

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
