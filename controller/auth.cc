#include "controller/auth.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/log.h"

namespace nasforge {
namespace {

bool ValidName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-' || c == '@';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<Role> ParseRole(absl::string_view name) {
  if (name == "read") return Role::kRead;
  if (name == "submit") return Role::kSubmit;
  if (name == "admin") return Role::kAdmin;
  if (name == "worker") return Role::kWorker;
  return absl::InvalidArgumentError(
      absl::StrCat("role: '", name, "' is not one of read, submit, admin, worker"));
}

const char* RoleName(Role role) {
  switch (role) {
    case Role::kRead:
      return "read";
    case Role::kSubmit:
      return "submit";
    case Role::kAdmin:
      return "admin";
    case Role::kWorker:
      return "worker";
  }
  return "?";
}

std::string Sha256Hex(absl::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(md), sizeof(md)));
}

absl::StatusOr<TokenFile> TokenFile::Load(const std::string& path) {
  TokenFile f;
  std::ifstream in(path);
  if (!in) {
    if (access(path.c_str(), F_OK) != 0) return f;  // missing: empty
    return absl::PermissionDeniedError(absl::StrCat("token file ", path, ": cannot be read"));
  }
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    Entry e;
    auto role = parts.size() == 4 ? ParseRole(parts[1]) : absl::InvalidArgumentError("");
    if (parts.size() != 4 || !ValidName(parts[0]) || !role.ok() || parts[2].size() != 64 ||
        !absl::SimpleAtoi(parts[3], &e.created)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token file ", path, " line ", n,
          ": expected `name role sha256-hex created-unix`; edit it with `nasforge token`"));
    }
    e.name = parts[0];
    e.role = *role;
    e.hash = parts[2];
    f.entries_.push_back(std::move(e));
  }
  return f;
}

absl::Status TokenFile::Save(const std::string& path) const {
  std::string tmp = absl::StrCat(path, ".tmp-", getpid());
  {
    mode_t old = umask(077);
    std::ofstream out(tmp, std::ios::trunc);
    umask(old);
    if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", tmp));
    out << "# nasforge tokens: name role sha256(token) created-unix. Edit with `nasforge token`.\n";
    for (const Entry& e : entries_) {
      out << e.name << ' ' << RoleName(e.role) << ' ' << e.hash << ' ' << e.created << '\n';
    }
    out.flush();
    if (!out) return absl::InternalError(absl::StrCat("writing ", tmp, " failed (disk full?)"));
  }
  // Keep the existing file's owner, group and mode (e.g. root:nasforge 0640, so the controller's
  // user can read what root edits); a new file is 0600.
  struct stat old;
  if (stat(path.c_str(), &old) == 0) {
    (void)chown(tmp.c_str(), old.st_uid, old.st_gid);
    chmod(tmp.c_str(), old.st_mode & 0777);
  } else {
    chmod(tmp.c_str(), 0600);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot replace ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> TokenFile::Create(const std::string& name, Role role, absl::Time now) {
  if (!ValidName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("name: '", name, "' must be 1-64 of a-z A-Z 0-9 _ . - @"));
  }
  for (const Entry& e : entries_) {
    if (e.name == name) {
      return absl::AlreadyExistsError(
          absl::StrCat("name: a token named '", name, "' exists; revoke it first"));
    }
  }
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof(raw)) != 1) return absl::InternalError("no randomness available");
  std::string token = absl::StrCat(
      "nf_", absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(raw), sizeof(raw))));
  entries_.push_back({name, role, Sha256Hex(token), absl::ToUnixSeconds(now)});
  return token;
}

absl::Status TokenFile::Revoke(const std::string& name) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->name == name) {
      entries_.erase(it);
      return absl::OkStatus();
    }
  }
  return absl::NotFoundError(absl::StrCat("name: no token named '", name, "'"));
}

std::optional<Principal> TokenFile::Find(absl::string_view token) const {
  const std::string hash = Sha256Hex(token);
  std::optional<Principal> found;
  for (const Entry& e : entries_) {  // every entry, whatever matched: no early exit
    if (e.hash.size() == hash.size() &&
        CRYPTO_memcmp(e.hash.data(), hash.data(), hash.size()) == 0) {
      found = Principal{e.name, e.role};
    }
  }
  return found;
}

Authenticator::Authenticator(std::string path) : path_(std::move(path)) {}

void Authenticator::ReloadIfChanged() {
  absl::Time now = absl::Now();
  if (now - last_check_ < absl::Seconds(1)) return;
  last_check_ = now;
  struct stat st;
  int64_t mtime = stat(path_.c_str(), &st) == 0
                      ? int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec
                      : 0;
  if (mtime == mtime_ns_) return;
  auto f = TokenFile::Load(path_);
  if (!f.ok()) {
    // Keep serving with the last good file; say why every call fails if there was none.
    load_error_ = std::string(f.status().message());
    Log(LogLevel::kError, "token_file_unreadable",
        {{"path", path_},
         {"error", load_error_},
         {"hint", "fix the file; the last good one stays"}});
    return;
  }
  mtime_ns_ = mtime;
  load_error_.clear();
  file_ = std::move(*f);
  Log(LogLevel::kInfo, "token_file_loaded", {{"path", path_}, {"tokens", file_.entries().size()}});
}

absl::StatusOr<Principal> Authenticator::Authenticate(absl::string_view authorization) {
  if (!enabled()) return Principal::Local();
  constexpr absl::string_view kBearer = "Bearer ";
  if (authorization.empty()) {
    return absl::UnauthenticatedError(
        "authorization: no bearer token; give the CLI or worker --token-file or NASFORGE_TOKEN");
  }
  if (!absl::StartsWith(authorization, kBearer) || authorization.size() > 256) {
    return absl::UnauthenticatedError("authorization: expected \"Bearer <token>\"");
  }
  absl::string_view token = authorization.substr(kBearer.size());
  absl::MutexLock l(&mu_);
  ReloadIfChanged();
  std::optional<Principal> p = file_.Find(token);
  if (!p) {
    return absl::UnauthenticatedError(
        "authorization: unknown or revoked token (`nasforge token list` shows the valid names)");
  }
  return *p;
}

absl::Status Authorize(const Principal& who, absl::string_view service, absl::string_view method) {
  // The least role each method needs. User roles are ordered read < submit < admin; the worker
  // service is for worker tokens only.
  struct Rule {
    absl::string_view service, method;
    Role role;
  };
  static constexpr Rule kRules[] = {
      {"JobService", "GetJob", Role::kRead},
      {"JobService", "ListJobs", Role::kRead},
      {"JobService", "WatchJob", Role::kRead},
      {"JobService", "GetCandidate", Role::kRead},
      {"JobService", "ListCandidates", Role::kRead},
      {"JobService", "QueryPareto", Role::kRead},
      {"JobService", "GetImportance", Role::kRead},
      {"JobService", "GetArtifact", Role::kRead},
      {"JobService", "SubmitJob", Role::kSubmit},
      {"JobService", "CancelJob", Role::kSubmit},
      {"JobService", "CompressTrial", Role::kSubmit},
      {"JobService", "ExtendJob", Role::kSubmit},
      {"JobService", "DeleteJob", Role::kSubmit},
      {"JobService", "EnqueueCandidate", Role::kSubmit},
      {"WorkerService", "RegisterWorker", Role::kWorker},
      {"WorkerService", "LeaseTrial", Role::kWorker},
      {"WorkerService", "Heartbeat", Role::kWorker},
      {"WorkerService", "ReportProgress", Role::kWorker},
      {"WorkerService", "ReportResult", Role::kWorker},
      {"WorkerService", "ReportResults", Role::kWorker},
      {"WorkerService", "UploadArtifact", Role::kWorker},
      {"WorkerService", "GetParentArtifact", Role::kWorker},
      {"WorkerService", "ReportMeasurement", Role::kWorker},
  };
  for (const Rule& r : kRules) {
    if (r.service != service || r.method != method) continue;
    bool ok;
    if (r.role == Role::kWorker) {
      ok = who.role == Role::kWorker;
    } else {
      auto rank = [](Role x) {
        return x == Role::kRead ? 1 : x == Role::kSubmit ? 2 : x == Role::kAdmin ? 3 : 0;
      };
      ok = rank(who.role) >= rank(r.role);
    }
    if (ok) return absl::OkStatus();
    return absl::PermissionDeniedError(absl::StrCat(service, "/", method, " needs the ",
                                                    RoleName(r.role), " role; '", who.name,
                                                    "' has ", RoleName(who.role)));
  }
  return absl::PermissionDeniedError(
      absl::StrCat(service, "/", method, ": no access rule for this method"));
}

}  // namespace nasforge
