"""commit-sync: both ways of making a batch durable deliver the same mail.

The default (syncfs) runs in every other test; here the same instance runs
with `commit-sync fsync` (an fsync per file and directory), then, after a
reload, with syncfs again: a local message (straight into Drop/), a
relayed one (through Queue/, to smtp-sink) and a Pickup file each time.
"""
import os
import re

from mailroot_suite import DOMAIN, options, wait_for
from peers import SmtpSink, common_port, loopback_addrs


def message(tag):
    return (b"From: sync@sender.example.net\r\nSubject: " + tag.encode() +
            b"\r\n\r\nbody of " + tag.encode() + b"\r\n")


@options(start=False, timeout=60)
def test_commit_sync_fsync_and_syncfs(suite):
    (a,) = loopback_addrs(31, 1)
    port = common_port([a, "127.0.0.1"])
    with SmtpSink(suite, a, port) as sink:
        suite.write_config({
            "commit-sync": "fsync",
            "remote-domain": "relay.test allow-relay route [%s]:%d" % (a, port)})
        suite.start()
        for n, mode in enumerate(("fsync", "syncfs")):
            if mode == "syncfs":
                with open(suite.conf_path) as f:
                    text = f.read()
                new = re.sub(r"(?m)^commit-sync\s+fsync$", "commit-sync syncfs", text)
                assert new != text, text
                with open(suite.conf_path, "w") as f:
                    f.write(new)
                r = suite.smtpctl("reload")
                assert r.returncode == 0, r
            local = suite.send("sync@sender.example.net", ["bob@" + DOMAIN],
                               message("local-" + mode))
            m = suite.wait_drop(local)
            assert b"body of local-" + mode.encode() in m.raw, m.raw[:300]
            tag = "relay-" + mode
            suite.send("sync@sender.example.net", ["carl@relay.test"], message(tag))
            (got,) = sink.wait_messages(1, needle=tag.encode())
            assert got.rcpts == ["carl@relay.test"], got.rcpt_args
            name = "sync-%s.eml" % mode
            tmp = suite.path("Pickup", "." + name)
            with open(tmp, "wb") as f:
                f.write(b"x-sender: sync@sender.example.net\r\nx-receiver: dora@" +
                        DOMAIN.encode() + b"\r\n" + message("pickup-" + mode))
            os.chmod(tmp, 0o644)
            os.rename(tmp, suite.path("Pickup", name))
            wait_for(lambda: not os.path.exists(suite.path("Pickup", name)), 15,
                     "Pickup/%s taken in" % name)
            drops = suite.wait_drop_count(2 * (n + 1))
            assert any(b"body of pickup-" + mode.encode() in suite.read_drop(d).raw
                       for d in drops), "no Drop file for the Pickup file (%s)" % mode
        assert suite.queue_tmp_names() == [] and suite.drop_tmp_names() == [], \
            (suite.queue_tmp_names(), suite.drop_tmp_names())
