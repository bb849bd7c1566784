// The incremental fronts against brute force: the archive holds exactly the non-dominated points
// of everything offered (ties included), in any insertion order; its area is the 2-D
// hypervolume; the 3-D hypervolume equals a count of dominated unit cells on integer data.
#include "core/pareto_archive.h"

#include <algorithm>
#include <random>

#include "core/pareto.h"
#include "gtest/gtest.h"

namespace nasforge {
namespace {

// The O(n^2) reference: ids of points no other point dominates.
std::vector<int64_t> BruteFront(const std::vector<std::vector<double>>& pts) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < pts.size(); ++i) {
    bool dominated = false;
    for (size_t j = 0; j < pts.size() && !dominated; ++j) dominated = Dominates(pts[j], pts[i]);
    if (!dominated) out.push_back(static_cast<int64_t>(i));
  }
  return out;
}

TEST(ParetoArchiveTest, HoldsExactlyTheNonDominatedPointsForAnyDimension) {
  std::mt19937_64 rng(11);
  for (size_t m : {1u, 2u, 3u, 4u}) {
    for (int round = 0; round < 40; ++round) {
      const int n = 1 + static_cast<int>(rng() % 300);
      // Small integer coordinates in half the rounds: many ties and equal points.
      const bool coarse = round % 2 == 0;
      std::uniform_int_distribution<int> small(0, 6);
      std::uniform_real_distribution<double> fine(-1, 1);
      std::vector<std::vector<double>> pts(n, std::vector<double>(m));
      for (auto& p : pts) {
        for (double& v : p) v = coarse ? small(rng) : fine(rng);
      }
      ParetoArchive archive(m);
      for (int i = 0; i < n; ++i) archive.Insert(i, pts[i]);
      ASSERT_EQ(archive.Ids(), BruteFront(pts)) << "m=" << m << " round " << round;
      ASSERT_EQ(archive.size(), BruteFront(pts).size());
      // Another insertion order, the same front.
      std::vector<int> order(n);
      for (int i = 0; i < n; ++i) order[i] = i;
      std::shuffle(order.begin(), order.end(), rng);
      ParetoArchive shuffled(m);
      for (int i : order) shuffled.Insert(i, pts[i]);
      ASSERT_EQ(shuffled.Ids(), BruteFront(pts)) << "m=" << m << " round " << round;
    }
  }
}

TEST(ParetoArchiveTest, TheAreaIsTheTwoDimensionalHypervolumeAfterEveryInsert) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(0, 10);
  std::uniform_int_distribution<int> k(0, 10);
  for (int round = 0; round < 30; ++round) {
    const std::pair<double, double> ref = {8, 8};  // some points fall outside it
    Front2D front(ref);
    std::vector<std::pair<double, double>> pts;
    std::vector<int64_t> removed;
    for (int i = 0; i < 200; ++i) {
      std::pair<double, double> p = round % 2 == 0 ? std::make_pair<double, double>(k(rng), k(rng))
                                                   : std::make_pair(u(rng), u(rng));
      pts.push_back(p);
      front.Insert(p.first, p.second, i, &removed);
      ASSERT_NEAR(front.Area(), Hypervolume2D(pts, ref), 1e-9 * 64) << round << " " << i;
    }
    // Removed ids never come back, and with the front they account for every accepted point.
    std::vector<int64_t> ids = front.Ids();
    for (int64_t r : removed) EXPECT_EQ(std::count(ids.begin(), ids.end(), r), 0);
  }
}

TEST(ParetoArchiveTest, HypervolumeThreeDEqualsCountingDominatedCells) {
  std::mt19937_64 rng(9);
  std::uniform_int_distribution<int> c(0, 9);
  for (int round = 0; round < 50; ++round) {
    const int n = 1 + static_cast<int>(rng() % 40);
    std::vector<std::array<double, 3>> pts(n);
    for (auto& p : pts) p = {double(c(rng)), double(c(rng)), double(c(rng))};
    const std::array<double, 3> ref = {10, 10, 10};
    // Cell [a,a+1) x [b,b+1) x [d,d+1) is dominated when some point is <= (a, b, d).
    int cells = 0;
    for (int a = 0; a < 10; ++a) {
      for (int b = 0; b < 10; ++b) {
        for (int d = 0; d < 10; ++d) {
          bool dominated = false;
          for (const auto& p : pts) {
            dominated = dominated || (p[0] <= a && p[1] <= b && p[2] <= d);
          }
          cells += dominated;
        }
      }
    }
    ASSERT_NEAR(Hypervolume3D(pts, ref), cells, 1e-9) << "round " << round;
  }
  EXPECT_EQ(Hypervolume3D({}, {1, 1, 1}), 0);
  EXPECT_EQ(Hypervolume3D({{{2, 0, 0}}}, {1, 1, 1}), 0) << "outside the reference box";
}

}  // namespace
}  // namespace nasforge
