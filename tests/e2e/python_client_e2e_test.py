#!/usr/bin/python3
"""The Python client and worker SDK against a real controller over gRPC (loopback).

A controller (SQLite) and one built-in LibTorch worker. Checked:
  - refusals raise NasforgeError with the gRPC code and the field path (a YAML spec's unknown key
    with its line; a dict spec's bad value; an unknown job is NOT_FOUND);
  - an `external` job whose candidates are trained by the SDK with the example's own PyTorch loop
    (clients/python/examples/train_own_data.py) on generated 3-channel images: every trial
    trained by the SDK worker, never by the built-in worker; better than chance; candidates and
    pareto as DataFrames with Optuna-style columns; the front under a `where`;
  - early stopping decides: a job whose train function reports falling accuracy has trials
    STOPPED by ASHA, whose train function saw report() say stop and left its loop;
  - a train function that raises fails its trial with the message; one that returns accuracy 2
    fails it with the controller's refusal;
  - cancel: a running trial's next report raises TrialCancelled and nothing is recorded; resume
    gives the cancelled trial's place back to the budget and the job trains 3 candidates;
  - extend: the ended ASHA job gets 2 more trials, runs again and ends with 8;
  - paging: candidates listed 3 per page equal one listing; watch yields the snapshot first and
    job_finished last; jobs() lists every job, filtered by name, label and state; delete;
    submit(warm_start=[job]) reuses the ASHA job's results (same recipe);
  - kill -9 of the controller while an SDK worker waits: a new controller on the same store and
    port, and the worker trains its next job.

Usage: python_client_e2e_test.py CONTROLLER_BIN WORKER_BIN PYTHONPATH EXAMPLES_DIR
"""
import math
import os
import sys
import tempfile
import threading

CONTROLLER, WORKER, PYPATH, EXAMPLES = sys.argv[1:5]
sys.path[:0] = [PYPATH, EXAMPLES]

import nf_e2e as nf  # noqa: E402
from nf_e2e import check, start  # noqa: E402

import nasforge  # noqa: E402
from nasforge.worker import TrialCancelled  # noqa: E402

SPACE = {
    "name": "mbconv-rgb16",
    "mbconv": {
        "resolution": 16, "in_channels": 3, "num_classes": 4,
        "stem_channels": [8, 16], "stem_stride": 1,
        "stages": [{"stride": 2, "kernel": [3, 5], "expansion": [1, 3], "repeats": [1, 2],
                    "channels": [16, 24], "se_ratio": [0]}],
        "head_channels": [32],
    },
}


def spec(name, max_trials, epochs, parallel=1, rule=None, seed=3):
    s = {"name": name, "strategy": {"name": "random"}, "labels": {"suite": "python-e2e"},
         "budget": {"max_trials": max_trials, "max_parallel_trials": parallel, "epochs": epochs,
                    "seed": seed},
         "objectives": [{"metric": "accuracy", "direction": "maximize"},
                        {"metric": "macs", "direction": "minimize"}],
         "training": {"dataset": "external", "batch_size": 64, "learning_rate": 0.003},
         "search_space": SPACE}
    if rule:
        s["early_stopping"] = rule
    return s


def sdk_worker(addr, train, name, stop):
    """An SDK worker in a thread; its outcome counts land in box[0]."""
    box = []

    def go():
        try:
            box.append(nasforge.worker.run(train, controller=addr, worker_id=name, stop=stop))
        except Exception as e:  # a failure of the SDK itself: make the test say so
            box.append({"crashed": repr(e)})
    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t, box


def refusals(c, tmp):
    bad = os.path.join(tmp, "bad.yaml")
    open(bad, "w").write("name: x\nbudget:\n  max_trails: 3\n")
    try:
        c.submit(bad)
        check(False, "a YAML spec with an unknown key is refused")
    except nasforge.NasforgeError as e:
        check(e.code_name == "INVALID_ARGUMENT" and e.line == 3 and
              (e.field or "").startswith("budget") and "max_trials" in e.message,
              "unknown YAML key: INVALID_ARGUMENT, line 3, field %s, suggests max_trials (%s)"
              % (e.field, e.message))
    s = spec("bad", 2, 2)
    s["budget"]["max_trials"] = -1
    try:
        c.submit(s)
        check(False, "a dict spec with max_trials -1 is refused")
    except nasforge.NasforgeError as e:
        check(e.field == "budget.max_trials", "dict spec: field budget.max_trials (%s)" % e)
    try:
        c.job("job-nope")
        check(False, "an unknown job is refused")
    except nasforge.NasforgeError as e:
        check(e.code_name == "NOT_FOUND", "unknown job: NOT_FOUND (%s)" % e)
    try:
        c.pareto("job-nope", where="macs<=x")
        check(False, "a bad where is refused")
    except nasforge.NasforgeError as e:
        check(e.field == "where", "where 'macs<=x': field where (%s)" % e)


def hyperparameters(c, addr):
    """An external job searching hyperparameters with the architecture: the SDK's train function
    receives them by name, and the DataFrame has a params_NAME column for each (Optuna's
    convention). Any name is the external worker's to interpret."""
    s = spec("hyper", 4, 1)
    s["strategy"] = {"name": "evolution"}
    s["search_space"] = dict(SPACE, parameters=[
        {"name": "lr", "real": {"low": 1e-3, "high": 0.1, "log": True}},
        {"name": "opt", "categorical": {"values": ["adam", "sgd"]}},
        {"name": "mom", "ordinal": {"values": [0.8, 0.9]},
         "when": [{"parameter": "opt", "values": ["sgd"]}]}])
    job = c.submit(s)
    seen = []

    def train(trial):
        seen.append(dict(trial.hyperparameters))
        h = trial.hyperparameters
        trial.report(1, {"accuracy": 1.0 - abs(h["lr"] - 0.01)})
        return {"accuracy": 1.0 - abs(h["lr"] - 0.01)}
    stop = threading.Event()
    t, box = sdk_worker(addr, train, "sdk-hyper", stop)
    final = c.wait(job["id"], timeout=300)
    stop.set()
    t.join(30)
    check(final["state"] == "JOB_SUCCEEDED", "hyperparameter job succeeded (%s)" % final["state"])
    check(len(seen) == 4 and all(1e-3 <= h["lr"] <= 0.1 and h["opt"] in ("adam", "sgd") and
                                 (("mom" in h) == (h["opt"] == "sgd")) for h in seen),
          "the train function got lr, opt and mom only with sgd (%s)" % seen)
    df = c.candidates(job["id"])
    check({"params_lr", "params_opt", "params_stem_channels"} <= set(df.columns),
          "candidates columns params_lr, params_opt beside the architecture's (%s)"
          % sorted(df.columns))
    check(sorted(df["params_lr"]) == sorted(h["lr"] for h in seen),
          "params_lr holds the values trained")


def multi_fidelity(c, addr):
    """bohb: successive halving (asha, named by the strategy) stops the weak learning rates at a
    rung, and the model, fed by every rung, proposes better ones than the random start."""
    s = spec("bohb", 30, 4)
    s["strategy"] = {"name": "bohb"}
    s["objectives"] = [{"metric": "accuracy", "direction": "maximize"}]
    s["search_space"] = dict(SPACE, parameters=[
        {"name": "lr", "real": {"low": 1e-4, "high": 1.0, "log": True}}])
    job = c.submit(s)
    check(job["spec"]["early_stopping"]["rule"] == "asha",
          "bohb names successive halving as its stopping rule (%s)" % job["spec"]["early_stopping"])
    order = []

    def train(trial):
        lr = trial.hyperparameters["lr"]
        order.append(lr)
        quality = 1.0 - abs(math.log10(lr) + 2) / 4  # best at 0.01
        for epoch in range(1, trial.epochs + 1):
            if trial.report(epoch, {"accuracy": quality * epoch / trial.epochs}):
                break
        return {"accuracy": quality}
    stop = threading.Event()
    t, box = sdk_worker(addr, train, "sdk-bohb", stop)
    final = c.wait(job["id"], timeout=300)
    stop.set()
    t.join(30)
    check(final["state"] == "JOB_SUCCEEDED", "bohb job succeeded (%s)" % final["state"])
    df = c.candidates(job["id"])
    check(len(df) == 30 and (df["state"] == "STOPPED").sum() >= 10,
          "bohb: 30 candidates, %d stopped at a rung" % (df["state"] == "STOPPED").sum())
    dist = [abs(math.log10(lr) + 2) for lr in order]
    first, last = sum(dist[:10]) / 10, sum(dist[-10:]) / 10
    check(last < 0.6 * first,
          "bohb: the model's last 10 learning rates lie nearer the best (mean |log10 lr + 2| "
          "%.2f) than the random first 10 (%.2f)" % (last, first))
    # What matters (GetImportance), over the succeeded trials (those asha let through).
    imp = c.importance(job["id"])
    succeeded = int((df["state"] == "SUCCEEDED").sum())
    check("params.lr" in imp.index and "stem_channels" in imp.index and
          abs(imp["importance"].sum() - 1) < 1e-9 and
          imp.loc["params.lr", "observations"] == succeeded and
          list(imp["importance"]) == sorted(imp["importance"], reverse=True),
          "importance: %d decisions, most important first, shares summing to 1, over the %d "
          "succeeded trials (%s)" % (len(imp), succeeded, imp["importance"].round(3).to_dict()))
    # At the first rung every trial has a value, the stopped ones too: the learning rate, the
    # only thing the accuracy depends on, matters most there.
    rung = c.importance(job["id"], epoch=1)
    check(rung.index[0] == "params.lr" and rung.loc["params.lr", "observations"] == 30,
          "importance at epoch 1: params.lr first, over all 30 trials (%s)"
          % rung["importance"].round(3).to_dict())
    dec, pts = c.importance(job["id"], points=True)
    lr = pts[pts["decision"] == "params.lr"]
    check(len(lr) == succeeded and "accuracy" in pts.columns and
          (lr["x"] > 0).all() and bool(dec.loc["params.lr", "log"]),
          "importance points: one per succeeded trial for params.lr, a log-scaled axis")
    try:
        c.importance(job["id"], metric="no_such_metric")
        check(False, "importance of an unknown metric is refused")
    except nasforge.NasforgeError as e:
        check(e.code_name == "INVALID_ARGUMENT" and e.field == "metric",
              "importance of an unknown metric: INVALID_ARGUMENT naming metric (%s)" % e)


def own_training(c, addr):
    """The example's PyTorch loop trains an external job's candidates."""
    import train_own_data as ex
    images, labels = ex.fake_data(n=900, classes=4, size=16)
    job = c.submit(spec("own-loop", 3, 3, parallel=1))
    stop = threading.Event()
    t, box = sdk_worker(addr, ex.make_train(images, labels), "sdk-torch", stop)
    final = c.wait(job["id"], timeout=600)
    stop.set()
    t.join(30)
    check(final["state"] == "JOB_SUCCEEDED", "own-loop job succeeded (%s)" % final["state"])
    df = c.candidates(job["id"])
    check(len(df) == 3 and set(df["state"]) <= {"SUCCEEDED", "STOPPED"},
          "3 candidates, all trained (%s)" % list(df["state"]))
    check(set(df["worker_id"]) == {"sdk-torch"},
          "every candidate trained by the SDK worker, none by the built-in one (%s)"
          % set(df["worker_id"]))
    for col in ("number", "values_accuracy", "values_macs", "params_stem_channels",
                "params_stages_0_kernel", "metrics_params", "metrics_train_seconds",
                "datetime_created", "datetime_complete"):
        check(col in df.columns, "candidates column %s" % col)
    check(df["values_accuracy"].max() > 0.5,
          "best accuracy %.3f > 0.5 (4 classes: chance is 0.25)" % df["values_accuracy"].max())
    front = c.pareto(job["id"])
    check(1 <= len(front) <= 3 and front["values_accuracy"].is_monotonic_decreasing,
          "pareto: %d members, best accuracy first" % len(front))
    cap = float(df["values_macs"].median())
    under = c.pareto(job["id"], where="macs<=%r" % cap)
    check(len(under) >= 1 and (under["values_macs"] <= cap).all(),
          "pareto where macs<=median: %d members, all under" % len(under))
    rows = c.candidates(job["id"], as_frame=False)
    check(isinstance(rows, list) and rows[0]["number"] == 0, "as_frame=False gives dicts")
    return job


def early_stopping(c, addr):
    """Falling accuracy, trial by trial: ASHA stops the later ones at its first rung."""
    epochs_run, saw_stop = {}, {}

    def train(trial):
        base = max(0.05, 0.9 - 0.1 * trial.trial_id)
        if trial.trial_id == 4:
            raise RuntimeError("CUDA out of memory (raised on purpose)")
        if trial.trial_id == 5:
            return {"accuracy": 2.0}
        for epoch in range(1, trial.epochs + 1):
            epochs_run[trial.trial_id] = epoch
            if trial.report(epoch, {"accuracy": base, "loss": 1.0 / epoch}):
                saw_stop[trial.trial_id] = epoch
                break
        return {"accuracy": base}

    job = c.submit(spec("asha", 6, 4, rule={"rule": "asha", "min_epochs": 1, "eta": 2,
                                           "keep_cost_front": False}))
    # A known architecture seeded before any worker asks: trial 0, trained like the others.
    seed = {"mbconv": {"resolution": 16, "in_channels": 3, "num_classes": 4, "stem_channels": 16,
                       "stem_stride": 1, "head_channels": 32,
                       "stages": [{"stride": 2, "kernel": 5, "expansion": 3, "repeats": 2,
                                   "channels": 24, "se_ratio": 0}]}}
    queued = c.enqueue(job["id"], seed)
    check(queued["state"] == "TRIAL_QUEUED" and int(queued.get("id", 0)) == 0,
          "enqueue: the known architecture is trial 0, queued")
    for bad, code in (({"mbconv": dict(seed["mbconv"], stem_channels=12)}, "INVALID_ARGUMENT"),
                      (seed, "ALREADY_EXISTS"), ({"mbconv": {"bogus": 1}}, "INVALID_ARGUMENT")):
        try:
            c.enqueue(job["id"], bad)
            check(False, "enqueue %s refused" % code)
        except nasforge.NasforgeError as e:
            check(e.code_name == code and e.field == "architecture",
                  "enqueue refused: %s naming architecture (%s)" % (code, e))
    events = []
    watcher = threading.Thread(target=lambda: events.extend(c.watch(job["id"], timeout=300)),
                               daemon=True)
    watcher.start()
    stop = threading.Event()
    t, box = sdk_worker(addr, train, "sdk-fake", stop)
    final = c.wait(job["id"], timeout=300)
    stop.set()
    t.join(30)
    watcher.join(30)
    df = c.candidates(job["id"])
    stopped = df[df["state"] == "STOPPED"]
    check(len(stopped) >= 1, "ASHA stopped %d trials" % len(stopped))
    check(all(saw_stop.get(n) == epochs_run.get(n) < 4 for n in stopped["number"]),
          "each stopped trial's train function saw report() say stop and left its loop "
          "(stopped at %s)" % {int(n): saw_stop.get(n) for n in stopped["number"]})
    check(df.loc[0, "state"] == "SUCCEEDED" and df.loc[0, "params_stem_channels"] == 16 and
          df.loc[0, "params_stages_0_kernel"] == 5,
          "the enqueued architecture (trial 0, the best) ran to the end")
    check(df.loc[4, "state"] == "FAILED" and "out of memory" in df.loc[4, "error"],
          "an exception fails its trial with the message (%r)" % df.loc[4, "error"])
    check(df.loc[5, "state"] == "FAILED" and "accuracy" in df.loc[5, "error"],
          "accuracy 2 fails its trial with the controller's refusal (%r)" % df.loc[5, "error"])
    check(final["state"] == "JOB_SUCCEEDED", "asha job succeeded")
    # A worker's failure report counts an attempt: each failing trial was tried max_attempts (3)
    # times before it failed for good.
    check(box and box[0].get("failed") == 6 and "crashed" not in box[0],
          "the worker counted its outcomes: 2 failing trials x 3 attempts (%s)" % box)
    kinds = [e["kind"] for e in events]
    check(kinds[:1] == ["snapshot"] and kinds[-1:] == ["job_finished"] and
          "trial_finished" in kinds, "watch: snapshot first, job_finished last (%d events)"
          % len(kinds))
    paged = list(c.iter_candidates(job["id"], page_size=3))
    check([t.id for t in paged] == list(range(6)), "3 per page: the 6 trials in order")
    # Extended after it ended: it runs again, the strategy going on, and ends with 8 trials.
    ext = c.extend(job["id"], add_trials=2)
    check(ext["state"] == "JOB_RUNNING" and ext["spec"]["budget"]["max_trials"] == 8,
          "extend: running again with a budget of 8 (%s)" % ext["state"])
    stop = threading.Event()
    t, box = sdk_worker(addr, train, "sdk-fake", stop)
    final = c.wait(job["id"], timeout=300)
    stop.set()
    t.join(30)
    check(final["state"] == "JOB_SUCCEEDED" and len(c.candidates(job["id"])) == 8,
          "extended job ended with 8 trials (%s)" % final["state"])
    # compress: an external trainer keeps no weights to compress; a malformed recipe names its
    # index. Refused, nothing applied: the job stays ended.
    for recipes, want in (([{"int8": {}}], "keeps no trained weights"), ([{"int9": {}}], "recipes[0]")):
        try:
            c.compress(job["id"], 0, recipes)
            check(False, "compress %s is refused" % recipes)
        except nasforge.NasforgeError as e:
            check(e.code_name == "INVALID_ARGUMENT" and want in e.message,
                  "compress %s: INVALID_ARGUMENT, %s (%s)" % (recipes, want, e))
    check(c.job(job["id"])["state"] == "JOB_SUCCEEDED", "refused compress: the job stays ended")
    return job


def cancelling(c, addr):
    started, go_on, outcome = threading.Event(), threading.Event(), {}

    def train(trial):
        started.set()
        go_on.wait(60)
        try:
            trial.report(1, {"accuracy": 0.5})
            outcome["raised"] = False
        except TrialCancelled as e:
            outcome["raised"] = str(e)
            raise
        return {"accuracy": 0.5}

    job = c.submit(spec("cancel-me", 3, 2))
    stop = threading.Event()
    t, box = sdk_worker(addr, train, "sdk-cancel", stop)
    check(started.wait(60), "the SDK worker leased a trial")
    c.cancel(job["id"])
    go_on.set()
    stop.set()
    t.join(30)
    check(bool(outcome.get("raised")), "after cancel, report() raised TrialCancelled (%s)"
          % outcome)
    j = c.job(job["id"])
    check(j["state"] == "JOB_CANCELLED" and "accuracy" not in str(c.candidate(job["id"], 0)
                                                                 .get("metrics", {})),
          "job cancelled, nothing recorded for the trial")
    # Resumed: the cancelled trial's place is given back to the budget; it trains 3 candidates.
    go_on.set()
    r = c.resume(job["id"])
    check(r["state"] == "JOB_RUNNING" and r["spec"]["budget"]["max_trials"] == 4,
          "resume: running again with a budget of 3 + 1 cancelled")
    stop = threading.Event()
    t, box = sdk_worker(addr, lambda trial: {"accuracy": 0.5}, "sdk-resume", stop)
    final = c.wait(job["id"], timeout=300)
    stop.set()
    t.join(30)
    df = c.candidates(job["id"])
    check(final["state"] == "JOB_SUCCEEDED" and list(df["state"]).count("SUCCEEDED") == 3 and
          df.loc[0, "state"] == "CANCELLED", "resumed job: 3 trained, the cancelled one stays "
          "cancelled (%s)" % list(df["state"]))
    try:
        c.resume(job["id"])
        check(False, "resuming a succeeded job is refused")
    except nasforge.NasforgeError as e:
        check(e.code_name == "FAILED_PRECONDITION", "resume of a succeeded job: %s" % e)
    return job


def controller_restart(ctl, addr, tmp):
    """kill -9 of the controller while an SDK worker waits for work; a new controller on the same
    store and port: the worker keeps asking and trains the next job."""
    stop = threading.Event()
    t, box = sdk_worker(addr, lambda trial: {"accuracy": 0.7}, "sdk-restart", stop)
    ctl.kill()
    ctl.wait()
    port_file = os.path.join(tmp, "ctl2.port")
    nf.start([CONTROLLER, "--listen", addr, "--port-file", port_file, "--store",
              "sqlite://%s/ctl.db" % tmp, "--metrics-listen", ""], os.path.join(tmp, "ctl2.log"))
    with nasforge.Client(addr) as c2:
        job = None
        for _ in range(600):  # until the new controller answers (it recovers the store first)
            try:
                job = c2.submit(spec("after-restart", 2, 1))
                break
            except nasforge.NasforgeError as e:
                if e.code_name != "UNAVAILABLE":
                    raise
                threading.Event().wait(0.05)
        check(job is not None, "a controller on the same store and port answers")
        final = c2.wait(job["id"], timeout=120) if job else {}
        check(final.get("state") == "JOB_SUCCEEDED",
              "the SDK worker outlived the controller's kill -9 and trained the new job (%s)"
              % final.get("state"))
    stop.set()
    t.join(30)
    check(box and "crashed" not in box[0], "the SDK worker did not crash (%s)" % box)


def main():
    tmp = tempfile.mkdtemp(prefix="nf-python-e2e-")
    try:
        ctl, addr = nf.start_controller(CONTROLLER, tmp, "ctl")
        start([WORKER, "--controller", addr, "--worker-id", "builtin", "--threads", "1"],
              os.path.join(tmp, "worker.log"))
        with nasforge.Client(addr) as c:
            refusals(c, tmp)
            a = own_training(c, addr)
            b = early_stopping(c, addr)
            x = cancelling(c, addr)
            jobs = c.jobs()
            check(set(jobs["id"]) == {a["id"], b["id"], x["id"]}, "jobs(): the 3 jobs")
            check(jobs.loc[x["id"], "state"] == "SUCCEEDED" and
                  jobs.loc[b["id"], "state"] == "SUCCEEDED" and jobs.loc[b["id"], "stopped"] >= 1,
                  "jobs(): states and counts (%s)" % list(jobs["state"]))
            check(list(c.jobs(name="ASHA")["id"]) == [b["id"]] and
                  len(c.jobs(labels={"suite": "python-e2e"})) == 3 and
                  len(c.jobs(labels={"suite": "other"}, as_frame=False)) == 0 and
                  len(c.jobs(states=["cancelled"], as_frame=False)) == 0,
                  "jobs(): filters by name, label and state")
            n = c.delete(x["id"])
            check(n == 4 and x["id"] not in set(c.jobs()["id"]),
                  "delete: the resumed job and its 4 trials are gone (%d)" % n)
            try:
                c.job(x["id"])
                check(False, "a deleted job is NOT_FOUND")
            except nasforge.NasforgeError as e:
                check(e.code_name == "NOT_FOUND", "a deleted job is NOT_FOUND")
            # Warm start from the ASHA job with its recipe: its finished results are reused.
            done = [r for r in c.candidates(b["id"], as_frame=False)
                    if r["state"] in ("SUCCEEDED", "STOPPED")]
            w = c.submit(spec("warm", 2, 4, rule={"rule": "asha", "min_epochs": 1, "eta": 2,
                                                  "keep_cost_front": False}), warm_start=[b])
            check(w["counts"].get("warm_started") == len(done) and
                  w["spec"]["warm_start"]["sources"][0].get("same_recipe") is True,
                  "warm start: %d results reused from the ASHA job (%s)"
                  % (len(done), w["counts"]))
            c.cancel(w)
            hyperparameters(c, addr)
            multi_fidelity(c, addr)
        controller_restart(ctl, addr, tmp)
    finally:
        nf.conclude(tmp, ["ctl.log", "ctl2.log", "worker.log"])


if __name__ == "__main__":
    main()
