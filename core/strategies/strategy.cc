#include "core/strategies/strategy.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "core/strategies/registry.h"

namespace nasforge {

absl::Status ValidateStrategy(const v1::JobSpec& spec) {
  const auto& s = spec.strategy();
  const StrategyInfo* info = Strategies().Find(s.name());
  if (info == nullptr) return FieldError("strategy.name", Strategies().Unknown(s.name()));
  // Options any strategy may use, checked alike for all.
  if (s.population() < 0 || s.population() == 1 || s.population() > 10000) {
    return FieldError("strategy.population", absl::StrCat(s.population(), " is not in [2, 10000]"));
  }
  if (s.sample_size() < 0 || (s.population() > 0 && s.sample_size() > s.population())) {
    return FieldError("strategy.sample_size",
                      absl::StrCat(s.sample_size(), " must be in [1, population]"));
  }
  if (s.initial_samples() < 0) return FieldError("strategy.initial_samples", "must be >= 0");
  if (s.max_model_points() < 0 || (s.max_model_points() > 0 && s.max_model_points() < 10)) {
    return FieldError("strategy.max_model_points", "must be >= 10");
  }
  return info->validate ? info->validate(spec) : absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Strategy>> NewStrategy(const v1::JobSpec& spec, uint64_t position) {
  const std::string& name = spec.strategy().name().empty() ? "random" : spec.strategy().name();
  const StrategyInfo* info = Strategies().Find(name);
  if (info == nullptr) {
    return FieldError("strategy.name", absl::StrCat("'", name, "' is not registered"));
  }
  return info->create(spec, position);
}

std::string CanonicalStrategyName(absl::string_view name) {
  std::string n = absl::AsciiStrToLower(name);
  return n == "rea" ? "evolution" : n;
}

void ApplyStrategyDefaults(v1::JobSpec* spec) {
  if (spec->strategy().name().empty()) spec->mutable_strategy()->set_name("random");
  spec->mutable_strategy()->set_name(CanonicalStrategyName(spec->strategy().name()));
  const StrategyInfo* info = Strategies().Find(spec->strategy().name());
  if (info != nullptr && info->defaults) info->defaults(spec);
}

std::optional<std::vector<double>> OrientedObjectives(const v1::JobSpec& spec,
                                                      const v1::Trial& trial) {
  if (trial.state() != v1::TRIAL_SUCCEEDED) return std::nullopt;
  std::vector<double> v;
  for (const auto& o : spec.objectives()) {
    auto it = trial.metrics().find(o.metric());
    if (it == trial.metrics().end() || !std::isfinite(it->second)) return std::nullopt;
    v.push_back(o.direction() == v1::MINIMIZE ? -it->second : it->second);
  }
  return v;
}

double ConstraintViolation(const v1::JobSpec& spec, const v1::Trial& trial) {
  double total = 0;
  for (const auto& c : spec.constraints()) {
    auto it = trial.metrics().find(c.metric());
    if (it == trial.metrics().end()) continue;
    double x = it->second;
    if (c.has_upper() && x > c.upper()) {
      total += (x - c.upper()) / std::max(1e-12, std::abs(c.upper()));
    }
    if (c.has_lower() && x < c.lower()) {
      total += (c.lower() - x) / std::max(1e-12, std::abs(c.lower()));
    }
  }
  return total;
}

Proposal Exhausted(int attempts) {
  Proposal p;
  p.kind = Proposal::Kind::kDone;
  p.reason = absl::StrCat("search space exhausted: ", attempts,
                          " consecutive proposals were duplicates or over a cost bound; widen "
                          "the space or relax macs/params constraints");
  return p;
}

Proposal ProposeGenes(const v1::SearchSpace& space, std::mt19937_64& rng,
                      const Admissible& admissible, int max_attempts,
                      const std::function<Genes()>& make) {
  for (int i = 0; i < max_attempts; ++i) {
    v1::Architecture arch = DecodeArchitecture(space, make());
    if (admissible(arch)) return {Proposal::Kind::kCandidate, std::move(arch), ""};
  }
  return SampleAdmissible(space, rng, admissible, max_attempts);
}

std::optional<Scored> ScoreTrial(const v1::JobSpec& spec, const v1::Trial& trial) {
  auto obj = OrientedObjectives(spec, trial);
  if (!obj) return std::nullopt;
  auto genes = EncodeArchitecture(spec.search_space(), trial.architecture());
  if (!genes) return std::nullopt;
  return Scored{std::move(*genes), std::move(*obj)};
}

std::vector<double> ParegoScalarization(const std::vector<const std::vector<double>*>& objs,
                                        std::mt19937_64& rng) {
  const size_t m = objs.empty() ? 0 : objs[0]->size();
  std::vector<double> lo(m, 1e300), hi(m, -1e300), lambda(m);
  for (const auto* o : objs) {
    for (size_t k = 0; k < m; ++k) {
      lo[k] = std::min(lo[k], (*o)[k]);
      hi[k] = std::max(hi[k], (*o)[k]);
    }
  }
  double sum = 0;
  for (auto& l : lambda) sum += (l = std::exponential_distribution<double>(1.0)(rng));
  for (auto& l : lambda) l /= sum;
  std::vector<double> y;
  y.reserve(objs.size());
  for (const auto* o : objs) {
    double worst = 0, total = 0;
    for (size_t k = 0; k < m; ++k) {
      const double gap = hi[k] > lo[k] ? (hi[k] - (*o)[k]) / (hi[k] - lo[k]) : 0;
      worst = std::max(worst, lambda[k] * gap);
      total += lambda[k] * gap;
    }
    y.push_back(-(worst + 0.05 * total));
  }
  return y;
}

Proposal SampleAdmissible(const v1::SearchSpace& space, std::mt19937_64& rng,
                          const Admissible& admissible, int max_attempts) {
  for (int i = 0; i < max_attempts; ++i) {
    v1::Architecture arch = DecodeArchitecture(space, SampleGenes(space, rng));
    if (admissible(arch)) return {Proposal::Kind::kCandidate, std::move(arch), ""};
  }
  return Exhausted(max_attempts);
}

}  // namespace nasforge
