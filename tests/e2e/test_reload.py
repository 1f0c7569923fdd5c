"""Reload (smtpctl reload and SIGHUP) and refusing to start without the users."""
import os
import signal
import smtplib
import time

from mailroot_suite import options, wait_for, ALIAS

MSG = b"Subject: reload\r\n\r\nafter reload\r\n"


def _rcpt_code(suite, rcpt):
    s = suite.smtp()
    try:
        s.ehlo()
        s.mail("a@example.org")
        code, _ = s.rcpt(rcpt)
        return code
    finally:
        s.quit()


def test_reload_adds_an_alias_domain(suite):
    assert _rcpt_code(suite, "x@new.example.test") == 550, "new domain local before reload"
    suite.write_config({"alias-domain": ALIAS + " new.example.test"})
    r = suite.smtpctl("reload")
    assert r.returncode == 0 and "reloaded" in r.stdout, "reload: %r" % (r,)
    # Each daemon applies it when the message reaches it: poll briefly.
    wait_for(lambda: _rcpt_code(suite, "x@new.example.test") == 250, 5,
             "the new alias domain accepted")
    qid = suite.send("a@example.org", ["x@new.example.test"], MSG)
    m = suite.wait_drop(qid)
    assert m.receivers == ["x@new.example.test"], m.receivers


def test_sighup_reloads(suite):
    suite.write_config({"alias-domain": ALIAS + " hup.example.test"})
    os.kill(suite.supervisor_pid(), signal.SIGHUP)
    wait_for(lambda: _rcpt_code(suite, "x@hup.example.test") == 250, 5,
             "the alias domain added by SIGHUP accepted")
    assert "configuration reloaded" in suite.log_text()


def test_bad_reload_keeps_the_running_configuration(suite):
    with open(suite.conf_path, "a") as f:
        f.write("listen on 127.0.0.1 port 0\nbogus-keyword 1\n")
    r = suite.smtpctl("reload")
    assert r.returncode == 1, "a bad reload must fail: %r" % (r,)
    assert "mailroot.conf:" in r.stderr and "bogus-keyword" in r.stderr, \
        "the error must name the file, line and problem: %r" % r.stderr
    st = suite.status()
    assert st.rc == 0 and "running" in st.out, st
    qid = suite.send("a@example.org", ["bob@example.test"], MSG)
    suite.wait_drop(qid)


@options(start=False, only="root", why="needs root: only root runs the daemons as system users")
def test_start_refused_without_the_system_users(suite):
    suite.write_config({"smtpd-user": "_mr_no_such_user"})
    r = suite.smtpctl("start")
    assert r.returncode == 1, "start must fail: %r" % (r,)
    assert "_mr_no_such_user" in r.stderr and "install-users" in r.stderr, \
        "the error must name the missing user and how to create it: %r" % r.stderr
    assert suite.instance_pids() == [], "processes left: %r" % suite.instance_pids()
