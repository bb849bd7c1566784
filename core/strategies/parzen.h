// The tree-structured Parzen estimator's model (Bergstra et al. 2011), multivariate (Falkner et
// al. 2018's joint kernel, as Optuna's multivariate TPE), over any search space's decisions: the
// architecture choices and the hyperparameters alike. The TPE strategy fits it to every result;
// the multi-fidelity strategy (BOHB's idea) to the results at one training budget.
//
// The observations are split into the best gamma(n) = min(ceil(0.1 n), 25) and the rest; each
// group is a Parzen mixture with one component per observation plus a prior component; a
// component is a product over decisions of a kernel: for an ordered decision a Gaussian on the
// normalised level (bandwidth by Scott's rule, 0.2 n^(-1/(d+4)), at least half a level),
// discretised onto its levels; for a categorical one the observed choice weighted against a
// uniform prior (Optuna's weights). 24 candidates are drawn from the good group's mixture and
// ranked by l(x)/g(x). Conditional-aware: a parameter inactive in a candidate does not count in
// its densities, and a component whose observation had it inactive is flat in that decision.
#pragma once

#include <random>
#include <set>
#include <vector>

#include "core/search_space.h"
#include "core/strategies/strategy.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

struct ParzenObservation {
  Genes genes;
  std::vector<bool> active;  // per decision (ActiveDecisions)
};

// Which of `decisions` (SpaceDecisions(space)) are active in `arch`: the kind's always, a
// parameter when the architecture gives it a value.
std::vector<bool> ActiveDecisions(const v1::SearchSpace& space,
                                  const std::vector<Decision>& decisions,
                                  const v1::Architecture& arch);

// Candidates drawn from the model fitted to `obs` with values `y` (parallel, larger is better),
// best l/g first; canonical genes, none in `told`, no repeats. REQUIRES: !obs.empty().
std::vector<Genes> TpeCandidates(const v1::SearchSpace& space,
                                 const std::vector<Decision>& decisions,
                                 const std::vector<const ParzenObservation*>& obs,
                                 const std::vector<double>& y, const std::set<Genes>& told,
                                 std::mt19937_64& rng);

// The model-based strategies' proposal: the first of TpeCandidates(...) that `admissible`
// takes (each one tried is added to *told), or a random sample when none is; at most
// `max_attempts` candidates are tried.
Proposal ProposeFromModel(const v1::SearchSpace& space, const std::vector<Decision>& decisions,
                          const std::vector<const ParzenObservation*>& obs,
                          const std::vector<double>& y, std::set<Genes>* told, std::mt19937_64& rng,
                          const Admissible& admissible, int max_attempts);

}  // namespace nasforge
