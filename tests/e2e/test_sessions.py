"""
test_sessions.py - the sessions table (FEATURES O2): smtpctl show sessions
asks mailrootd, which asks smtpd (DAEMON_SESSIONS / SUPERVISOR_SESSIONS)
and relays the answer (CLIENT_SESSIONS).
"""
import os
import re

from mailroot_suite import DOMAIN, wait_for


def parse_sessions(out):
    rows = {}
    lines = out.splitlines()
    assert lines and lines[0].startswith("ID"), "no header: %r" % out
    for line in lines[1:-1]:
        f = line.split()
        rows[f[0]] = {"client": f[1], "state": f[2], "since": f[3], "tls": f[4],
                      "user": f[5], "bytes": int(f[6]), "helo": f[7]}
    m = re.match(r"^(\d+) sessions?$", lines[-1])
    assert m, "no count line: %r" % out
    return rows, int(m.group(1))


def test_show_sessions(suite):
    r = suite.smtpctl("show", "sessions")
    assert r.returncode == 0, r.stderr
    rows, total = parse_sessions(r.stdout)
    assert total == 0 and rows == {}, r.stdout

    idle = suite.raw()
    helo = suite.raw()
    mail = suite.raw()
    try:
        helo.expect("EHLO client.example.net", 250)
        mail.expect("HELO other.example.net", 250)
        mail.expect("MAIL FROM:<a@example.net>", 250)
        mail.expect("RCPT TO:<x@%s>" % DOMAIN, 250)
        r = suite.smtpctl("show", "sessions")
        assert r.returncode == 0, r.stderr
        rows, total = parse_sessions(r.stdout)
        assert total == 3, r.stdout
        states = sorted((v["state"], v["helo"]) for v in rows.values())
        assert states == [("connected", "-"), ("helo", "client.example.net"),
                          ("rcpt", "other.example.net")], r.stdout
        for v in rows.values():
            assert v["client"] == "127.0.0.1" and v["tls"] == "no" and v["user"] == "-"
        rcpt = [v for v in rows.values() if v["state"] == "rcpt"][0]
        assert rcpt["bytes"] > 40, rcpt
    finally:
        for c in (idle, helo, mail):
            c.close()
    # Closed sessions leave the table.
    def empty():
        r = suite.smtpctl("show", "sessions")
        return r.returncode == 0 and parse_sessions(r.stdout)[1] == 0
    wait_for(empty, 5, "the table to be empty again")


def test_show_sessions_smtpd_down(suite):
    pid = suite.daemon_pids()["smtpd"]
    os.kill(pid, 9)
    r = suite.smtpctl("show", "sessions", timeout=20)
    # Either the new smtpd answers, or a clear error: never a hang.
    assert r.returncode == 0 or "smtpd" in r.stderr, (r.returncode, r.stdout, r.stderr)
