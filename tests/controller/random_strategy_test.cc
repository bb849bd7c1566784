#include <set>

#include "controller/strategy.h"
#include "core/search_space.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace nasforge {
namespace {

v1::JobSpec Spec(uint64_t seed) {
  v1::JobSpec s;
  *s.mutable_search_space() = testing::LoadSmallSpace();
  s.mutable_strategy()->set_name("random");
  s.mutable_budget()->set_seed(seed);
  return s;
}

std::vector<std::string> Take(Strategy& s, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    auto a = s.Ask([](const v1::Architecture&) { return true; }, 1);
    out.push_back(ArchHash(*a));
  }
  return out;
}

TEST(RandomStrategyTest, SameSeedSameProposalsAndResumesFromItsPosition) {
  auto a = NewStrategy(Spec(7), 0).value();
  auto b = NewStrategy(Spec(7), 0).value();
  auto c = NewStrategy(Spec(8), 0).value();
  auto first = Take(*a, 10);
  EXPECT_EQ(first, Take(*b, 10));
  EXPECT_NE(first, Take(*c, 10));
  EXPECT_EQ(a->position(), 10u);
  // A strategy rebuilt at the stored position continues the same sequence.
  auto more = Take(*a, 5);
  auto resumed = NewStrategy(Spec(7), 10).value();
  EXPECT_EQ(Take(*resumed, 5), more);
}

TEST(RandomStrategyTest, SkipsInadmissibleProposalsWithinItsAttempts) {
  auto s = NewStrategy(Spec(1), 0).value();
  std::set<std::string> seen;
  int calls = 0;
  auto every_third = [&](const v1::Architecture& a) {
    seen.insert(ArchHash(a));
    return ++calls % 3 == 0;
  };
  ASSERT_TRUE(s->Ask(every_third, 5).has_value());
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(s->position(), 3u);
  EXPECT_FALSE(s->Ask([](const v1::Architecture&) { return false; }, 4).has_value());
  EXPECT_EQ(s->position(), 7u);
}

TEST(RandomStrategyTest, UnknownStrategyIsAFieldError) {
  v1::JobSpec spec = Spec(1);
  spec.mutable_strategy()->set_name("simulated-annealing");
  auto s = NewStrategy(spec, 0);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.status().message()), ::testing::HasSubstr("strategy.name"));
}

}  // namespace
}  // namespace nasforge
