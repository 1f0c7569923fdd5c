"""AUTH over TLS: offered only once STARTTLS is done (or on smtps), then
authenticated submission works and Received: says ESMTPSA."""
from mailroot_suite import options, DOMAIN
from test_auth import USERS, configure, plain, queued_id, swaks
from test_tls import PKI, starttls_raw


@options(start=False)
def test_auth_offered_only_after_starttls(suite):
    pki = PKI(suite)
    crt, key = pki.server("mx")
    configure(suite, opts="tls require-auth",
              conf={"tls-certificate": '"%s"' % crt, "tls-key": '"%s"' % key})
    user, (_, password) = next(iter(USERS.items()))
    with suite.raw() as c:
        text = c.expect("EHLO client.example.net", 250)
        assert "STARTTLS" in text and "AUTH" not in text, text
        c.expect("AUTH PLAIN " + plain(user, password), 538)
        c.expect("STARTTLS", 220)
        starttls_raw(c, pki)
        text = c.expect("EHLO client.example.net", 250)
        assert "AUTH PLAIN LOGIN" in text and "STARTTLS" not in text, text
        c.expect("MAIL FROM:<a@example.net>", 530)
        c.expect("AUTH PLAIN " + plain(user, password), 235)
        c.expect("MAIL FROM:<%s@%s>" % (user, DOMAIN), 250)
        c.expect("RCPT TO:<bob@%s>" % DOMAIN, 250)
        c.expect("DATA", 354)
        c.send(b"Subject: tls+auth\r\n\r\nover TLS, authenticated\r\n.\r\n")
        code, text = c.reply()
        assert code == 250, text
    qid = queued_id(text)
    m = suite.wait_drop(qid)
    assert b"with ESMTPSA id" in m.raw, m.raw[:400]


@options(start=False)
def test_swaks_tls_auth_delivers(suite):
    pki = PKI(suite)
    crt, key = pki.server("mx")
    configure(suite, opts="tls auth",
              conf={"tls-certificate": '"%s"' % crt, "tls-key": '"%s"' % key})
    user, (_, password) = next(iter(USERS.items()))
    r = swaks(suite, "--tls", "--auth", "LOGIN", "--auth-user", user, "--auth-password",
              password, "--from", "%s@%s" % (user, DOMAIN), "--to", "bob@" + DOMAIN)
    assert r.returncode == 0, r.stdout
    qid = queued_id(r.stdout)
    m = suite.wait_drop(qid)
    assert b"with ESMTPSA id" in m.raw, m.raw[:400]


@options(start=False)
def test_starttls_forgets_an_earlier_auth(suite):
    pki = PKI(suite)
    crt, key = pki.server("mx")
    configure(suite, opts="tls require-auth auth-plaintext",
              conf={"tls-certificate": '"%s"' % crt, "tls-key": '"%s"' % key})
    user, (_, password) = next(iter(USERS.items()))
    with suite.raw() as c:
        c.expect("EHLO client.example.net", 250)
        c.expect("AUTH PLAIN " + plain(user, password), 235)
        c.expect("STARTTLS", 220)
        starttls_raw(c, pki)
        c.expect("EHLO client.example.net", 250)
        # RFC 3207 4.2: the client must authenticate again over TLS.
        c.expect("MAIL FROM:<%s@%s>" % (user, DOMAIN), 530)
        c.expect("AUTH PLAIN " + plain(user, password), 235)
        c.expect("MAIL FROM:<%s@%s>" % (user, DOMAIN), 250)
