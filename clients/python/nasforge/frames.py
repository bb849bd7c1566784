"""Rows of trials and jobs for people: flat dicts, and pandas DataFrames when pandas is there.

Column names follow Optuna's trials_dataframe: `number`, `state`, `values_<objective metric>`
(the job's objectives, in order), `params_<choice>` (the architecture's decisions, flattened:
`params_stages_0_kernel`, and each hyperparameter by its name: `params_learning_rate`, Optuna's
convention), `metrics_<name>` (every other metric: macs, params, test_accuracy,
latency_ms@TARGET, ...), `datetime_created`, `datetime_complete`, then nasforge's own:
`worker_id`, `hardware_profile`, `arch_hash`, `attempts`, `error`, and for a compressed variant
(JobSpec.compression) `variant_of` (the trial it was made from) and `variant` (its recipe's
name); both None for the search's own trials.
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


_TRIAL_STATES = {v.number: v.name.split("_", 1)[1] for v in pb.TrialState.DESCRIPTOR.values}
_JOB_STATES = {v.number: v.name.split("_", 1)[1] for v in pb.JobState.DESCRIPTOR.values}


def state_name(value, job=False):
    """TRIAL_SUCCEEDED -> "SUCCEEDED"; with job=True, JOB_FAILED -> "FAILED"."""
    return (_JOB_STATES if job else _TRIAL_STATES).get(value, str(value))


def _time(ts):
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return datetime.datetime.fromtimestamp(ts.seconds + ts.nanos * 1e-9, datetime.timezone.utc)


_KINDS = {}  # field descriptor -> 0 scalar, 1 repeated scalar, 2 enum, 3 message, 4 repeated msg


def _kind(field):
    k = _KINDS.get(field)
    if k is None:
        repeated = field.label == field.LABEL_REPEATED
        if field.type == field.TYPE_MESSAGE:
            k = 4 if repeated else 3
        elif repeated:
            k = 1
        else:
            k = 2 if field.type == field.TYPE_ENUM else 0
        _KINDS[field] = k
    return k


def _flatten(msg, prefix, out):
    """The set fields of `msg` as prefix_path -> value (lists of scalars kept as lists)."""
    for field, value in msg.ListFields():
        k = _kind(field)
        if k == 0:
            out[prefix + field.name] = value
        elif k == 1:
            out[prefix + field.name] = list(value)
        elif k == 3:
            _flatten(value, prefix + field.name + "_", out)
        elif k == 4:
            for i, item in enumerate(value):
                _flatten(item, "%s%s_%d_" % (prefix, field.name, i), out)
        else:
            out[prefix + field.name] = field.enum_type.values_by_number[value].name


def _candidate(arch, prefix, out):
    """The architecture's decisions flattened and its hyperparameters by name (a number, or the
    word of a categorical one), under `prefix`. The space kind (mbconv, ...) is left out."""
    for field, value in arch.ListFields():
        if field.name == "params":  # Architecture.params: the candidate's hyperparameters
            for v in value.values:
                out[prefix + v.name] = v.text if v.text else v.number
        else:  # the oneof: the kind's message
            _flatten(value, prefix, out)


def architecture_params(arch):
    """An Architecture's decisions flattened and its hyperparameters by name:
    {"stem_channels": 16, "stages_0_kernel": 3, "learning_rate": 0.01, "optimizer": "sgd"}."""
    out = {}
    _candidate(arch, "", out)
    return out


def trial_row(t, objective_metrics=()):
    metrics = dict(t.metrics)
    row = {"number": t.id, "state": state_name(t.state)}
    for m in objective_metrics:
        row["values_" + m] = metrics.get(m)
    _candidate(t.architecture, "params_", row)
    for k in sorted(metrics):
        if k not in objective_metrics:
            row["metrics_" + k] = metrics[k]
    row["datetime_created"] = _time(t.create_time)
    row["datetime_complete"] = _time(t.update_time) if t.state in _TERMINAL else None
    row["epochs"] = len(t.curve)
    row["worker_id"] = t.worker_id
    row["hardware_profile"] = t.hardware_profile
    row["arch_hash"] = t.arch_hash
    row["attempts"] = t.attempts
    row["error"] = t.error
    variant = t.HasField("variant")
    row["variant_of"] = t.variant.of if variant else None
    row["variant"] = t.variant.recipe.name if variant else None
    return row


def job_row(j):
    c = j.counts
    return {
        "id": j.id, "name": j.spec.name, "state": state_name(j.state, job=True), "owner": j.owner,
        "strategy": j.spec.strategy.name, "max_trials": j.spec.budget.max_trials,
        "succeeded": c.succeeded, "stopped": c.stopped, "running": c.running,
        "queued": c.queued, "failed": c.failed, "cancelled": c.cancelled,
        "best": j.best_objective if j.HasField("best_objective") else None,
        "datetime_created": _time(j.create_time), "datetime_complete": _time(j.end_time),
        "labels": dict(j.spec.labels), "error": j.error,
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
