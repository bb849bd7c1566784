// MeasurementBroker (measurement_broker.h).
#include "controller/measurement_broker.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/hardware_targets.h"
#include "core/latency_runtimes.h"
#include "core/log.h"

namespace nasforge {
namespace {
google::protobuf::Timestamp ToProto(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}
}  // namespace

MeasurementBroker::MeasurementBroker(const Clock* clock, ControllerMetrics* metrics)
    : clock_(clock), metrics_(metrics) {
  std::random_device rd;
  absl::MutexLock l(&mu_);
  next_token_ = (uint64_t{rd()} << 32) ^ rd();
}

void MeasurementBroker::LoadCache(std::vector<v1::LatencyMeasurement> measurements) {
  absl::MutexLock l(&mu_);
  for (auto& m : measurements) {
    std::string key = LatencyKey(m);
    cache_[key] = std::move(m);
  }
}

std::optional<v1::LatencyMeasurement> MeasurementBroker::Cached(const std::string& key) const {
  absl::MutexLock l(&mu_);
  auto it = cache_.find(key);
  if (it == cache_.end()) return std::nullopt;
  return it->second;
}

void MeasurementBroker::Wait(const std::string& key, const v1::Architecture& arch,
                             const std::string& arch_hash, const v1::HardwareTarget& target,
                             const Waiter& waiter) {
  absl::MutexLock l(&mu_);
  Measuring& mg = measuring_[key];
  if (mg.seq == 0) {
    mg.seq = ++seq_;
    mg.since = clock_->Steady();
    *mg.task.mutable_architecture() = arch;
    mg.task.set_arch_hash(arch_hash);
    *mg.task.mutable_target() = target;
    mg.task.mutable_target()->clear_name();  // the setting, not this job's name for it
  }
  if (std::find(mg.waiting.begin(), mg.waiting.end(), waiter) == mg.waiting.end()) {
    mg.waiting.push_back(waiter);
  }
}

std::optional<v1::MeasureTask> MeasurementBroker::Grant(
    const v1::Worker& worker, const std::function<bool(const Waiter&)>& still_waits,
    const std::function<absl::Duration(const std::vector<Waiter>&)>& ttl_of) {
  if (!worker.measures_latency()) return std::nullopt;
  absl::MutexLock l(&mu_);
  auto best = measuring_.end();
  for (auto it = measuring_.begin(); it != measuring_.end();) {
    Measuring& mg = it->second;
    std::erase_if(mg.waiting, [&](const Waiter& w) { return !still_waits(w); });
    if (mg.waiting.empty() && mg.task.token() == 0) {
      it = measuring_.erase(it);
      continue;
    }
    if (mg.task.token() == 0 && MeasuresTarget(worker, mg.task.target()) &&
        (best == measuring_.end() || mg.seq < best->second.seq)) {
      best = it;
    }
    ++it;
  }
  if (best == measuring_.end()) return std::nullopt;
  Measuring& mg = best->second;
  const absl::Duration ttl = ttl_of(mg.waiting);
  uint64_t token = next_token_++;
  if (token == 0) token = next_token_++;
  mg.task.set_token(token);
  *mg.task.mutable_deadline() = ToProto(clock_->Now() + ttl);
  mg.worker = worker.id();
  mg.deadline = clock_->Steady() + ttl;
  tokens_[token] = best->first;
  if (metrics_) metrics_->measurements_leased_total.Increment();
  const v1::HardwareTarget& t = mg.task.target();
  Log(LogLevel::kInfo, "measurement_leased",
      {{"worker", worker.id()},
       {"hash", mg.task.arch_hash()},
       {"profile", t.profile()},
       {"batch", t.batch_size()},
       {"threads", t.threads()},
       {"precision", t.precision()},
       {"runtime", t.runtime()},
       {"waiting", mg.waiting.size()},
       {"attempt", mg.attempts + 1}});
  return mg.task;
}

void MeasurementBroker::Unlease(Measuring& mg) {
  tokens_.erase(mg.task.token());
  mg.task.set_token(0);
  mg.worker.clear();
  mg.since = clock_->Steady();
  ++mg.attempts;
}

absl::StatusOr<MeasurementBroker::Outcome> MeasurementBroker::Report(
    const v1::ReportMeasurementRequest& req) {
  absl::MutexLock l(&mu_);
  auto tk = tokens_.find(req.token());
  if (tk == tokens_.end() || measuring_.at(tk->second).worker != req.worker_id()) {
    if (metrics_) metrics_->stale_reports_total.Increment();
    return absl::FailedPreconditionError(absl::StrCat(
        "token: measurement lease ", req.token(),
        " is not yours now (it expired, was measured, or the controller restarted); drop it"));
  }
  const std::string key = tk->second;
  Measuring& mg = measuring_.at(key);
  Outcome out;
  out.token = req.token();
  if (req.failed()) {
    Unlease(mg);
    mg.last_error = req.error().empty() ? "no message" : req.error();
    Log(LogLevel::kWarn, "measurement_failed",
        {{"worker", req.worker_id()},
         {"hash", mg.task.arch_hash()},
         {"profile", mg.task.target().profile()},
         {"runtime", mg.task.target().runtime()},
         {"attempt", mg.attempts},
         {"error", mg.last_error}});
    if (mg.attempts < kAttempts) return out;  // kRetry: queued again
    out.kind = Outcome::kFailed;
    out.error = mg.last_error;
    out.waiting = std::move(mg.waiting);
    measuring_.erase(key);
    return out;
  }
  const v1::HardwareTarget& target = mg.task.target();
  v1::LatencyMeasurement& m = out.measurement;
  m.set_arch_hash(mg.task.arch_hash());
  m.set_profile(target.profile());
  m.set_batch_size(target.batch_size());
  m.set_threads(target.threads());
  m.set_precision(target.precision());
  m.set_runtime(target.runtime().empty() ? kDefaultLatencyRuntime : target.runtime());
  *m.mutable_options() = target.options();
  m.set_p50_ms(req.p50_ms());
  m.set_p90_ms(req.p90_ms());
  m.set_p99_ms(req.p99_ms());
  m.set_spread(req.spread());
  m.set_runs(req.runs());
  m.set_timer(req.timer());
  m.set_worker_id(req.worker_id());
  *m.mutable_measure_time() = ToProto(clock_->Now());
  cache_[key] = m;
  if (metrics_) metrics_->measurements_total.Increment();
  Log(LogLevel::kInfo, "measured",
      {{"worker", req.worker_id()},
       {"hash", m.arch_hash()},
       {"profile", m.profile()},
       {"batch", m.batch_size()},
       {"threads", m.threads()},
       {"precision", m.precision()},
       {"runtime", m.runtime()},
       {"p50_ms", m.p50_ms()},
       {"spread", m.spread()},
       {"waiting", mg.waiting.size()}});
  out.kind = Outcome::kMeasured;
  out.waiting = std::move(mg.waiting);
  tokens_.erase(tk);
  measuring_.erase(key);
  return out;
}

std::vector<MeasurementBroker::Failure> MeasurementBroker::Expire(
    const std::function<bool(const v1::HardwareTarget&)>& takes, absl::Duration unplaceable_after) {
  std::vector<Failure> failed;
  absl::MutexLock l(&mu_);
  const absl::Time steady = clock_->Steady();
  for (auto it = measuring_.begin(); it != measuring_.end();) {
    Measuring& mg = it->second;
    std::string why;
    if (mg.task.token() != 0 && mg.deadline <= steady) {
      if (metrics_) metrics_->leases_expired_total.Increment();
      mg.last_error = absl::StrCat("worker ", mg.worker, " did not report it before its deadline");
      Log(LogLevel::kWarn, "measurement_expired",
          {{"worker", mg.worker}, {"hash", mg.task.arch_hash()}, {"attempt", mg.attempts + 1}});
      Unlease(mg);
      if (mg.attempts >= kAttempts) {
        why = absl::StrCat("its latency on target profile ", mg.task.target().profile(),
                           " could not be measured (", kAttempts,
                           " attempts); last error: ", mg.last_error);
      }
    }
    if (why.empty() && mg.task.token() == 0) {
      if (takes(mg.task.target())) {
        mg.since = steady;  // someone can take it: it waits its turn
      } else if (steady - mg.since >= unplaceable_after) {
        why = absl::StrCat("no live worker of ", MeasurerDescription(mg.task.target()),
                           " measures latency (waited ", absl::FormatDuration(unplaceable_after),
                           "): start one, e.g. nasforge-worker --hardware-profile ",
                           mg.task.target().profile(), ", or drop the hardware target");
      }
    }
    if (why.empty()) {
      ++it;
      continue;
    }
    failed.push_back({std::move(mg.waiting), std::move(why)});
    it = measuring_.erase(it);
  }
  return failed;
}

void MeasurementBroker::ForgetJob(const std::string& job) {
  absl::MutexLock l(&mu_);
  for (auto it = measuring_.begin(); it != measuring_.end();) {
    std::erase_if(it->second.waiting, [&job](const Waiter& w) { return w.job == job; });
    if (it->second.waiting.empty() && it->second.task.token() == 0) {
      it = measuring_.erase(it);
    } else {
      ++it;
    }
  }
}

size_t MeasurementBroker::Waiting() const {
  absl::MutexLock l(&mu_);
  return measuring_.size();
}

size_t MeasurementBroker::CacheSize() const {
  absl::MutexLock l(&mu_);
  return cache_.size();
}

}  // namespace nasforge
