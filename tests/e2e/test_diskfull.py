"""Disk full: the whole Mailroot on a small file system the test makes (a
loop-mounted ext4 image, or a tmpfs with size= where mkfs.ext4 is missing),
filled up with a filler file while the suite runs.

While it is full: an SMTP message (DATA and BDAT) gets 452 4.3.1 and leaves
nothing half-written in Queue/tmp/ or Drop/; Pickup files stay in Pickup/
(not moved to Badmail/); what was committed before (Drop/ files, a held
message in Queue/) is unchanged; no daemon dies.  On ext4, with exactly one
or two blocks left, the failures happen inside queued instead (the
envelope, a Badmail report), with the same outcome (a small local message,
one file straight into Drop/, fits in one block and is accepted), and a message
committed to the queue has its local delivery deferred.  A recipient
refused for good while the disk is full keeps its message queued until the
report can be written.  Once the filler is removed, without restarting
anything, new SMTP mail is accepted, the Pickup files and the deferred
delivery flow into Drop/ and the report arrives, each within a bounded time.

Root only: an ordinary user cannot mount.  MAILROOT_E2E_SMALLFS=tmpfs
in the environment takes the tmpfs even where mkfs.ext4 is installed.
"""
import os
import re
import shutil
import subprocess
import time
import uuid

from mailroot_suite import DOMAIN, options, wait_for
from peers import SmtpSink, common_port
from test_outbound import reports

FS_MB = 16
SENDER = "alice@" + DOMAIN
FULL_WAIT = 5           # seconds the full state is watched (several rescans and retries)
RESUME = 30             # seconds for the flow to resume once space is back
N_PICKUP = 100             # more than pickupd takes in at once (64)
BAD_NAME = "not-a-message"
BAD_PICKUP = b"no colon in this header line\r\n\r\nbody\r\n"


def message(token, lines=30):
    t = token.encode()
    return (b"From: <" + SENDER.encode() + b">\r\n"
            b"To: <user@" + DOMAIN.encode() + b">\r\n"
            b"Subject: disk full " + t + b"\r\n"
            b"Message-ID: <" + t + b"@client.example.net>\r\n"
            b"Date: Sun, 6 Dec 2026 10:00:00 +0000\r\n"
            b"\r\n" +
            b"".join(b"line %03d of %s, some filler text\r\n" % (i, t) for i in range(lines)))


def pickup_message(token):
    t = token.encode()
    return (b"x-sender: app@sender.example.net\r\n"
            b"x-receiver: pick@" + DOMAIN.encode() + b"\r\n"
            b"From: app@sender.example.net\r\n"
            b"Subject: pickup on a full disk " + t + b"\r\n"
            b"Message-ID: <" + t + b"@sender.example.net>\r\n"
            b"Date: Sun, 6 Dec 2026 10:00:00 +0000\r\n"
            b"\r\n" +
            b"".join(b"line %03d of %s\r\n" % (i, t) for i in range(40)))


def run(argv):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=60)
    return r.returncode, r.stdout.strip()


class SmallFS:
    """A FS_MB file system mounted on `where`: ext4 on a loop device (it
    behaves like a disk: delayed allocation, a journal), else tmpfs."""

    def __init__(self, suite, where):
        self.where = where
        self.image = os.path.join(suite.dir, "mailroot-fs.img")
        self.kind = None

    def mount(self):
        os.makedirs(self.where, exist_ok=True)
        if shutil.which("mkfs.ext4") and os.environ.get("MAILROOT_E2E_SMALLFS") != "tmpfs":
            with open(self.image, "wb") as f:
                f.truncate(FS_MB << 20)
            rc, out = run(["mkfs.ext4", "-q", "-F", "-m", "0", "-b", "4096", self.image])
            assert rc == 0, "mkfs.ext4: %s" % out
            rc, out = run(["mount", "-o", "loop", self.image, self.where])
            if rc == 0:
                self.kind = "ext4 (loop)"
                try:
                    os.rmdir(os.path.join(self.where, "lost+found"))
                except OSError:
                    pass
                return self
            os.unlink(self.image)
        rc, out = run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0755" % FS_MB,
                       "mailroot-e2e", self.where])
        assert rc == 0, "mount tmpfs on %s: %s" % (self.where, out)
        self.kind = "tmpfs"
        return self

    def umount(self):
        if self.kind is None:
            return
        rc, out = run(["umount", self.where])
        if rc != 0:
            # Never leave a mount behind: detach it lazily.
            run(["umount", "-l", self.where])
            raise AssertionError("umount %s: %s (detached lazily)" % (self.where, out))
        self.kind = None
        if os.path.exists(self.image):
            os.unlink(self.image)

    def free(self):
        st = os.statvfs(self.where)
        return st.f_bavail * st.f_frsize

    def free_blocks(self):
        return os.statvfs(self.where).f_bavail

    def leave_free(self, filler, blocks):
        """Shrink or grow the filler until exactly `blocks` blocks are free
        (ext4 counts delayed allocations in statfs; fsync settles them)."""
        bs = os.statvfs(self.where).f_frsize
        size = os.path.getsize(filler)
        size -= size % bs
        for _ in range(200):
            free = self.free_blocks()
            if free == blocks:
                return True
            size += bs if free > blocks else -bs
            fd = os.open(filler, os.O_WRONLY)
            try:
                if free > blocks:
                    try:
                        allocate(fd, size - bs, bs)
                    except OSError:
                        size -= bs
                else:
                    os.ftruncate(fd, size)
                os.fsync(fd)
            finally:
                os.close(fd)
        return False

    def settle(self, filler, blocks, timeout=5):
        """leave_free(), until the count holds for half a second: ext4 gives
        back what it reserved for a file's metadata once the file is
        written out, a little later."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.leave_free(filler, blocks):
                time.sleep(0.5)
                if self.free_blocks() == blocks:
                    return True
        return False


def allocate(fd, offset, length):
    """Give the file blocks at once (fallocate), else by writing zeros."""
    try:
        os.posix_fallocate(fd, offset, length)
    except OSError as e:
        if e.errno not in (95, 22):         # EOPNOTSUPP, EINVAL: write instead
            raise
        os.pwrite(fd, b"\0" * length, offset)


def fill(path):
    """Grow `path` until the file system says ENOSPC; return its size."""
    size = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for piece in (1 << 20, 4096, 512):
            while True:
                try:
                    allocate(fd, size, piece)
                except OSError as e:
                    if e.errno not in (28, 122):    # ENOSPC, EDQUOT
                        raise
                    break
                size += piece
        try:
            os.fsync(fd)
        except OSError:
            pass
    finally:
        os.close(fd)
    return size


def snapshot(suite):
    """Bytes of every committed file: Drop/*.eml and Queue/*.eml (the
    content, never rewritten; envelopes are, at each attempt)."""
    out = {}
    for n in suite.drop_names():
        with open(suite.path("Drop", n), "rb") as f:
            out["Drop/" + n] = f.read()
    for n in suite.queue_names():
        if n.endswith(".eml"):
            with open(suite.path("Queue", n), "rb") as f:
                out["Queue/" + n] = f.read()
    return out


def envelope_problem(path):
    """Why Queue/<id>.env is not a whole envelope (common/envelope.h), or None."""
    qid = os.path.basename(path)[:-4]
    with open(path, "rb") as f:
        text = f.read()
    if not text.startswith(b"mailroot-envelope 1\n"):
        return "no mailroot-envelope line: %r" % text[:60]
    if not text.endswith(b"\nend\n"):
        return "torn (no final end line): %r" % text[-60:]
    if b"\nid " + qid.encode() + b"\n" not in text:
        return "not the id %s" % qid
    if not re.search(rb"\nrcpt (pending|done|failed|\w+) <", text):
        return "no rcpt line"
    return None


def check_envelopes(suite):
    for n in suite.queue_names():
        if n.endswith(".env"):
            why = envelope_problem(suite.path("Queue", n))
            assert why is None, "Queue/%s: %s" % (n, why)
            assert os.path.exists(suite.path("Queue", n[:-4] + ".eml")), \
                "Queue/%s without its content" % n


def smtp_data(suite, rcpt, msg):
    """One DATA transaction on a raw session: (reply to MAIL, to RCPT, after DATA)."""
    with suite.raw(timeout=20) as c:
        c.expect("EHLO client.example.net", 250)
        mail = c.cmd("MAIL FROM:<%s>" % SENDER)
        if mail[0] != 250:
            return mail, None, None
        rc = c.cmd("RCPT TO:<%s>" % rcpt)
        if rc[0] != 250:
            return mail, rc, None
        code, text = c.cmd("DATA")
        assert code == 354, "DATA: %r" % text
        c.send(msg + b".\r\n")
        final = c.reply()
        c.cmd("QUIT")
        return mail, rc, final


def smtp_bdat(suite, rcpt, msg):
    with suite.raw(timeout=20) as c:
        c.expect("EHLO client.example.net", 250)
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<%s>" % rcpt, 250)
        c.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
        final = c.reply()
        c.cmd("QUIT")
        return final


def no_temporaries(suite):
    return not (suite.queue_tmp_names() or suite.drop_tmp_names())


@options(start=False, only="root", why="mounting a small file system for the Mailroot needs "
         "root (mount(2))", timeout=150)
def test_disk_full_refuses_keeps_and_resumes(suite):
    fs = SmallFS(suite, suite.root).mount()
    try:
        _disk_full(suite, fs)
    finally:
        try:
            suite.stop()
        finally:
            fs.umount()


def _disk_full(suite, fs):
    suite.write_config({
        "relay": "allow 127.0.0.1/32",
        "retry-intervals": "2s 2s 3s 3s",
        "local-retry-interval": "2s",
        "remote-domain": "held.test hold",
    })
    suite.start()
    run_id = uuid.uuid4().hex[:8]

    # ---- committed before the disk fills: local mail in Drop/, and a
    # remote message held in Queue/ (no attempt: its files never change).
    local_qids = [suite.send(SENDER, ["user@" + DOMAIN], message("dfl-%s-%d" % (run_id, i)))
                  for i in range(3)]
    for q in local_qids:
        suite.wait_drop(q)
    remote_qid = suite.send(SENDER, ["someone@held.test"], message("dfr-%s" % run_id))
    assert os.path.exists(suite.path("Queue", remote_qid + ".eml"))
    # Pickup files written now under dot names (ignored by pickupd), renamed
    # into place once the disk is full: a rename needs no free block.
    pick = {"full-%d" % i: pickup_message("dfp-%s-%d" % (run_id, i)) for i in range(N_PICKUP)}
    for name, data in pick.items():
        tmp = suite.path("Pickup", "." + name + ".hold")
        with open(tmp, "wb") as f:
            f.write(data)
        os.chown(tmp, -1, suite.gid("mailroot"))
        os.chmod(tmp, 0o640)
    with open(suite.path("Pickup", "." + BAD_NAME + ".hold"), "wb") as f:
        f.write(BAD_PICKUP)
    os.chown(f.name, -1, suite.gid("mailroot"))
    os.chmod(f.name, 0o640)
    before = snapshot(suite)
    pids = suite.daemon_pids()
    log_mark = len(suite.log_text())

    # ---- fill the file system.
    filler = os.path.join(suite.root, "filler")
    t0 = time.monotonic()
    size = fill(filler)
    if fs.kind.startswith("ext4"):
        assert fs.settle(filler, 0), "cannot fill up: %d blocks free" % fs.free_blocks()
    free_after = fs.free()
    suite.note("Mailroot on %s of %d MB; filler %.1f MB, %d bytes free after it" % (
        fs.kind, FS_MB, size / 1e6, free_after))
    assert free_after < 64 * 1024, "the filler left %d bytes free" % free_after

    # SMTP: a message that cannot be written is refused with 452 4.3.1.
    replies = []
    for i, rcpt in enumerate(["user@" + DOMAIN, "someone@remote.test"]):
        mail, rc, final = smtp_data(suite, rcpt, message("dff-%s-%d" % (run_id, i), lines=200))
        replies.append((mail, rc, final))
        refused = [r for r in (mail, rc, final) if r is not None and r[0] != 250]
        assert refused, "a message to <%s> was accepted on a full disk: %r" % (rcpt, final)
        code, text = refused[0]
        assert code == 452 and "4.3.1" in text, \
            "to <%s> on a full disk: expected 452 4.3.1, got %r" % (rcpt, refused[0])
    bdat_code, text = smtp_bdat(suite, "user@" + DOMAIN, message("dfb-%s" % run_id, lines=200))
    assert bdat_code == 452 and "4.3.1" in text, "BDAT on a full disk: %d %r" % (bdat_code, text)
    # Nothing half-written is left of them.
    wait_for(lambda: no_temporaries(suite), 5, "no temporaries after the refusals")

    # Nearly full: one free block takes a small message's content, so
    # smtpd can write it; a local one is then whole in Drop/ (one file),
    # but queued cannot write a relayed one's envelope: 452 4.3.1, nothing
    # left behind.
    nearly = {}
    local_qid = None
    if fs.kind.startswith("ext4"):
        # One block, and a Pickup file that is not a valid message:
        # its Badmail/ copy (.BAD) fits, its report (.BDR) does not.  It
        # stays in Pickup/, and Badmail/ holds no copy without a report.
        assert fs.settle(filler, 1), "cannot leave one block free: %d" % fs.free_blocks()
        os.rename(suite.path("Pickup", "." + BAD_NAME + ".hold"), suite.path("Pickup", BAD_NAME))
        wait_for(lambda: len(re.findall(r"Badmail write failed", suite.log_text())) >= 2, 10,
                 "two attempts to move Pickup/%s to Badmail/" % BAD_NAME)
        assert suite.badmail_names() == [], "Badmail/ with one block free: %r" % \
            suite.badmail_names()
        assert suite.pickup_names() == [BAD_NAME], "Pickup/: %r" % suite.pickup_names()
        # Out of the way again (it would take the free block the next phases
        # count on), until the other Pickup files come.
        wait_for(lambda: len(re.findall(r"Badmail write failed", suite.log_text())) >= 3, 10,
                 "a third attempt, so none is in flight")
        os.rename(suite.path("Pickup", BAD_NAME), suite.path("Pickup", "." + BAD_NAME + ".hold"))
        # A small local message needs one block: it is written straight
        # into Drop/ (header and content in one file) and is accepted.
        assert fs.settle(filler, 1), "cannot leave one block free: %d" % fs.free_blocks()
        mail, rc, final = smtp_data(suite, "user@" + DOMAIN,
                                    message("dfn-%s-local" % run_id, 3))
        assert final[0] == 250, "a small local message with one block free: %r" % (final,)
        local_qid = final[1].split()[-1]
        suite.wait_drop(local_qid)
        assert no_temporaries(suite), "temporaries: %r %r" % (
            suite.queue_tmp_names(), suite.drop_tmp_names())
        # A relayed one needs two (content and envelope): 452 4.3.1, nothing
        # left behind.
        for what, rcpt in (("relayed", "someone@remote.test"),):
            assert fs.settle(filler, 1), "cannot leave one block free: %d" % \
                fs.free_blocks()
            mail, rc, final = smtp_data(suite, rcpt, message("dfn-%s-%s" % (run_id, what), 3))
            assert (mail[0], rc and rc[0]) == (250, 250), "MAIL/RCPT with one block free: " \
                "%r %r" % (mail, rc)
            assert final[0] == 452 and "4.3.1" in final[1], \
                "a %s message with one block free: expected 452 4.3.1 after DATA, got %r" % (
                    what, final)
            wait_for(lambda: no_temporaries(suite), 5, "no temporaries after the refusal")
            wait_for(lambda: fs.free_blocks() == 1, 5, "the refused message's block back")
            nearly[what] = final[0]
        # Two blocks: a message for a local and a remote recipient is
        # committed in Queue/ (content and envelope), but its Drop file
        # cannot be written: the local delivery is deferred until space returns.
        assert fs.settle(filler, 2), "cannot leave two blocks free: %d" % fs.free_blocks()
        mixed = message("dfm-%s" % run_id, 3)
        mixed_qid = suite.send(SENDER, ["user@" + DOMAIN, "someone@remote.test"], mixed)
        wait_for(lambda: re.search(r"%s status=deferred to=<user@%s> relay=local" % (
            mixed_qid, re.escape(DOMAIN)), suite.log_text()), 10,
            "the local delivery of %s to be deferred" % mixed_qid)
        assert not os.path.exists(suite.path("Drop", mixed_qid + ".eml"))
        assert no_temporaries(suite), "temporaries: %r %r" % (
            suite.queue_tmp_names(), suite.drop_tmp_names())
        assert fs.settle(filler, 0), "cannot fill up again: %d" % fs.free_blocks()

    # Pickup files arrive: they stay in Pickup/ and do not go to Badmail/.
    pick_mark = len(suite.log_text())
    for name in list(pick) + ([BAD_NAME] if nearly else []):
        os.rename(suite.path("Pickup", "." + name + ".hold"), suite.path("Pickup", name))
    wait_for(lambda: re.search(r"pickupd\[\d+\]: Pickup/\S+ no space in the queue",
                               suite.log_text()[pick_mark:]), 10,
             "pickupd to try the Pickup files")
    time.sleep(FULL_WAIT)       # several rescans and remote retries on the full disk
    # A full disk costs an attempt and a warning per rescan once the first
    # batch in flight (up to 64) failed, not one for every file each time.
    tried = [l for l in suite.log_text()[pick_mark:].splitlines()
             if re.search(r"pickupd\[\d+\]: Pickup/", l)]
    warned = [l for l in tried if not l.endswith("no space in the queue")]   # not debug
    assert len(tried) < 2 * N_PICKUP and len(warned) < N_PICKUP // 4, \
        "pickupd logged %d lines (%d warnings) in %ds for %d files on a full disk, e.g. %r" % (
            len(tried), len(warned), FULL_WAIT, N_PICKUP, warned[:3])
    assert sorted(suite.pickup_names()) == sorted(list(pick) + ([BAD_NAME] if nearly else [])), \
        "Pickup/ on a full disk: %r" % suite.pickup_names()
    assert suite.badmail_names() == [], "Badmail/ on a full disk: %r" % suite.badmail_names()
    assert no_temporaries(suite), "temporaries on a full disk: Queue/tmp/ %r, Drop/ %r" % (
        suite.queue_tmp_names(), suite.drop_tmp_names())
    # What was committed is undamaged, and nothing new appeared in Drop/.
    after = snapshot(suite)
    for k in before:
        assert after.get(k) == before[k], "%s changed on the full disk" % k
    new = sorted(k for k in after if k not in before and not (
        nearly and (k.startswith("Queue/" + mixed_qid) or k == "Drop/%s.eml" % local_qid)))
    assert not new, "new files on the full disk: %r" % new
    assert os.path.exists(suite.path("Queue", remote_qid + ".env"))
    check_envelopes(suite)
    # The daemons stayed up: same pids, no restart.
    st = suite.status()
    assert st.pids == pids, "daemons restarted on the full disk: %r -> %r" % (pids, st.pids)
    assert not any(st.restarts.values()), "restarts: %r" % st.restarts
    full_log = suite.log_text()[log_mark:]
    assert not re.search(r"restarting", full_log), \
        "a daemon died on the full disk: %r" % [
            l for l in full_log.splitlines() if re.search(r"killed|exited|restart", l)][:5]
    full_s = time.monotonic() - t0

    # ---- space returns: everything flows again, nothing restarted.
    os.unlink(filler)
    t1 = time.monotonic()
    qid = None
    deadline = time.monotonic() + RESUME
    while qid is None:
        mail, rc, final = smtp_data(suite, "user@" + DOMAIN, message("dfa-%s" % run_id))
        if final is not None and final[0] == 250:
            qid = re.search(r"queued as ([0-9a-f]{20})", final[1]).group(1)
            break
        assert time.monotonic() < deadline, "SMTP still refused after the space came back: " \
            "%r" % ((mail, rc, final),)
        time.sleep(0.5)
    suite.wait_drop(qid, RESUME)
    if nearly:
        m = suite.wait_drop(mixed_qid, RESUME)
        assert m.content == mixed and m.receivers == ["user@" + DOMAIN], \
            "Drop/%s.eml: %r %r" % (mixed_qid, m.receivers, m.content[:200])
    wait_for(lambda: not suite.pickup_names(), RESUME, "the Pickup files to be taken", 0.2)
    for name, data in pick.items():
        token = re.search(rb"disk dfp-[0-9a-f]{8}-\d+\r\n", data).group(0)
        found = wait_for(lambda: suite.find_drop_containing(token), RESUME,
                         "Pickup/%s in Drop/" % name)
        assert len(found) == 1, "Pickup/%s delivered %d times" % (name, len(found))
        assert found[0].content == data.split(b"\r\n", 2)[2], \
            "Drop/%s is not Pickup/%s as written" % (found[0].name, name)
    if nearly:
        bad = wait_for(lambda: (lambda b: b if len(b) >= 2 else None)(suite.badmail_names()),
                       RESUME, "Pickup/%s in Badmail/" % BAD_NAME)
        assert len(bad) == 2 and bad[0][:-4] == bad[1][:-4] and \
            sorted(n[-4:] for n in bad) == [".BAD", ".BDR"], "Badmail/: %r" % bad
        with open(suite.path("Badmail", bad[0]), "rb") as f:
            assert f.read() == BAD_PICKUP, "Badmail/%s is not the Pickup file" % bad[0]
    resume_s = time.monotonic() - t1
    wait_for(lambda: no_temporaries(suite), 5, "no temporaries at the end")
    assert len(suite.badmail_names()) == (2 if nearly else 0), \
        "Badmail/: %r" % suite.badmail_names()
    for k, v in before.items():
        with open(suite.path(k), "rb") as f:
            assert f.read() == v, "%s changed" % k
    st = suite.status()
    assert st.pids == pids and not any(st.restarts.values()), \
        "daemons restarted: %r -> %r" % (pids, st)
    if nearly:
        suite.note("one block free: 452 for the local (Drop/ write) and relayed (envelope "
                   "write) message, an invalid Pickup file kept out of Badmail/; two blocks: "
                   "a mixed message queued, its local delivery deferred, then delivered")
    suite.note("pickupd on the full disk: %d attempts logged, %d warnings in %ds for %d "
               "Pickup files" % (len(tried), len(warned), FULL_WAIT, N_PICKUP))
    suite.note("full for %.1fs: SMTP DATA %s; %d Pickup files kept; resumed in %.1fs "
               "(SMTP 250 and %d Pickup files in Drop/), no restart" % (
                   full_s, ", ".join("%d" % (r[2] or r[1] or r[0])[0] for r in replies) +
                   ", BDAT %d" % bdat_code,
                   N_PICKUP, resume_s, N_PICKUP))


@options(start=False, only="root", why="mounting a small file system for the Mailroot needs "
         "root (mount(2))", timeout=120)
def test_disk_full_bounce_waits_for_space(suite):
    """A recipient refused for good (550) while the disk is full: its
    non-delivery report cannot be written, so the message stays queued as
    it was (never dropped without its report); once space returns the next
    attempt fails again and the report lands in Drop/, once."""
    fs = SmallFS(suite, suite.root).mount()
    try:
        _bounce_on_full_disk(suite, fs)
    finally:
        try:
            suite.stop()
        finally:
            fs.umount()


def _bounce_on_full_disk(suite, fs):
    port = common_port(["127.0.0.1"])
    suite.write_config({
        "retry-intervals": "2s 2s 2s 2s",
        "outbound-connect-timeout": "2s",
        "remote-domain": "bounce.test allow-relay route [127.0.0.1]:%d" % port,
    })
    suite.start()
    token = "dfx-" + uuid.uuid4().hex[:8]
    msg = message(token)
    # The sink is down: the first attempt is deferred (connection refused).
    qid = suite.send(SENDER, ["nobody@bounce.test"], msg)
    wait_for(lambda: re.search(r"%s status=deferred to=<nobody@bounce.test>" % qid,
                               suite.log_text()), 15, "the first attempt to be deferred")
    with open(suite.path("Queue", qid + ".eml"), "rb") as f:
        content = f.read()
    drop_before = suite.drop_names()
    filler = os.path.join(suite.root, "filler")
    fill(filler)
    if fs.kind.startswith("ext4"):
        assert fs.settle(filler, 0), "cannot fill up: %d blocks free" % fs.free_blocks()
    log_mark = len(suite.log_text())
    # Now every attempt is refused for good, and the report cannot be written.
    with SmtpSink(suite, "127.0.0.1", port, hard=["rcpt"]):
        wait_for(lambda: re.search(r"%s: a report could not be made" % qid,
                                   suite.log_text()[log_mark:]), 20,
                 "an attempt whose report cannot be written")
        assert os.path.exists(suite.path("Queue", qid + ".env")), \
            "the message left the queue without its report"
        with open(suite.path("Queue", qid + ".eml"), "rb") as f:
            assert f.read() == content, "Queue/%s.eml changed" % qid
        check_envelopes(suite)
        assert suite.drop_names() == drop_before, "Drop/ on a full disk: %r" % suite.drop_names()
        assert no_temporaries(suite), "temporaries: %r %r" % (
            suite.queue_tmp_names(), suite.drop_tmp_names())
        os.unlink(filler)
        t = time.monotonic()
        r = wait_for(lambda: reports(suite, token, "failed"), RESUME,
                     "the report about %s in Drop/ once space is back" % token, 0.2)
        wait_for(lambda: not suite.queue_names(), RESUME, "the message to leave the queue")
        took = time.monotonic() - t
        time.sleep(1)
        assert len(reports(suite, token)) == 1, "%d reports about one failure" % \
            len(reports(suite, token))
        r[0].check_form()
        assert r[0].final_recipients() == ["nobody@bounce.test"], r[0].final_recipients()
    st = suite.status()
    assert not any(st.restarts.values()), "restarts: %r" % st.restarts
    suite.note("550 on a full disk: the report could not be made, the message stayed queued "
               "intact; once space was back, one report in Drop/ after %.1fs" % took)
