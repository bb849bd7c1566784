// nasforge-controller: parses flags, starts the controller, waits for SIGINT/SIGTERM.
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>  // before Boost.Asio (g++ 12, C++20)

#include "absl/flags/flag.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "controller/server.h"
#include "core/daemon_flags.h"
#include "core/log.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051", "gRPC HOST:PORT (port 0: any free port)");
ABSL_FLAG(std::string, store, "",
          "store URL: sqlite:///path.db (embedded) or postgresql://user:password@host:port/db; "
          "default $NASFORGE_STORE (keeps a password out of the process list), else "
          "sqlite://nasforge.db");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9464", "/metrics HOST:PORT; empty: off");
ABSL_FLAG(std::string, metrics_tls_cert, "", "serve /metrics over HTTPS: certificate chain (PEM)");
ABSL_FLAG(std::string, metrics_tls_key, "", "serve /metrics over HTTPS: private key (PEM)");
ABSL_FLAG(bool, metrics_insecure, false,
          "serve /metrics as plain HTTP on a non-loopback --metrics-listen");
ABSL_FLAG(std::string, artifact_dir, "",
          "keep trained candidates' weights here (for `nasforge export`); default with a "
          "sqlite:// store: next to the database (PATH.artifacts); 'none': keep none");
ABSL_FLAG(std::string, port_file, "", "write the bound gRPC port to this file (for scripts)");
ABSL_FLAG(bool, standby, false,
          "when another controller owns the store, wait as a hot standby and take over when it "
          "dies (instead of exiting with an error)");
ABSL_FLAG(std::string, auth_tokens, "",
          "bearer-token file (`nasforge token create --file FILE`), re-read when it changes; "
          "empty: no authentication, allowed only on a loopback --listen");
ABSL_FLAG(std::string, tls_cert, "", "TLS certificate chain (PEM) for gRPC");
ABSL_FLAG(std::string, tls_key, "", "TLS private key (PEM) for gRPC");
ABSL_FLAG(std::string, tls_client_ca, "",
          "mutual TLS: require client certificates signed by this CA (PEM)");
ABSL_FLAG(bool, insecure, false,
          "serve plain text on a non-loopback --listen (tokens readable on the network)");
ABSL_FLAG(bool, reflection, false, "serve gRPC reflection (for grpcurl)");
ABSL_FLAG(std::string, ui_listen, "127.0.0.1:8464",
          "web dashboard HOST:PORT (read-only; the API's tokens); empty: off. If the default "
          "address is taken, the controller runs without it and says so");
ABSL_FLAG(std::string, ui_tls_cert, "", "serve the dashboard over HTTPS: certificate chain (PEM)");
ABSL_FLAG(std::string, ui_tls_key, "", "serve the dashboard over HTTPS: private key (PEM)");
ABSL_FLAG(bool, ui_insecure, false, "serve the dashboard as plain HTTP on a non-loopback address");
ABSL_FLAG(int, shutdown_seconds, 7,
          "SIGTERM/SIGINT: stop serving and flush the store within this many seconds");

int main(int argc, char** argv) {
  // absl's run-time deadlock detector (on in Debian's build) walks a lock graph on every
  // acquisition; lock order is checked at compile time (-Wthread-safety) and by the tsan suite.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  nasforge::ParseDaemonFlags(
      argc, argv, "nasforge-controller",
      "nasforge-controller: the NAS controller (gRPC API, job manager, store, /metrics, web "
      "dashboard).\nUsage: nasforge-controller [--listen HOST:PORT] [--store URL] [flags]");
  nasforge::ControllerOptions o;
  o.listen = absl::GetFlag(FLAGS_listen);
  o.store_url = absl::GetFlag(FLAGS_store);
  if (o.store_url.empty()) {
    const char* env = std::getenv("NASFORGE_STORE");
    o.store_url = env != nullptr && *env != '\0' ? env : "sqlite://nasforge.db";
  }
  o.artifact_dir = absl::GetFlag(FLAGS_artifact_dir);
  if (o.artifact_dir == "none") {
    o.artifact_dir.clear();
  } else if (o.artifact_dir.empty() && o.store_url.rfind("sqlite://", 0) == 0) {
    o.artifact_dir = o.store_url.substr(9) + ".artifacts";
  }
  o.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  o.metrics_tls_cert = absl::GetFlag(FLAGS_metrics_tls_cert);
  o.metrics_tls_key = absl::GetFlag(FLAGS_metrics_tls_key);
  o.metrics_insecure = absl::GetFlag(FLAGS_metrics_insecure);
  o.standby = absl::GetFlag(FLAGS_standby);
  o.auth_tokens = absl::GetFlag(FLAGS_auth_tokens);
  o.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  o.tls_key = absl::GetFlag(FLAGS_tls_key);
  o.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  o.insecure = absl::GetFlag(FLAGS_insecure);
  o.reflection = absl::GetFlag(FLAGS_reflection);
  o.ui_listen = absl::GetFlag(FLAGS_ui_listen);
  o.ui_optional = o.ui_listen == "127.0.0.1:8464";
  o.ui_tls_cert = absl::GetFlag(FLAGS_ui_tls_cert);
  o.ui_tls_key = absl::GetFlag(FLAGS_ui_tls_key);
  o.ui_insecure = absl::GetFlag(FLAGS_ui_insecure);
  boost::asio::io_context io;
  std::atomic<bool> fatal{false};
  // Another controller took the store: stop serving at once (nothing more can be made durable).
  o.on_fatal = [&] {
    fatal = true;
    boost::asio::post(io, [&] { io.stop(); });
  };
  auto controller = nasforge::Controller::Start(o);
  if (!controller.ok()) {
    nasforge::Log(nasforge::LogLevel::kError, "controller_start_failed",
                  {{"error", controller.status().message()}});
    return 1;
  }
  if (std::string pf = absl::GetFlag(FLAGS_port_file); !pf.empty()) {
    std::string tmp = pf + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
      std::fprintf(f, "%d\n", (*controller)->port());
      std::fclose(f);
      std::rename(tmp.c_str(), pf.c_str());
    }
  }
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int sig) {
    nasforge::Log(nasforge::LogLevel::kInfo, "signal", {{"signal", sig}, {"action", "shutdown"}});
  });
  io.run();
  bool clean =
      (*controller)->Shutdown(absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_shutdown_seconds)));
  if (fatal || !clean) {
    // Threads may still be inside the database: leave without running destructors.
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(fatal ? 3 : 1);
  }
  return 0;
}
