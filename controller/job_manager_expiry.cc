// JobManager: what no worker reports but the clock decides: expired leases, leases of a worker
// that restarted, and queued trials no live worker has the memory for.
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <tuple>

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

void JobManager::ExpireLeases() {
  WriteBatch batch;
  Events events;
  {
    absl::MutexLock l(&mu_);
    std::set<JobState*> changed;
    for (const LeaseTable::Key& key : leases_.Expired(clock_->Steady())) {
      leases_.Release(key);
      auto found = FindJob(key.first);
      if (!found.ok()) continue;
      JobState& js = **found;
      if (key.second < 0 || key.second >= static_cast<int64_t>(js.trials.size())) continue;
      v1::Trial& t = js.trials[key.second];
      if (t.state() != v1::TRIAL_RUNNING) continue;
      if (metrics_) metrics_->leases_expired_total.Increment();
      LoseLease(js, t,
                absl::StrCat("lease expired without a heartbeat (last worker ", t.worker_id(),
                             "); workers may be crashing on this candidate"),
                batch, events);
      changed.insert(&js);
    }
    FailUnplaceable(changed, batch, events);
    FailUnmakeable(changed, batch, events);
    ExpireMeasurements(changed, batch, events);
    for (JobState* js : changed) {
      MaybeFinish(*js, events);
      Touch(js->job);
      Stage(batch, js->job);
    }
    UpdateGauges();
    if (!batch.empty()) EnqueueLocked(std::move(batch));
  }
  Publish(std::move(events));
}

void JobManager::LoseLease(JobState& js, v1::Trial& t, absl::string_view why, WriteBatch& batch,
                           Events& events) {
  leases_.Release({js.job.id(), t.id()});
  t.clear_curve();
  t.clear_lease_deadline();
  *t.mutable_update_time() = ToProto(clock_->Now());
  if (t.attempts() >= js.job.spec().budget().max_attempts()) {
    SetTrialState(js, t, v1::TRIAL_FAILED);
    t.set_error(absl::StrCat(why, "; failed after ", t.attempts(), " attempts (max_attempts)"));
    Finished(js, t);
    js.untold.push_back(t.id());
    if (metrics_) metrics_->trials_finished_total.Increment();
  } else {
    SetTrialState(js, t, v1::TRIAL_QUEUED);
  }
  Log(LogLevel::kWarn, "lease_lost",
      {{"job", js.job.id()},
       {"trial", t.id()},
       {"worker", t.worker_id()},
       {"epoch", t.lease_epoch()},
       {"attempt", t.attempts()},
       {"why", why},
       {"next", t.state() == v1::TRIAL_FAILED ? "failed" : "requeued"}});
  Stage(batch, t);
  AddEvent(events, js, &t, "trial_finished");
}

void JobManager::FailUnplaceable(std::set<JobState*>& changed, WriteBatch& batch, Events& events) {
  // The most memory a live worker declares; a live worker that declares none takes anything.
  int64_t largest = 0;
  for (const v1::Worker& w : workers_.Live()) {
    const int64_t m = w.hardware().memory_bytes();
    if (m <= 0) {
      largest = 0;
      break;
    }
    largest = std::max(largest, m);
  }
  // Each sweep rebuilds the set of unfit queued trials; a trial is failed once it has been in
  // it for unplaceable_after on the steady clock (a bigger worker may join meanwhile).
  std::map<LeaseTable::Key, absl::Time> unfit;
  const absl::Time steady = clock_->Steady();
  const absl::Time now = clock_->Now();
  if (largest == 0) {  // no live worker, or one that takes anything: nothing is unplaceable now
    unfit_since_.clear();
    return;
  }
  for (const std::string& id : job_order_) {
    JobState& js = *jobs_.at(id);
    if (js.job.state() != v1::JOB_RUNNING || js.job.counts().queued() == 0) continue;
    const std::vector<int64_t> queued(js.queued.begin(), js.queued.end());  // changes below
    for (int64_t trial_id : queued) {
      v1::Trial& t = js.trials[trial_id];
      if (t.state() != v1::TRIAL_QUEUED || Fits(t, largest)) continue;
      const LeaseTable::Key key{js.job.id(), t.id()};
      auto seen = unfit_since_.find(key);
      const absl::Time since = seen == unfit_since_.end() ? steady : seen->second;
      if (steady - since < options_.unplaceable_after) {
        unfit.emplace(key, since);
        continue;
      }
      const double need = t.metrics().at("train_memory_bytes");
      SetTrialState(js, t, v1::TRIAL_FAILED);
      auto human = [](double b) {
        return b >= (1 << 30) ? absl::StrFormat("%.2f GiB", b / (1 << 30))
                              : absl::StrFormat("%.1f MiB", b / (1 << 20));
      };
      t.set_error(absl::StrCat(
          "needs about ", human(need), " to train (train_memory_bytes at batch_size ",
          js.job.spec().training().batch_size(), ") but the largest live worker declares ",
          human(static_cast<double>(largest)),
          ": add a worker with more memory, lower training.batch_size, or bound "
          "train_memory_bytes in the job's constraints"));
      *t.mutable_update_time() = ToProto(now);
      Finished(js, t);
      js.untold.push_back(t.id());
      if (metrics_) {
        metrics_->unplaceable_trials_total.Increment();
        metrics_->trials_finished_total.Increment();
      }
      Log(LogLevel::kWarn, "trial_unplaceable",
          {{"job", js.job.id()},
           {"trial", t.id()},
           {"train_memory_bytes", static_cast<int64_t>(need)},
           {"largest_worker_bytes", largest},
           {"action", "failed; add a bigger worker or bound train_memory_bytes"}});
      Stage(batch, t);
      AddEvent(events, js, &t, "trial_finished");
      changed.insert(&js);
    }
  }
  unfit_since_ = std::move(unfit);
}

}  // namespace nasforge
