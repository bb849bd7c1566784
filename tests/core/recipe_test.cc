// The built-in trainer's recipe (core/recipe.h): which names it binds, field-named refusals at
// submission and per trial, and the learning-rate schedules.
#include "core/recipe.h"

#include <cmath>
#include <string>

#include "core/jobspec.h"
#include "core/search_space.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

// The spec, defaults applied, not validated (the tests validate).
v1::JobSpec Spec(const std::string& dataset, const std::string& params) {
  v1::JobSpec spec;
  absl::Status st = YamlToMessage(absl::StrCat(R"(
name: recipe
budget: {max_trials: 4, epochs: 2}
objectives: [{metric: accuracy, direction: MAXIMIZE}]
training: {dataset: )",
                                               dataset,
                                               R"(, train_examples: 1000, validation_examples: 500}
search_space:
  name: s
  mlp: {in_features: 784, num_classes: 10, depth: [1], layers: [{units: [16, 32]}]}
  parameters: )",
                                               params, "\n"),
                                  &spec);
  EXPECT_TRUE(st.ok()) << st;
  ApplyJobSpecDefaults(&spec);
  return spec;
}

TEST(RecipeTest, SubmissionRefusesNamesAndValuesTheTrainerDoesNotTake) {
  const std::string good =
      "[{name: learning_rate, real: {low: 1e-4, high: 0.1, log: true}}, "
      "{name: optimizer, categorical: {values: [adamw, sgd]}}, "
      "{name: momentum, real: {low: 0.8, high: 0.99}, when: [{parameter: optimizer, values: "
      "[sgd]}]}, "
      "{name: schedule, categorical: {values: [cosine, onecycle, step, constant]}}, "
      "{name: batch_size, ordinal: {values: [64, 128, 256]}}, "
      "{name: augment, categorical: {values: [\"off\", \"on\"]}}]";
  EXPECT_TRUE(ValidateJobSpec(Spec("fashion-mnist", good)).ok())
      << ValidateJobSpec(Spec("fashion-mnist", good));

  absl::Status st =
      ValidateJobSpec(Spec("fashion-mnist", "[{name: lr, real: {low: 0.1, high: 1}}]"));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("search_space.parameters[0].name"));
  EXPECT_THAT(st.message(), HasSubstr("no parameter 'lr' (learning_rate, weight_decay"));
  // The same name passes through to external workers.
  EXPECT_TRUE(ValidateJobSpec(Spec("external", "[{name: lr, real: {low: 0.1, high: 1}}]")).ok());

  st = ValidateJobSpec(
      Spec("fashion-mnist", "[{name: optimizer, categorical: {values: [adamw, lion]}}]"));
  EXPECT_THAT(st.message(),
              HasSubstr("search_space.parameters[0]: optimizer: 'lion' is not one of adamw, sgd"));
  st = ValidateJobSpec(
      Spec("fashion-mnist", "[{name: label_smoothing, real: {low: 0, high: 0.8}}]"));
  EXPECT_THAT(st.message(), HasSubstr("label_smoothing: 0.8 is out of range [0, 0.5]"));
  st = ValidateJobSpec(Spec("fashion-mnist", "[{name: batch_size, real: {low: 16, high: 64}}]"));
  EXPECT_THAT(st.message(), HasSubstr("batch_size is an integer"));
}

TEST(RecipeTest, ATrialsValuesOverrideTheJobsTraining) {
  v1::JobSpec spec = Spec("fashion-mnist",
                          "[{name: optimizer, categorical: {values: [sgd]}}, "
                          "{name: nesterov, categorical: {values: [\"on\"]}}, "
                          "{name: learning_rate, ordinal: {values: [0.05]}}, "
                          "{name: dropout, real: {low: 0.2, high: 0.3, step: 0.1}}]");
  v1::Architecture a = SampleArchitecture(spec.search_space(), 1);
  auto r = ResolveRecipe(spec.training(), a);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->optimizer, "sgd");
  EXPECT_TRUE(r->nesterov);
  EXPECT_EQ(r->learning_rate, 0.05);
  EXPECT_EQ(r->batch_size, spec.training().batch_size());  // not a parameter: the job's
  EXPECT_TRUE(r->dropout == 0.2 || r->dropout == 0.3);

  v1::Architecture bad = a;
  auto* v = bad.mutable_params()->add_values();
  v->set_name("colour");
  v->set_text("red");
  EXPECT_THAT(ResolveRecipe(spec.training(), bad).status().message(),
              HasSubstr("architecture.params[colour]: the built-in trainer has no parameter"));
}

TEST(RecipeTest, SchedulesRiseAndFallAsDocumented) {
  Recipe r;
  r.learning_rate = 1.0;
  const int64_t per_epoch = 10, total = 100;
  // cosine without warm-up: the trainer's schedule before recipes existed.
  for (int64_t s : {0, 25, 50, 99}) {
    EXPECT_DOUBLE_EQ(LearningRateAt(r, s, per_epoch, total),
                     0.5 * (1 + std::cos(M_PI * static_cast<double>(s) / total)));
  }
  r.warmup_epochs = 2;  // 20 steps of linear rise
  EXPECT_DOUBLE_EQ(LearningRateAt(r, 0, per_epoch, total), 1.0 / 20);
  EXPECT_DOUBLE_EQ(LearningRateAt(r, 19, per_epoch, total), 1.0);
  EXPECT_DOUBLE_EQ(LearningRateAt(r, 20, per_epoch, total), 1.0);
  EXPECT_LT(LearningRateAt(r, 99, per_epoch, total), 0.01);
  r.schedule = "constant";
  EXPECT_DOUBLE_EQ(LearningRateAt(r, 70, per_epoch, total), 1.0);
  r.schedule = "step";
  r.warmup_epochs = 0;
  EXPECT_DOUBLE_EQ(LearningRateAt(r, 49, per_epoch, total), 1.0);
  EXPECT_DOUBLE_EQ(LearningRateAt(r, 50, per_epoch, total), 0.1);
  EXPECT_DOUBLE_EQ(LearningRateAt(r, 80, per_epoch, total), 0.01);
  r.schedule = "onecycle";
  EXPECT_DOUBLE_EQ(LearningRateAt(r, 0, per_epoch, total), 1.0 / 25);
  EXPECT_DOUBLE_EQ(LearningRateAt(r, 30, per_epoch, total), 1.0);
  EXPECT_LT(LearningRateAt(r, 99, per_epoch, total), 0.001);
}

}  // namespace
}  // namespace nasforge
