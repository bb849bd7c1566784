#include "core/test_hooks.h"

#include <map>
#include <memory>

#include "absl/synchronization/mutex.h"

namespace nasforge::test_hooks {
namespace internal {
std::atomic<int> installed{0};
}  // namespace internal

namespace {
absl::Mutex& Mu() {
  static absl::Mutex* mu = new absl::Mutex;
  return *mu;
}
std::map<std::string, std::shared_ptr<std::function<void()>>>& Hooks() {
  static auto* hooks = new std::map<std::string, std::shared_ptr<std::function<void()>>>;
  return *hooks;
}
}  // namespace

void Set(const std::string& name, std::function<void()> fn) {
  absl::MutexLock l(&Mu());
  Hooks()[name] = std::make_shared<std::function<void()>>(std::move(fn));
  internal::installed.store(static_cast<int>(Hooks().size()));
}

void Clear(const std::string& name) {
  absl::MutexLock l(&Mu());
  Hooks().erase(name);
  internal::installed.store(static_cast<int>(Hooks().size()));
}

void ClearAll() {
  absl::MutexLock l(&Mu());
  Hooks().clear();
  internal::installed.store(0);
}

void Run(const char* name) {
  std::shared_ptr<std::function<void()>> fn;
  {
    absl::MutexLock l(&Mu());
    auto it = Hooks().find(name);
    if (it == Hooks().end()) return;
    fn = it->second;
  }
  (*fn)();
}

}  // namespace nasforge::test_hooks
