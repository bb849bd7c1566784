// The worker's view of the controller. The gRPC implementation sets a deadline on every call;
// tests may substitute a fake.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "client/channel.h"
#include "nasforge/v1/nasforge.pb.h"

namespace nasforge {

class ControllerClient {
 public:
  virtual ~ControllerClient() = default;
  virtual absl::StatusOr<v1::RegisterWorkerResponse> RegisterWorker(
      const v1::RegisterWorkerRequest& req) = 0;
  virtual absl::StatusOr<v1::LeaseTrialResponse> LeaseTrial(const v1::LeaseTrialRequest& req) = 0;
  virtual absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& req) = 0;
  virtual absl::StatusOr<v1::ReportProgressResponse> ReportProgress(
      const v1::ReportProgressRequest& req) = 0;
  // The answer carries the next trial when req.lease_next > 0 and one was granted.
  virtual absl::StatusOr<v1::ReportResultResponse> ReportResult(
      const v1::ReportResultRequest& req) = 0;
  // One chunk of a trained candidate's artifact (weights.pt, check.pt).
  virtual absl::StatusOr<v1::UploadArtifactResponse> UploadArtifact(
      const v1::UploadArtifactRequest& req) {
    return absl::UnimplementedError("UploadArtifact");
  }
  // One chunk of the weights a leased variant is made from.
  virtual absl::StatusOr<v1::GetArtifactResponse> GetParentArtifact(
      const v1::GetParentArtifactRequest& req) {
    return absl::UnimplementedError("GetParentArtifact");
  }
  // A latency measurement's result (MeasureTask.token).
  virtual absl::StatusOr<v1::ReportMeasurementResponse> ReportMeasurement(
      const v1::ReportMeasurementRequest& req) {
    return absl::UnimplementedError("ReportMeasurement");
  }
};

// A client over gRPC (target, token and TLS in `options`; see client/channel.h). Thread-safe.
absl::StatusOr<std::unique_ptr<ControllerClient>> NewGrpcControllerClient(
    ChannelOptions options, int call_timeout_seconds = 10);

}  // namespace nasforge
