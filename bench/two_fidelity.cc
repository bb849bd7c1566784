#include "bench/two_fidelity.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "core/search_space.h"
#include "core/status.h"
#include "core/strategies/strategy.h"

namespace nasforge {
namespace {

struct Data {
  std::vector<double> low, high, report;
  std::vector<std::vector<double>> seeds;        // empty when no seeds column
  std::unordered_map<std::string, size_t> rows;  // key -> row (for strategies)
};

absl::StatusOr<Data> Load(const Table& t, const TwoFidelityOptions& o) {
  NF_ASSIGN_OR_RETURN(int low, t.Column(o.low_column, "--low-column"));
  NF_ASSIGN_OR_RETURN(int high, t.Column(o.high_column, "--high-column"));
  NF_ASSIGN_OR_RETURN(int report, t.Column(o.report_column, "--report-column"));
  int seeds = -1;
  if (!o.seeds_column.empty()) {
    NF_ASSIGN_OR_RETURN(seeds, t.Column(o.seeds_column, "--seeds-column"));
  }
  Data d;
  if (o.low_strategy != "random") {
    NF_ASSIGN_OR_RETURN(int key, t.Column(o.key_column, "--key-column"));
    for (size_t r = 0; r < t.rows(); ++r) d.rows[t.Cell(r, key)] = r;
  }
  for (size_t r = 0; r < t.rows(); ++r) {
    NF_ASSIGN_OR_RETURN(double l, t.Number(r, low));
    NF_ASSIGN_OR_RETURN(double h, t.Number(r, high));
    NF_ASSIGN_OR_RETURN(double p, t.Number(r, report));
    d.low.push_back(l);
    d.high.push_back(h);
    d.report.push_back(p);
    if (seeds >= 0) {
      NF_ASSIGN_OR_RETURN(auto s, t.Numbers(r, seeds));
      d.seeds.push_back(std::move(s));
    }
  }
  return d;
}

// One full-fidelity evaluation: a random training seed's value when the table has them.
double HighFitness(const Data& d, size_t i, std::mt19937_64& rng) {
  if (d.seeds.empty()) return d.high[i];
  std::uniform_int_distribution<size_t> pick(0, d.seeds[i].size() - 1);
  return d.seeds[i][pick(rng)];
}

// `n` distinct random rows (partial Fisher-Yates on a reusable index).
void Sample(std::vector<size_t>& idx, size_t n, std::mt19937_64& rng) {
  for (size_t i = 0; i < n; ++i) {
    std::uniform_int_distribution<size_t> pick(i, idx.size() - 1);
    std::swap(idx[i], idx[pick(rng)]);
  }
}

// Evaluates idx[0, n) at full fidelity; returns the report value of the fittest.
double ReportOfFittest(const Data& d, const std::vector<size_t>& idx, size_t n,
                       std::mt19937_64& rng) {
  size_t best = idx[0];
  double best_fit = -1e300;
  for (size_t i = 0; i < n; ++i) {
    double f = HighFitness(d, idx[i], rng);
    if (f > best_fit) best_fit = f, best = idx[i];
  }
  return d.report[best];
}

double RandomSearch(const Data& d, std::vector<size_t>& idx, size_t queries, std::mt19937_64& rng) {
  Sample(idx, queries, rng);
  return ReportOfFittest(d, idx, queries, rng);
}

double SuccessiveHalving(const Data& d, std::vector<size_t>& idx, size_t low_count, size_t promote,
                         std::mt19937_64& rng) {
  Sample(idx, low_count, rng);
  std::partial_sort(idx.begin(), idx.begin() + promote, idx.begin() + low_count,
                    [&](size_t a, size_t b) { return d.low[a] > d.low[b]; });
  return ReportOfFittest(d, idx, promote, rng);
}

// Successive halving whose low-fidelity candidates come from a job strategy.
absl::StatusOr<double> StrategyHalving(const Data& d, const TwoFidelityOptions& o, int run,
                                       std::mt19937_64& rng) {
  v1::JobSpec spec;
  spec.mutable_search_space()->mutable_nb201();
  spec.mutable_strategy()->set_name(o.low_strategy);
  spec.mutable_budget()->set_seed(MixSeed(o.seed, run));
  auto* obj = spec.add_objectives();
  obj->set_metric("accuracy");
  obj->set_direction(v1::MAXIMIZE);
  NF_RETURN_IF_ERROR(ValidateStrategy(spec));
  NF_ASSIGN_OR_RETURN(auto strategy, NewStrategy(spec, 0));
  std::set<std::string> seen;
  std::vector<size_t> chosen;
  for (int q = 0; q < o.low_count; ++q) {
    Proposal p = strategy->Ask(
        [&](const v1::Architecture& a) { return seen.insert(ArchHash(a)).second; }, 1000);
    if (p.kind != Proposal::Kind::kCandidate) break;
    auto it = d.rows.find(p.arch.nb201().cell());
    if (it == d.rows.end()) {
      return absl::NotFoundError(absl::StrCat(
          "'", p.arch.nb201().cell(), "' is not in the table (--key-column ", o.key_column, ")"));
    }
    chosen.push_back(it->second);
    v1::Trial t;
    t.set_id(q);
    *t.mutable_architecture() = p.arch;
    t.set_state(v1::TRIAL_SUCCEEDED);
    (*t.mutable_metrics())["accuracy"] = d.low[it->second];
    strategy->Tell(t);
  }
  const size_t promote = std::min<size_t>(o.promote, chosen.size());
  std::partial_sort(chosen.begin(), chosen.begin() + promote, chosen.end(),
                    [&](size_t a, size_t b) { return d.low[a] > d.low[b]; });
  return ReportOfFittest(d, chosen, promote, rng);
}

RunSummary Summarise(const std::vector<double>& v, double cost, int queries) {
  RunSummary s;
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / v.size();
  double ss = 0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  s.stddev = v.size() > 1 ? std::sqrt(ss / (v.size() - 1)) : 0;
  s.cost = cost;
  s.queries = queries;
  return s;
}

}  // namespace

absl::StatusOr<TwoFidelityResult> RunTwoFidelityBench(const Table& table,
                                                      const TwoFidelityOptions& o) {
  if (o.runs < 1) return FieldError("--runs", "must be >= 1");
  if (o.low_cost <= 0 || o.low_cost > 1) return FieldError("--low-cost", "must be in (0, 1]");
  if (o.promote < 1 || o.promote > o.low_count) {
    return FieldError("--promote", absl::StrCat(o.promote, " must be in [1, --low-count]"));
  }
  if (static_cast<size_t>(o.low_count) > table.rows()) {
    return FieldError("--low-count",
                      absl::StrCat(o.low_count, " exceeds the table's ", table.rows(), " rows"));
  }
  NF_ASSIGN_OR_RETURN(Data d, Load(table, o));
  const double sh_cost = o.low_count * o.low_cost + o.promote;
  const size_t equal_queries = std::min<size_t>(table.rows(), static_cast<size_t>(sh_cost));
  std::vector<size_t> idx(table.rows());
  std::iota(idx.begin(), idx.end(), 0);

  auto random_mean = [&](size_t queries, std::vector<double>* values) {
    std::mt19937_64 rng(o.seed);
    std::vector<double> v;
    for (int r = 0; r < o.runs; ++r) v.push_back(RandomSearch(d, idx, queries, rng));
    if (values) *values = v;
    return std::accumulate(v.begin(), v.end(), 0.0) / v.size();
  };
  std::vector<double> full, sh;
  random_mean(equal_queries, &full);
  std::mt19937_64 rng(o.seed ^ 0x5a5a5a5a);
  for (int r = 0; r < o.runs; ++r) {
    if (o.low_strategy == "random") {
      sh.push_back(SuccessiveHalving(d, idx, o.low_count, o.promote, rng));
    } else {
      NF_ASSIGN_OR_RETURN(double v, StrategyHalving(d, o, r, rng));
      sh.push_back(v);
    }
  }
  TwoFidelityResult res;
  res.full_fidelity = Summarise(full, static_cast<double>(equal_queries), equal_queries);
  res.successive_halving = Summarise(sh, sh_cost, o.promote);
  res.best_accuracy_delta_pp = res.successive_halving.mean - res.full_fidelity.mean;
  // Smallest budget at which random search matches successive halving (steps of ~5%).
  size_t q = equal_queries;
  for (;;) {
    if (random_mean(q, nullptr) >= res.successive_halving.mean) break;
    if (q == table.rows()) {
      res.compute_ratio_is_lower_bound = true;
      break;
    }
    q = std::min(table.rows(), std::max(q + 1, static_cast<size_t>(q * 1.05)));
  }
  res.full_queries_to_match = static_cast<int>(q);
  res.compute_ratio = q / sh_cost;
  return res;
}

}  // namespace nasforge
