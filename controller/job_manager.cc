// JobManager: construction, recovery from the store, and the users' calls (submit, query,
// cancel, watch). A job's later life (extend, resume, enqueue, delete) is in
// job_manager_lifecycle.cc, the worker protocol in job_manager_workers.cc, bookkeeping in
// job_manager_internal.cc.
#include "controller/job_manager.h"

#include <cmath>
#include <random>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "controller/job_manager_util.h"
#include "core/cost.h"
#include "core/early_stopping.h"
#include "core/hardware_targets.h"
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

namespace {

std::string NewJobId() {
  std::random_device rd;
  uint64_t r = (uint64_t{rd()} << 32) ^ rd();
  return absl::StrFormat("job-%012x", r & 0xffffffffffffULL);
}

}  // namespace

JobManager::JobManager(Store* store, StoreWriter* writer, const Clock* clock,
                       ControllerMetrics* metrics, JobManagerOptions options)
    : store_(store),
      writer_(writer),
      clock_(clock),
      metrics_(metrics),
      options_(options),
      workers_(clock, metrics, options.heartbeat_interval),
      measurements_(clock, metrics) {}

absl::Status JobManager::Recover() {
  NF_ASSIGN_OR_RETURN(auto jobs, store_->LoadJobs());
  NF_ASSIGN_OR_RETURN(auto workers, store_->LoadWorkers());
  NF_ASSIGN_OR_RETURN(auto latencies, store_->LoadLatencies());
  measurements_.LoadCache(std::move(latencies));
  absl::MutexLock l(&mu_);
  workers_.Load(std::move(workers));
  int resumed = 0;
  for (auto& j : jobs) {
    auto js = std::make_unique<JobState>();
    NF_ASSIGN_OR_RETURN(std::vector<v1::Trial> loaded, store_->LoadTrials(j.id()));
    js->trials.assign(std::make_move_iterator(loaded.begin()),
                      std::make_move_iterator(loaded.end()));
    loaded = {};
    for (size_t i = 0; i < js->trials.size(); ++i) {
      if (js->trials[i].id() != static_cast<int64_t>(i)) {
        return absl::DataLossError(absl::StrCat("job ", j.id(), ": trial ids are not dense at ", i,
                                                "; the store was edited by hand?"));
      }
    }
    js->job = std::move(j);
    Recount(*js);  // the counts and queued index from the trials themselves
    for (const v1::Trial& t : js->trials) IndexFinished(*js, t);
    // Finished trials in the order they finished (their stored finish sequence), as the
    // strategy first saw them. Rows from before finish_seq existed (schema 1) go first, in
    // update-time order, and are numbered now.
    std::vector<v1::Trial*> finished;
    for (auto& t : js->trials) {
      if (TrialTerminal(t.state()) && !t.has_variant()) finished.push_back(&t);
    }
    std::stable_sort(finished.begin(), finished.end(), [](const v1::Trial* a, const v1::Trial* b) {
      if ((a->finish_seq() == 0) != (b->finish_seq() == 0)) return a->finish_seq() == 0;
      if (a->finish_seq() == 0) return FromProto(a->update_time()) < FromProto(b->update_time());
      return a->finish_seq() < b->finish_seq();
    });
    uint64_t seq = 0;
    for (v1::Trial* t : finished) {
      if (t->finish_seq() == 0) t->set_finish_seq(++seq);
      seq = std::max(seq, t->finish_seq());
    }
    js->job.set_finish_seq(std::max(js->job.finish_seq(), seq));
    // Heartbeats extend leases in memory only: give running trials a fresh lease so live workers
    // are not fenced off for the controller's own downtime. Dead ones expire as usual.
    for (auto& t : js->trials) {
      if (t.state() != v1::TRIAL_RUNNING) continue;
      absl::Duration ttl = absl::Seconds(js->job.spec().lease_seconds());
      leases_.Grant({js->job.id(), t.id()}, t.lease_epoch(), t.worker_id(), clock_->Steady(), ttl);
      *t.mutable_lease_deadline() = ToProto(clock_->Now() + ttl);
    }
    if (!js->job.idempotency_key().empty()) {
      // Jobs from before owners were recorded belong to "local" (authentication off).
      if (js->job.owner().empty()) js->job.set_owner(Principal::Local().name);
      idempotency_[absl::StrCat(js->job.owner(), "/", js->job.idempotency_key())] = js->job.id();
    }
    if (js->job.owner().empty()) js->job.set_owner(Principal::Local().name);
    if (!JobTerminal(js->job.state())) ++resumed;
    job_order_.push_back(js->job.id());
    std::string id = js->job.id();
    jobs_[id] = std::move(js);
  }
  // Each job's strategy, rebuilt once every job is loaded (a warm-start source is read from
  // memory): the sources' prior observations first, then the job's finished trials in finish
  // order, as it first saw them.
  for (const std::string& id : job_order_) {
    JobState& js = *jobs_.at(id);
    NF_ASSIGN_OR_RETURN(auto strategy, NewStrategy(js.job.spec(), js.job.next_sample()));
    std::set<std::string> seen;
    for (const auto& [src, same] : WarmStartTrials(js.job.spec())) {
      seen.insert(src->arch_hash());
      if (!same) strategy->Tell(*src);  // reused results are the job's own trials
    }
    std::vector<const v1::Trial*> finished;
    for (const v1::Trial& t : js.trials) {
      seen.insert(t.arch_hash());
      if (TrialTerminal(t.state())) finished.push_back(&t);
    }
    std::sort(finished.begin(), finished.end(), [](const v1::Trial* a, const v1::Trial* b) {
      return a->finish_seq() < b->finish_seq();
    });
    for (const v1::Trial* t : finished) strategy->Tell(*t);
    js.driver = std::make_unique<StrategyDriver>(id, js.job.spec(), std::move(strategy),
                                                 std::move(seen), metrics_);
  }
  // Queued trials still missing a target's latency: measured again (leases were in memory).
  WriteBatch batch;
  Events events;
  for (const std::string& id : job_order_) {
    JobState& js = *jobs_.at(id);
    if (js.job.state() != v1::JOB_RUNNING || js.job.spec().hardware_targets().empty()) continue;
    for (auto& t : js.trials) {
      if (AwaitsMeasurement(js, t)) PlanMeasurements(js, t, batch, events);
    }
    MaybeFinish(js, events);
  }
  EnqueueLocked(std::move(batch));
  UpdateGauges();
  Log(LogLevel::kInfo, "recovered",
      {{"jobs", jobs_.size()},
       {"latency_cache", measurements_.CacheSize()},
       {"measurements_waiting", measurements_.Waiting()},
       {"resumed", resumed},
       {"workers", workers_.Size()},
       {"store", store_->Backend()}});
  return absl::OkStatus();
}

// ------------------------------------------------------------------------------------------
// Users
// ------------------------------------------------------------------------------------------

absl::StatusOr<v1::Job> JobManager::SubmitJob(const v1::SubmitJobRequest& req,
                                              const Principal& caller) {
  v1::JobSpec spec;
  if (!req.spec_yaml().empty()) {
    if (req.has_spec()) return FieldError("spec", "give either spec or spec_yaml, not both");
    NF_ASSIGN_OR_RETURN(spec, ParseJobSpecYaml(req.spec_yaml()));
  } else {
    if (!req.has_spec()) return FieldError("spec", "is required (or spec_yaml)");
    spec = req.spec();
    ApplyJobSpecDefaults(&spec);
    if (absl::Status st = ValidateJobSpec(spec); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("spec.", st.message()));
    }
  }
  for (const std::string& w : req.warm_start_jobs()) spec.mutable_warm_start()->add_jobs(w);
  if (req.warm_start_jobs_size() > 0) {
    if (absl::Status st = ValidateJobSpec(spec); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("spec.", st.message()));
    }
  }
  if (req.idempotency_key().size() > 200) {
    return FieldError("idempotency_key", "longer than 200 characters");
  }
  NF_ASSIGN_OR_RETURN(std::unique_ptr<Strategy> strategy, NewStrategy(spec, 0));
  WriteBatch batch;
  Events events;
  v1::Job out;
  {
    absl::MutexLock l(&mu_);
    // Keys are per owner: another user's key names nothing of yours.
    const std::string key =
        req.idempotency_key().empty() ? "" : absl::StrCat(caller.name, "/", req.idempotency_key());
    if (!key.empty()) {
      auto it = idempotency_.find(key);
      if (it != idempotency_.end()) return jobs_.at(it->second)->job;
    }
    NF_RETURN_IF_ERROR(writer_->Admit());
    NF_RETURN_IF_ERROR(ResolveWarmStart(spec, caller));
    auto js = std::make_unique<JobState>();
    std::string id;
    do {
      id = NewJobId();
    } while (jobs_.count(id));
    js->job.set_id(id);
    *js->job.mutable_spec() = spec;
    js->job.set_state(v1::JOB_RUNNING);
    js->job.set_idempotency_key(req.idempotency_key());
    js->job.set_owner(caller.name);
    *js->job.mutable_create_time() = ToProto(clock_->Now());
    std::set<std::string> seen;
    ApplyWarmStart(*js, *strategy, seen, batch);
    js->driver =
        std::make_unique<StrategyDriver>(id, spec, std::move(strategy), std::move(seen), metrics_);
    Touch(js->job);
    Stage(batch, js->job);
    if (!key.empty()) idempotency_[key] = id;
    job_order_.push_back(id);
    out = js->job;
    jobs_[id] = std::move(js);
    UpdateGauges();
    Log(LogLevel::kInfo, "job_submitted",
        {{"job", id},
         {"name", spec.name()},
         {"strategy", spec.strategy().name()},
         {"max_trials", spec.budget().max_trials()},
         {"space_size", SpaceSize(spec.search_space())}});
    EnqueueLocked(std::move(batch));
  }
  Publish(std::move(events));
  return out;
}

absl::StatusOr<v1::Job> JobManager::CancelJob(absl::string_view job_id, const Principal& caller) {
  WriteBatch batch;
  Events events;
  v1::Job out;
  {
    absl::MutexLock l(&mu_);
    NF_ASSIGN_OR_RETURN(JobState * js, FindJob(job_id));
    NF_RETURN_IF_ERROR(CheckVisible(*js, caller));
    if (JobTerminal(js->job.state())) return js->job;  // idempotent
    NF_RETURN_IF_ERROR(writer_->Admit());
    for (auto& t : js->trials) {
      if (!TrialTerminal(t.state())) {
        SetTrialState(*js, t, v1::TRIAL_CANCELLED);
        *t.mutable_update_time() = ToProto(clock_->Now());
        Finished(*js, t);
        Stage(batch, t);
      }
    }
    js->job.set_state(v1::JOB_CANCELLED);
    *js->job.mutable_end_time() = ToProto(clock_->Now());
    Touch(js->job);
    Stage(batch, js->job);
    AddEvent(events, *js, nullptr, "job_finished");
    UpdateGauges();
    out = js->job;
    Log(LogLevel::kInfo, "job_cancelled", {{"job", js->job.id()}});
    EnqueueLocked(std::move(batch));
  }
  Publish(std::move(events));
  return out;
}

}  // namespace nasforge
