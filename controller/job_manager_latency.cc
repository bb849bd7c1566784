// JobManager: latency on the jobs' hardware targets. A queued trial of a job with targets waits
// until each target's latency is known: from the cache (any job measured the same architecture
// on the same setting), or from a measurement lease granted to a worker of the target's profile.
// Measurements are of a freshly built model, before training: latency depends on the graph and
// shapes, not on the weights' values, so a latency bound rejects a candidate before it costs a
// training run, the strategy sees the latency together with the accuracy, and no weights travel.
//
// The measurements themselves (cache, queue, leases, tokens, expiry) are the MeasurementBroker's;
// this file is what they do to jobs and trials.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "controller/job_manager.h"
#include "controller/job_manager_util.h"
#include "core/compression.h"
#include "core/hardware_targets.h"
#include "core/latency_runtimes.h"
#include "core/log.h"
#include "core/status.h"
#include "core/trial_state.h"

namespace nasforge {

using namespace job_manager_internal;  // NOLINT: this class's own helpers

namespace {

// Rejected candidates do not count against max_trials; past this many the job stops sampling
// (a bound nothing in the space meets would otherwise measure the space forever).
int64_t MaxRejected(const v1::JobSpec& spec) {
  return 100 + 10 * static_cast<int64_t>(spec.budget().max_trials());
}

bool Measured(const v1::Trial& t, const std::string& target) {
  return t.metrics().count(TargetMetric("latency_ms", target)) > 0;
}

bool MissingTarget(const v1::JobSpec& spec, const v1::Trial& t) {
  for (const auto& target : spec.hardware_targets()) {
    if (!Measured(t, target.name())) return true;
  }
  return false;
}

// A target the job bounds (a constraint on one of its latency metrics) that `t` still lacks:
// those are measured first, and the other targets only once the bounds are met, so a rejected
// candidate costs one measurement, not one per target.
bool BoundedMissing(const v1::JobSpec& spec, const v1::Trial& t) {
  for (const auto& target : spec.hardware_targets()) {
    if (!Measured(t, target.name()) && !TargetBounds(spec, target.name()).empty()) return true;
  }
  return false;
}

}  // namespace

int64_t JobManager::Created(const JobState& js) {
  return static_cast<int64_t>(js.trials.size()) - js.job.counts().rejected_by_latency() -
         js.job.counts().warm_started() - js.job.counts().variants();
}

bool JobManager::AwaitsMeasurement(const JobState& js, const v1::Trial& t) {
  // A variant of the parent's network run another way (int8) is not measured before it is
  // made: its latency is the int8 engine's, measured with it once there is one. A network of
  // its own (pruned) is measured like any candidate.
  return t.state() == v1::TRIAL_QUEUED &&
         (!t.has_variant() || VariantIsOwnNetwork(t.variant().recipe())) &&
         MissingTarget(js.job.spec(), t);
}

void JobManager::PlanMeasurements(JobState& js, v1::Trial& t, WriteBatch& batch, Events& events) {
  const v1::JobSpec& spec = js.job.spec();
  for (const auto& target : spec.hardware_targets()) {
    if (t.state() != v1::TRIAL_QUEUED) return;  // rejected by an earlier target's cached value
    if (Measured(t, target.name())) continue;
    // Bounded targets first; the others wait until the bounds are met (ApplyMeasurement plans
    // them then).
    if (TargetBounds(spec, target.name()).empty() && BoundedMissing(spec, t)) continue;
    const std::string key = LatencyKey(t.arch_hash(), target);
    if (std::optional<v1::LatencyMeasurement> c = measurements_.Cached(key)) {
      c->set_cached(true);
      if (metrics_) metrics_->latency_cache_hits_total.Increment();
      ApplyMeasurement(js, t, target.name(), std::move(*c), batch, events);
      continue;
    }
    measurements_.Wait(key, t.architecture(), t.arch_hash(), target,
                       {js.job.id(), t.id(), target.name()});
  }
}

v1::Trial* JobManager::WaitingTrial(const MeasurementBroker::Waiter& w, JobState** js) {
  auto it = jobs_.find(w.job);
  if (it == jobs_.end() || w.trial < 0 ||
      w.trial >= static_cast<int64_t>(it->second->trials.size())) {
    return nullptr;
  }
  *js = it->second.get();
  v1::Trial& t = it->second->trials[w.trial];
  if (!AwaitsMeasurement(**js, t) || Measured(t, w.target)) return nullptr;
  return &t;
}

void JobManager::ApplyMeasurement(JobState& js, v1::Trial& t, const std::string& target,
                                  v1::LatencyMeasurement m, WriteBatch& batch, Events& events) {
  auto& metrics = *t.mutable_metrics();
  metrics[TargetMetric("latency_ms", target)] = m.p50_ms();
  metrics[TargetMetric("latency_p90_ms", target)] = m.p90_ms();
  metrics[TargetMetric("latency_p99_ms", target)] = m.p99_ms();
  m.set_target(target);
  *t.add_latencies() = m;
  *t.mutable_update_time() = ToProto(clock_->Now());
  // A variant is made whatever its latency (queries filter by it); bounds reject candidates.
  const std::string broken =
      t.has_variant() ? "" : BrokenBound(TargetBounds(js.job.spec(), target), m);
  if (!broken.empty()) {
    FailBeforeTraining(js, t,
                       absl::StrCat("rejected before training: ", broken,
                                    " (a constraint of the job; measured by ",
                                    m.worker_id().empty() ? "an earlier job" : m.worker_id(),
                                    m.cached() ? ", from the cache)" : ")"),
                       /*rejected=*/true, batch, events);
    return;
  }
  Stage(batch, t);
  AddEvent(events, js, &t, "trial_measured");
  if (!MissingTarget(js.job.spec(), t)) {
    js.queued.insert(t.id());  // it may train now
  } else if (!TargetBounds(js.job.spec(), target).empty() && !BoundedMissing(js.job.spec(), t)) {
    PlanMeasurements(js, t, batch, events);  // its bounds are met: the other targets now
  }
}

void JobManager::FailBeforeTraining(JobState& js, v1::Trial& t, const std::string& why,
                                    bool rejected, WriteBatch& batch, Events& events) {
  SetTrialState(js, t, v1::TRIAL_FAILED);
  t.set_error(why);
  t.set_rejected(rejected);
  *t.mutable_update_time() = ToProto(clock_->Now());
  if (rejected) {
    auto* c = js.job.mutable_counts();
    c->set_rejected_by_latency(c->rejected_by_latency() + 1);
    if (c->rejected_by_latency() >= MaxRejected(js.job.spec()) && !js.exhausted) {
      js.exhausted = true;
      js.job.set_error(absl::StrCat(c->rejected_by_latency(),
                                    " candidates were over the job's latency bounds; relax them "
                                    "or narrow the space to smaller models"));
    }
  }
  Finished(js, t);
  js.untold.push_back(t.id());
  if (metrics_) metrics_->trials_finished_total.Increment();
  Log(rejected ? LogLevel::kInfo : LogLevel::kWarn,
      rejected ? "trial_rejected_by_latency" : "trial_measurement_failed",
      {{"job", js.job.id()}, {"trial", t.id()}, {"why", why}});
  Stage(batch, t);
  AddEvent(events, js, &t, "trial_finished");
}

bool JobManager::GrantMeasurement(const v1::Worker& worker, v1::LeaseTrialResponse* resp) {
  if (!worker.measures_latency()) return false;
  std::optional<v1::MeasureTask> task = measurements_.Grant(
      worker,
      [this](const MeasurementBroker::Waiter& x) {
        mu_.AssertHeld();  // called by Grant, under this call's lock
        JobState* js = nullptr;
        return WaitingTrial(x, &js) != nullptr;
      },
      [this](const std::vector<MeasurementBroker::Waiter>& waiting) {
        mu_.AssertHeld();
        int ttl_seconds = 0;
        for (const auto& x : waiting) {
          auto it = jobs_.find(x.job);
          if (it != jobs_.end()) {
            ttl_seconds = std::max(ttl_seconds, it->second->job.spec().lease_seconds());
          }
        }
        return absl::Seconds(ttl_seconds);
      });
  if (!task) return false;
  *resp->mutable_measure() = std::move(*task);
  return true;
}

absl::Status JobManager::ReportMeasurement(const v1::ReportMeasurementRequest& req) {
  if (req.token() == 0) return FieldError("token", "is required (MeasureTask.token)");
  if (req.failed()) {
    if (req.error().size() > 4096) return FieldError("error", "longer than 4096 characters");
  } else {
    auto positive = [](double v) { return std::isfinite(v) && v > 0 && v < 3.6e6; };
    if (!positive(req.p50_ms())) return FieldError("p50_ms", "must be a positive number of ms");
    if (!positive(req.p90_ms()) || req.p90_ms() < req.p50_ms() * 0.999) {
      return FieldError("p90_ms", "must be a number of ms >= p50_ms");
    }
    if (!positive(req.p99_ms()) || req.p99_ms() < req.p90_ms() * 0.999) {
      return FieldError("p99_ms", "must be a number of ms >= p90_ms");
    }
    if (!std::isfinite(req.spread()) || req.spread() < 0) {
      return FieldError("spread", "must be a finite number >= 0");
    }
    if (req.runs() < 1) return FieldError("runs", "must be >= 1");
    if (req.timer().size() > 64) return FieldError("timer", "longer than 64 characters");
  }
  WriteBatch batch;
  Events events;
  {
    absl::MutexLock l(&mu_);
    if (!workers_.Known(req.worker_id())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "worker_id: '", req.worker_id(), "' is not registered; call RegisterWorker first"));
    }
    workers_.Touch(req.worker_id());
    // Refused while the store cannot take the result: nothing is applied (the worker retries).
    NF_RETURN_IF_ERROR(writer_->Admit());
    NF_ASSIGN_OR_RETURN(MeasurementBroker::Outcome out, measurements_.Report(req));
    if (out.kind == MeasurementBroker::Outcome::kRetry) return absl::OkStatus();
    if (out.kind == MeasurementBroker::Outcome::kMeasured) {
      batch.latencies.push_back(out.measurement);
    }
    std::set<JobState*> changed;
    for (const MeasurementBroker::Waiter& x : out.waiting) {
      JobState* js = nullptr;
      v1::Trial* t = WaitingTrial(x, &js);
      if (t == nullptr) continue;
      if (out.kind == MeasurementBroker::Outcome::kMeasured) {
        ApplyMeasurement(*js, *t, x.target, out.measurement, batch, events);
      } else {
        FailBeforeTraining(
            *js, *t,
            absl::StrCat("its latency on target ", x.target, " could not be measured (",
                         MeasurementBroker::kAttempts, " attempts); last error: ", out.error),
            /*rejected=*/false, batch, events);
      }
      changed.insert(js);
    }
    for (JobState* js : changed) {
      MaybeFinish(*js, events);
      Touch(js->job);
      Stage(batch, js->job);
    }
    UpdateGauges();
    EnqueueLocked(std::move(batch));
  }
  Publish(std::move(events));
  return absl::OkStatus();
}

void JobManager::ExpireMeasurements(std::set<JobState*>& changed, WriteBatch& batch,
                                    Events& events) {
  if (measurements_.Waiting() == 0) return;
  const std::vector<v1::Worker> live = workers_.Live();
  auto takes = [&](const v1::HardwareTarget& t) {
    for (const v1::Worker& w : live) {
      if (MeasuresTarget(w, t)) return true;
    }
    return false;
  };
  for (MeasurementBroker::Failure& f : measurements_.Expire(takes, options_.unplaceable_after)) {
    for (const MeasurementBroker::Waiter& x : f.waiting) {
      JobState* js = nullptr;
      v1::Trial* t = WaitingTrial(x, &js);
      if (t == nullptr) continue;
      FailBeforeTraining(*js, *t, f.why, /*rejected=*/false, batch, events);
      changed.insert(js);
    }
  }
}

}  // namespace nasforge
