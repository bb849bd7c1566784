// Random search: candidate i of a job is SampleArchitecture(space, MixSeed(seed, i)), so the
// sequence depends only on the seed and resumes from the stored position.
#include <cstdint>
#include <string>

#include "core/strategies/strategy.h"

namespace nasforge {
namespace {

class RandomStrategy final : public Strategy {
 public:
  RandomStrategy(v1::SearchSpace space, uint64_t seed, uint64_t position)
      : space_(std::move(space)), seed_(seed), position_(position) {}

  Proposal Ask(const Admissible& admissible, int max_attempts) override {
    for (int i = 0; i < max_attempts; ++i) {
      v1::Architecture arch = SampleArchitecture(space_, MixSeed(seed_, position_++));
      if (admissible(arch)) return {Proposal::Kind::kCandidate, std::move(arch), ""};
    }
    return Exhausted(max_attempts);
  }
  void Tell(const v1::Trial&) override {}  // random search learns nothing
  uint64_t position() const override { return position_; }

 private:
  const v1::SearchSpace space_;
  const uint64_t seed_;
  uint64_t position_;
};

}  // namespace

std::unique_ptr<Strategy> NewRandomStrategy(const v1::JobSpec& spec, uint64_t position) {
  return std::make_unique<RandomStrategy>(spec.search_space(), spec.budget().seed(), position);
}

}  // namespace nasforge
