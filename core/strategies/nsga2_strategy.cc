// NSGA-II (Deb et al. 2002), steady state for asynchronous workers: the population is the best
// P results by constrained non-dominated rank, then crowding distance; every proposal is a
// child of two binary-tournament winners (uniform crossover, then one mutation). Constraint
// handling is Deb's: a feasible result beats an infeasible one, two infeasible ones compare by
// total violation. Until P results exist, proposals are random.
#include <algorithm>
#include <cstdint>
#include <limits>

#include "core/pareto.h"
#include "core/status.h"
#include "core/strategies/strategy.h"

namespace nasforge {
namespace {

struct Member {
  Genes genes;
  std::vector<double> obj;  // larger is better
  double violation = 0;
  int rank = 0;
  double crowding = 0;
};

// Assigns rank (0 = first front) and crowding distance within each front (core/pareto).
void RankAndCrowd(std::vector<Member>* pop) {
  std::vector<std::vector<double>> points;  // minimised: the negated objectives
  std::vector<double> violations;
  for (const Member& m : *pop) {
    std::vector<double> p;
    for (double v : m.obj) p.push_back(-v);
    points.push_back(std::move(p));
    violations.push_back(m.violation);
  }
  auto fronts = NonDominatedSort(points, violations);
  for (size_t rank = 0; rank < fronts.size(); ++rank) {
    std::vector<double> crowding = CrowdingDistances(points, fronts[rank]);
    for (size_t f = 0; f < fronts[rank].size(); ++f) {
      (*pop)[fronts[rank][f]].rank = static_cast<int>(rank);
      (*pop)[fronts[rank][f]].crowding = crowding[f];
    }
  }
}

bool Better(const Member& a, const Member& b) {
  return a.rank != b.rank ? a.rank < b.rank : a.crowding > b.crowding;
}

class Nsga2Strategy final : public Strategy {
 public:
  Nsga2Strategy(v1::JobSpec spec, uint64_t position)
      : spec_(std::move(spec)),
        population_(spec_.strategy().population() > 0 ? spec_.strategy().population() : 20),
        position_(position) {}

  Proposal Ask(const Admissible& admissible, int max_attempts) override {
    std::mt19937_64 rng(MixSeed(spec_.budget().seed() ^ 0x75a2, position_++));
    const auto& space = spec_.search_space();
    if (static_cast<int>(pop_.size()) < population_) {
      return SampleAdmissible(space, rng, admissible, max_attempts);
    }
    std::uniform_int_distribution<size_t> pick(0, pop_.size() - 1);
    auto tournament = [&]() -> const Member& {
      const Member& a = pop_[pick(rng)];
      const Member& b = pop_[pick(rng)];
      return Better(b, a) ? b : a;
    };
    return ProposeGenes(space, rng, admissible, max_attempts, [&] {
      const Member& a = tournament();
      const Member& b = tournament();
      return MutateGenes(space, CrossoverGenes(a.genes, b.genes, rng), rng);
    });
  }

  void Tell(const v1::Trial& trial) override {
    auto r = ScoreTrial(spec_, trial);
    if (!r) return;
    pop_.push_back({std::move(r->genes), std::move(r->obj), ConstraintViolation(spec_, trial)});
    RankAndCrowd(&pop_);
    if (static_cast<int>(pop_.size()) > population_) {
      // Environmental selection: drop the worst by (rank, crowding).
      auto worst = std::max_element(pop_.begin(), pop_.end(),
                                    [](const Member& x, const Member& y) { return Better(x, y); });
      pop_.erase(worst);
      RankAndCrowd(&pop_);
    }
  }
  uint64_t position() const override { return position_; }

 private:
  const v1::JobSpec spec_;
  const int population_;
  uint64_t position_;
  std::vector<Member> pop_;
};

}  // namespace

absl::Status ValidateNsga2(const v1::JobSpec& spec) {
  if (spec.objectives_size() < 2) {
    return FieldError("objectives", "nsga2 needs at least two objectives");
  }
  return absl::OkStatus();
}

std::unique_ptr<Strategy> NewNsga2Strategy(const v1::JobSpec& spec, uint64_t position) {
  return std::make_unique<Nsga2Strategy>(spec, position);
}

}  // namespace nasforge
