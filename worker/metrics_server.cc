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

// One connection: read one request (with a deadline, so a client that connects and says nothing
// cannot hold anything up), answer it, close.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket sock, std::shared_ptr<prometheus::Registry> registry)
      : stream_(std::move(sock)), registry_(std::move(registry)) {}

  void Start() {
    stream_.expires_after(std::chrono::seconds(5));
    http::async_read(stream_, buf_, req_,
                     [self = shared_from_this()](boost::system::error_code ec, size_t) {
                       if (!ec) self->Answer();
                     });
  }

 private:
  void Answer() {
    res_.version(req_.version());
    res_.keep_alive(false);
    if (req_.target() == "/metrics" && req_.method() == http::verb::get) {
      res_.result(http::status::ok);
      res_.set(http::field::content_type, "text/plain; version=0.0.4");
      res_.body() = prometheus::TextSerializer().Serialize(registry_->Collect());
    } else {
      res_.result(http::status::not_found);
      res_.body() = "only GET /metrics here\n";
    }
    res_.prepare_payload();
    stream_.expires_after(std::chrono::seconds(5));
    http::async_write(stream_, res_,
                      [self = shared_from_this()](boost::system::error_code, size_t) {
                        boost::system::error_code ignored;
                        self->stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
                      });
  }

  boost::beast::tcp_stream stream_;
  std::shared_ptr<prometheus::Registry> registry_;
  boost::beast::flat_buffer buf_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
};

// Asynchronous: connections are served concurrently on one thread, each with a deadline, and
// stopping the io_context ends everything at once (a stuck client never blocks shutdown).
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
    Accept();
    thread_ = std::thread([this] { io_.run(); });
    return absl::OkStatus();
  }

  ~BeastMetricsServer() override {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  int port() const override { return port_; }

 private:
  void Accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket sock) {
      if (!ec) std::make_shared<Session>(std::move(sock), registry_)->Start();
      if (acceptor_.is_open()) Accept();
    });
  }

  std::shared_ptr<prometheus::Registry> registry_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
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
