"""smtpq: listing the queue and Badmail, read-only, with and without --json."""
import json
import os
import subprocess

from mailroot_suite import options, wait_for


def _smtpq(suite, *args):
    return subprocess.run([os.path.join(suite.builddir, "smtpctl", "smtpq"), "-f",
                           suite.conf_path] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=30, env=suite.env)


def _pickup(suite, name, text):
    tmp = suite.path("Pickup", "." + name)
    with open(tmp, "w") as f:
        f.write(text)
    if suite.is_root:
        os.chown(tmp, -1, __import__("grp").getgrnam("mailroot").gr_gid)
    os.chmod(tmp, 0o640)
    os.rename(tmp, suite.path("Pickup", name))


def test_empty_queue_and_badmail(suite):
    r = _smtpq(suite)
    assert r.returncode == 0 and "Mail queue is empty" in r.stdout, r
    r = _smtpq(suite, "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == [], r
    r = _smtpq(suite, "badmail")
    assert r.returncode == 0 and "Badmail is empty" in r.stdout, r


@options(conf={"remote-domain": "remote.test hold"})
def test_queued_message_listed_and_shown(suite):
    # A remote recipient in a held domain stays queued; the local one is done.
    _pickup(suite, "q1", "x-sender: app@example.test\nx-receiver: bob@example.test\n"
            "x-receiver: ext@remote.test\nSubject: held\n\nbody\n")
    wait_for(lambda: any(n.endswith(".env") for n in suite.queue_names()), 10, "a queued message")
    wait_for(lambda: "done" in _smtpq(suite).stdout, 10, "the local recipient done")
    r = _smtpq(suite, "--json")
    assert r.returncode == 0, r
    q = json.loads(r.stdout)
    assert len(q) == 1 and q[0]["sender"] == "app@example.test", q
    states = {x["address"]: x["state"] for x in q[0]["recipients"]}
    assert states == {"bob@example.test": "done", "ext@remote.test": "pending"}, states
    r = _smtpq(suite)
    assert q[0]["id"] in r.stdout and "1 request." in r.stdout, r.stdout
    r = _smtpq(suite, "show", q[0]["id"])
    assert r.returncode == 0 and "rcpt pending <ext@remote.test>" in r.stdout \
        and "Subject: held" in r.stdout and "body" not in r.stdout, r.stdout
    r = _smtpq(suite, "show", "0" * 20)
    assert r.returncode == 1 and "not in the queue" in r.stderr, r


def test_badmail_listed_with_reason(suite):
    _pickup(suite, "bad1", "not a message\n")
    wait_for(lambda: any(n.endswith(".BDR") for n in suite.badmail_names()), 10, "a Badmail entry")
    r = _smtpq(suite, "--json", "badmail")
    assert r.returncode == 0, r
    b = json.loads(r.stdout)
    assert len(b) == 1 and "header line without a colon" in b[0]["reason"], b
