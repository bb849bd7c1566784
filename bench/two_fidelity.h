// Successive halving against full-fidelity random search on a tabular benchmark with two
// fidelities (e.g. NAS-Bench-201's 12-epoch and 200-epoch columns), at equal simulated cost.
// Costs are in "full trainings": one low-fidelity evaluation costs `low_cost`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/table.h"

namespace nasforge {

struct TwoFidelityOptions {
  std::string low_column;     // fitness at the cheap fidelity
  std::string high_column;    // fitness at full fidelity (used when no seeds column)
  std::string seeds_column;   // optional: ';'-separated per-seed full-fidelity fitness (noisy)
  std::string report_column;  // what is reported for the chosen candidate (e.g. test accuracy)
  double low_cost = 12.0 / 200.0;
  int low_count = 1200;  // candidates evaluated at the low fidelity
  int promote = 28;      // the best of them, evaluated at full fidelity
  int runs = 100;
  uint64_t seed = 1;
  // Who picks the low-fidelity candidates: "random" (uniform, distinct rows) or a job strategy
  // ("evolution", "bo") asked for candidates of the NAS-Bench-201 cell space and told their
  // low-fidelity fitness; rows are found by `key_column`.
  std::string low_strategy = "random";
  std::string key_column = "arch_str";
};

struct RunSummary {
  double mean = 0;
  double stddev = 0;
  double cost = 0;  // full trainings per run
  int queries = 0;  // full-fidelity evaluations per run
};

struct TwoFidelityResult {
  RunSummary full_fidelity;  // random search with the same cost
  RunSummary successive_halving;
  double best_accuracy_delta_pp = 0;  // successive halving minus full fidelity, equal cost
  // Full trainings random search needs to match successive halving's mean, over SH's cost.
  // `compute_ratio_is_lower_bound` when even the whole table does not match it.
  double compute_ratio = 0;
  bool compute_ratio_is_lower_bound = false;
  int full_queries_to_match = 0;
};

absl::StatusOr<TwoFidelityResult> RunTwoFidelityBench(const Table& table,
                                                      const TwoFidelityOptions& options);

}  // namespace nasforge
