// The controller over real gRPC on loopback (port 0), against each real store backend: job
// submission errors, the worker protocol with fencing, the watch stream, health, reflection-free
// clients, and /metrics over HTTP.
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "controller/server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "health.grpc.pb.h"
#include "nasforge/v1/nasforge.grpc.pb.h"
#include "tests/test_util.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;
using testing::ReadExampleJob;

std::string Http(int port, const std::string& path) {
  return testing::CommandOutput(absl::StrCat("curl -sf http://127.0.0.1:", port, path));
}

class RpcIntegrationTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ControllerOptions o;
    o.listen = "127.0.0.1:0";
    o.metrics_listen = "127.0.0.1:0";
    o.sweep_interval = absl::Milliseconds(50);
    if (GetParam() == "postgresql") {
      const char* url = std::getenv("NASFORGE_TEST_PG_URL");
      ASSERT_NE(url, nullptr) << "run under tests/pg_harness.sh (ctest does)";
      o.store_url = url;
      // Each test starts from an empty database (the figures below count every job's trials).
      const std::string drop = absl::StrCat("psql -q -X \"", url,
                                            "\" -c 'DROP TABLE IF EXISTS jobs, trials, workers, "
                                            "latencies, schema_migrations' >/dev/null 2>&1");
      ASSERT_EQ(std::system(drop.c_str()), 0) << drop;
    } else {
      std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
      std::replace(name.begin(), name.end(), '/', '_');  // parameterised names contain '/'
      db_ = absl::StrCat(std::filesystem::temp_directory_path().string(), "/rpc-", getpid(), "-",
                         name, ".db");
      std::filesystem::remove(db_);
      o.store_url = "sqlite://" + db_;
    }
    auto c = Controller::Start(o);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    controller_ = std::move(*c);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", controller_->port()),
                                   grpc::InsecureChannelCredentials());
    jobs_ = v1::JobService::NewStub(channel_);
    workers_ = v1::WorkerService::NewStub(channel_);
  }
  void TearDown() override {
    if (controller_) controller_->Shutdown();
    if (!db_.empty()) std::filesystem::remove(db_);
  }
  std::unique_ptr<grpc::ClientContext> Ctx() {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return c;
  }
  v1::Job Submit(const std::string& yaml) {
    v1::SubmitJobRequest r;
    r.set_spec_yaml(yaml);
    v1::Job job;
    auto c = Ctx();
    grpc::Status s = jobs_->SubmitJob(c.get(), r, &job);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return job;
  }

  std::string db_;
  std::unique_ptr<Controller> controller_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  std::unique_ptr<v1::WorkerService::Stub> workers_;
};

TEST_P(RpcIntegrationTest, MalformedSpecsGetInvalidArgumentNamingTheField) {
  struct Case {
    std::string from, to, field;
  } cases[] = {
      {"max_trials: 12", "max_trials: -3", "budget.max_trials"},
      {"epochs: 3", "epochs: lots", "epochs"},
      {"learning_rate: 0.004", "learning_rate: 0.004\n  colour: blue", "colour"},
      {"kernel: [3, 5, 7]", "kernel: [3, 6]", "search_space.mbconv.stages[1].kernel"},
      {"direction: MINIMIZE", "direction: SIDEWAYS", "direction"},
  };
  for (const auto& c : cases) {
    std::string yaml = ReadExampleJob();
    size_t pos = yaml.find(c.from);
    ASSERT_NE(pos, std::string::npos) << "the example job no longer contains " << c.from;
    yaml.replace(pos, c.from.size(), c.to);
    v1::SubmitJobRequest r;
    r.set_spec_yaml(yaml);
    v1::Job job;
    auto ctx = Ctx();
    grpc::Status s = jobs_->SubmitJob(ctx.get(), r, &job);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.to;
    EXPECT_THAT(s.error_message(), HasSubstr(c.field)) << c.to;
  }
  v1::GetJobRequest g;
  g.set_job_id("job-nope");
  v1::Job j;
  auto ctx = Ctx();
  EXPECT_EQ(jobs_->GetJob(ctx.get(), g, &j).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_P(RpcIntegrationTest, WorkerProtocolWithFencingAndWatch) {
  std::string yaml = ReadExampleJob();
  ASSERT_NE(yaml.find("max_trials: 12"), std::string::npos);
  yaml.replace(yaml.find("max_trials: 12"), 14, "max_trials: 2");
  v1::Job job = Submit(yaml);

  // Watch from another thread; the stream ends by itself when the job finishes.
  std::vector<std::string> kinds;
  v1::JobState final_state = v1::JOB_STATE_UNSPECIFIED;
  std::thread watcher([&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::WatchJobRequest r;
    r.set_job_id(job.id());
    auto reader = jobs_->WatchJob(&ctx, r);
    v1::JobEvent e;
    while (reader->Read(&e)) {
      kinds.push_back(e.kind());
      final_state = e.job().state();
    }
    EXPECT_TRUE(reader->Finish().ok());
  });

  v1::RegisterWorkerRequest reg;
  reg.mutable_hardware()->set_name("cpu-1t");
  v1::RegisterWorkerResponse rr;
  auto c = Ctx();
  ASSERT_TRUE(workers_->RegisterWorker(c.get(), reg, &rr).ok());
  ASSERT_FALSE(rr.worker_id().empty());

  for (int i = 0; i < 2; ++i) {
    v1::LeaseTrialRequest lr;
    lr.set_worker_id(rr.worker_id());
    v1::LeaseTrialResponse lease;
    c = Ctx();
    ASSERT_TRUE(workers_->LeaseTrial(c.get(), lr, &lease).ok());
    ASSERT_TRUE(lease.has_trial());
    EXPECT_EQ(lease.epochs(), 3);
    EXPECT_EQ(lease.training().train_examples(), 15000);

    v1::HeartbeatRequest hb;
    hb.set_worker_id(rr.worker_id());
    *hb.mutable_lease() = lease.lease();
    v1::HeartbeatResponse hbr;
    c = Ctx();
    ASSERT_TRUE(workers_->Heartbeat(c.get(), hb, &hbr).ok());
    EXPECT_FALSE(hbr.cancel());

    // A forged older token is fenced off.
    v1::ReportResultRequest stale;
    stale.set_worker_id(rr.worker_id());
    *stale.mutable_lease() = lease.lease();
    stale.mutable_lease()->set_epoch(lease.lease().epoch() + 7);
    v1::ReportResultResponse res;
    c = Ctx();
    grpc::Status s = workers_->ReportResult(c.get(), stale, &res);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_THAT(s.error_message(), HasSubstr("stale lease"));

    v1::ReportProgressRequest pr;
    pr.set_worker_id(rr.worker_id());
    *pr.mutable_lease() = lease.lease();
    pr.mutable_point()->set_epoch(1);
    pr.mutable_point()->set_value(0.6);
    v1::ReportProgressResponse prr;
    c = Ctx();
    ASSERT_TRUE(workers_->ReportProgress(c.get(), pr, &prr).ok());
    EXPECT_EQ(prr.decision(), v1::CONTINUE);

    v1::ReportResultRequest ok;
    ok.set_worker_id(rr.worker_id());
    *ok.mutable_lease() = lease.lease();
    (*ok.mutable_metrics())["accuracy"] = 0.7 + 0.1 * i;
    (*ok.mutable_metrics())["latency_ms"] = 1.0 + i;
    ok.set_hardware_profile("cpu-1t");
    c = Ctx();
    ASSERT_TRUE(workers_->ReportResult(c.get(), ok, &res).ok());
  }
  watcher.join();
  EXPECT_EQ(final_state, v1::JOB_SUCCEEDED);
  ASSERT_FALSE(kinds.empty());
  EXPECT_EQ(kinds.front(), "snapshot");
  EXPECT_EQ(kinds.back(), "job_finished");

  v1::QueryParetoRequest q;
  q.set_job_id(job.id());
  q.add_constraints()->set_metric("latency_ms");
  q.mutable_constraints(0)->set_upper(1.5);
  v1::QueryParetoResponse front;
  c = Ctx();
  ASSERT_TRUE(jobs_->QueryPareto(c.get(), q, &front).ok());
  EXPECT_EQ(front.considered(), 1);
  ASSERT_EQ(front.trials_size(), 1);
  EXPECT_DOUBLE_EQ(front.trials(0).metrics().at("accuracy"), 0.7);

  // Metrics reflect it, over HTTP.
  std::string metrics = Http(controller_->metrics_port(), "/metrics");
  EXPECT_THAT(metrics, HasSubstr("nasforge_controller_trials{state=\"succeeded\"} 2"));
  EXPECT_THAT(metrics, HasSubstr("nasforge_controller_stale_reports_total 2"));
  EXPECT_THAT(metrics, HasSubstr("nasforge_controller_workers_registered 1"));
}

TEST_P(RpcIntegrationTest, BatchedLeasesAndReportsOverGrpc) {
  std::string yaml = ReadExampleJob();
  yaml.replace(yaml.find("max_trials: 12"), 14, "max_trials: 3");
  v1::Job job = Submit(yaml);
  v1::RegisterWorkerRequest reg;
  reg.mutable_hardware()->set_name("cpu-1t");
  v1::RegisterWorkerResponse who;
  auto c = Ctx();
  ASSERT_TRUE(workers_->RegisterWorker(c.get(), reg, &who).ok());
  v1::LeaseTrialRequest lr;
  lr.set_worker_id(who.worker_id());
  lr.set_max_trials(2);
  v1::LeaseTrialResponse got;
  c = Ctx();
  ASSERT_TRUE(workers_->LeaseTrial(c.get(), lr, &got).ok());
  ASSERT_TRUE(got.has_trial());
  ASSERT_EQ(got.more_size(), 1);
  v1::ReportResultsRequest rr;
  rr.set_worker_id(who.worker_id());
  for (const v1::LeaseTrialResponse* g :
       std::vector<const v1::LeaseTrialResponse*>{&got, &got.more(0)}) {
    v1::ReportResultRequest* r = rr.add_reports();
    *r->mutable_lease() = g->lease();
    (*r->mutable_metrics())["accuracy"] = 0.6;
  }
  rr.set_lease_next(2);
  v1::ReportResultsResponse ack;
  c = Ctx();
  ASSERT_TRUE(workers_->ReportResults(c.get(), rr, &ack).ok());
  ASSERT_EQ(ack.outcomes_size(), 2);
  EXPECT_EQ(ack.outcomes(0).code(), 0);
  EXPECT_EQ(ack.outcomes(1).code(), 0);
  ASSERT_TRUE(ack.next().has_trial()) << "the third trial came with the answer";
  EXPECT_EQ(ack.next().more_size(), 0) << "only one was left";
  v1::ReportResultRequest last;
  last.set_worker_id(who.worker_id());
  *last.mutable_lease() = ack.next().lease();
  (*last.mutable_metrics())["accuracy"] = 0.7;
  last.set_lease_next(1);
  v1::ReportResultResponse res;
  c = Ctx();
  ASSERT_TRUE(workers_->ReportResult(c.get(), last, &res).ok());
  EXPECT_FALSE(res.next().has_trial());
  v1::GetJobRequest g;
  g.set_job_id(job.id());
  v1::Job done;
  c = Ctx();
  ASSERT_TRUE(jobs_->GetJob(c.get(), g, &done).ok());
  EXPECT_EQ(done.counts().succeeded(), 3);
  // A malformed batch is refused whole, naming the field.
  v1::ReportResultsRequest bad;
  bad.set_worker_id(who.worker_id());
  c = Ctx();
  grpc::Status s = workers_->ReportResults(c.get(), bad, &ack);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("reports"));
}

TEST_P(RpcIntegrationTest, HealthServiceServes) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckRequest r;
  grpc::health::v1::HealthCheckResponse resp;
  auto c = Ctx();
  ASSERT_TRUE(health->Check(c.get(), r, &resp).ok());
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_P(RpcIntegrationTest, JobsSurviveAControllerRestart) {
  if (GetParam() == "postgresql") {
    // Other tests share the cluster: restart against the same URL and find our job by id.
  }
  v1::Job job = Submit(ReadExampleJob());
  ControllerOptions o;
  o.listen = "127.0.0.1:0";
  o.metrics_listen = "";
  o.store_url =
      GetParam() == "postgresql" ? std::getenv("NASFORGE_TEST_PG_URL") : "sqlite://" + db_;
  controller_->Shutdown();
  controller_.reset();
  auto c2 = Controller::Start(o);
  ASSERT_TRUE(c2.ok()) << c2.status();
  auto j = (*c2)->jobs()->GetJob(job.id());
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(j->state(), v1::JOB_RUNNING);
  EXPECT_EQ(j->spec().budget().max_trials(), 12);
  (*c2)->Shutdown();
}

INSTANTIATE_TEST_SUITE_P(Backends, RpcIntegrationTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace nasforge
