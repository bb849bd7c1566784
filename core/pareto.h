// Pareto math over named metrics: dominance, the non-dominated subset, and parsing of the
// objective / constraint syntax the CLI and job specs use ("accuracy:max", "latency_ms<=5").
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

using MetricMap = std::map<std::string, double, std::less<>>;

// Metric names the system produces. Objectives and constraints must use one of these.
bool IsKnownMetric(absl::string_view name);
std::string KnownMetricsList();

// True when `a` is no worse than `b` in every coordinate and better in one (all minimised).
bool Dominates(const std::vector<double>& a, const std::vector<double>& b);

// Indices of the non-dominated points (all coordinates minimised), in input order.
// Duplicated points are all kept. O(n^2 * m): fine for fronts of a job's size (<= 1e4).
std::vector<size_t> NonDominated(const std::vector<std::vector<double>>& points);

// Candidates that meet all constraints and have every objective metric, then the
// non-dominated ones among them, sorted by the first objective (best first).
// `considered` (optional) receives how many met the constraints.
std::vector<size_t> SelectPareto(const std::vector<const MetricMap*>& candidates,
                                 const std::vector<v1::Objective>& objectives,
                                 const std::vector<v1::Constraint>& constraints,
                                 size_t* considered = nullptr);

bool MeetsConstraints(const MetricMap& m, const std::vector<v1::Constraint>& constraints);

// "accuracy:max" / "macs:min" (also "maximize"/"minimize").
absl::StatusOr<v1::Objective> ParseObjective(absl::string_view text);
// "latency_ms<=5", "accuracy>=0.9", "macs<2e6". Strict and non-strict are treated alike.
absl::StatusOr<v1::Constraint> ParseConstraint(absl::string_view text);

// Validates objectives/constraints; `path` prefixes field names in errors.
absl::Status ValidateObjectives(const google::protobuf::RepeatedPtrField<v1::Objective>& objs,
                                absl::string_view path);
absl::Status ValidateConstraints(const google::protobuf::RepeatedPtrField<v1::Constraint>& cons,
                                 absl::string_view path);

}  // namespace nasforge
