#include "controller/rpc.h"

#include <deque>
#include <mutex>

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

// Finishes `reactor` with `result`: at once for reads, after the commit for writes.
template <typename Resp>
ServerUnaryReactor* Finish(CallbackServerContext* ctx, JobManager* jm, absl::StatusOr<Resp> result,
                           Resp* response, bool durable) {
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
                              [r, ctx](absl::Status s) { r->Finish(WithRetryHint(ctx, s)); });
  }
  return r;
}

// Streams a job's events. Every path ends in exactly one Finish (gRPC requires it even after a
// cancel): the job finished and the queue drained, a failed write, or the client went away
// (OnCancel, also raised by server shutdown).
class WatchReactor final : public grpc::ServerWriteReactor<v1::JobEvent> {
 public:
  WatchReactor(JobManager* jm, const std::string& job_id) : jm_(jm) {
    auto handle = jm_->Subscribe(job_id, [this](const v1::JobEvent& e) { Push(e); });
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
  explicit JobServiceImpl(JobManager* jm) : jm_(jm) {}

  ServerUnaryReactor* SubmitJob(CallbackServerContext* ctx, const v1::SubmitJobRequest* req,
                                v1::Job* resp) override {
    return Finish(ctx, jm_, jm_->SubmitJob(*req), resp, true);
  }
  ServerUnaryReactor* GetJob(CallbackServerContext* ctx, const v1::GetJobRequest* req,
                             v1::Job* resp) override {
    return Finish(ctx, jm_, jm_->GetJob(req->job_id()), resp, false);
  }
  ServerUnaryReactor* ListJobs(CallbackServerContext* ctx, const v1::ListJobsRequest* req,
                               v1::ListJobsResponse* resp) override {
    return Finish(ctx, jm_, jm_->ListJobs(*req), resp, false);
  }
  ServerUnaryReactor* CancelJob(CallbackServerContext* ctx, const v1::CancelJobRequest* req,
                                v1::Job* resp) override {
    return Finish(ctx, jm_, jm_->CancelJob(req->job_id()), resp, true);
  }
  grpc::ServerWriteReactor<v1::JobEvent>* WatchJob(CallbackServerContext* ctx,
                                                   const v1::WatchJobRequest* req) override {
    return new WatchReactor(jm_, req->job_id());
  }
  ServerUnaryReactor* GetCandidate(CallbackServerContext* ctx, const v1::GetCandidateRequest* req,
                                   v1::Trial* resp) override {
    return Finish(ctx, jm_, jm_->GetCandidate(req->job_id(), req->trial_id()), resp, false);
  }
  ServerUnaryReactor* ListCandidates(CallbackServerContext* ctx,
                                     const v1::ListCandidatesRequest* req,
                                     v1::ListCandidatesResponse* resp) override {
    return Finish(ctx, jm_, jm_->ListCandidates(*req), resp, false);
  }
  ServerUnaryReactor* QueryPareto(CallbackServerContext* ctx, const v1::QueryParetoRequest* req,
                                  v1::QueryParetoResponse* resp) override {
    return Finish(ctx, jm_, jm_->QueryPareto(*req), resp, false);
  }

 private:
  JobManager* const jm_;
};

class WorkerServiceImpl final : public v1::WorkerService::CallbackService {
 public:
  explicit WorkerServiceImpl(JobManager* jm) : jm_(jm) {}

  ServerUnaryReactor* RegisterWorker(CallbackServerContext* ctx,
                                     const v1::RegisterWorkerRequest* req,
                                     v1::RegisterWorkerResponse* resp) override {
    return Finish(ctx, jm_, jm_->RegisterWorker(*req), resp, true);
  }
  ServerUnaryReactor* LeaseTrial(CallbackServerContext* ctx, const v1::LeaseTrialRequest* req,
                                 v1::LeaseTrialResponse* resp) override {
    ServerUnaryReactor* r = ctx->DefaultReactor();
    auto result = jm_->LeaseTrial(*req);
    if (!result.ok()) {
      r->Finish(WithRetryHint(ctx, result.status()));
      return r;
    }
    *resp = std::move(result).value();
    // A grant that did not become durable is not handed out: undo it and answer the error.
    JobManager* jm = jm_;
    std::string worker = req->worker_id();
    jm_->writer()->WhenDurable(jm_->writer()->LastEnqueued(),
                               [r, ctx, jm, resp, worker](absl::Status s) {
                                 if (!s.ok() && resp->has_trial()) {
                                   jm->AbandonLease(resp->lease(), worker);
                                   resp->Clear();
                                 }
                                 r->Finish(WithRetryHint(ctx, s));
                               });
    return r;
  }
  ServerUnaryReactor* Heartbeat(CallbackServerContext* ctx, const v1::HeartbeatRequest* req,
                                v1::HeartbeatResponse* resp) override {
    return Finish(ctx, jm_, jm_->Heartbeat(*req), resp, false);
  }
  ServerUnaryReactor* ReportProgress(CallbackServerContext* ctx,
                                     const v1::ReportProgressRequest* req,
                                     v1::ReportProgressResponse* resp) override {
    return Finish(ctx, jm_, jm_->ReportProgress(*req), resp, true);
  }
  ServerUnaryReactor* ReportResult(CallbackServerContext* ctx, const v1::ReportResultRequest* req,
                                   v1::ReportResultResponse* resp) override {
    absl::Status st = jm_->ReportResult(*req);
    absl::StatusOr<v1::ReportResultResponse> out =
        st.ok() ? absl::StatusOr<v1::ReportResultResponse>(v1::ReportResultResponse{})
                : absl::StatusOr<v1::ReportResultResponse>(st);
    return Finish(ctx, jm_, std::move(out), resp, true);
  }

 private:
  JobManager* const jm_;
};

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

std::unique_ptr<grpc::Service> NewJobService(JobManager* jobs) {
  return std::make_unique<JobServiceImpl>(jobs);
}
std::unique_ptr<grpc::Service> NewWorkerService(JobManager* jobs) {
  return std::make_unique<WorkerServiceImpl>(jobs);
}

}  // namespace nasforge
