// JobService: the users' calls. Handlers validate, convert and delegate to the JobManager; a
// change is answered once durable. WatchJob streams a job's events.
#include <cstdint>
#include <deque>
#include <functional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "controller/rpc.h"
#include "controller/rpc_internal.h"
#include "core/log.h"

namespace nasforge {
namespace {

using namespace rpc_internal;  // NOLINT: the services' shared gate and answers

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
    absl::MutexLock l(&mu_);
    handle_ = *handle;
    subscribed_ = true;
  }

  void OnWriteDone(bool ok) override {
    bool finish = false;
    grpc::Status status = grpc::Status::OK;
    {
      absl::MutexLock l(&mu_);
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
      absl::MutexLock l(&mu_);
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
    absl::MutexLock l(&mu_);
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
  void StartNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    current_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    StartWrite(&current_);
  }
  void FinishOnce(grpc::Status s) {
    {
      absl::MutexLock l(&mu_);
      if (finished_) return;
      finished_ = true;
    }
    Finish(std::move(s));
  }
  void Unsubscribe() {
    uint64_t h = 0;
    {
      absl::MutexLock l(&mu_);
      if (!subscribed_) return;
      subscribed_ = false;
      h = handle_;
    }
    jm_->Unsubscribe(h);
  }

  JobManager* const jm_;
  absl::Mutex mu_;
  std::deque<v1::JobEvent> queue_ ABSL_GUARDED_BY(mu_);
  v1::JobEvent current_ ABSL_GUARDED_BY(mu_);
  uint64_t handle_ ABSL_GUARDED_BY(mu_) = 0;
  bool subscribed_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
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
  ServerUnaryReactor* CompressTrial(CallbackServerContext* ctx, const v1::CompressTrialRequest* req,
                                    v1::CompressTrialResponse* resp) override {
    NF_GATE(who, "JobService", "CompressTrial");
    return Finish(ctx, jm_, jm_->CompressTrial(*req, who), resp, true);
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

  ServerUnaryReactor* GetImportance(CallbackServerContext* ctx, const v1::GetImportanceRequest* req,
                                    v1::GetImportanceResponse* resp) override {
    NF_GATE(who, "JobService", "GetImportance");
    return Finish(ctx, jm_, jm_->GetImportance(*req, who), resp, false);
  }
  // A chunk of a trial's artifact, for whoever may see the trial (its job's owner, admins).
  ServerUnaryReactor* GetArtifact(CallbackServerContext* ctx, const v1::GetArtifactRequest* req,
                                  v1::GetArtifactResponse* resp) override {
    NF_GATE(who, "JobService", "GetArtifact");
    if (auto trial = jm_->GetCandidate(req->job_id(), req->trial_id(), who); !trial.ok()) {
      return Refuse(ctx, trial.status());
    }
    absl::Status read = ReadArtifactChunk(artifacts_, req->job_id(), req->trial_id(), req->name(),
                                          req->offset(), req->max_bytes(), resp);
    if (!read.ok()) return Refuse(ctx, read);
    ServerUnaryReactor* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }

 private:
  JobManager* const jm_;
  Authenticator* const auth_;
  ArtifactStore* const artifacts_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewJobService(JobManager* jobs, Authenticator* auth,
                                             ArtifactStore* artifacts) {
  return std::make_unique<JobServiceImpl>(jobs, auth, artifacts);
}

}  // namespace nasforge
