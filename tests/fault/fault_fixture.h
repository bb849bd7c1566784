// The fault tests' fixture: a controller process on a fixed loopback port over the backend the
// test is instantiated with ("sqlite" or "postgresql", the cluster of tests/pg_harness.sh), fake
// workers over real gRPC, an InvariantChecker, and the means to break the store (stop
// PostgreSQL, fill a tmpfs) and mend it.
#pragma once

#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "controller/auth.h"
#include "controller/store.h"
#include "gtest/gtest.h"
#include "health.grpc.pb.h"
#include "nasforge/v1/nasforge.grpc.pb.h"
#include "tests/fault/fake_workers.h"
#include "tests/fault/invariant_checker.h"
#include "tests/process_util.h"

namespace nasforge::testing {

inline constexpr char kJob[] = R"(
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

inline int FreePort() {
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

// Waits up to `limit` for `p` to exit; its wait status, or -1 (and it is killed) if it did not.
inline int WaitExit(Process& p, std::chrono::milliseconds limit) {
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

// Runs a shell command; its exit code.
inline int Sh(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

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
      std::string cmd = absl::StrCat("psql -q -X \"", url_,
                                     "\" -c 'DROP TABLE IF EXISTS jobs, trials, workers, "
                                     "latencies, schema_migrations' >/dev/null 2>&1");
      ASSERT_EQ(std::system(cmd.c_str()), 0);
    } else {
      url_ = "sqlite://" + dir_ + "/store.db";
    }
    // The controller requires tokens: an admin one for the test's own job calls, a worker one
    // for every worker.
    TokenFile tokens;
    admin_token_ = tokens.Create("fault-admin", Role::kAdmin, absl::Now()).value();
    worker_token_ = tokens.Create("fault-worker", Role::kWorker, absl::Now()).value();
    ASSERT_TRUE(tokens.Save(dir_ + "/tokens").ok());
    port_ = FreePort();
    Connect(absl::StrCat("127.0.0.1:", port_));
  }
  void TearDown() override {
    StopWorkers();
    if (controller_.pid > 0) Stop(controller_, SIGKILL);
    // Whatever a failed test left broken: mounts, stopped PostgreSQL, firewall rules.
    umount2((dir_ + "/disk").c_str(), MNT_DETACH);
    for (const auto& c : cleanups_) (void)std::system(c.c_str());
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // Points the test's own clients (job calls as admin, worker calls as a worker) at `target`.
  void Connect(const std::string& target) {
    target_ = target;
    channel_ = Channel(target_, admin_token_);
    worker_channel_ = Channel(target_, worker_token_);
    jobs_ = v1::JobService::NewStub(channel_);
  }

  // Starts the controller on the fixed port (retrying while the old socket lingers).
  void StartController(std::vector<std::string> extra = {}) {
    extra.push_back("--auth-tokens=" + dir_ + "/tokens");
    for (int i = 0; i < 50; ++i) {
      int port = 0;
      controller_ =
          nasforge::testing::StartController(target_, url_, &port, extra, dir_ + "/controller.log");
      if (port == port_) return;
      WaitExit(controller_, std::chrono::seconds(10));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "controller did not start; see " << dir_ << "/controller.log";
  }

  void StartWorkers(int n) {
    stop_ = false;
    for (int i = 0; i < n; ++i) {
      workers_.emplace_back(std::make_unique<FakeWorker>(absl::StrCat("fw-", i), target_,
                                                         worker_token_, &checker_, 1000 + i));
      threads_.emplace_back([this, w = workers_.back().get()] { w->Run(stop_, pace_ms_); });
    }
  }
  void StopWorkers() {
    stop_ = true;
    for (auto& t : threads_) t.join();
    threads_.clear();
    workers_.clear();
  }

  // `compress`: the job also asks for int8 and pruned variants of its front members (two
  // objectives, so the front has several), trained on an image data set (the fake workers do not
  // train; variants need a data set whose workers keep weights).
  v1::Job Submit(int max_trials, const std::string& key, bool compress = false) {
    std::string yaml = kJob;
    yaml.replace(yaml.find("MAX_TRIALS"), 10, std::to_string(max_trials));
    if (compress) {
      yaml.replace(yaml.find("dataset: tabular"), 16, "dataset: fashion-mnist");
      yaml.replace(yaml.find("in_channels: 3"), 14, "in_channels: 1");  // grey images
      yaml += R"(accuracy_scale: PERCENT
compression: {recipes: [{int8: {}}, {prune: {ratio: 0.5}}]}
)";
      yaml.replace(yaml.find("objectives:"), 11,
                   "objectives:\n  - {metric: macs, direction: MINIMIZE}");
    }
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

  // GetJob, retried while the controller restarts (a call on a connection that just closed fails
  // with UNAVAILABLE even with wait_for_ready).
  absl::StatusOr<v1::Job> GetJob(const std::string& id) {
    grpc::Status s;
    for (int i = 0; i < 100; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(In(5000));
      ctx.set_wait_for_ready(true);
      v1::GetJobRequest r;
      r.set_job_id(id);
      v1::Job j;
      s = jobs_->GetJob(&ctx, r, &j);
      if (s.ok()) return j;
      if (s.error_code() != grpc::StatusCode::UNAVAILABLE) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return absl::UnavailableError(s.error_message());
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
    ASSERT_EQ(Stop(controller_, SIGTERM), 0);
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
    // Variants: one per parent and recipe, whatever crashed when; each of a succeeded search
    // trial.
    for (const auto& [id, ts] : trials) {
      std::set<std::pair<int64_t, std::string>> made;
      for (const v1::Trial& t : ts) {
        if (!t.has_variant()) continue;
        const int64_t of = t.variant().of();
        if (!made.insert({of, t.variant().recipe().name()}).second) {
          bad.push_back(absl::StrCat("variant made twice: ", id, "/", of, " ",
                                     t.variant().recipe().name(), " (trial ", t.id(), ")"));
        }
        if (of >= static_cast<int64_t>(ts.size()) || ts[of].has_variant() ||
            ts[of].state() != v1::TRIAL_SUCCEEDED) {
          bad.push_back(absl::StrCat("variant ", id, "/", t.id(), " of ", of,
                                     ", which is not a succeeded search trial"));
        }
      }
      if (!made.empty()) std::printf("variants: %zu in %s\n", made.size(), id.c_str());
    }
    for (const auto& b : bad) ADD_FAILURE() << b;
    size_t n = 0;
    for (const auto& [id, ts] : trials) n += ts.size();
    std::printf("invariants: %zu grants, %zu acknowledged results, %zu trials, %zu violations\n",
                checker_.grants(), checker_.acks(), n, bad.size());
  }

  // SQLite only: puts the store on a 64 MiB tmpfs of its own, so that the test can fill the disk.
  // False (and the test is skipped) where tmpfs cannot be mounted.
  bool UseTmpfsStore() {
    std::string disk = dir_ + "/disk";
    std::filesystem::create_directories(disk);
    if (mount("tmpfs", disk.c_str(), "tmpfs", 0, "size=64m") != 0) return false;
    url_ = "sqlite://" + disk + "/store.db";
    return true;
  }
  // PostgreSQL: stopped (its sessions terminated). SQLite: the disk filled up.
  void BreakStore() {
    if (GetParam() == "postgresql") {
      const char* ctl = std::getenv("NASFORGE_TEST_PG_CTL");
      ASSERT_NE(ctl, nullptr);
      cleanups_.push_back(absl::StrCat(ctl, " start 2>/dev/null"));
      ASSERT_EQ(Sh(absl::StrCat(ctl, " stop")), 0);
    } else {
      Sh(absl::StrCat("dd if=/dev/zero of=", dir_, "/disk/filler bs=16k 2>/dev/null"));
    }
  }
  void MendStore() {
    if (GetParam() == "postgresql") {
      ASSERT_EQ(Sh(absl::StrCat(std::getenv("NASFORGE_TEST_PG_CTL"), " start")), 0);
    } else {
      std::filesystem::remove(dir_ + "/disk/filler");
    }
  }
  // Waits (bounded, 60 s) until the workers have `n` acknowledged results.
  void WaitForAcks(size_t n) {
    for (int i = 0; i < 3000 && checker_.acks() < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_GE(checker_.acks(), n) << "the workers made no progress";
  }
  // The controller, a large job (idempotency key `key`) and 4 workers, running until `acks`
  // results are acknowledged; the job's id.
  std::string RunJob(const std::string& key, size_t acks) {
    StartController();
    std::string id = Submit(100000, key).id();
    StartWorkers(4);
    WaitForAcks(acks);
    return id;
  }
  // Drops (or lets through again) every packet to and from PostgreSQL's loopback port: no RST,
  // no FIN, as a dead network path looks.
  void BlackHolePostgres(bool on) {
    const char* port = std::getenv("NASFORGE_TEST_PG_PORT");
    ASSERT_NE(port, nullptr);
    for (const char* dir : {"--dport", "--sport"}) {
      std::string rule = absl::StrCat("INPUT -i lo -p tcp ", dir, " ", port, " -j DROP");
      if (on) {
        cleanups_.push_back("iptables -D " + rule + " 2>/dev/null");
        ASSERT_EQ(Sh("iptables -A " + rule), 0);
      } else {
        Sh("iptables -D " + rule);
      }
    }
  }
  void Cancel(const std::string& job_id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(20000));
    v1::CancelJobRequest cr;
    cr.set_job_id(job_id);
    v1::Job cancelled;
    grpc::Status s = jobs_->CancelJob(&ctx, cr, &cancelled);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  std::string dir_, url_, target_;
  std::vector<std::string> cleanups_;  // shell commands TearDown runs
  int port_ = 0;
  Process controller_;
  std::shared_ptr<grpc::Channel> channel_, worker_channel_;
  std::string admin_token_, worker_token_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  InvariantChecker checker_;
  std::atomic<bool> stop_{false};
  std::atomic<int> pace_ms_{10};
  std::vector<std::unique_ptr<FakeWorker>> workers_;
  std::vector<std::thread> threads_;
};

}  // namespace nasforge::testing
