// Checks for numeric flags with messages a person can act on ("--runs: 'abc' is not a number",
// "--runs: 0 must be >= 1"); CLI11's range validators print the double range instead.
#pragma once

#include <string>

#include "CLI/CLI.hpp"

namespace nasforge::cli {

// An integer >= `min`.
CLI::Validator IntAtLeast(long long min);
// A finite number > 0.
CLI::Validator PositiveReal();

}  // namespace nasforge::cli
