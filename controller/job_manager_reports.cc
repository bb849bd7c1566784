// JobManager: what workers report on their leases: heartbeats (lease table only), progress
// (early-stopping decisions) and results (validated, recorded, told to the strategy).
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

absl::StatusOr<v1::HeartbeatResponse> JobManager::Heartbeat(const v1::HeartbeatRequest& req) {
  // Only the lease table's own lock: a heartbeat never waits behind strategy work under mu_.
  // Deadlines live in memory (no write per heartbeat, so leases survive a store outage);
  // Recover() gives running trials a fresh lease after a restart.
  workers_.Touch(req.worker_id());
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
    workers_.Touch(req.worker_id());
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
    workers_.Touch(worker);
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
      if (t->state() == v1::TRIAL_SUCCEEDED && it != t->metrics().end() && !t->has_variant()) {
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
    MakeVariants(*js, *t, batch, events);  // in the same batch: durable with the result
    MaybeFinish(*js, events);
    Stage(batch, js->job);
    UpdateGauges();
    EnqueueLocked(std::move(batch));
  }
  Publish(std::move(events));
  return absl::OkStatus();
}

}  // namespace nasforge
