// Importance of choices and hyperparameters from observations (core/importance.h): the
// decision the objective depends on is found, the others get next to nothing, inactive
// parameters are counted only where active, and too few trials is a clear error.
#include "core/importance.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/jobspec.h"
#include "core/parameters.h"
#include "core/search_space.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nasforge {
namespace {

v1::SearchSpace Space() {
  v1::SearchSpace s;
  EXPECT_TRUE(YamlToMessage(R"(
mlp: {in_features: 784, num_classes: 10, depth: [1, 2], layers: [{units: [16, 32]}, {units: [16, 32]}]}
parameters:
  - {name: optimizer, categorical: {values: [adamw, sgd]}}
  - {name: learning_rate, real: {low: 1e-4, high: 0.1, log: true}}
  - {name: momentum, ordinal: {values: [0.8, 0.9]}, when: [{parameter: optimizer, values: [sgd]}]}
)",
                            &s)
                  .ok());
  return s;
}

// Accuracy depends on the learning rate alone (a peak at 1e-2 in log space), plus noise.
std::vector<v1::Trial> Trials(const v1::SearchSpace& s, int n) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> noise(0, 0.01);
  std::vector<v1::Trial> out;
  for (int i = 0; i < n; ++i) {
    v1::Trial t;
    t.set_id(i);
    t.set_state(v1::TRIAL_SUCCEEDED);
    *t.mutable_architecture() = DecodeArchitecture(s, SampleGenes(s, rng));
    const double x = std::log10(FindParam(t.architecture(), "learning_rate")->number()) + 2;
    (*t.mutable_metrics())["accuracy"] = 0.9 - 0.1 * x * x + noise(rng);
    out.push_back(t);
  }
  return out;
}

TEST(ImportanceTest, TheDecisionTheObjectiveDependsOnComesFirst) {
  const v1::SearchSpace s = Space();
  auto r = ComputeImportance(s, Trials(s, 200), "accuracy", /*maximize=*/true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->trials, 200);
  ASSERT_FALSE(r->decisions.empty());
  EXPECT_EQ(r->decisions[0].name, "params.learning_rate");
  EXPECT_GT(r->decisions[0].importance, 0.8);
  EXPECT_TRUE(r->decisions[0].ordered);
  EXPECT_TRUE(r->decisions[0].log);
  // The best bin holds 1e-2.
  const std::string best = r->decisions[0].best;
  const size_t dots = best.find("..");
  ASSERT_NE(dots, std::string::npos) << best;
  EXPECT_LE(std::stod(best.substr(0, dots)), 0.0125) << best;
  EXPECT_GE(std::stod(best.substr(dots + 2)), 0.008) << best;
  double sum = 0;
  for (const auto& d : r->decisions) {
    sum += d.importance;
    if (d.name == "params.momentum") {
      EXPECT_LT(d.observations, 200);  // only where the optimizer is sgd
      EXPECT_GT(d.observations, 50);
    }
  }
  EXPECT_NEAR(sum, 1.0, 1e-9);
  // One plot point per active decision value.
  EXPECT_GT(r->points.size(), 200u * 5);
}

TEST(ImportanceTest, MinimisedObjectivesPickTheLowestMeanAsBest) {
  const v1::SearchSpace s = Space();
  std::vector<v1::Trial> trials = Trials(s, 200);
  for (auto& t : trials) (*t.mutable_metrics())["loss"] = -t.metrics().at("accuracy");
  auto r = ComputeImportance(s, trials, "loss", /*maximize=*/false);
  ASSERT_TRUE(r.ok()) << r.status();
  auto up = ComputeImportance(s, trials, "accuracy", true).value();
  EXPECT_EQ(r->decisions[0].best, up.decisions[0].best);
}

// At an epoch: every trial's curve value there, the early-stopped ones included. Here the final
// accuracy (of the few survivors) depends on the optimizer, the epoch-1 values of all on the
// learning rate.
TEST(ImportanceTest, AtAnEpochTheStoppedTrialsCountToo) {
  const v1::SearchSpace s = Space();
  std::vector<v1::Trial> trials = Trials(s, 120);
  for (size_t i = 0; i < trials.size(); ++i) {
    v1::Trial& t = trials[i];
    auto* p = t.add_curve();
    p->set_epoch(1);
    p->set_value(t.metrics().at("accuracy") / 2);
    if (i % 4 != 0) {
      t.set_state(v1::TRIAL_STOPPED);
    } else {
      (*t.mutable_metrics())["accuracy"] =
          FindParam(t.architecture(), "optimizer")->text() == "sgd" ? 0.9 : 0.5;
    }
  }
  auto final = ComputeImportance(s, trials, "accuracy", true).value();
  EXPECT_EQ(final.trials, 30);
  EXPECT_EQ(final.decisions[0].name, "params.optimizer");
  auto rung = ComputeImportance(s, trials, "accuracy", false, /*epoch=*/1).value();
  EXPECT_EQ(rung.trials, 120);
  EXPECT_EQ(rung.metric, "validation at epoch 1");
  EXPECT_EQ(rung.decisions[0].name, "params.learning_rate");
  EXPECT_THAT(ComputeImportance(s, trials, "accuracy", true, 2).status().message(),
              ::testing::HasSubstr("at least 4 trials that reached epoch 2"));
}

TEST(ImportanceTest, TooFewTrialsIsAClearError) {
  const v1::SearchSpace s = Space();
  auto r = ComputeImportance(s, Trials(s, 3), "accuracy", true);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), ::testing::HasSubstr("at least 4 succeeded trials"));
}

}  // namespace
}  // namespace nasforge
