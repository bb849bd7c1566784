// End to end, with the real binaries: nasforge-controller (SQLite) + two nasforge-worker
// processes training on a Fashion-MNIST subset. The job must complete and QueryPareto must
// return only non-dominated candidates whose accuracies came from real training.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/table.h"
#include "core/tabular.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nasforge/v1/nasforge.grpc.pb.h"
#include "tests/process_util.h"

namespace nasforge {
namespace {

using ::nasforge::testing::Process;
using ::nasforge::testing::Spawn;
using ::nasforge::testing::Stop;

Process StartController(const std::string& listen, const std::string& db, int* port) {
  return ::nasforge::testing::StartController(listen, "sqlite://" + db, port);
}

class EndToEndTest : public ::testing::Test {
 protected:
  // Submits a YAML job spec; an empty id (and a test failure) if the controller refuses it.
  static v1::Job Submit(v1::JobService::Stub& stub, const std::string& yaml) {
    v1::SubmitJobRequest req;
    req.set_spec_yaml(yaml);
    v1::Job job;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status s = stub.SubmitJob(&ctx, req, &job);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return job;
  }

  // Every candidate of `job_id` (waits for the channel to be ready).
  static v1::ListCandidatesResponse Candidates(v1::JobService::Stub& stub,
                                               const std::string& job_id) {
    v1::ListCandidatesResponse all;
    std::string token;
    do {
      grpc::ClientContext ctx;
      ctx.set_wait_for_ready(true);
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      v1::ListCandidatesRequest r;
      r.set_job_id(job_id);
      r.set_page_token(token);
      v1::ListCandidatesResponse page;
      grpc::Status s = stub.ListCandidates(&ctx, r, &page);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (!s.ok()) break;
      for (auto& t : *page.mutable_trials()) *all.add_trials() = std::move(t);
      token = page.next_page_token();
    } while (!token.empty());
    return all;
  }

  // Two workers on `target`, one LibTorch thread each, logging to dir_/<prefix>-<i>.log.
  void StartWorkers(const std::string& target, const std::string& prefix,
                    const std::vector<std::string>& extra = {}) {
    for (int i = 1; i <= 2; ++i) {
      std::vector<std::string> args = {NASFORGE_WORKER_BIN, "--controller=" + target, "--threads=1",
                                       absl::StrCat("--worker-id=", prefix, "-", i)};
      args.insert(args.end(), extra.begin(), extra.end());
      (i == 1 ? w1_ : w2_) = Spawn(args, absl::StrCat(dir_, "/", prefix, "-", i, ".log"), false);
    }
  }

  // The controller on a fresh SQLite store (dir_/<prefix>.db) and two workers with
  // `worker_flags`; the JobService stub (null, and a test failure, if the controller fails).
  std::unique_ptr<v1::JobService::Stub> StartService(
      const std::string& prefix, const std::vector<std::string>& worker_flags = {}) {
    std::filesystem::create_directories(dir_);
    int port = 0;
    controller_ = StartController("127.0.0.1:0", dir_ + "/" + prefix + ".db", &port);
    EXPECT_GT(port, 0) << "controller did not start";
    if (port == 0) return nullptr;
    const std::string target = absl::StrCat("127.0.0.1:", port);
    StartWorkers(target, prefix, worker_flags);
    return v1::JobService::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  }

  // Watches `job_id` until it ends (the stream closes itself then); the last state seen.
  static v1::Job WaitForEnd(v1::JobService::Stub& stub, const std::string& job_id) {
    v1::Job last;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
    v1::WatchJobRequest w;
    w.set_job_id(job_id);
    auto reader = stub.WatchJob(&ctx, w);
    v1::JobEvent e;
    while (reader->Read(&e)) last = e.job();
    EXPECT_TRUE(reader->Finish().ok());
    return last;
  }

  static v1::QueryParetoResponse Front(v1::JobService::Stub& stub, const std::string& job_id) {
    v1::QueryParetoResponse front;
    grpc::ClientContext ctx;
    v1::QueryParetoRequest q;
    q.set_job_id(job_id);
    EXPECT_TRUE(stub.QueryPareto(&ctx, q, &front).ok());
    return front;
  }

  void TearDown() override {
    for (auto* p : {&w1_, &w2_, &controller_}) {
      if (p->pid > 0) kill(p->pid, SIGKILL);
      Stop(*p);
    }
    std::filesystem::remove_all(dir_);
  }

  std::string dir_ =
      absl::StrCat(std::filesystem::temp_directory_path().string(), "/e2e-", getpid());
  Process controller_, w1_, w2_;
};

TEST_F(EndToEndTest, TwoWorkersTrainARealSearchAndTheFrontIsNonDominated) {
  auto stub = StartService("e2e");
  ASSERT_NE(stub, nullptr);
  v1::Job job = Submit(*stub, R"(
name: e2e
budget: {max_trials: 4, max_parallel_trials: 2, epochs: 2, seed: 5}
constraints: [{metric: macs, upper: 3000000}]
training: {dataset: fashion-mnist, train_examples: 4000, validation_examples: 1000,
           test_examples: 1000, batch_size: 64, learning_rate: 0.004}
search_space:
  mbconv:
    resolution: 28
    in_channels: 1
    num_classes: 10
    stem_channels: [8, 16]
    stages:
      - {stride: 2, kernel: [3, 5], expansion: [1, 3], repeats: [1], channels: [16, 24], se_ratio: [0, 0.25]}
      - {stride: 2, kernel: [3, 5], expansion: [3, 6], repeats: [1, 2], channels: [32, 48], se_ratio: [0]}
    head_channels: [0, 64]
)");
  ASSERT_FALSE(job.id().empty());

  v1::Job last = WaitForEnd(*stub, job.id());
  ASSERT_EQ(last.state(), v1::JOB_SUCCEEDED) << last.error();
  EXPECT_EQ(last.counts().succeeded(), 4);

  v1::ListCandidatesResponse all = Candidates(*stub, job.id());
  ASSERT_EQ(all.trials_size(), 4);
  std::set<std::string> workers;
  for (const auto& t : all.trials()) {
    workers.insert(t.worker_id());
    // Real training on real data: far above the 10% of chance, with a curve and a latency.
    EXPECT_GT(t.metrics().at("accuracy"), 0.5);
    EXPECT_GT(t.metrics().at("test_accuracy"), 0.5);
    EXPECT_LE(t.metrics().at("macs"), 3e6);
    EXPECT_GT(t.metrics().at("latency_ms"), 0);
    EXPECT_EQ(t.curve_size(), 2);
    EXPECT_EQ(t.hardware_profile(), "cpu-1t");
  }
  EXPECT_EQ(workers.size(), 2u) << "both workers should have trained";

  v1::QueryParetoResponse front = Front(*stub, job.id());
  ASSERT_GE(front.trials_size(), 1);
  for (const auto& f : front.trials()) {
    for (const auto& t : all.trials()) {
      double fa = f.metrics().at("accuracy"), ta = t.metrics().at("accuracy");
      double fm = f.metrics().at("macs"), tm = t.metrics().at("macs");
      EXPECT_FALSE(ta >= fa && tm <= fm && (ta > fa || tm < fm))
          << "trial " << t.id() << " dominates front member " << f.id();
    }
  }
  // Workers exit cleanly on SIGTERM.
  EXPECT_EQ(Stop(w1_), 0);
  EXPECT_EQ(Stop(w2_), 0);
  EXPECT_EQ(Stop(controller_), 0);
}

// Faults at two moments of one job: the controller is SIGKILLed while trials train and
// restarted on the same store, then a worker is SIGKILLed mid-trial. Nothing is lost, nothing is
// counted twice, no architecture is trained twice, and the killed worker's trial is finished by
// the other worker after its lease expires.
TEST_F(EndToEndTest, SurvivesControllerCrashAndWorkerKill) {
  std::filesystem::create_directories(dir_);
  const std::string db = dir_ + "/fault.db";
  int port = 0;
  controller_ = StartController("127.0.0.1:0", db, &port);
  ASSERT_GT(port, 0);
  std::string target = absl::StrCat("127.0.0.1:", port);
  StartWorkers(target, "fault");
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto stub = v1::JobService::NewStub(channel);
  v1::Job job = Submit(*stub, R"(
name: fault
lease_seconds: 5
budget: {max_trials: 4, max_parallel_trials: 2, epochs: 3, seed: 9}
training: {dataset: fashion-mnist, train_examples: 3000, validation_examples: 500,
           test_examples: 500, batch_size: 64, learning_rate: 0.004}
search_space:
  mbconv:
    resolution: 28
    in_channels: 1
    num_classes: 10
    stem_channels: [8, 16]
    stem_stride: 2
    stages:
      - {stride: 2, kernel: [3, 5], expansion: [3, 6], repeats: [1, 2], channels: [16, 24], se_ratio: [0, 0.25]}
    head_channels: [0, 64]
)");
  ASSERT_FALSE(job.id().empty());
  // Reads the watch stream until `stop` says so; returns the last job snapshot.
  auto watch_until = [&](const std::function<bool(const v1::JobEvent&)>& stop) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
    ctx.set_wait_for_ready(true);  // the channel may still be reconnecting after the restart
    v1::WatchJobRequest w;
    w.set_job_id(job.id());
    auto reader = stub->WatchJob(&ctx, w);
    v1::JobEvent e, last;
    while (reader->Read(&e)) {
      last = e;
      if (stop(e)) {
        ctx.TryCancel();
        break;
      }
    }
    grpc::Status st = reader->Finish();
    if (!st.ok() && st.error_code() != grpc::StatusCode::CANCELLED) {
      ADD_FAILURE() << "watch: " << st.error_message();
    }
    return last;
  };

  // 1. Kill the controller once a trial has reported an epoch; restart it on the same port/store.
  watch_until([](const v1::JobEvent& e) { return e.kind() == "trial_progress"; });
  kill(controller_.pid, SIGKILL);
  Stop(controller_);
  int port2 = 0;
  controller_ = StartController(target, db, &port2);
  ASSERT_EQ(port2, port);
  // A fresh channel with its own subchannels: the process-wide pool would hand back the
  // connection that died with the first controller.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  stub = v1::JobService::NewStub(
      grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));

  // 2. Kill the worker of the next trial that reports progress.
  v1::JobEvent progress =
      watch_until([](const v1::JobEvent& e) { return e.kind() == "trial_progress"; });
  ASSERT_EQ(progress.kind(), "trial_progress");
  const std::string victim = progress.trial().worker_id();
  Process& vp = victim == "fault-1" ? w1_ : w2_;
  kill(vp.pid, SIGKILL);
  Stop(vp);

  // 3. The job still completes.
  v1::JobEvent end = watch_until([](const v1::JobEvent&) { return false; });
  ASSERT_EQ(end.job().state(), v1::JOB_SUCCEEDED) << end.job().error();
  EXPECT_EQ(end.job().counts().succeeded(), 4);
  v1::ListCandidatesResponse all = Candidates(*stub, job.id());
  ASSERT_EQ(all.trials_size(), 4);
  std::set<std::string> hashes;
  bool retried_elsewhere = false;
  for (const auto& t : all.trials()) {
    EXPECT_TRUE(hashes.insert(t.arch_hash()).second) << "architecture trained twice";
    EXPECT_EQ(t.state(), v1::TRIAL_SUCCEEDED);
    EXPECT_GT(t.metrics().at("accuracy"), 0.3);
    if (t.id() == progress.trial().id()) {
      EXPECT_EQ(t.attempts(), 2) << "the killed worker's trial is leased again";
      EXPECT_NE(t.worker_id(), victim);
      retried_elsewhere = true;
    }
  }
  EXPECT_TRUE(retried_elsewhere);
}

// A worker process killed mid-trial (as the kernel's OOM killer would) and restarted under the
// same id (as systemd's Restart= does) gives its trial back at once, not after lease_seconds;
// a candidate that kills its worker every time is failed after max_attempts, naming the cause.
TEST_F(EndToEndTest, ATrialThatKillsItsWorkerIsFailedWithoutWaitingForItsLease) {
  std::filesystem::create_directories(dir_);
  int port = 0;
  controller_ = StartController("127.0.0.1:0", dir_ + "/oom.db", &port);
  ASSERT_GT(port, 0);
  const std::string target = absl::StrCat("127.0.0.1:", port);
  auto start_worker = [&] {
    w1_ = Spawn({NASFORGE_WORKER_BIN, "--controller=" + target, "--threads=1", "--worker-id=oom"},
                dir_ + "/oom-worker.log", false);
  };
  start_worker();
  auto stub =
      v1::JobService::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  // Only a restart can end this lease within the test: an hour without heartbeats otherwise.
  v1::Job job = Submit(*stub, R"(
name: oom
lease_seconds: 3600
budget: {max_trials: 1, max_parallel_trials: 1, max_attempts: 2, epochs: 200, seed: 5}
training: {dataset: fashion-mnist, train_examples: 1000, validation_examples: 200,
           test_examples: 200, batch_size: 64}
search_space:
  mbconv:
    resolution: 28
    in_channels: 1
    num_classes: 10
    stem_channels: [8]
    stages:
      - {stride: 2, kernel: [3], expansion: [3], repeats: [1], channels: [16], se_ratio: [0]}
)");
  ASSERT_FALSE(job.id().empty());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
  v1::WatchJobRequest w;
  w.set_job_id(job.id());
  auto reader = stub->WatchJob(&ctx, w);
  v1::JobEvent e, last;
  int kills = 0;
  while (reader->Read(&e)) {
    last = e;
    // Mid-trial in attempt `kills + 1`: kill -9 the worker and start it again.
    if (e.kind() == "trial_progress" && e.trial().attempts() == kills + 1) {
      kill(w1_.pid, SIGKILL);
      Stop(w1_);
      ++kills;
      start_worker();
    }
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(kills, 2);
  EXPECT_EQ(last.job().state(), v1::JOB_FAILED);
  v1::ListCandidatesResponse all = Candidates(*stub, job.id());
  ASSERT_EQ(all.trials_size(), 1);
  EXPECT_EQ(all.trials(0).state(), v1::TRIAL_FAILED);
  EXPECT_EQ(all.trials(0).attempts(), 2);
  EXPECT_THAT(all.trials(0).error(), ::testing::HasSubstr("restarted while training it"));
}

// Tabular workers answer a regularized-evolution job over the NAS-Bench-201 table (the shipped
// example job): every trial's accuracy is one training seed's value of its cell, no cell twice.
TEST_F(EndToEndTest, TabularWorkersRunTheNB201EvolutionExample) {
  const std::string table = std::string(NASFORGE_SOURCE_DIR) + "/bench/data/nb201_cifar10.csv";
  auto stub = StartService(
      "tab", {"--backend=tabular", "--table=" + table, "--fitness-column=c10_val_200ep",
              "--seeds-column=c10_val_200ep_seeds", "--report-columns=c10_test_200ep"});
  ASSERT_NE(stub, nullptr);
  std::ifstream f(std::string(NASFORGE_SOURCE_DIR) + "/search_spaces/examples/nb201_tabular.yaml");
  std::stringstream yaml;
  yaml << f.rdbuf();
  v1::Job job = Submit(*stub, yaml.str());
  ASSERT_FALSE(job.id().empty());
  v1::Job last = WaitForEnd(*stub, job.id());
  ASSERT_EQ(last.state(), v1::JOB_SUCCEEDED) << last.error();
  EXPECT_EQ(last.counts().succeeded(), 300);

  TabularOptions o;
  o.table = table;
  o.fitness_column = "c10_val_200ep";
  o.seeds_column = "c10_val_200ep_seeds";
  o.report_columns = {"c10_test_200ep"};
  auto oracle = TabularOracle::Load(o);
  ASSERT_TRUE(oracle.ok()) << oracle.status();
  auto seeds = Table::ReadCsv(table);
  ASSERT_TRUE(seeds.ok());
  const int seeds_col = *seeds->Column("c10_val_200ep_seeds", "");
  v1::ListCandidatesResponse all = Candidates(*stub, job.id());
  ASSERT_EQ(all.trials_size(), 300);
  std::set<std::string> cells;
  double best = 0, mean_fitness = 0;
  for (const auto& t : all.trials()) {
    ASSERT_TRUE(t.architecture().has_nb201());
    EXPECT_TRUE(cells.insert(t.architecture().nb201().cell()).second) << "trained twice";
    size_t row = *oracle->Find(t.architecture());
    double acc = t.metrics().at("accuracy");
    auto per_seed = *seeds->Numbers(row, seeds_col);
    EXPECT_NE(std::find(per_seed.begin(), per_seed.end(), acc), per_seed.end())
        << "accuracy " << acc << " is not one of the seeds of " << oracle->Key(row);
    EXPECT_EQ(t.metrics().at("c10_test_200ep"), oracle->Report(row, 0));
    best = std::max(best, acc);
  }
  for (size_t r = 0; r < oracle->rows(); ++r) mean_fitness += oracle->MeanFitness(r);
  mean_fitness /= oracle->rows();
  // Evolution climbs well above the table's mean cell.
  EXPECT_GT(best, mean_fitness + 5) << best << " vs mean " << mean_fitness;
  EXPECT_GE(Front(*stub, job.id()).trials_size(), 2);  // accuracy vs params
}

// Compound scaling with real LibTorch training: the base, the phi = 1 grid model and the best
// triple at phi = 2, 3 are trained, in that family order; QueryPareto answers from them.
TEST_F(EndToEndTest, CompoundScalingTrainsTheScaledFamily) {
  auto stub = StartService("cs");
  ASSERT_NE(stub, nullptr);
  v1::Job job = Submit(*stub, R"(
name: e2e-compound-scaling
strategy:
  name: compound_scaling
  compound_scaling: {alpha: [1.2], beta: [1.1], gamma: [1.15], max_phi: 3, width_divisor: 4}
budget: {max_trials: 10, max_parallel_trials: 2, epochs: 1, seed: 3}
objectives: [{metric: accuracy, direction: MAXIMIZE}, {metric: macs, direction: MINIMIZE}]
training: {dataset: fashion-mnist, train_examples: 5000, validation_examples: 500,
           test_examples: 500, batch_size: 32, learning_rate: 0.004}
search_space:
  mbconv:
    resolution: 28
    in_channels: 1
    num_classes: 10
    stem_channels: [8]
    stem_stride: 2
    stages:
      - {stride: 2, kernel: [3], expansion: [3], repeats: [1], channels: [16], se_ratio: [0.25]}
      - {stride: 1, kernel: [3], expansion: [3], repeats: [2], channels: [24], se_ratio: [0]}
    head_channels: [64]
)");
  ASSERT_FALSE(job.id().empty());
  v1::Job last = WaitForEnd(*stub, job.id());
  ASSERT_EQ(last.state(), v1::JOB_SUCCEEDED) << last.error();
  EXPECT_THAT(last.error(), ::testing::HasSubstr("compound scaling finished"));
  v1::ListCandidatesResponse all = Candidates(*stub, job.id());
  ASSERT_EQ(all.trials_size(), 4);  // base, phi = 1, 2, 3
  std::vector<int> resolution;
  double macs = 0;
  for (const auto& t : all.trials()) {
    EXPECT_EQ(t.state(), v1::TRIAL_SUCCEEDED);
    EXPECT_GT(t.metrics().at("accuracy"), 0.3);  // real training, chance is 0.1
    EXPECT_GT(t.metrics().at("macs"), macs);     // each member bigger than the last
    macs = t.metrics().at("macs");
    resolution.push_back(t.architecture().mbconv().resolution());
  }
  // 28 * 1.15^phi, rounded: 28, 32, 37, 43.
  EXPECT_EQ(resolution, (std::vector<int>{28, 32, 37, 43}));
  v1::QueryParetoResponse front = Front(*stub, job.id());
  ASSERT_GE(front.trials_size(), 1);
  for (const auto& f : front.trials()) EXPECT_LT(f.id(), 4);
}

}  // namespace
}  // namespace nasforge
