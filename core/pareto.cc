#include "core/pareto.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/hardware_targets.h"
#include "core/status.h"

namespace nasforge {
namespace {

constexpr std::array<absl::string_view, 13> kMetrics = {"accuracy",
                                                        "test_accuracy",
                                                        "macs",
                                                        "params",
                                                        "latency_ms",
                                                        "latency_p90_ms",
                                                        "latency_p99_ms",
                                                        "latency_spread",
                                                        "peak_memory_bytes",
                                                        "train_seconds",
                                                        "images_per_second",
                                                        "epochs",
                                                        "train_memory_bytes"};

double Sign(const v1::Objective& o) { return o.direction() == v1::MAXIMIZE ? -1.0 : 1.0; }

}  // namespace

bool IsKnownMetric(absl::string_view name) {
  return std::find(kMetrics.begin(), kMetrics.end(), name) != kMetrics.end() ||
         IsTargetMetric(name);
}

std::string KnownMetricsList() {
  return absl::StrCat(absl::StrJoin(kMetrics, ", "),
                      ", and latency_ms@TARGET, latency_p90_ms@TARGET, latency_p99_ms@TARGET for "
                      "a hardware target of the job");
}

bool Dominates(const std::vector<double>& a, const std::vector<double>& b) {
  bool strictly = false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] > b[i]) return false;
    if (a[i] < b[i]) strictly = true;
  }
  return strictly;
}

bool ConstrainedDominates(const std::vector<double>& a, double a_violation,
                          const std::vector<double>& b, double b_violation) {
  if (a_violation == 0 && b_violation > 0) return true;
  if (a_violation > 0 || b_violation > 0) return a_violation < b_violation;
  return Dominates(a, b);
}

std::vector<std::vector<size_t>> NonDominatedSort(const std::vector<std::vector<double>>& points,
                                                  const std::vector<double>& violations) {
  const size_t n = points.size();
  auto viol = [&](size_t i) { return violations.empty() ? 0.0 : violations[i]; };
  std::vector<std::vector<size_t>> dominated(n);
  std::vector<int> count(n, 0);
  std::vector<std::vector<size_t>> fronts(1);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      if (ConstrainedDominates(points[i], viol(i), points[j], viol(j))) {
        dominated[i].push_back(j);
      } else if (ConstrainedDominates(points[j], viol(j), points[i], viol(i))) {
        ++count[i];
      }
    }
    if (count[i] == 0) fronts[0].push_back(i);
  }
  while (!fronts.back().empty()) {
    std::vector<size_t> next;
    for (size_t i : fronts.back()) {
      for (size_t j : dominated[i]) {
        if (--count[j] == 0) next.push_back(j);
      }
    }
    fronts.push_back(std::move(next));
  }
  fronts.pop_back();
  return fronts;
}

std::vector<double> CrowdingDistances(const std::vector<std::vector<double>>& points,
                                      std::vector<size_t>& front) {
  std::map<size_t, double> d;
  for (size_t i : front) d[i] = 0;
  if (front.empty()) return {};
  const size_t m = points[front[0]].size();
  for (size_t k = 0; k < m; ++k) {
    std::sort(front.begin(), front.end(),
              [&](size_t a, size_t b) { return points[a][k] < points[b][k]; });
    const double lo = points[front.front()][k], hi = points[front.back()][k];
    d[front.front()] = d[front.back()] = std::numeric_limits<double>::infinity();
    if (hi <= lo) continue;
    for (size_t f = 1; f + 1 < front.size(); ++f) {
      d[front[f]] += (points[front[f + 1]][k] - points[front[f - 1]][k]) / (hi - lo);
    }
  }
  std::vector<double> out;
  for (size_t i : front) out.push_back(d[i]);
  return out;
}

double Hypervolume2D(std::vector<std::pair<double, double>> pts, std::pair<double, double> ref) {
  // Sweep by the second coordinate ascending, keeping the best (lowest) first one so far.
  std::sort(pts.begin(), pts.end(),
            [](const auto& x, const auto& y) { return x.second < y.second; });
  double hv = 0, best = ref.first;
  for (size_t i = 0; i < pts.size(); ++i) {
    if (pts[i].second >= ref.second) break;
    best = std::min(best, pts[i].first);
    double next = i + 1 < pts.size() ? std::min(pts[i + 1].second, ref.second) : ref.second;
    hv += (ref.first - best) * (next - pts[i].second);
  }
  return hv;
}

std::vector<std::pair<double, double>> Staircase2D(std::vector<std::pair<double, double>> pts,
                                                   double below_second) {
  std::sort(pts.begin(), pts.end());  // by the first coordinate, ties by the second
  std::vector<std::pair<double, double>> front;
  double level = below_second;
  for (const auto& p : pts) {
    if (p.second < level) {
      front.push_back(p);
      level = p.second;
    }
  }
  return front;
}

std::vector<size_t> NonDominatedFlat(const std::vector<double>& flat, size_t m) {
  const size_t n = m == 0 ? 0 : flat.size() / m;
  auto row = [&](size_t i) { return flat.data() + i * m; };
  auto dominates = [&](size_t a, size_t b) {  // Dominates() on rows
    bool better = false;
    for (size_t k = 0; k < m; ++k) {
      if (row(a)[k] > row(b)[k]) return false;
      better |= row(a)[k] < row(b)[k];
    }
    return better;
  };
  std::vector<size_t> front;
  if (std::any_of(flat.begin(), flat.end(), [](double v) { return std::isnan(v); })) {
    for (size_t i = 0; i < n; ++i) {  // NaN breaks the ordering below: the pairwise check
      bool dominated = false;
      for (size_t j = 0; j < n && !dominated; ++j) dominated = j != i && dominates(j, i);
      if (!dominated) front.push_back(i);
    }
    return front;
  }
  // Lexicographic order: a point can be dominated only by one before it, and if it is, then by
  // a non-dominated one before it (dominance is transitive). So each point is checked against
  // the front found so far.
  // Pre-filter (large inputs): the minimisers of a few positively weighted sums of the
  // normalised coordinates are non-dominated, and in practice dominate most points; what they
  // dominate is dropped before the sort. Only dominated points are dropped, so the result is
  // the same.
  std::vector<size_t> survivors;
  survivors.reserve(n);
  if (n > 4096) {
    std::vector<double> lo(m, std::numeric_limits<double>::infinity()),
        hi(m, -std::numeric_limits<double>::infinity());
    for (size_t i = 0; i < n; ++i) {
      for (size_t k = 0; k < m; ++k)
        lo[k] = std::min(lo[k], row(i)[k]), hi[k] = std::max(hi[k], row(i)[k]);
    }
    constexpr int kPivots = 8;
    std::vector<size_t> pivot(kPivots, 0);
    std::vector<double> best(kPivots, std::numeric_limits<double>::infinity());
    std::vector<std::vector<double>> weight(kPivots, std::vector<double>(m));
    for (int p = 0; p < kPivots; ++p) {  // fixed weights: deterministic, spread over the simplex
      for (size_t k = 0; k < m; ++k) {
        const double span = hi[k] > lo[k] ? hi[k] - lo[k] : 1;
        weight[p][k] = (1.0 + (p * (k + 1) * 7 + k * 3) % 11) / span;
      }
    }
    for (size_t i = 0; i < n; ++i) {
      for (int p = 0; p < kPivots; ++p) {
        double s = 0;
        for (size_t k = 0; k < m; ++k) s += weight[p][k] * (row(i)[k] - lo[k]);
        if (s < best[p]) best[p] = s, pivot[p] = i;
      }
    }
    for (size_t i = 0; i < n; ++i) {
      bool dominated = false;
      for (int p = 0; p < kPivots && !dominated; ++p) dominated = dominates(pivot[p], i);
      if (!dominated) survivors.push_back(i);
    }
  } else {
    for (size_t i = 0; i < n; ++i) survivors.push_back(i);
  }
  // Sorted as (first coordinate, index) pairs, contiguous in memory; ties by the whole row.
  std::vector<std::pair<double, size_t>> keys(survivors.size());
  for (size_t j = 0; j < survivors.size(); ++j) keys[j] = {row(survivors[j])[0], survivors[j]};
  std::sort(keys.begin(), keys.end(), [&](const auto& a, const auto& b) {
    if (a.first != b.first) return a.first < b.first;
    return std::lexicographical_compare(row(a.second), row(a.second) + m, row(b.second),
                                        row(b.second) + m);
  });
  std::vector<size_t> order(keys.size());
  for (size_t j = 0; j < keys.size(); ++j) order[j] = keys[j].second;
  if (m == 2) {
    // Every earlier point has a first coordinate <= this one's: it is dominated iff the lowest
    // second coordinate so far is lower, or equal at a lower first coordinate.
    double best_first = 0, best_second = std::numeric_limits<double>::infinity();
    for (size_t i : order) {
      const double f = row(i)[0], s = row(i)[1];
      if (best_second < s || (best_second == s && best_first < f)) continue;
      front.push_back(i);
      if (s < best_second) best_first = f, best_second = s;
    }
  } else {
    size_t last_dominator = 0;  // neighbours in the order are often dominated by the same point
    for (size_t i : order) {
      bool dominated = !front.empty() && dominates(last_dominator, i);
      for (size_t k = 0; k < front.size() && !dominated; ++k) {
        if (dominates(front[k], i)) {
          dominated = true;
          last_dominator = front[k];
        }
      }
      if (!dominated) front.push_back(i);
    }
  }
  std::sort(front.begin(), front.end());
  return front;
}

std::vector<size_t> NonDominated(const std::vector<std::vector<double>>& points) {
  if (points.empty()) return {};
  const size_t m = points[0].size();
  std::vector<double> flat;
  flat.reserve(points.size() * m);
  for (const auto& p : points) flat.insert(flat.end(), p.begin(), p.end());
  return NonDominatedFlat(flat, m);
}

bool MeetsConstraints(const MetricMap& m, const std::vector<v1::Constraint>& constraints) {
  for (const auto& c : constraints) {
    auto it = m.find(c.metric());
    if (it == m.end()) return false;
    if (c.has_lower() && it->second < c.lower()) return false;
    if (c.has_upper() && it->second > c.upper()) return false;
  }
  return true;
}

std::vector<size_t> SelectPareto(const std::vector<const MetricMap*>& candidates,
                                 const std::vector<v1::Objective>& objectives,
                                 const std::vector<v1::Constraint>& constraints,
                                 size_t* considered) {
  return SelectPareto(
      candidates.size(),
      [&](size_t i, const std::string& name, double* value) {
        auto it = candidates[i]->find(name);
        if (it == candidates[i]->end()) return false;
        *value = it->second;
        return true;
      },
      objectives, constraints, considered);
}

std::vector<size_t> SelectPareto(size_t n, MetricLookup lookup,
                                 const std::vector<v1::Objective>& objectives,
                                 const std::vector<v1::Constraint>& constraints,
                                 size_t* considered) {
  const size_t m = objectives.size();
  std::vector<size_t> idx;  // candidate of each row
  std::vector<double> flat;
  std::vector<double> row(m);
  idx.reserve(n);
  flat.reserve(n * m);
  for (size_t i = 0; i < n; ++i) {
    bool keep = true;
    for (const auto& c : constraints) {
      double v;
      if (!lookup(i, c.metric(), &v) || (c.has_lower() && v < c.lower()) ||
          (c.has_upper() && v > c.upper())) {
        keep = false;
        break;
      }
    }
    for (size_t k = 0; keep && k < m; ++k) {
      double v;
      keep = lookup(i, objectives[k].metric(), &v) && !std::isnan(v);
      row[k] = Sign(objectives[k]) * v;
    }
    if (!keep) continue;
    idx.push_back(i);
    for (double v : row) flat.push_back(v);
  }
  if (considered != nullptr) *considered = idx.size();
  std::vector<size_t> front = m == 0 ? std::vector<size_t>() : NonDominatedFlat(flat, m);
  auto at = [&](size_t r) { return flat.data() + r * m; };
  std::stable_sort(front.begin(), front.end(), [&](size_t a, size_t b) {
    return std::lexicographical_compare(at(a), at(a) + m, at(b), at(b) + m);
  });
  std::vector<size_t> out;
  out.reserve(front.size());
  for (size_t r : front) out.push_back(idx[r]);
  return out;
}

absl::StatusOr<v1::Objective> ParseObjective(absl::string_view text) {
  size_t colon = text.find(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("objective '", text, "': expected METRIC:max or METRIC:min"));
  }
  v1::Objective o;
  o.set_metric(std::string(absl::StripAsciiWhitespace(text.substr(0, colon))));
  std::string dir = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text.substr(colon + 1)));
  if (dir == "max" || dir == "maximize") {
    o.set_direction(v1::MAXIMIZE);
  } else if (dir == "min" || dir == "minimize") {
    o.set_direction(v1::MINIMIZE);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("objective '", text, "': direction '", dir, "' is not max or min"));
  }
  if (!IsKnownMetric(o.metric())) {
    return absl::InvalidArgumentError(absl::StrCat("objective '", text, "': unknown metric '",
                                                   o.metric(), "' (known: ", KnownMetricsList(),
                                                   ")"));
  }
  return o;
}

absl::StatusOr<v1::Constraint> ParseConstraint(absl::string_view text) {
  static constexpr std::array<absl::string_view, 4> kOps = {"<=", ">=", "<", ">"};
  for (absl::string_view op : kOps) {
    size_t pos = text.find(op);
    if (pos == absl::string_view::npos) continue;
    v1::Constraint c;
    c.set_metric(std::string(absl::StripAsciiWhitespace(text.substr(0, pos))));
    double v;
    absl::string_view num = absl::StripAsciiWhitespace(text.substr(pos + op.size()));
    if (!absl::SimpleAtod(num, &v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("constraint '", text, "': '", num, "' is not a number"));
    }
    if (!IsKnownMetric(c.metric())) {
      return absl::InvalidArgumentError(absl::StrCat("constraint '", text, "': unknown metric '",
                                                     c.metric(), "' (known: ", KnownMetricsList(),
                                                     ")"));
    }
    if (op[0] == '<') {
      c.set_upper(v);
    } else {
      c.set_lower(v);
    }
    return c;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("constraint '", text, "': expected METRIC<=VALUE or METRIC>=VALUE"));
}

absl::Status ValidateObjectives(const google::protobuf::RepeatedPtrField<v1::Objective>& objs,
                                absl::string_view path) {
  for (int i = 0; i < objs.size(); ++i) {
    std::string p = absl::StrCat(path, "[", i, "]");
    if (!IsKnownMetric(objs[i].metric())) {
      return FieldError(p + ".metric", absl::StrCat("unknown metric '", objs[i].metric(),
                                                    "' (known: ", KnownMetricsList(), ")"));
    }
    if (objs[i].direction() == v1::DIRECTION_UNSPECIFIED) {
      return FieldError(p + ".direction", "must be MAXIMIZE or MINIMIZE");
    }
    if (objs[i].has_reference() && !std::isfinite(objs[i].reference())) {
      return FieldError(p + ".reference", "must be a finite number");
    }
    for (int j = 0; j < i; ++j) {
      if (objs[j].metric() == objs[i].metric()) {
        return FieldError(p + ".metric", absl::StrCat("'", objs[i].metric(), "' is listed twice"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateConstraints(const google::protobuf::RepeatedPtrField<v1::Constraint>& cons,
                                 absl::string_view path) {
  for (int i = 0; i < cons.size(); ++i) {
    std::string p = absl::StrCat(path, "[", i, "]");
    const auto& c = cons[i];
    if (!IsKnownMetric(c.metric())) {
      return FieldError(p + ".metric", absl::StrCat("unknown metric '", c.metric(),
                                                    "' (known: ", KnownMetricsList(), ")"));
    }
    if (!c.has_lower() && !c.has_upper()) return FieldError(p, "needs lower or upper");
    if (c.has_lower() && c.has_upper() && c.lower() > c.upper()) {
      return FieldError(p, absl::StrCat("lower ", c.lower(), " > upper ", c.upper()));
    }
  }
  return absl::OkStatus();
}

}  // namespace nasforge
