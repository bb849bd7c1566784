// What a worker may report: checked before the controller records anything, so a buggy or
// hostile worker cannot put NaN into the median rule, 1e308 onto the Pareto front, or its own
// cost figures in place of the controller's.
#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"
#include "google/protobuf/map.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

inline constexpr int kMaxReportedMetrics = 64;
inline constexpr size_t kMaxMetricNameLength = 64;

// The largest accuracy the job's workers may report: 1 (FRACTION) or 100 (PERCENT; the default
// for tabular jobs, whose benchmark tables are in percent, and for jobs stored before the field).
double AccuracyMax(const v1::JobSpec& spec);

// Metrics only the controller sets (computed from the architecture: macs, params,
// train_memory_bytes); a worker's are ignored.
bool IsControllerMetric(const std::string& name);

// Checks a successful trial's metrics: at most kMaxReportedMetrics names of [A-Za-z0-9_.-] up to
// kMaxMetricNameLength characters; every value finite; accuracy within [0, AccuracyMax];
// latency_ms > 0; epochs and *_seconds / *_bytes values >= 0. INVALID_ARGUMENT names the field
// ("metrics[accuracy]").
absl::Status ValidateReportedMetrics(const v1::JobSpec& spec,
                                     const google::protobuf::Map<std::string, double>& metrics);

// Checks a progress point's values (its epoch is the JobManager's to check against the trial):
// value (validation accuracy) within [0, AccuracyMax], loss and seconds finite and >= 0.
absl::Status ValidateCurvePoint(const v1::JobSpec& spec, const v1::CurvePoint& point);

}  // namespace nasforge
