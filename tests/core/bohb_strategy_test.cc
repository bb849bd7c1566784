// The multi-fidelity strategy (core/strategies/bohb_strategy.cc): its default stopping rule,
// and that its model learns from trials stopped at a rung and fits the largest budget that has
// enough observations.
#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "core/jobspec.h"
#include "core/nb201.h"
#include "core/search_space.h"
#include "core/strategies/strategy.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace nasforge {
namespace {

v1::JobSpec Spec(const std::string& strategy, uint64_t seed) {
  v1::JobSpec s;
  *s.mutable_search_space() = testing::LoadSpace("nb201_cifar.yaml");
  s.mutable_strategy()->set_name(strategy);
  s.mutable_budget()->set_seed(seed);
  s.mutable_budget()->set_epochs(9);
  auto* o = s.add_objectives();
  o->set_metric("accuracy");
  o->set_direction(v1::MAXIMIZE);
  return s;
}

// How many of a cell's six edges are 3x3 convolutions (0..6).
double Convs(const v1::Architecture& a) {
  auto ops = ParseNB201Cell(a.nb201().cell());
  double n = 0;
  for (const auto& op : *ops) n += op == "nor_conv_3x3" ? 1 : 0;
  return n;
}

// A trial stopped after `epoch` with validation `value` there.
v1::Trial Stopped(int64_t id, const v1::Architecture& a, int epoch, double value) {
  v1::Trial t;
  t.set_id(id);
  *t.mutable_architecture() = a;
  t.set_state(v1::TRIAL_STOPPED);
  for (int e = 1; e <= epoch; ++e) {
    auto* p = t.add_curve();
    p->set_epoch(e);
    p->set_value(e == epoch ? value : 0);
  }
  return t;
}

// A trial trained to the end (9 epochs): `low` at epoch 1, `full` as its accuracy.
v1::Trial Trained(int64_t id, const v1::Architecture& a, double low, double full) {
  v1::Trial t = Stopped(id, a, 1, low);
  t.set_state(v1::TRIAL_SUCCEEDED);
  auto* p = t.add_curve();
  p->set_epoch(9);
  p->set_value(full);
  (*t.mutable_metrics())["accuracy"] = full;
  return t;
}

// Mean Convs of `n` proposals (nothing told in between).
double MeanOfProposals(Strategy& s, std::set<std::string>& seen, int n) {
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    Proposal p =
        s.Ask([&](const v1::Architecture& a) { return seen.insert(ArchHash(a)).second; }, 100);
    EXPECT_EQ(p.kind, Proposal::Kind::kCandidate) << p.reason;
    sum += Convs(p.arch);
  }
  return sum / n;
}

TEST(BohbStrategyTest, SuccessiveHalvingByDefaultANamedRuleKept) {
  v1::JobSpec s = Spec("bohb", 1);
  ApplyStrategyDefaults(&s);
  EXPECT_EQ(s.early_stopping().rule(), "asha");
  s.mutable_early_stopping()->set_rule("median");
  ApplyStrategyDefaults(&s);
  EXPECT_EQ(s.early_stopping().rule(), "median");
  v1::JobSpec t = Spec("tpe", 1);
  ApplyStrategyDefaults(&t);
  EXPECT_EQ(t.early_stopping().rule(), "");
}

// Only trials stopped at the first rung: TPE (which models finished trainings) proposes at
// random; the multi-fidelity model learns from the rung and proposes cells with more 3x3
// convolutions (random: 1.2 of 6 on average).
TEST(BohbStrategyTest, LearnsFromTrialsStoppedAtARung) {
  double bohb = 0, tpe = 0;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    for (const std::string name : {"bohb", "tpe"}) {
      const v1::JobSpec spec = Spec(name, seed);
      auto s = NewStrategy(spec, 0).value();
      std::set<std::string> seen;
      std::mt19937_64 rng(seed);
      const v1::SearchSpace& space = spec.search_space();
      for (int i = 0; i < 40; ++i) {
        v1::Architecture a = DecodeArchitecture(space, SampleGenes(space, rng));
        if (!seen.insert(ArchHash(a)).second) continue;
        s->Tell(Stopped(i, a, 1, Convs(a)));
      }
      (name == "bohb" ? bohb : tpe) += MeanOfProposals(*s, seen, 25) / 4;
    }
  }
  EXPECT_LT(tpe, 1.8);
  EXPECT_GT(bohb, 2.0);
}

// The rung says 3x3 convolutions are good, full trainings say they are bad: while few trials
// have finished, the model follows the rung; once the full budget has enough observations
// (n_min = max(10, 6 decisions + 2)), it follows the full trainings.
TEST(BohbStrategyTest, FitsTheLargestBudgetWithEnoughObservations) {
  auto mean_after = [](int trained) {
    double sum = 0;
    for (uint64_t seed = 1; seed <= 4; ++seed) {
      const v1::JobSpec spec = Spec("bohb", seed);
      auto s = NewStrategy(spec, 0).value();
      std::set<std::string> seen;
      std::mt19937_64 rng(seed);
      const auto& space = spec.search_space();
      for (int i = 0; i < 40; ++i) {
        v1::Architecture a = DecodeArchitecture(space, SampleGenes(space, rng));
        if (!seen.insert(ArchHash(a)).second) continue;
        s->Tell(i < trained ? Trained(i, a, Convs(a), -Convs(a)) : Stopped(i, a, 1, Convs(a)));
      }
      sum += MeanOfProposals(*s, seen, 25) / 4;
    }
    return sum;
  };
  EXPECT_GT(mean_after(5), 2.0);   // 5 full trainings: the rung's model
  EXPECT_LT(mean_after(30), 0.8);  // 30: the full budget's model
}

}  // namespace
}  // namespace nasforge
