// JobManager: the worker protocol (lease, heartbeat, progress, result). Registration is in
// job_manager_register.cc; what the clock decides (expiry, unplaceable trials) in
// job_manager_expiry.cc.
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "controller/job_manager.h"
#include "controller/job_manager_util.h"
#include "core/cost.h"
#include "core/early_stopping.h"
#include "core/jobspec.h"
#include "core/log.h"
#include "core/pareto.h"
#include "core/reported_metrics.h"
#include "core/search_space.h"
#include "core/status.h"
#include "core/strategies/strategy.h"
#include "core/test_hooks.h"
#include "core/trial_state.h"

namespace nasforge {

using namespace job_manager_internal;  // NOLINT: this class's own helpers
// ------------------------------------------------------------------------------------------
// Workers
// ------------------------------------------------------------------------------------------

absl::StatusOr<v1::LeaseTrialResponse> JobManager::LeaseOne(const v1::LeaseTrialRequest& req,
                                                            bool measure) {
  // Each pass grants a queued trial, or picks a job whose strategy to ask for a new one (outside
  // mu_). A job is asked at most once per call, so an idle poll costs at most one step per job.
  std::set<JobState*> asked;
  for (;;) {
    WriteBatch batch;
    Events events;
    v1::LeaseTrialResponse resp;
    JobState* ask = nullptr;
    {
      absl::MutexLock l(&mu_);
      NF_RETURN_IF_ERROR(GrantOrPick(req, asked, measure, &resp, &ask, batch, events));
      EnqueueLocked(std::move(batch));
    }
    Publish(std::move(events));
    if (ask == nullptr) {
      if (!resp.has_trial() && !resp.has_measure()) {
        resp.set_retry_after_ms(static_cast<int>(absl::ToInt64Milliseconds(options_.idle_retry)));
      }
      return resp;
    }
    asked.insert(ask);
    AskAndApply(*ask, req.worker_id(), &resp);
    if (resp.has_trial()) return resp;
  }
}

absl::Status JobManager::GrantOrPick(const v1::LeaseTrialRequest& req,
                                     const std::set<JobState*>& asked, bool measure,
                                     v1::LeaseTrialResponse* resp, JobState** ask,
                                     WriteBatch& batch, Events& events) {
  if (!workers_.count(req.worker_id())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "worker_id: '", req.worker_id(), "' is not registered; call RegisterWorker first"));
  }
  TouchWorker(req.worker_id());
  // A lease that cannot be made durable is not handed out: refuse before deciding anything.
  NF_RETURN_IF_ERROR(writer_->Admit());
  // Measurements first: they are short, and each unblocks queued trials of every job.
  if (measure && GrantMeasurement(req.worker_id(), resp)) return absl::OkStatus();
  const v1::Worker& worker = workers_.at(req.worker_id());
  const int64_t worker_memory = worker.hardware().memory_bytes();
  // Fair sharing: the running jobs with the fewest running trials go first; among equals, the
  // one served longest ago. A job with a huge max_parallel_trials cannot starve the others. A
  // strategy step in progress counts as a running trial (it ends in one).
  std::vector<JobState*> order;
  for (const std::string& id : job_order_) {
    JobState& js = *jobs_.at(id);
    if (js.job.state() != v1::JOB_RUNNING) continue;
    if (!TrainsDataset(worker, js.job.spec().training().dataset())) continue;
    if (js.job.counts().running() + js.asking >= js.job.spec().budget().max_parallel_trials()) {
      continue;
    }
    order.push_back(&js);
  }
  std::stable_sort(order.begin(), order.end(), [](const JobState* a, const JobState* b) {
    int ra = a->job.counts().running() + a->asking, rb = b->job.counts().running() + b->asking;
    if (ra != rb) return ra < rb;
    return a->last_grant < b->last_grant;
  });
  for (JobState* jsp : order) {
    JobState& js = *jsp;
    v1::Trial* t = nullptr;
    for (int64_t id : js.queued) {  // oldest first, if the worker has room for it
      if (Fits(js.trials[id], worker_memory)) {
        t = &js.trials[id];
        break;
      }
    }
    if (t != nullptr) {
      GrantLease(js, *t, req.worker_id(), resp);
      js.last_grant = ++grants_;
      Stage(batch, *t);
      Stage(batch, js.job);
      AddEvent(events, js, t, "trial_leased");
      UpdateGauges();
      return absl::OkStatus();
    }
    // A new candidate only while the job's backlog of queued trials (ones this worker had no room
    // for) stays under max_parallel_trials: small workers polling cannot fill the queue.
    if (!js.exhausted && !asked.count(&js) &&
        Created(js) + js.asking < js.job.spec().budget().max_trials() &&
        js.job.counts().queued() + js.asking < js.job.spec().budget().max_parallel_trials()) {
      ++js.asking;
      *ask = &js;
      return absl::OkStatus();
    }
  }
  UpdateGauges();
  return absl::OkStatus();
}

void JobManager::AskAndApply(JobState& js, const std::string& worker_id,
                             v1::LeaseTrialResponse* resp) {
  WriteBatch batch;
  Events events;
  {
    // The job's steps run one at a time under its driver lock, taken before mu_ (lock order).
    absl::MutexLock d(js.driver->lock());
    std::vector<v1::Trial> finished;
    bool go;
    {
      absl::MutexLock l(&mu_);
      // Another step may have ended the job's sampling while this one waited for the driver.
      go = js.job.state() == v1::JOB_RUNNING && !js.exhausted &&
           Created(js) < js.job.spec().budget().max_trials();
      if (go) {
        for (int64_t id : js.untold) finished.push_back(js.trials[id]);
        js.untold.clear();
      } else {
        --js.asking;
        MaybeFinish(js, events);
      }
    }
    if (go) {
      StrategyDriver::Step step = js.driver->Next(finished, kMaxSampleMisses);
      absl::MutexLock l(&mu_);
      --js.asking;
      const auto before = std::make_tuple(js.job.state(), js.job.next_sample(), js.exhausted,
                                          js.job.counts().rejected_by_cost());
      v1::Trial* t = ApplyStep(js, std::move(step));
      if (t != nullptr) PlanMeasurements(js, *t, batch, events);
      // The call was admitted before the step; hand the trial out only if the store still takes
      // changes and the worker has room for it (it stays queued otherwise: the step is not lost).
      auto w = workers_.find(worker_id);
      const int64_t worker_memory = w == workers_.end() ? 0 : w->second.hardware().memory_bytes();
      if (t != nullptr && t->state() == v1::TRIAL_QUEUED && !AwaitsMeasurement(js, *t) &&
          writer_->Admit().ok() && Fits(*t, worker_memory)) {
        GrantLease(js, *t, worker_id, resp);
        js.last_grant = ++grants_;
        AddEvent(events, js, t, "trial_leased");
      }
      if (t != nullptr) Stage(batch, *t);
      MaybeFinish(js, events);
      // Written only if the step changed the job (an idle poll of a waiting job writes nothing).
      if (t != nullptr ||
          before != std::make_tuple(js.job.state(), js.job.next_sample(), js.exhausted,
                                    js.job.counts().rejected_by_cost())) {
        Stage(batch, js.job);
      }
      UpdateGauges();
      EnqueueLocked(std::move(batch));
    }
  }
  Publish(std::move(events));
}

void JobManager::AbandonLease(const v1::Lease& lease, const std::string& worker_id) {
  WriteBatch batch;
  Events events;
  {
    absl::MutexLock l(&mu_);
    auto found = FindJob(lease.job_id());
    if (!found.ok()) return;
    JobState& js = **found;
    if (lease.trial_id() < 0 || lease.trial_id() >= static_cast<int64_t>(js.trials.size())) return;
    v1::Trial& t = js.trials[lease.trial_id()];
    if (t.state() != v1::TRIAL_RUNNING || t.lease_epoch() != lease.epoch() ||
        t.worker_id() != worker_id) {
      return;
    }
    leases_.Release({js.job.id(), t.id()});
    SetTrialState(js, t, v1::TRIAL_QUEUED);
    t.set_attempts(std::max(0, t.attempts() - 1));
    t.clear_lease_deadline();
    *t.mutable_update_time() = ToProto(clock_->Now());
    Touch(js.job);
    Stage(batch, t);
    Stage(batch, js.job);
    AddEvent(events, js, &t, "trial_requeued");
    Log(LogLevel::kWarn, "lease_abandoned",
        {{"job", js.job.id()},
         {"trial", t.id()},
         {"worker", worker_id},
         {"epoch", t.lease_epoch()},
         {"reason", "the grant was not durable; the worker was told to retry"}});
    UpdateGauges();
    EnqueueLocked(std::move(batch));
  }
  Publish(std::move(events));
}

absl::StatusOr<v1::HeartbeatResponse> JobManager::Heartbeat(const v1::HeartbeatRequest& req) {
  // Only the lease table's own lock: a heartbeat never waits behind strategy work under mu_.
  // Deadlines live in memory (no write per heartbeat, so leases survive a store outage);
  // Recover() gives running trials a fresh lease after a restart.
  TouchWorker(req.worker_id());
  const v1::Lease& l = req.lease();
  absl::Time steady = clock_->Steady(), deadline;
  uint64_t current = 0;
  v1::HeartbeatResponse resp;
  switch (leases_.Renew({l.job_id(), l.trial_id()}, l.epoch(), req.worker_id(), steady, &deadline,
                        &current)) {
    case LeaseTable::Renewal::kRenewed:
      *resp.mutable_deadline() = ToProto(clock_->Now() + (deadline - steady));
      return resp;
    case LeaseTable::Renewal::kCancelled:
      resp.set_cancel(true);
      return resp;
    case LeaseTable::Renewal::kNotYours:
      if (metrics_) metrics_->stale_reports_total.Increment();
      return absl::FailedPreconditionError(
          absl::StrCat("worker_id: lease ", l.job_id(), "/", l.trial_id(), " epoch ", l.epoch(),
                       " was granted to another worker; drop this trial"));
    case LeaseTable::Renewal::kStale:
      break;
  }
  if (metrics_) metrics_->stale_reports_total.Increment();
  return absl::FailedPreconditionError(absl::StrCat(
      "lease.epoch: stale lease for trial ", l.job_id(), "/", l.trial_id(), " (yours ", l.epoch(),
      ", current ", current == 0 ? std::string("none") : absl::StrCat(current),
      "); the lease expired or the job ended. Drop this trial and lease another."));
}

absl::StatusOr<v1::ReportProgressResponse> JobManager::ReportProgress(
    const v1::ReportProgressRequest& req) {
  WriteBatch batch;
  Events events;
  v1::ReportProgressResponse resp;
  {
    absl::MutexLock l(&mu_);
    TouchWorker(req.worker_id());
    NF_ASSIGN_OR_RETURN(auto jt,
                        CheckLease(req.lease(), req.worker_id(), /*allow_cancelled=*/true));
    auto [js, t] = jt;
    if (t->state() == v1::TRIAL_CANCELLED) {
      resp.set_decision(v1::STOP);
      resp.set_reason("job cancelled");
      return resp;
    }
    const v1::CurvePoint& p = req.point();
    if (p.epoch() < 1) return FieldError("point.epoch", "must be >= 1");
    int max_epochs = js->job.spec().budget().epochs();
    if (max_epochs > 0 && p.epoch() > max_epochs) {
      return FieldError("point.epoch", absl::StrCat(p.epoch(), " is past the job's budget of ",
                                                    max_epochs, " epochs"));
    }
    if (absl::Status st = ValidateCurvePoint(js->job.spec(), p); !st.ok()) {
      RefuseReport(*js, *t, req.worker_id(), st);
      return st;
    }
    bool retry = t->curve_size() > 0 && p.epoch() == t->curve(t->curve_size() - 1).epoch();
    if (!retry && t->curve_size() > 0 && p.epoch() < t->curve(t->curve_size() - 1).epoch()) {
      return FieldError("point.epoch",
                        absl::StrCat(p.epoch(), " is not after the last reported epoch ",
                                     t->curve(t->curve_size() - 1).epoch()));
    }
    absl::Time steady = clock_->Steady(), deadline;
    uint64_t current = 0;
    if (leases_.Renew({js->job.id(), t->id()}, t->lease_epoch(), req.worker_id(), steady, &deadline,
                      &current) == LeaseTable::Renewal::kRenewed) {
      *t->mutable_lease_deadline() = ToProto(clock_->Now() + (deadline - steady));
    }
    if (!retry) {
      // A repeated epoch (a retry after a lost answer) is answered again, not recorded twice.
      NF_RETURN_IF_ERROR(writer_->Admit());
      *t->add_curve() = p;
      *t->mutable_update_time() = ToProto(clock_->Now());
      Stage(batch, *t);
      AddEvent(events, *js, t, "trial_progress");
    }
    StopDecision d = DecideEarlyStop(*js, *t);
    resp.set_decision(d.stop ? v1::STOP : v1::CONTINUE);
    if (d.stop && !retry && metrics_)
      metrics_->EarlyStops(js->job.spec().early_stopping().rule()).Increment();
    resp.set_reason(d.reason);
    if (!d.reason.empty()) {
      Log(LogLevel::kInfo, d.stop ? "trial_early_stopped" : "trial_kept",
          {{"job", js->job.id()},
           {"trial", t->id()},
           {"epoch", req.point().epoch()},
           {"reason", d.reason}});
    }
    EnqueueLocked(std::move(batch));
  }
  Publish(std::move(events));
  return resp;
}

absl::Status JobManager::ReportResult(const v1::ReportResultRequest& req) {
  return ReportResultAs(req.worker_id(), req);
}

absl::Status JobManager::ReportResultAs(const std::string& worker,
                                        const v1::ReportResultRequest& req) {
  WriteBatch batch;
  Events events;
  {
    absl::MutexLock l(&mu_);
    TouchWorker(worker);
    // A retry of a report that was applied (its answer was lost) is answered OK again and counted
    // once: same trial, same epoch, same worker, and the trial not leased again since.
    if (auto found = FindJob(req.lease().job_id()); found.ok()) {
      JobState* js = *found;
      int64_t id = req.lease().trial_id();
      if (id >= 0 && id < static_cast<int64_t>(js->trials.size())) {
        const v1::Trial& t = js->trials[id];
        if (req.lease().epoch() != 0 && t.reported_epoch() == req.lease().epoch() &&
            t.lease_epoch() == req.lease().epoch() && t.worker_id() == worker) {
          Log(LogLevel::kInfo, "trial_report_repeated",
              {{"job", js->job.id()}, {"trial", id}, {"worker", worker}});
          return absl::OkStatus();
        }
      }
    }
    NF_ASSIGN_OR_RETURN(auto jt, CheckLease(req.lease(), worker, /*allow_cancelled=*/false));
    auto [js, t] = jt;
    if (req.hardware_profile().size() > 128) {
      return FieldError("hardware_profile", "longer than 128 characters");
    }
    if (!req.failed() && !req.handed_back()) {
      if (absl::Status st = ValidateReportedMetrics(js->job.spec(), req.metrics()); !st.ok()) {
        RefuseReport(*js, *t, worker, st);
        return st;
      }
    }
    NF_RETURN_IF_ERROR(writer_->Admit());
    const auto& budget = js->job.spec().budget();
    leases_.Release({js->job.id(), t->id()});
    t->set_reported_epoch(t->lease_epoch());
    *t->mutable_update_time() = ToProto(clock_->Now());
    t->clear_lease_deadline();
    const char* outcome;
    if (req.handed_back()) {
      SetTrialState(*js, *t, v1::TRIAL_QUEUED);
      t->set_attempts(t->attempts() - 1);  // not the trial's fault
      t->clear_curve();
      outcome = "handed_back";
    } else if (req.failed()) {
      // Bounded: a worker's error text is kept up to 4 KiB (a stack trace's head is enough).
      constexpr size_t kMaxError = 4096;
      t->set_error(req.error().empty() ? "worker reported a failure without a message"
                   : req.error().size() <= kMaxError
                       ? req.error()
                       : absl::StrCat(req.error().substr(0, kMaxError), " [truncated]"));
      t->clear_curve();
      if (t->attempts() >= budget.max_attempts()) {
        SetTrialState(*js, *t, v1::TRIAL_FAILED);
        outcome = "failed";
      } else {
        SetTrialState(*js, *t, v1::TRIAL_QUEUED);
        outcome = "retry";
      }
    } else {
      // Cost metrics stay the controller's (computed from the architecture at creation).
      for (const auto& [k, v] : req.metrics()) {
        if (!IsControllerMetric(k)) (*t->mutable_metrics())[k] = v;
      }
      t->set_hardware_profile(req.hardware_profile());
      SetTrialState(*js, *t, req.stopped_early() ? v1::TRIAL_STOPPED : v1::TRIAL_SUCCEEDED);
      t->clear_error();
      outcome = req.stopped_early() ? "stopped" : "succeeded";
      const auto& obj = js->job.spec().objectives(0);
      auto it = t->metrics().find(obj.metric());
      if (t->state() == v1::TRIAL_SUCCEEDED && it != t->metrics().end()) {
        bool better = !js->job.has_best_objective() ||
                      (obj.direction() == v1::MAXIMIZE ? it->second > js->job.best_objective()
                                                       : it->second < js->job.best_objective());
        if (better) js->job.set_best_objective(it->second);
      }
    }
    if (TrialTerminal(t->state())) Finished(*js, *t);
    Touch(js->job);
    if (TrialTerminal(t->state())) {
      js->untold.push_back(t->id());  // told to the strategy at its next step
      if (metrics_) metrics_->trials_finished_total.Increment();
    }
    Log(req.failed() ? LogLevel::kWarn : LogLevel::kInfo, "trial_reported",
        {{"job", js->job.id()},
         {"trial", t->id()},
         {"worker", worker},
         {"outcome", outcome},
         {"attempt", t->attempts()},
         {"accuracy", t->metrics().count("accuracy") ? t->metrics().at("accuracy") : -1.0},
         {"error", req.error()}});
    Stage(batch, *t);
    AddEvent(events, *js, t, "trial_finished");
    MaybeFinish(*js, events);
    Stage(batch, js->job);
    UpdateGauges();
    EnqueueLocked(std::move(batch));
  }
  Publish(std::move(events));
  return absl::OkStatus();
}

}  // namespace nasforge
