// libFuzzer: every unary RPC's request, as protobuf bytes, into what its handler delegates to
// (JobManager over a real SQLite store; the handlers in controller/rpc.cc only authenticate and
// convert). Byte 0 picks the method and the caller's role; with bit 0x80 the request's job id,
// lease and worker id are replaced by live ones, so the fuzzed rest reaches the checks behind the
// lookups (fencing, report validation, progress bounds). Any input: no crash, no hang, and
// nothing invalid is ever recorded (accepted metrics are finite; macs and params stay the
// controller's).
#include <google/protobuf/stubs/logging.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "controller/job_manager.h"
#include "controller/store.h"
#include "controller/store_writer.h"
#include "core/clock.h"
#include "core/log.h"

namespace {

namespace v1 = nasforge::v1;

// A live job (re-submitted when one ends) and a registered worker with a live lease.
struct World {
  nasforge::FakeClock clock;
  std::unique_ptr<nasforge::Store> store;
  std::unique_ptr<nasforge::StoreWriter> writer;
  std::unique_ptr<nasforge::JobManager> jm;
  std::string job_id;
  v1::LeaseTrialResponse lease;

  World() {
    std::string path = absl::StrCat(std::filesystem::temp_directory_path().string(),
                                    "/nasforge-rpc-fuzz-", getpid(), ".db");
    std::filesystem::remove(path);
    store = std::move(nasforge::OpenStore("sqlite://" + path).value());
    writer = std::make_unique<nasforge::StoreWriter>(store.get(), nullptr);
    jm = std::make_unique<nasforge::JobManager>(store.get(), writer.get(), &clock, nullptr);
    if (!jm->Recover().ok()) std::abort();
    v1::RegisterWorkerRequest reg;
    reg.set_worker_id("w");
    reg.mutable_hardware()->set_name("cpu-1t");
    if (!jm->RegisterWorker(reg).ok()) std::abort();
  }

  // A running job and a live lease on one of its trials.
  void Refresh() {
    auto job = jm->GetJob(job_id);
    if (!job.ok() || job->state() != v1::JOB_RUNNING) {
      v1::SubmitJobRequest s;
      s.set_spec_yaml(
          "search_space: {nb201: {}}\nbudget: {max_trials: 1000, max_parallel_trials: 4}\n"
          "training: {dataset: tabular}\nstrategy: {name: random}\n");
      job_id = jm->SubmitJob(s).value().id();
      lease.Clear();
    }
    v1::HeartbeatRequest hb;
    hb.set_worker_id("w");
    *hb.mutable_lease() = lease.lease();
    if (!lease.has_trial() || !jm->Heartbeat(hb).ok()) {
      v1::LeaseTrialRequest r;
      r.set_worker_id("w");
      auto got = jm->LeaseTrial(r);
      lease = got.ok() ? *got : v1::LeaseTrialResponse();
    }
  }
};

World* world = nullptr;

nasforge::Principal Caller(uint8_t b) {
  switch ((b >> 4) & 3) {
    case 0:
      return nasforge::Principal::Local();
    case 1:
      return {"reader", nasforge::Role::kRead};
    case 2:
      return {"submitter", nasforge::Role::kSubmit};
    default:
      return {"w", nasforge::Role::kWorker};
  }
}

// What the worker gate in rpc.cc checks before a worker call reaches the manager.
bool Gate(const std::string& worker_id, const nasforge::Principal& who) {
  return world->jm->CheckWorker(worker_id, who).ok();
}

// A call on a lease (heartbeat, progress, result): parsed from the bytes, with the live worker
// and lease substituted when `live`, through the worker gate, then `call`.
template <typename Req, typename Call>
void OnLease(const uint8_t* body, int n, bool live, const nasforge::Principal& who, Call call) {
  Req r;
  if (!r.ParseFromArray(body, n)) return;
  if (live) {
    r.set_worker_id("w");
    *r.mutable_lease() = world->lease.lease();
  }
  if (Gate(r.worker_id(), who)) call(r);
}

// Accepted results never store a non-finite value or a worker's cost figures.
void CheckTrial(const std::string& job_id, int64_t trial_id, double macs, double params) {
  auto t = world->jm->GetCandidate(job_id, trial_id);
  if (!t.ok()) return;
  for (const auto& [k, v] : t->metrics()) {
    if (!std::isfinite(v)) __builtin_trap();
  }
  for (const auto& p : t->curve()) {
    if (!std::isfinite(p.value())) __builtin_trap();
  }
  if (t->metrics().at("macs") != macs || t->metrics().at("params") != params) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);  // malformed input is expected by the thousand
  nasforge::SetLogLevel(nasforge::LogLevel::kError);
  world = new World();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t op = data[0];
  const bool live = op & 0x80;
  const nasforge::Principal who = Caller(op);
  const auto* body = data + 1;
  const int n = static_cast<int>(size - 1);
  World& w = *world;
  if (live) w.Refresh();
  const v1::Lease& lease = w.lease.lease();
  double macs = 0, params = 0;
  if (live && w.lease.has_trial()) {
    auto t = w.jm->GetCandidate(lease.job_id(), lease.trial_id()).value();
    macs = t.metrics().at("macs");
    params = t.metrics().at("params");
  }
  switch (op & 0x0f) {
    case 0: {
      v1::SubmitJobRequest r;
      if (r.ParseFromArray(body, n)) (void)w.jm->SubmitJob(r, who);
      break;
    }
    case 1: {
      v1::GetJobRequest r;
      if (r.ParseFromArray(body, n)) (void)w.jm->GetJob(live ? w.job_id : r.job_id(), who);
      break;
    }
    case 2: {
      v1::ListJobsRequest r;
      if (r.ParseFromArray(body, n)) (void)w.jm->ListJobs(r, who);
      break;
    }
    case 3: {
      v1::CancelJobRequest r;
      // Cancelling the live job would end every later live input at once: only on a byte.
      if (r.ParseFromArray(body, n) && (!live || (n > 0 && body[0] == 0x42))) {
        (void)w.jm->CancelJob(live ? w.job_id : r.job_id(), who);
      }
      break;
    }
    case 4: {
      v1::GetCandidateRequest r;
      if (r.ParseFromArray(body, n)) {
        (void)w.jm->GetCandidate(live ? w.job_id : r.job_id(), r.trial_id(), who);
      }
      break;
    }
    case 5: {
      v1::ListCandidatesRequest r;
      if (r.ParseFromArray(body, n)) {
        if (live) r.set_job_id(w.job_id);
        (void)w.jm->ListCandidates(r, who);
      }
      break;
    }
    case 6: {
      v1::QueryParetoRequest r;
      if (r.ParseFromArray(body, n)) {
        if (live) r.set_job_id(w.job_id);
        (void)w.jm->QueryPareto(r, who);
      }
      break;
    }
    case 7: {
      v1::RegisterWorkerRequest r;
      // Re-registering "w" as a new process would drop its lease: fuzz other ids.
      if (r.ParseFromArray(body, n) && r.worker_id() != "w") (void)w.jm->RegisterWorker(r, who);
      break;
    }
    case 8: {
      v1::LeaseTrialRequest r;
      if (r.ParseFromArray(body, n) && Gate(r.worker_id(), who)) (void)w.jm->LeaseTrial(r);
      break;
    }
    case 9:
      OnLease<v1::HeartbeatRequest>(body, n, live, who,
                                    [&](const auto& r) { (void)w.jm->Heartbeat(r); });
      break;
    case 10:
      OnLease<v1::ReportProgressRequest>(body, n, live, who,
                                         [&](const auto& r) { (void)w.jm->ReportProgress(r); });
      break;
    case 11:
      OnLease<v1::ReportResultRequest>(body, n, live, who,
                                       [&](const auto& r) { (void)w.jm->ReportResult(r); });
      break;
    case 12: {
      v1::GetImportanceRequest r;
      if (r.ParseFromArray(body, n)) {
        if (live) r.set_job_id(w.job_id);
        (void)w.jm->GetImportance(r, who);
      }
      break;
    }
    default:
      if (n > 0) w.clock.Advance(absl::Seconds(body[0] % 7));
      w.jm->ExpireLeases();
      break;
  }
  if (live && w.lease.has_trial()) CheckTrial(lease.job_id(), lease.trial_id(), macs, params);
  return 0;
}
