// Which choices and hyperparameters matter for one objective, from a job's observations:
// a first-order functional-ANOVA estimate read directly off the results. For each decision of
// the space (the kind's choices and each hyperparameter), the trials where it is active are
// grouped by its value (ordered decisions with more than 10 values in 10 equal-count bins), and
// its importance is the share of the objective's variance the groups' means explain, corrected
// for the number of groups (omega squared: (SS_between - (k - 1) MS_within) / (SS_total +
// MS_within), at least 0); the shares are normalised to sum to 1. `nasforge importance JOB`
// prints them; the dashboard's importance panel shows them with the value-vs-objective points.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

struct DecisionImportance {
  std::string name;       // "params.learning_rate", "layers[0].units", ...
  double importance = 0;  // share of the explained variance, the decisions summing to 1
  double raw = 0;         // omega squared before normalising
  int observations = 0;   // trials where the decision is active
  std::string best;       // the value (or bin) with the best mean
  bool ordered = false;   // a number axis (log-scaled when the parameter is log)
  bool log = false;
};

// One point for a value-vs-objective plot: the decision's value as a number (ordered) or its
// text (categorical), and the trial's objective.
struct ImportancePoint {
  std::string decision;
  double x = 0;
  std::string label;
  double y = 0;
};

struct ImportanceReport {
  std::string metric;
  int trials = 0;                             // succeeded trials with the metric
  std::vector<DecisionImportance> decisions;  // most important first
  std::vector<ImportancePoint> points;
};

// REQUIRES: ValidateSearchSpace(space).ok(). Uses the succeeded trials that report `metric`
// and lie in the space; FAILED_PRECONDITION when fewer than 4 do. `maximize` says which group
// mean is the best. With `epoch` > 0, the value is instead each succeeded or early-stopped
// trial's validation value at that epoch of its learning curve (where an early-stopping rule
// compared them: the trials it stopped count too), larger being better.
absl::StatusOr<ImportanceReport> ComputeImportance(const v1::SearchSpace& space,
                                                   const std::vector<v1::Trial>& trials,
                                                   const std::string& metric, bool maximize,
                                                   int epoch = 0);

}  // namespace nasforge
