// JobManager: bookkeeping shared by the users' and the workers' calls (lookups, fencing checks,
// applying a strategy step, granting, counting, finishing, staging writes, events).
#include <algorithm>
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
// ------------------------------------------------------------------------------------------
// Internals
// ------------------------------------------------------------------------------------------

absl::Status JobManager::CheckVisible(const JobState& js, const Principal& caller) const {
  if (caller.admin() || js.job.owner() == caller.name) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("job_id: job ", js.job.id(), " belongs to '",
                                                  js.job.owner(),
                                                  "'; only its owner or an admin may use it"));
}

absl::StatusOr<const JobManager::JobState*> JobManager::FindVisible(absl::string_view id,
                                                                    const Principal& caller) const {
  NF_ASSIGN_OR_RETURN(const JobState* js, FindJobConst(id));
  NF_RETURN_IF_ERROR(CheckVisible(*js, caller));
  return js;
}

absl::Status JobManager::CheckWorker(const std::string& worker_id, const Principal& caller) {
  return workers_.CheckOwner(worker_id, caller);
}

absl::StatusOr<JobManager::JobState*> JobManager::FindJob(absl::string_view id) {
  auto it = jobs_.find(std::string(id));
  if (it == jobs_.end()) {
    if (id.empty()) return FieldError("job_id", "is required");
    return absl::NotFoundError(absl::StrCat("job_id: no job '", id, "'"));
  }
  return it->second.get();
}

absl::StatusOr<const JobManager::JobState*> JobManager::FindJobConst(absl::string_view id) const {
  auto it = jobs_.find(std::string(id));
  if (it == jobs_.end()) {
    if (id.empty()) return FieldError("job_id", "is required");
    return absl::NotFoundError(absl::StrCat("job_id: no job '", id, "'"));
  }
  return it->second.get();
}

absl::StatusOr<std::pair<JobManager::JobState*, v1::Trial*>> JobManager::CheckLease(
    const v1::Lease& lease, const std::string& worker_id, bool allow_cancelled) {
  NF_ASSIGN_OR_RETURN(JobState * js, FindJob(lease.job_id()));
  if (lease.trial_id() < 0 || lease.trial_id() >= static_cast<int64_t>(js->trials.size())) {
    return absl::NotFoundError(
        absl::StrCat("lease.trial_id: job ", lease.job_id(), " has no trial ", lease.trial_id()));
  }
  v1::Trial* t = &js->trials[lease.trial_id()];
  bool cancelled_ok = allow_cancelled && t->state() == v1::TRIAL_CANCELLED;
  if (t->lease_epoch() != lease.epoch() || (t->state() != v1::TRIAL_RUNNING && !cancelled_ok)) {
    if (metrics_) metrics_->stale_reports_total.Increment();
    return absl::FailedPreconditionError(absl::StrCat(
        "lease.epoch: stale lease for trial ", lease.job_id(), "/", lease.trial_id(), " (yours ",
        lease.epoch(), ", current ", t->lease_epoch(), ", state ", v1::TrialState_Name(t->state()),
        "); the lease expired or the job ended. Drop this trial and lease another."));
  }
  if (t->worker_id() != worker_id) {
    if (metrics_) metrics_->stale_reports_total.Increment();
    return absl::FailedPreconditionError(
        absl::StrCat("worker_id: lease ", lease.job_id(), "/", lease.trial_id(), " epoch ",
                     lease.epoch(), " was granted to another worker; drop this trial"));
  }
  return std::make_pair(js, t);
}

v1::Trial* JobManager::ApplyStep(JobState& js, StrategyDriver::Step step) {
  js.job.set_next_sample(step.position);
  js.job.mutable_counts()->set_rejected_by_cost(js.job.counts().rejected_by_cost() +
                                                step.rejected_by_cost);
  if (js.job.state() != v1::JOB_RUNNING) return nullptr;  // cancelled during the step
  if (step.kind == Proposal::Kind::kCandidate) {
    v1::Trial t;
    t.set_job_id(js.job.id());
    t.set_id(static_cast<int64_t>(js.trials.size()));
    *t.mutable_architecture() = std::move(step.arch);
    t.set_arch_hash(step.hash);
    (*t.mutable_metrics())["macs"] = static_cast<double>(step.cost.macs);
    (*t.mutable_metrics())["params"] = static_cast<double>(step.cost.params);
    (*t.mutable_metrics())["train_memory_bytes"] = static_cast<double>(step.train_memory_bytes);
    *t.mutable_create_time() = ToProto(clock_->Now());
    *t.mutable_update_time() = t.create_time();
    js.trials.push_back(std::move(t));
    SetTrialState(js, js.trials.back(), v1::TRIAL_QUEUED);
    Touch(js.job);
    return &js.trials.back();
  }
  if (step.kind == Proposal::Kind::kWait) {
    if (js.job.counts().queued() + js.job.counts().running() > 0) {
      return nullptr;  // ask again when a result arrives
    }
    step.reason = "the strategy waits for results but none are in flight: " + step.reason;
  }
  js.exhausted = true;
  js.job.set_error(step.reason);
  Log(LogLevel::kInfo, "strategy_done",
      {{"job", js.job.id()},
       {"trials", js.trials.size()},
       {"rejected_by_cost", js.job.counts().rejected_by_cost()},
       {"reason", step.reason}});
  return nullptr;
}

void JobManager::GrantLease(JobState& js, v1::Trial& t, const std::string& worker_id,
                            v1::LeaseTrialResponse* resp) {
  absl::Time now = clock_->Now();
  absl::Duration ttl = absl::Seconds(js.job.spec().lease_seconds());
  SetTrialState(js, t, v1::TRIAL_RUNNING);
  t.set_lease_epoch(t.lease_epoch() + 1);
  t.set_attempts(t.attempts() + 1);
  t.set_worker_id(worker_id);
  t.clear_curve();
  *t.mutable_lease_deadline() = ToProto(now + ttl);
  leases_.Grant({js.job.id(), t.id()}, t.lease_epoch(), worker_id, clock_->Steady(), ttl);
  *t.mutable_update_time() = ToProto(now);
  Touch(js.job);
  if (metrics_) metrics_->leases_granted_total.Increment();
  resp->set_has_trial(true);
  auto* lease = resp->mutable_lease();
  lease->set_job_id(js.job.id());
  lease->set_trial_id(t.id());
  lease->set_epoch(t.lease_epoch());
  *lease->mutable_deadline() = t.lease_deadline();
  *resp->mutable_architecture() = t.architecture();
  resp->set_arch_hash(t.arch_hash());
  *resp->mutable_training() = js.job.spec().training();
  resp->set_epochs(js.job.spec().budget().epochs());
  resp->set_seed(MixSeed(js.job.spec().budget().seed() ^ 0x5eed, t.id()));
  resp->set_split_seed(js.job.spec().budget().seed());
  if (t.has_variant()) *resp->mutable_variant() = t.variant();
  resp->set_heartbeat_seconds(static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>(absl::ToInt64Seconds(options_.heartbeat_interval),
                                             js.job.spec().lease_seconds() / 3))));
  Log(LogLevel::kInfo, "trial_leased",
      {{"job", js.job.id()},
       {"trial", t.id()},
       {"worker", worker_id},
       {"epoch", t.lease_epoch()},
       {"attempt", t.attempts()},
       {"hash", t.arch_hash()},
       {"macs", static_cast<int64_t>(t.metrics().at("macs"))}});
}

void JobManager::Recount(JobState& js) {
  *js.job.mutable_counts() = CountTrials(js.trials, js.job.counts());
  js.queued.clear();
  js.queued_variants = 0;
  int32_t rejected = 0, warm = 0, variants = 0;
  for (const v1::Trial& t : js.trials) {
    if (t.state() == v1::TRIAL_QUEUED && !AwaitsMeasurement(js, t)) {
      js.queued.insert(js.queued.end(), t.id());
    }
    rejected += t.rejected();
    warm += !t.warm_start_from().empty();
    variants += t.has_variant();
    js.queued_variants += t.has_variant() && t.state() == v1::TRIAL_QUEUED;
  }
  js.job.mutable_counts()->set_variants(variants);
  js.job.mutable_counts()->set_rejected_by_latency(rejected);
  js.job.mutable_counts()->set_warm_started(warm);
}

void JobManager::SetTrialState(JobState& js, v1::Trial& t, v1::TrialState to) {
  if (t.state() == to) return;
  // A new trial has no state yet (TRIAL_STATE_UNSPECIFIED has no count): nothing to take off.
  AddToCount(js.job.mutable_counts(), t.state(), -1);
  if (t.state() == v1::TRIAL_QUEUED) {
    js.queued.erase(t.id());
    js.queued_variants -= t.has_variant();
  }
  AddToCount(js.job.mutable_counts(), to, +1);
  t.set_state(to);
  // A queued trial still waiting for a latency target is leased to train once it is measured.
  if (to == v1::TRIAL_QUEUED && !AwaitsMeasurement(js, t)) js.queued.insert(t.id());
  if (to == v1::TRIAL_QUEUED) js.queued_variants += t.has_variant();
}

void JobManager::MaybeFinish(JobState& js, Events& events) {
  if (js.job.state() != v1::JOB_RUNNING) return;
  if (js.asking > 0) return;  // a strategy step in progress may still create a trial
  const auto& c = js.job.counts();
  bool all_created = js.exhausted || Created(js) >= js.job.spec().budget().max_trials();
  if (!all_created || c.queued() > 0 || c.running() > 0) return;
  if (c.succeeded() + c.stopped() == 0) {
    js.job.set_state(v1::JOB_FAILED);
    std::string last;
    for (const auto& t : js.trials) {
      if (!t.error().empty()) last = t.error();
    }
    js.job.set_error(js.trials.empty() ? js.job.error()
                                       : absl::StrCat("all ", js.trials.size(),
                                                      " trials failed; last error: ", last));
  } else {
    js.job.set_state(v1::JOB_SUCCEEDED);
  }
  *js.job.mutable_end_time() = ToProto(clock_->Now());
  Touch(js.job);
  AddEvent(events, js, nullptr, "job_finished");
  Log(LogLevel::kInfo, "job_finished",
      {{"job", js.job.id()},
       {"state", v1::JobState_Name(js.job.state())},
       {"succeeded", c.succeeded()},
       {"failed", c.failed()},
       {"best", js.job.has_best_objective() ? js.job.best_objective() : -1.0}});
}

StopDecision JobManager::DecideEarlyStop(const JobState& js, const v1::Trial& t) const {
  return Decide(CollectStoppingInput(js.job.spec(), t, js.trials));
}

void JobManager::RefuseReport(const JobState& js, const v1::Trial& t, const std::string& worker_id,
                              const absl::Status& why) {
  if (metrics_) metrics_->invalid_reports_total.Increment();
  Log(LogLevel::kWarn, "report_refused",
      {{"job", js.job.id()},
       {"trial", t.id()},
       {"worker", worker_id},
       {"error", why.message()},
       {"hint", "nothing was recorded; fix the worker (or the job's accuracy_scale)"}});
}

void JobManager::Touch(v1::Job& job) { *job.mutable_update_time() = ToProto(clock_->Now()); }

void JobManager::UpdateGauges() {
  if (metrics_ == nullptr) return;
  v1::JobCounts all;
  int running_jobs = 0;
  for (const auto& [id, js] : jobs_) {
    AddCounts(js->job.counts(), &all);
    if (js->job.state() == v1::JOB_RUNNING) ++running_jobs;
  }
  for (v1::TrialState st : TrialStates()) metrics_->trials_by_state[st]->Set(CountOf(all, st));
  metrics_->leases_active.Set(CountOf(all, v1::TRIAL_RUNNING));
  metrics_->jobs_running.Set(running_jobs);
  metrics_->measurements_waiting.Set(static_cast<double>(measurements_.Waiting()));
  metrics_->workers_registered.Set(static_cast<double>(workers_.LiveCount()));
}

v1::JobEvent JobManager::Event(const JobState& js, const v1::Trial* t, const char* kind) const {
  v1::JobEvent e;
  *e.mutable_job() = js.job;
  if (t != nullptr) {
    *e.mutable_trial() = *t;
    e.mutable_trial()->clear_curve();  // keep events small; GetCandidate has the curve
    if (t->curve_size() > 0) *e.mutable_trial()->add_curve() = t->curve(t->curve_size() - 1);
  }
  e.set_kind(kind);
  return e;
}

void JobManager::Stage(WriteBatch& batch, v1::Job& job) {
  job.set_version(job.version() + 1);
  batch.jobs.push_back(job);
}
void JobManager::Stage(WriteBatch& batch, v1::Trial& t) {
  t.set_version(t.version() + 1);
  batch.trials.push_back(t);
}
void JobManager::IndexFinished(JobState& js, const v1::Trial& t) {
  js.columns.Add(t);  // SUCCEEDED and STOPPED trials only
  if (TrialTerminal(t.state()) && t.has_update_time()) {
    js.last_finish = std::max(js.last_finish, FromProto(t.update_time()));
  }
  const auto& objectives = js.job.spec().objectives();
  // Variants are on the front a query with variants asks for, never on the search's own.
  if (t.state() != v1::TRIAL_SUCCEEDED || objectives.empty() || t.has_variant()) return;
  if (js.front == nullptr) js.front = std::make_unique<ParetoArchive>(objectives.size());
  std::vector<double> point(objectives.size());
  for (int k = 0; k < objectives.size(); ++k) {
    auto it = t.metrics().find(objectives[k].metric());
    if (it == t.metrics().end() || std::isnan(it->second)) return;  // as SelectPareto skips it
    point[k] = objectives[k].direction() == v1::MAXIMIZE ? -it->second : it->second;
  }
  ++js.front_considered;
  if (t.finish_seq() < js.anchor_seq) {
    js.anchor_seq = t.finish_seq();
    js.anchor = point;
  }
  js.front->Insert(t.id(), point);
}

void JobManager::Finished(JobState& js, v1::Trial& t) {
  js.job.set_finish_seq(js.job.finish_seq() + 1);
  t.set_finish_seq(js.job.finish_seq());
  IndexFinished(js, t);
  js.last_finish = std::max(js.last_finish, clock_->Now());
  if (t.state() == v1::TRIAL_CANCELLED) {
    leases_.MarkCancelled({js.job.id(), t.id()});  // its worker hears "cancel" on a heartbeat
  } else {
    leases_.Release({js.job.id(), t.id()});
  }
}

void JobManager::EnqueueLocked(WriteBatch batch) {
  TEST_PAUSE_POINT("job_manager.before_enqueue");
  if (!batch.empty()) writer_->Enqueue(std::move(batch));
}

void JobManager::AddEvent(Events& events, const JobState& js, const v1::Trial* t,
                          const char* kind) const {
  if (watchers_.Watched(js.job.id())) events.push_back(Event(js, t, kind));
}

void JobManager::Publish(Events events) {
  if (!events.empty()) watchers_.Publish(events);
}

}  // namespace nasforge
