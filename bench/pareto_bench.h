// QueryPareto's core at scale, in process: `candidates` synthetic trials whose accuracy, latency
// and params grow with their MACs (as in a NAS space: bigger is better and costlier, with
// noise), a constraint on latency, and the front over accuracy (max) plus 1 or 2 costs (min).
// Prints figures; not a test (`nasforge bench pareto`).
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"

namespace nasforge {

struct ParetoBenchOptions {
  int64_t candidates = 1'000'000;
  int objectives = 3;  // accuracy:max, macs:min (2), latency_ms:min (3)
  uint64_t seed = 1;
  int repeats = 3;  // the median of this many queries is reported
};

struct ParetoBenchResult {
  int64_t candidates = 0, considered = 0, front = 0;
  double query_ms = 0;  // SelectPareto over the candidates' metric maps, median of `repeats`
};

absl::StatusOr<ParetoBenchResult> RunParetoBench(const ParetoBenchOptions& options);

}  // namespace nasforge
