"""Privilege separation: users, groups, chroot and the Mailroot's modes."""
import grp
import os
import pwd
import stat

from mailroot_suite import DOMAIN, options, proc_status


def ids(pid):
    """(uids, gids, groups, root) of a running process, from /proc."""
    st = proc_status(pid)
    uids = [int(x) for x in st["Uid"].split()]
    gids = [int(x) for x in st["Gid"].split()]
    groups = sorted(int(x) for x in st["Groups"].split())
    return uids, gids, groups, os.readlink("/proc/%d/root" % pid)


def check_dir(suite, sub, user, group, mode):
    p = suite.path(sub) if sub else suite.root
    st = os.lstat(p)
    assert stat.S_ISDIR(st.st_mode), "%s is not a directory" % p
    got = (pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name,
           stat.S_IMODE(st.st_mode))
    assert got == (user, group, mode), "%s: owner %s:%s mode %04o, expected %s:%s %04o" % (
        sub or "Mailroot", got[0], got[1], got[2], user, group, mode)


@options(only="root", why="as an ordinary user every daemon runs as that user, "
         "without chroot (checked by test_unprivileged_mode)")
def test_privilege_separation_as_root(suite):
    pids = suite.daemon_pids()
    smtpd_u, queued_u, pickupd_u = (pwd.getpwnam(n) for n in ("_smtpd", "_smtpq", "_smtpp"))
    mailroot_gid = grp.getgrnam("mailroot").gr_gid
    expect = {
        # name: (uid, gid, supplementary groups, root)
        "mailrootd": (0, 0, None, "/"),
        "smtpd": (smtpd_u.pw_uid, smtpd_u.pw_gid, [smtpd_u.pw_gid], suite.path("empty")),
        "deliverd": (smtpd_u.pw_uid, smtpd_u.pw_gid, [smtpd_u.pw_gid], suite.path("empty")),
        "queued": (queued_u.pw_uid, queued_u.pw_gid, [queued_u.pw_gid], "/"),
        "pickupd": (pickupd_u.pw_uid, pickupd_u.pw_gid,
                    sorted({pickupd_u.pw_gid, mailroot_gid}), "/"),
    }
    for name, (uid, gid, groups, root) in expect.items():
        uids, gids, got_groups, got_root = ids(pids[name])
        assert uids == [uid] * 4, "%s: Uid (real, effective, saved, fs) %r, expected %d" % (
            name, uids, uid)
        assert gids == [gid] * 4, "%s: Gid %r, expected %d" % (name, gids, gid)
        if groups is not None:
            assert got_groups == groups, "%s: supplementary groups %r, expected %r" % (
                name, got_groups, groups)
        assert got_root == root, "%s: root directory %r, expected %r" % (name, got_root, root)
    assert mailroot_gid in ids(pids["pickupd"])[2], "pickupd lacks the mailroot group"
    # No capability left in a daemon.
    for name in ("smtpd", "queued", "pickupd", "deliverd"):
        st = proc_status(pids[name])
        for cap in ("CapInh", "CapPrm", "CapEff"):
            assert int(st[cap], 16) == 0, "%s has %s %s" % (name, cap, st[cap])
    # The Mailroot's owners and modes.
    check_dir(suite, "", "root", "root", 0o755)
    check_dir(suite, "Pickup", "_smtpp", "mailroot", 0o3770)
    check_dir(suite, "Queue", "_smtpq", "_smtpq", 0o700)
    check_dir(suite, "Queue/tmp", "_smtpq", "_smtpq", 0o700)
    check_dir(suite, "Drop", "_smtpq", "mailroot", 0o2770)
    check_dir(suite, "Badmail", "_smtpq", "mailroot", 0o2750)
    check_dir(suite, "empty", "root", "root", 0o555)
    assert os.listdir(suite.path("empty")) == [], "the chroot is not empty"
    st = os.lstat(suite.control_socket)
    assert stat.S_ISSOCK(st.st_mode) and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600, \
        "control socket: uid %d mode %04o" % (st.st_uid, stat.S_IMODE(st.st_mode))
    # A delivered message belongs to _smtpq, readable by the mailroot group only.
    qid = suite.send("p@sender.example.net", ["p@" + DOMAIN], b"Subject: p\r\n\r\np\r\n")
    suite.wait_drop(qid)
    st = os.lstat(suite.path("Drop", qid + ".eml"))
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (
        queued_u.pw_uid, mailroot_gid, 0o640), "Drop file owner %d:%d mode %04o" % (
        st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))


@options(only="user", why="as root the daemons drop privileges "
         "(checked by test_privilege_separation_as_root)")
def test_unprivileged_mode(suite):
    pids = suite.daemon_pids()
    uid, gid = os.geteuid(), os.getegid()
    for name, pid in pids.items():
        uids, gids, _, root = ids(pid)
        assert uids == [uid] * 4 and gids == [gid] * 4, "%s runs as %r/%r, not %d/%d" % (
            name, uids, gids, uid, gid)
        assert root == "/", "%s is chrooted to %r as an ordinary user" % (name, root)
    for sub in ("Pickup", "Queue", "Queue/tmp", "Drop", "Badmail", "empty", "run"):
        st = os.lstat(suite.path(sub))
        assert st.st_uid == uid, "%s owned by %d" % (sub, st.st_uid)
    qid = suite.send("u@sender.example.net", ["u@" + DOMAIN], b"Subject: u\r\n\r\nu\r\n")
    suite.wait_drop(qid)
