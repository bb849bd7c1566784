// Tree-structured Parzen estimator (Bergstra et al. 2011), multivariate (Falkner et al. 2018's
// joint kernel, as Optuna's multivariate TPE) over any search space's decisions: the architecture
// choices and the hyperparameters alike. After `initial_samples` (default 10) random proposals,
// the observations are split into the best gamma(n) = min(ceil(0.1 n), 25) and the rest; each
// group is a Parzen mixture with one component per observation plus a prior component; a
// component is a product over decisions of a kernel: for an ordered decision a Gaussian on the
// normalised level (bandwidth by Scott's rule, 0.2 n^(-1/(d+4)), at least half a level),
// discretised onto its levels; for a categorical one the observed choice weighted against a
// uniform prior (Optuna's weights). 24 candidates are drawn from the good group's mixture and the
// one maximising l(x)/g(x) is proposed. Conditional-aware: a parameter inactive in a candidate
// does not count in its densities, and a component whose observation had it inactive is flat in
// that decision. Several objectives: each proposal draws random weights and splits by their
// augmented Chebyshev scalarisation (ParEGO's), as the BO strategy does.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "core/parameters.h"
#include "core/strategies/strategy.h"

namespace nasforge {
namespace {

constexpr int kCandidates = 24;
constexpr double kPriorWeight = 1.0;

double NormalCdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

struct Obs {
  Genes genes;
  std::vector<bool> active;  // per decision
  std::vector<double> obj;   // larger is better
};

// One group's Parzen mixture over the decisions.
class Parzen {
 public:
  Parzen(const std::vector<Decision>& d, const std::vector<const Obs*>& members)
      : d_(d), members_(members) {
    const double n = static_cast<double>(members.size());
    const double scott = 0.2 * std::pow(std::max(1.0, n), -1.0 / (d.size() + 4.0));
    sigma_.resize(d.size());
    for (size_t k = 0; k < d.size(); ++k) {
      const double half_level = d[k].choices > 1 ? 0.5 / (d[k].choices - 1) : 0.5;
      sigma_[k] = std::max(scott, half_level);
    }
  }
  size_t components() const { return members_.size() + 1; }  // the last one is the prior

  // Draws a decision vector: a component (uniform over the observations and the prior, weight
  // kPriorWeight), then each decision from its kernel.
  Genes Sample(std::mt19937_64& rng) const {
    const double total = members_.size() + kPriorWeight;
    const double u = std::uniform_real_distribution<double>(0, total)(rng);
    const size_t c = std::min(static_cast<size_t>(u), members_.size());
    Genes g(d_.size());
    for (size_t k = 0; k < d_.size(); ++k) {
      const int n = d_[k].choices;
      const Obs* o = c < members_.size() ? members_[c] : nullptr;
      if (o == nullptr || !o->active[k] || n == 1) {
        g[k] = std::uniform_int_distribution<int>(0, n - 1)(rng);
      } else if (d_[k].ordered) {
        const double mu = static_cast<double>(o->genes[k]) / (n - 1);
        double x;
        do {
          x = std::normal_distribution<double>(mu, sigma_[k])(rng);
        } while (x < -0.5 / (n - 1) || x > 1 + 0.5 / (n - 1));
        g[k] = std::clamp(static_cast<int>(std::lround(x * (n - 1))), 0, n - 1);
      } else {
        // Optuna's categorical kernel: the observed choice 1 + prior/n, the others prior/n.
        const double keep = (1.0 + kPriorWeight / n) / (1.0 + kPriorWeight);
        g[k] = std::bernoulli_distribution(keep)(rng)
                   ? o->genes[k]
                   : std::uniform_int_distribution<int>(0, n - 1)(rng);
      }
    }
    return g;
  }

  // log of the mixture's probability of `g`, counting only the decisions active in it.
  double LogDensity(const Genes& g, const std::vector<bool>& active) const {
    std::vector<double> logs;
    logs.reserve(components());
    for (size_t c = 0; c < components(); ++c) {
      const Obs* o = c < members_.size() ? members_[c] : nullptr;
      double lp = std::log(c < members_.size() ? 1.0 : kPriorWeight);
      for (size_t k = 0; k < d_.size(); ++k) {
        if (!active[k]) continue;
        lp += std::log(Kernel(o, k, g[k]));
      }
      logs.push_back(lp);
    }
    const double m = *std::max_element(logs.begin(), logs.end());
    double s = 0;
    for (double l : logs) s += std::exp(l - m);
    return m + std::log(s) - std::log(members_.size() + kPriorWeight);
  }

 private:
  double Kernel(const Obs* o, size_t k, int x) const {
    const int n = d_[k].choices;
    if (n == 1) return 1.0;
    if (o == nullptr || !o->active[k]) return 1.0 / n;
    if (!d_[k].ordered) {
      return ((x == o->genes[k] ? 1.0 : 0.0) + kPriorWeight / n) / (1.0 + kPriorWeight);
    }
    // The Gaussian's mass on level x's interval, truncated to the levels' range.
    const double h = 0.5 / (n - 1), mu = static_cast<double>(o->genes[k]) / (n - 1);
    const double s = sigma_[k], xv = static_cast<double>(x) / (n - 1);
    const double z = NormalCdf((1 + h - mu) / s) - NormalCdf((-h - mu) / s);
    const double p = NormalCdf((xv + h - mu) / s) - NormalCdf((xv - h - mu) / s);
    return std::max(p / std::max(z, 1e-300), 1e-300);
  }

  const std::vector<Decision>& d_;
  std::vector<const Obs*> members_;
  std::vector<double> sigma_;
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
    std::vector<size_t> order(obs_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return y[a] > y[b]; });
    const size_t n_below =
        std::clamp<size_t>(static_cast<size_t>(std::ceil(0.1 * obs_.size())), 1, 25);
    std::vector<const Obs*> below, above;
    for (size_t r = 0; r < order.size(); ++r)
      (r < n_below ? below : above).push_back(&obs_[order[r]]);
    const Parzen l(decisions_, below), g(decisions_, above);

    std::vector<std::pair<double, Genes>> scored;
    std::set<Genes> seen;
    for (int i = 0; i < kCandidates; ++i) {
      Genes c = CanonicalGenes(space, l.Sample(rng));
      if (told_.count(c) || !seen.insert(c).second) continue;
      const std::vector<bool> active = Active(DecodeArchitecture(space, c));
      scored.push_back({l.LogDensity(c, active) - g.LogDensity(c, active), std::move(c)});
    }
    std::sort(scored.begin(), scored.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    int attempts = 0;
    for (const auto& [score, c] : scored) {
      if (attempts++ >= max_attempts) break;
      v1::Architecture arch = DecodeArchitecture(space, c);
      told_.insert(c);
      if (admissible(arch)) return {Proposal::Kind::kCandidate, std::move(arch), ""};
    }
    return SampleAdmissible(space, rng, admissible, max_attempts);
  }

  void Tell(const v1::Trial& trial) override {
    auto genes = EncodeArchitecture(spec_.search_space(), trial.architecture());
    if (!genes) return;
    told_.insert(*genes);
    if (auto r = ScoreTrial(spec_, trial)) {
      obs_.push_back({std::move(r->genes), Active(trial.architecture()), std::move(r->obj)});
    }
  }
  uint64_t position() const override { return position_; }

 private:
  // Which decisions are active in `arch`: the kind's always, a parameter when it has a value.
  std::vector<bool> Active(const v1::Architecture& arch) const {
    const auto& params = spec_.search_space().parameters();
    const size_t nk = decisions_.size() - params.size();
    std::vector<bool> a(decisions_.size(), true);
    for (int j = 0; j < params.size(); ++j)
      a[nk + j] = FindParam(arch, params[j].name()) != nullptr;
    return a;
  }

  // One objective: its value. Several: a ParEGO scalarisation with fresh random weights.
  std::vector<double> Targets(std::mt19937_64& rng) const {
    const size_t m = spec_.objectives_size();
    std::vector<double> y;
    if (m <= 1) {
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
