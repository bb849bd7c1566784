// LeaseTable: the running leases and their deadlines on the steady clock, ordered by deadline so
// expiry looks only at what has expired (no walk over every trial).
//
// A lease is (job, trial) -> (epoch, worker, deadline). The table holds no trial state: JobManager
// owns that and keeps the table in step under its own lock. Thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace nasforge {

class LeaseTable {
 public:
  using Key = std::pair<std::string, int64_t>;  // (job id, trial id)
  struct Lease {
    uint64_t epoch = 0;
    std::string worker;
    absl::Time deadline;  // steady clock
  };

  // Records (or replaces) the lease of `key`.
  void Grant(const Key& key, uint64_t epoch, std::string worker, absl::Time deadline);
  // Moves the deadline of `key`'s lease if it is still `epoch`; false otherwise.
  bool Extend(const Key& key, uint64_t epoch, absl::Time deadline);
  void Release(const Key& key);
  // The lease of `key`, or nullptr.
  const Lease* Find(const Key& key) const;
  // Keys whose deadline is <= `now`, earliest first (they stay in the table until released).
  std::vector<Key> Expired(absl::Time now) const;
  size_t size() const { return leases_.size(); }

 private:
  std::map<Key, Lease> leases_;
  std::set<std::pair<absl::Time, Key>> by_deadline_;
};

}  // namespace nasforge
