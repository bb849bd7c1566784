// JobManager: a job's life after submission: more budget (ExtendJob, also resume of a
// cancelled or failed job), a candidate named by the user (EnqueueCandidate), deletion.
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "controller/job_manager.h"
#include "controller/job_manager_util.h"
#include "core/log.h"
#include "core/search_space.h"
#include "core/status.h"
#include "core/trial_state.h"

namespace nasforge {

using namespace job_manager_internal;  // NOLINT: this class's own helpers

absl::StatusOr<v1::Job> JobManager::ExtendJob(const v1::ExtendJobRequest& req,
                                              const Principal& caller) {
  constexpr int64_t kMaxTrials = 1'000'000;  // as the spec's own bound
  if (req.add_trials() < 0 || req.add_trials() > kMaxTrials) {
    return FieldError("add_trials",
                      absl::StrCat(req.add_trials(), " is out of range [0, ", kMaxTrials, "]"));
  }
  if (req.max_trials() < 0) return FieldError("max_trials", "must be >= 0");
  if (req.add_trials() > 0 && req.max_trials() > 0) {
    return FieldError("max_trials", "give add_trials or max_trials, not both");
  }
  if (req.add_trials() == 0 && req.max_trials() == 0 && !req.resume()) {
    return FieldError("add_trials", "nothing to do: give add_trials, max_trials or resume");
  }
  WriteBatch batch;
  Events events;
  v1::Job out;
  {
    absl::MutexLock l(&mu_);
    NF_ASSIGN_OR_RETURN(JobState * js, FindJob(req.job_id()));
    NF_RETURN_IF_ERROR(CheckVisible(*js, caller));
    const v1::JobState was = js->job.state();
    if (req.resume() && was != v1::JOB_CANCELLED && was != v1::JOB_FAILED) {
      return absl::FailedPreconditionError(
          absl::StrCat("resume: job ", req.job_id(), " is ", v1::JobState_Name(was),
                       "; only a cancelled or failed job is resumed (add_trials extends others)"));
    }
    const int64_t current = js->job.spec().budget().max_trials();
    int64_t target = req.max_trials() > 0 ? req.max_trials() : current + req.add_trials();
    if (req.resume()) target += js->job.counts().cancelled() + js->job.counts().failed();
    if (req.max_trials() > 0 && req.max_trials() <= current) {
      return FieldError("max_trials",
                        absl::StrCat(req.max_trials(), " is not above the job's budget of ",
                                     current, " trials (use add_trials to add)"));
    }
    if (target > kMaxTrials) {
      return FieldError(
          req.max_trials() > 0 ? "max_trials" : "add_trials",
          absl::StrCat("the budget would be ", target, " trials; at most ", kMaxTrials));
    }
    NF_RETURN_IF_ERROR(writer_->Admit());
    js->job.mutable_spec()->mutable_budget()->set_max_trials(static_cast<int32_t>(target));
    if (JobTerminal(was)) {
      js->job.set_state(v1::JOB_RUNNING);
      js->job.clear_end_time();
      js->job.clear_error();
    }
    js->exhausted = false;  // the sampler looks again (it finds out anew if the space is spent)
    Touch(js->job);
    Stage(batch, js->job);
    AddEvent(events, *js, nullptr, "job_extended");
    MaybeFinish(*js, events);  // e.g. resume of a job whose space has nothing left to propose
    UpdateGauges();
    out = js->job;
    Log(LogLevel::kInfo, "job_extended",
        {{"job", js->job.id()},
         {"max_trials", target},
         {"was", v1::JobState_Name(was)},
         {"resume", req.resume()}});
    EnqueueLocked(std::move(batch));
  }
  Publish(std::move(events));
  return out;
}

absl::StatusOr<v1::Trial> JobManager::EnqueueCandidate(const v1::EnqueueCandidateRequest& req,
                                                       const Principal& caller) {
  if (!req.has_architecture()) return FieldError("architecture", "is required");
  NF_RETURN_IF_ERROR(ValidateArchitecture(req.architecture(), "architecture"));
  JobState* js = nullptr;
  auto usable = [&]() -> absl::Status {
    if (js->job.state() != v1::JOB_RUNNING) {
      return absl::FailedPreconditionError(
          absl::StrCat("job_id: job ", req.job_id(), " is ", v1::JobState_Name(js->job.state()),
                       "; candidates are enqueued to running jobs (ExtendJob runs it again)"));
    }
    if (Created(*js) >= js->job.spec().budget().max_trials()) {
      return absl::FailedPreconditionError(
          absl::StrCat("job_id: job ", req.job_id(), " has created all its ",
                       js->job.spec().budget().max_trials(),
                       " trials; extend its budget first (nasforge extend)"));
    }
    return absl::OkStatus();
  };
  {
    absl::MutexLock l(&mu_);
    NF_ASSIGN_OR_RETURN(js, FindJob(req.job_id()));
    NF_RETURN_IF_ERROR(CheckVisible(*js, caller));
    NF_RETURN_IF_ERROR(usable());
    if (!EncodeArchitecture(js->job.spec().search_space(), req.architecture()).has_value()) {
      return FieldError("architecture",
                        "is not in the job's search space (its kind, or a choice "
                        "the space does not offer)");
    }
    NF_RETURN_IF_ERROR(writer_->Admit());
    ++js->asking;  // holds the job (no finish, no delete) while the driver is asked
  }
  WriteBatch batch;
  Events events;
  v1::Trial out;
  absl::Status status;
  {
    absl::MutexLock d(js->driver->lock());  // the driver's lock before mu_ (lock order)
    absl::StatusOr<StrategyDriver::Step> step = js->driver->Admit(req.architecture());
    absl::MutexLock l(&mu_);
    --js->asking;
    status = step.ok() ? usable() : step.status();
    if (status.ok()) {
      v1::Trial* t = ApplyStep(*js, *std::move(step));
      PlanMeasurements(*js, *t, batch, events);
      Stage(batch, *t);
      Stage(batch, js->job);
      AddEvent(events, *js, t, "trial_enqueued");
      Log(LogLevel::kInfo, "trial_enqueued",
          {{"job", js->job.id()},
           {"trial", t->id()},
           {"hash", t->arch_hash()},
           {"by", caller.name}});
      out = *t;
    }
    MaybeFinish(*js, events);
    UpdateGauges();
    EnqueueLocked(std::move(batch));
  }
  Publish(std::move(events));
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<v1::DeleteJobResponse> JobManager::DeleteJob(absl::string_view job_id,
                                                            const Principal& caller) {
  absl::MutexLock l(&mu_);
  NF_ASSIGN_OR_RETURN(JobState * js, FindJob(job_id));
  NF_RETURN_IF_ERROR(CheckVisible(*js, caller));
  if (!JobTerminal(js->job.state())) {
    return absl::FailedPreconditionError(
        absl::StrCat("job_id: job ", job_id, " is ", v1::JobState_Name(js->job.state()),
                     "; cancel it first (nasforge cancel ", job_id, ")"));
  }
  if (js->asking > 0) {  // a strategy step holds the job (it ends at once for an ended job)
    return absl::UnavailableError(absl::StrCat("job_id: job ", job_id, " is busy; retry"));
  }
  NF_RETURN_IF_ERROR(CheckNotWarmStartSource(js->job.id()));
  NF_RETURN_IF_ERROR(writer_->Admit());
  const std::string id = js->job.id();
  const int64_t trials = static_cast<int64_t>(js->trials.size());
  // Nothing may point at the job once it is gone: measurement waiters, leases (a cancelled job's
  // running trials keep theirs until they expire), the unplaceable clock, the idempotency index.
  measurements_.ForgetJob(id);
  for (int64_t t = 0; t < trials; ++t) leases_.Release({id, t});
  std::erase_if(unfit_since_, [&id](const auto& kv) { return kv.first.first == id; });
  if (!js->job.idempotency_key().empty()) {
    idempotency_.erase(absl::StrCat(js->job.owner(), "/", js->job.idempotency_key()));
  }
  std::erase(job_order_, id);
  jobs_.erase(id);
  WriteBatch batch;
  batch.deleted_jobs.push_back(id);
  Log(LogLevel::kInfo, "job_deleted", {{"job", id}, {"trials", trials}, {"by", caller.name}});
  UpdateGauges();
  EnqueueLocked(std::move(batch));
  v1::DeleteJobResponse resp;
  resp.set_trials_deleted(trials);
  return resp;
}

}  // namespace nasforge
