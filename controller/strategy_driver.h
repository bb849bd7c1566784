// StrategyDriver: one job's search strategy, asked outside the JobManager's lock.
//
// Asking a strategy can be slow (a GP fit over thousands of points, thousands of rejected
// samples), so JobManager does not hold its own lock across it: a LeaseTrial that needs a new
// candidate takes the job's driver lock, releases the manager's lock, tells the strategy the
// trials that finished since its last step, asks it, then retakes the manager's lock to apply the
// answer (the driver lock is held throughout, so a job's steps never interleave and the stored
// position only moves forward). Other jobs, reports, heartbeats and queries go on meanwhile.
//
// Lock order: a driver's lock before JobManager's lock; JobManager never takes a driver lock
// while holding its own. Thread-safe through that lock.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "controller/metrics.h"
#include "core/cost.h"
#include "core/strategies/strategy.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

class StrategyDriver {
 public:
  // What one step produced.
  struct Step {
    Proposal::Kind kind = Proposal::Kind::kDone;
    v1::Architecture arch;  // kCandidate: admissible (new to the job, within the cost bounds)
    std::string hash;       // its canonical hash
    ArchCost cost;          // its MACs and params
    int64_t train_memory_bytes = 0;  // TrainingMemoryBytes at the job's batch size
    int64_t rejected_by_cost = 0;    // samples refused by the macs/params bounds in this step
    uint64_t position = 0;           // the strategy's position after the step (Job.next_sample)
    std::string reason;              // kWait / kDone: why
  };

  // `strategy` has been told every trial of the job that finished so far; `seen` holds the hash
  // of every candidate the job has (trained or rejected). `metrics` may be null.
  StrategyDriver(std::string job_id, const v1::JobSpec& spec, std::unique_ptr<Strategy> strategy,
                 std::set<std::string> seen, ControllerMetrics* metrics);
  StrategyDriver(const StrategyDriver&) = delete;
  StrategyDriver& operator=(const StrategyDriver&) = delete;

  // Held by the caller across Next() and the application of its result.
  absl::Mutex* lock() ABSL_LOCK_RETURNED(mu_) { return &mu_; }

  // Tells `finished` (in finish order), then asks for the next admissible candidate, trying at
  // most `max_attempts` samples. The candidate's hash counts as seen from now on.
  Step Next(const std::vector<v1::Trial>& finished, int max_attempts)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // A candidate the user names (EnqueueCandidate) instead of the strategy: a kCandidate step for
  // `arch` (its hash then counts as seen), ALREADY_EXISTS if the job has it, INVALID_ARGUMENT
  // naming "architecture" if it is over the job's macs/params/memory bounds.
  absl::StatusOr<Step> Admit(const v1::Architecture& arch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

 private:
  const std::string job_id_;
  const std::vector<v1::Constraint> cost_bounds_;  // the spec's macs/params/memory constraints
  const int batch_size_;
  ControllerMetrics* const metrics_;
  prometheus::Histogram* const suggest_seconds_;  // null without metrics
  absl::Mutex mu_;
  std::unique_ptr<Strategy> strategy_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> seen_ ABSL_GUARDED_BY(mu_);
};

}  // namespace nasforge
