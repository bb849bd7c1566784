#!/usr/bin/python3
"""Optuna's TPE on a benchmark table, under nasforge's comparison protocol (`nasforge bench
strategies --peer optuna` runs it; docs/benchmarks.md).

  optuna_tpe_peer.py --table T.csv.gz --space SPACE.yaml --fitness-column C --seeds-column S
                 --report-column R --direction max|min --queries Q --runs N --seed K
                 --mode categorical|ordinal --checkpoints 25,50,100 [--incumbent oracle]

Protocol (the same as nasforge's side): each query is answered by one random seed's value (a
real training run is noisy); a run's result after q queries is the report column of the
configuration it observed as best; N runs; mean, standard error and regret (distance to the
table's best report value) at each checkpoint. Space: the job-spec search space's `parameters`
(categorical and ordinal domains: the tables' own values). Mode categorical: every parameter
a suggest_categorical of its values; ordinal: numbers as suggest_int over their indices (Optuna
then models their order). TPESampler with Optuna's defaults and the run's seed. Prints one JSON
object.
"""
import argparse
import csv
import gzip
import json
import math
import random
import sys

import optuna
import yaml


def key_text(cell):
    try:
        return repr(float(cell))
    except ValueError:
        return cell


def load_table(a, names):
    opener = gzip.open if a.table.endswith(".gz") else open
    rows = {}
    with opener(a.table, "rt") as f:
        for row in csv.DictReader(f):
            key = tuple(key_text(row[n]) for n in names)
            seeds = [float(x) for x in row[a.seeds_column].split(";")] if a.seeds_column else []
            rows[key] = (float(row[a.fitness_column]), seeds or [float(row[a.fitness_column])],
                         float(row[a.report_column]))
    return rows


def domain(p):
    if "categorical" in p:
        return p["categorical"]["values"], False
    if "ordinal" in p:
        return p["ordinal"]["values"], True
    sys.exit("optuna_tpe_peer: parameter %s: only categorical and ordinal domains (a table's values)"
             % p["name"])


def one_run(a, params, rows, seed, sign):
    rng = random.Random(seed)
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    best_fit, best_report, curve = -math.inf, None, []

    def objective(trial):
        nonlocal best_fit, best_report
        key = []
        for name, values, ordered in params:
            if a.mode == "ordinal" and ordered:
                v = values[trial.suggest_int(name, 0, len(values) - 1)]
            else:
                v = trial.suggest_categorical(name, values)
            key.append(key_text(str(v)))
        fitness, seeds, report = rows[tuple(key)]
        fit = sign * rng.choice(seeds)
        seen = sign * fitness if a.incumbent == "oracle" else fit
        if seen > best_fit:
            best_fit, best_report = seen, report
        curve.append(best_report)
        return fit

    study.optimize(objective, n_trials=a.queries)
    return curve


def main():
    ap = argparse.ArgumentParser()
    for flag in ("--table", "--space", "--fitness-column", "--report-column"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--seeds-column", default="")
    ap.add_argument("--direction", choices=["max", "min"], default="max")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mode", choices=["categorical", "ordinal"], default="categorical")
    ap.add_argument("--checkpoints", default="25,50,100")
    ap.add_argument("--incumbent", choices=["observed", "oracle"], default="observed",
                    help="oracle: the best table mean among the evaluated (a diagnostic)")
    a = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with open(a.space) as f:
        space = yaml.safe_load(f)
    space = space.get("search_space", space)
    params = []
    for p in space.get("parameters", []):
        values, ordered = domain(p)
        params.append((p["name"], values, ordered))
    params.sort(key=lambda p: p[0])
    rows = load_table(a, [p[0] for p in params])
    sign = -1.0 if a.direction == "min" else 1.0
    best = max(sign * r[2] for r in rows.values()) * sign
    curves = [one_run(a, params, rows, a.seed * 1000003 + r, sign) for r in range(a.runs)]
    out = {"peer": "optuna-tpe", "optuna": optuna.__version__, "mode": a.mode,
           "table_best": best, "runs": a.runs, "checkpoints": []}
    for q in [int(x) for x in a.checkpoints.split(",") if x]:
        if q > a.queries:
            continue
        vals = [c[q - 1] for c in curves]
        m = sum(vals) / len(vals)
        sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0
        out["checkpoints"].append({"queries": q, "mean": m, "stderr": sd / math.sqrt(len(vals)),
                                   "regret": abs(best - m)})
    print(json.dumps(out))


main()
