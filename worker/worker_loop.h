// The worker's lease loop: register, lease, train with heartbeats on a Boost.Asio timer, report
// each epoch (the controller answers CONTINUE or STOP), report the result. Stop() (SIGTERM)
// hands the current trial back so another worker picks it up at once.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>  // before Boost.Asio (g++ 12, C++20)

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "worker/controller_client.h"
#include "worker/trainer.h"

namespace nasforge {

// The worker's instruments (nasforge_worker_*), registered in a registry the caller owns.
struct WorkerMetrics {
  explicit WorkerMetrics(prometheus::Registry& r);
  // Trials by outcome: succeeded, stopped_early, failed, handed_back, lost (lease lost or job
  // cancelled: nothing reported).
  prometheus::Counter& Outcome(const char* outcome);
  // Once registered: nasforge_worker_info{worker, profile, accelerator, threads, backend,
  // version} = 1.
  void SetInfo(const std::string& worker, const v1::HardwareProfile& hardware,
               const std::string& backend);

  prometheus::Counter& train_images_total;
  prometheus::Gauge& train_images_per_second;  // of the last epoch
  prometheus::Gauge& busy;                     // 1 while training
  prometheus::Counter& heartbeats_total;
  prometheus::Counter& heartbeat_failures_total;
  prometheus::Histogram& epoch_seconds;
  prometheus::Histogram& latency_measure_seconds;
  prometheus::Gauge& start_time_seconds;

 private:
  prometheus::Family<prometheus::Counter>& outcomes_;
  prometheus::Family<prometheus::Gauge>& info_;
};

struct WorkerOptions {
  std::string worker_id;  // empty: the controller assigns one
  v1::HardwareProfile hardware;
  std::string backend = "torch";                         // for nasforge_worker_info
  int max_trials = 0;                                    // exit after this many trials; 0 = never
  absl::Duration exit_when_idle = absl::ZeroDuration();  // exit after idling this long; 0 = never
  absl::Duration max_backoff = absl::Seconds(5);
  // Take latency measurement leases for this worker's profile (if the trainer can measure).
  bool measure_latency = true;
  // How long a finished trial's result is retried while the controller is unreachable.
  absl::Duration report_retry_window = absl::Minutes(10);
};

// A lease the controller no longer knows as this worker's (expired, handed on, the job gone):
// FAILED_PRECONDITION or NOT_FOUND. Retrying a report then is pointless.
bool LeaseGone(const absl::Status& s);

class WorkerLoop {
 public:
  // `client`, `trainer` and `metrics` (nullable) must outlive the loop.
  WorkerLoop(ControllerClient* client, Trainer* trainer, WorkerOptions options,
             WorkerMetrics* metrics);
  ~WorkerLoop();
  WorkerLoop(const WorkerLoop&) = delete;
  WorkerLoop& operator=(const WorkerLoop&) = delete;

  // Runs until Stop(), max_trials or exit_when_idle. Returns OK on a clean exit.
  absl::Status Run();
  // Thread-safe; returns at once. The current trial is handed back.
  void Stop();
  // The io_context the heartbeat timer runs on (main adds its signal_set to it).
  boost::asio::io_context& io() { return io_; }
  int trials_done() const { return trials_done_.load(); }

 private:
  absl::Status Register();
  // Runs one leased trial and reports it; returns the trial leased with the report, if any.
  std::optional<v1::LeaseTrialResponse> RunTrial(const v1::LeaseTrialResponse& lease);
  void StartHeartbeats(const v1::Lease& lease, int generation, int every_seconds);
  // Measures a leased architecture's latency and reports it (retried until its deadline);
  // worker_measurement.cc.
  void RunMeasurement(const v1::MeasureTask& task);
  // Sends the trained weights and self-check to the controller (chunks of 1 MiB, retried while
  // it is unreachable) before the result is reported. A failed upload is logged; the result is
  // reported anyway (only its export is lost).
  void UploadArtifacts(const v1::Lease& lease, const TrainResult& result);
  // A variant trial (lease.variant): the parent's weights fetched in chunks, then compressed.
  // `train`: the lease's training request and epoch callback, for variants that train (a pruned
  // network's fine-tuning).
  absl::StatusOr<TrainResult> MakeVariant(
      const v1::LeaseTrialResponse& lease, TrainRequest train,
      const std::function<Verdict(const EpochReport&)>& on_epoch);
  absl::StatusOr<TrainResult> MakePruned(
      const v1::LeaseTrialResponse& lease, TrainRequest train,
      const std::function<Verdict(const EpochReport&)>& on_epoch);
  void LogMade(const v1::LeaseTrialResponse& lease, const TrainResult& r);
  absl::StatusOr<TrainResult> MakeDistilled(
      const v1::LeaseTrialResponse& lease, TrainRequest train,
      const std::function<Verdict(const EpochReport&)>& on_epoch);
  // The parent's weights copied into the lease's (pruned) architecture.
  absl::StatusOr<PruneResult> PruneParent(const v1::LeaseTrialResponse& lease);
  // The variant's parent's trained weights, or with `teacher` its teacher's.
  absl::StatusOr<std::string> FetchParentWeights(const v1::Lease& lease, bool teacher = false);
  bool SleepUnlessStopped(absl::Duration d);

  ControllerClient* const client_;
  Trainer* const trainer_;
  const WorkerOptions options_;
  WorkerMetrics* const metrics_;
  std::string worker_id_;
  bool registered_ = false;  // set by the first successful RegisterWorker of this process
  int heartbeat_seconds_ = 5;

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread io_thread_;

  std::atomic<bool> stop_{false};
  std::atomic<bool> abort_trial_{false};  // set by Stop() or a heartbeat that says cancel/stale
  std::atomic<bool> lease_lost_{false};   // the controller no longer honours our lease
  bool artifacts_refused_ = false;        // the controller keeps no artifacts: stop sending
  std::atomic<int> generation_{0};        // invalidates heartbeat timers of finished trials
  std::atomic<int> trials_done_{0};
  std::atomic<int> measurements_done_{0};
};

}  // namespace nasforge
