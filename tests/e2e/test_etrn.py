"""ETRN (RFC 1985) and the relay option of remote-domain (issue 4, N3/N4).

smtpd answers ETRN itself when the command is malformed (501), out of
sequence (503) or from a client that may not relay (459); otherwise it asks
queued (QUEUE_ETRN) and says 250 or 251 from queued's count, or 458 when
queued is gone or silent for a few seconds.

Clients connect from other loopback addresses: 127.0.0.2 may relay by
network, 127.0.0.3 may not (but may after AUTH).
"""
import os
import re
import signal
import time

from test_auth import USERS, plain, write_table
from mailroot_suite import RawSMTPFrom, append_config, options, wait_for

RELAY_CLIENT, OTHER_CLIENT = "127.0.0.2", "127.0.0.3"
CONFIG = [
    "relay allow %s" % RELAY_CLIENT,
    "remote-domain held.example.org hold",
    "remote-domain partner.example.org allow-relay",
    "remote-domain *.wild.example.org allow-relay tls no",
    "remote-domain strict.wild.example.org tls require",
]
SYNTAX = "501 5.5.4 Syntax: ETRN domain"


def start_with(suite, overrides=None):
    suite.write_config(overrides)
    append_config(suite, CONFIG)
    suite.start()


def start_with_auth(suite):
    table = os.path.join(suite.dir, "passwd")
    write_table(table, USERS)
    start_with(suite, {"listen": "on 127.0.0.1 port %d auth-plaintext" % suite.port,
                       "auth-table": '"%s"' % table})


def check_answer(node, code, text):
    """What queued may answer through smtpd: the exact text of each code."""
    want = {
        250: "250 2.0.0 Queuing for node %s started" % node,
        251: "251 2.0.0 No messages waiting for node %s" % node,
        458: "458 4.3.0 Unable to queue messages for node %s" % node,
    }
    assert code in want and text == want[code], "ETRN %s: %r" % (node, text)


@options(start=False)
def test_etrn_advertised(suite):
    start_with(suite)
    with RawSMTPFrom(suite.port, OTHER_CLIENT) as c:
        text = c.expect("EHLO client.example.net", 250)
        assert "250-ETRN" in text.split("\n"), text
        assert "ETRN" in c.expect("HELP", 214)
        c.expect("QUIT", 221)


@options(start=False)
def test_etrn_syntax_and_sequence(suite):
    start_with(suite)
    with RawSMTPFrom(suite.port, RELAY_CLIENT) as c:
        code, text = c.cmd("ETRN example.org")
        assert text == "503 5.5.1 Send HELO/EHLO first", text
        c.expect("EHLO client.example.net", 250)
        for arg in ("", " ", "bad..example.org", "-x.example.org", "a.example.org b",
                    "[127.0.0.1]", "@", "@@a.example.org", "#", "#bad queue",
                    "#q;rm", "a_b.example.org", "x" * 300):
            code, text = c.cmd(("ETRN " + arg).rstrip(" ") if arg != " " else "ETRN ")
            assert text == SYNTAX, "ETRN %r: %r" % (arg, text)
        # not inside a mail transaction (RFC 1985 leaves it out; 5321 4.1.4)
        c.expect("MAIL FROM:<a@example.net>", 250)
        code, text = c.cmd("ETRN example.org")
        assert text == "503 5.5.1 ETRN is not allowed during a mail transaction", text
        c.expect("RCPT TO:<bob@example.test>", 250)
        code, text = c.cmd("ETRN example.org")
        assert code == 503, text
        c.expect("RSET", 250)
        c.expect("NOOP", 250)
        c.expect("QUIT", 221)


@options(start=False)
def test_etrn_refused(suite):
    start_with_auth(suite)
    with RawSMTPFrom(suite.port, OTHER_CLIENT) as c:
        c.expect("EHLO client.example.net", 250)
        for node in ("held.example.org", "@held.example.org", "#outbound",
                     "Partner.Example.ORG"):
            code, text = c.cmd("ETRN " + node)
            assert text == "459 5.7.1 <%s>: not allowed to ETRN" % node, text
        # a failed AUTH does not help
        code, text = c.cmd("AUTH PLAIN " + plain(next(iter(USERS)), "wrong password"))
        assert code == 535, text
        code, text = c.cmd("ETRN held.example.org")
        assert code == 459, text
        c.expect("QUIT", 221)
    log = suite.log_text()
    assert "client=127.0.0.3 etrn=held.example.org status=refused rule=relay-default" \
        in log, log
    assert "etrn=partner.example.org status=refused" in log, log


@options(start=False, only="root", why="stops queued (a daemon user's process) with SIGSTOP")
def test_etrn_queued_silent(suite):
    """queued does not answer: 458 after smtpd's few seconds, and the session
    goes on."""
    start_with(suite)
    queued = suite.daemon_pids()["queued"]
    with RawSMTPFrom(suite.port, RELAY_CLIENT, timeout=30) as c:
        c.expect("EHLO client.example.net", 250)
        os.kill(queued, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            c.send("ETRN held.example.org\r\n")
            # meanwhile the session shows that it waits for queued
            wait_for(lambda: re.search(r"\b127\.0\.0\.2\s+etrn\b",
                                       suite.smtpctl("show", "sessions").stdout),
                     4, "the session in state etrn")
            code, text = c.reply()
            elapsed = time.monotonic() - t0
        finally:
            os.kill(queued, signal.SIGCONT)
        assert text == "458 4.3.0 Unable to queue messages for node held.example.org", text
        assert 4 <= elapsed <= 10, "458 after %.1fs" % elapsed
        c.expect("NOOP", 250)
        c.expect("QUIT", 221)
    wait_for(lambda: "etrn=held.example.org status=timeout" in suite.log_text(), 5,
             "the ETRN timeout in the log")


@options(start=False, only="root", why="stops queued (a daemon user's process) with SIGSTOP")
def test_etrn_client_gone_while_waiting(suite):
    """A client that leaves while its ETRN waits: the session goes, its timer
    with it; smtpd lives on and serves the next client."""
    start_with(suite)
    pids = suite.daemon_pids()
    os.kill(pids["queued"], signal.SIGSTOP)
    try:
        for _ in range(3):
            with RawSMTPFrom(suite.port, RELAY_CLIENT) as c:
                c.expect("EHLO client.example.net", 250)
                c.send("ETRN held.example.org\r\nQUIT\r\n")
        wait_for(lambda: suite.log_text().count(
            "client=127.0.0.2 status=disconnect") >= 3, 5, "the sessions to end")
        time.sleep(6)   # past the ETRN timeout of the sessions that went
        with RawSMTPFrom(suite.port, OTHER_CLIENT) as c:
            c.expect("EHLO client.example.net", 250)
            c.expect("QUIT", 221)
    finally:
        os.kill(pids["queued"], signal.SIGCONT)
    assert suite.daemon_pids()["smtpd"] == pids["smtpd"], "smtpd was restarted"
    assert "etrn=held.example.org status=timeout" not in suite.log_text()


@options(start=False)
def test_etrn_allowed(suite):
    """A relay client, or an authenticated one, reaches queued: 250/251, or
    458 from a queued that does not answer ETRN."""
    start_with_auth(suite)
    # a message held for held.example.org: ETRN finds it (250), unless
    # queued does not answer ETRN at all (458)
    with RawSMTPFrom(suite.port, RELAY_CLIENT, timeout=30) as c:
        c.expect("EHLO client.example.net", 250)
        c.expect("MAIL FROM:<a@example.net>", 250)
        c.expect("RCPT TO:<x@held.example.org>", 250)
        c.expect("DATA", 354)
        c.expect("Subject: held\r\n\r\nheld for ETRN\r\n.", 250)
        code, text = c.cmd("ETRN held.example.org")
        check_answer("held.example.org", code, text)
        assert code != 251, "a message waits for held.example.org: %r" % text
        c.expect("QUIT", 221)
    with RawSMTPFrom(suite.port, OTHER_CLIENT, timeout=30) as c:
        c.expect("EHLO client.example.net", 250)
        user, (_, password) = next(iter(USERS.items()))
        c.expect("AUTH PLAIN " + plain(user, password), 235)
        code, text = c.cmd("ETRN @wild.example.org")
        check_answer("@wild.example.org", code, text)
        c.expect("QUIT", 221)
    with RawSMTPFrom(suite.port, RELAY_CLIENT, timeout=30) as c:
        c.expect("EHLO client.example.net", 250)
        code, text = c.cmd("ETRN nothing-here.example.org")
        check_answer("nothing-here.example.org", code, text)
        assert code != 250, text
        c.expect("QUIT", 221)


@options(start=False)
def test_remote_domain_allow_relay(suite):
    """remote-domain ... allow-relay: any client may send to that domain
    (exact pattern, or strict subdomains of *.domain), like relay-domain."""
    start_with(suite)
    cases = {
        "x@partner.example.org": 250,
        "x@PARTNER.example.org": 250,
        "x@sub.partner.example.org": 550,
        "x@a.wild.example.org": 250,
        "x@b.c.wild.example.org": 250,
        "x@wild.example.org": 550,
        # an exact block without allow-relay wins over the relaying *.wild
        "x@strict.wild.example.org": 550,
        "x@held.example.org": 550,
        "x@other.example.org": 550,
    }
    with RawSMTPFrom(suite.port, OTHER_CLIENT) as c:
        c.expect("EHLO client.example.net", 250)
        c.expect("MAIL FROM:<a@example.net>", 250)
        bad = []
        for rcpt, want in cases.items():
            code, text = c.cmd("RCPT TO:<%s>" % rcpt)
            if code != want:
                bad.append("<%s>: want %d, got %r" % (rcpt, want, text))
        assert not bad, "\n".join(bad)
        c.expect("QUIT", 221)
    log = suite.log_text()
    assert "client=127.0.0.3 status=relay remote-domain=partner.example.org" in log, log
