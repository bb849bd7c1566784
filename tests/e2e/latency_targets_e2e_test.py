#!/usr/bin/python3
"""Latency on hardware targets, end to end: two hardware profiles, routing, cache, bounds, queries.

A controller (SQLite) and two LibTorch workers of different profiles: `lat-1t` (cpu-1t, one
thread) and `lat-2t` (cpu-2t, two threads). Both train and both measure latency. A Fashion-MNIST
job names two hardware targets: cpu-1t (batch 1, 1 thread) and `edge` (profile cpu-2t, batch 8,
2 threads). Checked:
  - every trained candidate has latency_ms@cpu-1t measured by lat-1t and latency_ms@edge
    (batch 8) measured by lat-2t, with p50 <= p90 <= p99;
  - a second job over the same space and seed, with a bound latency_ms@cpu-1t <= B (the
    third-fastest of the first job), takes the first job's measurements from the cache (none is
    measured twice: the controller logged one `measured` per (architecture, setting)), rejects
    the candidates over B before training (FAILED, rejected, never leased), and trains only
    candidates under it;
  - `nasforge pareto JOB --hardware-profile cpu-2t --where latency_ms<=X` answers the candidates
    whose edge latency is <= X, non-dominated in (accuracy, latency on edge); an unknown target
    in --where is refused naming the field.

Usage: latency_targets_e2e_test.py CONTROLLER_BIN WORKER_BIN CLI_BIN
"""
import json
import os
import re
import shutil
import sys
import tempfile

import nf_e2e as nf
from nf_e2e import check, start

CONTROLLER, WORKER, CLI = sys.argv[1:4]
DATA = "/usr/share/datasets/fashion-mnist"


def cli(addr, *args):
    return nf.cli(CLI, addr, *args)


JOB = """
name: %(name)s
strategy: {name: random}
budget: {max_trials: 4, max_parallel_trials: 2, epochs: 1, seed: 5}
objectives: [{metric: accuracy, direction: MAXIMIZE}, {metric: latency_ms@edge, direction: MINIMIZE}]
%(constraints)s
hardware_targets:
  - {profile: cpu-1t, threads: 1}
  - {name: edge, profile: cpu-2t, batch_size: 8, threads: 2}
training: {dataset: fashion-mnist, train_examples: 1000, validation_examples: 500,
           test_examples: 500, batch_size: 128, learning_rate: 0.004}
search_space:
  name: mbconv-tiny
  mbconv:
    resolution: 28
    in_channels: 1
    num_classes: 10
    stem_channels: [8, 16]
    stem_stride: 2
    stages:
      - {stride: 2, kernel: [3, 5], expansion: [1, 3, 6], repeats: [1, 2], channels: [16, 32], se_ratio: [0]}
    head_channels: [32]
"""


def submit(addr, tmp, name, constraints=""):
    path = os.path.join(tmp, name + ".yaml")
    open(path, "w").write(JOB % {"name": name, "constraints": constraints})
    r = cli(addr, "submit", path, "--watch")
    check(r.returncode == 0, "%s finished (%s)" % (name, r.stderr.strip()[-300:]))
    job = r.stdout.split()[0] if r.stdout.split() else ""
    trials = json.loads(cli(addr, "candidates", job, "--json").stdout or "{}").get("trials", [])
    return job, trials


def latencies(t):
    return {m["target"]: m for m in t.get("latencies", [])}


def main():
    tmp = tempfile.mkdtemp(prefix="nf-latency-e2e-")
    try:
        _, addr = nf.start_controller(CONTROLLER, tmp, "controller")
        for wid, threads in (("lat-1t", 1), ("lat-2t", 2)):
            start([WORKER, "--controller", addr, "--threads", str(threads), "--hardware-profile",
                   "cpu-%dt" % threads, "--data-dir", DATA, "--worker-id", wid,
                   "--metrics-listen", "", "--keep-weights=false"],
                  os.path.join(tmp, wid + ".log"))

        # 1. Every candidate measured on both targets, each by a worker of its profile.
        job1, trials1 = submit(addr, tmp, "targets-1")
        done1 = [t for t in trials1 if t["state"] == "TRIAL_SUCCEEDED"]
        check(len(done1) == 4, "job 1: 4 candidates trained (%d)" % len(done1))
        for t in done1:
            lat = latencies(t)
            one, edge = lat.get("cpu-1t", {}), lat.get("edge", {})
            check(one.get("worker_id") == "lat-1t" and one.get("batch_size") == 1,
                  "trial %s: cpu-1t measured by lat-1t at batch 1 (%s)" % (t.get("id", "0"), one))
            check(edge.get("worker_id") == "lat-2t" and edge.get("batch_size") == 8 and
                  edge.get("threads") == 2 and edge.get("profile") == "cpu-2t",
                  "trial %s: edge measured by lat-2t at batch 8, 2 threads (%s)" % (t.get("id", "0"), edge))
            for m in (one, edge):
                check(0 < m.get("p50_ms", 0) <= m.get("p90_ms", 0) <= m.get("p99_ms", 0),
                      "trial %s: p50 <= p90 <= p99 on %s" % (t.get("id", "0"), m.get("target")))
            check(t["metrics"].get("latency_ms@edge") == edge.get("p50_ms"),
                  "trial %s: latency_ms@edge is the edge p50" % t.get("id", "0"))

        # 2. The same space and seed with a latency bound: cached, rejected before training.
        fast = sorted(latencies(t)["cpu-1t"]["p50_ms"] for t in done1)
        bound = fast[2]  # three of job 1's four pass (from the cache), one is rejected
        hashes1 = {t["arch_hash"] for t in done1}
        job2, trials2 = submit(addr, tmp, "targets-2", "constraints: [{metric: latency_ms@cpu-1t, upper: %r}]" % bound)
        rejected = [t for t in trials2 if t.get("rejected")]
        trained = [t for t in trials2 if t["state"] == "TRIAL_SUCCEEDED"]
        check(len(rejected) >= 1, "job 2: %d candidates rejected before training" % len(rejected))
        for t in rejected:
            lat = latencies(t)["cpu-1t"]["p50_ms"]
            check(t["state"] == "TRIAL_FAILED" and lat > bound and
                  "rejected before training" in t.get("error", "") and not t.get("attempts"),
                  "trial %s rejected: %.3f ms > %.3f, never leased (%s)" % (t.get("id", "0"), lat, bound, t.get("error")))
        for t in trained:
            lat = latencies(t)["cpu-1t"]["p50_ms"]
            check(lat <= bound, "trial %s trained: %.3f ms <= %.3f" % (t.get("id", "0"), lat, bound))
        repeated = [t for t in trials2 if t["arch_hash"] in hashes1]
        check(len(repeated) >= 2, "job 2 saw %d of job 1's architectures again" % len(repeated))
        for t in repeated:
            lat = latencies(t)
            check(all(m.get("cached") for m in lat.values()) and len(lat) >= 1,
                  "trial %s (seen in job 1): latencies from the cache" % t.get("id", "0"))
        counts2 = json.loads(cli(addr, "status", job2, "--json").stdout or "{}").get("counts", {})
        # The three of job 1's candidates under B train; more only if the space has them.
        check(counts2.get("rejected_by_latency") == len(rejected) and counts2.get("succeeded", 0) >= 3,
              "job 2 counts: >= 3 trained, %d rejected (%s)" % (len(rejected), counts2))
        log = open(os.path.join(tmp, "controller.log")).read()
        measured = re.findall(r"event=measured .*?hash=(\S+) profile=(\S+) batch=(\d+)", log)
        check(len(measured) == len(set(measured)),
              "no (architecture, setting) measured twice (%d measurements)" % len(measured))
        settings = {(t["arch_hash"], m["profile"], m["batch_size"]) for t in trials1 + trials2
                    for m in latencies(t).values()}
        # One measurement per (architecture, setting) any trial holds, and no other: a
        # candidate rejected on the bounded target is never measured on the other one.
        check({(h, p, int(b)) for h, p, b in measured} == settings,
              "one measurement per (architecture, setting) across both jobs: %d == %d" % (len(measured), len(settings)))

        # 3. Pareto on a profile: its latency is the one ranked and bounded.
        edge = sorted(latencies(t)["edge"]["p50_ms"] for t in done1)
        x = edge[2]
        r = cli(addr, "pareto", job1, "--hardware-profile", "cpu-2t", "--where", "latency_ms<=%r" % x,
                "--objectives", "accuracy:max,latency_ms:min", "--json")
        check(r.returncode == 0, "pareto --hardware-profile cpu-2t: " + r.stderr.strip())
        front = json.loads(r.stdout or "{}")
        members = front.get("trials", [])
        check(front.get("considered") == sum(1 for v in edge if v <= x),
              "considered: the candidates with edge latency <= %.3f (%s)" % (x, front.get("considered")))
        pts = [(t["metrics"]["accuracy"], latencies(t)["edge"]["p50_ms"]) for t in done1
               if latencies(t)["edge"]["p50_ms"] <= x]
        for t in members:
            a, l = t["metrics"]["accuracy"], latencies(t)["edge"]["p50_ms"]
            check(l <= x, "front member %s: edge latency %.3f <= %.3f" % (t.get("id", "0"), l, x))
            dominated = any(pa >= a and pl <= l and (pa > a or pl < l) for pa, pl in pts)
            check(not dominated, "front member %s is not dominated on (accuracy, edge latency)" % t.get("id", "0"))
        r = cli(addr, "pareto", job1, "--hardware-profile", "cpu-2t")
        check(r.returncode == 0 and "measured on cpu-2t" in r.stdout, "pareto table names the profile")
        r = cli(addr, "pareto", job1, "--where", "latency_ms@h100<=2")
        check(r.returncode != 0 and "constraints[0].metric" in r.stderr and "edge" in r.stderr,
              "an unknown target is refused naming the field: " + r.stderr.strip())
    finally:
        nf.finish(tmp, ("controller.log", "lat-1t.log", "lat-2t.log"))
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if nf.failures else 0)


main()
