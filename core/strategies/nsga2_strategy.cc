// NSGA-II (Deb et al. 2002), steady state for asynchronous workers: the population is the best
// P results by constrained non-dominated rank, then crowding distance; every proposal is a
// child of two binary-tournament winners (uniform crossover, then one mutation). Constraint
// handling is Deb's: a feasible result beats an infeasible one, two infeasible ones compare by
// total violation. Until P results exist, proposals are random.
#include <algorithm>
#include <limits>

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

bool ConstrainedDominates(const Member& a, const Member& b) {
  if (a.violation == 0 && b.violation > 0) return true;
  if (a.violation > 0 || b.violation > 0) return a.violation < b.violation;
  bool better = false;
  for (size_t i = 0; i < a.obj.size(); ++i) {
    if (a.obj[i] < b.obj[i]) return false;
    if (a.obj[i] > b.obj[i]) better = true;
  }
  return better;
}

// Assigns rank (0 = first front) and crowding distance within each front.
void RankAndCrowd(std::vector<Member>* pop) {
  const size_t n = pop->size();
  std::vector<std::vector<size_t>> dominated(n);
  std::vector<int> count(n, 0);
  std::vector<size_t> front;
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      if (ConstrainedDominates((*pop)[i], (*pop)[j]))
        dominated[i].push_back(j);
      else if (ConstrainedDominates((*pop)[j], (*pop)[i]))
        ++count[i];
    }
    if (count[i] == 0) front.push_back(i);
  }
  for (int rank = 0; !front.empty(); ++rank) {
    for (size_t i : front) (*pop)[i].rank = rank, (*pop)[i].crowding = 0;
    const size_t m = (*pop)[front[0]].obj.size();
    for (size_t k = 0; k < m; ++k) {
      std::sort(front.begin(), front.end(),
                [&](size_t a, size_t b) { return (*pop)[a].obj[k] < (*pop)[b].obj[k]; });
      double lo = (*pop)[front.front()].obj[k], hi = (*pop)[front.back()].obj[k];
      (*pop)[front.front()].crowding = (*pop)[front.back()].crowding =
          std::numeric_limits<double>::infinity();
      if (hi <= lo) continue;
      for (size_t f = 1; f + 1 < front.size(); ++f) {
        (*pop)[front[f]].crowding +=
            ((*pop)[front[f + 1]].obj[k] - (*pop)[front[f - 1]].obj[k]) / (hi - lo);
      }
    }
    std::vector<size_t> next;
    for (size_t i : front) {
      for (size_t j : dominated[i]) {
        if (--count[j] == 0) next.push_back(j);
      }
    }
    front = std::move(next);
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
