"""
bench_mta.py - the MTAs and processes bench/run starts, measures and stops.

Owns: starting and stopping a private Mailroot (from a build tree, as root
with real privilege separation) and a private Postfix instance (its own
config, queue and data directories in a temporary directory), and
smtp-sink; finding every process of an instance (by an environment
variable each one carries); their memory (RSS and PSS from
/proc/PID/smaps_rollup); reaping detached daemons; cleaning up every
process and directory even on error.

Runs in bench/run's process, as root or as an ordinary user (then Postfix,
whose `postfix` command is reserved for the superuser, is not available).
Only the Python standard library is used; every wait polls with a deadline.
Traffic only on 127.0.0.1.
"""
import os
import pwd
import re
import resource
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid

BINARIES = ("mailrootd/mailrootd", "smtpd/smtpd", "queued/queued", "pickupd/pickupd",
            "deliverd/deliverd",
            "smtpctl/smtpctl")
INSTANCE_VAR = "MAILROOT_BENCH_INSTANCE"
RUN_ID = uuid.uuid4().hex[:12]         # in every Mailroot token of this run


class BenchError(Exception):
    """A step of the benchmark failed: the run reports it and exits 1."""


# ---- processes ---------------------------------------------------------------

def free_port():
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, what, interval=0.02):
    """Poll pred() until it returns a true value (returned) or raise BenchError."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise BenchError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def proc_stat(pid):
    """(state, ppid, comm) of a process, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    lp, rp = data.index(b"("), data.rindex(b")")
    fields = data[rp + 2:].split()
    return fields[0].decode(), int(fields[1]), data[lp + 1:rp].decode("utf-8", "replace")


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def pids_with_env(var, value, prefix=False):
    """Live processes whose environment holds var=value (var=value... when
    prefix is true)."""
    key = ("%s=%s" % (var, value)).encode()
    me = os.getpid()
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        pid = int(d)
        if pid == me:
            continue
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                envs = f.read().split(b"\0")
        except OSError:
            continue
        if (any(e.startswith(key) for e in envs) if prefix else key in envs) and alive(pid):
            found.append(pid)
    return sorted(found)


def memory(pids):
    """Sum of RSS and of PSS in KiB over pids, and how many were read.
    PSS is None when some process's smaps_rollup could not be read."""
    rss = pss = n = 0
    pss_ok = True
    for pid in pids:
        vals = {}
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in ("Rss", "Pss"):
                        vals[k] = int(v.split()[0])
        except OSError:
            try:
                with open("/proc/%d/status" % pid) as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            vals["Rss"] = int(line.split()[1])
            except OSError:
                continue
        if "Rss" not in vals:
            continue
        n += 1
        rss += vals["Rss"]
        if "Pss" in vals:
            pss += vals["Pss"]
        else:
            pss_ok = False
    return {"rss_kib": rss, "pss_kib": pss if pss_ok else None, "processes": n}


def open_file_limit(pid):
    """(soft, hard) "Max open files" of a process, or None."""
    try:
        with open("/proc/%d/limits" % pid) as f:
            for line in f:
                if line.startswith("Max open files"):
                    parts = line.split()
                    return parts[3], parts[4]
    except OSError:
        pass
    return None


# Daemons that detach from their starter are re-parented to us (we are the
# child subreaper, as the e2e harness is): reap those as soon as they exit,
# but never a child that a subprocess.Popen of ours is waiting for.
_spawn_lock = threading.Lock()
_spawned = set()
_reaper_started = False


def enable_subreaper():
    """Become the child subreaper of detached descendants (Linux prctl) and
    start a thread that reaps them."""
    global _reaper_started
    import ctypes
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        ok = libc.prctl(36, 1, 0, 0, 0) == 0        # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        ok = False
    if ok and not _reaper_started:
        threading.Thread(target=_reaper, name="reaper", daemon=True).start()
        _reaper_started = True
    return ok


def _reaper():
    me = os.getpid()
    while True:
        with _spawn_lock:
            for d in os.listdir("/proc"):
                if not d.isdigit():
                    continue
                pid = int(d)
                if pid in _spawned:
                    continue
                st = proc_stat(pid)
                if st and st[1] == me and st[0] == "Z":
                    try:
                        os.waitpid(pid, os.WNOHANG)
                    except ChildProcessError:
                        pass
        time.sleep(0.05)


_nofile_for_children = None


def set_child_nofile(soft):
    """RLIMIT_NOFILE soft limit that the programs we start get (the MTAs must
    run with the limit the benchmark was started with, not the client's)."""
    global _nofile_for_children
    _nofile_for_children = soft


def _preexec():
    if _nofile_for_children is not None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (_nofile_for_children, hard))


def spawn(argv, **kw):
    """subprocess.Popen, registered so that the reaper leaves it alone."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    with _spawn_lock:
        p = subprocess.Popen(argv, preexec_fn=_preexec, **kw)
        _spawned.add(p.pid)
    return p


def forget(p):
    with _spawn_lock:
        _spawned.discard(p.pid)


def run(argv, timeout=60, env=None, check=True, what=None):
    """Run a command to its end: (exit status, stdout, stderr), text."""
    p = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        forget(p)
        raise BenchError("%s did not finish within %ds" % (what or argv[0], timeout))
    except BaseException:
        # Interrupted (a signal): the program must not go on without us.
        p.kill()
        p.wait()
        forget(p)
        raise
    forget(p)
    if check and p.returncode != 0:
        raise BenchError("%s: exit %d: %s%s" % (what or " ".join(argv), p.returncode,
                                                out.strip()[-400:], err.strip()[-400:]))
    return p.returncode, out, err


def kill_all(pids, what):
    """SIGKILL leftovers; return a description of them (empty if none)."""
    left = [p for p in pids if alive(p)]
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if left:
        return "%s: killed %d leftover process(es) with -9: %s" % (
            what, len(left), ", ".join("%d (%s)" % (p, (proc_stat(p) or ("", 0, "?"))[2])
                                       for p in left))
    return ""


def count_files(path, skip_dot=True, suffix=None):
    """Entries of a directory (names starting with '.' skipped), 0 if absent."""
    n = 0
    try:
        with os.scandir(path) as it:
            for e in it:
                if skip_dot and e.name.startswith("."):
                    continue
                if suffix and not e.name.endswith(suffix):
                    continue
                n += 1
    except FileNotFoundError:
        return 0
    return n


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)


# ---- Mailroot ----------------------------------------------------------------

class Mailroot:
    """A private Mailroot instance: default-domain local.test, one listener on
    127.0.0.1, its own Mailroot, config and log in a fresh directory."""

    name = "mailroot"
    title = "Mailroot"

    def __init__(self, builddir, srcdir, base):
        self.builddir, self.srcdir, self.base = builddir, srcdir, base
        self.bindir = os.path.join(base, "mailroot-bin")
        self.dir = None
        self.port = None
        self.token = None
        self.is_root = os.geteuid() == 0

    @staticmethod
    def check_build(builddir):
        for b in BINARIES:
            p = os.path.join(builddir, b)
            if not os.access(p, os.X_OK):
                raise BenchError("%s is missing or not executable: build Mailroot first "
                                 "(autoreconf -fi && ./configure && make)" % p)

    def prepare(self):
        """Once per run: bin/ of the binaries (copies: a rebuild during the run
        cannot change them), and the system users when root."""
        self.check_build(self.builddir)
        os.mkdir(self.bindir)
        os.chmod(self.bindir, 0o755)
        for b in BINARIES:
            shutil.copy2(os.path.join(self.builddir, b),
                         os.path.join(self.bindir, os.path.basename(b)))
        if self.is_root:
            run([os.path.join(self.srcdir, "etc", "install-users")], what="etc/install-users")

    def version(self):
        try:
            with open(os.path.join(self.srcdir, "configure.ac")) as f:
                m = re.search(r"AC_INIT\(\[mailroot\],\s*\[([^]]+)\]", f.read())
        except OSError:
            m = None
        v = m.group(1) if m else "?"
        try:
            r = subprocess.run(["git", "-C", self.srcdir, "describe", "--always", "--dirty"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               timeout=10)
            if r.returncode == 0 and r.stdout.strip():
                v += " (git %s)" % r.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
        return v

    @property
    def env(self):
        e = dict(os.environ)
        e.update(MAILROOT_SBINDIR=self.bindir, MAILROOT_LIBEXECDIR=self.bindir)
        e[INSTANCE_VAR] = self.token
        return e

    @property
    def conf_path(self):
        return os.path.join(self.dir, "mailroot.conf")

    @property
    def root(self):
        return os.path.join(self.dir, "root")

    @property
    def log_path(self):
        return os.path.join(self.dir, "mailroot.log")

    def start(self, sink_port=0, **_):
        self.dir = os.path.join(self.base, "mailroot-" + uuid.uuid4().hex[:8])
        os.mkdir(self.dir)
        os.chmod(self.dir, 0o755)       # the daemon users traverse it when run as root
        self.port = free_port()
        self.token = "bench-%s-%s" % (RUN_ID, uuid.uuid4().hex[:8])
        with open(self.conf_path, "w") as f:
            f.write("# written by bench/run\n"
                    "hostname         bench-mailroot.test\n"
                    "mailroot         \"%s\"\n"
                    "default-domain   local.test\n"
                    "listen           on 127.0.0.1 port %d\n"
                    "log-file         \"%s\"\n" % (self.root, self.port, self.log_path))
            if sink_port:
                # relay.test to smtp-sink, as Postfix's transport map does
                f.write("remote-domain    relay.test allow-relay route [127.0.0.1]:%d\n"
                        % sink_port)
        run([os.path.join(self.bindir, "smtpctl"), "-f", self.conf_path, "start"],
            env=self.env, what="smtpctl start")
        wait_for(lambda: port_open(self.port), 15, "Mailroot to listen on port %d" % self.port)
        # queued and pickupd up too (the listener alone is mailrootd's)
        wait_for(lambda: {"smtpd", "queued", "pickupd", "deliverd"} <= set(
            (proc_stat(p) or ("", 0, ""))[2] for p in self.pids()), 15,
            "Mailroot's daemons to run")

    def pids(self):
        return pids_with_env(INSTANCE_VAR, self.token) if self.token else []

    def daemon_pid(self, comm):
        for p in self.pids():
            st = proc_stat(p)
            if st and st[2] == comm:
                return p
        return None

    def delivered(self):
        return count_files(os.path.join(self.root, "Drop"), suffix=".eml")

    def where_delivered(self):
        return "Drop/"

    def log_tail(self, n=15):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace").splitlines()[-n:]
        except OSError:
            return []

    def stop(self):
        """Stop with smtpctl and kill -9 what is left.  Returns a list of
        problems (empty when it stopped cleanly).  The directory stays until
        the run's end: removing thousands of files between measurements
        would slow the next one's file creation (ext4 skips recently freed
        inodes), so bench/run removes every instance's at the end."""
        problems = []
        if self.dir is None:
            return problems
        if self.token and self.pids():
            try:
                run([os.path.join(self.bindir, "smtpctl"), "-f", self.conf_path, "stop"],
                    env=self.env, timeout=60, what="smtpctl stop")
            except BenchError as e:
                problems.append(str(e))
            try:
                wait_for(lambda: not self.pids(), 10, "Mailroot's processes to exit")
            except BenchError:
                pass
            msg = kill_all(self.pids(), "Mailroot")
            if msg:
                problems.append(msg)
        self.dir = self.token = None
        return problems


# ---- Postfix -----------------------------------------------------------------

POSTFIX_MASTER_CF = """\
# written by bench/run: a private instance, no chroot
127.0.0.1:{port} inet n - n - {smtpd_procs} smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

POSTFIX_MAIN_CF = """\
# written by bench/run: a private instance; fsync and everything else as
# shipped except the process limits (raised for 100 sessions and for the
# idle-connection test) and the per-client connection limit (Mailroot has
# none by default either).
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = bench-postfix.test
mydomain = bench-postfix.test
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
virtual_mailbox_domains = local.test
virtual_mailbox_base = {d}/mail
virtual_mailbox_maps = static:box/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
relay_domains = relay.test
transport_maps = inline:{{ relay.test=smtp:[127.0.0.1]:{sink_port} }}
default_process_limit = 200
smtpd_client_connection_count_limit = 0
maillog_file_prefixes = {d}
maillog_file = {d}/postfix.log
"""


class Postfix:
    """A private Postfix instance in a temporary directory: its own
    config_directory, queue_directory and data_directory; smtpd on
    127.0.0.1:port; local.test into one Maildir by virtual(8) with a static
    uid; relay.test to smtp-sink by a transport map.  Its processes carry
    MAIL_CONFIG=<its config directory> (the postfix command sets it, master
    passes it on), which is how they are found."""

    name = "postfix"
    title = "Postfix"

    def __init__(self, base):
        self.base = base
        self.dir = None
        self.port = None

    @staticmethod
    def unavailable():
        """Why no private Postfix can run here, as (short, long), or None."""
        if not os.path.exists("/usr/sbin/postfix"):
            return ("not installed",
                    "Postfix is not installed (scripts/install-deps installs it)")
        if os.geteuid() != 0:
            return ("needs root",
                    "Postfix needs root (its postfix command is reserved for the superuser)")
        try:
            pwd.getpwnam("postfix")
        except KeyError:
            return ("no postfix user", "there is no postfix system user")
        return None

    @staticmethod
    def version():
        try:
            _, out, _ = run(["postconf", "-d", "-h", "mail_version"], check=False)
            return out.strip() or "?"
        except (OSError, BenchError):
            return "?"

    @property
    def etc(self):
        return os.path.join(self.dir, "etc")

    @property
    def maildir_new(self):
        return os.path.join(self.dir, "mail", "box", "new")

    def start(self, sink_port=0, smtpd_procs=200):
        self.dir = os.path.join(self.base, "postfix-" + uuid.uuid4().hex[:8])
        self.port = free_port()
        for sub in ("", "etc", "queue", "data", "mail"):
            os.mkdir(os.path.join(self.dir, sub))
            os.chmod(os.path.join(self.dir, sub), 0o755)
        pw = pwd.getpwnam("nobody")
        os.chown(os.path.join(self.dir, "data"), pwd.getpwnam("postfix").pw_uid, -1)
        os.chown(os.path.join(self.dir, "mail"), pw.pw_uid, pw.pw_gid)
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(POSTFIX_MAIN_CF.format(d=self.dir, uid=pw.pw_uid, gid=pw.pw_gid,
                                           sink_port=sink_port or 9))
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(POSTFIX_MASTER_CF.format(port=self.port, smtpd_procs=smtpd_procs))
        for argv in (["postfix", "-c", self.etc, "check"], ["postfix", "-c", self.etc, "start"]):
            rc, out, err = run(argv, check=False, timeout=60)
            if rc != 0:
                raise BenchError("%s: exit %d: %s%s; log: %s" % (
                    " ".join(argv), rc, out, err, " | ".join(self.log_tail(5))))
        wait_for(lambda: port_open(self.port), 15, "Postfix to listen on port %d" % self.port)

    def pids(self):
        return pids_with_env("MAIL_CONFIG", self.etc) if self.dir else []

    def delivered(self):
        return count_files(self.maildir_new)

    def where_delivered(self):
        return "Maildir new/"

    def log_tail(self, n=15):
        try:
            with open(os.path.join(self.dir, "postfix.log"), "rb") as f:
                return f.read().decode("utf-8", "replace").splitlines()[-n:]
        except (OSError, TypeError):
            return []

    def queue_empty(self):
        q = os.path.join(self.dir, "queue")
        return all(count_files(os.path.join(q, s)) == 0
                   for s in ("incoming", "active", "deferred", "maildrop"))

    def stop(self):
        """Stop (postfix stop, then kill -9 what is left); the directory stays
        until the run's end, as Mailroot's does."""
        problems = []
        if self.dir is None:
            return problems
        if self.pids():
            rc, out, err = run(["postfix", "-c", self.etc, "stop"], check=False, timeout=60)
            if rc != 0:
                problems.append("postfix stop: exit %d: %s%s" % (rc, out, err))
            try:
                wait_for(lambda: not self.pids(), 15, "Postfix's processes to exit")
            except BenchError:
                pass
            msg = kill_all(self.pids(), "Postfix")
            if msg:
                problems.append(msg)
        self.dir = None
        return problems


# ---- smtp-sink -----------------------------------------------------------------

class Sink:
    """smtp-sink on 127.0.0.1:port, counting messages (-c) into a file."""

    def __init__(self, base):
        self.base = base
        self.proc = None
        self.port = None
        self.out_path = None

    def start(self):
        self.port = free_port()
        self.out_path = os.path.join(self.base, "sink-%d.out" % self.port)
        argv = ["smtp-sink", "-c"]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]    # required as root: it drops to this user
        argv += ["127.0.0.1:%d" % self.port, "1024"]
        out = open(self.out_path, "wb")
        try:
            self.proc = spawn(argv, stdout=out, stderr=subprocess.STDOUT)
        finally:
            out.close()
        wait_for(lambda: port_open(self.port) or self.proc.poll() is not None, 10,
                 "smtp-sink to listen")
        if self.proc.poll() is not None:
            raise BenchError("smtp-sink exited: %s" % self.output()[-300:])

    def output(self):
        try:
            with open(self.out_path, "rb") as f:
                return f.read().decode("ascii", "replace")
        except OSError:
            return ""

    def count(self):
        """Messages received so far (smtp-sink's running counter)."""
        m = re.findall(r"mesg=(\d+)", self.output())
        return int(m[-1]) if m else 0

    def stop(self):
        if self.proc is None:
            return []
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        forget(self.proc)
        self.proc = None
        try:
            os.unlink(self.out_path)
        except OSError:
            pass
        return []


def sweep(base):
    """Kill -9 whatever process of this run is still alive: Mailroot daemons
    carrying this run's token, Postfix daemons whose MAIL_CONFIG is under
    base.  The last step of a cleanup; returns a description or ''."""
    pids = set(pids_with_env(INSTANCE_VAR, "bench-%s-" % RUN_ID, prefix=True))
    pids |= set(pids_with_env("MAIL_CONFIG", base.rstrip("/") + "/", prefix=True))
    return kill_all(sorted(pids), "sweep")


def loadavg():
    """The 1-minute load average (other work on the machine skews figures)."""
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def kill_spawned():
    """Kill every program we started that is still running (cleanup on error)."""
    with _spawn_lock:
        pids = list(_spawned)
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
