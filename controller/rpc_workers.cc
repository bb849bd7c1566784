// WorkerService: the workers' calls (registration, leases, heartbeats, reports, measurements,
// artifacts). A call that granted leases answers once they are durable, or undoes them.
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>

#include "controller/rpc.h"
#include "controller/rpc_internal.h"
#include "core/log.h"

namespace nasforge {
namespace {

using namespace rpc_internal;  // NOLINT: the services' shared gate and answers

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
  // A chunk of the artifact of the trial a leased variant is made from (its parent's weights),
  // for the variant's lease holder only.
  ServerUnaryReactor* GetParentArtifact(CallbackServerContext* ctx,
                                        const v1::GetParentArtifactRequest* req,
                                        v1::GetArtifactResponse* resp) override {
    NF_WORKER_GATE("GetParentArtifact");
    if (artifacts_ == nullptr) return Refuse(ctx, NoArtifacts());
    auto parent = jm_->VariantParent(req->lease(), req->worker_id(), req->teacher());
    if (!parent.ok()) return Refuse(ctx, parent.status());
    absl::Status read = ReadArtifactChunk(artifacts_, req->lease().job_id(), *parent, req->name(),
                                          req->offset(), req->max_bytes(), resp);
    if (!read.ok()) return Refuse(ctx, read);
    ServerUnaryReactor* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
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
    jm_->WhenGrantsDurable(grants_of(resp), worker, [r, ctx, resp](absl::Status s) {
      if (!s.ok()) resp->Clear();  // the grants were undone: hand none out
      r->Finish(WithRetryHint(ctx, s));
    });
    return r;
  }

  JobManager* const jm_;
  Authenticator* const auth_;
  ArtifactStore* const artifacts_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewWorkerService(JobManager* jobs, Authenticator* auth,
                                                ArtifactStore* artifacts) {
  return std::make_unique<WorkerServiceImpl>(jobs, auth, artifacts);
}

}  // namespace nasforge
