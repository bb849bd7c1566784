#include "metrics/metrics_server.h"

#include <prometheus/text_serializer.h>

#include <utility>

#include "http/http_server.h"

namespace nasforge {
namespace {

class HttpMetricsServer final : public MetricsServer {
 public:
  explicit HttpMetricsServer(std::unique_ptr<HttpServer> http) : http_(std::move(http)) {}
  int port() const override { return http_->port(); }

 private:
  std::unique_ptr<HttpServer> http_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> StartMetricsServer(
    const MetricsServerOptions& o, std::shared_ptr<prometheus::Registry> registry) {
  return StartMetricsServer(o, Collectables{std::move(registry)});
}

absl::StatusOr<std::unique_ptr<MetricsServer>> StartMetricsServer(const MetricsServerOptions& o,
                                                                  Collectables sources) {
  auto handler = [sources = std::move(sources)](const HttpRequest& req) {
    if (req.path != "/metrics" || req.method != "GET") {
      return HttpResponse::Text(404, "only GET /metrics here\n");
    }
    std::vector<prometheus::MetricFamily> families;
    for (const auto& source : sources) {
      for (auto& f : source->Collect()) families.push_back(std::move(f));
    }
    HttpResponse res = HttpResponse::Text(200, prometheus::TextSerializer().Serialize(families));
    res.content_type = "text/plain; version=0.0.4";
    return res;
  };
  auto http = StartHttpServer({.flag = "metrics",
                               .listen = o.listen,
                               .tls_cert = o.tls_cert,
                               .tls_key = o.tls_key,
                               .insecure = o.insecure,
                               .io_timeout = o.io_timeout},
                              std::move(handler));
  if (!http.ok()) return http.status();
  return std::unique_ptr<MetricsServer>(std::make_unique<HttpMetricsServer>(std::move(*http)));
}

}  // namespace nasforge
