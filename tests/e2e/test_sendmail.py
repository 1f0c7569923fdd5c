"""The sendmail-compatible command: it writes into Pickup/, pickupd delivers."""
import os
import shutil
import subprocess

from mailroot_suite import options, wait_for


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
