// JobView's importance panel (job_view.h): the report computed once from a sample of the
// succeeded trials, its bars and the value-vs-objective plots.
#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "report/importance_charts.h"
#include "report/svg.h"
#include "ui/job_view.h"

namespace nasforge::ui {

const absl::StatusOr<ImportanceReport>& JobView::Importance() const {
  std::call_once(importance_once_, [this] {
    const std::string metric = primary().empty() ? "accuracy" : primary();
    std::vector<const v1::Trial*> done;
    for (const auto& t : trials_) {
      if (t.state() == v1::TRIAL_SUCCEEDED && t.metrics().count(metric)) done.push_back(&t);
    }
    std::vector<v1::Trial> sample;
    const size_t k = std::min(done.size(), limits_.choice_sample);
    sample.reserve(k);
    for (size_t j = 0; j < k; ++j) sample.push_back(*done[j * done.size() / k]);
    importance_ = ComputeImportance(job_.spec().search_space(), sample, metric, Maximize(metric));
  });
  return importance_;
}

std::string JobView::ImportanceSvg() const {
  return Memo("importance", [this] {
    const auto& r = Importance();
    if (!r.ok()) {
      return report::EmptySvg("importance-plot", "What matters", std::string(r.status().message()));
    }
    return report::ImportanceSvg(*r, limits_.importance_shown, "");
  });
}

absl::StatusOr<std::string> JobView::ValueSvg(const std::string& decision) const {
  const auto& r = Importance();
  if (!r.ok()) return r.status();
  const bool known = std::any_of(r->decisions.begin(), r->decisions.end(),
                                 [&](const DecisionImportance& d) { return d.name == decision; });
  if (!known) {
    return absl::InvalidArgumentError(
        absl::StrCat("decision: '", decision, "' is not a decision of the job's search space"));
  }
  return Memo("value:" + decision,
              [&] { return report::ValueSvg(*r, decision, limits_.value_points); });
}

std::vector<std::string> JobView::ValuePlots() const {
  std::vector<std::string> out;
  const auto& r = Importance();
  if (!r.ok()) return out;
  const bool has_params = job_.spec().search_space().parameters_size() > 0;
  const size_t cap = has_params ? limits_.value_plots : 4;
  for (const auto& d : r->decisions) {  // most important first
    if (out.size() >= cap) break;
    if (!has_params || d.name.rfind("params.", 0) == 0) out.push_back(d.name);
  }
  return out;
}

}  // namespace nasforge::ui
