#include "worker/metrics_server.h"

#include <prometheus/text_serializer.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>
#include <utility>  // before Boost.Asio (g++ 12, C++20)

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/log.h"

namespace nasforge {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

class BeastMetricsServer final : public MetricsServer {
 public:
  BeastMetricsServer(std::shared_ptr<prometheus::Registry> registry)
      : registry_(std::move(registry)), acceptor_(io_) {}

  absl::Status Start(const std::string& host, uint16_t port) {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (ec)
      return absl::InvalidArgumentError(absl::StrCat("metrics-listen: bad host '", host, "'"));
    tcp::endpoint ep(addr, port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("metrics-listen ", host, ":", port, ": ", ec.message()));
    }
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { Serve(); });
    return absl::OkStatus();
  }

  ~BeastMetricsServer() override {
    stop_ = true;
    boost::system::error_code ec;
    // close() alone does not wake a thread blocked in accept(); shutdown() does.
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    acceptor_.close(ec);
    if (thread_.joinable()) thread_.join();
  }

  int port() const override { return port_; }

 private:
  // One request per connection, served in turn: scrapes are rare and small.
  void Serve() {
    while (!stop_) {
      tcp::socket sock(io_);
      boost::system::error_code ec;
      acceptor_.accept(sock, ec);
      if (ec) {
        if (stop_) return;
        continue;
      }
      boost::beast::flat_buffer buf;
      http::request<http::string_body> req;
      http::read(sock, buf, req, ec);
      if (ec) continue;
      http::response<http::string_body> res;
      res.version(req.version());
      res.keep_alive(false);
      if (req.target() == "/metrics" && req.method() == http::verb::get) {
        res.result(http::status::ok);
        res.set(http::field::content_type, "text/plain; version=0.0.4");
        res.body() = prometheus::TextSerializer().Serialize(registry_->Collect());
      } else {
        res.result(http::status::not_found);
        res.body() = "only GET /metrics here\n";
      }
      res.prepare_payload();
      http::write(sock, res, ec);
      sock.shutdown(tcp::socket::shutdown_both, ec);
    }
  }

  std::shared_ptr<prometheus::Registry> registry_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  int port_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> StartMetricsServer(
    const std::string& host_port, std::shared_ptr<prometheus::Registry> registry) {
  auto colon = host_port.rfind(':');
  uint32_t port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(host_port.substr(colon + 1), &port) ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics-listen: '", host_port, "' is not HOST:PORT"));
  }
  auto s = std::make_unique<BeastMetricsServer>(std::move(registry));
  absl::Status st = s->Start(host_port.substr(0, colon), static_cast<uint16_t>(port));
  if (!st.ok()) return st;
  return std::unique_ptr<MetricsServer>(std::move(s));
}

}  // namespace nasforge
