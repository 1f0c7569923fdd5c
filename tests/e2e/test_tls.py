"""TLS on the inbound listener: STARTTLS (RFC 3207), implicit TLS (RFC 8314),
require-tls, TLS 1.2 minimum, STARTTLS command injection, the certificate
and key checked by mailrootd and reloaded.

Each test makes its own CA and server certificate for mx.example.test with
the openssl command in the test's directory, and listens with the options
it needs (a plain listener on suite.port plus TLS listeners on free ports).
Clients: swaks, openssl s_client, Python ssl with smtplib and raw sockets.
"""
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time

from mailroot_suite import DOMAIN, HOSTNAME, RawSMTP, Skip, free_port, options, wait_for

MSG = b"Subject: over TLS\r\n\r\nsent over TLS\r\n"


# ---- certificates -----------------------------------------------------------

def openssl(suite, *args):
    r = subprocess.run(["openssl"] + list(args), cwd=suite.dir, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=60)
    assert r.returncode == 0, "openssl %s: %s" % (" ".join(args), r.stdout)
    return r.stdout


class PKI:
    """A CA and server certificates signed by it, as files in the test's
    directory: ca.crt, and NAME.crt / NAME.key per server certificate."""

    def __init__(self, suite):
        if shutil.which("openssl") is None:
            raise Skip("the openssl command is not installed (scripts/install-deps)")
        self.suite = suite
        self.dir = suite.dir
        self.ca_crt = self.path("ca.crt")
        openssl(suite, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
                "-subj", "/O=Mailroot e2e/CN=Mailroot e2e test CA")

    def path(self, name):
        return os.path.join(self.dir, name)

    def server(self, name, cn=HOSTNAME, org="Mailroot e2e"):
        """A key and a certificate for `cn` signed by the CA: (crt, key)."""
        with open(self.path(name + ".ext"), "w") as f:
            f.write("subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n" % cn)
        openssl(self.suite, "req", "-newkey", "rsa:2048", "-nodes", "-sha256",
                "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", "/O=%s/CN=%s" % (org, cn))
        openssl(self.suite, "x509", "-req", "-in", name + ".csr", "-CA", "ca.crt",
                "-CAkey", "ca.key", "-CAcreateserial", "-sha256", "-days", "2",
                "-extfile", name + ".ext", "-out", name + ".crt")
        os.chmod(self.path(name + ".key"), 0o600)
        return self.path(name + ".crt"), self.path(name + ".key")

    def context(self):
        """A client context that trusts only the test CA and checks the name."""
        ctx = ssl.create_default_context(cafile=self.ca_crt)
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


def der(crt_path):
    with open(crt_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def tls_config(suite, pki, listens, cert="mx", conf=None):
    """Write the config: the usual plain listener on suite.port, then one
    `listen on 127.0.0.1 port P OPTIONS` per (port, options) of `listens`,
    with the certificate and key `cert` (a name made by pki.server)."""
    crt, key = pki.path(cert + ".crt"), pki.path(cert + ".key")
    overrides = {"tls-certificate": '"%s"' % crt, "tls-key": '"%s"' % key}
    overrides.update(conf or {})
    suite.write_config(overrides)
    with open(suite.conf_path, "a") as f:
        for port, opts in listens:
            f.write("listen           on 127.0.0.1 port %d %s\n" % (port, opts))


class Loopback:
    """smtplib classes that connect to 127.0.0.1 but check the certificate
    against the host name given (mx.example.test)."""

    class SMTP(smtplib.SMTP):
        def _get_socket(self, host, port, timeout):
            return socket.create_connection(("127.0.0.1", port), timeout)

    class SMTP_SSL(smtplib.SMTP_SSL):
        def _get_socket(self, host, port, timeout):
            sock = socket.create_connection(("127.0.0.1", port), timeout)
            return self.context.wrap_socket(sock, server_hostname=host)


def starttls_raw(c, pki):
    """Switch a RawSMTP connection to TLS after its STARTTLS got 220."""
    assert c.buf == b"", "plaintext after the 220 to STARTTLS: %r" % c.buf
    c.sock = pki.context().wrap_socket(c.sock, server_hostname=HOSTNAME)
    return c.sock


def s_client(suite, args, stdin="QUIT\r\n", timeout=30):
    """openssl s_client with `args`, sending `stdin` and reading until the
    server closes (-ign_eof; -nocommands, or QUIT's Q would quit at once):
    (exit status, its whole output)."""
    r = subprocess.run(["openssl", "s_client", "-ign_eof", "-nocommands"] + args, cwd=suite.dir, input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout


def log_wait(suite, pattern, timeout=5):
    """Wait for a log line matching the regular expression; return the match."""
    rx = re.compile(pattern, re.M)
    return wait_for(lambda: rx.search(suite.log_text()), timeout, "log line /%s/" % pattern)


def queued_id(text):
    if isinstance(text, bytes):
        text = text.decode()
    m = re.search(r"queued as ([0-9a-f]{20})", text)
    assert m, "no queue id in %r" % text
    return m.group(1)


# ---- STARTTLS ------------------------------------------------------------------

@options(start=False)
def test_swaks_starttls_delivers_with_esmtps(suite):
    pki = PKI(suite)
    pki.server("mx")
    tport = free_port()
    tls_config(suite, pki, [(tport, "tls")])
    suite.start()
    if shutil.which("swaks") is None:
        raise Skip("swaks is not installed (scripts/install-deps)")
    r = suite.run(["swaks", "--server", "127.0.0.1", "--port", str(tport), "--tls",
                   "--tls-verify", "--tls-ca-path", pki.ca_crt, "--tls-sni", HOSTNAME,
                   "--helo", "client.example.net", "--from", "a@sender.example.net",
                   "--to", "bob@" + DOMAIN, "--header", "Subject: swaks over TLS",
                   "--body", "swaks body"], timeout=60)
    out = r.stdout + r.stderr
    if r.returncode != 0 and "verif" in out.lower():
        # An older swaks checks the name against --server: verify with
        # s_client and Python instead, and deliver without --tls-verify.
        suite.note("swaks could not verify the certificate by name; without --tls-verify")
        r = suite.run(["swaks", "--server", "127.0.0.1", "--port", str(tport), "--tls",
                       "--helo", "client.example.net", "--from", "a@sender.example.net",
                       "--to", "bob@" + DOMAIN, "--header", "Subject: swaks over TLS",
                       "--body", "swaks body"], timeout=60)
        out = r.stdout + r.stderr
    assert r.returncode == 0, "swaks --tls failed (exit %d): %s" % (r.returncode, out[-2000:])
    assert "STARTTLS" in out and "220 2.0.0 Ready to start TLS" in out, out[-2000:]
    assert re.search(r"TLS started", out), "swaks did not start TLS: %s" % out[-2000:]
    assert "221 2.0.0" in out, "no 221 after QUIT over TLS: %s" % out[-1000:]
    m = suite.wait_drop(queued_id(out))
    assert m.receivers == ["bob@" + DOMAIN], m.receivers
    assert b" with ESMTPS id " in m.received, "Received: lacks ESMTPS: %r" % m.received
    assert re.search(rb"\(version=TLSv1\.[23] cipher=[A-Z0-9_-]+ bits=\d+\)", m.received), \
        "Received: lacks the TLS version and cipher: %r" % m.received
    assert b"swaks body" in m.content
    # The log: the switch, and the disconnect line say the version and cipher.
    log_wait(suite, r"status=starttls tls=TLSv1\.[23] cipher=\S+")
    log_wait(suite, r"status=disconnect messages=1 bytes=\d+ tls=TLSv1\.[23] cipher=\S+")


@options(start=False)
def test_starttls_offered_once_and_session_reset(suite):
    pki = PKI(suite)
    pki.server("mx")
    tport = free_port()
    tls_config(suite, pki, [(tport, "tls")])
    suite.start()
    # The plain listener does not offer STARTTLS and refuses it.
    with suite.raw() as c:
        code, text = c.cmd("EHLO client.example.net")
        assert code == 250 and "STARTTLS" not in text, "plain listener offers STARTTLS: %r" % text
        code, text = c.cmd("STARTTLS")
        assert code == 502, "STARTTLS on a plain listener: %r" % text
        c.expect("QUIT", 221)
    # The tls listener: offered before TLS only; a second STARTTLS is refused.
    s = Loopback.SMTP(HOSTNAME, tport, local_hostname="client.example.net", timeout=20)
    try:
        s.ehlo()
        assert s.has_extn("starttls"), "EHLO lacks STARTTLS: %r" % s.ehlo_resp
        code, text = s.starttls(context=pki.context())
        assert code == 220 and b"2.0.0" in text, "STARTTLS: %d %r" % (code, text)
        version = s.sock.version()
        assert version in ("TLSv1.2", "TLSv1.3"), version
        # RFC 3207 4.2: the server forgot the EHLO: MAIL is out of sequence.
        code, text = s.docmd("MAIL FROM:<a@sender.example.net>")
        assert code == 503, "MAIL right after TLS (EHLO forgotten?): %d %r" % (code, text)
        s.ehlo()
        assert not s.has_extn("starttls"), "STARTTLS offered again over TLS: %r" % s.ehlo_resp
        code, text = s.docmd("STARTTLS")
        assert code == 503, "a second STARTTLS: %d %r" % (code, text)
        # A message of about 1.5 MB over TLS: the filter's flow control.
        big = b"Subject: big over TLS\r\n\r\n" + b"".join(
            b"%06d " % i + b"b" * 90 + b"\r\n" for i in range(15000))
        qid = suite.send("big@sender.example.net", ["big@" + DOMAIN], big, smtp=s)
        qid2 = suite.send("small@sender.example.net", ["small@" + DOMAIN], MSG, smtp=s)
        code, text = s.docmd("QUIT")
        assert code == 221, "QUIT over TLS: %d %r" % (code, text)
    finally:
        s.close()
    m = suite.wait_drop(qid)
    assert m.content == big, "the big message changed on its way (%d octets, want %d)" % (
        len(m.content), len(big))
    assert b"ESMTPS" in m.received and ("version=" + version).encode() in m.received, \
        m.received
    assert suite.wait_drop(qid2).content == MSG


@options(start=False)
def test_openssl_s_client_sees_the_certificate(suite):
    pki = PKI(suite)
    pki.server("mx")
    tport = free_port()
    tls_config(suite, pki, [(tport, "tls")])
    suite.start()
    rc, out = s_client(suite, ["-starttls", "smtp", "-connect", "127.0.0.1:%d" % tport,
                               "-CAfile", pki.ca_crt, "-verify_hostname", HOSTNAME,
                               "-verify_return_error", "-servername", HOSTNAME])
    assert rc == 0, "s_client -starttls smtp failed (%d): %s" % (rc, out[-2000:])
    assert re.search(r"subject=.*CN ?= ?mx\.example\.test", out), "certificate subject: %s" % out
    assert "Verify return code: 0 (ok)" in out, out[-2000:]
    m = re.search(r"New, (TLSv1\.[23]|SSLv3|TLSv1|TLSv1\.1), Cipher is (\S+)", out)
    assert m and m.group(1) in ("TLSv1.2", "TLSv1.3"), "protocol: %s" % out[-2000:]
    assert "221 2.0.0" in out, "QUIT over TLS: %s" % out[-1000:]
    # TLS 1.2 is accepted too.
    rc, out = s_client(suite, ["-starttls", "smtp", "-connect", "127.0.0.1:%d" % tport,
                               "-tls1_2", "-CAfile", pki.ca_crt])
    assert rc == 0 and re.search(r"New, TLSv1\.2, Cipher is ", out), \
        "TLS 1.2 refused (%d): %s" % (rc, out[-2000:])


@options(start=False)
def test_tls_1_1_and_1_0_refused(suite):
    pki = PKI(suite)
    pki.server("mx")
    tport, sport = free_port(), free_port()
    tls_config(suite, pki, [(tport, "tls"), (sport, "smtps")])
    suite.start()
    for version in ("-tls1_1", "-tls1"):
        for where in (["-starttls", "smtp", "-connect", "127.0.0.1:%d" % tport],
                      ["-connect", "127.0.0.1:%d" % sport]):
            # SECLEVEL=0: the client may then offer the old version at all (at
            # its default level OpenSSL 3 may refuse to), so a failure is the
            # server's refusal, which its log must then say.
            before = suite.log_text().count("status=tls-failed")
            rc, out = s_client(suite, where + [version, "-cipher", "DEFAULT@SECLEVEL=0"])
            assert rc != 0 and not re.search(r"New, TLSv1(\.1)?, Cipher is (?!\(NONE\))", out), \
                "%s accepted on %s: %s" % (version, where, out[-2000:])
            wait_for(lambda: suite.log_text().count("status=tls-failed") > before, 5,
                     "the server to log its refusal of %s" % version)
            assert re.search(r'status=tls-failed reason="[^"]*(unsupported protocol|'
                             r'no protocols available|version too low)', suite.log_text()), \
                "refusal of %s without OpenSSL's reason: %s" % (
                    version, suite.log_tail(5))
    # And without lowering the client's level: refused all the same.  Say
    # which side stopped it (the server logs a refusal it saw).
    before = suite.log_text().count("status=tls-failed")
    rc, out = s_client(suite, ["-connect", "127.0.0.1:%d" % sport, "-tls1_1"])
    assert rc != 0, "TLS 1.1 at the client's default level accepted: %s" % out[-2000:]
    try:
        wait_for(lambda: suite.log_text().count("status=tls-failed") > before, 2, "a refusal")
        seen = "the client offered TLS 1.1 and the server refused it"
    except AssertionError:
        seen = "the client did not offer it: %s" % (out.strip().splitlines() or ["?"])[-1]
    suite.note_verbose("openssl s_client -tls1_1 at its default security level: " + seen)


# ---- implicit TLS ------------------------------------------------------------------

@options(start=False)
def test_smtps_implicit_tls(suite):
    pki = PKI(suite)
    pki.server("mx")
    sport = free_port()
    tls_config(suite, pki, [(sport, "smtps")])
    suite.start()
    rc, out = s_client(suite, ["-connect", "127.0.0.1:%d" % sport, "-CAfile", pki.ca_crt,
                               "-verify_hostname", HOSTNAME, "-verify_return_error",
                               "-servername", HOSTNAME])
    assert rc == 0, "s_client on the smtps port (%d): %s" % (rc, out[-2000:])
    assert "Verify return code: 0 (ok)" in out and re.search(r"New, TLSv1\.[23], ", out), out
    assert "220 %s ESMTP" % HOSTNAME in out, "no greeting after the handshake: %s" % out[-1000:]
    assert "221 2.0.0" in out, out[-1000:]
    # Python: smtplib.SMTP_SSL delivers, certificate and name checked.
    s = Loopback.SMTP_SSL(HOSTNAME, sport, local_hostname="client.example.net",
                          context=pki.context(), timeout=20)
    try:
        code, text = s.ehlo()
        assert code == 250 and b"STARTTLS" not in text, "EHLO on smtps: %r" % text
        qid = suite.send("a@sender.example.net", ["smtps@" + DOMAIN], MSG, smtp=s)
        s.quit()
    finally:
        s.close()
    m = suite.wait_drop(qid)
    assert b"ESMTPS" in m.received and b"version=TLSv1." in m.received, m.received
    log_wait(suite, r"status=connect tls=TLSv1\.[23] cipher=\S+")
    # A client that speaks plaintext to the smtps port: the handshake fails,
    # is logged with OpenSSL's reason, and the session ends.
    with socket.create_connection(("127.0.0.1", sport), timeout=10) as sock:
        sock.sendall(b"EHLO client.example.net\r\n")
        sock.settimeout(10)
        data = b""
        try:
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        assert b"220" not in data and b"250" not in data, "plaintext answered: %r" % data
    log_wait(suite, r'status=tls-failed reason="[^"]+"')


# ---- require-tls -------------------------------------------------------------------

@options(start=False)
def test_require_tls(suite):
    pki = PKI(suite)
    pki.server("mx")
    rport = free_port()
    tls_config(suite, pki, [(rport, "require-tls")])
    suite.start()
    with suite.raw() as plain:     # the plain listener is not affected
        plain.expect("EHLO client.example.net", 250)
        plain.expect("MAIL FROM:<a@sender.example.net>", 250)
    with RawSMTP(rport) as c:
        code, text = c.cmd("EHLO client.example.net")
        assert code == 250 and "STARTTLS" in text, "require-tls implies tls: %r" % text
        for cmd in ("MAIL FROM:<a@sender.example.net>", "RCPT TO:<bob@%s>" % DOMAIN,
                    "DATA", "VRFY bob", "HELP"):
            code, text = c.cmd(cmd)
            assert code == 530 and "5.7.0" in text and "STARTTLS" in text, \
                "%s before TLS: %r" % (cmd, text)
        for cmd in ("NOOP", "RSET", "HELO client.example.net"):
            c.expect(cmd, 250, "%s before TLS" % cmd)
        c.expect("STARTTLS", 220)
        starttls_raw(c, pki)
        code, text = c.cmd("MAIL FROM:<a@sender.example.net>")
        assert code == 503, "MAIL right after TLS must be out of sequence (no EHLO): %r" % text
        c.expect("EHLO client.example.net", 250)
        c.expect("MAIL FROM:<a@sender.example.net>", 250, "MAIL after STARTTLS")
        c.expect("RCPT TO:<bob@%s>" % DOMAIN, 250)
        c.expect("DATA", 354)
        c.send(MSG + b".\r\n")
        code, text = c.reply()
        assert code == 250, "end of data over TLS: %r" % text
        qid = queued_id(text)
        c.expect("QUIT", 221)
    assert b"ESMTPS" in suite.wait_drop(qid).received


# ---- STARTTLS command injection ------------------------------------------------------

@options(start=False)
def test_starttls_injection_is_discarded(suite):
    pki = PKI(suite)
    pki.server("mx")
    tport = free_port()
    tls_config(suite, pki, [(tport, "tls")])
    suite.start()
    for injected in (b"RSET\r\n", b"RSET\r\nMAIL FROM:<evil@evil.example>\r\n"):
        with RawSMTP(tport) as c:
            c.expect("EHLO client.example.net", 250)
            # One write: the command and what an attacker appended in plaintext.
            c.send(b"STARTTLS\r\n" + injected)
            code, text = c.reply()
            assert code == 220, "STARTTLS: %r" % text
            starttls_raw(c, pki)
            # The first reply over TLS must be to our own command.
            code, text = c.cmd("EHLO client.example.net")
            assert code == 250 and text.startswith("250-%s" % HOSTNAME), \
                "first reply after TLS is not EHLO's (injected %r answered?): %r" % (
                    injected, text)
            code, text = c.cmd("MAIL FROM:<good@sender.example.net>")
            assert code == 250, "MAIL after TLS (an injected MAIL took effect?): %r" % text
            c.expect("QUIT", 221)
            assert c.buf == b"", "replies beyond QUIT's: %r" % c.buf
    log_wait(suite, r'status=discarded bytes=6 reason="plaintext pipelined after STARTTLS"')


# ---- certificate and key: checked by mailrootd, never read by smtpd ---------------

@options(start=False)
def test_bad_certificate_or_key_refuses_start(suite):
    pki = PKI(suite)
    pki.server("mx")
    pki.server("other", cn="other.example.test")
    tport = free_port()
    cases = [
        # (certificate, key, what the error must say)
        ("mx.crt", "other.key", [r"other\.key", r"does not match the certificate",
                                 r"key values mismatch"]),
        ("mx.crt", "missing.key", [r"tls-key .*missing\.key: No such file or directory"]),
        ("mx.key", "mx.key", [r"mx\.key: no PEM certificate"]),
        ("mx.crt", "mx.crt", [r"mx\.crt: no unencrypted PEM private key"]),
    ]
    for crt, key, want in cases:
        tls_config(suite, pki, [(tport, "tls")])
        with open(suite.conf_path) as f:
            text = f.read()
        text = text.replace(pki.path("mx.crt"), pki.path(crt)).replace(
            pki.path("mx.key"), pki.path(key))
        with open(suite.conf_path, "w") as f:
            f.write(text)
        r = suite.smtpctl("start")
        assert r.returncode == 1, "start with %s/%s must fail: %r" % (crt, key, r)
        for w in want:
            assert re.search(w, r.stderr), "%s/%s: the error must match /%s/: %r" % (
                crt, key, w, r.stderr)
        assert suite.instance_pids() == [], "processes left: %r" % suite.instance_pids()
        # mailrootd -n checks the files too.
        n = suite.run([suite.binary("mailrootd"), "-n", "-f", suite.conf_path])
        assert n.returncode == 1 and re.search(want[0], n.stderr), "-n: %r" % n
    # A TLS listener without a certificate: a config error with file:line.
    suite.write_config({})
    with open(suite.conf_path, "a") as f:
        f.write("listen           on 127.0.0.1 port %d smtps\n" % tport)
    nlines = len(open(suite.conf_path).read().splitlines())
    r = suite.smtpctl("start")
    assert r.returncode == 1 and re.search(
        r"mailroot\.conf:%d: listen on 127\.0\.0\.1 port %d: smtps needs tls-certificate"
        % (nlines, tport), r.stderr), "%r" % r
    # And with the right pair it starts.
    tls_config(suite, pki, [(tport, "tls")])
    suite.start()


@options(start=False)
def test_smtpd_never_holds_the_key_file(suite):
    pki = PKI(suite)
    crt, key = pki.server("mx")
    tport = free_port()
    tls_config(suite, pki, [(tport, "tls")])
    suite.start()
    pid = suite.daemon_pids()["smtpd"]
    # Serve one TLS session so that everything TLS is set up.
    rc, out = s_client(suite, ["-starttls", "smtp", "-connect", "127.0.0.1:%d" % tport])
    assert rc == 0, out[-1000:]
    links = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            links.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    assert not [l for l in links if l in (crt, key) or "mailroot-tls" in l], \
        "smtpd holds the certificate or key: %r" % links
    if suite.is_root:
        st = os.stat(key)
        assert st.st_uid == 0 and st.st_mode & 0o077 == 0, "key should be root's, 0600"
        assert os.readlink("/proc/%d/root" % pid) == suite.path("empty"), \
            "smtpd is not chrooted to the empty directory"


# ---- reload ----------------------------------------------------------------------------

def peer_der(port, pki):
    ctx = pki.context()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with ctx.wrap_socket(sock, server_hostname=HOSTNAME) as tls:
            return tls.getpeercert(binary_form=True)


@options(start=False)
def test_reload_serves_a_new_certificate(suite):
    pki = PKI(suite)
    pki.server("mx")
    pki.server("mx2", org="Mailroot e2e renewed")
    tport, sport = free_port(), free_port()
    tls_config(suite, pki, [(tport, "tls"), (sport, "smtps")])
    suite.start()
    assert peer_der(sport, pki) == der(pki.path("mx.crt")), "not the first certificate"
    # A STARTTLS session opened before the reload goes on after it.
    old = Loopback.SMTP(HOSTNAME, tport, local_hostname="client.example.net", timeout=20)
    old.starttls(context=pki.context())
    old.ehlo()
    old_der = old.sock.getpeercert(binary_form=True)
    # A renewed certificate under a new name: the reload takes it.
    tls_config(suite, pki, [(tport, "tls"), (sport, "smtps")], cert="mx2")
    r = suite.smtpctl("reload")
    assert r.returncode == 0, "reload: %r" % r
    want = der(pki.path("mx2.crt"))
    wait_for(lambda: peer_der(sport, pki) == want, 5, "the new certificate on the smtps port")
    s = Loopback.SMTP(HOSTNAME, tport, local_hostname="client.example.net", timeout=20)
    s.starttls(context=pki.context())
    assert s.sock.getpeercert(binary_form=True) == want, "STARTTLS serves the old certificate"
    s.quit()
    assert old_der == der(pki.path("mx.crt"))
    qid = suite.send("a@sender.example.net", ["old@" + DOMAIN], MSG, smtp=old)
    old.quit()
    suite.wait_drop(qid)
    # The same file names with new content: a reload reads them again.
    shutil.copy(pki.path("mx.crt"), pki.path("mx2.crt"))
    shutil.copy(pki.path("mx.key"), pki.path("mx2.key"))
    r = suite.smtpctl("reload")
    assert r.returncode == 0, "reload: %r" % r
    want = der(pki.path("mx.crt"))
    wait_for(lambda: peer_der(sport, pki) == want, 5, "the certificate rewritten in place")
    # A reload whose key does not match is refused; the running pair stays.
    pki.server("mx3")
    shutil.copy(pki.path("mx3.key"), pki.path("mx2.key"))
    r = suite.smtpctl("reload")
    assert r.returncode == 1 and "does not match" in r.stderr, "bad reload: %r" % r
    time.sleep(0.3)
    assert peer_der(sport, pki) == want, "a refused reload changed the certificate"
    st = suite.status()
    assert st.rc == 0 and "running" in st.out, st


# ---- pipelining and timeouts over TLS ----------------------------------------------

@options(start=False)
def test_pipelining_and_timeouts_over_tls(suite):
    pki = PKI(suite)
    pki.server("mx")
    tport, sport = free_port(), free_port()
    tls_config(suite, pki, [(tport, "tls"), (sport, "smtps")], conf={"idle-timeout": "2s"})
    suite.start()
    with RawSMTP(tport) as c:
        c.expect("EHLO client.example.net", 250)
        c.expect("STARTTLS", 220)
        starttls_raw(c, pki)
        c.expect("EHLO client.example.net", 250)
        # One TLS write with a whole transaction: one reply each, in order.
        c.send("MAIL FROM:<p@sender.example.net>\r\nRCPT TO:<p1@%s>\r\n"
               "RCPT TO:<p2@elsewhere.example.org>\r\nRCPT TO:<p3@%s>\r\nDATA\r\n" % (
                   DOMAIN, DOMAIN))
        got = [c.reply()[0] for _ in range(5)]
        assert got == [250, 250, 550, 250, 354], "pipelined replies over TLS %r" % got
        c.send(b"Subject: pipelined over TLS\r\n\r\np\r\n.\r\nNOOP\r\nQUIT\r\n")
        code, text = c.reply()
        assert code == 250, "pipelined end of data over TLS: %r" % text
        qid = queued_id(text)
        assert [c.reply()[0], c.reply()[0]] == [250, 221], "NOOP and QUIT after the data"
        assert c.closed_by_peer(5), "not closed after QUIT over TLS"
    assert suite.wait_drop(qid).receivers == ["p1@" + DOMAIN, "p3@" + DOMAIN]
    # An idle TLS session hears 421 over TLS, then the connection closes.
    with RawSMTP(tport) as c:
        c.expect("EHLO client.example.net", 250)
        c.expect("STARTTLS", 220)
        starttls_raw(c, pki)
        t0 = time.monotonic()
        c.sock.settimeout(15)
        code, text = c.reply()
        assert code == 421 and "4.4.2" in text, "idle TLS session: %r" % text
        assert 1.5 <= time.monotonic() - t0 <= 10, "421 after %.1fs" % (time.monotonic() - t0)
        assert c.closed_by_peer(5), "not closed after the 421"
    # A client that never starts its handshake on the smtps port is dropped.
    with socket.create_connection(("127.0.0.1", sport), timeout=15) as sock:
        t0 = time.monotonic()
        try:
            data = sock.recv(4096)
        except ConnectionResetError:
            data = b""
        assert data == b"", "the smtps port said something before the handshake: %r" % data
        assert time.monotonic() - t0 <= 10, "not dropped after the idle timeout"
    log_wait(suite, r'status=tls-failed reason="timeout"')


# ---- a restarted smtpd is given the certificate again ------------------------------

@options(start=False)
def test_restarted_smtpd_serves_tls_again(suite):
    pki = PKI(suite)
    pki.server("mx")
    sport = free_port()
    tls_config(suite, pki, [(sport, "smtps")])
    suite.start()
    want = der(pki.path("mx.crt"))
    assert peer_der(sport, pki) == want
    old = suite.daemon_pids()["smtpd"]
    os.kill(old, 9)
    suite.wait_restarted("smtpd", old)

    def served():
        try:
            return peer_der(sport, pki) == want
        except (OSError, ssl.SSLError):
            return False
    wait_for(served, 10, "the restarted smtpd to serve the certificate")
    # Mail goes through the new smtpd over TLS.
    s = Loopback.SMTP_SSL(HOSTNAME, sport, local_hostname="client.example.net",
                          context=pki.context(), timeout=20)
    try:
        s.ehlo()
        qid = suite.send("a@sender.example.net", ["restart@" + DOMAIN], MSG, smtp=s)
        s.quit()
    finally:
        s.close()
    assert b"ESMTPS" in suite.wait_drop(qid).received
