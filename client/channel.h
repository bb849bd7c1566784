// How the CLI and workers reach the controller: one channel that carries the caller's bearer
// token on every call (a client interceptor adds the "authorization" metadata, so it works on
// any transport), with message-size limits set on purpose.
//
// Tokens come from a file or the environment, never from the command line (argv is visible to
// every user of the machine in `ps`).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace nasforge {

// The largest answer a client accepts (ListCandidates pages with curves can be large) and the
// largest request the controller accepts (a job spec is at most 1 MiB).
inline constexpr int kMaxClientReceiveBytes = 64 << 20;
inline constexpr int kMaxServerReceiveBytes = 4 << 20;

struct ChannelOptions {
  std::string target;  // HOST:PORT
  std::string token;   // bearer token; empty: none sent
  grpc::ChannelArguments args;
  // TLS: the CA that signed the controller's certificate (PEM file); with a client certificate
  // and key as well, mutual TLS. Without a CA the channel is plain text, which is allowed only
  // to a loopback target or with `insecure`.
  std::string tls_ca, tls_cert, tls_key;
  bool insecure = false;
};

// INVALID_ARGUMENT naming the flag (tls-ca, tls-cert, ...) for unreadable files or a plain-text
// channel to a non-loopback target without `insecure`.
absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenChannel(ChannelOptions options);

// True if HOST in "HOST:PORT" is localhost or a loopback address (127.0.0.0/8, ::1).
bool IsLoopbackAddress(const std::string& host_port);

// The contents of `path`, or INVALID_ARGUMENT naming `flag`.
absl::StatusOr<std::string> ReadPemFile(const std::string& path, const std::string& flag);

// The token in `file` (its first line, surrounding whitespace trimmed) when `file` is given,
// else $NASFORGE_TOKEN, else "" (no token). A named file that cannot be read is an error.
absl::StatusOr<std::string> LoadToken(const std::string& file);

}  // namespace nasforge
