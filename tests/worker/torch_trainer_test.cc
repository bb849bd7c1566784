// The LibTorch builder against the analytic cost model, and real training on real data.
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "core/compression.h"
#include "core/cost.h"
#include "core/jobspec.h"
#include "core/search_space.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"
#include "worker/trainer.h"

namespace nasforge {
namespace {

using testing::LoadSmallSpace;

TEST(TorchBuilderTest, BuiltModulesMatchTheAnalyticCountExactly) {
  v1::SearchSpace space = LoadSmallSpace();
  for (uint64_t i = 0; i < 60; ++i) {
    v1::Architecture a = SampleArchitecture(space, MixSeed(11, i));
    // Vary what the shipped space fixes, too.
    if (i % 3 == 1) a.mutable_mbconv()->set_activation("relu6");
    if (i % 4 == 2) a.mutable_mbconv()->set_stem_stride(2);
    if (i % 5 == 3) a.mutable_mbconv()->mutable_stages(0)->set_se_ratio(0.5);
    auto counted = CountBuiltModel(a);
    ASSERT_TRUE(counted.ok()) << counted.status();
    ArchCost c = ComputeCost(a);
    EXPECT_EQ(counted->params, c.params) << CanonicalEncoding(a);
    EXPECT_EQ(counted->macs, c.macs) << CanonicalEncoding(a);
  }
}

// Every reference architecture builds; module parameters equal the analytic count and the
// published figure; the forward pass gives [batch, classes].
TEST(TorchBuilderTest, ReferenceArchitecturesBuildWithTheirPublishedCounts) {
  for (const std::string f :
       {"efficientnet_b0.yaml", "mobilenet_v2.yaml", "resnet18.yaml", "resnet50.yaml",
        "convnext_tiny.yaml", "nb201_best.yaml", "nb201_resnet_like.yaml"}) {
    v1::Architecture a = testing::LoadReference(f);
    auto counted = CountBuiltModel(a, /*batch=*/2);
    ASSERT_TRUE(counted.ok()) << f << ": " << counted.status();
    ArchCost c = ComputeCost(a);
    EXPECT_EQ(counted->params, c.params) << f;
    EXPECT_EQ(counted->macs, c.macs) << f;
    InputShape in = ArchInputShape(a);
    EXPECT_EQ(counted->output_shape, (std::vector<int64_t>{2, in.num_classes})) << f;
  }
}

// A sample of every shipped space builds with matching counts and output shape.
TEST(TorchBuilderTest, SamplesOfEverySpaceBuildWithMatchingCounts) {
  for (const auto& file : testing::ShippedSpaceFiles()) {
    v1::SearchSpace space = testing::LoadSpace(file);
    const bool big = SpaceInputShape(space).height >= 200;
    const int n = big ? 2 : 8;  // ImageNet-scale forward passes are slow on one core
    for (int i = 0; i < n; ++i) {
      v1::Architecture a = SampleArchitecture(space, MixSeed(5, i));
      auto counted = CountBuiltModel(a, /*batch=*/2);
      ASSERT_TRUE(counted.ok()) << file << ": " << counted.status();
      ArchCost c = ComputeCost(a);
      EXPECT_EQ(counted->params, c.params) << file << " " << CanonicalEncoding(a);
      EXPECT_EQ(counted->macs, c.macs) << file << " " << CanonicalEncoding(a);
      EXPECT_EQ(counted->output_shape,
                (std::vector<int64_t>{2, SpaceInputShape(space).num_classes}))
          << file;
    }
  }
}

TrainRequest SmallRequest(const std::string& dataset) {
  v1::SearchSpace space = LoadSmallSpace();
  TrainRequest r;
  r.architecture = SampleArchitecture(space, 5);
  r.training.set_dataset(dataset);
  r.training.set_train_examples(3000);
  r.training.set_validation_examples(1000);
  r.training.set_test_examples(1000);
  r.training.set_batch_size(100);
  r.training.set_learning_rate(0.004);
  r.epochs = 2;
  r.seed = 1;
  r.split_seed = 2;
  return r;
}

TEST(TorchTrainerTest, TrainsOnRealFashionMnistAndMeasures) {
  auto trainer = NewTorchTrainer({}).value();
  std::vector<EpochReport> epochs;
  std::atomic<bool> abort{false};
  auto r = trainer->Train(
      SmallRequest("fashion-mnist"),
      [&](const EpochReport& e) {
        epochs.push_back(e);
        return Verdict::kContinue;
      },
      abort);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(epochs.size(), 2u);
  EXPECT_EQ(epochs[0].epoch, 1);
  EXPECT_EQ(epochs[0].images, 3000);
  // Real learning: far above the 10% of chance after 6,000 images.
  EXPECT_GT(r->metrics.at("accuracy"), 0.6);
  EXPECT_GT(r->metrics.at("test_accuracy"), 0.6);
  EXPECT_LT(epochs[1].train_loss, epochs[0].train_loss);
  EXPECT_EQ(r->metrics.at("macs"), ComputeCost(SmallRequest("x").architecture).macs);
  EXPECT_GT(r->metrics.at("latency_ms"), 0);
  EXPECT_LE(r->metrics.at("latency_ms"), r->metrics.at("latency_p90_ms"));
  EXPECT_LE(r->metrics.at("latency_p90_ms"), r->metrics.at("latency_p99_ms"));
  EXPECT_GT(r->metrics.at("peak_memory_bytes"), 1e6);
  EXPECT_FALSE(r->stopped_early);
}

// Every small-image space kind trains on real Fashion-MNIST through the same trainer.
TEST(TorchTrainerTest, EveryKindTrainsOnRealData) {
  auto trainer = NewTorchTrainer({}).value();
  std::atomic<bool> abort{false};
  for (const std::string file : {"resnet_small.yaml", "convnext_small.yaml",
                                 "nb201_fashion_mnist.yaml", "mlp_tabular.yaml"}) {
    TrainRequest req = SmallRequest("fashion-mnist");
    req.architecture = SampleArchitecture(testing::LoadSpace(file), 3);
    req.epochs = 1;
    auto r = trainer->Train(
        req, [](const EpochReport&) { return Verdict::kContinue; }, abort);
    ASSERT_TRUE(r.ok()) << file << ": " << r.status();
    EXPECT_GT(r->metrics.at("accuracy"), 0.4) << file;  // chance is 0.1
    EXPECT_EQ(r->metrics.at("params"), ComputeCost(req.architecture).params) << file;
  }
}

// int8 post-training quantization of a trained candidate of every kind: the loaded, folded fp32
// network scores exactly what training reported on the same split; the int8 twin stays close
// and stores a third or less.
TEST(TorchTrainerTest, Int8VariantOfATrainedCandidateOfEveryKind) {
  auto trainer = NewTorchTrainer({}).value();
  std::atomic<bool> abort{false};
  for (const std::string file : {"mbconv_small.yaml", "resnet_small.yaml", "convnext_small.yaml",
                                 "nb201_fashion_mnist.yaml", "mlp_tabular.yaml"}) {
    TrainRequest req = SmallRequest("fashion-mnist");
    req.architecture = SampleArchitecture(testing::LoadSpace(file), 3);
    req.epochs = 1;
    auto r = trainer->Train(
        req, [](const EpochReport&) { return Verdict::kContinue; }, abort);
    ASSERT_TRUE(r.ok()) << file << ": " << r.status();
    QuantizeRequest q;
    q.architecture = req.architecture;
    q.training = req.training;
    q.weights = r->weights;
    q.calibration_batches = 4;
    q.split_seed = req.split_seed;
    auto v = trainer->Quantize(q);
    ASSERT_TRUE(v.ok()) << file << ": " << v.status();
    const auto& m = v->metrics;
    EXPECT_DOUBLE_EQ(m.at("fp32_accuracy"), r->metrics.at("accuracy")) << file;
    EXPECT_DOUBLE_EQ(m.at("fp32_test_accuracy"), r->metrics.at("test_accuracy")) << file;
    EXPECT_NEAR(m.at("accuracy"), m.at("fp32_accuracy"), 0.03) << file;
    EXPECT_NEAR(m.at("test_accuracy"), m.at("fp32_test_accuracy"), 0.03) << file;
    EXPECT_LT(m.at("size_bytes"), m.at("fp32_size_bytes") / 3) << file;
    EXPECT_GT(m.at("int8_layers"), 0) << file;
    // On the real int8 engine (a CPU trainer): the same network up to requantization, and both
    // latencies measured.
    EXPECT_EQ(m.at("int8_engine_layers"), m.at("int8_layers")) << file;
    EXPECT_NEAR(m.at("int8_engine_accuracy"), m.at("accuracy"), 0.03) << file;
    EXPECT_GT(m.at("latency_ms"), 0) << file;
    EXPECT_GT(m.at("fp32_latency_ms"), 0) << file;
  }
  // Weights of another architecture are refused, naming the tensor.
  TrainRequest req = SmallRequest("fashion-mnist");
  req.epochs = 1;
  auto r = trainer->Train(
      req, [](const EpochReport&) { return Verdict::kContinue; }, abort);
  ASSERT_TRUE(r.ok()) << r.status();
  QuantizeRequest q;
  q.architecture = SampleArchitecture(testing::LoadSpace("resnet_small.yaml"), 3);
  q.training = req.training;
  q.weights = r->weights;
  auto v = trainer->Quantize(q);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(v.status().message()), ::testing::HasSubstr("weights: "));
  q.weights = "not a pickle";
  EXPECT_EQ(trainer->Quantize(q).status().code(), absl::StatusCode::kInvalidArgument);
}

// Structured pruning of a trained candidate of every kind: the copy loads and scores on the
// parent's split (the loaded parent scores what training reported), the pruned network is the
// smaller architecture's own (its counts), and fine-tuning starts from the copied weights:
// with no fine-tuning epochs it scores exactly what the copy scored.
TEST(TorchTrainerTest, PrunedVariantOfATrainedCandidateOfEveryKind) {
  auto trainer = NewTorchTrainer({}).value();
  std::atomic<bool> abort{false};
  const auto go_on = [](const EpochReport&) { return Verdict::kContinue; };
  int pruned = 0;
  for (const std::string file : {"mbconv_small.yaml", "resnet_small.yaml", "convnext_small.yaml",
                                 "nb201_fashion_mnist.yaml", "mlp_tabular.yaml"}) {
    for (uint64_t seed = 3; seed < 8; ++seed) {
      TrainRequest req = SmallRequest("fashion-mnist");
      req.architecture = SampleArchitecture(testing::LoadSpace(file), seed);
      auto child = PrunedArchitecture(req.architecture, 0.5);
      if (!child.ok()) continue;  // widths that rounding would merge: another sample
      ++pruned;
      req.epochs = 1;
      auto r = trainer->Train(req, go_on, abort);
      ASSERT_TRUE(r.ok()) << file << ": " << r.status();
      PruneRequest p;
      p.parent_architecture = req.architecture;
      p.architecture = *child;
      p.training = req.training;
      p.weights = r->weights;
      p.split_seed = req.split_seed;
      auto v = trainer->Prune(p);
      ASSERT_TRUE(v.ok()) << file << ": " << v.status();
      const auto& m = v->metrics;
      EXPECT_DOUBLE_EQ(m.at("parent_accuracy"), r->metrics.at("accuracy")) << file;
      EXPECT_LT(m.at("size_bytes"), m.at("parent_size_bytes") * 0.6) << file;
      EXPECT_GE(m.at("pruned_accuracy"), 0.0) << file;
      EXPECT_LT(m.at("channels_kept_fraction"), 0.6) << file;

      TrainRequest as_is = req;
      as_is.architecture = *child;
      as_is.initial_weights = v->weights;
      as_is.epochs = 0;
      auto copy = trainer->Train(as_is, go_on, abort);
      ASSERT_TRUE(copy.ok()) << file << ": " << copy.status();
      EXPECT_DOUBLE_EQ(copy->metrics.at("accuracy"), m.at("pruned_accuracy")) << file;
      EXPECT_EQ(copy->metrics.at("macs"), static_cast<double>(ComputeCost(*child).macs)) << file;
      EXPECT_LT(copy->metrics.at("macs"), r->metrics.at("macs") * 0.5) << file;

      TrainRequest tune = as_is;
      tune.epochs = 1;
      auto tuned = trainer->Train(tune, go_on, abort);
      ASSERT_TRUE(tuned.ok()) << file << ": " << tuned.status();
      EXPECT_GT(tuned->metrics.at("accuracy"), 0.3) << file;
      break;  // one network per kind
    }
  }
  EXPECT_EQ(pruned, 5) << "a prunable sample of every kind";
}

// Distillation: the teacher as loaded scores what its training reported; with a negligible
// teacher weight the student trains exactly as its control does (the same batches, augmentation
// and initialisation: building the teacher takes nothing from the run's random numbers); with
// a real weight the student learns from the teacher.
TEST(TorchTrainerTest, ADistilledStudentTrainsTheBatchesOfItsControl) {
  auto trainer = NewTorchTrainer({}).value();
  std::atomic<bool> abort{false};
  const auto go_on = [](const EpochReport&) { return Verdict::kContinue; };
  TrainRequest teach = SmallRequest("fashion-mnist");
  teach.training.set_augment(true);
  auto teacher = trainer->Train(teach, go_on, abort);
  ASSERT_TRUE(teacher.ok()) << teacher.status();

  TrainRequest student = teach;
  student.architecture = SampleArchitecture(testing::LoadSpace("mbconv_small.yaml"), 11);
  student.seed = 9;
  std::vector<double> losses;
  const auto record = [&](const EpochReport& e) {
    losses.push_back(e.train_loss);
    return Verdict::kContinue;
  };
  auto control = trainer->Train(student, record, abort);
  ASSERT_TRUE(control.ok()) << control.status();
  EXPECT_EQ(control->metrics.count("teacher_accuracy"), 0u);

  student.teacher = TrainRequest::Teacher{teach.architecture, teacher->weights, 1e-9, 4};
  auto faint = trainer->Train(student, record, abort);
  ASSERT_TRUE(faint.ok()) << faint.status();
  EXPECT_DOUBLE_EQ(faint->metrics.at("teacher_accuracy"), teacher->metrics.at("accuracy"));
  // The first epoch's mean loss over the same batches: equal to float precision (other batches
  // differ in the third digit).
  ASSERT_EQ(losses.size(), 4u);
  EXPECT_NEAR(losses[2], losses[0], 1e-5 * losses[0]);
  EXPECT_NEAR(faint->metrics.at("accuracy"), control->metrics.at("accuracy"), 0.01);

  student.teacher->alpha = 0.9;
  auto taught = trainer->Train(student, go_on, abort);
  ASSERT_TRUE(taught.ok()) << taught.status();
  EXPECT_GT(taught->metrics.at("accuracy"), 0.5);
}

// Trains `req` to its end; the result and the last epoch's training loss.
std::pair<absl::StatusOr<TrainResult>, double> TrainToEnd(Trainer& trainer,
                                                          const TrainRequest& req) {
  std::atomic<bool> abort{false};
  double loss = 0;
  auto r = trainer.Train(
      req,
      [&](const EpochReport& e) {
        loss = e.train_loss;
        return Verdict::kContinue;
      },
      abort);
  return {std::move(r), loss};
}

// Augmented training (flips and shifts drawn per image) learns, and it changes what is
// learned: the same seed without augmentation ends with a different loss.
TEST(TorchTrainerTest, AugmentedTrainingLearnsAndDiffersFromPlain) {
  auto trainer = NewTorchTrainer({}).value();
  auto run = [&](bool augment) {
    TrainRequest req = SmallRequest("fashion-mnist");
    req.training.set_augment(augment);
    auto [r, loss] = TrainToEnd(*trainer, req);
    EXPECT_TRUE(r.ok()) << r.status();
    return std::make_pair(r.ok() ? r->metrics.at("accuracy") : 0.0, loss);
  };
  auto [acc, loss] = run(true);
  auto [plain_acc, plain_loss] = run(false);
  EXPECT_GT(acc, 0.5) << "without augmentation: " << plain_acc;  // chance is 0.1
  EXPECT_NE(loss, plain_loss);
}

// A candidate's hyperparameters are the recipe it trains with: SGD with Nesterov momentum, a
// one-cycle schedule, label smoothing and dropout learn on real data, and change what is learned;
// a name the trainer does not bind fails the trial naming the field.
TEST(TorchTrainerTest, ACandidatesHyperparametersAreItsRecipe) {
  auto trainer = NewTorchTrainer({}).value();
  auto run = [&](const std::vector<std::pair<std::string, std::string>>& params) {
    TrainRequest req = SmallRequest("fashion-mnist");
    for (const auto& [name, value] : params) {
      auto* v = req.architecture.mutable_params()->add_values();
      v->set_name(name);
      double x;
      if (absl::SimpleAtod(value, &x)) {
        v->set_number(x);
      } else {
        v->set_text(value);
      }
    }
    return TrainToEnd(*trainer, req);
  };
  auto [sgd, sgd_loss] = run({{"optimizer", "sgd"},
                              {"learning_rate", "0.05"},
                              {"momentum", "0.9"},
                              {"nesterov", "on"},
                              {"schedule", "onecycle"},
                              {"label_smoothing", "0.1"},
                              {"dropout", "0.2"},
                              {"batch_size", "64"}});
  ASSERT_TRUE(sgd.ok()) << sgd.status();
  EXPECT_GT(sgd->metrics.at("accuracy"), 0.6);  // chance is 0.1
  auto [plain, plain_loss] = run({});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_NE(sgd_loss, plain_loss);
  auto [bad, bad_loss] = run({{"colour", "red"}});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()),
              ::testing::HasSubstr("architecture.params[colour]: the built-in trainer has no "
                                   "parameter 'colour'"));
}

TEST(TorchTrainerTest, StopVerdictEndsEarlyAndAbortReturnsAborted) {
  auto trainer = NewTorchTrainer({}).value();
  std::atomic<bool> abort{false};
  TrainRequest req = SmallRequest("synthetic");
  req.epochs = 5;
  int calls = 0;
  auto r = trainer->Train(
      req, [&](const EpochReport&) { return ++calls == 1 ? Verdict::kStop : Verdict::kContinue; },
      abort);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->stopped_early);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(r->metrics.at("epochs"), 1);
  abort = true;
  auto aborted = trainer->Train(
      req, [](const EpochReport&) { return Verdict::kContinue; }, abort);
  EXPECT_EQ(aborted.status().code(), absl::StatusCode::kAborted);
}

TEST(TorchTrainerTest, MismatchedChannelsAreAClearErrorOtherResolutionsAreResized) {
  auto trainer = NewTorchTrainer({}).value();
  std::atomic<bool> abort{false};
  TrainRequest req = SmallRequest("synthetic");
  req.epochs = 1;
  req.architecture.mutable_mbconv()->set_in_channels(3);
  auto r = trainer->Train(
      req, [](const EpochReport&) { return Verdict::kContinue; }, abort);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), ::testing::HasSubstr("expects 3x28x28 inputs"));
  // A 32x32 model trains on the 28x28 images, resized; its cost is the 32x32 one.
  req.architecture.mutable_mbconv()->set_in_channels(1);
  req.architecture.mutable_mbconv()->set_resolution(32);
  r = trainer->Train(
      req, [](const EpochReport&) { return Verdict::kContinue; }, abort);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->metrics.at("macs"), ComputeCost(req.architecture).macs);
  // (That resized inputs learn is shown on real data by the compound-scaling e2e test.)
}

}  // namespace
}  // namespace nasforge
