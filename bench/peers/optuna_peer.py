#!/usr/bin/python3
"""The `nasforge bench controller` workload through Optuna (Debian's python3-optuna), for a
side-by-side figure: random search over the NAS-Bench-201 cell (6 edges x 5 operations), each
trial's value a function of its architecture string (no training), persisted in Optuna's RDB
storage on the same database nasforge used. One process, one thread (Optuna's n_jobs=1).

  /usr/bin/python3 bench/peers/optuna_peer.py --storage URL --trials N [--seed S]

URL is nasforge's store URL: sqlite://PATH (Optuna gets its own file PATH.optuna) or
postgresql://... (Optuna's tables go to schema optuna_peer, created if missing). Prints one JSON
object: trials, seconds, trials_per_second, storage. Exit 2 with a message on bad arguments."""
import argparse
import hashlib
import json
import logging
import os
import sys
import time

OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]


def optuna_storage(url):
    import optuna
    if url.startswith("sqlite://"):
        path = url[len("sqlite://"):] + ".optuna"
        if os.path.exists(path):
            os.remove(path)
        return optuna.storages.RDBStorage("sqlite:///" + os.path.abspath(path)), "sqlite"
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg2
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute("DROP SCHEMA IF EXISTS optuna_peer CASCADE; CREATE SCHEMA optuna_peer")
        engine = {"connect_args": {"options": "-c search_path=optuna_peer"}}
        return optuna.storages.RDBStorage(url, engine_kwargs=engine), "postgresql"
    raise ValueError(f"--storage: '{url}' is not sqlite://PATH or postgresql://...")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--storage", required=True)
    p.add_argument("--trials", type=int, required=True)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    if a.trials < 1:
        p.error("--trials must be >= 1")
    try:
        import optuna
    except ImportError:
        print("error: python3-optuna is not installed (apt-get install python3-optuna)",
              file=sys.stderr)
        return 1
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    try:
        storage, kind = optuna_storage(a.storage)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    study = optuna.create_study(storage=storage, direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=a.seed),
                                study_name=f"peer-{time.time_ns()}")

    def objective(trial):
        ops = [trial.suggest_categorical(f"edge{i}", OPS) for i in range(6)]
        cell = "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops)
        h = int(hashlib.blake2b(cell.encode(), digest_size=8).hexdigest(), 16)
        return 40 + 50 * (h % 1000003) / 1000003.0

    start = time.perf_counter()
    study.optimize(objective, n_trials=a.trials, n_jobs=1)
    seconds = time.perf_counter() - start
    print(json.dumps({"trials": a.trials, "seconds": seconds,
                      "trials_per_second": a.trials / seconds, "storage": kind,
                      "optuna": optuna.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
