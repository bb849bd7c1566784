// Fault tests with real processes (CTest label `fault`): the controller binary on SQLite and on
// PostgreSQL (the cluster of tests/pg_harness.sh), driven by in-process tabular workers over
// real gRPC, while the test breaks things for real: kill -9 at random moments, a second
// controller on the same store, PostgreSQL stopped and restarted, a full disk, SIGTERM in each
// state. An InvariantChecker records every grant and acknowledged result and checks the
// exactly-once invariants against the final state, read both through the API and from the store.
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "controller/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "health.grpc.pb.h"
#include "nasforge/v1/nasforge.grpc.pb.h"
#include "tests/fault/invariant_checker.h"
#include "tests/process_util.h"

namespace nasforge {
namespace {

using ::nasforge::testing::InvariantChecker;
using ::nasforge::testing::Process;
using ::testing::HasSubstr;

constexpr char kJob[] = R"(
name: fault-tabular
search_space:
  nb201:
    ops: [none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3]
    channels: 16
    cells_per_stage: 5
    resolution: 32
    in_channels: 3
    num_classes: 10
strategy:
  name: random
budget:
  max_trials: MAX_TRIALS
  max_parallel_trials: 8
  max_attempts: 100
  epochs: 2
  seed: 7
objectives:
  - metric: accuracy
    direction: MAXIMIZE
training:
  dataset: tabular
lease_seconds: 5
)";

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

std::chrono::system_clock::time_point In(int ms) {
  return std::chrono::system_clock::now() + std::chrono::milliseconds(ms);
}

// Waits up to `limit` for `p` to exit; its wait status, or -1 (and it is killed) if it did not.
int WaitExit(Process& p, std::chrono::milliseconds limit) {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  int status = 0;
  std::thread t([&] {
    waitpid(p.pid, &status, 0);
    std::lock_guard<std::mutex> g(mu);
    done = true;
    cv.notify_all();
  });
  bool exited;
  {
    std::unique_lock<std::mutex> g(mu);
    exited = cv.wait_for(g, limit, [&] { return done; });
  }
  if (!exited) kill(p.pid, SIGKILL);
  t.join();
  p.pid = -1;
  return exited ? status : -1;
}

// A worker that answers from a synthetic table: accuracy is a function of the trial id. It
// retries a report while the controller is away, as the real worker does, and sometimes drops a
// lease without a word (a crashed worker) or reports a failure.
class FakeWorker {
 public:
  FakeWorker(std::string id, std::string target, InvariantChecker* checker, uint32_t seed)
      : id_(std::move(id)), target_(std::move(target)), checker_(checker), rng_(seed) {}

  void Run(const std::atomic<bool>& stop, const std::atomic<int>& pace_ms) {
    auto channel = grpc::CreateChannel(target_, grpc::InsecureChannelCredentials());
    auto stub = v1::WorkerService::NewStub(channel);
    while (!stop && !Register(*stub)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    while (!stop) {
      grpc::ClientContext ctx;
      ctx.set_deadline(In(2000));
      v1::LeaseTrialRequest req;
      req.set_worker_id(id_);
      v1::LeaseTrialResponse resp;
      grpc::Status s = stub->LeaseTrial(&ctx, req, &resp);
      if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
        Register(*stub);  // the store lost our registration? register again
        continue;
      }
      if (!s.ok() || !resp.has_trial()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(s.ok() ? 20 : 30));
        continue;
      }
      checker_->Granted(resp.lease(), id_);
      int roll = std::uniform_int_distribution<int>(0, 99)(rng_);
      if (pace_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(pace_ms));
      if (roll < 3) continue;  // crashed: never reports; the lease expires
      v1::ReportResultRequest r;
      r.set_worker_id(id_);
      *r.mutable_lease() = resp.lease();
      double acc = 50.0 + (resp.lease().trial_id() * 7919 % 5000) / 100.0;
      if (roll < 8) {
        r.set_failed(true);
        r.set_error("synthetic failure");
      } else {
        (*r.mutable_metrics())["accuracy"] = acc;
        r.set_hardware_profile("fake");
      }
      // Retry while the controller is away or the store is down; give up on a refusal.
      for (int attempt = 0; attempt < 300 && !stop; ++attempt) {
        grpc::ClientContext c;
        c.set_deadline(In(2000));
        v1::ReportResultResponse rr;
        grpc::Status st = stub->ReportResult(&c, r, &rr);
        if (st.ok()) {
          checker_->Acknowledged(resp.lease(), r.failed(), acc);
          break;
        }
        if (st.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
            st.error_code() == grpc::StatusCode::NOT_FOUND) {
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
      }
    }
  }

 private:
  bool Register(v1::WorkerService::Stub& stub) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(2000));
    v1::RegisterWorkerRequest r;
    r.set_worker_id(id_);
    r.mutable_hardware()->set_name("fake");
    v1::RegisterWorkerResponse resp;
    return stub.RegisterWorker(&ctx, r, &resp).ok();
  }

  const std::string id_;
  const std::string target_;
  InvariantChecker* const checker_;
  std::mt19937 rng_;
};

class FaultTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name) {
      if (c == '/') c = '-';
    }
    dir_ = absl::StrCat(std::filesystem::temp_directory_path().string(), "/nasforge-fault-",
                        getpid(), "-", name);
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    if (GetParam() == "postgresql") {
      const char* url = std::getenv("NASFORGE_TEST_PG_URL");
      ASSERT_NE(url, nullptr) << "run under tests/pg_harness.sh (ctest does)";
      url_ = url;
      std::string cmd = absl::StrCat(
          "psql -q -X \"", url_,
          "\" -c 'DROP TABLE IF EXISTS jobs, trials, workers, schema_migrations' >/dev/null 2>&1");
      ASSERT_EQ(std::system(cmd.c_str()), 0);
    } else {
      url_ = "sqlite://" + dir_ + "/store.db";
    }
    port_ = FreePort();
    target_ = absl::StrCat("127.0.0.1:", port_);
    channel_ = grpc::CreateChannel(target_, grpc::InsecureChannelCredentials());
    jobs_ = v1::JobService::NewStub(channel_);
  }
  void TearDown() override {
    StopWorkers();
    if (controller_.pid > 0) testing::Stop(controller_, SIGKILL);
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // Starts the controller on the fixed port (retrying while the old socket lingers).
  void StartController(const std::vector<std::string>& extra = {}) {
    for (int i = 0; i < 50; ++i) {
      int port = 0;
      controller_ = testing::StartController(target_, url_, &port, extra, dir_ + "/controller.log");
      if (port == port_) return;
      WaitExit(controller_, std::chrono::seconds(10));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "controller did not start; see " << dir_ << "/controller.log";
  }

  void StartWorkers(int n) {
    stop_ = false;
    for (int i = 0; i < n; ++i) {
      workers_.emplace_back(
          std::make_unique<FakeWorker>(absl::StrCat("fw-", i), target_, &checker_, 1000 + i));
      threads_.emplace_back([this, w = workers_.back().get()] { w->Run(stop_, pace_ms_); });
    }
  }
  void StopWorkers() {
    stop_ = true;
    for (auto& t : threads_) t.join();
    threads_.clear();
    workers_.clear();
  }

  v1::Job Submit(int max_trials, const std::string& key) {
    std::string yaml = kJob;
    yaml.replace(yaml.find("MAX_TRIALS"), 10, std::to_string(max_trials));
    v1::SubmitJobRequest req;
    req.set_spec_yaml(yaml);
    req.set_idempotency_key(key);
    v1::Job job;
    for (int i = 0; i < 200; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(In(3000));
      ctx.set_wait_for_ready(true);
      if (jobs_->SubmitJob(&ctx, req, &job).ok()) return job;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "submit never succeeded";
    return job;
  }

  absl::StatusOr<v1::Job> GetJob(const std::string& id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(3000));
    ctx.set_wait_for_ready(true);
    v1::GetJobRequest r;
    r.set_job_id(id);
    v1::Job j;
    grpc::Status s = jobs_->GetJob(&ctx, r, &j);
    if (!s.ok()) return absl::UnavailableError(s.error_message());
    return j;
  }

  // Waits (bounded) until `id` reaches a terminal state.
  v1::Job WaitForEnd(const std::string& id, int seconds) {
    v1::Job last;
    grpc::ClientContext ctx;
    ctx.set_deadline(In(seconds * 1000));
    ctx.set_wait_for_ready(true);
    v1::WatchJobRequest w;
    w.set_job_id(id);
    auto reader = jobs_->WatchJob(&ctx, w);
    v1::JobEvent e;
    while (reader->Read(&e)) last = e.job();
    reader->Finish();
    return last;
  }

  std::vector<v1::Trial> ApiTrials(const std::string& job_id) {
    std::vector<v1::Trial> out;
    std::string token;
    do {
      grpc::ClientContext ctx;
      ctx.set_deadline(In(10000));
      v1::ListCandidatesRequest r;
      r.set_job_id(job_id);
      r.set_page_token(token);
      r.set_page_size(1000);
      v1::ListCandidatesResponse page;
      grpc::Status s = jobs_->ListCandidates(&ctx, r, &page);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (!s.ok()) break;
      for (auto& t : *page.mutable_trials()) out.push_back(std::move(t));
      token = page.next_page_token();
    } while (!token.empty());
    return out;
  }

  grpc::health::v1::HealthCheckResponse::ServingStatus Health() {
    auto stub = grpc::health::v1::Health::NewStub(channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(In(2000));
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    if (!stub->Check(&ctx, req, &resp).ok()) return grpc::health::v1::HealthCheckResponse::UNKNOWN;
    return resp.status();
  }
  // Polls health (bounded) until it is `want`.
  bool WaitHealth(grpc::health::v1::HealthCheckResponse::ServingStatus want, int seconds) {
    for (int i = 0; i < seconds * 10; ++i) {
      if (Health() == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  // Compares the API's view of `jobs` with the store's rows, and runs the invariant checker.
  void CheckInvariants(const std::vector<std::string>& job_ids) {
    std::vector<v1::Job> jobs;
    std::map<std::string, std::vector<v1::Trial>> trials;
    for (const auto& id : job_ids) {
      auto j = GetJob(id);
      ASSERT_TRUE(j.ok()) << j.status();
      jobs.push_back(*j);
      trials[id] = ApiTrials(id);
    }
    // The store, read directly after a clean stop, says the same.
    ASSERT_EQ(testing::Stop(controller_, SIGTERM), 0);
    auto store = OpenStore(url_);
    ASSERT_TRUE(store.ok()) << store.status();
    for (const auto& id : job_ids) {
      auto stored = (*store)->LoadTrials(id);
      ASSERT_TRUE(stored.ok()) << stored.status();
      ASSERT_EQ(stored->size(), trials[id].size()) << id;
      for (size_t i = 0; i < stored->size(); ++i) {
        const v1::Trial &s = (*stored)[i], &a = trials[id][i];
        EXPECT_EQ(s.state(), a.state()) << id << "/" << i;
        EXPECT_EQ(s.lease_epoch(), a.lease_epoch()) << id << "/" << i;
        EXPECT_EQ(s.version(), a.version()) << id << "/" << i;
      }
    }
    std::vector<std::string> bad = checker_.Check(jobs, trials);
    for (const auto& b : bad) ADD_FAILURE() << b;
    size_t n = 0;
    for (const auto& [id, ts] : trials) n += ts.size();
    std::printf("invariants: %zu grants, %zu acknowledged results, %zu trials, %zu violations\n",
                checker_.grants(), checker_.acks(), n, bad.size());
  }

  std::string dir_, url_, target_;
  int port_ = 0;
  Process controller_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  InvariantChecker checker_;
  std::atomic<bool> stop_{false};
  std::atomic<int> pace_ms_{10};
  std::vector<std::unique_ptr<FakeWorker>> workers_;
  std::vector<std::thread> threads_;
};

// kill -9 at random moments under a job with many workers; every invariant holds after.
TEST_P(FaultTest, RepeatedKillNineKeepsEveryInvariant) {
  const char* env = std::getenv("NASFORGE_FAULT_KILLS");
  const int kills = env ? std::atoi(env) : 22;
  StartController();
  std::vector<std::string> job_ids = {Submit(100000, "chaos-1").id()};
  StartWorkers(8);
  std::mt19937 rng(42);
  for (int k = 0; k < kills; ++k) {
    // Random uptime: kills land in every phase (lease, report, commit, recovery).
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(50, 700)(rng)));
    testing::Stop(controller_, SIGKILL);
    StartController();
    ASSERT_GT(controller_.pid, 0);
  }
  // Let it finish: cap the job at what exists plus a little, at full speed.
  pace_ms_ = 0;
  auto j = GetJob(job_ids[0]);
  ASSERT_TRUE(j.ok());
  v1::Job end;
  {
    // A second, small job finishes on its own and shows the service still completes work.
    job_ids.push_back(Submit(60, "chaos-2").id());
    end = WaitForEnd(job_ids[1], 120);
    EXPECT_EQ(end.state(), v1::JOB_SUCCEEDED) << end.ShortDebugString();
  }
  grpc::ClientContext ctx;
  v1::CancelJobRequest cr;
  cr.set_job_id(job_ids[0]);
  v1::Job cancelled;
  ASSERT_TRUE(jobs_->CancelJob(&ctx, cr, &cancelled).ok());
  StopWorkers();
  std::printf("kills: %d\n", kills);
  CheckInvariants(job_ids);
}

// A second controller on the same store is refused with a clear error; the first keeps serving.
TEST_P(FaultTest, ASecondControllerIsRefused) {
  StartController();
  int port = 0;
  std::string lines;
  Process second = testing::StartController("127.0.0.1:0", url_, &port, {}, "", &lines);
  EXPECT_EQ(port, 0);
  int status = WaitExit(second, std::chrono::seconds(20));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << status;
  EXPECT_THAT(lines, HasSubstr("owned by another controller"));
  EXPECT_EQ(Health(), grpc::health::v1::HealthCheckResponse::SERVING);
}

// A standby waits while the owner lives and takes over within seconds when it is killed.
TEST_P(FaultTest, AStandbyTakesOverWhenTheOwnerIsKilled) {
  StartController();
  v1::Job job = Submit(20, "standby");
  int standby_port = FreePort();
  std::string standby_target = absl::StrCat("127.0.0.1:", standby_port);
  int port = 0;
  absl::Notification started;
  Process standby;
  std::thread t([&] {
    standby =
        testing::StartController(standby_target, url_, &port, {"--standby"}, dir_ + "/standby.log");
    started.Notify();
  });
  EXPECT_FALSE(started.WaitForNotificationWithTimeout(absl::Seconds(2)))
      << "the standby must not serve while the owner lives";
  testing::Stop(controller_, SIGKILL);
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(20)));
  t.join();
  EXPECT_EQ(port, standby_port);
  auto stub = v1::JobService::NewStub(
      grpc::CreateChannel(standby_target, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  v1::GetJobRequest r;
  r.set_job_id(job.id());
  v1::Job got;
  EXPECT_TRUE(stub->GetJob(&ctx, r, &got).ok());
  EXPECT_EQ(got.id(), job.id());
  testing::Stop(standby, SIGTERM);
}

// SIGTERM ends the controller within 10 s with open and cancelled watch streams and pending
// writes.
TEST_P(FaultTest, SigtermEndsWithinTenSecondsWithWatchersAndWork) {
  StartController();
  v1::Job job = Submit(100000, "term");
  StartWorkers(4);
  // One open watch stream, and one the client cancelled (as Ctrl-C on `nasforge watch` does).
  grpc::ClientContext open_ctx, cancelled_ctx;
  v1::WatchJobRequest w;
  w.set_job_id(job.id());
  auto open = jobs_->WatchJob(&open_ctx, w);
  auto cancelled = jobs_->WatchJob(&cancelled_ctx, w);
  v1::JobEvent e;
  ASSERT_TRUE(open->Read(&e));
  ASSERT_TRUE(cancelled->Read(&e));
  cancelled_ctx.TryCancel();
  for (int i = 0; i < 1500 && checker_.acks() < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE(checker_.acks(), 20u) << "the workers made no progress";
  kill(controller_.pid, SIGTERM);
  int status = WaitExit(controller_, std::chrono::seconds(10));
  ASSERT_NE(status, -1) << "controller did not stop within 10 s";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  StopWorkers();
  // The streams ended with the server: drain what was sent before it went, then finish.
  while (open->Read(&e)) {
  }
  while (cancelled->Read(&e)) {
  }
  EXPECT_FALSE(open->Finish().ok());
  cancelled->Finish();
}

INSTANTIATE_TEST_SUITE_P(Backends, FaultTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace nasforge
