"""
test_smtpctl.py - the operator's commands beyond start/stop (FEATURES O1,
O2, O7): kill session (CTL_KILL_SESSION -> DAEMON_KILL_SESSION ->
SUPERVISOR_KILLED), check (mailrootd -n), log verbose|brief
(CTL_LOG_LEVEL -> DAEMON_LOG_LEVEL to every daemon), and --json.
"""
import json
import os
import re
import smtplib

from mailroot_suite import DOMAIN, options, wait_for


def session_ids(suite):
    r = suite.smtpctl("show", "sessions", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_show_sessions_json_and_columns(suite):
    c = suite.raw()
    try:
        c.expect("EHLO client.example.net", 250)
        doc = session_ids(suite)
        assert doc["total"] == 1 and len(doc["sessions"]) == 1, doc
        s = doc["sessions"][0]
        assert re.match(r"^[0-9a-f]{8}$", s["id"]), s
        assert s["client"] == "127.0.0.1" and s["helo"] == "client.example.net", s
        assert s["state"] == "helo" and s["tls"] is False and s["user"] == "", s
        assert s["bytes"] > 10 and s["since"] > 0, s
        # The text table: columns line up under the header.
        r = suite.smtpctl("show", "sessions")
        lines = r.stdout.splitlines()
        head, row = lines[0], lines[1]
        for col in ("CLIENT", "STATE", "SINCE", "TLS", "USER", "HELO"):
            i = head.index(col)
            assert row[i - 1] == " " and row[i] != " ", (col, head, row)
        # BYTES is right-aligned: its last digit under the S.
        assert row[head.index("BYTES") + 4].isdigit(), (head, row)
    finally:
        c.close()


def test_kill_one_session(suite):
    victim = suite.raw()
    other = suite.raw()
    try:
        victim.expect("EHLO victim.example.net", 250)
        victim.expect("MAIL FROM:<a@example.net>", 250)
        other.expect("EHLO other.example.net", 250)
        sessions = session_ids(suite)["sessions"]
        vid = [s["id"] for s in sessions if s["helo"] == "victim.example.net"][0]
        r = suite.smtpctl("kill", "session", vid)
        assert r.returncode == 0 and "1 session ended" in r.stdout, r
        code, text = victim.reply()
        assert code == 421 and "4.3.2" in text, text
        assert victim.closed_by_peer(), "the killed session stays open"
        # The other one goes on.
        other.expect("NOOP", 250)
        assert [s["helo"] for s in session_ids(suite)["sessions"]] == ["other.example.net"]
        # A session that is not there: an error, exit 1.
        r = suite.smtpctl("kill", "session", vid)
        assert r.returncode == 1 and "no session" in r.stderr, r
        r = suite.smtpctl("kill", "session", "zz")
        assert r.returncode == 2, r
        assert re.search(r"session=%s .*status=killed" % vid, suite.log_text()), \
            suite.log_tail()
    finally:
        victim.close()
        other.close()


def test_kill_all_sessions_smtplib_sees_421(suite):
    clients = [suite.smtp() for _ in range(3)]
    for s in clients:
        assert s.ehlo()[0] == 250
    r = suite.smtpctl("kill", "session", "all")
    assert r.returncode == 0 and "3 sessions ended" in r.stdout, r
    for s in clients:
        try:
            code, text = s.noop()
        except smtplib.SMTPServerDisconnected:
            continue	# smtplib read the 421 and the EOF first
        assert code == 421 and b"4.3.2" in text, (code, text)
    wait_for(lambda: session_ids(suite)["total"] == 0, 5, "no sessions left")
    r = suite.smtpctl("kill", "session", "all")
    assert r.returncode == 0 and "0 sessions ended" in r.stdout, r
    # The listener still serves.
    suite.send("a@example.net", ["x@%s" % DOMAIN], b"Subject: after\r\n\r\nx\r\n")


def test_kill_during_data_keeps_no_half_message(suite):
    c = suite.raw()
    try:
        c.expect("EHLO d.example.net", 250)
        c.expect("MAIL FROM:<a@example.net>", 250)
        c.expect("RCPT TO:<x@%s>" % DOMAIN, 250)
        c.expect("DATA", 354)
        c.send("Subject: half\r\n\r\nnot ended\r\n")
        r = suite.smtpctl("kill", "session", "all")
        assert r.returncode == 0, r
        code, _ = c.reply()
        assert code == 421
        assert c.closed_by_peer()
    finally:
        c.close()
    suite.barrier()
    assert not suite.find_drop_containing(b"not ended")
    suite.wait_queue_empty()


@options(start=False)
def test_check_good_and_bad_files(suite):
    r = suite.smtpctl("check")
    assert r.returncode == 0 and "configuration OK" in r.stdout, r
    r = suite.smtpctl("check", "--json")
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["ok"] is True, r
    bad = os.path.realpath(os.path.join(suite.dir, "bad.conf"))
    with open(bad, "w") as f:
        f.write("hostname mx.example.test\n")
        f.write('mailroot "%s"\n' % suite.root)
        f.write("max-message-size lots\n")
        f.write("no-such-keyword 1\n")
    r = suite.run([suite.binary("smtpctl"), "-f", bad, "check"])
    assert r.returncode == 1, r
    assert re.search(r"^%s:3: " % re.escape(bad), r.stderr, re.M), r.stderr
    assert re.search(r"^%s:4: " % re.escape(bad), r.stderr, re.M), r.stderr
    r = suite.run([suite.binary("smtpctl"), "-f", bad, "--json", "check"])
    doc = json.loads(r.stdout)
    assert r.returncode == 1 and doc["ok"] is False and doc["file"] == bad, r
    assert any(m.startswith("%s:3: " % bad) for m in doc["messages"]), doc
    r = suite.run([suite.binary("smtpctl"), "-f", bad + ".missing", "check"])
    assert r.returncode == 1 and r.stderr, r
    assert not suite.instance_pids(), "check started something"


@options(conf={"log-verbose": "no"})
def test_log_verbose_then_brief(suite):
    # A debug line each smtpctl run leaves in mailrootd's log, while verbose.
    def debug_lines():
        return suite.log_text().count("ipc control: peer closed")

    def after_status():
        assert suite.smtpctl("status").returncode == 0
        suite.barrier()
        return debug_lines()

    assert after_status() == 0, "a debug line while brief"
    r = suite.smtpctl("log", "verbose")
    assert r.returncode == 0 and "log verbose" in r.stdout, r
    wait_for(lambda: suite.log_text().count("log level verbose") >= 5, 5,
             "every daemon to say it is verbose")
    n = debug_lines()
    assert after_status() > n, "no debug line while verbose"

    # A reload keeps the level smtpctl set, in every daemon.
    assert suite.smtpctl("reload").returncode == 0
    n = debug_lines()
    assert after_status() > n, "no debug line after a reload"

    r = suite.smtpctl("log", "brief")
    assert r.returncode == 0, r
    wait_for(lambda: suite.log_text().count("log level brief") >= 5, 5,
             "every daemon to say it is brief")
    n = debug_lines()
    assert after_status() == n, "a debug line after brief"
    assert suite.smtpctl("log", "loud").returncode == 2

    # A daemon restarted meanwhile starts at the level smtpctl set.
    assert suite.smtpctl("log", "verbose").returncode == 0
    pid = suite.daemon_pids()["queued"]
    os.kill(pid, 9)
    suite.wait_restarted("queued", pid)
    wait_for(lambda: re.search(r"queued\[(?!%d\])\d+\]: log level verbose" % pid,
                               suite.log_text()), 5, "the new queued to be verbose")


def test_status_json(suite):
    r = suite.smtpctl("status", "--json")
    assert r.returncode == 0, r
    doc = json.loads(r.stdout)
    assert doc["state"] == "running", doc
    names = [d["name"] for d in doc["daemons"]]
    assert names[0] == "mailrootd" and "smtpd" in names and "queued" in names, doc
    assert all(isinstance(d["pid"], int) for d in doc["daemons"]), doc
    suite.stop()
    r = suite.smtpctl("--json", "status")
    assert r.returncode == 3 and json.loads(r.stdout) == {"state": "stopped"}, r
