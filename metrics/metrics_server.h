// GET /metrics on the shared Boost.Beast server (http/http_server.h), used by the controller and
// the worker instead of prometheus-cpp's civetweb exposer, for two reasons: civetweb cannot start
// threads in a process that loads LibTorch (glibc rejects its fixed small thread stacks once ~300
// libraries' static TLS no longer fits: pthread_create EINVAL), and Debian's civetweb build
// completes a TLS handshake and then resets every request, so it cannot serve /metrics over HTTPS.
#pragma once

#include <prometheus/registry.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace nasforge {

using Collectables = std::vector<std::shared_ptr<prometheus::Collectable>>;

class MetricsServer {
 public:
  virtual ~MetricsServer() = default;
  virtual int port() const = 0;
};

struct MetricsServerOptions {
  std::string listen;  // HOST:PORT (port 0: any free port)
  // HTTPS when both are given: certificate chain and private key (PEM files).
  std::string tls_cert, tls_key;
  // Plain HTTP on an address other than loopback: refused unless this is set.
  bool insecure = false;
  // How long one connection may take for each of handshake, request and answer.
  absl::Duration io_timeout = absl::Seconds(5);
};

// Serves GET /metrics (Prometheus text format) for `registry`. Errors name the flag at fault
// (metrics-listen, metrics-tls-cert, metrics-tls-key).
absl::StatusOr<std::unique_ptr<MetricsServer>> StartMetricsServer(
    const MetricsServerOptions& options, std::shared_ptr<prometheus::Registry> registry);
// The same, serving every source's families in order (a registry, or a collector that computes
// its gauges at scrape time).
absl::StatusOr<std::unique_ptr<MetricsServer>> StartMetricsServer(
    const MetricsServerOptions& options, Collectables sources);

}  // namespace nasforge
