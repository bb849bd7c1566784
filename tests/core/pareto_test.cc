#include "core/pareto.h"

#include <cmath>
#include <random>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nasforge {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ParetoTest, Dominance) {
  EXPECT_TRUE(Dominates({1, 1}, {2, 2}));
  EXPECT_TRUE(Dominates({1, 2}, {2, 2}));
  EXPECT_FALSE(Dominates({2, 2}, {2, 2}));  // equal: neither dominates
  EXPECT_FALSE(Dominates({1, 3}, {2, 2}));
}

TEST(ParetoTest, NonDominatedKeepsTheFrontInOrder) {
  std::vector<std::vector<double>> p = {{1, 5}, {2, 2}, {3, 3}, {5, 1}, {2, 2}, {4, 4}};
  EXPECT_THAT(NonDominated(p), ElementsAre(0, 1, 3, 4));
}

TEST(ParetoTest, SelectParetoAppliesDirectionsAndConstraints) {
  MetricMap a{{"accuracy", 0.90}, {"macs", 100}, {"latency_ms", 3}};
  MetricMap b{{"accuracy", 0.85}, {"macs", 50}, {"latency_ms", 2}};
  MetricMap c{{"accuracy", 0.80}, {"macs", 80}, {"latency_ms", 1}};  // dominated by b
  MetricMap d{{"accuracy", 0.95}, {"macs", 400}, {"latency_ms", 9}};
  MetricMap e{{"macs", 10}};  // no accuracy
  auto acc = ParseObjective("accuracy:max");
  auto macs = ParseObjective("macs:min");
  ASSERT_TRUE(acc.ok() && macs.ok());
  size_t considered = 0;
  auto front = SelectPareto({&a, &b, &c, &d, &e}, {*acc, *macs}, {}, &considered);
  EXPECT_THAT(front, ElementsAre(3, 0, 1));  // best accuracy first
  EXPECT_EQ(considered, 4u);
  auto lat = ParseConstraint("latency_ms<=5");
  ASSERT_TRUE(lat.ok());
  front = SelectPareto({&a, &b, &c, &d, &e}, {*acc, *macs}, {*lat}, &considered);
  EXPECT_THAT(front, ElementsAre(0, 1));
  EXPECT_EQ(considered, 3u);
}

TEST(ParetoTest, ParsingErrorsSayWhatIsWrong) {
  EXPECT_THAT(ParseObjective("accuracy").status().message(), HasSubstr("METRIC:max"));
  EXPECT_THAT(ParseObjective("accuracy:up").status().message(),
              HasSubstr("'up' is not max or min"));
  EXPECT_THAT(ParseObjective("acc:max").status().message(), HasSubstr("unknown metric 'acc'"));
  EXPECT_THAT(ParseConstraint("latency_ms<=fast").status().message(), HasSubstr("not a number"));
  auto c = ParseConstraint("accuracy >= 0.9");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->metric(), "accuracy");
  EXPECT_TRUE(c->has_lower());
  EXPECT_DOUBLE_EQ(c->lower(), 0.9);
  EXPECT_FALSE(c->has_upper());
}

TEST(ParetoTest, ConstrainedSortRanksFrontsAndPutsInfeasiblePointsLast) {
  //        0        1        2        3        4 (infeasible, would dominate all)
  std::vector<std::vector<double>> p = {{1, 4}, {2, 2}, {4, 1}, {3, 3}, {0, 0}};
  auto fronts = NonDominatedSort(p, {0, 0, 0, 0, 0.5});
  ASSERT_EQ(fronts.size(), 3u);
  EXPECT_THAT(fronts[0], ::testing::UnorderedElementsAre(0, 1, 2));
  EXPECT_THAT(fronts[1], ElementsAre(3));
  EXPECT_THAT(fronts[2], ElementsAre(4));
  EXPECT_EQ(NonDominatedSort(p).size(), 3u) << "feasible: 4 alone, then 0 1 2, then 3";
  EXPECT_TRUE(ConstrainedDominates({9, 9}, 0, {0, 0}, 0.1));
  EXPECT_TRUE(ConstrainedDominates({9, 9}, 0.1, {0, 0}, 0.2));
  EXPECT_FALSE(ConstrainedDominates({1, 2}, 0, {2, 1}, 0));
  // Crowding: the extremes are infinite, the middle point gets the normalised neighbour gaps.
  std::vector<size_t> front = fronts[0];
  auto d = CrowdingDistances(p, front);
  ASSERT_EQ(d.size(), 3u);
  for (size_t f = 0; f < front.size(); ++f) {
    if (front[f] == 1) {
      EXPECT_DOUBLE_EQ(d[f], (4.0 - 1.0) / 3 + (4.0 - 1.0) / 3);
    } else {
      EXPECT_TRUE(std::isinf(d[f]));
    }
  }
}

TEST(ParetoTest, Hypervolume2DIsTheDominatedArea) {
  // Minimised both; ref (4, 4): (1,3) adds 3x1, (2,1) adds 2x3 minus the overlap 2x1 = 3+... .
  EXPECT_DOUBLE_EQ(Hypervolume2D({{1, 3}, {2, 1}}, {4, 4}), 3 * 1 + 2 * 2);
  EXPECT_DOUBLE_EQ(Hypervolume2D({{5, 1}, {1, 5}}, {4, 4}), 0) << "nothing inside ref";
  EXPECT_DOUBLE_EQ(Hypervolume2D({}, {4, 4}), 0);
  EXPECT_DOUBLE_EQ(Hypervolume2D({{2, 2}, {2, 2}, {3, 3}}, {4, 4}), 4) << "duplicates count once";
}

// Property: on random points (with ties), the staircase is exactly the distinct non-dominated
// points below the bound, as the O(n^2) NonDominated finds them, sorted by the first coordinate.
TEST(ParetoTest, Staircase2DIsTheNonDominatedSetBelowTheBound) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> coord(0, 30);  // small range: many ties and duplicates
  for (int round = 0; round < 200; ++round) {
    const int n = 1 + round % 40;
    std::vector<std::pair<double, double>> pts;
    std::vector<std::vector<double>> as_vectors;
    for (int i = 0; i < n; ++i) {
      pts.push_back({coord(rng), coord(rng)});
      as_vectors.push_back({pts.back().first, pts.back().second});
    }
    const double bound = coord(rng);
    std::set<std::pair<double, double>> expected;  // distinct
    for (size_t i : NonDominated(as_vectors)) {
      if (pts[i].second < bound) expected.insert(pts[i]);
    }
    const auto front = Staircase2D(pts, bound);
    using PointSet = std::set<std::pair<double, double>>;
    EXPECT_EQ(PointSet(front.begin(), front.end()), expected);
    EXPECT_EQ(front.size(), expected.size()) << "no point twice";
    for (size_t i = 1; i < front.size(); ++i) {
      EXPECT_LT(front[i - 1].first, front[i].first);
      EXPECT_GT(front[i - 1].second, front[i].second);
    }
  }
}

// The O(n^2) definition, as the reference for the sweep.
std::vector<size_t> BruteForceNonDominated(const std::vector<std::vector<double>>& pts) {
  std::vector<size_t> out;
  for (size_t i = 0; i < pts.size(); ++i) {
    bool dominated = false;
    for (size_t j = 0; j < pts.size() && !dominated; ++j) {
      dominated = j != i && Dominates(pts[j], pts[i]);
    }
    if (!dominated) out.push_back(i);
  }
  return out;
}

// Property: on random points with many ties and duplicates, in 2 to 4 dimensions, the sweep
// finds exactly the points the pairwise definition does, in input order.
TEST(ParetoTest, NonDominatedMatchesThePairwiseDefinition) {
  std::mt19937_64 rng(11);
  for (int round = 0; round < 600; ++round) {
    const size_t m = 2 + round % 3;
    const int n = 1 + round % 60;
    std::uniform_int_distribution<int> coord(0, round % 2 == 0 ? 5 : 1000);
    std::vector<std::vector<double>> pts(n, std::vector<double>(m));
    for (auto& p : pts) {
      for (double& v : p) v = coord(rng);
    }
    if (round % 50 == 0) pts[0][0] = std::nan("");  // the NaN fallback
    EXPECT_EQ(NonDominated(pts), BruteForceNonDominated(pts)) << "round " << round;
  }
}

// Large inputs take the pre-filter path (pivots drop what they dominate before the sort).
TEST(ParetoTest, NonDominatedOnLargeInputsMatchesThePairwiseDefinition) {
  std::mt19937_64 rng(5);
  for (int round = 0; round < 6; ++round) {
    const size_t m = 2 + round % 3;
    std::uniform_int_distribution<int> coord(0, round < 3 ? 40 : 100000);
    std::vector<std::vector<double>> pts(5000, std::vector<double>(m));
    for (auto& p : pts) {
      for (double& v : p) v = coord(rng);
    }
    EXPECT_EQ(NonDominated(pts), BruteForceNonDominated(pts)) << "round " << round;
  }
}

}  // namespace
}  // namespace nasforge
