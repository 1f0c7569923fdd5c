"""Outbound TLS and AUTH (issue 4, D5): STARTTLS required with a verified
certificate (test CA given by `outbound-tls-ca-file`, the MX host name or
the literal's IP in the certificate), required but not verifiable (self-
signed, wrong name, no STARTTLS offered) -> 4.7.5, the mail waits;
opportunistic with a bad certificate -> delivered over TLS; AUTH PLAIN or
LOGIN over TLS with the remote-domain's user and password, a wrong
password -> 4.7.8, the mail waits.

The peers are PeerSMTP servers (peers.py) on 127.0.0.2x and the common
outbound port, found through dnsmasq MX records; the AUTH peers listen on
127.0.0.1 and are reached by `route [127.0.0.1]:port`.
"""
import time

from mailroot_suite import SilentDNS, options
from peers import MXDNS, PeerSMTP, TestCA
from test_outbound import field, send, sink_world, start_outbound, wait_outcome, \
    wait_queue_empty


def assert_waiting(suite, peer, qid, rcpt, code, why):
    """rcpt deferred with `code`; the message still queued; the peer got
    no MAIL from it (no plaintext fallback)."""
    (t, line), = wait_outcome(suite, qid, "deferred", rcpt, timeout=15)[:1]
    assert field(line, "dsn") == code, "%s: deferred with %s, want %s: %s" % (
        why, field(line, "dsn"), code, line)
    assert any(n.startswith(qid) for n in suite.queue_names()), \
        "%s: the message left Queue/: %r" % (why, suite.queue_names())
    assert peer.messages() == [], "%s: the peer received the message" % why
    mails = [l for _, l in peer.commands() if l.upper().startswith("MAIL")]
    assert mails == [], "%s: MAIL sent anyway: %r" % (why, peer.commands())


@options(start=False, timeout=60)
def test_outbound_tls_require_verified(suite):
    ca = TestCA(suite)
    crt, key = ca.server("mx-t", ["mx.t.test"])
    (a,), port = sink_world(suite, 1, first=20)
    dns = MXDNS(suite, mx={"t.test": [(10, "mx.t.test")]}, hosts={"mx.t.test": [a]})
    with dns, PeerSMTP(addr=a, port=port, cert=crt, key=key) as peer:
        start_outbound(suite, port, dns, lines=["remote-domain t.test tls require"],
                       conf={"outbound-tls-ca-file": '"%s"' % ca.ca_pem})
        qid, token, msg = send(suite, ["x@t.test"])
        (m,) = peer.wait_messages(1, needle=token.encode())
        assert m.tls, "delivered without TLS: %r" % m.conn.commands
        assert m.conn.tls_version in ("TLSv1.2", "TLSv1.3"), m.conn.tls_version
        verbs = m.conn.verbs()
        assert verbs[:3] == ["EHLO", "STARTTLS", "EHLO"], m.conn.commands
        assert m.data.endswith(msg)
        wait_queue_empty(suite)
        wait_outcome(suite, qid, "sent", "x@t.test")
        assert not peer.errors, peer.errors


@options(start=False, timeout=60)
def test_outbound_tls_require_unverifiable_waits(suite):
    ca = TestCA(suite)
    scrt, skey = ca.self_signed("self", ["mx.tb.test"])
    wcrt, wkey = ca.server("wrong", ["other.test"])
    (ab, aw, an), port = sink_world(suite, 3, first=21)
    dns = MXDNS(suite,
                mx={"tb.test": [(10, "mx.tb.test")], "tw.test": [(10, "mx.tw.test")],
                    "tn.test": [(10, "mx.tn.test")]},
                hosts={"mx.tb.test": [ab], "mx.tw.test": [aw], "mx.tn.test": [an]})
    with dns, PeerSMTP(addr=ab, port=port, cert=scrt, key=skey) as selfsigned, \
            PeerSMTP(addr=aw, port=port, cert=wcrt, key=wkey) as wrongname, \
            PeerSMTP(addr=an, port=port) as plain:
        start_outbound(suite, port, dns, lines=[
            "remote-domain tb.test tls require",
            "remote-domain tw.test tls require",
            "remote-domain tn.test tls require"],
            conf={"outbound-tls-ca-file": '"%s"' % ca.ca_pem})
        qb, _, _ = send(suite, ["x@tb.test"])
        qw, _, _ = send(suite, ["x@tw.test"])
        qn, _, _ = send(suite, ["x@tn.test"])
        assert_waiting(suite, selfsigned, qb, "x@tb.test", "4.7.5", "self-signed certificate")
        assert_waiting(suite, wrongname, qw, "x@tw.test", "4.7.5", "certificate for another name")
        assert_waiting(suite, plain, qn, "x@tn.test", "4.7.5", "no STARTTLS offered")
        assert any(l.upper() == "STARTTLS" for _, l in selfsigned.commands()), \
            "no STARTTLS tried with the self-signed peer: %r" % selfsigned.commands()


@options(start=False, timeout=60)
def test_outbound_tls_opportunistic_takes_any_certificate(suite):
    ca = TestCA(suite)
    scrt, skey = ca.self_signed("self", ["mx.to.test"])
    (ao, ap), port = sink_world(suite, 2, first=24)
    dns = MXDNS(suite, mx={"to.test": [(10, "mx.to.test")], "po.test": [(10, "mx.po.test")]},
                hosts={"mx.to.test": [ao], "mx.po.test": [ap]})
    with dns, PeerSMTP(addr=ao, port=port, cert=scrt, key=skey) as bad, \
            PeerSMTP(addr=ap, port=port) as plain:
        # outbound-tls: the default, opportunistic.
        start_outbound(suite, port, dns, conf={"outbound-tls-ca-file": '"%s"' % ca.ca_pem})
        qo, to, _ = send(suite, ["x@to.test"])
        qp, tp, _ = send(suite, ["x@po.test"])
        (mo,) = bad.wait_messages(1, needle=to.encode())
        (mp,) = plain.wait_messages(1, needle=tp.encode())
        assert mo.tls, "opportunistic: STARTTLS offered but not used: %r" % mo.conn.commands
        assert not mp.tls
        wait_queue_empty(suite)
        wait_outcome(suite, qo, "sent", "x@to.test")
        wait_outcome(suite, qp, "sent", "x@po.test")


@options(start=False, timeout=60)
def test_outbound_auth_over_tls(suite):
    ca = TestCA(suite)
    crt, key = ca.server("local", ["127.0.0.1"])     # a literal route: its IP is the name
    with SilentDNS() as silent, \
            PeerSMTP(cert=crt, key=key, auth=("mruser", "s3cr3t-pw-Xy"), auth_needs_tls=True) as good, \
            PeerSMTP(cert=crt, key=key, auth=("mruser", "s3cr3t-pw-Xy"), auth_needs_tls=True) as other:
        start_outbound(suite, 25, silent, lines=[
            'remote-domain a.test route %s tls require auth mruser "s3cr3t-pw-Xy"' % good.route(),
            'remote-domain a2.test route %s tls require auth mruser "wr0ng-pw-Zq"' % other.route()],
            conf={"outbound-tls-ca-file": '"%s"' % ca.ca_pem})
        qa, ta, _ = send(suite, ["x@a.test"])
        qb, tb, _ = send(suite, ["x@a2.test"])
        (m,) = good.wait_messages(1, needle=ta.encode())
        assert m.tls and m.auth_user == "mruser", (m.tls, m.auth_user, m.conn.commands)
        verbs = m.conn.verbs()
        assert verbs.index("STARTTLS") < verbs.index("AUTH") < verbs.index("MAIL"), \
            m.conn.commands
        wait_outcome(suite, qa, "sent", "x@a.test")
        # The wrong password: 535 -> 4.7.8, the mail waits.
        (t, line), = wait_outcome(suite, qb, "deferred", "x@a2.test")[:1]
        assert field(line, "dsn") == "4.7.8", line
        assert other.messages() == []
        assert any("failed for mruser" in l for _, l in other.commands()), other.commands()
        assert any(n.startswith(qb) for n in suite.queue_names())
        time.sleep(0.5)
        log = suite.log_text()
        assert "s3cr3t-pw-Xy" not in log and "wr0ng-pw-Zq" not in log, "a password in the log"


@options(start=False)
def test_outbound_smart_host_with_its_own_tls_and_auth(suite):
    # A provider's relay: every remote domain through it, TLS required and
    # AUTH, from the terms on the smart-host line (no remote-domain block).
    ca = TestCA(suite)
    crt, key = ca.server("local", ["127.0.0.1"])
    with SilentDNS() as silent, \
            PeerSMTP(cert=crt, key=key, auth=("relayuser", "r3lay-Pw-Q"),
                     auth_needs_tls=True) as relay:
        start_outbound(suite, 25, silent, conf={
            "smart-host": '%s tls require auth relayuser "r3lay-Pw-Q"' % relay.route(),
            "outbound-tls-ca-file": '"%s"' % ca.ca_pem})
        q1, t1, _ = send(suite, ["x@one.test"])
        q2, t2, _ = send(suite, ["y@two.test"])
        for q, t, r in ((q1, t1, "x@one.test"), (q2, t2, "y@two.test")):
            (m,) = relay.wait_messages(1, needle=t.encode())
            assert m.tls and m.auth_user == "relayuser", (m.tls, m.auth_user, m.conn.commands)
            wait_outcome(suite, q, "sent", r)
        assert "r3lay-Pw-Q" not in suite.log_text(), "the password in the log"
