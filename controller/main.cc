// nasforge-controller: parses flags, starts the controller, waits for SIGINT/SIGTERM.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <utility>  // before Boost.Asio (g++ 12, C++20)

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "controller/server.h"
#include "core/flags.h"
#include "core/log.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051", "gRPC HOST:PORT (port 0: any free port)");
ABSL_FLAG(std::string, store, "sqlite://nasforge.db",
          "store URL: sqlite:///path.db (embedded) or postgresql://user@host:port/db");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9464", "/metrics HOST:PORT; empty: off");
ABSL_FLAG(std::string, port_file, "", "write the bound gRPC port to this file (for scripts)");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "nasforge-controller --listen HOST:PORT --store URL --metrics-listen HOST:PORT");
  nasforge::NormalizeFlagNames(argc, argv);
  absl::ParseCommandLine(argc, argv);
  nasforge::ControllerOptions o;
  o.listen = absl::GetFlag(FLAGS_listen);
  o.store_url = absl::GetFlag(FLAGS_store);
  o.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
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
  boost::asio::io_context io;
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int sig) {
    nasforge::Log(nasforge::LogLevel::kInfo, "signal", {{"signal", sig}, {"action", "shutdown"}});
  });
  io.run();
  (*controller)->Shutdown();
  return 0;
}
