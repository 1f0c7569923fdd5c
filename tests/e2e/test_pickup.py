"""Pickup/: both envelope styles into Drop/, invalid files into Badmail/."""
import os
import re
import time

from mailroot_suite import ALIAS, DOMAIN, HOSTNAME, options, wait_for

PICKUP_RECEIVED_RE = re.compile(
    rb"Received: by " + re.escape(HOSTNAME.encode()) + rb" \(Mailroot pickupd\)\r\n"
    rb"\tid ([0-9a-f]{20}); [^\r\n]+\r\n")


def take(suite, name, data, timeout=10):
    """Drop a Pickup file, wait until it left Pickup/ and its message is in
    Drop/ (found by a token in it); return that one Drop message."""
    token = re.search(rb"tok-[0-9a-z-]+", data).group(0)
    suite.pickup(name, data)
    suite.wait_pickup_gone(name, timeout)
    found = wait_for(lambda: suite.find_drop_containing(token), timeout,
                     "the message of Pickup/%s in Drop/" % name)
    assert len(found) == 1, "%d Drop files for one Pickup file" % len(found)
    m = found[0]
    mm = PICKUP_RECEIVED_RE.fullmatch(m.received)
    assert mm, "Received: of a Pickup message: %r" % m.received
    assert mm.group(1).decode() == m.qid, "Received: id %r, file %s" % (mm.group(1), m.name)
    return m


def test_iis_envelope_style(suite):
    data = (b"x-sender: app@sender.example.net\r\n"
            b"x-receiver: one@" + DOMAIN.encode() + b"\r\n"
            b"x-receiver: two@" + ALIAS.encode() + b"\r\n"
            b"From: App <app@sender.example.net>\r\n"
            b"To: someone-else@example.org\r\n"
            b"Subject: IIS style tok-iis-1\r\n"
            b"\r\n"
            b"Body line 1\r\n"
            b".a line with a leading dot\r\n"
            b"last\r\n")
    m = take(suite, "iis.eml", data)
    assert m.sender == "app@sender.example.net", "x-sender %r" % m.sender
    # The envelope comes from the x- lines only, not from To:.
    assert m.receivers == ["one@" + DOMAIN, "two@" + ALIAS], "x-receiver %r" % m.receivers
    # The envelope lines are not part of the message.
    assert b"x-sender" not in m.content.lower() and b"x-receiver" not in m.content.lower(), \
        "envelope lines copied into the content: %r" % m.content[:300]
    assert m.header_count("Message-ID") == 1, "Message-ID added once: %r" % m.header_section()
    assert m.header_count("Date") == 1, "Date added once: %r" % m.header_section()
    assert re.fullmatch(r"<[^<>@\s]+@" + re.escape(HOSTNAME) + ">", m.header_value("Message-ID")), \
        "added Message-ID %r" % m.header_value("Message-ID")
    body = m.content.split(b"\r\n\r\n", 1)[1]
    assert body == b"Body line 1\r\n.a line with a leading dot\r\nlast\r\n", "body %r" % body
    assert m.content.startswith(b"From: App <app@sender.example.net>\r\nTo: someone-else"
                                b"@example.org\r\nSubject: IIS style tok-iis-1\r\n"), \
        "headers not kept in order: %r" % m.content[:200]


def test_header_envelope_style_bcc_removed(suite):
    data = (b"From: \"Sender, Name\" <from@sender.example.net>\r\n"
            b"To: Ann <ann@" + DOMAIN.encode() + b">, ben@" + ALIAS.encode() + b"\r\n"
            b"Cc: cat@" + DOMAIN.encode() + b"\r\n"
            b"Bcc: hidden@" + DOMAIN.encode() + b",\r\n"
            b"  hidden2@" + ALIAS.encode() + b"\r\n"
            b"Subject: header style tok-hdr-1\r\n"
            b"Message-ID: <given-id-1@sender.example.net>\r\n"
            b"Date: Mon, 2 Feb 2026 10:00:00 +0000\r\n"
            b"\r\n"
            b"body\r\n")
    m = take(suite, "headers.eml", data)
    assert m.sender == "from@sender.example.net", "x-sender %r" % m.sender
    expect = ["ann@" + DOMAIN, "ben@" + ALIAS, "cat@" + DOMAIN, "hidden@" + DOMAIN,
              "hidden2@" + ALIAS]
    assert sorted(m.receivers) == sorted(expect), "x-receiver %r, expected %r" % (
        m.receivers, expect)
    assert m.header_count("Bcc") == 0 and b"hidden" not in m.content, \
        "Bcc: (or its continuation) left in the message: %r" % m.header_section()
    assert m.header_count("Message-ID") == 1, "Message-ID duplicated: %r" % m.header_section()
    assert m.header_value("Message-ID") == "<given-id-1@sender.example.net>"
    assert m.header_count("Date") == 1, "Date duplicated: %r" % m.header_section()
    assert m.header_value("Date") == "Mon, 2 Feb 2026 10:00:00 +0000"
    assert m.header_count("To") == 1 and m.header_count("Cc") == 1


def test_header_style_defaults_lf_and_bare_local_part(suite):
    # LF line endings (as a Unix application writes them) become CRLF; a
    # bare local part is qualified with the default domain; Message-ID and
    # Date are added (only Message-ID given here: Date alone is added).
    data = (b"From: local-app\n"
            b"To: bare-user\n"
            b"Message-ID: <only-msgid@sender.example.net>\n"
            b"Subject: lf tok-lf-1\n"
            b"\n"
            b"line one\n"
            b"line two\n")
    m = take(suite, "lf-file", data)
    assert m.sender == "local-app@" + DOMAIN, "x-sender %r" % m.sender
    assert m.receivers == ["bare-user@" + DOMAIN], "x-receiver %r" % m.receivers
    assert m.header_count("Message-ID") == 1 and \
        m.header_value("Message-ID") == "<only-msgid@sender.example.net>"
    assert m.header_count("Date") == 1, "Date not added: %r" % m.header_section()
    assert m.content.endswith(b"\r\n\r\nline one\r\nline two\r\n"), "content %r" % m.content
    assert b"\n" not in m.content.replace(b"\r\n", b""), "bare LF left: %r" % m.content


def test_dot_files_are_left_alone(suite):
    # Names starting with "." are a writer's temporaries.
    p = suite.path("Pickup", ".still-writing")
    with open(p, "wb") as f:
        f.write(b"x-sender: a@sender.example.net\r\nx-receiver: dot@" + DOMAIN.encode() +
                b"\r\n\r\ntok-dot-1\r\n")
    if suite.is_root:
        os.chown(p, -1, suite.gid("mailroot"))
        os.chmod(p, 0o640)
    # A real file after it is taken; the dot file must stay through rescans
    # (every pickup-interval, 1 s here) and the settle time (2 s).
    take(suite, "after-dot", b"x-sender: a@sender.example.net\r\nx-receiver: r@" +
         DOMAIN.encode() + b"\r\n\r\ntok-after-1\r\n")
    deadline = time.monotonic() + 3.5
    while time.monotonic() < deadline:
        assert os.path.exists(p), "pickupd took the dot file .still-writing"
        time.sleep(0.1)
    suite.barrier()
    assert not suite.find_drop_containing(b"tok-dot-1"), "a dot file was delivered"


BROKEN = [
    # name, content, substring of the reason
    ("no-envelope", b"Subject: nothing\r\n\r\nbody\r\n",
     "no sender: neither x-sender, Sender nor From"),
    ("no-receiver", b"x-sender: a@sender.example.net\r\nSubject: s\r\n\r\nbody\r\n",
     "x-sender: line without an x-receiver: line"),
    ("no-recipients", b"From: a@sender.example.net\r\nSubject: s\r\n\r\nbody\r\n",
     "no recipients"),
    ("nul-byte", b"From: a@sender.example.net\r\nTo: b@" + DOMAIN.encode() +
     b"\r\n\r\nbo\x00dy\r\n", "NUL byte at offset"),
    ("no-colon", b"From: a@sender.example.net\r\nTo: b@" + DOMAIN.encode() +
     b"\r\nthis header has no colon\r\n\r\nbody\r\n", "header line without a colon"),
    ("bad-address", b"x-sender: a@sender.example.net\r\nx-receiver: not an address@@\r\n"
     b"\r\nbody\r\n", "invalid address"),
    ("empty", b"", "empty file"),
]


def read_badmail(suite):
    """{id: (BAD bytes, BDR text)} of the complete pairs in Badmail/."""
    names = suite.badmail_names()
    out = {}
    for n in names:
        if n.endswith(".BDR") and n[:-4] + ".BAD" in names:
            with open(suite.path("Badmail", n), "rb") as f:
                bdr = f.read().decode("utf-8", "replace")
            with open(suite.path("Badmail", n[:-4] + ".BAD"), "rb") as f:
                out[n[:-4]] = (f.read(), bdr)
    return out


def test_broken_files_go_to_badmail(suite):
    for name, data, _ in BROKEN:
        suite.pickup(name, data)
    for name, _, _ in BROKEN:
        suite.wait_pickup_gone(name)
    bad = wait_for(lambda: (lambda b: b if len(b) >= len(BROKEN) else None)(read_badmail(suite)),
                   10, "%d .BAD/.BDR pairs in Badmail/" % len(BROKEN))
    assert len(bad) == len(BROKEN), "Badmail/: %r" % suite.badmail_names()
    assert len(suite.badmail_names()) == 2 * len(BROKEN), \
        "stray files in Badmail/: %r" % suite.badmail_names()
    for name, data, why in BROKEN:
        hits = [(i, b, r) for i, (b, r) in bad.items() if '"%s"' % name in r]
        assert len(hits) == 1, "no single .BDR names Pickup file %r: %r" % (
            name, [r for _, r in bad.values()])
        qid, bad_bytes, bdr = hits[0]
        reason = re.search(r"^Reason: (.*)$", bdr, re.M)
        assert reason, "%s.BDR has no Reason: line: %r" % (qid, bdr)
        assert 'Pickup file "%s" is not a valid message' % name in reason.group(1) and \
            why in reason.group(1), "%s: reason %r lacks %r" % (name, reason.group(1), why)
        assert re.search(r"^Queue-ID: %s\r?$" % qid, bdr, re.M), "%s.BDR: %r" % (qid, bdr)
        assert bad_bytes == data, "%s.BAD is not the file as it was: %r" % (qid, bad_bytes)
    suite.barrier()
    assert len(suite.drop_names()) == 1, "a broken file was delivered: %r" % suite.drop_names()
    assert suite.pickup_names() == [], "left in Pickup/: %r" % suite.pickup_names()


@options(conf={"max-message-size": "10K"})
def test_oversized_pickup_file_goes_to_badmail(suite):
    data = (b"x-sender: a@sender.example.net\r\nx-receiver: big@" + DOMAIN.encode() +
            b"\r\n\r\n" + (b"y" * 70 + b"\r\n") * 200)
    suite.pickup("big", data)
    suite.wait_pickup_gone("big")
    bad = wait_for(lambda: read_badmail(suite), 10, "a Badmail pair")
    (bad_bytes, bdr), = bad.values()
    assert "larger than max-message-size" in bdr, "reason: %r" % bdr
    assert bad_bytes == data
    suite.barrier()
    assert len(suite.drop_names()) == 1, "the oversized file was delivered"
