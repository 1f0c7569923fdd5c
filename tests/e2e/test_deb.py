"""The Debian package's configuration: debian/make-conf turns the sample
etc/mailroot.conf into /etc/mailroot/mailroot.conf with local-only defaults
(no hostname, default-domain or alias-domain: the host's name; one listener,
127.0.0.1 port 25).  tests/deb-test checks the package itself, as root."""
import os
import re
import socket
import subprocess

from mailroot_suite import options


def _package_conf(suite):
    """Write the package's mailroot.conf into the instance's directory."""
    out = os.path.join(suite.dir, "package.conf")
    r = subprocess.run(["sh", os.path.join(suite.srcdir, "debian", "make-conf"),
                        os.path.join(suite.srcdir, "etc", "mailroot.conf")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode == 0, "debian/make-conf: exit %d: %s" % (r.returncode, r.stderr)
    with open(out, "w") as f:
        f.write(r.stdout)
    return out, r.stdout


@options(start=False)
def test_package_conf_is_valid_and_local_only(suite):
    path, text = _package_conf(suite)
    statements = [ln.split(None, 1) for ln in text.splitlines()
                  if ln.strip() and not ln.lstrip().startswith("#")]
    keywords = [s[0] for s in statements]
    assert [" ".join(s) for s in statements if s[0] == "listen"] == \
        ["listen on 127.0.0.1 port 25"], "the package listens on 127.0.0.1 port 25 only"
    for k in ("hostname", "default-domain", "alias-domain"):
        assert k not in keywords, "%s is left to its default in the package" % k
    r = suite.run([suite.binary("mailrootd"), "-n", "-f", path])
    assert r.returncode == 0 and "configuration OK" in r.stdout, (
        "mailrootd -n on the package's config: exit %d: %s%s" % (
            r.returncode, r.stdout, r.stderr))


def test_make_conf_refuses_a_changed_listener(suite):
    sample = os.path.join(suite.dir, "sample.conf")
    with open(os.path.join(suite.srcdir, "etc", "mailroot.conf")) as f:
        text = f.read()
    with open(sample, "w") as f:
        f.write(re.sub(r"(?m)^listen on 127\.0\.0\.1 port 2525$", "listen on all port 25", text))
    r = subprocess.run(["sh", os.path.join(suite.srcdir, "debian", "make-conf"), sample],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode != 0 and "debian/make-conf" in r.stderr, (
        "make-conf must refuse a sample whose listener changed: exit %d %r" % (
            r.returncode, r.stderr))


@options(conf={"hostname": None, "default-domain": None, "alias-domain": None})
def test_package_defaults_take_mail_for_the_host_name_only(suite):
    # The package's defaults, on the instance's port: the greeting names the
    # host (its name, or "localhost" when that is no valid domain), and that
    # name is the one local domain; anything else is relaying.
    with suite.raw() as c:
        code, banner = c.banner
        assert code == 220, banner
        domain = banner.split()[1]
        assert domain in (socket.gethostname(), "localhost"), (
            "greeting %r: expected the host's name %r" % (banner, socket.gethostname()))
        c.expect("EHLO client.example.net", 250)
        c.expect("MAIL FROM:<app@%s>" % domain, 250)
        code, text = c.cmd("RCPT TO:<someone@example.test>")
        assert code == 550 and "5.7.1" in text, \
            "example.test is not local with the package's defaults: %r" % text
    qid = suite.send("app@" + domain, ["postmaster@" + domain],
                     b"Subject: package defaults\r\n\r\nfor the host\r\n")
    m = suite.wait_drop(qid)
    assert m.receivers == ["postmaster@" + domain], m.receivers
