// Tree-structured Parzen estimator as a strategy (core/strategies/parzen.h has the model): after
// `initial_samples` (default 10) random proposals, each proposal is the best l(x)/g(x) of 24
// candidates drawn from the model fitted to every result so far. Several objectives: each
// proposal draws random weights and splits by their augmented Chebyshev scalarisation (ParEGO's),
// as the BO strategy does.
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/strategies/parzen.h"
#include "core/strategies/strategy.h"

namespace nasforge {
namespace {

struct Obs {
  ParzenObservation x;
  std::vector<double> obj;  // larger is better
};

class TpeStrategy final : public Strategy {
 public:
  TpeStrategy(v1::JobSpec spec, uint64_t position)
      : spec_(std::move(spec)),
        decisions_(SpaceDecisions(spec_.search_space())),
        initial_(spec_.strategy().initial_samples() > 0 ? spec_.strategy().initial_samples() : 10),
        position_(position) {}

  Proposal Ask(const Admissible& admissible, int max_attempts) override {
    std::mt19937_64 rng(MixSeed(spec_.budget().seed() ^ 0x7e, position_++));
    const auto& space = spec_.search_space();
    if (static_cast<int>(obs_.size()) < initial_) {
      return SampleAdmissible(space, rng, admissible, max_attempts);
    }
    const std::vector<double> y = Targets(rng);
    std::vector<const ParzenObservation*> xs;
    for (const auto& o : obs_) xs.push_back(&o.x);
    return ProposeFromModel(space, decisions_, xs, y, &told_, rng, admissible, max_attempts);
  }

  void Tell(const v1::Trial& trial) override {
    auto genes = EncodeArchitecture(spec_.search_space(), trial.architecture());
    if (!genes) return;
    told_.insert(*genes);
    if (auto r = ScoreTrial(spec_, trial)) {
      obs_.push_back({{std::move(r->genes),
                       ActiveDecisions(spec_.search_space(), decisions_, trial.architecture())},
                      std::move(r->obj)});
    }
  }
  uint64_t position() const override { return position_; }

 private:
  // One objective: its value. Several: a ParEGO scalarisation with fresh random weights.
  std::vector<double> Targets(std::mt19937_64& rng) const {
    std::vector<double> y;
    if (spec_.objectives_size() <= 1) {
      for (const auto& o : obs_) y.push_back(o.obj[0]);
      return y;
    }
    std::vector<const std::vector<double>*> objs;
    for (const auto& o : obs_) objs.push_back(&o.obj);
    return ParegoScalarization(objs, rng);
  }

  const v1::JobSpec spec_;
  const std::vector<Decision> decisions_;
  const int initial_;
  uint64_t position_;
  std::vector<Obs> obs_;
  std::set<Genes> told_;
};

}  // namespace

std::unique_ptr<Strategy> NewTpeStrategy(const v1::JobSpec& spec, uint64_t position) {
  return std::make_unique<TpeStrategy>(spec, position);
}

}  // namespace nasforge
