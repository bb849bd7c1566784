// The worker's /metrics server: answers scrapes while another client holds a connection open
// without sending anything, and stops at once even then.
#include "metrics/metrics_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <prometheus/counter.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/socket_util.h"
#include "tests/test_util.h"

namespace nasforge {
namespace {

std::string Get(int port, const std::string& path) {
  int fd = testing::ConnectLoopback(port);
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  EXPECT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

TEST(MetricsServerTest, AStuckClientBlocksNeitherScrapesNorShutdown) {
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter().Name("nasforge_test_total").Help("t").Register(*registry).Add({});
  auto server = StartMetricsServer({.listen = "127.0.0.1:0"}, registry);
  ASSERT_TRUE(server.ok()) << server.status();
  int port = (*server)->port();
  int stuck = testing::ConnectLoopback(port);  // connects and never says a word
  std::string res = Get(port, "/metrics");
  EXPECT_THAT(res, ::testing::HasSubstr("200 OK"));
  EXPECT_THAT(res, ::testing::HasSubstr("nasforge_test_total 0"));
  EXPECT_THAT(Get(port, "/other"), ::testing::HasSubstr("404"));
  server->reset();  // returns although `stuck` is still connected
  close(stuck);
}

TEST(MetricsServerTest, ServesHttpsWithItsCertificate) {
  // A CA and a certificate for 127.0.0.1 made with openssl; curl checks the chain.
  std::string d = absl::StrCat(std::filesystem::temp_directory_path().string(),
                               "/nasforge-metrics-tls-", getpid());
  std::filesystem::create_directories(d);
  std::string cmd = absl::StrCat(
      "cd ", d, " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes ",
      "-keyout ca.key -out ca.pem -days 2 -subj /CN=ca && openssl req -newkey ec -pkeyopt ",
      "ec_paramgen_curve:P-256 -nodes -keyout w.key -out w.csr -subj /CN=w && echo ",
      "subjectAltName=IP:127.0.0.1 > ext && openssl x509 -req -in w.csr -CA ca.pem -CAkey ",
      "ca.key -CAcreateserial -days 2 -extfile ext -out w.pem && openssl req -x509 -newkey ec ",
      "-pkeyopt ec_paramgen_curve:P-256 -nodes -keyout i.key -out impostor.pem -days 2 ",
      "-subj /CN=impostor) >/dev/null 2>&1");
  ASSERT_EQ(std::system(("(" + cmd).c_str()), 0);
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter().Name("nasforge_tls_total").Help("t").Register(*registry).Add({});
  auto missing = StartMetricsServer(
      {.listen = "127.0.0.1:0", .tls_cert = d + "/missing.pem", .tls_key = d + "/w.key"}, registry);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(missing.status().message()), ::testing::StartsWith("metrics-tls-cert:"));
  auto server = StartMetricsServer(
      {.listen = "127.0.0.1:0", .tls_cert = d + "/w.pem", .tls_key = d + "/w.key"}, registry);
  ASSERT_TRUE(server.ok()) << server.status();
  int stuck = testing::ConnectLoopback(
      (*server)->port());  // a silent client blocks neither the handshake nor us
  auto curl = [&](const std::string& args) {
    return testing::CommandOutput(
        absl::StrCat("curl -s ", args, "127.0.0.1:", (*server)->port(), "/metrics"));
  };
  EXPECT_THAT(curl("--cacert " + d + "/ca.pem https://"),
              ::testing::HasSubstr("nasforge_tls_total 0"));
  EXPECT_EQ(curl("--cacert " + d + "/impostor.pem https://"), "") << "another CA";
  EXPECT_EQ(curl("http://"), "") << "no plain HTTP on the TLS port";
  server->reset();
  close(stuck);
  std::filesystem::remove_all(d);
}

TEST(MetricsServerTest, PlainHttpOnlyOnLoopbackUnlessInsecure) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto open = StartMetricsServer({.listen = "0.0.0.0:0"}, registry);
  EXPECT_EQ(open.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(open.status().message()), ::testing::HasSubstr("--metrics-insecure"));
  auto allowed = StartMetricsServer({.listen = "0.0.0.0:0", .insecure = true}, registry);
  EXPECT_TRUE(allowed.ok()) << allowed.status();
  for (const char* bad : {"nohost", "127.0.0.1:99999", "example.org:9464", "127.0.0.1:x"}) {
    auto s = StartMetricsServer({.listen = bad}, registry);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(s.status().message()), ::testing::StartsWith("metrics-listen:")) << bad;
  }
  auto local = StartMetricsServer({.listen = "localhost:0"}, registry);
  EXPECT_TRUE(local.ok()) << local.status();
}

}  // namespace
}  // namespace nasforge
