#include "controller/rpc.h"

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>

#include "core/log.h"

namespace nasforge {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

// UNAVAILABLE answers carry gRPC's retry pushback (clients with a retry policy wait that long).
grpc::Status WithRetryHint(CallbackServerContext* ctx, const absl::Status& s) {
  if (absl::IsUnavailable(s)) ctx->AddTrailingMetadata("grpc-retry-pushback-ms", "1000");
  return ToGrpcStatus(s);
}

// The one gate every handler passes first: who is calling (the "authorization" bearer token),
// and may they call this method. Refusals are logged without the token.
absl::StatusOr<Principal> Gate(CallbackServerContext* ctx, Authenticator* auth,
                               absl::string_view service, absl::string_view method) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  absl::string_view header = it == md.end()
                                 ? absl::string_view()
                                 : absl::string_view(it->second.data(), it->second.size());
  absl::StatusOr<Principal> who = auth->Authenticate(header);
  // With authentication off (loopback only) the caller may do everything, workers included.
  absl::Status st = !who.ok()         ? who.status()
                    : auth->enabled() ? Authorize(*who, service, method)
                                      : absl::OkStatus();
  if (!st.ok()) {
    Log(LogLevel::kWarn, "call_refused",
        {{"method", absl::StrCat(service, "/", method)},
         {"peer", ctx->peer()},
         {"caller", who.ok() ? who->name : std::string("unauthenticated")},
         {"error", st.message()}});
    return st;
  }
  return who;
}

absl::Status NoArtifacts() {
  return absl::FailedPreconditionError(
      "this controller keeps no trial artifacts: start it with --artifact-dir DIR (the default "
      "with a sqlite:// store is next to the database)");
}

ServerUnaryReactor* Refuse(CallbackServerContext* ctx, const absl::Status& s) {
  ServerUnaryReactor* r = ctx->DefaultReactor();
  r->Finish(ToGrpcStatus(s));
  return r;
}

// Passes the gate or answers the refusal: binds `who` (a Principal) in the handler.
#define NF_GATE(who, service, method)                                     \
  absl::StatusOr<Principal> who##_or = Gate(ctx, auth_, service, method); \
  if (!who##_or.ok()) return Refuse(ctx, who##_or.status());              \
  const Principal& who = *who##_or

// The gate for calls on a registered worker's behalf: also, the worker id must be the caller's.
#define NF_WORKER_GATE(method)                                                     \
  NF_GATE(who, "WorkerService", method);                                           \
  if (absl::Status owner = jm_->CheckWorker(req->worker_id(), who); !owner.ok()) { \
    return Refuse(ctx, owner);                                                     \
  }

// Finishes `reactor` with `result`: at once for reads, after the commit for writes
// (`after_commit`, if given, runs once the commit succeeded, before the answer).
template <typename Resp>
ServerUnaryReactor* Finish(CallbackServerContext* ctx, JobManager* jm, absl::StatusOr<Resp> result,
                           Resp* response, bool durable,
                           std::function<void()> after_commit = nullptr) {
  ServerUnaryReactor* r = ctx->DefaultReactor();
  if (!result.ok()) {
    r->Finish(WithRetryHint(ctx, result.status()));
    return r;
  }
  *response = std::move(result).value();
  if (!durable) {
    r->Finish(grpc::Status::OK);
  } else {
    jm->writer()->WhenDurable(jm->writer()->LastEnqueued(),
                              [r, ctx, after = std::move(after_commit)](absl::Status s) {
                                if (s.ok() && after) after();
                                r->Finish(WithRetryHint(ctx, s));
                              });
  }
  return r;
}

// Streams a job's events. Every path ends in exactly one Finish (gRPC requires it even after a
// cancel): the job finished and the queue drained, a failed write, or the client went away
// (OnCancel, also raised by server shutdown).
class WatchReactor final : public grpc::ServerWriteReactor<v1::JobEvent> {
 public:
  WatchReactor(JobManager* jm, const std::string& job_id, const absl::StatusOr<Principal>& who)
      : jm_(jm) {
    if (!who.ok()) {
      FinishOnce(ToGrpcStatus(who.status()));
      return;
    }
    auto handle = jm_->Subscribe(
        job_id, [this](const v1::JobEvent& e) { Push(e); }, *who);
    if (!handle.ok()) {
      FinishOnce(ToGrpcStatus(handle.status()));
      return;
    }
    std::lock_guard<std::mutex> l(mu_);
    handle_ = *handle;
    subscribed_ = true;
  }

  void OnWriteDone(bool ok) override {
    bool finish = false;
    grpc::Status status = grpc::Status::OK;
    {
      std::lock_guard<std::mutex> l(mu_);
      writing_ = false;
      if (!ok || done_) {
        done_ = finish = true;
        status = grpc::Status(grpc::StatusCode::CANCELLED, "watch ended: the stream was closed");
      } else if (!queue_.empty()) {
        StartNextLocked();
        return;
      } else if (closing_) {
        done_ = finish = true;
      }
    }
    if (finish) {
      Unsubscribe();
      FinishOnce(status);
    }
  }

  void OnCancel() override {
    bool finish_now;
    {
      std::lock_guard<std::mutex> l(mu_);
      done_ = true;
      finish_now = !writing_;  // else OnWriteDone finishes
    }
    Unsubscribe();
    if (finish_now) FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled"));
  }

  void OnDone() override {
    Unsubscribe();
    delete this;
  }

 private:
  // Called by JobManager with its subscriber lock held: only queue and start a write.
  void Push(const v1::JobEvent& e) {
    std::lock_guard<std::mutex> l(mu_);
    if (done_ || closing_) return;
    if (e.kind() == "job_finished" || e.job().state() == v1::JOB_SUCCEEDED ||
        e.job().state() == v1::JOB_FAILED || e.job().state() == v1::JOB_CANCELLED) {
      closing_ = true;
    }
    // A slow reader gets the latest progress rather than an unbounded backlog.
    if (queue_.size() > 1000) queue_.pop_front();
    queue_.push_back(e);
    if (!writing_) StartNextLocked();
  }
  void StartNextLocked() {
    current_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    StartWrite(&current_);
  }
  void FinishOnce(grpc::Status s) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (finished_) return;
      finished_ = true;
    }
    Finish(std::move(s));
  }
  void Unsubscribe() {
    uint64_t h = 0;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!subscribed_) return;
      subscribed_ = false;
      h = handle_;
    }
    jm_->Unsubscribe(h);
  }

  JobManager* const jm_;
  std::mutex mu_;
  std::deque<v1::JobEvent> queue_;
  v1::JobEvent current_;
  uint64_t handle_ = 0;
  bool subscribed_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool done_ = false;
  bool finished_ = false;
};

class JobServiceImpl final : public v1::JobService::CallbackService {
 public:
  JobServiceImpl(JobManager* jm, Authenticator* auth, ArtifactStore* artifacts)
      : jm_(jm), auth_(auth), artifacts_(artifacts) {}

  ServerUnaryReactor* SubmitJob(CallbackServerContext* ctx, const v1::SubmitJobRequest* req,
                                v1::Job* resp) override {
    NF_GATE(who, "JobService", "SubmitJob");
    return Finish(ctx, jm_, jm_->SubmitJob(*req, who), resp, true);
  }
  ServerUnaryReactor* GetJob(CallbackServerContext* ctx, const v1::GetJobRequest* req,
                             v1::Job* resp) override {
    NF_GATE(who, "JobService", "GetJob");
    return Finish(ctx, jm_, jm_->GetJob(req->job_id(), who), resp, false);
  }
  ServerUnaryReactor* ListJobs(CallbackServerContext* ctx, const v1::ListJobsRequest* req,
                               v1::ListJobsResponse* resp) override {
    NF_GATE(who, "JobService", "ListJobs");
    return Finish(ctx, jm_, jm_->ListJobs(*req, who), resp, false);
  }
  ServerUnaryReactor* CancelJob(CallbackServerContext* ctx, const v1::CancelJobRequest* req,
                                v1::Job* resp) override {
    NF_GATE(who, "JobService", "CancelJob");
    return Finish(ctx, jm_, jm_->CancelJob(req->job_id(), who), resp, true);
  }
  ServerUnaryReactor* ExtendJob(CallbackServerContext* ctx, const v1::ExtendJobRequest* req,
                                v1::Job* resp) override {
    NF_GATE(who, "JobService", "ExtendJob");
    return Finish(ctx, jm_, jm_->ExtendJob(*req, who), resp, true);
  }
  ServerUnaryReactor* EnqueueCandidate(CallbackServerContext* ctx,
                                       const v1::EnqueueCandidateRequest* req,
                                       v1::Trial* resp) override {
    NF_GATE(who, "JobService", "EnqueueCandidate");
    return Finish(ctx, jm_, jm_->EnqueueCandidate(*req, who), resp, true);
  }
  // Answered when the deletion is durable; the artifacts go after it (a crash between leaves
  // files of a job that no longer exists, never a job without its files).
  ServerUnaryReactor* DeleteJob(CallbackServerContext* ctx, const v1::DeleteJobRequest* req,
                                v1::DeleteJobResponse* resp) override {
    NF_GATE(who, "JobService", "DeleteJob");
    auto remove_files = [artifacts = artifacts_, job_id = req->job_id()] {
      if (artifacts == nullptr) return;
      if (absl::Status a = artifacts->DeleteJob(job_id); !a.ok()) {
        Log(LogLevel::kWarn, "artifacts_not_deleted", {{"job", job_id}, {"error", a.message()}});
      }
    };
    return Finish(ctx, jm_, jm_->DeleteJob(req->job_id(), who), resp, true, remove_files);
  }
  grpc::ServerWriteReactor<v1::JobEvent>* WatchJob(CallbackServerContext* ctx,
                                                   const v1::WatchJobRequest* req) override {
    return new WatchReactor(jm_, req->job_id(), Gate(ctx, auth_, "JobService", "WatchJob"));
  }
  ServerUnaryReactor* GetCandidate(CallbackServerContext* ctx, const v1::GetCandidateRequest* req,
                                   v1::Trial* resp) override {
    NF_GATE(who, "JobService", "GetCandidate");
    return Finish(ctx, jm_, jm_->GetCandidate(req->job_id(), req->trial_id(), who), resp, false);
  }
  ServerUnaryReactor* ListCandidates(CallbackServerContext* ctx,
                                     const v1::ListCandidatesRequest* req,
                                     v1::ListCandidatesResponse* resp) override {
    NF_GATE(who, "JobService", "ListCandidates");
    return Finish(ctx, jm_, jm_->ListCandidates(*req, who), resp, false);
  }
  ServerUnaryReactor* QueryPareto(CallbackServerContext* ctx, const v1::QueryParetoRequest* req,
                                  v1::QueryParetoResponse* resp) override {
    NF_GATE(who, "JobService", "QueryPareto");
    return Finish(ctx, jm_, jm_->QueryPareto(*req, who), resp, false);
  }
  // A chunk of a trial's artifact, for whoever may see the trial (its job's owner, admins).
  ServerUnaryReactor* GetArtifact(CallbackServerContext* ctx, const v1::GetArtifactRequest* req,
                                  v1::GetArtifactResponse* resp) override {
    NF_GATE(who, "JobService", "GetArtifact");
    if (auto trial = jm_->GetCandidate(req->job_id(), req->trial_id(), who); !trial.ok()) {
      return Refuse(ctx, trial.status());
    }
    if (artifacts_ == nullptr) return Refuse(ctx, NoArtifacts());
    const int64_t max = req->max_bytes() <= 0
                            ? kArtifactChunkBytes
                            : std::min<int64_t>(req->max_bytes(), kArtifactChunkBytes);
    int64_t total = 0;
    auto data =
        artifacts_->Read(req->job_id(), req->trial_id(), req->name(), req->offset(), max, &total);
    if (!data.ok()) return Refuse(ctx, data.status());
    resp->set_data(*std::move(data));
    resp->set_total_size(total);
    ServerUnaryReactor* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }

 private:
  JobManager* const jm_;
  Authenticator* const auth_;
  ArtifactStore* const artifacts_;
};

class WorkerServiceImpl final : public v1::WorkerService::CallbackService {
 public:
  WorkerServiceImpl(JobManager* jm, Authenticator* auth, ArtifactStore* artifacts)
      : jm_(jm), auth_(auth), artifacts_(artifacts) {}

  ServerUnaryReactor* RegisterWorker(CallbackServerContext* ctx,
                                     const v1::RegisterWorkerRequest* req,
                                     v1::RegisterWorkerResponse* resp) override {
    NF_GATE(who, "WorkerService", "RegisterWorker");
    return Finish(ctx, jm_, jm_->RegisterWorker(*req, who), resp, true);
  }
  ServerUnaryReactor* LeaseTrial(CallbackServerContext* ctx, const v1::LeaseTrialRequest* req,
                                 v1::LeaseTrialResponse* resp) override {
    NF_WORKER_GATE("LeaseTrial");
    return FinishGranting(ctx, jm_->LeaseTrial(*req), resp, req->worker_id(),
                          [](v1::LeaseTrialResponse* r) { return r; });
  }
  ServerUnaryReactor* Heartbeat(CallbackServerContext* ctx, const v1::HeartbeatRequest* req,
                                v1::HeartbeatResponse* resp) override {
    NF_WORKER_GATE("Heartbeat");
    return Finish(ctx, jm_, jm_->Heartbeat(*req), resp, false);
  }
  ServerUnaryReactor* ReportProgress(CallbackServerContext* ctx,
                                     const v1::ReportProgressRequest* req,
                                     v1::ReportProgressResponse* resp) override {
    NF_WORKER_GATE("ReportProgress");
    return Finish(ctx, jm_, jm_->ReportProgress(*req), resp, true);
  }
  ServerUnaryReactor* ReportResult(CallbackServerContext* ctx, const v1::ReportResultRequest* req,
                                   v1::ReportResultResponse* resp) override {
    NF_WORKER_GATE("ReportResult");
    return FinishGranting(ctx, jm_->ReportAndLease(*req), resp, req->worker_id(),
                          [](v1::ReportResultResponse* r) { return r->mutable_next(); });
  }
  ServerUnaryReactor* ReportResults(CallbackServerContext* ctx, const v1::ReportResultsRequest* req,
                                    v1::ReportResultsResponse* resp) override {
    NF_WORKER_GATE("ReportResults");
    return FinishGranting(ctx, jm_->ReportResults(*req), resp, req->worker_id(),
                          [](v1::ReportResultsResponse* r) { return r->mutable_next(); });
  }
  // A latency measurement's result: answered once it is durable (cached, in its trials).
  ServerUnaryReactor* ReportMeasurement(CallbackServerContext* ctx,
                                        const v1::ReportMeasurementRequest* req,
                                        v1::ReportMeasurementResponse* resp) override {
    NF_WORKER_GATE("ReportMeasurement");
    absl::Status st = jm_->ReportMeasurement(*req);
    if (!st.ok()) return Refuse(ctx, st);
    return Finish(ctx, jm_,
                  absl::StatusOr<v1::ReportMeasurementResponse>(v1::ReportMeasurementResponse{}),
                  resp, /*durable=*/true);
  }
  // A chunk of a trained candidate's artifact. The lease must be current (checked as a
  // heartbeat, which also keeps it alive during a long upload). The chunk is written in the
  // handler: at most 1 MiB, and uploads come once per trial.
  ServerUnaryReactor* UploadArtifact(CallbackServerContext* ctx,
                                     const v1::UploadArtifactRequest* req,
                                     v1::UploadArtifactResponse* resp) override {
    NF_WORKER_GATE("UploadArtifact");
    if (artifacts_ == nullptr) return Refuse(ctx, NoArtifacts());
    v1::HeartbeatRequest beat;
    beat.set_worker_id(req->worker_id());
    *beat.mutable_lease() = req->lease();
    auto alive = jm_->Heartbeat(beat);
    if (!alive.ok()) return Refuse(ctx, alive.status());
    if (alive->cancel()) {
      return Refuse(ctx, absl::FailedPreconditionError("the job was cancelled: nothing to keep"));
    }
    auto written = artifacts_->Write({.job_id = req->lease().job_id(),
                                      .trial_id = req->lease().trial_id(),
                                      .lease_epoch = req->lease().epoch(),
                                      .name = req->name(),
                                      .offset = req->offset(),
                                      .total_size = req->total_size(),
                                      .data = req->data()});
    if (!written.ok()) {
      Log(LogLevel::kWarn, "artifact_write_failed",
          {{"job", req->lease().job_id()},
           {"trial", req->lease().trial_id()},
           {"worker", req->worker_id()},
           {"error", written.status().message()}});
      return Refuse(ctx, written.status());
    }
    resp->set_received(written->received);
    resp->set_complete(written->complete);
    if (written->complete) {
      Log(LogLevel::kInfo, "artifact_stored",
          {{"job", req->lease().job_id()},
           {"trial", req->lease().trial_id()},
           {"worker", req->worker_id()},
           {"name", req->name()},
           {"bytes", written->received}});
    }
    ServerUnaryReactor* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }

 private:
  static bool ReportsIn(const v1::LeaseTrialResponse&) { return false; }
  static bool ReportsIn(const v1::ReportResultResponse&) { return true; }
  static bool ReportsIn(const v1::ReportResultsResponse&) { return true; }

  // Answers once the call's writes are durable. Grants (`grants_of(response)`) that did not
  // become durable are not handed out: they are undone and the call answers the error.
  template <typename Resp, typename GrantsOf>
  ServerUnaryReactor* FinishGranting(CallbackServerContext* ctx, absl::StatusOr<Resp> result,
                                     Resp* resp, const std::string& worker, GrantsOf grants_of) {
    ServerUnaryReactor* r = ctx->DefaultReactor();
    if (!result.ok()) {
      r->Finish(WithRetryHint(ctx, result.status()));
      return r;
    }
    *resp = std::move(result).value();
    // Nothing granted, nothing reported: nothing this caller must see durable (an idle poll
    // does not wait for other callers' commits).
    if (!grants_of(resp)->has_trial() && !ReportsIn(*resp)) {
      r->Finish(grpc::Status::OK);
      return r;
    }
    JobManager* jm = jm_;
    jm_->writer()->WhenDurable(jm_->writer()->LastEnqueued(),
                               [r, ctx, jm, resp, worker, grants_of](absl::Status s) {
                                 if (!s.ok()) {
                                   jm->AbandonGrants(*grants_of(resp), worker);
                                   resp->Clear();
                                 }
                                 r->Finish(WithRetryHint(ctx, s));
                               });
    return r;
  }

  JobManager* const jm_;
  Authenticator* const auth_;
  ArtifactStore* const artifacts_;
};

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

std::unique_ptr<grpc::Service> NewJobService(JobManager* jobs, Authenticator* auth,
                                             ArtifactStore* artifacts) {
  return std::make_unique<JobServiceImpl>(jobs, auth, artifacts);
}
std::unique_ptr<grpc::Service> NewWorkerService(JobManager* jobs, Authenticator* auth,
                                                ArtifactStore* artifacts) {
  return std::make_unique<WorkerServiceImpl>(jobs, auth, artifacts);
}

}  // namespace nasforge
