// WorkerLoop: a latency measurement lease (worker_loop.h): measured with the target's runtime
// (worker/latency_runtime.h) on this trainer's device, reported until the lease's deadline.
#include <algorithm>
#include <optional>
#include <string>

#include "absl/time/clock.h"
#include "core/log.h"
#include "worker/latency_runtime.h"
#include "worker/worker_loop.h"

namespace nasforge {

void WorkerLoop::RunMeasurement(const v1::MeasureTask& task) {
  const v1::HardwareTarget& target = task.target();
  const LatencySpec spec = LatencySpecOf(target);
  if (metrics_) metrics_->busy.Set(1);
  const absl::Time start = absl::Now();
  const std::optional<MeasureContext> ctx = trainer_->Measuring();
  absl::StatusOr<LatencyStats> stats =
      ctx ? MeasureWithRuntime(task.architecture(), target, *ctx)
          : absl::FailedPreconditionError("this worker's trainer does not measure latency");
  if (metrics_) {
    metrics_->busy.Set(0);
    metrics_->latency_measure_seconds.Observe(absl::ToDoubleSeconds(absl::Now() - start));
  }
  v1::ReportMeasurementRequest r;
  r.set_worker_id(worker_id_);
  r.set_token(task.token());
  if (!stats.ok()) {
    r.set_failed(true);
    r.set_error(std::string(stats.status().message()));
  } else {
    r.set_p50_ms(stats->p50_ms);
    r.set_p90_ms(stats->p90_ms);
    r.set_p99_ms(stats->p99_ms);
    r.set_spread(stats->spread);
    r.set_runs(stats->runs);
    r.set_timer(stats->timer);
  }
  // Retried while the controller is away, until the lease's deadline (after it the
  // measurement may be another worker's).
  const absl::Time give_up =
      std::max(absl::Now() + absl::Seconds(5), absl::FromUnixSeconds(task.deadline().seconds()) +
                                                   absl::Nanoseconds(task.deadline().nanos()));
  absl::Duration backoff = absl::Milliseconds(200);
  absl::Status st;
  for (;;) {
    st = client_->ReportMeasurement(r).status();
    if (st.ok() || LeaseGone(st) || absl::IsInvalidArgument(st) || absl::Now() > give_up || stop_) {
      break;
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  ++measurements_done_;
  Log(st.ok() ? LogLevel::kInfo : LogLevel::kWarn, "measurement_reported",
      {{"worker", worker_id_},
       {"hash", task.arch_hash()},
       {"batch", spec.batch},
       {"precision", spec.precision},
       {"runtime", target.runtime()},
       {"p50_ms", stats.ok() ? stats->p50_ms : -1.0},
       {"spread", stats.ok() ? stats->spread : -1.0},
       {"runs", stats.ok() ? stats->runs : 0},
       {"error", !stats.ok() ? std::string(stats.status().message())
                 : st.ok()   ? std::string()
                             : std::string(st.message())}});
}

}  // namespace nasforge
