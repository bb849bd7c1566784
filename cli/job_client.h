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
#include "nasforge/v1/nasforge.grpc.pb.h"

namespace nasforge::cli {

// A client context with the CLI's deadline for unary calls (30 s).
std::unique_ptr<grpc::ClientContext> UnaryContext();

// The gRPC status as absl::Status with the same code; the message says the code, and for
// UNAVAILABLE asks whether the controller runs at --controller.
absl::Status FromRpc(const grpc::Status& status);

// One unary JobService call with the CLI's deadline: `Call(stub, &Stub::GetJob, request)`.
template <typename Request, typename Response>
absl::StatusOr<Response> Call(v1::JobService::Stub& stub,
                              grpc::Status (v1::JobService::Stub::*method)(grpc::ClientContext*,
                                                                           const Request&,
                                                                           Response*),
                              const Request& request) {
  Response response;
  auto ctx = UnaryContext();
  absl::Status s = FromRpc((stub.*method)(ctx.get(), request, &response));
  if (!s.ok()) return s;
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
