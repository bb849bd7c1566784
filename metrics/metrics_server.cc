#include "metrics/metrics_server.h"

#include <prometheus/text_serializer.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <thread>
#include <type_traits>
#include <utility>  // before Boost.Asio (g++ 12, C++20)

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/status.h"

namespace nasforge {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

// One connection: (TLS handshake,) read one request, answer it, close; every step has a deadline,
// so a client that connects and says nothing cannot hold anything up. `Stream` is a
// beast::tcp_stream or a beast::ssl_stream over one.
template <typename Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <typename... Args>
  Session(std::shared_ptr<const Collectables> sources, absl::Duration timeout, Args&&... args)
      : stream_(std::forward<Args>(args)...), sources_(std::move(sources)), timeout_(timeout) {}

  void Start() {
    Deadline();
    if constexpr (kTls) {
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](boost::system::error_code ec) {
                                if (!ec) self->Read();
                              });
    } else {
      Read();
    }
  }

 private:
  static constexpr bool kTls = !std::is_same_v<Stream, boost::beast::tcp_stream>;

  void Deadline() {
    boost::beast::get_lowest_layer(stream_).expires_after(absl::ToChronoMilliseconds(timeout_));
  }

  void Read() {
    Deadline();
    http::async_read(stream_, buf_, req_,
                     [self = this->shared_from_this()](boost::system::error_code ec, size_t) {
                       if (!ec) self->Answer();
                     });
  }

  void Answer() {
    res_.version(req_.version());
    res_.keep_alive(false);
    if (req_.target() == "/metrics" && req_.method() == http::verb::get) {
      res_.result(http::status::ok);
      res_.set(http::field::content_type, "text/plain; version=0.0.4");
      std::vector<prometheus::MetricFamily> families;
      for (const auto& source : *sources_) {
        for (auto& f : source->Collect()) families.push_back(std::move(f));
      }
      res_.body() = prometheus::TextSerializer().Serialize(families);
    } else {
      res_.result(http::status::not_found);
      res_.body() = "only GET /metrics here\n";
    }
    res_.prepare_payload();
    Deadline();
    http::async_write(stream_, res_,
                      [self = this->shared_from_this()](boost::system::error_code, size_t) {
                        boost::system::error_code ignored;
                        boost::beast::get_lowest_layer(self->stream_)
                            .socket()
                            .shutdown(tcp::socket::shutdown_both, ignored);
                      });
  }

  Stream stream_;
  std::shared_ptr<const Collectables> sources_;
  absl::Duration timeout_;
  boost::beast::flat_buffer buf_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
};

// Asynchronous: connections are served concurrently on one thread, each with a deadline, and
// stopping the io_context ends everything at once (a stuck client never blocks shutdown).
class BeastMetricsServer final : public MetricsServer {
 public:
  BeastMetricsServer(std::shared_ptr<const Collectables> sources, std::unique_ptr<ssl::context> tls,
                     absl::Duration timeout)
      : sources_(std::move(sources)), tls_(std::move(tls)), timeout_(timeout), acceptor_(io_) {}

  absl::Status Start(const std::string& host, uint16_t port, bool insecure) {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics-listen: '", host, "' is not an IP address"));
    }
    if (!tls_ && !insecure && !addr.is_loopback()) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics-tls-cert: /metrics on ", host,
                       " (not loopback) needs HTTPS (--metrics-tls-cert, --metrics-tls-key), or "
                       "--metrics-insecure to serve plain HTTP there"));
    }
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
      if (!ec && tls_) {
        std::make_shared<Session<boost::beast::ssl_stream<boost::beast::tcp_stream>>>(
            sources_, timeout_, std::move(sock), *tls_)
            ->Start();
      } else if (!ec) {
        std::make_shared<Session<boost::beast::tcp_stream>>(sources_, timeout_, std::move(sock))
            ->Start();
      }
      if (acceptor_.is_open()) Accept();
    });
  }

  std::shared_ptr<const Collectables> sources_;
  std::unique_ptr<ssl::context> tls_;  // null: plain HTTP
  absl::Duration timeout_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> StartMetricsServer(
    const MetricsServerOptions& o, std::shared_ptr<prometheus::Registry> registry) {
  return StartMetricsServer(o, Collectables{std::move(registry)});
}

absl::StatusOr<std::unique_ptr<MetricsServer>> StartMetricsServer(const MetricsServerOptions& o,
                                                                  Collectables sources) {
  std::unique_ptr<ssl::context> tls;
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return absl::InvalidArgumentError("metrics-tls-cert: give it and --metrics-tls-key together");
  }
  if (!o.tls_cert.empty()) {
    tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    boost::system::error_code ec;
    tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    tls->use_certificate_chain_file(o.tls_cert, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics-tls-cert: ", o.tls_cert, ": ", ec.message()));
    }
    tls->use_private_key_file(o.tls_key, ssl::context::pem, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics-tls-key: ", o.tls_key, ": ", ec.message()));
    }
  }
  auto colon = o.listen.rfind(':');
  uint32_t port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(o.listen.substr(colon + 1), &port) ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics-listen: '", o.listen, "' is not HOST:PORT"));
  }
  std::string host = o.listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);  // [::1]:9464
  }
  if (host == "localhost") host = "127.0.0.1";
  if (host.empty()) host = "0.0.0.0";  // ":9464": every interface
  auto s = std::make_unique<BeastMetricsServer>(
      std::make_shared<const Collectables>(std::move(sources)), std::move(tls), o.io_timeout);
  NF_RETURN_IF_ERROR(s->Start(host, static_cast<uint16_t>(port), o.insecure));
  return std::unique_ptr<MetricsServer>(std::move(s));
}

}  // namespace nasforge
