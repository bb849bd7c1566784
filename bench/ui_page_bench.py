#!/usr/bin/python3
"""How fast the web dashboard shows a big job: server time per request and the page's load in a
real browser (Debian's chromium, headless, over the DevTools protocol: tests/e2e/cdp.py).

    build/cli/nasforge bench controller --store sqlite:///tmp/b100k.db --trials 100000 \\
        --workers 8 --batch 8 --no-recovery --space bench/data/mbconv_28_large.yaml
    /usr/bin/python3 bench/ui_page_bench.py build/controller/nasforge-controller \\
        sqlite:///tmp/b100k.db

Starts a controller on the store with the dashboard on a free loopback port, picks the job with
the most trials, then prints one line per figure: the first page view (the job's snapshot is
built), later views (best of --repeat), a sort by another column, a filter, the next page, the
CSV download, and the browser's navigation-to-load time, cold and warm.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import cdp  # noqa: E402


def fetch(url):
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=300) as r:
        body = r.read()
    return time.perf_counter() - t, len(body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("controller")
    ap.add_argument("store")
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="nf-ui-bench-")
    log = os.path.join(tmp, "ctl.log")
    ctl = subprocess.Popen([a.controller, "--listen", "127.0.0.1:0", "--store", a.store,
                            "--metrics-listen", "", "--ui-listen", "127.0.0.1:0"],
                           stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        base = None
        for _ in range(600):
            m = re.search(r"event=ui_serving url=(\S+)", open(log).read())
            if m:
                base = m.group(1).rstrip("/")
                break
            if ctl.poll() is not None:
                break
            time.sleep(0.05)
        if base is None:
            sys.exit("the controller did not start:\n" + open(log).read())
        jobs = urllib.request.urlopen(base + "/", timeout=60).read().decode()
        rows = re.findall(r'data-job="([^"]+)".*?<span class="done">([\d,]+) /', jobs)
        if not rows:
            sys.exit("no job in the store")
        job, done = max(rows, key=lambda r: int(r[1].replace(",", "")))
        page = base + "/jobs/" + job
        print("job %s: %s trials" % (job, done))
        t, n = fetch(page)
        print("first view (snapshot built)   %7.0f ms  %6d KB" % (t * 1e3, n // 1024))
        best = min(fetch(page)[0] for _ in range(a.repeat))
        print("later views (best of %d)       %7.0f ms" % (a.repeat, best * 1e3))
        for what, q in (("sorted by accuracy, desc", "?sort=accuracy&desc=1"),
                        ("filter accuracy>=0.85", "?where=accuracy%3E%3D0.85"),
                        ("page 2", "?offset=50")):
            print("%-30s %7.0f ms" % (what, fetch(page + q)[0] * 1e3))
        t, n = fetch(page + "/candidates.csv")
        print("CSV download                   %7.0f ms  %6d KB" % (t * 1e3, n // 1024))
        with cdp.Browser(tmp) as b:
            cold = b.open(page)
            warm = min(b.open(page + "?r=%d" % i) for i in range(a.repeat))
            print("browser load (chromium), first %7.0f ms" % cold)
            print("browser load, best of %d       %7.0f ms" % (a.repeat, warm))
            if b.errors:
                print("console errors:", b.errors)
    finally:
        ctl.terminate()
        ctl.wait(10)


if __name__ == "__main__":
    main()
