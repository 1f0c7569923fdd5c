"""SMTP AUTH (RFC 4954, PLAIN and LOGIN) on the inbound listener.

Each test writes a password table of crypt(3) hashes (yescrypt and bcrypt
from mkpasswd, of the Debian package whois; sha512-crypt from `openssl
passwd -6`) and a config whose listener has AUTH options, then drives
smtpd with swaks, smtplib and raw sockets.  mailrootd alone reads the
table; the last tests check that smtpd never holds it.
"""
import base64
import os
import pwd
import re
import shutil
import smtplib
import socket
import stat
import subprocess
import time

from mailroot_suite import (DOMAIN, RawSMTP, Skip, free_port, options, proc_status,
                            wait_for)

USERS = {"alice": ("yescrypt", "Alice-s3cret"),
         "bob": ("bcrypt", "bob pass with spaces"),
         "carol": ("sha512crypt", "c@rol:colon")}
_hashes = {}


def hash_password(method, password):
    """A crypt(3) hash of `password` made by an outside tool (cached)."""
    key = (method, password)
    if key in _hashes:
        return _hashes[key]
    if method == "sha512crypt":
        argv = ["openssl", "passwd", "-6", "-stdin"]
    else:
        if shutil.which("mkpasswd") is None:
            raise Skip("mkpasswd (Debian package whois, in scripts/install-deps) is "
                       "needed to make %s hashes" % method)
        argv = ["mkpasswd", "-m", method, "--stdin"]
    r = subprocess.run(argv, input=password + "\n", stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode == 0, "%s: %s" % (" ".join(argv), r.stderr)
    h = r.stdout.strip()
    assert h.startswith({"yescrypt": "$y$", "bcrypt": "$2b$", "sha512crypt": "$6$"}[method]), h
    _hashes[key] = h
    return h


def write_table(path, users, extra_lines=(), mode=0o600):
    with open(path, "w") as f:
        f.write("# user:hash, written by tests/e2e/test_auth.py\n\n")
        for user, (method, password) in users.items():
            f.write("%s:%s\n" % (user, hash_password(method, password)))
        for line in extra_lines:
            f.write(line + "\n")
    os.chmod(path, mode)


def configure(suite, opts="auth-plaintext", users=None, conf=None, extra=(),
              table_lines=(), table_mode=0o600, start=True):
    """Table and config for `suite`, whose main listener gets `opts`; `extra`
    are more lines for the config file.  Returns the table's path."""
    table = os.path.join(suite.dir, "passwd")
    write_table(table, USERS if users is None else users, table_lines, table_mode)
    c = {"listen": "on 127.0.0.1 port %d %s" % (suite.port, opts),
         "auth-table": '"%s"' % table}
    c.update(conf or {})
    suite.write_config(c)
    with open(suite.conf_path, "a") as f:
        for line in extra:
            f.write(line + "\n")
    if start:
        suite.start()
    return table


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def plain(user, password, authzid=""):
    return b64("%s\0%s\0%s" % (authzid, user, password))


def ehlo(c):
    return c.expect("EHLO client.example.net", 250)


def swaks(suite, *args, port=None):
    argv = ["swaks", "--server", "127.0.0.1", "--port", str(port or suite.port),
            "--helo", "client.example.net", "--timeout", "20"] + list(args)
    return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=60)


def queued_id(out):
    m = re.search(r"queued as ([0-9a-f]{20})", out)
    assert m, "no queue id in the output:\n%s" % out[-2000:]
    return m.group(1)


def connect_from(suite, source, port=None):
    """A RawSMTP client whose connection comes from address `source`."""
    c = RawSMTP.__new__(RawSMTP)
    c.sock = socket.create_connection(("127.0.0.1", port or suite.port), timeout=10,
                                      source_address=(source, 0))
    c.buf = b""
    c.banner = c.reply()
    return c


def timed(c, line):
    t0 = time.monotonic()
    code, text = c.cmd(line)
    return code, text, time.monotonic() - t0


# ---- it works ------------------------------------------------------------------------

@options(start=False)
def test_plain_and_login_deliver_with_esmtpa(suite):
    if shutil.which("swaks") is None:
        raise Skip("swaks is not installed (scripts/install-deps installs it)")
    configure(suite)
    r = swaks(suite, "--from", "alice@example.org", "--to", "a1@" + DOMAIN,
              "--auth", "PLAIN", "--auth-user", "alice", "--auth-password",
              USERS["alice"][1], "--header", "Subject: auth plain")
    assert r.returncode == 0, "swaks --auth PLAIN: exit %d\n%s" % (r.returncode, r.stdout)
    assert "250-AUTH PLAIN LOGIN" in r.stdout, "EHLO does not offer AUTH:\n" + r.stdout
    assert "235 2.7.0" in r.stdout, r.stdout
    m = suite.wait_drop(queued_id(r.stdout))
    assert b" with ESMTPA id " in m.received, "Received: does not say ESMTPA: %r" % m.received

    r = swaks(suite, "--from", "bob@example.org", "--to", "b1@" + DOMAIN,
              "--auth", "LOGIN", "--auth-user", "bob", "--auth-password",
              USERS["bob"][1], "--header", "Subject: auth login")
    assert r.returncode == 0, "swaks --auth LOGIN: exit %d\n%s" % (r.returncode, r.stdout)
    assert "334 VXNlcm5hbWU6" in r.stdout and "334 UGFzc3dvcmQ6" in r.stdout, r.stdout
    suite.wait_drop(queued_id(r.stdout))

    # smtplib, sha512-crypt user, LOGIN then PLAIN.
    for mech in ("LOGIN", "PLAIN"):
        s = suite.smtp()
        try:
            s.ehlo()
            assert s.has_extn("auth") and "PLAIN" in s.esmtp_features["auth"].split(), \
                s.esmtp_features
            s.user, s.password = "carol", USERS["carol"][1]
            code, text = s.auth(mech, getattr(s, "auth_" + mech.lower()),
                                initial_response_ok=(mech == "PLAIN"))
            assert code == 235, "%s: %d %r" % (mech, code, text)
            qid = suite.send("carol@example.org", ["c1@" + DOMAIN],
                             b"Subject: carol\r\n\r\nhi\r\n", smtp=s)
            suite.wait_drop(qid)
        finally:
            s.quit()
    # A session that did not authenticate still says ESMTP.
    qid = suite.send("anon@example.org", ["d1@" + DOMAIN], b"Subject: anon\r\n\r\nx\r\n")
    m = suite.wait_drop(qid)
    assert b" with ESMTP id " in m.received, m.received
    log = suite.log_text()
    for user in ("alice", "bob", "carol"):
        assert re.search(r'status=authenticated mech=\w+ user="%s"' % user, log), \
            "no success line for %s in the log" % user
    for _, password in USERS.values():
        assert password not in log, "a password is in the log"


# ---- failures ------------------------------------------------------------------------

@options(start=False)
def test_wrong_password_and_unknown_user_get_535_after_the_delay(suite):
    configure(suite, conf={"auth-failure-delay": "2s", "auth-max-failures": "10"})
    with suite.raw() as c:
        ehlo(c)
        code, text, took = timed(c, "AUTH PLAIN " + plain("alice", "wrong password"))
        assert code == 535 and "5.7.8" in text, "wrong password: %r" % text
        assert took >= 1.95, "535 came after %.2fs, before the 2s delay" % took
        # LOGIN, unknown user: the same answer and the same delay.
        c.expect("AUTH LOGIN", 334)
        c.expect(b64("nobody"), 334)
        code, text, took = timed(c, b64("whatever"))
        assert code == 535 and "5.7.8" in text, "unknown user: %r" % text
        assert took >= 1.95, "535 for an unknown user after %.2fs" % took
        # The password of another user is wrong for this one.
        code, text, took = timed(c, "AUTH PLAIN " + plain("alice", USERS["bob"][1]))
        assert code == 535, text
        # Then the right one works on the same connection.
        code, text, took = timed(c, "AUTH PLAIN " + plain("alice", USERS["alice"][1]))
        assert code == 235 and "2.7.0" in text, text
        assert took < 1.9, "success was delayed too: %.2fs" % took
        c.expect("QUIT", 221)
    log = suite.log_text()
    assert 'status=auth-failed mech=PLAIN user="alice" reason=credentials failures=1' in log, \
        "failure not logged"
    assert 'status=auth-failed mech=LOGIN user="nobody" reason=credentials' in log
    assert "wrong password" not in log and "whatever" not in log, "a password is in the log"
    if shutil.which("swaks"):
        r = swaks(suite, "--from", "x@example.org", "--to", "z@" + DOMAIN, "--auth",
                  "PLAIN", "--auth-user", "alice", "--auth-password", "nope")
        assert r.returncode != 0 and "535 5.7.8" in r.stdout, r.stdout
        assert "queued as" not in r.stdout, r.stdout


@options(start=False)
def test_require_auth_refuses_mail_before_auth(suite):
    configure(suite, opts="require-auth auth-plaintext")
    with suite.raw() as c:
        text = ehlo(c)
        assert "AUTH PLAIN LOGIN" in text, text
        code, text = c.cmd("MAIL FROM:<a@example.org>")
        assert code == 530 and "5.7.0 Authentication required" in text, text
        code, text = c.cmd("RCPT TO:<x@%s>" % DOMAIN)
        assert code == 503, "RCPT after a refused MAIL: %r" % text
        c.expect("AUTH PLAIN " + plain("alice", USERS["alice"][1]), 235)
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<req@%s>" % DOMAIN, 250)
        c.expect("DATA", 354)
        text = c.expect("Subject: required\r\n\r\nbody\r\n.", 250)
        # The user stays authenticated after RSET and EHLO.
        c.expect("RSET", 250)
        ehlo(c)
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("QUIT", 221)
    m = suite.wait_drop(re.search(r"queued as ([0-9a-f]{20})", text).group(1))
    assert m.receivers == ["req@" + DOMAIN], m.receivers


@options(start=False)
def test_auth_not_offered_without_auth_plaintext_or_tls(suite):
    plain_port, none_port = free_port(), free_port()
    configure(suite, opts="auth", extra=[
        "listen on 127.0.0.1 port %d auth-plaintext" % plain_port,
        "listen on 127.0.0.1 port %d" % none_port])
    # "auth" alone: AUTH needs TLS, which this connection does not have.
    with suite.raw() as c:
        text = ehlo(c)
        assert "AUTH" not in text, "AUTH offered without TLS: %r" % text
        code, text = c.cmd("AUTH PLAIN " + plain("alice", USERS["alice"][1]))
        assert code == 538 and "5.7.11" in text, "AUTH without TLS: %r" % text
        c.expect("MAIL FROM:<a@example.org>", 250)     # not require-auth
    # No AUTH option at all: the command is not implemented there.
    with RawSMTP(none_port) as c:
        text = ehlo(c)
        assert "AUTH" not in text, text
        code, text = c.cmd("AUTH PLAIN " + plain("alice", USERS["alice"][1]))
        assert code == 502, "AUTH on a listener without it: %r" % text
    with RawSMTP(plain_port) as c:
        assert "AUTH PLAIN LOGIN" in ehlo(c)
        c.expect("AUTH PLAIN " + plain("alice", USERS["alice"][1]), 235)


@options(start=False)
def test_protocol_errors_and_limits(suite):
    configure(suite, conf={"auth-failure-delay": "0", "auth-max-failures": "0"})
    with suite.raw() as c:
        code, text = c.cmd("AUTH PLAIN " + plain("alice", USERS["alice"][1]))
        assert code == 503, "AUTH before EHLO: %r" % text
        c.expect("HELO client.example.net", 250)
        code, text = c.cmd("AUTH PLAIN " + plain("alice", USERS["alice"][1]))
        assert code == 503, "AUTH after HELO: %r" % text
        ehlo(c)
        code, text = c.cmd("AUTH CRAM-MD5")
        assert code == 504 and "5.5.4" in text, "unknown mechanism: %r" % text
        code, text = c.cmd("AUTH PLAIN a b")
        assert code == 501, "two arguments: %r" % text
        for bad in ("not base64!", "QUJD=", "QU=J", "Q===", "QUJDRA", "QUJ\tD"):
            code, text = c.cmd("AUTH PLAIN " + bad)
            assert code == 501 and "5.5.2" in text, "bad base64 %r: %r" % (bad, text)
        # PLAIN without its two NULs; "=" is an empty response.
        code, text = c.cmd("AUTH PLAIN " + b64("alice" + USERS["alice"][1]))
        assert code == 501, "PLAIN without NULs: %r" % text
        code, text = c.cmd("AUTH PLAIN =")
        assert code == 501, "empty PLAIN response: %r" % text
        # Cancel with "*" at each step.
        c.expect("AUTH PLAIN", 334)
        code, text = c.cmd("*")
        assert code == 501 and "5.0.0" in text, "cancel: %r" % text
        c.expect("AUTH LOGIN", 334)
        c.expect(b64("alice"), 334)
        code, text = c.cmd("*")
        assert code == 501 and "5.0.0" in text, "cancel: %r" % text
        # A continuation line is not a command.
        c.expect("AUTH LOGIN", 334)
        code, text = c.cmd("MAIL FROM:<a@example.org>")
        assert code == 501, "MAIL taken as a response: %r" % text
        # An authzid other than the user fails; the user's own one is fine.
        code, text = c.cmd("AUTH PLAIN " + plain("alice", USERS["alice"][1], "bob"))
        assert code == 535, "authzid of another user: %r" % text
        # Over-long continuation line: 500 5.5.6, the session goes on.
        c.expect("AUTH PLAIN", 334)
        code, text = c.cmd("A" * 12292)
        assert code == 500 and "5.5.6" in text, "over-long line: %r" % text
        c.expect("NOOP", 250)
        # 12288 octets are a line, if a useless one (too long to be PLAIN).
        c.expect("AUTH PLAIN", 334)
        code, text = c.cmd("QUFB" * 3072)
        assert code == 535, "12288-octet response: %r" % text
        # LOGIN with the user name as initial response.
        c.expect("AUTH LOGIN " + b64("alice"), 334)
        code, text = c.cmd(b64(USERS["alice"][1]))
        assert code == 235, "LOGIN with an initial response: %r" % text
        code, text = c.cmd("AUTH PLAIN " + plain("alice", USERS["alice"][1]))
        assert code == 503 and "5.5.1" in text, "AUTH twice: %r" % text
        c.expect("QUIT", 221)
    with suite.raw() as c:
        ehlo(c)
        c.expect("MAIL FROM:<a@example.org>", 250)
        code, text = c.cmd("AUTH PLAIN " + plain("alice", USERS["alice"][1], "alice"))
        assert code == 503, "AUTH in a transaction: %r" % text
        c.expect("RSET", 250)
        # Pipelined after AUTH: MAIL waits for the answer, and needs no AUTH= here.
        c.send("AUTH PLAIN %s\r\nMAIL FROM:<a@example.org> AUTH=<>\r\n" %
               plain("alice", USERS["alice"][1], "alice"))
        code, text = c.reply()
        assert code == 235, "pipelined AUTH: %r" % text
        code, text = c.reply()
        assert code == 250, "MAIL pipelined after AUTH: %r" % text
        c.expect("QUIT", 221)


@options(start=False)
def test_brute_force_is_cut_off_with_421(suite):
    configure(suite, conf={"auth-failure-delay": "0", "auth-max-failures": "3"})
    with suite.raw() as c:
        ehlo(c)
        for i in range(3):
            code, text = c.cmd("AUTH PLAIN " + plain("alice", "guess%d" % i))
            assert code == 535, "attempt %d: %r" % (i + 1, text)
        code, text = c.cmd("AUTH PLAIN " + plain("alice", USERS["alice"][1]))
        assert code == 421 and "4.7.0" in text, "4th attempt: %r" % text
        assert c.closed_by_peer(5), "not disconnected after 421"
    # A new connection from the address gets 421 instead of the greeting.
    c = suite.raw(greet=False)
    try:
        code, text = c.reply()
        assert code == 421 and "4.7.0" in text, "new connection: %r" % text
        assert c.closed_by_peer(5), "not disconnected after the 421 greeting"
    finally:
        c.close()
    # Another client address is not affected.
    with connect_from(suite, "127.0.0.2") as c:
        assert c.banner[0] == 220, c.banner
        ehlo(c)
        c.expect("AUTH PLAIN " + plain("alice", USERS["alice"][1]), 235)
    log = suite.log_text()
    assert "client=127.0.0.1 status=auth-blocked failures=3" in log, "block not logged"
    assert "client=127.0.0.1 status=refused reason=auth-failures" in log


# ---- the table -----------------------------------------------------------------------

@options(start=False)
def test_reload_picks_up_a_new_user(suite):
    table = configure(suite, conf={"auth-failure-delay": "0"})
    dave = ("sha512crypt", "dave-pw")

    def try_dave():
        with suite.raw() as c:
            ehlo(c)
            return c.cmd("AUTH PLAIN " + plain("dave", dave[1]))[0]

    assert try_dave() == 535, "dave before he is in the table"
    users = dict(USERS, dave=dave)
    write_table(table, users, ["this line is bad"])
    r = suite.smtpctl("reload")
    assert r.returncode == 0 and "reloaded" in r.stdout, "reload: %r" % (r,)
    assert try_dave() == 235, "dave after reload"
    wait_for(lambda: re.search(r"passwd:\d+: expected user:hash; line skipped",
                               suite.log_text()), 5, "the bad line to be logged")
    # A table that cannot be read fails the reload and keeps the old one.
    os.rename(table, table + ".gone")
    r = suite.smtpctl("reload")
    assert r.returncode == 1 and "auth-table" in (r.stdout + r.stderr), \
        "reload without a table: %r" % (r,)
    assert try_dave() == 235, "the previous table was not kept"


@options(start=False)
def test_bad_lines_and_mode_are_warned_about(suite):
    configure(suite, users={"alice": USERS["alice"]}, table_mode=0o644, table_lines=[
        "nocolon",
        "old:$1$abcdefgh$ZYWlWubbzKB8ySTa8oStW0",
        "locked:!$6$abc$def",
        "alice:" + hash_password("sha512crypt", "second alice"),
        "sp ace:" + hash_password("sha512crypt", "x"),
        "   # an indented comment",
        "  erin:%s  " % hash_password("sha512crypt", "erin-pw")])
    log = suite.log_text()
    for lineno, what in ((4, "expected user:hash"), (5, "not a yescrypt"),
                         (6, "locked entry"), (7, "user alice already declared at line 3"),
                         (8, "blank or control character")):
        assert re.search(r"passwd:%d: [^\n]*%s[^\n]*; line skipped" % (lineno, re.escape(what)),
                         log), "no warning for line %d (%s)" % (lineno, what)
    assert "readable by every user" in log, "world-readable table not warned about"
    assert "auth-table %s: 2 users" % os.path.join(suite.dir, "passwd") in log
    with suite.raw() as c:
        ehlo(c)
        c.expect("AUTH PLAIN " + plain("erin", "erin-pw"), 235)
    with suite.raw() as c:
        ehlo(c)
        code, text = c.cmd("AUTH PLAIN " + plain("alice", "second alice"))
        assert code == 535, "the duplicate line was used: %r" % text


@options(start=False)
def test_start_refused_without_the_table(suite):
    table = configure(suite, start=False)
    os.unlink(table)
    r = suite.smtpctl("start")
    assert r.returncode == 1, "start without the table: %r" % (r,)
    assert "auth-table" in r.stderr and table in r.stderr, r.stderr
    assert suite.instance_pids() == [], "processes left: %r" % suite.instance_pids()
    # Without an AUTH listener the table is not needed.
    suite.write_config({"auth-table": '"%s"' % table})
    suite.start()


@options(start=False)
def test_smtpd_never_holds_the_table(suite):
    table = configure(suite)
    with suite.raw() as c:
        ehlo(c)
        c.expect("AUTH PLAIN " + plain("alice", USERS["alice"][1]), 235)
    pids = suite.daemon_pids()
    real = os.path.realpath(table)
    for name, pid in pids.items():
        fds = os.listdir("/proc/%d/fd" % pid)
        assert fds, "cannot list the descriptors of %s" % name
        for fd in fds:
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except FileNotFoundError:
                continue
            assert target != real, "%s (pid %d) has the table open on fd %s" % (
                name, pid, fd)
    if os.geteuid() != 0:
        suite.note("as an ordinary user: the chroot and file permission checks "
                   "need root")
        return
    smtpd = pids["smtpd"]
    root = os.readlink("/proc/%d/root" % smtpd)
    assert root == suite.path("empty"), "smtpd root %r" % root
    assert os.listdir(root) == [], "smtpd's chroot is not empty"
    assert not os.path.exists(os.path.join(root, real.lstrip("/"))), \
        "the table is reachable inside smtpd's chroot"
    st = os.stat(table)
    assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    # The smtpd user cannot read the table even outside the chroot.
    u = pwd.getpwnam("_smtpd")
    uid = int(proc_status(smtpd)["Uid"].split()[1])
    assert uid == u.pw_uid, "smtpd runs as uid %d" % uid
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(u.pw_gid)
            os.setuid(u.pw_uid)
            try:
                open(table, "rb").close()
                os._exit(1)
            except PermissionError:
                os._exit(0)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, \
        "_smtpd could open the table (status %r)" % status


@options(start=False)
def test_reload_that_moves_listen_lines_keeps_their_options(suite):
    table = configure(suite, opts="require-auth auth-plaintext")
    # A new line ahead of the running one: its socket is not bound until a
    # restart, and the running listener must keep require-auth.
    suite.write_config({"listen": "on 127.0.0.1 port %d" % free_port(),
                        "auth-table": '"%s"' % table})
    with open(suite.conf_path, "a") as f:
        f.write("listen on 127.0.0.1 port %d require-auth auth-plaintext\n" % suite.port)
    r = suite.smtpctl("reload")
    assert r.returncode == 0, "reload: %r" % (r,)
    wait_for(lambda: "their options take effect at the next start" in suite.log_text(), 5,
             "smtpd to keep its listen lines")
    with suite.raw() as c:
        assert "AUTH PLAIN LOGIN" in ehlo(c)
        code, text = c.cmd("MAIL FROM:<a@example.org>")
        assert code == 530, "require-auth lost by the reload: %r" % text
