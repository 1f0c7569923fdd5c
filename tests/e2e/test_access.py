"""Connection control (access rules by network, name and regex), relay
restrictions and reverse DNS (FEATURES A4, A5, D10).

Clients connect from other loopback addresses (127.0.0.2 ... are local on
Linux); a dnsmasq started by each DNS test gives them names:

    127.0.0.2  PTR good.client.test,   A 127.0.0.2    forward-confirmed
    127.0.0.3  PTR liar.client.test,   A 127.0.0.99   PTR not confirmed
    127.0.0.4  no PTR at all
    127.0.0.5  PTR mx.other.test,      A 127.0.0.5    confirmed, other domain
    127.0.0.6  PTR bad42.client.test,  A 127.0.0.6    confirmed
    127.0.0.7  PTR good2.client.test,  A 127.0.0.7    confirmed (written
                                                      GOOD2.Client.Test)
"""
import itertools
import os
import re
import time

from test_auth import USERS, plain, write_table
from mailroot_suite import (ALIAS, DOMAIN, LocalDNS, RawSMTPFrom, SilentDNS, Skip,
                            append_config, ipv6_loopback, options, smtp_from, wait_for)

MSG = b"Subject: access\r\n\r\naccess test\r\n"

DNS_PTR = {
    "127.0.0.3": "liar.client.test",
}
DNS_HOSTS = {
    "good.client.test": ["127.0.0.2"],
    "liar.client.test": ["127.0.0.99"],
    "mx.other.test": ["127.0.0.5"],
    "bad42.client.test": ["127.0.0.6"],
    "GOOD2.Client.Test": ["127.0.0.7"],
}


def local_dns(suite, extra_hosts=None):
    hosts = dict(DNS_HOSTS)
    hosts.update(extra_hosts or {})
    return LocalDNS(suite, ptr=DNS_PTR, hosts=hosts)


def start_with(suite, lines, overrides=None):
    """Write the config with extra (repeatable) statements and start."""
    suite.write_config(overrides)
    append_config(suite, lines)
    suite.start()


def greeting(suite, source, timeout=10):
    """Connect from `source`: (code, text, seconds until the greeting)."""
    t0 = time.monotonic()
    c = RawSMTPFrom(suite.port, source, timeout=timeout)
    elapsed = time.monotonic() - t0
    code, text = c.banner
    c.close()
    return code, text, elapsed


def assert_denied(suite, source):
    """A denied client: 554 5.7.1 naming its address; then only QUIT (RFC
    5321 3.1: other commands get 503); QUIT closes."""
    with RawSMTPFrom(suite.port, source) as c:
        code, text = c.banner
        assert code == 554 and "5.7.1" in text and "<%s>" % source in text \
            and "access denied" in text, "client %s: expected 554 5.7.1, got %r" % (source, text)
        code, text = c.cmd("EHLO client.example.net")
        assert code == 503, "EHLO after a 554 greeting: %r" % text
        code, text = c.cmd("MAIL FROM:<a@example.net>")
        assert code == 503, "MAIL after a 554 greeting: %r" % text
        c.expect("QUIT", 221)
        assert c.closed_by_peer(5), "connection not closed after QUIT"


def assert_allowed(suite, source):
    code, text, _ = greeting(suite, source)
    assert code == 220, "client %s: expected 220, got %r" % (source, text)


# ---- access by network ---------------------------------------------------------

@options(start=False)
def test_access_deny_by_address_and_prefix(suite):
    start_with(suite, ["access deny 127.0.0.2",
                       "access deny 127.0.3.0/24",
                       "access allow 127.0.4.0/24"])
    assert_denied(suite, "127.0.0.2")
    assert_denied(suite, "127.0.3.9")
    assert_allowed(suite, "127.0.0.1")
    assert_allowed(suite, "127.0.4.4")
    assert_allowed(suite, "127.0.0.3")      # the default is allow
    log = suite.log_text()
    assert re.search(r"client=127\.0\.0\.2 name=unknown status=refused reason=access "
                     r"rule=access:\d+", log), "refusal not logged:\n" + log
    assert "client=127.0.3.9 name=unknown status=refused reason=access" in log
    # Network rules alone need no DNS: no lookup is made.
    assert " dns=" not in log, "a lookup was made without name rules or reverse-dns"
    # Mail from an allowed client still flows.
    s = smtp_from(suite, "127.0.4.4")
    s.ehlo()
    qid = suite.send("a@example.net", ["bob@" + DOMAIN], MSG, smtp=s)
    s.quit()
    suite.wait_drop(qid)


@options(start=False, timeout=60)
def test_access_default_deny_only_the_list(suite):
    start_with(suite, ["access allow 127.0.0.1",
                       "access allow 127.0.5.0/24",
                       "access deny 127.0.5.5"],         # after the allow: never reached
               {"access-default": "deny"})
    assert_allowed(suite, "127.0.0.1")
    assert_allowed(suite, "127.0.5.7")
    assert_allowed(suite, "127.0.5.5")       # first match wins
    assert_denied(suite, "127.0.0.2")
    assert_denied(suite, "127.0.6.1")
    assert "rule=access-default" in suite.log_text()
    # A refused client that keeps talking is cut off after a few commands...
    with RawSMTPFrom(suite.port, "127.0.0.2") as c:
        assert c.banner[0] == 554, c.banner
        codes = [c.cmd("NOOP")[0] for _ in range(4)]
        assert codes == [503] * 4, "commands after 554: %r" % codes
        code, text = c.cmd("NOOP")
        assert code == 421, "the fifth command after 554: %r" % text
        assert c.closed_by_peer(5), "not closed after 421"
    # ... and one that says nothing is closed after a short time.
    with RawSMTPFrom(suite.port, "127.0.0.2") as c:
        assert c.banner[0] == 554, c.banner
        t0 = time.monotonic()
        assert c.closed_by_peer(20), "a silent refused client was not closed within 20 s"
        assert time.monotonic() - t0 < 15, "closed only after %.1fs" % (time.monotonic() - t0)


@options(start=False)
def test_access_ipv6(suite):
    if not ipv6_loopback():
        raise Skip("no IPv6 loopback (::1 cannot be bound here)")
    start_with(suite, ["listen on ::1 port %d" % suite.port,
                       "access deny ::1/128"])
    with RawSMTPFrom(suite.port, "::1", host="::1") as c:
        code, text = c.banner
        assert code == 554 and "<::1>" in text, "IPv6 client: %r" % text
        c.expect("QUIT", 221)
    assert_allowed(suite, "127.0.0.1")


# ---- access by name (forward-confirmed reverse DNS) ------------------------------

@options(start=False)
def test_access_by_name_wildcard(suite):
    with local_dns(suite) as dns:
        start_with(suite, ["dns-server " + dns.conf_value(),
                           "access allow 127.0.0.1",
                           "access allow name *.client.test"],
                   {"access-default": "deny"})
        assert_allowed(suite, "127.0.0.2")       # good.client.test, confirmed
        assert_allowed(suite, "127.0.0.7")       # GOOD2.Client.Test: case does not matter
        assert_denied(suite, "127.0.0.3")        # liar.client.test: PTR only, not confirmed
        assert_denied(suite, "127.0.0.4")        # no PTR
        assert_denied(suite, "127.0.0.5")        # mx.other.test: confirmed, other domain
        log = suite.log_text()
        assert "client=127.0.0.2 dns=confirmed name=good.client.test" in log, log
        assert "client=127.0.0.3 dns=unconfirmed name=unknown ptr=liar.client.test" in log, log
        assert "client=127.0.0.4 dns=no-ptr name=unknown" in log, log
        assert "client=127.0.0.5 name=mx.other.test status=refused reason=access " \
            "rule=access-default" in log, log
        # 127.0.0.1 matched a network rule before any name rule: no lookup.
        assert "client=127.0.0.1 dns=" not in log, "needless lookup for 127.0.0.1"


@options(start=False)
def test_access_by_exact_name_first_match_wins(suite):
    with local_dns(suite) as dns:
        start_with(suite, ["dns-server " + dns.conf_value(),
                           "access deny name good.client.test",
                           "access allow name *.client.test",
                           "access deny name *"])
        assert_denied(suite, "127.0.0.2")        # the exact rule comes first
        assert_allowed(suite, "127.0.0.6")       # bad42.client.test: the wildcard
        assert_denied(suite, "127.0.0.5")        # any other confirmed name
        assert_allowed(suite, "127.0.0.4")       # no name: "*" needs one; default allow
        assert_allowed(suite, "127.0.0.3")       # an unconfirmed name is no name


@options(start=False)
def test_access_by_regex(suite):
    with local_dns(suite) as dns:
        start_with(suite, ["dns-server " + dns.conf_value(),
                           "access allow 127.0.0.1",
                           r'access deny regex "^bad[0-9]+\."',
                           r'access allow regex "\.client\.test$"'],
                   {"access-default": "deny"})
        assert_denied(suite, "127.0.0.6")        # bad42.client.test
        assert_allowed(suite, "127.0.0.2")       # good.client.test
        assert_allowed(suite, "127.0.0.7")       # GOOD2.Client.Test: caseless
        assert_denied(suite, "127.0.0.3")        # liar.client.test is not confirmed
        assert_denied(suite, "127.0.0.5")        # mx.other.test


@options(start=False)
def test_bad_regex_is_a_config_error(suite):
    suite.write_config()
    append_config(suite, ['access deny regex "a(b"'])
    r = suite.smtpctl("start")
    assert r.returncode != 0, "start with a bad regex must fail: %r" % (r,)
    m = re.search(r"mailroot\.conf:(\d+): access: bad regex \"a\(b\": (.*) at offset (\d+)",
                  r.stderr)
    assert m, "the error must name the file, line, PCRE2's message and offset: %r" % r.stderr
    with open(suite.conf_path) as f:
        lines = f.read().splitlines()
    assert lines[int(m.group(1)) - 1].startswith("access deny regex"), lines
    assert "parenthes" in m.group(2), "PCRE2's message: %r" % m.group(2)
    assert suite.instance_pids() == [], "processes left: %r" % suite.instance_pids()


# ---- reverse DNS in Received: ------------------------------------------------------

def send_from(suite, source, rcpt="bob@" + DOMAIN):
    s = smtp_from(suite, source)
    try:
        s.ehlo()
        return suite.send("a@example.net", [rcpt], MSG, smtp=s)
    finally:
        s.quit()


@options(start=False)
def test_reverse_dns_in_received(suite):
    with local_dns(suite) as dns:
        start_with(suite, ["dns-server " + dns.conf_value()], {"reverse-dns": "yes"})
        cases = [
            ("127.0.0.2", b"from client.example.net (good.client.test [127.0.0.2])"),
            ("127.0.0.7", b"from client.example.net (GOOD2.Client.Test [127.0.0.7])"),
            ("127.0.0.3", b"from client.example.net (unknown [127.0.0.3])"),
            ("127.0.0.4", b"from client.example.net (unknown [127.0.0.4])"),
        ]
        for source, want in cases:
            m = suite.wait_drop(send_from(suite, source))
            # (DNS names are case-insensitive; dnsmasq answers in lower case.)
            assert m.received.lower().startswith(b"received: " + want.lower()), \
                "client %s: Received: %r" % (source, m.received)
        log = suite.log_text()
        assert "client=127.0.0.2 dns=confirmed name=good.client.test" in log, log
        assert "client=127.0.0.4 dns=no-ptr name=unknown" in log, log


@options(start=False)
def test_reverse_dns_many_sessions_at_once(suite):
    """Lookups of many clients run interleaved; each gets its own answer."""
    expect = {"127.0.0.2": "dns=confirmed name=good.client.test",
              "127.0.0.3": "dns=unconfirmed name=unknown ptr=liar.client.test",
              "127.0.0.4": "dns=no-ptr name=unknown",
              "127.0.0.5": "dns=confirmed name=mx.other.test"}
    sources = sorted(expect)
    with local_dns(suite) as dns:
        start_with(suite, ["dns-server " + dns.conf_value()], {"reverse-dns": "yes"})
        conns = [RawSMTPFrom(suite.port, sources[i % len(sources)], greet=False)
                 for i in range(40)]
        try:
            for c in conns:
                code, text = c.reply()
                assert code == 220, text
        finally:
            for c in conns:
                c.close()
        log = suite.log_text()
        found = re.findall(r"client=(127\.0\.0\.\d+) (dns=\S+ name=\S+(?: ptr=\S+)?)", log)
        assert len(found) == 40, "%d lookups logged:\n%s" % (len(found), log)
        wrong = [(a, r) for a, r in found if r != expect[a]]
        assert not wrong, "wrong answers: %r" % wrong


@options(start=False)
def test_reverse_dns_ipv6(suite):
    if not ipv6_loopback():
        raise Skip("no IPv6 loopback (::1 cannot be bound here)")
    with local_dns(suite, {"six.client.test": ["::1"]}) as dns:
        start_with(suite, ["dns-server " + dns.conf_value(),
                           "listen on ::1 port %d" % suite.port,
                           "access allow name six.client.test",
                           "access allow 127.0.0.1"],
                   {"reverse-dns": "yes", "access-default": "deny"})
        with RawSMTPFrom(suite.port, "::1", host="::1") as c:
            assert c.banner[0] == 220, "::1 is six.client.test (AAAA confirmed): %r" % (
                c.banner,)
            c.expect("EHLO client.example.net", 250)
            c.expect("MAIL FROM:<a@example.net>", 250)
            c.expect("RCPT TO:<bob@%s>" % DOMAIN, 250)
            c.expect("DATA", 354)
            text = c.expect(MSG.decode() + ".", 250)
            qid = re.search(r"queued as ([0-9a-f]{20})", text).group(1)
            c.expect("QUIT", 221)
        m = suite.wait_drop(qid)
        assert m.received.startswith(
            b"Received: from client.example.net (six.client.test [IPv6:::1])"), m.received


@options(start=False, timeout=60)
def test_reverse_dns_timeout(suite):
    with SilentDNS() as dns:
        start_with(suite, ["dns-server " + dns.conf_value(),
                           "access deny name *"],       # must not match an unknown name
                   {"reverse-dns": "yes"})
        code, text, elapsed = greeting(suite, "127.0.0.2", timeout=20)
        assert code == 220, "after a DNS timeout: %r" % text
        assert 3 <= elapsed <= 8, "the greeting came after %.1fs (lookup limit 5 s)" % elapsed
        assert "client=127.0.0.2 dns=timeout name=unknown" in suite.log_text()
        # Each session has its own limit: the next one is served in time too.
        t0 = time.monotonic()
        m = suite.wait_drop(send_from(suite, "127.0.0.3"), timeout=20)
        assert time.monotonic() - t0 <= 10, "second session took %.1fs" % (
            time.monotonic() - t0)
        assert b"(unknown [127.0.0.3])" in m.received, m.received
    # With the server gone (ICMP port unreachable), the lookup fails at once.
    code, text, elapsed = greeting(suite, "127.0.0.4", timeout=20)
    assert code == 220 and elapsed < 3, "%r after %.1fs" % (text, elapsed)
    assert re.search(r"client=127\.0\.0\.4 dns=(failed|timeout) name=unknown", suite.log_text())


@options(start=False)
def test_reload_changes_access_rules(suite):
    start_with(suite, ["access deny 127.0.0.3"])
    assert_allowed(suite, "127.0.0.2")
    suite.write_config()
    append_config(suite, ["access deny 127.0.0.2"])
    r = suite.smtpctl("reload")
    assert r.returncode == 0, "reload: %r" % (r,)
    wait_for(lambda: greeting(suite, "127.0.0.2")[0] == 554, 5, "127.0.0.2 denied after reload")
    assert_allowed(suite, "127.0.0.3")


@options(start=False, timeout=60)
def test_reload_changes_dns_servers(suite):
    with local_dns(suite) as dns, SilentDNS() as silent:
        start_with(suite, ["dns-server " + silent.conf_value()], {"reverse-dns": "yes"})
        # A lookup is outstanding on the silent server while the reload comes:
        # the new server is taken once it has ended.
        waiting = RawSMTPFrom(suite.port, "127.0.0.3", timeout=20, greet=False)
        wait_for(lambda: "client=127.0.0.3 status=connect" in suite.log_text(), 5,
                 "the first session")
        suite.write_config({"reverse-dns": "yes"})
        append_config(suite, ["dns-server " + dns.conf_value()])
        r = suite.smtpctl("reload")
        assert r.returncode == 0, "reload: %r" % (r,)
        wait_for(lambda: "smtpd" in suite.log_text() and
                 re.search(r"smtpd\[\d+\]: configuration reloaded", suite.log_text()),
                 5, "smtpd to reload")
        # A session that comes meanwhile waits for the change, then uses it.
        second = RawSMTPFrom(suite.port, "127.0.0.2", timeout=20, greet=False)
        code, text = waiting.reply()
        waiting.close()
        assert code == 220, "the session that waited: %r" % text
        assert "client=127.0.0.3 dns=timeout" in suite.log_text()
        code, text = second.reply()
        second.close()
        assert code == 220, "the session that came during the change: %r" % text
        wait_for(lambda: "client=127.0.0.2 dns=confirmed name=good.client.test" in
                 suite.log_text(), 5, "the second session's lookup on the new server")
        m = suite.wait_drop(send_from(suite, "127.0.0.2"), timeout=20)
        assert b"(good.client.test [127.0.0.2])" in m.received, m.received


# ---- relaying -------------------------------------------------------------------------

RELAY_CLIENT, OTHER_CLIENT = "127.0.0.2", "127.0.0.3"
DESTINATIONS = {
    # name: (recipient, kind)
    "local": ("bob@" + DOMAIN, "local"),
    "alias": ("bob@" + ALIAS, "local"),
    "postmaster": ("postmaster", "local"),
    "remote": ("x@remote.example.org", "remote"),
    "relay-domain": ("x@partner.example.org", "relay-domain"),
    "below a plain relay-domain": ("x@sub.partner.example.org", "remote"),
    "relay-domain, other case": ("x@PARTNER.Example.ORG", "relay-domain"),
    "subdomain of *.relay-domain": ("x@a.b.wild.example.org", "relay-domain"),
    "the *.relay-domain itself": ("x@wild.example.org", "remote"),
}
RELAY_CONFIG = ["relay allow %s" % RELAY_CLIENT,
                "relay-domain partner.example.org *.wild.example.org"]

# The dimensions of the matrix: client network x authenticated x destination.
CLIENTS = (RELAY_CLIENT, OTHER_CLIENT)
AUTHENTICATED = (False, True)


def expected_rcpt(client, authenticated, kind):
    """RFC 5321 / A5: local always; remote only for a relay client, an
    authenticated client (relay-authenticated yes, the default), or a domain
    that allows relay."""
    if kind in ("local", "relay-domain"):
        return 250
    if client == RELAY_CLIENT or authenticated:
        return 250
    return 550


def login(c, authenticated):
    if authenticated:
        user, (_, password) = next(iter(USERS.items()))
        c.expect("AUTH PLAIN " + plain(user, password), 235)


@options(start=False)
def test_relay_matrix(suite):
    table = os.path.join(suite.dir, "passwd")
    write_table(table, USERS)
    start_with(suite, RELAY_CONFIG, {
        "listen": "on 127.0.0.1 port %d auth-plaintext" % suite.port,
        "auth-table": '"%s"' % table})
    failures = []
    for client, authenticated in itertools.product(CLIENTS, AUTHENTICATED):
        with RawSMTPFrom(suite.port, client) as c:
            assert c.banner[0] == 220, c.banner
            c.expect("EHLO client.example.net", 250)
            login(c, authenticated)
            c.expect("MAIL FROM:<a@example.net>", 250)
            for name, (rcpt, kind) in DESTINATIONS.items():
                code, text = c.cmd("RCPT TO:<%s>" % rcpt)
                want = expected_rcpt(client, authenticated, kind)
                if code != want or (code == 550 and "5.7.1 Relaying denied" not in text):
                    failures.append("client %s auth=%s %s <%s>: want %d, got %r" % (
                        client, authenticated, name, rcpt, want, text))
            c.expect("QUIT", 221)
    assert not failures, "\n".join(failures)
    log = suite.log_text()
    assert "client=127.0.0.2 status=relay rule=relay:" in log, log
    assert "client=127.0.0.3 status=relay relay-domain=partner.example.org" in log, log
    assert "client=127.0.0.3 status=refused reason=relay rule=relay-default " \
        "to=<x@remote.example.org>" in log, log


def test_default_configuration_relays_nothing(suite):
    for client in ("127.0.0.1", "127.0.0.2"):
        with RawSMTPFrom(suite.port, client) as c:
            c.expect("EHLO client.example.net", 250)
            c.expect("MAIL FROM:<a@example.net>", 250)
            for rcpt in ("x@remote.example.org", "x@sub." + DOMAIN, "x@localhost",
                         "x@[127.0.0.1]"):
                code, text = c.cmd("RCPT TO:<%s>" % rcpt)
                assert code == 550 and "5.7.1" in text, \
                    "default config, client %s, <%s>: %r" % (client, rcpt, text)
            c.expect("RCPT TO:<bob@%s>" % DOMAIN, 250)
            c.expect("QUIT", 221)
    assert "reason=relay rule=relay-default" in suite.log_text()


@options(start=False)
def test_relay_all_except_the_list(suite):
    start_with(suite, ["relay deny 127.0.0.3", "relay deny 127.0.7.0/24"],
               {"relay-default": "allow"})
    for client, want in (("127.0.0.2", 250), ("127.0.0.3", 550), ("127.0.7.7", 550),
                         ("127.0.0.1", 250)):
        with RawSMTPFrom(suite.port, client) as c:
            c.expect("EHLO client.example.net", 250)
            c.expect("MAIL FROM:<a@example.net>", 250)
            code, text = c.cmd("RCPT TO:<x@remote.example.org>")
            assert code == want, "client %s: want %d, got %r" % (client, want, text)
            c.expect("RCPT TO:<bob@%s>" % DOMAIN, 250)
            c.expect("QUIT", 221)
    # A relayed recipient is committed with the message (it waits in Queue/
    # for outbound delivery); the local one is dropped.
    s = smtp_from(suite, "127.0.0.2")
    s.ehlo()
    qid = suite.send("a@example.net", ["x@remote.example.org", "bob@" + DOMAIN], MSG, smtp=s)
    s.quit()
    m = suite.wait_drop(qid)
    assert m.receivers == ["bob@" + DOMAIN], m.receivers
