// Bayesian optimisation over any search space: a Gaussian process on the space's decision
// vector (core/strategies/gp.h: ARD Hamming kernel, hyperparameters by marginal likelihood) and
// expected improvement. One objective: EI on it, the incumbent being the best posterior mean at
// an observed point (robust to noisy results). Several objectives: ParEGO -- each proposal
// draws random weights and models their augmented Chebyshev scalarisation of the normalised
// objectives. The acquisition is maximised by local search: candidates are random samples and
// every single-decision mutation of the best observed points, then the best few climb by single
// mutations while EI improves. The first `initial_samples` (default 6) proposals are random.
#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "core/cost.h"
#include "core/pareto.h"
#include "core/strategies/gp.h"
#include "core/strategies/strategy.h"

namespace nasforge {
namespace {

class BayesOptStrategy final : public Strategy {
 public:
  BayesOptStrategy(v1::JobSpec spec, uint64_t position)
      : spec_(std::move(spec)),
        decisions_(SpaceDecisions(spec_.search_space())),
        initial_(spec_.strategy().initial_samples() > 0 ? spec_.strategy().initial_samples() : 6),
        max_points_(spec_.strategy().max_model_points() > 0 ? spec_.strategy().max_model_points()
                                                            : 300),
        gp_(decisions_),
        position_(position) {
    // Two objectives, one of them a cost known before training (macs/params, minimised):
    // model the other one and maximise the exact expected hypervolume improvement.
    if (spec_.objectives_size() == 2) {
      for (int c = 0; c < 2; ++c) {
        const auto& o = spec_.objectives(c);
        if ((o.metric() == "macs" || o.metric() == "params") && o.direction() == v1::MINIMIZE) {
          cost_index_ = c;
          model_index_ = 1 - c;
        }
      }
    }
  }

  Proposal Ask(const Admissible& admissible, int max_attempts) override {
    std::mt19937_64 rng(MixSeed(spec_.budget().seed() ^ 0xb0, position_++));
    const auto& space = spec_.search_space();
    if (static_cast<int>(obs_.size()) < initial_) {
      return SampleAdmissible(space, rng, admissible, max_attempts);
    }
    FitModel(rng);
    // Incumbent: the best posterior mean at an observed point.
    std::vector<double> mu, sd;
    gp_.PredictMany(model_x_, &mu, &sd);
    std::vector<std::pair<double, size_t>> by_mean;
    for (size_t i = 0; i < model_x_.size(); ++i) by_mean.push_back({mu[i], i});
    std::sort(by_mean.rbegin(), by_mean.rend());
    const double best = by_mean.front().first;
    if (cost_index_ >= 0) PrepareFront(mu);

    // EI of canonical genes, computed in batches; -1 for what was told or proposed.
    std::map<Genes, double> scored;
    auto score = [&](const std::vector<Genes>& batch) {
      std::vector<Genes> fresh;
      for (const Genes& g : batch) {
        Genes c = CanonicalGenes(space, g);
        if (scored.count(c)) continue;
        if (told_.count(c)) {
          scored[c] = -1;
        } else {
          scored[c] = 0;
          fresh.push_back(std::move(c));
        }
      }
      if (fresh.empty()) return;
      std::vector<double> m, s;
      gp_.PredictMany(fresh, &m, &s);
      for (size_t i = 0; i < fresh.size(); ++i) {
        scored[fresh[i]] = cost_index_ >= 0
                               ? ExpectedHypervolumeImprovement(space, fresh[i], m[i], s[i])
                               : ExpectedImprovement(m[i], s[i], best);
      }
    };
    std::vector<Genes> first;
    const size_t parents = std::min<size_t>(10, by_mean.size());
    for (size_t p = 0; p < parents; ++p) {
      for (Genes& g : Neighbours(model_x_[by_mean[p].second])) first.push_back(std::move(g));
    }
    for (int i = 0; i < 200; ++i) first.push_back(SampleGenes(space, rng));
    score(first);
    // Local search from the best few: move to the best neighbour while EI improves.
    std::vector<std::pair<double, Genes>> starts;
    for (const auto& [g, ei] : scored) starts.push_back({ei, g});
    std::sort(starts.begin(), starts.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    starts.resize(std::min<size_t>(5, starts.size()));
    for (auto [ei, g] : starts) {
      for (int step = 0; step < 20; ++step) {
        std::vector<Genes> around = Neighbours(g);
        score(around);
        double best_ei = ei;
        Genes best_g;
        for (const Genes& n : around) {
          double e = scored.at(CanonicalGenes(space, n));
          if (e > best_ei) best_ei = e, best_g = n;
        }
        if (best_g.empty()) break;
        ei = best_ei;
        g = best_g;
      }
    }
    std::vector<std::pair<double, Genes>> ranked;
    for (auto& [g, ei] : scored) ranked.push_back({ei, g});
    std::sort(ranked.begin(), ranked.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    int attempts = 0;
    for (const auto& [ei, g] : ranked) {
      if (ei < 0 || attempts >= max_attempts) break;
      ++attempts;
      v1::Architecture arch = DecodeArchitecture(space, g);
      told_.insert(g);  // proposed: never propose it again
      if (admissible(arch)) return {Proposal::Kind::kCandidate, std::move(arch), ""};
    }
    return SampleAdmissible(space, rng, admissible, max_attempts);
  }

  void Tell(const v1::Trial& trial) override {
    if (auto g = EncodeArchitecture(spec_.search_space(), trial.architecture())) told_.insert(*g);
    if (auto r = ScoreTrial(spec_, trial)) obs_.push_back({std::move(r->genes), std::move(r->obj)});
  }
  uint64_t position() const override { return position_; }

 private:
  using Observation = Scored;

  // Every other choice of each decision; on an ordered decision of many values (a fine grid),
  // the values 1, 2, 4, ... steps away.
  std::vector<Genes> Neighbours(const Genes& g) const {
    std::vector<Genes> out;
    for (size_t d = 0; d < decisions_.size(); ++d) {
      const int n = decisions_[d].choices;
      if (decisions_[d].ordered && n > 32) {
        for (int step = 1; step < n; step *= 2) {
          for (int c : {g[d] - step, g[d] + step}) {
            if (c < 0 || c >= n) continue;
            Genes x = g;
            x[d] = c;
            out.push_back(std::move(x));
          }
        }
        continue;
      }
      for (int c = 0; c < n; ++c) {
        if (c == g[d]) continue;
        Genes x = g;
        x[d] = c;
        out.push_back(std::move(x));
      }
    }
    return out;
  }

  // Targets for the GP: the objective, or a ParEGO scalarisation with fresh random weights.
  std::vector<double> Targets(size_t count, std::mt19937_64& rng) const {
    const size_t m = spec_.objectives_size();
    std::vector<double> y;
    if (m <= 1 || cost_index_ >= 0) {
      for (size_t i = 0; i < count; ++i) y.push_back(obs_[i].obj[std::max(0, model_index_)]);
      return y;
    }
    std::vector<const std::vector<double>*> objs;
    for (size_t i = 0; i < count; ++i) objs.push_back(&obs_[i].obj);
    return ParegoScalarization(objs, rng);
  }

  double Cost(const v1::SearchSpace& space, const Genes& g) const {
    ArchCost c = ComputeCost(DecodeArchitecture(space, g));
    return static_cast<double>(spec_.objectives(cost_index_).metric() == "macs" ? c.macs
                                                                                : c.params);
  }

  // The current front for EHVI: observed points as (cost, posterior mean of the modelled
  // objective), reduced to the staircase A(q) = best value among points with cost <= q.
  // Reference point: the lower quartile of the observed values (the front that matters is above
  // the typical candidate) and twice the largest observed cost (room to explore bigger models).
  void PrepareFront(const std::vector<double>& mu) {
    std::vector<std::pair<double, double>> pts;  // (cost, -value): core/pareto minimises both
    std::vector<double> values;
    ref_cost_ = 0;
    for (size_t i = 0; i < model_x_.size(); ++i) {
      double cost = -model_obj_[i][cost_index_];  // oriented: -cost
      pts.push_back({cost, -mu[i]});
      values.push_back(model_obj_[i][model_index_]);
      ref_cost_ = std::max(ref_cost_, 2 * cost);
    }
    std::nth_element(values.begin(), values.begin() + values.size() / 4, values.end());
    ref_value_ = values[values.size() / 4];
    steps_.clear();  // (cost where the level starts, level)
    for (const auto& [c, negated] : Staircase2D(std::move(pts), -ref_value_)) {
      steps_.push_back({c, -negated});
    }
  }

  // E[HV gain] of a point with known cost and value ~ N(mean, sd): the sum over the staircase
  // segments right of its cost of segment length x EI over that segment's level.
  double ExpectedHypervolumeImprovement(const v1::SearchSpace& space, const Genes& g, double mean,
                                        double sd) const {
    const double cost = Cost(space, g);
    if (cost >= ref_cost_) return 0;
    double level = ref_value_, total = 0, from = cost;
    size_t k = 0;
    for (; k < steps_.size() && steps_[k].first <= cost; ++k) level = steps_[k].second;
    for (; k <= steps_.size(); ++k) {
      double to = k < steps_.size() ? std::min(steps_[k].first, ref_cost_) : ref_cost_;
      if (to > from) total += (to - from) * ExpectedImprovement(mean, sd, level);
      if (k == steps_.size()) break;
      level = steps_[k].second;
      from = std::max(from, steps_[k].first);
      if (from >= ref_cost_) break;
    }
    return total / ref_cost_;
  }

  // At most `limit` of the observations: the best two thirds by target, then the most recent.
  static std::vector<size_t> Keep(const std::vector<double>& y, size_t limit) {
    std::vector<size_t> keep(y.size());
    for (size_t i = 0; i < keep.size(); ++i) keep[i] = i;
    if (keep.size() <= limit) return keep;
    std::vector<size_t> by_y = keep;
    std::sort(by_y.begin(), by_y.end(), [&](size_t a, size_t b) { return y[a] > y[b]; });
    std::set<size_t> chosen(by_y.begin(), by_y.begin() + 2 * limit / 3);
    for (size_t i = y.size(); i-- > 0 && chosen.size() < limit;) chosen.insert(i);
    return std::vector<size_t>(chosen.begin(), chosen.end());
  }

  // Hyperparameters are a function of the data only (fitted from the initial values), so a
  // strategy rebuilt from history proposes exactly what the original would. One objective:
  // refitted at every observation up to 60, then on the first 10*k observations (every tenth
  // result); several objectives: refitted on each proposal's scalarisation. The posterior uses
  // at most max_model_points observations (default 300).
  void FitModel(std::mt19937_64& rng) {
    const size_t n = obs_.size();
    const bool multi = spec_.objectives_size() > 1 && cost_index_ < 0;  // ParEGO
    std::vector<double> y = Targets(n, rng);
    const size_t hyper_n = multi || n <= 60 ? n : n / 10 * 10;
    if (multi || hyper_n != hyper_n_) {
      std::mt19937_64 unused(0);
      std::vector<double> hy =
          hyper_n == n ? y : Targets(hyper_n, unused);  // one objective: no randomness
      std::vector<Genes> hx;
      std::vector<double> hyk;
      // Hyperparameters from at most 150 points: O(n^3) per Adam step.
      for (size_t i : Keep(hy, std::min<size_t>(max_points_, 150))) {
        hx.push_back(obs_[i].genes), hyk.push_back(hy[i]);
      }
      gp_.Reset();
      gp_.Fit(hx, hyk, multi && hx.size() > 60 ? 15 : 60);
      hyper_n_ = hyper_n;
    }
    model_x_.clear();
    model_obj_.clear();
    std::vector<double> model_y;
    for (size_t i : Keep(y, max_points_)) {
      model_x_.push_back(obs_[i].genes), model_y.push_back(y[i]);
      model_obj_.push_back(obs_[i].obj);
    }
    gp_.Fit(model_x_, model_y, 0);
  }

  const v1::JobSpec spec_;
  const std::vector<Decision> decisions_;
  const int initial_, max_points_;
  CategoricalGP gp_;
  uint64_t position_;
  size_t hyper_n_ = 0;
  std::vector<Observation> obs_;
  std::vector<Genes> model_x_;
  std::vector<std::vector<double>> model_obj_;
  int cost_index_ = -1, model_index_ = -1;  // EHVI mode when cost_index_ >= 0
  double ref_value_ = 0, ref_cost_ = 0;
  std::vector<std::pair<double, double>> steps_;
  std::set<Genes> told_;  // canonical genes told or proposed
};

}  // namespace

std::unique_ptr<Strategy> NewBayesOptStrategy(const v1::JobSpec& spec, uint64_t position) {
  return std::make_unique<BayesOptStrategy>(spec, position);
}

}  // namespace nasforge
