// Authentication and authorisation: bearer tokens kept hashed in a file, roles, and the role each
// RPC needs.
//
// A token is "nf_" + 64 hex digits (32 random bytes), shown once when created. The token file
// holds one line per token: `name role sha256(token)-hex created-unix-seconds`; the controller
// re-reads it when it changes (so `nasforge token revoke` takes effect within a second), and
// compares a presented token's hash with every entry in constant time. Tokens are never logged.
//
// Roles: `read` (queries and watches of the caller's own jobs), `submit` (read + submit and
// cancel own jobs), `admin` (everything on every job), `worker` (the worker service only).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace nasforge {

enum class Role { kRead, kSubmit, kAdmin, kWorker };
absl::StatusOr<Role> ParseRole(absl::string_view name);
const char* RoleName(Role role);

// Who is calling. With authentication off (no token file, loopback only) every caller is the
// admin "local".
struct Principal {
  std::string name;
  Role role = Role::kRead;
  bool admin() const { return role == Role::kAdmin; }
  static Principal Local() { return {"local", Role::kAdmin}; }
};

class TokenFile {
 public:
  struct Entry {
    std::string name;
    Role role;
    std::string hash;  // sha256 of the token, lowercase hex
    int64_t created = 0;
  };

  // A missing file is an empty one. Malformed lines are an error naming the line.
  static absl::StatusOr<TokenFile> Load(const std::string& path);
  // Writes atomically (temporary file + rename), mode 0600.
  absl::Status Save(const std::string& path) const;

  // Adds a token for `name` (1-64 of a-z A-Z 0-9 _ . - @, unique) and returns its secret.
  absl::StatusOr<std::string> Create(const std::string& name, Role role, absl::Time now);
  // NOT_FOUND if there is no token of that name.
  absl::Status Revoke(const std::string& name);
  const std::vector<Entry>& entries() const { return entries_; }

  // The entry whose hash matches `token`, comparing with every entry in constant time.
  std::optional<Principal> Find(absl::string_view token) const;

 private:
  std::vector<Entry> entries_;
};

// Hex SHA-256 of `data`.
std::string Sha256Hex(absl::string_view data);

// Checks presented credentials against a token file, re-reading it when it changes (checked at
// most once a second). Thread-safe.
class Authenticator {
 public:
  // An empty `path` turns authentication off: every caller is Principal::Local().
  explicit Authenticator(std::string path);
  bool enabled() const { return !path_.empty(); }
  // `authorization` is the request's "authorization" metadata ("Bearer <token>"), empty if none.
  // UNAUTHENTICATED if missing, malformed, unknown or revoked.
  absl::StatusOr<Principal> Authenticate(absl::string_view authorization) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void ReloadIfChanged() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const std::string path_;
  absl::Mutex mu_;
  TokenFile file_ ABSL_GUARDED_BY(mu_);
  int64_t mtime_ns_ ABSL_GUARDED_BY(mu_) = -1;
  absl::Time last_check_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::string load_error_ ABSL_GUARDED_BY(mu_);
};

// PERMISSION_DENIED unless `who` may call `method` ("SubmitJob", "LeaseTrial", ...: the RPC's
// name within its service). Unknown methods are denied.
absl::Status Authorize(const Principal& who, absl::string_view service, absl::string_view method);

}  // namespace nasforge
