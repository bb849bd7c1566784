// What the dashboard shows of one job, computed from a snapshot of its trials: the candidate
// table sorted and filtered on the server (pages of it), the Pareto scatter of any two metrics,
// best-so-far, learning curves, the per-choice summary and the importance panel. Built to stay fast
// at 100,000 trials: the table's order is computed once per (sort, filter) and cached, plots get
// bounded inputs (the front and improvements always, the rest sampled), the per-choice summary
// reads a sample. Pure logic over messages (no locks of the controller), unit-tested. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/importance.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge::ui {

struct TableQuery {
  std::string sort = "trial";  // a column of Columns()
  bool desc = false;
  std::string where;  // "accuracy>=0.9,macs<=3e8" (as `nasforge pareto --where`)
  std::string state;  // "", or a short state name: "succeeded", "stopped", ...
  size_t offset = 0;
  size_t limit = 50;
};

struct TablePage {
  std::vector<const v1::Trial*> rows;
  size_t matched = 0;  // rows that pass the filter
};

// Limits on what the plots get (the rest is sampled away and said so in a note).
struct PlotLimits {
  size_t scatter_points = 3000;   // besides the front
  size_t progress_points = 2000;  // besides the improvements
  size_t curves = 40;             // besides the front's (at most 20 of them)
  size_t choice_sample = 5000;    // trials read for the per-choice summary
  size_t choices_shown = 12;
  size_t importance_shown = 16;  // bars
  size_t value_plots = 12;       // value-vs-objective plots
  size_t value_points = 600;     // points in each
};

class JobView {
 public:
  JobView(v1::Job job, std::vector<v1::Trial> trials, PlotLimits limits = {});

  const v1::Job& job() const { return job_; }
  const std::vector<v1::Trial>& trials() const { return trials_; }
  // The candidate table's columns (report::CandidateColumns: they follow the job's objectives).
  const std::vector<std::string>& columns() const { return columns_; }
  // Metrics a scatter axis may use: the objectives, then macs, params and every other metric
  // some trial has, in that order.
  const std::vector<std::string>& axis_metrics() const { return axis_metrics_; }
  // The direction of `metric` for the front: an objective's own; max for accuracies, min for
  // the rest (costs).
  bool Maximize(const std::string& metric) const;

  // INVALID_ARGUMENT naming `sort`, `where` or `state` for a bad query.
  absl::StatusOr<TablePage> Table(const TableQuery& q) const;
  // Every matching row in order (the CSV download).
  absl::StatusOr<std::vector<const v1::Trial*>> AllRows(const TableQuery& q) const;

  // The SVG charts. Unknown metrics are INVALID_ARGUMENT naming `x` or `y`.
  absl::StatusOr<std::string> ParetoSvg(const std::string& x, const std::string& y) const;
  std::string BestSoFarSvg() const;
  std::string CurvesSvg() const;
  std::string ChoicesSvg() const;
  // The importance panel (core/importance.h) for the primary objective, from at most
  // limits.choice_sample succeeded trials (evenly sampled): the bars, and one decision's values
  // against the objective (INVALID_ARGUMENT naming `decision` for one the space lacks). While
  // fewer than 4 trials have succeeded, a chart that says so.
  std::string ImportanceSvg() const;
  absl::StatusOr<std::string> ValueSvg(const std::string& decision) const;
  // The decisions the page draws a value plot for, most important first: every hyperparameter
  // (at most limits.value_plots); in a space without any, its 4 most important choices.
  std::vector<std::string> ValuePlots() const;

  // Trials on the front of the job's own objectives, under its constraints (best first).
  std::vector<const v1::Trial*> Front() const;
  // The job's first objective ("" when it has none).
  std::string primary() const;

 private:
  absl::StatusOr<std::shared_ptr<const std::vector<size_t>>> Order(const TableQuery& q) const;
  // The snapshot never changes, so each plot is drawn once: `draw` on the first call for `key`.
  std::string Memo(const std::string& key, const std::function<std::string()>& draw) const;
  std::string DrawPareto(const std::string& x, const std::string& y) const;
  std::string DrawBestSoFar() const;
  std::string DrawCurves() const;
  std::string DrawChoices() const;
  std::vector<size_t> FrontOf(const std::vector<std::string>& metrics, bool job_constraints) const;
  // The importance report, computed on first use (job_view_importance.cc).
  const absl::StatusOr<ImportanceReport>& Importance() const;

  v1::Job job_;
  std::vector<v1::Trial> trials_;
  PlotLimits limits_;
  std::vector<std::string> columns_, axis_metrics_;
  mutable absl::Mutex mu_;
  mutable std::map<std::string, std::shared_ptr<const std::vector<size_t>>> orders_
      ABSL_GUARDED_BY(mu_);
  mutable std::map<std::string, std::string> drawn_ ABSL_GUARDED_BY(mu_);
  mutable std::once_flag front_once_;
  mutable std::vector<const v1::Trial*> front_;
  mutable std::once_flag importance_once_;
  mutable absl::StatusOr<ImportanceReport> importance_;
};

// "2,000 of 100,000" style thousands separators.
std::string Thousands(int64_t n);

}  // namespace nasforge::ui
