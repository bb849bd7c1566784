#include "client/channel.h"

#include <grpcpp/support/client_interceptor.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"

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

std::shared_ptr<grpc::Channel> OpenChannel(ChannelOptions o) {
  o.args.SetMaxReceiveMessageSize(kMaxClientReceiveBytes);
  o.args.SetMaxSendMessageSize(kMaxServerReceiveBytes);
  std::vector<std::unique_ptr<ClientInterceptorFactoryInterface>> factories;
  if (!o.token.empty()) factories.push_back(std::make_unique<BearerFactory>(o.token));
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      o.target, grpc::InsecureChannelCredentials(), o.args, std::move(factories));
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
