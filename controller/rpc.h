// gRPC edge: handlers validate, convert and delegate to JobManager, and finish the call once
// the change is durable (from the StoreWriter's callback, so no gRPC thread waits on the
// database). grpc::Status exists only in this layer.
#pragma once

#include <memory>

#include "controller/artifact_store.h"
#include "controller/auth.h"
#include "controller/job_manager.h"
#include "nasforge/v1/nasforge.grpc.pb.h"

namespace nasforge {

// Every method first authenticates the caller with `auth` and checks its role (Authorize);
// `auth` must outlive the services.
// `artifacts` (may be null: the controller keeps no trial artifacts) serves GetArtifact and
// UploadArtifact.
std::unique_ptr<grpc::Service> NewJobService(JobManager* jobs, Authenticator* auth,
                                             ArtifactStore* artifacts = nullptr);
std::unique_ptr<grpc::Service> NewWorkerService(JobManager* jobs, Authenticator* auth,
                                                ArtifactStore* artifacts = nullptr);

// absl and gRPC status codes match one for one.
grpc::Status ToGrpcStatus(const absl::Status& s);

}  // namespace nasforge
