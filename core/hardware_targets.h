// Hardware targets of a job (JobSpec.hardware_targets): where each candidate's latency is
// measured, how its metrics are named (latency_ms@TARGET), the cache key of a measurement, and
// the job's bounds on those metrics. Used by the job-spec validation, the controller's
// measurement routing and the Pareto queries.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

// The latency metrics a target gives a trial, as base names (the trial's metric is
// BASE@TARGET): p50, p90 and p99 of the measured forward passes.
inline constexpr const char* kTargetLatencyMetrics[] = {"latency_ms", "latency_p90_ms",
                                                        "latency_p99_ms"};

// "latency_ms@h200-b32" -> base "latency_ms", target "h200-b32". False for a name without '@'.
bool SplitTargetMetric(absl::string_view name, std::string* base, std::string* target);
std::string TargetMetric(absl::string_view base, absl::string_view target);
// A well-formed target metric name: one of kTargetLatencyMetrics, '@', a valid target name.
bool IsTargetMetric(absl::string_view name);
// Target names: 1-64 of [A-Za-z0-9_.-].
bool ValidTargetName(absl::string_view name);

// name = profile, batch_size = 1, precision = "fp32", runtime = "libtorch" where unset.
void ApplyHardwareTargetDefaults(v1::JobSpec* spec);
// The targets themselves (profile required, names unique, batch 1..4096, threads 0..1024,
// a registered runtime with one of its precisions and options: latency_runtimes.h; none for
// tabular jobs) and every objective or constraint naming a
// target metric names one of them. INVALID_ARGUMENT with the field path.
absl::Status ValidateHardwareTargets(const v1::JobSpec& spec);
// For a query: `metric` (a base name) on `target`, which must be one of the job's targets; the
// error names `field` and lists the job's targets.
absl::Status CheckTargetExists(const v1::JobSpec& spec, absl::string_view target,
                               absl::string_view field);

// The cache key of a measurement of `arch_hash` on `target`: hash, profile and the setting
// (LatencySetting: batch, precision, runtime, threads, options). The target's name is not part
// of it: two jobs naming the same setting differently share measurements.
std::string LatencyKey(absl::string_view arch_hash, const v1::HardwareTarget& target);
std::string LatencyKey(const v1::LatencyMeasurement& m);

// The job's constraints on `target`'s metrics, with the metric's base name (checked against a
// measurement before training).
std::vector<v1::Constraint> TargetBounds(const v1::JobSpec& spec, absl::string_view target);
// The first of `bounds` that `m` breaks, as "latency_ms@cpu-1t = 3.21 > upper 2"; empty if none.
std::string BrokenBound(const std::vector<v1::Constraint>& bounds, const v1::LatencyMeasurement& m);

// Resolves `name` for a query on one profile: with `target` non-empty, a base latency metric
// (latency_ms, latency_p90_ms, latency_p99_ms) becomes BASE@target; other names are unchanged.
std::string ResolveForTarget(const std::string& name, const std::string& target);

}  // namespace nasforge
