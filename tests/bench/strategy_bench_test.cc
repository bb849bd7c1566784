// bench strategies' simulation (bench/strategy_bench.cc) on a small table of two parameters:
// one fidelity (a query is a training), and two (a cheap screen, the stopping rule, full
// trainings for survivors; queries count full trainings).
#include "bench/strategy_bench.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/jobspec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

class StrategyBenchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = absl::StrCat(std::filesystem::temp_directory_path().string(), "/sb-", getpid(), ".csv");
    // 20 x 20 configurations; the cheap column ranks them exactly as the full one; the best is
    // (13, 7) at 100.
    std::string csv = "x,y,low,high,seeds,report\n";
    for (int x = 0; x < 20; ++x) {
      for (int y = 0; y < 20; ++y) {
        const double v = 100 - (x - 13) * (x - 13) - 0.5 * (y - 7) * (y - 7);
        absl::StrAppend(&csv, x, ",", y, ",", v / 2, ",", v, ",", v, ";", v, ",", v, "\n");
      }
    }
    std::ofstream(path_) << csv;
    TabularOptions t;
    t.table = path_;
    t.key_column.clear();
    t.fitness_column = "high";
    t.seeds_column = "seeds";
    t.report_columns = {"report", "low"};
    oracle_ = std::make_unique<TabularOracle>(TabularOracle::Load(t).value());
    ASSERT_TRUE(YamlToMessage(R"(
name: grid
parameters:
  - {name: x, integer: {low: 0, high: 19}}
  - {name: y, integer: {low: 0, high: 19}}
)",
                              &o_.space)
                    .ok());
    o_.queries = 20;
    o_.runs = 6;
    o_.checkpoints = {10, 20};
  }
  void TearDown() override { std::filesystem::remove(path_); }

  std::string path_;
  std::unique_ptr<TabularOracle> oracle_;
  StrategyBenchOptions o_;
};

TEST_F(StrategyBenchTest, OneFidelityAQueryIsATraining) {
  o_.strategy = "random";
  auto r = RunStrategyBench(*oracle_, o_).value();
  EXPECT_EQ(r.candidates_mean, 20);
  EXPECT_EQ(r.promoted_mean, 20);
  ASSERT_EQ(r.checkpoints.size(), 2u);
  EXPECT_EQ(r.table_best, 100);
  EXPECT_LE(r.checkpoints[0].mean, r.checkpoints[1].mean);
  EXPECT_NEAR(r.checkpoints[1].regret, 100 - r.checkpoints[1].mean, 1e-9);
}

// A cheap screen at 1/10 of a training with the top 1/4 promoted: many more candidates for the
// same budget, the rest stopped, and a better result than training everything.
TEST_F(StrategyBenchTest, TwoFidelitiesScreenCheaplyAndPromoteTheBest) {
  o_.strategy = "random";
  const double full = RunStrategyBench(*oracle_, o_).value().checkpoints[1].mean;
  o_.low_epochs = 2;
  o_.epochs = 20;
  o_.early_stopping.set_rule("asha");
  o_.early_stopping.set_eta(4);
  auto r = RunStrategyBench(*oracle_, o_).value();
  EXPECT_GT(r.candidates_mean, 40);
  EXPECT_LT(r.promoted_mean, r.candidates_mean / 2);
  // Cost: promoted trainings plus a tenth per stopped one fit in the budget (the last one may
  // cross it).
  EXPECT_LE(r.promoted_mean + 0.1 * (r.candidates_mean - r.promoted_mean), 21.0);
  EXPECT_GT(r.checkpoints[1].mean, full);
  // bohb names its rule (asha) itself, and learns from the screen.
  o_.early_stopping.set_rule("");
  o_.strategy = "bohb";
  auto b = RunStrategyBench(*oracle_, o_).value();
  EXPECT_GT(b.candidates_mean, 20);
  EXPECT_GE(b.checkpoints[1].mean, r.checkpoints[1].mean - 1);
}

// On a noisy table (each seed +-8 around the mean), the oracle incumbent (the best mean among
// what a run evaluated) is never worse than the protocol's (the best draw), run by run, since
// both see the same proposals and draws; and it is better somewhere.
TEST_F(StrategyBenchTest, OracleIncumbentIsTheBestMeanAmongTheEvaluated) {
  const std::string noisy = path_ + ".noisy";
  std::string csv = "x,y,mean,seeds\n";
  for (int x = 0; x < 20; ++x) {
    for (int y = 0; y < 20; ++y) {
      const double v = 100 - (x - 13) * (x - 13) - 0.5 * (y - 7) * (y - 7);
      absl::StrAppend(&csv, x, ",", y, ",", v, ",", v + 8, ";", v - 8, "\n");
    }
  }
  std::ofstream(noisy) << csv;
  TabularOptions t;
  t.table = noisy;
  t.key_column.clear();
  t.fitness_column = "mean";
  t.seeds_column = "seeds";
  t.report_columns = {"mean"};
  auto oracle = TabularOracle::Load(t).value();
  std::filesystem::remove(noisy);
  o_.strategy = "random";
  o_.runs = 20;
  auto observed = RunStrategyBench(oracle, o_).value();
  o_.oracle_incumbent = true;
  auto known = RunStrategyBench(oracle, o_).value();
  bool better = false;
  for (size_t q = 0; q < known.curve.size(); ++q) {
    EXPECT_GE(known.curve[q], observed.curve[q] - 1e-9) << "after " << q + 1 << " queries";
    better = better || known.curve[q] > observed.curve[q] + 1e-9;
  }
  EXPECT_TRUE(better);
  EXPECT_LT(known.checkpoints[1].regret, observed.checkpoints[1].regret);
}

TEST_F(StrategyBenchTest, BadFidelityOptionsAreNamed) {
  o_.low_epochs = 20;
  o_.epochs = 20;
  o_.early_stopping.set_rule("asha");
  auto r = RunStrategyBench(*oracle_, o_);
  EXPECT_THAT(r.status().message(), HasSubstr("--epochs"));
  o_.epochs = 200;
  o_.early_stopping.set_rule("nope");
  EXPECT_THAT(RunStrategyBench(*oracle_, o_).status().message(), HasSubstr("nope"));
}

}  // namespace
}  // namespace nasforge
