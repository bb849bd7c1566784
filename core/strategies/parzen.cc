#include "core/strategies/parzen.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/parameters.h"

namespace nasforge {
namespace {

constexpr int kCandidates = 24;
constexpr double kPriorWeight = 1.0;

double NormalCdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

// One group's Parzen mixture over the decisions.
class Parzen {
 public:
  Parzen(const std::vector<Decision>& d, std::vector<const ParzenObservation*> members)
      : d_(d), members_(std::move(members)) {
    const double n = static_cast<double>(members_.size());
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
      const ParzenObservation* o = c < members_.size() ? members_[c] : nullptr;
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
      const ParzenObservation* o = c < members_.size() ? members_[c] : nullptr;
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
  double Kernel(const ParzenObservation* o, size_t k, int x) const {
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
  std::vector<const ParzenObservation*> members_;
  std::vector<double> sigma_;
};

}  // namespace

std::vector<bool> ActiveDecisions(const v1::SearchSpace& space,
                                  const std::vector<Decision>& decisions,
                                  const v1::Architecture& arch) {
  const auto& params = space.parameters();
  const size_t nk = decisions.size() - params.size();
  std::vector<bool> a(decisions.size(), true);
  for (int j = 0; j < params.size(); ++j) a[nk + j] = FindParam(arch, params[j].name()) != nullptr;
  return a;
}

std::vector<Genes> TpeCandidates(const v1::SearchSpace& space,
                                 const std::vector<Decision>& decisions,
                                 const std::vector<const ParzenObservation*>& obs,
                                 const std::vector<double>& y, const std::set<Genes>& told,
                                 std::mt19937_64& rng) {
  std::vector<size_t> order(obs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return y[a] > y[b]; });
  const size_t n_below =
      std::clamp<size_t>(static_cast<size_t>(std::ceil(0.1 * obs.size())), 1, 25);
  std::vector<const ParzenObservation*> below, above;
  for (size_t r = 0; r < order.size(); ++r) (r < n_below ? below : above).push_back(obs[order[r]]);
  const Parzen l(decisions, std::move(below)), g(decisions, std::move(above));

  std::vector<std::pair<double, Genes>> scored;
  std::set<Genes> seen;
  for (int i = 0; i < kCandidates; ++i) {
    Genes c = CanonicalGenes(space, l.Sample(rng));
    if (told.count(c) || !seen.insert(c).second) continue;
    const std::vector<bool> active =
        ActiveDecisions(space, decisions, DecodeArchitecture(space, c));
    scored.push_back({l.LogDensity(c, active) - g.LogDensity(c, active), std::move(c)});
  }
  std::sort(scored.begin(), scored.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<Genes> out;
  out.reserve(scored.size());
  for (auto& s : scored) out.push_back(std::move(s.second));
  return out;
}

Proposal ProposeFromModel(const v1::SearchSpace& space, const std::vector<Decision>& decisions,
                          const std::vector<const ParzenObservation*>& obs,
                          const std::vector<double>& y, std::set<Genes>* told, std::mt19937_64& rng,
                          const Admissible& admissible, int max_attempts) {
  int attempts = 0;
  for (const Genes& c : TpeCandidates(space, decisions, obs, y, *told, rng)) {
    if (attempts++ >= max_attempts) break;
    v1::Architecture arch = DecodeArchitecture(space, c);
    told->insert(c);
    if (admissible(arch)) return {Proposal::Kind::kCandidate, std::move(arch), ""};
  }
  return SampleAdmissible(space, rng, admissible, max_attempts);
}

}  // namespace nasforge
