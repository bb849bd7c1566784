// What a latency measurement is asked for and what it reports. Declares nothing from LibTorch
// (the measurement itself is in torch_latency.cc).
#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"

namespace nasforge {

// One measurement setting. The cache key of a measurement is the architecture hash plus the
// hardware profile and these fields (threads is the profile's).
struct LatencySpec {
  int batch = 1;
  std::string precision = "fp32";  // fp32 | bf16 | fp16 (the whole model in that dtype)
  bool channels_last = false;      // NHWC weights and input (conv nets; faster with tensor cores)
  // CUDA only: capture one forward pass as a CUDA graph and time its replays: the latency
  // without the host's kernel-launch overhead (what a serving stack using graphs sees).
  bool cuda_graph = false;
};

// Valid precisions and batch range; a bad one is INVALID_ARGUMENT naming `path`.
absl::Status ValidateLatencySpec(const LatencySpec& spec, const std::string& path);

struct LatencyBudget {
  int warmup_runs = 10;         // at least this many untimed runs ...
  double warmup_seconds = 0.2;  // ... and at least this long (clocks ramp up, caches fill)
  int min_runs = 30;            // timed runs before the spread is looked at ...
  double min_seconds = 0.5;     // ... and timed seconds (host jitter averages out)
  int max_runs = 300;
  double max_seconds = 3.0;     // of timed runs (also ends the warm-up of a very slow model)
  double target_spread = 0.05;  // stop once (p75 - p25) / p50 is below this
};

struct LatencyStats {
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, mean_ms = 0, min_ms = 0;
  double spread = 0;  // (p75 - p25) / p50
  int runs = 0;
  double seconds = 0;  // wall time of the whole measurement, warm-up included
  std::string timer;   // "cuda_events" | "cuda_graph" | "steady_clock"
};

// The metrics a trial reports for a measurement: latency_ms (p50), latency_p90_ms,
// latency_p99_ms, latency_spread, latency_runs.
void AddLatencyMetrics(const LatencyStats& s, std::map<std::string, double>* metrics);

// p-th quantile (0..1) by linear interpolation; REQUIRES !v.empty().
double Quantile(std::vector<double> v, double q);

}  // namespace nasforge
