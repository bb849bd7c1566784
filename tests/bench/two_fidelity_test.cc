#include "bench/two_fidelity.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/table.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

class TwoFidelityTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    std::string p =
        absl::StrCat(std::filesystem::temp_directory_path().string(), "/tf-", getpid(), "-", name);
    std::ofstream(p) << text;
    files_.push_back(p);
    return p;
  }
  void TearDown() override {
    for (const auto& f : files_) std::filesystem::remove(f);
  }
  // 500 rows: the cheap fidelity ranks rows exactly like the full one; report = full.
  std::string RankedTable() {
    std::string csv = "key,low,high,seeds,report\n";
    for (int i = 0; i < 500; ++i) {
      absl::StrAppend(&csv, "|cell", i, "|,", i * 0.1, ",", 50 + i * 0.05, ",", 50 + i * 0.05, ";",
                      50 + i * 0.05, ",", 50 + i * 0.05, "\n");
    }
    return Write("ranked.csv", csv);
  }
  std::vector<std::string> files_;
};

TEST_F(TwoFidelityTest, ReadsTablesByColumnName) {
  auto t = Table::ReadCsv(RankedTable());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->rows(), 500u);
  auto c = t->Column("seeds", "--seeds-column");
  ASSERT_TRUE(c.ok());
  EXPECT_THAT(*t->Numbers(3, *c), ::testing::ElementsAre(50.15, 50.15));
  EXPECT_THAT(std::string(t->Column("c10_val", "--low-column").status().message()),
              HasSubstr("--low-column: table '"));
  EXPECT_THAT(std::string(t->Column("c10_val", "--low-column").status().message()),
              HasSubstr("(columns: key, low, high, seeds, report)"));
}

TEST_F(TwoFidelityTest, MalformedTablesAreClearErrors) {
  EXPECT_EQ(Table::ReadCsv("/nonexistent.csv").status().code(), absl::StatusCode::kNotFound);
  auto ragged = Table::ReadCsv(Write("ragged.csv", "a,b\n1,2\n3\n"));
  EXPECT_THAT(std::string(ragged.status().message()), HasSubstr("row 3 has 1 fields"));
  auto t = Table::ReadCsv(Write("text.csv", "a,b\n1,x\n"));
  ASSERT_TRUE(t.ok());
  EXPECT_THAT(std::string(t->Number(0, 1).status().message()),
              HasSubstr("row 2 column b: 'x' is not a number"));
}

TEST_F(TwoFidelityTest, PerfectCheapFidelityMakesHalvingWinAtEqualCost) {
  auto t = Table::ReadCsv(RankedTable());
  ASSERT_TRUE(t.ok());
  TwoFidelityOptions o;
  o.low_column = "low";
  o.high_column = "high";
  o.seeds_column = "seeds";
  o.report_column = "report";
  o.low_cost = 0.1;
  o.low_count = 200;  // 20 full trainings
  o.promote = 5;      // + 5 = 25
  o.runs = 50;
  auto r = RunTwoFidelityBench(*t, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_DOUBLE_EQ(r->successive_halving.cost, 25.0);
  EXPECT_EQ(r->full_fidelity.queries, 25);
  // Halving always keeps the best of 200 samples; random search the best of 25.
  EXPECT_GT(r->best_accuracy_delta_pp, 0.5);
  EXPECT_GT(r->compute_ratio, 2.0);
  EXPECT_GE(r->full_queries_to_match, 25);
  // Same seed, same figures.
  auto again = RunTwoFidelityBench(*t, o);
  EXPECT_DOUBLE_EQ(again->successive_halving.mean, r->successive_halving.mean);
  EXPECT_DOUBLE_EQ(again->full_fidelity.mean, r->full_fidelity.mean);
}

TEST_F(TwoFidelityTest, OptionsAreValidated) {
  auto t = Table::ReadCsv(RankedTable());
  TwoFidelityOptions o;
  o.low_column = "low";
  o.high_column = "high";
  o.report_column = "report";
  o.low_count = 600;
  EXPECT_THAT(std::string(RunTwoFidelityBench(*t, o).status().message()),
              HasSubstr("--low-count: 600 exceeds the table's 500 rows"));
  o.low_count = 100;
  o.promote = 101;
  EXPECT_THAT(std::string(RunTwoFidelityBench(*t, o).status().message()), HasSubstr("--promote"));
  o.promote = 10;
  o.report_column = "nope";
  EXPECT_THAT(std::string(RunTwoFidelityBench(*t, o).status().message()),
              HasSubstr("--report-column"));
}

// Halving whose cheap evaluations are proposed by regularized evolution (told the cheap
// fidelity) promotes better cells than halving over uniform samples, on the NAS-Bench-201 table.
TEST_F(TwoFidelityTest, StrategyDrivenHalvingBeatsRandomHalving) {
  auto table = Table::ReadCsv(std::string(NASFORGE_SOURCE_DIR) + "/bench/data/nb201_cifar10.csv");
  ASSERT_TRUE(table.ok()) << table.status();
  TwoFidelityOptions o;
  o.low_column = "c10_val_12ep";
  o.high_column = "c10_val_200ep";
  o.seeds_column = "c10_val_200ep_seeds";
  o.report_column = "c10_test_200ep";
  o.low_count = 400;
  o.promote = 10;
  o.runs = 20;
  auto random = RunTwoFidelityBench(*table, o);
  o.low_strategy = "evolution";
  auto rea = RunTwoFidelityBench(*table, o);
  ASSERT_TRUE(random.ok() && rea.ok()) << random.status() << rea.status();
  EXPECT_GT(rea->successive_halving.mean, random->successive_halving.mean + 0.05);
  EXPECT_EQ(rea->successive_halving.cost, random->successive_halving.cost);
  o.low_strategy = "annealing";
  EXPECT_THAT(std::string(RunTwoFidelityBench(*table, o).status().message()),
              HasSubstr("strategy.name: 'annealing' is not one of"));
}

}  // namespace
}  // namespace nasforge
