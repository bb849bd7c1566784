#include "controller/lease_table.h"

namespace nasforge {

void LeaseTable::Grant(const Key& key, uint64_t epoch, std::string worker, absl::Time now,
                       absl::Duration ttl) {
  absl::MutexLock l(&mu_);
  ReleaseLocked(key);
  leases_[key] = Lease{epoch, std::move(worker), ttl, now + ttl, false};
  by_deadline_.emplace(now + ttl, key);
}

LeaseTable::Renewal LeaseTable::Renew(const Key& key, uint64_t epoch, const std::string& worker,
                                      absl::Time now, absl::Time* deadline, uint64_t* current) {
  absl::MutexLock l(&mu_);
  auto it = leases_.find(key);
  *current = it == leases_.end() ? 0 : it->second.epoch;
  if (it == leases_.end() || it->second.epoch != epoch) return Renewal::kStale;
  Lease& lease = it->second;
  if (lease.worker != worker) return Renewal::kNotYours;
  if (lease.cancelled) return Renewal::kCancelled;
  by_deadline_.erase({lease.deadline, key});
  lease.deadline = now + lease.ttl;
  by_deadline_.emplace(lease.deadline, key);
  *deadline = lease.deadline;
  return Renewal::kRenewed;
}

void LeaseTable::MarkCancelled(const Key& key) {
  absl::MutexLock l(&mu_);
  auto it = leases_.find(key);
  if (it != leases_.end()) it->second.cancelled = true;
}

void LeaseTable::Release(const Key& key) {
  absl::MutexLock l(&mu_);
  ReleaseLocked(key);
}

void LeaseTable::ReleaseLocked(const Key& key) {
  auto it = leases_.find(key);
  if (it == leases_.end()) return;
  by_deadline_.erase({it->second.deadline, key});
  leases_.erase(it);
}

std::vector<LeaseTable::Key> LeaseTable::Expired(absl::Time now) const {
  absl::MutexLock l(&mu_);
  std::vector<Key> out;
  for (const auto& [deadline, key] : by_deadline_) {
    if (deadline > now) break;
    out.push_back(key);
  }
  return out;
}

std::vector<LeaseTable::Key> LeaseTable::HeldBy(const std::string& worker) const {
  absl::MutexLock l(&mu_);
  std::vector<Key> out;
  for (const auto& [key, lease] : leases_) {
    if (lease.worker == worker) out.push_back(key);
  }
  return out;
}

std::map<std::string, int> LeaseTable::CountByWorker() const {
  absl::MutexLock l(&mu_);
  std::map<std::string, int> out;
  for (const auto& [key, lease] : leases_) ++out[lease.worker];
  return out;
}

size_t LeaseTable::size() const {
  absl::MutexLock l(&mu_);
  return leases_.size();
}

}  // namespace nasforge
