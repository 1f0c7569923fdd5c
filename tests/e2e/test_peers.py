"""The fixtures of the outbound tests, tested on their own (peers.py): no
Mailroot is started.  smtp-sink's dump files, its 4xx/5xx modes and a
restart; the MX records of dnsmasq (null MX included); PeerSMTP with
STARTTLS, AUTH, per-recipient replies, HELO only, connection counting; the
test CA's certificates checked by Python's ssl.
"""
import shutil
import smtplib
import socket
import ssl
import subprocess
import threading

from mailroot_suite import Skip, options, wait_for
from peers import (MXDNS, PeerSMTP, SmtpSink, TestCA, common_port, dns_answers,
                   loopback_addrs)

MSG = (b"From: a@sender.test\r\nTo: x@y.test\r\nSubject: fixture\r\n\r\n"
       b"line one\r\n.a line with a leading dot\r\n..two dots\r\n\r\nlast\r\n")


def smtp_to(addr, port, timeout=10):
    return smtplib.SMTP(addr, port, local_hostname="client.test", timeout=timeout)


@options(start=False, timeout=60)
def test_peers_smtp_sink_modes_dump_and_restart(suite):
    addrs = loopback_addrs(11, 3)
    port = common_port(addrs)
    with SmtpSink(suite, addrs[0], port) as ok, \
            SmtpSink(suite, addrs[1], port, soft=["rcpt"]) as soft, \
            SmtpSink(suite, addrs[2], port, hard=["rcpt"]) as hard:
        s = smtp_to(addrs[0], port)
        s.ehlo()
        s.sendmail("a@sender.test", ["x@y.test", "z@y.test"], MSG)
        s.sendmail("b@sender.test", ["w@y.test"], b"Subject: two\r\n\r\nsecond\r\n")
        s.quit()
        ms = ok.wait_messages(2)
        assert len(ms) == 2, [m.raw for m in ms]
        m = ok.find(b"fixture")[0]
        assert m.sender == "a@sender.test", m.mail_args
        assert m.rcpts == ["x@y.test", "z@y.test"], m.rcpt_args
        assert m.content == MSG, "content %r != %r" % (m.content, MSG)
        assert m.header("Subject") == "fixture"
        assert m.helo == "client.test", m.helo
        # 4xx and 5xx to RCPT
        for sink, code, enh in ((soft, 451, b"4.3.0"), (hard, 550, b"5.1.1")):
            s = smtp_to(sink.addr, port)
            s.ehlo()
            assert s.mail("a@sender.test")[0] == 250
            c, t = s.rcpt("x@y.test")
            assert c == code and t.startswith(enh), "%s: %d %r" % (sink.addr, c, t)
            s.quit()
        assert soft.messages() == [] and hard.messages() == []
        # The 4xx sink turned into an accepting one, same address and port.
        soft.restart(soft=[])
        s = smtp_to(soft.addr, port)
        s.sendmail("a@sender.test", ["x@y.test"], MSG)
        s.quit()
        assert len(soft.wait_messages(1)) == 1
        # A sink that refuses the greeting.
        soft.restart(soft=["connect"])
        try:
            smtp_to(soft.addr, port)
            raise AssertionError("a 4xx greeting was not seen")
        except smtplib.SMTPConnectError as e:
            assert e.smtp_code == 451, e
    # Stopped: nothing listens any more.
    with socket.socket() as c:
        c.settimeout(1)
        assert c.connect_ex((addrs[0], port)) != 0, "smtp-sink still listening after stop"


@options(start=False, timeout=30)
def test_peers_dnsmasq_mx_records(suite):
    dns = MXDNS(suite,
                mx={"mx.test": [(10, "mx1.mx.test"), (20, "mx2.mx.test")]},
                null_mx=["nullmx.test"],
                hosts={"mx1.mx.test": ["127.0.0.11"], "aonly.test": ["127.0.0.12"],
                       "v6.test": ["::1", "127.0.0.13"]})
    with dns:
        rc, ans = dns_answers(dns.port, "mx.test", 15)
        assert rc == 0 and sorted(ans) == [(10, "mx1.mx.test."), (20, "mx2.mx.test.")], ans
        assert dns_answers(dns.port, "mx1.mx.test", 1) == (0, ["127.0.0.11"])
        assert dns_answers(dns.port, "mx.test", 1) == (0, []), "MX-only name: A not NODATA"
        # No MX, an A record: NODATA to MX (not NXDOMAIN), the A answers.
        assert dns_answers(dns.port, "aonly.test", 15) == (0, [])
        assert dns_answers(dns.port, "aonly.test", 1) == (0, ["127.0.0.12"])
        assert dns_answers(dns.port, "v6.test", 28) == (0, ["::1"])
        # RFC 7505 null MX: one MX, preference 0, exchange the root.
        assert dns_answers(dns.port, "nullmx.test", 15) == (0, [(0, ".")])
        # Anything else in the zone: NXDOMAIN.
        assert dns_answers(dns.port, "nx.test", 15)[0] == 3
        assert dns_answers(dns.port, "mx2.mx.test", 1)[0] == 3


@options(start=False, timeout=60)
def test_peers_peer_smtp_tls_auth_and_counting(suite):
    ca = TestCA(suite)
    crt, key = ca.server("good", ["mx.peer.test", "127.0.0.1"])
    bcrt, bkey = ca.self_signed("bad", ["mx.peer.test"])
    with PeerSMTP(cert=crt, key=key, auth=("user", "secret"),
                  rcpt_replies={"no@y.test": "550 5.1.1 no such user",
                                "later@y.test": "450 4.2.1 later"}) as peer:
        s = smtp_to("127.0.0.1", peer.port)
        s.ehlo()
        assert s.has_extn("starttls") and s.has_extn("auth")
        # MAIL before AUTH: 530.
        assert s.mail("a@sender.test")[0] == 530
        s.starttls(context=ca.client_context(check_hostname=False))
        s.ehlo()
        assert not s.has_extn("starttls")
        try:
            s.login("user", "wrong")
            raise AssertionError("a wrong password was accepted")
        except smtplib.SMTPAuthenticationError as e:
            assert e.smtp_code == 535
        s.login("user", "secret")
        assert s.mail("a@sender.test")[0] == 250
        assert s.rcpt("no@y.test")[0] == 550
        assert s.rcpt("later@y.test")[0] == 450
        assert s.rcpt("x@y.test")[0] == 250
        assert s.data(MSG)[0] == 250
        s.quit()
        (m,) = peer.wait_messages(1)
        assert m.sender == "a@sender.test" and m.rcpts == ["x@y.test"], (m.sender, m.rcpts)
        assert m.data == MSG, m.data
        assert m.tls and m.auth_user == "user"
        verbs = peer.connections[0].verbs()
        assert verbs[:5] == ["EHLO", "MAIL", "STARTTLS", "EHLO", "AUTH"], verbs
        assert peer.connections[0].tls_version in ("TLSv1.2", "TLSv1.3")
        # The CA verifies the name in the certificate, IP address included.
        with socket.create_connection(("127.0.0.1", peer.port), 5) as raw:
            raw.recv(512)
            raw.sendall(b"EHLO c.test\r\nSTARTTLS\r\n")
            got = b""
            while b"220 2.0.0" not in got:
                got += raw.recv(512)
            with ca.client_context().wrap_socket(raw, server_hostname="127.0.0.1") as t:
                assert t.version() in ("TLSv1.2", "TLSv1.3")
    # The self-signed certificate does not verify against the CA.
    with PeerSMTP(cert=bcrt, key=bkey) as bad:
        s = smtp_to("127.0.0.1", bad.port)
        s.ehlo()
        try:
            s.starttls(context=ca.client_context())
            raise AssertionError("a self-signed certificate verified")
        except ssl.SSLCertVerificationError:
            pass
        s.close()
        # Without verification (opportunistic) it works.
        s = smtp_to("127.0.0.1", bad.port)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s.starttls(context=ctx)
        s.sendmail("a@sender.test", ["x@y.test"], MSG)
        s.quit()
        assert bad.wait_messages(1)[0].tls
    # A CA-signed certificate for another name fails the name check.
    wcrt, wkey = ca.server("wrong", ["other.test"])
    with PeerSMTP(cert=wcrt, key=wkey) as wrong:
        s = smtp_to("127.0.0.1", wrong.port)
        s.ehlo()
        try:
            s._host = "mx.peer.test"    # the name smtplib checks
            s.starttls(context=ca.client_context())
            raise AssertionError("a certificate for another name verified")
        except ssl.SSLCertVerificationError:
            pass
        s.close()


@options(start=False, timeout=60)
def test_peers_peer_smtp_helo_only_and_concurrency(suite):
    with PeerSMTP(ehlo=False, data_delay=0.5) as peer:
        s = smtp_to("127.0.0.1", peer.port)
        s.sendmail("a@sender.test", ["x@y.test"], MSG)   # EHLO 502, then HELO
        s.quit()
        verbs = peer.connections[0].verbs()
        assert verbs[:3] == ["EHLO", "HELO", "MAIL"], verbs
        # Three clients at once: the peak is counted.
        errors = []

        def client():
            try:
                c = smtp_to("127.0.0.1", peer.port)
                c.sendmail("a@sender.test", ["x@y.test"], MSG)
                c.quit()
            except Exception as e:  # noqa: B902
                errors.append(e)
        ts = [threading.Thread(target=client) for _ in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(15)
        assert not errors, errors
        assert peer.total == 4, peer.total
        assert peer.peak >= 2, "peak %d" % peer.peak
        assert len(peer.messages()) == 4
        wait_for(lambda: peer.current == 0, 5, "connections to close")
        assert not peer.errors, peer.errors
    # A bounded peer: the connection over max_conns gets 421.
    with PeerSMTP(max_conns=1) as one:
        a = socket.create_connection(("127.0.0.1", one.port), 5)
        assert a.recv(100).startswith(b"220")
        b = socket.create_connection(("127.0.0.1", one.port), 5)
        assert b.recv(100).startswith(b"421")
        a.close()
        b.close()


@options(start=False, timeout=60)
def test_peers_swaks_tls_auth_into_peer(suite):
    if shutil.which("swaks") is None:
        raise Skip("swaks is not installed (scripts/install-deps)")
    ca = TestCA(suite)
    crt, key = ca.server("good", ["mx.peer.test"])
    with PeerSMTP(cert=crt, key=key, auth=("user", "secret"), auth_needs_tls=True) as peer:
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(peer.port),
                            "--from", "a@sender.test", "--to", "x@y.test", "--tls",
                            "--auth", "LOGIN", "--auth-user", "user",
                            "--auth-password", "secret", "--header", "Subject: swaks",
                            "--body", "via swaks"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stdout[-1500:]
        (m,) = peer.wait_messages(1)
        assert m.tls and m.auth_user == "user" and b"via swaks" in m.data
        assert "(AUTH LOGIN ok as user)" in peer.connections[0].commands


@options(start=False, timeout=30)
def test_peers_peer_smtp_size_and_dsn(suite):
    with PeerSMTP(size=1000, dsn=True) as peer, PeerSMTP(eightbitmime=False) as plain:
        s = smtp_to("127.0.0.1", peer.port)
        s.ehlo()
        assert s.has_extn("dsn") and s.has_extn("8bitmime") and s.esmtp_features["size"] == "1000"
        assert s.mail("a@sender.test", ["SIZE=2000"])[0] == 552
        assert s.mail("a@sender.test", ["SIZE=500", "RET=HDRS"])[0] == 250
        assert s.rcpt("x@y.test", ["NOTIFY=NEVER"])[0] == 250
        assert s.data(b"x" * 1200 + b"\r\n")[0] == 552, "over SIZE after DATA"
        s.rset()
        s.sendmail("a@sender.test", ["x@y.test"], MSG)
        s.quit()
        assert len(peer.wait_messages(1)) == 1
        assert any("RET=HDRS" in l for _, l in peer.commands())
        s = smtp_to("127.0.0.1", plain.port)
        s.ehlo()
        assert not s.has_extn("dsn") and not s.has_extn("8bitmime")
        s.quit()
