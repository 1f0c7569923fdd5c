"""
test_extensions.py - the ESMTP extensions of smtpd (FEATURES P1-P4):
SMTPUTF8 (RFC 6531), BODY=8BITMIME/BINARYMIME, CHUNKING/BDAT (RFC 3030)
with pipelining, and DSN parameters (RFC 3461) kept in the envelope.
"""
import os
import re

from mailroot_suite import DOMAIN, options, wait_for


def ehlo_keywords(c):
    text = c.expect("EHLO client.example.net", 250)
    return [l[4:].split()[0].upper() for l in text.splitlines()[1:]]


def begin(c, rcpt, mail_params=""):
    c.expect("EHLO client.example.net", 250)
    c.expect("MAIL FROM:<sender@example.net>%s" % mail_params, 250)
    c.expect("RCPT TO:<%s>" % rcpt, 250)


def queued_id(text):
    m = re.search(r"queued as ([0-9a-f]{20})\b", text)
    assert m, "no queue id in %r" % text
    return m.group(1)


def test_ehlo_advertises(suite):
    with suite.raw() as c:
        kw = ehlo_keywords(c)
    for k in ("PIPELINING", "SIZE", "8BITMIME", "BINARYMIME", "CHUNKING", "SMTPUTF8",
              "DSN", "ENHANCEDSTATUSCODES"):
        assert k in kw, "EHLO does not advertise %s: %r" % (k, kw)


# ---- SMTPUTF8 ---------------------------------------------------------------

def test_smtputf8_delivered(suite):
    rcpt = "j\u00f6rg.\u00fc@" + DOMAIN
    body = "Subject: gr\u00fc\u00dfe\r\n\r\nh\u00e9llo\r\n".encode()
    with suite.raw() as c:
        c.expect("EHLO client.example.net", 250)
        c.expect("MAIL FROM:<s\u00e9nder@example.net> SMTPUTF8 BODY=8BITMIME", 250)
        c.expect("RCPT TO:<%s>" % rcpt, 250)
        c.expect("DATA", 354)
        c.send(body + b".\r\n")
        code, text = c.reply()
        assert code == 250, text
        qid = queued_id(text)
    m = suite.wait_drop(qid)
    assert m.receivers == [rcpt], m.receivers
    assert m.sender == "s\u00e9nder@example.net", m.sender
    assert b"with UTF8SMTP" in m.received, m.received
    assert m.content == body, m.content


def test_utf8_address_needs_smtputf8(suite):
    with suite.raw() as c:
        c.expect("EHLO client.example.net", 250)
        code, text = c.cmd("MAIL FROM:<s\u00e9nder@example.net>")
        assert code in (501, 553), "UTF-8 sender without SMTPUTF8: %r" % text
        c.expect("MAIL FROM:<sender@example.net>", 250)
        code, text = c.cmd("RCPT TO:<j\u00f6rg@%s>" % DOMAIN)
        assert code in (501, 553), "UTF-8 recipient without SMTPUTF8: %r" % text
        # The flag lasts one transaction only.
        c.expect("RSET", 250)
        c.expect("MAIL FROM:<sender@example.net> SMTPUTF8", 250)
        c.expect("RCPT TO:<j\u00f6rg@%s>" % DOMAIN, 250)
        c.expect("RSET", 250)
        c.expect("MAIL FROM:<sender@example.net>", 250)
        code, text = c.cmd("RCPT TO:<j\u00f6rg@%s>" % DOMAIN)
        assert code in (501, 553), "SMTPUTF8 outlived its transaction: %r" % text


def test_body_parameters(suite):
    with suite.raw() as c:
        c.expect("EHLO client.example.net", 250)
        c.expect("MAIL FROM:<a@example.net> BODY=7BIT", 250)
        c.expect("RSET", 250)
        c.expect("MAIL FROM:<a@example.net> BODY=8bitmime", 250)
        c.expect("RSET", 250)
        code, text = c.cmd("MAIL FROM:<a@example.net> BODY=BASE64")
        assert code == 501, text
        c.expect("MAIL FROM:<a@example.net> BODY=BINARYMIME", 250)
        c.expect("RCPT TO:<bin@%s>" % DOMAIN, 250)
        text = c.expect("DATA", 503, "DATA after BODY=BINARYMIME")
        assert "5.5.1" in text


# ---- CHUNKING / BDAT -----------------------------------------------------------

def test_bdat_chunks(suite):
    part1 = b"Subject: chunks\r\n\r\nfirst part\r\n.dot stays\r\n"
    part2 = b".\r\nnot the end\r\n"
    with suite.raw() as c:
        begin(c, "chunk@" + DOMAIN)
        c.send(b"BDAT %d\r\n" % len(part1) + part1)
        code, text = c.reply()
        assert code == 250 and "%d octets" % len(part1) in text, text
        c.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
        code, text = c.reply()
        assert code == 250, text
        qid = queued_id(text)
        c.expect("QUIT", 221)
    m = suite.wait_drop(qid)
    # No dot-stuffing and no end-of-data line in BDAT: octets kept as sent.
    assert m.content == part1 + part2, m.content


def test_bdat_pipelined(suite):
    msgs = []
    wire = b"EHLO client.example.net\r\n"
    for i in range(3):
        a = b"Subject: pipelined %d\r\n\r\n" % i
        b = b"body %d\r\n" % i
        msgs.append(a + b)
        wire += b"MAIL FROM:<p@example.net>\r\nRCPT TO:<pipe%d@%s>\r\n" % (i, DOMAIN.encode())
        wire += b"BDAT %d\r\n" % len(a) + a + b"BDAT %d LAST\r\n" % len(b) + b
    wire += b"QUIT\r\n"
    with suite.raw() as c:
        c.send(wire)
        codes, qids = [], []
        code, text = c.reply()
        assert code == 250, text        # EHLO
        for i in range(3):
            for step in ("MAIL", "RCPT", "BDAT", "BDAT LAST"):
                code, text = c.reply()
                codes.append(code)
                assert code == 250, "message %d %s: %r" % (i, step, text)
            qids.append(queued_id(text))
        code, text = c.reply()
        assert code == 221, text
    for i, qid in enumerate(qids):
        m = suite.wait_drop(qid)
        assert m.content == msgs[i], (i, m.content)


def test_bdat_last_zero_and_crlf_split(suite):
    # A CR that ends one chunk and the LF that starts the next are one CRLF;
    # a bare LF is stored as CRLF as with DATA; BDAT 0 LAST ends the message.
    with suite.raw() as c:
        begin(c, "split@" + DOMAIN)
        a = b"Subject: split\r\n\r\nline one\r"
        b = b"\nbare lf\nend\r\n"
        c.send(b"BDAT %d\r\n" % len(a) + a)
        assert c.reply()[0] == 250
        c.send(b"BDAT %d\r\n" % len(b) + b)
        assert c.reply()[0] == 250
        code, text = c.cmd("BDAT 0 LAST")
        assert code == 250, text
        qid = queued_id(text)
    m = suite.wait_drop(qid)
    assert m.content == b"Subject: split\r\n\r\nline one\r\nbare lf\r\nend\r\n", m.content


def test_bdat_binarymime_verbatim(suite):
    data = b"Subject: bin\r\nContent-Type: application/octet-stream\r\n\r\n" + \
        bytes(range(256)) + b"\n\r\r\n.\r\n"
    with suite.raw() as c:
        begin(c, "binary@" + DOMAIN, " BODY=BINARYMIME")
        c.send(b"BDAT %d LAST\r\n" % len(data) + data)
        code, text = c.reply()
        assert code == 250, text
        qid = queued_id(text)
    m = suite.wait_drop(qid)
    assert m.content == data, "BINARYMIME content changed"


def test_bdat_sequence_errors(suite):
    with suite.raw() as c:
        c.expect("EHLO client.example.net", 250)
        # Out of sequence: 503, and the chunk's octets are skipped, not run.
        c.send(b"BDAT 12\r\nQUIT\r\nNOOP\r\n")
        code, text = c.reply()
        assert code == 503, text
        c.expect("NOOP", 250)
        c.expect("MAIL FROM:<a@example.net>", 250)
        c.expect("RCPT TO:<seq@%s>" % DOMAIN, 250)
        c.send(b"BDAT 5\r\nhello")
        assert c.reply()[0] == 250
        text = c.expect("DATA", 503, "DATA after BDAT")
        assert "5.5.1" in text
        c.expect("RSET", 250)
        # DATA then BDAT in one transaction
        c.expect("MAIL FROM:<a@example.net>", 250)
        c.expect("RCPT TO:<seq@%s>" % DOMAIN, 250)
        c.expect("DATA", 354)
        c.send(b"Subject: x\r\n\r\nvia data\r\n.\r\n")
        code, text = c.reply()
        assert code == 250, text
        c.expect("NOOP", 250)
        # A malformed BDAT cannot be resynchronised: 501 and close.
        code, text = c.cmd("BDAT ten")
        assert code == 501, text
        assert c.closed_by_peer(5)
    suite.wait_queue_empty()
    # The aborted BDAT message never reached Drop/; the DATA one did.
    assert len(suite.drop_names()) == 1, suite.drop_names()


@options(conf={"max-message-size": "1K"})
def test_bdat_too_big(suite):
    with suite.raw() as c:
        begin(c, "bigchunk@" + DOMAIN)
        chunk = b"x" * 600 + b"\r\n"
        c.send(b"BDAT %d\r\n" % len(chunk) + chunk)
        assert c.reply()[0] == 250
        # The second chunk and a pipelined third: 552, then 503 (chunk skipped).
        c.send(b"BDAT %d\r\n" % len(chunk) + chunk + b"BDAT 4 LAST\r\nQUIT")
        code, text = c.reply()
        assert code == 552 and "5.3.4" in text, text
        code, text = c.reply()
        assert code == 503, text
        c.expect("NOOP", 250)
    suite.wait_queue_empty()
    assert suite.drop_names() == []


# ---- DSN parameters (RFC 3461) -----------------------------------------------------

def test_dsn_syntax(suite):
    with suite.raw() as c:
        c.expect("EHLO client.example.net", 250)
        c.expect("MAIL FROM:<a@example.net> RET=HDRS ENVID=QQ+2B314", 250)
        c.expect("RCPT TO:<d1@%s> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;d1@%s"
                 % (DOMAIN, DOMAIN), 250)
        c.expect("RCPT TO:<d2@%s> NOTIFY=NEVER" % DOMAIN, 250)
        for bad in ("NOTIFY=NEVER,SUCCESS", "NOTIFY=SUCCESS,SUCCESS", "NOTIFY=SOMETIMES",
                    "ORCPT=rfc822", "ORCPT=rfc822;a+2b@x", "ORCPT=;a@x"):
            code, text = c.cmd("RCPT TO:<d3@%s> %s" % (DOMAIN, bad))
            assert code == 501, "RCPT %s: %r" % (bad, text)
        code, text = c.cmd("RCPT TO:<d3@%s> FOO=BAR" % DOMAIN)
        assert code == 555, text
        c.expect("RSET", 250)
        for bad in ("RET=NONE", "ENVID=a+0Ab", "ENVID=" + "x" * 101, "RET=FULL RET=HDRS"):
            code, text = c.cmd("MAIL FROM:<a@example.net> %s" % bad)
            assert code == 501, "MAIL %s: %r" % (bad, text)
        c.expect("MAIL FROM:<a@example.net> RET=FULL", 250)
        c.expect("RCPT TO:<d4@%s> NOTIFY=DELAY" % DOMAIN, 250)
        c.expect("DATA", 354)
        c.send(b"Subject: dsn\r\n\r\nx\r\n.\r\n")
        code, text = c.reply()
        assert code == 250, text


@options(conf={"drop-quota": "2K"})
def test_dsn_kept_in_envelope(suite):
    """A message held in the queue (Drop/ over its quota) shows its DSN
    parameters in Queue/<id>.env; it is delivered once there is room."""
    held = suite.raw()
    try:
        held.expect("EHLO client.example.net", 250)
        held.expect("MAIL FROM:<a@example.net> RET=HDRS ENVID=QQ+2B314 BODY=8BITMIME", 250)
        held.expect("RCPT TO:<held@%s> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;held+2Bx@%s"
                    % (DOMAIN, DOMAIN), 250)
        held.expect("RCPT TO:<held2@%s> NOTIFY=NEVER" % DOMAIN, 250)
        # Another client fills Drop/ over the quota meanwhile.
        fill = suite.send("fill@example.net", ["fill@" + DOMAIN],
                          b"Subject: fill\r\n\r\n" + (b"z" * 98 + b"\r\n") * 30)
        suite.wait_drop(fill)
        held.expect("DATA", 354)
        held.send(b"Subject: held\r\n\r\nheld for room\r\n.\r\n")
        code, text = held.reply()
        assert code == 250, text
        qid = queued_id(text)
    finally:
        held.close()
    env_path = suite.path("Queue", qid + ".env")
    wait_for(lambda: os.path.exists(env_path), 5, "Queue/%s.env" % qid)
    with open(env_path) as f:
        env = f.read()
    for line in ("body 8bitmime", "ret hdrs", "envid QQ+2B314",
                 "rcpt pending <held@%s>\nnotify success,failure\norcpt rfc822;held+2Bx@%s"
                 % (DOMAIN, DOMAIN),
                 "rcpt pending <held2@%s>\nnotify never\n" % DOMAIN):
        assert line in env, "%r not in the envelope:\n%s" % (line, env)
    assert not os.path.exists(suite.path("Drop", qid + ".eml"))
    os.unlink(suite.path("Drop", fill + ".eml"))
    m = suite.wait_drop(qid, 10)
    assert m.receivers == ["held@" + DOMAIN, "held2@" + DOMAIN], m.receivers
