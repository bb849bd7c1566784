// A registry of named extension entries (strategies, early-stopping rules, store backends): the
// one table each extension point reads. `Info` is a struct with a `std::string name` member.
// Built-in entries are added where the extension point defines its Global accessor; tests and
// embedders may Add() more at run time. Thread-safe; entries are never removed, so a pointer
// returned by Find() stays valid.
#pragma once

#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace nasforge {

template <typename Info>
class NameRegistry {
 public:
  // `kind` names the extension point in errors ("strategy", "early-stopping rule").
  explicit NameRegistry(std::string kind) : kind_(std::move(kind)) {}

  // ALREADY_EXISTS if the name is taken; INVALID_ARGUMENT without a name.
  absl::Status Add(Info info) ABSL_LOCKS_EXCLUDED(mu_) {
    if (info.name.empty()) return absl::InvalidArgumentError(absl::StrCat(kind_, ": empty name"));
    absl::MutexLock l(&mu_);
    if (entries_.count(info.name)) {
      return absl::AlreadyExistsError(
          absl::StrCat(kind_, " '", info.name, "' is registered already"));
    }
    std::string name = info.name;
    entries_.emplace(std::move(name), std::make_unique<const Info>(std::move(info)));
    return absl::OkStatus();
  }
  // For an extension point's own built-ins: a name listed twice there is a programming error.
  void AddBuiltin(Info info) ABSL_LOCKS_EXCLUDED(mu_) {
    if (!Add(std::move(info)).ok()) std::abort();
  }
  // nullptr if unknown.
  const Info* Find(absl::string_view name) const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    auto it = entries_.find(name);
    return it == entries_.end() ? nullptr : it->second.get();
  }
  // Sorted.
  std::vector<std::string> Names() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    std::vector<std::string> out;
    for (const auto& [name, info] : entries_) out.push_back(name);
    return out;
  }
  // "'x' is not one of a, b, c": for a field error about an unknown name.
  std::string Unknown(absl::string_view name) const {
    return absl::StrCat("'", name, "' is not one of ", absl::StrJoin(Names(), ", "));
  }

 private:
  const std::string kind_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<const Info>, std::less<>> entries_ ABSL_GUARDED_BY(mu_);
};

// The process-wide registry of one extension point, made on first use and filled by
// `builtins` (the extension point's one list of built-in entries).
template <typename Info>
NameRegistry<Info>& GlobalRegistry(const char* kind, void (*builtins)(NameRegistry<Info>&)) {
  static NameRegistry<Info>* r = [&] {
    auto* reg = new NameRegistry<Info>(kind);
    builtins(*reg);
    return reg;
  }();
  return *r;
}

}  // namespace nasforge
