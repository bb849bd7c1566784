#include "controller/metrics.h"

#include "core/trial_state.h"
#include "metrics/instruments.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {
ControllerMetrics::ControllerMetrics(prometheus::Registry& r)
    : jobs_running(NewGauge(r, "nasforge_controller_jobs_running", "Jobs in state RUNNING.")),
      leases_active(NewGauge(r, "nasforge_controller_leases_active", "Trials currently leased.")),
      workers_registered(NewGauge(r, "nasforge_controller_workers_registered",
                                  "Workers seen within three heartbeat intervals.")),
      leases_granted_total(
          NewCounter(r, "nasforge_controller_leases_granted_total", "Leases granted.")),
      leases_expired_total(NewCounter(r, "nasforge_controller_leases_expired_total",
                                      "Leases that expired without a heartbeat.")),
      leases_orphaned_total(
          NewCounter(r, "nasforge_controller_leases_orphaned_total",
                     "Leases given up because their worker process restarted while "
                     "holding them (a crash or an out-of-memory kill).")),
      unplaceable_trials_total(
          NewCounter(r, "nasforge_controller_unplaceable_trials_total",
                     "Trials failed because no live worker declares enough memory "
                     "to train them.")),
      stale_reports_total(
          NewCounter(r, "nasforge_controller_stale_reports_total",
                     "Worker heartbeats and reports refused for an old fencing token or "
                     "another worker's lease.")),
      invalid_reports_total(
          NewCounter(r, "nasforge_controller_invalid_reports_total",
                     "Worker results and progress points refused as invalid (NaN, out "
                     "of range, malformed metric names); never recorded.")),
      rejected_by_cost_total(
          NewCounter(r, "nasforge_controller_candidates_rejected_by_cost_total",
                     "Sampled candidates over a MACs/params bound, never trained.")),
      trials_finished_total(NewCounter(r, "nasforge_controller_trials_finished_total",
                                       "Trials that reached a terminal state.")),
      store_commits_total(NewCounter(r, "nasforge_controller_store_commits_total",
                                     "Store transactions committed (group commits).")),
      store_records_total(NewCounter(r, "nasforge_controller_store_records_total",
                                     "Records written to the store.")),
      store_errors_total(NewCounter(r, "nasforge_controller_store_errors_total",
                                    "Store transactions that failed (retried).")),
      store_commit_seconds(prometheus::BuildHistogram()
                               .Name("nasforge_controller_store_commit_seconds")
                               .Help("Duration of one store transaction.")
                               .Register(r)
                               .Add({}, prometheus::Histogram::BucketBoundaries{
                                            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                            0.25, 0.5, 1, 2.5})) {
  auto& fam = prometheus::BuildGauge()
                  .Name("nasforge_controller_trials")
                  .Help("Trials by state, over all jobs.")
                  .Register(r);
  for (v1::TrialState s : TrialStates()) {
    trials_by_state[s] = &fam.Add({{"state", TrialStateLabel(s)}});
  }
}

}  // namespace nasforge
