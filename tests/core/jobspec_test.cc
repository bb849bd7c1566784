#include "core/jobspec.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "core/search_space.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;
using testing::ReadExampleJob;

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  auto p = s.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  return s.replace(p, from.size(), to);
}

TEST(JobSpecTest, ExampleParsesWithDefaults) {
  auto spec = ParseJobSpecYaml(ReadExampleJob());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->budget().max_trials(), 12);
  EXPECT_EQ(spec->budget().max_attempts(), 3);  // default
  EXPECT_EQ(spec->objectives(0).direction(), v1::MAXIMIZE);
  EXPECT_EQ(spec->search_space().mbconv().stages_size(), 3);
  EXPECT_EQ(spec->lease_seconds(), 60);
}

TEST(JobSpecTest, UnknownFieldIsNamed) {
  auto spec = ParseJobSpecYaml(Replace(ReadExampleJob(), "max_trials:", "max_trails:"));
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(spec.status().message(), HasSubstr("max_trails"));
}

TEST(JobSpecTest, WrongTypeIsNamed) {
  auto spec = ParseJobSpecYaml(Replace(ReadExampleJob(), "epochs: 3", "epochs: two"));
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(spec.status().message(), HasSubstr("epochs"));
}

TEST(JobSpecTest, SemanticErrorsCarryFieldPaths) {
  auto spec = ParseJobSpecYaml(Replace(ReadExampleJob(), "max_trials: 12", "max_trials: 0"));
  EXPECT_THAT(spec.status().message(), HasSubstr("budget.max_trials: 0 must be >= 1"));
  spec = ParseJobSpecYaml(Replace(ReadExampleJob(), "kernel: [3, 5, 7]", "kernel: [3, 4]"));
  EXPECT_THAT(spec.status().message(),
              HasSubstr("search_space.mbconv.stages[1].kernel: 4 is not odd"));
  spec = ParseJobSpecYaml(
      Replace(ReadExampleJob(), "metric: macs\n    direction", "metric: flops\n    direction"));
  EXPECT_THAT(spec.status().message(), HasSubstr("objectives[1].metric: unknown metric 'flops'"));
  spec = ParseJobSpecYaml(Replace(ReadExampleJob(), "name: random", "name: genetic"));
  EXPECT_THAT(spec.status().message(), HasSubstr("strategy.name: 'genetic' is not one of bo, bohb, "
                                                 "compound_scaling, evolution, nsga2, random"));
}

TEST(JobSpecTest, SpecMustFitTheDataSet) {
  auto spec = ParseJobSpecYaml(Replace(ReadExampleJob(), "in_channels: 1", "in_channels: 3"));
  EXPECT_THAT(spec.status().message(),
              HasSubstr("search_space.mbconv.in_channels: 3: fashion-mnist images have 1 channel"));
  // Another resolution is fine: the worker resizes the images.
  EXPECT_TRUE(ParseJobSpecYaml(Replace(ReadExampleJob(), "resolution: 28", "resolution: 32")).ok());
  spec =
      ParseJobSpecYaml(Replace(ReadExampleJob(), "train_examples: 15000", "train_examples: 58000"));
  EXPECT_THAT(spec.status().message(), HasSubstr("training.train_examples"));
  spec = ParseJobSpecYaml(Replace(ReadExampleJob(), "dataset: fashion-mnist", "dataset: cifar10"));
  EXPECT_THAT(spec.status().message(), HasSubstr("training.dataset: 'cifar10' is not one of"));
}

TEST(JobSpecTest, YamlSyntaxErrorGivesLine) {
  auto spec = ParseJobSpecYaml("name: x\nbudget: [1, 2\n");
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(spec.status().message(), HasSubstr("line"));
}

TEST(JobSpecTest, QuotedNumbersStayStrings) {
  auto spec =
      ParseJobSpecYaml(Replace(ReadExampleJob(), "name: fashion-mnist-quick", "name: \"123\""));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name(), "123");
}

TEST(JobSpecTest, DuplicateKeysAreRefusedWithTheirLine) {
  auto spec = ParseJobSpecYaml("name: a\nname: b\n");
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(spec.status().message(), HasSubstr("line 2: duplicate key 'name'"));
}

TEST(JobSpecTest, AliasExpansionIsBounded) {
  // "Billion laughs" within the schema (a spec with unknown keys is refused before expanding
  // anything): 80 KB of aliases to one stage that stands for 40 nodes, 20,000 times.
  std::string y =
      "search_space:\n  mbconv:\n    stem_channels: &a [8, 8, 8, 8, 8, 8, 8, 8, 8, 8]\n"
      "    stages: [&s {kernel: *a, expansion: *a, repeats: *a, channels: *a}";
  for (int i = 0; i < 20000; ++i) y += ", *s";
  y += "]\n";
  auto spec = ParseJobSpecYaml(y);
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(spec.status().message(), HasSubstr("YAML nodes once aliases are expanded"));
  // Unknown keys are refused before their values are looked at.
  std::string unknown = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'i'; ++c) {
    const std::string prev(1, static_cast<char>(c - 1));
    unknown += absl::StrCat(std::string(1, c), ": &", std::string(1, c), " [*", prev, ", *", prev,
                            ", *", prev, ", *", prev, ", *", prev, "]\n");
  }
  EXPECT_THAT(ParseJobSpecYaml(unknown).status().message(), HasSubstr("unknown field 'a'"));
}

TEST(JobSpecTest, DeepNestingAndHugeSpecsAreRefused) {
  std::string deep = "name: " + std::string(200, '[') + std::string(200, ']') + "\n";
  auto spec = ParseJobSpecYaml(deep);
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  std::string big = "name: \"" + std::string(2 << 20, 'x') + "\"\n";
  spec = ParseJobSpecYaml(big);
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(spec.status().message(), HasSubstr("bytes"));
}

TEST(JobSpecTest, NanAndInfinityAreRefusedInEveryNumericField) {
  for (const char* v : {"NaN", "nan", ".nan", "inf", ".inf", "-Infinity", "Infinity", "1e999"}) {
    auto spec = ParseJobSpecYaml(
        Replace(ReadExampleJob(), "learning_rate: 0.004", absl::StrCat("learning_rate: ", v)));
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument) << v;
    EXPECT_THAT(spec.status().message(), HasSubstr("learning_rate")) << v;
  }
  v1::JobSpec direct = ParseJobSpecYaml(ReadExampleJob()).value();
  direct.add_constraints()->set_metric("macs");
  direct.mutable_constraints(0)->set_upper(std::nan(""));
  absl::Status st = ValidateJobSpec(direct);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("constraints[0].upper"));
}

// External data (trained by the user's own code): the space says the shapes, no image checks.
TEST(JobSpecTest, ExternalDatasetTakesTheSpacesShapes) {
  std::string y = Replace(ReadExampleJob(), "dataset: fashion-mnist", "dataset: External");
  y = Replace(y, "in_channels: 1", "in_channels: 3");
  auto spec = ParseJobSpecYaml(y);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->training().dataset(), "external");
  EXPECT_EQ(spec->accuracy_scale(), v1::FRACTION);
  auto bad = ParseJobSpecYaml(Replace(ReadExampleJob(), "dataset: fashion-mnist", "dataset: x"));
  EXPECT_THAT(bad.status().message(), HasSubstr("synthetic, tabular, idx, cifar, npy, external"));
}

// The user's files: a relative path under the workers' --data-root, normalisation per channel,
// crops in range; no image-count checks (the controller never sees the files).
TEST(JobSpecTest, FileDatasetsNeedASafePathAndFittingOptions) {
  std::string y = Replace(ReadExampleJob(), "dataset: fashion-mnist", "dataset: CIFAR");
  y = Replace(y, "in_channels: 1", "in_channels: 3");
  auto missing = ParseJobSpecYaml(y);
  EXPECT_THAT(missing.status().message(), HasSubstr("training.data_path: is required"));
  y = Replace(y, "dataset: CIFAR",
              "dataset: cifar\n  data_path: cifar-10-batches-bin\n"
              "  mean: [0.49, 0.48, 0.45]\n  std: [0.25, 0.24, 0.26]\n"
              "  random_crop_padding: 4\n  horizontal_flip: true");
  auto ok = ParseJobSpecYaml(y);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->training().dataset(), "cifar");
  for (const auto& [from, to, field] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"data_path: cifar-10-batches-bin", "data_path: /etc", "training.data_path: '/etc'"},
           {"data_path: cifar-10-batches-bin", "data_path: a/../../b", "may not contain '..'"},
           {"std: [0.25, 0.24, 0.26]", "std: [0.25, 0.24]", "training.std: has 2 values"},
           {"mean: [0.49, 0.48, 0.45]\n  std: [0.25, 0.24, 0.26]",
            "mean: [0.5, 0.5]\n  std: [0.2, 0.2]", "training.mean: has 2 values"},
           {"std: [0.25, 0.24, 0.26]", "std: [0.25, 0, 0.26]", "training.std[1]: must be > 0"},
           {"random_crop_padding: 4", "random_crop_padding: 65", "training.random_crop_padding"},
       }) {
    auto bad = ParseJobSpecYaml(Replace(y, from, to));
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << to;
    EXPECT_THAT(bad.status().message(), HasSubstr(field)) << to;
  }
  auto stray = ParseJobSpecYaml(Replace(ReadExampleJob(), "dataset: fashion-mnist",
                                        "dataset: fashion-mnist\n  data_path: x"));
  EXPECT_THAT(stray.status().message(), HasSubstr("training.data_path: is only for idx"));
}

TEST(JobSpecTest, TabularJobsAreValidatedToo) {
  const char* y =
      "search_space: {nb201: {}}\n"
      "budget: {max_trials: 5}\n"
      "training: {dataset: tabular}\n"
      "lease_seconds: -100\n";
  auto spec = ParseJobSpecYaml(y);
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(spec.status().message(), HasSubstr("lease_seconds"));
  auto ok = ParseJobSpecYaml(Replace(y, "lease_seconds: -100", "lease_seconds: 30"));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->accuracy_scale(), v1::PERCENT) << "benchmark tables report percent";
}

TEST(JobSpecTest, FuzzFindingsStayFixed) {
  // fuzz/jobspec_fuzzer: invalid UTF-8 in a value threw out of the JSON step (a crash).
  auto spec = ParseJobSpecYaml("name: \"\xff\xfe\"\n");
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(spec.status().message(), HasSubstr("UTF-8"));
  // fuzz/space_fuzzer: se_ratio: nan passed the range check of a search space.
  v1::SearchSpace space;
  ASSERT_TRUE(YamlToMessage("mbconv: {resolution: 28, in_channels: 1, num_classes: 10, "
                            "stem_channels: [8], stages: [{stride: 1, kernel: [3], "
                            "expansion: [1], repeats: [1], channels: [8], se_ratio: [0.25]}]}",
                            &space)
                  .ok());
  ASSERT_TRUE(ValidateSearchSpace(space, "search_space").ok());
  space.mutable_mbconv()->mutable_stages(0)->set_se_ratio(0, std::nan(""));
  absl::Status st = ValidateSearchSpace(space, "search_space");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("se_ratio"));
}

}  // namespace
}  // namespace nasforge

namespace nasforge {
namespace {

TEST(JobSpecHardwareTargets, TheExampleParsesWithDefaultsAndTargetMetrics) {
  auto spec = ParseJobSpecYaml(
      testing::ReadSourceFile("search_spaces/examples/fashion_mnist_latency_targets.yaml"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->hardware_targets_size(), 2);
  EXPECT_EQ(spec->hardware_targets(0).name(), "cpu-1t");  // defaults to the profile
  EXPECT_EQ(spec->hardware_targets(1).name(), "batch32");
  EXPECT_EQ(spec->hardware_targets(1).batch_size(), 32);
  EXPECT_EQ(spec->objectives(1).metric(), "latency_ms@cpu-1t");
}

TEST(JobSpecCompression, TheExampleParsesWithItsRecipes) {
  auto spec = ParseJobSpecYaml(
      testing::ReadSourceFile("search_spaces/examples/fashion_mnist_compress.yaml"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  const auto& r = spec->compression().recipes();
  ASSERT_EQ(r.size(), 3);
  EXPECT_EQ(r[0].name(), "int8");  // defaults to the kind
  EXPECT_EQ(r[0].int8().calibration_batches(), 8);
  EXPECT_EQ(r[0].int8().tolerance(), 1.0);
  EXPECT_EQ(r[1].name(), "prune");
  EXPECT_EQ(r[1].prune().ratio(), 0.5);
  EXPECT_EQ(r[1].prune().epochs(), 1);
  EXPECT_EQ(r[2].name(), "distill-prune");
  EXPECT_EQ(r[2].distill().student(), "prune");
  EXPECT_EQ(r[2].distill().teacher(), "best");
}

TEST(JobSpecCompression, DefaultsFollowTheBudget) {
  auto spec = ParseJobSpecYaml(R"(
budget: {max_trials: 4, epochs: 9}
search_space: {mbconv: {resolution: 28, in_channels: 1, num_classes: 10, stem_channels: [16],
               stages: [{kernel: [3], expansion: [1], repeats: [1], channels: [16],
                         se_ratio: [0], stride: 1}]}}
compression: {recipes: [{prune: {}}, {distill: {}}]}
)");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const auto& r = spec->compression().recipes();
  EXPECT_EQ(r[0].prune().ratio(), 0.5);
  EXPECT_EQ(r[0].prune().epochs(), 3);  // a third of 9
  EXPECT_EQ(r[1].distill().epochs(), 9);
  EXPECT_EQ(r[1].distill().alpha(), 0.5);
  EXPECT_EQ(r[1].distill().temperature(), 4);
  EXPECT_EQ(r[1].distill().teacher(), "best");
}

TEST(JobSpecHardwareTargets, BadTargetsNameTheField) {
  const std::string base =
      testing::ReadSourceFile("search_spaces/examples/fashion_mnist_latency_targets.yaml");
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = base;
    size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) s.replace(at, from.size(), to);
    return ParseJobSpecYaml(s).status();
  };
  EXPECT_THAT(with("batch_size: 32", "batch_size: 100000").message(),
              HasSubstr("hardware_targets[1].batch_size"));
  EXPECT_THAT(with("threads: 2", "threads: -1").message(),
              HasSubstr("hardware_targets[1].threads"));
  EXPECT_THAT(with("name: batch32", "name: \"a b\"").message(),
              HasSubstr("hardware_targets[1].name"));
  EXPECT_THAT(
      with("metric: latency_ms@cpu-1t   # checked", "metric: latency_ms@gpu   # checked").message(),
      HasSubstr("constraints[0].metric"));
  EXPECT_THAT(with("metric: latency_ms@cpu-1t   # the p50", "metric: latency_mean@cpu-1t   # the")
                  .message(),
              HasSubstr("objectives[1].metric"));
}

}  // namespace
}  // namespace nasforge

namespace nasforge {
namespace {

TEST(JobSpecYamlTest, AnUnknownKeyNamesItsLineAndTheNearestField) {
  auto spec = ParseJobSpecYaml(Replace(ReadExampleJob(), "max_trials:", "max_trails:"));
  ASSERT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(spec.status().message(), HasSubstr("line 9, column 3: budget: unknown field "
                                                 "'max_trails' in Budget; did you mean "
                                                 "'max_trials'?"));
  auto far = ParseJobSpecYaml("budget: {max_trials: 3, colour: red}\n");
  EXPECT_THAT(far.status().message(), HasSubstr("known: max_trials, max_parallel_trials"));
}

TEST(JobSpecYamlTest, WrongTypesNameTheLineColumnAndPath) {
  auto epochs = ParseJobSpecYaml(Replace(ReadExampleJob(), "epochs: 3", "epochs: two"));
  EXPECT_THAT(epochs.status().message(),
              HasSubstr("line 11, column 11: budget.epochs: 'two' is not a whole number"));
  auto lr =
      ParseJobSpecYaml(Replace(ReadExampleJob(), "learning_rate: 0.004", "learning_rate: fast"));
  EXPECT_THAT(lr.status().message(), HasSubstr("training.learning_rate: 'fast' is not a number"));
  auto list = ParseJobSpecYaml(Replace(ReadExampleJob(), "kernel: [3, 5]", "kernel: 3"));
  EXPECT_THAT(list.status().message(),
              HasSubstr("search_space.mbconv.stages[0].kernel: expected a list"));
  auto nested = ParseJobSpecYaml(Replace(ReadExampleJob(), "name: random", "name: [random]"));
  EXPECT_THAT(nested.status().message(), HasSubstr("strategy.name: expected a single value"));
}

TEST(JobSpecYamlTest, EnumsAndNamesAreCaseInsensitiveAndPrefixesWork) {
  std::string y = ReadExampleJob();
  y = Replace(y, "direction: MAXIMIZE", "direction: max");
  y = Replace(y, "direction: MINIMIZE", "direction: Minimize");
  y = Replace(y, "name: random", "name: REA");
  y = Replace(y, "dataset: fashion-mnist", "dataset: Fashion-MNIST");
  auto spec = ParseJobSpecYaml(y + "accuracy_scale: fraction\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->objectives(0).direction(), v1::MAXIMIZE);
  EXPECT_EQ(spec->objectives(1).direction(), v1::MINIMIZE);
  EXPECT_EQ(spec->strategy().name(), "evolution");
  EXPECT_EQ(spec->training().dataset(), "fashion-mnist");
  EXPECT_EQ(spec->accuracy_scale(), v1::FRACTION);
  auto bad = ParseJobSpecYaml(Replace(ReadExampleJob(), "direction: MAXIMIZE", "direction: up"));
  EXPECT_THAT(bad.status().message(),
              HasSubstr("objectives[0].direction: 'up' is not one of MAXIMIZE, MINIMIZE"));
}

TEST(JobSpecYamlTest, FriendlyNumbersAndCamelCaseKeysAreRead) {
  auto spec =
      ParseJobSpecYaml(Replace(Replace(ReadExampleJob(), "max_trials: 12", "maxTrials: 1.2e1"),
                               "train_examples: 15000", "train_examples: \"15000\""));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->budget().max_trials(), 12);
  EXPECT_EQ(spec->training().train_examples(), 15000);
}

}  // namespace
}  // namespace nasforge
