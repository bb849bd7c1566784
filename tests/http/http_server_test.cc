// The HTTP server under /metrics and the dashboard: requests decoded, keep-alive, limits, a
// handler's exception answered 500, and streams (server-sent events) fed from another thread,
// noticed when the client goes away and closed when the server stops.
#include "http/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/socket_util.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

void Send(int fd, const std::string& s) {
  ASSERT_EQ(write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size()));
}

// Reads until `want` has arrived (or the peer closed).
std::string ReadUntil(int fd, const std::string& want) {
  std::string out;
  char buf[4096];
  while (out.find(want) == std::string::npos) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

HttpResponse Echo(const HttpRequest& r) {
  if (r.path == "/boom") throw std::runtime_error("handler bug");
  std::string body = r.method + " " + r.path;
  for (const auto& [k, v] : r.query) body += " " + k + "=" + v;
  body += " cookie=" + r.Cookie("sid") + " body=" + r.body + " END";
  return HttpResponse::Text(200, body);
}

TEST(HttpServerTest, DecodesRequestsAndKeepsConnectionsAlive) {
  auto server = StartHttpServer({.listen = "127.0.0.1:0", .max_body = 100}, Echo);
  ASSERT_TRUE(server.ok()) << server.status();
  int fd = testing::ConnectLoopback((*server)->port());
  Send(fd, "GET /a%20b?x=%41b+c&y=1 HTTP/1.1\r\nHost: h\r\nCookie: a=1; sid=s3\r\n\r\n");
  std::string first = ReadUntil(fd, "END");
  EXPECT_THAT(first, HasSubstr("GET /a b x=Ab c y=1 cookie=s3 body= END"));
  Send(fd, "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_THAT(ReadUntil(fd, "END"), HasSubstr("POST /p cookie= body=hello END"))
      << "a second request on the same connection";
  close(fd);

  fd = testing::ConnectLoopback((*server)->port());
  Send(fd, "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 500\r\n\r\n" + std::string(500, 'x'));
  EXPECT_THAT(ReadUntil(fd, "\r\n\r\n"), HasSubstr("413"));
  close(fd);

  fd = testing::ConnectLoopback((*server)->port());
  Send(fd, "GET /boom HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(ReadUntil(fd, "logged"), HasSubstr("500"));
  close(fd);
}

TEST(HttpServerTest, StreamsFromAnotherThreadAndNoticesTheClientLeaving) {
  std::mutex mu;
  std::shared_ptr<HttpStream> open;
  absl::Notification started, closed;
  auto handler = [&](const HttpRequest&) {
    HttpResponse r;
    r.content_type = "text/event-stream";
    r.stream = [&](std::shared_ptr<HttpStream> s) {
      s->OnClose([&] { closed.Notify(); });
      std::lock_guard<std::mutex> l(mu);
      open = s;
      started.Notify();
    };
    return r;
  };
  auto server = StartHttpServer({.listen = "127.0.0.1:0"}, handler);
  ASSERT_TRUE(server.ok()) << server.status();
  int fd = testing::ConnectLoopback((*server)->port());
  Send(fd, "GET /events HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(30)));
  std::thread feeder([&] {
    std::lock_guard<std::mutex> l(mu);
    for (int i = 0; i < 3; ++i) open->Send("data: " + std::to_string(i) + "\n\n");
  });
  feeder.join();
  std::string got = ReadUntil(fd, "data: 2\n\n");
  EXPECT_THAT(got, HasSubstr("text/event-stream"));
  EXPECT_THAT(got, HasSubstr("data: 0\n\ndata: 1\n\ndata: 2\n\n")) << "in order";
  EXPECT_FALSE(closed.HasBeenNotified());
  close(fd);
  EXPECT_TRUE(closed.WaitForNotificationWithTimeout(absl::Seconds(30)))
      << "the client went away: OnClose ran";
  std::lock_guard<std::mutex> l(mu);
  open->Send("data: late\n\n");  // after the close: nothing, no crash
}

TEST(HttpServerTest, StoppingClosesOpenStreams) {
  absl::Notification started, closed;
  auto handler = [&](const HttpRequest&) {
    HttpResponse r;
    r.stream = [&](std::shared_ptr<HttpStream> s) {
      s->OnClose([&] { closed.Notify(); });
      started.Notify();
    };
    return r;
  };
  auto server = StartHttpServer({.listen = "127.0.0.1:0", .threads = 2}, handler);
  ASSERT_TRUE(server.ok());
  int fd = testing::ConnectLoopback((*server)->port());
  Send(fd, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(30)));
  server->reset();
  EXPECT_TRUE(closed.HasBeenNotified()) << "OnClose ran before the server was gone";
  close(fd);
}

TEST(HttpServerTest, FlagsNamedInErrors) {
  auto bad = StartHttpServer({.flag = "ui", .listen = "nowhere"}, Echo);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("ui-listen:"));
  auto open = StartHttpServer({.flag = "ui", .listen = "0.0.0.0:0"}, Echo);
  EXPECT_THAT(std::string(open.status().message()), HasSubstr("--ui-insecure"));
  auto half = StartHttpServer({.flag = "ui", .listen = "127.0.0.1:0", .tls_cert = "x.pem"}, Echo);
  EXPECT_THAT(std::string(half.status().message()), HasSubstr("ui-tls-cert"));
}

TEST(HttpServerTest, UrlCoding) {
  EXPECT_EQ(UrlDecode("a%2Fb+c%zz"), "a/b c%zz");
  EXPECT_EQ(UrlEncode("a b/<>"), "a%20b%2F%3C%3E");
  EXPECT_EQ(UrlDecode(UrlEncode("accuracy>=0.9,macs<=3e8")), "accuracy>=0.9,macs<=3e8");
  auto form = ParseForm("token=nf_1&next=%2Fjobs%2Fx&flag");
  EXPECT_EQ(form["token"], "nf_1");
  EXPECT_EQ(form["next"], "/jobs/x");
  EXPECT_EQ(form.count("flag"), 1u);
}

}  // namespace
}  // namespace nasforge
