"""Privilege separation, proved on the files: a process with exactly the
credentials of smtpd or deliverd (uid, gid and supplementary groups read
from /proc, as the daemon runs) can open no file of the Mailroot and create
none in any of its folders, once mail has flowed (messages in Drop/, one
held in Queue/, a Badmail entry).  The probe does not chroot: it is the
strictest case, the daemon that escaped its chroot.  The chroot itself
(/proc/PID/root) holds nothing.

test_privsep.py checks the users, groups, chroot and modes themselves.
"""
import errno
import json
import os
import stat

from mailroot_suite import DOMAIN, options, proc_status, wait_for

# What every local user may read by design, so a daemon user too: the
# Mailroot's top (root 0755: the fixed folder names, so that each daemon
# reaches its own folder), empty/ (the chroot, root 0555, empty), run/ (root
# 0755: smtpctl of any user finds the pidfile and the control socket there;
# the socket itself is mode 0600 without an operators-group) and the pidfile
# (0644, as every pidfile: the pid is in /proc anyway).  Writing to them and
# creating a file in them is refused all the same.
PUBLIC = {("", "list"), ("empty", "list"), ("run", "list"), ("run/mailrootd.pid", "read")}
DENIED = (errno.EACCES, errno.EPERM)
PROBE = ".privsep-probe"


def creds(pid):
    """(uid, gid, groups) a process runs with, from /proc/PID/status."""
    st = proc_status(pid)
    uids = {int(x) for x in st["Uid"].split()}
    gids = {int(x) for x in st["Gid"].split()}
    assert len(uids) == 1 and len(gids) == 1, "pid %d: Uid %r Gid %r" % (pid, uids, gids)
    return uids.pop(), gids.pop(), sorted(int(x) for x in st["Groups"].split())


def attempt(fn):
    """None when fn() succeeded, else the errno it failed with."""
    try:
        fn()
    except OSError as e:
        return e.errno
    return None


def try_file(path, st):
    """What a daemon could do with one non-directory: {operation: errno}."""
    out = {}
    if stat.S_ISSOCK(st.st_mode):
        import socket
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            out["connect"] = attempt(lambda: s.connect(path))
        finally:
            s.close()
        return out
    for name, flags in (("read", os.O_RDONLY), ("write", os.O_WRONLY)):
        def op(flags=flags):
            fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
            try:
                if flags == os.O_RDONLY:
                    os.read(fd, 1)
            finally:
                os.close(fd)
        out[name] = attempt(op)
    return out


def try_dir(path):
    out = {"list": attempt(lambda: os.listdir(path))}

    def create():
        fd = os.open(os.path.join(path, PROBE), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(os.path.join(path, PROBE))
    out["create"] = attempt(create)
    return out


def probe_as(uid, gid, groups, targets):
    """Fork a child with exactly these credentials; it tries every target
    and reports {path: {operation: errno or None}}."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            res = {}
            for path, st in targets:
                res[path] = try_dir(path) if stat.S_ISDIR(st.st_mode) else try_file(path, st)
            data = json.dumps(res).encode()
            while data:
                data = data[os.write(wfd, data):]
            os._exit(0)
        except BaseException:
            os._exit(1)
    os.close(wfd)
    chunks = []
    while True:
        b = os.read(rfd, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(rfd)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, \
        "the probe as uid %d failed (status %r)" % (uid, status)
    return json.loads(b"".join(chunks))


def mailroot_targets(suite):
    """Every file and directory of the Mailroot, with the config and log."""
    out = []
    for top, dirs, files in os.walk(suite.root):
        for n in [top] + [os.path.join(top, f) for f in files]:
            out.append((n, os.lstat(n)))
    for extra in (suite.conf_path, suite.log_path):
        out.append((extra, os.lstat(extra)))
    return out


def flow_mail(suite):
    """Two messages in Drop/, one held in Queue/, one Badmail entry."""
    for i in range(2):
        suite.wait_drop(suite.send("f%d@sender.example.net" % i, ["f%d@%s" % (i, DOMAIN)],
                                   b"Subject: files\r\n\r\nfiles\r\n"))
    # A remote recipient whose domain does not resolve: deferred, kept in Queue/.
    held = suite.send("h@sender.example.net", ["h@remote.invalid"], b"Subject: held\r\n\r\nh\r\n")
    wait_for(lambda: any(n.startswith(held) for n in suite.queue_names()), 10,
             "the held message in Queue/")
    suite.pickup("broken", b"no header here, no recipient\r\n")
    wait_for(lambda: len(suite.badmail_names()) >= 2, 15, "the Badmail entry")
    return held


@options(only="root", why="the daemons change user and chroot only when started as root",
         conf={"relay": "allow 127.0.0.1/32", "retry-intervals": "1h 1h 1h 1h"})
def test_network_daemons_cannot_open_mailroot_files(suite):
    # The config is the administrator's file; mailroot.conf(5) asks for root
    # only when it holds credentials (the harness writes it 0644).  The
    # daemons get its text through a descriptor: a reload works with 0600.
    os.chmod(suite.conf_path, 0o600)
    r = suite.smtpctl("reload")
    assert r.returncode == 0, "reload with the config at 0600: %s%s" % (r.stdout, r.stderr)
    held = flow_mail(suite)
    pids = suite.daemon_pids()
    targets = mailroot_targets(suite)
    kinds = {}
    for _, st in targets:
        k = stat.S_IFMT(st.st_mode)
        kinds[k] = kinds.get(k, 0) + 1
    assert any(n.startswith(held) for n in suite.queue_names()), "the held message left Queue/"
    assert len(suite.drop_names()) >= 2 and suite.badmail_names(), "mail did not flow"
    assert kinds.get(stat.S_IFSOCK), "no socket found under the Mailroot"
    suite.note("%d paths probed: %d directories, %d files, %d sockets" % (
        len(targets), kinds.get(stat.S_IFDIR, 0), kinds.get(stat.S_IFREG, 0),
        kinds.get(stat.S_IFSOCK, 0)))
    for name in ("smtpd", "deliverd"):
        pid = pids[name]
        uid, gid, groups = creds(pid)
        assert uid != 0 and gid != 0 and 0 not in groups, "%s runs as %d:%d %r" % (
            name, uid, gid, groups)
        # The chroot: nothing in it, so nothing of the Mailroot either.
        root = "/proc/%d/root" % pid
        assert os.path.realpath(root) == suite.path("empty"), "%s chroot %s" % (
            name, os.readlink(root))
        inside = [os.path.join(t, n) for t, ds, fs in os.walk(root) for n in ds + fs]
        assert inside == [], "%s's chroot holds %r" % (name, inside)
        res = probe_as(uid, gid, groups, targets)
        allowed, refused, public = [], 0, 0
        for path, st in targets:
            rel = os.path.relpath(path, suite.root)
            for op, err in res[path].items():
                if ((rel if rel != "." else ""), op) in PUBLIC:
                    public += 1
                elif err in DENIED:
                    refused += 1
                else:
                    allowed.append("%s %s: %s" % (op, path, "allowed" if err is None else
                                                  errno.errorcode.get(err, err)))
        assert not allowed, "%s (uid %d gid %d groups %r) can:\n  %s" % (
            name, uid, gid, groups, "\n  ".join(allowed))
        assert refused >= len(targets), "%s: only %d attempts refused" % (name, refused)
        suite.note("%s uid %d gid %d groups %r: %d attempts refused, %d public by design" % (
            name, uid, gid, groups, refused, public))
