// JobManager's logic.
// Why this file is over 500 lines: it still holds the job registry, worker registry and watch
// fan-out together; issue 12 (the house) splits them. The lease table (lease_table.h) and strategy
// steps (strategy_driver.h) are out already; the job-events hub and the worker registry follow.
#include "controller/job_manager.h"

#include <google/protobuf/util/time_util.h>

#include <cmath>
#include <random>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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
namespace {

using google::protobuf::util::TimeUtil;

// Consecutive inadmissible samples (duplicates or over a cost bound) before a job's space counts
// as exhausted.
constexpr int kMaxSampleMisses = 2000;

google::protobuf::Timestamp ToProto(absl::Time t) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}
absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(t));
}

// Admission by memory: a worker that declared its memory gets only trials whose estimated
// training memory fits in it (workers that declare none take anything).
bool Fits(const v1::Trial& t, int64_t worker_memory) {
  if (worker_memory <= 0) return true;
  auto it = t.metrics().find("train_memory_bytes");
  return it == t.metrics().end() || it->second <= static_cast<double>(worker_memory);
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
    : store_(store), writer_(writer), clock_(clock), metrics_(metrics), options_(options) {}

absl::Status JobManager::Recover() {
  NF_ASSIGN_OR_RETURN(auto jobs, store_->LoadJobs());
  NF_ASSIGN_OR_RETURN(auto workers, store_->LoadWorkers());
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
    NF_ASSIGN_OR_RETURN(js->trials, store_->LoadTrials(j.id()));
    std::set<std::string> seen;
    for (size_t i = 0; i < js->trials.size(); ++i) {
      if (js->trials[i].id() != static_cast<int64_t>(i)) {
        return absl::DataLossError(absl::StrCat("job ", j.id(), ": trial ids are not dense at ", i,
                                                "; the store was edited by hand?"));
      }
      seen.insert(js->trials[i].arch_hash());
    }
    js->job = std::move(j);
    NF_ASSIGN_OR_RETURN(auto strategy, NewStrategy(js->job.spec(), js->job.next_sample()));
    // Tell finished trials in the order they finished (their stored finish sequence), as the
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
      strategy->Tell(*t);
    }
    js->job.set_finish_seq(std::max(js->job.finish_seq(), seq));
    js->driver = std::make_unique<StrategyDriver>(js->job.id(), js->job.spec(), std::move(strategy),
                                                  std::move(seen), metrics_);
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
  UpdateGauges();
  Log(LogLevel::kInfo, "recovered",
      {{"jobs", jobs_.size()},
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
    auto js = std::make_unique<JobState>();
    std::string id;
    do {
      id = NewJobId();
    } while (jobs_.count(id));
    js->driver = std::make_unique<StrategyDriver>(id, spec, std::move(strategy),
                                                  std::set<std::string>{}, metrics_);
    js->job.set_id(id);
    *js->job.mutable_spec() = spec;
    js->job.set_state(v1::JOB_RUNNING);
    js->job.set_idempotency_key(req.idempotency_key());
    js->job.set_owner(caller.name);
    *js->job.mutable_create_time() = ToProto(clock_->Now());
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
  absl::ReaderMutexLock l(&mu_);
  v1::ListJobsResponse resp;
  // Newest first; a non-admin sees only their own jobs. The token is where the next page starts.
  size_t i = start;
  for (; i < job_order_.size() && resp.jobs_size() < static_cast<int>(size); ++i) {
    const v1::Job& job = jobs_.at(job_order_[job_order_.size() - 1 - i])->job;
    if (caller.admin() || job.owner() == caller.name) *resp.add_jobs() = job;
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
        t.set_state(v1::TRIAL_CANCELLED);
        *t.mutable_update_time() = ToProto(clock_->Now());
        Finished(*js, t);
        Stage(batch, t);
      }
    }
    js->job.set_state(v1::JOB_CANCELLED);
    *js->job.mutable_end_time() = ToProto(clock_->Now());
    Recount(*js);
    Touch(js->job);
    Stage(batch, js->job);
    events.push_back(Event(*js, nullptr, "job_finished"));
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
  std::vector<MetricMap> metrics;
  std::vector<const v1::Trial*> trials;
  for (const auto& t : js->trials) {
    bool full = t.state() == v1::TRIAL_SUCCEEDED;
    bool partial = t.state() == v1::TRIAL_STOPPED && req.include_stopped();
    if (!full && !partial) continue;
    if (!req.hardware_profile().empty() && t.hardware_profile() != req.hardware_profile()) continue;
    metrics.emplace_back(t.metrics().begin(), t.metrics().end());
    trials.push_back(&t);
  }
  std::vector<const MetricMap*> ptrs;
  for (const auto& m : metrics) ptrs.push_back(&m);
  size_t considered = 0;
  std::vector<size_t> front = SelectPareto(ptrs, objectives, constraints, &considered);
  v1::QueryParetoResponse resp;
  resp.set_considered(static_cast<int>(considered));
  for (size_t k : front) {
    if (req.limit() > 0 && resp.trials_size() >= req.limit()) break;
    *resp.add_trials() = *trials[k];
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

// ------------------------------------------------------------------------------------------
// Workers
// ------------------------------------------------------------------------------------------

absl::StatusOr<v1::RegisterWorkerResponse> JobManager::RegisterWorker(
    const v1::RegisterWorkerRequest& req, const Principal& caller) {
  if (req.hardware().name().empty()) {
    return FieldError("hardware.name", "is required (a hardware profile name, e.g. cpu-1t)");
  }
  if (req.worker_id().size() > 128) return FieldError("worker_id", "longer than 128 characters");
  WriteBatch batch;
  Events events;
  v1::RegisterWorkerResponse resp;
  {
    absl::MutexLock l(&mu_);
    NF_RETURN_IF_ERROR(writer_->Admit());
    std::string id = req.worker_id();
    if (id.empty()) {
      std::random_device rd;
      do {
        id = absl::StrFormat("worker-%08x", rd());
      } while (workers_.count(id));
    }
    if (auto it = workers_.find(id);
        it != workers_.end() && !it->second.owner().empty() && it->second.owner() != caller.name) {
      if (metrics_) metrics_->stale_reports_total.Increment();
      return absl::PermissionDeniedError(absl::StrCat(
          "worker_id: '", id, "' is registered by another credential; pick another id"));
    }
    v1::Worker& w = workers_[id];
    bool known = w.has_register_time();
    w.set_owner(caller.name);
    w.set_id(id);
    *w.mutable_hardware() = req.hardware();
    if (!known) *w.mutable_register_time() = ToProto(clock_->Now());
    *w.mutable_last_seen() = ToProto(clock_->Now());
    {
      absl::MutexLock s(&seen_mu_);
      worker_seen_[id] = clock_->Steady();
      worker_owner_[id] = caller.name;
    }
    Stage(batch, w);
    if (req.new_process() && known) {
      // Its previous process died holding these leases (it re-registers only at start).
      std::set<JobState*> changed;
      for (const LeaseTable::Key& key : leases_.HeldBy(id)) {
        auto found = FindJob(key.first);
        if (!found.ok() || key.second < 0 ||
            key.second >= static_cast<int64_t>((*found)->trials.size())) {
          leases_.Release(key);
          continue;
        }
        v1::Trial& t = (*found)->trials[key.second];
        if (t.state() != v1::TRIAL_RUNNING || t.worker_id() != id) continue;
        if (metrics_) metrics_->leases_orphaned_total.Increment();
        LoseLease(**found, t,
                  absl::StrCat("worker ", id,
                               " restarted while training it (crashed, or killed: out of memory?)"),
                  batch, events);
        changed.insert(*found);
      }
      for (JobState* js : changed) {
        Recount(*js);
        MaybeFinish(*js, events);
        Touch(js->job);
        Stage(batch, js->job);
      }
    }
    resp.set_worker_id(id);
    resp.set_heartbeat_seconds(static_cast<int>(absl::ToInt64Seconds(options_.heartbeat_interval)));
    UpdateGauges();
    Log(LogLevel::kInfo, "worker_registered",
        {{"worker", id},
         {"profile", req.hardware().name()},
         {"threads", req.hardware().threads()},
         {"cpu", req.hardware().cpu_model()},
         {"again", known}});
    EnqueueLocked(std::move(batch));
  }
  Publish(std::move(events));
  return resp;
}

absl::StatusOr<v1::LeaseTrialResponse> JobManager::LeaseTrial(const v1::LeaseTrialRequest& req) {
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
      NF_RETURN_IF_ERROR(GrantOrPick(req, asked, &resp, &ask, batch, events));
      EnqueueLocked(std::move(batch));
    }
    Publish(std::move(events));
    if (ask == nullptr) {
      if (!resp.has_trial()) {
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
                                     const std::set<JobState*>& asked, v1::LeaseTrialResponse* resp,
                                     JobState** ask, WriteBatch& batch, Events& events) {
  if (!workers_.count(req.worker_id())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "worker_id: '", req.worker_id(), "' is not registered; call RegisterWorker first"));
  }
  TouchWorker(req.worker_id());
  // A lease that cannot be made durable is not handed out: refuse before deciding anything.
  NF_RETURN_IF_ERROR(writer_->Admit());
  const int64_t worker_memory = workers_.at(req.worker_id()).hardware().memory_bytes();
  // Fair sharing: the running jobs with the fewest running trials go first; among equals, the
  // one served longest ago. A job with a huge max_parallel_trials cannot starve the others. A
  // strategy step in progress counts as a running trial (it ends in one).
  std::vector<JobState*> order;
  for (const std::string& id : job_order_) {
    JobState& js = *jobs_.at(id);
    if (js.job.state() != v1::JOB_RUNNING) continue;
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
    for (auto& cand : js.trials) {  // re-queued trials first, if the worker has room for them
      if (cand.state() == v1::TRIAL_QUEUED && Fits(cand, worker_memory)) {
        t = &cand;
        break;
      }
    }
    if (t != nullptr) {
      GrantLease(js, *t, req.worker_id(), resp);
      js.last_grant = ++grants_;
      Stage(batch, *t);
      Stage(batch, js.job);
      events.push_back(Event(js, t, "trial_leased"));
      UpdateGauges();
      return absl::OkStatus();
    }
    // A new candidate only while the job's backlog of queued trials (ones this worker had no room
    // for) stays under max_parallel_trials: small workers polling cannot fill the queue.
    if (!js.exhausted && !asked.count(&js) &&
        static_cast<int>(js.trials.size()) + js.asking < js.job.spec().budget().max_trials() &&
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
           static_cast<int>(js.trials.size()) < js.job.spec().budget().max_trials();
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
      // The call was admitted before the step; hand the trial out only if the store still takes
      // changes and the worker has room for it (it stays queued otherwise: the step is not lost).
      auto w = workers_.find(worker_id);
      const int64_t worker_memory = w == workers_.end() ? 0 : w->second.hardware().memory_bytes();
      if (t != nullptr && writer_->Admit().ok() && Fits(*t, worker_memory)) {
        GrantLease(js, *t, worker_id, resp);
        js.last_grant = ++grants_;
        events.push_back(Event(js, t, "trial_leased"));
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
    t.set_state(v1::TRIAL_QUEUED);
    t.set_attempts(std::max(0, t.attempts() - 1));
    t.clear_lease_deadline();
    *t.mutable_update_time() = ToProto(clock_->Now());
    Recount(js);
    Touch(js.job);
    Stage(batch, t);
    Stage(batch, js.job);
    events.push_back(Event(js, &t, "trial_requeued"));
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
      events.push_back(Event(*js, t, "trial_progress"));
    }
    StopDecision d = DecideEarlyStop(*js, *t);
    resp.set_decision(d.stop ? v1::STOP : v1::CONTINUE);
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
  WriteBatch batch;
  Events events;
  {
    absl::MutexLock l(&mu_);
    TouchWorker(req.worker_id());
    // A retry of a report that was applied (its answer was lost) is answered OK again and counted
    // once: same trial, same epoch, same worker, and the trial not leased again since.
    if (auto found = FindJob(req.lease().job_id()); found.ok()) {
      JobState* js = *found;
      int64_t id = req.lease().trial_id();
      if (id >= 0 && id < static_cast<int64_t>(js->trials.size())) {
        const v1::Trial& t = js->trials[id];
        if (req.lease().epoch() != 0 && t.reported_epoch() == req.lease().epoch() &&
            t.lease_epoch() == req.lease().epoch() && t.worker_id() == req.worker_id()) {
          Log(LogLevel::kInfo, "trial_report_repeated",
              {{"job", js->job.id()}, {"trial", id}, {"worker", req.worker_id()}});
          return absl::OkStatus();
        }
      }
    }
    NF_ASSIGN_OR_RETURN(auto jt,
                        CheckLease(req.lease(), req.worker_id(), /*allow_cancelled=*/false));
    auto [js, t] = jt;
    if (req.hardware_profile().size() > 128) {
      return FieldError("hardware_profile", "longer than 128 characters");
    }
    if (!req.failed() && !req.handed_back()) {
      if (absl::Status st = ValidateReportedMetrics(js->job.spec(), req.metrics()); !st.ok()) {
        RefuseReport(*js, *t, req.worker_id(), st);
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
      t->set_state(v1::TRIAL_QUEUED);
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
        t->set_state(v1::TRIAL_FAILED);
        outcome = "failed";
      } else {
        t->set_state(v1::TRIAL_QUEUED);
        outcome = "retry";
      }
    } else {
      // Cost metrics stay the controller's (computed from the architecture at creation).
      for (const auto& [k, v] : req.metrics()) {
        if (!IsControllerMetric(k)) (*t->mutable_metrics())[k] = v;
      }
      t->set_hardware_profile(req.hardware_profile());
      t->set_state(req.stopped_early() ? v1::TRIAL_STOPPED : v1::TRIAL_SUCCEEDED);
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
    Recount(*js);
    Touch(js->job);
    if (TrialTerminal(t->state())) {
      js->untold.push_back(t->id());  // told to the strategy at its next step
      if (metrics_) metrics_->trials_finished_total.Increment();
    }
    Log(req.failed() ? LogLevel::kWarn : LogLevel::kInfo, "trial_reported",
        {{"job", js->job.id()},
         {"trial", t->id()},
         {"worker", req.worker_id()},
         {"outcome", outcome},
         {"attempt", t->attempts()},
         {"accuracy", t->metrics().count("accuracy") ? t->metrics().at("accuracy") : -1.0},
         {"error", req.error()}});
    Stage(batch, *t);
    events.push_back(Event(*js, t, "trial_finished"));
    MaybeFinish(*js, events);
    Stage(batch, js->job);
    UpdateGauges();
    EnqueueLocked(std::move(batch));
  }
  Publish(std::move(events));
  return absl::OkStatus();
}

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
    for (JobState* js : changed) {
      Recount(*js);
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
    t.set_state(v1::TRIAL_FAILED);
    t.set_error(absl::StrCat(why, "; failed after ", t.attempts(), " attempts (max_attempts)"));
    Finished(js, t);
    js.untold.push_back(t.id());
    if (metrics_) metrics_->trials_finished_total.Increment();
  } else {
    t.set_state(v1::TRIAL_QUEUED);
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
  events.push_back(Event(js, &t, "trial_finished"));
}

void JobManager::FailUnplaceable(std::set<JobState*>& changed, WriteBatch& batch, Events& events) {
  // The most memory a live worker declares; a live worker that declares none takes anything.
  int64_t largest = 0;
  {
    const absl::Time cutoff = LiveCutoff();
    absl::MutexLock s(&seen_mu_);
    for (const auto& [id, seen] : worker_seen_) {
      if (seen < cutoff) continue;
      auto w = workers_.find(id);
      const int64_t m = w == workers_.end() ? 0 : w->second.hardware().memory_bytes();
      if (m <= 0) {
        largest = 0;
        break;
      }
      largest = std::max(largest, m);
    }
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
    for (v1::Trial& t : js.trials) {
      if (t.state() != v1::TRIAL_QUEUED || Fits(t, largest)) continue;
      const LeaseTable::Key key{js.job.id(), t.id()};
      auto seen = unfit_since_.find(key);
      const absl::Time since = seen == unfit_since_.end() ? steady : seen->second;
      if (steady - since < options_.unplaceable_after) {
        unfit.emplace(key, since);
        continue;
      }
      const double need = t.metrics().at("train_memory_bytes");
      t.set_state(v1::TRIAL_FAILED);
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
      events.push_back(Event(js, &t, "trial_finished"));
      changed.insert(&js);
    }
  }
  unfit_since_ = std::move(unfit);
}

absl::Time JobManager::LiveCutoff() const {
  // A worker busy in a long epoch still counts (it heartbeats only its lease).
  return clock_->Steady() - 3 * options_.heartbeat_interval - absl::Seconds(30);
}

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
  absl::MutexLock s(&seen_mu_);
  auto it = worker_owner_.find(worker_id);
  if (it == worker_owner_.end() || it->second.empty() || it->second == caller.name) {
    return absl::OkStatus();  // unknown ids are the manager's to refuse (not registered)
  }
  if (metrics_) metrics_->stale_reports_total.Increment();
  return absl::PermissionDeniedError(absl::StrCat(
      "worker_id: '", worker_id, "' was registered by another credential; calls for it from '",
      caller.name, "' are refused"));
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
    t.set_state(v1::TRIAL_QUEUED);
    (*t.mutable_metrics())["macs"] = static_cast<double>(step.cost.macs);
    (*t.mutable_metrics())["params"] = static_cast<double>(step.cost.params);
    (*t.mutable_metrics())["train_memory_bytes"] = static_cast<double>(step.train_memory_bytes);
    *t.mutable_create_time() = ToProto(clock_->Now());
    *t.mutable_update_time() = t.create_time();
    js.trials.push_back(std::move(t));
    Recount(js);
    Touch(js.job);
    return &js.trials.back();
  }
  if (step.kind == Proposal::Kind::kWait) {
    bool in_flight = false;
    for (const auto& t : js.trials) in_flight |= !TrialTerminal(t.state());
    if (in_flight) return nullptr;  // ask again when a result arrives
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
  t.set_state(v1::TRIAL_RUNNING);
  t.set_lease_epoch(t.lease_epoch() + 1);
  t.set_attempts(t.attempts() + 1);
  t.set_worker_id(worker_id);
  t.clear_curve();
  *t.mutable_lease_deadline() = ToProto(now + ttl);
  leases_.Grant({js.job.id(), t.id()}, t.lease_epoch(), worker_id, clock_->Steady(), ttl);
  *t.mutable_update_time() = ToProto(now);
  Recount(js);
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
}

void JobManager::MaybeFinish(JobState& js, Events& events) {
  if (js.job.state() != v1::JOB_RUNNING) return;
  if (js.asking > 0) return;  // a strategy step in progress may still create a trial
  const auto& c = js.job.counts();
  bool all_created =
      js.exhausted || static_cast<int>(js.trials.size()) >= js.job.spec().budget().max_trials();
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
  events.push_back(Event(js, nullptr, "job_finished"));
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

void JobManager::TouchWorker(const std::string& worker_id) {
  absl::MutexLock s(&seen_mu_);
  auto seen = worker_seen_.find(worker_id);
  if (seen != worker_seen_.end()) seen->second = clock_->Steady();
}

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
  const absl::Time cutoff = LiveCutoff();
  int live = 0;
  absl::MutexLock s(&seen_mu_);
  for (const auto& [id, seen] : worker_seen_) live += seen >= cutoff;
  metrics_->workers_registered.Set(live);
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
void JobManager::Stage(WriteBatch& batch, v1::Worker& w) {
  w.set_version(w.version() + 1);
  batch.workers.push_back(w);
}

void JobManager::Finished(JobState& js, v1::Trial& t) {
  js.job.set_finish_seq(js.job.finish_seq() + 1);
  t.set_finish_seq(js.job.finish_seq());
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

void JobManager::Publish(Events events) { watchers_.Publish(events); }

}  // namespace nasforge
