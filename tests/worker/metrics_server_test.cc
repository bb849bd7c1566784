// The worker's /metrics server: answers scrapes while another client holds a connection open
// without sending anything, and stops at once even then.
#include "worker/metrics_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <prometheus/counter.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nasforge {
namespace {

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

std::string Get(int port, const std::string& path) {
  int fd = Connect(port);
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
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
  auto server = StartMetricsServer("127.0.0.1:0", registry);
  ASSERT_TRUE(server.ok()) << server.status();
  int port = (*server)->port();
  int stuck = Connect(port);  // connects and never says a word
  std::string res = Get(port, "/metrics");
  EXPECT_THAT(res, ::testing::HasSubstr("200 OK"));
  EXPECT_THAT(res, ::testing::HasSubstr("nasforge_test_total 0"));
  EXPECT_THAT(Get(port, "/other"), ::testing::HasSubstr("404"));
  server->reset();  // returns although `stuck` is still connected
  close(stuck);
}

}  // namespace
}  // namespace nasforge
