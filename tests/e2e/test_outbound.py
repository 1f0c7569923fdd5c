"""Outbound delivery (issue 4): deliverd and queued's scheduling, end to end.

The remote world of each test is on loopback: smtp-sink processes (and
PeerSMTP servers) on 127.0.0.11, .12, ... all on one port P (the config's
`outbound-port P`), and a dnsmasq on 127.0.0.1 that answers for the test
zones only (`dns-server 127.0.0.1 port N`).  The client submits to the
instance from 127.0.0.1, which `relay allow 127.0.0.1/32` lets relay.
Times are short: `retry-intervals 2s 2s 3s 3s`, `outbound-timeout 5s`,
`outbound-connect-timeout 2s`.

The helpers here (start_outbound, message, the log and NDR readers) are
used by test_outbound_*.py too.
"""
import email
import email.policy
import re
import socket
import time
import uuid
from datetime import datetime

from mailroot_suite import DOMAIN, HOSTNAME, RawSMTP, SilentDNS, Skip, append_config, \
    ipv6_loopback, options, wait_for
from peers import MXDNS, PeerSMTP, SmtpSink, common_port, loopback_addrs

SENDER = "alice@" + DOMAIN          # a local sender: its NDRs land in Drop/
RETRY = "2s 2s 3s 3s"


# ---- helpers -------------------------------------------------------------------

def start_outbound(suite, port, dns=None, lines=(), conf=None):
    """Write the outbound config (port, DNS, short times, relay from
    127.0.0.1), add `lines` (repeatable statements) and start."""
    base = {
        "relay": "allow 127.0.0.1/32",
        "outbound-port": str(port),
        "retry-intervals": RETRY,
        "outbound-timeout": "5s",
        "outbound-connect-timeout": "2s",
    }
    if dns is not None:
        base["dns-server"] = dns.conf_value()
    base.update(conf or {})
    suite.write_config(base)
    append_config(suite, list(lines))
    suite.start()


def new_token():
    return "otok-" + uuid.uuid4().hex[:16]


def message(token, sender=SENDER, to="someone@remote.test", extra=b"", lines=3):
    """A message carrying a unique token in its Subject and body; dot lines
    test the transparency of both hops."""
    t = token.encode()
    return (extra +
            b"From: <" + sender.encode() + b">\r\n"
            b"To: <" + to.encode() + b">\r\n"
            b"Subject: outbound " + t + b"\r\n"
            b"Message-ID: <" + t + b"@client.example.net>\r\n"
            b"Date: Sun, 6 Dec 2026 10:00:00 +0000\r\n"
            b"\r\n"
            b"token " + t + b"\r\n"
            b".a line with a leading dot\r\n"
            b"..and one with two\r\n" +
            b"".join(b"filler line %03d\r\n" % i for i in range(lines)))


def send(suite, rcpts, token=None, sender=SENDER, **kw):
    """Submit one message by SMTP: (queue id, token, the bytes sent)."""
    token = token or new_token()
    msg = message(token, sender=sender, to=rcpts[0], **kw)
    qid = suite.send(sender, rcpts, msg)
    return qid, token, msg


LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}) ")


def log_time(line):
    m = LOG_TIME.match(line)
    assert m, "log line without a time stamp: %r" % line
    return datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def outcome_lines(suite, qid, status=None, rcpt=None):
    """queued's per-recipient outcome lines of a message: [(time, line)]."""
    pat = re.compile(r"\b%s status=(%s) to=<%s>" % (
        qid, status or r"\w+", re.escape(rcpt) if rcpt else r"[^>]*"))
    return [(log_time(l), l) for l in suite.log_text().splitlines() if pat.search(l)]


def wait_outcome(suite, qid, status, rcpt, n=1, timeout=15):
    """Wait for n outcome lines `status` for rcpt; return them."""
    def enough():
        ls = outcome_lines(suite, qid, status, rcpt)
        return ls if len(ls) >= n else None
    try:
        return wait_for(enough, timeout, "%d log line(s) %s status=%s to=<%s>" % (
            n, qid, status, rcpt), 0.1)
    except AssertionError as e:
        raise AssertionError("%s; its lines so far: %r" % (
            e, [l for l in suite.log_text().splitlines() if qid in l][-8:]))


def field(line, name):
    m = re.search(r"\b%s=(\"(?:[^\"\\]|\\.)*\"|\S+)" % re.escape(name), line)
    return m.group(1) if m else None


def split_trace(content, original):
    """The content as delivered is Received: field(s) of ours, then the
    original bytes: return the Received: prefix (asserting the rest)."""
    assert content.endswith(original), \
        "the delivered content does not end with the message as sent:\n%r\n--- sent:\n%r" % (
            content[-400:], original[-400:])
    prefix = content[:len(content) - len(original)]
    assert re.fullmatch(rb"(Received: [^\r\n]*\r\n([ \t][^\r\n]*\r\n)*)+", prefix), \
        "before the original: not only Received: fields: %r" % prefix[:600]
    return prefix


class Report:
    """A delivery status notification found in Drop/: the Drop message, the
    parsed MIME, the per-message fields and the per-recipient blocks."""

    def __init__(self, drop):
        self.drop = drop
        self.mime = email.message_from_bytes(drop.content, policy=email.policy.compat32)
        self.parts = self.mime.get_payload() if self.mime.is_multipart() else []
        self.status_part = next((p for p in self.parts
                                 if p.get_content_type() == "message/delivery-status"), None)
        blocks = self.status_part.get_payload() if self.status_part is not None else []
        self.per_message = dict(blocks[0].items()) if blocks else {}
        self.recipients = [dict(b.items()) for b in blocks[1:] if len(b.keys())]

    def check_form(self, original_sender=SENDER, copy_to=None):
        """RFC 3464 form as the contract says (NDR section); copy_to: the
        ndr-copy-to address, a second (local) envelope recipient."""
        d = self.drop
        assert d.sender == "<>", "%s: envelope sender of a DSN %r, not null" % (d.name, d.sender)
        want = sorted([original_sender] + ([copy_to] if copy_to else []))
        assert sorted(d.receivers) == want, "%s: x-receiver %r, want %r" % (
            d.name, d.receivers, want)
        ct = self.mime.get_content_type()
        assert ct == "multipart/report", "%s: Content-Type %s" % (d.name, ct)
        assert self.mime.get_param("report-type") == "delivery-status", \
            "%s: report-type %r" % (d.name, self.mime.get_param("report-type"))
        frm = self.mime.get("From", "")
        assert "MAILER-DAEMON@" + HOSTNAME in frm, "%s: From: %r" % (d.name, frm)
        assert self.mime.get("Auto-Submitted", "").startswith("auto-replied"), \
            "%s: Auto-Submitted: %r" % (d.name, self.mime.get("Auto-Submitted"))
        assert self.parts and self.parts[0].get_content_type() == "text/plain", \
            "%s: first part %r" % (d.name, [p.get_content_type() for p in self.parts])
        assert self.status_part is not None, "%s: no message/delivery-status part" % d.name
        rm = self.per_message.get("Reporting-MTA", "")
        assert re.match(r"dns;\s*%s$" % re.escape(HOSTNAME), rm), \
            "%s: Reporting-MTA %r" % (d.name, rm)
        assert self.recipients, "%s: no per-recipient block" % d.name

    def final_recipients(self):
        return [re.sub(r"(?i)^rfc822;\s*", "", r.get("Final-Recipient", "")).strip()
                for r in self.recipients]

    def block(self, rcpt):
        for r, addr in zip(self.recipients, self.final_recipients()):
            if addr.lower() == rcpt.lower():
                return r
        raise AssertionError("%s: no block for %s in %r" % (
            self.drop.name, rcpt, self.recipients))

    def attachment(self):
        """(content type, bytes) of the third part (original or its headers)."""
        assert len(self.parts) >= 3, "%s: %d parts, no original attached" % (
            self.drop.name, len(self.parts))
        p = self.parts[2]
        ct = p.get_content_type()
        if ct == "message/rfc822":
            inner = p.get_payload()
            data = inner[0].as_bytes() if isinstance(inner, list) else p.as_bytes()
        else:
            data = p.get_payload(decode=True) or b""
        return ct, data


def reports(suite, token=None, action=None):
    """The DSNs (null sender) in Drop/, those about `token` (found in the
    attached original or headers) and with a block of that Action."""
    out = []
    for n in suite.drop_names():
        try:
            d = suite.read_drop(n)
        except FileNotFoundError:
            continue
        if d.sender != "<>":
            continue
        if token is not None and token.encode() not in d.content:
            continue
        r = Report(d)
        if action is not None and not any(b.get("Action", "").lower() == action
                                          for b in r.recipients):
            continue
        out.append(r)
    return out


def wait_report(suite, token, action="failed", timeout=15):
    return wait_for(lambda: reports(suite, token, action), timeout,
                    "a DSN (Action: %s) about %s in Drop/" % (action, token), 0.1)[0]


def wait_queue_empty(suite, timeout=15):
    suite.wait_queue_empty(timeout)


def sink_world(suite, n, first=11):
    """n loopback addresses from 127.0.0.<first> and a port free on all."""
    addrs = loopback_addrs(first, n)
    return addrs, common_port(addrs + ["127.0.0.1"])


# ---- MX routing ---------------------------------------------------------------------

@options(start=False, timeout=60)
def test_outbound_mx_delivery(suite):
    (a,), port = sink_world(suite, 1)
    dns = MXDNS(suite, mx={"mx.test": [(10, "mx1.mx.test")]}, hosts={"mx1.mx.test": [a]})
    with dns, SmtpSink(suite, a, port) as sink:
        start_outbound(suite, port, dns)
        qid, token, msg = send(suite, ["bob@mx.test"])
        (m,) = sink.wait_messages(1, needle=token.encode())
        assert m.sender == SENDER, "MAIL FROM %r" % m.mail_args
        assert m.rcpts == ["bob@mx.test"], m.rcpt_args
        assert m.helo == HOSTNAME, "EHLO %r, not the hostname setting" % m.helo
        trace = split_trace(m.content, msg)
        assert trace.count(b"Received: ") == 1 and b"by " + HOSTNAME.encode() in trace, \
            "our Received: %r" % trace
        wait_queue_empty(suite)
        (t, line), = wait_outcome(suite, qid, "sent", "bob@mx.test")
        assert re.search(r"relay=\S*\[127\.0\.0\.11\]", line), line
        assert (field(line, "dsn") or "").startswith("2."), line
        assert field(line, "attempts") == "1", line
        assert re.search(r"%s relay=\S*\[127\.0\.0\.11\]:%d" % (qid, port), suite.log_text()), \
            "deliverd logged no connection line <qid> relay=host[addr]:port"
        time.sleep(1)
        assert len(sink.find(token.encode())) == 1, "delivered more than once"
        assert suite.drop_names() == [], "something in Drop/: %r" % suite.drop_names()


@options(start=False, timeout=60)
def test_outbound_mx_preference_fallback_and_equal_shuffle(suite):
    (dead, b, e1, e2, low), port = sink_world(suite, 5)
    dns = MXDNS(suite,
                mx={"pf.test": [(10, "mxa.pf.test"), (20, "mxb.pf.test")],
                    "eq.test": [(10, "e1.eq.test"), (10, "e2.eq.test"), (30, "low.eq.test")]},
                hosts={"mxa.pf.test": [dead], "mxb.pf.test": [b], "e1.eq.test": [e1],
                       "e2.eq.test": [e2], "low.eq.test": [low]})
    with dns, SmtpSink(suite, b, port) as sb, SmtpSink(suite, e1, port) as s1, \
            SmtpSink(suite, e2, port) as s2, SmtpSink(suite, low, port) as sl:
        # One message per connection: each message chooses among equals anew.
        start_outbound(suite, port, dns, conf={"max-messages-per-connection": "1"})
        qid, token, _ = send(suite, ["x@pf.test"])
        sb.wait_messages(1, needle=token.encode())
        (t, line), = wait_outcome(suite, qid, "sent", "x@pf.test")
        assert "[%s]" % b in line, line
        assert field(line, "attempts") == "1", "the second MX not tried in the same attempt"
        n = 12
        tokens = [send(suite, ["y%d@eq.test" % i])[1] for i in range(n)]
        wait_for(lambda: len(s1.messages()) + len(s2.messages()) >= n, 30,
                 "%d messages at the two equal MX" % n)
        wait_queue_empty(suite)
        c1, c2 = len(s1.messages()), len(s2.messages())
        suite.note("equal preference: %d and %d of %d messages" % (c1, c2, n))
        assert c1 + c2 == n, "%d + %d != %d" % (c1, c2, n)
        assert c1 and c2, "equal preferences not shuffled: %d and %d of %d" % (c1, c2, n)
        assert sl.messages() == [], "the less preferred MX was used while the best worked"
        assert all(len(s1.find(t.encode())) + len(s2.find(t.encode())) == 1 for t in tokens)


@options(start=False, timeout=60)
def test_outbound_no_mx_uses_the_address_record(suite):
    (a,), port = sink_world(suite, 1, first=12)
    dns = MXDNS(suite, hosts={"aonly.test": [a]})
    with dns, SmtpSink(suite, a, port) as sink:
        start_outbound(suite, port, dns)
        qid, token, msg = send(suite, ["carol@aonly.test"])
        (m,) = sink.wait_messages(1, needle=token.encode())
        assert m.rcpts == ["carol@aonly.test"]
        split_trace(m.content, msg)
        wait_queue_empty(suite)
        (t, line), = wait_outcome(suite, qid, "sent", "carol@aonly.test")
        assert "[%s]" % a in line, line


# ---- per-recipient outcomes, retries, reports -------------------------------------

@options(start=False, timeout=90)
def test_outbound_per_recipient_outcomes_and_retry_schedule(suite):
    (ok_a, soft_a, hard_a), port = sink_world(suite, 3)
    dns = MXDNS(suite,
                mx={"ok.test": [(10, "mx.ok.test")], "soft.test": [(10, "mx.soft.test")],
                    "hard.test": [(10, "mx.hard.test")]},
                hosts={"mx.ok.test": [ok_a], "mx.soft.test": [soft_a],
                       "mx.hard.test": [hard_a]})
    with dns, SmtpSink(suite, ok_a, port) as ok, \
            SmtpSink(suite, soft_a, port, soft=["rcpt"]) as soft, \
            SmtpSink(suite, hard_a, port, hard=["rcpt"]) as hard:
        start_outbound(suite, port, dns)
        rcpts = ["ok@ok.test", "later@soft.test", "never@hard.test"]
        t0 = time.time()
        qid, token, msg = send(suite, rcpts)
        # ok: delivered; hard: fails at once, NDR for it alone.
        (m,) = ok.wait_messages(1, needle=token.encode())
        assert m.rcpts == ["ok@ok.test"], m.rcpt_args
        wait_outcome(suite, qid, "sent", "ok@ok.test")
        (t, hline), = wait_outcome(suite, qid, "bounced", "never@hard.test")
        assert (field(hline, "dsn") or "") == "5.1.1", hline
        r = wait_report(suite, token, "failed", timeout=10)
        r.check_form()
        assert r.final_recipients() == ["never@hard.test"], \
            "the NDR names %r, not the hard recipient alone" % r.final_recipients()
        blk = r.block("never@hard.test")
        assert blk.get("Action", "").lower() == "failed", blk
        assert re.fullmatch(r"5\.\d{1,3}\.\d{1,3}", blk.get("Status", "")), blk
        assert "550" in blk.get("Diagnostic-Code", ""), blk
        assert re.search(r"\[%s\]|mx\.hard\.test" % re.escape(hard_a),
                         blk.get("Remote-MTA", "")), blk
        ct, data = r.attachment()
        assert ct == "message/rfc822", "attached as %s" % ct
        assert token.encode() in data and b"filler line 002" in data, data[:300]
        # soft: deferred at the configured intervals (2s, 2s, then 3s).
        lines = wait_outcome(suite, qid, "deferred", "later@soft.test", n=3, timeout=20)
        times = [t for t, _ in lines[:3]]
        assert [field(l, "attempts") for _, l in lines[:3]] == ["1", "2", "3"], \
            [l for _, l in lines]
        assert times[0] - t0 < 5, "first attempt %.1fs after submission" % (times[0] - t0)
        for i, want in ((1, 2.0), (2, 2.0)):
            gap = times[i] - times[i - 1]
            assert want - 0.5 <= gap <= want + 2.5, \
                "attempt %d came %.1fs after attempt %d, retry-intervals says %.0fs" % (
                    i + 1, gap, i, want)
        assert soft.messages() == [], "the 4xx sink took a message"
        assert any(n.startswith(qid) for n in suite.queue_names()), \
            "the message left Queue/ with a recipient pending: %r" % suite.queue_names()
        # The 4xx sink becomes an accepting one: the next retry delivers.
        soft.restart(soft=[])
        (m2,) = soft.wait_messages(1, needle=token.encode(), timeout=12)
        assert m2.rcpts == ["later@soft.test"], m2.rcpt_args
        (t4, line4), = wait_outcome(suite, qid, "sent", "later@soft.test")
        prev = max(t for t, _ in outcome_lines(suite, qid, "deferred", "later@soft.test")
                   if t <= t4)
        n4 = int(field(line4, "attempts") or 0)
        want = 2.0 if n4 <= 3 else 3.0
        assert want - 0.5 <= t4 - prev <= want + 2.5, \
            "attempt %d came %.1fs after the one before, retry-intervals says %.0fs" % (
                n4, t4 - prev, want)
        wait_queue_empty(suite)
        # Each outcome once; one NDR only; the ok recipient not sent twice.
        assert len(outcome_lines(suite, qid, "sent", "ok@ok.test")) == 1
        assert len(ok.find(token.encode())) == 1, "ok@ok.test got the message again"
        assert len(reports(suite, token)) == 1, "more than one DSN: %r" % [
            x.drop.name for x in reports(suite, token)]
        assert hard.messages() == []


@options(start=False, timeout=60)
def test_outbound_delay_notice_then_expiry(suite):
    (a,), port = sink_world(suite, 1)
    dns = MXDNS(suite, mx={"slow.test": [(10, "mx.slow.test")]}, hosts={"mx.slow.test": [a]})
    with dns, SmtpSink(suite, a, port, soft=["rcpt"]):
        start_outbound(suite, port, dns, conf={"delay-notification": "2s",
                                               "expiration-timeout": "7s"})
        t0 = time.time()
        qid, token, _ = send(suite, ["late@slow.test"])
        d = wait_report(suite, token, "delayed", timeout=10)
        d.check_form()
        blk = d.block("late@slow.test")
        assert blk.get("Action", "").lower() == "delayed", blk
        assert blk.get("Status", "").startswith("4."), blk
        assert "Will-Retry-Until" in blk, "delayed block without Will-Retry-Until: %r" % blk
        ct, data = d.attachment()
        assert ct == "text/rfc822-headers", "a delay notice attaches %s, not the headers" % ct
        assert token.encode() in data
        f = wait_report(suite, token, "failed", timeout=20)
        took = time.time() - t0
        f.check_form()
        blk = f.block("late@slow.test")
        assert blk.get("Status") == "4.4.7", "expiry Status %r" % blk.get("Status")
        assert took >= 6.0, "expired after %.1fs, expiration-timeout is 7s" % took
        ct, data = f.attachment()
        assert ct == "message/rfc822" and b"filler line 002" in data, ct
        (t, line), = wait_outcome(suite, qid, "expired", "late@slow.test")
        assert field(line, "dsn") == "4.4.7", line
        wait_queue_empty(suite)
        delayed = reports(suite, token, "delayed")
        assert len(delayed) == 1, "%d delay notices, not one" % len(delayed)
        assert len(reports(suite, token)) == 2


@options(start=False, timeout=60)
def test_outbound_null_sender_and_failed_ndr_go_to_badmail(suite):
    (a,), port = sink_world(suite, 1)
    dns = MXDNS(suite, mx={"hard.test": [(10, "mx.hard.test")]}, hosts={"mx.hard.test": [a]})
    with dns, SmtpSink(suite, a, port, hard=["rcpt"]):
        start_outbound(suite, port, dns)
        # A bounce (null sender) that fails: Badmail, never an NDR.
        qid, token, _ = send(suite, ["gone@hard.test"], sender="")
        wait_outcome(suite, qid, "bounced", "gone@hard.test")
        wait_for(lambda: {qid + ".BAD", qid + ".BDR"} <= set(suite.badmail_names()), 10,
                 "Badmail/%s.BAD and .BDR" % qid)
        with open(suite.path("Badmail", qid + ".BAD"), "rb") as f:
            assert token.encode() in f.read()
        with open(suite.path("Badmail", qid + ".BDR"), "rb") as f:
            bdr = f.read()
        assert b"gone@hard.test" in bdr, "the .BDR does not name the recipient: %r" % bdr
        # A remote sender in a domain that refuses everything: the NDR to
        # it fails too and goes to Badmail (no loop).
        qid2, token2, _ = send(suite, ["gone2@hard.test"], sender="back@hard.test")
        wait_for(lambda: len(suite.badmail_names()) >= 4, 15, "the failed NDR in Badmail/")
        wait_queue_empty(suite)
        bad = [n for n in suite.badmail_names() if n.endswith(".BAD")]
        assert len(bad) == 2, bad
        other = [n for n in bad if n != qid + ".BAD"][0]
        with open(suite.path("Badmail", other), "rb") as f:
            nd = f.read()
        assert token2.encode() in nd and b"multipart/report" in nd, \
            "Badmail/%s is not the NDR about %s: %r" % (other, token2, nd[:300])
        assert suite.drop_names() == [], "Drop/ %r" % suite.drop_names()
        time.sleep(1)
        assert len(suite.badmail_names()) == 4, "still bouncing: %r" % suite.badmail_names()


@options(start=False, timeout=60)
def test_outbound_nxdomain_and_null_mx_fail_at_once(suite):
    (a,), port = sink_world(suite, 1)
    dns = MXDNS(suite, null_mx=["nullmx.test"], hosts={"unused.test": [a]})
    with dns:
        start_outbound(suite, port, dns, conf={"ndr-copy-to": "postmaster@" + DOMAIN})
        t0 = time.time()
        q1, t1, _ = send(suite, ["x@nx.test"])
        q2, t2, _ = send(suite, ["y@nullmx.test"])
        for qid, tok, rcpt, code in ((q1, t1, "x@nx.test", "5.1.2"),
                                     (q2, t2, "y@nullmx.test", "5.1.10")):
            r = wait_report(suite, tok, "failed", timeout=10)
            r.check_form(copy_to="postmaster@" + DOMAIN)
            blk = r.block(rcpt)
            assert blk.get("Status") == code, "%s: Status %r, want %s" % (
                rcpt, blk.get("Status"), code)
            (t, line), = wait_outcome(suite, qid, "bounced", rcpt)
            assert field(line, "dsn") == code and field(line, "attempts") == "1", line
        assert time.time() - t0 < 10, "not at once"
        wait_queue_empty(suite)


# ---- routes: smart host, per-domain route, HELO ---------------------------------------

@options(start=False, timeout=60)
def test_outbound_smart_host_takes_everything_without_dns(suite):
    with SilentDNS() as silent, PeerSMTP() as peer:
        start_outbound(suite, 25, silent, conf={"smart-host": peer.route()})
        q1, t1, m1 = send(suite, ["a@far.test"])
        q2, t2, m2 = send(suite, ["b@other.example.org", "c@far.test"])
        peer.wait_messages(1, needle=t1.encode(), timeout=10)
        got = peer.wait_messages(1, needle=t2.encode(), timeout=10)
        rcpts = sorted(r for g in peer.find(t2.encode()) for r in g.rcpts)
        assert rcpts == ["b@other.example.org", "c@far.test"], rcpts
        assert got[0].data.endswith(m2)
        wait_queue_empty(suite)
        for qid, rcpt in ((q1, "a@far.test"), (q2, "b@other.example.org"), (q2, "c@far.test")):
            (t, line), = wait_outcome(suite, qid, "sent", rcpt)
            assert "[127.0.0.1]" in line, line
        assert not peer.errors, peer.errors


@options(start=False, timeout=60)
def test_outbound_domain_route_and_helo(suite):
    (a,), port = sink_world(suite, 1)
    dns = MXDNS(suite, mx={"mx.test": [(10, "mx1.mx.test")]}, hosts={"mx1.mx.test": [a]})
    # Two HELO-only peers: one connection pool per route host, and a
    # connection opened for one domain may carry the other's mail.
    with dns, SmtpSink(suite, a, port) as sink, PeerSMTP() as routed, \
            PeerSMTP(ehlo=False) as old, PeerSMTP(ehlo=False) as old2:
        start_outbound(suite, port, dns, lines=[
            "remote-domain r.test route %s" % routed.route(),
            "remote-domain h.test helo route %s" % old.route(),
            "remote-domain h2.test route %s" % old2.route()])
        qr, tr, _ = send(suite, ["x@r.test"])
        qm, tm, _ = send(suite, ["x@mx.test"])
        qh, th, _ = send(suite, ["x@h.test"])
        qh2, th2, _ = send(suite, ["x@h2.test"])
        routed.wait_messages(1, needle=tr.encode())
        sink.wait_messages(1, needle=tm.encode())
        (mh,) = old.wait_messages(1, needle=th.encode())
        (mh2,) = old2.wait_messages(1, needle=th2.encode())
        wait_queue_empty(suite)
        assert [m.rcpts for m in routed.messages()] == [["x@r.test"]], \
            "the route got %r" % [m.rcpts for m in routed.messages()]
        assert [m.rcpts for m in sink.messages()] == [["x@mx.test"]], \
            "the MX got %r" % [m.rcpts for m in sink.messages()]
        # `helo`: HELO at once, never EHLO.
        assert "EHLO" not in old.connections[0].verbs() and \
            mh.conn.verbs()[0] == "HELO", \
            "remote-domain ... helo: commands %r" % mh.conn.commands
        assert mh.conn.helo == "HELO " + HOSTNAME, mh.conn.helo
        # No option: EHLO refused with 5xx, then HELO on the same connection.
        verbs = mh2.conn.verbs()
        assert verbs[:2] == ["EHLO", "HELO"], "EHLO 502: commands %r" % mh2.conn.commands
        for (qid, rcpt) in ((qr, "x@r.test"), (qm, "x@mx.test"), (qh, "x@h.test"),
                            (qh2, "x@h2.test")):
            wait_outcome(suite, qid, "sent", rcpt)
        assert not (old.errors or old2.errors or routed.errors), \
            (old.errors, old2.errors, routed.errors)


@options(start=False, timeout=60)
def test_outbound_direct_first_falls_back_to_smart_host(suite):
    (busy, ok_a), port = sink_world(suite, 2)
    dns = MXDNS(suite, mx={"df.test": [(10, "mx.df.test")], "ok.test": [(10, "mx.ok.test")]},
                hosts={"mx.df.test": [busy], "mx.ok.test": [ok_a]})
    # The MX of df.test greets with 4xx: a temporary failure of every MX.
    with dns, SmtpSink(suite, busy, port, soft=["connect"]) as sbusy, \
            SmtpSink(suite, ok_a, port) as sok, PeerSMTP() as smart:
        start_outbound(suite, port, dns, conf={"smart-host": smart.route(),
                                               "direct-first": "yes"})
        q1, t1, _ = send(suite, ["x@df.test"])
        q2, t2, _ = send(suite, ["y@ok.test"])
        smart.wait_messages(1, needle=t1.encode())
        sok.wait_messages(1, needle=t2.encode())
        wait_queue_empty(suite)
        (t, line), = wait_outcome(suite, q1, "sent", "x@df.test")
        assert "[127.0.0.1]" in line and field(line, "attempts") == "1", \
            "not the smart host in the same attempt: %s" % line
        (t, line), = wait_outcome(suite, q2, "sent", "y@ok.test")
        assert "[%s]" % ok_a in line, "direct-first: the MX not used first: %s" % line
        assert smart.find(t2.encode()) == [], "the smart host got mail the MX took"
        assert sbusy.messages() == []


def port_free_v4_v6(addr4):
    for _ in range(50):
        port = common_port([addr4])
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
                s.bind(("::1", port))
            return port
        except OSError:
            continue
    raise AssertionError("no port free on %s and ::1" % addr4)


@options(start=False, timeout=60)
def test_outbound_ipv6_and_ipv4_addresses_of_an_mx(suite):
    if not ipv6_loopback():
        raise Skip("no IPv6 loopback (::1) on this host")
    port = port_free_v4_v6("127.0.0.13")
    dns = MXDNS(suite, mx={"v6.test": [(10, "mx.v6.test")], "dual.test": [(10, "mx.dual.test")]},
                hosts={"mx.v6.test": ["::1"], "mx.dual.test": ["127.0.0.13", "::1"]})
    # mx.dual.test: nothing on its IPv4 address, the peer on its IPv6 one.
    with dns, PeerSMTP(addr="::1", port=port) as peer:
        start_outbound(suite, port, dns)
        q1, t1, _ = send(suite, ["x@v6.test"])
        q2, t2, _ = send(suite, ["y@dual.test"])
        peer.wait_messages(1, needle=t1.encode())
        peer.wait_messages(1, needle=t2.encode())
        wait_queue_empty(suite)
        (t, line), = wait_outcome(suite, q1, "sent", "x@v6.test")
        assert "::1" in line, line
        (t, line), = wait_outcome(suite, q2, "sent", "y@dual.test")
        assert "::1" in line and field(line, "attempts") == "1", line


@options(start=False, timeout=60)
def test_outbound_size_8bitmime_and_dsn_parameters(suite):
    with SilentDNS() as silent, PeerSMTP(size=6000, dsn=True) as peer, \
            PeerSMTP(dsn=False) as nodsn:
        start_outbound(suite, 25, silent, lines=[
            "remote-domain x.test route %s" % peer.route(),
            "remote-domain p.test route %s" % nodsn.route()])
        toks = {}
        s = suite.smtp()
        s.ehlo()
        for dom in ("x.test", "p.test"):
            tok = new_token()
            toks[dom] = tok
            msg = message(tok, to="u@" + dom) + b"caf\xc3\xa9: an 8bit line\r\n"
            code, text = s.mail(SENDER, ["BODY=8BITMIME", "RET=HDRS", "ENVID=env-" + tok])
            assert code == 250, "MAIL: %d %r" % (code, text)
            code, text = s.rcpt("u@" + dom, ["NOTIFY=FAILURE,DELAY", "ORCPT=rfc822;orig@" + dom])
            assert code == 250, "RCPT: %d %r" % (code, text)
            code, text = s.data(msg)
            assert code == 250, "DATA: %d %r" % (code, text)
        s.quit()
        (m,) = peer.wait_messages(1, needle=toks["x.test"].encode())
        mail = [l for l in m.conn.commands if l.upper().startswith("MAIL ")][-1]
        rcpt = [l for l in m.conn.commands if l.upper().startswith("RCPT ")][-1]
        assert "BODY=8BITMIME" in mail.upper(), "an 8bit message without BODY=8BITMIME: %s" % mail
        assert re.search(r"(?i)\sSIZE=\d+", mail), "SIZE offered but not used: %s" % mail
        assert "RET=HDRS" in mail.upper() and "ENVID=env-" + toks["x.test"] in mail, \
            "DSN parameters of MAIL not passed on: %s" % mail
        assert "NOTIFY=FAILURE,DELAY" in rcpt.upper() and \
            "orig@x.test" in rcpt, "DSN parameters of RCPT not passed on: %s" % rcpt
        assert b"caf\xc3\xa9: an 8bit line\r\n" in m.data, "8bit content changed"
        (mp,) = nodsn.wait_messages(1, needle=toks["p.test"].encode())
        for l in mp.conn.commands:
            assert not re.search(r"(?i)\s(RET|ENVID|NOTIFY|ORCPT)=", l), \
                "a DSN parameter to a peer without DSN: %s" % l
        # Over the peer's SIZE: fails with 5.3.4, never sent.
        qid, tok, _ = send(suite, ["big@x.test"], lines=400)
        r = wait_report(suite, tok, "failed")
        assert r.block("big@x.test").get("Status") == "5.3.4", r.block("big@x.test")
        (t, line), = wait_outcome(suite, qid, "bounced", "big@x.test")
        assert peer.find(tok.encode()) == []
        wait_queue_empty(suite)


# ---- limits ----------------------------------------------------------------------------

@options(start=False, timeout=60)
def test_outbound_connection_limits(suite):
    with SilentDNS() as silent, PeerSMTP(data_delay=0.3) as peer:
        start_outbound(suite, 25, silent, lines=[
            "remote-domain l.test route %s" % peer.route()],
            conf={"max-messages-per-connection": "3", "max-connections-per-domain": "2"})
        n = 10
        s = suite.smtp()
        s.ehlo()
        tokens = []
        for i in range(n):
            tok = new_token()
            suite.send(SENDER, ["u%d@l.test" % i], message(tok), smtp=s)
            tokens.append(tok)
        s.quit()
        peer.wait_messages(n, timeout=30)
        wait_queue_empty(suite)
        wait_for(lambda: peer.current == 0, 10, "deliverd to close its connections (QUIT)")
        per_conn = [len(c.messages) for c in peer.connections]
        suite.note("connections %d, messages on each %r, concurrent peak %d" % (
            peer.total, per_conn, peer.peak))
        assert max(per_conn) <= 3, "a connection carried %d messages" % max(per_conn)
        assert peer.total >= 4, "%d connections for %d messages" % (peer.total, n)
        assert peer.peak <= 2, "%d connections at once to one destination" % peer.peak
        for t in tokens:
            assert len(peer.find(t.encode())) == 1, "%s delivered %d times" % (
                t, len(peer.find(t.encode())))
        for c in peer.connections:
            verbs = c.verbs()
            mails = [i for i, v in enumerate(verbs) if v == "MAIL"]
            for i in mails[1:]:
                assert "RSET" in verbs[mails[0]:i], \
                    "no RSET between messages on a connection: %r" % c.commands
            if c.messages:
                assert verbs[-1] == "QUIT", "connection %d did not end with QUIT: %r" % (
                    c.index, c.commands)
        assert not peer.errors, peer.errors


# ---- rewriting and loops -----------------------------------------------------------------

def masquerade_run(suite):
    """A local and a remote sender relayed with masquerade-domain masq.test:
    the two sink messages."""
    (a,), port = sink_world(suite, 1)
    dns = MXDNS(suite, mx={"mx.test": [(10, "mx1.mx.test")]}, hosts={"mx1.mx.test": [a]})
    with dns, SmtpSink(suite, a, port) as sink:
        start_outbound(suite, port, dns, conf={"masquerade-domain": "masq.test"})
        q1, t1, _ = send(suite, ["bob@mx.test"])
        q2, t2, _ = send(suite, ["bob@mx.test"], sender="carol@sender.test")
        (m1,) = sink.wait_messages(1, needle=t1.encode())
        (m2,) = sink.wait_messages(1, needle=t2.encode())
        wait_queue_empty(suite)
        return m1, m2


@options(start=False, timeout=60)
def test_outbound_masquerade_domain(suite):
    m1, m2 = masquerade_run(suite)
    assert m1.sender == "alice@masq.test", "MAIL FROM %r: not masqueraded" % m1.mail_args
    assert m2.sender == "carol@sender.test", \
        "a remote sender was masqueraded: %r" % m2.mail_args


@options(start=False, timeout=60)
def test_outbound_masquerade_from_header(suite):
    # FEATURES D7: "the envelope sender and From: of outgoing mail"
    # (outbound.md and mailroot.conf(5) name the envelope sender only).
    m1, m2 = masquerade_run(suite)
    f1, f2 = m1.header("From") or "", m2.header("From") or ""
    assert "alice@masq.test" in f1 and "example.test" not in f1, \
        "From: %r not masqueraded (FEATURES D7)" % f1
    assert "carol@sender.test" in f2, "From: %r of a remote sender changed" % f2


@options(start=False, timeout=60)
def test_outbound_hop_count(suite):
    (a,), port = sink_world(suite, 1)
    dns = MXDNS(suite, mx={"mx.test": [(10, "mx1.mx.test")]}, hosts={"mx1.mx.test": [a]})

    def hops(n):
        return b"".join(b"Received: from hop%d.test by hop%d.test; "
                        b"Sun, 6 Dec 2026 09:00:00 +0000\r\n" % (i, i + 1) for i in range(n))
    with dns, SmtpSink(suite, a, port) as sink:
        start_outbound(suite, port, dns)        # max-hop-count: the default, 15
        # 16 in the message, 17 with ours: over the limit.
        qid, token, _ = send(suite, ["bob@mx.test"], extra=hops(16))
        # 14 in the message, 15 with ours: not over.
        q2, t2, m2 = send(suite, ["bob@mx.test"], extra=hops(14))
        r = wait_report(suite, token, "failed")
        r.check_form()
        assert r.block("bob@mx.test").get("Status") == "5.4.6", r.block("bob@mx.test")
        (t, line), = wait_outcome(suite, qid, "bounced", "bob@mx.test")
        assert field(line, "dsn") == "5.4.6", line
        (m,) = sink.wait_messages(1, needle=t2.encode())
        split_trace(m.content, m2)
        wait_queue_empty(suite)
        assert sink.find(token.encode()) == [], "the looping message was sent"


# ---- ETRN and hold ------------------------------------------------------------------------

@options(start=False, timeout=60)
def test_outbound_hold_released_by_etrn(suite):
    (a,), port = sink_world(suite, 1)
    dns = MXDNS(suite, mx={"e.test": [(10, "mx.e.test")]}, hosts={"mx.e.test": [a]})
    with dns, SmtpSink(suite, a, port) as sink:
        start_outbound(suite, port, dns, lines=["remote-domain e.test hold"])
        qid, token, _ = send(suite, ["x@e.test"])
        time.sleep(3)           # longer than the first retry interval
        assert sink.messages() == [], "held mail was sent"
        assert any(n.startswith(qid) for n in suite.queue_names()), suite.queue_names()
        assert outcome_lines(suite, qid) == [], "an attempt for held mail: %r" % \
            outcome_lines(suite, qid)
        with RawSMTP(suite.port) as c:
            text = c.expect("EHLO client.example.net", 250)
            assert re.search(r"^250[- ]ETRN$", text, re.M), "ETRN not advertised: %r" % text
            text = c.expect("ETRN e.test", 250)
            assert "e.test" in text, text
            code, text = c.cmd("ETRN nothing.test")
            assert code == 251, "ETRN for a domain with no mail: %r" % text
            c.cmd("QUIT")
        sink.wait_messages(1, needle=token.encode(), timeout=10)
        wait_queue_empty(suite)
        wait_outcome(suite, qid, "sent", "x@e.test")


@options(start=False, timeout=60)
def test_outbound_idle_connection_is_reused_then_closed(suite):
    """A batch that arrives while a connection to its destination waits idle
    takes it (RSET, no new connection, no new EHLO); after about two idle
    seconds deliverd says QUIT."""
    with SilentDNS() as silent, PeerSMTP() as peer:
        start_outbound(suite, 25, silent, lines=[
            "remote-domain idle.test route %s" % peer.route()])
        t1, t2 = new_token(), new_token()
        suite.send(SENDER, ["a@idle.test"], message(t1))
        peer.wait_messages(1, timeout=15)
        suite.send(SENDER, ["b@idle.test"], message(t2))
        peer.wait_messages(2, timeout=15)
        assert peer.total == 1, "%d connections for two messages a moment apart" % peer.total
        c = peer.connections[0]
        verbs = c.verbs()
        assert verbs.count("EHLO") == 1 and verbs.count("MAIL") == 2, c.commands
        assert "RSET" in verbs[verbs.index("MAIL") + 1:], c.commands
        t_last = time.monotonic()
        wait_for(lambda: peer.current == 0, 15, "deliverd to close the idle connection")
        idle = time.monotonic() - t_last
        suite.note("idle connection closed %.1fs after the second message" % idle)
        assert c.verbs()[-1] == "QUIT", c.commands
        assert idle >= 1.0, "closed after %.1fs: it did not wait for a next batch" % idle
        assert not peer.errors, peer.errors
