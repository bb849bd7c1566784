// JobManager: latency on the jobs' hardware targets. A queued trial of a job with targets waits
// until each target's latency is known: from the cache (any job measured the same architecture
// on the same setting), or from a measurement lease granted to a worker of the target's profile.
// Measurements are of a freshly built model, before training: latency depends on the graph and
// shapes, not on the weights' values, so a latency bound rejects a candidate before it costs a
// training run, the strategy sees the latency together with the accuracy, and no weights travel.
//
// Measurement leases live in memory only. A controller restart forgets them; recovery plans the
// measurements of the queued trials again (a worker's late report then answers
// FAILED_PRECONDITION and is dropped: nothing was lost but one measurement).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "controller/job_manager.h"
#include "controller/job_manager_util.h"
#include "core/hardware_targets.h"
#include "core/latency_runtimes.h"
#include "core/log.h"
#include "core/status.h"
#include "core/trial_state.h"

namespace nasforge {

using namespace job_manager_internal;  // NOLINT: this class's own helpers

namespace {

// Leases of one measurement that failed or expired before its trials fail.
constexpr int kMeasureAttempts = 3;
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
         js.job.counts().warm_started();
}

bool JobManager::AwaitsMeasurement(const JobState& js, const v1::Trial& t) {
  return t.state() == v1::TRIAL_QUEUED && MissingTarget(js.job.spec(), t);
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
    if (auto c = latency_cache_.find(key); c != latency_cache_.end()) {
      v1::LatencyMeasurement m = c->second;
      m.set_cached(true);
      if (metrics_) metrics_->latency_cache_hits_total.Increment();
      ApplyMeasurement(js, t, target.name(), std::move(m), batch, events);
      continue;
    }
    Measuring& mg = measuring_[key];
    if (mg.seq == 0) {
      mg.seq = ++measure_seq_;
      mg.since = clock_->Steady();
      *mg.task.mutable_architecture() = t.architecture();
      mg.task.set_arch_hash(t.arch_hash());
      *mg.task.mutable_target() = target;
      mg.task.mutable_target()->clear_name();  // the setting, not this job's name for it
    }
    const bool waits = std::any_of(mg.waiting.begin(), mg.waiting.end(), [&](const Waiter& x) {
      return x.js == &js && x.trial == t.id() && x.target == target.name();
    });
    if (!waits) mg.waiting.push_back({&js, t.id(), target.name()});
  }
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
  const std::string broken = BrokenBound(TargetBounds(js.job.spec(), target), m);
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

bool JobManager::GrantMeasurement(const std::string& worker_id, v1::LeaseTrialResponse* resp) {
  auto w = workers_.find(worker_id);
  if (w == workers_.end() || !w->second.measures_latency() || measuring_.empty()) return false;
  std::map<std::string, Measuring>::iterator best = measuring_.end();
  for (auto it = measuring_.begin(); it != measuring_.end();) {
    Measuring& mg = it->second;
    // Trials that stopped waiting (their job was cancelled, or a cached value arrived).
    std::erase_if(mg.waiting, [](const Waiter& x) {
      const v1::Trial& t = x.js->trials[x.trial];
      return t.state() != v1::TRIAL_QUEUED || Measured(t, x.target);
    });
    if (mg.waiting.empty() && mg.task.token() == 0) {
      it = measuring_.erase(it);
      continue;
    }
    if (mg.task.token() == 0 && MeasuresTarget(w->second, mg.task.target()) &&
        (best == measuring_.end() || mg.seq < best->second.seq)) {
      best = it;
    }
    ++it;
  }
  if (best == measuring_.end()) return false;
  Measuring& mg = best->second;
  int ttl_seconds = 0;
  for (const Waiter& x : mg.waiting) {
    ttl_seconds = std::max(ttl_seconds, x.js->job.spec().lease_seconds());
  }
  const absl::Duration ttl = absl::Seconds(ttl_seconds);
  uint64_t token = next_token_++;
  if (token == 0) token = next_token_++;
  mg.task.set_token(token);
  *mg.task.mutable_deadline() = ToProto(clock_->Now() + ttl);
  mg.worker = worker_id;
  mg.deadline = clock_->Steady() + ttl;
  measure_tokens_[token] = best->first;
  *resp->mutable_measure() = mg.task;
  if (metrics_) metrics_->measurements_leased_total.Increment();
  Log(LogLevel::kInfo, "measurement_leased",
      {{"worker", worker_id},
       {"hash", mg.task.arch_hash()},
       {"profile", mg.task.target().profile()},
       {"batch", mg.task.target().batch_size()},
       {"threads", mg.task.target().threads()},
       {"precision", mg.task.target().precision()},
       {"runtime", mg.task.target().runtime()},
       {"waiting", mg.waiting.size()},
       {"attempt", mg.attempts + 1}});
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
    if (!workers_.count(req.worker_id())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "worker_id: '", req.worker_id(), "' is not registered; call RegisterWorker first"));
    }
    TouchWorker(req.worker_id());
    auto tk = measure_tokens_.find(req.token());
    if (tk == measure_tokens_.end() || measuring_.at(tk->second).worker != req.worker_id()) {
      if (metrics_) metrics_->stale_reports_total.Increment();
      return absl::FailedPreconditionError(absl::StrCat(
          "token: measurement lease ", req.token(),
          " is not yours now (it expired, was measured, or the controller restarted); drop it"));
    }
    const std::string key = tk->second;
    Measuring& mg = measuring_.at(key);
    std::set<JobState*> changed;
    if (req.failed()) {
      measure_tokens_.erase(tk);
      mg.task.set_token(0);
      mg.worker.clear();
      ++mg.attempts;
      mg.last_error = req.error().empty() ? "no message" : req.error();
      Log(LogLevel::kWarn, "measurement_failed",
          {{"worker", req.worker_id()},
           {"hash", mg.task.arch_hash()},
           {"profile", mg.task.target().profile()},
           {"attempt", mg.attempts},
           {"error", mg.last_error}});
      if (mg.attempts < kMeasureAttempts) return absl::OkStatus();
      NF_RETURN_IF_ERROR(writer_->Admit());
      for (const Waiter& x : mg.waiting) {
        v1::Trial& t = x.js->trials[x.trial];
        if (!AwaitsMeasurement(*x.js, t)) continue;
        FailBeforeTraining(
            *x.js, t,
            absl::StrCat("its latency on target ", x.target, " could not be measured (",
                         kMeasureAttempts, " attempts); last error: ", mg.last_error),
            /*rejected=*/false, batch, events);
        changed.insert(x.js);
      }
      measuring_.erase(key);
    } else {
      NF_RETURN_IF_ERROR(writer_->Admit());
      v1::LatencyMeasurement m;
      const v1::HardwareTarget& target = mg.task.target();
      m.set_arch_hash(mg.task.arch_hash());
      m.set_profile(target.profile());
      m.set_batch_size(target.batch_size());
      m.set_threads(target.threads());
      m.set_precision(target.precision());
      m.set_runtime(target.runtime().empty() ? kDefaultLatencyRuntime : target.runtime());
      *m.mutable_options() = target.options();
      m.set_p50_ms(req.p50_ms());
      m.set_p90_ms(req.p90_ms());
      m.set_p99_ms(req.p99_ms());
      m.set_spread(req.spread());
      m.set_runs(req.runs());
      m.set_timer(req.timer());
      m.set_worker_id(req.worker_id());
      *m.mutable_measure_time() = ToProto(clock_->Now());
      latency_cache_[key] = m;
      batch.latencies.push_back(m);
      if (metrics_) metrics_->measurements_total.Increment();
      Log(LogLevel::kInfo, "measured",
          {{"worker", req.worker_id()},
           {"hash", m.arch_hash()},
           {"profile", m.profile()},
           {"batch", m.batch_size()},
           {"threads", m.threads()},
           {"precision", m.precision()},
           {"runtime", m.runtime()},
           {"p50_ms", m.p50_ms()},
           {"spread", m.spread()},
           {"waiting", mg.waiting.size()}});
      for (const Waiter& x : mg.waiting) {
        v1::Trial& t = x.js->trials[x.trial];
        if (!AwaitsMeasurement(*x.js, t) || Measured(t, x.target)) {
          continue;
        }
        ApplyMeasurement(*x.js, t, x.target, m, batch, events);
        changed.insert(x.js);
      }
      measure_tokens_.erase(tk);
      measuring_.erase(key);
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
  if (measuring_.empty()) return;
  const absl::Time steady = clock_->Steady();
  // The live workers that measure latency.
  std::vector<const v1::Worker*> live;
  {
    const absl::Time cutoff = LiveCutoff();
    absl::MutexLock s(&seen_mu_);
    for (const auto& [id, seen] : worker_seen_) {
      auto w = workers_.find(id);
      if (seen < cutoff || w == workers_.end() || !w->second.measures_latency()) continue;
      live.push_back(&w->second);
    }
  }
  auto takes = [&](const v1::HardwareTarget& t) {
    for (const v1::Worker* w : live) {
      if (MeasuresTarget(*w, t)) return true;
    }
    return false;
  };
  for (auto it = measuring_.begin(); it != measuring_.end();) {
    Measuring& mg = it->second;
    std::string why;
    if (mg.task.token() != 0 && mg.deadline <= steady) {
      measure_tokens_.erase(mg.task.token());
      if (metrics_) metrics_->leases_expired_total.Increment();
      mg.last_error = absl::StrCat("worker ", mg.worker, " did not report it before its deadline");
      Log(LogLevel::kWarn, "measurement_expired",
          {{"worker", mg.worker}, {"hash", mg.task.arch_hash()}, {"attempt", mg.attempts + 1}});
      mg.task.set_token(0);
      mg.worker.clear();
      if (++mg.attempts >= kMeasureAttempts) {
        why = absl::StrCat("its latency on target profile ", mg.task.target().profile(),
                           " could not be measured (", kMeasureAttempts,
                           " attempts); last error: ", mg.last_error);
      }
    }
    if (why.empty() && mg.task.token() == 0) {
      if (takes(mg.task.target())) {
        mg.since = steady;  // someone can take it: it waits its turn
      } else if (steady - mg.since >= options_.unplaceable_after) {
        why = absl::StrCat("no live worker of ", MeasurerDescription(mg.task.target()),
                           " measures latency (waited ",
                           absl::FormatDuration(options_.unplaceable_after),
                           "): start one, e.g. nasforge-worker --hardware-profile ",
                           mg.task.target().profile(), ", or drop the hardware target");
      }
    }
    if (why.empty()) {
      ++it;
      continue;
    }
    for (const Waiter& x : mg.waiting) {
      v1::Trial& t = x.js->trials[x.trial];
      if (!AwaitsMeasurement(*x.js, t) || Measured(t, x.target)) {
        continue;
      }
      FailBeforeTraining(*x.js, t, why, /*rejected=*/false, batch, events);
      changed.insert(x.js);
    }
    it = measuring_.erase(it);
  }
}

}  // namespace nasforge
