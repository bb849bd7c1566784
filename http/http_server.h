// A small HTTP(S) server on Boost.Beast: the controller's /metrics and its web dashboard, the
// worker's /metrics. One function answers every request; a response can instead keep its
// connection open as a stream (server-sent events), fed from any thread.
//
// Every step of a connection has a deadline (handshake, request, answer), so a client that
// connects and says nothing holds nothing up; connections are served on a few threads, each
// connection on its own strand. Plain HTTP is refused on an address other than loopback unless
// `insecure` is set. Errors name the flags at fault: "<flag>-listen", "<flag>-tls-cert", ...
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace nasforge {

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::string path;                            // the target up to '?', percent-decoded
  std::map<std::string, std::string> query;    // decoded; a repeated key keeps its last value
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  bool tls = false;
  // A header's value ("" when absent), `name` in lower case.
  std::string Header(const std::string& name) const;
  // A cookie's value from the Cookie header ("" when absent).
  std::string Cookie(const std::string& name) const;
  // A query parameter ("" when absent).
  std::string Query(const std::string& name) const;
};

// An open response body (server-sent events). Send and Close may be called from any thread;
// after the client went away they do nothing.
class HttpStream {
 public:
  virtual ~HttpStream() = default;
  virtual void Send(std::string data) = 0;
  virtual void Close() = 0;
  // `fn` runs once when the stream ends (client gone, Close, server stopping), on a server
  // thread. Set it before returning from the response's `stream` function.
  virtual void OnClose(std::function<void()> fn) = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // Set for a streaming answer: the status line and headers are sent (no body, no length), then
  // this is called with the open stream. The connection stays open until either side closes it.
  std::function<void(std::shared_ptr<HttpStream>)> stream;

  static HttpResponse Text(int status, std::string body);
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpServer {
 public:
  virtual ~HttpServer() = default;  // closes every connection, streams included
  virtual int port() const = 0;
};

struct HttpServerOptions {
  std::string flag = "listen";  // names the flags in errors: "metrics" -> "metrics-listen"
  std::string listen;           // HOST:PORT (port 0: any free port)
  // HTTPS when both are given: certificate chain and private key (PEM files).
  std::string tls_cert, tls_key;
  // Plain HTTP on an address other than loopback: refused unless this is set.
  bool insecure = false;
  // How long one connection may take for each of handshake, request and answer; also how long
  // an idle kept-alive connection stays open.
  absl::Duration io_timeout = absl::Seconds(5);
  int threads = 1;              // handler threads
  size_t max_body = 64 * 1024;  // larger requests are answered 413
};

absl::StatusOr<std::unique_ptr<HttpServer>> StartHttpServer(const HttpServerOptions& options,
                                                            HttpHandler handler);

// "%41b+c" -> "Ab c" (form and query encoding). Invalid escapes are kept as they are.
std::string UrlDecode(const std::string& s);
std::string UrlEncode(const std::string& s);
// "a=1&b=x%20y" -> {a: 1, b: "x y"}.
std::map<std::string, std::string> ParseForm(const std::string& s);

}  // namespace nasforge
