#include "ui/sessions.h"

#include <openssl/rand.h>

#include <stdexcept>

#include "absl/strings/escaping.h"
#include "absl/synchronization/mutex.h"

namespace nasforge::ui {

std::string Sessions::Create(const std::string& token, absl::Time now) {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("RAND_bytes failed");
  std::string id = absl::BytesToHexString(std::string(reinterpret_cast<char*>(raw), sizeof raw));
  absl::MutexLock l(&mu_);
  while (!by_expiry_.empty() && (by_expiry_.begin()->first <= now || by_id_.size() >= max_)) {
    by_id_.erase(by_expiry_.begin()->second);
    by_expiry_.erase(by_expiry_.begin());
  }
  by_id_[id] = {token, now + ttl_};
  by_expiry_.emplace(now + ttl_, id);
  return id;
}

std::optional<std::string> Sessions::Token(const std::string& id, absl::Time now) {
  absl::MutexLock l(&mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end() || it->second.expires <= now) return std::nullopt;
  return it->second.token;
}

void Sessions::Remove(const std::string& id) {
  absl::MutexLock l(&mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  auto range = by_expiry_.equal_range(it->second.expires);
  for (auto e = range.first; e != range.second; ++e) {
    if (e->second == id) {
      by_expiry_.erase(e);
      break;
    }
  }
  by_id_.erase(it);
}

}  // namespace nasforge::ui
