// Search strategies on a tabular benchmark, in process, with the real strategy code: each run
// asks a fresh strategy for `queries` candidates, answers each from the table (one seed's
// fitness when a seeds column is given: a noisy run), and records the report column of the
// candidate with the best fitness so far; or, with two fidelities, screens each at the cheap one
// and trains to the end those the early-stopping rule lets through.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/tabular.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

struct StrategyBenchOptions {
  std::string strategy = "random";
  int queries = 100;
  int runs = 100;
  uint64_t seed = 1;
  // Objectives: fitness (as "accuracy", maximised); with `multi_objective`, params minimised too.
  bool multi_objective = false;
  // The fitness and report columns are minimised (an error, e.g. validation MSE): strategies
  // see the negated fitness; figures stay in the table's units.
  bool minimize = false;
  v1::Strategy strategy_options;  // population, sample size, ... (name is `strategy`)
  v1::SearchSpace space;          // default: the NAS-Bench-201 cell space (C=16, N=5)
  std::vector<int> checkpoints;   // queries at which to summarise; default 10,25,50,100,...
  // Two fidelities (`low_epochs` > 0): a candidate first trains `low_epochs` of `epochs` (its
  // value there: the oracle's second report column), the job's early-stopping rule decides as
  // the controller does (core/early_stopping.h Decide, over the run's trials), and a survivor
  // trains to the end (its fitness, one seed's). Queries then count full trainings: a stopped
  // candidate costs low_epochs / epochs of one, and a run's result at q is the best among the
  // candidates finished within q.
  int low_epochs = 0;
  int epochs = 0;
  v1::EarlyStopping early_stopping;  // rule "" with two fidelities: the strategy's default
  // A diagnostic for noisy tables: a run's result is the best *mean* (the table's, not what the
  // run saw) among the candidates it evaluated, i.e. what it would report if it could tell its
  // lucky draws from its good configurations. The protocol's result is `false`.
  bool oracle_incumbent = false;
};

struct Checkpoint {
  int queries = 0;
  double mean = 0, stddev = 0;  // report column of the best-fitness candidate over runs
  double stderr_mean = 0;       // stddev / sqrt(runs)
  double regret = 0;            // |table's best report value - mean|
  double hypervolume = 0;       // multi-objective: mean over runs (see .cc for the reference)
};

struct StrategyBenchResult {
  std::string strategy;
  std::vector<Checkpoint> checkpoints;
  std::vector<double> curve;               // mean best-so-far report value after each query
  double ask_ms_mean = 0, ask_ms_p99 = 0;  // time per Ask (suggestion), all runs
  double hv_reference_accuracy = 0, hv_reference_params = 0;
  double table_best = 0;  // the best report value of any row (max, or min with `minimize`)
  double candidates_mean = 0, promoted_mean = 0;  // per run: proposals, and those trained fully
};

absl::StatusOr<StrategyBenchResult> RunStrategyBench(const TabularOracle& oracle,
                                                     const StrategyBenchOptions& o);

// Time per suggestion after `observations` random results have been told (what a long job
// costs the controller). Returns milliseconds, mean over `asks` suggestions.
absl::StatusOr<double> SuggestionLatencyMs(const TabularOracle& oracle,
                                           const StrategyBenchOptions& o, int observations,
                                           int asks);

}  // namespace nasforge
