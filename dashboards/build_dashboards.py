#!/usr/bin/python3
"""Writes the Grafana dashboards in dashboards/grafana/ (run after editing; CI checks that the
committed JSON is what this prints). One source for the panels keeps the three dashboards
consistent, and lets the live-Prometheus test (tests/e2e/prometheus_dashboards_test.py) read
every panel's PromQL from the JSON a user imports.

Usage: dashboards/build_dashboards.py [--check]
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"


def target(expr, legend="", ref="A", instant=False):
    t = {"datasource": DS, "expr": expr, "legendFormat": legend or "__auto", "refId": ref}
    if instant:
        t["instant"] = True
        t["format"] = "table"
    return t


def panel(pid, title, kind, targets, x, y, w=12, h=8, unit=None, desc=""):
    p = {
        "id": pid,
        "title": title,
        "description": desc,
        "type": kind,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [target(*t) if isinstance(t, tuple) else target(t) for t in targets],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {},
    }
    # refIds A, B, C... in order
    for i, t in enumerate(p["targets"]):
        t["refId"] = chr(ord("A") + i)
    if unit:
        p["fieldConfig"]["defaults"]["unit"] = unit
    return p


def layout(specs):
    """specs: (title, kind, targets, unit, desc, width); laid out left to right, 24 wide."""
    panels, x, y, row_h = [], 0, 0, 8
    for i, (title, kind, targets, unit, desc, w) in enumerate(specs):
        h = 4 if kind == "stat" else row_h
        if x + w > 24:
            x, y = 0, y + prev_h
        panels.append(panel(i + 1, title, kind, targets, x, y, w, h, unit, desc))
        x += w
        prev_h = h
    return panels


def dashboard(uid, title, desc, specs, variables=()):
    templating = [{
        "name": "datasource",
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
    }]
    templating += list(variables)
    return {
        "uid": uid,
        "title": title,
        "description": desc,
        "tags": ["nasforge"],
        "timezone": "utc",
        "schemaVersion": 38,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": templating},
        "annotations": {"list": []},
        "links": [{"title": "nasforge", "type": "dashboards", "tags": ["nasforge"], "asDropdown": False}],
        "panels": layout(specs),
    }


OVERVIEW = dashboard(
    "nasforge-overview", "nasforge / service overview",
    "Controller health, call rates and latencies, the store, leases.", [
        ("Controller up", "stat", ['up{job="nasforge-controller"}'], None, "1: Prometheus scrapes it.", 4),
        ("Serving", "stat", ["nasforge_controller_serving"], None, "grpc.health.v1: 1 SERVING, 0 NOT_SERVING (store unavailable).", 4),
        ("Jobs running", "stat", ["nasforge_controller_jobs_running"], None, "", 4),
        ("Live workers", "stat", ["nasforge_controller_workers_registered"], None, "Workers heard from within 3 heartbeats + 30 s.", 4),
        ("Trials finished / s", "stat", ["nasforge:trials_finished:rate5m"], "ops", "", 4),
        ("Build", "table", [("nasforge_build_info", "{{component}} {{version}}", "A", True)], None, "Which build each process runs.", 4),
        ("Trials by state (all jobs)", "timeseries", [("sum by (state) (nasforge_controller_trials)", "{{state}}")], None, "", 12),
        ("Calls / s by method and code", "timeseries", [("sum by (method, code) (nasforge:rpc_requests:rate5m)", "{{method}} {{code}}")], "reqps", "Every gRPC call, timed by one server interceptor; unknown methods count as 'other'.", 12),
        ("Call latency p99 by method", "timeseries", [("nasforge:rpc_latency_seconds:p99_5m", "{{method}}")], "s", "WatchJob's is the stream's lifetime.", 12),
        ("Server error ratio", "timeseries", [("nasforge:rpc_errors:ratio_rate5m", "errors")], "percentunit", "Calls ending UNAVAILABLE, INTERNAL, UNKNOWN, DEADLINE_EXCEEDED, DATA_LOSS or RESOURCE_EXHAUSTED.", 12),
        ("Strategy step p99 by strategy", "timeseries", [("nasforge:suggest_seconds:p99_5m", "{{strategy}}")], "s", "Ask: proposing the next admissible candidate.", 12),
        ("Store commit latency", "timeseries", [
            ("nasforge:store_commit_seconds:p99_5m", "p99"),
            (f"histogram_quantile(0.5, sum by (le) (rate(nasforge_controller_store_commit_seconds_bucket[{RATE}])))", "p50"),
        ], "s", "One group commit (every change acknowledged is durable).", 12),
        ("Store group size and queue", "timeseries", [
            (f"rate(nasforge_controller_store_commit_records_sum[{RATE}]) / rate(nasforge_controller_store_commit_records_count[{RATE}])", "records per commit"),
            ("nasforge_controller_store_queued_records", "queued records"),
        ], None, "", 12),
        ("Store errors and reconnects / s", "timeseries", [
            (f"rate(nasforge_controller_store_errors_total[{RATE}])", "failed transactions"),
            (f"rate(nasforge_controller_store_reconnects_total[{RATE}])", "reconnects"),
        ], "ops", "A failed transaction is retried, never dropped; calls answer UNAVAILABLE meanwhile.", 12),
        ("Leases / s", "timeseries", [
            (f"rate(nasforge_controller_leases_granted_total[{RATE}])", "granted"),
            ("nasforge:lease_expiries:rate5m", "expired"),
            (f"rate(nasforge_controller_leases_orphaned_total[{RATE}])", "orphaned (worker restarted)"),
            (f"rate(nasforge_controller_stale_reports_total[{RATE}])", "stale reports refused"),
        ], "ops", "", 12),
        ("Refused and rejected / s", "timeseries", [
            (f"rate(nasforge_controller_invalid_reports_total[{RATE}])", "invalid reports"),
            (f"rate(nasforge_controller_candidates_rejected_by_cost_total[{RATE}])", "rejected by cost"),
            (f"rate(nasforge_controller_unplaceable_trials_total[{RATE}])", "unplaceable"),
        ], "ops", "", 12),
    ])

JOB_VAR = {
    "name": "job",
    "label": "Job",
    "type": "query",
    "datasource": DS,
    "query": {"query": "label_values(nasforge_controller_job_trials, job_id)", "refId": "jobs"},
    "definition": "label_values(nasforge_controller_job_trials, job_id)",
    "refresh": 2,
    "sort": 1,
    "current": {},
    "hide": 0,
}
J = 'job_id="$job"'
JOB = dashboard(
    "nasforge-job", "nasforge / job",
    "One running job: progress, best objectives, the Pareto front's size and hypervolume, trials by state, stop decisions.", [
        ("Progress", "stat", [f'sum(nasforge_controller_job_trials{{{J},state=~"succeeded|stopped|failed"}}) / max(nasforge_controller_job_budget_trials{{{J}}})'], "percentunit", "Finished trials over budget.max_trials.", 6),
        ("Best accuracy", "stat", [f'nasforge_controller_job_best{{{J},metric="accuracy"}}'], None, "", 6),
        ("Front size", "stat", [f"nasforge_controller_job_front_size{{{J}}}"], None, "", 6),
        ("Since last finished trial", "stat", [f"time() - nasforge_controller_job_last_progress_timestamp_seconds{{{J}}}"], "s", "The JobStalled alert fires past an hour.", 6),
        ("Best objectives over time", "timeseries", [(f"nasforge_controller_job_best{{{J}}}", "{{metric}}")], None, "Best value so far of each objective (its own direction).", 12),
        ("Hypervolume over time", "timeseries", [(f"nasforge_controller_job_hypervolume{{{J}}}", "hypervolume")], None, "Dominated by the front, up to each objective's reference (Objective.reference).", 12),
        ("Pareto front size", "timeseries", [(f"nasforge_controller_job_front_size{{{J}}}", "front")], None, "", 12),
        ("Trials by state", "timeseries", [(f"nasforge_controller_job_trials{{{J}}}", "{{state}}")], None, "", 12),
        ("Stop decisions", "timeseries", [
            (f'nasforge_controller_job_trials{{{J},state="stopped"}}', "stopped early (this job)"),
            (f"sum by (rule) (increase(nasforge_controller_early_stops_total[{RATE}]))", "stops by {{rule}} (all jobs)"),
        ], None, "Trials the early-stopping rule ended.", 12),
        ("Trials finished / s", "timeseries", [(f'sum(rate(nasforge_controller_trials_finished_total[{RATE}]))', "all jobs")], "ops", "", 12),
    ], variables=[JOB_VAR])

FLEET = dashboard(
    "nasforge-fleet", "nasforge / worker fleet",
    "Workers: by profile and state, utilisation, throughput, failures.", [
        ("Workers by profile and state", "timeseries", [("sum by (profile, state) (nasforge_controller_workers)", "{{profile}} {{state}}")], None, "As the controller sees them: busy, idle, lost (silent, gone < 1 h).", 12),
        ("Utilisation", "timeseries", [
            ("nasforge:worker_utilisation:avg5m", "{{instance}}"),
            ("avg(nasforge:worker_utilisation:avg5m)", "fleet"),
        ], "percentunit", "Share of time training.", 12),
        ("Training images / s", "timeseries", [
            ("nasforge:fleet_train_images:rate5m", "fleet"),
            ("nasforge_worker_train_images_per_second", "{{instance}} last epoch"),
        ], None, "", 12),
        ("Trial outcomes / s", "timeseries", [(f"sum by (outcome) (rate(nasforge_worker_trials_total[{RATE}]))", "{{outcome}}")], "ops", "", 12),
        ("Failures / s by worker", "timeseries", [
            ("nasforge:worker_failures:rate5m", "{{instance}}"),
            (f"sum by (instance) (rate(nasforge_worker_heartbeat_failures_total[{RATE}]))", "{{instance}} heartbeat failures"),
        ], "ops", "Failed or lost trials; heartbeats without an answer.", 12),
        ("Epoch seconds", "timeseries", [
            (f"histogram_quantile(0.5, sum by (le) (rate(nasforge_worker_epoch_seconds_bucket[{RATE}])))", "p50"),
            (f"histogram_quantile(0.9, sum by (le) (rate(nasforge_worker_epoch_seconds_bucket[{RATE}])))", "p90"),
        ], "s", "", 12),
        ("Latency benchmark seconds", "timeseries", [
            (f"histogram_quantile(0.9, sum by (le) (rate(nasforge_worker_latency_measure_seconds_bucket[{RATE}])))", "p90"),
        ], "s", "Time each candidate's latency measurement took (NaN while none ran).", 12),
        ("Worker restarts (1 h)", "timeseries", [("changes(nasforge_worker_start_time_seconds[1h])", "{{instance}}")], None, "The WorkerCrashLoop alert fires on repeated restarts.", 12),
        ("Workers", "table", [("nasforge_worker_info", "", "A", True)], None, "Profile, accelerator, threads, backend and version of each worker.", 24),
    ])

DASHBOARDS = {"nasforge-overview.json": OVERVIEW, "nasforge-job.json": JOB, "nasforge-fleet.json": FLEET}


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for name, d in DASHBOARDS.items():
        path = os.path.join(HERE, "grafana", name)
        text = json.dumps(d, indent=2, sort_keys=True) + "\n"
        if check:
            with open(path) as f:
                if f.read() != text:
                    stale.append(path)
        else:
            with open(path, "w") as f:
                f.write(text)
    if stale:
        print("stale (run dashboards/build_dashboards.py):", " ".join(stale))
        sys.exit(1)


if __name__ == "__main__":
    main()
