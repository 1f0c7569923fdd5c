"""swaks as a real client: pipelined transactions (RFC 2920)."""
import re
import shutil
import subprocess

from mailroot_suite import Skip, DOMAIN, ALIAS


def _swaks(suite, *args):
    if shutil.which("swaks") is None:
        raise Skip("swaks is not installed (scripts/install-deps installs it)")
    argv = ["swaks", "--server", "127.0.0.1", "--port", str(suite.port),
            "--helo", "client.example.net", "--timeout", "20"] + list(args)
    return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=60)


def test_swaks_pipeline_delivers(suite):
    r = _swaks(suite, "--pipeline", "--from", "a@example.net",
               "--to", "bob@%s,carol@%s" % (DOMAIN, ALIAS), "--body", "pipelined by swaks")
    assert r.returncode == 0, r.stdout
    # swaks sends MAIL, both RCPTs and DATA in one write when PIPELINING is offered.
    assert re.search(r"MAIL FROM:<a@example.net>\n.*RCPT TO:<bob@", r.stdout, re.S), r.stdout
    m = re.search(r"queued as ([0-9a-f]{20})", r.stdout)
    assert m, r.stdout
    msg = suite.wait_drop(m.group(1))
    assert sorted(msg.receivers) == sorted(["bob@" + DOMAIN, "carol@" + ALIAS]), msg.receivers
    assert b"pipelined by swaks" in msg.raw


def test_swaks_pipeline_with_a_refused_recipient(suite):
    # One RCPT is refused (relay); the transaction goes on for the other.
    r = _swaks(suite, "--pipeline", "--from", "a@example.net",
               "--to", "x@elsewhere.example.org,bob@%s" % DOMAIN, "--body", "partly")
    assert "550 5.7.1" in r.stdout, r.stdout
    m = re.search(r"queued as ([0-9a-f]{20})", r.stdout)
    assert m, r.stdout
    assert suite.wait_drop(m.group(1)).receivers == ["bob@" + DOMAIN]
