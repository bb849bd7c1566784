// EfficientNet compound scaling as a strategy. Step 1: every (alpha, beta, gamma) of the grid
// with alpha * beta^2 * gamma^2 within `tolerance` of `target` scales the base at phi = 1 (plus
// the base itself, phi = 0). Once all step-1 results are in (kWait until then), step 2 scales
// phi = 2..max_phi with the triple whose phi = 1 model scored best on the first objective.
// Deterministic: the proposal sequence depends only on the spec and the results.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/scaling.h"
#include "core/status.h"
#include "core/strategies/strategy.h"

namespace nasforge {
namespace {

struct Triple {
  double alpha, beta, gamma;
};

class CompoundScalingStrategy final : public Strategy {
 public:
  CompoundScalingStrategy(v1::JobSpec spec, v1::Architecture base, std::vector<Triple> grid,
                          uint64_t position)
      : spec_(std::move(spec)),
        base_(std::move(base)),
        grid_(std::move(grid)),
        position_(position) {
    const auto& c = spec_.strategy().compound_scaling();
    max_phi_ = c.max_phi() > 0 ? c.max_phi() : 3;
    divisor_ = c.width_divisor() > 0 ? c.width_divisor() : 8;
  }

  Proposal Ask(const Admissible& admissible, int max_attempts) override {
    // Step 0/1: the base, then the grid at phi = 1.
    while (position_ < grid_.size() + 1) {
      v1::Architecture a = Step1(position_);
      ++position_;
      if (admissible(a)) return {Proposal::Kind::kCandidate, std::move(a), ""};
    }
    // Step 1 must be complete before choosing the triple.
    for (size_t i = 0; i <= grid_.size(); ++i) {
      if (!done_.count(Step1Hash(i))) {
        return {Proposal::Kind::kWait, {}, "waiting for the phi = 1 grid results"};
      }
    }
    const size_t best = BestTriple();
    while (position_ < grid_.size() + 1 + (max_phi_ - 1)) {
      int phi = static_cast<int>(position_ - grid_.size()) + 1;  // 2..max_phi
      ++position_;
      auto a = Scale(grid_[best], phi);
      if (a.ok() && admissible(*a)) return {Proposal::Kind::kCandidate, std::move(*a), ""};
    }
    Proposal p;
    p.kind = Proposal::Kind::kDone;
    p.reason = absl::StrCat("compound scaling finished: alpha=", grid_[best].alpha,
                            " beta=", grid_[best].beta, " gamma=", grid_[best].gamma,
                            " scaled to phi=", max_phi_);
    return p;
  }

  void Tell(const v1::Trial& trial) override {
    const std::string h = ArchHash(trial.architecture());
    done_.insert(h);
    auto obj = OrientedObjectives(spec_, trial);
    if (obj) score_[h] = (*obj)[0];
  }
  uint64_t position() const override { return position_; }

 private:
  absl::StatusOr<v1::Architecture> Scale(const Triple& t, int phi) const {
    return ScaleArchitecture(base_, std::pow(t.alpha, phi), std::pow(t.beta, phi),
                             std::pow(t.gamma, phi), divisor_);
  }
  // Hashes of the step-1 proposals, computed once (Ask checks them while it waits).
  const std::string& Step1Hash(size_t i) {
    if (step1_hashes_.empty()) {
      for (size_t k = 0; k <= grid_.size(); ++k) step1_hashes_.push_back(ArchHash(Step1(k)));
    }
    return step1_hashes_[i];
  }
  v1::Architecture Step1(size_t i) const {
    if (i == 0) return NormalizedArchitecture(base_);
    auto a = Scale(grid_[i - 1], 1);
    return a.ok() ? *a : NormalizedArchitecture(base_);
  }
  size_t BestTriple() {
    size_t best = 0;
    double best_score = -1e300;
    for (size_t i = 0; i < grid_.size(); ++i) {
      auto it = score_.find(Step1Hash(i + 1));
      if (it != score_.end() && it->second > best_score) best_score = it->second, best = i;
    }
    return best;
  }

  const v1::JobSpec spec_;
  const v1::Architecture base_;
  const std::vector<Triple> grid_;
  int max_phi_ = 3, divisor_ = 8;
  uint64_t position_;
  std::set<std::string> done_;
  std::vector<std::string> step1_hashes_;
  std::map<std::string, double> score_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Strategy>> NewCompoundScalingStrategy(const v1::JobSpec& spec,
                                                                     uint64_t position) {
  const auto& c = spec.strategy().compound_scaling();
  const std::string p = "strategy.compound_scaling";
  v1::Architecture base;
  if (c.has_base()) {
    NF_RETURN_IF_ERROR(ValidateArchitecture(c.base(), p + ".base"));
    if (KindName(c.base()) != KindName(spec.search_space())) {
      return FieldError(p + ".base", absl::StrCat("a ", KindName(c.base()), " architecture in a ",
                                                  KindName(spec.search_space()), " job"));
    }
    base = c.base();
  } else {
    base = DecodeArchitecture(spec.search_space(),
                              Genes(SpaceDecisions(spec.search_space()).size(), 0));
  }
  if (!Scalable(base)) {
    return FieldError(p + ".base", absl::StrCat("a ", KindName(base),
                                                " architecture has no depth/resolution to scale"));
  }
  auto list = [](const google::protobuf::RepeatedField<double>& v, std::vector<double> d) {
    return v.empty() ? d : std::vector<double>(v.begin(), v.end());
  };
  const double target = c.target() > 0 ? c.target() : 2.0;
  const double tol = c.tolerance() > 0 ? c.tolerance() : 0.05;
  if (c.max_phi() < 0 || c.max_phi() > 8) return FieldError(p + ".max_phi", "must be in [1, 8]");
  if (c.width_divisor() < 0 || c.width_divisor() > 64) {
    return FieldError(p + ".width_divisor", "must be in [1, 64]");
  }
  std::vector<Triple> grid;
  for (double a : list(c.alpha(), {1.0, 1.1, 1.2, 1.3, 1.4})) {
    for (double b : list(c.beta(), {1.0, 1.1, 1.2, 1.3})) {
      for (double g : list(c.gamma(), {1.0, 1.1, 1.15, 1.2, 1.3})) {
        if (a < 1 || b < 1 || g < 1) {
          return FieldError(p, "alpha, beta and gamma values must be >= 1");
        }
        if (std::abs(a * b * b * g * g - target) <= tol * target) grid.push_back({a, b, g});
      }
    }
  }
  if (grid.empty()) {
    return FieldError(p, absl::StrCat("no (alpha, beta, gamma) in the grid has alpha * beta^2 * "
                                      "gamma^2 within ",
                                      tol * 100, "% of ", target));
  }
  for (const auto& t : grid) {
    auto a = ScaleArchitecture(base, t.alpha, t.beta, t.gamma,
                               c.width_divisor() > 0 ? c.width_divisor() : 8);
    if (!a.ok()) return FieldError(p, a.status().message());
  }
  return std::unique_ptr<Strategy>(
      std::make_unique<CompoundScalingStrategy>(spec, std::move(base), std::move(grid), position));
}

}  // namespace nasforge
