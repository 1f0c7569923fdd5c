#!/usr/bin/env python3
"""
run.py - the Mailroot end-to-end harness.

    python3 tests/e2e/run.py --builddir DIR --srcdir DIR [-k NAME] [-v] [--keep]
                             [--copy-binaries]

Scenarios are the files tests/e2e/test_*.py (next to this file).  Every
function named test_* in them is a test, run in the order of the files'
names and of the functions in each file.  A test takes one argument, the
`suite` fixture (mailroot_suite.Suite): a fresh Mailroot, config, log file
and free loopback port of its own, already started unless the test is
decorated with @options(start=False); @options(conf={...}) changes the
config, @options(timeout=S) its time limit, @options(only="root"|"user",
why="...") skips it, with that reason, unless run as root / as an ordinary
user.  A test fails by raising
(AssertionError or anything else), is skipped by raising
mailroot_suite.Skip("reason").  After each test the instance is stopped
with `smtpctl stop`; a process of it still alive then is killed with -9
and fails the test.

Output: one line per test, PASS/FAIL/SKIP, with the reason, and for a
failure the assertion, where it was raised and the tail of the instance's
log; then the line "N passed, N failed" (", N skipped" when any).  Exit
status 1 when a test failed, 2 on a usage or setup error.

The harness makes itself the "child subreaper" of its descendants (Linux
prctl) and reaps each detached mailrootd as soon as it exits, as a normal
init does; where PID 1 reaps late, smtpctl stop would otherwise wait for
the zombie.

-k NAME runs the tests whose "file::function" name contains NAME (may be
given more than once).  -v adds notes (ports, timings) and keeps going
quietly otherwise.  --keep keeps every test's directory (by default only
those of failed tests are kept, and their path is printed).

Binaries come from the build tree: a bin/ directory of symbolic links to
mailrootd/mailrootd, smtpd/smtpd, queued/queued, pickupd/pickupd, deliverd/deliverd and
smtpctl/smtpctl is made in the run's base directory and given to smtpctl
and mailrootd as MAILROOT_SBINDIR and MAILROOT_LIBEXECDIR (--copy-binaries
copies them there instead, so that a rebuild during the run cannot make a
daemon's exec fail).  As root, the
system users are created first with <srcdir>/etc/install-users.
"""
import argparse
import importlib.util
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import mailroot_suite  # noqa: E402

BINARIES = ("mailrootd/mailrootd", "smtpd/smtpd", "queued/queued", "pickupd/pickupd",
            "deliverd/deliverd",
            "smtpctl/smtpctl")
DEFAULT_TIMEOUT = 120


def discover(pattern):
    tests = []
    for fname in sorted(os.listdir(HERE)):
        if not (fname.startswith("test_") and fname.endswith(".py")):
            continue
        modname = fname[:-3]
        spec = importlib.util.spec_from_file_location(modname, os.path.join(HERE, fname))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        fns = [f for n, f in vars(mod).items()
               if n.startswith("test_") and inspect.isfunction(f) and f.__module__ == modname]
        fns.sort(key=lambda f: f.__code__.co_firstlineno)
        for f in fns:
            name = "%s::%s" % (modname, f.__name__)
            if pattern and not any(p in name for p in pattern):
                continue
            tests.append((name, f))
    return tests


def where(exc):
    """file:line of the innermost frame of a test or fixture file."""
    tb = traceback.extract_tb(exc.__traceback__)
    for fr in reversed(tb):
        if os.path.dirname(os.path.abspath(fr.filename)) == HERE:
            return "%s:%d" % (os.path.basename(fr.filename), fr.lineno)
    return "?"


def run_one(name, fn, args, basedir, bindir, index):
    opts = getattr(fn, "suite_options", {"start": True, "conf": {}, "timeout": None})
    timeout = opts.get("timeout") or DEFAULT_TIMEOUT
    suite = mailroot_suite.Suite("t%02d" % index, basedir, bindir, args.builddir,
                                 args.srcdir, args.verbose)
    result = {"status": None, "msg": "", "exc": None}

    def body():
        try:
            only = opts.get("only")
            if only == "root" and os.geteuid() != 0:
                raise mailroot_suite.Skip("needs root, running as uid %d: %s" % (
                    os.geteuid(), opts.get("why")))
            if only == "user" and os.geteuid() == 0:
                raise mailroot_suite.Skip("needs an ordinary user, running as root: %s" %
                                          opts.get("why"))
            suite.write_config(opts.get("conf"))
            if opts.get("start", True):
                suite.start()
            fn(suite)
            result["status"] = "PASS"
        except mailroot_suite.Skip as e:
            result["status"] = "SKIP"
            result["msg"] = str(e)
        except BaseException as e:  # noqa: B902 - report anything
            result["log_lines"] = len(suite.log_text().splitlines())
            result["status"] = "FAIL"
            result["exc"] = e
            if isinstance(e, AssertionError):
                result["msg"] = "%s (at %s)" % (e, where(e))
            else:
                result["msg"] = "%s: %s (at %s)" % (type(e).__name__, e, where(e))

    t0 = time.monotonic()
    th = threading.Thread(target=body, name=name, daemon=True)
    th.start()
    try:
        th.join(timeout)
    except KeyboardInterrupt:
        suite.teardown()
        print("interrupted during %s; kept %s" % (name, suite.dir), flush=True)
        raise
    if th.is_alive():
        result["status"] = "FAIL"
        result["msg"] = "did not finish within %d s" % timeout
        result["log_lines"] = len(suite.log_text().splitlines())
    problems = suite.teardown()
    if th.is_alive():
        th.join(2)      # its sockets are closed now: let it unwind
    elapsed = time.monotonic() - t0
    if problems and result["status"] != "FAIL":
        # A leftover process fails even a skipped test.
        result["status"] = "FAIL"
        result["msg"] = "; ".join(problems)
    elif problems:
        result["msg"] += "; teardown: " + "; ".join(problems)

    status = result["status"]
    line = "%s %s (%.1fs)" % (status, name, elapsed)
    if status in ("FAIL", "SKIP"):
        line += ": " + result["msg"]
    print(line, flush=True)
    for n in suite.notes:
        print("    note: " + n)
    if status == "FAIL":
        if args.verbose and result["exc"] is not None:
            for l in traceback.format_exception(result["exc"]):
                for ll in l.rstrip().splitlines():
                    print("    | " + ll)
        # The log as it was when the test failed (not the stop that followed).
        lines = suite.log_text().splitlines()
        upto = result.get("log_lines", len(lines))
        tail = lines[max(0, upto - 25):upto]
        print("    log %s (%d lines up to the failure%s):" % (
            suite.log_path, len(tail),
            ", %d more after it" % (len(lines) - upto) if len(lines) > upto else ""))
        for l in tail:
            print("    > " + l)
        print("    kept %s" % suite.dir)
    elif not args.keep:
        shutil.rmtree(suite.dir, ignore_errors=True)
    sys.stdout.flush()
    return status


def main():
    ap = argparse.ArgumentParser(description="Mailroot end-to-end tests")
    ap.add_argument("--builddir", required=True)
    ap.add_argument("--srcdir", required=True)
    ap.add_argument("-k", action="append", default=[], metavar="NAME",
                    help="run only tests whose file::function name contains NAME")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep every test's directory")
    ap.add_argument("--copy-binaries", action="store_true",
                    help="copy the binaries into the run's bin/ instead of linking them "
                    "(a snapshot: immune to a rebuild during the run)")
    args = ap.parse_args()
    if not __debug__:
        sys.exit("run.py: do not run with python -O: the tests use assert")
    args.builddir = os.path.abspath(args.builddir)
    args.srcdir = os.path.abspath(args.srcdir)

    for b in BINARIES:
        p = os.path.join(args.builddir, b)
        if not os.access(p, os.X_OK):
            print("run.py: %s is missing or not executable (build first)" % p, file=sys.stderr)
            return 2
    if os.geteuid() == 0:
        iu = os.path.join(args.srcdir, "etc", "install-users")
        r = subprocess.run([iu], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            print("run.py: %s failed:\n%s" % (iu, r.stdout), file=sys.stderr)
            return 2

    tests = discover(args.k)
    if not tests:
        print("run.py: no test matches", file=sys.stderr)
        return 2

    mailroot_suite.enable_subreaper()
    basedir = tempfile.mkdtemp(prefix="mre2e-", dir="/tmp")
    os.chmod(basedir, 0o755)    # the daemon users traverse it when run as root
    bindir = os.path.join(basedir, "bin")
    os.mkdir(bindir)
    os.chmod(bindir, 0o755)
    for b in BINARIES:
        src, dst = os.path.join(args.builddir, b), os.path.join(bindir, os.path.basename(b))
        if args.copy_binaries:
            shutil.copy2(src, dst)
        else:
            os.symlink(src, dst)
    print("Mailroot e2e: %d test(s), as %s (uid %d), base %s" % (
        len(tests), "root" if os.geteuid() == 0 else "an ordinary user", os.geteuid(),
        basedir), flush=True)

    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    t0 = time.monotonic()
    try:
        for i, (name, fn) in enumerate(tests, 1):
            counts[run_one(name, fn, args, basedir, bindir, i)] += 1
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        counts["FAIL"] += 1
    if args.verbose:
        print("time: %.1fs" % (time.monotonic() - t0))
    if counts["FAIL"] == 0 and not args.keep:
        shutil.rmtree(basedir, ignore_errors=True)
    summary = "%d passed, %d failed" % (counts["PASS"], counts["FAIL"])
    if counts["SKIP"]:
        summary += ", %d skipped" % counts["SKIP"]
    print(summary, flush=True)
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
