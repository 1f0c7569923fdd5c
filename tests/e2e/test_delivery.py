"""SMTP into Drop/: byte-exact delivery, envelopes, dot-stuffing."""
import re

from mailroot_suite import ALIAS, DOMAIN, HOSTNAME

# Headers and body exactly as sent: CRLF everywhere, folded header, tabs,
# trailing blanks, 8-bit text, an empty line inside the body, a long line.
MESSAGE = (
    b"From: Alice Example <alice@sender.example.net>\r\n"
    b"To: bob@" + DOMAIN.encode() + b"\r\n"
    b"Subject: byte-exact delivery\r\n"
    b"X-Folded: first part\r\n"
    b"\tsecond part   \r\n"
    b"Message-ID: <exact-1@sender.example.net>\r\n"
    b"\r\n"
    b"Hello Bob,\r\n"
    b"\r\n"
    b"  indented line with trailing blanks  \t\r\n"
    b"\xc3\xa9t\xc3\xa9 8-bit UTF-8 line\r\n"
    b"From the start of a line (no > quoting expected)\r\n"
    + b"x" * 990 + b"\r\n"
    b"last line\r\n"
)

RECEIVED_RE = re.compile(
    rb"Received: from client\.example\.net \(\[127\.0\.0\.1\]\)\r\n"
    rb"\tby " + re.escape(HOSTNAME.encode()) + rb" \(Mailroot\) with (E?SMTP) id ([0-9a-f]{20})"
    rb"(\r\n\tfor <[^>\r\n]*>)?; [^\r\n]+\r\n")


def check_received(m, rcpt=None, proto=b"ESMTP"):
    mm = RECEIVED_RE.fullmatch(m.received)
    assert mm, "unexpected Received: field %r" % m.received
    assert mm.group(1) == proto, "Received: says %r, expected %r" % (mm.group(1), proto)
    assert mm.group(2).decode() == m.qid, \
        "Received: names id %s, file is %s" % (mm.group(2), m.name)
    if rcpt is not None:
        assert mm.group(3) == b"\r\n\tfor <" + rcpt.encode() + b">", \
            "Received: lacks 'for <%s>': %r" % (rcpt, m.received)
    else:
        assert mm.group(3) is None, \
            "Received: of a multi-recipient message names one: %r" % m.received


def test_default_domain_byte_exact(suite):
    rcpt = "bob@" + DOMAIN
    qid = suite.send("alice@sender.example.net", [rcpt], MESSAGE)
    m = suite.wait_drop(qid)
    assert m.sender == "alice@sender.example.net", "x-sender: %r" % m.sender
    assert m.receivers == [rcpt], "x-receiver lines: %r" % m.receivers
    check_received(m, rcpt)
    assert m.content == MESSAGE, "content differs from what was sent:\n%r\n!=\n%r" % (
        m.content, MESSAGE)
    assert m.raw.count(b"\n") == m.raw.count(b"\r\n"), "bare LF in the Drop file"
    assert suite.drop_names() == [qid + ".eml"], "Drop/: %r" % suite.drop_names()


def test_alias_domain_and_postmaster(suite):
    rcpt = "carol@" + ALIAS
    qid = suite.send("alice@sender.example.net", [rcpt], MESSAGE)
    m = suite.wait_drop(qid)
    assert m.receivers == [rcpt], "x-receiver lines: %r" % m.receivers
    check_received(m, rcpt)
    assert m.content == MESSAGE, "alias-domain content differs"
    # Upper-case domain: domains are case-insensitive.
    rcpt2 = "dave@" + ALIAS.upper()
    qid2 = suite.send("alice@sender.example.net", [rcpt2], MESSAGE)
    assert suite.wait_drop(qid2).receivers == [rcpt2]
    # The bare postmaster (RFC 5321 4.5.1, any case) is always local: the
    # default domain's postmaster.
    qid3 = suite.send("", ["PostMaster"], b"Subject: to postmaster\r\n\r\nhi\r\n")
    m3 = suite.wait_drop(qid3)
    assert m3.receivers == ["postmaster@" + DOMAIN], "bare postmaster: %r" % m3.receivers
    assert m3.sender == "<>", "null reverse-path should be x-sender: <>, got %r" % m3.sender


def test_multiple_recipients_one_drop_file(suite):
    rcpts = ["one@" + DOMAIN, "two@" + ALIAS, "three@" + DOMAIN]
    qid = suite.send("alice@sender.example.net", rcpts, MESSAGE)
    m = suite.wait_drop(qid)
    assert m.receivers == rcpts, "x-receiver lines %r, expected %r" % (m.receivers, rcpts)
    assert m.raw.count(b"\r\nx-receiver: ") == 3, "x-receiver count in %r" % m.raw[:300]
    check_received(m, None)
    assert m.content == MESSAGE, "content differs"
    suite.barrier()
    assert len(suite.drop_names()) == 2, \
        "3 recipients must give ONE Drop file (+ the barrier): %r" % suite.drop_names()


def test_several_messages_in_one_session(suite):
    s = suite.smtp()
    s.ehlo()
    qids = []
    for i in range(5):
        body = b"Subject: session message %d\r\n\r\nbody %d\r\n" % (i, i)
        qids.append((suite.send("s@sender.example.net", ["multi@" + DOMAIN], body, smtp=s), body))
    s.quit()
    assert len(set(q for q, _ in qids)) == 5, "queue ids not unique: %r" % qids
    for qid, body in qids:
        assert suite.wait_drop(qid).content == body


# Each case: the original line(s), as the sender's mail means them.
DOT_LINES = [
    b".",                    # a line of only a dot
    b"..",                   # two dots
    b"...",
    b".leading dot",
    b"..two leading dots",
    b". dot space",
    b".\t",
    b"middle . dot",
    b"ends with dot.",
    b"",                     # an empty line between
    b".",                    # a dot line right before the end
]


def stuff(lines):
    return b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines)


def test_dot_stuffing_raw(suite):
    header = b"Subject: dots\r\n\r\n"
    original = header + b"".join(l + b"\r\n" for l in DOT_LINES)
    with suite.raw() as c:
        c.expect("EHLO client.example.net", 250)
        c.expect("MAIL FROM:<dots@sender.example.net>", 250)
        c.expect("RCPT TO:<dots@%s>" % DOMAIN, 250)
        c.expect("DATA", 354)
        c.send(header + stuff(DOT_LINES) + b".\r\n")
        code, text = c.reply()
        assert code == 250, "end of data: %r" % text
        qid = re.search(r"queued as ([0-9a-f]{20})", text).group(1)
        c.expect("QUIT", 221)
    m = suite.wait_drop(qid)
    assert m.content == original, "unstuffed content:\n%r\nexpected\n%r" % (m.content, original)


def test_dot_stuffing_smtplib(suite):
    # smtplib stuffs; what arrives must be what was given to it.
    body = b"Subject: dots via smtplib\r\n\r\n" + b"".join(l + b"\r\n" for l in DOT_LINES)
    qid = suite.send("dots@sender.example.net", ["dots@" + DOMAIN], body)
    assert suite.wait_drop(qid).content == body


def test_unstuffed_leading_dot_is_removed(suite):
    # RFC 5321 4.5.2: the receiver deletes the first "." of a line that
    # starts with one, whether or not the client stuffed it.
    with suite.raw() as c:
        c.expect("HELO client.example.net", 250)
        c.expect("MAIL FROM:<dots@sender.example.net>", 250)
        c.expect("RCPT TO:<dots@%s>" % DOMAIN, 250)
        c.expect("DATA", 354)
        c.send(b"Subject: raw\r\n\r\n.x\r\n..y\r\n.\r\n")
        code, text = c.reply()
        assert code == 250, "end of data: %r" % text
        qid = re.search(r"queued as ([0-9a-f]{20})", text).group(1)
    m = suite.wait_drop(qid)
    assert m.content == b"Subject: raw\r\n\r\nx\r\n.y\r\n", "content %r" % m.content
    check_received(m, "dots@" + DOMAIN, proto=b"SMTP")
