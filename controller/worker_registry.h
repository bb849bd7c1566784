// WorkerRegistry: the workers a controller knows: their registrations (profile, memory,
// datasets, whether and with which runtimes they measure latency), which credential owns each
// id, and when each was last seen (liveness: heartbeats and every other worker call touch it).
// Loaded from the store at recovery (known, not seen since); registrations are handed back as
// rows for the caller to write. What a worker's restart does to the leases it held is the
// JobManager's (job_manager_register.cc).
//
// Thread-safe, with its own lock, taken after the JobManager's; heartbeats touch it without the
// manager's lock.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "controller/auth.h"
#include "controller/metrics.h"
#include "core/clock.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

class WorkerRegistry {
 public:
  // `clock` and `metrics` (nullable) must outlive the registry. A worker not seen for three
  // heartbeat intervals and 30 s counts as gone.
  WorkerRegistry(const Clock* clock, ControllerMetrics* metrics, absl::Duration heartbeat_interval);
  WorkerRegistry(const WorkerRegistry&) = delete;
  WorkerRegistry& operator=(const WorkerRegistry&) = delete;

  // Recovery: the stored workers, known but not seen since the restart.
  void Load(std::vector<v1::Worker> workers) ABSL_LOCKS_EXCLUDED(mu_);

  struct Registered {
    v1::Worker row;      // as registered now, its row version raised: stage it
    bool known = false;  // the id was registered before (by this credential)
  };
  // The request's fields (INVALID_ARGUMENT naming them); Register checks them too.
  static absl::Status Validate(const v1::RegisterWorkerRequest& req);
  // Registers (or re-registers) `req` for `caller`: fields checked (INVALID_ARGUMENT naming
  // them), an id assigned when it has none, PERMISSION_DENIED for an id another credential
  // registered. Marks it seen now.
  absl::StatusOr<Registered> Register(const v1::RegisterWorkerRequest& req, const Principal& caller)
      ABSL_LOCKS_EXCLUDED(mu_);

  // PERMISSION_DENIED if another credential registered `worker_id`; OK for unknown ids (the
  // call itself refuses those).
  absl::Status CheckOwner(const std::string& worker_id, const Principal& caller) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Marks a registered worker as seen now.
  void Touch(const std::string& worker_id) ABSL_LOCKS_EXCLUDED(mu_);

  bool Known(const std::string& worker_id) const ABSL_LOCKS_EXCLUDED(mu_);
  // The worker as registered; nullopt if unknown.
  std::optional<v1::Worker> Get(const std::string& worker_id) const ABSL_LOCKS_EXCLUDED(mu_);
  // The workers seen since LiveCutoff(): those that take work now.
  std::vector<v1::Worker> Live() const ABSL_LOCKS_EXCLUDED(mu_);
  // How many: Live().size() without copying them (the gauge, after every change).
  size_t LiveCount() const ABSL_LOCKS_EXCLUDED(mu_);
  // Every worker with when it was last seen (steady clock; InfinitePast: not since a restart).
  std::vector<std::pair<v1::Worker, absl::Time>> All() const ABSL_LOCKS_EXCLUDED(mu_);
  size_t Size() const ABSL_LOCKS_EXCLUDED(mu_);
  // Steady-clock time after which a worker not seen counts as gone.
  absl::Time LiveCutoff() const;

 private:
  struct Entry {
    v1::Worker row;
    absl::Time seen = absl::InfinitePast();  // steady clock
  };
  const Clock* const clock_;
  ControllerMetrics* const metrics_;
  const absl::Duration heartbeat_interval_;
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> workers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace nasforge
