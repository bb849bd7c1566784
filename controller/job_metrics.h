// Per-job and fleet gauges computed when Prometheus scrapes, not kept on the hot path: a
// prometheus-cpp Collectable that asks the JobManager for a snapshot (under its reader lock) and
// turns it into metric families. Labels: `job_id` (running jobs only: a job's series end when it
// does; not `job`, which Prometheus gives every scraped series), `state`, `metric`, and the
// worker `profile` (capped; see kMaxProfiles).
//
//   nasforge_controller_job_trials{job_id,state}            trials of a running job by state
//   nasforge_controller_job_budget_trials{job_id}           budget.max_trials
//   nasforge_controller_job_best{job_id,metric}             best value of each objective so far
//   nasforge_controller_job_front_size{job_id}              candidates on the job's Pareto front
//   nasforge_controller_job_hypervolume{job_id}             dominated hypervolume (2 or 3
//   objectives) nasforge_controller_job_last_progress_timestamp_seconds{job_id}  last trial finish
//   (or start) nasforge_controller_workers{profile,state}           busy | idle | lost (gone < 1 h)
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

struct JobMetricsSnapshot {
  struct Job {
    std::string id;
    std::array<int64_t, v1::TrialState_ARRAYSIZE> trials{};  // by v1::TrialState
    int64_t budget_trials = 0;
    std::vector<std::pair<std::string, double>> best;  // (objective metric, best value)
    int64_t front_size = 0;
    std::optional<double> hypervolume;
    double last_progress_unix_seconds = 0;
  };
  std::vector<Job> jobs;
  std::map<std::pair<std::string, std::string>, int64_t> workers;  // (profile, state) -> count
};

// Worker profiles beyond this many distinct names are counted as profile="other".
inline constexpr size_t kMaxProfiles = 32;

std::vector<prometheus::MetricFamily> ToMetricFamilies(const JobMetricsSnapshot& snapshot);

class JobMetricsCollector final : public prometheus::Collectable {
 public:
  explicit JobMetricsCollector(std::function<JobMetricsSnapshot()> snapshot)
      : snapshot_(std::move(snapshot)) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    return ToMetricFamilies(snapshot_());
  }

 private:
  std::function<JobMetricsSnapshot()> snapshot_;
};

}  // namespace nasforge
