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
  NF_RETURN_IF_ERROR(WorkerRegistry::Validate(req));
  WriteBatch batch;
  Events events;
  v1::RegisterWorkerResponse resp;
  {
    absl::MutexLock l(&mu_);
    NF_RETURN_IF_ERROR(writer_->Admit());
    NF_ASSIGN_OR_RETURN(WorkerRegistry::Registered reg, workers_.Register(req, caller));
    const std::string id = reg.row.id();
    const bool known = reg.known;
    batch.workers.push_back(std::move(reg.row));
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
