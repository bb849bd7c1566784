#include "controller/lease_table.h"

namespace nasforge {

void LeaseTable::Grant(const Key& key, uint64_t epoch, std::string worker, absl::Time deadline) {
  Release(key);
  leases_[key] = Lease{epoch, std::move(worker), deadline};
  by_deadline_.emplace(deadline, key);
}

bool LeaseTable::Extend(const Key& key, uint64_t epoch, absl::Time deadline) {
  auto it = leases_.find(key);
  if (it == leases_.end() || it->second.epoch != epoch) return false;
  by_deadline_.erase({it->second.deadline, key});
  it->second.deadline = deadline;
  by_deadline_.emplace(deadline, key);
  return true;
}

void LeaseTable::Release(const Key& key) {
  auto it = leases_.find(key);
  if (it == leases_.end()) return;
  by_deadline_.erase({it->second.deadline, key});
  leases_.erase(it);
}

const LeaseTable::Lease* LeaseTable::Find(const Key& key) const {
  auto it = leases_.find(key);
  return it == leases_.end() ? nullptr : &it->second;
}

std::vector<LeaseTable::Key> LeaseTable::Expired(absl::Time now) const {
  std::vector<Key> out;
  for (const auto& [deadline, key] : by_deadline_) {
    if (deadline > now) break;
    out.push_back(key);
  }
  return out;
}

}  // namespace nasforge
