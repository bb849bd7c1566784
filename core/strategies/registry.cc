#include "core/strategies/registry.h"

namespace nasforge {
namespace {

template <typename F>
auto Wrap(F f) {  // factories that cannot fail, as the registry's StatusOr signature
  return
      [f](const v1::JobSpec& spec, uint64_t position) -> absl::StatusOr<std::unique_ptr<Strategy>> {
        return f(spec, position);
      };
}

// The built-in strategies: one line each.
void Builtins(StrategyRegistry& r) {
  auto add = [&](StrategyInfo info) { r.AddBuiltin(std::move(info)); };
  add({"random", "uniform samples, a sequence fixed by the seed", Wrap(NewRandomStrategy), {}, {}});
  add({"evolution",
       "regularized evolution (aging tournament, one-step mutations)",
       Wrap(NewEvolutionStrategy),
       {},
       {}});
  add({"nsga2",
       "NSGA-II over two or more objectives, constraint-dominance",
       Wrap(NewNsga2Strategy),
       ValidateNsga2,
       {}});
  add({"bo",
       "Bayesian optimisation: GP over genes, expected improvement",
       Wrap(NewBayesOptStrategy),
       {},
       {}});
  add({"tpe",
       "tree-structured Parzen estimator, multivariate and conditional-aware (Optuna's default)",
       Wrap(NewTpeStrategy),
       {},
       {}});
  add({"bohb",
       "multi-fidelity: TPE proposes, the early-stopping rule (asha by default) halves, the "
       "model learns from every rung (BOHB)",
       Wrap(NewBohbStrategy),
       {},
       ApplyBohbDefaults});
  add({"compound_scaling",
       "EfficientNet-style depth/width/resolution grid, then the family",
       NewCompoundScalingStrategy,
       [](const v1::JobSpec& spec) { return NewCompoundScalingStrategy(spec, 0).status(); },
       {}});
}

}  // namespace

StrategyRegistry& Strategies() { return GlobalRegistry<StrategyInfo>("strategy", Builtins); }

}  // namespace nasforge
