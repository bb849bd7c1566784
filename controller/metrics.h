// Controller metrics, declared as a struct built from a registry the caller owns (no global
// registry). Names follow nasforge_controller_<thing>_<unit>; no unbounded labels.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <string>

#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

struct ControllerMetrics {
  explicit ControllerMetrics(prometheus::Registry& registry);

  // Index by v1::TrialState value (core/trial_state.h TrialStates()).
  std::array<prometheus::Gauge*, v1::TrialState_ARRAYSIZE> trials_by_state{};
  prometheus::Gauge& jobs_running;
  prometheus::Gauge& leases_active;
  prometheus::Gauge& workers_registered;
  prometheus::Counter& leases_granted_total;
  prometheus::Counter& leases_expired_total;
  prometheus::Counter& leases_orphaned_total;
  prometheus::Counter& unplaceable_trials_total;
  prometheus::Gauge& measurements_waiting;         // latency measurements queued or leased
  prometheus::Counter& measurements_leased_total;  // latency measurement leases granted
  prometheus::Counter& measurements_total;         // latency measurements recorded
  prometheus::Counter& latency_cache_hits_total;   // target latencies taken from the cache
  prometheus::Counter& stale_reports_total;
  prometheus::Counter& invalid_reports_total;
  prometheus::Counter& rejected_by_cost_total;
  prometheus::Counter& trials_finished_total;
  prometheus::Counter& store_commits_total;
  prometheus::Counter& store_records_total;
  prometheus::Counter& store_errors_total;
  prometheus::Histogram& store_commit_seconds;
  prometheus::Histogram& store_commit_records;  // records in one committed transaction
  prometheus::Gauge& store_queued_records;      // enqueued, not yet durable
  prometheus::Counter& store_reconnects_total;
  prometheus::Gauge& serving;  // 1 while grpc.health.v1 says SERVING
  prometheus::Counter& workers_registered_total;

  // One strategy step's duration (Ask, with its admissibility checks), by strategy name. Names
  // come from the strategy registry (bounded). Thread-safe.
  prometheus::Histogram& SuggestSeconds(const std::string& strategy);
  // Trials stopped by a rule (core/early_stopping.h registry names: bounded). Thread-safe.
  prometheus::Counter& EarlyStops(const std::string& rule);

 private:
  prometheus::Family<prometheus::Histogram>& suggest_seconds_;
  prometheus::Family<prometheus::Counter>& early_stops_;
};

}  // namespace nasforge
