// JobManager: a worker registers (its hardware, what it measures and trains, its owner); a new
// process under a known id gives up the leases its predecessor held.
#include <cstdint>
#include <random>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "controller/job_manager.h"
#include "controller/job_manager_util.h"
#include "core/log.h"
#include "core/status.h"

namespace nasforge {

using namespace job_manager_internal;  // NOLINT: this class's own helpers

absl::StatusOr<v1::RegisterWorkerResponse> JobManager::RegisterWorker(
    const v1::RegisterWorkerRequest& req, const Principal& caller) {
  if (req.hardware().name().empty()) {
    return FieldError("hardware.name", "is required (a hardware profile name, e.g. cpu-1t)");
  }
  if (req.worker_id().size() > 128) return FieldError("worker_id", "longer than 128 characters");
  if (req.datasets_size() > 16) return FieldError("datasets", "more than 16 names");
  for (int i = 0; i < req.datasets_size(); ++i) {
    if (req.datasets(i).empty() || req.datasets(i).size() > 64) {
      return FieldError(absl::StrCat("datasets[", i, "]"), "must be 1 to 64 characters");
    }
  }
  if (req.latency_runtimes_size() > 16) return FieldError("latency_runtimes", "more than 16 names");
  for (int i = 0; i < req.latency_runtimes_size(); ++i) {
    if (req.latency_runtimes(i).empty() || req.latency_runtimes(i).size() > 64) {
      return FieldError(absl::StrCat("latency_runtimes[", i, "]"), "must be 1 to 64 characters");
    }
  }
  WriteBatch batch;
  Events events;
  v1::RegisterWorkerResponse resp;
  {
    absl::MutexLock l(&mu_);
    NF_RETURN_IF_ERROR(writer_->Admit());
    std::string id = req.worker_id();
    if (id.empty()) {
      std::random_device rd;
      do {
        id = absl::StrFormat("worker-%08x", rd());
      } while (workers_.count(id));
    }
    if (auto it = workers_.find(id);
        it != workers_.end() && !it->second.owner().empty() && it->second.owner() != caller.name) {
      if (metrics_) metrics_->stale_reports_total.Increment();
      return absl::PermissionDeniedError(absl::StrCat(
          "worker_id: '", id, "' is registered by another credential; pick another id"));
    }
    v1::Worker& w = workers_[id];
    bool known = w.has_register_time();
    w.set_owner(caller.name);
    w.set_id(id);
    *w.mutable_hardware() = req.hardware();
    w.set_measures_latency(req.measures_latency());
    w.mutable_datasets()->Clear();
    for (const std::string& d : req.datasets()) w.add_datasets(absl::AsciiStrToLower(d));
    *w.mutable_latency_runtimes() = req.latency_runtimes();
    if (!known) *w.mutable_register_time() = ToProto(clock_->Now());
    *w.mutable_last_seen() = ToProto(clock_->Now());
    {
      absl::MutexLock s(&seen_mu_);
      worker_seen_[id] = clock_->Steady();
      worker_owner_[id] = caller.name;
    }
    Stage(batch, w);
    if (req.new_process() && known) {
      // Its previous process died holding these leases (it re-registers only at start).
      std::set<JobState*> changed;
      for (const LeaseTable::Key& key : leases_.HeldBy(id)) {
        auto found = FindJob(key.first);
        if (!found.ok() || key.second < 0 ||
            key.second >= static_cast<int64_t>((*found)->trials.size())) {
          leases_.Release(key);
          continue;
        }
        v1::Trial& t = (*found)->trials[key.second];
        if (t.state() != v1::TRIAL_RUNNING || t.worker_id() != id) continue;
        if (metrics_) metrics_->leases_orphaned_total.Increment();
        LoseLease(**found, t,
                  absl::StrCat("worker ", id,
                               " restarted while training it (crashed, or killed: out of memory?)"),
                  batch, events);
        changed.insert(*found);
      }
      for (JobState* js : changed) {
        MaybeFinish(*js, events);
        Touch(js->job);
        Stage(batch, js->job);
      }
    }
    resp.set_worker_id(id);
    resp.set_heartbeat_seconds(static_cast<int>(absl::ToInt64Seconds(options_.heartbeat_interval)));
    UpdateGauges();
    if (metrics_) metrics_->workers_registered_total.Increment();
    Log(LogLevel::kInfo, "worker_registered",
        {{"worker", id},
         {"profile", req.hardware().name()},
         {"threads", req.hardware().threads()},
         {"cpu", req.hardware().cpu_model()},
         {"measures_latency", req.measures_latency()},
         {"runtimes", absl::StrJoin(req.latency_runtimes(), ",")},
         {"again", known}});
    EnqueueLocked(std::move(batch));
  }
  Publish(std::move(events));
  return resp;
}

}  // namespace nasforge
