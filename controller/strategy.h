// The ask/tell interface every search strategy implements. A strategy's state is rebuilt from
// the job's stored history: construct it with the job's spec and stored position, then Tell()
// every finished trial in id order. Same seed and same results give the same proposals.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

class Strategy {
 public:
  virtual ~Strategy() = default;
  // Proposes the next candidate. `admissible` says whether a proposal may be used (not a
  // duplicate, within the cost bounds); a strategy proposes until one is admissible or it has
  // tried `max_attempts` times (nullopt: nothing new to propose).
  virtual std::optional<v1::Architecture> Ask(
      const std::function<bool(const v1::Architecture&)>& admissible, int max_attempts) = 0;
  // A trial reached a terminal state (its metrics and curve are final).
  virtual void Tell(const v1::Trial& trial) = 0;
  // Opaque position stored with the job (Job.next_sample) so a restart resumes the sequence.
  virtual uint64_t position() const = 0;
};

// The strategy named by spec.strategy.name, resuming at `position`.
// REQUIRES: ValidateJobSpec(spec).ok().
absl::StatusOr<std::unique_ptr<Strategy>> NewStrategy(const v1::JobSpec& spec, uint64_t position);

}  // namespace nasforge
