// One unary gRPC call as the CLI, the worker and the benches make it: a deadline, and the gRPC
// status converted to absl::Status at once (gRPC types stop at the call).
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace nasforge {

// gRPC's code and message, as an absl::Status.
inline absl::Status FromGrpcStatus(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

// `(stub.*method)(request)` with a deadline `timeout` from now: `UnaryCall(stub,
// &v1::JobService::Stub::GetJob, request, absl::Seconds(30))`.
template <typename Stub, typename Request, typename Response>
absl::StatusOr<Response> UnaryCall(Stub& stub,
                                   grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                                const Request&, Response*),
                                   const Request& request, absl::Duration timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
  Response response;
  grpc::Status s = (stub.*method)(&ctx, request, &response);
  if (!s.ok()) return FromGrpcStatus(s);
  return response;
}

}  // namespace nasforge
