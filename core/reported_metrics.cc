#include "core/reported_metrics.h"

#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/status.h"

namespace nasforge {
namespace {

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > kMaxMetricNameLength) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

double AccuracyMax(const v1::JobSpec& spec) {
  return spec.accuracy_scale() == v1::FRACTION ? 1 : 100;
}

bool IsControllerMetric(const std::string& name) {
  return name == "macs" || name == "params" || name == "train_memory_bytes";
}

absl::Status ValidateReportedMetrics(const v1::JobSpec& spec,
                                     const google::protobuf::Map<std::string, double>& metrics) {
  if (metrics.size() > kMaxReportedMetrics) {
    return FieldError("metrics", absl::StrCat(metrics.size(), " metrics; at most ",
                                              kMaxReportedMetrics, " are accepted"));
  }
  const double acc_max = AccuracyMax(spec);
  for (const auto& [name, v] : metrics) {
    if (!ValidName(name)) {
      return FieldError("metrics",
                        absl::StrCat("'", name.substr(0, kMaxMetricNameLength),
                                     "' is not a metric name (1-64 of A-Z a-z 0-9 _ . -)"));
    }
    const std::string field = absl::StrCat("metrics[", name, "]");
    if (!std::isfinite(v)) return FieldError(field, "must be a finite number");
    if (name == "accuracy" && (v < 0 || v > acc_max)) {
      return FieldError(
          field, absl::StrCat(v, " is outside [0, ", acc_max, "] (the job's accuracy_scale is ",
                              v1::AccuracyScale_Name(spec.accuracy_scale()), ")"));
    }
    if (name == "latency_ms" && v <= 0) return FieldError(field, "must be > 0");
    if ((name == "epochs" || absl::EndsWith(name, "_seconds") || absl::EndsWith(name, "_bytes")) &&
        v < 0) {
      return FieldError(field, "must be >= 0");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateCurvePoint(const v1::JobSpec& spec, const v1::CurvePoint& p) {
  for (auto [v, name] : {std::pair{p.value(), "point.value"},
                         {p.loss(), "point.loss"},
                         {p.seconds(), "point.seconds"}}) {
    if (!std::isfinite(v)) return FieldError(name, "must be a finite number");
  }
  const double acc_max = AccuracyMax(spec);
  if (p.value() < 0 || p.value() > acc_max) {
    return FieldError("point.value",
                      absl::StrCat(p.value(), " is outside [0, ", acc_max,
                                   "] (validation accuracy on the job's accuracy_scale)"));
  }
  if (p.loss() < 0) return FieldError("point.loss", "must be >= 0");
  if (p.seconds() < 0) return FieldError("point.seconds", "must be >= 0");
  return absl::OkStatus();
}

}  // namespace nasforge
