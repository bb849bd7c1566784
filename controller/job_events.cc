#include "controller/job_events.h"

namespace nasforge {

uint64_t JobEvents::Add(const std::string& job_id, Fn fn) {
  absl::MutexLock l(&mu_);
  const uint64_t h = next_++;
  by_job_[job_id].emplace(h, std::move(fn));
  job_of_.emplace(h, job_id);
  return h;
}

void JobEvents::Remove(uint64_t handle) {
  absl::MutexLock l(&mu_);
  auto it = job_of_.find(handle);
  if (it == job_of_.end()) return;
  auto job = by_job_.find(it->second);
  job->second.erase(handle);
  if (job->second.empty()) by_job_.erase(job);
  job_of_.erase(it);
}

void JobEvents::Publish(const std::vector<v1::JobEvent>& events) {
  if (events.empty()) return;
  absl::MutexLock l(&mu_);
  for (const auto& e : events) {
    auto job = by_job_.find(e.job().id());
    if (job == by_job_.end()) continue;
    for (const auto& [h, fn] : job->second) fn(e);
  }
}

size_t JobEvents::size() const {
  absl::MutexLock l(&mu_);
  return job_of_.size();
}

bool JobEvents::Watched(const std::string& job_id) const {
  absl::MutexLock l(&mu_);
  return by_job_.count(job_id) > 0;
}

}  // namespace nasforge
