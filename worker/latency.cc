#include "worker/latency.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"

namespace nasforge {

absl::Status ValidateLatencySpec(const LatencySpec& spec, const std::string& path) {
  if (spec.batch < 1 || spec.batch > 4096) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ".batch: must be within [1, 4096], got ", spec.batch));
  }
  if (spec.precision != "fp32" && spec.precision != "bf16" && spec.precision != "fp16") {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ".precision: must be fp32, bf16 or fp16, got '", spec.precision, "'"));
  }
  return absl::OkStatus();
}

void AddLatencyMetrics(const LatencyStats& s, std::map<std::string, double>* m) {
  (*m)["latency_ms"] = s.p50_ms;
  (*m)["latency_p90_ms"] = s.p90_ms;
  (*m)["latency_p99_ms"] = s.p99_ms;
  (*m)["latency_spread"] = s.spread;
  (*m)["latency_runs"] = s.runs;
}

double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  double pos = q * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(pos);
  size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

}  // namespace nasforge
