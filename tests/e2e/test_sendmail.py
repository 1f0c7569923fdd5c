"""The sendmail-compatible command: it writes into Pickup/, pickupd delivers."""
import os
import shutil
import subprocess

from mailroot_suite import free_port, options, wait_for


def _sendmail(suite, args, text, user=None):
    argv = [os.path.join(suite.builddir, "smtpctl", "sendmail"), "-C", suite.conf_path] + args
    if user:
        argv = ["runuser", "-u", user, "--"] + argv
    return subprocess.run(argv, input=text.encode(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=30, env=suite.env)


def _one_drop(suite, before):
    wait_for(lambda: len(suite.drop_names()) > len(before), 10, "a new Drop file")
    new = [n for n in suite.drop_names() if n not in before]
    assert len(new) == 1, "expected one new Drop file, got %r" % new
    return suite.read_drop(new[0])


def test_sendmail_t_takes_recipients_from_headers(suite):
    before = suite.drop_names()
    r = _sendmail(suite, ["-t", "-f", "app@example.test"],
                  "To: Bob <bob@example.test>\nCc: carol@alias.example.test\n"
                  "Bcc: hidden@example.test\nSubject: via sendmail -t\n\nbody line\n")
    assert r.returncode == 0, r
    m = _one_drop(suite, before)
    assert m.sender == "app@example.test", m.sender
    assert sorted(m.receivers) == ["bob@example.test", "carol@alias.example.test",
                                   "hidden@example.test"], m.receivers
    assert b"Bcc:" not in m.raw and b"hidden@" not in m.raw.split(b"\r\n\r\n", 1)[0].split(
        b"Received:", 1)[1], "Bcc must not reach the copy delivered"
    assert b"\r\nbody line\r\n" in m.raw
    # pickupd removes its file once queued answers, just after the Drop file appears.
    wait_for(lambda: suite.pickup_names() == [], 10, "Pickup/ empty")


def test_sendmail_f_and_recipient_arguments(suite):
    before = suite.drop_names()
    r = _sendmail(suite, ["-f", "cron@example.test", "bob"], "Subject: cron\n\nhello\n")
    assert r.returncode == 0, r
    m = _one_drop(suite, before)
    assert m.sender == "cron@example.test" and m.receivers == ["bob@example.test"], (
        m.sender, m.receivers)
    assert m.header_count("From") == 1, "a From: field is added when missing"


def test_sendmail_dot_ends_input_unless_i(suite):
    before = suite.drop_names()
    r = _sendmail(suite, ["bob@example.test"], "Subject: a\n\nfirst\n.\nnot sent\n")
    assert r.returncode == 0, r
    m = _one_drop(suite, before)
    assert b"first" in m.raw and b"not sent" not in m.raw, m.raw
    before = suite.drop_names()
    r = _sendmail(suite, ["-i", "bob@example.test"], "Subject: b\n\nfirst\n.\nkept\n")
    assert r.returncode == 0, r
    m = _one_drop(suite, before)
    assert b"\r\n.\r\nkept\r\n" in m.raw, m.raw


def test_sendmail_body_only_message(suite):
    before = suite.drop_names()
    r = _sendmail(suite, ["bob@example.test"], "just a body, no header\n")
    assert r.returncode == 0, r
    m = _one_drop(suite, before)
    assert b"\r\n\r\njust a body, no header\r\n" in m.raw, m.raw
    assert suite.badmail_names() == []


def test_sendmail_refuses_bad_input(suite):
    r = _sendmail(suite, ["not an address"], "Subject: x\n\nx\n")
    assert r.returncode != 0 and b"invalid recipient" in r.stderr, r
    r = _sendmail(suite, ["-t"], "Subject: nobody\n\nx\n")
    assert r.returncode != 0 and b"no recipients" in r.stderr, r


@options(only="root", why="needs root to make a setgid copy and run it as another user")
def test_setgid_sendmail_refuses_another_config(suite):
    copy = os.path.join(suite.dir, "sendmail-setgid")
    shutil.copy(os.path.join(suite.builddir, "smtpctl", "sendmail"), copy)
    shutil.chown(copy, group="mailroot")
    os.chmod(copy, 0o2755)
    r = subprocess.run(["runuser", "-u", "nobody", "--", copy, "-C", suite.conf_path, "bob"],
                       input=b"x\n", stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert r.returncode == 64 and b"-C is not allowed" in r.stderr, r


def _sendmail_env(suite, args, data, argv0=None):
    prog = argv0 or os.path.join(suite.builddir, "smtpctl", "sendmail")
    env = dict(suite.env, MAILROOT_BINDIR=os.path.join(suite.builddir, "smtpctl"))
    return subprocess.run([prog, "-C", suite.conf_path] + args, input=data,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, env=env)


def _codes(out):
    """The reply codes of an SMTP transcript, one per (last line of a) reply."""
    return [int(l[:3]) for l in out.decode().split("\r\n") if len(l) > 3 and l[3] == " "]


def test_sendmail_bs_dialogue_delivers(suite):
    before = suite.drop_names()
    dialogue = (b"EHLO client.example.net\r\n"
                b"MAIL FROM:<app@example.test> BODY=8BITMIME\r\n"
                b"RCPT TO:<bob@example.test>\r\n"
                b"RCPT TO:<not an address>\r\n"
                b"RCPT TO:<carol@alias.example.test>\r\n"
                b"DATA\r\n"
                b"Subject: via -bs\r\n\r\n..leading dot\r\nbody\r\n.\r\n"
                b"NOOP\r\n"
                b"RSET\r\n"
                b"DATA\r\n"
                b"FOO\r\n"
                b"QUIT\r\n")
    r = _sendmail_env(suite, ["-bs"], dialogue)
    assert r.returncode == 0, r
    assert _codes(r.stdout) == [220, 250, 250, 250, 553, 250, 354, 250, 250, 250, 503,
                                500, 221], r.stdout
    assert b"250-PIPELINING\r\n" in r.stdout and b"SIZE " in r.stdout
    m = _one_drop(suite, before)
    assert m.sender == "app@example.test", m.sender
    assert sorted(m.receivers) == ["bob@example.test", "carol@alias.example.test"]
    assert b"\r\n.leading dot\r\nbody\r\n" in m.raw, m.raw
    assert m.header_count("From") == 1, "a From: field is added when missing, as with -t"


def test_sendmail_bs_two_messages_and_helo(suite):
    before = suite.drop_names()
    msg = b"MAIL FROM:<>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nSubject: %d\r\n\r\nx\r\n.\r\n"
    r = _sendmail_env(suite, ["-bs"], b"HELO c\r\n" + (msg % 1) + (msg % 2) + b"QUIT\r\n")
    assert r.returncode == 0, r
    assert _codes(r.stdout) == [220, 250] + [250, 250, 354, 250] * 2 + [221], r.stdout
    wait_for(lambda: len(suite.drop_names()) == len(before) + 2, 10, "two Drop files")
    senders = set(suite.read_drop(n).sender for n in suite.drop_names() if n not in before)
    assert senders == {""} or senders == {"<>"}, senders


def test_sendmail_bs_input_ends_in_data_keeps_nothing(suite):
    before = suite.drop_names()
    r = _sendmail_env(suite, ["-bs"], b"EHLO c\r\nMAIL FROM:<a@example.test>\r\n"
                      b"RCPT TO:<bob@example.test>\r\nDATA\r\nSubject: cut\r\n\r\nhalf")
    assert r.returncode == 76, r    # EX_PROTOCOL, see sendmail(8)
    assert _codes(r.stdout) == [220, 250, 250, 250, 354], r.stdout
    suite.barrier()
    assert len(suite.drop_names()) == len(before) + 1	# the barrier's
    assert suite.pickup_names() == []
    r = _sendmail_env(suite, ["-bs", "bob@example.test"], b"QUIT\r\n")
    assert r.returncode == 64, r


def test_sendmail_compat_options(suite):
    before = suite.drop_names()
    r = _sendmail(suite, ["-oi", "-odi", "-oem", "-v", "-U", "-n", "-Ohold=no", "-h", "5",
                          "bob@example.test"], "Subject: opts\n\nfirst\n.\nkept\n")
    assert r.returncode == 0, r
    m = _one_drop(suite, before)
    assert b"\r\n.\r\nkept\r\n" in m.raw, "-oi is -i"
    r = _sendmail(suite, ["-bi"], "")
    assert r.returncode == 0 and b"no aliases" in r.stderr, r
    r = _sendmail(suite, ["-bd"], "")
    assert r.returncode == 64, r
    r = _sendmail(suite, ["-q"], "")
    assert r.returncode == 64, r


# Remote mail goes to a loopback port nobody listens on: it stays queued.
@options(conf={"smart-host": "[127.0.0.1]:%d" % free_port()})
def test_sendmail_bp_and_mailq_list_the_queue(suite):
    r = _sendmail_env(suite, ["-bp"], b"")
    assert r.returncode == 0 and b"Mail queue is empty" in r.stdout, r
    r = _sendmail(suite, ["-f", "a@example.test", "far@remote.invalid"], "Subject: far\n\nx\n")
    assert r.returncode == 0, r
    wait_for(lambda: suite.queue_names(), 10, "the message in the queue")
    r = _sendmail_env(suite, ["-bp"], b"")
    assert r.returncode == 0 and b"<far@remote.invalid>" in r.stdout, r
    mailq = os.path.join(suite.dir, "mailq")
    os.symlink(os.path.join(suite.builddir, "smtpctl", "sendmail"), mailq)
    r = _sendmail_env(suite, [], b"", argv0=mailq)
    assert r.returncode == 0 and b"<far@remote.invalid>" in r.stdout, r


@options(only="root", why="needs root to make a setgid copy and run it as another user")
def test_setgid_sendmail_bs_as_another_user(suite):
    copy = os.path.join(suite.dir, "sendmail-setgid")
    shutil.copy(os.path.join(suite.builddir, "smtpctl", "sendmail"), copy)
    shutil.chown(copy, group="mailroot")
    os.chmod(copy, 0o2755)
    before = suite.drop_names()
    # Unprivileged: no -C, so this copy reads the system file; skip unless it is ours.
    r = subprocess.run(["runuser", "-u", "nobody", "--", copy, "-C", suite.conf_path, "-bs"],
                       input=b"QUIT\r\n", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    assert r.returncode == 64 and b"-C is not allowed" in r.stderr, r
    assert suite.drop_names() == before
