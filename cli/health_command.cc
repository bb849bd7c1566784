// health: the controller's grpc.health.v1 status, for probes (Kubernetes exec probes, systemd,
// scripts) that must speak TLS and tokens, which kubelet's built-in gRPC probe cannot.
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/connection.h"
#include "client/unary_call.h"
#include "health.grpc.pb.h"

namespace nasforge::cli {
namespace {

struct HealthOptions {
  std::string service;
  double timeout_seconds = 5;
};

int Health(CommandContext& c, const HealthOptions& o) {
  auto channel = ConnectChannel(c.connection);
  if (!channel.ok()) {
    return ReportError(c.io, channel.status(), "connecting to " + c.connection.controller);
  }
  auto stub = grpc::health::v1::Health::NewStub(*channel);
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(o.service);
  auto resp = UnaryCall(*stub, &grpc::health::v1::Health::Stub::Check, req,
                        absl::Seconds(o.timeout_seconds));
  if (!resp.ok()) return ReportError(c.io, resp.status(), "health " + c.connection.controller);
  const std::string status =
      grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp->status());
  c.io.out << status << "\n";
  if (resp->status() == grpc::health::v1::HealthCheckResponse::SERVING) return kExitOk;
  c.io.err << "error: health " << c.connection.controller << ": " << status
           << " (the controller's store does not answer; see its log)\n";
  return kExitFailed;
}

}  // namespace

void AddHealthCommand(CLI::App& app, CommandContext& context) {
  auto o = std::make_shared<HealthOptions>();
  auto* cmd = app.add_subcommand(
      "health", "the controller's grpc.health.v1 status (exit 0 only when SERVING; for probes)");
  cmd->add_option("--service", o->service, "service name to check (default: the server)");
  cmd->add_option("--timeout", o->timeout_seconds, "seconds to wait for the answer")
      ->check(CLI::Range(0.1, 300.0))
      ->capture_default_str();
  cmd->callback([&context, o] { context.exit_code = Health(context, *o); });
}

}  // namespace nasforge::cli
