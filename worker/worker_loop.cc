#include "worker/worker_loop.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/status.h"
#include "metrics/build_info.h"
#include "metrics/instruments.h"
#include "worker/latency_runtime.h"

namespace nasforge {

bool LeaseGone(const absl::Status& s) {
  return absl::IsFailedPrecondition(s) || absl::IsNotFound(s);
}

WorkerMetrics::WorkerMetrics(prometheus::Registry& r)
    : train_images_total(
          NewCounter(r, "nasforge_worker_train_images_total", "Training images processed.")),
      train_images_per_second(NewGauge(r, "nasforge_worker_train_images_per_second",
                                       "Training throughput of the last epoch.")),
      busy(NewGauge(r, "nasforge_worker_busy", "1 while a trial is training.")),
      heartbeats_total(NewCounter(r, "nasforge_worker_heartbeats_total", "Heartbeats sent.")),
      heartbeat_failures_total(NewCounter(r, "nasforge_worker_heartbeat_failures_total",
                                          "Heartbeats that got no answer or an error.")),
      epoch_seconds(
          prometheus::BuildHistogram()
              .Name("nasforge_worker_epoch_seconds")
              .Help("Duration of one training epoch (with its validation).")
              .Register(r)
              .Add({}, prometheus::Histogram::BucketBoundaries{0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10,
                                                               30, 60, 120, 300, 600, 1800})),
      latency_measure_seconds(
          prometheus::BuildHistogram()
              .Name("nasforge_worker_latency_measure_seconds")
              .Help("Time one candidate's latency benchmark took (warm-up and repetitions).")
              .Register(r)
              .Add({}, prometheus::Histogram::BucketBoundaries{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3,
                                                               5, 10, 30})),
      start_time_seconds(NewGauge(r, "nasforge_worker_start_time_seconds",
                                  "Unix time this worker process started (restarts show as "
                                  "changes).")),
      outcomes_(prometheus::BuildCounter()
                    .Name("nasforge_worker_trials_total")
                    .Help("Trials this worker finished, by outcome.")
                    .Register(r)),
      info_(prometheus::BuildGauge()
                .Name("nasforge_worker_info")
                .Help("Always 1; the labels describe the worker (set once it registered).")
                .Register(r)) {
  start_time_seconds.Set(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
  for (const char* o : {"succeeded", "stopped_early", "failed", "handed_back", "lost"}) Outcome(o);
}

prometheus::Counter& WorkerMetrics::Outcome(const char* outcome) {
  return outcomes_.Add({{"outcome", outcome}});
}

void WorkerMetrics::SetInfo(const std::string& worker, const v1::HardwareProfile& hw,
                            const std::string& backend) {
  info_
      .Add({{"worker", worker},
            {"profile", hw.name()},
            {"accelerator", hw.accelerator().empty() ? "none" : hw.accelerator()},
            {"threads", std::to_string(hw.threads())},
            {"backend", backend},
            {"version", BuildVersion()}})
      .Set(1);
}

WorkerLoop::WorkerLoop(ControllerClient* client, Trainer* trainer, WorkerOptions options,
                       WorkerMetrics* metrics)
    : client_(client),
      trainer_(trainer),
      options_(std::move(options)),
      metrics_(metrics),
      work_(boost::asio::make_work_guard(io_)) {
  io_thread_ = std::thread([this] { io_.run(); });
}

WorkerLoop::~WorkerLoop() {
  work_.reset();
  io_.stop();
  io_thread_.join();
}

void WorkerLoop::Stop() {
  stop_ = true;
  abort_trial_ = true;
}

bool WorkerLoop::SleepUnlessStopped(absl::Duration d) {
  absl::Time end = absl::Now() + d;
  while (!stop_ && absl::Now() < end) absl::SleepFor(std::min(d, absl::Milliseconds(50)));
  return !stop_;
}

absl::Status WorkerLoop::Register() {
  absl::Duration backoff = absl::Milliseconds(200);
  while (!stop_) {
    v1::RegisterWorkerRequest req;
    req.set_worker_id(worker_id_.empty() ? options_.worker_id : worker_id_);
    *req.mutable_hardware() = options_.hardware;
    req.set_new_process(!registered_);
    for (const std::string& d : trainer_->Datasets()) req.add_datasets(d);
    for (const std::string& k : trainer_->CompressionKinds()) req.add_compression(k);
    const std::optional<MeasureContext> measuring = trainer_->Measuring();
    req.set_measures_latency(options_.measure_latency && measuring.has_value());
    if (req.measures_latency()) {
      for (const std::string& r : LatencyRuntimesOn(measuring->device)) {
        req.add_latency_runtimes(r);
      }
    }
    auto resp = client_->RegisterWorker(req);
    if (resp.ok()) {
      registered_ = true;
      worker_id_ = resp->worker_id();
      heartbeat_seconds_ = std::max(1, resp->heartbeat_seconds());
      if (metrics_) metrics_->SetInfo(worker_id_, options_.hardware, options_.backend);
      Log(LogLevel::kInfo, "registered",
          {{"worker", worker_id_},
           {"profile", options_.hardware.name()},
           {"heartbeat_seconds", heartbeat_seconds_}});
      return absl::OkStatus();
    }
    if (absl::IsInvalidArgument(resp.status())) return resp.status();
    Log(LogLevel::kWarn, "register_failed",
        {{"error", resp.status().message()},
         {"retry_in_ms", absl::ToInt64Milliseconds(backoff)},
         {"action", "is the controller running at --controller?"}});
    SleepUnlessStopped(backoff);
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  return absl::CancelledError("stopped before registering");
}

absl::Status WorkerLoop::Run() {
  if (absl::Status st = Register(); !st.ok()) return stop_ ? absl::OkStatus() : st;
  absl::Time idle_since = absl::Now();
  absl::Duration backoff = absl::Milliseconds(200);
  // The trial leased with the last report (one round trip per trial). It runs even when
  // stopping: a stopping worker hands it back at once.
  std::optional<v1::LeaseTrialResponse> next;
  while (!stop_ || next) {
    if (next) {
      v1::LeaseTrialResponse lease = *std::move(next);
      next.reset();
      if (lease.has_measure()) {
        RunMeasurement(lease.measure());
      } else {
        next = RunTrial(lease);
      }
      idle_since = absl::Now();
      continue;
    }
    if (options_.max_trials > 0 && trials_done_ >= options_.max_trials) break;
    v1::LeaseTrialRequest req;
    req.set_worker_id(worker_id_);
    auto resp = client_->LeaseTrial(req);
    if (!resp.ok()) {
      if (absl::IsFailedPrecondition(resp.status())) {
        (void)Register();  // the controller forgot us (new database?)
        continue;
      }
      Log(LogLevel::kWarn, "lease_failed",
          {{"worker", worker_id_},
           {"error", resp.status().message()},
           {"retry_in_ms", absl::ToInt64Milliseconds(backoff)}});
      SleepUnlessStopped(backoff);
      backoff = std::min(backoff * 2, options_.max_backoff);
      continue;
    }
    backoff = absl::Milliseconds(200);
    if (resp->has_measure()) {
      RunMeasurement(resp->measure());
      idle_since = absl::Now();
      continue;
    }
    if (!resp->has_trial()) {
      if (options_.exit_when_idle > absl::ZeroDuration() &&
          absl::Now() - idle_since > options_.exit_when_idle) {
        Log(LogLevel::kInfo, "idle_exit",
            {{"worker", worker_id_}, {"trials", trials_done_.load()}});
        break;
      }
      SleepUnlessStopped(absl::Milliseconds(std::max(50, resp->retry_after_ms())));
      continue;
    }
    next = RunTrial(*resp);
    idle_since = absl::Now();
  }
  Log(LogLevel::kInfo, "worker_exit", {{"worker", worker_id_}, {"trials", trials_done_.load()}});
  return absl::OkStatus();
}

void WorkerLoop::StartHeartbeats(const v1::Lease& lease, int generation, int every_seconds) {
  auto timer = std::make_shared<boost::asio::steady_timer>(io_);
  auto tick = std::make_shared<std::function<void()>>();
  *tick = [this, timer, tick, lease, generation, every_seconds]() {
    timer->expires_after(std::chrono::seconds(every_seconds));
    timer->async_wait([this, timer, tick, lease, generation](const boost::system::error_code& ec) {
      if (ec || generation_.load() != generation) {
        *tick = nullptr;  // break the self-reference
        return;
      }
      v1::HeartbeatRequest req;
      req.set_worker_id(worker_id_);
      *req.mutable_lease() = lease;
      auto resp = client_->Heartbeat(req);
      if (metrics_) {
        metrics_->heartbeats_total.Increment();
        if (!resp.ok()) metrics_->heartbeat_failures_total.Increment();
      }
      if (resp.ok() && resp->cancel()) {
        Log(LogLevel::kInfo, "trial_cancelled",
            {{"job", lease.job_id()}, {"trial", lease.trial_id()}, {"worker", worker_id_}});
        lease_lost_ = true;
        abort_trial_ = true;
      } else if (!resp.ok() && LeaseGone(resp.status())) {
        Log(LogLevel::kWarn, "lease_lost",
            {{"job", lease.job_id()},
             {"trial", lease.trial_id()},
             {"worker", worker_id_},
             {"error", resp.status().message()}});
        lease_lost_ = true;
        abort_trial_ = true;
      } else if (!resp.ok()) {
        Log(LogLevel::kWarn, "heartbeat_failed",
            {{"job", lease.job_id()},
             {"trial", lease.trial_id()},
             {"worker", worker_id_},
             {"error", resp.status().message()}});
      }
      if (generation_.load() == generation) {
        (*tick)();
      } else {
        *tick = nullptr;
      }
    });
  };
  boost::asio::post(io_, [tick] { (*tick)(); });
}

std::optional<v1::LeaseTrialResponse> WorkerLoop::RunTrial(const v1::LeaseTrialResponse& lease) {
  const v1::Lease& l = lease.lease();
  int gen = ++generation_;
  abort_trial_ = stop_.load();
  lease_lost_ = false;
  if (metrics_) metrics_->busy.Set(1);
  Log(LogLevel::kInfo, "trial_started",
      {{"job", l.job_id()},
       {"trial", l.trial_id()},
       {"worker", worker_id_},
       {"epoch_token", l.epoch()},
       {"epochs", lease.epochs()},
       {"hash", lease.arch_hash()}});
  StartHeartbeats(l, gen,
                  lease.heartbeat_seconds() > 0 ? lease.heartbeat_seconds() : heartbeat_seconds_);

  TrainRequest req;
  req.architecture = lease.architecture();
  req.training = lease.training();
  req.epochs = lease.epochs();
  req.seed = lease.seed();
  req.split_seed = lease.split_seed();
  auto on_epoch = [&](const EpochReport& r) -> Verdict {
    if (metrics_) {
      metrics_->train_images_total.Increment(static_cast<double>(r.images));
      metrics_->train_images_per_second.Set(r.images_per_second);
      metrics_->epoch_seconds.Observe(r.seconds);
    }
    Log(LogLevel::kInfo, "epoch",
        {{"job", l.job_id()},
         {"trial", l.trial_id()},
         {"worker", worker_id_},
         {"epoch", absl::StrCat(r.epoch, "/", lease.epochs())},
         {"val_accuracy", r.validation_accuracy},
         {"loss", r.train_loss},
         {"seconds", r.seconds},
         {"images_per_second", static_cast<int64_t>(r.images_per_second)}});
    v1::ReportProgressRequest pr;
    pr.set_worker_id(worker_id_);
    *pr.mutable_lease() = l;
    pr.mutable_point()->set_epoch(r.epoch);
    pr.mutable_point()->set_value(r.validation_accuracy);
    pr.mutable_point()->set_loss(r.train_loss);
    pr.mutable_point()->set_seconds(r.seconds);
    auto resp = client_->ReportProgress(pr);
    if (!resp.ok()) {
      if (LeaseGone(resp.status())) {
        lease_lost_ = true;
        return Verdict::kAbort;
      }
      Log(LogLevel::kWarn, "progress_report_failed",
          {{"job", l.job_id()},
           {"trial", l.trial_id()},
           {"error", resp.status().message()},
           {"action", "training continues"}});
      return Verdict::kContinue;
    }
    return resp->decision() == v1::STOP ? Verdict::kStop : Verdict::kContinue;
  };
  absl::StatusOr<TrainResult> result = lease.has_variant()
                                           ? MakeVariant(lease, req, on_epoch)
                                           : trainer_->Train(req, on_epoch, abort_trial_);
  ++generation_;  // ends the heartbeat chain
  if (metrics_) metrics_->busy.Set(0);

  v1::ReportResultRequest rr;
  rr.set_worker_id(worker_id_);
  *rr.mutable_lease() = l;
  rr.set_hardware_profile(options_.hardware.name());
  if (lease_lost_) {
    if (metrics_) metrics_->Outcome("lost").Increment();
    Log(LogLevel::kInfo, "trial_dropped",
        {{"job", l.job_id()},
         {"trial", l.trial_id()},
         {"worker", worker_id_},
         {"reason", "lease lost or job cancelled"}});
    return std::nullopt;
  }
  if (!result.ok() && absl::IsAborted(result.status())) {
    rr.set_handed_back(true);
    if (metrics_) metrics_->Outcome("handed_back").Increment();
  } else if (!result.ok()) {
    rr.set_failed(true);
    rr.set_error(std::string(result.status().message()));
    if (metrics_) metrics_->Outcome("failed").Increment();
  } else {
    UploadArtifacts(l, *result);
    for (const auto& [k, v] : result->metrics) (*rr.mutable_metrics())[k] = v;
    rr.set_stopped_early(result->stopped_early);
    if (metrics_) {
      metrics_->Outcome(result->stopped_early ? "stopped_early" : "succeeded").Increment();
      if (result->latency_measure_seconds > 0) {
        metrics_->latency_measure_seconds.Observe(result->latency_measure_seconds);
      }
    }
  }
  // Ask for the next trial in the same call, unless this worker is stopping or done after this.
  const bool want_next = !stop_ && !rr.handed_back() &&
                         (options_.max_trials <= 0 || trials_done_ + 1 < options_.max_trials);
  rr.set_lease_next(want_next ? 1 : 0);
  std::optional<v1::LeaseTrialResponse> next;
  // Keep trying while the controller is away (a restarted controller honours the lease); give
  // up after report_retry_window, or at once when stopping with a trial to hand back.
  absl::Duration backoff = absl::Milliseconds(200);
  absl::Time give_up = absl::Now() + options_.report_retry_window;
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<v1::ReportResultResponse> answer = client_->ReportResult(rr);
    absl::Status st = answer.status();
    if (st.ok() && (answer->next().has_trial() || answer->next().has_measure())) {
      next = answer->next();
    }
    if (st.ok() || LeaseGone(st)) {
      Log(st.ok() ? LogLevel::kInfo : LogLevel::kWarn, "trial_reported",
          {{"job", l.job_id()},
           {"trial", l.trial_id()},
           {"worker", worker_id_},
           {"outcome", rr.handed_back() ? "handed_back"
                       : rr.failed()    ? "failed"
                                        : "ok"},
           {"accuracy", rr.metrics().count("accuracy") ? rr.metrics().at("accuracy") : -1.0},
           {"test_accuracy",
            rr.metrics().count("test_accuracy") ? rr.metrics().at("test_accuracy") : -1.0},
           {"macs", rr.metrics().count("macs") ? rr.metrics().at("macs") : -1.0},
           {"latency_ms", rr.metrics().count("latency_ms") ? rr.metrics().at("latency_ms") : -1.0},
           {"error", st.ok() ? rr.error() : std::string(st.message())}});
      break;
    }
    if (absl::Now() > give_up || (stop_ && rr.handed_back() && attempt >= 3)) {
      Log(LogLevel::kError, "report_dropped",
          {{"job", l.job_id()},
           {"trial", l.trial_id()},
           {"attempts", attempt},
           {"error", st.message()},
           {"action", "the controller is unreachable; its lease expiry will re-queue the trial"}});
      break;
    }
    Log(LogLevel::kWarn, "report_failed",
        {{"job", l.job_id()},
         {"trial", l.trial_id()},
         {"attempt", attempt},
         {"error", st.message()}});
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  if (!rr.handed_back()) ++trials_done_;
  return next;
}

void WorkerLoop::UploadArtifacts(const v1::Lease& l, const TrainResult& result) {
  if (artifacts_refused_) return;
  const std::pair<const char*, const std::string*> files[] = {{"weights.pt", &result.weights},
                                                              {"check.pt", &result.check}};
  for (const auto& [name, bytes] : files) {
    if (bytes->empty()) continue;
    const int64_t total = static_cast<int64_t>(bytes->size());
    int64_t offset = 0;
    int failures = 0;
    do {
      v1::UploadArtifactRequest up;
      up.set_worker_id(worker_id_);
      *up.mutable_lease() = l;
      up.set_name(name);
      up.set_offset(offset);
      up.set_total_size(total);
      const int64_t n = std::min<int64_t>(total - offset, 1 << 20);
      up.set_data(bytes->substr(static_cast<size_t>(offset), static_cast<size_t>(n)));
      auto answer = client_->UploadArtifact(up);
      if (answer.ok()) {
        offset = answer->received();
        continue;
      }
      const absl::Status& st = answer.status();
      if (absl::IsUnimplemented(st) ||
          (absl::IsFailedPrecondition(st) && absl::StrContains(st.message(), "--artifact-dir"))) {
        artifacts_refused_ = true;
        Log(LogLevel::kInfo, "artifacts_off",
            {{"worker", worker_id_},
             {"reason", st.message()},
             {"action", "weights are not kept; `nasforge export` needs them"}});
        return;
      }
      const bool transient = absl::IsUnavailable(st) || absl::IsDeadlineExceeded(st);
      if (!transient || ++failures > 3) {
        Log(LogLevel::kWarn, "artifact_upload_failed",
            {{"job", l.job_id()},
             {"trial", l.trial_id()},
             {"worker", worker_id_},
             {"name", name},
             {"error", st.message()},
             {"action", "the result is still reported; this trial cannot be exported"}});
        return;
      }
      absl::SleepFor(absl::Milliseconds(200 * failures));
    } while (offset < total);
    Log(LogLevel::kDebug, "artifact_uploaded",
        {{"job", l.job_id()}, {"trial", l.trial_id()}, {"name", name}, {"bytes", total}});
  }
}

}  // namespace nasforge
