#include "controller/metrics.h"

#include "core/early_stopping.h"
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
      measurements_waiting(NewGauge(r, "nasforge_controller_measurements_waiting",
                                    "Latency measurements queued or leased (each one key: "
                                    "architecture, profile, batch, threads, precision).")),
      measurements_leased_total(
          NewCounter(r, "nasforge_controller_measurements_leased_total",
                     "Latency measurement leases granted to workers of a target's profile.")),
      measurements_total(NewCounter(r, "nasforge_controller_measurements_total",
                                    "Latency measurements recorded (and cached).")),
      latency_cache_hits_total(
          NewCounter(r, "nasforge_controller_latency_cache_hits_total",
                     "Target latencies a trial took from the cache instead of measuring.")),
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
      store_commit_seconds(
          prometheus::BuildHistogram()
              .Name("nasforge_controller_store_commit_seconds")
              .Help("Duration of one store transaction.")
              .Register(r)
              .Add({},
                   prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                           0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5})),
      store_commit_records(
          prometheus::BuildHistogram()
              .Name("nasforge_controller_store_commit_records")
              .Help("Records in one committed store transaction (group size).")
              .Register(r)
              .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 5, 10, 25, 50, 100, 250, 500,
                                                               1000, 5000})),
      store_queued_records(NewGauge(r, "nasforge_controller_store_queued_records",
                                    "Records enqueued for the store and not yet durable.")),
      store_reconnects_total(NewCounter(r, "nasforge_controller_store_reconnects_total",
                                        "Store connections re-opened after an error.")),
      serving(NewGauge(r, "nasforge_controller_serving",
                       "1 while grpc.health.v1 answers SERVING (the store answers), else 0.")),
      workers_registered_total(NewCounter(r, "nasforge_controller_worker_registrations_total",
                                          "RegisterWorker calls accepted (a restarted worker "
                                          "registers again).")),
      suggest_seconds_(prometheus::BuildHistogram()
                           .Name("nasforge_controller_suggest_seconds")
                           .Help("Duration of one strategy step (Ask: propose the next "
                                 "admissible candidate), by strategy.")
                           .Register(r)),
      early_stops_(prometheus::BuildCounter()
                       .Name("nasforge_controller_early_stops_total")
                       .Help("Trials told to stop early, by rule.")
                       .Register(r)) {
  serving.Set(1);
  // Every rule's series exists from the start (a rate over a missing series is no data, not 0).
  for (const std::string& rule : StoppingRules().Names()) {
    if (rule != "none") EarlyStops(rule);
  }
  auto& fam = prometheus::BuildGauge()
                  .Name("nasforge_controller_trials")
                  .Help("Trials by state, over all jobs.")
                  .Register(r);
  for (v1::TrialState s : TrialStates()) {
    trials_by_state[s] = &fam.Add({{"state", TrialStateLabel(s)}});
  }
}

prometheus::Histogram& ControllerMetrics::SuggestSeconds(const std::string& strategy) {
  return suggest_seconds_.Add(
      {{"strategy", strategy}},
      prometheus::Histogram::BucketBoundaries{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                              0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5});
}

prometheus::Counter& ControllerMetrics::EarlyStops(const std::string& rule) {
  return early_stops_.Add({{"rule", rule}});
}

}  // namespace nasforge
