"""nasforge.Client: the JobService from Python.

    import nasforge
    c = nasforge.Client("127.0.0.1:50051")            # token: $NASFORGE_TOKEN or token_file=
    job = c.submit("search_spaces/examples/fashion_mnist_quick.yaml")
    for event in c.watch(job["id"]):                   # until the job ends
        print(event["kind"], event["job"]["counts"])
    front = c.pareto(job["id"], where="macs<=3e6")     # a pandas DataFrame
    every = c.candidates(job["id"])                    # paged: 100,000 rows in seconds

Jobs and trials come back as dicts (protobuf's JSON mapping, snake_case names); tables as pandas
DataFrames when pandas is installed (as_frame=False: lists of dicts). A refused call raises
NasforgeError with its gRPC status and the field path the controller named.
"""
import json
import os

import grpc
from google.protobuf import json_format

from nasforge import frames
from nasforge.errors import NasforgeError, from_rpc_error
from nasforge.v1 import nasforge_pb2 as pb
from nasforge.v1 import nasforge_pb2_grpc as rpc

DEFAULT_CONTROLLER = "127.0.0.1:50051"
_MAX_MESSAGE = 64 << 20
_OPS = ("<=", ">=", "<", ">")


def _is_loopback(address):
    host = address.rsplit(":", 1)[0]
    if host.startswith("ipv4:"):
        host = host[5:]
    host = host.strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def _read(path, what):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise NasforgeError(grpc.StatusCode.INVALID_ARGUMENT,
                            "%s: cannot read %s (%s)" % (what, path, e.strerror))


def load_token(token=None, token_file=None):
    """The bearer token: `token`, else the first line of `token_file`, else $NASFORGE_TOKEN."""
    if token:
        return token.strip()
    if token_file:
        return _read(token_file, "token_file").decode().splitlines()[0].strip()
    return os.environ.get("NASFORGE_TOKEN", "").strip()


def open_channel(address=None, tls_ca=None, tls_cert=None, tls_key=None, insecure=False):
    """A channel to the controller: TLS with `tls_ca` (and a client certificate for mutual TLS),
    plain text only to loopback or with insecure=True (as the CLI)."""
    address = address or os.environ.get("NASFORGE_CONTROLLER") or DEFAULT_CONTROLLER
    tls_ca = tls_ca or os.environ.get("NASFORGE_TLS_CA")
    opts = [("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.max_send_message_length", 16 << 20)]
    if bool(tls_cert) != bool(tls_key):
        raise NasforgeError(grpc.StatusCode.INVALID_ARGUMENT,
                            "tls_cert: give the client certificate and tls_key together")
    if tls_ca:
        creds = grpc.ssl_channel_credentials(
            root_certificates=_read(tls_ca, "tls_ca"),
            private_key=_read(tls_key, "tls_key") if tls_key else None,
            certificate_chain=_read(tls_cert, "tls_cert") if tls_cert else None)
        return grpc.secure_channel(address, creds, opts)
    if tls_cert:
        raise NasforgeError(grpc.StatusCode.INVALID_ARGUMENT,
                            "tls_ca: a client certificate needs the controller's CA too")
    if not (_is_loopback(address) or insecure):
        raise NasforgeError(
            grpc.StatusCode.INVALID_ARGUMENT,
            "tls_ca: %s is not loopback: give the CA of the controller's certificate (tls_ca= or "
            "$NASFORGE_TLS_CA), or insecure=True to send plain text (tokens readable on the "
            "network)" % address)
    return grpc.insecure_channel(address, opts)


def to_dict(msg):
    """A message as protobuf's JSON mapping with snake_case names (int64 as strings, as JSON)."""
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def parse_where(where):
    """Constraints from "macs<=3e8,latency_ms<5", a list of such strings, or a dict
    {metric: (lower, upper)} (None for an open end)."""
    if not where:
        return []
    if isinstance(where, dict):
        out = []
        for metric, (lower, upper) in where.items():
            c = pb.Constraint(metric=metric)
            if lower is not None:
                c.lower = float(lower)
            if upper is not None:
                c.upper = float(upper)
            out.append(c)
        return out
    parts = where.split(",") if isinstance(where, str) else list(where)
    out = []
    for text in (p.strip() for p in parts):
        if not text:
            continue
        for op in _OPS:
            metric, sep, value = text.partition(op)
            if not sep:
                continue
            try:
                v = float(value)
            except ValueError:
                raise NasforgeError(grpc.StatusCode.INVALID_ARGUMENT,
                                    "where: '%s': '%s' is not a number" % (text, value.strip()))
            c = pb.Constraint(metric=metric.strip())
            if op[0] == "<":
                c.upper = v
            else:
                c.lower = v
            out.append(c)
            break
        else:
            raise NasforgeError(grpc.StatusCode.INVALID_ARGUMENT,
                                "where: '%s': expected METRIC<=VALUE or METRIC>=VALUE" % text)
    return out


def parse_objectives(objectives):
    """Objectives from "accuracy:max,macs:min", a list of such strings, or a dict
    {metric: "max"|"min"}."""
    if not objectives:
        return []
    if isinstance(objectives, dict):
        items = list(objectives.items())
    else:
        parts = objectives.split(",") if isinstance(objectives, str) else list(objectives)
        items = []
        for text in (p.strip() for p in parts if p.strip()):
            metric, sep, direction = text.rpartition(":")
            if not sep:
                raise NasforgeError(grpc.StatusCode.INVALID_ARGUMENT,
                                    "objectives: '%s': expected METRIC:max or METRIC:min" % text)
            items.append((metric, direction))
    out = []
    for metric, direction in items:
        d = str(direction).strip().lower()
        if d not in ("max", "maximize", "min", "minimize"):
            raise NasforgeError(grpc.StatusCode.INVALID_ARGUMENT,
                                "objectives: '%s': direction '%s' is not max or min"
                                % (metric, direction))
        out.append(pb.Objective(metric=metric.strip(),
                                direction=pb.MAXIMIZE if d.startswith("max") else pb.MINIMIZE))
    return out


def _job_id(job):
    return job["id"] if isinstance(job, dict) else str(job)


class Client:
    """A connection to a nasforge controller's JobService.

    address: HOST:PORT (default $NASFORGE_CONTROLLER, else 127.0.0.1:50051). token / token_file:
    the bearer token (default $NASFORGE_TOKEN). tls_ca (default $NASFORGE_TLS_CA), tls_cert,
    tls_key: TLS as the CLI's flags. timeout: seconds per unary call.
    """

    def __init__(self, address=None, token=None, token_file=None, tls_ca=None, tls_cert=None,
                 tls_key=None, insecure=False, timeout=60.0):
        self.channel = open_channel(address, tls_ca, tls_cert, tls_key, insecure)
        tok = load_token(token, token_file)
        self._metadata = (("authorization", "Bearer " + tok),) if tok else ()
        self.timeout = timeout
        self.jobs_stub = rpc.JobServiceStub(self.channel)
        self.workers_stub = rpc.WorkerServiceStub(self.channel)

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- plumbing --------------------------------------------------------------------------

    def call(self, method, request, stub=None, timeout=None):
        """A unary call; a refusal raises NasforgeError."""
        fn = getattr(stub or self.jobs_stub, method)
        try:
            return fn(request, timeout=timeout or self.timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise from_rpc_error(e, method) from None

    def _future(self, method, request):
        return getattr(self.jobs_stub, method).future(request, timeout=self.timeout,
                                                      metadata=self._metadata)

    # -- jobs ------------------------------------------------------------------------------

    def submit(self, spec, idempotency_key="", warm_start=()):
        """Submits a job. `spec`: a dict (the YAML's structure), a path to a YAML file, YAML text,
        or a JobSpec message. Dicts and YAML are read by the controller, so every client gets the
        same errors (field path, and the YAML line). `warm_start`: earlier jobs (ids or job
        dicts) to start from (JobSpec.warm_start: same space; their trials are the strategy's
        prior observations, reused as results when the recipe is the same). Returns the job as
        a dict."""
        req = pb.SubmitJobRequest(idempotency_key=idempotency_key,
                                  warm_start_jobs=[_job_id(j) for j in warm_start])
        if isinstance(spec, pb.JobSpec):
            req.spec.CopyFrom(spec)
        elif isinstance(spec, dict):
            req.spec_yaml = json.dumps(spec, indent=2)  # JSON is YAML: one reader for both
        elif isinstance(spec, str) and "\n" not in spec and os.path.exists(spec):
            req.spec_yaml = _read(spec, "spec").decode()
        elif isinstance(spec, str):
            if "\n" not in spec and spec.endswith((".yaml", ".yml", ".json")):
                raise NasforgeError(grpc.StatusCode.INVALID_ARGUMENT,
                                    "spec: no such file: %s" % spec)
            req.spec_yaml = spec
        else:
            raise TypeError("spec: a dict, a path, YAML text or a JobSpec, not %s"
                            % type(spec).__name__)
        return to_dict(self.call("SubmitJob", req))

    def job(self, job):
        """One job, as a dict."""
        return to_dict(self.call("GetJob", pb.GetJobRequest(job_id=_job_id(job))))

    def cancel(self, job):
        """Cancels a job (its running trials are told to stop); returns the job."""
        return to_dict(self.call("CancelJob", pb.CancelJobRequest(job_id=_job_id(job))))

    def iter_jobs(self, states=None, owner="", name="", labels=None, page_size=500):
        """The jobs the caller may see, newest first, as Job messages (paged), filtered: states
        (any of "running", "succeeded", "failed", "cancelled"), owner (exactly), name (a part of
        it, any case), labels ({key: value}, value "" for any)."""
        req = pb.ListJobsRequest(page_size=page_size, owner=owner, name=name)
        for s in states or ():
            req.states.append(s if isinstance(s, int) else pb.JobState.Value(
                "JOB_" + str(s).upper().replace("JOB_", "")))
        for k, v in (labels or {}).items():
            req.labels[k] = v
        while True:
            resp = self.call("ListJobs", req)
            yield from resp.jobs
            req.page_token = resp.next_page_token
            if not req.page_token:
                return

    def jobs(self, states=None, owner="", name="", labels=None, limit=None, as_frame=None):
        """The jobs as a table (id, name, state, owner, progress, best, labels, ...), newest
        first; filters as iter_jobs."""
        rows = []
        for j in self.iter_jobs(states, owner, name, labels):
            rows.append(frames.job_row(j))
            if limit is not None and len(rows) >= limit:
                break
        return frames.table(rows, as_frame, index="id")

    def watch(self, job, timeout=None):
        """The job's events as dicts {"kind", "job", "trial"}: a snapshot first, then one per
        change (trial_leased, trial_progress, trial_finished), ending with job_finished."""
        req = pb.WatchJobRequest(job_id=_job_id(job))
        stream = self.jobs_stub.WatchJob(req, timeout=timeout, metadata=self._metadata)
        try:
            for ev in stream:
                out = {"kind": ev.kind, "job": to_dict(ev.job)}
                if ev.HasField("trial"):
                    out["trial"] = to_dict(ev.trial)
                yield out
        except grpc.RpcError as e:
            raise from_rpc_error(e, "WatchJob") from None
        finally:
            stream.cancel()

    def wait(self, job, timeout=None):
        """Blocks until the job ends; returns it."""
        last = None
        for ev in self.watch(job, timeout):
            last = ev["job"]
        return self.job(job) if last is None else last

    # -- candidates ------------------------------------------------------------------------

    def candidate(self, job, trial):
        """One trial, as a dict."""
        return to_dict(self.call("GetCandidate",
                                 pb.GetCandidateRequest(job_id=_job_id(job), trial_id=int(trial))))

    def iter_candidates(self, job, states=None, page_size=1000):
        """Every trial of the job as Trial messages, in id order, paged: the next page is on its
        way while this one is read."""
        req = pb.ListCandidatesRequest(job_id=_job_id(job), page_size=page_size)
        for s in states or ():
            req.states.append(s if isinstance(s, int) else pb.TrialState.Value(
                "TRIAL_" + str(s).upper().replace("TRIAL_", "")))
        try:
            resp = self._future("ListCandidates", req).result()
            while True:
                nxt = None
                if resp.next_page_token:
                    req.page_token = resp.next_page_token
                    nxt = self._future("ListCandidates", req)
                yield from resp.trials
                if nxt is None:
                    return
                resp = nxt.result()
        except grpc.RpcError as e:
            raise from_rpc_error(e, "ListCandidates") from None

    def _objective_metrics(self, job):
        return [o["metric"] for o in self.job(job).get("spec", {}).get("objectives", [])]

    def candidates(self, job, states=None, as_frame=None):
        """The job's trials as a table, one row each (frames.py names the columns)."""
        metrics = self._objective_metrics(job)
        rows = [frames.trial_row(t, metrics) for t in self.iter_candidates(job, states)]
        return frames.table(rows, as_frame, index="number")

    def pareto(self, job, objectives=None, where=None, hardware_profile="", limit=0,
               include_stopped=False, variants="exclude", as_frame=None):
        """The non-dominated candidates (best first in the first objective) under `where`.
        objectives: default the job's ("accuracy:max,latency_ms:min" or a dict); where:
        "macs<=3e8,latency_ms<5" or {metric: (lower, upper)}; hardware_profile: a hardware
        target (latency_ms then means its latency) or a training profile. variants: the job's
        compressed variants "exclude"d (the search's own front), "include"d or "only"."""
        req = pb.QueryParetoRequest(job_id=_job_id(job), hardware_profile=hardware_profile,
                                    limit=limit, include_stopped=include_stopped,
                                    variants=variants)
        req.objectives.extend(parse_objectives(objectives))
        req.constraints.extend(parse_where(where))
        resp = self.call("QueryPareto", req)
        metrics = [o.metric for o in req.objectives] or self._objective_metrics(job)
        rows = [frames.trial_row(t, metrics) for t in resp.trials]
        return frames.table(rows, as_frame, index="number")

    def importance(self, job, metric="", points=False, epoch=0, as_frame=None):
        """Which architecture choices and hyperparameters matter for `metric` (default: the
        job's first objective): one row per decision, most important first, with its share of
        the metric's variance over the succeeded trials (`importance`, summing to 1), the
        trials where it is active and the value whose trials did best. points=True returns
        (decisions, points): also every trial's value of each decision with its metric, for
        plots (`x` a number, `label` the value as text). epoch > 0: judge by every trial's
        validation value at that epoch of its curve, the early-stopped ones included."""
        resp = self.call("GetImportance", pb.GetImportanceRequest(
            job_id=_job_id(job), metric=metric, include_points=points, epoch=epoch))
        rows = [{"decision": d.decision, "importance": d.importance,
                 "omega_squared": d.omega_squared, "observations": d.observations,
                 "best": d.best, "ordered": d.ordered, "log": d.log} for d in resp.decisions]
        decisions = frames.table(rows, as_frame, index="decision")
        if not points:
            return decisions
        pts = [{"decision": p.decision, "x": p.x, "label": p.label, resp.metric: p.value}
               for p in resp.points]
        return decisions, frames.table(pts, as_frame)

    # -- lifecycle -------------------------------------------------------------------------

    def extend(self, job, add_trials=0, max_trials=0):
        """More trials for a job, running or ended (an ended job runs again, its strategy going on
        where it stopped). max_trials: the new budget (a retry does not add twice)."""
        return to_dict(self.call("ExtendJob", pb.ExtendJobRequest(
            job_id=_job_id(job), add_trials=add_trials, max_trials=max_trials)))

    def compress(self, job, trial, recipes=()):
        """Compressed variants of one succeeded trial (an ended job runs again until they are
        made). recipes: dicts as in a spec's compression.recipes, e.g. [{"int8": {}},
        {"prune": {"ratio": 0.5}}, {"distill": {"teacher": "best"}}]; none: the job's own.
        Returns the variant trials as dicts (queued, or failed with the reason)."""
        req = pb.CompressTrialRequest(job_id=_job_id(job), trial_id=int(trial))
        for i, r in enumerate(recipes):
            try:
                json_format.ParseDict(r, req.recipes.add())
            except json_format.ParseError as e:
                raise NasforgeError(grpc.StatusCode.INVALID_ARGUMENT,
                                    "recipes[%d]: %s" % (i, e)) from None
        return [to_dict(t) for t in self.call("CompressTrial", req).variants]

    def enqueue(self, job, architecture):
        """Seeds a known candidate into a running job: `architecture` as a dict (the YAML or
        architecture.json structure, e.g. {"nb201": {"cell": "..."}}) or an Architecture message.
        Returns the queued trial as a dict."""
        req = pb.EnqueueCandidateRequest(job_id=_job_id(job))
        if isinstance(architecture, pb.Architecture):
            req.architecture.CopyFrom(architecture)
        else:
            try:
                json_format.ParseDict(architecture, req.architecture)
            except json_format.ParseError as e:
                raise NasforgeError(grpc.StatusCode.INVALID_ARGUMENT,
                                    "architecture: %s" % e) from None
        return to_dict(self.call("EnqueueCandidate", req))

    def delete(self, job):
        """Deletes an ended job, its trials and their artifacts (cancel a running one first).
        Returns the number of trials deleted."""
        return self.call("DeleteJob", pb.DeleteJobRequest(job_id=_job_id(job))).trials_deleted

    def resume(self, job, add_trials=0):
        """Runs a cancelled or failed job again: its cancelled and failed trials are added to its
        budget (plus add_trials)."""
        return to_dict(self.call("ExtendJob", pb.ExtendJobRequest(
            job_id=_job_id(job), add_trials=add_trials, resume=True)))
