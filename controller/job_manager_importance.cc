// JobManager::GetImportance: which choices and hyperparameters matter for one of a job's
// metrics (core/importance.h), over an even sample of its succeeded trials copied under the
// reader lock, computed outside it.
#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "controller/job_manager.h"
#include "core/importance.h"
#include "core/pareto.h"
#include "core/status.h"

namespace nasforge {

absl::StatusOr<v1::GetImportanceResponse> JobManager::GetImportance(
    const v1::GetImportanceRequest& req, const Principal& caller) const {
  if (!req.metric().empty() && !IsKnownMetric(req.metric())) {
    return FieldError("metric", absl::StrCat("unknown metric '", req.metric(),
                                             "' (known: ", KnownMetricsList(), ")"));
  }
  if (req.epoch() < 0) return FieldError("epoch", "must be >= 0");
  v1::JobSpec spec;
  std::vector<v1::Trial> sample;
  {
    absl::ReaderMutexLock l(&mu_);
    NF_ASSIGN_OR_RETURN(const JobState* js, FindVisible(req.job_id(), caller));
    spec = js->job.spec();
    if (req.epoch() > spec.budget().epochs()) {
      return FieldError("epoch", absl::StrCat(req.epoch(), " is beyond the job's ",
                                              spec.budget().epochs(), " epochs"));
    }
    std::vector<const v1::Trial*> done;  // with an epoch, the early-stopped ones too
    for (const auto& t : js->trials) {
      if (t.has_variant()) continue;  // a compressed copy, not another point of the search
      if (t.state() == v1::TRIAL_SUCCEEDED || (req.epoch() > 0 && t.state() == v1::TRIAL_STOPPED)) {
        done.push_back(&t);
      }
    }
    const size_t k = std::min(done.size(), kImportanceTrials);
    sample.reserve(k);
    for (size_t j = 0; j < k; ++j) sample.push_back(*done[j * done.size() / k]);
  }
  // The metric: the request's, else the job's first objective; an objective's direction, else
  // larger is better for accuracies and smaller for the rest (costs, latency, loss).
  std::string metric = req.metric();
  if (metric.empty() && spec.objectives_size() > 0) metric = spec.objectives(0).metric();
  if (metric.empty()) metric = "accuracy";
  bool maximize = absl::StrContains(metric, "accuracy");
  for (const auto& o : spec.objectives()) {
    if (o.metric() == metric) maximize = o.direction() == v1::MAXIMIZE;
  }
  NF_ASSIGN_OR_RETURN(ImportanceReport r, ComputeImportance(spec.search_space(), sample, metric,
                                                            maximize, req.epoch()));
  v1::GetImportanceResponse resp;
  resp.set_metric(r.metric);
  resp.set_maximize(req.epoch() > 0 || maximize);
  resp.set_trials(r.trials);
  for (const auto& d : r.decisions) {
    auto* s = resp.add_decisions();
    s->set_decision(d.name);
    s->set_importance(d.importance);
    s->set_omega_squared(d.raw);
    s->set_observations(d.observations);
    s->set_best(d.best);
    s->set_ordered(d.ordered);
    s->set_log(d.log);
  }
  if (req.include_points()) {
    for (const auto& p : r.points) {
      auto* q = resp.add_points();
      q->set_decision(p.decision);
      q->set_x(p.x);
      q->set_label(p.label);
      q->set_value(p.y);
    }
  }
  return resp;
}

}  // namespace nasforge
