// WorkerRegistry (worker_registry.h).
#include "controller/worker_registry.h"

#include <google/protobuf/util/time_util.h>

#include <random>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status.h"

namespace nasforge {
namespace {

google::protobuf::Timestamp ToProto(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

absl::Status CheckNames(const google::protobuf::RepeatedPtrField<std::string>& names,
                        const std::string& field) {
  if (names.size() > 16) return FieldError(field, "more than 16 names");
  for (int i = 0; i < names.size(); ++i) {
    if (names[i].empty() || names[i].size() > 64) {
      return FieldError(absl::StrCat(field, "[", i, "]"), "must be 1 to 64 characters");
    }
  }
  return absl::OkStatus();
}

}  // namespace

WorkerRegistry::WorkerRegistry(const Clock* clock, ControllerMetrics* metrics,
                               absl::Duration heartbeat_interval)
    : clock_(clock), metrics_(metrics), heartbeat_interval_(heartbeat_interval) {}

void WorkerRegistry::Load(std::vector<v1::Worker> workers) {
  absl::MutexLock l(&mu_);
  for (auto& w : workers) {
    std::string id = w.id();
    workers_[id] = {std::move(w), absl::InfinitePast()};
  }
}

absl::Status WorkerRegistry::Validate(const v1::RegisterWorkerRequest& req) {
  if (req.hardware().name().empty()) {
    return FieldError("hardware.name", "is required (a hardware profile name, e.g. cpu-1t)");
  }
  if (req.worker_id().size() > 128) return FieldError("worker_id", "longer than 128 characters");
  NF_RETURN_IF_ERROR(CheckNames(req.datasets(), "datasets"));
  NF_RETURN_IF_ERROR(CheckNames(req.compression(), "compression"));
  return CheckNames(req.latency_runtimes(), "latency_runtimes");
}

absl::StatusOr<WorkerRegistry::Registered> WorkerRegistry::Register(
    const v1::RegisterWorkerRequest& req, const Principal& caller) {
  NF_RETURN_IF_ERROR(Validate(req));
  absl::MutexLock l(&mu_);
  std::string id = req.worker_id();
  if (id.empty()) {
    std::random_device rd;
    do {
      id = absl::StrFormat("worker-%08x", rd());
    } while (workers_.count(id));
  }
  if (auto it = workers_.find(id); it != workers_.end() && !it->second.row.owner().empty() &&
                                   it->second.row.owner() != caller.name) {
    if (metrics_) metrics_->stale_reports_total.Increment();
    return absl::PermissionDeniedError(
        absl::StrCat("worker_id: '", id, "' is registered by another credential; pick another id"));
  }
  Entry& e = workers_[id];
  v1::Worker& w = e.row;
  Registered out;
  out.known = w.has_register_time();
  w.set_owner(caller.name);
  w.set_id(id);
  *w.mutable_hardware() = req.hardware();
  w.set_measures_latency(req.measures_latency());
  w.mutable_datasets()->Clear();
  for (const std::string& d : req.datasets()) w.add_datasets(absl::AsciiStrToLower(d));
  *w.mutable_latency_runtimes() = req.latency_runtimes();
  *w.mutable_compression() = req.compression();
  if (!out.known) *w.mutable_register_time() = ToProto(clock_->Now());
  *w.mutable_last_seen() = ToProto(clock_->Now());
  w.set_version(w.version() + 1);
  e.seen = clock_->Steady();
  out.row = w;
  return out;
}

absl::Status WorkerRegistry::CheckOwner(const std::string& worker_id,
                                        const Principal& caller) const {
  absl::MutexLock l(&mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end() || it->second.row.owner().empty() ||
      it->second.row.owner() == caller.name) {
    return absl::OkStatus();  // unknown ids are the call's to refuse (not registered)
  }
  if (metrics_) metrics_->stale_reports_total.Increment();
  return absl::PermissionDeniedError(absl::StrCat(
      "worker_id: '", worker_id, "' was registered by another credential; calls for it from '",
      caller.name, "' are refused"));
}

void WorkerRegistry::Touch(const std::string& worker_id) {
  absl::MutexLock l(&mu_);
  auto it = workers_.find(worker_id);
  if (it != workers_.end()) it->second.seen = clock_->Steady();
}

bool WorkerRegistry::Known(const std::string& worker_id) const {
  absl::MutexLock l(&mu_);
  return workers_.count(worker_id) > 0;
}

std::optional<v1::Worker> WorkerRegistry::Get(const std::string& worker_id) const {
  absl::MutexLock l(&mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) return std::nullopt;
  return it->second.row;
}

std::vector<v1::Worker> WorkerRegistry::Live() const {
  const absl::Time cutoff = LiveCutoff();
  std::vector<v1::Worker> out;
  absl::MutexLock l(&mu_);
  for (const auto& [id, e] : workers_) {
    if (e.seen >= cutoff) out.push_back(e.row);
  }
  return out;
}

size_t WorkerRegistry::LiveCount() const {
  const absl::Time cutoff = LiveCutoff();
  size_t n = 0;
  absl::MutexLock l(&mu_);
  for (const auto& [id, e] : workers_) n += e.seen >= cutoff;
  return n;
}

std::vector<std::pair<v1::Worker, absl::Time>> WorkerRegistry::All() const {
  std::vector<std::pair<v1::Worker, absl::Time>> out;
  absl::MutexLock l(&mu_);
  for (const auto& [id, e] : workers_) out.push_back({e.row, e.seen});
  return out;
}

size_t WorkerRegistry::Size() const {
  absl::MutexLock l(&mu_);
  return workers_.size();
}

absl::Time WorkerRegistry::LiveCutoff() const {
  // A worker busy in a long epoch still counts (it heartbeats only its lease).
  return clock_->Steady() - 3 * heartbeat_interval_ - absl::Seconds(30);
}

}  // namespace nasforge
