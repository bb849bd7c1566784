// The gRPC edge's shared parts (rpc_internal.h) and the status conversion (rpc.h).
#include "controller/rpc.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "controller/rpc_internal.h"
#include "core/log.h"

namespace nasforge {
namespace rpc_internal {

// UNAVAILABLE answers carry gRPC's retry pushback (clients with a retry policy wait that long).
grpc::Status WithRetryHint(CallbackServerContext* ctx, const absl::Status& s) {
  if (absl::IsUnavailable(s)) ctx->AddTrailingMetadata("grpc-retry-pushback-ms", "1000");
  return ToGrpcStatus(s);
}

// The one gate every handler passes first: who is calling (the "authorization" bearer token),
// and may they call this method. Refusals are logged without the token.
absl::StatusOr<Principal> Gate(CallbackServerContext* ctx, Authenticator* auth,
                               absl::string_view service, absl::string_view method) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  absl::string_view header = it == md.end()
                                 ? absl::string_view()
                                 : absl::string_view(it->second.data(), it->second.size());
  absl::StatusOr<Principal> who = auth->Authenticate(header);
  // With authentication off (loopback only) the caller may do everything, workers included.
  absl::Status st = !who.ok()         ? who.status()
                    : auth->enabled() ? Authorize(*who, service, method)
                                      : absl::OkStatus();
  if (!st.ok()) {
    Log(LogLevel::kWarn, "call_refused",
        {{"method", absl::StrCat(service, "/", method)},
         {"peer", ctx->peer()},
         {"caller", who.ok() ? who->name : std::string("unauthenticated")},
         {"error", st.message()}});
    return st;
  }
  return who;
}

absl::Status NoArtifacts() {
  return absl::FailedPreconditionError(
      "this controller keeps no trial artifacts: start it with --artifact-dir DIR (the default "
      "with a sqlite:// store is next to the database)");
}

absl::Status ReadArtifactChunk(ArtifactStore* artifacts, const std::string& job_id,
                               int64_t trial_id, const std::string& name, int64_t offset,
                               int64_t max_bytes, v1::GetArtifactResponse* resp) {
  if (artifacts == nullptr) return NoArtifacts();
  const int64_t max =
      max_bytes <= 0 ? kArtifactChunkBytes : std::min<int64_t>(max_bytes, kArtifactChunkBytes);
  int64_t total = 0;
  auto data = artifacts->Read(job_id, trial_id, name, offset, max, &total);
  if (!data.ok()) return data.status();
  resp->set_data(*std::move(data));
  resp->set_total_size(total);
  return absl::OkStatus();
}

ServerUnaryReactor* Refuse(CallbackServerContext* ctx, const absl::Status& s) {
  ServerUnaryReactor* r = ctx->DefaultReactor();
  r->Finish(ToGrpcStatus(s));
  return r;
}

}  // namespace rpc_internal

grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace nasforge
