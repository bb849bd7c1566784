// Search strategies by name: the one place a strategy is registered. Each entry has the
// strategy's factory, its own option checks and its defaults; ValidateJobSpec, NewStrategy, the
// CLI's help and the error for an unknown name all read this table.
//
// Adding a strategy: its own file with a factory (core/strategies/NAME_strategy.cc), its test,
// and one line in Builtins() in registry.cc. Tests and embedders may Add() more at run time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/registry.h"
#include "core/strategies/strategy.h"

namespace nasforge {

struct StrategyInfo {
  std::string name;     // spec.strategy.name
  std::string summary;  // one line, for help texts
  // Builds the strategy for a validated spec, resuming at `position` (Job.next_sample).
  std::function<absl::StatusOr<std::unique_ptr<Strategy>>(const v1::JobSpec&, uint64_t)> create;
  // Checks what only this strategy needs (the options every strategy shares are checked for
  // all); errors name the field. May be empty.
  std::function<absl::Status(const v1::JobSpec&)> validate;
  // Fills this strategy's defaults into a submitted spec (stored, so users see them). May be
  // empty.
  std::function<void(v1::JobSpec*)> defaults;
};

using StrategyRegistry = NameRegistry<StrategyInfo>;

// The process-wide registry, holding the built-in strategies.
StrategyRegistry& Strategies();

}  // namespace nasforge
