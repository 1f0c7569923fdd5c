"""Out of descriptors: smtpd pauses accepting instead of spinning, and
serves the waiting clients once descriptors are free again."""
import shutil
import socket
import time

from mailroot_suite import Skip, options, wait_for


def _cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])   # utime + stime


@options(start=False, timeout=60)
def test_out_of_descriptors_does_not_spin(suite):
    if shutil.which("prlimit") is None:
        raise Skip("prlimit (util-linux) is not installed")
    suite.write_config()
    # A hard limit of 64 descriptors for the whole suite (mailrootd raises
    # only the soft limit): smtpd runs out after some 50 connections.
    r = suite.run(["prlimit", "--nofile=64:64", suite.binary("smtpctl"), "-f",
                   suite.conf_path, "start"])
    assert r.returncode == 0, r
    suite.watch_supervisor()
    pid = suite.daemon_pids()["smtpd"]
    socks = []
    try:
        for _ in range(100):
            s = socket.create_connection(("127.0.0.1", suite.port), timeout=5)
            socks.append(s)          # the kernel's backlog takes the excess
        time.sleep(1)
        before = _cpu_ticks(pid)
        time.sleep(2)
        used = _cpu_ticks(pid) - before
        # 100 ticks a second is a whole CPU: a busy accept loop.
        assert used < 40, "smtpd used %d ticks in 2 s while out of descriptors" % used
        assert "pausing new connections" in suite.log_text()
        # Free descriptors: a client still in the backlog gets its greeting.
        waiting = socks[-1]
        for s in socks[:60]:
            s.close()
        socks = socks[60:]
        waiting.settimeout(10)
        assert waiting.recv(100).startswith(b"220 "), "no greeting after descriptors were freed"
    finally:
        for s in socks:
            s.close()
