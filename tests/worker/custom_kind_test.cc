// A search-space kind registered from test code, end to end: the kind (core/choice_kind.h) and
// its LibTorch builder (worker/torch_models.h) are registered here and nowhere else; a job of
// that kind is validated, searched by the real controller over gRPC on loopback, trained by the
// real WorkerLoop with the LibTorch trainer on real Fashion-MNIST, and its candidates carry the
// kind's own architectures, MACs and parameters (the builder's count must equal the kind's
// analytic plan, or the trainer refuses the trial).
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controller/server.h"
#include "core/choice_kind.h"
#include "core/cost.h"
#include "core/jobspec.h"
#include "core/search_space.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nasforge/v1/nasforge.grpc.pb.h"
#include "tests/job_watch.h"
#include "worker/controller_client.h"
#include "worker/torch_models.h"
#include "worker/trainer.h"
#include "worker/worker_loop.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

// "tower": `depth` hidden layers of `width` units on flat 28x28 images, ReLU, then 10 classes.
class TowerKind final : public ChoiceKind {
 public:
  TowerKind() : ChoiceKind("tower") {}
  std::vector<ChoiceSpec> Choices() const override { return {{"depth", 0, 4}, {"width", 1, 4096}}; }
  void Plan(const v1::Architecture& arch, Planner* p) const override {
    int c = 28 * 28;
    for (int i = 0; i < Value(arch, "depth"); ++i) {
      p->Linear(absl::StrCat("hidden.", i), c, Value(arch, "width"));
      c = Value(arch, "width");
    }
    p->Linear("classifier", c, 10);
  }
  InputShape Input(const v1::Architecture&) const override {
    return {28 * 28, 1, 1, 10, /*flat=*/true};
  }
};

struct TowerNet : NetImpl {
  explicit TowerNet(const v1::Architecture& arch) {
    int c = 28 * 28;
    for (int i = 0; i < ChoiceKind::Value(arch, "depth"); ++i) {
      hidden.push_back(register_module(absl::StrCat("hidden", i),
                                       CountedLinear(c, ChoiceKind::Value(arch, "width"))));
      c = ChoiceKind::Value(arch, "width");
    }
    classifier = register_module("classifier", CountedLinear(c, 10));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = x.flatten(1);
    for (auto& h : hidden) x = torch::relu(h->forward(x));
    return classifier->forward(x);
  }
  std::vector<CountedLinear> hidden;
  CountedLinear classifier{nullptr};
};

void RegisterTower() {
  static const bool once = [] {
    EXPECT_TRUE(RegisterChoiceKind(std::make_shared<TowerKind>()).ok());
    TorchBuilders().AddBuiltin({"tower", [](const v1::Architecture& a) {
                                  return std::shared_ptr<NetImpl>(std::make_shared<TowerNet>(a));
                                }});
    return true;
  }();
  (void)once;
}

constexpr const char* kSpec = R"(
name: tower-test
strategy: {name: random}
budget: {max_trials: 4, max_parallel_trials: 1, epochs: 1, seed: 11}
objectives:
  - {metric: accuracy, direction: MAXIMIZE}
  - {metric: params, direction: MINIMIZE}
training: {dataset: fashion-mnist, train_examples: 2000, validation_examples: 500,
           test_examples: 500, batch_size: 100, learning_rate: 0.003}
search_space:
  name: towers
  custom:
    kind: tower
    choices:
      - {name: width, values: [16, 64]}
      - {name: depth, values: [1, 2]}
)";

TEST(CustomKindTest, ValidationNamesTheFieldAndTheKindsChoices) {
  RegisterTower();
  auto spec = ParseJobSpecYaml(kSpec);
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_TRUE(ValidateJobSpec(*spec).ok()) << ValidateJobSpec(*spec);
  EXPECT_EQ(SpaceSize(spec->search_space()), 4u);

  v1::JobSpec bad = *spec;
  bad.mutable_search_space()->mutable_custom()->set_kind("skyscraper");
  absl::Status st = ValidateJobSpec(bad);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("search_space.custom.kind"));
  EXPECT_THAT(st.message(), HasSubstr("'skyscraper' is not a kind registered"));
  EXPECT_THAT(st.message(), HasSubstr("tower"));

  bad = *spec;
  bad.mutable_search_space()->mutable_custom()->set_kind("mlp");  // built-ins are arms
  EXPECT_THAT(ValidateJobSpec(bad).message(), HasSubstr("search_space.custom.kind"));

  bad = *spec;
  bad.mutable_search_space()->mutable_custom()->mutable_choices(1)->set_name("floors");
  st = ValidateJobSpec(bad);
  EXPECT_THAT(st.message(), HasSubstr("search_space.custom.choices[1].name"));
  EXPECT_THAT(st.message(), HasSubstr("'floors' is not a choice of kind tower (depth, width)"));

  bad = *spec;
  bad.mutable_search_space()->mutable_custom()->mutable_choices()->RemoveLast();
  EXPECT_THAT(ValidateJobSpec(bad).message(), HasSubstr("needs choice 'depth'"));

  bad = *spec;
  bad.mutable_search_space()->mutable_custom()->mutable_choices(0)->add_values(5000);
  st = ValidateJobSpec(bad);
  EXPECT_THAT(st.message(), HasSubstr("search_space.custom.choices[0].values"));
  EXPECT_THAT(st.message(), HasSubstr("5000 is out of range [1, 4096]"));

  // The kind's name is taken once.
  EXPECT_EQ(RegisterChoiceKind(std::make_shared<TowerKind>()).code(),
            absl::StatusCode::kAlreadyExists);
}

TEST(CustomKindTest, ArchitecturesHashByValueNotByOrder) {
  RegisterTower();
  auto spec = ParseJobSpecYaml(kSpec).value();
  v1::Architecture a = DecodeArchitecture(spec.search_space(), {1, 0});  // depth 2, width 16
  EXPECT_EQ(a.custom().kind(), "tower");
  EXPECT_EQ(ChoiceKind::Value(a, "depth"), 2);
  EXPECT_EQ(ChoiceKind::Value(a, "width"), 16);
  v1::Architecture reordered = a;
  reordered.mutable_custom()->mutable_values()->SwapElements(0, 1);
  EXPECT_EQ(ArchHash(a), ArchHash(reordered));
  // The fast canonical encoding agrees with protobuf's JSON printer for the custom arm too.
  EXPECT_EQ(CanonicalEncoding(reordered), ProtobufCanonicalEncoding(NormalizedArchitecture(a)));
  ASSERT_TRUE(CheckInSpace(spec.search_space(), reordered, "architecture").ok());
  v1::Architecture other = a;
  other.mutable_custom()->mutable_values(1)->set_value(64);
  EXPECT_NE(ArchHash(a), ArchHash(other));
  EXPECT_EQ(ComputeCost(a).params, (784 * 16 + 16) + (16 * 16 + 16) + (16 * 10 + 10));
}

TEST(CustomKindTest, AWorkerWithoutTheBuilderRefusesTheTrialNamingTheKind) {
  RegisterTower();
  // A kind this process registers but for which no builder exists: a second custom kind.
  class Bare final : public ChoiceKind {
   public:
    Bare() : ChoiceKind("bare_kind") {}
    std::vector<ChoiceSpec> Choices() const override { return {{"n", 1, 8}}; }
    void Plan(const v1::Architecture&, Planner* p) const override { p->Linear("fc", 784, 10); }
    InputShape Input(const v1::Architecture&) const override { return {784, 1, 1, 10, true}; }
  };
  static const bool once = RegisterChoiceKind(std::make_shared<Bare>()).ok();
  ASSERT_TRUE(once);
  v1::Architecture bare;
  bare.mutable_custom()->set_kind("bare_kind");
  auto* v = bare.mutable_custom()->add_values();
  v->set_name("n");
  v->set_value(3);
  auto counted = CountBuiltModel(bare, 1);
  EXPECT_EQ(counted.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(counted.status().message(), HasSubstr("kind bare_kind has no LibTorch builder"));
}

TEST(CustomKindTest, AJobOfTheKindRunsThroughTheControllerAndTheTorchWorker) {
  RegisterTower();
  const std::string dir =
      absl::StrCat(std::filesystem::temp_directory_path().string(), "/custom-kind-", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  ControllerOptions o;
  o.listen = "127.0.0.1:0";
  o.metrics_listen = "";
  o.store_url = "sqlite://" + dir + "/s.db";
  auto controller = Controller::Start(o);
  ASSERT_TRUE(controller.ok()) << controller.status();
  const std::string target = absl::StrCat("127.0.0.1:", (*controller)->port());

  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto jobs = v1::JobService::NewStub(channel);
  v1::Job job;
  {
    grpc::ClientContext ctx;
    v1::SubmitJobRequest req;
    req.set_spec_yaml(kSpec);
    grpc::Status s = jobs->SubmitJob(&ctx, req, &job);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  ChannelOptions co;
  co.target = target;
  auto client = NewGrpcControllerClient(co);
  ASSERT_TRUE(client.ok()) << client.status();
  auto trainer = NewTorchTrainer({});
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  WorkerOptions wo;
  wo.worker_id = "w-tower";
  wo.hardware.set_name("cpu-1t");
  wo.hardware.set_threads(1);
  WorkerLoop loop(client->get(), trainer->get(), wo, nullptr);
  absl::Status run;
  std::thread th([&] { run = loop.Run(); });
  {
    testing::Watched watched = testing::WatchUntilEnd(*jobs, job.id(), 300);
    EXPECT_TRUE(watched.status.ok()) << watched.status.error_message();
    job = watched.job;
  }
  loop.Stop();
  th.join();
  EXPECT_TRUE(run.ok()) << run;
  EXPECT_EQ(job.state(), v1::JOB_SUCCEEDED);

  grpc::ClientContext ctx;
  v1::ListCandidatesRequest lr;
  lr.set_job_id(job.id());
  v1::ListCandidatesResponse cands;
  ASSERT_TRUE(jobs->ListCandidates(&ctx, lr, &cands).ok());
  ASSERT_EQ(cands.trials_size(), 4);  // the whole space, each architecture once
  std::set<std::string> hashes;
  for (const auto& t : cands.trials()) {
    EXPECT_EQ(t.state(), v1::TRIAL_SUCCEEDED) << t.error();
    EXPECT_EQ(t.architecture().custom().kind(), "tower");
    hashes.insert(t.arch_hash());
    EXPECT_GT(t.metrics().at("accuracy"), 0.5);  // real learning: chance is 0.1
    EXPECT_EQ(t.metrics().at("params"), ComputeCost(t.architecture()).params);
    EXPECT_EQ(t.metrics().at("macs"), ComputeCost(t.architecture()).macs);
  }
  EXPECT_EQ(hashes.size(), 4u);
  (*controller)->Shutdown();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace nasforge
