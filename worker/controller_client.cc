#include "worker/controller_client.h"

#include <grpcpp/grpcpp.h>

#include "client/channel.h"
#include "client/unary_call.h"
#include "nasforge/v1/nasforge.grpc.pb.h"

namespace nasforge {
namespace {

class GrpcControllerClient final : public ControllerClient {
 public:
  // Reconnect quickly to a restarted controller: gRPC's default backoff grows to two minutes,
  // which would leave a worker idle long after the controller is back.
  static grpc::ChannelArguments Args() {
    grpc::ChannelArguments a;
    a.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250);
    a.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
    return a;
  }

  GrpcControllerClient(std::shared_ptr<grpc::Channel> channel, int timeout)
      : stub_(v1::WorkerService::NewStub(channel)), timeout_(timeout) {}

  absl::StatusOr<v1::RegisterWorkerResponse> RegisterWorker(
      const v1::RegisterWorkerRequest& req) override {
    return Call(&v1::WorkerService::Stub::RegisterWorker, req);
  }
  absl::StatusOr<v1::LeaseTrialResponse> LeaseTrial(const v1::LeaseTrialRequest& req) override {
    return Call(&v1::WorkerService::Stub::LeaseTrial, req);
  }
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& req) override {
    return Call(&v1::WorkerService::Stub::Heartbeat, req);
  }
  absl::StatusOr<v1::ReportProgressResponse> ReportProgress(
      const v1::ReportProgressRequest& req) override {
    return Call(&v1::WorkerService::Stub::ReportProgress, req);
  }
  absl::StatusOr<v1::ReportResultResponse> ReportResult(
      const v1::ReportResultRequest& req) override {
    return Call(&v1::WorkerService::Stub::ReportResult, req);
  }
  absl::StatusOr<v1::UploadArtifactResponse> UploadArtifact(
      const v1::UploadArtifactRequest& req) override {
    return Call(&v1::WorkerService::Stub::UploadArtifact, req);
  }
  absl::StatusOr<v1::GetArtifactResponse> GetParentArtifact(
      const v1::GetParentArtifactRequest& req) override {
    return Call(&v1::WorkerService::Stub::GetParentArtifact, req);
  }
  absl::StatusOr<v1::ReportMeasurementResponse> ReportMeasurement(
      const v1::ReportMeasurementRequest& req) override {
    return Call(&v1::WorkerService::Stub::ReportMeasurement, req);
  }

 private:
  template <typename Req, typename Resp>
  absl::StatusOr<Resp> Call(grpc::Status (v1::WorkerService::Stub::*m)(grpc::ClientContext*,
                                                                       const Req&, Resp*),
                            const Req& req) {
    return UnaryCall(*stub_, m, req, absl::Seconds(timeout_));
  }

  std::unique_ptr<v1::WorkerService::Stub> stub_;
  const int timeout_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ControllerClient>> NewGrpcControllerClient(
    ChannelOptions options, int call_timeout_seconds) {
  grpc::ChannelArguments args = GrpcControllerClient::Args();
  options.args = args;
  auto channel = OpenChannel(std::move(options));
  if (!channel.ok()) return channel.status();
  return std::unique_ptr<ControllerClient>(
      std::make_unique<GrpcControllerClient>(*channel, call_timeout_seconds));
}

}  // namespace nasforge
