#include "bench/pareto_bench.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "core/pareto.h"

namespace nasforge {

absl::StatusOr<ParetoBenchResult> RunParetoBench(const ParetoBenchOptions& o) {
  if (o.candidates < 1) return absl::InvalidArgumentError("--candidates must be >= 1");
  if (o.objectives < 2 || o.objectives > 3) {
    return absl::InvalidArgumentError("--objectives must be 2 or 3");
  }
  std::mt19937_64 rng(o.seed);
  std::uniform_real_distribution<double> unit(0, 1);
  std::normal_distribution<double> noise(0, 1);
  // Flat columns: what a trial's metrics hold, without a map per candidate.
  const size_t n = static_cast<size_t>(o.candidates);
  std::vector<double> accuracy(n), macs(n), latency(n), params(n);
  for (size_t i = 0; i < n; ++i) {
    const double size = unit(rng);  // log-scale model size in [0, 1)
    macs[i] = std::exp(13 + 8 * size);
    params[i] = macs[i] / (50 + 20 * unit(rng));
    accuracy[i] = std::min(0.99, 0.6 + 0.3 * std::sqrt(size) + 0.03 * noise(rng));
    latency[i] = 0.2 + 4 * size * (0.7 + 0.6 * unit(rng));
  }
  v1::Objective acc, cost, lat;
  acc.set_metric("accuracy");
  acc.set_direction(v1::MAXIMIZE);
  cost.set_metric("macs");
  cost.set_direction(v1::MINIMIZE);
  lat.set_metric("latency_ms");
  lat.set_direction(v1::MINIMIZE);
  std::vector<v1::Objective> objectives = {acc, cost};
  if (o.objectives == 3) objectives.push_back(lat);
  v1::Constraint under;
  under.set_metric(o.objectives == 3 ? "params" : "latency_ms");
  under.set_upper(o.objectives == 3 ? 2e6 : 3.0);
  auto lookup = [&](size_t i, const std::string& name, double* v) {
    if (name == "accuracy")
      *v = accuracy[i];
    else if (name == "macs")
      *v = macs[i];
    else if (name == "latency_ms")
      *v = latency[i];
    else if (name == "params")
      *v = params[i];
    else
      return false;
    return true;
  };
  ParetoBenchResult r;
  r.candidates = o.candidates;
  std::vector<double> ms;
  for (int k = 0; k < std::max(1, o.repeats); ++k) {
    size_t considered = 0;
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<size_t> front = SelectPareto(n, lookup, objectives, {under}, &considered);
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    r.considered = static_cast<int64_t>(considered);
    r.front = static_cast<int64_t>(front.size());
  }
  std::sort(ms.begin(), ms.end());
  r.query_ms = ms[ms.size() / 2];
  return r;
}

}  // namespace nasforge
