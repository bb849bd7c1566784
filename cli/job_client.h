// The JobService calls the CLI makes in sequence: submit with retries under one idempotency key,
// follow a job to its end, read every page of candidates. Shared by the job and bench commands.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/unary_call.h"
#include "nasforge/v1/nasforge.grpc.pb.h"

namespace nasforge::cli {

// The CLI's deadline for unary calls.
inline constexpr absl::Duration kUnaryTimeout = absl::Seconds(30);

// The gRPC status as absl::Status with the same code; the message says the code, and for
// UNAVAILABLE asks whether the controller runs at --controller.
absl::Status FromRpc(const grpc::Status& status);
// The same for a status already converted: the code named, and the hint for UNAVAILABLE.
absl::Status WithHint(const absl::Status& status);

// One unary JobService call with the CLI's deadline: `Call(stub, &Stub::GetJob, request)`.
template <typename Request, typename Response>
absl::StatusOr<Response> Call(v1::JobService::Stub& stub,
                              grpc::Status (v1::JobService::Stub::*method)(grpc::ClientContext*,
                                                                           const Request&,
                                                                           Response*),
                              const Request& request) {
  absl::StatusOr<Response> response = UnaryCall(stub, method, request, kUnaryTimeout);
  if (!response.ok()) return WithHint(response.status());
  return response;
}

// A fresh random idempotency key ("cli-" + 32 hex digits).
std::string NewIdempotencyKey();

// SubmitJob, retried on UNAVAILABLE / DEADLINE_EXCEEDED up to 5 times with the same
// `request.idempotency_key` (so a lost answer never makes a second job); each retry is logged
// to `log`.
absl::StatusOr<v1::Job> SubmitWithRetry(v1::JobService::Stub& stub,
                                        const v1::SubmitJobRequest& request, std::ostream& log);

// Follows WatchJob until the job ends, showing ProgressLine on `progress` (redrawn in place
// when `terminal`, else a line per finished trial and at most every 10 s), then
// "job ID STATE". Returns the job as last seen.
absl::StatusOr<v1::Job> FollowJob(v1::JobService::Stub& stub, const std::string& job_id,
                                  std::ostream& progress, bool terminal);

// Every candidate of the job, all pages of ListCandidates.
absl::StatusOr<std::vector<v1::Trial>> AllCandidates(v1::JobService::Stub& stub,
                                                     const std::string& job_id);

}  // namespace nasforge::cli
