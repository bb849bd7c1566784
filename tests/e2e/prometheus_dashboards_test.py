#!/usr/bin/python3
"""Every dashboard panel, recording rule and alert, proven against a live Prometheus.

Starts a real controller and three tabular workers (NAS-Bench-201 table, each trial held for a
moment as if training) running one job, and Debian's `prometheus` scraping all four every second
with dashboards/rules.yml and dashboards/alerts.yml loaded (their windows shortened for the 1 s
scrape interval; thresholds unchanged). Then, through Prometheus's HTTP API:
  - every PromQL target of every panel of dashboards/grafana/*.json (with $job set to the running
    job and $__rate_interval to the test's window) returns data;
  - the dashboards' `job` variable query lists the job;
  - every recording rule's series exists, every rule evaluates without error, and every series
    selector in every alert expression matches scraped series;
  - no alert fires while all is well; killing the workers fires NasforgeNoWorkers, and killing the
    controller fires NasforgeControllerDown.
Also runs promtool check config/rules on the shipped files and checks the dashboards JSON is what
dashboards/build_dashboards.py makes.

Usage: prometheus_dashboards_test.py SOURCE_DIR CONTROLLER_BIN WORKER_BIN CLI_BIN
"""
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

SRC, CONTROLLER, WORKER, CLI = sys.argv[1:5]
WINDOW = "15s"  # rate windows: 15 samples at a 1 s scrape interval
failures = []
procs = []


def log(msg):
    print(msg, flush=True)


def fail(msg):
    failures.append(msg)
    log("FAIL: " + msg)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args, logfile):
    p = subprocess.Popen(args, stdout=open(logfile, "w"), stderr=subprocess.STDOUT)
    procs.append(p)
    return p


def wait_for(what, fn, timeout=90, interval=0.5):
    """Polls fn until it returns a truthy value; returns it, or None after `timeout` s."""
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    fail(f"timed out after {timeout} s waiting for {what}")
    return None


def api(path, **params):
    url = f"http://127.0.0.1:{PPORT}/api/v1/{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params, doseq=True)
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except Exception as e:  # noqa: BLE001 - a refused connection or a 400 reads as "no data yet"
        return {"status": "error", "error": str(e)}


def query(expr):
    """The result vector of an instant query, or None on an error."""
    r = api("query", query=expr)
    if r.get("status") != "success":
        return None
    return r["data"]["result"]


def shorten(rules_text):
    """Rule windows and `for` durations sized for the test's 1 s scrape/evaluation interval."""
    text = re.sub(r"\[(\d+)([mh])\]", f"[{WINDOW}]", rules_text)
    return re.sub(r"for: \d+[smh]", "for: 2s", text)


tmp = tempfile.mkdtemp(prefix="nasforge-dash-")
try:
    # --- the shipped files are valid ---------------------------------------------------------
    for cmd in (["promtool", "check", "rules", f"{SRC}/dashboards/rules.yml", f"{SRC}/dashboards/alerts.yml"],
                ["/usr/bin/python3", f"{SRC}/dashboards/build_dashboards.py", "--check"]):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"{' '.join(cmd)}: {r.stdout}{r.stderr}")
    # promtool check config resolves the shipped config's CA path; check a copy without TLS.
    shipped = open(f"{SRC}/dashboards/prometheus.yml").read()
    shutil.copy(f"{SRC}/dashboards/rules.yml", tmp)
    shutil.copy(f"{SRC}/dashboards/alerts.yml", tmp)
    with open(f"{tmp}/shipped.yml", "w") as f:
        f.write(re.sub(r"\n\s*tls_config:\n\s*ca_file: .*", "", shipped))
    r = subprocess.run(["promtool", "check", "config", f"{tmp}/shipped.yml"], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"promtool check config dashboards/prometheus.yml: {r.stdout}{r.stderr}")

    # --- a controller and three workers running a job ----------------------------------------
    mport = free_port()
    controller = start([CONTROLLER, "--listen", "127.0.0.1:0", "--port-file", f"{tmp}/port",
                        "--store", f"sqlite://{tmp}/c.db", "--metrics-listen", f"127.0.0.1:{mport}"],
                       f"{tmp}/controller.log")
    wait_for("the controller's port file", lambda: os.path.exists(f"{tmp}/port") and open(f"{tmp}/port").read().strip())
    target = "127.0.0.1:" + open(f"{tmp}/port").read().strip()
    wports = [free_port() for _ in range(3)]
    workers = []
    for i, wp in enumerate(wports):
        workers.append(start([WORKER, "--controller", target, "--backend", "tabular",
                              "--table", f"{SRC}/bench/data/nb201_cifar10.csv",
                              "--fitness-column", "c10_val_200ep", "--seeds-column", "c10_val_200ep_seeds",
                              "--report-columns", "c10_test_200ep", "--tabular-trial-seconds", "0.3",
                              "--worker-id", f"dash-worker-{i}", "--metrics-listen", f"127.0.0.1:{wp}"],
                             f"{tmp}/worker-{i}.log"))
    spec = open(f"{SRC}/search_spaces/examples/nb201_tabular.yaml").read()
    spec = spec.replace("max_trials: 300", "max_trials: 5000").replace("max_parallel_trials: 4", "max_parallel_trials: 3")
    with open(f"{tmp}/job.yaml", "w") as f:
        f.write(spec)
    r = subprocess.run([CLI, "--controller", target, "submit", f"{tmp}/job.yaml"], capture_output=True, text=True)
    job = r.stdout.strip()
    if r.returncode != 0 or not job.startswith("job-"):
        fail(f"submit: {r.stdout}{r.stderr}")
        raise SystemExit(1)

    # --- Prometheus scraping them, with the rules loaded ---------------------------------------
    PPORT = free_port()
    for name in ("rules.yml", "alerts.yml"):
        with open(f"{tmp}/{name}", "w") as f:
            f.write(shorten(open(f"{SRC}/dashboards/{name}").read()))
    with open(f"{tmp}/prometheus.yml", "w") as f:
        f.write(f"""global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [rules.yml, alerts.yml]
scrape_configs:
  - job_name: nasforge-controller
    static_configs: [{{targets: ["127.0.0.1:{mport}"]}}]
  - job_name: nasforge-worker
    static_configs: [{{targets: [{", ".join(f'"127.0.0.1:{p}"' for p in wports)}]}}]
""")
    r = subprocess.run(["promtool", "check", "config", f"{tmp}/prometheus.yml"], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"promtool check config (test config): {r.stdout}{r.stderr}")
    start(["prometheus", f"--config.file={tmp}/prometheus.yml", f"--storage.tsdb.path={tmp}/tsdb",
           f"--web.listen-address=127.0.0.1:{PPORT}"], f"{tmp}/prometheus.log")

    # Enough history for every window: the job's gauges scraped for WINDOW with trials finishing.
    wait_for("20 s of the job's series with 10 succeeded trials", lambda: query(
        f'count_over_time(nasforge_controller_job_trials{{job_id="{job}",state="succeeded"}}[30s]) >= 20 '
        f'and nasforge_controller_job_trials{{job_id="{job}",state="succeeded"}} >= 10'), timeout=120)
    wait_for("every target up", lambda: (query('count(up == 1)') or [{"value": [0, "0"]}])[0]["value"][1] == "4")

    # --- every panel returns data --------------------------------------------------------------
    panels = 0
    for path in sorted(glob.glob(f"{SRC}/dashboards/grafana/*.json")):
        d = json.load(open(path))
        for v in d["templating"]["list"]:
            if v["type"] == "query":
                m = re.fullmatch(r"label_values\((\w+), *(\w+)\)", v["definition"])
                if not m:
                    fail(f"{os.path.basename(path)}: variable {v['name']}: unsupported query {v['definition']}")
                    continue
                vals = api(f"label/{m.group(2)}/values", **{"match[]": m.group(1)}).get("data", [])
                if job not in vals:
                    fail(f"{os.path.basename(path)}: variable {v['name']} ({v['definition']}) lists {vals}, not {job}")
        for p in d["panels"]:
            for t in p["targets"]:
                expr = t["expr"].replace("$job", job).replace("$__rate_interval", WINDOW)
                panels += 1
                where = f"{os.path.basename(path)} panel '{p['title']}' target {t['refId']}"
                if "$" in expr:
                    fail(f"{where}: unresolved variable in {expr}")
                    continue
                if not wait_for(f"{where}: data for {expr}", lambda: query(expr), timeout=45):
                    log(f"  last answer: {api('query', query=expr)}")
    log(f"checked {panels} panel queries")

    # --- every rule evaluates; recorded series exist; alert selectors match --------------------
    rules = [r for g in api("rules")["data"]["groups"] for r in g["rules"]]
    if len(rules) < 19:
        fail(f"Prometheus loaded {len(rules)} rules, expected every one of rules.yml and alerts.yml")
    for r in rules:
        if r.get("health") not in ("ok", "unknown") or r.get("lastError"):
            fail(f"rule {r['name']}: health {r.get('health')} {r.get('lastError')}")
        if r["type"] == "recording":
            wait_for(f"recorded series {r['name']}", lambda: query(r["name"]), timeout=30)
        else:
            # Selectors: metric names (with their label matchers) the expression reads.
            for sel in re.finditer(r"\b((?:nasforge_[a-z_]+|up)(?:\{[^}]*\})?)", r["query"]):
                s = sel.group(1)
                if not wait_for(f"alert {r['name']}: series for {s}", lambda: query(s), timeout=30):
                    pass
    firing = [a["labels"]["alertname"] for a in api("alerts")["data"]["alerts"] if a["state"] == "firing"]
    if firing:
        fail(f"alerts firing while everything works: {firing}")

    # --- drive alerts to firing -------------------------------------------------------------------
    def firing_alert(name):
        for a in api("alerts").get("data", {}).get("alerts", []):
            if a["labels"]["alertname"] == name and a["state"] == "firing":
                return a
        return None

    for w in workers:
        w.send_signal(signal.SIGKILL)
    # The controller counts a worker gone after 3 heartbeats + 30 s of silence.
    if wait_for("NasforgeNoWorkers to fire", lambda: firing_alert("NasforgeNoWorkers"), timeout=120):
        log("NasforgeNoWorkers fired after the workers were killed")
    controller.send_signal(signal.SIGKILL)
    if wait_for("NasforgeControllerDown to fire", lambda: firing_alert("NasforgeControllerDown"), timeout=60):
        log("NasforgeControllerDown fired after the controller was killed")
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()
    if failures:
        for name in ("controller.log", "prometheus.log", "worker-0.log"):
            path = os.path.join(tmp, name)
            if os.path.exists(path):
                log(f"--- tail of {name}")
                log("".join(open(path).readlines()[-15:]))
    shutil.rmtree(tmp, ignore_errors=True)

print(f"{0 if failures else 1} passed, {1 if failures else 0} failed")
sys.exit(1 if failures else 0)
