#include "cli/connection.h"

#include "client/channel.h"

namespace nasforge::cli {

void AddConnectionOptions(CLI::App& app, ConnectionOptions* o) {
  const char* group = "Connection (any command that talks to the controller)";
  app.add_option("--controller", o->controller, "controller address HOST:PORT")
      ->envname("NASFORGE_CONTROLLER")
      ->capture_default_str()
      ->group(group);
  app.add_option("--token-file", o->token_file,
                 "file holding the bearer token (default: $NASFORGE_TOKEN)")
      ->group(group);
  app.add_option("--tls-ca", o->tls_ca, "CA certificate (PEM) that signed the controller's")
      ->envname("NASFORGE_TLS_CA")
      ->group(group);
  app.add_option("--tls-cert", o->tls_cert, "client certificate (PEM) for mutual TLS")
      ->group(group);
  app.add_option("--tls-key", o->tls_key, "client key (PEM) for mutual TLS")
      ->needs(app.get_option("--tls-cert"))
      ->group(group);
  app.get_option("--tls-cert")->needs(app.get_option("--tls-key"));
  app.add_flag("--insecure", o->insecure, "allow plain text to a non-loopback controller")
      ->group(group);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectChannel(const ConnectionOptions& options) {
  auto token = LoadToken(options.token_file);
  if (!token.ok()) return token.status();
  ChannelOptions o;
  o.target = options.controller;
  o.token = *token;
  o.tls_ca = options.tls_ca;
  o.tls_cert = options.tls_cert;
  o.tls_key = options.tls_key;
  o.insecure = options.insecure;
  return OpenChannel(std::move(o));
}

absl::StatusOr<std::unique_ptr<v1::JobService::Stub>> ConnectJobService(
    const ConnectionOptions& options) {
  auto channel = ConnectChannel(options);
  if (!channel.ok()) return channel.status();
  return v1::JobService::NewStub(*channel);
}

}  // namespace nasforge::cli
