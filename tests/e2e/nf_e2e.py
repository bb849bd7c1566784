"""What the Python end-to-end tests share: checks that print ok/FAIL, processes stopped at the
end (with their logs printed when a check failed), a controller on a random loopback port, and
the CLI. Import from a test in this directory (python puts a script's directory on sys.path)."""
import os
import subprocess
import sys
import time

failures, procs = [], []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def start(args, logfile):
    p = subprocess.Popen(args, stdout=open(logfile, "w"), stderr=subprocess.STDOUT)
    procs.append(p)
    return p


def start_controller(controller, tmp, name, extra=()):
    """A controller with a SQLite store TMP/NAME.db, log TMP/NAME.log: (process, address)."""
    port_file = os.path.join(tmp, name + ".port")
    p = start([controller, "--listen", "127.0.0.1:0", "--port-file", port_file,
               "--store", "sqlite://%s/%s.db" % (tmp, name), "--metrics-listen", ""] + list(extra),
              os.path.join(tmp, name + ".log"))
    for _ in range(300):
        if os.path.exists(port_file) and open(port_file).read().strip():
            return p, "127.0.0.1:" + open(port_file).read().strip()
        if p.poll() is not None:
            break
        time.sleep(0.05)
    sys.exit("controller did not start: " + open(os.path.join(tmp, name + ".log")).read())


def cli(cli_bin, addr, *args):
    return subprocess.run([cli_bin, "--controller", addr] + list(args), capture_output=True,
                          text=True)


def finish(tmp, logs):
    """Stops every process started, prints `logs` (names in tmp) if a check failed, exits 0/1."""
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
    if failures:
        for f in logs:
            path = os.path.join(tmp, f)
            if os.path.exists(path):
                print("---", f, "---\n" + open(path).read()[-3000:])
    print("%d failed" % len(failures))


def conclude(tmp, logs):
    """finish(), then removes `tmp` if every check passed (kept for a look otherwise) and exits
    with 0 or 1. Call from a `finally:` around the test."""
    import shutil
    if sys.exc_info()[0] is not None:  # an exception on its way out: a failure, let it propagate
        failures.append("exception: %r" % (sys.exc_info()[1],))
    finish(tmp, logs)
    if not failures:
        shutil.rmtree(tmp, ignore_errors=True)
    if sys.exc_info()[0] is None:
        sys.exit(1 if failures else 0)
