// Fault tests with real processes (CTest label `fault`): the controller binary on SQLite and on
// PostgreSQL, driven by in-process tabular workers over real gRPC, while the test breaks things
// for real: kill -9 at random moments, a second controller on the same store, PostgreSQL stopped
// and black-holed, a full disk, SIGTERM in each state, a worker cut off in its own network
// namespace. An InvariantChecker records every grant and acknowledged result and checks the
// exactly-once invariants against the final state, read both through the API and from the store.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "gmock/gmock.h"
#include "tests/fault/fault_fixture.h"

namespace nasforge {
namespace {

using ::nasforge::testing::Channel;
using ::nasforge::testing::FaultTest;
using ::nasforge::testing::FreePort;
using ::nasforge::testing::HeldLease;
using ::nasforge::testing::In;
using ::nasforge::testing::kJob;
using ::nasforge::testing::Process;
using ::nasforge::testing::Sh;
using ::nasforge::testing::WaitExit;
using ::testing::HasSubstr;

// kill -9 at random moments under a job with many workers; every invariant holds after. The job
// makes compressed variants of its front members too: killed mid-variant like mid-trial.
TEST_P(FaultTest, RepeatedKillNineKeepsEveryInvariant) {
  const char* env = std::getenv("NASFORGE_FAULT_KILLS");
  const int kills = env ? std::atoi(env) : 22;
  StartController();
  std::vector<std::string> job_ids = {Submit(100000, "chaos-1", /*compress=*/true).id()};
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
  ASSERT_TRUE(j.ok()) << j.status();
  v1::Job end;
  {
    // A second, small job finishes on its own and shows the service still completes work.
    job_ids.push_back(Submit(60, "chaos-2").id());
    end = WaitForEnd(job_ids[1], 120);
    EXPECT_EQ(end.state(), v1::JOB_SUCCEEDED) << end.ShortDebugString();
  }
  Cancel(job_ids[0]);
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
    standby = testing::StartController(standby_target, url_, &port,
                                       {"--standby", "--auth-tokens=" + dir_ + "/tokens"},
                                       dir_ + "/standby.log");
    started.Notify();
  });
  EXPECT_FALSE(started.WaitForNotificationWithTimeout(absl::Seconds(2)))
      << "the standby must not serve while the owner lives";
  testing::Stop(controller_, SIGKILL);
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(20)));
  t.join();
  EXPECT_EQ(port, standby_port);
  auto stub = v1::JobService::NewStub(Channel(standby_target, admin_token_));
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
  WaitForAcks(5);
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
  WaitForAcks(checker_.acks() + 20);  // writes pending all along
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

TEST_P(FaultTest, StoreOutageMidJobIsUnavailableNotLoss) {
  // PostgreSQL: stopped (sessions terminated) and started again. SQLite: the disk fills up.
  if (GetParam() == "sqlite" && !UseTmpfsStore()) GTEST_SKIP() << "cannot mount a tmpfs here";
  StartController();
  std::vector<std::string> job_ids = {Submit(100000, "outage-1").id()};
  HeldLease held(worker_channel_);
  checker_.Granted(held.lease.lease(), held.client.id());
  StartWorkers(4);
  WaitForAcks(30);
  BreakStore();
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
  // Leases are kept: heartbeats live in memory. Stay down past the 5 s lease.
  std::this_thread::sleep_for(std::chrono::seconds(6));
  MendStore();
  EXPECT_TRUE(WaitHealth(grpc::health::v1::HealthCheckResponse::SERVING, 60));
  EXPECT_EQ(held.heartbeats_failed, 0) << "heartbeats must keep working through the outage";
  grpc::Status reported = held.Report(42.0);
  EXPECT_TRUE(reported.ok()) << "the lease held through the outage still counts: "
                             << reported.error_message();
  if (reported.ok()) checker_.Acknowledged(held.lease.lease(), false, 42.0);
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
  Cancel(job_ids[0]);
  StopWorkers();
  CheckInvariants(job_ids);
}

// PostgreSQL black-holed (packets dropped, no RST): calls time out into UNAVAILABLE, health goes
// NOT_SERVING, and after the network heals the controller reconnects (ending its own stale
// session, which still holds the owner lock on the server) and serves again.
TEST_P(FaultTest, BlackHoledPostgresIsSurvived) {
  if (GetParam() != "postgresql") GTEST_SKIP() << "PostgreSQL only";
  if (Sh("iptables -L -n >/dev/null 2>&1") != 0) GTEST_SKIP() << "iptables unavailable";
  std::vector<std::string> job_ids = {RunJob("blackhole", 30)};
  BlackHolePostgres(true);
  bool went_down = WaitHealth(grpc::health::v1::HealthCheckResponse::NOT_SERVING, 60);
  BlackHolePostgres(false);
  EXPECT_TRUE(went_down) << "health must say NOT_SERVING while the store is unreachable";
  EXPECT_TRUE(WaitHealth(grpc::health::v1::HealthCheckResponse::SERVING, 60));
  WaitForAcks(checker_.acks() + 30);  // progress after the network healed
  Cancel(job_ids[0]);
  StopWorkers();
  CheckInvariants(job_ids);
}

// SIGTERM while PostgreSQL is black-holed (a write and a health ping hang in the kernel): the
// controller still ends within 10 s.
TEST_P(FaultTest, SigtermEndsWithinTenSecondsWhilePostgresIsBlackHoled) {
  if (GetParam() != "postgresql") GTEST_SKIP() << "PostgreSQL only";
  if (Sh("iptables -L -n >/dev/null 2>&1") != 0) GTEST_SKIP() << "iptables unavailable";
  RunJob("term-blackhole", 20);
  BlackHolePostgres(true);
  // NOT_SERVING: a write or a ping has hung and timed out at least once; more are hanging now.
  EXPECT_TRUE(WaitHealth(grpc::health::v1::HealthCheckResponse::NOT_SERVING, 60));
  kill(controller_.pid, SIGTERM);
  int status = WaitExit(controller_, std::chrono::seconds(10));
  EXPECT_NE(status, -1) << "controller did not stop within 10 s with its store black-holed";
  BlackHolePostgres(false);
  StopWorkers();
}

// SIGTERM while the store is down: the controller still ends within 10 s and says what it
// could not flush.
TEST_P(FaultTest, SigtermEndsWithinTenSecondsWhileTheStoreIsDown) {
  if (GetParam() == "sqlite" && !UseTmpfsStore()) GTEST_SKIP() << "cannot mount a tmpfs here";
  RunJob("term-down", 20);
  BreakStore();
  EXPECT_TRUE(WaitHealth(grpc::health::v1::HealthCheckResponse::NOT_SERVING, 30));
  kill(controller_.pid, SIGTERM);
  int status = WaitExit(controller_, std::chrono::seconds(10));
  EXPECT_NE(status, -1) << "controller did not stop within 10 s with its store down";
  StopWorkers();
  MendStore();
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
  Connect(absl::StrCat(host_ip, ":", port_));
  StartController({"--insecure"});  // plain text to the test's own namespace host
  v1::Job job = Submit(1, "partition");
  // The partitioned worker, in its namespace, leases the job's only trial.
  int to_child[2], from_child[2];
  ASSERT_EQ(pipe(to_child), 0);
  ASSERT_EQ(pipe(from_child), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(to_child[0], 0);
    dup2(from_child[1], 1);
    setenv("NASFORGE_TOKEN", worker_token_.c_str(), 1);
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
  HeldLease other(worker_channel_);  // retries until the expired trial is granted again
  other.StopHeartbeats();
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
