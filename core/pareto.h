// Pareto math, the one place for it: dominance (plain and constrained), the non-dominated
// subset, constrained non-dominated sorting with crowding distances (NSGA-II), 2-D hypervolume
// (benches, dashboards), the constrained front over named metrics (QueryPareto), and parsing of
// the objective / constraint syntax the CLI and job specs use ("accuracy:max", "latency_ms<=5").
// Every function minimises every coordinate; negate what is maximised.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
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

// Deb's constrained dominance: a feasible point (violation 0) beats an infeasible one, two
// infeasible ones compare by total violation, two feasible ones by Dominates.
bool ConstrainedDominates(const std::vector<double>& a, double a_violation,
                          const std::vector<double>& b, double b_violation);

// Constrained non-dominated sort (Deb et al. 2002): the fronts, best first, each in the order
// its points were found. `violations` (empty: all feasible) parallels `points`. O(n^2 * m).
std::vector<std::vector<size_t>> NonDominatedSort(const std::vector<std::vector<double>>& points,
                                                  const std::vector<double>& violations = {});

// Crowding distance of each point of `front` (indices into `points`; all one front), parallel to
// it: per coordinate, the normalised gap between its neighbours; infinite at the extremes.
// Sorts `front` in place (the order it ends in is unspecified).
std::vector<double> CrowdingDistances(const std::vector<std::vector<double>>& points,
                                      std::vector<size_t>& front);

// The area dominated by 2-D points (both coordinates minimised) and bounded by `ref`; points not
// better than `ref` in both coordinates add nothing.
double Hypervolume2D(std::vector<std::pair<double, double>> points, std::pair<double, double> ref);

// The 2-D front as a staircase: the non-dominated points whose second coordinate is below
// `below_second`, sorted by the first coordinate ascending (so the second strictly descends).
// Of equal points one is kept. O(n log n). What a 2-D expected-improvement sweep walks.
std::vector<std::pair<double, double>> Staircase2D(std::vector<std::pair<double, double>> points,
                                                   double below_second);

// Indices of the non-dominated points (all coordinates minimised), in input order.
// Duplicated points are all kept. A lexicographic sweep: O(n log n) in 2-D, O(n log n + n * f * m)
// otherwise (f: the front's size); NaN coordinates fall back to the O(n^2 * m) pairwise check.
std::vector<size_t> NonDominated(const std::vector<std::vector<double>>& points);
// The same over `n` points of `m` coordinates stored row by row in `flat` (n * m values).
std::vector<size_t> NonDominatedFlat(const std::vector<double>& flat, size_t m);

// Candidates that meet all constraints and have every objective metric, then the
// non-dominated ones among them, sorted by the first objective (best first).
// `considered` (optional) receives how many met the constraints.
std::vector<size_t> SelectPareto(const std::vector<const MetricMap*>& candidates,
                                 const std::vector<v1::Objective>& objectives,
                                 const std::vector<v1::Constraint>& constraints,
                                 size_t* considered = nullptr);
// The same over `n` candidates whose metrics `lookup(i, name, &value)` finds (false: missing),
// e.g. straight from the trials' protobuf maps, without copying them.
using MetricLookup = absl::FunctionRef<bool(size_t, const std::string&, double*)>;
std::vector<size_t> SelectPareto(size_t n, MetricLookup lookup,
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
