// The controller under load, over real gRPC: W worker threads (each with its own connection)
// lease and report T trials of one random-search job as fast as the controller lets them, on a
// real store. No training: a trial's accuracy is a function of its architecture hash, so what is
// measured is the service (lease -> result -> durable in the store -> front updated), not a
// model. Prints figures; not a test (`nasforge bench controller`).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "client/channel.h"

namespace nasforge {

struct ControllerBenchOptions {
  // A running controller to load (HOST:PORT, with `channel`'s token and TLS); empty: start one in
  // this process on loopback, on `store_url`.
  std::string controller;
  ChannelOptions channel;
  std::string store_url;  // in-process controller only; e.g. sqlite:///tmp/b.db, postgresql://...
  std::string space_file = "search_spaces/nb201_cifar.yaml";
  int workers = 4;
  int trials = 10000;
  // Trials per worker call: each worker leases this many at once and reports them in one
  // ReportResults call that also leases the next batch (1: one call per trial).
  int batch = 1;
  // Milliseconds each worker waits between its lease and its report (simulated training,
  // uniform in [t/2, 3t/2]; 0: none). With many workers, what measures the service's latency rather
  // than queueing for it.
  int trial_ms = 0;
  int window = 1000;  // trials in the early and late cost windows
  uint64_t seed = 1;
  // In-process controller only: after the run, stop it and start a new one on the same store,
  // timing recovery (start -> serving).
  bool measure_recovery = true;
};

struct LatencyFigures {
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  int64_t calls = 0;
};

struct ControllerBenchResult {
  int trials = 0;  // reported and acknowledged (durable)
  int workers = 0;
  double seconds = 0;  // first lease to last acknowledged report
  double trials_per_second = 0;
  int batch = 1;
  int trial_ms = 0;
  // LeaseTrial (a worker with nothing in hand) and ReportResults (reports + the next lease).
  LatencyFigures lease, report;
  int64_t empty_leases = 0;  // LeaseTrial answered "no trial yet"
  // Wall milliseconds per trial over the first and the last `window` acknowledged trials, and
  // their ratio (late / early: 1.0 means no slowdown as the store grows).
  double early_ms_per_trial = 0, late_ms_per_trial = 0, late_over_early = 0;
  double pareto_query_ms = 0;  // one QueryPareto on the finished job
  int pareto_front_size = 0;
  // One QueryPareto with 3 objectives (accuracy max, params and macs min) and a constraint
  // (accuracy at least 50%): a scan of every trial.
  double scan_query_ms = 0;
  int scan_front_size = 0, scan_considered = 0;
  double recovery_seconds = -1;     // restart to serving (-1: not measured)
  double rss_bytes_per_trial = -1;  // controller RSS growth over the run / trials (in process)
  std::string store;                // the store URL's scheme
};

absl::StatusOr<ControllerBenchResult> RunControllerBench(const ControllerBenchOptions& options);

}  // namespace nasforge
