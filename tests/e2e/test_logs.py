"""Logging (L4): the syslog event lines of a message's life, and the W3C
extended log file of a listener (listen ... w3c-log DIRECTORY).

Syslog lines are read from the instance's log-file (same text as syslog):
a local delivery, a relayed message (an smtp-sink behind a test DNS) and a
bounced one (a sink that rejects RCPT with 550) must each carry the queue
id first and the key=value fields smtpd(8) LOGGING lists.  The W3C file
must appear with its four header lines and hold one line per SMTP command
of a session with the reply code, and a reload (which reopens the file)
must lose no line.
"""
import glob
import os
import re
import time

from mailroot_suite import DOMAIN, RawSMTP, options, wait_for
from peers import MXDNS, SmtpSink
from test_outbound import field, send, sink_world, start_outbound, wait_outcome, \
    wait_queue_empty

FIELDS = ("date time c-ip cs-username s-sitename s-computername s-ip s-port "
          "cs-method cs-uri-stem cs-uri-query sc-status sc-win32-status sc-bytes "
          "cs-bytes time-taken cs-version cs-host cs(User-Agent) cs(Cookie) "
          "cs(Referer)").split()


def lines_with(suite, needle):
    return [l for l in suite.log_text().splitlines() if needle in l]


def wait_line(suite, pattern, what, timeout=10):
    rx = re.compile(pattern)

    def found():
        for l in suite.log_text().splitlines():
            if rx.search(l):
                return l
        return None
    return wait_for(found, timeout, what, 0.1)


def check_received(suite, qid):
    """smtpd's received line and queued's accepted line of a message."""
    rl = wait_line(suite, r"\b%s status=received " % qid, "smtpd's received line")
    assert field(rl, "client") == "127.0.0.1", rl
    assert re.fullmatch(r"[0-9a-f]{8}", field(rl, "session") or ""), rl
    assert field(rl, "from") and field(rl, "nrcpt") == "1", rl
    al = wait_line(suite, r"\b%s status=accepted " % qid, "queued's accepted line")
    assert field(al, "from") == field(rl, "from"), (al, rl)
    assert int(field(al, "size")) > 0 and field(al, "nrcpt") == "1", al
    assert field(al, "via") == "smtpd", al


def test_logs_local_delivery_lines(suite):
    qid, token, msg = send(suite, ["bob@" + DOMAIN])
    check_received(suite, qid)
    dl = wait_line(suite, r"\b%s status=delivered to=<bob@%s>" % (qid, re.escape(DOMAIN)),
                   "the local delivery line")
    assert field(dl, "relay") == "local", dl
    assert field(dl, "dsn") == "2.0.0", dl
    assert re.fullmatch(r"\d+s", field(dl, "delay") or ""), dl
    # The connection's own lines: connect (listener) and disconnect (counts, duration).
    c = wait_line(suite, r"session=\S+ client=127\.0\.0\.1 status=connect ", "connect")
    assert field(c, "listener") == "0", c
    d = wait_line(suite, r"status=disconnect messages=1 ", "disconnect")
    assert int(field(d, "commands")) >= 5, d     # EHLO MAIL RCPT DATA QUIT
    assert int(field(d, "bytes")) >= len(msg), d
    assert re.fullmatch(r"\d+s", field(d, "duration") or ""), d


@options(start=False, timeout=60)
def test_logs_relayed_and_bounced_lines(suite):
    (ok_a, hard_a), port = sink_world(suite, 2)
    dns = MXDNS(suite, mx={"ok.test": [(10, "mx.ok.test")],
                           "hard.test": [(10, "mx.hard.test")]},
                hosts={"mx.ok.test": [ok_a], "mx.hard.test": [hard_a]})
    with dns, SmtpSink(suite, ok_a, port) as ok, \
            SmtpSink(suite, hard_a, port, hard=["rcpt"]):
        start_outbound(suite, port, dns)
        q1, token, msg = send(suite, ["bob@ok.test"])
        ok.wait_messages(1, needle=token.encode())
        check_received(suite, q1)
        (t, sl), = wait_outcome(suite, q1, "sent", "bob@ok.test")
        assert re.search(r"relay=\S*\[%s\]" % re.escape(ok_a), sl), sl
        assert (field(sl, "dsn") or "").startswith("2."), sl
        assert re.fullmatch(r"\d+s", field(sl, "delay") or ""), sl
        assert field(sl, "reply") == '"250 2.0.0 Ok"', sl

        q2, token, msg = send(suite, ["nobody@hard.test"])
        (t, bl), = wait_outcome(suite, q2, "bounced", "nobody@hard.test")
        assert field(bl, "dsn") == "5.1.1", bl
        assert re.search(r"relay=\S*\[%s\]" % re.escape(hard_a), bl), bl
        assert re.fullmatch(r"\d+s", field(bl, "delay") or ""), bl
        assert (field(bl, "reply") or "").startswith('"550 5.1.1 No such'), \
            "the remote reply, its code said once: %s" % bl
        # The bounce itself: a report line naming the new message.
        wait_line(suite, r"\b%s status=ndr report=[0-9a-f]{20} " % q2, "the NDR line")
        wait_queue_empty(suite)


# ---- W3C extended log files -------------------------------------------------------

def w3c_conf(suite):
    d = os.path.join(suite.dir, "w3c")
    return d, {"listen": "on 127.0.0.1 port %d w3c-log \"%s\"" % (suite.port, d)}


def w3c_file(d):
    names = glob.glob(os.path.join(d, "ex*.log"))
    assert len(names) == 1, "W3C log files: %r" % names
    name = os.path.basename(names[0])
    today = time.strftime("ex%y%m%d.log", time.gmtime())
    assert name == today, "file %s, not today's (UTC) %s" % (name, today)
    return names[0]


def w3c_records(path):
    with open(path, "rb") as f:
        text = f.read().decode("ascii")
    assert text.endswith("\r\n"), "a partial line at the end: %r" % text[-80:]
    lines = text.split("\r\n")[:-1]
    return lines, [l.split(" ") for l in lines if not l.startswith("#")]


def session(suite, rcpt):
    """EHLO MAIL RCPT DATA QUIT by smtplib: the queue id."""
    return suite.send("alice@" + DOMAIN, [rcpt], b"Subject: w3c\r\n\r\nbody\r\n")


def wait_records(path, n):
    def enough():
        recs = w3c_records(path)[1]
        return recs if len(recs) >= n else None
    return wait_for(enough, 10, "%d W3C records in %s" % (n, path), 0.1)


@options(start=False)
def test_logs_w3c_file(suite):
    d, conf = w3c_conf(suite)
    suite.write_config(conf)
    suite.start()
    qid = session(suite, "bob@" + DOMAIN)
    path = w3c_file(d)
    st = os.stat(path)
    assert st.st_mode & 0o777 == 0o640, "mode %o" % (st.st_mode & 0o777)
    if os.geteuid() == 0:
        assert st.st_uid == 0, "owner %d" % st.st_uid
    recs = wait_records(path, 5)
    lines, _ = w3c_records(path)
    assert re.fullmatch(r"#Software: Mailroot \S+", lines[0]), lines[0]
    assert lines[1] == "#Version: 1.0", lines[1]
    assert re.fullmatch(r"#Date: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", lines[2]), lines[2]
    assert lines[3] == "#Fields: " + " ".join(FIELDS), lines[3]
    for r in recs:
        assert len(r) == len(FIELDS), "a record of %d fields: %r" % (len(r), r)
    got = [(r[FIELDS.index("cs-method")], r[FIELDS.index("sc-status")]) for r in recs]
    assert got == [("EHLO", "250"), ("MAIL", "250"), ("RCPT", "250"), ("DATA", "250"),
                   ("QUIT", "221")], got
    rec = dict(zip(FIELDS, recs[1]))
    assert rec["c-ip"] == "127.0.0.1" and rec["s-ip"] == "127.0.0.1", rec
    assert rec["s-port"] == str(suite.port) and rec["cs-version"] == "SMTP", rec
    assert rec["s-sitename"] == "SMTPSVC1", rec
    assert rec["cs-uri-query"].upper() == "FROM:<ALICE@%s>" % DOMAIN.upper(), rec
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", rec["date"]), rec
    data = dict(zip(FIELDS, recs[3]))
    assert data["cs-uri-query"] == qid, "DATA's record names the queue id: %r" % data
    assert int(data["cs-bytes"]) > len("DATA\r\n") + 20, data
    assert all(int(dict(zip(FIELDS, r))["sc-bytes"]) > 0 for r in recs), recs


@options(start=False)
def test_logs_w3c_reload_loses_no_line(suite):
    d, conf = w3c_conf(suite)
    suite.write_config(conf)
    suite.start()
    session(suite, "bob@" + DOMAIN)
    path = w3c_file(d)
    wait_records(path, 5)
    r = suite.smtpctl("reload")
    assert r.returncode == 0, "reload: %r" % (r,)
    session(suite, "carol@" + DOMAIN)
    recs = wait_records(path, 10)
    time.sleep(0.5)
    lines, recs = w3c_records(path)
    assert len(recs) == 10, "records after send, reload, send: %r" % recs
    methods = [r[FIELDS.index("cs-method")] for r in recs]
    assert methods == ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"] * 2, methods
    # The reload reopened the same day's file: no second header.
    assert sum(1 for l in lines if l.startswith("#Fields:")) == 1, lines[:8]
    assert w3c_file(d) == path


@options(start=False)
def test_logs_w3c_bad_commands_are_escaped(suite):
    d, conf = w3c_conf(suite)
    suite.write_config(conf)
    suite.start()
    c = RawSMTP(suite.port)
    c.cmd("EHLO client.example")
    c.cmd("XYZZY a b\tc%")
    c.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==")
    c.cmd("QUIT")
    path = w3c_file(d)
    recs = wait_records(path, 4)
    text = open(path, "rb").read().decode("ascii")
    assert "AGFsaWNl" not in text, "AUTH credentials in the W3C log"
    x = dict(zip(FIELDS, recs[1]))
    assert x["cs-method"] == "XYZZY" and x["sc-status"] == "500", x
    assert x["cs-uri-query"] == "a+b%09c%25", x
    a = dict(zip(FIELDS, recs[2]))
    assert a["cs-method"] == "AUTH" and a["cs-uri-query"] == "PLAIN", a
