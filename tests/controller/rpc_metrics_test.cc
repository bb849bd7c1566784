// The controller's /metrics as a scrape sees it, from a controller started in process: every
// call timed by method and status code (methods it does not serve counted as "other", so a
// client cannot grow the label set), the scrape-time job gauges, and the build info.
#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "controller/server.h"
#include "nasforge/v1/nasforge.grpc.pb.h"
#include "tests/test_util.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class RpcMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(std::filesystem::temp_directory_path().string(), "/rpcm-", getpid());
    std::filesystem::create_directories(dir_);
    ControllerOptions o;
    o.listen = "127.0.0.1:0";
    o.metrics_listen = "127.0.0.1:0";
    o.store_url = "sqlite://" + dir_ + "/c.db";
    auto c = Controller::Start(o);
    ASSERT_TRUE(c.ok()) << c.status();
    controller_ = std::move(*c);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", controller_->port()),
                                   grpc::InsecureChannelCredentials());
  }
  void TearDown() override {
    controller_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string Scrape() {
    return testing::CommandOutput(absl::StrCat(
        "curl -s --max-time 10 http://127.0.0.1:", controller_->metrics_port(), "/metrics"));
  }

  std::string dir_;
  std::unique_ptr<Controller> controller_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(RpcMetricsTest, CallsAreTimedByMethodAndCode) {
  auto stub = v1::JobService::NewStub(channel_);
  v1::SubmitJobRequest ok;
  ok.set_spec_yaml(testing::ReadExampleJob());
  v1::Job job;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->SubmitJob(&ctx, ok, &job).ok());
  }
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext ctx;
    v1::SubmitJobRequest bad;
    bad.set_spec_yaml("budget: {max_trials: -1}");
    EXPECT_EQ(stub->SubmitJob(&ctx, bad, &job).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  // Methods nobody serves, under many names: one "other" series, never one per name.
  grpc::GenericStub generic(channel_);
  for (int i = 0; i < 5; ++i) {
    grpc::ClientContext ctx;
    grpc::Slice body(std::string("x"));
    grpc::ByteBuffer req(&body, 1), resp;
    absl::Notification done;
    grpc::Status st;
    generic.UnaryCall(&ctx, absl::StrCat("/probe.Service/Method", i), grpc::StubOptions(), &req,
                      &resp, [&](grpc::Status s) {
                        st = s;
                        done.Notify();
                      });
    done.WaitForNotification();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  }
  std::string text = Scrape();
  EXPECT_THAT(text, HasSubstr("nasforge_controller_rpc_duration_seconds_count{code=\"OK\","
                              "method=\"SubmitJob\",service=\"nasforge.v1.JobService\"} 1"));
  EXPECT_THAT(text,
              HasSubstr("nasforge_controller_rpc_duration_seconds_count{code=\"INVALID_ARGUMENT\","
                        "method=\"SubmitJob\",service=\"nasforge.v1.JobService\"} 2"));
  EXPECT_THAT(text, Not(HasSubstr("probe.Service")));
  EXPECT_THAT(text, HasSubstr("nasforge_controller_rpc_duration_seconds_count{code="
                              "\"UNIMPLEMENTED\",method=\"other\",service=\"other\"} 5"));
  // The job's gauges and the build, in the same scrape.
  EXPECT_THAT(text, HasSubstr(absl::StrCat("nasforge_controller_job_budget_trials{job_id=\"",
                                           job.id(), "\"}")));
  EXPECT_THAT(text, HasSubstr("nasforge_build_info{"));
  EXPECT_THAT(text, HasSubstr("component=\"controller\""));
  EXPECT_THAT(text, HasSubstr("nasforge_controller_serving 1"));
  EXPECT_THAT(text, HasSubstr("nasforge_controller_early_stops_total{rule=\"median\"} 0"));
}

}  // namespace
}  // namespace nasforge
