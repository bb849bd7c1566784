#include "ui/job_view.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <unordered_map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "core/pareto.h"
#include "core/search_space.h"
#include "core/trial_state.h"
#include "report/candidate_table.h"
#include "report/charts.h"
#include "report/pareto_plot.h"

namespace nasforge::ui {
namespace {

const double* Metric(const v1::Trial& t, const std::string& name) {
  auto it = t.metrics().find(name);
  return it == t.metrics().end() ? nullptr : &it->second;
}

bool Finished(const v1::Trial& t) {
  return t.state() == v1::TRIAL_SUCCEEDED || t.state() == v1::TRIAL_STOPPED;
}

// Indices 0..n-1 thinned evenly to at most `k`.
std::vector<size_t> Sample(size_t n, size_t k) {
  std::vector<size_t> out;
  if (n <= k) {
    for (size_t i = 0; i < n; ++i) out.push_back(i);
    return out;
  }
  for (size_t j = 0; j < k; ++j) out.push_back(j * n / k);
  return out;
}

std::string Note(size_t shown, size_t total, const char* what) {
  if (shown >= total) return "";
  return absl::StrCat(Thousands(static_cast<int64_t>(shown)), " of ",
                      Thousands(static_cast<int64_t>(total)), " ", what, " shown");
}

// Hover text: the trial, its state, every metric column of the table, the architecture.
std::string HoverLabel(const v1::Trial& t, const std::vector<std::string>& columns) {
  std::string s = absl::StrCat("trial ", t.id(), " (", TrialStateLabel(t.state()), ")");
  for (const auto& c : columns) {
    if (c == "trial" || c == "state" || c == "arch" || c == "arch_hash" || c == "worker_id") {
      continue;
    }
    const double* v = Metric(t, c);
    if (v != nullptr) absl::StrAppendFormat(&s, "\n%s: %.6g", c, *v);
  }
  return absl::StrCat(s, "\n", ArchSummary(t.architecture()));
}

}  // namespace

std::string Thousands(int64_t n) {
  std::string digits = absl::StrCat(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

JobView::JobView(v1::Job job, std::vector<v1::Trial> trials, PlotLimits limits)
    : job_(std::move(job)), trials_(std::move(trials)), limits_(limits) {
  columns_ = report::CandidateColumns(job_.spec());
  std::set<std::string> seen;
  auto add = [&](const std::string& m) {
    if (seen.insert(m).second) axis_metrics_.push_back(m);
  };
  for (const auto& o : job_.spec().objectives()) add(o.metric());
  add("macs");
  add("params");
  std::set<std::string> others;
  for (const auto& t : trials_) {
    if (!Finished(t)) continue;
    for (const auto& [k, v] : t.metrics()) others.insert(k);
  }
  for (const auto& m : others) add(m);
}

std::string JobView::primary() const {
  return job_.spec().objectives().empty() ? "" : job_.spec().objectives(0).metric();
}

bool JobView::Maximize(const std::string& metric) const {
  for (const auto& o : job_.spec().objectives()) {
    if (o.metric() == metric) return o.direction() == v1::MAXIMIZE;
  }
  return metric.find("accuracy") != std::string::npos;
}

absl::StatusOr<std::shared_ptr<const std::vector<size_t>>> JobView::Order(
    const TableQuery& q) const {
  if (std::find(columns_.begin(), columns_.end(), q.sort) == columns_.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sort: no column '", q.sort, "' (columns: ", absl::StrJoin(columns_, ", "), ")"));
  }
  std::vector<v1::Constraint> where;
  for (absl::string_view text : absl::StrSplit(q.where, ',', absl::SkipEmpty())) {
    auto c = ParseConstraint(absl::StripAsciiWhitespace(text));
    if (!c.ok()) return absl::InvalidArgumentError(absl::StrCat("where: ", c.status().message()));
    where.push_back(*c);
  }
  int state = -1;
  if (!q.state.empty()) {
    for (v1::TrialState s : TrialStates()) {
      if (TrialStateLabel(s) == q.state) state = s;
    }
    if (state < 0) return absl::InvalidArgumentError("state: not a trial state: '" + q.state + "'");
  }
  const std::string key = absl::StrCat(q.sort, "\x1f", q.desc, "\x1f", q.where, "\x1f", q.state);
  {
    absl::MutexLock l(&mu_);
    auto it = orders_.find(key);
    if (it != orders_.end()) return it->second;
  }
  std::vector<size_t> rows;
  for (size_t i = 0; i < trials_.size(); ++i) {
    const v1::Trial& t = trials_[i];
    if (state >= 0 && t.state() != state) continue;
    bool ok = true;
    for (const auto& c : where) {
      const double* v = Metric(t, c.metric());
      if (v == nullptr || !std::isfinite(*v) || (c.has_lower() && *v < c.lower()) ||
          (c.has_upper() && *v > c.upper())) {
        ok = false;
        break;
      }
    }
    if (ok) rows.push_back(i);
  }
  // Sort keys computed once: numbers compare as numbers, missing values go last either way.
  struct Key {
    bool missing;
    bool numeric;
    double num;
    std::string text;
  };
  std::vector<Key> keys(trials_.size());
  for (size_t i : rows) {
    std::string cell = report::CandidateCell(trials_[i], q.sort);
    Key& k = keys[i];
    k.missing = cell.empty();
    k.numeric = absl::SimpleAtod(cell, &k.num) && !std::isnan(k.num);
    if (!k.numeric) k.text = std::move(cell);
  }
  std::stable_sort(rows.begin(), rows.end(), [&](size_t a, size_t b) {
    const Key &ka = keys[a], &kb = keys[b];
    if (ka.missing != kb.missing) return kb.missing;
    if (ka.missing) return false;
    if (ka.numeric != kb.numeric) return ka.numeric;
    if (ka.numeric) return q.desc ? ka.num > kb.num : ka.num < kb.num;
    return q.desc ? ka.text > kb.text : ka.text < kb.text;
  });
  auto order = std::make_shared<const std::vector<size_t>>(std::move(rows));
  absl::MutexLock l(&mu_);
  if (orders_.size() >= 8) orders_.clear();
  orders_[key] = order;
  return order;
}

absl::StatusOr<TablePage> JobView::Table(const TableQuery& q) const {
  auto order = Order(q);
  if (!order.ok()) return order.status();
  TablePage page;
  page.matched = (*order)->size();
  for (size_t i = q.offset; i < page.matched && page.rows.size() < q.limit; ++i) {
    page.rows.push_back(&trials_[(**order)[i]]);
  }
  return page;
}

absl::StatusOr<std::vector<const v1::Trial*>> JobView::AllRows(const TableQuery& q) const {
  auto order = Order(q);
  if (!order.ok()) return order.status();
  std::vector<const v1::Trial*> out;
  out.reserve((*order)->size());
  for (size_t i : **order) out.push_back(&trials_[i]);
  return out;
}

std::vector<size_t> JobView::FrontOf(const std::vector<std::string>& metrics,
                                     bool job_constraints) const {
  std::vector<size_t> succeeded;
  for (size_t i = 0; i < trials_.size(); ++i) {
    if (trials_[i].state() == v1::TRIAL_SUCCEEDED) succeeded.push_back(i);
  }
  std::vector<v1::Objective> objectives;
  for (const auto& m : metrics) {
    v1::Objective o;
    o.set_metric(m);
    o.set_direction(Maximize(m) ? v1::MAXIMIZE : v1::MINIMIZE);
    objectives.push_back(o);
  }
  std::vector<v1::Constraint> constraints;
  if (job_constraints) {
    constraints.assign(job_.spec().constraints().begin(), job_.spec().constraints().end());
  }
  auto lookup = [&](size_t i, const std::string& name, double* v) {
    const double* m = Metric(trials_[succeeded[i]], name);
    if (m == nullptr) return false;
    *v = *m;
    return true;
  };
  std::vector<size_t> out;
  for (size_t i : SelectPareto(succeeded.size(), lookup, objectives, constraints)) {
    out.push_back(succeeded[i]);
  }
  return out;
}

std::vector<const v1::Trial*> JobView::Front() const {
  std::call_once(front_once_, [this] {
    std::vector<std::string> metrics;
    for (const auto& o : job_.spec().objectives()) metrics.push_back(o.metric());
    if (metrics.empty()) return;
    for (size_t i : FrontOf(metrics, true)) front_.push_back(&trials_[i]);
  });
  return front_;
}

std::string JobView::Memo(const std::string& key, const std::function<std::string()>& draw) const {
  {
    absl::MutexLock l(&mu_);
    auto it = drawn_.find(key);
    if (it != drawn_.end()) return it->second;
  }
  std::string svg = draw();  // outside the lock: two first callers may both draw (same result)
  absl::MutexLock l(&mu_);
  if (drawn_.size() >= 32) drawn_.clear();
  return drawn_.emplace(key, std::move(svg)).first->second;
}

std::string JobView::BestSoFarSvg() const {
  return Memo("best", [this] { return DrawBestSoFar(); });
}
std::string JobView::CurvesSvg() const {
  return Memo("curves", [this] { return DrawCurves(); });
}
std::string JobView::ChoicesSvg() const {
  return Memo("choices", [this] { return DrawChoices(); });
}

absl::StatusOr<std::string> JobView::ParetoSvg(const std::string& x, const std::string& y) const {
  for (const auto& [field, m] : {std::pair{"x", x}, std::pair{"y", y}}) {
    if (std::find(axis_metrics_.begin(), axis_metrics_.end(), m) == axis_metrics_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": no metric '", m,
                       "' in this job (metrics: ", absl::StrJoin(axis_metrics_, ", "), ")"));
    }
  }
  return Memo("pareto\x1f" + x + "\x1f" + y, [&] { return DrawPareto(x, y); });
}

std::string JobView::DrawPareto(const std::string& x, const std::string& y) const {
  std::vector<size_t> front = FrontOf({x, y}, true);
  std::set<size_t> on_front(front.begin(), front.end());
  std::vector<size_t> rest;
  for (size_t i = 0; i < trials_.size(); ++i) {
    if (trials_[i].state() == v1::TRIAL_SUCCEEDED && !on_front.count(i)) rest.push_back(i);
  }
  std::vector<report::PlotPoint> points;
  auto add = [&](size_t i, bool f) {
    const v1::Trial& t = trials_[i];
    const double* vx = Metric(t, x);
    const double* vy = Metric(t, y);
    report::PlotPoint p;
    p.x = vx ? *vx : NAN;
    p.y = vy ? *vy : NAN;
    p.front = f;
    p.label = HoverLabel(t, columns_);
    points.push_back(std::move(p));
  };
  const std::vector<size_t> picked = Sample(rest.size(), limits_.scatter_points);
  for (size_t j : picked) add(rest[j], false);
  for (size_t i : front) add(i, true);
  report::PlotAxes axes;
  axes.title = absl::StrCat("Pareto front: ", x, " vs ", y);
  axes.x_label = absl::StrCat(x, Maximize(x) ? " (max)" : " (min)");
  axes.y_label = absl::StrCat(y, Maximize(y) ? " (max)" : " (min)");
  axes.note = Note(picked.size(), rest.size(), "off the front");
  if (!job_.spec().constraints().empty()) {
    axes.note += absl::StrCat(axes.note.empty() ? "" : "; ", "front under the job's constraints");
  }
  return report::ParetoSvg(points, axes);
}

std::string JobView::DrawBestSoFar() const {
  const std::string metric = primary().empty() ? "accuracy" : primary();
  const bool max = Maximize(metric);
  // Every finished trial in trial order, the improvements kept exactly, the others sampled.
  std::vector<report::ProgressPoint> all;
  double best = max ? -INFINITY : INFINITY;
  std::vector<bool> improves;
  for (const auto& t : trials_) {
    if (t.state() != v1::TRIAL_SUCCEEDED) continue;
    const double* v = Metric(t, metric);
    if (v == nullptr || !std::isfinite(*v)) continue;
    const bool better = max ? *v > best : *v < best;
    if (better) best = *v;
    all.push_back({static_cast<double>(t.id()), *v, best});
    improves.push_back(better);
  }
  std::vector<bool> keep(all.size(), false);
  for (size_t i = 0; i < all.size(); ++i) keep[i] = improves[i];
  const std::vector<size_t> picked = Sample(all.size(), limits_.progress_points);
  for (size_t i : picked) keep[i] = true;
  if (!all.empty()) keep.back() = true;
  std::vector<report::ProgressPoint> shown;
  for (size_t i = 0; i < all.size(); ++i) {
    if (keep[i]) shown.push_back(all[i]);
  }
  return report::BestSoFarSvg(shown, metric, max, Note(shown.size(), all.size(), "trials"));
}

std::string JobView::DrawCurves() const {
  std::vector<const v1::Trial*> with_curve;
  for (const auto& t : trials_) {
    if (t.curve_size() > 0) with_curve.push_back(&t);
  }
  std::set<int64_t> front_ids;
  for (const v1::Trial* t : Front()) {
    if (front_ids.size() >= 20) break;
    front_ids.insert(t->id());
  }
  std::vector<report::Curve> curves;
  auto add = [&](const v1::Trial& t) {
    report::Curve c;
    c.trial = t.id();
    c.stopped = t.state() == v1::TRIAL_STOPPED;
    c.front = front_ids.count(t.id()) > 0;
    for (const auto& p : t.curve()) c.points.emplace_back(p.epoch(), p.value());
    curves.push_back(std::move(c));
  };
  std::vector<const v1::Trial*> others;
  for (const v1::Trial* t : with_curve) {
    if (front_ids.count(t->id())) {
      add(*t);
    } else {
      others.push_back(t);
    }
  }
  const std::vector<size_t> picked = Sample(others.size(), limits_.curves);
  for (size_t j : picked) add(*others[j]);
  return report::CurvesSvg(curves, "validation accuracy",
                           Note(curves.size(), with_curve.size(), "curves"));
}

std::string JobView::DrawChoices() const {
  const std::string metric = primary().empty() ? "accuracy" : primary();
  std::vector<const v1::Trial*> done;
  for (const auto& t : trials_) {
    if (t.state() == v1::TRIAL_SUCCEEDED && Metric(t, metric) &&
        std::isfinite(*Metric(t, metric))) {
      done.push_back(&t);
    }
  }
  std::map<std::string, std::map<std::string, std::vector<double>>> acc;
  std::vector<std::string> order;  // choices in the architecture's order
  const std::vector<size_t> picked = Sample(done.size(), limits_.choice_sample);
  for (size_t j : picked) {
    const v1::Trial& t = *done[j];
    const double v = *Metric(t, metric);
    for (const auto& [choice, value] : report::FlattenArchitecture(t.architecture())) {
      auto& by_value = acc[choice];
      if (by_value.empty()) order.push_back(choice);
      by_value[value].push_back(v);
    }
  }
  std::vector<report::ChoiceStats> stats;
  for (const auto& choice : order) {
    const auto& by_value = acc[choice];
    if (by_value.size() < 2) continue;  // the same in every trial: not a choice
    report::ChoiceStats c;
    c.choice = choice;
    for (const auto& [value, const_values] : by_value) {
      std::vector<double> v = const_values;
      std::sort(v.begin(), v.end());
      double sum = 0;
      for (double x : v) sum += x;
      report::ChoiceOption o;
      o.value = value;
      o.count = static_cast<int64_t>(v.size());
      o.mean = sum / static_cast<double>(v.size());
      o.min = v.front();
      o.max = v.back();
      o.q1 = v[(v.size() - 1) / 4];
      o.q3 = v[(v.size() - 1) * 3 / 4];
      c.options.push_back(std::move(o));
    }
    stats.push_back(std::move(c));
  }
  const std::string note =
      picked.size() < done.size()
          ? absl::StrCat("from ", Thousands(static_cast<int64_t>(picked.size())), " of ",
                         Thousands(static_cast<int64_t>(done.size())), " trials, evenly sampled")
          : "";
  return report::ChoicesSvg(std::move(stats), metric, limits_.choices_shown, note);
}

}  // namespace nasforge::ui
