// Random search: candidate i of a job is SampleArchitecture(space, MixSeed(seed, i)), so the
// sequence depends only on the seed and resumes from the stored position.
#include "absl/strings/str_cat.h"
#include "controller/strategy.h"
#include "core/search_space.h"

namespace nasforge {
namespace {

class RandomStrategy final : public Strategy {
 public:
  RandomStrategy(v1::SearchSpace space, uint64_t seed, uint64_t position)
      : space_(std::move(space)), seed_(seed), position_(position) {}

  std::optional<v1::Architecture> Ask(
      const std::function<bool(const v1::Architecture&)>& admissible, int max_attempts) override {
    for (int i = 0; i < max_attempts; ++i) {
      v1::Architecture arch = SampleArchitecture(space_, MixSeed(seed_, position_++));
      if (admissible(arch)) return arch;
    }
    return std::nullopt;
  }
  void Tell(const v1::Trial&) override {}  // random search learns nothing
  uint64_t position() const override { return position_; }

 private:
  const v1::SearchSpace space_;
  const uint64_t seed_;
  uint64_t position_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Strategy>> NewStrategy(const v1::JobSpec& spec, uint64_t position) {
  const std::string& name = spec.strategy().name();
  if (name == "random" || name.empty()) {
    return std::make_unique<RandomStrategy>(spec.search_space(), spec.budget().seed(), position);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("strategy.name: '", name, "' is not supported (supported: random)"));
}

}  // namespace nasforge
