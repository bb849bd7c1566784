#!/usr/bin/python3
"""How long the Python client takes to list a big job's candidates, over gRPC on loopback.

    build/cli/nasforge bench controller --store sqlite:///tmp/b100k.db --trials 100000 \\
        --workers 8 --batch 8 --no-recovery --space bench/data/mbconv_28_large.yaml
    /usr/bin/python3 bench/python_client_bench.py build/controller/nasforge-controller \\
        build/python sqlite:///tmp/b100k.db

Starts a controller on the store, then times (best of --repeat): the raw paged listing
(iter_candidates: Trial messages), the same as rows (as_frame=False), and as a pandas DataFrame
(candidates()); and the Pareto query as a DataFrame. Prints one line per figure.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("controller")
    ap.add_argument("pythonpath")
    ap.add_argument("store")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--page-size", type=int, default=1000)
    a = ap.parse_args()
    sys.path.insert(0, a.pythonpath)
    import nasforge

    tmp = tempfile.mkdtemp(prefix="nf-pybench-")
    port_file = os.path.join(tmp, "port")
    log = open(os.path.join(tmp, "controller.log"), "w")
    p = subprocess.Popen([a.controller, "--listen", "127.0.0.1:0", "--port-file", port_file,
                          "--store", a.store, "--metrics-listen", ""], stdout=log,
                         stderr=subprocess.STDOUT)
    try:
        for _ in range(1200):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            if p.poll() is not None:
                sys.exit("controller exited: see " + log.name)
            time.sleep(0.05)
        addr = "127.0.0.1:" + open(port_file).read().strip()
        c = nasforge.Client(addr, timeout=600)
        jobs = c.jobs(as_frame=False)
        job = max(jobs, key=lambda j: j["succeeded"] + j["stopped"] + j["failed"])
        print("job %s: %d trials" % (job["id"], job["succeeded"] + job["stopped"] +
                                     job["failed"] + job["cancelled"]))

        def best(fn):
            times, out = [], None
            for _ in range(a.repeat):
                t0 = time.perf_counter()
                out = fn()
                times.append(time.perf_counter() - t0)
            return min(times), out

        s, n = best(lambda: sum(1 for _ in c.iter_candidates(job["id"], page_size=a.page_size)))
        print("iter_candidates (Trial messages)   %7.2f s  %d trials  %.0f trials/s" % (s, n, n / s))
        s, rows = best(lambda: c.candidates(job["id"], as_frame=False))
        print("candidates(as_frame=False) (dicts) %7.2f s  %d rows" % (s, len(rows)))
        s, df = best(lambda: c.candidates(job["id"]))
        print("candidates() (pandas DataFrame)    %7.2f s  %d rows x %d columns"
              % (s, len(df), len(df.columns)))
        s, front = best(lambda: c.pareto(job["id"]))
        print("pareto() (DataFrame)               %7.3f s  %d members" % (s, len(front)))
    finally:
        p.terminate()
        p.wait(30)


if __name__ == "__main__":
    main()
