// JobManager: jobs and their trials: what only the controller's one decision point can do:
// granting leases with fencing tokens, applying each job's strategy steps and admitting
// candidates, and handing every change to the writer in decision order. The parts it uses live
// elsewhere, each with its own lock: workers in WorkerRegistry (registrations, owners,
// liveness), latency measurements in MeasurementBroker (cache, queue, leases, tokens), lease
// deadlines in LeaseTable, watch fan-out in JobEvents, strategy steps in StrategyDriver
// (outside this class's lock); stopping rules in core/early_stopping, Pareto math in
// core/pareto, trial-state counting in core/trial_state.
// Its code, by concern (each file under 400 lines):
//   job_manager.cc            construction, recovery, submit, cancel
//   job_manager_queries.cc    the users' reads: jobs, candidates, Pareto queries, watch
//   job_manager_lifecycle.cc  extend, resume, enqueue a candidate, delete
//   job_manager_warm_start.cc jobs that start from earlier jobs' trials
//   job_manager_register.cc   worker registration (and a restarted worker's orphaned leases)
//   job_manager_workers.cc    leasing: fair sharing, strategy steps, abandoned grants
//   job_manager_reports.cc    heartbeats, progress (early stopping), results
//   job_manager_batch.cc      several grants or reports per call; WhenDurable
//   job_manager_latency.cc    hardware targets: what measurements do to trials
//   job_manager_variants.cc   compressed variants of front members (JobSpec.compression)
//   job_manager_expiry.cc     what the clock decides (expired leases, unplaceable trials)
//   job_manager_metrics.cc    the gauges' snapshot
//   job_manager_internal.cc   bookkeeping (state changes, counts, staging, events)
//
// State lives in memory (rebuilt from the store by Recover()) and every change is handed to the
// StoreWriter. Methods return once memory is updated; callers that must answer only after the
// change is durable ask WhenDurable (or WhenGrantsDurable for a call that granted leases).
//
// Ordering: every change bumps the version of each row it touches and is enqueued to the writer
// under the same lock it was decided under, so the writer sees changes in decision order and the
// store's compare-and-set keeps the newest. Mutating calls first ask the writer to admit them:
// while the store fails (or the queue is full) they answer UNAVAILABLE and change nothing.
// Heartbeats live in memory only, so leases survive a store outage.
//
// Thread-safe: every public method may be called from any thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "controller/auth.h"
#include "controller/job_events.h"
#include "controller/job_metrics.h"
#include "controller/lease_table.h"
#include "controller/measurement_broker.h"
#include "controller/metric_columns.h"
#include "controller/metrics.h"
#include "controller/store_writer.h"
#include "controller/strategy_driver.h"
#include "controller/worker_registry.h"
#include "core/clock.h"
#include "core/early_stopping.h"
#include "core/pareto_archive.h"
#include "core/strategies/strategy.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

struct JobManagerOptions {
  // Interval a worker is told to heartbeat at (default 5 s). A lease lasts the job's
  // lease_seconds.
  absl::Duration heartbeat_interval = absl::Seconds(5);
  // How long LeaseTrial tells an idle worker to wait before asking again.
  absl::Duration idle_retry = absl::Milliseconds(500);
  // A queued trial whose estimated training memory exceeds what every live worker declares is
  // failed after waiting this long (a bigger worker may join meanwhile).
  absl::Duration unplaceable_after = absl::Seconds(60);
};

class JobManager {
 public:
  // `store`, `writer`, `clock` and `metrics` (nullable) must outlive the manager.
  JobManager(Store* store, StoreWriter* writer, const Clock* clock, ControllerMetrics* metrics,
             JobManagerOptions options = {});
  JobManager(const JobManager&) = delete;
  JobManager& operator=(const JobManager&) = delete;

  // Loads jobs, trials and workers from the store. Call once before serving.
  absl::Status Recover();

  // --- users ---
  // `caller` is the authenticated principal: a job belongs to whoever submitted it, and only
  // its owner or an admin may see or cancel it (PERMISSION_DENIED otherwise; ListJobs shows a
  // non-admin only their own jobs). Principal::Local() (authentication off) is an admin.
  //
  // Validates `spec` (or parses `spec_yaml`), creates the job and starts it. With a non-empty
  // idempotency key, a repeated call returns the first call's job.
  absl::StatusOr<v1::Job> SubmitJob(const v1::SubmitJobRequest& request,
                                    const Principal& caller = Principal::Local());
  absl::StatusOr<v1::Job> GetJob(absl::string_view job_id,
                                 const Principal& caller = Principal::Local()) const;
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& request,
                                                const Principal& caller = Principal::Local()) const;
  absl::StatusOr<v1::Job> CancelJob(absl::string_view job_id,
                                    const Principal& caller = Principal::Local());
  // More trials for a job; an ended one runs again (ExtendJobRequest says how).
  absl::StatusOr<v1::Job> ExtendJob(const v1::ExtendJobRequest& request,
                                    const Principal& caller = Principal::Local());
  // A queued trial of `architecture`, named by the user (EnqueueCandidateRequest says the rules).
  absl::StatusOr<v1::Trial> EnqueueCandidate(const v1::EnqueueCandidateRequest& request,
                                             const Principal& caller = Principal::Local());
  // Forgets an ended job and stages the deletion of it and its trials (how many: the answer).
  // FAILED_PRECONDITION for a running job (cancel it first).
  absl::StatusOr<v1::DeleteJobResponse> DeleteJob(absl::string_view job_id,
                                                  const Principal& caller = Principal::Local());
  absl::StatusOr<v1::Trial> GetCandidate(absl::string_view job_id, int64_t trial_id,
                                         const Principal& caller = Principal::Local()) const;
  absl::StatusOr<v1::ListCandidatesResponse> ListCandidates(
      const v1::ListCandidatesRequest& request, const Principal& caller = Principal::Local()) const;
  absl::StatusOr<v1::QueryParetoResponse> QueryPareto(
      const v1::QueryParetoRequest& request, const Principal& caller = Principal::Local()) const;
  // Each choice's and hyperparameter's share of a metric's variance (GetImportanceRequest),
  // from at most kImportanceTrials succeeded (with an epoch: and early-stopped) trials, evenly
  // sampled. INVALID_ARGUMENT naming `metric` or `epoch`; FAILED_PRECONDITION while fewer than
  // 4 trials report it.
  absl::StatusOr<v1::GetImportanceResponse> GetImportance(
      const v1::GetImportanceRequest& request, const Principal& caller = Principal::Local()) const;
  static constexpr size_t kImportanceTrials = 20000;

  // Watch: `fn` gets a snapshot at once, then every event of the job, on the thread that caused
  // it; it must not call back into the manager. Returns a handle for Unsubscribe.
  absl::StatusOr<uint64_t> Subscribe(absl::string_view job_id,
                                     std::function<void(const v1::JobEvent&)> fn,
                                     const Principal& caller = Principal::Local());
  void Unsubscribe(uint64_t handle);

  // --- workers ---
  // A worker id belongs to the credential that registered it; RegisterWorker again from another
  // credential is PERMISSION_DENIED, and the rpc layer calls CheckWorker before every other
  // worker call (it takes no manager lock: heartbeats stay off mu_).
  absl::StatusOr<v1::RegisterWorkerResponse> RegisterWorker(
      const v1::RegisterWorkerRequest& request, const Principal& caller = Principal::Local());
  absl::Status CheckWorker(const std::string& worker_id, const Principal& caller);
  // Grants up to request.max_trials trials (the first in the answer's own fields, the rest in
  // `more`); has_trial false with retry_after_ms when there is none now.
  absl::StatusOr<v1::LeaseTrialResponse> LeaseTrial(const v1::LeaseTrialRequest& request);
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request);
  absl::StatusOr<v1::ReportProgressResponse> ReportProgress(
      const v1::ReportProgressRequest& request);
  absl::Status ReportResult(const v1::ReportResultRequest& request);
  // ReportResult, then (lease_next > 0) LeaseTrial for the same worker in the same call. A lease
  // that cannot be granted is an empty `next`, never an error: the report stands.
  absl::StatusOr<v1::ReportResultResponse> ReportAndLease(const v1::ReportResultRequest& request);
  // Each report decided on its own, in order (outcomes[i]); then leases as ReportAndLease.
  // INVALID_ARGUMENT (nothing applied) for a malformed call.
  absl::StatusOr<v1::ReportResultsResponse> ReportResults(const v1::ReportResultsRequest& request);
  // A latency measurement's result (job_manager_latency.cc): cached, written into every trial
  // waiting for it; a trial over a latency bound of its job is rejected, one with all its
  // targets measured can now train. FAILED_PRECONDITION for a token that is not this worker's
  // current measurement lease; INVALID_ARGUMENT (field named) for a malformed result.
  absl::Status ReportMeasurement(const v1::ReportMeasurementRequest& request);

  // Compressed variants of one succeeded search trial (CompressTrialRequest): created and
  // staged in one write, an ended job running again until they are made. INVALID_ARGUMENT
  // naming the field (recipes[i]...), NOT_FOUND, FAILED_PRECONDITION (a cancelled job; a trial
  // that is a variant or has not succeeded), ALREADY_EXISTS for a recipe made already.
  absl::StatusOr<v1::CompressTrialResponse> CompressTrial(
      const v1::CompressTrialRequest& request, const Principal& caller = Principal::Local());

  // The trial a leased variant is made from (its trained weights are what the worker fetches),
  // or with `teacher` its teacher (a distilled variant's): FAILED_PRECONDITION for a lease that
  // is not current or not of a variant (with a teacher).
  absl::StatusOr<int64_t> VariantParent(const v1::Lease& lease, const std::string& worker_id,
                                        bool teacher = false);
  // AbandonLease for every grant in `grants` (its own and `more`).
  void AbandonGrants(const v1::LeaseTrialResponse& grants, const std::string& worker_id);
  // Undoes a grant whose LeaseTrial answer was an error (its write did not become durable): the
  // trial is queued again, its attempt not counted. The epoch stays used (never issued again).
  void AbandonLease(const v1::Lease& lease, const std::string& worker_id);

  // Gauges for a scrape (controller/job_metrics.h): every running job and the worker fleet.
  // Takes the reader lock; O(jobs + front sizes + workers).
  JobMetricsSnapshot MetricsSnapshot() const;

  // Re-queues (or fails, after max_attempts) trials whose lease deadline has passed, and fails
  // queued trials no live worker has the memory for (after `unplaceable_after`). The
  // controller calls it on a timer; tests call it after advancing a FakeClock.
  void ExpireLeases();

  // Calls `done` (on the writer's thread, or at once) when every change this manager has handed
  // to the writer so far is durable, with OK, or with the error that kept it from the store.
  // For answering a mutating call only once its change is durable.
  void WhenDurable(std::function<void(absl::Status)> done);
  // WhenDurable for a call that granted leases: if the write fails, the grants (`grants`: its
  // own and `more`, read when the outcome is known; must stay valid until `done`) are undone
  // (AbandonGrants) before `done` hears the error, so nothing the caller never saw stays leased.
  void WhenGrantsDurable(const v1::LeaseTrialResponse* grants, std::string worker_id,
                         std::function<void(absl::Status)> done);

 private:
  struct JobState {
    v1::Job job;
    // Index == trial id. A deque: appending never moves the others (a vector's regrowth copied a
    // million trials under mu_, and would invalidate the Trial* the manager hands around).
    std::deque<v1::Trial> trials;
    // The strategy and the hashes of every candidate seen, asked outside mu_ (its own lock,
    // taken before mu_). Set once when the job is created or recovered.
    std::unique_ptr<StrategyDriver> driver;
    std::vector<int64_t> untold;  // trials finished since the strategy's last step, in order
    int asking = 0;               // LeaseTrial calls in a strategy step for this job now
    bool exhausted = false;       // the sampler found no new admissible candidate
    uint64_t last_grant = 0;      // grant counter value at this job's last lease (fair sharing)
    // Ids of the QUEUED trials, oldest first: leases are granted from here, not by a scan.
    // Kept with the counts by SetTrialState / AddTrial (the only writers of a trial's state).
    std::set<int64_t> queued;
    // Of them, variants (JobSpec.compression): not part of the backlog that holds back new
    // candidates (a plain worker keeps searching while variants wait for their makers).
    int queued_variants = 0;
    // The front of the job's own objectives over its succeeded trials, kept as they finish
    // (IndexFinished): QueryPareto without objectives, constraints or filters reads it instead of
    // scanning every trial. `considered`: succeeded trials that have every objective metric.
    std::unique_ptr<ParetoArchive> front;
    size_t front_considered = 0;
    // The finished trials' metrics by column: what any other QueryPareto scans.
    MetricColumns columns;
    // For the job's gauges (MetricsSnapshot): when a trial last finished, and the objective
    // point of the first one to finish (lowest finish_seq), the default hypervolume reference.
    absl::Time last_finish = absl::InfinitePast();
    uint64_t anchor_seq = UINT64_MAX;
    std::vector<double> anchor;
  };
  using Events = std::vector<v1::JobEvent>;

  absl::StatusOr<JobState*> FindJob(absl::string_view id) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::StatusOr<const JobState*> FindJobConst(absl::string_view id) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // PERMISSION_DENIED unless `caller` owns the job or is an admin.
  absl::Status CheckVisible(const JobState& js, const Principal& caller) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // FindJobConst, then CheckVisible.
  absl::StatusOr<const JobState*> FindVisible(absl::string_view id, const Principal& caller) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // A finished trial into the job's query indexes: js.columns (SUCCEEDED, STOPPED) and js.front
  // (SUCCEEDED; made on first use). Called once per trial, when it finishes or at recovery.
  static void IndexFinished(JobState& js, const v1::Trial& t);
  // Checks a worker's lease against the trial's fencing token.
  absl::StatusOr<std::pair<JobState*, v1::Trial*>> CheckLease(const v1::Lease& lease,
                                                              const std::string& worker_id,
                                                              bool allow_cancelled)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A running trial whose lease is gone (expired, or its worker restarted): queued again, or
  // failed with `why` once it used its max_attempts. Stages the trial; the caller recounts.
  void LoseLease(JobState& js, v1::Trial& t, absl::string_view why, WriteBatch& batch,
                 Events& events) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fails queued trials that fit no live worker's declared memory (see unplaceable_after).
  void FailUnplaceable(std::set<JobState*>& changed, WriteBatch& batch, Events& events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks `t` terminal bookkeeping: finish order, lease released.
  void Finished(JobState& js, v1::Trial& t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Bump the row version and add the row to `batch`.
  void Stage(WriteBatch& batch, v1::Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Stage(WriteBatch& batch, v1::Trial& t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands `batch` to the writer in decision order (under mu_).
  void EnqueueLocked(WriteBatch batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One grant (LeaseTrial's loop body); LeaseTrial batches it.
  // `measure`: a latency measurement may be granted instead (only the first grant of a call).
  absl::StatusOr<v1::LeaseTrialResponse> LeaseOne(const v1::LeaseTrialRequest& req, bool measure);
  // LeaseTrial after a report: an empty answer with retry_after_ms instead of an error.
  v1::LeaseTrialResponse LeaseAfterReport(const std::string& worker_id, int max_trials);
  // ReportResult on behalf of `worker` (the request's own worker_id is not read).
  absl::Status ReportResultAs(const std::string& worker, const v1::ReportResultRequest& req);
  // One LeaseTrial pass under mu_: grants a queued trial of the fairest job, or picks the job
  // whose strategy to ask next (*ask, its `asking` raised; jobs in `asked` are skipped).
  absl::Status GrantOrPick(const v1::LeaseTrialRequest& req, const std::set<JobState*>& asked,
                           bool measure, v1::LeaseTrialResponse* resp, JobState** ask,
                           WriteBatch& batch, Events& events) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Asks `js`'s strategy outside mu_ and applies the step under mu_: a new trial, granted to
  // the worker when the call may still change things (resp->has_trial()).
  void AskAndApply(JobState& js, const std::string& worker_id, v1::LeaseTrialResponse* resp)
      ABSL_LOCKS_EXCLUDED(mu_);
  // A strategy step's answer applied to the job: the new (queued) trial, or nullptr.
  v1::Trial* ApplyStep(JobState& js, StrategyDriver::Step step) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void GrantLease(JobState& js, v1::Trial& t, const std::string& worker_id,
                  v1::LeaseTrialResponse* resp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Latency targets (job_manager_latency.cc). A new or recovered QUEUED trial: its targets
  // filled from the cache (a cached value over a bound rejects it at once) or queued for
  // measurement. Stages the trial when it changed it.
  void PlanMeasurements(JobState& js, v1::Trial& t, WriteBatch& batch, Events& events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True while a QUEUED trial still lacks one of its job's targets (it is not leased to train).
  static bool AwaitsMeasurement(const JobState& js, const v1::Trial& t);
  // `m` (a measurement of its architecture on `target`) into the trial: metrics and latencies;
  // rejects it if over a bound, makes it leasable once nothing else is missing.
  void ApplyMeasurement(JobState& js, v1::Trial& t, const std::string& target,
                        v1::LatencyMeasurement m, WriteBatch& batch, Events& events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fails a queued trial whose measurement cannot be had; `rejected` for a bound it breaks.
  void FailBeforeTraining(JobState& js, v1::Trial& t, const std::string& why, bool rejected,
                          WriteBatch& batch, Events& events) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The trial `w` names while it still waits for that target's latency (queued, not measured),
  // with its job in *js; nullptr otherwise (the job was deleted, the trial left the queue).
  v1::Trial* WaitingTrial(const MeasurementBroker::Waiter& w, JobState** js)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A measurement for `worker` (if it measures and one it runs waits): true if granted.
  bool GrantMeasurement(const v1::Worker& worker, v1::LeaseTrialResponse* resp)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Expired measurement leases back to the queue (failing their trials after 3 attempts), and
  // measurements no live worker of their profile can take for `unplaceable_after` failed.
  void ExpireMeasurements(std::set<JobState*>& changed, WriteBatch& batch, Events& events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Trials of the job that count against max_trials (rejected-by-latency and warm-started ones
  // do not).
  static int64_t Created(const JobState& js);

  // Warm start (job_manager_warm_start.cc). Checks spec.warm_start.jobs against `caller` (each
  // visible, same search space; field-named errors) and records each source's cut-off and
  // whether its recipe is the job's.
  absl::Status ResolveWarmStart(v1::JobSpec& spec, const Principal& caller) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The sources' finished trials up to their cut-offs, each architecture once (the first
  // source's): the prior observations (false) first, then the reusable results (true).
  std::vector<std::pair<const v1::Trial*, bool>> WarmStartTrials(const v1::JobSpec& spec) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // A new job: priors told to `strategy`, reusable results copied in as its first trials
  // (staged), every source architecture added to `seen`, then the job's trials told.
  void ApplyWarmStart(JobState& js, Strategy& strategy, std::set<std::string>& seen,
                      WriteBatch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // FAILED_PRECONDITION while a running job warm-starts from `job_id`.
  absl::Status CheckNotWarmStartSource(const std::string& job_id) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  // Compressed variants (job_manager_variants.cc): when `parent` (just succeeded) is on the job's
  // front, one queued variant trial per recipe of JobSpec.compression it lacks; staged.
  // Sets `t`'s architecture, hash and counts for `recipe` applied to parent `p` (and, for a
  // distilled variant, its teacher); returns why it cannot be made ("" when it can).
  // `scope`: the recipes a distill recipe's student may name.
  std::string VariantNetwork(const JobState& js, const v1::Trial& p,
                             const v1::CompressionRecipe& recipe, const v1::Compression& scope,
                             v1::Trial* t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One variant of trial `parent_id` by `recipe`: queued (and measured, if it must be), or
  // failed with the reason it cannot be made.
  v1::Trial& AddVariant(JobState& js, int64_t parent_id, const v1::CompressionRecipe& recipe,
                        const v1::Compression& scope, WriteBatch& batch, Events& events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MakeVariants(JobState& js, const v1::Trial& parent, WriteBatch& batch, Events& events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fails queued variants whose compression kind no live worker makes for unplaceable_after
  // (while some worker is live: a fleet that is restarting fails nothing).
  void FailUnmakeable(std::set<JobState*>& changed, WriteBatch& batch, Events& events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Counts and the queued index from the trials (recovery; O(trials)).
  void Recount(JobState& js) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves `t` to state `to`, keeping the job's counts and queued index in step (O(log n)).
  void SetTrialState(JobState& js, v1::Trial& t, v1::TrialState to)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The job's early-stopping rule applied to `t`'s latest progress point.
  StopDecision DecideEarlyStop(const JobState& js, const v1::Trial& t) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Finishes the job when no trial is left to run.
  void MaybeFinish(JobState& js, Events& events) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Touch(v1::Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Counts and logs a worker report refused as invalid (nothing of it is recorded).
  void RefuseReport(const JobState& js, const v1::Trial& t, const std::string& worker_id,
                    const absl::Status& why) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void UpdateGauges() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::JobEvent Event(const JobState& js, const v1::Trial* t, const char* kind) const;
  // Appends Event(...) to `events` if anyone watches the job (an event copies the job and the
  // trial: not worth it for nobody). Under mu_, so a watcher added later starts from a snapshot
  // that already includes this change.
  void AddEvent(Events& events, const JobState& js, const v1::Trial* t, const char* kind) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Delivers `events` to watchers (outside mu_).
  void Publish(Events events) ABSL_LOCKS_EXCLUDED(mu_);

  Store* const store_;
  StoreWriter* const writer_;
  const Clock* const clock_;
  ControllerMetrics* const metrics_;
  const JobManagerOptions options_;

  mutable absl::Mutex mu_;
  // A JobState is never destroyed while the manager lives (a step in progress keeps a pointer).
  std::map<std::string, std::unique_ptr<JobState>> jobs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> job_order_ ABSL_GUARDED_BY(mu_);  // creation order
  std::map<std::string, std::string> idempotency_ ABSL_GUARDED_BY(mu_);
  // Heartbeats take neither mu_ nor anything slow: the lease table has its own lock, and so has
  // the worker registry (lock order: mu_ before either).
  LeaseTable leases_;
  WorkerRegistry workers_;
  uint64_t grants_ ABSL_GUARDED_BY(mu_) = 0;
  // Queued trials no live worker has room for, since when (steady clock): FailUnplaceable.
  std::map<LeaseTable::Key, absl::Time> unfit_since_ ABSL_GUARDED_BY(mu_);
  // Queued variants no live worker can make, since when (steady clock): FailUnmakeable.
  std::map<LeaseTable::Key, absl::Time> unmakeable_since_ ABSL_GUARDED_BY(mu_);

  // Latency measurements: the cache, the queue, their leases and tokens (its lock is taken
  // after mu_).
  MeasurementBroker measurements_;

  JobEvents watchers_;  // watch fan-out; its lock is taken after mu_
};

}  // namespace nasforge
