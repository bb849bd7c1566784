// Runs a peer's Python script (bench/peers/*.py, Debian's /usr/bin/python3) for a side-by-side
// figure and returns the one JSON object it prints, or why it failed (missing script, non-zero
// exit with the command, no JSON).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace nasforge::cli {

// `flag` names the option the script path came from; `hint` is added to a failure (which
// package to install).
absl::StatusOr<nlohmann::json> RunPeerScript(const std::string& script, const std::string& flag,
                                             const std::vector<std::string>& args,
                                             const std::string& hint);

}  // namespace nasforge::cli
