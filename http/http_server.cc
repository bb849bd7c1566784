#include "http/http_server.h"

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <thread>
#include <type_traits>
#include <utility>  // before Boost.Asio (g++ 12, C++20)

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "core/log.h"
#include "core/status.h"

namespace nasforge {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

// A stream waiting to be written faster than its client reads is closed past this size.
constexpr size_t kMaxQueuedBytes = 4 << 20;
// A comment line on every open stream this often: a client that went away is noticed.
constexpr auto kStreamPing = std::chrono::seconds(15);

// The open-stream handle given to the handler's `stream` function. `post` hands data to the
// connection's strand; after Closed() nothing is posted any more.
class StreamImpl final : public HttpStream {
 public:
  explicit StreamImpl(std::function<void(std::string)> post) : post_(std::move(post)) {}

  void Send(std::string data) override {
    absl::MutexLock l(&mu_);
    if (!closed_) post_(std::move(data));
  }
  void Close() override {
    absl::MutexLock l(&mu_);
    if (!closed_) post_(std::string());  // an empty chunk: the connection ends after the queue
  }
  void OnClose(std::function<void()> fn) override {
    {
      absl::MutexLock l(&mu_);
      if (!closed_) {
        on_close_ = std::move(fn);
        return;
      }
    }
    fn();  // closed already: at once, outside the lock
  }
  // The connection ended: runs the OnClose function once (outside the lock: it may take locks
  // that Send's callers hold).
  void Closed() {
    std::function<void()> fn;
    {
      absl::MutexLock l(&mu_);
      if (closed_) return;
      closed_ = true;
      fn = std::move(on_close_);
      // The function holds a copy of the connection's strand executor: let it go now, while the
      // io_context is alive (a handle kept by its owner may outlive the server).
      post_ = nullptr;
    }
    if (fn) fn();
  }

 private:
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void(std::string)> post_ ABSL_GUARDED_BY(mu_);
  std::function<void()> on_close_ ABSL_GUARDED_BY(mu_);
};

// What every connection shares: the handler, limits, and the open streams (closed first when the
// server stops, so no Send posts to a stopped io_context).
struct Shared {
  HttpHandler handler;
  absl::Duration timeout;
  size_t max_body;
  absl::Mutex mu;
  std::set<std::shared_ptr<StreamImpl>> streams ABSL_GUARDED_BY(mu);
  bool stopping ABSL_GUARDED_BY(mu) = false;
};

HttpRequest Convert(const http::request<http::string_body>& req, bool tls) {
  HttpRequest r;
  r.method = std::string(req.method_string());
  r.tls = tls;
  const std::string target(req.target());
  const size_t q = target.find('?');
  r.path = UrlDecode(target.substr(0, q));
  if (q != std::string::npos) r.query = ParseForm(target.substr(q + 1));
  for (const auto& f : req) {
    r.headers[absl::AsciiStrToLower(std::string(f.name_string()))] = std::string(f.value());
  }
  r.body = req.body();
  return r;
}

// One connection: (TLS handshake,) then requests answered one after another while the client
// keeps the connection alive, or one streaming answer. `S` is a beast::tcp_stream or an
// ssl_stream over one.
template <typename S>
class Session : public std::enable_shared_from_this<Session<S>> {
 public:
  template <typename... Args>
  Session(std::shared_ptr<Shared> shared, Args&&... args)
      : stream_(std::forward<Args>(args)...),
        shared_(std::move(shared)),
        ping_(stream_.get_executor()) {}

  ~Session() {
    if (open_stream_) {
      {
        absl::MutexLock l(&shared_->mu);
        shared_->streams.erase(open_stream_);
      }
      open_stream_->Closed();
    }
  }

  void Start() {
    Deadline();
    if constexpr (kTls) {
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (!ec) self->Read();
                              });
    } else {
      Read();
    }
  }

 private:
  static constexpr bool kTls = !std::is_same_v<S, beast::tcp_stream>;

  void Deadline() {
    beast::get_lowest_layer(stream_).expires_after(absl::ToChronoMilliseconds(shared_->timeout));
  }

  void Read() {
    parser_.emplace();
    parser_->body_limit(shared_->max_body);
    Deadline();
    http::async_read(stream_, buf_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       if (ec == http::error::body_limit) {
                         self->Write(HttpResponse::Text(413, "request too large\n"), false, 11);
                       } else if (!ec) {
                         self->Answer();
                       }
                     });
  }

  void Answer() {
    const auto& req = parser_->get();
    HttpResponse out;
    try {
      out = shared_->handler(Convert(req, kTls));
    } catch (const std::exception& e) {
      Log(LogLevel::kError, "http_handler_failed",
          {{"path", std::string(req.target())}, {"error", e.what()}});
      out = HttpResponse::Text(500, "internal error (logged)\n");
    }
    if (out.stream) {
      StartStream(std::move(out), req.version());
    } else {
      Write(std::move(out), req.keep_alive(), req.version());
    }
  }

  static void SetHeaders(http::response_header<>& h, const HttpResponse& out) {
    h.set(http::field::content_type, out.content_type);
    for (const auto& [k, v] : out.headers) h.insert(k, v);
  }

  void Write(HttpResponse out, bool keep_alive, unsigned version) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(out.status), version);
    SetHeaders(res->base(), out);
    res->body() = std::move(out.body);
    res->keep_alive(keep_alive);
    res->prepare_payload();
    Deadline();
    http::async_write(stream_, *res,
                      [self = this->shared_from_this(), res](beast::error_code ec, size_t) {
                        if (ec) return;
                        if (res->keep_alive()) {
                          self->Read();
                        } else {
                          self->Shutdown();
                        }
                      });
  }

  void Shutdown() {
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  // Headers without a length (the body ends when the connection does), then the handler's
  // stream function with a handle whose data is queued here, on this connection's strand.
  void StartStream(HttpResponse out, unsigned version) {
    header_.emplace(static_cast<http::status>(out.status), version);
    SetHeaders(header_->base(), out);
    header_->set(http::field::cache_control, "no-cache");
    header_->keep_alive(false);
    serializer_.emplace(*header_);
    Deadline();
    http::async_write_header(stream_, *serializer_,
                             [self = this->shared_from_this(), fn = std::move(out.stream)](
                                 beast::error_code ec, size_t) {
                               if (ec) return;
                               beast::get_lowest_layer(self->stream_).expires_never();
                               std::weak_ptr<Session> weak = self;
                               auto executor = self->stream_.get_executor();
                               auto st =
                                   std::make_shared<StreamImpl>([weak, executor](std::string data) {
                                     asio::post(executor, [weak, data = std::move(data)]() mutable {
                                       if (auto s = weak.lock()) s->Queue(std::move(data));
                                     });
                                   });
                               {
                                 absl::MutexLock l(&self->shared_->mu);
                                 if (self->shared_->stopping) return;
                                 self->shared_->streams.insert(st);
                               }
                               self->open_stream_ = st;
                               self->WatchForClose();
                               self->Ping();
                               fn(st);
                             });
  }

  // The client says nothing on a stream; a read that completes means it closed (or misbehaves).
  void WatchForClose() {
    stream_.async_read_some(
        asio::buffer(probe_),
        [self = this->shared_from_this()](beast::error_code, size_t) { self->EndStream(); });
  }

  void Ping() {
    ping_.expires_after(kStreamPing);
    ping_.async_wait(
        [weak = std::weak_ptr<Session>(this->shared_from_this())](beast::error_code ec) {
          if (ec) return;
          if (auto s = weak.lock()) {
            s->Queue(": ping\n\n");
            s->Ping();
          }
        });
  }

  void Queue(std::string data) {
    if (ended_) return;
    if (data.empty()) {  // Close(): end after what is queued
      closing_ = true;
      if (!writing_) EndStream();
      return;
    }
    queued_bytes_ += data.size();
    if (queued_bytes_ > kMaxQueuedBytes) {
      Log(LogLevel::kWarn, "http_stream_dropped",
          {{"reason", "the client reads slower than events come"},
           {"queued_bytes", queued_bytes_}});
      EndStream();
      return;
    }
    out_.push_back(std::move(data));
    if (!writing_) WriteNext();
  }

  void WriteNext() {
    if (out_.empty()) {
      writing_ = false;
      if (closing_) EndStream();
      return;
    }
    writing_ = true;
    asio::async_write(stream_, asio::buffer(out_.front()),
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        self->queued_bytes_ -= self->out_.front().size();
                        self->out_.pop_front();
                        if (ec) {
                          self->EndStream();
                          return;
                        }
                        self->WriteNext();
                      });
  }

  void EndStream() {
    if (ended_) return;
    ended_ = true;
    beast::error_code ignored;
    ping_.cancel();
    Shutdown();
    beast::get_lowest_layer(stream_).socket().close(ignored);
    if (open_stream_) {
      {
        absl::MutexLock l(&shared_->mu);
        shared_->streams.erase(open_stream_);
      }
      open_stream_->Closed();
    }
  }

  S stream_;
  std::shared_ptr<Shared> shared_;
  asio::steady_timer ping_;
  beast::flat_buffer buf_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::empty_body>> header_;
  std::optional<http::response_serializer<http::empty_body>> serializer_;
  std::shared_ptr<StreamImpl> open_stream_;
  std::deque<std::string> out_;
  size_t queued_bytes_ = 0;
  bool writing_ = false, closing_ = false, ended_ = false;
  char probe_[64];
};

class BeastHttpServer final : public HttpServer {
 public:
  BeastHttpServer(std::shared_ptr<Shared> shared, std::unique_ptr<ssl::context> tls, int threads)
      : shared_(std::move(shared)),
        tls_(std::move(tls)),
        threads_(std::max(1, threads)),
        io_(threads_),
        acceptor_(io_) {}

  absl::Status Start(const std::string& flag, const std::string& host, uint16_t port,
                     bool insecure) {
    beast::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, "-listen: '", host, "' is not an IP address"));
    }
    if (!tls_ && !insecure && !addr.is_loopback()) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, "-tls-cert: serving on ", host, " (not loopback) needs HTTPS (--", flag,
          "-tls-cert, --", flag, "-tls-key), or --", flag, "-insecure to serve plain HTTP there"));
    }
    tcp::endpoint ep(addr, port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat(flag, "-listen ", host, ":", port, ": ", ec.message()));
    }
    port_ = acceptor_.local_endpoint().port();
    Accept();
    for (int i = 0; i < threads_; ++i) pool_.emplace_back([this] { io_.run(); });
    return absl::OkStatus();
  }

  ~BeastHttpServer() override {
    // Streams first: their OnClose functions unsubscribe, and nothing posts to io_ afterwards.
    std::set<std::shared_ptr<StreamImpl>> streams;
    {
      absl::MutexLock l(&shared_->mu);
      shared_->stopping = true;
      streams.swap(shared_->streams);
    }
    for (const auto& s : streams) s->Closed();
    io_.stop();
    for (auto& t : pool_) t.join();
  }

  int port() const override { return port_; }

 private:
  void Accept() {
    acceptor_.async_accept(asio::make_strand(io_), [this](beast::error_code ec, tcp::socket sock) {
      if (!ec && tls_) {
        std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(shared_, std::move(sock),
                                                                        *tls_)
            ->Start();
      } else if (!ec) {
        std::make_shared<Session<beast::tcp_stream>>(shared_, std::move(sock))->Start();
      }
      if (acceptor_.is_open()) Accept();
    });
  }

  std::shared_ptr<Shared> shared_;
  std::unique_ptr<ssl::context> tls_;  // null: plain HTTP
  const int threads_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> pool_;
  int port_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> StartHttpServer(const HttpServerOptions& o,
                                                            HttpHandler handler) {
  std::unique_ptr<ssl::context> tls;
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(o.flag, "-tls-cert: give it and --", o.flag, "-tls-key together"));
  }
  if (!o.tls_cert.empty()) {
    tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    beast::error_code ec;
    tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    tls->use_certificate_chain_file(o.tls_cert, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat(o.flag, "-tls-cert: ", o.tls_cert, ": ", ec.message()));
    }
    tls->use_private_key_file(o.tls_key, ssl::context::pem, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat(o.flag, "-tls-key: ", o.tls_key, ": ", ec.message()));
    }
  }
  auto colon = o.listen.rfind(':');
  uint32_t port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(o.listen.substr(colon + 1), &port) ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(o.flag, "-listen: '", o.listen, "' is not HOST:PORT"));
  }
  std::string host = o.listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);  // [::1]:9464
  }
  if (host == "localhost") host = "127.0.0.1";
  if (host.empty()) host = "0.0.0.0";  // ":9464": every interface
  auto shared = std::make_shared<Shared>();
  shared->handler = std::move(handler);
  shared->timeout = o.io_timeout;
  shared->max_body = o.max_body;
  auto s = std::make_unique<BeastHttpServer>(std::move(shared), std::move(tls), o.threads);
  NF_RETURN_IF_ERROR(s->Start(o.flag, host, static_cast<uint16_t>(port), o.insecure));
  return std::unique_ptr<HttpServer>(std::move(s));
}

}  // namespace nasforge
