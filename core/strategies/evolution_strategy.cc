// Regularized (aging) evolution (Real et al., AAAI 2019): the population is the last P trials
// that finished; each proposal mutates the best of S members drawn at random (one decision
// changed, the space's mutation operator). Until P results exist, proposals are random.
// Single objective: the job's first objective. Ask k draws its randomness from
// MixSeed(seed, k), so a rebuilt strategy continues the same sequence.
#include <cstdint>
#include <deque>

#include "core/strategies/strategy.h"

namespace nasforge {
namespace {

class EvolutionStrategy final : public Strategy {
 public:
  EvolutionStrategy(v1::JobSpec spec, uint64_t position)
      : spec_(std::move(spec)),
        population_(spec_.strategy().population() > 0 ? spec_.strategy().population() : 20),
        sample_size_(spec_.strategy().sample_size() > 0 ? spec_.strategy().sample_size() : 5),
        position_(position) {}

  Proposal Ask(const Admissible& admissible, int max_attempts) override {
    std::mt19937_64 rng(MixSeed(spec_.budget().seed() ^ 0xe70, position_++));
    const auto& space = spec_.search_space();
    if (static_cast<int>(members_.size()) < population_) {
      return SampleAdmissible(space, rng, admissible, max_attempts);
    }
    // Tournament of sample_size members; the winner's child differs in one decision.
    return ProposeGenes(space, rng, admissible, max_attempts, [&] {
      const Member* best = nullptr;
      for (int k = 0; k < sample_size_; ++k) {
        const Member& m =
            members_[std::uniform_int_distribution<size_t>(0, members_.size() - 1)(rng)];
        if (best == nullptr || m.fitness > best->fitness) best = &m;
      }
      return MutateGenes(space, best->genes, rng);
    });
  }

  void Tell(const v1::Trial& trial) override {
    auto r = ScoreTrial(spec_, trial);
    if (!r) return;
    members_.push_back({std::move(r->genes), r->obj[0]});
    if (static_cast<int>(members_.size()) > population_) members_.pop_front();  // aging
  }
  uint64_t position() const override { return position_; }

 private:
  struct Member {
    Genes genes;
    double fitness;
  };
  const v1::JobSpec spec_;
  const int population_, sample_size_;
  uint64_t position_;
  std::deque<Member> members_;
};

}  // namespace

std::unique_ptr<Strategy> NewEvolutionStrategy(const v1::JobSpec& spec, uint64_t position) {
  return std::make_unique<EvolutionStrategy>(spec, position);
}

}  // namespace nasforge
