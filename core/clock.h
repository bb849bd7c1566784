// Time source passed in (Envoy style): the controller's lease logic takes a Clock so tests can
// drive expiry with FakeClock instead of sleeping.
//
// Two readings: Now() is the wall clock (for timestamps people read) and Steady() a monotonic
// clock (for deadlines and ordering): a wall-clock step never expires or extends a lease.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace nasforge {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall clock.
  virtual absl::Time Now() const = 0;
  // Monotonic: only differences between two readings mean anything.
  virtual absl::Time Steady() const = 0;
};

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  absl::Time Steady() const override {
    return absl::UnixEpoch() +
           absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
  }
};

// Thread-safe manual clock for tests. Advance() moves both readings; StepWall() moves only the
// wall clock, as an NTP step or an operator's `date -s` would.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000))
      : nanos_(absl::ToUnixNanos(start)), steady_nanos_(0) {}
  absl::Time Now() const override { return absl::FromUnixNanos(nanos_.load()); }
  absl::Time Steady() const override { return absl::FromUnixNanos(steady_nanos_.load()); }
  void Advance(absl::Duration d) {
    nanos_ += absl::ToInt64Nanoseconds(d);
    steady_nanos_ += absl::ToInt64Nanoseconds(d);
  }
  void StepWall(absl::Duration d) { nanos_ += absl::ToInt64Nanoseconds(d); }

 private:
  std::atomic<int64_t> nanos_;
  std::atomic<int64_t> steady_nanos_;
};

}  // namespace nasforge
