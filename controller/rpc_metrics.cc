#include "controller/rpc_metrics.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/support/status.h>
#include <prometheus/histogram.h>

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <utility>

namespace nasforge {
namespace {

constexpr int kCodes = 17;  // grpc::StatusCode OK .. UNAUTHENTICATED

const char* CodeName(int code) {
  static const char* const kNames[kCodes] = {"OK",
                                             "CANCELLED",
                                             "UNKNOWN",
                                             "INVALID_ARGUMENT",
                                             "DEADLINE_EXCEEDED",
                                             "NOT_FOUND",
                                             "ALREADY_EXISTS",
                                             "PERMISSION_DENIED",
                                             "RESOURCE_EXHAUSTED",
                                             "FAILED_PRECONDITION",
                                             "ABORTED",
                                             "OUT_OF_RANGE",
                                             "UNIMPLEMENTED",
                                             "INTERNAL",
                                             "UNAVAILABLE",
                                             "DATA_LOSS",
                                             "UNAUTHENTICATED"};
  return code >= 0 && code < kCodes ? kNames[code] : "UNKNOWN";
}

// Histograms by (method index, code), made on first use. Method index 0 is "other".
class RpcHistograms {
 public:
  explicit RpcHistograms(prometheus::Registry& registry)
      : family_(prometheus::BuildHistogram()
                    .Name("nasforge_controller_rpc_duration_seconds")
                    .Help("gRPC calls served, by service, method and status code: time from the "
                          "call's start to its status (streams: their lifetime).")
                    .Register(registry)) {
    methods_.push_back({"other", "other"});
    for (const char* service : {"nasforge.v1.JobService", "nasforge.v1.WorkerService"}) {
      const auto* d =
          google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
      for (int i = 0; d != nullptr && i < d->method_count(); ++i) {
        Add(service, d->method(i)->name());
      }
    }
    Add("grpc.health.v1.Health", "Check");
    Add("grpc.health.v1.Health", "Watch");
    Add("grpc.reflection.v1alpha.ServerReflection", "ServerReflectionInfo");
    cache_ = std::make_unique<std::atomic<prometheus::Histogram*>[]>(methods_.size() * kCodes);
  }

  // Index of "/service/method", 0 when it is not served here.
  size_t Index(const char* full) const {
    auto it = index_.find(full == nullptr ? "" : full);
    return it == index_.end() ? 0 : it->second;
  }

  void Observe(size_t method, int code, double seconds) {
    if (code < 0 || code >= kCodes) code = static_cast<int>(grpc::StatusCode::UNKNOWN);
    std::atomic<prometheus::Histogram*>& slot = cache_[method * kCodes + code];
    prometheus::Histogram* h = slot.load(std::memory_order_acquire);
    if (h == nullptr) {
      // Family::Add returns the same histogram for the same labels, so a race is harmless.
      h = &family_.Add(
          {{"service", methods_[method].first},
           {"method", methods_[method].second},
           {"code", CodeName(code)}},
          prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60});
      slot.store(h, std::memory_order_release);
    }
    h->Observe(seconds);
  }

 private:
  void Add(const std::string& service, const std::string& method) {
    index_.emplace("/" + service + "/" + method, methods_.size());
    methods_.push_back({service, method});
  }

  prometheus::Family<prometheus::Histogram>& family_;
  std::vector<std::pair<std::string, std::string>> methods_;
  std::map<std::string, size_t, std::less<>> index_;
  std::unique_ptr<std::atomic<prometheus::Histogram*>[]> cache_;
};

// One per call: started when the call is, observed when its status is sent (or, for a call that
// ends without one, when it is destroyed: CANCELLED).
class RpcTimer final : public grpc::experimental::Interceptor {
 public:
  RpcTimer(RpcHistograms* histograms, size_t method)
      : histograms_(histograms), method_(method), start_(std::chrono::steady_clock::now()) {}
  ~RpcTimer() override {
    if (!observed_) Observe(static_cast<int>(grpc::StatusCode::CANCELLED));
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      Observe(static_cast<int>(methods->GetSendStatus().error_code()));
    }
    methods->Proceed();
  }

 private:
  void Observe(int code) {
    observed_ = true;
    histograms_->Observe(
        method_, code,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }

  RpcHistograms* const histograms_;
  const size_t method_;
  const std::chrono::steady_clock::time_point start_;
  bool observed_ = false;
};

class RpcMetricsFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcMetricsFactory(prometheus::Registry& registry) : histograms_(registry) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RpcTimer(&histograms_, histograms_.Index(info->method()));
  }

 private:
  RpcHistograms histograms_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewRpcMetricsInterceptor(
    prometheus::Registry& registry) {
  return std::make_unique<RpcMetricsFactory>(registry);
}

}  // namespace nasforge
