#!/usr/bin/python3
"""The web dashboard in a real browser: Debian's chromium, headless, over the DevTools protocol.

A controller with tokens (admin alice, read-only bob, a worker token) on a store that already
holds a 100,000-trial job (`nasforge bench controller`), plus fixture jobs trained by Python SDK
workers: no trials, one trial, a finished single-objective job with ASHA early stopping, a
3-objective job, failed trials and missing / non-finite metrics, an infeasible constraint, and a
job watched live while it trains. Every page is opened in chromium; what must be there is
checked (the front's points, table rows, curves and stop marks, choice rows), the console must
have no errors (CSP violations and failed loads included), and a full-page screenshot of each is
kept in OUTDIR (CI artifacts). Also: login, logout, visibility (bob sees nothing of alice's),
a worker token refused, server-side sorting, paging, filtering and the CSV download at 100,000
trials, axis selection, and live updates from the watch stream without a reload.

Usage: ui_browser_test.py CONTROLLER_BIN CLI_BIN PYTHONPATH SOURCE_DIR OUTDIR
"""
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

CONTROLLER, CLI, PYPATH, SRC, OUTDIR = sys.argv[1:6]
sys.path[:0] = [PYPATH]

import cdp  # noqa: E402
import nf_e2e as nf  # noqa: E402
from nf_e2e import check  # noqa: E402

import nasforge  # noqa: E402

SPACE = {
    "name": "mbconv-ui",
    "mbconv": {
        "resolution": 16, "in_channels": 3, "num_classes": 4,
        "stem_channels": [8, 16], "stem_stride": 1,
        "stages": [{"stride": 2, "kernel": [3, 5], "expansion": [1, 3], "repeats": [1, 2],
                    "channels": [16, 24], "se_ratio": [0]}],
        "head_channels": [32, 48],
    },
}


def spec(name, max_trials, objectives, epochs=3, rule=None, constraints=None, dataset="external"):
    s = {"name": name, "strategy": {"name": "random"},
         "budget": {"max_trials": max_trials, "max_parallel_trials": 2, "epochs": epochs,
                    "seed": 5},
         "objectives": [{"metric": m, "direction": d} for m, d in objectives],
         "training": {"dataset": dataset, "batch_size": 32, "learning_rate": 0.01},
         "search_space": SPACE}
    if dataset == "synthetic":  # no worker of this test trains it: it stays without trials
        s["search_space"] = {"name": "mbconv-gray", "mbconv": dict(
            SPACE["mbconv"], in_channels=1, num_classes=10)}
    if rule:
        s["early_stopping"] = rule
    if constraints:
        s["constraints"] = constraints
    return s


def quality(trial):
    """A deterministic accuracy from the architecture's choices (no training needed here)."""
    p, h = trial.params, trial.hyperparameters or {}
    lr = -0.05 * abs(math.log10(h["lr"]) + 2) if "lr" in h else 0  # best at 0.01
    return 0.55 + 0.08 * (p.get("stages_0_kernel", 3) == 5) + 0.05 * p.get(
        "stages_0_repeats", 1) + 0.04 * (p.get("head_channels", 32) == 48) + (
        trial.trial_id % 7) * 0.01 + lr


NAMES = {}  # job id -> fixture name


def train(trial):
    """Reports a curve; the fixture decides how it ends (failures, odd metrics)."""
    name = NAMES.get(trial.job_id, "")
    q = quality(trial)
    if name == "messy" and trial.trial_id % 4 == 0:
        raise RuntimeError("out of memory in a user's train function (fixture)")
    if name == "messy" and trial.trial_id % 4 == 1:
        return {"accuracy": float("nan")}  # refused by the controller: the trial fails
    acc = q
    for epoch in range(1, trial.epochs + 1):
        acc = q * (0.6 + 0.4 * epoch / trial.epochs)
        if trial.report(epoch, {"accuracy": acc, "loss": 1.0 / epoch}):
            break
    out = {"accuracy": acc}
    if not (name == "messy" and trial.trial_id % 4 == 2):
        out["test_accuracy"] = acc * 0.98  # missing from some "messy" trials
    return out


def sdk_workers(addr, token, n, stop):
    threads = []
    for i in range(n):
        t = threading.Thread(target=nasforge.worker.run, args=(train,), daemon=True, kwargs=dict(
            controller=addr, token=token, worker_id="ui-sdk-%d" % i, stop=stop))
        t.start()
        threads.append(t)
    return threads


def ui_url(log):
    deadline = time.time() + 30
    while time.time() < deadline:
        m = re.search(r"event=ui_serving url=(\S+)", open(log).read())
        if m:
            return m.group(1).rstrip("/")
        time.sleep(0.05)
    sys.exit("the dashboard did not start: " + open(log).read())


def page_checks(b, name, url, expect, shot):
    """Opens `url`, checks each (js expression, what) in `expect`, keeps a screenshot."""
    b.errors.clear()
    ms = b.open(url)
    for expr, what in expect:
        try:
            ok = bool(b.js(expr))
        except RuntimeError as e:
            ok, what = False, "%s (%s)" % (what, e)
        check(ok, "%s: %s" % (name, what))
    b.screenshot(os.path.join(OUTDIR, shot))
    check(not b.errors, "%s: no console errors (%s)" % (name, b.errors))
    return ms


def login(b, base, token):
    b.open(base + "/login")
    b.js("document.querySelector('input[name=token]').value = %r;"
         "document.querySelector('main form').submit(); 1" % token)
    b.wait_for("location.pathname !== '/login' || document.querySelector('.error') !== null", 30)


def count(b, selector):
    return b.js("document.querySelectorAll(%r).length" % selector)


def main():
    os.makedirs(OUTDIR, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="nf-ui-")
    db = os.path.join(tmp, "ui.db")
    # The 100,000-trial tabular job, written by the controller bench into the store.
    r = subprocess.run([CLI, "bench", "controller", "--store", "sqlite://" + db, "--trials",
                        "100000", "--workers", "8", "--batch", "8", "--no-recovery", "--space",
                        os.path.join(SRC, "bench/data/mbconv_28_large.yaml")],
                       capture_output=True, text=True)
    check(r.returncode == 0, "bench controller wrote a 100,000-trial job (%s)" % r.stderr[-300:])
    tokens = os.path.join(tmp, "tokens")
    secret = {}
    for who, role in (("alice", "admin"), ("bob", "read"), ("w", "worker")):
        out = subprocess.run([CLI, "token", "create", "--file", tokens, "--name", who, "--role",
                              role], capture_output=True, text=True, check=True)
        secret[who] = out.stdout.strip().split()[-1]
    log = os.path.join(tmp, "ctl.log")
    port_file = os.path.join(tmp, "port")
    nf.start([CONTROLLER, "--listen", "127.0.0.1:0", "--port-file", port_file, "--store",
              "sqlite://" + db, "--metrics-listen", "", "--auth-tokens", tokens,
              "--ui-listen", "127.0.0.1:0"], log)
    base = ui_url(log)
    addr = "127.0.0.1:" + open(port_file).read().strip()
    c = nasforge.Client(addr, token=secret["alice"])
    big = [j for j in c.jobs(as_frame=False) if j["name"].startswith("bench-controller")]
    check(len(big) == 1, "the 100k job is in the store")
    big_id = big[0]["id"]

    acc_macs = [("accuracy", "maximize"), ("macs", "minimize")]
    jobs = {
        "empty": c.submit(spec("empty", 4, acc_macs, dataset="synthetic"))["id"],
        "one": c.submit(spec("one", 1, acc_macs))["id"],
        "single": c.submit(spec("single", 14, [("accuracy", "maximize")], epochs=4,
                                rule={"rule": "asha", "min_epochs": 1, "eta": 2,
                                      "keep_cost_front": False}))["id"],
        "three": c.submit(spec("three", 10, acc_macs + [("params", "minimize")]))["id"],
        "messy": c.submit(spec("messy", 8, acc_macs))["id"],
        "infeasible": c.submit(spec("infeasible", 5, acc_macs, constraints=[
            {"metric": "test_accuracy", "lower": 0.995}]))["id"],
        "hyper": c.submit(dict(spec("hyper", 12, [("accuracy", "maximize")]), search_space=dict(
            SPACE, parameters=[{"name": "lr", "real": {"low": 1e-4, "high": 1, "log": True}},
                               {"name": "opt", "categorical": {"values": ["adam", "sgd"]}}])))["id"],
    }
    NAMES.update({v: k for k, v in jobs.items()})
    stop = threading.Event()
    sdk_workers(addr, secret["w"], 2, stop)
    t0 = time.time()
    for name in ("one", "single", "three", "messy", "infeasible", "hyper"):
        final = c.wait(jobs[name], timeout=300)
        print("fixture %s done after %.1f s" % (name, time.time() - t0), flush=True)
        check(final["state"] in ("JOB_SUCCEEDED", "JOB_FAILED"),
              "fixture %s ended (%s)" % (name, final["state"]))
    stop.set()

    with cdp.Browser(tmp) as b:
        # Authentication: a page asks for the login; a worker token is refused; bob sees nothing.
        b.open(base + "/")
        check(b.js("location.pathname") == "/login", "not logged in: / redirects to /login")
        login(b, base, secret["w"])
        check(b.js("location.pathname") == "/login" and "worker" in b.js(
            "document.querySelector('.error').textContent"), "a worker token cannot log in")
        login(b, base, secret["bob"])
        check(b.js("location.pathname") == "/" and count(b, "table.jobs tbody tr") == 0,
              "bob (read) logged in and sees none of alice's jobs")
        b.errors.clear()
        b.open(base + "/jobs/" + jobs["three"])
        check(b.js("document.querySelector('main h1').textContent") == "403" and
              "only its owner" in b.js("document.body.textContent"),
              "bob opening alice's job: 403, only its owner or an admin")
        b.js("document.querySelector('form.logout').submit(); 1")
        b.wait_for("location.pathname === '/login'", 20)
        check(True, "log out: back to the login page")
        b.open(base + "/")
        check(b.js("location.pathname") == "/login", "after log out, / asks to log in again")
        login(b, base, secret["alice"])
        b.errors.clear()

        page_checks(b, "jobs page", base + "/", [
            ("document.querySelectorAll('table.jobs tbody tr').length === 8", "8 jobs listed"),
            ("document.body.textContent.includes('100,000 / 100,000')", "100k job's progress"),
            ("document.querySelector('.viewer').textContent.includes('alice')", "viewer shown"),
        ], "jobs.png")
        page_checks(b, "jobs filter", base + "/?name=thr&state=succeeded", [
            ("document.querySelectorAll('table.jobs tbody tr').length === 1",
             "name 'thr' + succeeded: one job"),
        ], "jobs-filtered.png")

        job = lambda name: base + "/jobs/" + jobs[name]  # noqa: E731
        page_checks(b, "no trials", job("empty"), [
            ("document.querySelector('#pareto svg') !== null", "an (empty) Pareto plot"),
            ("document.querySelectorAll('table.trials tbody tr').length === 0", "no rows"),
            ("document.querySelector('.matched').textContent.includes('of 0')", "0 trials said"),
            ("document.querySelector('.progress-plot.empty') !== null", "best-so-far says empty"),
        ], "job-empty.png")
        page_checks(b, "one trial", job("one"), [
            ("document.querySelectorAll('table.trials tbody tr').length === 1", "one row"),
            ("document.querySelectorAll('#pareto circle.front').length === 1", "one front point"),
            ("document.querySelector('#pareto circle.front title').textContent.includes('macs')",
             "hover text has macs"),
            ("document.querySelectorAll('#curves polyline.curve').length === 1", "one curve"),
        ], "job-one.png")
        single = c.candidates(jobs["single"], as_frame=False)
        stopped = sum(1 for t in single if t["state"] == "STOPPED")
        check(stopped > 0, "ASHA stopped some of the single-objective job's trials (%d)" % stopped)
        page_checks(b, "single objective", job("single"), [
            ("document.querySelectorAll('table.trials tbody tr').length === 14", "14 rows"),
            ("document.querySelector('.best-line') !== null", "best-so-far line"),
            ("document.querySelectorAll('#curves polyline.curve').length === 14", "14 curves"),
            ("document.querySelectorAll('#curves .stop-mark').length === %d" % stopped,
             "%d early-stopping marks" % stopped),
            ("document.querySelectorAll('#choices g.option').length >= 4", "choice rows"),
            ("document.querySelector('dd.state').textContent === 'succeeded'", "state succeeded"),
        ], "job-single.png")
        page_checks(b, "hyperparameters", job("hyper"), [
            ("document.querySelectorAll('#importance .importance-plot g.bar').length >= 2",
             "importance bars, one per decision"),
            ("document.querySelector('#importance div.value[data-decision=\"params.lr\"] "
             "svg.log-x') !== null", "the log-scaled learning rate on a log axis"),
            ("document.querySelectorAll('#importance div.value[data-decision=\"params.opt\"] "
             "text.category').length === 2", "the optimizer's two values as columns"),
            ("document.querySelectorAll('#importance div.value[data-decision=\"params.lr\"] "
             "circle.point').length === 12", "a point per trial"),
        ], "job-hyper.png")
        front3 = c.pareto(jobs["three"], as_frame=False)
        page_checks(b, "three objectives", job("three") + "?x=macs&y=params", [
            ("document.querySelectorAll('select[name=x] option').length >= 3", "axis choices"),
            ("document.querySelector('select[name=y]').value === 'params'", "y = params"),
            ("document.querySelectorAll('tr.front').length === %d" % len(front3),
             "%d rows marked on the front (QueryPareto's)" % len(front3)),
        ], "job-three.png")
        # Choosing another axis re-renders the plot (the select submits its form).
        b.js("var s = document.querySelector('select[name=y]'); s.value = 'accuracy';"
             "s.dispatchEvent(new Event('change', {bubbles: true})); 1")
        b.wait_for("location.search.includes('y=accuracy') && document.readyState === 'complete'")
        check("accuracy" in b.js("document.querySelector('#pareto svg text').textContent"),
              "axis select: the plot now shows accuracy")
        page_checks(b, "failed and missing metrics", job("messy"), [
            ("document.querySelectorAll('td.state.failed').length >= 2", "failed rows"),
            ("[...document.querySelectorAll('td.state.failed')].some(t => "
             "t.title.includes('out of memory'))", "a failure's message on hover"),
            ("document.querySelectorAll('table.trials tbody td').length > 0 && "
             "[...document.querySelectorAll('table.trials tbody td')].some(t => "
             "t.textContent === '-')", "missing values shown as -"),
            ("!document.body.textContent.includes('NaN')", "no NaN printed"),
        ], "job-messy.png")
        page_checks(b, "infeasible constraint", job("infeasible"), [
            ("document.querySelectorAll('#pareto circle.front').length === 0", "no front point"),
            ("document.querySelector('dd.note').textContent.includes('constraint')",
             "says no candidate meets the constraints"),
            ("document.querySelectorAll('#pareto circle.candidate').length > 0",
             "the candidates are still plotted"),
        ], "job-infeasible.png")

        # 100,000 trials: server-side table, plots from the front and samples, CSV.
        big_front = c.pareto(big_id, as_frame=False)
        best = max(t["values_accuracy"] for t in big_front)
        ms = page_checks(b, "100k trials", base + "/jobs/" + big_id, [
            ("document.querySelectorAll('table.trials tbody tr').length === 50", "50 rows"),
            ("document.querySelector('.matched').textContent.includes('of 100,000')",
             "of 100,000 said"),
            ("document.querySelectorAll('#pareto circle.front').length === %d" % len(big_front),
             "the %d front points (QueryPareto's)" % len(big_front)),
            ("document.querySelectorAll('#pareto circle').length <= 3100", "scatter sampled"),
        ], "job-100k.png")
        print("info 100k job page loaded in %.0f ms (bench/ui_page_bench.py measures it)" % ms)
        b.js("document.querySelector('th a[href*=\"sort=accuracy\"]').click(); 1")
        b.wait_for("location.search.includes('sort=accuracy') && document.readyState === "
                   "'complete' && document.querySelector('table.trials') !== null")
        top = b.js("parseFloat(document.querySelector('table.trials tbody tr').children[2]"
                   ".textContent)")
        check(abs(top - best) < 1e-5, "sorted by accuracy, descending: first row %s = best %s"
              % (top, best))
        b.js("document.querySelector('a[rel=next]').click(); 1")
        b.wait_for("location.search.includes('offset=50') && document.readyState === 'complete'"
                   " && document.querySelector('.matched') !== null")
        check(b.js("document.querySelector('.matched').textContent").startswith("51-100 of"),
              "next page: rows 51-100")
        lines = b.js("fetch(document.querySelector('a.csv').href).then(r => r.text())"
                     ".then(t => t.trim().split('\\n').length)")
        check(lines == 100001, "CSV download: header + 100,000 rows (%s)" % lines)
        b.open(base + "/jobs/" + big_id + "?where=accuracy%3E%3D0.85&sort=accuracy")
        vals = b.js("[...document.querySelectorAll('table.trials tbody tr')].map(r => "
                    "parseFloat(r.children[2].textContent))")
        matched = b.js("document.querySelector('.matched').textContent")
        check(vals and min(vals) >= 0.85 and "matching" in matched,
              "where accuracy>=0.85: every row passes (%s)" % matched)
        b.errors.clear()
        b.open(base + "/jobs/" + big_id + "?where=accuracy%3E%3Eoops")
        check("where:" in b.js("document.querySelector('#candidates .error').textContent"),
              "a bad where names the field")
        check(not b.errors, "bad where: no console errors (%s)" % b.errors)

        # Live: the page of a job with no trials yet fills in from the watch stream.
        live = c.submit(spec("live", 4, acc_macs))["id"]
        b.errors.clear()
        b.open(base + "/jobs/" + live)
        b.js("window.notReloaded = true; 1")
        b.wait_for("document.getElementById('live-status').textContent === 'live'", 30)
        stop2 = threading.Event()
        sdk_workers(addr, secret["w"], 1, stop2)
        b.wait_for("document.querySelectorAll('table.trials tbody tr').length === 4 && "
                   "document.querySelector('dd.state').textContent === 'succeeded'", 120)
        stop2.set()
        check(b.js("window.notReloaded === true") and int(b.js("document.body.dataset.refreshes"))
              >= 1, "live job: rows and state updated without a reload (%s refreshes, %s events)"
              % (b.js("document.body.dataset.refreshes"), b.js("document.body.dataset.events")))
        b.screenshot(os.path.join(OUTDIR, "job-live.png"))
        check(not b.errors, "live job: no console errors (%s)" % b.errors)

    # Without a session, the event stream and the CSV are 401, the assets public.
    import urllib.request
    import urllib.error
    for path, code in (("/jobs/%s/events" % live, 401), ("/jobs/%s/candidates.csv" % live, 401),
                       ("/static/ui.js", 200)):
        try:
            got = urllib.request.urlopen(base + path, timeout=10).status
        except urllib.error.HTTPError as e:
            got = e.code
        check(got == code, "GET %s without a session: %d (%s)" % (path, code, got))
    print("screenshots in", OUTDIR)
    nf.finish(tmp, ["ctl.log", "chromium.log"])


if __name__ == "__main__":
    main()
