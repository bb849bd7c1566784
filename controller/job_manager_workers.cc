// JobManager: leasing (the worker protocol's grants: fair sharing, strategy steps, abandoned
// grants). Reports (heartbeat, progress, result) are in job_manager_reports.cc, registration
// in job_manager_register.cc, what the clock decides in job_manager_expiry.cc.
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
  std::optional<v1::Worker> registered = workers_.Get(req.worker_id());
  if (!registered) {
    return absl::FailedPreconditionError(absl::StrCat(
        "worker_id: '", req.worker_id(), "' is not registered; call RegisterWorker first"));
  }
  workers_.Touch(req.worker_id());
  // A lease that cannot be made durable is not handed out: refuse before deciding anything.
  NF_RETURN_IF_ERROR(writer_->Admit());
  // Measurements first: they are short, and each unblocks queued trials of every job.
  if (measure && GrantMeasurement(*registered, resp)) return absl::OkStatus();
  const v1::Worker& worker = *registered;
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
    for (int64_t id : js.queued) {  // oldest first, if the worker has room for it and can make it
      if (Fits(js.trials[id], worker_memory) && MakesVariant(worker, js.trials[id])) {
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
        js.job.counts().queued() - js.queued_variants + js.asking <
            js.job.spec().budget().max_parallel_trials()) {
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
        for (int64_t id : js.untold) {
          // Variants are not the strategy's proposals: it never hears of them.
          if (!js.trials[id].has_variant()) finished.push_back(js.trials[id]);
        }
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
      std::optional<v1::Worker> w = workers_.Get(worker_id);
      const int64_t worker_memory = w ? w->hardware().memory_bytes() : 0;
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

}  // namespace nasforge
