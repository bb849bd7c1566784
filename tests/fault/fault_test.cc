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
#include <cerrno>
#include <condition_variable>
#include <cstring>
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
    // Whatever a failed test left broken: mounts, stopped PostgreSQL, firewall rules.
    umount2((dir_ + "/disk").c_str(), MNT_DETACH);
    for (const auto& c : cleanups_) (void)std::system(c.c_str());
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
  std::vector<std::string> cleanups_;  // shell commands TearDown runs
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

// A lease held by the test itself, to show that a store outage does not take it away.
struct HeldLease {
  std::unique_ptr<v1::WorkerService::Stub> stub;
  v1::LeaseTrialResponse lease;
  std::string worker = "holder";

  // Registers and leases, retrying for up to `wait` (a trial may first have to expire).
  explicit HeldLease(std::shared_ptr<grpc::Channel> channel,
                     std::chrono::seconds wait = std::chrono::seconds(30))
      : stub(v1::WorkerService::NewStub(channel)) {
    auto give_up = std::chrono::steady_clock::now() + wait;
    while (!lease.has_trial() && std::chrono::steady_clock::now() < give_up) {
      grpc::ClientContext rc;
      rc.set_deadline(In(2000));
      v1::RegisterWorkerRequest reg;
      reg.set_worker_id(worker);
      reg.mutable_hardware()->set_name("fake");
      v1::RegisterWorkerResponse rr;
      if (!stub->RegisterWorker(&rc, reg, &rr).ok()) continue;
      grpc::ClientContext lc;
      lc.set_deadline(In(2000));
      v1::LeaseTrialRequest lr;
      lr.set_worker_id(worker);
      if (!stub->LeaseTrial(&lc, lr, &lease).ok() || !lease.has_trial()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    EXPECT_TRUE(lease.has_trial());
  }
  grpc::Status Heartbeat() {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(5000));
    v1::HeartbeatRequest hb;
    hb.set_worker_id(worker);
    *hb.mutable_lease() = lease.lease();
    v1::HeartbeatResponse resp;
    return stub->Heartbeat(&ctx, hb, &resp);
  }
  grpc::Status Report(double acc) {
    grpc::Status s;
    for (int i = 0; i < 100; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(In(5000));
      v1::ReportResultRequest r;
      r.set_worker_id(worker);
      *r.mutable_lease() = lease.lease();
      (*r.mutable_metrics())["accuracy"] = acc;
      v1::ReportResultResponse resp;
      s = stub->ReportResult(&ctx, r, &resp);
      if (s.error_code() != grpc::StatusCode::UNAVAILABLE) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return s;
  }
  grpc::StatusCode TryLease() {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(20000));
    v1::LeaseTrialRequest lr;
    lr.set_worker_id(worker);
    v1::LeaseTrialResponse resp;
    return stub->LeaseTrial(&ctx, lr, &resp).error_code();
  }
};

int Sh(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST_P(FaultTest, StoreOutageMidJobIsUnavailableNotLoss) {
  // PostgreSQL: stopped (sessions terminated) and started again. SQLite: the disk fills up.
  const bool pg = GetParam() == "postgresql";
  std::string disk = dir_ + "/disk";
  if (!pg) {
    std::filesystem::create_directories(disk);
    if (mount("tmpfs", disk.c_str(), "tmpfs", 0, "size=64m") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << std::strerror(errno);
    }
    url_ = "sqlite://" + disk + "/store.db";
  } else {
    ASSERT_NE(std::getenv("NASFORGE_TEST_PG_CTL"), nullptr);
    cleanups_.push_back(absl::StrCat(std::getenv("NASFORGE_TEST_PG_CTL"), " start 2>/dev/null"));
  }
  StartController();
  std::vector<std::string> job_ids = {Submit(100000, "outage-1").id()};
  HeldLease held(channel_);
  StartWorkers(4);
  for (int i = 0; i < 1500 && checker_.acks() < 30; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE(checker_.acks(), 30u);
  // Break it.
  if (pg) {
    ASSERT_EQ(Sh(absl::StrCat(std::getenv("NASFORGE_TEST_PG_CTL"), " stop")), 0);
  } else {
    Sh(absl::StrCat("dd if=/dev/zero of=", disk, "/filler bs=16k 2>/dev/null"));
  }
  EXPECT_TRUE(WaitHealth(grpc::health::v1::HealthCheckResponse::NOT_SERVING, 30))
      << "health must say NOT_SERVING while the store is down";
  // Changes are refused with UNAVAILABLE and leave no trace; a submit retried later with the
  // same key makes one job.
  EXPECT_EQ(held.TryLease(), grpc::StatusCode::UNAVAILABLE);
  {
    std::string yaml = kJob;
    yaml.replace(yaml.find("MAX_TRIALS"), 10, "20");
    v1::SubmitJobRequest req;
    req.set_spec_yaml(yaml);
    req.set_idempotency_key("during-outage");
    grpc::ClientContext ctx;
    ctx.set_deadline(In(20000));
    v1::Job j;
    EXPECT_EQ(jobs_->SubmitJob(&ctx, req, &j).error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  // Leases are kept: heartbeats live in memory.
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(held.Heartbeat().ok());
    std::this_thread::sleep_for(std::chrono::seconds(2));  // past the 5 s lease in total
  }
  // Mend it.
  if (pg) {
    ASSERT_EQ(Sh(absl::StrCat(std::getenv("NASFORGE_TEST_PG_CTL"), " start")), 0);
  } else {
    std::filesystem::remove(disk + "/filler");
  }
  EXPECT_TRUE(WaitHealth(grpc::health::v1::HealthCheckResponse::SERVING, 60));
  EXPECT_TRUE(held.Report(42.0).ok()) << "the lease held through the outage still counts";
  checker_.Granted(held.lease.lease(), held.worker);
  checker_.Acknowledged(held.lease.lease(), false, 42.0);
  job_ids.push_back(Submit(20, "during-outage").id());
  v1::Job end = WaitForEnd(job_ids[1], 120);
  EXPECT_EQ(end.state(), v1::JOB_SUCCEEDED);
  {
    grpc::ClientContext ctx;
    v1::ListJobsRequest lr;
    v1::ListJobsResponse jobs;
    ASSERT_TRUE(jobs_->ListJobs(&ctx, lr, &jobs).ok());
    EXPECT_EQ(jobs.jobs_size(), 2) << "a refused submit left no job behind";
  }
  grpc::ClientContext ctx;
  v1::CancelJobRequest cr;
  cr.set_job_id(job_ids[0]);
  v1::Job cancelled;
  ASSERT_TRUE(jobs_->CancelJob(&ctx, cr, &cancelled).ok());
  StopWorkers();
  CheckInvariants(job_ids);
  if (!pg) umount2(disk.c_str(), MNT_DETACH);
}

// PostgreSQL black-holed (packets dropped, no RST): calls time out into UNAVAILABLE, health goes
// NOT_SERVING, and after the network heals the controller reconnects (ending its own stale
// session, which still holds the owner lock on the server) and serves again.
TEST_P(FaultTest, BlackHoledPostgresIsSurvived) {
  if (GetParam() != "postgresql") GTEST_SKIP() << "PostgreSQL only";
  const char* port = std::getenv("NASFORGE_TEST_PG_PORT");
  ASSERT_NE(port, nullptr);
  if (Sh("iptables -L -n >/dev/null 2>&1") != 0) GTEST_SKIP() << "iptables unavailable";
  std::string rules = absl::StrCat("INPUT -i lo -p tcp --dport ", port, " -j DROP");
  std::string rules2 = absl::StrCat("INPUT -i lo -p tcp --sport ", port, " -j DROP");
  StartController();
  std::vector<std::string> job_ids = {Submit(100000, "blackhole").id()};
  StartWorkers(4);
  for (int i = 0; i < 1500 && checker_.acks() < 30; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  cleanups_.push_back("iptables -D " + rules + " 2>/dev/null");
  cleanups_.push_back("iptables -D " + rules2 + " 2>/dev/null");
  ASSERT_EQ(Sh("iptables -A " + rules), 0);
  ASSERT_EQ(Sh("iptables -A " + rules2), 0);
  bool went_down = WaitHealth(grpc::health::v1::HealthCheckResponse::NOT_SERVING, 60);
  Sh("iptables -D " + rules);
  Sh("iptables -D " + rules2);
  EXPECT_TRUE(went_down) << "health must say NOT_SERVING while the store is unreachable";
  EXPECT_TRUE(WaitHealth(grpc::health::v1::HealthCheckResponse::SERVING, 60));
  size_t before = checker_.acks();
  for (int i = 0; i < 1500 && checker_.acks() < before + 30; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GE(checker_.acks(), before + 30) << "no progress after the network healed";
  grpc::ClientContext ctx;
  v1::CancelJobRequest cr;
  cr.set_job_id(job_ids[0]);
  v1::Job cancelled;
  ASSERT_TRUE(jobs_->CancelJob(&ctx, cr, &cancelled).ok());
  StopWorkers();
  CheckInvariants(job_ids);
}

// SIGTERM while the store is down: the controller still ends within 10 s and says what it
// could not flush.
TEST_P(FaultTest, SigtermEndsWithinTenSecondsWhileTheStoreIsDown) {
  const bool pg = GetParam() == "postgresql";
  std::string disk = dir_ + "/disk";
  if (!pg) {
    std::filesystem::create_directories(disk);
    if (mount("tmpfs", disk.c_str(), "tmpfs", 0, "size=64m") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
    }
    url_ = "sqlite://" + disk + "/store.db";
  }
  StartController();
  Submit(100000, "term-down");
  StartWorkers(4);
  for (int i = 0; i < 1500 && checker_.acks() < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (pg) {
    ASSERT_EQ(Sh(absl::StrCat(std::getenv("NASFORGE_TEST_PG_CTL"), " stop")), 0);
  } else {
    Sh(absl::StrCat("dd if=/dev/zero of=", disk, "/filler bs=16k 2>/dev/null"));
  }
  EXPECT_TRUE(WaitHealth(grpc::health::v1::HealthCheckResponse::NOT_SERVING, 30));
  kill(controller_.pid, SIGTERM);
  int status = WaitExit(controller_, std::chrono::seconds(10));
  EXPECT_NE(status, -1) << "controller did not stop within 10 s with its store down";
  StopWorkers();
  if (pg) {
    EXPECT_EQ(Sh(absl::StrCat(std::getenv("NASFORGE_TEST_PG_CTL"), " start")), 0);
  } else {
    umount2(disk.c_str(), MNT_DETACH);
  }
}

// A worker cut off by a network partition: it runs in its own network namespace behind a veth
// pair (addresses of test hosts this test creates), its link is dropped mid-trial, its lease
// expires and the trial finishes elsewhere; when the link is back its late report is refused and
// counted nowhere.
TEST_P(FaultTest, APartitionedWorkersLateReportIsRefused) {
  if (GetParam() != "sqlite") GTEST_SKIP() << "the store plays no part; SQLite is enough";
  const std::string ns = absl::StrCat("nf", getpid() % 100000);
  const std::string host_if = ns + "h", ns_if = ns + "w";
  const int net = 100 + getpid() % 100;  // 10.231.<net>.0/30: this test's own two hosts
  const std::string host_ip = absl::StrCat("10.231.", net, ".1"),
                    worker_ip = absl::StrCat("10.231.", net, ".2");
  if (Sh("ip netns add " + ns) != 0) GTEST_SKIP() << "cannot create network namespaces here";
  cleanups_.push_back("ip link del " + host_if + " 2>/dev/null");
  cleanups_.push_back("ip netns del " + ns + " 2>/dev/null");
  auto cleanup = [&] {
    Sh("ip link del " + host_if + " 2>/dev/null");
    Sh("ip netns del " + ns + " 2>/dev/null");
  };
  ASSERT_EQ(
      Sh(absl::StrCat("ip link add ", host_if, " type veth peer name ", ns_if, " && ip link set ",
                      ns_if, " netns ", ns, " && ip addr add ", host_ip, "/30 dev ", host_if,
                      " && ip link set ", host_if, " up", " && ip netns exec ", ns, " ip addr add ",
                      worker_ip, "/30 dev ", ns_if, " && ip netns exec ", ns, " ip link set ",
                      ns_if, " up", " && ip netns exec ", ns, " ip link set lo up")),
      0);
  // The controller listens on the host end of the link; the test's own clients use it too.
  target_ = absl::StrCat(host_ip, ":", port_);
  channel_ = grpc::CreateChannel(target_, grpc::InsecureChannelCredentials());
  jobs_ = v1::JobService::NewStub(channel_);
  StartController();
  v1::Job job = Submit(1, "partition");
  // The partitioned worker, in its namespace, leases the job's only trial.
  int to_child[2], from_child[2];
  ASSERT_EQ(pipe(to_child), 0);
  ASSERT_EQ(pipe(from_child), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(to_child[0], 0);
    dup2(from_child[1], 1);
    execlp("ip", "ip", "netns", "exec", ns.c_str(), NASFORGE_FAULT_WORKER_BIN, target_.c_str(),
           "cut-off", nullptr);
    _exit(127);
  }
  close(to_child[0]);
  close(from_child[1]);
  FILE* out = fdopen(from_child[0], "r");
  char line[512] = {0};
  ASSERT_NE(fgets(line, sizeof line, out), nullptr);
  ASSERT_THAT(line, HasSubstr("leased " + job.id() + " 0 1"));
  // Cut the link mid-trial; the lease (5 s) expires and a worker on this side finishes it.
  ASSERT_EQ(Sh("ip link set " + host_if + " down"), 0);
  HeldLease other(channel_);  // retries until the expired trial is granted again
  EXPECT_EQ(other.lease.lease().trial_id(), 0);
  EXPECT_EQ(other.lease.lease().epoch(), 2u);
  EXPECT_TRUE(other.Report(55.5).ok());
  // Heal the link and let the cut-off worker report: refused, counted nowhere.
  ASSERT_EQ(Sh("ip link set " + host_if + " up"), 0);
  ASSERT_EQ(write(to_child[1], "report\n", 7), 7);
  ASSERT_NE(fgets(line, sizeof line, out), nullptr);
  EXPECT_THAT(line, HasSubstr(absl::StrCat("report ", grpc::StatusCode::FAILED_PRECONDITION)))
      << line;
  int status = 0;
  waitpid(pid, &status, 0);
  fclose(out);
  close(to_child[1]);
  auto j = GetJob(job.id());
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->counts().succeeded(), 1);
  auto trials = ApiTrials(job.id());
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_DOUBLE_EQ(trials[0].metrics().at("accuracy"), 55.5);
  EXPECT_EQ(trials[0].worker_id(), "holder");
  testing::Stop(controller_, SIGTERM);
  cleanup();
}

INSTANTIATE_TEST_SUITE_P(Backends, FaultTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace nasforge
