// The controller process's parts wired together: store, group-commit writer, job manager,
// gRPC server (JobService, WorkerService, health, optional reflection), /metrics, lease sweeper.
// main.cc only parses flags into ControllerOptions; tests start it in process on port 0.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "controller/job_manager.h"

namespace nasforge {

struct ControllerOptions {
  std::string listen = "127.0.0.1:50051";  // HOST:PORT; port 0 picks a free one
  std::string store_url = "sqlite://nasforge.db";
  std::string metrics_listen = "127.0.0.1:9464";  // empty: no /metrics
  // /metrics over HTTPS with this certificate chain and key (PEM); plain HTTP only on loopback
  // unless `metrics_insecure`.
  std::string metrics_tls_cert, metrics_tls_key;
  bool metrics_insecure = false;
  // Bearer tokens (controller/auth.h): the hashed token file, re-read when it changes. Empty:
  // authentication off (every caller is the admin "local"), allowed only when `listen` is a
  // loopback address.
  std::string auth_tokens;
  // TLS for gRPC: certificate chain and key (PEM files). With `tls_client_ca`, mutual TLS:
  // every client must present a certificate that CA signed. Without TLS the controller serves
  // plain text, only on a loopback `listen` unless `insecure`.
  std::string tls_cert, tls_key, tls_client_ca;
  bool insecure = false;
  // gRPC server reflection (for grpcurl): off unless asked for; it lists every method to anyone
  // who can connect.
  bool reflection = false;
  absl::Duration sweep_interval = absl::Seconds(1);
  // How often the store is probed for grpc.health.v1 (NOT_SERVING while it fails).
  absl::Duration health_interval = absl::Seconds(1);
  // The web dashboard (ui/ui_server.h) on this HOST:PORT; empty: off. HTTPS with ui_tls_cert
  // and ui_tls_key; plain HTTP only on loopback unless ui_insecure; with authentication off,
  // only on loopback. `ui_optional`: when the address cannot be bound, log a warning and run
  // without the dashboard (the binary's default address) instead of failing.
  std::string ui_listen;
  std::string ui_tls_cert, ui_tls_key;
  bool ui_insecure = false;
  bool ui_optional = false;
  // Trial artifacts (weights for `nasforge export`) go here; empty: none are kept.
  std::string artifact_dir;
  // Wait as a hot standby while another controller owns the store, instead of failing.
  bool standby = false;
  // Called once when the store was lost to another owner (the process should exit).
  std::function<void()> on_fatal;
  JobManagerOptions jobs;
};

class Controller {
 public:
  static absl::StatusOr<std::unique_ptr<Controller>> Start(const ControllerOptions& options);
  virtual ~Controller() = default;
  virtual int port() const = 0;
  virtual int metrics_port() const = 0;  // 0 without /metrics
  virtual int ui_port() const = 0;       // 0 without the dashboard
  // Stops accepting calls, finishes in-flight ones and flushes the store, all by `deadline`;
  // what could not be flushed by then is logged and dropped (it was never acknowledged).
  // Returns true on a clean stop. Idempotent.
  virtual bool Shutdown(absl::Time deadline) = 0;
  bool Shutdown() { return Shutdown(absl::Now() + absl::Seconds(7)); }
  virtual JobManager* jobs() = 0;
};

}  // namespace nasforge
