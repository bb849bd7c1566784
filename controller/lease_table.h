// LeaseTable: the running leases and their deadlines on the steady clock, ordered by deadline so
// expiry looks only at what has expired (no walk over every trial).
//
// A lease is (job, trial) -> (epoch, worker, TTL, deadline). The table holds no trial state:
// JobManager owns that and keeps the table in step. Thread-safe, with a lock of its own, so that
// heartbeats (Renew) never wait for the job manager's lock: a long strategy step (a GP fit over
// thousands of points) cannot stall them. Lock order: JobManager's lock before this one.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace nasforge {

class LeaseTable {
 public:
  using Key = std::pair<std::string, int64_t>;  // (job id, trial id)
  enum class Renewal { kRenewed, kCancelled, kStale, kNotYours };

  // Records (or replaces) the lease of `key`: held by `worker` at `epoch` until now + `ttl`.
  void Grant(const Key& key, uint64_t epoch, std::string worker, absl::Time now, absl::Duration ttl)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Extends the lease of `key` to now + its TTL if `worker` holds it at `epoch`. kCancelled: the
  // job was cancelled (the worker should stop); kStale: no such lease (expired, finished, or an
  // older epoch; *current is the epoch held now, 0 if none); kNotYours: another worker's.
  Renewal Renew(const Key& key, uint64_t epoch, const std::string& worker, absl::Time now,
                absl::Time* deadline, uint64_t* current) ABSL_LOCKS_EXCLUDED(mu_);
  // The trial's job was cancelled: heartbeats on the lease answer kCancelled until it expires.
  void MarkCancelled(const Key& key) ABSL_LOCKS_EXCLUDED(mu_);
  void Release(const Key& key) ABSL_LOCKS_EXCLUDED(mu_);
  // Keys of the leases `worker` holds (a scan: for the rare restart of a worker).
  std::vector<Key> HeldBy(const std::string& worker) const ABSL_LOCKS_EXCLUDED(mu_);
  // Leases held, by worker (a scan: for a metrics scrape).
  std::map<std::string, int> CountByWorker() const ABSL_LOCKS_EXCLUDED(mu_);
  // Keys whose deadline is <= `now`, earliest first (they stay in the table until released).
  std::vector<Key> Expired(absl::Time now) const ABSL_LOCKS_EXCLUDED(mu_);
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Lease {
    uint64_t epoch = 0;
    std::string worker;
    absl::Duration ttl;
    absl::Time deadline;  // steady clock
    bool cancelled = false;
  };
  void ReleaseLocked(const Key& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<Key, Lease> leases_ ABSL_GUARDED_BY(mu_);
  std::set<std::pair<absl::Time, Key>> by_deadline_ ABSL_GUARDED_BY(mu_);
};

}  // namespace nasforge
