// What the two gRPC services (rpc_jobs.cc, rpc_workers.cc) share: the gate every handler
// passes first (authentication, roles, the worker id's owner), and how a handler answers: at
// once, or once its change is durable (JobManager::WhenDurable). Not for use outside rpc*.cc.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "controller/artifact_store.h"
#include "controller/auth.h"
#include "controller/job_manager.h"
#include "controller/rpc.h"

namespace nasforge::rpc_internal {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

// UNAVAILABLE answers carry gRPC's retry pushback (clients with a retry policy wait that long).
grpc::Status WithRetryHint(CallbackServerContext* ctx, const absl::Status& s);

// The one gate every handler passes first: who is calling (the "authorization" bearer token),
// and may they call this method. Refusals are logged without the token.
absl::StatusOr<Principal> Gate(CallbackServerContext* ctx, Authenticator* auth,
                               absl::string_view service, absl::string_view method);

// FAILED_PRECONDITION for artifact calls to a controller that keeps none.
absl::Status NoArtifacts();

// A chunk of trial `trial_id`'s artifact `name` into `resp`: at most `max_bytes` (0: and at most
// kArtifactChunkBytes) from `offset`. NoArtifacts() without a store.
absl::Status ReadArtifactChunk(ArtifactStore* artifacts, const std::string& job_id,
                               int64_t trial_id, const std::string& name, int64_t offset,
                               int64_t max_bytes, v1::GetArtifactResponse* resp);

// Answers `s` at once.
ServerUnaryReactor* Refuse(CallbackServerContext* ctx, const absl::Status& s);

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
    jm->WhenDurable([r, ctx, after = std::move(after_commit)](absl::Status s) {
      if (s.ok() && after) after();
      r->Finish(WithRetryHint(ctx, s));
    });
  }
  return r;
}

}  // namespace nasforge::rpc_internal
