#include "controller/job_metrics.h"

#include "core/trial_state.h"

namespace nasforge {
namespace {

prometheus::MetricFamily Gauge(const char* name, const char* help) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = prometheus::MetricType::Gauge;
  return f;
}

void Add(prometheus::MetricFamily& f, std::vector<prometheus::ClientMetric::Label> labels,
         double value) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = value;
  f.metric.push_back(std::move(m));
}

}  // namespace

std::vector<prometheus::MetricFamily> ToMetricFamilies(const JobMetricsSnapshot& s) {
  auto trials = Gauge("nasforge_controller_job_trials", "Trials of a running job, by state.");
  auto budget = Gauge("nasforge_controller_job_budget_trials",
                      "A running job's budget.max_trials (candidates it will train).");
  auto best = Gauge("nasforge_controller_job_best",
                    "Best value so far of each of a running job's objectives (over succeeded "
                    "trials; the objective's own direction).");
  auto front = Gauge("nasforge_controller_job_front_size",
                     "Candidates on a running job's Pareto front (its own objectives).");
  auto hv = Gauge("nasforge_controller_job_hypervolume",
                  "Hypervolume dominated by a running job's front (2 or 3 objectives), up to "
                  "the objectives' reference points (Objective.reference).");
  auto progress = Gauge("nasforge_controller_job_last_progress_timestamp_seconds",
                        "Unix time a running job's last trial finished (its start if none has).");
  auto workers = Gauge("nasforge_controller_workers",
                       "Registered workers by hardware profile and state: busy (holds a lease), "
                       "idle (live, no lease), lost (not heard from, gone less than an hour).");
  for (const auto& j : s.jobs) {
    for (v1::TrialState st : TrialStates()) {
      Add(trials, {{"job_id", j.id}, {"state", TrialStateLabel(st)}},
          static_cast<double>(j.trials[st]));
    }
    Add(budget, {{"job_id", j.id}}, static_cast<double>(j.budget_trials));
    for (const auto& [metric, value] : j.best)
      Add(best, {{"job_id", j.id}, {"metric", metric}}, value);
    Add(front, {{"job_id", j.id}}, static_cast<double>(j.front_size));
    if (j.hypervolume) Add(hv, {{"job_id", j.id}}, *j.hypervolume);
    Add(progress, {{"job_id", j.id}}, j.last_progress_unix_seconds);
  }
  for (const auto& [key, n] : s.workers) {
    Add(workers, {{"profile", key.first}, {"state", key.second}}, static_cast<double>(n));
  }
  return {std::move(trials), std::move(budget),   std::move(best),   std::move(front),
          std::move(hv),     std::move(progress), std::move(workers)};
}

}  // namespace nasforge
