#include "client/channel.h"

#include <grpcpp/support/client_interceptor.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace nasforge {
namespace {

using grpc::experimental::ClientInterceptorFactoryInterface;
using grpc::experimental::ClientRpcInfo;
using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::Interceptor;
using grpc::experimental::InterceptorBatchMethods;

class BearerInterceptor final : public Interceptor {
 public:
  explicit BearerInterceptor(const std::string* header) : header_(header) {}
  void Intercept(InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({"authorization", *header_});
    }
    methods->Proceed();
  }

 private:
  const std::string* header_;
};

class BearerFactory final : public ClientInterceptorFactoryInterface {
 public:
  explicit BearerFactory(std::string token) : header_(absl::StrCat("Bearer ", token)) {}
  Interceptor* CreateClientInterceptor(ClientRpcInfo*) override {
    return new BearerInterceptor(&header_);
  }

 private:
  const std::string header_;  // lives as long as the channel (which owns the factory)
};

}  // namespace

bool IsLoopbackAddress(const std::string& host_port) {
  std::string host = host_port.substr(0, host_port.rfind(':'));
  if (absl::StartsWith(host, "ipv4:")) host = host.substr(5);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

absl::StatusOr<std::string> ReadPemFile(const std::string& path, const std::string& flag) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (pem.find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, " is not a PEM file"));
  }
  return pem;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenChannel(ChannelOptions o) {
  o.args.SetMaxReceiveMessageSize(kMaxClientReceiveBytes);
  o.args.SetMaxSendMessageSize(kMaxServerReceiveBytes);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "tls-cert: give the client certificate and --tls-key together");
  }
  if (!o.tls_ca.empty()) {
    grpc::SslCredentialsOptions ssl;
    auto ca = ReadPemFile(o.tls_ca, "tls-ca");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    if (!o.tls_cert.empty()) {
      auto cert = ReadPemFile(o.tls_cert, "tls-cert");
      if (!cert.ok()) return cert.status();
      auto key = ReadPemFile(o.tls_key, "tls-key");
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    creds = grpc::SslCredentials(ssl);
  } else if (!o.tls_cert.empty()) {
    return absl::InvalidArgumentError("tls-ca: a client certificate needs the controller's CA too");
  } else if (IsLoopbackAddress(o.target) || o.insecure) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls-ca: ", o.target,
        " is not loopback: give the CA of the controller's certificate "
        "(--tls-ca or $NASFORGE_TLS_CA), or --insecure to send plain text (tokens readable on "
        "the network)"));
  }
  std::vector<std::unique_ptr<ClientInterceptorFactoryInterface>> factories;
  if (!o.token.empty()) factories.push_back(std::make_unique<BearerFactory>(o.token));
  return grpc::experimental::CreateCustomChannelWithInterceptors(o.target, creds, o.args,
                                                                 std::move(factories));
}

absl::StatusOr<std::string> LoadToken(const std::string& file) {
  std::string token;
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) {
      return absl::InvalidArgumentError(
          absl::StrCat("token-file: cannot read ", file, " (does it exist and is it readable?)"));
    }
    std::getline(in, token);
  } else if (const char* env = std::getenv("NASFORGE_TOKEN")) {
    token = env;
  }
  return std::string(absl::StripAsciiWhitespace(token));
}

}  // namespace nasforge
