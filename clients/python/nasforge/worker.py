"""Bring your own training: a worker that leases candidates from a nasforge controller and trains
them with your function.

    import nasforge

    def train(trial):
        net = trial.model()                    # a torch nn.Module built from trial.architecture
        for epoch in range(1, trial.epochs + 1):
            ...                                # your data, your loop
            if trial.report(epoch, {"accuracy": val_acc, "loss": loss}):
                break                          # the job's early-stopping rule said stop
        return {"accuracy": val_acc, "test_accuracy": test_acc}

    nasforge.worker.run(train, controller="127.0.0.1:50051")

Jobs for such workers say `training: {dataset: external}`: the controller leases them only to
workers that registered that dataset (this SDK does by default), and never to the built-in
LibTorch workers. While `train` runs, a thread heartbeats the lease; the returned metrics are the
trial's result (accuracy, a fraction in [0, 1] unless the job's accuracy_scale says PERCENT, is
required); an exception fails the trial with its message; Ctrl-C hands the trial back (it is
queued again, no attempt counted) and stops the worker.
"""
import logging
import os
import platform
import socket
import threading
import time
import traceback

import grpc

from nasforge import client as _client
from nasforge import frames
from nasforge.errors import NasforgeError, from_rpc_error
from nasforge.v1 import nasforge_pb2 as pb
from nasforge.v1 import nasforge_pb2_grpc as rpc

log = logging.getLogger("nasforge.worker")
_RETRY = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def _event(level, event, **kv):
    """One log line per event: level, event and key=value pairs."""
    log.log(level, "event=%s %s", event,
            " ".join("%s=%s" % (k, ('"%s"' % v) if " " in str(v) else v) for k, v in kv.items()))


class TrialCancelled(Exception):
    """Raised by Trial.report when the job was cancelled or the lease was lost: nothing of this
    trial will be recorded, so stop training it."""


class Trial:
    """One leased candidate, handed to your train function.

    job_id, trial_id, arch_hash; architecture: the candidate as a dict (snake_case keys, every
    field present); hyperparameters: the candidate's values of the space's `parameters`, by name
    ({"learning_rate": 0.01, "optimizer": "sgd"}: a number, or a categorical parameter's word;
    inactive ones absent); params: its decisions flattened and its hyperparameters
    ({"stages_0_kernel": 3, ..., "learning_rate": 0.01}); epochs: the
    job's budget of epochs; seed, split_seed: for your random generators; training: the job's
    Training settings as a dict (batch_size, learning_rate, ...); stopped: the controller said
    stop at an earlier report.
    """

    def __init__(self, worker, grant):
        from google.protobuf import json_format
        self._worker = worker
        self._lease = grant.lease
        self.job_id = grant.lease.job_id
        self.trial_id = grant.lease.trial_id
        self.arch_hash = grant.arch_hash
        self.architecture_message = grant.architecture
        self.architecture = json_format.MessageToDict(
            grant.architecture, preserving_proto_field_name=True,
            including_default_value_fields=True)
        self.params = frames.architecture_params(grant.architecture)
        self.hyperparameters = {v.name: (v.text if v.text else v.number)
                                for v in grant.architecture.params.values}
        self.epochs = grant.epochs
        self.seed = grant.seed
        self.split_seed = grant.split_seed
        self.training = json_format.MessageToDict(grant.training, preserving_proto_field_name=True,
                                                  including_default_value_fields=True)
        self.stopped = False
        self.stop_reason = ""
        self._cancelled = threading.Event()
        self._lost = threading.Event()
        self._heartbeat_seconds = max(1, grant.heartbeat_seconds or 10)
        self._started = time.monotonic()
        self._last_epoch = time.monotonic()

    def model(self):
        """An untrained torch nn.Module of this architecture (nasforge.model.build: the same
        layers as the LibTorch worker and `nasforge export`). Needs torch."""
        from nasforge import model
        return model.build(self.architecture)

    def input_shape(self):
        """[C, H, W] of the images the space expects ([features] for an MLP)."""
        from nasforge import model
        return model.input_shape(self.architecture)

    @property
    def cancelled(self):
        return self._cancelled.is_set() or self._lost.is_set()

    def report(self, epoch, metrics):
        """Reports epoch `epoch` (1-based): metrics["accuracy"] (validation accuracy, required),
        optional "loss" and "seconds" (default: the time since the last report). Returns True when
        the job's early-stopping rule says stop (then return your metrics: the trial is kept as
        STOPPED with its curve). Raises TrialCancelled if the job was cancelled or the lease
        lost."""
        if self.cancelled:
            raise TrialCancelled(self._why())
        if "accuracy" not in metrics:
            raise ValueError("report: metrics needs 'accuracy' (the validation accuracy)")
        now = time.monotonic()
        point = pb.CurvePoint(epoch=int(epoch), value=float(metrics["accuracy"]),
                              loss=float(metrics.get("loss", 0.0)),
                              seconds=float(metrics.get("seconds", now - self._last_epoch)))
        self._last_epoch = now
        try:
            resp = self._worker._call("ReportProgress", pb.ReportProgressRequest(
                worker_id=self._worker.worker_id, lease=self._lease, point=point))
        except NasforgeError as e:
            if e.code_name in ("FAILED_PRECONDITION", "NOT_FOUND"):
                self._lost.set()
                raise TrialCancelled("lease lost: %s" % e.message) from None
            raise
        if resp.decision == pb.STOP:
            # A cancelled job's trials are told STOP too: the lease says which it is.
            if self._heartbeat_once():
                raise TrialCancelled(self._why())
            self.stopped = True
            self.stop_reason = resp.reason
            _event(logging.INFO, "trial_stop", job=self.job_id, trial=self.trial_id, epoch=epoch,
                   reason=resp.reason)
        return self.stopped

    def _why(self):
        return "job cancelled" if self._cancelled.is_set() else "lease lost (expired or reassigned)"

    def _heartbeat_once(self):
        """Renews the lease; True when the trial is no longer ours (cancelled or lost)."""
        try:
            resp = self._worker._call("Heartbeat", pb.HeartbeatRequest(
                worker_id=self._worker.worker_id, lease=self._lease), retries=0)
            if resp.cancel:
                self._cancelled.set()
        except NasforgeError as e:
            if e.code_name in ("FAILED_PRECONDITION", "NOT_FOUND"):
                self._lost.set()
            else:
                _event(logging.WARNING, "heartbeat_failed", job=self.job_id,
                       trial=self.trial_id, error=e.message)
        return self.cancelled

    def _heartbeat_loop(self, done):
        while not done.wait(self._heartbeat_seconds):
            if self._heartbeat_once():
                return


class Worker:
    """The lease loop behind run(); use run() unless you need the pieces."""

    def __init__(self, controller=None, token=None, token_file=None, tls_ca=None, tls_cert=None,
                 tls_key=None, insecure=False, worker_id="", hardware_profile="python",
                 datasets=("external",), timeout=30.0):
        self.channel = _client.open_channel(controller, tls_ca, tls_cert, tls_key, insecure)
        tok = _client.load_token(token, token_file)
        self._metadata = (("authorization", "Bearer " + tok),) if tok else ()
        self._stub = rpc.WorkerServiceStub(self.channel)
        self.timeout = timeout
        self.worker_id = worker_id or ""
        self.hardware_profile = hardware_profile
        self.datasets = list(datasets)
        self.stop = threading.Event()

    def _call(self, method, request, retries=5):
        """A unary call, retried while the controller is unreachable (restarts, failover): every
        WorkerService call is safe to repeat."""
        delay = 0.2
        for attempt in range(retries + 1):
            try:
                return getattr(self._stub, method)(request, timeout=self.timeout,
                                                   metadata=self._metadata)
            except grpc.RpcError as e:
                if e.code() not in _RETRY or attempt == retries or self.stop.is_set():
                    raise from_rpc_error(e, method) from None
                _event(logging.WARNING, "rpc_retry", method=method, error=e.details(),
                       retry_in_s="%.1f" % delay)
                self.stop.wait(delay)
                delay = min(delay * 2, 5.0)

    def register(self):
        hw = pb.HardwareProfile(name=self.hardware_profile, cpu_model=platform.processor() or
                                platform.machine(), threads=os.cpu_count() or 1,
                                accelerator="none")
        resp = self._call("RegisterWorker", pb.RegisterWorkerRequest(
            worker_id=self.worker_id or "%s-%d" % (socket.gethostname(), os.getpid()),
            hardware=hw, new_process=True, measures_latency=False, datasets=self.datasets))
        self.worker_id = resp.worker_id
        _event(logging.INFO, "registered", worker=self.worker_id, profile=self.hardware_profile,
               datasets=",".join(self.datasets))
        return self.worker_id

    def lease(self):
        """A grant (LeaseTrialResponse with has_trial) or None, after waiting the controller's
        retry_after_ms."""
        resp = self._call("LeaseTrial", pb.LeaseTrialRequest(worker_id=self.worker_id,
                                                             max_trials=1))
        if resp.has_trial:
            return resp
        self.stop.wait(max(resp.retry_after_ms, 50) / 1000.0)
        return None

    def run_trial(self, train_fn, grant):
        """Trains one granted trial with train_fn and reports it. Returns the final state name."""
        trial = Trial(self, grant)
        _event(logging.INFO, "trial_start", job=trial.job_id, trial=trial.trial_id,
               worker=self.worker_id, arch=trial.arch_hash[:12])
        done = threading.Event()
        hb = threading.Thread(target=trial._heartbeat_loop, args=(done,), daemon=True)
        hb.start()
        report = pb.ReportResultRequest(worker_id=self.worker_id, lease=grant.lease,
                                        hardware_profile=self.hardware_profile)
        try:
            try:
                result = train_fn(trial)
                if trial.cancelled:
                    raise TrialCancelled(trial._why())
                if not isinstance(result, dict):
                    raise TypeError("train_fn returned %s; return a dict of metrics with "
                                    "'accuracy'" % type(result).__name__)
                for k, v in result.items():
                    report.metrics[str(k)] = float(v)
                report.stopped_early = trial.stopped
                outcome = "stopped" if trial.stopped else "succeeded"
            except TrialCancelled as e:
                _event(logging.INFO, "trial_abandoned", job=trial.job_id, trial=trial.trial_id,
                       why=str(e))
                return "abandoned"
            except KeyboardInterrupt:
                report.handed_back = True
                self.stop.set()
                self._call("ReportResult", report, retries=2)
                _event(logging.INFO, "trial_handed_back", job=trial.job_id, trial=trial.trial_id)
                raise
            except Exception as e:  # the user's code failed: the trial fails with its message
                report.failed = True
                report.error = ("%s: %s" % (type(e).__name__, e))[:4000]
                outcome = "failed"
                _event(logging.ERROR, "trial_error", job=trial.job_id, trial=trial.trial_id,
                       error=report.error.splitlines()[0] if report.error else "")
                log.debug("%s", traceback.format_exc())
            try:
                self._call("ReportResult", report)
            except NasforgeError as e:
                if e.code_name == "FAILED_PRECONDITION":  # the lease moved on: not ours to report
                    _event(logging.WARNING, "report_refused", job=trial.job_id,
                           trial=trial.trial_id, error=e.message)
                    return "abandoned"
                if e.code_name == "INVALID_ARGUMENT" and not report.failed:
                    # Metrics the controller refuses (accuracy out of range, NaN): the trial fails
                    # with the reason instead of being retried forever.
                    report.ClearField("metrics")
                    report.failed, report.error = True, "result refused: " + e.message
                    self._call("ReportResult", report)
                    _event(logging.ERROR, "result_refused", job=trial.job_id,
                           trial=trial.trial_id, error=e.message)
                    return "failed"
                if e.code_name in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
                    # Not recorded: the lease expires and the trial is run again elsewhere.
                    _event(logging.ERROR, "report_lost", job=trial.job_id, trial=trial.trial_id,
                           error=e.message)
                    return "abandoned"
                raise
            _event(logging.INFO, "trial_done", job=trial.job_id, trial=trial.trial_id,
                   outcome=outcome, seconds="%.1f" % (time.monotonic() - trial._started))
            return outcome
        finally:
            done.set()
            hb.join()


def run(train_fn, controller=None, token=None, token_file=None, tls_ca=None, tls_cert=None,
        tls_key=None, insecure=False, worker_id="", hardware_profile="python",
        datasets=("external",), max_trials=None, idle_timeout=None, stop=None):
    """Leases candidates and trains each with train_fn(trial) (a Trial) until stopped.

    controller, token, token_file, tls_*: as nasforge.Client. worker_id: stable name (default
    host-pid); hardware_profile: recorded with each result; datasets: the Training.dataset values
    this worker trains (default ["external"]). Stops after max_trials trials, after idle_timeout
    seconds without a lease, when the threading.Event `stop` is set, or on Ctrl-C. Returns
    {outcome: count}.
    """
    w = Worker(controller, token, token_file, tls_ca, tls_cert, tls_key, insecure, worker_id,
               hardware_profile, datasets)
    if stop is not None:
        w.stop = stop
    w.register()
    counts, done, idle_since = {}, 0, time.monotonic()
    try:
        while not w.stop.is_set() and (max_trials is None or done < max_trials):
            try:
                grant = w.lease()
            except NasforgeError as e:
                if e.code_name == "FAILED_PRECONDITION" and "not registered" in e.message:
                    w.register()  # the controller lost us (a new store): register again
                    continue
                if e.code_name in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
                    # The controller is away (restart, failover, network): keep asking.
                    _event(logging.WARNING, "controller_unreachable", worker=w.worker_id,
                           error=e.message, retry_in_s=5)
                    w.stop.wait(5)
                    continue
                raise
            if grant is None:
                if idle_timeout is not None and time.monotonic() - idle_since > idle_timeout:
                    _event(logging.INFO, "idle_exit", worker=w.worker_id, trials=done)
                    break
                continue
            outcome = w.run_trial(train_fn, grant)
            counts[outcome] = counts.get(outcome, 0) + 1
            done += 1
            idle_since = time.monotonic()
    finally:
        w.channel.close()
    return counts
