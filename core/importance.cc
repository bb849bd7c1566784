#include "core/importance.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/parameters.h"
#include "core/search_space.h"
#include "core/status.h"

namespace nasforge {
namespace {

constexpr int kMaxGroups = 10;

struct Obs {
  double y;
  int gene;
  double x;
  std::string label;
};

}  // namespace

absl::StatusOr<ImportanceReport> ComputeImportance(const v1::SearchSpace& space,
                                                   const std::vector<v1::Trial>& trials,
                                                   const std::string& metric, bool maximize,
                                                   int epoch) {
  if (epoch > 0) maximize = true;  // validation accuracy
  const double sign = maximize ? 1.0 : -1.0;
  const std::vector<Decision> decisions = SpaceDecisions(space);
  const size_t nk = decisions.size() - space.parameters_size();
  std::vector<std::vector<Obs>> per(decisions.size());
  ImportanceReport report;
  report.metric = epoch > 0 ? absl::StrCat("validation at epoch ", epoch) : metric;
  for (const auto& t : trials) {
    std::optional<double> y;
    if (epoch > 0 && (t.state() == v1::TRIAL_SUCCEEDED || t.state() == v1::TRIAL_STOPPED)) {
      for (const auto& p : t.curve()) {
        if (p.epoch() == epoch) {
          y = p.value();
          break;
        }
      }
    } else if (epoch <= 0 && t.state() == v1::TRIAL_SUCCEEDED) {
      auto m = t.metrics().find(metric);
      if (m != t.metrics().end()) y = m->second;
    }
    if (!y || !std::isfinite(*y)) continue;
    auto genes = EncodeArchitecture(space, t.architecture());
    if (!genes) continue;
    ++report.trials;
    for (size_t d = 0; d < decisions.size(); ++d) {
      Obs o{*y, (*genes)[d], static_cast<double>((*genes)[d]), ""};
      if (d >= nk) {
        const v1::ParamValue* v = FindParam(t.architecture(), space.parameters(d - nk).name());
        if (v == nullptr) continue;  // inactive here
        o.x = v->number();
        o.label = ParamText(*v);
      } else {
        const auto& labels = decisions[d].labels;
        o.label = o.gene < static_cast<int>(labels.size()) ? labels[o.gene]
                                                           : absl::StrCat("choice ", o.gene);
      }
      per[d].push_back(std::move(o));
    }
  }
  if (report.trials < 4) {
    return absl::FailedPreconditionError(
        epoch > 0 ? absl::StrCat("importance needs at least 4 trials that reached epoch ", epoch,
                                 "; the job has ", report.trials)
                  : absl::StrCat("importance needs at least 4 succeeded trials reporting ", metric,
                                 "; the job has ", report.trials));
  }
  double total = 0;
  for (size_t d = 0; d < decisions.size(); ++d) {
    DecisionImportance di;
    di.name = decisions[d].name;
    di.ordered = decisions[d].ordered;
    di.log =
        d >= nk && space.parameters(d - nk).has_real() && space.parameters(d - nk).real().log();
    di.log = di.log || (d >= nk && space.parameters(d - nk).has_integer() &&
                        space.parameters(d - nk).integer().log());
    std::vector<Obs>& obs = per[d];
    di.observations = static_cast<int>(obs.size());
    for (const auto& o : obs) {
      report.points.push_back(
          {di.name, di.ordered ? o.x : static_cast<double>(o.gene), o.label, o.y});
    }
    // Groups: the gene, or for an ordered decision of many values equal-count bins by gene.
    std::map<int, int> group_of_gene;
    if (di.ordered && decisions[d].choices > kMaxGroups) {
      std::vector<int> genes;
      for (const auto& o : obs) genes.push_back(o.gene);
      std::sort(genes.begin(), genes.end());
      for (size_t i = 0; i < genes.size(); ++i) {
        group_of_gene.emplace(genes[i], static_cast<int>(i * kMaxGroups / genes.size()));
      }
    }
    std::map<int, std::pair<double, int>> groups;  // group -> (sum, count)
    std::map<int, std::string> label;
    std::map<int, std::pair<double, double>> range;  // a bin's smallest and largest value
    double sum = 0;
    for (const auto& o : obs) {
      const int g = group_of_gene.empty() ? o.gene : group_of_gene.at(o.gene);
      groups[g].first += o.y;
      groups[g].second += 1;
      label.emplace(g, o.label);
      auto [it, fresh] = range.emplace(g, std::make_pair(o.x, o.x));
      if (!fresh) {
        it->second.first = std::min(it->second.first, o.x);
        it->second.second = std::max(it->second.second, o.x);
      }
      sum += o.y;
    }
    if (!group_of_gene.empty()) {
      for (const auto& [g, r] : range) {
        label[g] = r.first == r.second
                       ? FormatNumber(r.first)
                       : absl::StrCat(FormatNumber(r.first), "..", FormatNumber(r.second));
      }
    }
    const size_t n = obs.size(), k = groups.size();
    if (n < 2 || k < 2) {
      di.best = k == 1 ? label.begin()->second : "";
      report.decisions.push_back(di);
      continue;
    }
    const double mean = sum / n;
    double ss_total = 0, ss_between = 0;
    for (const auto& o : obs) ss_total += (o.y - mean) * (o.y - mean);
    double best_mean = -1e300;
    for (const auto& [g, sc] : groups) {
      const double gm = sc.first / sc.second;
      ss_between += sc.second * (gm - mean) * (gm - mean);
      if (sign * gm > best_mean) best_mean = sign * gm, di.best = label[g];
    }
    const double ms_within = n > k ? (ss_total - ss_between) / (n - k) : 0;
    di.raw = ss_total > 0
                 ? std::max(0.0, (ss_between - (k - 1) * ms_within) / (ss_total + ms_within))
                 : 0;
    total += di.raw;
    report.decisions.push_back(di);
  }
  for (auto& di : report.decisions) di.importance = total > 0 ? di.raw / total : 0;
  std::stable_sort(report.decisions.begin(), report.decisions.end(),
                   [](const auto& a, const auto& b) { return a.importance > b.importance; });
  return report;
}

}  // namespace nasforge
