#!/usr/bin/python3
"""Hyperparameters searched with the architecture, through real processes: a controller
(SQLite), a tabular worker answering from a table of parameters (HPOBench MLP, gzip CSV keyed by
its parameter columns) and a LibTorch worker training recipes.

Checked:
  - a pure hyperparameter job (search_spaces/hpo/hpobench_mlp.yaml, TPE) runs to its budget on
    the tabular worker: every candidate is a row of the table (its accuracy one of that row's
    per-seed values), no candidate twice, and `nasforge candidates` shows the values;
  - a joint job (an MLP space plus optimizer, learning rate, momentum only with SGD, label
    smoothing) trains on the LibTorch worker with each candidate's recipe: every trial
    succeeds, the values are stored with the candidate, momentum only where the optimizer is sgd;
  - a name the built-in trainer does not bind is refused at submission naming
    search_space.parameters[0].name (exit 2), as is a value outside a name's range.

Usage: hyperparameter_e2e_test.py SOURCE_DIR CONTROLLER_BIN WORKER_BIN CLI_BIN
"""
import csv
import gzip
import json
import os
import sys
import tempfile

import nf_e2e as nf
from nf_e2e import check, start

SRC, CONTROLLER, WORKER, CLI = sys.argv[1:5]
TABLE = os.path.join(SRC, "bench", "data", "hpo", "hpobench_car.csv.gz")

HPO_JOB = """
name: hpo-table
strategy: {name: tpe}
budget: {max_trials: 30, max_parallel_trials: 2, seed: 5}
objectives: [{metric: accuracy, direction: maximize}]
training: {dataset: tabular}
search_space:
%s
"""

JOINT_JOB = """
name: joint
strategy: {name: evolution}
budget: {max_trials: 4, max_parallel_trials: 1, epochs: 1, seed: 2}
objectives: [{metric: accuracy, direction: maximize}]
training: {dataset: fashion-mnist, train_examples: 1500, validation_examples: 500,
           test_examples: 500, batch_size: 100}
search_space:
  name: mlp-recipe
  mlp: {in_features: 784, num_classes: 10, depth: [1], layers: [{units: [16, 32]}]}
  parameters:
%s
"""

RECIPE = """    - {name: optimizer, categorical: {values: [adamw, sgd]}}
    - {name: learning_rate, real: {low: 0.001, high: 0.05, log: true}}
    - {name: momentum, ordinal: {values: [0.8, 0.9]}, when: [{parameter: optimizer, values: [sgd]}]}
    - {name: label_smoothing, ordinal: {values: [0, 0.1]}}"""


def key_text(x):
    try:
        return repr(float(x))
    except ValueError:
        return x


def candidates(addr, job):
    r = nf.cli(CLI, addr, "candidates", job, "--json")
    return json.loads(r.stdout or "{}").get("trials", [])


def values(trial):
    return {v["name"]: v.get("text", v.get("number", 0))
            for v in trial["architecture"].get("params", {}).get("values", [])}


def submit(addr, tmp, name, text, watch=True):
    path = os.path.join(tmp, name + ".yaml")
    open(path, "w").write(text)
    return nf.cli(CLI, addr, "submit", path, *(["--watch"] if watch else []))


def main():
    tmp = tempfile.mkdtemp(prefix="nf-hyper-")
    try:
        _, addr = nf.start_controller(CONTROLLER, tmp, "ctl")
        start([WORKER, "--controller", addr, "--worker-id", "table", "--backend", "tabular",
               "--table", TABLE, "--key-column=", "--fitness-column", "value_mean",
               "--seeds-column", "value_seeds"], os.path.join(tmp, "tabular.log"))
        start([WORKER, "--controller", addr, "--worker-id", "torch", "--threads", "2"],
              os.path.join(tmp, "torch.log"))

        # A pure hyperparameter job answered from the table.
        space = open(os.path.join(SRC, "search_spaces", "hpo", "hpobench_mlp.yaml")).read()
        space = "\n".join("  " + line for line in space.splitlines() if not line.startswith("#"))
        r = submit(addr, tmp, "hpo", HPO_JOB % space)
        job = r.stdout.split()[0] if r.stdout.split() else ""
        check(r.returncode == 0, "table job succeeded (%s)" % r.stderr.strip()[-300:])
        ts = candidates(addr, job)
        rows = {}
        with gzip.open(TABLE, "rt") as f:
            for row in csv.DictReader(f):
                key = tuple(key_text(row[c]) for c in
                            ("alpha", "batch_size", "depth", "learning_rate_init", "width"))
                rows[key] = [float(s) for s in row["value_seeds"].split(";")]
        in_table = 0
        for t in ts:
            v = values(t)
            key = tuple(key_text(str(v.get(c))) for c in
                        ("alpha", "batch_size", "depth", "learning_rate_init", "width"))
            seeds = rows.get(key, [])
            if any(abs(s - t["metrics"].get("accuracy", -1)) < 1e-9 for s in seeds):
                in_table += 1
        check(len(ts) == 30 and all(t["state"] == "TRIAL_SUCCEEDED" for t in ts),
              "table job: 30 candidates answered (%d)" % len(ts))
        check(in_table == len(ts), "table job: each accuracy is one of its row's seeds (%d of %d)"
              % (in_table, len(ts)))
        check(len({t["arch_hash"] for t in ts}) == len(ts), "table job: no candidate twice")
        check(all(t["worker_id"] == "table" for t in ts),
              "table job: answered by the tabular worker only (the LibTorch one registered its "
              "image data sets)")
        out = nf.cli(CLI, addr, "candidates", job).stdout
        check("learning_rate_init=" in out and "width=" in out,
              "candidates table shows the values")
        r = nf.cli(CLI, addr, "importance", job, "--json")
        imp = json.loads(r.stdout or "{}")
        names = [d["name"] for d in imp.get("decisions", [])]
        check(r.returncode == 0 and imp.get("trials") == 30 and sorted(names) == sorted(
            "params." + c for c in ("alpha", "batch_size", "depth", "learning_rate_init", "width"))
              and abs(sum(d["importance"] for d in imp["decisions"]) - 1) < 1e-6,
              "importance: the five parameters, shares summing to 1 (%s)" % r.stderr.strip())

        # A joint architecture + recipe job on the LibTorch worker.
        r = submit(addr, tmp, "joint", JOINT_JOB % RECIPE)
        job = r.stdout.split()[0] if r.stdout.split() else ""
        check(r.returncode == 0, "joint job succeeded (%s)" % r.stderr.strip()[-300:])
        ts = candidates(addr, job)
        check(len(ts) == 4 and all(t["state"] == "TRIAL_SUCCEEDED" for t in ts),
              "joint job: 4 candidates trained (%s)" % [t.get("error", "")[:80] for t in ts])
        check(max(t["metrics"].get("accuracy", 0) for t in ts) > 0.5,
              "joint job: a recipe learns (%s; chance is 0.1)"
              % [t["metrics"].get("accuracy") for t in ts])
        check(all(t["worker_id"] == "torch" for t in ts),
              "joint job: trained by the LibTorch worker only (the tabular one registered "
              "datasets [tabular])")
        vs = [values(t) for t in ts]
        check(all(0.001 <= v["learning_rate"] <= 0.05 and (("momentum" in v) ==
                                                           (v["optimizer"] == "sgd")) for v in vs),
              "joint job: values stored, momentum only with sgd (%s)" % vs)

        # Refusals at submission, naming the field.
        r = submit(addr, tmp, "unknown", JOINT_JOB %
                   "    - {name: lr, real: {low: 0.001, high: 0.1}}", watch=False)
        check(r.returncode == 2 and "search_space.parameters[0].name" in r.stderr and
              "no parameter 'lr'" in r.stderr, "unknown name refused (%s)" % r.stderr.strip())
        r = submit(addr, tmp, "range", JOINT_JOB %
                   "    - {name: label_smoothing, ordinal: {values: [0, 0.7]}}", watch=False)
        check(r.returncode == 2 and "label_smoothing: 0.7 is out of range" in r.stderr,
              "value out of range refused (%s)" % r.stderr.strip())
    finally:
        nf.conclude(tmp, ["ctl.log", "tabular.log", "torch.log"])


if __name__ == "__main__":
    main()
