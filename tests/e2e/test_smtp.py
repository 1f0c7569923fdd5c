"""SMTP protocol: relay refusal, sequencing, limits, line length, smuggling."""
import re

from mailroot_suite import ALIAS, DOMAIN, options


def queued_id(text):
    m = re.search(r"queued as ([0-9a-f]{20})", text)
    assert m, "no queue id in %r" % text
    return m.group(1)


def test_relay_denied_nothing_queued(suite):
    relays = [
        "victim@elsewhere.example.org",
        "x@" + DOMAIN + ".evil.example",         # local domain as a prefix
        "x@sub." + DOMAIN,                       # a subdomain is not local
        "x%" + DOMAIN + "@evil.example",         # percent hack
        "\"x@" + DOMAIN + "\"@evil.example",     # quoted local part
        "@" + DOMAIN + ":x@evil.example",        # source route via a local domain
    ]
    with suite.raw() as c:
        c.expect("EHLO client.example.net", 250)
        c.expect("MAIL FROM:<spammer@evil.example>", 250)
        for r in relays:
            code, text = c.cmd("RCPT TO:<%s>" % r)
            assert 500 <= code <= 599, "RCPT TO:<%s> must be refused with 5xx: %r" % (r, text)
        code, text = c.cmd("RCPT TO:<victim@elsewhere.example.org>")
        assert code == 550 and "5.7.1" in text, "relay attempt: expected 550 5.7.1, got %r" % text
        code, text = c.cmd("DATA")
        assert code == 503, "DATA without an accepted recipient: %r" % text
        c.expect("RSET", 250)
        c.expect("QUIT", 221)
    assert "status=refused reason=relay" in suite.log_text(), "relay refusal not logged"
    # A mixed transaction: only the local recipient is delivered.
    s = suite.smtp()
    refused = s.sendmail("a@sender.example.net", ["away@elsewhere.example.org", "home@" + DOMAIN],
                         b"Subject: mixed\r\n\r\nmixed\r\n")
    s.quit()
    assert list(refused) == ["away@elsewhere.example.org"] and \
        refused["away@elsewhere.example.org"][0] == 550, "refused: %r" % refused
    barrier = suite.barrier()
    names = suite.drop_names()
    assert len(names) == 2, "Drop/ should hold the mixed message and the barrier: %r" % names
    mixed = [suite.read_drop(n) for n in names if n != barrier + ".eml"][0]
    assert mixed.receivers == ["home@" + DOMAIN], "x-receiver %r" % mixed.receivers
    suite.wait_queue_empty()


def test_sequence_errors_and_unknown_commands(suite):
    with suite.raw() as c:
        assert c.banner[0] == 220, "banner %r" % (c.banner,)
        code, text = c.cmd("MAIL FROM:<a@sender.example.net>")
        assert code == 503, "MAIL before EHLO: %r" % text
        c.expect("EHLO client.example.net", 250)
        code, text = c.cmd("RCPT TO:<x@%s>" % DOMAIN)
        assert code == 503, "RCPT before MAIL: %r" % text
        code, text = c.cmd("DATA")
        assert code == 503, "DATA before MAIL: %r" % text
        c.expect("MAIL FROM:<a@sender.example.net>", 250)
        code, text = c.cmd("MAIL FROM:<b@sender.example.net>")
        assert code == 503, "a second MAIL in one transaction: %r" % text
        code, text = c.cmd("DATA")
        assert code == 503, "DATA before RCPT: %r" % text
        code, text = c.cmd("FROBNICATE now")
        assert code == 500, "unknown command: %r" % text
        code, text = c.cmd("")
        assert 500 <= code <= 501, "empty line: %r" % text
        c.expect("NOOP", 250)
        code, text = c.cmd("VRFY someone")
        assert code == 252, "VRFY: %r" % text
        code, text = c.cmd("HELP")
        assert code == 214, "HELP: %r" % text
        # RSET ends the transaction: RCPT is out of sequence again.
        c.expect("RSET", 250)
        code, text = c.cmd("RCPT TO:<x@%s>" % DOMAIN)
        assert code == 503, "RCPT after RSET: %r" % text
        c.expect("QUIT", 221)
        assert c.closed_by_peer(5), "connection not closed after QUIT"


def test_long_command_line_then_session_continues(suite):
    with suite.raw() as c:
        c.expect("EHLO client.example.net", 250)
        long_line = "NOOP " + "x" * 595         # 600 octets + CRLF
        assert len(long_line) == 600
        # The long line and a NOOP in one write: exactly one reply each.
        c.send(long_line + "\r\nNOOP\r\n")
        code, text = c.reply()
        assert code == 500 and "5.5.2" in text, "600-octet line: %r" % text
        code, text = c.reply()
        assert code == 250, "the NOOP after the long line: %r" % text
        # A very long one (beyond any buffer) and a MAIL address too long.
        c.send("MAIL FROM:<" + "a" * 70000 + "@sender.example.net>\r\n")
        code, text = c.reply()
        assert code == 500 and "5.5.2" in text, "70000-octet line: %r" % text
        c.expect("MAIL FROM:<ok@sender.example.net>", 250, "MAIL after long lines")
        c.expect("RCPT TO:<after-long@%s>" % DOMAIN, 250)
        c.expect("DATA", 354)
        c.send(b"Subject: after long lines\r\n\r\nstill here\r\n.\r\n")
        code, text = c.reply()
        assert code == 250, "message after long lines: %r" % text
        qid = queued_id(text)
        c.expect("QUIT", 221)
    assert suite.wait_drop(qid).content == b"Subject: after long lines\r\n\r\nstill here\r\n"


@options(conf={"max-message-size": "10K", "max-recipients": "5"})
def test_size_and_recipient_limits(suite):
    with suite.raw() as c:
        code, text = c.cmd("EHLO client.example.net")
        assert code == 250 and "SIZE 10240" in text, "EHLO should announce SIZE 10240: %r" % text
        code, text = c.cmd("MAIL FROM:<big@sender.example.net> SIZE=20000")
        assert code == 552, "MAIL with SIZE over the limit: %r" % text
        c.expect("MAIL FROM:<big@sender.example.net> SIZE=5000", 250, "SIZE within the limit")
        c.expect("RCPT TO:<big@%s>" % DOMAIN, 250)
        c.expect("DATA", 354)
        body = b"Subject: too big\r\n\r\n" + (b"z" * 98 + b"\r\n") * 200   # ~20 KB
        c.send(body + b".\r\n")
        code, text = c.reply()
        assert code == 552, "a 20 KB message with max-message-size 10K: %r" % text
        # The session goes on; a message just under the limit is accepted.
        c.expect("MAIL FROM:<ok@sender.example.net>", 250, "MAIL after a 552")
        c.expect("RCPT TO:<ok@%s>" % DOMAIN, 250)
        c.expect("DATA", 354)
        small = b"Subject: fits\r\n\r\n" + (b"s" * 98 + b"\r\n") * 100        # ~10 000 octets
        assert len(small) < 10240
        c.send(small + b".\r\n")
        code, text = c.reply()
        assert code == 250, "a message under the limit: %r" % text
        ok_id = queued_id(text)
        # A text line over 998 octets (RFC 5322 2.1.1) is refused whole.
        c.expect("MAIL FROM:<long@sender.example.net>", 250)
        c.expect("RCPT TO:<long@%s>" % DOMAIN, 250)
        c.expect("DATA", 354)
        c.send(b"Subject: long line\r\n\r\n" + b"L" * 1200 + b"\r\n.\r\n")
        code, text = c.reply()
        assert code == 550, "a 1200-octet text line: %r" % text
        # Recipients: 5 accepted, the 6th gets 452, the message goes to 5.
        c.expect("MAIL FROM:<many@sender.example.net>", 250)
        rcpts = ["r%d@%s" % (i, DOMAIN if i % 2 else ALIAS) for i in range(6)]
        for r in rcpts[:5]:
            c.expect("RCPT TO:<%s>" % r, 250)
        code, text = c.cmd("RCPT TO:<%s>" % rcpts[5])
        assert code == 452, "the 6th recipient with max-recipients 5: %r" % text
        c.expect("DATA", 354)
        c.send(b"Subject: five\r\n\r\nfive\r\n.\r\n")
        code, text = c.reply()
        assert code == 250, "message to 5 recipients: %r" % text
        five_id = queued_id(text)
        c.expect("QUIT", 221)
    assert suite.wait_drop(ok_id).content == small
    assert suite.wait_drop(five_id).receivers == rcpts[:5]
    suite.barrier()
    assert len(suite.drop_names()) == 3, "a refused message reached Drop/: %r" % suite.drop_names()
    suite.wait_queue_empty()


SMUGGLE_ENDINGS = [b"\n.\r\n", b"\r.\r\n", b"\n.\n", b"\r\n.\n", b"\r\n.\r", b"\r\n.\r\r\n",
                   b"\r\n\x00.\r\n"]


def test_smtp_smuggling_gives_one_message(suite):
    victim = "victim@" + DOMAIN
    for ending in SMUGGLE_ENDINGS:
        smuggled = (b"MAIL FROM:<admin@" + DOMAIN.encode() + b">\r\n"
                    b"RCPT TO:<" + victim.encode() + b">\r\n"
                    b"DATA\r\n"
                    b"Subject: smuggled\r\n\r\nsmuggled " + ending.replace(b"\r", b"CR")
                    .replace(b"\n", b"LF") + b"\r\n")
        with suite.raw() as c:
            c.expect("EHLO client.example.net", 250)
            c.expect("MAIL FROM:<outer@sender.example.net>", 250)
            c.expect("RCPT TO:<outer@%s>" % DOMAIN, 250)
            c.expect("DATA", 354)
            c.send(b"Subject: outer\r\n\r\nouter body" + ending + smuggled + b".\r\n")
            code, text = c.reply()
            assert code == 250, "%r: end of data: %r" % (ending, text)
            qid = queued_id(text)
            # Every reply up to QUIT's: nothing for the smuggled commands.
            c.send("QUIT\r\n")
            code, text = c.reply()
            assert code == 221, "%r: after the real end of data the next reply must be " \
                "QUIT's 221 (smuggled commands were answered?): %r" % (ending, text)
        m = suite.wait_drop(qid)
        assert m.receivers == ["outer@" + DOMAIN], "%r: x-receiver %r" % (ending, m.receivers)
        assert b"MAIL FROM:<admin@" in m.content and b"RCPT TO:<" + victim.encode() in m.content, \
            "%r: the smuggled text should be part of the one message: %r" % (ending, m.content)
    suite.barrier()
    n = len(suite.drop_names())
    assert n == len(SMUGGLE_ENDINGS) + 1, \
        "expected exactly one message per attempt (+ barrier), Drop/ has %d" % n
    for name in suite.drop_names():
        assert suite.read_drop(name).receivers != [victim], "a smuggled message was delivered"


def test_pipelining(suite):
    with suite.raw() as c:
        code, text = c.cmd("EHLO client.example.net")
        assert "PIPELINING" in text, "EHLO lacks PIPELINING: %r" % text
        c.send("MAIL FROM:<p@sender.example.net>\r\nRCPT TO:<p1@%s>\r\n"
               "RCPT TO:<p2@elsewhere.example.org>\r\nRCPT TO:<p3@%s>\r\nDATA\r\n" % (DOMAIN, ALIAS))
        got = [c.reply()[0] for _ in range(5)]
        assert got == [250, 250, 550, 250, 354], "pipelined replies %r" % got
        c.send(b"Subject: pipelined\r\n\r\np\r\n.\r\nNOOP\r\nQUIT\r\n")
        code, text = c.reply()
        assert code == 250, "pipelined end of data: %r" % text
        qid = queued_id(text)
        assert c.reply()[0] == 250 and c.reply()[0] == 221
    assert suite.wait_drop(qid).receivers == ["p1@" + DOMAIN, "p3@" + ALIAS]
