// JobEvents: the watch fan-out. Watchers subscribe to one job; Publish hands each event only to
// that job's watchers, in the order given, on the publishing thread (a watcher's function must
// be quick and must not call back into the JobManager). Thread-safe, with its own lock; the
// JobManager adds a watcher while holding its own lock (so no event falls between a snapshot and
// the subscription), so the lock order is: JobManager's lock, then this one.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

class JobEvents {
 public:
  using Fn = std::function<void(const v1::JobEvent&)>;

  // Returns the handle for Remove.
  uint64_t Add(const std::string& job_id, Fn fn) ABSL_LOCKS_EXCLUDED(mu_);
  void Remove(uint64_t handle) ABSL_LOCKS_EXCLUDED(mu_);
  // Delivers each event to the watchers of its job (event.job().id()).
  void Publish(const std::vector<v1::JobEvent>& events) ABSL_LOCKS_EXCLUDED(mu_);
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);  // watchers, over all jobs
  bool Watched(const std::string& job_id) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::map<uint64_t, Fn>> by_job_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::string> job_of_ ABSL_GUARDED_BY(mu_);
  uint64_t next_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace nasforge
