// Browser sessions of the dashboard: a random id (the cookie) -> the API token it logged in
// with, kept in memory only (a controller restart logs everyone out), expiring after `ttl`.
// At most `max` sessions: the oldest go first. Thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace nasforge::ui {

class Sessions {
 public:
  explicit Sessions(absl::Duration ttl = absl::Hours(12), size_t max = 10000)
      : ttl_(ttl), max_(max) {}
  // A new session for `token`: its id (64 hex digits from the system's random source).
  std::string Create(const std::string& token, absl::Time now);
  // The token of a live session.
  std::optional<std::string> Token(const std::string& id, absl::Time now);
  void Remove(const std::string& id);

 private:
  struct Entry {
    std::string token;
    absl::Time expires;
  };
  const absl::Duration ttl_;
  const size_t max_;
  absl::Mutex mu_;
  std::map<std::string, Entry> by_id_ ABSL_GUARDED_BY(mu_);
  std::multimap<absl::Time, std::string> by_expiry_ ABSL_GUARDED_BY(mu_);
};

}  // namespace nasforge::ui
