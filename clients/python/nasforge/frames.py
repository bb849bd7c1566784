"""Rows of trials and jobs for people: flat dicts, and pandas DataFrames when pandas is there.

Column names follow Optuna's trials_dataframe: `number`, `state`, `values_<objective metric>`
(the job's objectives, in order), `params_<choice>` (the architecture's decisions, flattened:
`params_stages_0_kernel`), `metrics_<name>` (every other metric: macs, params, test_accuracy,
latency_ms@TARGET, ...), `datetime_created`, `datetime_complete`, then nasforge's own:
`worker_id`, `hardware_profile`, `arch_hash`, `attempts`, `error`.
"""
import datetime

from nasforge.v1 import nasforge_pb2 as pb

try:
    import pandas as _pd
except ImportError:  # plain dicts then
    _pd = None

_TERMINAL = {pb.TRIAL_SUCCEEDED, pb.TRIAL_STOPPED, pb.TRIAL_FAILED, pb.TRIAL_CANCELLED}


def have_pandas():
    return _pd is not None


def state_name(value):
    """TRIAL_SUCCEEDED -> "SUCCEEDED", JOB_RUNNING -> "RUNNING"."""
    for enum in (pb.TrialState, pb.JobState):
        try:
            name = enum.Name(value)
        except ValueError:
            continue
        if (enum is pb.TrialState) == name.startswith("TRIAL_"):
            return name.split("_", 1)[1]
    return str(value)


def _time(ts):
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return datetime.datetime.fromtimestamp(ts.seconds + ts.nanos * 1e-9, datetime.timezone.utc)


def _flatten(msg, prefix, out):
    """The set fields of `msg` as prefix_path -> value (lists of scalars kept as lists)."""
    for field, value in msg.ListFields():
        key = prefix + field.name
        if field.type == field.TYPE_MESSAGE:
            if field.label == field.LABEL_REPEATED:
                for i, item in enumerate(value):
                    _flatten(item, "%s_%d_" % (key, i), out)
            else:
                _flatten(value, key + "_", out)
        elif field.label == field.LABEL_REPEATED:
            out[key] = list(value)
        elif field.type == field.TYPE_ENUM:
            out[key] = field.enum_type.values_by_number[value].name
        else:
            out[key] = value


def architecture_params(arch):
    """An Architecture's decisions flattened: {"stem_channels": 16, "stages_0_kernel": 3, ...}.
    The space kind (mbconv, resnet, ...) is left out: a job has one."""
    out = {}
    for _, kind in arch.ListFields():  # the oneof: exactly one
        _flatten(kind, "", out)
    return out


def trial_row(t, objective_metrics=()):
    row = {"number": t.id, "state": state_name(t.state)}
    for m in objective_metrics:
        row["values_" + m] = t.metrics.get(m)
    for k, v in architecture_params(t.architecture).items():
        row["params_" + k] = v
    for k in sorted(t.metrics):
        if k not in objective_metrics:
            row["metrics_" + k] = t.metrics[k]
    row["datetime_created"] = _time(t.create_time)
    row["datetime_complete"] = _time(t.update_time) if t.state in _TERMINAL else None
    row["epochs"] = len(t.curve)
    row["worker_id"] = t.worker_id
    row["hardware_profile"] = t.hardware_profile
    row["arch_hash"] = t.arch_hash
    row["attempts"] = t.attempts
    row["error"] = t.error
    return row


def job_row(j):
    c = j.counts
    return {
        "id": j.id, "name": j.spec.name, "state": state_name(j.state), "owner": j.owner,
        "strategy": j.spec.strategy.name, "max_trials": j.spec.budget.max_trials,
        "succeeded": c.succeeded, "stopped": c.stopped, "running": c.running,
        "queued": c.queued, "failed": c.failed, "cancelled": c.cancelled,
        "best": j.best_objective if j.HasField("best_objective") else None,
        "datetime_created": _time(j.create_time), "datetime_complete": _time(j.end_time),
        "error": j.error,
    }


def table(rows, as_frame=None, index=None):
    """A DataFrame of `rows` when pandas is there (as_frame None or True), else the list."""
    if as_frame is None:
        as_frame = _pd is not None
    if not as_frame:
        return rows
    if _pd is None:
        raise ImportError("as_frame=True needs pandas (apt install python3-pandas)")
    df = _pd.DataFrame.from_records(rows)
    if index and index in df.columns:
        df = df.set_index(index, drop=False)
        df.index.name = None
    return df
