// A latency runtime registered from test code, end to end: the job-spec validation knows it
// (field-named errors for its precisions and options), a worker that runs it registers with it,
// the controller routes its measurements only to such workers, and the measured value lands in
// the job's trials as latency_ms@TARGET. Real controller over gRPC on loopback, the real
// WorkerLoop; the trainer is a stand-in (no LibTorch: the runtime is the point).
#include "worker/latency_runtime.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "controller/server.h"
#include "core/hardware_targets.h"
#include "core/jobspec.h"
#include "core/latency_runtimes.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nasforge/v1/nasforge.grpc.pb.h"
#include "tests/job_watch.h"
#include "worker/controller_client.h"
#include "worker/worker_loop.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

// Registered once per process: a runtime that "measures" 2.5 ms, or 1.25 ms with mode=fast.
void RegisterTestRuntime() {
  static const bool once = [] {
    LatencyRuntimes().AddBuiltin({"test-fixed",
                                  "a stand-in runtime for tests",
                                  {"fp32", "int8"},
                                  {{"mode", "how fast", {"slow", "fast"}}}});
    WorkerLatencyRuntimes().AddBuiltin(
        {"test-fixed", [](const std::string& device) { return device == "cpu"; },
         [](const v1::Architecture&, const v1::HardwareTarget& target, const MeasureContext&) {
           LatencyStats s;
           s.p50_ms = LatencyOption(target, "mode") == "fast" ? 1.25 : 2.5;
           s.p90_ms = s.p99_ms = s.p50_ms;
           s.runs = 7;
           s.timer = "test";
           return absl::StatusOr<LatencyStats>(s);
         }});
    return true;
  }();
  (void)once;
}

class MeasuringTrainer : public Trainer {
 public:
  absl::StatusOr<TrainResult> Train(const TrainRequest& req,
                                    const std::function<Verdict(const EpochReport&)>& on_epoch,
                                    const std::atomic<bool>& abort) override {
    TrainResult r;
    r.metrics["accuracy"] = 0.5;
    return r;
  }
  std::optional<MeasureContext> Measuring() const override { return MeasureContext{}; }
};

constexpr const char* kSpec = R"(
name: runtime-test
strategy: {name: random}
budget: {max_trials: 3, max_parallel_trials: 1, epochs: 1, seed: 3}
objectives:
  - {metric: accuracy, direction: MAXIMIZE}
  - {metric: latency_ms@fast, direction: MINIMIZE}
hardware_targets:
  - {name: fast, profile: test-prof, runtime: test-fixed, options: {mode: fast}}
  - {name: slow, profile: test-prof, runtime: TEST_RUNTIME_2}
training: {dataset: fashion-mnist, train_examples: 100, validation_examples: 100}
search_space:
  name: tiny
  mlp: {in_features: 784, num_classes: 10, depth: [1], layers: [{units: [8, 16, 32, 64]}]}
)";

std::string Spec(const std::string& second_runtime) {
  std::string s = kSpec;
  s.replace(s.find("TEST_RUNTIME_2"), 14, second_runtime);
  return s;
}

TEST(LatencyRuntimeTest, ValidationNamesTheFieldAndTheRuntimesChoices) {
  RegisterTestRuntime();
  auto spec = ParseJobSpecYaml(Spec("test-fixed"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(ValidateJobSpec(*spec).ok()) << ValidateJobSpec(*spec);

  v1::JobSpec bad = *spec;
  bad.mutable_hardware_targets(1)->set_runtime("onnx-nope");
  absl::Status st = ValidateJobSpec(bad);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("hardware_targets[1].runtime"));
  EXPECT_THAT(st.message(), HasSubstr("libtorch, libtorch-cuda-graph, test-fixed"));

  bad = *spec;
  bad.mutable_hardware_targets(1)->set_precision("bf16");  // test-fixed: fp32, int8
  st = ValidateJobSpec(bad);
  EXPECT_THAT(st.message(), HasSubstr("hardware_targets[1].precision"));
  EXPECT_THAT(st.message(), HasSubstr("fp32, int8"));

  bad = *spec;
  (*bad.mutable_hardware_targets(0)->mutable_options())["mode"] = "warp";
  st = ValidateJobSpec(bad);
  EXPECT_THAT(st.message(), HasSubstr("hardware_targets[0].options[mode]"));
  EXPECT_THAT(st.message(), HasSubstr("slow, fast"));

  bad = *spec;
  (*bad.mutable_hardware_targets(0)->mutable_options())["colour"] = "red";
  st = ValidateJobSpec(bad);
  EXPECT_THAT(st.message(), HasSubstr("hardware_targets[0].options[colour]"));
  EXPECT_THAT(st.message(), HasSubstr("has no option 'colour' (mode)"));
}

TEST(LatencyRuntimeTest, SettingIsCanonicalAndDefaultsAreLeftOut) {
  RegisterTestRuntime();
  v1::HardwareTarget t;
  t.set_profile("p");
  t.set_batch_size(4);
  t.set_precision("int8");
  t.set_runtime("test-fixed");
  EXPECT_EQ(LatencySetting(t), "batch=4;precision=int8;runtime=test-fixed;threads=0");
  (*t.mutable_options())["mode"] = "slow";  // the default: the same setting
  EXPECT_EQ(LatencySetting(t), "batch=4;precision=int8;runtime=test-fixed;threads=0");
  (*t.mutable_options())["mode"] = "fast";
  EXPECT_EQ(LatencySetting(t), "batch=4;precision=int8;runtime=test-fixed;threads=0;o.mode=fast");
  EXPECT_EQ(LatencyKey("h", t),
            "h|p|batch=4;precision=int8;runtime=test-fixed;threads=0;o.mode=fast");
  v1::HardwareTarget plain;
  plain.set_batch_size(1);
  plain.set_precision("fp32");
  EXPECT_EQ(LatencySetting(plain), "batch=1;precision=fp32;runtime=libtorch;threads=0");
}

TEST(LatencyRuntimeTest, WorkersOfferOnlyWhatRunsOnTheirDevice) {
  RegisterTestRuntime();
  EXPECT_THAT(LatencyRuntimesOn("cpu"), ::testing::Contains("test-fixed"));
  EXPECT_THAT(LatencyRuntimesOn("cuda:0"), ::testing::Not(::testing::Contains("test-fixed")));
  v1::HardwareTarget t;
  t.set_runtime("test-fixed");
  auto r = MeasureWithRuntime(v1::Architecture(), t, MeasureContext{"cuda:0"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("runtime test-fixed does not run on this worker"));
  v1::Worker w;
  w.set_measures_latency(true);
  w.mutable_hardware()->set_name("test-prof");
  t.set_profile("test-prof");
  EXPECT_FALSE(MeasuresTarget(w, t)) << "a worker from before runtimes runs only libtorch";
  w.add_latency_runtimes("test-fixed");
  EXPECT_TRUE(MeasuresTarget(w, t));
  t.set_threads(4);
  EXPECT_FALSE(MeasuresTarget(w, t));
}

class LatencyRuntimeServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RegisterTestRuntime();
    dir_ =
        absl::StrCat(std::filesystem::temp_directory_path().string(), "/runtime-test-", getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    ControllerOptions o;
    o.listen = "127.0.0.1:0";
    o.metrics_listen = "";
    o.store_url = "sqlite://" + dir_ + "/s.db";
    o.sweep_interval = absl::Milliseconds(50);
    auto c = Controller::Start(o);
    ASSERT_TRUE(c.ok()) << c.status();
    controller_ = std::move(*c);
    target_ = absl::StrCat("127.0.0.1:", controller_->port());
  }
  void TearDown() override {
    if (controller_) controller_->Shutdown();
    std::filesystem::remove_all(dir_);
  }
  // A worker of profile test-prof running the test runtime, until `loop` is stopped.
  std::unique_ptr<WorkerLoop> StartWorker(std::thread* th) {
    ChannelOptions co;
    co.target = target_;
    auto client = NewGrpcControllerClient(co);
    EXPECT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
    WorkerOptions wo;
    wo.worker_id = "w-runtime";
    wo.hardware.set_name("test-prof");
    wo.hardware.set_threads(1);
    auto loop = std::make_unique<WorkerLoop>(client_.get(), &trainer_, wo, nullptr);
    *th = std::thread([l = loop.get()] { (void)l->Run(); });
    return loop;
  }

  std::string dir_, target_;
  std::unique_ptr<Controller> controller_;
  std::unique_ptr<ControllerClient> client_;
  MeasuringTrainer trainer_;
};

TEST_F(LatencyRuntimeServiceTest, ARegisteredRuntimeMeasuresEveryCandidateThroughTheWorker) {
  auto channel = grpc::CreateChannel(target_, grpc::InsecureChannelCredentials());
  auto jobs = v1::JobService::NewStub(channel);
  v1::SubmitJobRequest req;
  req.set_spec_yaml(Spec("test-fixed"));
  v1::Job job;
  {
    grpc::ClientContext ctx;
    grpc::Status s = jobs->SubmitJob(&ctx, req, &job);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  std::thread th;
  auto loop = StartWorker(&th);
  // The job's watch stream closes when it ends.
  {
    testing::Watched watched = testing::WatchUntilEnd(*jobs, job.id(), 120);
    EXPECT_TRUE(watched.status.ok()) << watched.status.error_message();
    job = watched.job;
  }
  loop->Stop();
  th.join();
  EXPECT_EQ(job.state(), v1::JOB_SUCCEEDED);
  grpc::ClientContext ctx;
  v1::ListCandidatesRequest lr;
  lr.set_job_id(job.id());
  v1::ListCandidatesResponse cands;
  ASSERT_TRUE(jobs->ListCandidates(&ctx, lr, &cands).ok());
  ASSERT_EQ(cands.trials_size(), 3);
  for (const auto& t : cands.trials()) {
    EXPECT_EQ(t.state(), v1::TRIAL_SUCCEEDED) << t.error();
    EXPECT_DOUBLE_EQ(t.metrics().at("latency_ms@fast"), 1.25);
    EXPECT_DOUBLE_EQ(t.metrics().at("latency_ms@slow"), 2.5);
  }
}

TEST_F(LatencyRuntimeServiceTest, AMeasurementIsLeasedOnlyToAWorkerThatRunsItsRuntime) {
  // The second target asks for the CUDA-graph runtime, which this CPU worker does not offer:
  // its trials wait (then fail naming the runtime), and the worker is never handed one.
  auto channel = grpc::CreateChannel(target_, grpc::InsecureChannelCredentials());
  auto workers = v1::WorkerService::NewStub(channel);
  auto jobs = v1::JobService::NewStub(channel);
  v1::SubmitJobRequest req;
  req.set_spec_yaml(Spec("libtorch-cuda-graph"));
  v1::Job job;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(jobs->SubmitJob(&ctx, req, &job).ok());
  }
  v1::RegisterWorkerRequest reg;
  reg.set_worker_id("w-cpu");
  reg.mutable_hardware()->set_name("test-prof");
  reg.set_measures_latency(true);
  reg.add_latency_runtimes("test-fixed");
  {
    grpc::ClientContext ctx;
    v1::RegisterWorkerResponse r;
    ASSERT_TRUE(workers->RegisterWorker(&ctx, reg, &r).ok());
  }
  int fixed = 0;
  for (int i = 0; i < 8; ++i) {  // more asks than the job has measurements of its own runtime
    grpc::ClientContext ctx;
    v1::LeaseTrialRequest lr;
    lr.set_worker_id("w-cpu");
    v1::LeaseTrialResponse resp;
    ASSERT_TRUE(workers->LeaseTrial(&ctx, lr, &resp).ok());
    if (!resp.has_measure()) continue;
    EXPECT_EQ(resp.measure().target().runtime(), "test-fixed");
    ++fixed;
    grpc::ClientContext rctx;
    v1::ReportMeasurementRequest rep;
    rep.set_worker_id("w-cpu");
    rep.set_token(resp.measure().token());
    rep.set_p50_ms(1);
    rep.set_p90_ms(1);
    rep.set_p99_ms(1);
    rep.set_runs(5);
    v1::ReportMeasurementResponse ack;
    ASSERT_TRUE(workers->ReportMeasurement(&rctx, rep, &ack).ok());
  }
  EXPECT_GE(fixed, 1);
}

}  // namespace
}  // namespace nasforge
