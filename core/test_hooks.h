// Named pause points for deterministic race tests: code marks the moment between a decision and
// its commit with TEST_PAUSE_POINT("component.moment"); a test installs a hook for that name (for
// example one that blocks until the test lets it go) and so holds one thread exactly there while
// another runs. With no hook installed a pause point costs one relaxed atomic load.
//
// The registry is process-wide by design (the code under test has no handle to pass it through);
// only tests install hooks. Thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <string>

namespace nasforge::test_hooks {

// Installs `fn` for `name` (replacing any earlier one); it runs on the thread that reaches the
// point, with whatever locks that thread holds.
void Set(const std::string& name, std::function<void()> fn);
void Clear(const std::string& name);
void ClearAll();
// Runs the hook of `name`, if any.
void Run(const char* name);

namespace internal {
extern std::atomic<int> installed;
}  // namespace internal

}  // namespace nasforge::test_hooks

#define TEST_PAUSE_POINT(name)                                                       \
  do {                                                                               \
    if (::nasforge::test_hooks::internal::installed.load(std::memory_order_relaxed)) \
      ::nasforge::test_hooks::Run(name);                                             \
  } while (0)
