#include "core/jobspec.h"

#include <fstream>
#include <sstream>

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
  EXPECT_THAT(spec.status().message(),
              HasSubstr("strategy.name: 'genetic' is not one of random, evolution"));
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

}  // namespace
}  // namespace nasforge
