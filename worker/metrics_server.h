// A tiny /metrics HTTP server on Boost.Beast for the worker. prometheus-cpp's civetweb exposer
// cannot start threads in a process that loads LibTorch: glibc rejects civetweb's fixed small
// thread stacks once ~300 libraries' static TLS no longer fits (pthread_create: EINVAL).
#pragma once

#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace nasforge {

class MetricsServer {
 public:
  virtual ~MetricsServer() = default;
  virtual int port() const = 0;
};

// Serves GET /metrics (Prometheus text format) for `registry` on HOST:PORT (port 0: any); over
// HTTPS when `tls_cert` (PEM chain) and `tls_key` (PEM key) are given.
absl::StatusOr<std::unique_ptr<MetricsServer>> StartMetricsServer(
    const std::string& host_port, std::shared_ptr<prometheus::Registry> registry,
    const std::string& tls_cert = "", const std::string& tls_key = "");

}  // namespace nasforge
