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

// The job's target a query's hardware_profile names: a target's name, or the profile of exactly
// one target; "" when it names none (then it filters by the training profile).
absl::StatusOr<std::string> QueryTarget(const v1::JobSpec& spec, const std::string& profile) {
  if (profile.empty()) return std::string();
  std::vector<std::string> by_profile;
  for (const auto& t : spec.hardware_targets()) {
    if (t.name() == profile) return t.name();
    if (t.profile() == profile) by_profile.push_back(t.name());
  }
  if (by_profile.size() > 1) {
    return FieldError("hardware_profile",
                      absl::StrCat("profile '", profile, "' has several targets in this job (",
                                   absl::StrJoin(by_profile, ", "), "); name one of them"));
  }
  return by_profile.empty() ? std::string() : by_profile[0];
}

std::string NewJobId() {
  std::random_device rd;
  uint64_t r = (uint64_t{rd()} << 32) ^ rd();
  return absl::StrFormat("job-%012x", r & 0xffffffffffffULL);
}

absl::StatusOr<size_t> ParsePageToken(absl::string_view token, absl::string_view field) {
  if (token.empty()) return 0;
  uint64_t v;
  if (!absl::SimpleAtoi(token, &v)) return FieldError(field, "is not a token this server issued");
  return static_cast<size_t>(v);
}

}  // namespace

JobManager::JobManager(Store* store, StoreWriter* writer, const Clock* clock,
                       ControllerMetrics* metrics, JobManagerOptions options)
    : store_(store),
      writer_(writer),
      clock_(clock),
      metrics_(metrics),
      options_(options),
      measurements_(clock, metrics) {}

absl::Status JobManager::Recover() {
  NF_ASSIGN_OR_RETURN(auto jobs, store_->LoadJobs());
  NF_ASSIGN_OR_RETURN(auto workers, store_->LoadWorkers());
  NF_ASSIGN_OR_RETURN(auto latencies, store_->LoadLatencies());
  measurements_.LoadCache(std::move(latencies));
  absl::MutexLock l(&mu_);
  for (auto& w : workers) {
    workers_[w.id()] = w;
    absl::MutexLock s(&seen_mu_);
    worker_seen_[w.id()] = absl::InfinitePast();  // known, not seen since the restart
    worker_owner_[w.id()] = w.owner();
  }
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
      if (TrialTerminal(t.state())) finished.push_back(&t);
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
       {"workers", workers_.size()},
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

absl::StatusOr<v1::Job> JobManager::GetJob(absl::string_view job_id,
                                           const Principal& caller) const {
  absl::ReaderMutexLock l(&mu_);
  NF_ASSIGN_OR_RETURN(const JobState* js, FindVisible(job_id, caller));
  return js->job;
}

absl::StatusOr<v1::ListJobsResponse> JobManager::ListJobs(const v1::ListJobsRequest& req,
                                                          const Principal& caller) const {
  if (req.page_size() < 0) return FieldError("page_size", "must be >= 0");
  size_t size = req.page_size() == 0 ? 50 : std::min(req.page_size(), 500);
  NF_ASSIGN_OR_RETURN(size_t start, ParsePageToken(req.page_token(), "page_token"));
  for (int i = 0; i < req.states_size(); ++i) {
    if (!v1::JobState_IsValid(req.states(i)) || req.states(i) == v1::JOB_STATE_UNSPECIFIED) {
      return FieldError(absl::StrCat("states[", i, "]"),
                        absl::StrCat(req.states(i), " is not a job state"));
    }
  }
  const std::set<int> states(req.states().begin(), req.states().end());
  const std::string name = absl::AsciiStrToLower(req.name());
  auto listed = [&](const v1::Job& job) {
    if (!states.empty() && !states.count(job.state())) return false;
    if (!req.owner().empty() && job.owner() != req.owner()) return false;
    if (!name.empty() && !absl::StrContains(absl::AsciiStrToLower(job.spec().name()), name)) {
      return false;
    }
    for (const auto& [k, v] : req.labels()) {
      auto it = job.spec().labels().find(k);
      if (it == job.spec().labels().end() || (!v.empty() && it->second != v)) return false;
    }
    return true;
  };
  absl::ReaderMutexLock l(&mu_);
  v1::ListJobsResponse resp;
  // Newest first; a non-admin sees only their own jobs. The token is where the next page starts.
  size_t i = start;
  for (; i < job_order_.size() && resp.jobs_size() < static_cast<int>(size); ++i) {
    const v1::Job& job = jobs_.at(job_order_[job_order_.size() - 1 - i])->job;
    if ((caller.admin() || job.owner() == caller.name) && listed(job)) *resp.add_jobs() = job;
  }
  if (i < job_order_.size()) resp.set_next_page_token(absl::StrCat(i));
  return resp;
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

absl::StatusOr<v1::Trial> JobManager::GetCandidate(absl::string_view job_id, int64_t trial_id,
                                                   const Principal& caller) const {
  absl::ReaderMutexLock l(&mu_);
  NF_ASSIGN_OR_RETURN(const JobState* js, FindVisible(job_id, caller));
  if (trial_id < 0 || trial_id >= static_cast<int64_t>(js->trials.size())) {
    return absl::NotFoundError(absl::StrCat("trial_id: job ", job_id, " has no trial ", trial_id,
                                            " (it has ", js->trials.size(), ")"));
  }
  return js->trials[trial_id];
}

absl::StatusOr<v1::ListCandidatesResponse> JobManager::ListCandidates(
    const v1::ListCandidatesRequest& req, const Principal& caller) const {
  if (req.page_size() < 0) return FieldError("page_size", "must be >= 0");
  size_t size = req.page_size() == 0 ? 100 : std::min(req.page_size(), 1000);
  NF_ASSIGN_OR_RETURN(size_t start, ParsePageToken(req.page_token(), "page_token"));
  std::set<int> states(req.states().begin(), req.states().end());
  absl::ReaderMutexLock l(&mu_);
  NF_ASSIGN_OR_RETURN(const JobState* js, FindVisible(req.job_id(), caller));
  v1::ListCandidatesResponse resp;
  size_t i = start;
  for (; i < js->trials.size() && resp.trials_size() < static_cast<int>(size); ++i) {
    if (!states.empty() && !states.count(js->trials[i].state())) continue;
    *resp.add_trials() = js->trials[i];
  }
  if (i < js->trials.size()) resp.set_next_page_token(absl::StrCat(i));
  return resp;
}

absl::StatusOr<v1::QueryParetoResponse> JobManager::QueryPareto(const v1::QueryParetoRequest& req,
                                                                const Principal& caller) const {
  NF_RETURN_IF_ERROR(ValidateObjectives(req.objectives(), "objectives"));
  NF_RETURN_IF_ERROR(ValidateConstraints(req.constraints(), "constraints"));
  if (req.limit() < 0) return FieldError("limit", "must be >= 0");
  absl::ReaderMutexLock l(&mu_);
  NF_ASSIGN_OR_RETURN(const JobState* js, FindVisible(req.job_id(), caller));
  std::vector<v1::Objective> objectives(req.objectives().begin(), req.objectives().end());
  if (objectives.empty()) {
    objectives.assign(js->job.spec().objectives().begin(), js->job.spec().objectives().end());
  }
  std::vector<v1::Constraint> constraints(req.constraints().begin(), req.constraints().end());
  // A hardware profile that names one of the job's targets (by name, or its only target of
  // that profile) ranks by the latency measured there: latency_ms means latency_ms@TARGET, and
  // candidates are those measured there. Any other profile keeps its first meaning: candidates
  // trained on workers of that profile.
  NF_ASSIGN_OR_RETURN(const std::string target,
                      QueryTarget(js->job.spec(), req.hardware_profile()));
  for (auto& o : objectives) o.set_metric(ResolveForTarget(o.metric(), target));
  for (auto& c : constraints) c.set_metric(ResolveForTarget(c.metric(), target));
  for (size_t i = 0; i < objectives.size(); ++i) {
    std::string base, named;
    if (SplitTargetMetric(objectives[i].metric(), &base, &named)) {
      NF_RETURN_IF_ERROR(
          CheckTargetExists(js->job.spec(), named, absl::StrCat("objectives[", i, "].metric")));
    }
  }
  for (size_t i = 0; i < constraints.size(); ++i) {
    std::string base, named;
    if (SplitTargetMetric(constraints[i].metric(), &base, &named)) {
      NF_RETURN_IF_ERROR(
          CheckTargetExists(js->job.spec(), named, absl::StrCat("constraints[", i, "].metric")));
    }
  }
  if (!target.empty()) {  // measured there: a bound that every measured candidate meets
    v1::Constraint measured;
    measured.set_metric(TargetMetric("latency_ms", target));
    measured.set_lower(0);
    constraints.push_back(measured);
  }
  std::vector<int64_t> ids;  // the candidates, by trial id
  // The job's own front, as it is kept: only its members can be on the answer's front (same
  // selection below, same order), so the scan of every trial is skipped.
  const bool kept = req.objectives().empty() && constraints.empty() &&
                    req.hardware_profile().empty() && !req.include_stopped();
  const MetricColumns& columns = js->columns;
  if (kept) {
    if (js->front != nullptr) ids = js->front->Ids();
  } else {
    ids.reserve(columns.size());
    for (int64_t id = 0; id < static_cast<int64_t>(columns.size()); ++id) {
      const v1::TrialState s = columns.State(id);
      if (s != v1::TRIAL_SUCCEEDED && !(s == v1::TRIAL_STOPPED && req.include_stopped())) continue;
      if (target.empty() && !req.hardware_profile().empty() &&
          js->trials[id].hardware_profile() != req.hardware_profile()) {
        continue;
      }
      ids.push_back(id);
    }
  }
  // Each metric the query names, resolved to its column once (nullptr: no trial has it).
  std::vector<std::pair<const std::string*, const std::vector<double>*>> named;
  for (const auto& o : objectives) named.emplace_back(&o.metric(), columns.Column(o.metric()));
  for (const auto& c : constraints) named.emplace_back(&c.metric(), columns.Column(c.metric()));
  size_t considered = 0;
  std::vector<size_t> front = SelectPareto(
      ids.size(),
      [&](size_t i, const std::string& name, double* value) {
        for (const auto& [n, column] : named) {
          if (n != &name && *n != name) continue;
          if (column == nullptr || ids[i] >= static_cast<int64_t>(column->size())) return false;
          *value = (*column)[ids[i]];
          return !std::isnan(*value);
        }
        return false;
      },
      objectives, constraints, &considered);
  v1::QueryParetoResponse resp;
  resp.set_considered(static_cast<int>(kept ? js->front_considered : considered));
  for (size_t k : front) {
    if (req.limit() > 0 && resp.trials_size() >= req.limit()) break;
    *resp.add_trials() = js->trials[ids[k]];
  }
  return resp;
}

absl::StatusOr<uint64_t> JobManager::Subscribe(absl::string_view job_id,
                                               std::function<void(const v1::JobEvent&)> fn,
                                               const Principal& caller) {
  v1::JobEvent snapshot;
  uint64_t handle;
  {
    absl::ReaderMutexLock l(&mu_);
    NF_ASSIGN_OR_RETURN(const JobState* js, FindVisible(job_id, caller));
    snapshot = Event(*js, nullptr, "snapshot");
    // Registered under mu_ so no event is lost between the snapshot and the subscription.
    handle = watchers_.Add(std::string(job_id), fn);
  }
  fn(snapshot);
  return handle;
}

void JobManager::Unsubscribe(uint64_t handle) { watchers_.Remove(handle); }

}  // namespace nasforge
