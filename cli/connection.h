// How the CLI reaches the controller: the global flags (--controller, --token-file, --tls-ca,
// --tls-cert, --tls-key, --insecure, with their environment variables) and the channel they open.
#pragma once

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "nasforge/v1/nasforge.grpc.pb.h"

namespace nasforge::cli {

struct ConnectionOptions {
  std::string controller = "127.0.0.1:50051";  // or $NASFORGE_CONTROLLER
  std::string token_file;  // the bearer token; without it $NASFORGE_TOKEN (never argv)
  std::string tls_ca;      // or $NASFORGE_TLS_CA
  std::string tls_cert, tls_key;
  bool insecure = false;
};

// Adds the connection flags to `app` (they may also follow the command: `fallthrough`).
void AddConnectionOptions(CLI::App& app, ConnectionOptions* options);

// The channel `options` describe (TLS, token); errors as ConnectJobService's.
absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectChannel(const ConnectionOptions& options);

// A JobService stub over the channel `options` describe; INVALID_ARGUMENT naming the flag when a
// file cannot be read or plain text is asked for beyond loopback without --insecure.
absl::StatusOr<std::unique_ptr<v1::JobService::Stub>> ConnectJobService(
    const ConnectionOptions& options);

}  // namespace nasforge::cli
