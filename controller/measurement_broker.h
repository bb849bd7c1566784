// MeasurementBroker: latency measurements between the jobs that wait for them and the workers
// that take them. It holds the latency cache (one measurement per architecture and setting,
// shared by every job, loaded at recovery and written through the store by the JobManager), the
// measurements waited for (keyed by LatencyKey: trials of any job with the same architecture and
// setting share one), their leases and fencing tokens, and their expiry. It knows jobs and
// trials only by id: what a result does to a trial (metrics, a rejection by a latency bound) is
// the JobManager's (job_manager_latency.cc).
//
// Leases live in memory only: a controller restart forgets them, and recovery asks again for the
// queued trials' measurements (a worker's late report then answers FAILED_PRECONDITION).
//
// Thread-safe, with its own lock; the JobManager calls it under its own (lock order: the
// manager's mu_ before the broker's). Callbacks run under the broker's lock and must not call
// back into it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "controller/metrics.h"
#include "core/clock.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

class MeasurementBroker {
 public:
  // Leases of one measurement that fail or expire before its waiters fail.
  static constexpr int kAttempts = 3;

  // A trial waiting for its latency on one of its job's targets (the job's name for it).
  struct Waiter {
    std::string job;
    int64_t trial = 0;
    std::string target;
    bool operator==(const Waiter&) const = default;
  };

  // What a ReportMeasurement did.
  struct Outcome {
    enum Kind { kRetry, kFailed, kMeasured };
    Kind kind = kRetry;
    std::vector<Waiter> waiting;         // kFailed, kMeasured: the trials to update
    v1::LatencyMeasurement measurement;  // kMeasured: now in the cache
    std::string error;                   // kFailed: the last attempt's error
    uint64_t token = 0;                  // the lease answered (for logs)
  };

  // A measurement that failed for good (Expire): its waiters and why.
  struct Failure {
    std::vector<Waiter> waiting;
    std::string why;
  };

  // `clock` and `metrics` (nullable) must outlive the broker. The first token is random: a
  // token from before a restart does not match a new one.
  MeasurementBroker(const Clock* clock, ControllerMetrics* metrics);
  MeasurementBroker(const MeasurementBroker&) = delete;
  MeasurementBroker& operator=(const MeasurementBroker&) = delete;

  // Recovery: the stored cache.
  void LoadCache(std::vector<v1::LatencyMeasurement> measurements) ABSL_LOCKS_EXCLUDED(mu_);
  // The cached measurement of `key` (LatencyKey), if any.
  std::optional<v1::LatencyMeasurement> Cached(const std::string& key) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // `waiter` waits for `arch` (hash `arch_hash`) measured on `target`'s setting, under `key`;
  // the measurement is queued if it is new (first come, first measured). Idempotent.
  void Wait(const std::string& key, const v1::Architecture& arch, const std::string& arch_hash,
            const v1::HardwareTarget& target, const Waiter& waiter) ABSL_LOCKS_EXCLUDED(mu_);

  // The oldest queued measurement `worker` can take (MeasuresTarget), leased to it with a new
  // token and a deadline of `ttl(waiters)` from now. `still_waits` drops waiters that stopped
  // waiting (their trial left the queue or got the value another way); a measurement nobody
  // waits for and nobody holds is forgotten. nullopt: none for this worker.
  std::optional<v1::MeasureTask> Grant(
      const v1::Worker& worker, const std::function<bool(const Waiter&)>& still_waits,
      const std::function<absl::Duration(const std::vector<Waiter>&)>& ttl)
      ABSL_LOCKS_EXCLUDED(mu_);

  // A worker's report on its lease `req.token()`. FAILED_PRECONDITION if the token is not that
  // worker's current lease. A failure: kRetry (queued again) until kAttempts, then kFailed with
  // the waiters (the measurement is forgotten). A result: kMeasured, cached under its key, with
  // the waiters. The request's values are the caller's to validate.
  absl::StatusOr<Outcome> Report(const v1::ReportMeasurementRequest& req) ABSL_LOCKS_EXCLUDED(mu_);

  // Leases past their deadline back to the queue (failed for good after kAttempts); queued
  // measurements that `takes` says no live worker can take for `unplaceable_after` failed.
  std::vector<Failure> Expire(const std::function<bool(const v1::HardwareTarget&)>& takes,
                              absl::Duration unplaceable_after) ABSL_LOCKS_EXCLUDED(mu_);

  // Drops every waiter of `job` (the job is deleted); measurements left without waiters or a
  // holder are forgotten.
  void ForgetJob(const std::string& job) ABSL_LOCKS_EXCLUDED(mu_);

  size_t Waiting() const ABSL_LOCKS_EXCLUDED(mu_);    // measurements queued or leased
  size_t CacheSize() const ABSL_LOCKS_EXCLUDED(mu_);  // cached measurements

 private:
  struct Measuring {
    v1::MeasureTask task;  // token and deadline set while leased
    std::vector<Waiter> waiting;
    uint64_t seq = 0;     // first come, first measured
    std::string worker;   // the holder while leased (task.token != 0)
    absl::Time deadline;  // steady clock, while leased
    absl::Time since;     // steady clock: when it was queued (or last takeable)
    int attempts = 0;     // leases that failed or expired
    std::string last_error;
  };
  // Back to the queue after a failed or expired lease.
  void Unlease(Measuring& mg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock* const clock_;
  ControllerMetrics* const metrics_;
  mutable absl::Mutex mu_;
  std::unordered_map<std::string, v1::LatencyMeasurement> cache_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Measuring> measuring_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::string> tokens_ ABSL_GUARDED_BY(mu_);  // leased: token -> key
  uint64_t seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_token_ ABSL_GUARDED_BY(mu_);
};

}  // namespace nasforge
