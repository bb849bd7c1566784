// Model-based multi-fidelity search (BOHB's idea, Falkner et al. 2018): successive halving
// decides, the model proposes, and the model learns from every rung. The deciding is the job's
// early-stopping rule (core/early_stopping.h; "asha" unless the spec names another); the model
// is the TPE of core/strategies/parzen.h.
//
// Every finished trial, stopped early or trained to the end, is an observation at each epoch its
// learning curve reached (the validation value there: larger is better, as the stopping rules
// read it), and a trial trained to the end also at the full budget (its objectives; several: a
// ParEGO scalarisation). Each proposal fits the model to the largest budget that at least n_min
// = max(initial_samples (default 10), decisions + 2) trials reached. The trials stopped below
// that budget count there too, below every trial that reached it (successive halving's premise:
// they lost at a rung), so the model's bad group covers the regions the rungs ruled out instead
// of proposing them again. Until a budget has n_min, and for one proposal in kRandomEvery, it
// samples at random (BOHB's guard against a misled model).
#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/strategies/parzen.h"
#include "core/strategies/strategy.h"

namespace nasforge {
namespace {

constexpr uint64_t kRandomEvery = 5;

// A finished trial: where it lies, and its values at the budgets it reached.
struct Result {
  ParzenObservation x;
  std::map<int, std::vector<double>> at;  // budget (epochs) -> larger-is-better values
  int reached = 0;                        // the largest budget with a value
};

class BohbStrategy final : public Strategy {
 public:
  BohbStrategy(v1::JobSpec spec, uint64_t position)
      : spec_(std::move(spec)),
        decisions_(SpaceDecisions(spec_.search_space())),
        full_budget_(std::max(1, spec_.budget().epochs())),
        n_min_(std::max(
            spec_.strategy().initial_samples() > 0 ? spec_.strategy().initial_samples() : 10,
            static_cast<int>(decisions_.size()) + 2)),
        position_(position) {}

  Proposal Ask(const Admissible& admissible, int max_attempts) override {
    const uint64_t n = position_++;
    std::mt19937_64 rng(MixSeed(spec_.budget().seed() ^ 0xb0b, n));
    const auto& space = spec_.search_space();
    const int budget = ModelBudget();
    if (budget == 0 || n % kRandomEvery == kRandomEvery - 1) {
      return SampleAdmissible(space, rng, admissible, max_attempts);
    }
    std::vector<const ParzenObservation*> xs;
    const std::vector<double> y = Targets(budget, rng, &xs);
    return ProposeFromModel(space, decisions_, xs, y, &told_, rng, admissible, max_attempts);
  }

  void Tell(const v1::Trial& trial) override {
    const auto& space = spec_.search_space();
    auto genes = EncodeArchitecture(space, trial.architecture());
    if (!genes) return;
    told_.insert(*genes);
    Result r{{*genes, ActiveDecisions(space, decisions_, trial.architecture())}, {}, 0};
    if (trial.state() == v1::TRIAL_SUCCEEDED || trial.state() == v1::TRIAL_STOPPED) {
      for (const auto& p : trial.curve()) {  // a curve reports each epoch once; keep the first
        if (p.epoch() >= 1 && p.epoch() < full_budget_ && !r.at.count(p.epoch())) {
          r.at[p.epoch()] = {p.value()};
        }
      }
    }
    if (auto s = ScoreTrial(spec_, trial)) r.at[full_budget_] = std::move(s->obj);
    if (r.at.empty()) return;  // failed, or nothing reported: nothing to learn
    r.reached = r.at.rbegin()->first;
    for (const auto& [b, v] : r.at) ++reached_[b];
    results_.push_back(std::move(r));
  }
  uint64_t position() const override { return position_; }

 private:
  // The largest budget at least n_min trials reached; 0 if none.
  int ModelBudget() const {
    for (auto it = reached_.rbegin(); it != reached_.rend(); ++it) {
      if (it->second >= n_min_) return it->first;
    }
    return 0;
  }

  // The observations at `budget` (into *xs) and their values: the trials that reached it by
  // their value there (one objective, or a fresh ParEGO scalarisation of several), those
  // stopped below it under the worst of those.
  std::vector<double> Targets(int budget, std::mt19937_64& rng,
                              std::vector<const ParzenObservation*>* xs) const {
    std::vector<const std::vector<double>*> objs;
    std::vector<const ParzenObservation*> below;
    for (const auto& r : results_) {
      auto it = r.at.find(budget);
      if (it != r.at.end()) {
        xs->push_back(&r.x);
        objs.push_back(&it->second);
      } else if (r.reached < budget) {
        below.push_back(&r.x);
      }
    }
    std::vector<double> y;
    if (objs[0]->size() <= 1) {
      for (const auto* o : objs) y.push_back((*o)[0]);
    } else {
      y = ParegoScalarization(objs, rng);
    }
    const double worst = *std::min_element(y.begin(), y.end());
    for (const auto* x : below) {
      xs->push_back(x);
      y.push_back(worst - 1);
    }
    return y;
  }

  const v1::JobSpec spec_;
  const std::vector<Decision> decisions_;
  const int full_budget_;
  const int n_min_;
  uint64_t position_;
  std::vector<Result> results_;
  std::map<int, int> reached_;  // budget -> trials with a value there
  std::set<Genes> told_;
};

}  // namespace

std::unique_ptr<Strategy> NewBohbStrategy(const v1::JobSpec& spec, uint64_t position) {
  return std::make_unique<BohbStrategy>(spec, position);
}

// BOHB's deciding half: successive halving unless the spec names a rule.
void ApplyBohbDefaults(v1::JobSpec* spec) {
  if (spec->early_stopping().rule().empty()) spec->mutable_early_stopping()->set_rule("asha");
}

}  // namespace nasforge
